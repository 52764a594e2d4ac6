//! MP1 over TCP: the `Login` and `SendChat` requests in the chosen
//! framing (and `Framing::Auto`'s line break after an unanswered login),
//! and reading the server's objects: deliveries, the login's answer, a
//! disconnect. The WebSocket transport reads the same objects from its
//! text frames.

use super::{find, parse_stamp, Framing, Phase, Runner};
use mp1::protocol::{encode_request, Frame, Request, Splitter, AUTO_FRAMING_WAIT};

/// Client `i`'s login; bare unless `framing` is `Newline`.
pub(super) fn login(i: usize, framing: Framing) -> Vec<u8> {
    let mut out = Vec::new();
    let login = Request::Login {
        name: Some(format!("c{i}")),
    };
    encode_request(&login, framing == Framing::Newline, &mut out);
    out
}

/// Appends a chat request.
pub(super) fn chat(message: String, newline: bool, out: &mut Vec<u8>) {
    encode_request(&Request::SendChat { message }, newline, out);
}

impl Runner<'_> {
    /// `Framing::Auto`: a client whose bare `Login` went unanswered ends it
    /// with a line break, and frames by lines from then on.
    pub(super) fn end_unanswered_logins(&mut self) -> Result<(), String> {
        if self.p.framing != Framing::Auto {
            return Ok(());
        }
        for (i, c) in self.clients.iter_mut().enumerate() {
            let waiting = matches!(c.phase, Phase::LoggingIn) && !c.newline;
            if waiting && c.started.elapsed() >= AUTO_FRAMING_WAIT {
                c.newline = true;
                c.out.push(b'\n');
                c.flush().map_err(|e| format!("c{i}: write: {e}"))?;
            }
        }
        Ok(())
    }

    /// Handles the bytes in `buf[..n]`, read from client `i`.
    pub(super) fn on_tcp(&mut self, i: usize, n: usize, now: u64) -> Result<(), String> {
        // Out of `self` while the replies are handled.
        let mut splitter = std::mem::take(&mut self.clients[i].splitter);
        let buf = std::mem::take(&mut self.buf);
        let handled = self.on_mp1(i, &mut splitter, &buf[..n], now);
        self.clients[i].splitter = splitter;
        self.buf = buf;
        handled
    }

    /// Handles the MP1 objects in `bytes`, read from client `i`.
    pub(super) fn on_mp1(
        &mut self,
        i: usize,
        splitter: &mut Splitter,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), String> {
        let mut frames = splitter.frames(bytes, 1 << 20);
        while let Some(f) = frames.next_frame() {
            let seen = match f {
                Frame::Object(o) => classify(o),
                Frame::Garbage | Frame::Oversized => {
                    return Err(format!(
                        "c{i}: the server sent something that is not a JSON object"
                    ))
                }
                Frame::LineBreak => continue,
            };
            match seen {
                Seen::Chat { seq, sender } => self.on_delivery(i, seq, sender, now),
                Seen::LoginOk => self.logged_in(i),
                Seen::LoginRefused(why) => return Err(format!("c{i}: login refused: {why}")),
                Seen::Disconnect(why) => {
                    return Err(format!("c{i}: disconnected by the server: {why}"))
                }
                Seen::Other => {}
            }
        }
        Ok(())
    }
}

enum Seen {
    Chat { seq: u64, sender: usize },
    LoginOk,
    LoginRefused(String),
    Disconnect(String),
    Other,
}

/// Classifies a server object cheaply: most are join announcements, so
/// only the `mtp` prefix is looked at unless it is one we need.
fn classify(o: &[u8]) -> Seen {
    if o.starts_with(br#"{"mtp":"SendChatFromUser""#) {
        return match find(o, b"\"message\":\"").and_then(|i| parse_stamp(&o[i..])) {
            Some((seq, sender, _)) => Seen::Chat { seq, sender },
            None => Seen::Other,
        };
    }
    if o.starts_with(br#"{"mtp":"AssignUsername""#) {
        return if find(o, br#""status":"OK""#).is_some() {
            Seen::LoginOk
        } else {
            Seen::LoginRefused(String::from_utf8_lossy(o).into_owned())
        };
    }
    if o.starts_with(br#"{"mtp":"Disconnect""#) {
        return Seen::Disconnect(String::from_utf8_lossy(o).into_owned());
    }
    Seen::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_prefix() {
        assert!(matches!(
            classify(
                br#"{"mtp":"SendChatFromUser","data":{"name":"c1","message":"s=5;k=1;t=7;x"}}"#
            ),
            Seen::Chat { seq: 5, sender: 1 }
        ));
        assert!(matches!(
            classify(br#"{"mtp":"AssignUsername","data":{"name":"c1"},"status":"OK"}"#),
            Seen::LoginOk
        ));
        assert!(matches!(
            classify(br#"{"mtp":"AssignUsername","data":{"name":"c1"},"status":"DuplicateError"}"#),
            Seen::LoginRefused(_)
        ));
        assert!(matches!(
            classify(br#"{"mtp":"ServerMessage","data":{"message":"x"}}"#),
            Seen::Other
        ));
    }
}
