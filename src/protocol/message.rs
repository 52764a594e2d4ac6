//! The MP1 server-client messages (draft sections 2.2 and 2.3) as Rust
//! types: [`Request`] is what a client sends, [`Reply`] what the server
//! sends back, [`Status`] the `status` field of replies.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// A serverbound message (draft 2.2), already checked for field types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `name` is `None` when it was missing or not a string: the server
    /// still answers with `AssignUsername` `InvalidUsername`.
    Login {
        name: Option<String>,
    },
    SetUsername {
        name: Option<String>,
    },
    RequestUserInfo {
        name: String,
    },
    RequestLocalTime,
    WhisperToUser {
        to: Vec<String>,
        message: String,
    },
    SendChat {
        message: String,
    },
    RequestOnlineList,
    Disconnect,
    KickUser {
        name: String,
    },
    MuteUser {
        name: String,
    },
    UnmuteUser {
        name: String,
    },
    SetAsAdmin {
        name: String,
    },
}

/// The `status` of a reply. `InvalidUsername` is our extension (see
/// docs/PROTOCOL.md); clients treat any status but `OK` as a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    DuplicateError,
    InvalidUsername,
    UserDoesNotExist,
    NotAdminError,
    UserAlreadyMuted,
    UserAlreadyUnmuted,
    AlreadyAdmin,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::DuplicateError => "DuplicateError",
            Status::InvalidUsername => "InvalidUsername",
            Status::UserDoesNotExist => "UserDoesNotExist",
            Status::NotAdminError => "NotAdminError",
            Status::UserAlreadyMuted => "UserAlreadyMuted",
            Status::UserAlreadyUnmuted => "UserAlreadyUnmuted",
            Status::AlreadyAdmin => "AlreadyAdmin",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "OK" => Status::Ok,
            "DuplicateError" => Status::DuplicateError,
            "InvalidUsername" => Status::InvalidUsername,
            "UserDoesNotExist" => Status::UserDoesNotExist,
            "NotAdminError" => Status::NotAdminError,
            "UserAlreadyMuted" => Status::UserAlreadyMuted,
            "UserAlreadyUnmuted" | "UserNotMuted" => Status::UserAlreadyUnmuted,
            "AlreadyAdmin" => Status::AlreadyAdmin,
            _ => return None,
        })
    }
}

/// Which admin command a status reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    KickUser,
    MuteUser,
    UnmuteUser,
    SetAsAdmin,
}

impl AdminCommand {
    pub fn mtp(self) -> &'static str {
        match self {
            AdminCommand::KickUser => "KickUser",
            AdminCommand::MuteUser => "MuteUser",
            AdminCommand::UnmuteUser => "UnmuteUser",
            AdminCommand::SetAsAdmin => "SetAsAdmin",
        }
    }
}

/// A clientbound message (draft 2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    AssignUsername {
        name: String,
        status: Status,
    },
    SetUsername {
        name: String,
        status: Status,
    },
    ProvideUserInfo {
        name: String,
        ip: String,
        port: u16,
        status: Status,
    },
    SendLocalTime {
        time: String,
    },
    WhisperFromUser {
        from: String,
        message: String,
    },
    SendChatFromUser {
        name: String,
        message: String,
    },
    SendOnlineList {
        names: Vec<String>,
    },
    /// Status reply to an admin command; `name` is the target.
    Admin {
        command: AdminCommand,
        name: String,
        status: Status,
    },
    ServerMessage {
        message: String,
    },
    Disconnect {
        message: String,
    },
}

impl Reply {
    pub fn server_message(message: impl Into<String>) -> Reply {
        Reply::ServerMessage {
            message: message.into(),
        }
    }

    pub fn disconnect(message: impl Into<String>) -> Reply {
        Reply::Disconnect {
            message: message.into(),
        }
    }

