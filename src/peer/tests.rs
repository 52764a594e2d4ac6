//! The peer rules of docs/PROTOCOL.md on a simulated LAN: datagrams are moved
//! between state machines by address, with no sockets.

use super::*;

const PORT: u16 = 15151;

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, host], port))
}

fn bcast() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 255], PORT))
}

/// A LAN of peers; datagrams to 10.0.0.255:15151 reach every peer on port
/// 15151 (the sender included, as on a real LAN).
struct Lan {
    peers: Vec<Peer>,
    now: Instant,
    /// Every datagram sent: (from, to, message).
    wire: Vec<(SocketAddr, SocketAddr, PeerMessage)>,
    events: Vec<Vec<PeerEvent>>,
}

impl Lan {
    fn new(members: &[SocketAddr]) -> Lan {
        let config = PeerConfig {
            broadcast: vec![bcast()],
            ..PeerConfig::default()
        };
        Lan {
            peers: members
                .iter()
                .map(|&a| Peer::new(a, config.clone()))
                .collect(),
            now: Instant::now(),
            wire: Vec::new(),
            events: vec![Vec::new(); members.len()],
        }
    }

    /// Delivers datagrams until the network is quiet.
    fn settle(&mut self) {
        loop {
            let mut moving = Vec::new();
            for (i, p) in self.peers.iter_mut().enumerate() {
                for t in p.poll_transmits() {
                    moving.push((i, t));
                }
                self.events[i].extend(p.poll_events());
            }
            if moving.is_empty() {
                return;
            }
            for (i, t) in moving {
                let from = self.peers[i].me();
                self.wire.push((from, t.to, decode_peer(&t.bytes).unwrap()));
                assert!(t.bytes.len() <= 1024 && t.bytes.is_ascii());
                for p in self.peers.iter_mut() {
                    let me = p.me();
                    if me == t.to || (t.to == bcast() && me.port() == PORT) {
                        p.handle_datagram(from, &t.bytes, self.now, &|_| false);
                    }
                }
            }
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        for p in self.peers.iter_mut() {
            p.handle_timeout(now);
        }
        self.settle();
    }

    /// Peer `i` joins as `name` and the windows pass.
    fn join(&mut self, i: usize, name: &str) {
        let now = self.now;
        assert!(self.peers[i].join(name, now));
        self.settle();
        self.advance(Duration::from_secs(1));
        self.advance(Duration::from_millis(500));
    }

    fn take_events(&mut self, i: usize) -> Vec<PeerEvent> {
        std::mem::take(&mut self.events[i])
    }

    fn chats(&mut self, i: usize) -> Vec<(String, String)> {
        self.take_events(i)
            .into_iter()
            .filter_map(|e| match e {
                PeerEvent::Chat { from, message, .. } => Some((from, message)),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn joining_an_empty_lan() {
    let mut lan = Lan::new(&[addr(1, PORT)]);
    lan.join(0, "ana");
    assert_eq!(
        lan.take_events(0),
        vec![PeerEvent::Joined { name: "ana".into() }]
    );
    let sent: Vec<&str> = lan.wire.iter().map(|w| w.2.mtp()).collect();
    assert_eq!(sent, ["Discovery", "Handshake"]);
    assert_eq!(
        lan.wire[1].2,
        PeerMessage::Handshake {
            ip: Some("10.0.0.1".into()),
            port: Some(PORT),
            name: "ana".into()
        }
    );
    assert!(lan.peers[0].is_active());
}

#[test]
fn second_peer_discovers_and_handshakes() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    lan.join(0, "ana");
    lan.take_events(0);
    lan.join(1, "bo");
    assert_eq!(
        lan.take_events(1),
        vec![
            PeerEvent::Discovered {
                name: "ana".into(),
                addr: addr(1, PORT)
            },
            PeerEvent::PeerJoined {
                name: "ana".into(),
                addr: addr(1, PORT)
            },
            PeerEvent::Joined { name: "bo".into() },
        ]
    );
    assert_eq!(
        lan.take_events(0),
        vec![PeerEvent::PeerJoined {
            name: "bo".into(),
            addr: addr(2, PORT)
        }]
    );
    // The responses went directly, not broadcast.
    let direct: Vec<_> = lan
        .wire
        .iter()
        .filter(|w| {
            matches!(
                w.2,
                PeerMessage::DiscoveryResponse { .. } | PeerMessage::HandshakeResponse { .. }
            )
        })
        .map(|w| w.1)
        .collect();
    assert_eq!(direct, vec![addr(2, PORT), addr(2, PORT)]);
}

#[test]
fn a_taken_name_is_refused_and_another_works() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    lan.join(0, "ana");
    lan.take_events(0);
    lan.join(1, "ana");
    assert_eq!(
        lan.take_events(1),
        vec![PeerEvent::NameTaken { name: "ana".into() }]
    );
    assert!(!lan.peers[1].is_active());
    lan.join(1, "ana2");
    assert!(lan.take_events(1).contains(&PeerEvent::Joined {
        name: "ana2".into()
    }));
}

#[test]
fn handshake_duplicate_error_when_discovery_missed_it() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    lan.join(0, "ana");
    // Peer 1 skips discovery and handshakes straight away.
    lan.peers[1].phase = Phase::Discovering {
        name: "ana".into(),
        until: lan.now,
    };
    lan.advance(Duration::ZERO);
    let responses: Vec<_> = lan
        .wire
        .iter()
        .filter_map(|w| match &w.2 {
            PeerMessage::HandshakeResponse { name, status } => Some((name.clone(), *status)),
            _ => None,
        })
        .collect();
    assert_eq!(responses, vec![("ana".to_string(), Status::DuplicateError)]);
    assert_eq!(
        lan.take_events(1),
        vec![PeerEvent::NameTaken { name: "ana".into() }]
    );
    // Names held outside the LAN (a bridge's users) are refused too.
    let mut p = Peer::new(addr(9, PORT), PeerConfig::default());
    p.phase = Phase::Active;
    p.name = Some("bridge".into());
    let hs = PeerMessage::Handshake {
        ip: None,
        port: None,
        name: "server_user".into(),
    }
    .encode();
    p.handle_datagram(addr(3, PORT), &hs, lan.now, &|n| n == "server_user");
    let t: Vec<Transmit> = p.poll_transmits().collect();
    assert_eq!(
        decode_peer(&t[0].bytes).unwrap(),
        PeerMessage::HandshakeResponse {
            name: "bridge".into(),
            status: Status::DuplicateError
        }
    );
}

#[test]
fn chat_reaches_each_peer_exactly_once() {
    // Peer 2 listens on another port: the broadcast misses it, so it gets
    // a unicast copy; the others get only the broadcast.
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT), addr(3, 4000)]);
    lan.join(0, "ana");
    lan.join(1, "bo");
    lan.peers[2].add_peer(addr(1, PORT));
    lan.join(2, "cy");
    for i in 0..3 {
        lan.take_events(i);
    }
    assert_eq!(lan.peers[0].peer_names(), vec!["bo", "cy"]);
    lan.wire.clear();
    lan.peers[1].chat("hello");
    lan.settle();
    assert_eq!(lan.chats(0), vec![("bo".into(), "hello".into())]);
    assert_eq!(lan.chats(2), vec![("bo".into(), "hello".into())]);
    assert_eq!(lan.chats(1), vec![]);
    let dests: Vec<SocketAddr> = lan.wire.iter().map(|w| w.1).collect();
    assert_eq!(dests, vec![bcast(), addr(3, 4000)]);
}

