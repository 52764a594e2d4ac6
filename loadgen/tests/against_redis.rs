//! loadgen's Redis pub/sub baseline against a real redis-server, started
//! by the test on a free loopback port (no persistence) and stopped by its
//! PID. Skipped, saying so, where redis-server is not installed.

mod common;
use common::loadgen;

/// The project's redis-server helper (free port, no persistence, stopped
/// by its PID, checked to be the one answering).
#[path = "../../tests/common/redis.rs"]
mod redis;

#[test]
fn redis_pub_sub_is_driven_and_accounted_like_mp1() {
    let Some(redis) = redis::start("redis_pub_sub_is_driven_and_accounted_like_mp1") else {
        return;
    };
    let target = redis.addr.to_string();
    let pid = redis.pid().to_string();
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
