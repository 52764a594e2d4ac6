//! Shared helpers for the end-to-end tests: start a real `mp1d` on a free
//! loopback port, and talk to it over real TCP sockets.
#![allow(dead_code)]

pub mod browser;
pub mod peers;
pub mod redis;
pub mod reference;
pub mod terminal;

use mp1::protocol::{Frame, Splitter};
use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any single expected reply may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// `bin`, or `bin` run by a wrapper command such as `ip netns exec NS`.
pub fn command_in(wrapper: &[&str], bin: &str) -> Command {
    match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// `mp1d` on a port of its choosing on loopback, logging at debug level,
/// `args` after those defaults (so they may override them), under
/// `wrapper`; its stderr piped. The caller kills it and waits.
fn spawn(wrapper: &[&str], args: &[&str]) -> Child {
    #[allow(clippy::zombie_processes)] // the caller kills and waits
    command_in(wrapper, env!("CARGO_BIN_EXE_mp1d"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--log-level", "debug"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mp1d starts")
}

/// A running `mp1d`, killed when dropped.
pub struct Mp1d {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its HTTP face, when started with `--http`.
    http: Option<SocketAddr>,
    /// Log lines after the start-up line.
    pub log: mpsc::Receiver<String>,
}

impl Mp1d {
    pub fn start(args: &[&str]) -> Mp1d {
        Mp1d::start_in(&[], args)
    }

    /// Starts mp1d under a wrapper command (`ip netns exec NS`); `args`
    /// come after the defaults, so they may override them.
    pub fn start_in(wrapper: &[&str], args: &[&str]) -> Mp1d {
        #[allow(clippy::zombie_processes)] // Drop kills and waits
        let mut child = spawn(wrapper, args);
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("mp1d prints its start-up line");
            if let Some(i) = line.find("listening on ") {
                let addr = line[i + 13..].split_whitespace().next().unwrap();
                // With --http, its address is logged next.
                let http = args.contains(&"--http").then(|| {
                    let line = rx.recv_timeout(WAIT).expect("mp1d logs its HTTP address");
                    // "... HTTP on 127.0.0.1:PORT: the chat page at /, ..."
                    let at = line.find("HTTP on ").expect("the HTTP line") + 8;
                    let addr: Vec<&str> = line[at..].split(':').take(2).collect();
                    addr.join(":").parse().unwrap()
                });
                return Mp1d {
                    child,
                    addr: addr.parse().unwrap(),
                    http,
                    log: rx,
                };
            }
        }
    }

    /// Starts mp1d whose stderr, once it said where it listens, is held
    /// and never read again: a log nobody reads. Returns the process and
    /// its address; the pipe is closed when the process is.
    pub fn start_with_unread_log(args: &[&str]) -> (Child, SocketAddr) {
        #[allow(clippy::zombie_processes)] // the caller kills and waits
        let mut child = spawn(&[], args);
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "mp1d exited");
            if let Some(i) = line.find("listening on ") {
                let addr = line[i + 13..].split_whitespace().next().unwrap();
                let addr = addr.parse().unwrap();
                // Held, never read: the pipe fills.
                child.stderr = Some(stderr.into_inner());
                return (child, addr);
            }
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Connects with a 4 KiB receive buffer: a client whose socket fills
    /// after a few messages if it does not read.
    pub fn connect_small(&self) -> Client {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&self.addr.into()).unwrap();
        Client::from_stream(socket.into())
    }

    /// Connects and logs in as `name` (bare framing), consuming the
    /// replies to the login.
    pub fn login(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.send(&format!(r#"{{"mtp":"Login","data":{{"name":"{name}"}}}}"#));
        let r = c.recv();
        assert_eq!(r["mtp"], "AssignUsername", "{r}");
        assert_eq!(r["status"], "OK", "{r}");
        c.expect_server_message(&format!("{name} joined the server."));
        c
    }

    /// Where its HTTP face (`--http`) listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.expect("started with --http")
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no log line containing {needle:?}"),
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("mp1d did not exit");
    }
}

impl Drop for Mp1d {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test client: writes raw bytes, reads JSON objects.
pub struct Client {
    pub stream: TcpStream,
    splitter: Splitter,
    objects: VecDeque<Vec<u8>>,
    /// Every byte received, for framing checks.
    pub raw: Vec<u8>,
    eof: bool,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect_timeout(&addr, WAIT).expect("connect"))
    }

    /// A client on a stream connected elsewhere (in a network namespace).
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            splitter: Splitter::new(),
            objects: VecDeque::new(),
            raw: Vec::new(),
            eof: false,
        }
    }

    pub fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads more bytes; false on EOF or timeout.
    fn fill(&mut self, timeout: Duration) -> bool {
        if self.eof {
            return false;
        }
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 65536];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                let mut frames = self.splitter.frames(&buf[..n], usize::MAX);
                while let Some(f) = frames.next_frame() {
                    if let Frame::Object(o) = f {
                        self.objects.push_back(o.to_vec());
                    }
                }
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                self.eof = true;
                false
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// The next object, within `timeout`.
    pub fn try_recv(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(o) = self.objects.pop_front() {
                let text = std::str::from_utf8(&o).expect("server sends UTF-8");
                assert!(text.is_ascii(), "server sent non-ASCII: {text}");
                return Some(serde_json::from_str(text).expect("server sends JSON"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.fill(left) && (self.eof || Instant::now() >= deadline)) {
                return None;
            }
        }
    }

    /// The next object if one is already here, without waiting.
    pub fn poll_recv(&mut self) -> Option<Value> {
        if self.objects.is_empty() && !self.eof {
            self.stream.set_nonblocking(true).unwrap();
            self.fill(Duration::from_millis(1));
            self.stream.set_nonblocking(false).unwrap();
        }
        if self.objects.is_empty() {
            return None;
        }
        self.try_recv(Duration::ZERO)
    }

    pub fn recv(&mut self) -> Value {
        self.try_recv(WAIT).expect("a reply within the time limit")
    }

    /// Asserts nothing arrives within a short while.
    pub fn expect_silence(&mut self, for_: Duration) {
        if let Some(v) = self.try_recv(for_) {
            panic!("expected nothing, got {v}");
        }
    }

    pub fn expect_server_message(&mut self, text: &str) {
        let v = self.recv();
        assert_eq!(v["mtp"], "ServerMessage", "{v}");
        assert_eq!(v["data"]["message"], text, "{v}");
    }

    /// The next reply is a `ServerMessage` whose text starts with `prefix`.
    pub fn expect_server_message_starting(&mut self, prefix: &str) {
        let v = self.recv();
        assert_eq!(v["mtp"], "ServerMessage", "{v}");
        let text = v["data"]["message"].as_str().unwrap_or_default();
        assert!(text.starts_with(prefix), "{v}");
    }

    /// Waits for the server to close the connection (EOF or reset).
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        while !self.eof {
            assert!(Instant::now() < deadline, "connection still open");
            if !self.fill(Duration::from_millis(100)) && !self.eof {
                continue;
            }
            if let Some(o) = self.objects.pop_front() {
                panic!("expected close, got {}", String::from_utf8_lossy(&o));
            }
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }
}

/// `{"mtp": M, "data": D}` as compact JSON.
pub fn msg(mtp: &str, data: Value) -> String {
    serde_json::json!({"mtp": mtp, "data": data}).to_string()
}
