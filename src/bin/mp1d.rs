//! `mp1d`: the MP1 chat server. Parses the command line, binds, logs the
//! address it listens on, and runs the loop until SIGINT or SIGTERM.

use mp1::logging;
use mp1::server::{
    BridgeConfig, ClusterConfig, Config, FramingMode, IoUringMode, Server, StartError,
};
use std::process::ExitCode;
use std::time::Duration;

fn help() -> String {
    let d = Config::default();
    format!(
        "mp1d {version}: CoE 151 MP1 chat server

USAGE: mp1d [OPTIONS]

OPTIONS:
  --port N                TCP port; 0 picks a free one (default {port})
  --bind ADDR             address (or host name) to listen on (default {bind}:
                          all interfaces)
  --framing MODE          reply framing: auto (mirror each client), newline or
                          bare (default auto)
  --max-clients N         connections at once; more get \"Server is full.\"
                          (default {max_clients}; lowered to fit the open-file limit)
  --max-message-bytes N   largest JSON object a client may send (default {max_msg})
  --max-chat-chars N      longest chat or whisper, in characters (default {max_chat})
  --max-whisper-recipients N
                          most names in one whisper (default {max_whisper})
  --max-unparsable N      unparsable inputs in a row before disconnecting
                          (default {max_unparsable})
  --login-timeout SECS    close connections that have not logged in by then;
                          0 = never (default {login})
  --idle-timeout SECS     close connections silent for this long; 0 = never
                          (default {idle})
  --max-output-bytes N    unsent bytes a client may owe before it is cut off
                          as too slow (default {max_out})
  --max-total-output-bytes N
                          unsent bytes all clients together may owe; past it
                          the biggest owers are cut off (default {max_total})
  --close-timeout SECS    time a closing connection gets to take its last
                          output (default {close})
  --shutdown-timeout SECS time clients get to take \"Server closing.\" on
                          SIGINT/SIGTERM (default {shutdown})
  --peer-name NAME        also join the LAN as peer NAME and bridge it into
                          the server (default: no bridge)
  --peer-port N           UDP port of the bridge (default: the TCP port)
  --broadcast ADDR        broadcast address for the bridge; repeatable
                          (default 255.255.255.255)
  --peer IP:PORT          a LAN peer to handshake with directly; repeatable
  --max-lan-peers N       LAN peers the bridge knows at most (default 64)
  --lan-greetings-per-second N
                          LAN greetings (Discovery, Handshake) the bridge
                          answers a second, from all peers together; a
                          peer that gets no answer retries (default 50)
  --lan-greeting-burst N  greetings answered at once before that rate applies
                          (default: four times the rate, 200)
  --http HOST:PORT        also serve the chat page (/), browsers over
                          WebSocket (/ws), /metrics (Prometheus) and /healthz
                          over HTTP there (default: off)
  --http-origin ORIGIN    a page origin allowed to open the WebSocket, e.g.
                          https://chat.example.org; repeatable; * allows any
                          (default: only the page's own host)
  --http-allowed-host NAME
                          a host name the HTTP face answers to, besides IP
                          addresses and localhost (a guard against DNS
                          rebinding); repeatable; * allows any
  --http-trust-proxy ADDR a reverse proxy (IP address) whose Forwarded or
                          X-Forwarded-For header names the browser's address,
                          for logs, /who and limits; repeatable (default: none,
                          the headers are ignored)
  --http-timeout SECS     an HTTP connection is closed after this long
                          (default {http_timeout})
  --cluster redis://HOST[:PORT]
                          serve one chat with the other mp1d nodes that use
                          this Redis (default: off; see README, \"Running a
                          cluster\"); or
                          redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER
                          to follow the master these Sentinels name
  --node-id ID            this node's name in the cluster, unique among the
                          live nodes (default: HOSTNAME-PID)
  --cluster-lease SECS    a node silent for this long is taken for dead and
                          its users are logged out (default 3)
  --io-uring MODE         the fan-out's writes through io_uring: auto (where
                          the kernel allows it, else writev), on (fail at
                          start-up if it does not) or off (default {io_uring})
  --log-level LEVEL       off, error, warn, info, debug, trace (default info,
                          or RUST_LOG)
  --log-lines-per-second N
                          lines a second that clients can cause (connects,
                          joins, leaves, cuts) logged at their level; the rest
                          at debug, counted once a second (default {log_lines})
  --log-chat              also log chat and whisper texts
  -h, --help              this text
  -V, --version           the version
",
        version = env!("CARGO_PKG_VERSION"),
        port = d.port,
        bind = d.bind,
        max_clients = d.max_clients,
        max_msg = d.max_message_bytes,
        max_chat = d.max_chat_chars,
        max_whisper = d.max_whisper_recipients,
        max_unparsable = d.max_unparsable,
        login = d.login_timeout.as_secs_f64(),
        idle = d.idle_timeout.as_secs_f64(),
        max_out = d.max_output_bytes,
        max_total = d.max_total_output_bytes,
        http_timeout = d.http_timeout.as_secs_f64(),
        log_lines = d.log_lines_per_second,
        close = d.close_timeout.as_secs_f64(),
        shutdown = d.shutdown_timeout.as_secs_f64(),
        io_uring = d.io_uring,
    )
}

enum Command {
    Run(Box<Config>, Option<log::LevelFilter>, Names),
    Print(String),
}

/// Host names given for `--bind` and `--http`, resolved at start-up (a
/// name that does not resolve is a run-time failure, not a usage error).
#[derive(Default)]
struct Names {
    bind: Option<String>,
    http: Option<String>,
}

impl Names {
    fn resolve(self, c: &mut Config) -> Result<(), String> {
        use std::net::ToSocketAddrs;
        let first = |option: &str, target: String| {
            target
                .to_socket_addrs()
                .map_err(|e| format!("{option}: cannot resolve {target}: {e}"))?
                .next()
                .ok_or_else(|| format!("{option}: {target} has no address"))
        };
        if let Some(host) = self.bind {
            c.bind = first("--bind", format!("{host}:0"))?.ip();
        }
        if let Some(host_port) = self.http {
            c.http = Some(first("--http", host_port)?);
        }
        Ok(())
    }
}

/// An IP address, or a host name to resolve at start-up.
fn ip_or_name(v: &str, name: &mut Option<String>) -> Result<std::net::IpAddr, String> {
    match v.parse() {
        Ok(ip) => Ok(ip),
        Err(_) if is_host_name(v) => {
            *name = Some(v.to_string());
            Ok(Config::default().bind)
        }
        Err(_) => Err(format!("not an IP address or host name: {v:?}")),
    }
}

fn is_host_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The longest time any option takes: a year. Beyond it a deadline
/// would overflow the clock.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=MAX_SECONDS).contains(v))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("expected seconds from 0 to {MAX_SECONDS}, not {s:?}"))
}

