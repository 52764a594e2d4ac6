//! Several mp1d nodes serving one chat (`--cluster`, docs/design/cluster.md).
//!
//! The narrow interface between the chat and whatever engine shares its
//! state lives here: the chat hands the engine [`Proposal`]s (a state
//! change a client asked for), and applies the [`Event`]s the engine
//! delivers, in the one order every node sees; a proposal the engine turns
//! down comes back with a [`Refusal`]. The Redis engine ([`backplane`],
//! over [`redis`] with [`scripts`]) is one implementation; another (NATS
//! JetStream, say) would implement the same three types without touching
//! `Chat`.

pub mod backplane;
pub mod local;
pub mod redis;
pub mod scripts;
pub mod sentinel;

use crate::protocol::{AdminCommand, Status};

/// A state change a client asked for. `sid` names the client's session
/// cluster-wide, so that a late answer cannot be taken for a newer
/// session's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proposal {
    Login {
        name: String,
        sid: String,
        /// The client's address (`ip:port`), for `RequestUserInfo`.
        addr: String,
        /// Registering again after the engine lost its state: the login seq
        /// and admin role the user had.
        restore: Option<(u64, bool)>,
    },
    Rename {
        old: String,
        new: String,
        sid: String,
    },
    Chat {
        name: String,
        sid: String,
        message: String,
    },
    Whisper {
        from: String,
        sid: String,
        to: Vec<String>,
        message: String,
    },
    Admin {
        by: String,
        sid: String,
        command: AdminCommand,
        target: String,
    },
    Logout {
        name: String,
        sid: String,
    },
    /// Make the earliest login admin if nobody is.
    Elect,
}

impl Proposal {
    /// What kind of change it is, for the log (never the text of a chat).
    pub fn kind(&self) -> &'static str {
        match self {
            Proposal::Login { .. } => "login",
            Proposal::Rename { .. } => "rename",
            Proposal::Chat { .. } => "chat",
            Proposal::Whisper { .. } => "whisper",
            Proposal::Admin { .. } => "admin command",
            Proposal::Logout { .. } => "logout",
            Proposal::Elect => "election",
        }
    }
}

/// Why a proposal was turned down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The name is held by someone else.
    Taken,
    /// A rename to the name already held.
    Same,
    Muted,
    /// The session no longer holds the name (it left, was kicked, renamed).
    Gone,
    /// An admin command's status (not `OK`).
    Admin(Status),
    /// A whisper reached the others; nobody holds these names.
    Missing(Vec<String>),
    /// The engine cannot be reached; the proposal was not sent.
    Unavailable,
    /// The engine is out of memory; the proposal was not carried out.
    OutOfMemory,
    /// The engine was lost while the proposal was in flight: it may or may
    /// not have been carried out.
    Unknown,
}

/// Why a user left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    Left,
    Kicked,
    /// Their node stopped renewing its lease.
    Lost,
}

/// A state change every node applies, in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Join {
        user: Member,
        /// The user is the admin from now on.
        admin: bool,
        /// Registered again after the engine lost its state.
        back: bool,
    },
    Leave {
        name: String,
        why: Departure,
        /// The admin who kicked them.
        by: Option<String>,
        /// Who is admin now, if they were.
        new_admin: Option<String>,
    },
    Rename {
        old: String,
        new: String,
    },
    Chat {
        name: String,
        message: String,
    },
    Whisper {
        from: String,
        to: Vec<String>,
        message: String,
    },
    Mute {
        name: String,
        by: String,
    },
    Unmute {
        name: String,
        by: String,
    },
    /// `name` is admin; `by` is the admin who made them so (none: the
    /// earliest login took over).
    Admin {
        name: String,
        by: Option<String>,
    },
    /// What was there when this node joined: every user, in login order,
    /// and the admin. Applied silently.
    Snapshot {
        users: Vec<Member>,
        admin: Option<String>,
    },
    /// The engine lost its state (Redis came back empty): register the
    /// local users again; events from the new log follow.
    Reset,
    /// This node could not renew its lease in time (it is cut off from the
    /// engine, or the engine stopped serving): other nodes may soon take
    /// its users for gone, so it no longer holds their names. Its users
    /// are told and closed now, before that; their logouts go out when the
    /// engine is back.
    Fenced,
    /// This node missed events (they were trimmed from the log before it
    /// read them): the whole state as it is now, to reconcile with; the
    /// differences are announced.
    Resync {
        users: Vec<Member>,
        admin: Option<String>,
    },
    /// The engine lost the last events this node applied (a failover to a
    /// replica they had not reached): the whole state as it is now, to
    /// reconcile with, as for `Resync`; this node's users whose login was
    /// lost are told so.
    Rewound {
        users: Vec<Member>,
        admin: Option<String>,
    },
}

/// A user as the shared state holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub node: String,
    pub sid: String,
    pub seq: u64,
    pub muted: bool,
    pub addr: String,
}
