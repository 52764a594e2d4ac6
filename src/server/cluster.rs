//! The node's two Redis sockets on the one loop (`--cluster`): connecting
//! and reconnecting with back-off, moving bytes between them and the
//! [`Backplane`], and handing its events and refusals to the chat. The
//! engine's logic is in `crate::cluster`; this file only moves bytes and
//! time.

use super::table::Source;
use super::timers::Wake;
use super::{Server, Timer};
use crate::chat::ConnId;
use crate::cluster::backplane::{Backplane, Link, Output};
use crate::cluster::sentinel::Sentinels;
use crate::cluster::Proposal;
use log::{error, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a connection to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a Sentinel may take to say which server is the master.
const SENTINEL_TIMEOUT: Duration = Duration::from_millis(300);
/// How long start-up waits for Redis to answer the hello.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits to hand the last logouts to Redis.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// `--cluster` and its options.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// As given: `redis://HOST[:PORT]` or
    /// `redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME`.
    pub url: String,
    pub node_id: String,
    /// A node that has not renewed its lease for this long is taken for
    /// dead, and its users are logged out.
    pub lease: Duration,
}

impl ClusterConfig {
    /// `HOST:PORT` from a `redis://HOST[:PORT]` URL (port 6379 if none).
    pub fn host_port(url: &str) -> Result<String, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or("expected redis://HOST[:PORT]")?;
        let host_port = rest.trim_end_matches('/');
        if host_port.is_empty() || host_port.contains('@') || host_port.contains('/') {
            return Err("expected redis://HOST[:PORT] (no user, password or database)".into());
        }
        let has_port = host_port.rsplit_once(':').is_some_and(|(h, p)| {
            p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']'))
        });
        Ok(if has_port {
            host_port.to_string()
        } else {
            format!("{host_port}:6379")
        })
    }

    /// Whether `url` is one `--cluster` takes: `redis://HOST[:PORT]` or
    /// `redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME`.
    pub fn check(url: &str) -> Result<(), String> {
        match Sentinels::parse(url)? {
            Some(_) => Ok(()),
            None => Self::host_port(url).map(drop).map_err(|e| {
                format!("{e} (or redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME)")
            }),
        }
    }

    /// The address in `url`, looked up; with Sentinels, the master's as
    /// they say now.
    pub fn redis_addr(&self) -> io::Result<SocketAddr> {
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        if let Some(sentinels) = Sentinels::parse(&self.url).map_err(bad)? {
            return sentinels.master_addr(SENTINEL_TIMEOUT);
        }
        Self::host_port(&self.url)
            .map_err(bad)?
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| bad("the host has no address".into()))
    }
}

enum Socket {
    Connecting(TcpStream),
    Open(TcpStream),
}

impl Socket {
    fn stream(&mut self) -> &mut TcpStream {
        match self {
            Socket::Connecting(s) | Socket::Open(s) => s,
        }
    }
}

pub(super) struct Cluster {
    config: ClusterConfig,
    addr: SocketAddr,
    pub(super) backplane: Backplane,
    commands: Option<Socket>,
    reader: Option<Socket>,
    /// Both connections are being made since then.
    connecting_since: Option<Instant>,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// The earliest [`Timer::Cluster`] still to fire.
    wake: Wake,
    /// Interest each socket is registered with (WRITABLE only while output
    /// waits).
    writable: [bool; 2],
    /// The loss was logged; the tries that follow are not, until it is back.
    told: bool,
    /// The sockets' tokens (commands, reader), from the loop's table.
    tokens: [Token; 2],
}

/// Why a blocking hello failed.
enum Greeting {
    /// Redis could not be reached, or did not answer.
    Io(io::Error),
    /// It answered no (a live node has this id).
    Refused(String),
}

