//! loadgen's Redis pub/sub baseline against a real redis-server, started
//! by the test on a free loopback port (no persistence) and stopped by its
//! PID. Skipped, saying so, where redis-server is not installed.

mod common;
use common::loadgen;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Option<Redis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        eprintln!("SKIPPED: redis-server is not installed (.ci/run installs it)");
        return None;
    };
    let redis = Redis { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(redis)
}

#[test]
fn redis_pub_sub_is_driven_and_accounted_like_mp1() {
    let Some(redis) = start_redis() else {
        return;
    };
    let target = format!("127.0.0.1:{}", redis.port);
    let pid = redis.child.id().to_string();
    let (code, j, all) = loadgen(&[
        "--protocol",
        "redis",
        "--target",
        &target,
        "--clients",
        "20",
        "--senders",
        "2",
        "--messages",
        "30",
        "--server-pid",
        &pid,
        "--json",
    ]);
    assert_eq!(code, Some(0), "{all}");
    // Same accounting as MP1: every client but the sender gets each chat
    // (a sender's own subscription is not counted).
    assert_eq!(j["tcp"]["expected"], 50 * 19, "{j}");
    assert_eq!(j["tcp"]["received"], 50 * 19, "{j}");
    assert_eq!(j["tcp"]["lost"], 0, "{j}");
    assert_eq!(j["delivery_us"]["count"], 30 * 19, "{j}");
    assert!(j["server_cpu_s"].as_f64().is_some(), "{j}");

    let (code, j, all) = loadgen(&[
        "--protocol",
        "redis",
        "--target",
        &target,
        "--clients",
        "10",
        "--mode",
        "open",
        "--rate",
        "50",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(j["tcp"]["lost"], 0, "{j}");
}

#[test]
fn redis_mode_refuses_peers() {
    let (code, _, all) = loadgen(&["--protocol", "redis", "--peers", "2"]);
    assert_eq!(code, Some(2), "{all}");
    assert!(all.contains("--peers needs --protocol mp1"), "{all}");
}
