//! One load run on one mio loop: connect and log in the simulated clients
//! in batches, handshake the simulated UDP peers with the server's bridge,
//! then drive the closed- or open-loop chat workload and record every
//! delivery.

use crate::accounting::{tally, Receiver, Tally};
use crate::procfs;
use crate::progress::Progress;
use crate::resp;
use hdrhistogram::Histogram;
use mio::net::{TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
pub use mp1::protocol::RequestFraming as Framing;
use mp1::protocol::{
    decode_peer, encode_request, Frame, PeerMessage, Request, Splitter, Status, AUTO_FRAMING_WAIT,
};
use mp1::websocket::{decode_server_frame, masked_frame, OP_CLOSE, OP_TEXT};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Tokens at and above this are UDP peers.
const PEER_BASE: usize = 1 << 30;
/// Tokens from this up to `PEER_BASE` are Redis publishers.
const PUB_BASE: usize = 1 << 29;
/// The Redis channel every simulated client subscribes to.
const CHANNEL: &[u8] = b"mp1";

/// What the simulated clients speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// MP1: log in, then `SendChat`; deliveries are `SendChatFromUser`.
    Mp1,
    /// Redis pub/sub, the baseline: each client SUBSCRIBEs to one
    /// channel; each sender PUBLISHes on its own second connection (a
    /// subscribed connection cannot publish); deliveries are `message`
    /// pushes carrying the same text an MP1 chat would.
    Redis,
}

#[derive(Clone, Debug)]
pub enum Mode {
    /// Message k+1 goes out once every TCP receiver has message k.
    Closed { messages: u64, warmup: u64 },
    /// `rate` messages/s from the senders on a fixed schedule for
    /// `duration`; latency counts from the intended send time.
    Open {
        rate: f64,
        duration: Duration,
        warmup: Duration,
    },
}

#[derive(Clone, Debug)]
pub struct Params {
    pub protocol: Protocol,
    /// MP1 over WebSocket (`--transport ws`): the target is mp1d's `--http`
    /// address, each request a masked text frame.
    pub websocket: bool,
    /// The servers (cluster nodes): client i connects to `targets[i % n]`.
    pub targets: Vec<SocketAddr>,
    pub clients: usize,
    pub peers: usize,
    /// UDP address of the server's bridge.
    pub bridge: SocketAddr,
    pub mode: Mode,
    pub senders: usize,
    pub payload: usize,
    /// Connections being set up at once.
    pub batch: usize,
    /// New connections per second at most (0: as fast as `batch` allows).
    pub ramp: f64,
    pub connect_timeout: Duration,
    /// Closed loop: give up on one message after this.
    pub msg_timeout: Duration,
    /// Open loop: wait this long for stragglers after the last send.
    pub drain: Duration,
    pub framing: Framing,
    pub show_progress: bool,
    /// Measure these server processes' CPU and memory (a cluster's nodes
    /// and its Redis).
    pub server_pids: Vec<u32>,
}

/// Server and generator CPU over the measured workload (not the logins),
/// and the server's resident memory at its end.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// All the server processes together.
    pub server_cpu_s: Option<f64>,
    pub server_rss_kib: Option<u64>,
    /// Each server process: its pid and CPU seconds.
    pub server_cpu_each: Vec<(u32, f64)>,
    pub loadgen_cpu_s: f64,
    pub wall_s: f64,
}

