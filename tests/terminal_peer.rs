//! `mp1 peer` processes on loopback (distinct ports, peers added by hand,
//! broadcast only to 127.255.255.255): join, a taken name re-prompted,
//! chat exactly once, whisper, list, leave.

mod common;
use common::terminal::Mp1;

/// A UDP port that was free a moment ago.
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn peer(name: &str, port: u16, known: &[u16]) -> Mp1 {
    let port_s = port.to_string();
    let mut args = vec![
        "peer",
        "--name",
        name,
        "--port",
        &port_s,
        "--broadcast",
        "127.255.255.255",
    ];
    let peers: Vec<String> = known.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    for p in &peers {
        args.push("--peer");
        args.push(p);
    }
    Mp1::spawn(&args)
}

#[test]
fn peers_chat_without_a_server() {
    let (pa, pb, pc, pd) = (free_port(), free_port(), free_port(), free_port());
    let mut a = peer("ana", pa, &[]);
    // Bound to all interfaces; seen by peers at the loopback address.
    a.expect(&format!(
        "* on UDP 0.0.0.0:{pa} (peers see 127.0.0.1:{pa}); joining as ana..."
    ));
    a.expect("* joined the LAN as ana");
    let mut b = peer("bo", pb, &[pa]);
    b.expect(&format!("* ana joined (127.0.0.1:{pa})"));
    b.expect("* joined the LAN as bo");
    a.expect(&format!("* bo joined (127.0.0.1:{pb})"));
    let mut c = peer("cy", pc, &[pa, pb]);
    c.expect("* joined the LAN as cy");
    a.expect(&format!("* cy joined (127.0.0.1:{pc})"));
    b.expect(&format!("* cy joined (127.0.0.1:{pc})"));

    b.type_line("hello peers");
    b.expect("bo: hello peers"); // one's own line is shown too
    a.expect("bo: hello peers");
    c.expect("bo: hello peers");
    a.type_line("/msg cy just for you");
    a.expect("[me -> cy] just for you");
    c.expect("[ana -> me] just for you");
    a.type_line("/msg nobody x");
    a.expect("msg failed: no peer nobody");
    c.type_line("/list");
    c.expect("* peers (2): ana, bo");
    c.type_line("/kick ana");
    c.expect("that command needs a server (mp1 connect)");

    // A taken name: asked for another.
    let mut d = peer("ana", pd, &[pa]);
    d.expect("name ana is taken on the LAN; type another name");
    d.type_line("dee");
    d.expect("* joined the LAN as dee");
    a.expect(&format!("* dee joined (127.0.0.1:{pd})"));

    // Each chat arrived exactly once: a second one shows right after.
    b.type_line("second");
    let before = a.expect("bo: second");
    assert!(
        !before.contains(&"bo: hello peers".to_string()),
        "duplicate: {before:?}"
    );
    c.expect("bo: second");

    c.type_line("/quit");
    assert_eq!(c.wait_exit(), Some(0));
    a.expect("* cy left");
    b.expect("* cy left");
}

/// A name that breaks the rules is refused at once and another asked for,
/// as in client mode, instead of "joining" forever.
#[test]
fn an_invalid_name_asks_for_another() {
    for bad in ["a b", &"x".repeat(40)] {
        let mut p = peer(bad, free_port(), &[]);
        p.expect(&format!(
            "{bad:?} is not a valid name (1-32 characters, no spaces); type another name"
        ));
        p.type_line("still bad");
        p.expect(
            "\"still bad\" is not a valid name (1-32 characters, no spaces); type another name",
        );
        p.type_line("fine");
        p.expect("* joined the LAN as fine");
        p.type_line("/quit");
        assert_eq!(p.wait_exit(), Some(0));
    }
}
