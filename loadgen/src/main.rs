//! `loadgen`: thousands of simulated MP1 clients (and UDP peers through
//! mp1d's LAN bridge) against a server, measuring how long a chat takes to
//! reach everyone, how many deliveries per second the server sustains, and
//! whether anything is lost, duplicated or reordered.
//!
//! Exit status: 0 when every TCP delivery arrived exactly once and in
//! order, 1 when any was lost, duplicated or reordered (or the run failed),
//! 2 for a usage error.

mod accounting;
mod procfs;
mod progress;
mod report;
mod resp;
mod run;

use run::{Mode, Params};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "\
loadgen: simulated MP1 clients and peers; broadcast fan-out latency

USAGE: loadgen [OPTIONS]

  --target HOST:PORT    the server (default 127.0.0.1:15151); repeatable:
                        several nodes of one cluster, clients spread over
                        them in turn (client i on target i mod n), latency
                        reported per target as well
  --transport tcp|ws    MP1 over TCP (default) or over WebSocket: the
                        target is then mp1d's --http address
  --protocol mp1|redis  mp1 (default), or Redis pub/sub as the baseline:
                        clients SUBSCRIBE to one channel, each sender
                        PUBLISHes the same text on a second connection
  --clients N           simulated TCP clients (default 100)
  --peers N             simulated UDP peers handshaking with the server's
                        LAN bridge (default 0; start mp1d with --peer-name
                        NAME --broadcast 127.255.255.255); a handshake is
                        sent again until answered, for --connect-timeout
  --bridge HOST:PORT    UDP address of the bridge (default: the target)
  --mode closed|open    closed: next chat when all got the previous one;
                        open: fixed rate, latency from the intended send
                        time (default closed)
  --messages M          closed: measured chats (default 200)
  --warmup W            closed: unmeasured chats first (default 20);
                        open: unmeasured seconds first (default 1)
  --rate R              open: chats per second, all senders (default 10)
  --duration S          open: measured seconds (default 10)
  --drain S             open: seconds to wait for stragglers (default 5)
  --senders K           clients that send, in turn (default 1)
  --payload B           chat text bytes (default 64)
  --batch B             connections being set up at once (default 100)
  --ramp R              new connections per second at most (default 0:
                        as fast as --batch allows)
  --connect-timeout S   per-client connect+login limit (default 30)
  --msg-timeout S       closed: give up on one chat after S (default 10)
  --framing auto|bare|newline
                        bare: objects back-to-back; newline: each ends
                        with a line break; auto (default): bare, plus a
                        line break if the Login gets no answer in 1 s
  --sweep N,N,...       run at each client count and print one table
  --server-pid PID      report the server's CPU and memory (from /proc);
                        repeatable: each node and the cluster's Redis
  --json                print one JSON object per run instead of text
  --hgrm PREFIX         write PREFIX-delivery.hgrm (and -fanout, -peer)
  --plot FILE.svg       latency percentile curve (a sweep: latency
                        against clients)
  -h, --help";

struct Options {
    params: Params,
    sweep: Vec<usize>,
    server_pids: Vec<u32>,
    json: bool,
    hgrm: Option<String>,
    plot: Option<String>,
}