/// What a run measured.
pub struct Outcome {
    pub clients: usize,
    pub peers: usize,
    /// Connect + login latency per client, µs.
    pub login_us: Histogram<u64>,
    pub connect_s: f64,
    /// Server CPU while the clients connected and logged in (every login
    /// is announced to everyone: a storm of N²/2 deliveries).
    pub login_cpu_s: Option<f64>,
    /// Per delivery (TCP), µs.
    pub delivery_us: Histogram<u64>,
    /// Per delivery to the clients of each target, µs (several targets).
    pub delivery_by_target: Vec<(SocketAddr, Histogram<u64>)>,
    /// Closed loop: send until the last TCP receiver got it, µs.
    pub fanout_us: Histogram<u64>,
    /// Per delivery to UDP peers, µs.
    pub peer_delivery_us: Histogram<u64>,
    pub tcp: Tally,
    pub udp: Tally,
    pub sent: u64,
    /// Measured deliveries per second (TCP).
    pub deliveries_per_s: f64,
    /// Open loop: what the schedule offered.
    pub offered_per_s: Option<f64>,
    /// Seconds from the first measured send to the last delivery.
    pub measure_s: f64,
    /// Closed loop: messages given up on after the message timeout.
    pub timeouts: u64,
    pub usage: Usage,
}

enum Phase {
    Connecting,
    LoggingIn,
    Ready,
}

struct Client {
    stream: TcpStream,
    /// Index into `Params::targets`.
    target: usize,
    phase: Phase,
    started: Instant,
    splitter: Splitter,
    /// MP1 requests end with a line break.
    newline: bool,
    /// WebSocket: the server's 101 has been read.
    ws_open: bool,
    /// Redis: bytes of a value that has not fully arrived.
    partial: Vec<u8>,
    out: Vec<u8>,
    rx: Receiver,
}

struct Peer {
    socket: UdpSocket,
    joined: bool,
    rx: Receiver,
}

/// A chat in flight: its sender, intended send time, receivers still due.
struct Flight {
    sender: usize,
    sent_ns: u64,
    due: usize,
    measured: bool,
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

pub fn run(p: &Params) -> Result<Outcome, String> {
    Runner::new(p)?.go()
}

struct Runner<'a> {
    p: &'a Params,
    poll: Poll,
    events: Events,
    base: Instant,
    clients: Vec<Client>,
    /// Redis: sender i publishes through `publishers[i]`.
    publishers: Vec<Client>,
    peers: Vec<Peer>,
    buf: Vec<u8>,
    flights: Vec<Flight>,
    /// (seq, sender) of every chat sent, for the tally.
    sent: Vec<(u64, usize)>,
    out: Outcome,
    first_measured_ns: Option<u64>,
    last_delivery_ns: u64,
    /// (server CPU, own CPU, when) at the first measured send.
    cpu_at_start: Option<(Vec<Option<f64>>, f64, Instant)>,
    progress: Progress,
}

