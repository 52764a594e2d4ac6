//! The engine of a single node: it decides each [`Proposal`] at once, by
//! the rules the Redis engine's scripts keep (`scripts.rs`), so that a chat
//! on one node and a chat on many take the same path: proposals in,
//! [`Event`]s and [`Refusal`]s out.
//!
//! It keeps no copy of the shared state: on one node the chat's own view
//! (who holds which name, mutes, the admin, login order) is the state, and
//! the engine reads it through [`View`]; the chat updates it by applying
//! the events, before the next proposal is decided. The engine holds only
//! the next login's number. Proposals come synchronously from live
//! sessions, so a session that no longer holds its name cannot propose
//! (the cluster's `Gone`), and a login restored after Redis lost its state
//! never happens here.

use super::{Departure, Event, Member, Proposal, Refusal};
use crate::protocol::{AdminCommand, Status};
use std::collections::HashSet;

/// What the engine reads of the shared state.
pub trait View {
    /// Whether a user holds `name` (on a single node: a client here).
    fn holds(&self, name: &str) -> bool;
    /// Whether `name`'s user is muted (`None`: no such user).
    fn muted(&self, name: &str) -> Option<bool>;
    /// The admin's name.
    fn admin(&self) -> Option<&str>;
    /// The earliest login other than `name`.
    fn earliest_but(&self, name: &str) -> Option<String>;
}

/// What deciding a proposal gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Applied: every node (here, the one) applies this event.
    Event(Event),
    /// Turned down (nothing changed), with the proposal (for a whisper,
    /// one that names its session only: the rest went into its event).
    Refused(Refusal, Proposal),
}

#[derive(Default)]
pub struct LocalEngine {
    next_seq: u64,
}

impl LocalEngine {
    /// Decides `p` against `view`, appending what it gave to `out` (an
    /// event, a refusal, or for a whisper runs of both).
    pub fn decide(&mut self, p: Proposal, view: &impl View, out: &mut Vec<Decision>) {
        // The checks first, on the proposal as it is: a refusal hands it
        // back untouched.
        if let Err(why) = check(&p, view) {
            out.push(Decision::Refused(why, p));
            return;
        }
        let event = match p {
            Proposal::Login {
                name, sid, addr, ..
            } => self.login(name, sid, addr, view),
            Proposal::Rename { old, new, .. } => Event::Rename { old, new },
            Proposal::Chat { name, message, .. } => Event::Chat { name, message },
            Proposal::Whisper {
                from,
                sid,
                to,
                message,
            } => return whisper(from, sid, to, message, view, out),
            Proposal::Admin {
                by,
                command,
                target,
                ..
            } => admin_command(by, command, target, view),
            Proposal::Logout { name, .. } => leave(name, Departure::Left, None, view),
            Proposal::Elect => match (view.admin(), view.earliest_but("")) {
                (None, Some(name)) => Event::Admin { name, by: None },
                _ => return,
            },
        };
        out.push(Decision::Event(event));
    }

    fn login(&mut self, name: String, sid: String, addr: String, view: &impl View) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        let node = sid.split('/').next().unwrap_or_default().to_string();
        Event::Join {
            user: Member {
                name,
                node,
                sid,
                seq,
                muted: false,
                addr,
            },
            admin: view.admin().is_none(),
            back: false,
        }
    }
}

/// Whether `p` may be carried out, and if not, why.
fn check(p: &Proposal, view: &impl View) -> Result<(), Refusal> {
    match p {
        Proposal::Login { name, .. } if view.holds(name) => Err(Refusal::Taken),
        Proposal::Rename { old, new, .. } if old == new => Err(Refusal::Same),
        Proposal::Rename { new, .. } if view.holds(new) => Err(Refusal::Taken),
        Proposal::Chat { name, .. } | Proposal::Whisper { from: name, .. }
            if view.muted(name) == Some(true) =>
        {
            Err(Refusal::Muted)
        }
        Proposal::Admin {
            by,
            command,
            target,
            ..
        } => check_admin(by, *command, target, view),
        _ => Ok(()),
    }
}

