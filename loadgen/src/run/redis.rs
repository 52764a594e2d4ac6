//! Redis pub/sub, the baseline mp1d is compared with: each client
//! SUBSCRIBEs to one channel, and each sender PUBLISHes on a second
//! connection of its own (a subscribed connection cannot publish); the
//! `message` pushes carry the same stamped text an MP1 chat would. RESP is
//! the one codec in `crate::resp`.

use super::{parse_stamp, Runner};
use crate::resp::{self, Value};

/// The Redis channel every simulated client subscribes to.
const CHANNEL: &[u8] = b"mp1";

/// A client's first words: the SUBSCRIBE.
pub(super) fn subscribe() -> Vec<u8> {
    let mut out = Vec::new();
    resp::command(&[b"SUBSCRIBE", CHANNEL], &mut out);
    out
}

/// Appends a chat, published on the channel.
pub(super) fn publish(text: &str, out: &mut Vec<u8>) {
    resp::command(&[b"PUBLISH", CHANNEL, text.as_bytes()], out);
}

impl Runner<'_> {
    /// Handles the Redis values in `buf[..n]`, read from client `i`.
    pub(super) fn on_resp(&mut self, i: usize, n: usize, now: u64) -> Result<(), String> {
        let mut bytes = std::mem::take(&mut self.clients[i].partial);
        bytes.extend_from_slice(&self.buf[..n]);
        let mut at = 0;
        let result = loop {
            let (value, used) = match resp::next(&bytes[at..]) {
                Ok(Some(v)) => v,
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("c{i}: {e}")),
            };
            at += used;
            match value {
                Value::Message(text) => {
                    if let Some((seq, sender, _)) = parse_stamp(text) {
                        // Redis also delivers to the sender's own
                        // subscription; MP1 does not.
                        if sender != i {
                            self.on_delivery(i, seq, sender, now);
                        }
                    }
                }
                Value::Subscribed => self.logged_in(i),
                Value::Error(e) => break Err(format!("c{i}: Redis said {e}")),
                Value::Other => {}
            }
        };
        bytes.drain(..at);
        self.clients[i].partial = bytes;
        result
    }

    /// A Redis publisher: finishes connecting, writes, and reads (and
    /// drops) PUBLISH's receiver counts; an error reply ends the run.
    pub(super) fn on_publisher(
        &mut self,
        i: usize,
        readable: bool,
        writable: bool,
    ) -> Result<usize, String> {
        let target = self.p.targets[self.publishers[i].target];
        let c = &mut self.publishers[i];
        if writable {
            c.on_writable(target)
                .map_err(|e| format!("publisher {i}: {e}"))?;
        }
        if !readable {
            return Ok(0);
        }
        let mut total = 0;
        let err = |e| format!("publisher {i}: {e}");
        while let Some(n) = c.read(&mut self.buf).map_err(err)? {
            total += n;
            c.partial.extend_from_slice(&self.buf[..n]);
            let mut at = 0;
            while let Some((value, used)) = resp::next(&c.partial[at..]).map_err(err)? {
                if let Value::Error(e) = value {
                    return Err(err(format!("Redis said {e}")));
                }
                at += used;
            }
            c.partial.drain(..at);
        }
        Ok(total)
    }
}
