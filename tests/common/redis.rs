//! A `redis-server` of the test's own: a free loopback port, no
//! persistence, stopped by its PID when dropped. `None` (the test says
//! SKIPPED) where redis-server is not installed. Also a [`Forwarder`]: a
//! link to it that the test can cut, and [`command`] to talk to it.
#![allow(dead_code)]

use mp1::cluster::redis::{Connection, Reply};
use redis_protocol::resp2::types::Resp2Frame;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Redis {
    child: Child,
    pub addr: SocketAddr,
    /// redis-server's arguments.
    args: Vec<String>,
    /// Files it writes (a Sentinel's configuration, a replica's copy of
    /// the data), removed at the end.
    files: Vec<PathBuf>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn spawn(args: &[String]) -> std::io::Result<Child> {
    Command::new("redis-server")
        .args(args)
        .stdout(Stdio::null())
        .spawn()
}

/// A file of the test's own in the temporary directory.
fn temp_file(what: &str, port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("mp1-{what}-{}-{port}", std::process::id()))
}

/// A Redis server's arguments on `port`, then `extra`; and the file it may
/// write (a replica saves what it receives, `--save ''` or not), kept out
/// of the working directory.
fn server_args(port: u16, extra: &[&str]) -> (Vec<String>, Vec<PathBuf>) {
    let port_text = port.to_string();
    let rdb = temp_file("dump", port).with_extension("rdb");
    let dir = rdb.parent().unwrap().display().to_string();
    let name = rdb.file_name().unwrap().to_string_lossy().into_owned();
    let args = ["--port", &port_text, "--bind", "127.0.0.1"]
        .iter()
        .chain(&["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .chain(&["--enable-debug-command", "yes"])
        .chain(&["--dir", &dir, "--dbfilename", &name])
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    (args, vec![rdb])
}

pub fn start(test: &str) -> Option<Redis> {
    start_with(test, |port| server_args(port, &[]))
}

/// A replica of the master at `master` (a forwarder to it, say).
pub fn start_replica(test: &str, master: SocketAddr) -> Option<Redis> {
    let (host, port) = (master.ip().to_string(), master.port().to_string());
    start_with(test, |p| server_args(p, &["--replicaof", &host, &port]))
}

/// A Sentinel watching `master` as `name` (quorum 2, down after 1 s).
pub fn start_sentinel(test: &str, master: &Redis, name: &str) -> Option<Redis> {
    start_with(test, |port| {
        let conf = temp_file("sentinel", port).with_extension("conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\n\
             sentinel monitor {name} {} {} 2\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 10000\n",
            master.addr.ip(),
            master.addr.port()
        );
        std::fs::write(&conf, text).expect("write the Sentinel's configuration");
        let args = vec![conf.display().to_string(), "--sentinel".into()];
        (args, vec![conf])
    })
}

/// A redis-server with the arguments `args(port)` gives, on a free port.
fn start_with(test: &str, args: impl Fn(u16) -> (Vec<String>, Vec<PathBuf>)) -> Option<Redis> {
    // A free port can be taken by another test's server between the check
    // and redis-server's bind: then ours exits and the one answering is
    // not ours. Its process id tells.
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let (args, files) = args(port);
        let Ok(child) = spawn(&args) else {
            eprintln!("SKIPPED {test}: redis-server is not installed (.ci/run installs it)");
            return None;
        };
        let redis = Redis {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            args,
            files,
        };
        if redis.is_ours() {
            return Some(redis);
        }
    }
    panic!("could not start a redis-server of our own");
}

impl Redis {
    /// `redis://127.0.0.1:PORT`, for `mp1d --cluster`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it (by its PID): Redis is gone, and its data with it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again, empty, on the same port.
    pub fn start_again(&mut self) {
        self.stop();
        self.child = spawn(&self.args).expect("redis-server starts again");
        assert!(self.is_ours(), "another process took the Redis port");
    }

    /// Waits until it answers, and checks that the one answering is ours.
    fn is_ours(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut s = loop {
            if let Ok(s) = TcpStream::connect(self.addr) {
                break s;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        match call(&mut s, &[b"INFO", b"server"]) {
            Some(Reply::BulkString(info)) => String::from_utf8_lossy(&info)
                .contains(&format!("process_id:{}\r\n", self.child.id())),
            _ => false,
        }
    }
}

/// Sends one command and reads its reply, with the library's RESP codec;
/// `None` if the connection fails or what answers is not Redis.
pub fn call(s: &mut TcpStream, args: &[&[u8]]) -> Option<Reply> {
    let mut c = Connection::default();
    c.command((), args);
    s.write_all(c.output()).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(((), reply)) = c.next_reply().ok()? {
            return Some(reply);
        }
        let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
        c.feed(&buf[..n]);
    }
}

/// Sends one command on a new connection and returns its reply as Redis
/// wrote it (RESP text, through the library's codec), within 10 s.
pub fn command(addr: SocketAddr, args: &[&str]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to redis");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let reply = call(&mut s, &args).expect("Redis answers");
    let mut text = vec![0u8; reply.encode_len(false)];
    redis_protocol::resp2::encode::encode(&mut text, &reply, false).expect("encodes");
    String::from_utf8_lossy(&text).into_owned()
}

/// A TCP link to `to` that the test controls, as a network between a node
/// and Redis: while `cut`, nothing crosses it either way (bytes wait, as
/// in a network that drops packets and TCP that sends them again later);
/// new connections are accepted but go nowhere until it heals. While
/// `losing`, what crosses is thrown away. Threads, stopped when it is
/// dropped.
pub struct Forwarder {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    losing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

/// A forwarder's switches, shared with its threads.
#[derive(Clone)]
struct Switches {
    cut: Arc<AtomicBool>,
    losing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Forwarder {
    pub fn new(to: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let sw = Switches {
            cut: Arc::new(AtomicBool::new(false)),
            losing: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let threads = sw.clone();
        std::thread::spawn(move || {
            while !threads.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let sw = threads.clone();
                        std::thread::spawn(move || link(client, to, sw));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Forwarder {
            addr,
            cut: sw.cut,
            losing: sw.losing,
            stop: sw.stop,
        }
    }

    /// `redis://` of the forwarder.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Cuts (true) or heals (false) the link.
    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }

    /// Throws away (true) what crosses the link, or stops (false).
    pub fn lose(&self, losing: bool) {
        self.losing.store(losing, Ordering::SeqCst);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One connection through the forwarder: connects on once the link is
/// whole, then pumps both ways.
fn link(client: TcpStream, to: SocketAddr, sw: Switches) {
    while sw.cut.load(Ordering::SeqCst) {
        if sw.stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let Ok(server) = TcpStream::connect(to) else {
        return;
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let sw2 = sw.clone();
    std::thread::spawn(move || pump(s2, c2, sw2));
    pump(client, server, sw);
}

fn pump(mut from: TcpStream, mut to: TcpStream, sw: Switches) {
    from.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut buf = [0u8; 65536];
    while !sw.stop.load(Ordering::Relaxed) {
        if sw.cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(_) if sw.losing.load(Ordering::SeqCst) => {}
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}
