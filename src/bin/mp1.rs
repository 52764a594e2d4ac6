//! `mp1`: the terminal program people chat with, against a server
//! (`mp1 connect`) or on a LAN with no server (`mp1 peer`).

use mp1::terminal::{client, peer_chat};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

const USAGE: &str = "\
mp1: chat with the CoE 151 MP1 protocol

USAGE:
  mp1 connect [HOST[:PORT]] --name NAME
        log in to a server (default 127.0.0.1:15151)
  mp1 peer --name NAME [--port P] [--bind IP] [--broadcast ADDR]... [--peer IP:PORT]... [--verbose]
        chat on a LAN with no server: UDP port P (default 15151),
        broadcast ADDR (default 255.255.255.255; repeatable),
        peers added by hand (repeatable)

Type text to chat; /help lists the commands once running.
Exit status: 0 after /quit, 1 when the server cannot be reached or drops
the connection, 2 for a usage error.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ended = match args.first().map(String::as_str) {
        Some("connect") => match connect_args(&args[1..]) {
            Ok((addr, name)) => client::run(addr, &name),
            Err(e) => return usage(&e),
        },
        Some("peer") => match peer_args(&args[1..]) {
            Ok(opts) => peer_chat::run(opts),
            Err(e) => return usage(&e),
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("mp1 {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => return usage("say connect or peer"),
    };
    if let Some(why) = ended.why {
        eprintln!("mp1: {why}");
    }
    ExitCode::from(ended.code)
}

fn usage(e: &str) -> ExitCode {
    eprintln!("mp1: {e}\n\n{USAGE}");
    ExitCode::from(2)
}

/// Options as (name, value) pairs; bare words as (None, word).
fn pairs(args: &[String], flags: &[&str]) -> Result<Vec<(Option<String>, String)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(opt) = a.strip_prefix("--") {
            let (opt, inline) = match opt.split_once('=') {
                Some((o, v)) => (o, Some(v.to_string())),
                None => (opt, None),
            };
            if flags.contains(&opt) {
                out.push((Some(opt.to_string()), String::new()));
                continue;
            }
            let v = match inline {
                Some(v) => v,
                None => it.next().ok_or(format!("--{opt} needs a value"))?.clone(),
            };
            out.push((Some(opt.to_string()), v));
        } else {
            out.push((None, a.clone()));
        }
    }
    Ok(out)
}

fn connect_args(args: &[String]) -> Result<(SocketAddr, String), String> {
    let mut name = None;
    let mut target = "127.0.0.1:15151".to_string();
    for (opt, v) in pairs(args, &[])? {
        match opt.as_deref() {
            Some("name") => name = Some(v),
            None => {
                target = if v.contains(':') {
                    v
                } else {
                    format!("{v}:15151")
                }
            }
            Some(o) => return Err(format!("unknown option --{o}")),
        }
    }
    let name = name.ok_or("--name NAME is required")?;
    let addr = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?
        .next()
        .ok_or(format!("cannot resolve {target}"))?;
    Ok((addr, name))
}

fn peer_args(args: &[String]) -> Result<peer_chat::PeerOptions, String> {
    let mut opts = peer_chat::PeerOptions {
        name: String::new(),
        port: 15151,
        bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        broadcast: Vec::new(),
        peers: Vec::new(),
        verbose: false,
    };
    for (opt, v) in pairs(args, &["verbose"])? {
        match opt.as_deref() {
            Some("name") => opts.name = v,
            Some("port") => {
                opts.port = v.parse().map_err(|_| format!("--port: not a port: {v}"))?
            }
            Some("bind") => opts.bind = v.parse().map_err(|_| format!("--bind: not an IP: {v}"))?,
            Some("broadcast") => opts.broadcast.push(
                v.parse()
                    .map_err(|_| format!("--broadcast: not an IP: {v}"))?,
            ),
            Some("peer") => opts
                .peers
                .push(v.parse().map_err(|_| format!("--peer: not IP:PORT: {v}"))?),
            Some("verbose") => opts.verbose = true,
            Some(o) => return Err(format!("unknown option --{o}")),
            None => return Err(format!("unexpected argument {v}")),
        }
    }
    if opts.name.is_empty() {
        return Err("--name NAME is required".into());
    }
    if opts.broadcast.is_empty() {
        opts.broadcast.push(IpAddr::V4(Ipv4Addr::BROADCAST));
    }
    Ok(opts)
}
