//! A peer driven by the library's UDP driver on its own mio poll, for
//! tests that need real datagrams on loopback or in a network namespace.
#![allow(dead_code)]

use mio::{Events, Poll, Token};
use mp1::peer::net::PeerNode;
use mp1::peer::{PeerConfig, PeerEvent};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub struct TestPeer {
    pub node: PeerNode,
    poll: Poll,
    events: Events,
    /// Everything the peer reported, in order, not yet taken.
    pub seen: Vec<PeerEvent>,
}

impl TestPeer {
    /// A peer on `bind:0` that broadcasts to `broadcast` (may be empty),
    /// with short windows so tests stay quick.
    pub fn bind(bind: IpAddr, port: u16, broadcast: Vec<SocketAddr>) -> TestPeer {
        let node = PeerNode::bind(bind, port, quick(broadcast)).expect("bind UDP");
        TestPeer::from_node(node)
    }

    /// A peer on a socket made elsewhere (in a network namespace); `ip` is
    /// its address on that network.
    pub fn from_socket(
        socket: std::net::UdpSocket,
        ip: IpAddr,
        broadcast: Vec<SocketAddr>,
    ) -> TestPeer {
        TestPeer::from_node(PeerNode::from_std(socket, ip, quick(broadcast)).unwrap())
    }

    fn from_node(mut node: PeerNode) -> TestPeer {
        let poll = Poll::new().unwrap();
        node.register(poll.registry(), Token(0)).unwrap();
        TestPeer {
            node,
            poll,
            events: Events::with_capacity(64),
            seen: Vec::new(),
        }
    }

    pub fn loopback() -> TestPeer {
        TestPeer::bind(IpAddr::from([127, 0, 0, 1]), 0, Vec::new())
    }

    pub fn addr(&self) -> SocketAddr {
        self.node.peer.me()
    }

    /// Runs the peer for `d`.
    pub fn pump(&mut self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= until {
                break;
            }
            if self.node.peer.poll_timeout().is_some_and(|t| t <= now) {
                self.node.peer.handle_timeout(now);
            }
            self.node.flush(self.poll.registry());
            let mut wait = until - now;
            if let Some(t) = self.node.peer.poll_timeout() {
                wait = wait.min(t.saturating_duration_since(now));
            }
            self.poll
                .poll(&mut self.events, Some(wait.max(Duration::from_millis(1))))
                .unwrap();
            if !self.events.is_empty() {
                self.node.on_readable(Instant::now(), &|_| false);
            }
            self.seen.extend(self.node.poll_events());
        }
        self.node.flush(self.poll.registry());
    }

    /// Joins as `name` and pumps until joined or refused.
    pub fn join(&mut self, name: &str) -> bool {
        assert!(self.node.peer.join(name, Instant::now()));
        let found = self.wait_for(Duration::from_secs(3), |e| {
            matches!(e, PeerEvent::Joined { .. } | PeerEvent::NameTaken { .. })
        });
        matches!(found, PeerEvent::Joined { .. })
    }

    /// Pumps until an event matching `pred` arrives; returns it (events
    /// before it stay in `seen`).
    pub fn wait_for(&mut self, limit: Duration, pred: impl Fn(&PeerEvent) -> bool) -> PeerEvent {
        let until = Instant::now() + limit;
        loop {
            if let Some(i) = self.seen.iter().position(&pred) {
                return self.seen.remove(i);
            }
            assert!(Instant::now() < until, "timed out; saw {:?}", self.seen);
            self.pump(Duration::from_millis(20));
        }
    }

    /// Chats received so far (author, text), removed from `seen`.
    pub fn take_chats(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.seen.retain(|e| match e {
            PeerEvent::Chat { from, message, .. } => {
                out.push((from.clone(), message.clone()));
                false
            }
            _ => true,
        });
        out
    }
}

/// Short windows so tests stay quick.
fn quick(broadcast: Vec<SocketAddr>) -> PeerConfig {
    PeerConfig {
        broadcast,
        discovery_window: Duration::from_millis(300),
        handshake_window: Duration::from_millis(300),
        ..PeerConfig::default()
    }
}

/// Pumps several peers in turn for `d`.
pub fn pump_all(peers: &mut [&mut TestPeer], d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        for p in peers.iter_mut() {
            p.pump(Duration::from_millis(5));
        }
    }
}

/// A LAN peer "lan" (already active) and an mp1d bridging as "br" that was
/// told about it by hand (plus `extra` options); returns once they know
/// each other.
pub fn bridged(extra: &[&str]) -> (super::Mp1d, TestPeer) {
    let mut lan = TestPeer::loopback();
    assert!(lan.join("lan"));
    let target = lan.addr().to_string();
    let mut args = vec![
        "--peer-name",
        "br",
        "--broadcast",
        "127.255.255.255",
        "--peer",
        &target,
    ];
    args.extend_from_slice(extra);
    let server = super::Mp1d::start(&args);
    let wait = Duration::from_secs(5);
    let joined = lan.wait_for(wait, |e| matches!(e, PeerEvent::PeerJoined { .. }));
    assert!(
        matches!(joined, PeerEvent::PeerJoined { ref name, .. } if name == "br"),
        "{joined:?}"
    );
    // The bridge hears our OK, then becomes active.
    let deadline = Instant::now() + wait;
    while !server
        .log
        .try_iter()
        .any(|l| l.contains("joined the LAN as \"br\""))
    {
        assert!(Instant::now() < deadline, "bridge never joined");
        lan.pump(Duration::from_millis(50));
    }
    (server, lan)
}
