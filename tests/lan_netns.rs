//! A real broadcast LAN: network namespaces joined by a Linux bridge, made
//! by this test and removed at its end. Three peers and a bridging mp1d
//! (with a TCP client) find each other by broadcast Discovery/Handshake and
//! chat. The addresses (10.151.0.0/24) exist only inside these namespaces.
//! Needs root and `ip` (iproute2); skipped with a message otherwise.

mod common;
use common::peers::*;
use common::*;
use mp1::peer::PeerEvent;
use serde_json::json;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);
const PORT: u16 = 15151;

/// Namespaces `<prefix>-sw` (the bridge) and one per host, deleted on drop.
struct Lan {
    prefix: String,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Lan {
    /// Hosts get 10.151.0.1, .2, ... in the order given.
    fn create(hosts: &[&str]) -> Result<Lan, String> {
        Lan::create_named("", hosts)
    }

    /// As `create`, with `tag` in the namespace names so that tests running
    /// at once do not collide.
    fn create_named(tag: &str, hosts: &[&str]) -> Result<Lan, String> {
        let prefix = format!("mp1t{}{tag}", std::process::id());
        let mut lan = Lan {
            prefix: prefix.clone(),
            hosts: Vec::new(),
        };
        let sw = format!("{prefix}-sw");
        ip(&["netns", "add", &sw])?;
        lan.hosts.push(sw.clone());
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (i, h) in hosts.iter().enumerate() {
            let ns = lan.ns(h);
            ip(&["netns", "add", &ns])?;
            lan.hosts.push(ns.clone());
            let port = format!("v{i}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            let addr = format!("10.151.0.{}/24", i + 1);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &addr,
                "broadcast",
                "10.151.0.255",
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(lan)
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// Runs `f` on a thread that has entered `host`'s network namespace:
    /// sockets it creates live there, wherever they are used afterwards.
    fn run_in<R: Send>(&self, host: &str, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/var/run/netns/{}", self.ns(host));
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).expect("namespace file");
                // SAFETY: setns on this thread only, with a valid netns fd.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in &self.hosts {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn host_ip(i: u8) -> IpAddr {
    IpAddr::from([10, 151, 0, i])
}

fn bcast() -> Vec<SocketAddr> {
    vec![SocketAddr::new(IpAddr::from([10, 151, 0, 255]), PORT)]
}

fn peer_in(lan: &Lan, host: &str, i: u8, port: u16) -> TestPeer {
    let socket = lan.run_in(host, || {
        UdpSocket::bind(("0.0.0.0", port)).expect("bind in namespace")
    });
    TestPeer::from_socket(socket, host_ip(i), bcast())
}

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("`ip` (iproute2) is not installed".into());
    }
    None
}

#[cfg_attr(not(have_netns), ignore = "needs root and iproute2")]
#[test]
fn broadcast_lan_with_three_peers_and_a_bridging_server() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED broadcast_lan_with_three_peers_and_a_bridging_server: {why}");
        return;
    }
    let lan = Lan::create(&["a", "b", "c", "s"]).expect("create namespaces");
    let mut a = peer_in(&lan, "a", 1, PORT);
    let mut b = peer_in(&lan, "b", 2, PORT);
    let mut c = peer_in(&lan, "c", 3, PORT);

    // a joins an empty LAN; then the server bridges it as "br".
    assert!(a.join("ana"));
    let ns_s = lan.ns("s");
    let port = PORT.to_string();
    let server = Mp1d::start_in(
        &["ip", "netns", "exec", &ns_s],
        &[
            "--bind",
            "0.0.0.0",
            "--log-level",
            "trace",
            "--port",
            &port,
            "--peer-name",
            "br",
            "--broadcast",
            "10.151.0.255",
        ],
    );
    let joined = a.wait_for(T, |e| matches!(e, PeerEvent::PeerJoined { .. }));
    assert!(
        matches!(&joined, PeerEvent::PeerJoined { name, .. } if name == "br"),
        "{joined:?}"
    );

