//! `mp1`: the terminal program people chat with, against a server
//! (`mp1 connect`) or on a LAN with no server (`mp1 peer`).

use mp1::terminal::{client, peer_chat};
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

const USAGE: &str = "\
mp1: chat with the CoE 151 MP1 protocol

USAGE:
  mp1 connect [HOST[:PORT]] --name NAME [--framing auto|bare|newline]
        log in to a server (default 127.0.0.1:15151)
  mp1 peer --name NAME [--port P] [--bind IP] [--broadcast ADDR]... [--peer IP:PORT]... [--verbose]
        chat on a LAN with no server
  mp1 connect --help, mp1 peer --help: each mode's options

Type text to chat; /help lists the commands once running.
Exit status: 0 after /quit, 1 when the server cannot be reached or drops
the connection, 2 for a usage error.";

const CONNECT_USAGE: &str = "\
mp1 connect: log in to an MP1 server and chat

USAGE: mp1 connect [HOST[:PORT]] --name NAME [--framing auto|bare|newline]

  HOST[:PORT]    the server (default 127.0.0.1:15151); a bare IPv6
                 address works, [::1]:PORT with a port
  --name NAME    the name to log in as (a taken one asks for another)
  --framing F    how requests are framed: bare (objects back-to-back, as
                 the draft's examples), newline (each ends with a line
                 break), or auto (default): bare, plus a line break if the
                 Login gets no answer within a second
  -h, --help

Type text to chat; /help lists the commands once running.";

const PEER_USAGE: &str = "\
mp1 peer: chat on a LAN with no server, peer to peer over UDP

USAGE: mp1 peer --name NAME [OPTIONS]

  --name NAME          the name to join as (a taken one asks for another)
  --port P             UDP port (default 15151). Broadcast reaches only the
                       peers on the same port: on a LAN give every peer the
                       same one; on one machine each needs its own, and
                       --peer to reach the others
  --bind IP            local address (default all)
  --broadcast ADDR     broadcast address, repeatable (default
                       255.255.255.255; on one machine 127.255.255.255)
  --peer IP:PORT       a peer added by hand, repeatable
  --verbose            also show dropped datagrams and why
  -h, --help

Type text to chat; /help lists the commands once running.";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mode = args.next().map(|m| m.to_string_lossy().into_owned());
    let rest: Vec<_> = args.collect();
    let ended = match mode.as_deref() {
        Some("connect") => match connect_args(rest) {
            Ok(Some((target, name, framing))) => match resolve(&target) {
                Ok(addr) => client::run(addr, &name, framing),
                // Typed right, but the name does not resolve (now): a
                // run-time failure, not a usage error.
                Err(e) => {
                    eprintln!("mp1: {e}");
                    return ExitCode::FAILURE;
                }
            },
            Ok(None) => return help(CONNECT_USAGE),
            Err(e) => return usage(&e, CONNECT_USAGE),
        },
        Some("peer") => match peer_args(rest) {
            Ok(Some(opts)) => peer_chat::run(opts),
            Ok(None) => return help(PEER_USAGE),
            Err(e) => return usage(&e, PEER_USAGE),
        },
        Some("-h" | "--help" | "help") => return help(USAGE),
        Some("-V" | "--version") => {
            println!("mp1 {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => return usage("say connect or peer", USAGE),
    };
    if let Some(why) = ended.why {
        eprintln!("mp1: {why}");
    }
    ExitCode::from(ended.code)
}

fn help(text: &str) -> ExitCode {
    println!("{text}");
    ExitCode::SUCCESS
}

fn usage(e: &str, text: &str) -> ExitCode {
    eprintln!("mp1: {e}\n\n{text}");
    ExitCode::from(2)
}

/// The value of the option just read, as text.
fn value(p: &mut lexopt::Parser, opt: &str) -> Result<String, String> {
    p.value()
        .map_err(|_| format!("{opt} needs a value"))?
        .into_string()
        .map_err(|_| format!("{opt}: not UTF-8"))
}

/// HOST[:PORT] (resolved later), the name, the framing.
type ConnectArgs = (String, String, client::Framing);

fn connect_args(args: Vec<OsString>) -> Result<Option<ConnectArgs>, String> {
    use lexopt::prelude::*;
    let mut name = None;
    let mut framing = client::Framing::Auto;
    let mut target = None;
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("name") => name = Some(value(&mut p, "--name")?),
            Long("framing") => framing = value(&mut p, "--framing")?.parse()?,
            Value(v) if target.is_none() => {
                target = Some(v.into_string().map_err(|_| "HOST: not UTF-8")?)
            }
            Value(v) => return Err(format!("unexpected argument {:?}", v.to_string_lossy())),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let name = name.ok_or("--name NAME is required")?;
    let target = target.unwrap_or_else(|| "127.0.0.1".to_string());
    Ok(Some((target, name, framing)))
}

/// HOST, HOST:PORT, a bare IPv6 address or [IPv6]:PORT; port 15151 when
/// none is given.
fn resolve(target: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 15151));
    }
    let with_port = if target.ends_with(']') || !target.contains(':') {
        format!("{target}:15151")
    } else {
        target.to_string()
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or(format!("cannot resolve {target}"))
}

fn peer_args(args: Vec<OsString>) -> Result<Option<peer_chat::PeerOptions>, String> {
    use lexopt::prelude::*;
    let mut opts = peer_chat::PeerOptions {
        name: String::new(),
        port: 15151,
        bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        broadcast: Vec::new(),
        peers: Vec::new(),
        verbose: false,
    };
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("verbose") => opts.verbose = true,
            Long("name") => opts.name = value(&mut p, "--name")?,
            Long("port") => {
                let v = value(&mut p, "--port")?;
                opts.port = v
                    .parse()
                    .map_err(|_| format!("--port: expected a port 0-65535, not {v:?}"))?
            }
            Long("bind") => {
                let v = value(&mut p, "--bind")?;
                opts.bind = v.parse().map_err(|_| format!("--bind: not an IP: {v}"))?
            }
            Long("broadcast") => {
                let v = value(&mut p, "--broadcast")?;
                let ip = v
                    .parse()
                    .map_err(|_| format!("--broadcast: not an IP: {v}"))?;
                opts.broadcast.push(ip)
            }
            Long("peer") => {
                let v = value(&mut p, "--peer")?;
                let addr = v.parse().map_err(|_| format!("--peer: not IP:PORT: {v}"))?;
                opts.peers.push(addr)
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    if opts.name.is_empty() {
        return Err("--name NAME is required".into());
    }
    if opts.broadcast.is_empty() {
        opts.broadcast.push(IpAddr::V4(Ipv4Addr::BROADCAST));
    }
    Ok(Some(opts))
}
