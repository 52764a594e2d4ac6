//! Every limit and knob of the server, with its default. The command line
//! (`src/bin/mp1d.rs`) fills this in; tests build it directly.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How replies are framed on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingMode {
    /// Bare until the client ends an object with a line break, then
    /// newline (docs/PROTOCOL.md): what every known client expects.
    Auto,
    /// Every reply ends with `\n`.
    Newline,
    /// Replies back-to-back, never a `\n`.
    Bare,
}

impl std::str::FromStr for FramingMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(FramingMode::Auto),
            "newline" => Ok(FramingMode::Newline),
            "bare" => Ok(FramingMode::Bare),
            _ => Err(format!("framing must be auto, newline or bare, not {s:?}")),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub bind: IpAddr,
    /// 0 picks a free port; the start-up log line says which.
    pub port: u16,
    pub framing: FramingMode,
    /// Connections held at once (logged in or not). Lowered at start-up
    /// to fit the open-file limit.
    pub max_clients: usize,
    /// Largest JSON object a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Longest chat or whisper text, in Unicode scalar values.
    pub max_chat_chars: usize,
    /// Most names in one whisper.
    pub max_whisper_recipients: usize,
    /// Unparsable inputs in a row before the connection is closed.
    pub max_unparsable: u32,
    /// A connection that has not logged in by then is closed. Zero: never.
    pub login_timeout: Duration,
    /// A connection that sent nothing for this long is closed. Zero: never.
    pub idle_timeout: Duration,
    /// Unsent bytes a client may owe before it is cut off as too slow.
    pub max_output_bytes: usize,
    /// Unsent bytes all clients together may owe (bytes the kernel
    /// refused); past it the biggest owers are cut off.
    pub max_total_output_bytes: usize,
    /// How long a closing connection gets to take its last output.
    pub close_timeout: Duration,
    /// How long shutdown waits for clients to take "Server closing.".
    pub shutdown_timeout: Duration,
    /// Log every chat and whisper text (off: privacy).
    pub log_chat: bool,
    /// Lines a second that clients can cause (connects, joins, leaves,
    /// cuts, dropped datagrams) logged at their level; the rest at debug,
    /// summed up once a second.
    pub log_lines_per_second: u32,
    /// Also join a LAN as a peer and bridge it into the server.
    pub bridge: Option<BridgeConfig>,
    /// Serve `/metrics` and `/healthz` over HTTP here.
    pub http: Option<SocketAddr>,
    /// An HTTP connection is closed after this long, answered or not.
    pub http_timeout: Duration,
    /// Origins whose pages may open a WebSocket (`*`: any); empty: only
    /// the page's own (same host).
    pub http_origins: Vec<String>,
    /// Host names the HTTP face answers to besides IP addresses and
    /// `localhost` (`*`: any): a page on another name that resolves here
    /// (DNS rebinding) is refused.
    pub http_allowed_hosts: Vec<String>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name
    /// the browser's address (`--http-trust-proxy`); empty: none.
    pub http_trust_proxy: Vec<IpAddr>,
    /// Serve one chat with other nodes through Redis (`--cluster`).
    pub cluster: Option<super::ClusterConfig>,
    /// Whether the fan-out's writes go through io_uring (`--io-uring`).
    pub io_uring: super::IoUringMode,
}

/// mp1d as a LAN peer (`--peer-name`).
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// The bridge's name on the LAN.
    pub name: String,
    /// UDP port; 0 means the same number as the TCP port.
    pub port: u16,
    /// Broadcast addresses (sent to at the peer port).
    pub broadcast: Vec<IpAddr>,
    /// Peers added by hand.
    pub peers: Vec<SocketAddr>,
    /// LAN peers known at most (each costs a datagram per chat if the
    /// broadcast does not reach it).
    pub max_peers: usize,
    /// Greetings (`Discovery`, `Handshake`) answered a second on average,
    /// from all LAN peers together...
    pub greetings_per_second: u32,
    /// ...and at once (the token bucket's size).
    pub greeting_burst: u32,
}

impl BridgeConfig {
    pub fn new(name: &str) -> BridgeConfig {
        BridgeConfig {
            name: name.to_string(),
            port: 0,
            broadcast: Vec::new(),
            peers: Vec::new(),
            max_peers: 64,
            greetings_per_second: 50,
            greeting_burst: 200,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 15151,
            framing: FramingMode::Auto,
            max_clients: 10_000,
            max_message_bytes: 64 * 1024,
            max_chat_chars: 4096,
            max_whisper_recipients: 100,
            max_unparsable: 10,
            login_timeout: Duration::from_secs(30),
            idle_timeout: Duration::ZERO,
            max_output_bytes: 4 * 1024 * 1024,
            max_total_output_bytes: 32 * 1024 * 1024,
            close_timeout: Duration::from_secs(2),
            shutdown_timeout: Duration::from_secs(2),
            log_chat: false,
            log_lines_per_second: 20,
            bridge: None,
            http: None,
            http_timeout: Duration::from_secs(10),
            http_origins: Vec::new(),
            http_allowed_hosts: Vec::new(),
            http_trust_proxy: Vec::new(),
            cluster: None,
            io_uring: super::IoUringMode::DEFAULT,
        }
    }
}
