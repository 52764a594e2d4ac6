//! How the terminal program shows what arrives: every server reply and
//! status, and every peer event, as one readable line. Pure: no I/O.

use crate::peer::PeerEvent;
use crate::protocol::{AdminCommand, Reply, Status};

/// What a server reply means for the session, besides its line of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Just show the line.
    Show,
    /// Logged in under this name.
    LoggedIn(String),
    /// Our name is now this.
    Renamed(String),
    /// The login name was refused: ask for another.
    AskName,
    /// The server is closing the connection.
    Closed,
}

/// The line asking for another name after an invalid one.
pub fn invalid_name(name: &str) -> String {
    format!("{name:?} is not a valid name (1-32 characters, no spaces); type another name")
}

/// The line shown for one's own chat, as the others see it.
pub fn own_chat(me: &str, text: &str) -> String {
    format!("{me}: {text}")
}

/// The line shown for one's own whisper.
pub fn own_whisper(to: &[String], text: &str) -> String {
    format!("[me -> {}] {text}", to.join(","))
}

/// A server's refusal of a chat or whisper one just sent (the server
/// confirms nothing positively; it only says when it refused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing was sent, for this reason.
    All(String),
    /// This recipient of a whisper is not online (the others got it).
    Recipient(String),
}

/// Whether a `ServerMessage` refuses what one just sent.
pub fn refusal(message: &str) -> Option<Refusal> {
    if let Some(name) = message.strip_prefix("UserDoesNotExist: ") {
        return Some(Refusal::Recipient(name.to_string()));
    }
    let why = match message {
        "You are muted." => "you are muted".to_string(),
        "Not logged in: send Login first." => "not logged in".to_string(),
        m if m.starts_with("Message too long")
            || m.starts_with("Too many recipients")
            || m.starts_with("The chat is unavailable right now") =>
        {
            m.split(['.', ';']).next().unwrap_or(m).to_string()
        }
        _ => return None,
    };
    Some(Refusal::All(why))
}

/// One's own line, marked as refused: `missing` recipients did not get a
/// whisper (the others did), or `all` says why nothing was sent.
pub fn refused(line: &str, all: Option<&str>, missing: &[String]) -> String {
    match all {
        Some(why) => format!("{line}  [not sent: {why}]"),
        None => format!(
            "{line}  [not delivered to {}: not online]",
            missing.join(",")
        ),
    }
}

/// The announcement everyone (the admin too) gets after an admin command
/// succeeds, which says what the command's own answer said.
pub fn announcement(command: AdminCommand, name: &str) -> String {
    match command {
        AdminCommand::KickUser => format!("{name} has been kicked from the server."),
        AdminCommand::MuteUser => format!("{name} has been muted."),
        AdminCommand::UnmuteUser => format!("{name} has been unmuted."),
        AdminCommand::SetAsAdmin => format!("{name} is now the admin."),
    }
}

/// The line to show for a server reply, and what it means.
pub fn reply(r: &Reply) -> (String, Outcome) {
    match r {
        Reply::AssignUsername { name, status } => match status {
            Status::Ok => (
                format!("* logged in as {name}"),
                Outcome::LoggedIn(name.clone()),
            ),
            Status::DuplicateError => (
                format!("name {name} is taken; type another name"),
                Outcome::AskName,
            ),
            _ => (invalid_name(name), Outcome::AskName),
        },
        Reply::SetUsername { name, status } => match status {
            Status::Ok => (
                format!("* you are now {name}"),
                Outcome::Renamed(name.clone()),
            ),
            Status::DuplicateError => (format!("nick failed: {name} is taken"), Outcome::Show),
            _ => (
                format!("nick failed: {name:?} is not a valid name"),
                Outcome::Show,
            ),
        },
        Reply::ProvideUserInfo {
            name,
            ip,
            port,
            status,
        } => match status {
            Status::Ok => (format!("* {name} is at {ip}:{port}"), Outcome::Show),
            _ => (format!("who failed: no user {name}"), Outcome::Show),
        },
        Reply::SendLocalTime { time } => (format!("* server time: {time}"), Outcome::Show),
        Reply::WhisperFromUser { from, message } => {
            (format!("[{from} -> me] {message}"), Outcome::Show)
        }
        Reply::SendChatFromUser { name, message } => (format!("{name}: {message}"), Outcome::Show),
        Reply::SendOnlineList { names } => (
            format!("* online ({}): {}", names.len(), names.join(", ")),
            Outcome::Show,
        ),
        Reply::Admin {
            command,
            name,
            status,
        } => (admin(*command, name, *status), Outcome::Show),
        Reply::ServerMessage { message } => (format!("* {message}"), Outcome::Show),
        Reply::Disconnect { message } => (format!("* disconnected: {message}"), Outcome::Closed),
    }
}

