//! The chat as one node of a cluster, without sockets or Redis: requests
//! become proposals, and what clients see comes from the log's events.

use super::*;
use crate::chat::tests::{addr, all, effects, sm, to};
use crate::chat::ChatConfig;
use crate::protocol::decode_request;

struct Node {
    chat: Chat,
}

impl Node {
    fn new(id: &str) -> Node {
        let mut chat = Chat::new(ChatConfig::default());
        chat.join_cluster(id);
        Node { chat }
    }

    fn send(&mut self, conn: usize, json: &str) -> Vec<Effect> {
        let conn = ConnId(conn);
        self.chat
            .handle_request(conn, decode_request(json.as_bytes()));
        effects(&mut self.chat)
    }

    fn apply(&mut self, e: Event) -> Vec<Effect> {
        self.chat.handle_event(e);
        effects(&mut self.chat)
    }

    /// `conn` asks to log in as `name`: the proposal it makes.
    fn ask_login(&mut self, conn: usize, name: &str) -> Proposal {
        self.chat
            .handle_connect(ConnId(conn), addr(40000 + conn as u16));
        let out = self.send(
            conn,
            &format!(r#"{{"mtp":"Login","data":{{"name":"{name}"}}}}"#),
        );
        match out.as_slice() {
            [Effect::Propose(c, p)] if *c == Some(ConnId(conn)) => p.clone(),
            other => panic!("{other:?}"),
        }
    }
}

fn member(name: &str, node: &str, sid: String, seq: u64) -> Member {
    Member {
        name: name.into(),
        node: node.into(),
        sid,
        seq,
        muted: false,
        addr: String::new(),
    }
}

fn join(p: &Proposal, node: &str, seq: u64, admin: bool) -> Event {
    let Proposal::Login {
        name, sid, addr, ..
    } = p
    else {
        panic!("{p:?}")
    };
    let user = Member {
        addr: addr.clone(),
        ..member(name, node, sid.clone(), seq)
    };
    Event::Join {
        user,
        admin,
        back: false,
    }
}

fn remote_join(name: &str, seq: u64, admin: bool) -> Event {
    let user = Member {
        addr: "10.0.0.9:5000".into(),
        ..member(name, "other", format!("other/{seq}"), seq)
    };
    Event::Join {
        user,
        admin,
        back: false,
    }
}

#[test]
fn a_login_is_answered_when_its_event_comes_back() {
    let mut n = Node::new("a");
    let p = n.ask_login(1, "ana");
    assert!(
        n.chat.name_of(ConnId(1)).is_none(),
        "not before the log says so"
    );
    let again = n.send(1, r#"{"mtp":"Login","data":{"name":"ana"}}"#);
    assert_eq!(
        again,
        [Effect::Send(
            ConnId(1),
            sm("Logging in already: wait for the answer.")
        )]
    );
    let out = n.apply(join(&p, "a", 1, true));
    assert_eq!(
        out,
        [
            Effect::Send(
                ConnId(1),
                Reply::AssignUsername {
                    name: "ana".into(),
                    status: Status::Ok
                }
            ),
            all(&[1], "ana joined the server."),
            Effect::Send(ConnId(1), sm("You are the admin.")),
        ]
    );
    assert_eq!(n.chat.members(), [ConnId(1)]);
    assert_eq!(n.chat.admin(), Some("ana"));
}

#[test]
fn remote_users_share_the_namespace_list_and_user_info() {
    let mut n = Node::new("a");
    let out = n.apply(remote_join("zed", 1, true));
    assert_eq!(out, [all(&[], "zed joined the server.")]);
    let p = n.ask_login(1, "bob");
    n.apply(join(&p, "a", 2, false));
    assert!(n.chat.is_taken("zed"));
    let dup = n.send(2, r#"{"mtp":"Login","data":{"name":"zed"}}"#);
    assert!(dup.is_empty(), "conn 2 never connected: {dup:?}");
    n.chat.handle_connect(ConnId(2), addr(2));
    let dup = n.send(2, r#"{"mtp":"Login","data":{"name":"zed"}}"#);
    assert_eq!(
        dup,
        [Effect::Send(
            ConnId(2),
            Reply::AssignUsername {
                name: "zed".into(),
                status: Status::DuplicateError
            }
        )]
    );
    let list = n.send(1, r#"{"mtp":"RequestOnlineList","data":{}}"#);
    assert_eq!(
        list,
        [Effect::Send(
            ConnId(1),
            Reply::SendOnlineList {
                names: vec!["zed".into(), "bob".into()]
            }
        )]
    );
    let info = n.send(1, r#"{"mtp":"RequestUserInfo","data":{"name":"zed"}}"#);
    assert_eq!(
        info,
        [Effect::Send(
            ConnId(1),
            Reply::ProvideUserInfo {
                name: "zed".into(),
                ip: "10.0.0.9".into(),
                port: 5000,
                status: Status::Ok
            }
        )]
    );
}

#[test]
fn chat_goes_out_from_its_event_to_everyone_but_the_sender() {
    let mut n = Node::new("a");
    let p = n.ask_login(1, "ana");
    n.apply(join(&p, "a", 1, true));
    let out = n.send(1, r#"{"mtp":"SendChat","data":{"message":"hi"}}"#);
    assert!(
        matches!(&out[..], [Effect::Propose(Some(ConnId(1)), Proposal::Chat { name, message, .. })] if name == "ana" && message == "hi"),
        "{out:?}"
    );
    let out = n.apply(Event::Chat {
        name: "ana".into(),
        message: "hi".into(),
    });
    assert_eq!(
        out,
        [to(
            &[],
            Reply::SendChatFromUser {
                name: "ana".into(),
                message: "hi".into()
            }
        )]
    );
}

#[test]
fn a_kick_from_another_node_closes_the_target_here() {
    let mut n = Node::new("a");
    n.apply(remote_join("boss", 1, true));
    let p = n.ask_login(1, "bob");
    n.apply(join(&p, "a", 2, false));
    let out = n.apply(Event::Leave {
        name: "bob".into(),
        why: Departure::Kicked,
        by: Some("boss".into()),
        new_admin: None,
    });
    assert_eq!(
        out,
        [
            Effect::Send(ConnId(1), Reply::disconnect("Kicked from the server.")),
            Effect::Close(ConnId(1)),
            all(&[], "bob has been kicked from the server."),
        ]
    );
    assert!(n.chat.members().is_empty());
    assert!(!n.chat.is_taken("bob"));
}

#[test]
fn muted_here_by_an_admin_elsewhere() {
    let mut n = Node::new("a");
    n.apply(remote_join("boss", 1, true));
    let p = n.ask_login(1, "bob");
    n.apply(join(&p, "a", 2, false));
    let out = n.apply(Event::Mute {
        name: "bob".into(),
        by: "boss".into(),
    });
    assert_eq!(out, [all(&[1], "bob has been muted.")]);
    let out = n.send(1, r#"{"mtp":"SendChat","data":{"message":"hi"}}"#);
    assert_eq!(out, [Effect::Send(ConnId(1), sm("You are muted."))]);
}

#[test]
fn a_leaver_holds_its_name_until_the_log_says_it_left() {
    let mut n = Node::new("a");
    let p = n.ask_login(1, "ana");
    n.apply(join(&p, "a", 1, true));
    n.chat.handle_disconnect(ConnId(1));
    let out = effects(&mut n.chat);
    assert!(
        matches!(&out[..], [Effect::Propose(Some(ConnId(1)), Proposal::Logout { name, .. })] if name == "ana"),
        "{out:?}"
    );
    assert!(n.chat.is_taken("ana"), "until its leave event");
    let out = n.apply(Event::Leave {
        name: "ana".into(),
        why: Departure::Left,
        by: None,
        new_admin: None,
    });
    assert_eq!(out, [all(&[], "ana left the server.")]);
    assert!(!n.chat.is_taken("ana"));
    assert_eq!(n.chat.admin(), None);
}

#[test]
fn a_login_whose_connection_left_in_flight_is_logged_out() {
    let mut n = Node::new("a");
    let p = n.ask_login(1, "ana");
    n.chat.handle_disconnect(ConnId(1));
    let out = effects(&mut n.chat);
    assert!(out.is_empty(), "{out:?}");
    let out = n.apply(join(&p, "a", 1, false));
    assert!(
        matches!(&out[..], [_, Effect::Propose(_, Proposal::Logout { name, .. })] if name == "ana"),
        "{out:?}"
    );
}

#[test]
fn refusals_answer_the_client_that_asked() {
    let mut n = Node::new("a");
    let p = n.ask_login(1, "ana");
    n.chat.handle_refusal(ConnId(1), p.clone(), Refusal::Taken);
    let out = effects(&mut n.chat);
    assert_eq!(
        out,
        [Effect::Send(
            ConnId(1),
            Reply::AssignUsername {
                name: "ana".into(),
                status: Status::DuplicateError
            }
        )]
    );
    let p = n.ask_login(1, "ana");
    n.chat.handle_refusal(ConnId(1), p, Refusal::Unavailable);
    let out = effects(&mut n.chat);
    assert_eq!(out, [Effect::Send(ConnId(1), sm(UNAVAILABLE))]);
    // A refusal meant for a session that is gone reaches nobody.
    let p = n.ask_login(1, "ana");
    n.chat.handle_disconnect(ConnId(1));
    effects(&mut n.chat);
    n.chat.handle_connect(ConnId(1), addr(1));
    n.chat.handle_refusal(ConnId(1), p, Refusal::Taken);
    let out = effects(&mut n.chat);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn after_redis_comes_back_empty_users_register_again_quietly() {
    let mut n = Node::new("a");
    n.apply(remote_join("zed", 1, false));
    n.apply(remote_join("gone", 2, false));
    let p = n.ask_login(1, "ana");
    n.apply(join(&p, "a", 3, false));
    n.apply(Event::Admin {
        name: "ana".into(),
        by: None,
    });
    let out = n.apply(Event::Reset);
    let [Effect::Propose(Some(ConnId(1)), Proposal::Login { name, restore, .. })] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!((name.as_str(), *restore), ("ana", Some((3, true))));
    // Back: ana (ours) and zed, silently; gone does not come back.
    let back = |name: &str, node: &str, sid: String, seq, admin| Event::Join {
        user: member(name, node, sid, seq),
        admin,
        back: true,
    };
    let sid = n.chat.sid_of(ConnId(1));
    assert!(n.apply(back("ana", "a", sid, 3, true)).is_empty());
    assert!(n
        .apply(back("zed", "other", "other/1".into(), 1, false))
        .is_empty());
    n.chat.handle_settle();
    let out = effects(&mut n.chat);
    assert_eq!(out, [all(&[1], "gone left the server.")]);
    assert_eq!(n.chat.admin(), Some("ana"));
    assert_eq!(n.chat.online_names(), ["zed", "ana"]);
}

#[test]
fn a_user_whose_name_was_taken_during_a_reset_is_told_and_closed() {
    let mut n = Node::new("a");
    let p = n.ask_login(1, "ana");
    n.apply(join(&p, "a", 1, true));
    let out = n.apply(Event::Reset);
    let [Effect::Propose(Some(ConnId(1)), restore)] = &out[..] else {
        panic!("{out:?}")
    };
    n.chat
        .handle_refusal(ConnId(1), restore.clone(), Refusal::Taken);
    let out = effects(&mut n.chat);
    assert_eq!(
        out,
        [
            Effect::Send(ConnId(1), Reply::disconnect(NAME_LOST)),
            Effect::Close(ConnId(1)),
            all(&[], "ana left the server."),
        ]
    );
    assert!(n.chat.members().is_empty());
}

#[test]
fn after_missing_events_the_differences_are_announced() {
    let mut n = Node::new("a");
    n.apply(remote_join("stays", 1, true));
    n.apply(remote_join("went", 2, false));
    let p = n.ask_login(1, "ana");
    n.apply(join(&p, "a", 3, false));
    let p = n.ask_login(2, "reaped");
    n.apply(join(&p, "a", 4, false));
    let users = vec![
        member("stays", "other", "other/1".into(), 1),
        member("ana", "a", n.chat.sid_of(ConnId(1)), 3),
        member("new", "other", "other/9".into(), 9),
    ];
    let out = n.apply(Event::Resync {
        users,
        admin: Some("ana".into()),
    });
    assert_eq!(
        out,
        [
            Effect::Send(ConnId(2), Reply::disconnect(EXPELLED)),
            Effect::Close(ConnId(2)),
            all(&[1], "reaped left the server (their server was lost)."),
            all(&[1], "went left the server."),
            all(&[1], "new joined the server."),
            all(&[1], "ana is now the admin."),
        ]
    );
    assert_eq!(n.chat.online_names(), ["stays", "ana", "new"]);
    assert_eq!(n.chat.members(), [ConnId(1)]);
}