fn check_admin(
    by: &str,
    command: AdminCommand,
    target: &str,
    view: &impl View,
) -> Result<(), Refusal> {
    if view.admin() != Some(by) {
        return Err(Refusal::Admin(Status::NotAdminError));
    }
    let Some(muted) = view.muted(target) else {
        return Err(Refusal::Admin(Status::UserDoesNotExist));
    };
    match command {
        AdminCommand::MuteUser if muted => Err(Refusal::Admin(Status::UserAlreadyMuted)),
        AdminCommand::UnmuteUser if !muted => Err(Refusal::Admin(Status::UserAlreadyUnmuted)),
        AdminCommand::SetAsAdmin if target == by => Err(Refusal::Admin(Status::AlreadyAdmin)),
        _ => Ok(()),
    }
}

/// Each name once, in the order asked: a run of names present is one
/// event, a run of names nobody holds one refusal, so that the sender sees
/// what it asked for in its order (a whisper to itself among missing names
/// included).
fn whisper(
    from: String,
    sid: String,
    to: Vec<String>,
    message: String,
    view: &impl View,
    out: &mut Vec<Decision>,
) {
    let mut seen = HashSet::with_capacity(to.len());
    let mut runs: Vec<(bool, Vec<String>)> = Vec::new();
    for name in to.into_iter().filter(|n| seen.insert(n.clone())) {
        let present = view.holds(&name);
        match runs.last_mut() {
            Some((p, names)) if *p == present => names.push(name),
            _ => runs.push((present, vec![name])),
        }
    }
    for (present, names) in runs {
        out.push(if present {
            Decision::Event(Event::Whisper {
                from: from.clone(),
                to: names,
                message: message.clone(),
            })
        } else {
            let asked = Proposal::Whisper {
                from: from.clone(),
                sid: sid.clone(),
                to: Vec::new(),
                message: String::new(),
            };
            Decision::Refused(Refusal::Missing(names), asked)
        });
    }
}

/// Carries out a checked admin command.
fn admin_command(by: String, command: AdminCommand, name: String, view: &impl View) -> Event {
    match command {
        AdminCommand::KickUser => leave(name, Departure::Kicked, Some(by), view),
        AdminCommand::MuteUser => Event::Mute { name, by },
        AdminCommand::UnmuteUser => Event::Unmute { name, by },
        AdminCommand::SetAsAdmin => Event::Admin { name, by: Some(by) },
    }
}