fn number<T>(s: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match s.parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, not {s:?}"
        )),
    }
}

/// The largest byte limit an option takes: 1 TiB, or what a 32-bit
/// board's address space allows.
const MAX_BYTES: usize = {
    let tib = 1u64 << 40;
    let half_space = (usize::MAX / 2) as u64;
    (if tib < half_space { tib } else { half_space }) as usize
};

/// Options that take a value.
const VALUE_OPTIONS: &[&str] = &[
    "--port",
    "--bind",
    "--framing",
    "--max-clients",
    "--max-message-bytes",
    "--max-chat-chars",
    "--max-whisper-recipients",
    "--max-unparsable",
    "--login-timeout",
    "--idle-timeout",
    "--max-output-bytes",
    "--max-total-output-bytes",
    "--close-timeout",
    "--shutdown-timeout",
    "--peer-name",
    "--peer-port",
    "--broadcast",
    "--peer",
    "--max-lan-peers",
    "--lan-greetings-per-second",
    "--lan-greeting-burst",
    "--log-level",
    "--log-lines-per-second",
    "--http",
    "--http-timeout",
    "--http-origin",
    "--http-allowed-host",
    "--http-trust-proxy",
    "--cluster",
    "--node-id",
    "--cluster-lease",
    "--io-uring",
];

