//! mp1d's command line: every option is documented in --help, the README
//! and the service's environment file; bad options get a clear error.

use std::process::Command;

fn mp1d(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mp1d"))
        .args(args)
        .output()
        .expect("mp1d runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn options_in_help() -> Vec<String> {
    let (code, help, _) = mp1d(&["--help"]);
    assert_eq!(code, Some(0));
    let opts: Vec<String> = help
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(',').to_string())
        .collect();
    assert!(opts.len() >= 15, "{opts:?}");
    opts
}

#[test]
fn every_option_is_documented_everywhere() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let env = std::fs::read_to_string(format!("{root}/dist/mp1d.env")).unwrap();
    for opt in options_in_help() {
        if opt == "--help" || opt == "--version" {
            continue;
        }
        assert!(readme.contains(&format!("`{opt}")), "README lacks {opt}");
        assert!(env.contains(&opt), "dist/mp1d.env lacks {opt}");
    }
}

#[test]
fn bad_options_are_refused_clearly() {
    for (args, want) in [
        (&["--bogus"][..], "mp1d: --bogus: unknown option"),
        (
            &["--port", "99999"][..],
            "mp1d: --port: expected a whole number from 0 to 65535, not \"99999\"",
        ),
        (
            &["--max-clients", "0"][..],
            "--max-clients: expected a whole number from 1 to",
        ),
        (
            &["--login-timeout", "1e20"][..],
            "--login-timeout: expected seconds from 0 to 31536000",
        ),
        (
            &["--shutdown-timeout", "1e19"][..],
            "--shutdown-timeout: expected seconds from 0 to 31536000",
        ),
        (&["--idle-timeout", "NaN"][..], "expected seconds"),
        (
            &["--framing", "fancy"][..],
            "framing must be auto, newline or bare",
        ),
        (&["--login-timeout", "-1"][..], "expected seconds from 0"),
        (
            &["--bind", "no/where"][..],
            "not an IP address or host name",
        ),
        (&["--http", "localhost"][..], "not HOST:PORT"),
        (&["--peer", "1.2.3.4"][..], "not IP:PORT"),
        (&["--broadcast", "127.255.255.255"][..], "need --peer-name"),
        (&["--peer-name", "has space"][..], "not a valid name"),
        (&["stray"][..], "unexpected argument"),
        (
            &["--io-uring", "maybe"][..],
            "--io-uring: expected auto, on or off, not \"maybe\"",
        ),
    ] {
        let (code, _, err) = mp1d(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.contains("Try 'mp1d --help'"), "{err}");
    }
}

#[test]
fn a_port_in_use_fails_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _, err) = mp1d(&["--bind", "127.0.0.1", "--port", &port]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("pick another port with --port"), "{err}");
}

/// The HTTP port in use is named as --http's, not as the MP1 port (which
/// was free).
#[test]
fn an_http_port_in_use_names_http() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = taken.local_addr().unwrap().to_string();
    let (code, _, err) = mp1d(&["--bind", "127.0.0.1", "--port", "0", "--http", &http]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("cannot listen for --http: HTTP on {http}")),
        "{err}"
    );
    assert!(err.contains("with --http)"), "{err}");
    assert!(!err.contains("--port"), "{err}");
}

/// Host names for --bind and --http are resolved at start-up; one that
/// does not resolve is a run-time failure (1), not a usage error (2).
#[test]
fn host_names_are_resolved_at_start_up() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mp1d"))
        .args([
            "--bind",
            "localhost",
            "--port",
            "0",
            "--http",
            "localhost:0",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    while !said.contains("HTTP on") {
        match lines.next() {
            Some(Ok(l)) => said += &(l + "\n"),
            _ => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(said.contains("listening on 127.0.0.1:"), "{said}");
    assert!(said.contains("HTTP on 127.0.0.1:"), "{said}");

    let (code, _, err) = mp1d(&["--bind", "nosuch.invalid"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--bind: cannot resolve nosuch.invalid"),
        "{err}"
    );
}

#[test]
fn a_bridge_port_in_use_is_named() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _, err) = mp1d(&[
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--peer-name",
        "br",
        "--peer-port",
        &port,
        "--broadcast",
        "127.255.255.255",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("UDP port {port} for the LAN bridge")),
        "{err}"
    );
    assert!(err.contains("--peer-port for the LAN bridge"), "{err}");
}

#[test]
fn version() {
    let (code, out, _) = mp1d(&["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), format!("mp1d {}", env!("CARGO_PKG_VERSION")));
}
