//! The server table of docs/PROTOCOL.md, row by row, without sockets.

use super::*;
use crate::protocol::decode_request;

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

struct Fixture {
    chat: Chat,
}

/// Every effect the chat has for the loop now, in order.
pub(super) fn effects(chat: &mut Chat) -> Vec<Effect> {
    std::iter::from_fn(|| chat.poll_effect()).collect()
}

pub(super) fn sm(s: &str) -> Reply {
    Reply::server_message(s)
}

/// A broadcast of `reply` that reaches exactly `recipients`.
pub(super) fn to(recipients: &[usize], reply: Reply) -> Effect {
    Effect::Broadcast {
        to: Audience {
            members: Rc::new(recipients.iter().map(|&c| ConnId(c)).collect()),
            except: None,
        },
        reply,
    }
}

/// A server message to exactly `recipients`.
pub(super) fn all(recipients: &[usize], s: &str) -> Effect {
    to(recipients, sm(s))
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            chat: Chat::new(ChatConfig {
                max_chat_chars: 10,
                max_whisper_recipients: 4,
            })
            .with_clock(|| "08:30:55".into()),
        }
    }

    /// Sends raw JSON from `conn`, returning the effects.
    fn send(&mut self, conn: usize, json: &str) -> Vec<Effect> {
        let conn = ConnId(conn);
        self.chat
            .handle_request(conn, decode_request(json.as_bytes()));
        effects(&mut self.chat)
    }

    fn login(&mut self, conn: usize, name: &str) -> Vec<Effect> {
        self.chat
            .handle_connect(ConnId(conn), addr(40000 + conn as u16));
        self.send(
            conn,
            &format!(r#"{{"mtp":"Login","data":{{"name":"{name}"}}}}"#),
        )
    }

    fn drop_conn(&mut self, conn: usize) -> Vec<Effect> {
        let conn = ConnId(conn);
        self.chat.handle_disconnect(conn);
        effects(&mut self.chat)
    }
}

fn assign(name: &str, status: Status) -> Reply {
    Reply::AssignUsername {
        name: name.into(),
        status,
    }
}

fn admin(command: AdminCommand, name: &str, status: Status) -> Reply {
    Reply::Admin {
        command,
        name: name.into(),
        status,
    }
}

#[test]
fn first_login_is_admin_in_order() {
    let mut f = Fixture::new();
    assert_eq!(
        f.login(0, "ana"),
        vec![
            Effect::Send(ConnId(0), assign("ana", Status::Ok)),
            all(&[0], "ana joined the server."),
            Effect::Send(ConnId(0), sm("You are the admin.")),
        ]
    );
    assert_eq!(
        f.login(1, "bo"),
        vec![
            Effect::Send(ConnId(1), assign("bo", Status::Ok)),
            all(&[0, 1], "bo joined the server.")
        ]
    );
    assert_eq!(f.chat.admin(), Some("ana"));
}

