//! Every row of the server table of docs/PROTOCOL.md against a real mp1d, in both
//! framings (bare objects and newline-terminated lines).

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Sends `text` terminated as the framing under test wants.
struct Framed {
    c: Client,
    newline: bool,
}

impl Framed {
    fn send(&mut self, mtp: &str, data: Value) {
        let mut s = msg(mtp, data);
        if self.newline {
            s.push('\n');
        }
        self.c.send(&s);
    }
    fn recv(&mut self) -> Value {
        self.c.recv()
    }
    fn sm(&mut self, text: &str) {
        self.c.expect_server_message(text);
    }
    fn status(&mut self, mtp: &str, name: &str, status: &str) {
        let v = self.recv();
        assert_eq!(v["mtp"], mtp, "{v}");
        assert_eq!(v["status"], status, "{v}");
        assert_eq!(v["data"]["name"], name, "{v}");
    }
}

fn login(server: &Mp1d, name: &str, newline: bool) -> Framed {
    let mut f = Framed {
        c: server.connect(),
        newline,
    };
    f.send("Login", json!({"name": name}));
    f.status("AssignUsername", name, "OK");
    f.sm(&format!("{name} joined the server."));
    f
}

fn check_framing(c: &Client, newline: bool) {
    let text = String::from_utf8(c.raw.clone()).unwrap();
    if newline {
        assert!(text.ends_with('\n'), "newline framing ends lines: {text:?}");
        assert!(!text.contains("}{"), "newline framing separates: {text:?}");
    } else {
        assert!(
            !text.contains('\n'),
            "bare framing has no newline: {text:?}"
        );
    }
}