fn parse() -> Result<Option<Options>, String> {
    use lexopt::prelude::*;
    let mut targets: Vec<SocketAddr> = Vec::new();
    let mut bridge: Option<SocketAddr> = None;
    let (mut clients, mut peers, mut senders, mut payload, mut batch) =
        (100usize, 0usize, 1usize, 64usize, 100usize);
    let (mut messages, mut warmup, mut rate) = (200u64, None::<f64>, 10.0f64);
    let (mut duration, mut drain, mut connect_timeout, mut msg_timeout) = (10.0, 5.0, 30.0, 10.0);
    let mut ramp = 0.0;
    let mut open = false;
    let mut framing = run::Framing::Auto;
    let mut protocol = run::Protocol::Mp1;
    let mut websocket = false;
    let mut sweep = Vec::new();
    let mut server_pids = Vec::new();
    let (mut json, mut hgrm, mut plot) = (false, None, None);
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        let name = match arg {
            Long(n) => format!("--{n}"),
            Short(c) => format!("-{c}"),
            Value(v) => return Err(format!("unexpected argument {v:?}")),
        };
        match name.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(None);
            }
            "--json" => {
                json = true;
                continue;
            }
            _ => {}
        }
        let v = p
            .value()
            .map_err(|e| format!("{name}: {e}"))?
            .into_string()
            .map_err(|_| format!("{name}: not UTF-8"))?;
        let bad = |what: &str| format!("{name}: expected {what}, not {v:?}");
        let num = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0);
        match name.as_str() {
            "--target" => targets.push(v.parse().map_err(|_| bad("HOST:PORT"))?),
            "--bridge" => bridge = Some(v.parse().map_err(|_| bad("HOST:PORT"))?),
            "--clients" => clients = v.parse().map_err(|_| bad("a number"))?,
            "--peers" => peers = v.parse().map_err(|_| bad("a number"))?,
            "--senders" => senders = v.parse().map_err(|_| bad("a number"))?,
            "--payload" => payload = v.parse().map_err(|_| bad("a number"))?,
            "--batch" => {
                batch = v
                    .parse::<usize>()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| bad("a positive number"))?
            }
            "--ramp" => ramp = num(&v).ok_or_else(|| bad("connections per second"))?,
            "--messages" => messages = v.parse().map_err(|_| bad("a number"))?,
            "--warmup" => warmup = Some(num(&v).ok_or_else(|| bad("a number"))?),
            "--rate" => rate = num(&v).ok_or_else(|| bad("a number"))?,
            "--duration" => duration = num(&v).ok_or_else(|| bad("seconds"))?,
            "--drain" => drain = num(&v).ok_or_else(|| bad("seconds"))?,
            "--connect-timeout" => connect_timeout = num(&v).ok_or_else(|| bad("seconds"))?,
            "--msg-timeout" => msg_timeout = num(&v).ok_or_else(|| bad("seconds"))?,
            "--mode" => {
                open = match v.as_str() {
                    "open" => true,
                    "closed" => false,
                    _ => return Err(bad("closed or open")),
                }
            }
            "--transport" => {
                websocket = match v.as_str() {
                    "ws" => true,
                    "tcp" => false,
                    _ => return Err(bad("tcp or ws")),
                }
            }
            "--protocol" => {
                protocol = match v.as_str() {
                    "mp1" => run::Protocol::Mp1,
                    "redis" => run::Protocol::Redis,
                    _ => return Err(bad("mp1 or redis")),
                }
            }
            "--framing" => framing = v.parse().map_err(|_| bad("auto, bare or newline"))?,
            "--sweep" => {
                sweep = v
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| bad("N,N,..."))?
            }
            "--server-pid" => server_pids.push(v.parse().map_err(|_| bad("a process id"))?),
            "--hgrm" => hgrm = Some(v),
            "--plot" => plot = Some(v),
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if clients < 2 {
        return Err("--clients must be at least 2 (a sender and a receiver)".into());
    }
    if protocol == run::Protocol::Redis && peers > 0 {
        return Err("--peers needs --protocol mp1 (Redis has no LAN bridge)".into());
    }
    if websocket && (protocol != run::Protocol::Mp1 || peers > 0) {
        return Err("--transport ws is for MP1 clients, without --peers".into());
    }
    if targets.is_empty() {
        targets.push("127.0.0.1:15151".parse().unwrap());
    }
    let target = targets[0];
    let params = Params {
        protocol,
        websocket,
        targets,
        clients,
        peers,
        bridge: bridge.unwrap_or(target),
        mode: if open {
            Mode::Open {
                rate,
                duration: Duration::from_secs_f64(duration),
                warmup: Duration::from_secs_f64(warmup.unwrap_or(1.0)),
            }
        } else {
            Mode::Closed {
                messages,
                warmup: warmup.unwrap_or(20.0) as u64,
            }
        },
        senders,
        payload,
        batch,
        ramp,
        connect_timeout: Duration::from_secs_f64(connect_timeout),
        msg_timeout: Duration::from_secs_f64(msg_timeout),
        drain: Duration::from_secs_f64(drain),
        framing,
        server_pids: Vec::new(),
        // SAFETY: isatty only inspects the descriptor.
        show_progress: !json && unsafe { libc::isatty(2) == 1 },
    };
    Ok(Some(Options {
        params,
        sweep,
        server_pids,
        json,
        hgrm,
        plot,
    }))
}