/// Says hello to Redis on the blocking `commands` socket until the node is
/// up; returns what the engine had for the loop meanwhile (the snapshot).
fn greet(
    commands: &mut std::net::TcpStream,
    backplane: &mut Backplane,
    config: &ClusterConfig,
) -> Result<Vec<Output>, Greeting> {
    commands
        .set_read_timeout(Some(START_TIMEOUT))
        .map_err(Greeting::Io)?;
    backplane.handle_connected(Instant::now());
    let mut outputs = Vec::new();
    let mut deadline = Instant::now() + START_TIMEOUT;
    // A live node with this id may be this node's own earlier life
    // (killed, and restarted at once): then its lease runs out.
    let in_use_until = Instant::now()
        + crate::cluster::backplane::reap_after(config.lease)
        + Duration::from_millis(500);
    let mut told = false;
    let mut buf = [0u8; 16 * 1024];
    while !backplane.is_up() {
        let out = backplane.poll_transmit(Link::Commands).to_vec();
        commands.write_all(&out).map_err(Greeting::Io)?;
        backplane.transmitted(Link::Commands, out.len());
        let n = commands.read(&mut buf).map_err(|e| {
            let silent = matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            );
            Greeting::Io(if silent {
                io::Error::other("it did not answer within 5 s")
            } else {
                e
            })
        })?;
        if n == 0 || Instant::now() > deadline {
            let why = "it closed the connection or did not answer";
            return Err(Greeting::Io(io::Error::other(why)));
        }
        backplane
            .handle_input(Link::Commands, &buf[..n], Instant::now())
            .map_err(|e| Greeting::Io(io::Error::other(e)))?;
        while let Some(o) = backplane.poll_output() {
            match o {
                Output::Fatal(why) if Instant::now() >= in_use_until => {
                    return Err(Greeting::Refused(why))
                }
                Output::Fatal(_) => {
                    if !told {
                        told = true;
                        info!(
                            "a node with the id {:?} is alive: waiting up to one lease for \
                             it to run out (this node's earlier life?)",
                            config.node_id
                        );
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    backplane.handle_connected(Instant::now());
                    deadline = Instant::now() + START_TIMEOUT;
                }
                o => outputs.push(o),
            }
        }
    }
    Ok(outputs)
}