#[test]
fn login_rejections_keep_the_connection() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    assert_eq!(
        f.login(1, "ana"),
        vec![Effect::Send(
            ConnId(1),
            assign("ana", Status::DuplicateError)
        )]
    );
    assert_eq!(
        f.login(1, "a b"),
        vec![Effect::Send(
            ConnId(1),
            assign("a b", Status::InvalidUsername)
        )]
    );
    assert_eq!(
        f.send(1, r#"{"mtp":"Login","data":{"name":7}}"#),
        vec![Effect::Send(ConnId(1), assign("", Status::InvalidUsername))]
    );
    assert_eq!(
        f.send(1, r#"{"mtp":"Login"}"#),
        vec![Effect::Send(ConnId(1), assign("", Status::InvalidUsername))]
    );
    // Retrying with a free name works.
    assert_eq!(
        f.login(1, "Ana")[0],
        Effect::Send(ConnId(1), assign("Ana", Status::Ok))
    );
    assert_eq!(
        f.send(1, r#"{"mtp":"Login","data":{"name":"x"}}"#),
        vec![Effect::Send(ConnId(1), sm("Already logged in as Ana."))]
    );
}

#[test]
fn anything_before_login_is_refused() {
    let mut f = Fixture::new();
    f.chat.handle_connect(ConnId(3), addr(1));
    assert_eq!(
        f.send(3, r#"{"mtp":"SendChat","data":{"message":"hi"}}"#),
        vec![Effect::Send(
            ConnId(3),
            sm("Not logged in: send Login first.")
        )]
    );
    assert!(f.chat.members().is_empty());
}

#[test]
fn set_username() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    f.login(1, "bo");
    let set = |n: &str| format!(r#"{{"mtp":"SetUsername","data":{{"name":"{n}"}}}}"#);
    assert_eq!(
        f.send(0, &set("bo")),
        vec![Effect::Send(
            ConnId(0),
            Reply::SetUsername {
                name: "bo".into(),
                status: Status::DuplicateError
            }
        )]
    );
    assert_eq!(
        f.send(0, &set("ana")),
        vec![Effect::Send(
            ConnId(0),
            Reply::SetUsername {
                name: "ana".into(),
                status: Status::Ok
            }
        )]
    );
    assert_eq!(
        f.send(0, &set("cy")),
        vec![
            Effect::Send(
                ConnId(0),
                Reply::SetUsername {
                    name: "cy".into(),
                    status: Status::Ok
                }
            ),
            all(&[0, 1], "ana has changed username to cy."),
        ]
    );
    assert!(!f.chat.is_taken("ana"));
    assert_eq!(
        f.login(2, "ana")[0],
        Effect::Send(ConnId(2), assign("ana", Status::Ok))
    );
    assert_eq!(
        f.send(0, &set("")),
        vec![Effect::Send(
            ConnId(0),
            Reply::SetUsername {
                name: "".into(),
                status: Status::InvalidUsername
            }
        )]
    );
}

#[test]
fn user_info_and_time_and_list() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    f.login(1, "bo");
    assert_eq!(
        f.send(0, r#"{"mtp":"RequestUserInfo","data":{"name":"bo"}}"#),
        vec![Effect::Send(
            ConnId(0),
            Reply::ProvideUserInfo {
                name: "bo".into(),
                ip: "127.0.0.1".into(),
                port: 40001,
                status: Status::Ok
            }
        )]
    );
    assert_eq!(
        f.send(0, r#"{"mtp":"RequestUserInfo","data":{"name":"zz"}}"#),
        vec![Effect::Send(
            ConnId(0),
            Reply::ProvideUserInfo {
                name: "zz".into(),
                ip: "".into(),
                port: 0,
                status: Status::UserDoesNotExist
            }
        )]
    );
    assert_eq!(
        f.send(1, r#"{"mtp":"RequestLocalTime","data":{}}"#),
        vec![Effect::Send(
            ConnId(1),
            Reply::SendLocalTime {
                time: "08:30:55".into()
            }
        )]
    );
    f.login(2, "cy");
    f.drop_conn(0);
    f.login(0, "dee");
    assert_eq!(
        f.send(1, r#"{"mtp":"RequestOnlineList","data":{}}"#),
        vec![Effect::Send(
            ConnId(1),
            Reply::SendOnlineList {
                names: vec!["bo".into(), "cy".into(), "dee".into()]
            }
        )]
    );
}

#[test]
fn chat_and_mute() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    f.login(1, "bo");
    let chat = r#"{"mtp":"SendChat","data":{"message":"hi"}}"#;
    assert_eq!(
        f.send(1, chat),
        vec![to(
            &[0],
            Reply::SendChatFromUser {
                name: "bo".into(),
                message: "hi".into()
            }
        )]
    );
    assert_eq!(
        f.send(0, r#"{"mtp":"MuteUser","data":{"name":"bo"}}"#),
        vec![
            Effect::Send(ConnId(0), admin(AdminCommand::MuteUser, "bo", Status::Ok)),
            all(&[0, 1], "bo has been muted."),
        ]
    );
    assert_eq!(
        f.send(1, chat),
        vec![Effect::Send(ConnId(1), sm("You are muted."))]
    );
    assert_eq!(
        f.send(
            1,
            r#"{"mtp":"WhisperToUser","data":{"to":["ana"],"message":"x"}}"#
        ),
        vec![Effect::Send(ConnId(1), sm("You are muted."))]
    );
    assert_eq!(
        f.send(0, r#"{"mtp":"MuteUser","data":{"name":"bo"}}"#),
        vec![Effect::Send(
            ConnId(0),
            admin(AdminCommand::MuteUser, "bo", Status::UserAlreadyMuted)
        )]
    );
    assert_eq!(
        f.send(1, r#"{"mtp":"UnmuteUser","data":{"name":"bo"}}"#),
        vec![Effect::Send(
            ConnId(1),
            admin(AdminCommand::UnmuteUser, "bo", Status::NotAdminError)
        )]
    );
    assert_eq!(
        f.send(0, r#"{"mtp":"UnmuteUser","data":{"name":"bo"}}"#),
        vec![
            Effect::Send(ConnId(0), admin(AdminCommand::UnmuteUser, "bo", Status::Ok)),
            all(&[0, 1], "bo has been unmuted."),
        ]
    );
    assert_eq!(
        f.send(0, r#"{"mtp":"UnmuteUser","data":{"name":"bo"}}"#),
        vec![Effect::Send(
            ConnId(0),
            admin(AdminCommand::UnmuteUser, "bo", Status::UserAlreadyUnmuted)
        )]
    );
    assert_eq!(
        f.send(0, r#"{"mtp":"MuteUser","data":{"name":"zz"}}"#),
        vec![Effect::Send(
            ConnId(0),
            admin(AdminCommand::MuteUser, "zz", Status::UserDoesNotExist)
        )]
    );
    assert_eq!(f.send(1, chat).len(), 1);
}

#[test]
fn chat_length_limit() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    // Ten characters (the fixture's limit) pass, even as 20 bytes.
    let ok = f.send(0, r#"{"mtp":"SendChat","data":{"message":"éééééééééé"}}"#);
    assert!(matches!(ok[0], Effect::Broadcast { .. }));
    assert_eq!(
        f.send(0, r#"{"mtp":"SendChat","data":{"message":"01234567890"}}"#),
        vec![Effect::Send(
            ConnId(0),
            sm("Message too long: the limit is 10 characters.")
        )]
    );
}

#[test]
fn whisper() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    f.login(1, "bo");
    let w = |to: &str| Reply::WhisperFromUser {
        from: to.into(),
        message: "psst".into(),
    };
    assert_eq!(
        f.send(
            0,
            r#"{"mtp":"WhisperToUser","data":{"to":["bo","zz","bo","ana"],"message":"psst"}}"#
        ),
        vec![
            Effect::Send(ConnId(1), w("ana")),
            Effect::Send(ConnId(0), sm("UserDoesNotExist: zz")),
            Effect::Send(ConnId(0), w("ana")),
        ]
    );
}

/// One whisper names at most `max_whisper_recipients`: a longer list is
/// refused whole, with the reason, and costs nothing else.
#[test]
fn whisper_recipients_are_capped() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    f.login(1, "bo");
    assert_eq!(
        f.send(
            0,
            r#"{"mtp":"WhisperToUser","data":{"to":["bo","a","b","c","d"],"message":"psst"}}"#
        ),
        vec![Effect::Send(
            ConnId(0),
            sm("Too many recipients: at most 4 names in one whisper.")
        )]
    );
}

#[test]
fn disconnect_and_drop() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    f.login(1, "bo");
    f.login(2, "cy");
    assert_eq!(
        f.send(1, r#"{"mtp":"Disconnect","data":{}}"#),
        vec![
            Effect::Send(ConnId(1), Reply::disconnect("Goodbye.")),
            Effect::Close(ConnId(1)),
            all(&[0, 2], "bo left the server."),
        ]
    );
    // The admin drops: the earliest login left takes over.
    assert_eq!(
        f.drop_conn(0),
        vec![
            all(&[2], "ana left the server."),
            all(&[2], "cy is now the admin.")
        ]
    );
    assert_eq!(f.chat.admin(), Some("cy"));
    assert_eq!(f.drop_conn(2), vec![all(&[], "cy left the server.")]);
    assert_eq!(f.chat.admin(), None);
    // The next login becomes admin.
    assert_eq!(
        f.login(5, "eve")[2],
        Effect::Send(ConnId(5), sm("You are the admin."))
    );
    // A connection that never logged in leaves silently.
    f.chat.handle_connect(ConnId(6), addr(9));
    assert_eq!(f.drop_conn(6), vec![]);
}

#[test]
fn kick() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    f.login(1, "bo");
    f.login(2, "cy");
    let kick = |n: &str| format!(r#"{{"mtp":"KickUser","data":{{"name":"{n}"}}}}"#);
    assert_eq!(
        f.send(1, &kick("cy")),
        vec![Effect::Send(
            ConnId(1),
            admin(AdminCommand::KickUser, "cy", Status::NotAdminError)
        )]
    );
    assert_eq!(
        f.send(0, &kick("zz")),
        vec![Effect::Send(
            ConnId(0),
            admin(AdminCommand::KickUser, "zz", Status::UserDoesNotExist)
        )]
    );
    assert_eq!(
        f.send(0, &kick("bo")),
        vec![
            Effect::Send(ConnId(0), admin(AdminCommand::KickUser, "bo", Status::Ok)),
            Effect::Send(ConnId(1), Reply::disconnect("Kicked from the server.")),
            Effect::Close(ConnId(1)),
            all(&[0, 2], "bo has been kicked from the server."),
        ]
    );
    assert!(!f.chat.is_taken("bo"));
    // The admin kicks themself: the role passes on.
    assert_eq!(
        f.send(0, &kick("ana")),
        vec![
            Effect::Send(ConnId(0), admin(AdminCommand::KickUser, "ana", Status::Ok)),
            Effect::Send(ConnId(0), Reply::disconnect("Kicked from the server.")),
            Effect::Close(ConnId(0)),
            all(&[2], "ana has been kicked from the server."),
            all(&[2], "cy is now the admin."),
        ]
    );
    assert_eq!(f.chat.members(), &[ConnId(2)]);
}

#[test]
fn set_as_admin_transfers() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    f.login(1, "bo");
    let set = |n: &str| format!(r#"{{"mtp":"SetAsAdmin","data":{{"name":"{n}"}}}}"#);
    assert_eq!(
        f.send(0, &set("ana")),
        vec![Effect::Send(
            ConnId(0),
            admin(AdminCommand::SetAsAdmin, "ana", Status::AlreadyAdmin)
        )]
    );
    assert_eq!(
        f.send(0, &set("zz")),
        vec![Effect::Send(
            ConnId(0),
            admin(AdminCommand::SetAsAdmin, "zz", Status::UserDoesNotExist)
        )]
    );
    assert_eq!(
        f.send(0, &set("bo")),
        vec![
            Effect::Send(ConnId(0), admin(AdminCommand::SetAsAdmin, "bo", Status::Ok)),
            all(&[0, 1], "bo is now the admin."),
        ]
    );
    assert_eq!(
        f.send(0, &set("ana")),
        vec![Effect::Send(
            ConnId(0),
            admin(AdminCommand::SetAsAdmin, "ana", Status::NotAdminError)
        )]
    );
    assert_eq!(f.chat.admin(), Some("bo"));
}

#[test]
fn bad_messages_get_a_server_message() {
    let mut f = Fixture::new();
    f.login(0, "ana");
    assert_eq!(
        f.send(0, r#"{"mtp":"Dance","data":{}}"#),
        vec![Effect::Send(
            ConnId(0),
            sm("Invalid message: unknown message type \"Dance\".")
        )]
    );
    assert_eq!(
        f.send(0, r#"{"mtp":"KickUser","data":{}}"#),
        vec![Effect::Send(
            ConnId(0),
            sm("Invalid message: KickUser: missing field \"data.name\".")
        )]
    );
    assert_eq!(f.chat.members(), &[ConnId(0)]);
}
