//! Turning one framed JSON object into a typed message.
//!
//! Tolerant in what it accepts (docs/PROTOCOL.md): unknown fields anywhere are
//! ignored, a missing `data` counts as `{}`, a single string stands for a
//! list of names, and a string of digits for a port. Every rejection names
//! the problem so the server can tell the client what was wrong.

use super::message::{AdminCommand, Reply, Request, Status};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// Why an object could not be turned into a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON at all, or not valid UTF-8: counts towards the limit of
    /// unparsable inputs in a row.
    Malformed(String),
    /// Well-formed JSON that is not a message we know.
    Invalid(String),
}

impl DecodeError {
    pub fn is_malformed(&self) -> bool {
        matches!(self, DecodeError::Malformed(_))
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(why) => write!(f, "Invalid JSON: {why}."),
            DecodeError::Invalid(why) => write!(f, "Invalid message: {why}."),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    mtp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    status: Option<&'a RawValue>,
}

/// The fields any MP1 message may carry in `data`, still undecoded.
#[derive(Default, Deserialize)]
struct RawFields<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    to: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ip: Option<&'a RawValue>,
    #[serde(borrow, default)]
    port: Option<&'a RawValue>,
    #[serde(borrow, default)]
    time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    names: Option<&'a RawValue>,
    #[serde(borrow, default)]
    from: Option<&'a RawValue>,
}

/// A string that borrows from the input when it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// One decoded object: its `mtp`, its `status` if any, and its `data`
/// fields, ready to be read as the message type requires.
pub struct Fields<'a> {
    pub mtp: Cow<'a, str>,
    /// The top-level `status`, if it is a string.
    pub status: Option<String>,
    raw: RawFields<'a>,
}

impl<'a> Fields<'a> {
    /// Splits `bytes` (one JSON object) into `mtp` and `data` fields.
    pub fn parse(bytes: &'a [u8]) -> Result<Fields<'a>, DecodeError> {
        let env: Envelope<'a> = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                DecodeError::Invalid(strip_position(&e))
            } else {
                DecodeError::Malformed(strip_position(&e))
            }
        })?;
        let mtp = match env.mtp {
            None => return Err(invalid("missing field \"mtp\"")),
            Some(raw) => match serde_json::from_str::<Text>(raw.get()) {
                Ok(t) => t.0,
                Err(_) => return Err(invalid("field \"mtp\" must be a string")),
            },
        };
        let raw = match env.data {
            None => RawFields::default(),
            Some(raw) if raw.get() == "null" => RawFields::default(),
            // serde would also read a struct from an array: insist on `{`.
            Some(raw) if raw.get().starts_with('{') => {
                serde_json::from_str(raw.get()).map_err(|e| match duplicate_field(&e) {
                    Some(f) => invalid(&format!("{mtp}: field \"data.{f}\" appears twice")),
                    None => invalid_data(&mtp),
                })?
            }
            Some(_) => return Err(invalid_data(&mtp)),
        };
        let status = env
            .status
            .and_then(|raw| serde_json::from_str::<Text>(raw.get()).ok())
            .map(|t| t.0.into_owned());
        Ok(Fields { mtp, status, raw })
    }

    fn get(&self, field: &'static str) -> Option<&'a RawValue> {
        match field {
            "name" => self.raw.name,
            "to" => self.raw.to,
            "message" => self.raw.message,
            "ip" => self.raw.ip,
            "port" => self.raw.port,
            "time" => self.raw.time,
            "names" => self.raw.names,
            "from" => self.raw.from,
            _ => None,
        }
    }

    fn missing(&self, field: &str) -> DecodeError {
        DecodeError::Invalid(format!("{}: missing field \"data.{field}\"", self.mtp))
    }

    fn mistyped(&self, field: &str, expected: &str) -> DecodeError {
        DecodeError::Invalid(format!(
            "{}: field \"data.{field}\" must be {expected}",
            self.mtp
        ))
    }

    /// A required string field.
    pub fn string(&self, field: &'static str) -> Result<String, DecodeError> {
        let raw = self.get(field).ok_or_else(|| self.missing(field))?;
        serde_json::from_str::<Text>(raw.get())
            .map(|t| t.0.into_owned())
            .map_err(|_| self.mistyped(field, "a string"))
    }

    /// A string field that may be absent or of another type (`None` then).
    pub fn lenient_string(&self, field: &'static str) -> Option<String> {
        let raw = self.get(field)?;
        serde_json::from_str::<Text>(raw.get())
            .ok()
            .map(|t| t.0.into_owned())
    }

    /// A list of strings; one string alone counts as a list of one.
    pub fn string_list(&self, field: &'static str) -> Result<Vec<String>, DecodeError> {
        let raw = self.get(field).ok_or_else(|| self.missing(field))?;
        if let Ok(list) = serde_json::from_str::<Vec<String>>(raw.get()) {
            return Ok(list);
        }
        serde_json::from_str::<Text>(raw.get())
            .map(|t| vec![t.0.into_owned()])
            .map_err(|_| self.mistyped(field, "a list of strings"))
    }

    /// A port: an integer 0..=65535 or a string of digits.
    pub fn port(&self, field: &'static str) -> Result<u16, DecodeError> {
        let raw = self.get(field).ok_or_else(|| self.missing(field))?;
        if let Ok(n) = serde_json::from_str::<u16>(raw.get()) {
            return Ok(n);
        }
        serde_json::from_str::<Text>(raw.get())
            .ok()
            .and_then(|t| t.0.trim().parse::<u16>().ok())
            .ok_or_else(|| self.mistyped(field, "a port number"))
    }

    /// A port that may be absent or unreadable (`None` then).
    pub fn lenient_port(&self, field: &'static str) -> Option<u16> {
        self.get(field)?;
        self.port(field).ok()
    }
}

