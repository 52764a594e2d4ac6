//! Simulated UDP peers through the server's LAN bridge: each handshakes
//! from its own socket, then only receives the chats the bridge relays
//! (their stamps tallied like the clients'), and says goodbye at the end.

use super::{parse_stamp, Runner, PEER_BASE};
use crate::accounting::Receiver;
use mio::net::UdpSocket;
use mio::{Interest, Token};
use mp1::protocol::{decode_peer, PeerMessage, Status};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(super) struct Peer {
    socket: UdpSocket,
    /// Its `Handshake`, sent again until it is answered.
    handshake: Vec<u8>,
    /// Handshakes sent, and when the next is due if none is answered.
    tries: u32,
    next_try: Instant,
    joined: bool,
    pub rx: Receiver,
}

/// How long a peer waits for an answer to its `tries`-th handshake before
/// sending it again: doubling from 250 ms up to 2 s, the longest wait
/// stretched by up to half by the peer's number so that the peers a
/// rate-limited bridge turned away do not all come back at the same
/// moment (mp1d answers a limited number of greetings a second, from all
/// peers together).
fn backoff(tries: u32, peer: usize) -> Duration {
    let base = Duration::from_millis(250) * 2u32.pow(tries.clamp(1, 4) - 1);
    base + base * (peer % 16) as u32 / 32
}

/// Why not every peer joined, with what to do about it: a bridge that
/// answered nobody is probably not there (or not bridging); one that
/// answered some turned the rest away for its greeting rate limit.
fn handshake_failure(joined: usize, peers: usize, bridge: SocketAddr, waited: Duration) -> String {
    let head = format!(
        "only {joined} of {peers} peers got a HandshakeResponse from the bridge at {bridge} \
         within {waited:?}"
    );
    if joined == 0 {
        return format!("{head} (start mp1d with --peer-name NAME --broadcast 127.255.255.255)");
    }
    format!(
        "{head}, each handshake sent again until answered: the bridge answers a limited number \
         of greetings a second (mp1d's --lan-greetings-per-second); raise that, or give the \
         peers longer with --connect-timeout"
    )
}

impl Runner<'_> {
    pub(super) fn join_peers(&mut self) -> Result<(), String> {
        if self.p.peers == 0 {
            return Ok(());
        }
        for i in 0..self.p.peers {
            self.add_peer(i)?;
        }
        let deadline = Instant::now() + self.p.connect_timeout;
        loop {
            self.send_handshakes()?;
            let joined = self.peers.iter().filter(|p| p.joined).count();
            let all = self.p.peers as u64;
            self.progress.show("peers", joined as u64, all, "peers");
            if joined == self.p.peers {
                return Ok(());
            }
            if Instant::now() > deadline {
                let (peers, bridge) = (self.p.peers, self.p.bridge);
                return Err(handshake_failure(
                    joined,
                    peers,
                    bridge,
                    self.p.connect_timeout,
                ));
            }
            self.turn(Some(Duration::from_millis(50)))?;
        }
    }

    /// Peer `i`'s socket, registered; its handshake is sent by
    /// `send_handshakes`.
    fn add_peer(&mut self, i: usize) -> Result<(), String> {
        let std = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut socket = UdpSocket::from_std(std);
        let me = socket.local_addr().map_err(|e| e.to_string())?;
        self.poll
            .registry()
            .register(&mut socket, Token(PEER_BASE + i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let hs = PeerMessage::Handshake {
            ip: Some(me.ip().to_string()),
            port: Some(me.port()),
            name: format!("p{i}"),
        };
        self.peers.push(Peer {
            socket,
            handshake: hs.encode(),
            tries: 0,
            next_try: Instant::now(),
            joined: false,
            rx: Receiver::default(),
        });
        Ok(())
    }

    /// Sends the handshake of every peer not answered yet whose wait is
    /// over: the bridge may have dropped it (its greeting rate limit).
    fn send_handshakes(&mut self) -> Result<(), String> {
        let now = Instant::now();
        for (i, peer) in self.peers.iter_mut().enumerate() {
            if peer.joined || now < peer.next_try {
                continue;
            }
            match peer.socket.send_to(&peer.handshake, self.p.bridge) {
                // A full socket buffer: the next round sends it.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(format!("p{i}: {e}")),
                Ok(_) => {}
            }
            peer.tries += 1;
            peer.next_try = now + backoff(peer.tries, i);
        }
        Ok(())
    }

    /// Reads what peer `i` received: its handshake's answer, relayed chats.
    pub(super) fn read_peer(&mut self, i: usize) -> Result<usize, String> {
        let mut total = 0;
        loop {
            let (n, _) = match self.peers[i].socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("p{i}: {e}")),
            };
            total += n;
            let now = self.now_ns();
            match decode_peer(&self.buf[..n]) {
                Ok(PeerMessage::HandshakeResponse { status, .. }) => {
                    if status != Status::Ok {
                        return Err(format!("peer p{i}: the bridge refused the name"));
                    }
                    self.peers[i].joined = true;
                }
                Ok(PeerMessage::SendChat { message, .. }) => {
                    if let Some((seq, sender, _)) = parse_stamp(message.as_bytes()) {
                        self.peers[i].rx.record(seq, sender);
                        if let Some(f) = self.flights.get(seq as usize) {
                            if f.measured {
                                let us = now.saturating_sub(f.sent_ns) / 1000;
                                let _ = self.out.peer_delivery_us.record(us.max(1));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Every peer says goodbye to the bridge.
    pub(super) fn leave_bridge(&mut self) {
        for p in &mut self.peers {
            let _ = p
                .socket
                .send_to(&PeerMessage::Disconnect.encode(), self.p.bridge);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_back_off_and_spread() {
        let ms = |tries, peer| backoff(tries, peer).as_millis();
        assert_eq!(
            [ms(1, 0), ms(2, 0), ms(3, 0), ms(4, 0), ms(9, 0)],
            [250, 500, 1000, 2000, 2000]
        );
        // Peers wait different times, up to half as long again.
        assert_eq!([ms(4, 1), ms(4, 15), ms(4, 16)], [2062, 2937, 2000]);
    }

    #[test]
    fn the_hint_names_the_likely_cause() {
        let bridge = "127.0.0.1:1".parse().unwrap();
        let none = handshake_failure(0, 200, bridge, Duration::from_secs(30));
        assert!(
            none.contains("only 0 of 200") && none.contains("--peer-name"),
            "{none}"
        );
        let some = handshake_failure(50, 200, bridge, Duration::from_secs(30));
        assert!(some.contains("only 50 of 200"), "{some}");
        assert!(some.contains("--lan-greetings-per-second"), "{some}");
        assert!(!some.contains("--peer-name"), "{some}");
    }
}
