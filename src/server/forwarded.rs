//! Behind a reverse proxy (`--http-trust-proxy`): the browser's own
//! address, as the proxy passes it in `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`, taken only from a proxy we were told to trust. From
//! anyone else these headers are ignored: a client could name any address.

use std::net::{IpAddr, SocketAddr};

/// The client behind `peer` as the request head `head` tells it, if
/// `peer` is a trusted proxy and says so; else `peer` itself. The address
/// used is the last one not itself a trusted proxy (the one the nearest
/// trusted proxy saw); its port when the proxy passed one, else 0.
pub(super) fn client_addr(head: &[u8], peer: SocketAddr, trusted: &[IpAddr]) -> SocketAddr {
    if !trusted.contains(&peer.ip()) {
        return peer;
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(head).is_err() {
        return peer;
    }
    // Every hop, nearest last, from all the headers of each kind.
    let hops = |name: &str, parse: fn(&str) -> Vec<Option<SocketAddr>>| {
        req.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .flat_map(parse)
            .collect::<Vec<_>>()
    };
    let mut chain = hops("Forwarded", forwarded);
    if chain.is_empty() {
        chain = hops("X-Forwarded-For", x_forwarded_for);
    }
    for hop in chain.iter().rev() {
        match hop {
            Some(a) if trusted.contains(&a.ip()) => continue,
            Some(a) => return *a,
            // An obfuscated or unknown hop: nothing to go on beyond it.
            None => break,
        }
    }
    peer
}

/// `Forwarded: for=192.0.2.1;proto=https, for="[2001:db8::1]:4711"`.
fn forwarded(value: &str) -> Vec<Option<SocketAddr>> {
    value
        .split(',')
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| node(v.trim().trim_matches('"')))
        })
        .collect()
}

/// `X-Forwarded-For: 192.0.2.1, 198.51.100.7`.
fn x_forwarded_for(value: &str) -> Vec<Option<SocketAddr>> {
    value.split(',').map(|v| node(v.trim())).collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn node(v: &str) -> Option<SocketAddr> {
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Some(a);
    }
    let ip = v.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &str) -> Vec<u8> {
        format!("GET /ws HTTP/1.1\r\nHost: chat\r\n{headers}\r\n").into_bytes()
    }

    const PROXY: &str = "127.0.0.1:40000";

    fn from(headers: &str, trusted: &[&str]) -> String {
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_addr(&head(headers), PROXY.parse().unwrap(), &trusted).to_string()
    }

    #[test]
    fn only_a_trusted_proxy_is_believed() {
        let xff = "X-Forwarded-For: 203.0.113.9\r\n";
        assert_eq!(from(xff, &[]), PROXY);
        assert_eq!(from(xff, &["10.0.0.1"]), PROXY);
        assert_eq!(from(xff, &["127.0.0.1"]), "203.0.113.9:0");
        assert_eq!(from("", &["127.0.0.1"]), PROXY, "no header: the proxy");
    }

    #[test]
    fn the_nearest_untrusted_hop_counts() {
        let trusted = ["127.0.0.1", "10.0.0.2"];
        // A client can put anything first; the proxies append what they saw.
        let xff = "X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.0.0.2\r\n";
        assert_eq!(from(xff, &trusted), "203.0.113.9:0");
        let split = "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.9\r\n";
        assert_eq!(from(split, &trusted), "203.0.113.9:0");
        assert_eq!(
            from("X-Forwarded-For: nonsense\r\n", &trusted),
            PROXY,
            "an unreadable hop stops the walk"
        );
    }

    #[test]
    fn forwarded_with_ports_and_ipv6_comes_first() {
        let trusted = ["127.0.0.1"];
        let both = "Forwarded: for=\"203.0.113.9:4711\";proto=https;host=chat\r\n\
                    X-Forwarded-For: 198.51.100.1\r\n";
        assert_eq!(from(both, &trusted), "203.0.113.9:4711");
        let v6 = "Forwarded: for=6.6.6.6, For=\"[2001:db8::1]:4711\"\r\n";
        assert_eq!(from(v6, &trusted), "[2001:db8::1]:4711");
        assert_eq!(from("Forwarded: for=_hidden\r\n", &trusted), PROXY);
    }
}