/// Three peers on one host, each on its own port, so no broadcast reaches
/// anyone: a newcomer that knows only one of a pair by address is told of
/// the other and meets it too.
#[test]
fn a_peer_reached_by_address_meets_the_whole_group() {
    let (a, b, c) = (addr(1, 4001), addr(1, 4002), addr(1, 4003));
    let mut lan = Lan::new(&[a, b, c]);
    lan.join(0, "ana");
    lan.peers[1].add_peer(a);
    lan.join(1, "bo");
    assert_eq!(lan.peers[0].peer_names(), vec!["bo"]);
    lan.peers[2].add_peer(b);
    lan.join(2, "cy");
    assert_eq!(lan.peers[2].peer_names(), vec!["ana", "bo"]);
    assert_eq!(lan.peers[0].peer_names(), vec!["bo", "cy"]);
    assert_eq!(lan.peers[1].peer_names(), vec!["ana", "cy"]);
    for i in 0..3 {
        lan.take_events(i);
    }
    lan.peers[0].chat("hi all");
    lan.settle();
    assert_eq!(lan.chats(1), vec![("ana".into(), "hi all".into())]);
    assert_eq!(lan.chats(2), vec![("ana".into(), "hi all".into())]);
}

#[test]
fn whisper_disconnect_and_strangers() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT), addr(3, PORT)]);
    lan.join(0, "ana");
    lan.join(1, "bo");
    for i in 0..3 {
        lan.take_events(i);
    }
    assert!(lan.peers[0].whisper("bo", "psst"));
    assert!(!lan.peers[0].whisper("nobody", "psst"));
    lan.settle();
    assert_eq!(
        lan.take_events(1),
        vec![PeerEvent::Whisper {
            from: "ana".into(),
            message: "psst".into(),
            via: None,
            to: None,
        }]
    );
    // Peer 2 never joined: its chat is not shown.
    let chat = PeerMessage::SendChat {
        message: "spam".into(),
        name: None,
    }
    .encode();
    lan.peers[0].handle_datagram(addr(3, PORT), &chat, lan.now, &|_| false);
    assert!(matches!(
        lan.peers[0].poll_events().next(),
        Some(PeerEvent::Dropped { .. })
    ));
    lan.peers[1].leave();
    lan.settle();
    assert_eq!(
        lan.take_events(0),
        vec![PeerEvent::PeerLeft {
            name: "bo".into(),
            addr: addr(2, PORT),
            timed_out: false
        }]
    );
    assert!(lan.peers[0].peer_names().is_empty());
}