/// `name` leaves; if they were the admin, the earliest login left takes
/// over.
fn leave(name: String, why: Departure, by: Option<String>, view: &impl View) -> Event {
    let new_admin = if view.admin() == Some(name.as_str()) {
        view.earliest_but(&name)
    } else {
        None
    };
    Event::Leave {
        name,
        why,
        by,
        new_admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A shared state of names (with login order and mute) and an admin,
    /// updated from the events as the chat would.
    #[derive(Default)]
    struct State {
        users: BTreeMap<String, (u64, bool)>,
        admin: Option<String>,
    }

    impl View for State {
        fn holds(&self, name: &str) -> bool {
            self.users.contains_key(name)
        }
        fn muted(&self, name: &str) -> Option<bool> {
            self.users.get(name).map(|u| u.1)
        }
        fn admin(&self) -> Option<&str> {
            self.admin.as_deref()
        }
        fn earliest_but(&self, name: &str) -> Option<String> {
            self.users
                .iter()
                .filter(|(n, _)| *n != name)
                .min_by_key(|(_, u)| u.0)
                .map(|(n, _)| n.clone())
        }
    }

    impl State {
        fn apply(&mut self, e: &Event) {
            match e {
                Event::Join { user, admin, .. } => {
                    self.users.insert(user.name.clone(), (user.seq, false));
                    if *admin {
                        self.admin = Some(user.name.clone());
                    }
                }
                Event::Leave {
                    name, new_admin, ..
                } => {
                    self.users.remove(name);
                    if self.admin.as_deref() == Some(name.as_str()) {
                        self.admin = new_admin.clone();
                    }
                }
                Event::Mute { name, .. } => self.users.get_mut(name).unwrap().1 = true,
                Event::Admin { name, .. } => self.admin = Some(name.clone()),
                _ => {}
            }
        }
    }

    fn decide(e: &mut LocalEngine, s: &mut State, p: Proposal) -> Vec<Decision> {
        let mut out = Vec::new();
        e.decide(p, s, &mut out);
        for d in &out {
            if let Decision::Event(ev) = d {
                s.apply(ev);
            }
        }
        out
    }

    fn login(name: &str, sid: &str) -> Proposal {
        Proposal::Login {
            name: name.into(),
            sid: sid.into(),
            addr: "127.0.0.1:1".into(),
            restore: None,
        }
    }

    fn admin(by: &str, command: AdminCommand, target: &str) -> Proposal {
        Proposal::Admin {
            by: by.into(),
            sid: "n/1".into(),
            command,
            target: target.into(),
        }
    }

    /// The one refusal `d` is.
    fn refusal(d: Vec<Decision>) -> Refusal {
        match d.as_slice() {
            [Decision::Refused(why, _)] => why.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_first_login_is_admin_and_names_are_unique() {
        let (mut e, mut s) = (LocalEngine::default(), State::default());
        let out = decide(&mut e, &mut s, login("ana", "n/1"));
        let [Decision::Event(Event::Join { user, admin, .. })] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert!(*admin);
        assert_eq!((user.node.as_str(), user.seq), ("n", 0));
        let out = decide(&mut e, &mut s, login("bob", "n/2"));
        assert!(matches!(
            out.as_slice(),
            [Decision::Event(Event::Join { admin: false, .. })]
        ));
        let taken = decide(&mut e, &mut s, login("ana", "n/3"));
        assert_eq!(refusal(taken), Refusal::Taken);
    }

    #[test]
    fn a_muted_user_is_refused_and_only_the_admin_commands() {
        let (mut e, mut s) = (LocalEngine::default(), State::default());
        decide(&mut e, &mut s, login("ana", "n/1"));
        decide(&mut e, &mut s, login("bob", "n/2"));
        let chat = Proposal::Chat {
            name: "bob".into(),
            sid: "n/2".into(),
            message: "hi".into(),
        };
        let mute = admin("ana", AdminCommand::MuteUser, "bob");
        let out = decide(&mut e, &mut s, mute.clone());
        assert!(matches!(
            out.as_slice(),
            [Decision::Event(Event::Mute { .. })]
        ));
        assert_eq!(
            refusal(decide(&mut e, &mut s, mute)),
            Refusal::Admin(Status::UserAlreadyMuted)
        );
        assert_eq!(refusal(decide(&mut e, &mut s, chat)), Refusal::Muted);
        let not_admin = admin("bob", AdminCommand::KickUser, "ana");
        assert_eq!(
            refusal(decide(&mut e, &mut s, not_admin)),
            Refusal::Admin(Status::NotAdminError)
        );
    }

    #[test]
    fn a_whisper_reaches_those_present_once_and_names_the_rest_in_order() {
        let (mut e, mut s) = (LocalEngine::default(), State::default());
        decide(&mut e, &mut s, login("ana", "n/1"));
        decide(&mut e, &mut s, login("bob", "n/2"));
        let p = Proposal::Whisper {
            from: "ana".into(),
            sid: "n/1".into(),
            to: vec!["carl".into(), "bob".into(), "ana".into(), "bob".into()],
            message: "psst".into(),
        };
        let asked = Proposal::Whisper {
            from: "ana".into(),
            sid: "n/1".into(),
            to: vec![],
            message: String::new(),
        };
        assert_eq!(
            decide(&mut e, &mut s, p),
            vec![
                Decision::Refused(Refusal::Missing(vec!["carl".into()]), asked),
                Decision::Event(Event::Whisper {
                    from: "ana".into(),
                    to: vec!["bob".into(), "ana".into()],
                    message: "psst".into()
                }),
            ]
        );
    }

    #[test]
    fn the_admin_leaving_hands_the_role_to_the_earliest_login() {
        let (mut e, mut s) = (LocalEngine::default(), State::default());
        for (name, sid) in [("ana", "n/1"), ("bob", "n/2"), ("cy", "n/3")] {
            decide(&mut e, &mut s, login(name, sid));
        }
        let logout = Proposal::Logout {
            name: "ana".into(),
            sid: "n/1".into(),
        };
        assert_eq!(
            decide(&mut e, &mut s, logout),
            vec![Decision::Event(Event::Leave {
                name: "ana".into(),
                why: Departure::Left,
                by: None,
                new_admin: Some("bob".into())
            })]
        );
        let kick = admin("bob", AdminCommand::KickUser, "cy");
        assert!(matches!(
            decide(&mut e, &mut s, kick).as_slice(),
            [Decision::Event(Event::Leave {
                why: Departure::Kicked,
                new_admin: None,
                ..
            })]
        ));
    }
}