    pub fn mtp(&self) -> &'static str {
        match self {
            Reply::AssignUsername { .. } => "AssignUsername",
            Reply::SetUsername { .. } => "SetUsername",
            Reply::ProvideUserInfo { .. } => "ProvideUserInfo",
            Reply::SendLocalTime { .. } => "SendLocalTime",
            Reply::WhisperFromUser { .. } => "WhisperFromUser",
            Reply::SendChatFromUser { .. } => "SendChatFromUser",
            Reply::SendOnlineList { .. } => "SendOnlineList",
            Reply::Admin { command, .. } => command.mtp(),
            Reply::ServerMessage { .. } => "ServerMessage",
            Reply::Disconnect { .. } => "Disconnect",
        }
    }

    fn status(&self) -> Option<Status> {
        match self {
            Reply::AssignUsername { status, .. }
            | Reply::SetUsername { status, .. }
            | Reply::ProvideUserInfo { status, .. }
            | Reply::Admin { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl Request {
    pub fn mtp(&self) -> &'static str {
        match self {
            Request::Login { .. } => "Login",
            Request::SetUsername { .. } => "SetUsername",
            Request::RequestUserInfo { .. } => "RequestUserInfo",
            Request::RequestLocalTime => "RequestLocalTime",
            Request::WhisperToUser { .. } => "WhisperToUser",
            Request::SendChat { .. } => "SendChat",
            Request::RequestOnlineList => "RequestOnlineList",
            Request::Disconnect => "Disconnect",
            Request::KickUser { .. } => "KickUser",
            Request::MuteUser { .. } => "MuteUser",
            Request::UnmuteUser { .. } => "UnmuteUser",
            Request::SetAsAdmin { .. } => "SetAsAdmin",
        }
    }
}

/// The `data` object of a request (what a client sends).
struct RequestData<'a>(&'a Request);

impl Serialize for RequestData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            Request::Login { name } | Request::SetUsername { name } => {
                m.serialize_entry("name", name.as_deref().unwrap_or(""))?
            }
            Request::RequestUserInfo { name }
            | Request::KickUser { name }
            | Request::MuteUser { name }
            | Request::UnmuteUser { name }
            | Request::SetAsAdmin { name } => m.serialize_entry("name", name)?,
            Request::WhisperToUser { to, message } => {
                m.serialize_entry("to", to)?;
                m.serialize_entry("message", message)?;
            }
            Request::SendChat { message } => m.serialize_entry("message", message)?,
            Request::RequestLocalTime | Request::RequestOnlineList | Request::Disconnect => {}
        }
        m.end()
    }
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_envelope(s, self.mtp(), &RequestData(self), None)
    }
}

/// The `data` object of a reply, borrowed from it.
struct Data<'a>(&'a Reply);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            Reply::AssignUsername { name, .. }
            | Reply::SetUsername { name, .. }
            | Reply::Admin { name, .. } => m.serialize_entry("name", name)?,
            Reply::ProvideUserInfo { name, ip, port, .. } => {
                m.serialize_entry("name", name)?;
                m.serialize_entry("ip", ip)?;
                m.serialize_entry("port", port)?;
            }
            Reply::SendLocalTime { time } => m.serialize_entry("time", time)?,
            Reply::WhisperFromUser { from, message } => {
                m.serialize_entry("from", from)?;
                m.serialize_entry("message", message)?;
            }
            Reply::SendChatFromUser { name, message } => {
                m.serialize_entry("name", name)?;
                m.serialize_entry("message", message)?;
            }
            Reply::SendOnlineList { names } => m.serialize_entry("names", names)?,
            Reply::ServerMessage { message } | Reply::Disconnect { message } => {
                m.serialize_entry("message", message)?
            }
        }
        m.end()
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_envelope(s, self.mtp(), &Data(self), self.status())
    }
}

/// The envelope every MP1 message shares, in this key order:
/// `{"mtp": ..., "data": {...}, "status": ...}` (no `status` if `None`).
pub(crate) fn serialize_envelope<S: Serializer>(
    s: S,
    mtp: &str,
    data: &impl Serialize,
    status: Option<Status>,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(None)?;
    m.serialize_entry("mtp", mtp)?;
    m.serialize_entry("data", data)?;
    if let Some(status) = status {
        m.serialize_entry("status", status.as_str())?;
    }
    m.end()
}