fn whole_table(newline: bool) {
    let server = Mp1d::start(&[]);
    let mut ana = Framed {
        c: server.connect(),
        newline,
    };
    // Anything before Login is refused, and the connection stays open.
    ana.send("SendChat", json!({"message": "hi"}));
    ana.sm("Not logged in: send Login first.");
    ana.send("Login", json!({"name": "ana"}));
    ana.status("AssignUsername", "ana", "OK");
    ana.sm("ana joined the server.");
    ana.sm("You are the admin.");
    ana.send("Login", json!({"name": "again"}));
    ana.sm("Already logged in as ana.");

    let mut bo = Framed {
        c: server.connect(),
        newline,
    };
    bo.send("Login", json!({"name": "ana"}));
    bo.status("AssignUsername", "ana", "DuplicateError");
    bo.send("Login", json!({"name": "has space"}));
    bo.status("AssignUsername", "has space", "InvalidUsername");
    bo.send("Login", json!({"name": 42}));
    bo.status("AssignUsername", "", "InvalidUsername");
    bo.send("Login", json!({"name": "bo"}));
    bo.status("AssignUsername", "bo", "OK");
    bo.sm("bo joined the server.");
    ana.sm("bo joined the server.");

    // SetUsername: taken, same, free.
    bo.send("SetUsername", json!({"name": "ana"}));
    bo.status("SetUsername", "ana", "DuplicateError");
    bo.send("SetUsername", json!({"name": "bo"}));
    bo.status("SetUsername", "bo", "OK");
    bo.send("SetUsername", json!({"name": "bob"}));
    bo.status("SetUsername", "bob", "OK");
    bo.sm("bo has changed username to bob.");
    ana.sm("bo has changed username to bob.");

    // RequestUserInfo: the peer address of bob's connection.
    let bob_addr = bo.c.local_addr();
    ana.send("RequestUserInfo", json!({"name": "bob"}));
    let v = ana.recv();
    assert_eq!(
        v,
        json!({"mtp": "ProvideUserInfo", "data": {"name": "bob", "ip": "127.0.0.1",
               "port": bob_addr.port()}, "status": "OK"})
    );
    ana.send("RequestUserInfo", json!({"name": "nobody"}));
    assert_eq!(
        ana.recv(),
        json!({"mtp": "ProvideUserInfo", "data": {"name": "nobody", "ip": "", "port": 0},
               "status": "UserDoesNotExist"})
    );

    // RequestLocalTime: HH:MM:SS.
    bo.send("RequestLocalTime", json!({}));
    let v = bo.recv();
    assert_eq!(v["mtp"], "SendLocalTime");
    let t = v["data"]["time"].as_str().unwrap();
    assert!(
        chrono::NaiveTime::parse_from_str(t, "%H:%M:%S").is_ok() && t.len() == 8,
        "{t}"
    );

    // WhisperToUser, with an unknown name and a duplicate.
    bo.send(
        "WhisperToUser",
        json!({"to": ["ana", "ghost", "ana"], "message": "psst", "from": "bob"}),
    );
    assert_eq!(
        ana.recv(),
        json!({"mtp": "WhisperFromUser", "data": {"from": "bob", "message": "psst"}})
    );
    bo.sm("UserDoesNotExist: ghost");

    // SendChat reaches everyone but the sender.
    bo.send("SendChat", json!({"message": "hello all"}));
    assert_eq!(
        ana.recv(),
        json!({"mtp": "SendChatFromUser", "data": {"name": "bob", "message": "hello all"}})
    );

    // RequestOnlineList in login order.
    let mut cy = login(&server, "cy", newline);
    ana.sm("cy joined the server.");
    bo.sm("cy joined the server.");
    cy.send("RequestOnlineList", json!({}));
    assert_eq!(
        cy.recv(),
        json!({"mtp": "SendOnlineList", "data": {"names": ["ana", "bob", "cy"]}})
    );

    // Admin commands: not admin, no such user, already, OK.
    bo.send("KickUser", json!({"name": "cy"}));
    bo.status("KickUser", "cy", "NotAdminError");
    ana.send("MuteUser", json!({"name": "ghost"}));
    ana.status("MuteUser", "ghost", "UserDoesNotExist");
    ana.send("MuteUser", json!({"name": "cy"}));
    ana.status("MuteUser", "cy", "OK");
    for c in [&mut ana, &mut bo, &mut cy] {
        c.sm("cy has been muted.");
    }
    ana.send("MuteUser", json!({"name": "cy"}));
    ana.status("MuteUser", "cy", "UserAlreadyMuted");
    cy.send("SendChat", json!({"message": "can you hear me"}));
    cy.sm("You are muted.");
    cy.send("WhisperToUser", json!({"to": ["ana"], "message": "x"}));
    cy.sm("You are muted.");
    ana.send("UnmuteUser", json!({"name": "cy"}));
    ana.status("UnmuteUser", "cy", "OK");
    for c in [&mut ana, &mut bo, &mut cy] {
        c.sm("cy has been unmuted.");
    }
    ana.send("UnmuteUser", json!({"name": "cy"}));
    ana.status("UnmuteUser", "cy", "UserAlreadyUnmuted");
    ana.send("SetAsAdmin", json!({"name": "ana"}));
    ana.status("SetAsAdmin", "ana", "AlreadyAdmin");
    ana.send("SetAsAdmin", json!({"name": "bob"}));
    ana.status("SetAsAdmin", "bob", "OK");
    for c in [&mut ana, &mut bo, &mut cy] {
        c.sm("bob is now the admin.");
    }
    ana.send("KickUser", json!({"name": "cy"}));
    ana.status("KickUser", "cy", "NotAdminError");

    // Kick: the target gets only its Disconnect.
    bo.send("KickUser", json!({"name": "cy"}));
    bo.status("KickUser", "cy", "OK");
    assert_eq!(
        cy.recv(),
        json!({"mtp": "Disconnect", "data": {"message": "Kicked from the server."}})
    );
    cy.c.expect_closed();
    bo.sm("cy has been kicked from the server.");
    ana.sm("cy has been kicked from the server.");

    // Unknown mtp, missing and mistyped fields: an explanation, no change.
    ana.send("Teleport", json!({}));
    ana.sm("Invalid message: unknown message type \"Teleport\".");
    ana.send("SendChat", json!({}));
    ana.sm("Invalid message: SendChat: missing field \"data.message\".");
    ana.send("KickUser", json!({"name": ["x"]}));
    ana.sm("Invalid message: KickUser: field \"data.name\" must be a string.");

    // Disconnect is answered before the close; others are told.
    bo.send("Disconnect", json!({}));
    assert_eq!(
        bo.recv(),
        json!({"mtp": "Disconnect", "data": {"message": "Goodbye."}})
    );
    bo.c.expect_closed();
    ana.sm("bob left the server.");
    ana.sm("ana is now the admin.");
    ana.c.expect_silence(Duration::from_millis(100));
    check_framing(&ana.c, newline);
    check_framing(&bo.c, newline);
    check_framing(&cy.c, newline);
}

#[test]
fn table_in_bare_framing() {
    whole_table(false);
}

#[test]
fn table_in_newline_framing() {
    whole_table(true);
}

#[test]
fn dropped_connection_is_announced_and_admin_passes_on() {
    let server = Mp1d::start(&[]);
    let admin = server.login("first");
    let mut second = server.login("second");
    let mut third = server.login("third");
    second.expect_server_message("third joined the server.");
    drop(admin);
    for c in [&mut second, &mut third] {
        c.expect_server_message("first left the server.");
        c.expect_server_message("second is now the admin.");
    }
    second.send(&msg("MuteUser", json!({"name": "third"})));
    assert_eq!(second.recv()["status"], "OK");
}

#[test]
fn admin_kicking_themself_passes_the_role() {
    let server = Mp1d::start(&[]);
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_server_message("You are the admin.");
    a.expect_server_message("b joined the server.");
    a.send(&msg("KickUser", json!({"name": "a"})));
    assert_eq!(a.recv()["status"], "OK");
    assert_eq!(a.recv()["data"]["message"], "Kicked from the server.");
    a.expect_closed();
    b.expect_server_message("a has been kicked from the server.");
    b.expect_server_message("b is now the admin.");
}
