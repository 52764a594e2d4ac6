//! `mp1 connect` against the two ways other MP1 servers read requests (see
//! tests/common/reference.rs): the protocol's reference server, which
//! counts braces from the first byte and is wedged by a stray line break,
//! and a server that reads lines. With the default framing (auto) mp1
//! logs in, asks the time, chats and quits cleanly with both.

mod common;
use common::reference::{self, Reading};
use common::terminal::Mp1;
use std::time::Duration;

fn session(reading: Reading, framing: Option<&str>) {
    let server = reference::start(reading);
    let target = format!("127.0.0.1:{}", server.port);
    let mut args = vec!["connect", &target, "--name", "ana"];
    if let Some(f) = framing {
        args.extend(["--framing", f]);
    }
    let mut mp1 = Mp1::spawn(&args);
    mp1.expect("* logged in as ana");
    mp1.type_line("/time");
    mp1.expect("* server time: 12:34:56");
    mp1.type_line("hello");
    mp1.expect("ana: hello");
    mp1.expect("* echo hello");
    mp1.type_line("/quit");
    assert_eq!(mp1.wait_exit(), Some(0), "{:#?}", mp1.seen);
    let seen: Vec<String> = server.seen.iter().take(4).collect::<Vec<_>>();
    assert_eq!(
        seen,
        ["Login", "RequestLocalTime", "SendChat", "Disconnect"],
        "{reading:?}"
    );
    // Nothing more: the Disconnect came before the close.
    assert!(server
        .seen
        .recv_timeout(Duration::from_millis(100))
        .is_err());
}

#[test]
fn the_reference_server_is_never_sent_a_stray_line_break() {
    session(Reading::BraceCounter, None);
    session(Reading::BraceCounter, Some("bare"));
}

#[test]
fn a_line_reading_server_gets_its_line_breaks() {
    session(Reading::LineReader, None);
    session(Reading::LineReader, Some("newline"));
}
