//! The MP1 wire protocol: message types, JSON decoding and pure-ASCII
//! encoding, stream framing, and the rules for user names.

pub mod ascii;
pub mod decode;
pub mod framing;
pub mod message;
pub mod name;
pub mod peer_message;

pub use decode::{decode_reply, decode_request, DecodeError};
pub use framing::{Cursor, Frame, Splitter};
pub use message::{AdminCommand, Reply, Request, Status};
pub use peer_message::{decode_peer, PeerMessage};

/// Appends `reply` as compact ASCII JSON followed by `\n`. Bare-framed
/// connections are sent the same bytes minus the final `\n`, so one
/// encoding serves every recipient.
pub fn encode_line(reply: &Reply, out: &mut Vec<u8>) {
    ascii::to_writer(out, reply);
    out.push(b'\n');
}

/// How a client frames its requests (`mp1 connect`, loadgen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFraming {
    /// Bare objects, as the draft's examples and the reference server
    /// (which counts braces from the first byte) expect.
    Bare,
    /// Each object ends with `\n`, for servers that read lines.
    Newline,
    /// Bare, unless the `Login` gets no answer within [`AUTO_FRAMING_WAIT`]:
    /// then a `\n` ends it and every later request.
    Auto,
}

/// [`RequestFraming::Auto`]: how long a bare `Login` may go unanswered.
pub const AUTO_FRAMING_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl std::str::FromStr for RequestFraming {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(RequestFraming::Auto),
            "bare" => Ok(RequestFraming::Bare),
            "newline" => Ok(RequestFraming::Newline),
            _ => Err(format!("framing must be auto, bare or newline, not {s:?}")),
        }
    }
}

/// Appends `request` as compact ASCII JSON, as a client sends it: bare, or
/// followed by `\n` for a newline-framed stream.
pub fn encode_request(request: &Request, newline: bool, out: &mut Vec<u8>) {
    ascii::to_writer(out, request);
    if newline {
        out.push(b'\n');
    }
}

/// The encoded reply as a `String` (tests and tools).
pub fn encode_to_string(reply: &Reply) -> String {
    let mut out = Vec::new();
    ascii::to_writer(&mut out, reply);
    String::from_utf8(out).expect("encoder writes ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_wire_format() {
        let cases = [
            (
                Reply::AssignUsername {
                    name: "ana".into(),
                    status: Status::Ok,
                },
                r#"{"mtp":"AssignUsername","data":{"name":"ana"},"status":"OK"}"#,
            ),
            (
                Reply::ProvideUserInfo {
                    name: "b".into(),
                    ip: "127.0.0.1".into(),
                    port: 4000,
                    status: Status::Ok,
                },
                r#"{"mtp":"ProvideUserInfo","data":{"name":"b","ip":"127.0.0.1","port":4000},"status":"OK"}"#,
            ),
            (
                Reply::SendChatFromUser {
                    name: "José".into(),
                    message: "hi\n".into(),
                },
                r#"{"mtp":"SendChatFromUser","data":{"name":"Jos\u00e9","message":"hi\n"}}"#,
            ),
            (
                Reply::SendOnlineList {
                    names: vec!["a".into(), "b".into()],
                },
                r#"{"mtp":"SendOnlineList","data":{"names":["a","b"]}}"#,
            ),
            (
                Reply::Admin {
                    command: AdminCommand::UnmuteUser,
                    name: "c".into(),
                    status: Status::UserAlreadyUnmuted,
                },
                r#"{"mtp":"UnmuteUser","data":{"name":"c"},"status":"UserAlreadyUnmuted"}"#,
            ),
            (
                Reply::disconnect("Server closing."),
                r#"{"mtp":"Disconnect","data":{"message":"Server closing."}}"#,
            ),
        ];
        for (reply, want) in cases {
            assert_eq!(encode_to_string(&reply), want);
        }
        let mut line = Vec::new();
        encode_line(&Reply::server_message("x"), &mut line);
        assert_eq!(line.last(), Some(&b'\n'));
    }
}
