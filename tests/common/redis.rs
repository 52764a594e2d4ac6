//! A `redis-server` of the test's own: a free loopback port, no
//! persistence, stopped by its PID when dropped. `None` (the test says
//! SKIPPED) where redis-server is not installed.
#![allow(dead_code)]

use mp1::cluster::redis::{Connection, Reply};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
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
