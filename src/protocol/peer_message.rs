//! The peer-to-peer messages (draft 2.4, plus the `SetUsername` /
//! `SetUsernameResponse` pair that peers written against the draft send),
//! with their JSON decoding and pure-ASCII encoding. One datagram carries
//! one message.
//!
//! Extensions (docs/PROTOCOL.md, "The LAN bridge"), which classic peers
//! never send and ignore: `name` on `SendChat`/`Whisper` (the author a
//! bridge relays for), `to` on `Whisper` (a server user behind the bridge
//! it is sent to), and `RequestOnlineList` / `SendOnlineList` (ask a bridge
//! who is on its server).

use super::decode::{DecodeError, Fields};
use super::message::{serialize_envelope, Status};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMessage {
    /// `ip`/`port` of the querying peer; absent ones mean the datagram's
    /// source.
    Discovery {
        ip: Option<String>,
        port: Option<u16>,
    },
    DiscoveryResponse {
        ip: Option<String>,
        port: Option<u16>,
        name: String,
    },
    Handshake {
        ip: Option<String>,
        port: Option<u16>,
        name: String,
    },
    /// `name` is the responder's own name.
    HandshakeResponse {
        name: String,
        status: Status,
    },
    /// `name` is our extension for chat relayed by a bridge: who wrote it.
    SendChat {
        message: String,
        name: Option<String>,
    },
    /// `name` as in `SendChat`; `to`, our extension: a user behind the
    /// receiving bridge (absent: the receiving peer itself).
    Whisper {
        message: String,
        name: Option<String>,
        to: Option<String>,
    },
    /// Extension: asks a bridge for the users of its server.
    RequestOnlineList,
    /// Extension: a bridge's server users (a long list takes several).
    SendOnlineList {
        names: Vec<String>,
    },
    Disconnect,
    SetUsername {
        name: String,
    },
    SetUsernameResponse {
        name: String,
        status: Status,
    },
}

impl PeerMessage {
    pub fn mtp(&self) -> &'static str {
        match self {
            PeerMessage::Discovery { .. } => "Discovery",
            PeerMessage::DiscoveryResponse { .. } => "DiscoveryResponse",
            PeerMessage::Handshake { .. } => "Handshake",
            PeerMessage::HandshakeResponse { .. } => "HandshakeResponse",
            PeerMessage::SendChat { .. } => "SendChat",
            PeerMessage::Whisper { .. } => "Whisper",
            PeerMessage::Disconnect => "Disconnect",
            PeerMessage::SetUsername { .. } => "SetUsername",
            PeerMessage::SetUsernameResponse { .. } => "SetUsernameResponse",
            PeerMessage::RequestOnlineList => "RequestOnlineList",
            PeerMessage::SendOnlineList { .. } => "SendOnlineList",
        }
    }

    /// Encodes as compact pure-ASCII JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        super::ascii::to_writer(&mut out, self);
        out
    }
}

fn status_of(f: &Fields<'_>) -> Result<Status, DecodeError> {
    let s = f
        .status
        .as_deref()
        .ok_or_else(|| DecodeError::Invalid(format!("{}: missing field \"status\"", f.mtp)))?;
    Status::parse(s).ok_or_else(|| DecodeError::Invalid(format!("{}: unknown status {s:?}", f.mtp)))
}

/// Decodes one peer datagram.
pub fn decode_peer(bytes: &[u8]) -> Result<PeerMessage, DecodeError> {
    let f = Fields::parse(bytes)?;
    Ok(match f.mtp.as_ref() {
        "Discovery" => PeerMessage::Discovery {
            ip: f.lenient_string("ip"),
            port: f.lenient_port("port"),
        },
        "DiscoveryResponse" => PeerMessage::DiscoveryResponse {
            ip: f.lenient_string("ip"),
            port: f.lenient_port("port"),
            name: f.string("name")?,
        },
        "Handshake" => PeerMessage::Handshake {
            ip: f.lenient_string("ip"),
            port: f.lenient_port("port"),
            name: f.string("name")?,
        },
        "HandshakeResponse" => PeerMessage::HandshakeResponse {
            name: f.lenient_string("name").unwrap_or_default(),
            status: status_of(&f)?,
        },
        "SendChat" => PeerMessage::SendChat {
            message: f.string("message")?,
            name: f.lenient_string("name"),
        },
        "Whisper" => PeerMessage::Whisper {
            message: f.string("message")?,
            name: f.lenient_string("name"),
            to: f.lenient_string("to"),
        },
        "RequestOnlineList" => PeerMessage::RequestOnlineList,
        "SendOnlineList" => PeerMessage::SendOnlineList {
            names: f.string_list("names")?,
        },
        "Disconnect" => PeerMessage::Disconnect,
        "SetUsername" => PeerMessage::SetUsername {
            name: f.string("name")?,
        },
        "SetUsernameResponse" => PeerMessage::SetUsernameResponse {
            name: f.lenient_string("name").unwrap_or_default(),
            status: status_of(&f)?,
        },
        other => {
            return Err(DecodeError::Invalid(format!(
                "unknown peer message type {other:?}"
            )))
        }
    })
}