/// The field serde found twice in an object, if that is what `e` says.
fn duplicate_field(e: &serde_json::Error) -> Option<String> {
    let text = e.to_string();
    let rest = text.strip_prefix("duplicate field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

fn invalid_data(mtp: &str) -> DecodeError {
    DecodeError::Invalid(format!("{mtp}: field \"data\" must be an object"))
}

fn invalid(why: &str) -> DecodeError {
    DecodeError::Invalid(why.to_string())
}

/// serde_json appends " at line L column C"; the client knows where it was.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Decodes one serverbound message.
pub fn decode_request(bytes: &[u8]) -> Result<Request, DecodeError> {
    let f = Fields::parse(bytes)?;
    Ok(match f.mtp.as_ref() {
        "Login" => Request::Login {
            name: f.lenient_string("name"),
        },
        "SetUsername" => Request::SetUsername {
            name: f.lenient_string("name"),
        },
        "RequestUserInfo" => Request::RequestUserInfo {
            name: f.string("name")?,
        },
        "RequestLocalTime" => Request::RequestLocalTime,
        "WhisperToUser" => Request::WhisperToUser {
            to: f.string_list("to")?,
            message: f.string("message")?,
        },
        "SendChat" => Request::SendChat {
            message: f.string("message")?,
        },
        "RequestOnlineList" => Request::RequestOnlineList,
        "Disconnect" => Request::Disconnect,
        "KickUser" => Request::KickUser {
            name: f.string("name")?,
        },
        "MuteUser" => Request::MuteUser {
            name: f.string("name")?,
        },
        "UnmuteUser" => Request::UnmuteUser {
            name: f.string("name")?,
        },
        "SetAsAdmin" => Request::SetAsAdmin {
            name: f.string("name")?,
        },
        other => {
            return Err(DecodeError::Invalid(format!(
                "unknown message type {}",
                serde_json::to_string(other).unwrap_or_default()
            )))
        }
    })
}

/// Decodes one clientbound message (what a client reads from a server).
/// Lenient like the server: a missing field reads as empty.
pub fn decode_reply(bytes: &[u8]) -> Result<Reply, DecodeError> {
    let f = Fields::parse(bytes)?;
    let text = |field| f.lenient_string(field).unwrap_or_default();
    let status = || {
        f.status
            .as_deref()
            .map(|s| {
                Status::parse(s)
                    .ok_or_else(|| DecodeError::Invalid(format!("unknown status {s:?}")))
            })
            .unwrap_or(Ok(Status::Ok))
    };
    let admin = |command| -> Result<Reply, DecodeError> {
        Ok(Reply::Admin {
            command,
            name: text("name"),
            status: status()?,
        })
    };
    Ok(match f.mtp.as_ref() {
        "AssignUsername" => Reply::AssignUsername {
            name: text("name"),
            status: status()?,
        },
        "SetUsername" => Reply::SetUsername {
            name: text("name"),
            status: status()?,
        },
        "ProvideUserInfo" => Reply::ProvideUserInfo {
            name: text("name"),
            ip: text("ip"),
            port: f.lenient_port("port").unwrap_or(0),
            status: status()?,
        },
        "SendLocalTime" => Reply::SendLocalTime { time: text("time") },
        "WhisperFromUser" => Reply::WhisperFromUser {
            from: text("from"),
            message: text("message"),
        },
        "SendChatFromUser" => Reply::SendChatFromUser {
            name: text("name"),
            message: text("message"),
        },
        "SendOnlineList" => Reply::SendOnlineList {
            names: f.string_list("names").unwrap_or_default(),
        },
        "KickUser" => admin(AdminCommand::KickUser)?,
        "MuteUser" => admin(AdminCommand::MuteUser)?,
        "UnmuteUser" => admin(AdminCommand::UnmuteUser)?,
        "SetAsAdmin" => admin(AdminCommand::SetAsAdmin)?,
        "ServerMessage" => Reply::ServerMessage {
            message: text("message"),
        },
        "Disconnect" => Reply::Disconnect {
            message: text("message"),
        },
        other => {
            return Err(DecodeError::Invalid(format!(
                "unknown message type {other:?}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<Request, DecodeError> {
        decode_request(s.as_bytes())
    }

    #[test]
    fn every_request_kind() {
        assert_eq!(
            dec(r#"{"mtp": "Login", "data": {"name": "ana"}}"#),
            Ok(Request::Login {
                name: Some("ana".into())
            })
        );
        assert_eq!(
            dec(r#"{"mtp":"SetUsername","data":{"name":"b"}}"#),
            Ok(Request::SetUsername {
                name: Some("b".into())
            })
        );
        assert_eq!(
            dec(r#"{"mtp":"RequestUserInfo","data":{"name":"b"}}"#),
            Ok(Request::RequestUserInfo { name: "b".into() })
        );
        assert_eq!(
            dec(r#"{"mtp":"RequestLocalTime","data":{}}"#),
            Ok(Request::RequestLocalTime)
        );
        assert_eq!(
            dec(r#"{"mtp":"WhisperToUser","data":{"to":["a","b"],"message":"m","from":"x"}}"#),
            Ok(Request::WhisperToUser {
                to: vec!["a".into(), "b".into()],
                message: "m".into()
            })
        );
        assert_eq!(
            dec(r#"{"mtp":"SendChat","data":{"message":"hi"}}"#),
            Ok(Request::SendChat {
                message: "hi".into()
            })
        );
        assert_eq!(
            dec(r#"{"mtp":"RequestOnlineList"}"#),
            Ok(Request::RequestOnlineList)
        );
        assert_eq!(
            dec(r#"{"mtp":"Disconnect","data":{}}"#),
            Ok(Request::Disconnect)
        );
        for (mtp, want) in [
            ("KickUser", Request::KickUser { name: "z".into() }),
            ("MuteUser", Request::MuteUser { name: "z".into() }),
            ("UnmuteUser", Request::UnmuteUser { name: "z".into() }),
            ("SetAsAdmin", Request::SetAsAdmin { name: "z".into() }),
        ] {
            let s = format!(r#"{{"mtp":"{mtp}","data":{{"name":"z"}}}}"#);
            assert_eq!(dec(&s), Ok(want));
        }
    }

    #[test]
    fn tolerant_inputs() {
        assert_eq!(
            dec(r#"{"mtp":"WhisperToUser","data":{"to":"bob","message":"m"}}"#),
            Ok(Request::WhisperToUser {
                to: vec!["bob".into()],
                message: "m".into()
            })
        );
        assert_eq!(
            dec(r#"{"data":{"message":"\u00e9\ud83d\ude00\n"},"mtp":"SendChat","extra":[1]}"#),
            Ok(Request::SendChat {
                message: "é😀\n".into()
            })
        );
        assert_eq!(
            dec(r#"{"mtp":"Login","data":{"name":5}}"#),
            Ok(Request::Login { name: None })
        );
        assert_eq!(dec(r#"{"mtp":"Login"}"#), Ok(Request::Login { name: None }));
    }

    #[test]
    fn a_field_given_twice_is_named() {
        assert_eq!(
            dec(r#"{"mtp":"SendChat","data":{"message":"a","message":"b"}}"#),
            Err(DecodeError::Invalid(
                "SendChat: field \"data.message\" appears twice".into()
            ))
        );
    }

    #[test]
    fn rejections_name_the_problem() {
        let e = dec(r#"{"mtp":"SendChat","data":{}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid message: SendChat: missing field \"data.message\"."
        );
        let e = dec(r#"{"mtp":"SendChat","data":{"message":3}}"#).unwrap_err();
        assert!(e.to_string().contains("must be a string"), "{e}");
        let e = dec(r#"{"mtp":"Fly","data":{}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid message: unknown message type \"Fly\"."
        );
        assert!(!e.is_malformed());
        let e = dec(r#"{"data":{}}"#).unwrap_err();
        assert!(e.to_string().contains("missing field \"mtp\""));
        let e = dec(r#"{"mtp":1}"#).unwrap_err();
        assert!(e.to_string().contains("\"mtp\" must be a string"));
        let e = dec(r#"{"mtp":"SendChat","data":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("\"data\" must be an object"));
        let e = dec(r#"{"mtp":"KickUser","data":{"name":null}}"#).unwrap_err();
        assert!(e.to_string().contains("missing field \"data.name\""));
    }

    #[test]
    fn replies_decode_back() {
        use crate::protocol::encode_to_string;
        let replies = [
            Reply::AssignUsername {
                name: "a".into(),
                status: Status::DuplicateError,
            },
            Reply::SetUsername {
                name: "b".into(),
                status: Status::Ok,
            },
            Reply::ProvideUserInfo {
                name: "b".into(),
                ip: "1.2.3.4".into(),
                port: 5,
                status: Status::Ok,
            },
            Reply::SendLocalTime {
                time: "01:02:03".into(),
            },
            Reply::WhisperFromUser {
                from: "x".into(),
                message: "y".into(),
            },
            Reply::SendChatFromUser {
                name: "x".into(),
                message: "é".into(),
            },
            Reply::SendOnlineList {
                names: vec!["a".into()],
            },
            Reply::Admin {
                command: AdminCommand::SetAsAdmin,
                name: "z".into(),
                status: Status::AlreadyAdmin,
            },
            Reply::server_message("m"),
            Reply::disconnect("bye"),
        ];
        for r in replies {
            assert_eq!(decode_reply(encode_to_string(&r).as_bytes()), Ok(r));
        }
        // The draft's figure spelling, and a reply with data {}.
        assert_eq!(
            decode_reply(br#"{"mtp":"UnmuteUser","data":{},"status":"UserNotMuted"}"#),
            Ok(Reply::Admin {
                command: AdminCommand::UnmuteUser,
                name: "".into(),
                status: Status::UserAlreadyUnmuted
            })
        );
    }

    #[test]
    fn malformed_inputs() {
        assert!(dec(r#"{"mtp": "Login",}"#).unwrap_err().is_malformed());
        assert!(dec("{mtp}").unwrap_err().is_malformed());
        assert!(
            decode_request(b"{\"mtp\":\"SendChat\",\"data\":{\"message\":\"\xff\"}}")
                .unwrap_err()
                .is_malformed()
        );
    }
}
