//! loadgen against a real mp1d (run in-process from the library on
//! 127.0.0.1): small closed- and open-loop runs with UDP peers through the
//! bridge lose nothing, and the outputs (JSON, .hgrm, SVG) are written.

mod common;
use common::loadgen;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

/// Starts mp1d bridging as "br" (loopback broadcast only) on a thread.
fn start_mp1d() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bridge = mp1::server::BridgeConfig::new("br");
        bridge.broadcast = vec![IpAddr::from([127, 255, 255, 255])];
        let config = mp1::server::Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            bridge: Some(bridge),
            ..mp1::server::Config::default()
        };
        let server = mp1::server::Server::bind(config).expect("mp1d binds");
        tx.send(server.local_addr().unwrap()).unwrap();
        server.run().unwrap();
    });
    let addr = rx.recv().unwrap();
    // The bridge needs its discovery and handshake windows to be active.
    std::thread::sleep(std::time::Duration::from_millis(1700));
    addr
}

#[test]
fn closed_and_open_loops_with_peers_lose_nothing() {
    let addr = start_mp1d().to_string();
    let dir = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hgrm = dir.join("run").to_string_lossy().into_owned();
    let svg = dir.join("plot.svg").to_string_lossy().into_owned();
    let (code, j, all) = loadgen(&[
        "--target",
        &addr,
        "--clients",
        "20",
        "--peers",
        "3",
        "--messages",
        "30",
        "--json",
        "--hgrm",
        &hgrm,
        "--plot",
        &svg,
    ]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(j["tcp"]["expected"], 50 * 19, "{j}");
    assert_eq!(j["tcp"]["lost"], 0, "{j}");
    assert_eq!(j["udp"]["expected"], 50 * 3, "{j}");
    assert_eq!(j["udp"]["lost"], 0, "{j}");
    assert_eq!(j["delivery_us"]["count"], 30 * 19, "{j}");
    assert!(j["deliveries_per_s"].as_f64().unwrap() > 0.0);
    let text = std::fs::read_to_string(format!("{hgrm}-delivery.hgrm")).unwrap();
    assert!(
        text.contains("Percentile") && text.contains("Total count"),
        "{text}"
    );
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    // It says where it wrote each file.
    let real = std::fs::canonicalize(&svg).unwrap();
    assert!(
        all.contains(&format!("loadgen: wrote {}", real.display())),
        "{all}"
    );
    assert!(all.contains("run-delivery.hgrm"), "{all}");

    let (code, j, all) = loadgen(&[
        "--target",
        &addr,
        "--clients",
        "10",
        "--senders",
        "3",
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
    assert!(j["offered_deliveries_per_s"].as_f64().unwrap() > 0.0, "{j}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// mp1d's bridge answers a limited number of greetings a second (50 by
/// default, from all peers together): more peers than that join all the
/// same, their unanswered handshakes sent again.
#[test]
fn more_peers_than_the_bridge_greets_a_second_all_join() {
    let addr = start_mp1d().to_string();
    let (code, j, all) = loadgen(&[
        "--target",
        &addr,
        "--clients",
        "4",
        "--peers",
        "60",
        "--messages",
        "5",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(j["peers"], 60, "{j}");
    assert_eq!(j["udp"]["lost"], 0, "{j}");
}

/// The CPU figures cover the measured window only: from the first measured
/// send to the last delivery, not the logins, the settle before it or the
/// one after. A process that burns one core stands in for the server, so
/// its CPU time tracks the window's length.
#[test]
fn cpu_is_measured_over_the_measured_window_only() {
    let addr = start_mp1d().to_string();
    let mut burner = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let pid = burner.id().to_string();
    let (code, j, all) = loadgen(&[
        "--target",
        &addr,
        "--clients",
        "5",
        "--messages",
        "20",
        "--server-pid",
        &pid,
        "--json",
    ]);
    let _ = burner.kill();
    let _ = burner.wait();
    assert_eq!(code, Some(0), "{all}");
    let window = j["cpu_window_s"].as_f64().unwrap();
    let measured = j["measure_s"].as_f64().unwrap();
    let server = j["server_cpu_s"].as_f64().unwrap();
    // loadgen settles 300 ms before the workload and 200 ms after it.
    assert!(
        window < measured + 0.2,
        "window {window} s, measured {measured} s"
    );
    assert!(server < window + 0.1, "server {server} s over {window} s");
}

#[test]
fn a_sweep_prints_one_table() {
    let addr = start_mp1d().to_string();
    let (code, _, all) = loadgen(&["--target", &addr, "--sweep", "5,10", "--messages", "10"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("| clients | deliveries/s |"), "{all}");
    assert!(all.contains("\n| 5 |") && all.contains("\n| 10 |"), "{all}");
}

#[test]
fn no_server_fails_clearly() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (code, _, all) = loadgen(&[
        "--target",
        &free,
        "--clients",
        "2",
        "--connect-timeout",
        "2",
    ]);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("loadgen: 2 clients:"), "{all}");
}

/// `--transport ws`: the same closed and open loops over mp1d's WebSocket
/// face, with the same accounting.
#[test]
fn websocket_clients_lose_nothing() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let config = mp1::server::Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            http: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..mp1::server::Config::default()
        };
        let server = mp1::server::Server::bind(config).expect("mp1d binds");
        tx.send(server.http_addr().unwrap()).unwrap();
        server.run().unwrap();
    });
    let http = rx.recv().unwrap().to_string();
    let (code, j, all) = loadgen(&[
        "--transport",
        "ws",
        "--target",
        &http,
        "--clients",
        "20",
        "--senders",
        "2",
        "--messages",
        "30",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(j["transport"], "ws", "{j}");
    assert_eq!(j["tcp"]["expected"], 50 * 19, "{j}");
    assert_eq!(j["tcp"]["lost"], 0, "{j}");
    assert_eq!(j["delivery_us"]["count"], 30 * 19, "{j}");
}