fn parse_args() -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut c = Config::default();
    let mut level = None;
    let mut bridge: Option<BridgeConfig> = None;
    let mut bridge_port = 0u16;
    let mut broadcast = Vec::new();
    let mut peers = Vec::new();
    let mut max_lan_peers = None;
    let mut greetings: Option<u32> = None;
    let mut greeting_burst: Option<u32> = None;
    let mut cluster: Option<String> = None;
    let mut node_id: Option<String> = None;
    let mut lease = Duration::from_secs(3);
    let mut names = Names::default();
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        let name = match arg {
            Long(n) => format!("--{n}"),
            Short(n) => format!("-{n}"),
            Value(v) => return Err(format!("unexpected argument {v:?}")),
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(Command::Print(help())),
            "-V" | "--version" => {
                return Ok(Command::Print(format!(
                    "mp1d {}\n",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            "--log-chat" => {
                c.log_chat = true;
                continue;
            }
            _ => {}
        }
        if !VALUE_OPTIONS.contains(&name.as_str()) {
            return Err(format!("{name}: unknown option"));
        }
        let v = p
            .value()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|v| format!("{name}: not UTF-8: {v:?}"))?;
        let set = || -> Result<(), String> {
            match name.as_str() {
                "--port" => c.port = number(&v, 0, u16::MAX)?,
                "--bind" => c.bind = ip_or_name(&v, &mut names.bind)?,
                "--framing" => c.framing = v.parse::<FramingMode>()?,
                "--max-clients" => c.max_clients = number(&v, 1, 1 << 24)?,
                "--max-message-bytes" => c.max_message_bytes = number(&v, 64, 1 << 30)?,
                "--max-chat-chars" => c.max_chat_chars = number(&v, 1, 1 << 30)?,
                "--max-whisper-recipients" => c.max_whisper_recipients = number(&v, 1, 1_000_000)?,
                "--max-unparsable" => c.max_unparsable = number(&v, 1, u32::MAX)?,
                "--login-timeout" => c.login_timeout = seconds(&v)?,
                "--idle-timeout" => c.idle_timeout = seconds(&v)?,
                "--max-output-bytes" => c.max_output_bytes = number(&v, 1024, MAX_BYTES)?,
                "--max-total-output-bytes" => {
                    c.max_total_output_bytes = number(&v, 1024, MAX_BYTES)?
                }
                "--close-timeout" => c.close_timeout = seconds(&v)?,
                "--shutdown-timeout" => c.shutdown_timeout = seconds(&v)?,
                "--peer-name" => bridge = Some(BridgeConfig::new(&v)),
                "--peer-port" => bridge_port = number(&v, 1, u16::MAX)?,
                "--broadcast" => {
                    broadcast.push(v.parse().map_err(|_| format!("not an IP address: {v:?}"))?)
                }
                "--peer" => peers.push(v.parse().map_err(|_| format!("not IP:PORT: {v:?}"))?),
                "--max-lan-peers" => max_lan_peers = Some(number(&v, 1, 100_000)?),
                "--lan-greetings-per-second" => greetings = Some(number(&v, 1, 1_000_000)?),
                "--lan-greeting-burst" => greeting_burst = Some(number(&v, 1, 1_000_000)?),
                "--log-lines-per-second" => c.log_lines_per_second = number(&v, 0, 1_000_000)?,
                "--http" => {
                    c.http = match v.parse() {
                        Ok(addr) => Some(addr),
                        Err(_) => match v.rsplit_once(':') {
                            Some((host, port)) if is_host_name(host) => {
                                number(port, 0, u16::MAX)?;
                                names.http = Some(v.clone());
                                None
                            }
                            _ => return Err(format!("not HOST:PORT: {v:?}")),
                        },
                    }
                }
                "--http-timeout" => c.http_timeout = seconds(&v)?,
                "--http-origin" => c.http_origins.push(v.clone()),
                "--http-allowed-host" => c.http_allowed_hosts.push(v.to_ascii_lowercase()),
                "--http-trust-proxy" => c
                    .http_trust_proxy
                    .push(v.parse().map_err(|_| format!("not an IP address: {v:?}"))?),
                "--cluster" => {
                    ClusterConfig::check(&v)?;
                    cluster = Some(v.clone())
                }
                "--node-id" => node_id = Some(node_name(&v)?),
                "--cluster-lease" => {
                    lease = seconds(&v)?;
                    if lease < Duration::from_millis(300) {
                        return Err("expected at least 0.3 seconds".into());
                    }
                }
                "--io-uring" => c.io_uring = v.parse::<IoUringMode>()?,
                "--log-level" => {
                    level = Some(
                        logging::parse_level(&v)
                            .ok_or_else(|| format!("unknown log level {v:?}"))?,
                    )
                }
                _ => unreachable!("VALUE_OPTIONS lists {name}"),
            }
            Ok(())
        };
        let mut set = set;
        set().map_err(|e| format!("{name}: {e}"))?;
    }
    if let Some(b) = bridge.as_mut() {
        b.port = bridge_port;
        b.broadcast = broadcast;
        b.peers = peers;
        if let Some(n) = max_lan_peers {
            b.max_peers = n;
        }
        if let Some(n) = greetings {
            b.greetings_per_second = n;
            b.greeting_burst = n.saturating_mul(4);
        }
        if let Some(n) = greeting_burst {
            b.greeting_burst = n;
        }
        if !mp1::protocol::name::is_valid_name(&b.name) {
            return Err(format!("--peer-name: not a valid name: {:?}", b.name));
        }
    } else if bridge_port != 0
        || !broadcast.is_empty()
        || !peers.is_empty()
        || max_lan_peers.is_some()
        || greetings.is_some()
        || greeting_burst.is_some()
    {
        return Err("--peer-port, --broadcast, --peer, --max-lan-peers and the \
                    --lan-greeting options need --peer-name"
            .into());
    }
    c.bridge = bridge;
    if let Some(url) = cluster {
        if c.bridge.is_some() {
            return Err(
                "--peer-name is not available with --cluster: LAN names are not in \
                        the cluster's namespace (see docs/PROTOCOL.md)"
                    .into(),
            );
        }
        let node_id = node_id.unwrap_or_else(default_node_id);
        c.cluster = Some(ClusterConfig {
            url,
            node_id,
            lease,
        });
    } else if node_id.is_some() {
        return Err("--node-id needs --cluster".into());
    }
    Ok(Command::Run(Box::new(c), level, names))
}

/// A node id: what Redis keys and session ids can carry.
fn node_name(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!(
            "{v:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect::<String>();
    let host = if host.is_empty() { "mp1d".into() } else { host };
    format!("{host}-{}", std::process::id())
}

fn main() -> ExitCode {
    let (mut config, level, names) = match parse_args() {
        Ok(Command::Run(c, l, n)) => (*c, l, n),
        Ok(Command::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mp1d: {e}\nTry 'mp1d --help'.");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = names.resolve(&mut config) {
        eprintln!("mp1d: {e}");
        return ExitCode::FAILURE;
    }
    // Several nodes often log to one terminal or journal: say which.
    let node = config.cluster.as_ref().map(|c| c.node_id.as_str());
    logging::init(level, node);
    let code = serve(config);
    // The log is written by another thread: let it finish.
    logging::flush(Duration::from_secs(1));
    code
}

/// What could not listen, and the option that picks another place.
fn listen_failure(e: &StartError) -> String {
    let in_use = e.in_use();
    let hint = match e {
        StartError::Http(..) if in_use => " (pick another address or port with --http)",
        StartError::Bridge(..) if in_use => {
            " (another mp1d, or an mp1 peer, on this machine? pick another port \
             with --peer-port for the LAN bridge)"
        }
        StartError::Mp1(..) if in_use => {
            " (another mp1d on this machine? pick another port with --port)"
        }
        _ => "",
    };
    match e {
        StartError::Http(..) => format!("cannot listen for --http: {e}{hint}"),
        StartError::IoUring(_) => {
            format!("{e} (start with --io-uring auto to fall back to writev)")
        }
        StartError::Mp1(addr, io) => format!("cannot listen on {addr}: {io}{hint}"),
        _ => format!("cannot listen: {e}{hint}"),
    }
}

fn serve(config: Config) -> ExitCode {
    let mut server = match Server::bind(config.clone()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{}", listen_failure(&e));
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = server.join_cluster() {
        log::error!("{e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = server.handle_signals() {
        log::error!("cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    match server.local_addr() {
        Ok(addr) => log::info!(
            "mp1d {} listening on {addr} (max {} clients)",
            env!("CARGO_PKG_VERSION"),
            server.config().max_clients
        ),
        Err(e) => log::warn!("listening, address unknown: {e}"),
    }
    if let Some(c) = &server.config().cluster {
        log::info!(
            "cluster: node {} through Redis at {} (lease {} s)",
            c.node_id,
            c.url,
            c.lease.as_secs_f64()
        );
    }
    if let Some(addr) = server.http_addr() {
        log::info!("HTTP on {addr}: the chat page at /, /ws, /metrics, /healthz");
    }
    log::info!("fan-out writes: {}", server.write_path());
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
