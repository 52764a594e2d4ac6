//! Peers on loopback (distinct ports, added by hand): join, duplicate
//! name, chat exactly once, whisper, rename, leave. Only 127.0.0.1 is used.

mod common;
use common::peers::*;
use mp1::peer::PeerEvent;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// Three peers that know each other: a first, then b and c add a.
fn three() -> (TestPeer, TestPeer, TestPeer) {
    let mut a = TestPeer::loopback();
    assert!(a.join("ana"));
    let mut b = TestPeer::loopback();
    b.node.peer.add_peer(a.addr());
    let mut c = TestPeer::loopback();
    c.node.peer.add_peer(a.addr());
    c.node.peer.add_peer(b.addr());
    b.node.peer.join("bo", std::time::Instant::now());
    pump_all(&mut [&mut a, &mut b], Duration::from_millis(700));
    c.node.peer.join("cy", std::time::Instant::now());
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(700));
    for p in [&mut a, &mut b, &mut c] {
        p.seen.clear();
    }
    (a, b, c)
}

#[test]
fn peers_join_and_know_each_other() {
    let (a, b, c) = three();
    assert_eq!(a.node.peer.peer_names(), vec!["bo", "cy"]);
    assert_eq!(b.node.peer.peer_names(), vec!["ana", "cy"]);
    assert_eq!(c.node.peer.peer_names(), vec!["ana", "bo"]);
}

#[test]
fn duplicate_name_is_refused_then_another_name_works() {
    let mut a = TestPeer::loopback();
    assert!(a.join("ana"));
    let mut b = TestPeer::loopback();
    b.node.peer.add_peer(a.addr());
    b.node.peer.join("ana", std::time::Instant::now());
    pump_all(&mut [&mut a, &mut b], Duration::from_millis(800));
    assert!(
        b.seen
            .contains(&PeerEvent::NameTaken { name: "ana".into() }),
        "{:?}",
        b.seen
    );
    assert!(!b.node.peer.is_active());
    b.seen.clear();
    b.node.peer.join("ana2", std::time::Instant::now());
    pump_all(&mut [&mut a, &mut b], Duration::from_millis(800));
    assert!(
        b.seen.contains(&PeerEvent::Joined {
            name: "ana2".into()
        }),
        "{:?}",
        b.seen
    );
    assert_eq!(a.node.peer.peer_names(), vec!["ana2"]);
}

#[test]
fn each_chat_reaches_each_peer_exactly_once_in_order() {
    let (mut a, mut b, mut c) = three();
    for i in 0..30 {
        b.node.peer.chat(&format!("m{i}"));
    }
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(400));
    let want: Vec<(String, String)> = (0..30)
        .map(|i| ("bo".to_string(), format!("m{i}")))
        .collect();
    assert_eq!(a.take_chats(), want);
    assert_eq!(c.take_chats(), want);
    assert_eq!(b.take_chats(), vec![]);
}

#[test]
fn whisper_rename_and_leave() {
    let (mut a, mut b, mut c) = three();
    assert!(a.node.peer.whisper("cy", "just you"));
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(200));
    assert_eq!(
        c.wait_for(T, |e| matches!(e, PeerEvent::Whisper { .. })),
        PeerEvent::Whisper {
            from: "ana".into(),
            message: "just you".into(),
            via: None,
            to: None,
        }
    );
    assert!(!b
        .seen
        .iter()
        .any(|e| matches!(e, PeerEvent::Whisper { .. })));

    b.node.peer.rename("ana", std::time::Instant::now());
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(500));
    assert!(b
        .seen
        .contains(&PeerEvent::RenameRefused { name: "ana".into() }));
    b.node.peer.rename("bob", std::time::Instant::now());
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(500));
    assert!(b.seen.contains(&PeerEvent::Renamed {
        old: "bo".into(),
        new: "bob".into()
    }));
    assert_eq!(a.node.peer.peer_names(), vec!["bob", "cy"]);

    let c_addr = c.addr();
    c.node.peer.leave();
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(200));
    for p in [&mut a, &mut b] {
        assert_eq!(
            p.wait_for(T, |e| matches!(e, PeerEvent::PeerLeft { .. })),
            PeerEvent::PeerLeft {
                name: "cy".into(),
                addr: c_addr,
                timed_out: false
            }
        );
    }
}

#[test]
fn garbage_datagrams_are_dropped_and_the_peer_lives_on() {
    let (mut a, mut b, _c) = three();
    let junk = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    junk.send_to(b"\xff\xfe not json", a.addr()).unwrap();
    junk.send_to(&[b'{'; 3000], a.addr()).unwrap();
    junk.send_to(
        br#"{"mtp":"SendChat","data":{"message":"stranger"}}"#,
        a.addr(),
    )
    .unwrap();
    a.pump(Duration::from_millis(100));
    let dropped = a
        .seen
        .iter()
        .filter(|e| matches!(e, PeerEvent::Dropped { .. }))
        .count();
    assert_eq!(dropped, 3, "{:?}", a.seen);
    b.node.peer.chat("still here");
    pump_all(&mut [&mut a, &mut b], Duration::from_millis(200));
    assert_eq!(a.take_chats(), vec![("bo".into(), "still here".into())]);
}