impl<'a> Runner<'a> {
    fn new(p: &'a Params) -> Result<Runner<'a>, String> {
        if p.senders == 0 || p.senders > p.clients {
            return Err(format!(
                "--senders must be 1..={} (the number of clients)",
                p.clients
            ));
        }
        Ok(Runner {
            p,
            poll: Poll::new().map_err(|e| e.to_string())?,
            events: Events::with_capacity(4096),
            base: Instant::now(),
            clients: Vec::with_capacity(p.clients),
            publishers: Vec::new(),
            peers: Vec::with_capacity(p.peers),
            buf: vec![0; 1 << 16],
            flights: Vec::new(),
            sent: Vec::new(),
            out: Outcome {
                clients: p.clients,
                peers: p.peers,
                login_us: hist(),
                connect_s: 0.0,
                login_cpu_s: None,
                delivery_us: hist(),
                delivery_by_target: if p.targets.len() > 1 {
                    p.targets.iter().map(|t| (*t, hist())).collect()
                } else {
                    Vec::new()
                },
                fanout_us: hist(),
                peer_delivery_us: hist(),
                tcp: Tally::default(),
                udp: Tally::default(),
                sent: 0,
                deliveries_per_s: 0.0,
                offered_per_s: None,
                measure_s: 0.0,
                timeouts: 0,
                usage: Usage::default(),
            },
            first_measured_ns: None,
            last_delivery_ns: 0,
            cpu_at_start: None,
            progress: Progress::new(p.show_progress),
        })
    }

    fn cpu_now(&self) -> (Vec<Option<f64>>, f64, Instant) {
        (self.servers_cpu(), procfs::own_cpu_s(), Instant::now())
    }

    /// Each server process's CPU seconds so far.
    fn servers_cpu(&self) -> Vec<Option<f64>> {
        self.p
            .server_pids
            .iter()
            .map(|&pid| procfs::process_cpu_s(pid))
            .collect()
    }

    /// CPU used from the first measured send until now: the measured
    /// window, without the logins and the warm-up.
    fn take_usage(&mut self) {
        let Some((server0, own0, t0)) = self.cpu_at_start.take() else {
            return;
        };
        let (server1, own1, _) = self.cpu_now();
        let pids = &self.p.server_pids;
        let used: Vec<Option<f64>> = server1
            .iter()
            .zip(&server0)
            .map(|(a, b)| Some((*a)? - (*b)?))
            .collect();
        let each = pids
            .iter()
            .zip(&used)
            .filter_map(|(&pid, cpu)| Some((pid, (*cpu)?)))
            .collect();
        let rss: Option<u64> = pids.iter().map(|&pid| procfs::process_rss_kib(pid)).sum();
        self.out.usage = Usage {
            server_cpu_s: total_cpu(used),
            server_rss_kib: rss.filter(|_| !pids.is_empty()),
            server_cpu_each: each,
            loadgen_cpu_s: own1 - own0,
            wall_s: t0.elapsed().as_secs_f64(),
        };
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn go(mut self) -> Result<Outcome, String> {
        let t0 = Instant::now();
        let cpu0 = total_cpu(self.servers_cpu());
        self.connect_all()?;
        self.join_peers()?;
        self.out.connect_s = t0.elapsed().as_secs_f64();
        // Until the storm's last announcements are out.
        self.settle(Duration::from_millis(300))?;
        let cpu1 = total_cpu(self.servers_cpu());
        self.out.login_cpu_s = cpu1.zip(cpu0).map(|(b, a)| b - a);
        match self.p.mode.clone() {
            Mode::Closed { messages, warmup } => self.closed_loop(messages, warmup)?,
            Mode::Open {
                rate,
                duration,
                warmup,
            } => self.open_loop(rate, duration, warmup)?,
        }
        // `take_usage` recorded the measured window; the settles around
        // it are not part of it.
        self.progress.done();
        self.finish();
        Ok(self.out)
    }

    // ------------------------------------------------------ set-up

    fn connect_all(&mut self) -> Result<(), String> {
        let mut ready = 0;
        let mut started = 0;
        let t0 = Instant::now();
        let ramp = self.p.ramp;
        while ready < self.p.clients {
            // The ramp: how many may have started by now.
            let allowed = if ramp > 0.0 {
                1 + (t0.elapsed().as_secs_f64() * ramp) as usize
            } else {
                usize::MAX
            };
            while started < self.p.clients && started - ready < self.p.batch && started < allowed {
                self.start_client(started)?;
                started += 1;
            }
            let wait = if ramp > 0.0 {
                (1.0 / ramp).min(0.05)
            } else {
                0.05
            };
            self.turn(Some(Duration::from_secs_f64(wait)))?;
            self.end_unanswered_logins()?;
            ready = self
                .clients
                .iter()
                .filter(|c| matches!(c.phase, Phase::Ready))
                .count();
            self.progress
                .show("login", ready as u64, self.p.clients as u64);
            for (i, c) in self.clients.iter().enumerate() {
                if !matches!(c.phase, Phase::Ready) && c.started.elapsed() > self.p.connect_timeout
                {
                    return Err(format!(
                        "client c{i}: no login within {:?} ({} of {} logged in)",
                        self.p.connect_timeout, ready, self.p.clients
                    ));
                }
            }
        }
        Ok(())
    }

    fn start_client(&mut self, i: usize) -> Result<(), String> {
        let mut out = Vec::new();
        match self.p.protocol {
            Protocol::Mp1 if self.p.websocket => {
                let login = Request::Login {
                    name: Some(format!("c{i}")),
                };
                let mut json = Vec::new();
                encode_request(&login, false, &mut json);
                out.extend_from_slice(
                    format!(
                        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
                         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                         Sec-WebSocket-Key: bG9hZGdlbi1sb2FkZ2VuIQ==\r\n\r\n",
                        self.p.targets[i % self.p.targets.len()]
                    )
                    .as_bytes(),
                );
                ws_frame(&json, &mut out);
            }
            Protocol::Mp1 => {
                let login = Request::Login {
                    name: Some(format!("c{i}")),
                };
                encode_request(&login, self.p.framing == Framing::Newline, &mut out);
            }
            Protocol::Redis => resp::command(&[b"SUBSCRIBE", CHANNEL], &mut out),
        }
        let target = i % self.p.targets.len();
        let client = self.connect(Token(i), target, out)?;
        self.clients.push(client);
        if self.p.protocol == Protocol::Redis && i < self.p.senders {
            let publisher = self.connect(Token(PUB_BASE + i), target, Vec::new())?;
            self.publishers.push(publisher);
        }
        Ok(())
    }

    /// `Framing::Auto`: a client whose bare `Login` went unanswered ends it
    /// with a line break, and frames by lines from then on.
    fn end_unanswered_logins(&mut self) -> Result<(), String> {
        if self.p.framing != Framing::Auto || self.p.protocol != Protocol::Mp1 {
            return Ok(());
        }
        for (i, c) in self.clients.iter_mut().enumerate() {
            let waiting = matches!(c.phase, Phase::LoggingIn) && !c.newline;
            if waiting && c.started.elapsed() >= AUTO_FRAMING_WAIT {
                c.newline = true;
                c.out.push(b'\n');
                flush(c).map_err(|e| format!("c{i}: write: {e}"))?;
            }
        }
        Ok(())
    }

    /// Opens a connection to `targets[target]` that sends `out` once
    /// connected.
    fn connect(&mut self, token: Token, target: usize, out: Vec<u8>) -> Result<Client, String> {
        let addr = self.p.targets[target];
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        self.poll
            .registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        Ok(Client {
            stream,
            target,
            phase: Phase::Connecting,
            started: Instant::now(),
            splitter: Splitter::new(),
            newline: self.p.framing == Framing::Newline,
            ws_open: false,
            partial: Vec::new(),
            out,
            rx: Receiver::default(),
        })
    }

    fn join_peers(&mut self) -> Result<(), String> {
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

    /// Reads until nothing has arrived for `quiet` (the join storm ends).
    fn settle(&mut self, quiet: Duration) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.turn(Some(quiet))? == 0 {
                return Ok(());
            }
        }
        Ok(())
    }

    // ---------------------------------------------------- workloads

    fn closed_loop(&mut self, messages: u64, warmup: u64) -> Result<(), String> {
        let total = messages + warmup;
        for k in 0..total {
            let sender = (k % self.p.senders as u64) as usize;
            let now = self.now_ns();
            self.send_chat(sender, now, k >= warmup)?;
            let sent_at = Instant::now();
            let seq = k as usize;
            while self.flights[seq].due > 0 {
                if sent_at.elapsed() > self.p.msg_timeout {
                    self.out.timeouts += 1;
                    break;
                }
                self.turn(Some(Duration::from_millis(100)))?;
            }
            self.progress.show("closed", k + 1, total);
        }
        self.take_usage();
        // Let the peers' datagrams arrive too.
        self.settle(Duration::from_millis(200))
    }

    fn open_loop(&mut self, rate: f64, duration: Duration, warmup: Duration) -> Result<(), String> {
        if rate <= 0.0 {
            return Err("--rate must be positive".into());
        }
        self.out.offered_per_s = Some(rate * (self.p.clients - 1 + self.p.peers) as f64);
        let interval = 1e9 / rate;
        let start = self.now_ns();
        let warm_ns = warmup.as_nanos() as u64;
        let end = start + warm_ns + duration.as_nanos() as u64;
        let mut k: u64 = 0;
        loop {
            let intended = start + (k as f64 * interval) as u64;
            if intended >= end {
                break;
            }
            let now = self.now_ns();
            if intended <= now {
                let sender = (k % self.p.senders as u64) as usize;
                self.send_chat(sender, intended, intended >= start + warm_ns)?;
                k += 1;
                continue;
            }
            self.turn(Some(Duration::from_nanos(intended - now)))?;
            self.progress.show(
                "open",
                now.saturating_sub(start) / 1_000_000,
                (end - start) / 1_000_000,
            );
        }
        let drain_until = Instant::now() + self.p.drain;
        while Instant::now() < drain_until && self.flights.iter().any(|f| f.due > 0) {
            self.turn(Some(Duration::from_millis(50)))?;
        }
        self.take_usage();
        self.settle(Duration::from_millis(200))
    }

    /// Sends chat number `flights.len()` from `sender`, stamped `sent_ns`.
    fn send_chat(&mut self, sender: usize, sent_ns: u64, measured: bool) -> Result<(), String> {
        let seq = self.flights.len() as u64;
        let mut text = format!("s={seq};k={sender};t={sent_ns};");
        while text.len() < self.p.payload {
            text.push('x');
        }
        let c = match self.p.protocol {
            Protocol::Mp1 if self.p.websocket => {
                let c = &mut self.clients[sender];
                let mut json = Vec::new();
                encode_request(&Request::SendChat { message: text }, false, &mut json);
                ws_frame(&json, &mut c.out);
                c
            }
            Protocol::Mp1 => {
                let c = &mut self.clients[sender];
                let chat = Request::SendChat { message: text };
                encode_request(&chat, c.newline, &mut c.out);
                c
            }
            Protocol::Redis => {
                let c = &mut self.publishers[sender];
                resp::command(&[b"PUBLISH", CHANNEL, text.as_bytes()], &mut c.out);
                c
            }
        };
        flush(c).map_err(|e| format!("c{sender}: write: {e}"))?;
        if measured && self.first_measured_ns.is_none() {
            self.first_measured_ns = Some(sent_ns);
            self.cpu_at_start = Some(self.cpu_now());
        }
        self.flights.push(Flight {
            sender,
            sent_ns,
            due: self.p.clients - 1,
            measured,
        });
        self.sent.push((seq, sender));
        self.out.sent += 1;
        Ok(())
    }

    // ------------------------------------------------------ the loop

    /// One poll and everything it reported; returns bytes read.
    fn turn(&mut self, timeout: Option<Duration>) -> Result<usize, String> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e.to_string()),
        }
        let tokens: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| (e.token().0, e.is_readable(), e.is_writable()))
            .collect();
        let mut read = 0;
        for (t, readable, writable) in tokens {
            if t >= PEER_BASE {
                read += self.read_peer(t - PEER_BASE)?;
                continue;
            }
            if t >= PUB_BASE {
                read += self.on_publisher(t - PUB_BASE, readable, writable)?;
                continue;
            }
            if writable {
                self.on_writable(t)?;
            }
            if readable {
                read += self.read_client(t)?;
            }
        }
        Ok(read)
    }

    fn on_writable(&mut self, i: usize) -> Result<(), String> {
        let target = self.p.targets[self.clients[i].target];
        on_writable(&mut self.clients[i], target).map_err(|e| format!("c{i}: {e}"))
    }

    /// A Redis publisher: finishes connecting, writes, and reads (and
    /// drops) PUBLISH's receiver counts.
    fn on_publisher(&mut self, i: usize, readable: bool, writable: bool) -> Result<usize, String> {
        let target = self.p.targets[self.publishers[i].target];
        let c = &mut self.publishers[i];
        if writable {
            on_writable(c, target).map_err(|e| format!("publisher {i}: {e}"))?;
        }
        let mut total = 0;
        if !readable {
            return Ok(0);
        }
        loop {
            let n = match c.stream.read(&mut self.buf) {
                Ok(0) => return Err(format!("publisher {i}: the server closed the connection")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("publisher {i}: read: {e}")),
            };
            total += n;
            // Replies are ":N\r\n" receiver counts; an error starts "-".
            if let Some(err) = self.buf[..n].iter().position(|&b| b == b'-') {
                let end = n.min(err + 80);
                let text = String::from_utf8_lossy(&self.buf[err..end]);
                return Err(format!("publisher {i}: Redis said {}", text.trim_end()));
            }
        }
        Ok(total)
    }

    fn read_client(&mut self, i: usize) -> Result<usize, String> {
        let mut total = 0;
        loop {
            let n = match self.clients[i].stream.read(&mut self.buf) {
                Ok(0) => return Err(format!("c{i}: the server closed the connection")),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(total),
                Err(e) => return Err(format!("c{i}: read: {e}")),
            };
            total += n;
            let now = self.now_ns();
            if self.p.protocol == Protocol::Redis {
                self.on_resp(i, n, now)?;
                if n < self.buf.len() {
                    return Ok(total);
                }
                continue;
            }
            if self.p.websocket {
                self.on_ws(i, n, now)?;
                if n < self.buf.len() {
                    return Ok(total);
                }
                continue;
            }
            // Out of `self` while the replies are handled.
            let mut splitter = std::mem::take(&mut self.clients[i].splitter);
            let buf = std::mem::take(&mut self.buf);
            let handled = self.on_bytes(i, &mut splitter, &buf[..n], now);
            self.clients[i].splitter = splitter;
            self.buf = buf;
            handled?;
            if n < self.buf.len() {
                return Ok(total);
            }
        }
    }

    /// Handles the replies in `bytes`, read from client `i`.
    fn on_bytes(
        &mut self,
        i: usize,
        splitter: &mut Splitter,
        bytes: &[u8],
        now: u64,
    ) -> Result<(), String> {
        let mut frames = splitter.frames(bytes, 1 << 20);
        while let Some(f) = frames.next_frame() {
            let seen = match f {
                Frame::Object(o) => classify(o),
                Frame::Garbage | Frame::Oversized => {
                    return Err(format!(
                        "c{i}: the server sent something that is not a JSON object"
                    ))
                }
                Frame::LineBreak => continue,
            };
            match seen {
                Seen::Chat { seq, sender } => self.on_delivery(i, seq, sender, now),
                Seen::LoginOk => {
                    let c = &mut self.clients[i];
                    c.phase = Phase::Ready;
                    let us = c.started.elapsed().as_micros() as u64;
                    let _ = self.out.login_us.record(us.max(1));
                }
                Seen::LoginRefused(why) => return Err(format!("c{i}: login refused: {why}")),
                Seen::Disconnect(why) => {
                    return Err(format!("c{i}: disconnected by the server: {why}"))
                }
                Seen::Other => {}
            }
        }
        Ok(())
    }

    /// Handles the WebSocket bytes in `buf[..n]`, read from client `i`:
    /// the server's 101, then frames whose text is MP1.
    fn on_ws(&mut self, i: usize, n: usize, now: u64) -> Result<(), String> {
        let mut bytes = std::mem::take(&mut self.clients[i].partial);
        bytes.extend_from_slice(&self.buf[..n]);
        let mut at = 0;
        if !self.clients[i].ws_open {
            let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                self.clients[i].partial = bytes;
                return Ok(());
            };
            if !bytes.starts_with(b"HTTP/1.1 101") {
                let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
                return Err(format!("c{i}: no WebSocket: {head}"));
            }
            self.clients[i].ws_open = true;
            at = end + 4;
        }
        let mut splitter = std::mem::take(&mut self.clients[i].splitter);
        let result = loop {
            let f = match decode_server_frame(&bytes[at..]) {
                Ok(Some(f)) => f,
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("c{i}: {e}")),
            };
            let payload = &bytes[at + f.payload.start..at + f.payload.end];
            at += f.len;
            match f.opcode {
                OP_TEXT => {
                    if let Err(e) = self.on_bytes(i, &mut splitter, payload, now) {
                        break Err(e);
                    }
                }
                OP_CLOSE => break Err(format!("c{i}: the server closed the WebSocket")),
                _ => {}
            }
        };
        self.clients[i].splitter = splitter;
        bytes.drain(..at);
        self.clients[i].partial = bytes;
        result
    }

    /// Handles the Redis values in `buf[..n]`, read from client `i`.
    fn on_resp(&mut self, i: usize, n: usize, now: u64) -> Result<(), String> {
        let mut bytes = std::mem::take(&mut self.clients[i].partial);
        bytes.extend_from_slice(&self.buf[..n]);
        let mut at = 0;
        let result = loop {
            let (value, used) = match resp::next(&bytes[at..]) {
                Ok(Some(v)) => v,
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("c{i}: {e}")),
            };
            at += used;
            match value {
                resp::Value::Message(text) => {
                    if let Some((seq, sender, _)) = parse_stamp(text) {
                        // Redis also delivers to the sender's own
                        // subscription; MP1 does not.
                        if sender != i {
                            self.on_delivery(i, seq, sender, now);
                        }
                    }
                }
                resp::Value::Subscribed => {
                    let c = &mut self.clients[i];
                    c.phase = Phase::Ready;
                    let us = c.started.elapsed().as_micros() as u64;
                    let _ = self.out.login_us.record(us.max(1));
                }
                resp::Value::Error(e) => break Err(format!("c{i}: Redis said {e}")),
                resp::Value::Other => {}
            }
        };
        bytes.drain(..at);
        self.clients[i].partial = bytes;
        result
    }

    fn on_delivery(&mut self, receiver: usize, seq: u64, sender: usize, now: u64) {
        self.clients[receiver].rx.record(seq, sender);
        let Some(f) = self.flights.get_mut(seq as usize) else {
            return;
        };
        if f.sender == receiver {
            return;
        }
        f.due = f.due.saturating_sub(1);
        if f.measured {
            let us = now.saturating_sub(f.sent_ns) / 1000;
            let _ = self.out.delivery_us.record(us.max(1));
            let target = self.clients[receiver].target;
            if let Some((_, h)) = self.out.delivery_by_target.get_mut(target) {
                let _ = h.record(us.max(1));
            }
            self.last_delivery_ns = self.last_delivery_ns.max(now);
            if f.due == 0 {
                let _ = self.out.fanout_us.record(us.max(1));
            }
        }
    }

    fn read_peer(&mut self, i: usize) -> Result<usize, String> {
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

    fn finish(&mut self) {
        // Client i sends as sender i; peers only receive.
        let clients = self
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.rx, Some(i)));
        self.out.tcp = tally(clients, &self.sent);
        self.out.udp = tally(self.peers.iter().map(|p| (&p.rx, None)), &self.sent);
        if let Some(first) = self.first_measured_ns {
            let span = self.last_delivery_ns.saturating_sub(first) as f64 / 1e9;
            self.out.measure_s = span;
            if span > 0.0 {
                self.out.deliveries_per_s = self.out.delivery_us.len() as f64 / span;
            }
        }
        for p in &mut self.peers {
            let _ = p
                .socket
                .send_to(&PeerMessage::Disconnect.encode(), self.p.bridge);
        }
    }
}