#[test]
fn rename_and_refusal() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    lan.join(0, "ana");
    lan.join(1, "bo");
    lan.take_events(0);
    lan.take_events(1);
    let now = lan.now;
    lan.peers[1].rename("ana", now);
    lan.settle();
    assert_eq!(
        lan.take_events(1),
        vec![PeerEvent::RenameRefused { name: "ana".into() }]
    );
    // A peer whose list is stale asks anyway: the other side refuses.
    lan.peers[1].known.clear();
    lan.peers[1].rename("ana", now);
    lan.settle();
    assert_eq!(
        lan.take_events(1),
        vec![PeerEvent::RenameRefused { name: "ana".into() }]
    );
    lan.peers[1].rename("bob", now);
    lan.settle();
    lan.advance(Duration::from_secs(1));
    assert_eq!(
        lan.take_events(1),
        vec![PeerEvent::Renamed {
            old: "bo".into(),
            new: "bob".into()
        }]
    );
    assert_eq!(
        lan.take_events(0),
        vec![PeerEvent::PeerRenamed {
            old: "bo".into(),
            new: "bob".into(),
            addr: addr(2, PORT)
        }]
    );
}

#[test]
fn silent_peers_age_out_live_ones_stay() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT), addr(3, PORT)]);
    lan.join(0, "ana");
    lan.join(1, "bo");
    lan.join(2, "cy");
    for i in 0..3 {
        lan.take_events(i);
    }
    // cy's machine vanishes without a Disconnect.
    let gone = lan.peers.remove(2);
    lan.events.remove(2);
    drop(gone);
    for _ in 0..4 {
        lan.advance(Duration::from_secs(30));
    }
    let left: Vec<_> = lan
        .take_events(0)
        .into_iter()
        .filter(|e| matches!(e, PeerEvent::PeerLeft { .. }))
        .collect();
    assert_eq!(
        left,
        vec![PeerEvent::PeerLeft {
            name: "cy".into(),
            addr: addr(3, PORT),
            timed_out: true
        }]
    );
    assert_eq!(lan.peers[0].peer_names(), vec!["bo"]);
}

#[test]
fn long_chat_is_split_into_datagrams_that_fit() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    lan.join(0, "ana");
    lan.join(1, "bo");
    lan.take_events(1);
    let text: String = "日本語😀abc\"".repeat(200);
    lan.peers[0].chat(&text);
    lan.settle(); // asserts every datagram <= 1024 bytes and ASCII
    let parts: Vec<String> = lan.chats(1).into_iter().map(|c| c.1).collect();
    assert!(parts.len() > 1);
    assert_eq!(parts.concat(), text);
}