fn admin(command: AdminCommand, name: &str, status: Status) -> String {
    let verb = match command {
        AdminCommand::KickUser => "kick",
        AdminCommand::MuteUser => "mute",
        AdminCommand::UnmuteUser => "unmute",
        AdminCommand::SetAsAdmin => "op",
    };
    let target = if name.is_empty() { "that user" } else { name };
    match status {
        Status::Ok => match command {
            AdminCommand::KickUser => format!("* kicked {target}"),
            AdminCommand::MuteUser => format!("* muted {target}"),
            AdminCommand::UnmuteUser => format!("* unmuted {target}"),
            AdminCommand::SetAsAdmin => format!("* {target} is the admin now"),
        },
        Status::NotAdminError => format!("{verb} failed: you are not the admin"),
        Status::UserDoesNotExist => format!("{verb} failed: no user {target}"),
        Status::UserAlreadyMuted => format!("{verb} failed: {target} is already muted"),
        Status::UserAlreadyUnmuted => format!("{verb} failed: {target} is not muted"),
        Status::AlreadyAdmin => format!("{verb} failed: you are already the admin"),
        other => format!("{verb} failed: {}", other.as_str()),
    }
}

/// The line to show for a peer event; `None` for events a person does not
/// need to see (unless `verbose`).
pub fn peer_event(e: &PeerEvent, verbose: bool) -> Option<String> {
    Some(match e {
        PeerEvent::Joined { name } => format!("* joined the LAN as {name}"),
        PeerEvent::NameTaken { name } => {
            format!("name {name} is taken on the LAN; type another name")
        }
        PeerEvent::Discovered { name, addr } => format!("* {name} is online at {addr}"),
        PeerEvent::Renamed { new, .. } => format!("* you are now {new}"),
        PeerEvent::RenameRefused { name } => {
            format!("nick failed: {name} is taken or not a valid name")
        }
        PeerEvent::PeerJoined { name, addr } => format!("* {name} joined ({addr})"),
        PeerEvent::PeerLeft {
            name, timed_out, ..
        } => {
            if *timed_out {
                format!("* {name} timed out")
            } else {
                format!("* {name} left")
            }
        }
        PeerEvent::PeerRenamed { old, new, .. } => format!("* {old} is now {new}"),
        PeerEvent::Chat { from, message, .. } => format!("{from}: {message}"),
        PeerEvent::Whisper { from, message, .. } => format!("[{from} -> me] {message}"),
        PeerEvent::OnlineList { via, names, .. } => format!(
            "* on {via}'s server ({}): {}",
            names.len(),
            names.join(", ")
        ),
        PeerEvent::Dropped { from, why } if verbose => {
            format!("! dropped a datagram from {from}: {why}")
        }
        PeerEvent::GreetingsDropped { count } if verbose => {
            format!("! {count} greetings over the rate limit not answered")
        }
        PeerEvent::Dropped { .. }
        | PeerEvent::GreetingsDropped { .. }
        | PeerEvent::OnlineListRequested { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_ones_own_lines() {
        assert_eq!(
            refusal("UserDoesNotExist: ghost"),
            Some(Refusal::Recipient("ghost".into()))
        );
        assert_eq!(
            refusal("You are muted."),
            Some(Refusal::All("you are muted".into()))
        );
        assert_eq!(
            refusal("Message too long: the limit is 5 characters."),
            Some(Refusal::All(
                "Message too long: the limit is 5 characters".into()
            ))
        );
        assert_eq!(refusal("bob joined the server."), None);
        assert_eq!(
            refused("[me -> a,b] hi", None, &["b".into()]),
            "[me -> a,b] hi  [not delivered to b: not online]"
        );
        assert_eq!(
            refused("ana: hi", Some("you are muted"), &[]),
            "ana: hi  [not sent: you are muted]"
        );
    }

    #[test]
    fn replies_read_naturally() {
        let (line, o) = reply(&Reply::SendChatFromUser {
            name: "alice".into(),
            message: "hi".into(),
        });
        assert_eq!((line.as_str(), o), ("alice: hi", Outcome::Show));
        assert_eq!(
            reply(&Reply::WhisperFromUser {
                from: "bob".into(),
                message: "psst".into()
            })
            .0,
            "[bob -> me] psst"
        );
        assert_eq!(
            reply(&Reply::server_message("bob joined the server.")).0,
            "* bob joined the server."
        );
        assert_eq!(
            reply(&Reply::Admin {
                command: AdminCommand::KickUser,
                name: "x".into(),
                status: Status::NotAdminError
            })
            .0,
            "kick failed: you are not the admin"
        );
        assert_eq!(
            reply(&Reply::AssignUsername {
                name: "a".into(),
                status: Status::DuplicateError
            }),
            (
                "name a is taken; type another name".into(),
                Outcome::AskName
            )
        );
        assert_eq!(
            reply(&Reply::disconnect("Kicked from the server.")).1,
            Outcome::Closed
        );
        assert_eq!(
            reply(&Reply::SendOnlineList {
                names: vec!["a".into(), "b".into()]
            })
            .0,
            "* online (2): a, b"
        );
    }

    #[test]
    fn every_admin_status_has_words() {
        for command in [
            AdminCommand::KickUser,
            AdminCommand::MuteUser,
            AdminCommand::UnmuteUser,
            AdminCommand::SetAsAdmin,
        ] {
            for status in [
                Status::Ok,
                Status::NotAdminError,
                Status::UserDoesNotExist,
                Status::UserAlreadyMuted,
                Status::UserAlreadyUnmuted,
                Status::AlreadyAdmin,
            ] {
                let text = admin(command, "n", status);
                assert!(!text.contains("failed: OK"), "{text}");
            }
        }
        assert_eq!(
            admin(AdminCommand::UnmuteUser, "n", Status::UserAlreadyUnmuted),
            "unmute failed: n is not muted"
        );
    }
}