impl Cluster {
    /// Connects to Redis and joins the cluster, blocking: at start-up an
    /// unreachable Redis is an error that names it.
    pub(super) fn start(
        config: ClusterConfig,
        registry: &Registry,
        tokens: [Token; 2],
    ) -> io::Result<(Cluster, Vec<Output>)> {
        let url = config.url.clone();
        let fail = move |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot reach the cluster's Redis at {url}: {e}"),
            )
        };
        let addr = config.redis_addr().map_err(&fail)?;
        let mut commands =
            std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(&fail)?;
        let mut reader =
            std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(&fail)?;
        let mut backplane = Backplane::new(&config.node_id, config.lease);
        let outputs = greet(&mut commands, &mut backplane, &config).map_err(|e| match e {
            Greeting::Io(e) => fail(e),
            Greeting::Refused(why) => io::Error::other(why),
        })?;
        let out = backplane.poll_transmit(Link::Reader).to_vec();
        reader.write_all(&out).map_err(&fail)?;
        backplane.transmitted(Link::Reader, out.len());
        commands.set_nonblocking(true)?;
        reader.set_nonblocking(true)?;
        let mut commands = TcpStream::from_std(commands);
        let mut reader = TcpStream::from_std(reader);
        let _ = commands.set_nodelay(true);
        let _ = reader.set_nodelay(true);
        registry.register(&mut commands, tokens[0], Interest::READABLE)?;
        registry.register(&mut reader, tokens[1], Interest::READABLE)?;
        let cluster = Cluster {
            config,
            addr,
            backplane,
            commands: Some(Socket::Open(commands)),
            reader: Some(Socket::Open(reader)),
            connecting_since: None,
            backoff: BACKOFF_MIN,
            retry_at: None,
            wake: Wake::default(),
            writable: [false; 2],
            told: false,
            tokens,
        };
        Ok((cluster, outputs))
    }

    fn socket_slot(&mut self, link: Link) -> &mut Option<Socket> {
        match link {
            Link::Commands => &mut self.commands,
            Link::Reader => &mut self.reader,
        }
    }

    fn socket(&mut self, link: Link) -> Option<&mut Socket> {
        self.socket_slot(link).as_mut()
    }

    /// A readiness event on one of the sockets.
    fn on_event(&mut self, registry: &Registry, link: Link, now: Instant) -> Result<(), String> {
        let Some(socket) = self.socket(link) else {
            return Ok(());
        };
        if let Socket::Connecting(s) = socket {
            // The first event on a connecting socket: connected, failed,
            // or (spuriously) neither yet.
            if let Ok(Some(e)) | Err(e) = s.take_error() {
                return Err(format!("cannot connect: {e}"));
            }
            if s.peer_addr().is_err() {
                return Ok(());
            }
            let _ = s.set_nodelay(true);
            if let Some(Socket::Connecting(s)) = self.socket_slot(link).take() {
                *self.socket_slot(link) = Some(Socket::Open(s));
            }
            let open = |s: &Option<Socket>| matches!(s, Some(Socket::Open(_)));
            if open(&self.commands) && open(&self.reader) {
                self.connecting_since = None;
                self.backplane.handle_connected(now);
            }
        }
        self.read(link, now)?;
        self.flush(registry)
    }

    fn read(&mut self, link: Link, now: Instant) -> Result<(), String> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let Some(Socket::Open(s)) = self.socket(link) else {
                return Ok(());
            };
            match s.read(&mut buf) {
                Ok(0) => return Err("Redis closed the connection".into()),
                Ok(n) => self.backplane.handle_input(link, &buf[..n], now)?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Writes what the engine has for each open socket; WRITABLE interest
    /// only while some is left.
    fn flush(&mut self, registry: &Registry) -> Result<(), String> {
        let tokens = self.tokens;
        for (i, (link, token)) in [(Link::Commands, tokens[0]), (Link::Reader, tokens[1])]
            .into_iter()
            .enumerate()
        {
            let socket = match link {
                Link::Commands => &mut self.commands,
                Link::Reader => &mut self.reader,
            };
            // (Not `socket_slot`: `write_out` borrows the backplane too.)
            let Some(Socket::Open(s)) = socket else {
                continue;
            };
            let left = write_out(s, &mut self.backplane, link)?;
            if left != self.writable[i] {
                self.writable[i] = left;
                let interest = if left {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                let _ = registry.reregister(s, token, interest);
            }
        }
        Ok(())
    }

    /// Drops both connections; the next try is after the back-off.
    fn lose(&mut self, registry: &Registry, why: &str, now: Instant) {
        for socket in [self.commands.take(), self.reader.take()]
            .into_iter()
            .flatten()
        {
            let mut socket = socket;
            let _ = registry.deregister(socket.stream());
        }
        self.writable = [false; 2];
        self.connecting_since = None;
        if !self.told {
            self.told = true;
            warn!(
                "lost the cluster's Redis at {}: {why}; reconnecting (requests that need it \
                 are refused meanwhile)",
                self.config.url
            );
        }
        self.backplane.handle_lost();
        self.retry_at = Some(now + self.backoff);
        // Tried at least four times a lease, so that a Redis back soon is
        // found before this node must fence itself.
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX.min(self.config.lease / 4));
    }

    fn reconnect(&mut self, registry: &Registry, now: Instant) -> io::Result<()> {
        self.retry_at = None;
        // Asked again: after a failover, the Sentinels name another master.
        // (A plain address is not looked up again: no DNS on the loop.)
        if let Ok(Some(sentinels)) = Sentinels::parse(&self.config.url) {
            self.addr = sentinels.master_addr(SENTINEL_TIMEOUT)?;
        }
        let mut commands = TcpStream::connect(self.addr)?;
        let mut reader = TcpStream::connect(self.addr)?;
        let both = Interest::READABLE | Interest::WRITABLE;
        registry.register(&mut commands, self.tokens[0], both)?;
        registry.register(&mut reader, self.tokens[1], both)?;
        self.writable = [true; 2];
        self.commands = Some(Socket::Connecting(commands));
        self.reader = Some(Socket::Connecting(reader));
        self.connecting_since = Some(now);
        Ok(())
    }

    /// The time work is due: the engine's, a reconnection, a connection
    /// taking too long.
    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.backplane.poll_timeout(),
            self.retry_at,
            self.connecting_since.map(|t| t + CONNECT_TIMEOUT),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, registry: &Registry, now: Instant) {
        if self
            .connecting_since
            .is_some_and(|t| now >= t + CONNECT_TIMEOUT)
        {
            self.lose(registry, "connecting took too long", now);
        }
        if self.retry_at.is_some_and(|t| now >= t) {
            if let Err(e) = self.reconnect(registry, now) {
                self.lose(registry, &format!("cannot connect: {e}"), now);
            }
        }
        if let Err(why) = self.backplane.handle_timeout(now) {
            self.lose(registry, &why, now);
        }
        if let Err(why) = self.flush(registry) {
            self.lose(registry, &why, now);
        }
    }

    /// Hands the last logouts to Redis before the process exits.
    fn goodbye(&mut self) {
        let deadline = Instant::now() + GOODBYE_TIMEOUT;
        while let Some(Socket::Open(s)) = self.commands.as_mut() {
            match write_out(s, &mut self.backplane, Link::Commands) {
                Ok(true) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => return,
            }
        }
    }
}

