//! MP1 over WebSocket (`--transport ws`): the upgrade request to mp1d's
//! `--http` address with the login in the first frame, each request a
//! masked text frame, and reading the server's 101 and then its frames,
//! whose text is MP1 (read by the `tcp` transport's reader). The frames
//! are the library's codec (`mp1::websocket`).

use super::Runner;
use mp1::protocol::{encode_request, Request};
use mp1::websocket::{decode_server_frame, masked_frame, OP_CLOSE, OP_TEXT};
use std::net::SocketAddr;

/// Client `i`'s upgrade request to `target`, and its login.
pub(super) fn login(i: usize, target: SocketAddr) -> Vec<u8> {
    let mut out = format!(
        "GET /ws HTTP/1.1\r\nHost: {target}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: bG9hZGdlbi1sb2FkZ2VuIQ==\r\n\r\n"
    )
    .into_bytes();
    let login = Request::Login {
        name: Some(format!("c{i}")),
    };
    request(&login, &mut out);
    out
}

/// Appends a chat request.
pub(super) fn chat(message: String, out: &mut Vec<u8>) {
    request(&Request::SendChat { message }, out);
}

/// Appends `r` as one masked, final text frame.
fn request(r: &Request, out: &mut Vec<u8>) {
    let mut json = Vec::new();
    encode_request(r, false, &mut json);
    let mask = [0x6d, 0x70, 0x31, 0x21];
    masked_frame(OP_TEXT, true, mask, &json, out);
}

impl Runner<'_> {
    /// Handles the WebSocket bytes in `buf[..n]`, read from client `i`:
    /// the server's 101, then frames whose text is MP1.
    pub(super) fn on_ws(&mut self, i: usize, n: usize, now: u64) -> Result<(), String> {
        let mut bytes = std::mem::take(&mut self.clients[i].partial);
        bytes.extend_from_slice(&self.buf[..n]);
        let mut at = 0;
        if !self.clients[i].ws_open {
            let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                self.clients[i].partial = bytes;
                return Ok(());
            };
            if !bytes.starts_with(b"HTTP/1.1 101") {
                let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
                return Err(format!("c{i}: no WebSocket: {head}"));
            }
            self.clients[i].ws_open = true;
            at = end + 4;
        }
        let mut splitter = std::mem::take(&mut self.clients[i].splitter);
        let result = loop {
            let f = match decode_server_frame(&bytes[at..]) {
                Ok(Some(f)) => f,
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("c{i}: {e}")),
            };
            let payload = &bytes[at + f.payload.start..at + f.payload.end];
            at += f.len;
            match f.opcode {
                OP_TEXT => {
                    if let Err(e) = self.on_mp1(i, &mut splitter, payload, now) {
                        break Err(e);
                    }
                }
                OP_CLOSE => break Err(format!("c{i}: the server closed the WebSocket")),
                _ => {}
            }
        };
        self.clients[i].splitter = splitter;
        bytes.drain(..at);
        self.clients[i].partial = bytes;
        result
    }
}