/// Appends `payload` as one masked, final WebSocket text frame.
fn ws_frame(payload: &[u8], out: &mut Vec<u8>) {
    let mask = [0x6d, 0x70, 0x31, 0x21];
    masked_frame(OP_TEXT, true, mask, payload, out);
}

/// A connecting client's first writable event means it connected (or
/// failed to); then whatever is pending is written.
fn on_writable(c: &mut Client, target: SocketAddr) -> Result<(), String> {
    if matches!(c.phase, Phase::Connecting) {
        if let Ok(Some(e)) | Err(e) = c.stream.take_error() {
            return Err(format!("connect to {target}: {e}"));
        }
        if c.stream.peer_addr().is_err() {
            return Ok(()); // not connected yet
        }
        c.phase = Phase::LoggingIn;
    }
    flush(c).map_err(|e| format!("write: {e}"))
}

fn flush(c: &mut Client) -> io::Result<()> {
    if matches!(c.phase, Phase::Connecting) {
        return Ok(());
    }
    mp1::pending::write_pending(&mut c.stream, &mut c.out)
}

enum Seen {
    Chat { seq: u64, sender: usize },
    LoginOk,
    LoginRefused(String),
    Disconnect(String),
    Other,
}

/// Classifies a server object cheaply: most are join announcements, so
/// only the `mtp` prefix is looked at unless it is one we need.
fn classify(o: &[u8]) -> Seen {
    if o.starts_with(br#"{"mtp":"SendChatFromUser""#) {
        return match find(o, b"\"message\":\"").and_then(|i| parse_stamp(&o[i..])) {
            Some((seq, sender, _)) => Seen::Chat { seq, sender },
            None => Seen::Other,
        };
    }
    if o.starts_with(br#"{"mtp":"AssignUsername""#) {
        return if find(o, br#""status":"OK""#).is_some() {
            Seen::LoginOk
        } else {
            Seen::LoginRefused(String::from_utf8_lossy(o).into_owned())
        };
    }
    if o.starts_with(br#"{"mtp":"Disconnect""#) {
        return Seen::Disconnect(String::from_utf8_lossy(o).into_owned());
    }
    Seen::Other
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + needle.len())
}