/// Writes what the engine has for `link` until it is all out or the
/// kernel takes no more; true if some is left.
fn write_out(s: &mut TcpStream, backplane: &mut Backplane, link: Link) -> Result<bool, String> {
    while !backplane.poll_transmit(link).is_empty() {
        match s.write(backplane.poll_transmit(link)) {
            Ok(0) => return Err("Redis took no bytes".into()),
            Ok(n) => backplane.transmitted(link, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(false)
}

impl Server {
    /// Joins the cluster (`config.cluster`, if set) before clients are
    /// taken: blocks until Redis answered, or fails naming it.
    pub fn join_cluster(&mut self) -> io::Result<()> {
        let Some(config) = self.config.cluster.clone() else {
            return Ok(());
        };
        self.chat.join_cluster(&config.node_id);
        let (_, commands) = self.table.add(Source::Redis(Link::Commands));
        let (_, reader) = self.table.add(Source::Redis(Link::Reader));
        let registry = self.el.registry();
        let (cluster, outputs) = Cluster::start(config, registry, [commands, reader])?;
        self.cluster = Some(Box::new(cluster));
        for o in outputs {
            self.on_cluster_output(o);
        }
        self.pump_cluster();
        Ok(())
    }

    pub(super) fn on_cluster_event(&mut self, key: usize) {
        let now = Instant::now();
        let Some(&Source::Redis(link)) = self.table.source(key) else {
            return;
        };
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        if let Err(why) = c.on_event(self.el.registry(), link, now) {
            c.lose(self.el.registry(), &why, now);
        }
        self.pump_cluster();
    }

    /// A proposal from the chat, for the engine.
    pub(super) fn propose(&mut self, conn: Option<ConnId>, p: Proposal) {
        if let Some(c) = self.cluster.as_mut() {
            c.backplane.propose(conn, p);
        }
    }

    /// Carries out what the engine has: events and refusals to the chat,
    /// log lines, bytes to Redis; and sets the timer for what is due next.
    pub(super) fn pump_cluster(&mut self) {
        loop {
            let Some(c) = self.cluster.as_mut() else {
                return;
            };
            let Some(o) = c.backplane.poll_output() else {
                break;
            };
            self.on_cluster_output(o);
        }
        let now = Instant::now();
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        if let Err(why) = c.flush(self.el.registry()) {
            c.lose(self.el.registry(), &why, now);
        }
        if let Some(at) = c.poll_timeout().filter(|&at| c.wake.arm(at)) {
            self.el.timers.set(at, Timer::Cluster);
        }
    }

    fn on_cluster_output(&mut self, o: Output) {
        match o {
            Output::Event(e) => {
                let reset = matches!(e, crate::cluster::Event::Reset);
                self.chat.handle_event(e);
                self.apply_effects();
                if reset {
                    let lease = self
                        .config
                        .cluster
                        .as_ref()
                        .map_or(Duration::ZERO, |c| c.lease);
                    self.el
                        .timers
                        .set(Instant::now() + 2 * lease, Timer::Settle);
                }
            }
            Output::Refused(Some(conn), p, why) => {
                self.chat.handle_refusal(conn, p, why);
                self.apply_effects();
            }
            Output::Refused(None, p, why) => {
                info!("the cluster refused this node's own {} ({why:?})", p.kind());
            }
            Output::Warn(w) => warn!("{w}"),
            Output::Up(u) => {
                info!("{u}");
                if let Some(c) = self.cluster.as_mut() {
                    c.backoff = BACKOFF_MIN;
                    c.told = false;
                }
            }
            Output::Fatal(f) => {
                error!("{f}");
                self.begin_shutdown();
            }
        }
    }

    pub(super) fn on_cluster_timer(&mut self, at: Instant) {
        let now = Instant::now();
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        c.wake.fired(at);
        c.handle_timeout(self.el.registry(), now);
        self.pump_cluster();
    }

    /// Why this node cannot serve (a cluster node with no Redis, or
    /// fenced), for `/healthz`; `None` when it can.
    pub(super) fn cluster_health(&self) -> Option<&'static str> {
        self.cluster.as_ref().and_then(|c| c.backplane.health())
    }

    pub(super) fn on_settle_timer(&mut self) {
        self.chat.handle_settle();
        self.apply_effects();
        self.pump_cluster();
    }

    /// At shutdown: every user here leaves the cluster now, rather than
    /// when the lease runs out.
    pub(super) fn leave_cluster(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        for key in self.table.open_keys() {
            self.chat.handle_disconnect(key);
        }
        self.apply_effects();
        self.pump_cluster();
    }

    pub(super) fn cluster_goodbye(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.goodbye();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterConfig;

    #[test]
    fn redis_urls() {
        let hp = ClusterConfig::host_port;
        assert_eq!(hp("redis://10.0.0.5:6380"), Ok("10.0.0.5:6380".into()));
        assert_eq!(hp("redis://cache.lan"), Ok("cache.lan:6379".into()));
        assert_eq!(hp("redis://[::1]:7000/"), Ok("[::1]:7000".into()));
        assert_eq!(hp("redis://[::1]"), Ok("[::1]:6379".into()));
        assert!(hp("http://x").is_err());
        assert!(hp("redis://:secret@host").is_err());
        assert!(hp("redis://host/2").is_err());
        assert!(hp("redis://").is_err());
    }
}
