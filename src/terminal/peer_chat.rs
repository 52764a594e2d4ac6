//! Peer mode: chat on a LAN with no server, through the library's peer
//! state machine on one UDP socket, in a mio loop with the stdin waker.

use super::command::{self, Command, HELP};
use super::display;
use super::{Ended, Input, NamePrompt, Screen, STDIN};
use crate::peer::net::PeerNode;
use crate::peer::{PeerConfig, PeerEvent};
use mio::{Events, Poll, Token, Waker};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const SOCKET: Token = Token(0);

/// Peer-mode settings from the command line.
pub struct PeerOptions {
    pub name: String,
    pub port: u16,
    pub bind: IpAddr,
    pub broadcast: Vec<IpAddr>,
    pub peers: Vec<SocketAddr>,
    /// Also show datagrams that were dropped, and why.
    pub verbose: bool,
}

pub fn run(opts: PeerOptions) -> Ended {
    let config = PeerConfig {
        broadcast: opts
            .broadcast
            .iter()
            .map(|ip| SocketAddr::new(*ip, opts.port))
            .collect(),
        ..PeerConfig::default()
    };
    let mut node = match PeerNode::bind(opts.bind, opts.port, config) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Ended::failed(format!(
                "cannot bind UDP port {}: it is in use (another peer or mp1d on this \
                 machine?); pick another with --port, and have the others --peer it",
                opts.port
            ))
        }
        Err(e) => return Ended::failed(format!("cannot bind UDP port {}: {e}", opts.port)),
    };
    let Ok(mut poll) = Poll::new() else {
        return Ended::failed("cannot set up the event loop".into());
    };
    let registered = node.register(poll.registry(), SOCKET);
    let waker = Waker::new(poll.registry(), STDIN);
    let (Ok(()), Ok(waker)) = (registered, waker) else {
        return Ended::failed("cannot set up the event loop".into());
    };
    let mut screen = Screen::new(waker, &format!("{}> ", opts.name));
    for p in &opts.peers {
        node.peer.add_peer(*p);
    }
    let mut name_prompt = NamePrompt::default();
    if node.peer.join(&opts.name, Instant::now()) {
        screen.show(&format!(
            "* on {}; joining as {}...",
            node.describe(),
            opts.name
        ));
    } else {
        screen.show(&format!("* on {}", node.describe()));
        screen.show(&display::invalid_name(&opts.name));
        name_prompt.ask(&mut screen);
    }
    let mut bridges = Bridges::default();
    let mut events = Events::with_capacity(16);
    loop {
        node.flush(poll.registry());
        let now = Instant::now();
        let timeout = node
            .peer
            .poll_timeout()
            .map(|t| t.saturating_duration_since(now));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Ended::failed(e.to_string());
            }
        }
        let now = Instant::now();
        if events
            .iter()
            .any(|e| e.token() == SOCKET && e.is_readable())
        {
            node.on_readable(now, &|_| false);
        }
        if node.peer.poll_timeout().is_some_and(|t| t <= now) {
            node.peer.handle_timeout(now);
        }
        for event in node.poll_events() {
            if let Some(line) = display::peer_event(&event, opts.verbose) {
                screen.show(&line);
            }
            match event {
                PeerEvent::NameTaken { .. } => name_prompt.ask(&mut screen),
                PeerEvent::Joined { name } | PeerEvent::Renamed { new: name, .. } => {
                    screen.set_prompt(&format!("{name}> "));
                }
                // Is it a bridge? Only bridges answer.
                PeerEvent::PeerJoined { addr, .. } => node.peer.ask_online_list(addr),
                PeerEvent::PeerLeft { addr, .. } => {
                    bridges.lists.remove(&addr);
                }
                PeerEvent::OnlineList { addr, names, .. } => {
                    bridges.lists.insert(addr, names);
                }
                _ => {}
            }
        }
        for input in screen.take_input() {
            let line = match input {
                Input::Line(l) => l,
                Input::End => return leave(&mut node, &poll),
            };
            if let Some(answer) = name_prompt.answer(&line) {
                let Some(name) = answer else { continue };
                if node.peer.join(name, Instant::now()) {
                    name_prompt.settled();
                    screen.set_prompt(&format!("{name}> "));
                } else {
                    screen.show(&display::invalid_name(name));
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            match command::parse(&line) {
                Ok(Command::Quit) => return leave(&mut node, &poll),
                Ok(cmd) => on_command(&mut node, &screen, &bridges, cmd),
                Err(e) => screen.show(&e),
            }
        }
    }
}

/// What the bridges on the LAN said of their servers' users, for `/msg`
/// to reach them (the `to` extension of docs/PROTOCOL.md).
#[derive(Default)]
struct Bridges {
    lists: HashMap<SocketAddr, Vec<String>>,
}

impl Bridges {
    /// The bridge that last listed `user`.
    fn serving(&self, user: &str) -> Option<SocketAddr> {
        self.lists
            .iter()
            .find(|(_, names)| names.iter().any(|n| n == user))
            .map(|(addr, _)| *addr)
    }
}

fn on_command(node: &mut PeerNode, screen: &Screen, bridges: &Bridges, cmd: Command) {
    let peer = &mut node.peer;
    match cmd {
        Command::Chat(text) => {
            if peer.is_active() {
                peer.chat(&text);
                let me = peer.name().unwrap_or_default();
                screen.show(&display::own_chat(me, &text));
            } else {
                screen.show("not on the LAN yet; wait for \"joined\"");
            }
        }
        Command::Msg { to, text } => {
            for name in to {
                let sent = peer.whisper(&name, &text)
                    || bridges
                        .serving(&name)
                        .is_some_and(|bridge| peer.whisper_via(bridge, &name, &text));
                if sent {
                    screen.show(&display::own_whisper(&[name], &text));
                } else if bridges.lists.is_empty() {
                    screen.show(&format!("msg failed: no peer {name}"));
                } else {
                    screen.show(&format!(
                        "msg failed: no peer or server user {name} (/list asks the bridges again)"
                    ));
                }
            }
        }
        Command::Nick(name) => peer.rename(&name, Instant::now()),
        Command::List => {
            let names = peer.peer_names();
            screen.show(&format!("* peers ({}): {}", names.len(), names.join(", ")));
            // Their servers' users follow as the bridges answer.
            for &bridge in bridges.lists.keys() {
                peer.ask_online_list(bridge);
            }
        }
        Command::Connect { ip, port } => match ip.parse::<IpAddr>() {
            Ok(ip) => {
                peer.add_peer(SocketAddr::new(ip, port));
                screen.show(&format!("* handshaking with {ip}:{port}"));
            }
            Err(_) => screen.show(&format!("/connect: not an IP address: {ip}")),
        },
        Command::Help => screen.show(HELP),
        Command::Who(_)
        | Command::Time
        | Command::Kick(_)
        | Command::Mute(_)
        | Command::Unmute(_)
        | Command::Op(_) => screen.show("that command needs a server (mp1 connect)"),
        Command::Quit => {}
    }
}

/// Broadcasts Disconnect and gives the datagrams a moment to leave.
fn leave(node: &mut PeerNode, poll: &Poll) -> Ended {
    node.peer.leave();
    let until = Instant::now() + Duration::from_millis(500);
    node.flush(poll.registry());
    while node.pending() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        node.flush(poll.registry());
    }
    Ended { code: 0, why: None }
}