/// Reads `s=SEQ;k=SENDER;t=NS;` from the start of a chat text (after any
/// bridge prefix such as `c3: `).
pub fn parse_stamp(text: &[u8]) -> Option<(u64, usize, u64)> {
    let start = find(text, b"s=")?;
    let mut fields = text[start..].split(|&b| b == b';');
    let num = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<u64>().ok();
    let seq = num(fields.next()?)?;
    let sender = num(fields.next()?.strip_prefix(b"k=")?)? as usize;
    let t = num(fields.next()?.strip_prefix(b"t=")?)?;
    Some((seq, sender, t))
}

/// The sum of the servers' CPU seconds, if every one could be read.
fn total_cpu(each: Vec<Option<f64>>) -> Option<f64> {
    if each.is_empty() {
        return None;
    }
    each.into_iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_through_bridge_prefixes() {
        assert_eq!(parse_stamp(b"s=12;k=3;t=999;xxxx"), Some((12, 3, 999)));
        assert_eq!(parse_stamp(b"c3: s=12;k=3;t=999;"), Some((12, 3, 999)));
        assert_eq!(parse_stamp(b"hello"), None);
    }

    #[test]
    fn classify_by_prefix() {
        assert!(matches!(
            classify(
                br#"{"mtp":"SendChatFromUser","data":{"name":"c1","message":"s=5;k=1;t=7;x"}}"#
            ),
            Seen::Chat { seq: 5, sender: 1 }
        ));
        assert!(matches!(
            classify(br#"{"mtp":"AssignUsername","data":{"name":"c1"},"status":"OK"}"#),
            Seen::LoginOk
        ));
        assert!(matches!(
            classify(br#"{"mtp":"AssignUsername","data":{"name":"c1"},"status":"DuplicateError"}"#),
            Seen::LoginRefused(_)
        ));
        assert!(matches!(
            classify(br#"{"mtp":"ServerMessage","data":{"message":"x"}}"#),
            Seen::Other
        ));
    }
}