struct Data<'a>(&'a PeerMessage);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            PeerMessage::Discovery { ip, port } => {
                m.serialize_entry("ip", ip.as_deref().unwrap_or(""))?;
                m.serialize_entry("port", &port.unwrap_or(0))?;
            }
            PeerMessage::DiscoveryResponse { ip, port, name }
            | PeerMessage::Handshake { ip, port, name } => {
                m.serialize_entry("ip", ip.as_deref().unwrap_or(""))?;
                m.serialize_entry("port", &port.unwrap_or(0))?;
                m.serialize_entry("name", name)?;
            }
            PeerMessage::HandshakeResponse { name, .. }
            | PeerMessage::SetUsername { name }
            | PeerMessage::SetUsernameResponse { name, .. } => m.serialize_entry("name", name)?,
            PeerMessage::SendChat { message, name } => {
                m.serialize_entry("message", message)?;
                if let Some(name) = name {
                    m.serialize_entry("name", name)?;
                }
            }
            PeerMessage::Whisper { message, name, to } => {
                m.serialize_entry("message", message)?;
                if let Some(name) = name {
                    m.serialize_entry("name", name)?;
                }
                if let Some(to) = to {
                    m.serialize_entry("to", to)?;
                }
            }
            PeerMessage::SendOnlineList { names } => m.serialize_entry("names", names)?,
            PeerMessage::Disconnect | PeerMessage::RequestOnlineList => {}
        }
        m.end()
    }
}

impl Serialize for PeerMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let status = match self {
            PeerMessage::HandshakeResponse { status, .. }
            | PeerMessage::SetUsernameResponse { status, .. } => Some(*status),
            _ => None,
        };
        serialize_envelope(s, self.mtp(), &Data(self), status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: PeerMessage) {
        let bytes = m.encode();
        assert!(bytes.is_ascii());
        assert_eq!(decode_peer(&bytes), Ok(m));
    }

    #[test]
    fn every_peer_message_round_trips() {
        let ip = || Some("10.0.0.2".to_string());
        round_trip(PeerMessage::Discovery {
            ip: ip(),
            port: Some(15151),
        });
        round_trip(PeerMessage::DiscoveryResponse {
            ip: ip(),
            port: Some(1),
            name: "a".into(),
        });
        round_trip(PeerMessage::Handshake {
            ip: ip(),
            port: Some(2),
            name: "日本".into(),
        });
        round_trip(PeerMessage::HandshakeResponse {
            name: "b".into(),
            status: Status::DuplicateError,
        });
        round_trip(PeerMessage::SendChat {
            message: "hi 😀".into(),
            name: None,
        });
        round_trip(PeerMessage::SendChat {
            message: "x".into(),
            name: Some("ana".into()),
        });
        round_trip(PeerMessage::Whisper {
            message: "psst".into(),
            name: None,
            to: None,
        });
        round_trip(PeerMessage::Whisper {
            message: "psst".into(),
            name: Some("ana".into()),
            to: Some("erin".into()),
        });
        round_trip(PeerMessage::RequestOnlineList);
        round_trip(PeerMessage::SendOnlineList {
            names: vec!["erin".into(), "fred".into()],
        });
        round_trip(PeerMessage::Disconnect);
        round_trip(PeerMessage::SetUsername { name: "c".into() });
        round_trip(PeerMessage::SetUsernameResponse {
            name: "c".into(),
            status: Status::Ok,
        });
    }

    #[test]
    fn draft_examples_and_tolerance() {
        assert_eq!(
            PeerMessage::Handshake {
                ip: Some("192.168.0.1".into()),
                port: Some(15151),
                name: "new_peer".into()
            }
            .encode(),
            br#"{"mtp":"Handshake","data":{"ip":"192.168.0.1","port":15151,"name":"new_peer"}}"#
        );
        // The draft's DiscoveryResponse table types port as a string.
        assert_eq!(
            decode_peer(br#"{"mtp": "DiscoveryResponse", "data": {"ip": "1.2.3.4", "port": "15151", "name": "u"}}"#),
            Ok(PeerMessage::DiscoveryResponse { ip: Some("1.2.3.4".into()), port: Some(15151), name: "u".into() })
        );
        assert_eq!(
            decode_peer(br#"{"mtp": "Discovery", "data": {}}"#),
            Ok(PeerMessage::Discovery {
                ip: None,
                port: None
            })
        );
        assert!(decode_peer(br#"{"mtp": "HandshakeResponse", "data": {"name": "x"}}"#).is_err());
        assert!(decode_peer(br#"{"mtp": "Whisper", "data": {}}"#).is_err());
        assert!(decode_peer(b"not json").is_err());
    }
}
