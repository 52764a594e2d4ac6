//! loadgen's Redis pub/sub baseline against a real redis-server, started
//! by the test on a free loopback port (no persistence) and stopped by its
//! PID. Ignored, saying why in cargo's summary, where redis-server is not
//! installed.

mod common;
use common::loadgen;

/// The project's redis-server helper (free port, no persistence, stopped
/// by its PID, checked to be the one answering).
#[path = "../../tests/common/redis.rs"]
mod redis;

#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
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

/// Several `--target`s: clients spread over two nodes of one cluster (run
/// in-process), every chat reaches every client on both, and latency is
/// reported per node.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn clients_spread_over_a_cluster_lose_nothing() {
    let Some(redis) = redis::start("clients_spread_over_a_cluster_lose_nothing") else {
        return;
    };
    let node = |id: &str| {
        let config = mp1::server::Config {
            bind: std::net::IpAddr::from([127, 0, 0, 1]),
            port: 0,
            cluster: Some(mp1::server::ClusterConfig {
                url: redis.url(),
                node_id: id.into(),
                lease: std::time::Duration::from_secs(3),
            }),
            ..mp1::server::Config::default()
        };
        // The server is made and run on its own thread (it is not Send).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut server = mp1::server::Server::bind(config).expect("mp1d binds");
            server.join_cluster().expect("joins the cluster");
            tx.send(server.local_addr().unwrap().to_string()).unwrap();
            server.run()
        });
        rx.recv().unwrap()
    };
    let (a, b) = (node("a"), node("b"));
    let (code, j, all) = loadgen(&[
        "--target",
        &a,
        "--target",
        &b,
        "--clients",
        "20",
        "--senders",
        "2",
        "--messages",
        "30",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(j["tcp"]["expected"], 50 * 19, "{j}");
    assert_eq!(j["tcp"]["received"], 50 * 19, "{j}");
    assert_eq!(j["tcp"]["lost"], 0, "{j}");
    let by_target = j["delivery_by_target"].as_array().unwrap();
    let targets: Vec<&str> = by_target
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [a.as_str(), b.as_str()], "{j}");
    let counts: Vec<u64> = by_target
        .iter()
        .map(|t| t["delivery_us"]["count"].as_u64().unwrap())
        .collect();
    // 30 measured chats from c0 and c1 (one on each node): the 10 clients
    // on each node get each chat but their own.
    assert_eq!(counts.iter().sum::<u64>(), 30 * 19, "{j}");
    assert!(counts.iter().all(|&c| c >= 30 * 9), "{counts:?}");
}
