//! mp1d as a LAN peer (`--peer-name`): the peer state machine's UDP node on
//! the server's poll loop, and the traffic between the LAN and the server's
//! users. One namespace for both: the chat state machine knows the LAN
//! names, and the peer asks it whether a name is taken.

use super::start::StartError;
use super::table::Source;
use super::{Server, Timer};
use crate::chat::LanOut;
use crate::peer::net::PeerNode;
use crate::peer::{PeerConfig, PeerEvent};
use log::{info, warn};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

impl Server {
    /// Joins the LAN as a peer when configured to bridge one.
    pub(super) fn start_bridge(mut self) -> Result<Server, StartError> {
        let Some(b) = self.config.bridge.clone() else {
            return Ok(self);
        };
        let port = if b.port == 0 {
            self.local_addr()?.port()
        } else {
            b.port
        };
        let broadcast = if b.broadcast.is_empty() {
            vec![IpAddr::V4(Ipv4Addr::BROADCAST)]
        } else {
            b.broadcast.clone()
        };
        let config = PeerConfig {
            broadcast: broadcast
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            max_peers: b.max_peers,
            max_greetings_per_second: b.greetings_per_second,
            greeting_burst: b.greeting_burst,
            ..PeerConfig::default()
        };
        let mut node = PeerNode::bind(self.config.bind, port, config)
            .map_err(|e| StartError::Bridge(port, e))?;
        let (_, token) = self.table.add(Source::Bridge);
        node.register(self.el.registry(), token)?;
        info!("bridging the LAN as {:?} on {}", b.name, node.describe());
        let now = Instant::now();
        if !node.peer.join(&b.name, now) {
            let why = format!("invalid peer name {:?}", b.name);
            let e = io::Error::new(io::ErrorKind::InvalidInput, why);
            return Err(StartError::Bridge(port, e));
        }
        for addr in &b.peers {
            node.peer.add_peer(*addr);
        }
        node.flush(self.el.registry());
        self.chat.set_bridge(Some(b.name));
        self.bridge = Some(node);
        self.arm_bridge_timer();
        Ok(self)
    }

    /// The UDP address of the LAN bridge, if there is one.
    pub fn bridge_addr(&self) -> Option<SocketAddr> {
        self.bridge.as_ref().map(|n| n.peer.me())
    }

    pub(super) fn on_bridge_event(&mut self, readable: bool) {
        if readable {
            if let Some(node) = self.bridge.as_mut() {
                let chat = &self.chat;
                node.on_readable(Instant::now(), &|name| chat.is_taken(name));
            }
            self.on_lan_events();
        }
        self.flush_bridge();
    }

    /// Turns what the LAN said into server state and messages.
    fn on_lan_events(&mut self) {
        let Some(node) = self.bridge.as_mut() else {
            return;
        };
        for event in node.poll_events() {
            match event {
                PeerEvent::Joined { name } => info!("joined the LAN as {name:?}"),
                PeerEvent::NameTaken { name } => {
                    // The bridge has no user to ask: try the next name.
                    self.lan_name_tries += 1;
                    let base: String = self
                        .config
                        .bridge
                        .as_ref()
                        .map_or("mp1d", |b| &b.name)
                        .chars()
                        .take(26)
                        .collect();
                    let next = format!("{base}-{}", self.lan_name_tries);
                    warn!("LAN name {name:?} is taken; trying {next:?}");
                    let node = self.bridge.as_mut().expect("bridge exists");
                    node.peer.join(&next, Instant::now());
                    self.chat.set_bridge(Some(next));
                }
                PeerEvent::PeerJoined { name, addr } => self.chat.handle_lan_join(&name, addr),
                PeerEvent::PeerLeft { addr, .. } => self.chat.handle_lan_leave(addr),
                PeerEvent::PeerRenamed { new, addr, .. } => self.chat.handle_lan_rename(addr, &new),
                PeerEvent::Chat { from, message, .. } => {
                    if self.config.log_chat {
                        info!("LAN chat {from}: {message}");
                    }
                    self.chat.handle_lan_chat(&from, message)
                }
                PeerEvent::Whisper {
                    from,
                    message,
                    to: Some(user),
                    ..
                } => {
                    if self.config.log_chat {
                        info!("LAN whisper {from} -> {user}: {message}");
                    }
                    if !self.chat.handle_lan_whisper(&from, &user, message) {
                        let node = self.bridge.as_mut().expect("bridge exists");
                        let why = format!("UserDoesNotExist: {user}");
                        node.peer.whisper(&from, &why);
                    }
                }
                PeerEvent::Whisper { from, to: None, .. } => {
                    let level = self.noisy(log::Level::Info);
                    log::log!(
                        level,
                        "whisper from LAN peer {from} to the bridge itself: not delivered"
                    )
                }
                PeerEvent::OnlineListRequested { addr } => {
                    let names = self.chat.user_names();
                    let node = self.bridge.as_mut().expect("bridge exists");
                    node.peer.send_online_list(addr, &names);
                }
                PeerEvent::Dropped { from, why } => {
                    let level = self.noisy(log::Level::Info);
                    log::log!(level, "LAN datagram from {from} dropped: {why}")
                }
                PeerEvent::GreetingsDropped { count } => greetings_dropped(count),
                PeerEvent::Discovered { .. }
                | PeerEvent::Renamed { .. }
                | PeerEvent::RenameRefused { .. }
                | PeerEvent::OnlineList { .. } => {}
            }
        }
        self.apply_effects();
    }

    pub(super) fn flush_bridge(&mut self) {
        let now = Instant::now();
        let Some(node) = self.bridge.as_mut() else {
            return;
        };
        if node.peer.poll_timeout().is_some_and(|t| t <= now) {
            node.peer.handle_timeout(now);
            self.on_lan_events();
        }
        if let Some(node) = self.bridge.as_mut() {
            node.flush(self.el.registry());
        }
        self.arm_bridge_timer();
    }

    /// Makes sure the loop wakes for the peer's next deadline: a timer is
    /// set unless an earlier one is already pending.
    fn arm_bridge_timer(&mut self) {
        let Some(next) = self.bridge.as_ref().and_then(|n| n.peer.poll_timeout()) else {
            return;
        };
        if self.bridge_wake.arm(next) {
            self.el.timers.set(next, Timer::Bridge);
        }
    }

    /// Sends a server user's chat or whisper to the LAN.
    pub(super) fn relay_to_lan(&mut self, out: LanOut) {
        let Some(node) = self.bridge.as_mut() else {
            return;
        };
        match out {
            LanOut::Chat { from, message } => node.peer.chat_as(Some(&from), &message),
            LanOut::Whisper { from, to, message } => {
                node.peer.whisper_as(Some(&from), &to, &message);
            }
        }
    }
}

/// Greetings the bridge did not answer (told at most once a second), and
/// the options that govern it.
fn greetings_dropped(count: u64) {
    warn!(
        "LAN bridge: {count} greetings (Discovery/Handshake) over the rate limit not answered; \
         their peers retry. Raise --lan-greetings-per-second or --lan-greeting-burst \
         (at most 4 a second from one address)"
    );
}
