//! The engine of a single node: the shared state (who holds which name in
//! which session, login order, mutes, the admin) in memory, deciding each
//! [`Proposal`] at once. It keeps the rules the Redis engine's scripts
//! keep (`scripts.rs`), so that a chat on one node and a chat on many take
//! the same path: proposals in, [`Event`]s and [`Refusal`]s out.

use super::{Departure, Event, Member, Proposal, Refusal};
use crate::protocol::{AdminCommand, Status};
use std::collections::{HashMap, HashSet};

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
    users: HashMap<String, Member>,
    admin: Option<String>,
    next_seq: u64,
}

impl LocalEngine {
    /// Decides `p`, appending what it gave to `out` (an event, a refusal,
    /// or for a whisper both: the event for those present, then the names
    /// nobody holds).
    pub fn decide(&mut self, p: Proposal, out: &mut Vec<Decision>) {
        // The checks first, on the proposal as it is: a refusal hands it
        // back untouched.
        if let Err(why) = self.check(&p) {
            out.push(Decision::Refused(why, p));
            return;
        }
        match p {
            Proposal::Login {
                name, sid, addr, ..
            } => out.push(Decision::Event(self.login(name, sid, addr))),
            Proposal::Rename { old, new, .. } => out.push(Decision::Event(self.rename(old, new))),
            Proposal::Chat { name, message, .. } => {
                out.push(Decision::Event(Event::Chat { name, message }))
            }
            Proposal::Whisper {
                from,
                sid,
                to,
                message,
            } => self.whisper(from, sid, to, message, out),
            Proposal::Admin {
                by,
                command,
                target,
                ..
            } => out.push(Decision::Event(self.admin_command(by, command, target))),
            Proposal::Logout { name, sid } => {
                if self.holds(&name, &sid) {
                    out.push(Decision::Event(self.leave(name, Departure::Left, None)));
                }
            }
            Proposal::Elect => {
                if self.admin.is_none() {
                    if let Some(name) = self.earliest() {
                        self.admin = Some(name.clone());
                        out.push(Decision::Event(Event::Admin { name, by: None }));
                    }
                }
            }
        }
    }

    /// Whether `p` may be carried out, and if not, why.
    fn check(&self, p: &Proposal) -> Result<(), Refusal> {
        match p {
            Proposal::Login { name, .. } if self.users.contains_key(name) => Err(Refusal::Taken),
            Proposal::Rename { old, new, sid } => {
                if !self.holds(old, sid) {
                    Err(Refusal::Gone)
                } else if old == new {
                    Err(Refusal::Same)
                } else if self.users.contains_key(new) {
                    Err(Refusal::Taken)
                } else {
                    Ok(())
                }
            }
            Proposal::Chat { name, sid, .. } => self.speaker(name, sid),
            Proposal::Whisper { from, sid, .. } => self.speaker(from, sid),
            Proposal::Admin {
                by,
                sid,
                command,
                target,
            } => self.check_admin(by, sid, *command, target),
            _ => Ok(()),
        }
    }

    fn check_admin(
        &self,
        by: &str,
        sid: &str,
        command: AdminCommand,
        target: &str,
    ) -> Result<(), Refusal> {
        if !self.holds(by, sid) {
            return Err(Refusal::Gone);
        }
        if self.admin.as_deref() != Some(by) {
            return Err(Refusal::Admin(Status::NotAdminError));
        }
        let Some(user) = self.users.get(target) else {
            return Err(Refusal::Admin(Status::UserDoesNotExist));
        };
        match command {
            AdminCommand::MuteUser if user.muted => Err(Refusal::Admin(Status::UserAlreadyMuted)),
            AdminCommand::UnmuteUser if !user.muted => {
                Err(Refusal::Admin(Status::UserAlreadyUnmuted))
            }
            AdminCommand::SetAsAdmin if target == by => Err(Refusal::Admin(Status::AlreadyAdmin)),
            _ => Ok(()),
        }
    }

