//! Simulated UDP peers through the server's LAN bridge: each handshakes
//! from its own socket, then only receives the chats the bridge relays
//! (their stamps tallied like the clients'), and says goodbye at the end.

use super::{parse_stamp, Runner, PEER_BASE};
use crate::accounting::Receiver;
use mio::net::UdpSocket;
use mio::{Interest, Token};
use mp1::protocol::{decode_peer, PeerMessage, Status};
use std::io;
use std::time::{Duration, Instant};

pub(super) struct Peer {
    socket: UdpSocket,
    joined: bool,
    pub rx: Receiver,
}

impl Runner<'_> {
    pub(super) fn join_peers(&mut self) -> Result<(), String> {
        if self.p.peers == 0 {
            return Ok(());
        }
        for i in 0..self.p.peers {
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
            socket
                .send_to(&hs.encode(), self.p.bridge)
                .map_err(|e| e.to_string())?;
            self.peers.push(Peer {
                socket,
                joined: false,
                rx: Receiver::default(),
            });
        }
        let deadline = Instant::now() + self.p.connect_timeout;
        loop {
            let joined = self.peers.iter().filter(|p| p.joined).count();
            self.progress
                .show("peers", joined as u64, self.p.peers as u64);
            if joined == self.p.peers {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "only {joined} of {} peers got a HandshakeResponse from the bridge at {} \
                     (start mp1d with --peer-name NAME --broadcast 127.255.255.255)",
                    self.p.peers, self.p.bridge
                ));
            }
            self.turn(Some(Duration::from_millis(50)))?;
        }
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
