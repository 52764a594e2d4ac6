//! `mp1`'s command line: each mode has its own help, addresses are read
//! the way people type them, and mistakes get a clear error and status 2.

use std::process::{Command, Stdio};

fn mp1(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mp1"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("mp1 runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_mode_has_its_own_help() {
    for (args, want) in [
        (&["connect", "--help"][..], "USAGE: mp1 connect"),
        (&["connect", "-h"][..], "USAGE: mp1 connect"),
        (&["connect", "--name", "x", "-h"][..], "USAGE: mp1 connect"),
        (&["peer", "--help"][..], "USAGE: mp1 peer"),
        (&["peer", "-h"][..], "--broadcast ADDR"),
        // As the README's one-machine demo does it.
        (&["peer", "-h"][..], "on one machine each needs its own"),
        (&["--help"][..], "mp1 connect --help"),
    ] {
        let (code, out, err) = mp1(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(out.contains(want), "{args:?}: {out}");
    }
}

#[test]
fn mistakes_name_the_problem_and_exit_2() {
    for (args, want) in [
        (&["connect"][..], "--name NAME is required"),
        (&["connect", "--name"][..], "--name needs a value"),
        (&["connect", "--bogus"][..], "invalid option '--bogus'"),
        (
            &["peer", "--name", "a", "--port", "99999"][..],
            "expected a port 0-65535",
        ),
        (&["peer", "--name", "a", "stray"][..], "unexpected argument"),
        (&["chat"][..], "say connect or peer"),
    ] {
        let (code, _, err) = mp1(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// A bare IPv6 address is a host, not HOST:PORT; nothing listens on the
/// free port picked here, so each attempt fails to connect, naming the
/// address it understood.
#[test]
fn addresses_as_people_type_them() {
    let free = std::net::TcpListener::bind("[::1]:0")
        .map(|l| l.local_addr().unwrap().port())
        .ok();
    // Only where nothing listens on the default port.
    if std::net::TcpStream::connect("[::1]:15151").is_err() {
        let (code, _, err) = mp1(&["connect", "::1", "--name", "x"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("cannot reach [::1]:15151"), "{err}");
    }
    if let Some(port) = free {
        let target = format!("[::1]:{port}");
        let (code, _, err) = mp1(&["connect", &target, "--name", "x"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains(&format!("cannot reach {target}")), "{err}");
    }
}

/// Two peers on one machine cannot share a UDP port: the error says what
/// to do about it.
#[test]
fn a_peer_port_in_use_suggests_another() {
    let taken = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, _, err) = mp1(&["peer", "--name", "x", "--port", &port]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot bind UDP port {port}")),
        "{err}"
    );
    assert!(err.contains("pick another with --port"), "{err}");
}

/// A host name that does not resolve is typed right: a run-time error (one
/// line, status 1), not a usage error with the whole usage text.
#[test]
fn a_name_that_does_not_resolve_is_a_run_time_error() {
    let (code, out, err) = mp1(&["connect", "nosuch.invalid", "--name", "x"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("mp1: cannot resolve nosuch.invalid"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!out.contains("USAGE") && !err.contains("USAGE"), "{err}");
}