    fn login(&mut self, name: String, sid: String, addr: String) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        let node = sid.split('/').next().unwrap_or_default().to_string();
        let user = Member {
            name: name.clone(),
            node,
            sid,
            seq,
            muted: false,
            addr,
        };
        self.users.insert(name.clone(), user.clone());
        let admin = self.admin.is_none();
        if admin {
            self.admin = Some(name);
        }
        Event::Join {
            user,
            admin,
            back: false,
        }
    }

    fn rename(&mut self, old: String, new: String) -> Event {
        let mut user = self.users.remove(&old).expect("held");
        user.name = new.clone();
        self.users.insert(new.clone(), user);
        if self.admin.as_deref() == Some(old.as_str()) {
            self.admin = Some(new.clone());
        }
        Event::Rename { old, new }
    }

    /// Whether `name`'s session `sid` may speak now.
    fn speaker(&self, name: &str, sid: &str) -> Result<(), Refusal> {
        match self.users.get(name) {
            Some(u) if u.sid == sid && u.muted => Err(Refusal::Muted),
            Some(u) if u.sid == sid => Ok(()),
            _ => Err(Refusal::Gone),
        }
    }

    /// Each name once, in the order asked: a run of names present is one
    /// event, a run of names nobody holds one refusal, so that the sender
    /// sees what it asked for in its order (a whisper to itself among
    /// missing names included).
    fn whisper(
        &self,
        from: String,
        sid: String,
        to: Vec<String>,
        message: String,
        out: &mut Vec<Decision>,
    ) {
        let mut seen = HashSet::with_capacity(to.len());
        let mut runs: Vec<(bool, Vec<String>)> = Vec::new();
        for name in to.into_iter().filter(|n| seen.insert(n.clone())) {
            let present = self.users.contains_key(&name);
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
    fn admin_command(&mut self, by: String, command: AdminCommand, target: String) -> Event {
        let name = target;
        match command {
            AdminCommand::KickUser => self.leave(name, Departure::Kicked, Some(by)),
            AdminCommand::MuteUser | AdminCommand::UnmuteUser => {
                let mute = command == AdminCommand::MuteUser;
                if let Some(user) = self.users.get_mut(&name) {
                    user.muted = mute;
                }
                if mute {
                    Event::Mute { name, by }
                } else {
                    Event::Unmute { name, by }
                }
            }
            AdminCommand::SetAsAdmin => {
                self.admin = Some(name.clone());
                Event::Admin { name, by: Some(by) }
            }
        }
    }

    /// `name` leaves; if they were the admin, the earliest login left
    /// takes over.
    fn leave(&mut self, name: String, why: Departure, by: Option<String>) -> Event {
        self.users.remove(&name);
        let mut new_admin = None;
        if self.admin.as_deref() == Some(name.as_str()) {
            self.admin = self.earliest();
            new_admin = self.admin.clone();
        }
        Event::Leave {
            name,
            why,
            by,
            new_admin,
        }
    }

    fn holds(&self, name: &str, sid: &str) -> bool {
        self.users.get(name).is_some_and(|u| u.sid == sid)
    }

    fn earliest(&self) -> Option<String> {
        self.users
            .values()
            .min_by_key(|u| u.seq)
            .map(|u| u.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(e: &mut LocalEngine, p: Proposal) -> Vec<Decision> {
        let mut out = Vec::new();
        e.decide(p, &mut out);
        out
    }

    /// The one refusal `d` is.
    fn refusal(d: Vec<Decision>) -> Refusal {
        match d.as_slice() {
            [Decision::Refused(why, _)] => why.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn login(e: &mut LocalEngine, name: &str, sid: &str) -> Vec<Decision> {
        let p = Proposal::Login {
            name: name.into(),
            sid: sid.into(),
            addr: "127.0.0.1:1".into(),
            restore: None,
        };
        decide(e, p)
    }

    fn admin(by: &str, sid: &str, command: AdminCommand, target: &str) -> Proposal {
        Proposal::Admin {
            by: by.into(),
            sid: sid.into(),
            command,
            target: target.into(),
        }
    }

    #[test]
    fn the_first_login_is_admin_and_names_are_unique() {
        let mut e = LocalEngine::default();
        let Decision::Event(Event::Join { user, admin, .. }) = &login(&mut e, "ana", "n/1")[0]
        else {
            panic!()
        };
        assert!(*admin);
        assert_eq!((user.node.as_str(), user.seq), ("n", 0));
        assert!(matches!(
            &login(&mut e, "bob", "n/2")[0],
            Decision::Event(Event::Join { admin: false, .. })
        ));
        assert!(matches!(
            &login(&mut e, "ana", "n/3")[..],
            [Decision::Refused(Refusal::Taken, Proposal::Login { .. })]
        ));
    }

    #[test]
    fn a_stale_session_is_gone_and_a_muted_one_refused() {
        let mut e = LocalEngine::default();
        login(&mut e, "ana", "n/1");
        login(&mut e, "bob", "n/2");
        let chat = |sid: &str| Proposal::Chat {
            name: "bob".into(),
            sid: sid.into(),
            message: "hi".into(),
        };
        assert_eq!(refusal(decide(&mut e, chat("n/9"))), Refusal::Gone);
        let mute = admin("ana", "n/1", AdminCommand::MuteUser, "bob");
        assert!(matches!(
            &decide(&mut e, mute.clone())[0],
            Decision::Event(Event::Mute { .. })
        ));
        assert_eq!(
            refusal(decide(&mut e, mute)),
            Refusal::Admin(Status::UserAlreadyMuted)
        );
        assert_eq!(refusal(decide(&mut e, chat("n/2"))), Refusal::Muted);
        let not_admin = admin("bob", "n/2", AdminCommand::KickUser, "ana");
        assert_eq!(
            refusal(decide(&mut e, not_admin)),
            Refusal::Admin(Status::NotAdminError)
        );
    }

    #[test]
    fn a_whisper_reaches_those_present_once_and_names_the_rest() {
        let mut e = LocalEngine::default();
        login(&mut e, "ana", "n/1");
        login(&mut e, "bob", "n/2");
        let p = Proposal::Whisper {
            from: "ana".into(),
            sid: "n/1".into(),
            to: vec!["bob".into(), "carl".into(), "bob".into()],
            message: "psst".into(),
        };
        assert_eq!(
            decide(&mut e, p),
            vec![
                Decision::Event(Event::Whisper {
                    from: "ana".into(),
                    to: vec!["bob".into()],
                    message: "psst".into()
                }),
                Decision::Refused(
                    Refusal::Missing(vec!["carl".into()]),
                    Proposal::Whisper {
                        from: "ana".into(),
                        sid: "n/1".into(),
                        to: vec![],
                        message: String::new()
                    }
                ),
            ]
        );
    }

    #[test]
    fn the_admin_leaving_hands_the_role_to_the_earliest_login() {
        let mut e = LocalEngine::default();
        login(&mut e, "ana", "n/1");
        login(&mut e, "bob", "n/2");
        login(&mut e, "cy", "n/3");
        let out = decide(
            &mut e,
            Proposal::Logout {
                name: "ana".into(),
                sid: "n/1".into(),
            },
        );
        assert_eq!(
            out,
            vec![Decision::Event(Event::Leave {
                name: "ana".into(),
                why: Departure::Left,
                by: None,
                new_admin: Some("bob".into())
            })]
        );
        let kick = admin("bob", "n/2", AdminCommand::KickUser, "cy");
        assert!(matches!(
            &decide(&mut e, kick)[0],
            Decision::Event(Event::Leave {
                why: Departure::Kicked,
                new_admin: None,
                ..
            })
        ));
    }
}
