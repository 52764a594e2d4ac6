//! One load run on one mio loop, the core every transport shares: the
//! run's parameters and outcome, connecting the simulated clients in
//! batches, the closed and open loops, the delivery accounting (flights,
//! latencies, the tally), the CPU window, and the poll loop that hands
//! each event to its transport. The transports own their wire formats:
//! `tcp` (MP1 over TCP), `websocket` (MP1 over WebSocket), `redis` (Redis
//! pub/sub, the baseline) and `peers` (UDP peers through mp1d's bridge);
//! `client` owns the TCP connection the first three share.

mod client;
mod peers;
mod redis;
mod tcp;
mod websocket;

use crate::accounting::{tally, Tally};
use crate::procfs;
use crate::progress::Progress;
use client::{Client, Phase};
use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};
pub use mp1::protocol::RequestFraming as Framing;
use peers::Peer;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Tokens at and above this are UDP peers.
const PEER_BASE: usize = 1 << 30;
/// Tokens from this up to `PEER_BASE` are Redis publishers.
const PUB_BASE: usize = 1 << 29;

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

/// What the clients' connections carry, from `Params`: each has its own
/// module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    WebSocket,
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

impl Params {
    /// The transport as `--transport` names it: `tcp` (Redis too) or `ws`.
    pub fn transport_option(&self) -> &'static str {
        match self.transport() {
            Transport::WebSocket => "ws",
            Transport::Tcp | Transport::Redis => "tcp",
        }
    }

    fn transport(&self) -> Transport {
        match self.protocol {
            Protocol::Redis => Transport::Redis,
            Protocol::Mp1 if self.websocket => Transport::WebSocket,
            Protocol::Mp1 => Transport::Tcp,
        }
    }
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
    /// `Params::transport_option`.
    pub transport: &'static str,
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
    transport: Transport,
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
            transport: p.transport(),
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
                transport: p.transport_option(),
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
            if self.transport == Transport::Tcp {
                self.end_unanswered_logins()?;
            }
            ready = self
                .clients
                .iter()
                .filter(|c| matches!(c.phase, Phase::Ready))
                .count();
            let (ready, all) = (ready as u64, self.p.clients as u64);
            self.progress.show("login", ready, all, "clients");
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

    /// Connects client `i` with its transport's first words (a login, a
    /// WebSocket upgrade, a SUBSCRIBE).
    fn start_client(&mut self, i: usize) -> Result<(), String> {
        let target = i % self.p.targets.len();
        let hello = match self.transport {
            Transport::Tcp => tcp::login(i, self.p.framing),
            Transport::WebSocket => websocket::login(i, self.p.targets[target]),
            Transport::Redis => redis::subscribe(),
        };
        let client = self.connect(Token(i), target, hello)?;
        self.clients.push(client);
        if self.transport == Transport::Redis && i < self.p.senders {
            let publisher = self.connect(Token(PUB_BASE + i), target, Vec::new())?;
            self.publishers.push(publisher);
        }
        Ok(())
    }

    /// Client `i` is logged in (or subscribed).
    fn logged_in(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.phase = Phase::Ready;
        let us = c.started.elapsed().as_micros() as u64;
        let _ = self.out.login_us.record(us.max(1));
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
            self.progress.show("closed", k + 1, total, "chats");
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
            let (done_ms, total_ms) = (
                now.saturating_sub(start) / 1_000_000,
                (end - start) / 1_000_000,
            );
            self.progress.show("open", done_ms, total_ms, "ms");
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
        let c = match self.transport {
            Transport::Tcp => {
                let c = &mut self.clients[sender];
                tcp::chat(text, c.newline, &mut c.out);
                c
            }
            Transport::WebSocket => {
                let c = &mut self.clients[sender];
                websocket::chat(text, &mut c.out);
                c
            }
            Transport::Redis => {
                let c = &mut self.publishers[sender];
                redis::publish(&text, &mut c.out);
                c
            }
        };
        c.flush().map_err(|e| format!("c{sender}: write: {e}"))?;
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
                let target = self.p.targets[self.clients[t].target];
                let c = &mut self.clients[t];
                c.on_writable(target).map_err(|e| format!("c{t}: {e}"))?;
            }
            if readable {
                read += self.read_client(t)?;
            }
        }
        Ok(read)
    }

    /// Reads what client `i` has and hands it to the transport.
    fn read_client(&mut self, i: usize) -> Result<usize, String> {
        let mut total = 0;
        loop {
            let n = match self.clients[i].read(&mut self.buf) {
                Ok(Some(n)) => n,
                Ok(None) => return Ok(total),
                Err(e) => return Err(format!("c{i}: {e}")),
            };
            total += n;
            let now = self.now_ns();
            match self.transport {
                Transport::Tcp => self.on_tcp(i, n, now)?,
                Transport::WebSocket => self.on_ws(i, n, now)?,
                Transport::Redis => self.on_resp(i, n, now)?,
            }
            if n < self.buf.len() {
                return Ok(total);
            }
        }
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
        self.leave_bridge();
    }
}

/// The index just past `needle` in `hay`.
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
}