#[test]
fn bridged_chat_names_its_author() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    lan.join(0, "mp1d");
    lan.join(1, "bo");
    lan.take_events(1);
    lan.peers[0].chat_as(Some("alice"), "hi there");
    lan.settle();
    assert_eq!(
        lan.take_events(1),
        vec![PeerEvent::Chat {
            from: "alice".into(),
            message: "hi there".into(),
            via: Some("mp1d".into())
        }]
    );
    let sent = &lan.wire.last().unwrap().2;
    assert_eq!(
        sent,
        &PeerMessage::SendChat {
            message: "alice: hi there".into(),
            name: Some("alice".into())
        }
    );
}

#[test]
fn bad_datagrams_and_own_echo_are_dropped() {
    let config = PeerConfig {
        broadcast: vec![bcast()],
        ..PeerConfig::default()
    };
    let mut p = Peer::new(addr(1, PORT), config);
    let now = Instant::now();
    p.join("ana", now);
    let own: Vec<Transmit> = p.poll_transmits().collect();
    p.handle_datagram(addr(1, PORT), &own[0].bytes, now, &|_| false);
    assert_eq!(p.poll_events().count(), 0);
    p.handle_datagram(addr(2, PORT), b"{not json", now, &|_| false);
    p.handle_datagram(addr(2, PORT), &vec![b' '; 2000], now, &|_| false);
    let events: Vec<_> = p.poll_events().collect();
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| matches!(e, PeerEvent::Dropped { .. })));
}

#[test]
fn broadcast_coverage() {
    let b = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(covers(b("255.255.255.255"), b("10.1.2.3")));
    assert!(covers(b("10.0.0.255"), b("10.0.0.7")));
    assert!(!covers(b("10.0.0.255"), b("10.0.1.7")));
    assert!(covers(b("127.255.255.255"), b("127.0.0.1")));
    assert!(!covers(b("10.0.0.255"), b("192.168.0.1")));
}

#[test]
fn split_respects_budget_and_boundaries() {
    assert_eq!(split_to_fit("", 100), vec![""]);
    assert_eq!(split_to_fit("abcdef", 12), vec!["abcdef"]);
    let parts = split_to_fit("ééé", 12);
    assert_eq!(parts, vec!["éé", "é"]);
}

#[test]
fn peers_joining_at_the_same_time_still_meet() {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    let now = lan.now;
    lan.peers[0].join("ana", now);
    lan.settle();
    lan.advance(Duration::from_millis(400));
    // bo starts while ana is still in her windows: each one's Handshake
    // reaches the other before it may answer.
    let now = lan.now;
    lan.peers[1].join("bo", now);
    lan.settle();
    for _ in 0..10 {
        lan.advance(Duration::from_millis(200));
    }
    assert!(lan.peers[0].is_active() && lan.peers[1].is_active());
    assert_eq!(lan.peers[0].peer_names(), vec!["bo"]);
    assert_eq!(lan.peers[1].peer_names(), vec!["ana"]);
}

/// Two peers that know each other, and a third socket that is not a peer.
fn pair_and_stranger() -> (Lan, SocketAddr) {
    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    lan.join(0, "ana");
    lan.join(1, "bo");
    for i in 0..2 {
        lan.take_events(i);
    }
    lan.wire.clear();
    (lan, addr(9, 5555))
}

/// Delivers `msg` to peer 0 as if sent from `from`; returns where peer 0
/// answered, and what it was told.
fn poke(lan: &mut Lan, from: SocketAddr, msg: PeerMessage) -> (Vec<SocketAddr>, Vec<PeerEvent>) {
    let now = lan.now;
    lan.peers[0].handle_datagram(from, &msg.encode(), now, &|_| false);
    let to = lan.peers[0].poll_transmits().map(|t| t.to).collect();
    (to, lan.peers[0].poll_events().collect())
}