fn run_one(o: &Options, clients: usize) -> Result<(run::Outcome, Value), String> {
    let mut params = o.params.clone();
    params.clients = clients;
    params.server_pids = o.server_pids.clone();
    let outcome = run::run(&params)?;
    let j = report::to_json(&format!("{clients} clients"), &outcome);
    Ok((outcome, j))
}

/// Writes an output file and says where (on stderr, so `--json` output
/// stays one object per line).
fn write(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
    let shown =
        std::fs::canonicalize(path).map_or_else(|_| path.into(), |p| p.display().to_string());
    eprintln!("loadgen: wrote {shown}");
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}\nTry 'loadgen --help'.");
            return ExitCode::from(2);
        }
    };
    let nofile = mp1::server::raise_nofile_limit();
    let biggest = o.sweep.iter().copied().max().unwrap_or(o.params.clients) + o.params.peers;
    if (biggest as u64) + 64 > nofile {
        eprintln!(
            "loadgen: {biggest} sockets need more than the open-file limit ({nofile}) allows"
        );
        return ExitCode::from(2);
    }
    let sizes = if o.sweep.is_empty() {
        vec![o.params.clients]
    } else {
        o.sweep.clone()
    };
    let mut rows = Vec::new();
    let mut clean = true;
    for (i, &n) in sizes.iter().enumerate() {
        if i > 0 {
            // Let the server finish announcing the last run's departures.
            std::thread::sleep(Duration::from_secs(2));
        }
        let (outcome, j) = match run_one(&o, n) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("loadgen: {n} clients: {e}");
                return ExitCode::from(1);
            }
        };
        let t = &outcome.tcp;
        clean &= t.lost == 0 && t.duplicates == 0 && t.reordered == 0 && outcome.timeouts == 0;
        if o.json {
            println!("{j}");
        } else {
            print!("{}", report::summary(&j));
        }
        if let Some(prefix) = &o.hgrm {
            let tag = if sizes.len() > 1 {
                format!("-{n}")
            } else {
                String::new()
            };
            let mut files = vec![("delivery", &outcome.delivery_us)];
            if !outcome.fanout_us.is_empty() {
                files.push(("fanout", &outcome.fanout_us));
            }
            if !outcome.peer_delivery_us.is_empty() {
                files.push(("peer", &outcome.peer_delivery_us));
            }
            for (kind, h) in files {
                if let Err(e) = write(&format!("{prefix}{tag}-{kind}.hgrm"), &report::hgrm(h)) {
                    eprintln!("loadgen: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        if sizes.len() == 1 {
            if let Some(path) = &o.plot {
                let mut curves = vec![(format!("delivery, {n} clients"), &outcome.delivery_us)];
                if !outcome.fanout_us.is_empty() {
                    curves.push(("fan-out done".to_string(), &outcome.fanout_us));
                }
                if let Err(e) = write(path, &report::percentile_svg(&curves)) {
                    eprintln!("loadgen: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        rows.push(j);
    }
    if sizes.len() > 1 {
        if !o.json {
            println!("\n{}", report::sweep_table(&rows));
        }
        if let Some(path) = &o.plot {
            if let Err(e) = write(path, &report::sweep_svg(&rows)) {
                eprintln!("loadgen: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        let transport = report::transport_name(o.params.transport_option());
        eprintln!("loadgen: {transport} deliveries were lost, duplicated or reordered");
        ExitCode::from(1)
    }
}
