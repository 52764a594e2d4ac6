//! A `redis-server` of the test's own: a free loopback port, no
//! persistence, stopped by its PID when dropped. `None` (the test says
//! SKIPPED) where redis-server is not installed. Also a [`Forwarder`]: a
//! link to it that the test can cut, and [`command`] to talk to it.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Redis {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(port: u16) -> std::io::Result<Child> {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .args(["--enable-debug-command", "yes"])
        .stdout(Stdio::null())
        .spawn()
}

pub fn start(test: &str) -> Option<Redis> {
    // A free port can be taken by another test's server between the check
    // and redis-server's bind: then ours exits and the one answering is
    // not ours. Its process id tells.
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let Ok(child) = spawn(port) else {
            eprintln!("SKIPPED {test}: redis-server is not installed (.ci/run installs it)");
            return None;
        };
        let redis = Redis {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
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
        self.child = spawn(self.addr.port()).expect("redis-server starts again");
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
        if s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            .is_err()
        {
            return false;
        }
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text
                .find("process_id:")
                .is_some_and(|i| text[i..].contains("\r\n"))
            {
                break;
            }
        }
        text.contains(&format!("process_id:{}\r\n", self.child.id()))
    }
}

/// Sends one command on a new connection and returns the start of the
/// reply (up to 64 KiB, within 10 s).
pub fn command(addr: SocketAddr, args: &[&str]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to redis");
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(out.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 65536];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A TCP link to `to` that the test controls, as a network between a node
/// and Redis: while `cut`, nothing crosses it either way (bytes wait, as
/// in a network that drops packets and TCP that sends them again later);
/// new connections are accepted but go nowhere until it heals. Threads,
/// stopped when it is dropped.
pub struct Forwarder {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Forwarder {
    pub fn new(to: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, st) = (cut.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (c, st) = (c.clone(), st.clone());
                        std::thread::spawn(move || link(client, to, c, st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Forwarder { addr, cut, stop }
    }

    /// `redis://` of the forwarder.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Cuts (true) or heals (false) the link.
    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One connection through the forwarder: connects on once the link is
/// whole, then pumps both ways.
fn link(client: TcpStream, to: SocketAddr, cut: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    while cut.load(Ordering::SeqCst) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let Ok(server) = TcpStream::connect(to) else {
        return;
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (cut2, stop2) = (cut.clone(), stop.clone());
    std::thread::spawn(move || pump(s2, c2, cut2, stop2));
    pump(client, server, cut, stop);
}

fn pump(mut from: TcpStream, mut to: TcpStream, cut: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    from.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut buf = [0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        if cut.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
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