    // b and c join by broadcast alone: nobody was added by hand.
    b.node.peer.join("bo", Instant::now());
    pump_all(&mut [&mut a, &mut b], Duration::from_millis(900));
    c.node.peer.join("cy", Instant::now());
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(900));
    assert_eq!(a.node.peer.peer_names(), vec!["bo", "br", "cy"]);
    assert_eq!(b.node.peer.peer_names(), vec!["ana", "br", "cy"]);
    assert_eq!(c.node.peer.peer_names(), vec!["ana", "bo", "br"]);

    // A TCP client of the bridging server sees the LAN.
    let server_addr = SocketAddr::new(host_ip(4), server.addr.port());
    let stream = lan.run_in("s", || {
        TcpStream::connect_timeout(&server_addr, T).expect("connect")
    });
    let mut alice = Client::from_stream(stream);
    alice.send(&msg("Login", json!({"name": "alice"})));
    assert_eq!(alice.recv()["status"], "OK");
    alice.expect_server_message("alice joined the server.");
    alice.expect_server_message("You are the admin.");
    alice.send(&msg("RequestOnlineList", json!({})));
    let names = alice.recv()["data"]["names"].clone();
    assert_eq!(names[0], "alice");
    let mut lan_names: Vec<String> = names.as_array().unwrap()[1..]
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    lan_names.sort();
    assert_eq!(lan_names, vec!["ana", "bo", "cy"]);

    // Broadcast chat: every peer and the server's client, exactly once.
    for p in [&mut a, &mut b, &mut c] {
        p.seen.clear();
    }
    b.node.peer.chat("hello LAN");
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(400));
    assert_eq!(a.take_chats(), vec![("bo".into(), "hello LAN".into())]);
    assert_eq!(c.take_chats(), vec![("bo".into(), "hello LAN".into())]);
    assert_eq!(b.take_chats(), vec![]);
    assert_eq!(
        alice.recv(),
        json!({"mtp": "SendChatFromUser", "data": {"name": "bo", "message": "hello LAN"}})
    );
    alice.send(&msg("SendChat", json!({"message": "hello from TCP"})));
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(400));
    for p in [&mut a, &mut b, &mut c] {
        assert_eq!(
            p.take_chats(),
            vec![("alice".into(), "hello from TCP".into())]
        );
    }
    alice.expect_silence(Duration::from_millis(100));

    // Whisper goes to one peer only.
    assert!(a.node.peer.whisper("cy", "secret"));
    pump_all(&mut [&mut a, &mut b, &mut c], Duration::from_millis(300));
    assert!(c
        .seen
        .iter()
        .any(|e| matches!(e, PeerEvent::Whisper { message, .. } if message == "secret")));
    assert!(!b
        .seen
        .iter()
        .any(|e| matches!(e, PeerEvent::Whisper { .. })));

    // A newcomer asking for a taken name (a peer's or a server user's) is
    // refused by broadcast handshake.
    let mut d = peer_in(&lan, "a", 1, PORT + 1);
    for taken in ["bo", "alice"] {
        d.node.peer.join(taken, Instant::now());
        pump_all(
            &mut [&mut a, &mut b, &mut c, &mut d],
            Duration::from_millis(900),
        );
        assert!(
            d.seen
                .contains(&PeerEvent::NameTaken { name: taken.into() }),
            "{taken}: {:?}",
            d.seen
        );
    }
    drop(server);
}

#[cfg_attr(not(have_netns), ignore = "needs root and iproute2")]
#[test]
fn terminal_peers_find_each_other_by_broadcast() {
    use common::terminal::Mp1;
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED terminal_peers_find_each_other_by_broadcast: {why}");
        return;
    }
    // Its own namespaces (the prefix includes the test's thread id).
    let lan = Lan::create_named("t", &["x", "y"]).expect("create namespaces");
    let (nx, ny) = (lan.ns("x"), lan.ns("y"));
    let args = ["peer", "--broadcast", "10.151.0.255", "--name"];
    let mut x = Mp1::spawn_in(
        &["ip", "netns", "exec", &nx],
        &[&args[..], &["xena"]].concat(),
    );
    x.expect("* joined the LAN as xena");
    let mut y = Mp1::spawn_in(
        &["ip", "netns", "exec", &ny],
        &[&args[..], &["yuri"]].concat(),
    );
    y.expect("* xena is online at 10.151.0.1:15151");
    y.expect("* joined the LAN as yuri");
    x.expect("* yuri joined (10.151.0.2:15151)");
    y.type_line("hi over the wire");
    x.expect("yuri: hi over the wire");
    x.type_line("/quit");
    assert_eq!(x.wait_exit(), Some(0));
    y.expect("* xena left");
}
