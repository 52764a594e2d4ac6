//! mp1d's HTTP face (`--http`): /healthz, /metrics checked by Prometheus's
//! own text-format parser (Debian's python3-prometheus-client; the test
//! says SKIPPED where it is missing) against what a scripted session did,
//! and bad HTTP at the byte level.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sends `request` bytes, returns the whole response (until the server
/// closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: SocketAddr, path: &str) -> String {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

/// Parses exposition text with prometheus_client; `None` when the parser
/// is not installed. Returns {"name{labels}": value}.
fn parse_metrics(text: &str) -> Option<Value> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("ModuleNotFoundError"),
            "the parser refused it: {err}"
        );
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn body(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[test]
fn metrics_count_what_a_session_did() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    let http = server.http_addr();
    let health = get(http, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
    assert_eq!(body(&health), "ok\n");

    let mut ana = server.login("ana");
    ana.expect_server_message("You are the admin.");
    let mut bob = server.login("bob");
    ana.expect_server_message("bob joined the server.");
    let mut taken = server.connect();
    taken.send(&msg("Login", json!({"name": "ana"})));
    assert_eq!(taken.recv()["status"], "DuplicateError");
    for text in ["one", "two"] {
        ana.send(&msg("SendChat", json!({"message": text})));
        assert_eq!(bob.recv()["data"]["message"], text);
    }
    bob.send(&msg(
        "WhisperToUser",
        json!({"to": ["ana"], "message": "psst"}),
    ));
    assert_eq!(ana.recv()["mtp"], "WhisperFromUser");

    let response = get(http, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("Content-Type: text/plain; version=0.0.4"));
    let Some(m) = parse_metrics(body(&response)) else {
        eprintln!("SKIPPED metrics parsing: python3-prometheus-client is not installed");
        return;
    };
    let v = |k: &str| m[k].as_f64().unwrap_or_else(|| panic!("no {k} in {m}"));
    assert_eq!(v(r#"mp1_clients{state="connected",transport="tcp"}"#), 3.0);
    assert_eq!(v(r#"mp1_clients{state="logged_in",transport="tcp"}"#), 2.0);
    assert_eq!(v("mp1_connections_total"), 3.0);
    assert_eq!(v("mp1_logins_total"), 2.0);
    assert_eq!(v("mp1_chats_total"), 2.0);
    assert_eq!(v("mp1_whispers_total"), 1.0);
    // To ana: her login (3) and bob's join; to bob: his login (2), two
    // chats; the refused login's reply; the whisper to ana.
    assert_eq!(v("mp1_deliveries_total"), 10.0);
    assert!(v("mp1_bytes_written_total") > 0.0);
    assert_eq!(v(r#"mp1_cuts_total{reason="slow_consumer"}"#), 0.0);
    assert!(v("mp1_loop_turn_seconds_count") > 0.0);
    assert_eq!(
        v(r#"mp1_loop_turn_seconds_bucket{le="+Inf"}"#),
        v("mp1_loop_turn_seconds_count")
    );
}

#[test]
fn bad_http_is_answered_and_slow_http_timed_out() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0", "--http-timeout", "0.5"]);
    let http = server.http_addr();
    let status = |r: &str| r.lines().next().unwrap_or("").to_string();
    assert_eq!(status(&get(http, "/nope")), "HTTP/1.1 404 Not Found");
    assert_eq!(
        status(&exchange(http, b"POST /metrics HTTP/1.1\r\n\r\n")),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(
        status(&exchange(http, b"\x16\x03\x01 not http\r\n\r\n")),
        "HTTP/1.1 400 Bad Request"
    );
    let mut huge = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 2_000_000));
    assert_eq!(
        status(&exchange(http, &huge)),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // A request after the first on the same connection is not read as one.
    let two = exchange(
        http,
        b"GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n",
    );
    assert_eq!(two.matches("HTTP/1.1").count(), 1, "{two}");
    // Half a head, then nothing: 408 when the deadline passes.
    let started = std::time::Instant::now();
    let slow = exchange(http, b"GET /metrics HTTP/1.1\r\nHost:");
    assert_eq!(status(&slow), "HTTP/1.1 408 Request Timeout");
    assert!(started.elapsed() < Duration::from_secs(4));
    // MP1 clients were never disturbed.
    let mut c = server.login("still");
    c.expect_server_message("You are the admin.");
}