/// A greeting that claims a known peer's address is taken as coming from
/// its real source: it cannot rename (hijack) that peer.
#[test]
fn a_claimed_address_cannot_hijack_a_peer() {
    let (mut lan, stranger) = pair_and_stranger();
    let bo = addr(2, PORT);
    let (to, events) = poke(
        &mut lan,
        stranger,
        PeerMessage::Handshake {
            ip: Some(bo.ip().to_string()),
            port: Some(bo.port()),
            name: "hijack".into(),
        },
    );
    assert!(
        !to.is_empty() && to.iter().all(|a| *a == stranger),
        "{to:?}"
    );
    assert!(events.contains(&PeerEvent::PeerJoined {
        name: "hijack".into(),
        addr: stranger
    }));
    assert!(events.iter().any(|e| matches!(e,
        PeerEvent::Dropped { why, .. } if why.contains("claims to be 10.0.0.2:15151"))));
    assert!(!events
        .iter()
        .any(|e| matches!(e, PeerEvent::PeerRenamed { .. })));
    assert_eq!(lan.peers[0].peer_names(), vec!["bo", "hijack"]);
}

/// `Discovery` is answered to its source, not to the address it claims:
/// nobody can make a peer send datagrams at a third party.
#[test]
fn discovery_is_answered_to_its_source() {
    let (mut lan, stranger) = pair_and_stranger();
    let victim = addr(7, 80);
    let (to, _) = poke(
        &mut lan,
        stranger,
        PeerMessage::Discovery {
            ip: Some(victim.ip().to_string()),
            port: Some(victim.port()),
        },
    );
    assert_eq!(to, vec![stranger]);
}

/// Greetings are rate-limited per source and in all, and the number of
/// peers is capped.
#[test]
fn greetings_are_rate_limited_and_peers_capped() {
    let (mut lan, stranger) = pair_and_stranger();
    lan.now += Duration::from_secs(1); // a window of its own
    let discovery = PeerMessage::Discovery {
        ip: None,
        port: None,
    };
    let answered: usize = (0..10)
        .map(|_| poke(&mut lan, stranger, discovery.clone()).0.len())
        .sum();
    assert_eq!(answered, 4, "four a second from one source");
    let answered: usize = (0..200u16)
        .map(|i| {
            poke(&mut lan, addr(100, 1000 + i), discovery.clone())
                .0
                .len()
        })
        .sum();
    assert_eq!(answered, 200 - 4, "a burst of two hundred from everyone");
    // (answered, drops told) for a hundred more strangers.
    let late = |lan: &mut Lan, from: u16| {
        (0..100u16).fold((0, 0), |(answered, told), i| {
            let (to, events) = poke(lan, addr(101, from + i), discovery.clone());
            let count = events.iter().find_map(|e| match e {
                PeerEvent::GreetingsDropped { count } => Some(*count),
                _ => None,
            });
            (answered + to.len(), told + count.unwrap_or(0))
        })
    };
    assert_eq!(late(&mut lan, 0), (0, 0), "the bucket is empty");
    // Then fifty a second: a tenth of a second later, five.
    lan.now += Duration::from_millis(100);
    assert_eq!(late(&mut lan, 1000), (5, 0));
    lan.now += Duration::from_secs(1);
    let (to, events) = poke(&mut lan, stranger, discovery);
    assert_eq!(to.len(), 1);
    // The stranger's fifth greeting was told at once; the drops since
    // (its other five, four, a hundred, ninety-five) a second later.
    assert!(events.contains(&PeerEvent::GreetingsDropped { count: 204 }));

    let mut lan = Lan::new(&[addr(1, PORT), addr(2, PORT)]);
    lan.peers[0].config.max_peers = 1;
    lan.join(0, "ana");
    lan.join(1, "bo");
    let (to, events) = poke(
        &mut lan,
        addr(9, 5555),
        PeerMessage::Handshake {
            ip: None,
            port: None,
            name: "third".into(),
        },
    );
    assert!(to.is_empty(), "no answer past the limit");
    assert!(events.iter().any(|e| matches!(e,
        PeerEvent::Dropped { why, .. } if why.contains("limit of 1 peers"))));
    assert_eq!(lan.peers[0].peer_names(), vec!["bo"]);
}
