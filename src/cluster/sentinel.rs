//! Following a Redis failover (`--cluster
//! redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME`): the node asks
//! the Sentinels which server is the master (`SENTINEL
//! get-master-addr-by-name`) whenever it connects, so after losing the
//! master (killed, or demoted: its scripts are refused `READONLY`) it finds
//! the one the Sentinels promoted. The one blocking exchange of the engine,
//! and short: a Sentinel that does not answer within the timeout is
//! skipped, the next one asked.

use super::redis::{Connection, Reply};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

const SCHEME: &str = "redis+sentinel://";

/// The Sentinels of a `redis+sentinel://` URL and the master they watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sentinels {
    /// `HOST:PORT` each.
    pub addrs: Vec<String>,
    pub master: String,
}

impl Sentinels {
    /// `None` for a URL of another scheme; an error for a bad one.
    pub fn parse(url: &str) -> Result<Option<Sentinels>, String> {
        let Some(rest) = url.strip_prefix(SCHEME) else {
            return Ok(None);
        };
        let bad = || format!("expected {SCHEME}HOST:PORT[,HOST:PORT...]/MASTER_NAME");
        let (hosts, master) = rest.split_once('/').ok_or_else(bad)?;
        let master = master.trim_end_matches('/');
        let addrs: Vec<String> = hosts.split(',').map(str::to_string).collect();
        let port_ok = |a: &String| {
            a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        };
        if master.is_empty() || master.contains('/') || !addrs.iter().all(port_ok) {
            return Err(bad());
        }
        Ok(Some(Sentinels {
            addrs,
            master: master.to_string(),
        }))
    }

    /// The master's address as the first Sentinel that knows it says,
    /// asking each in turn (each given `timeout`).
    pub fn master_addr(&self, timeout: Duration) -> io::Result<SocketAddr> {
        let mut last = io::Error::other("no Sentinel given");
        for sentinel in &self.addrs {
            match ask(sentinel, &self.master, timeout) {
                Ok(addr) => return Ok(addr),
                Err(e) => last = io::Error::new(e.kind(), format!("Sentinel {sentinel}: {e}")),
            }
        }
        Err(last)
    }
}

/// One Sentinel's answer for `master`.
fn ask(sentinel: &str, master: &str, timeout: Duration) -> io::Result<SocketAddr> {
    let addr = sentinel
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other("no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut c = Connection::default();
    c.command(
        (),
        &[b"SENTINEL", b"get-master-addr-by-name", master.as_bytes()],
    );
    s.write_all(c.output())?;
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other("closed the connection"));
        }
        c.feed(&buf[..n]);
        if let Some((_, reply)) = c.next_reply().map_err(io::Error::other)? {
            return master_of(&reply);
        }
    }
}

/// `[host, port]`, or nil when the Sentinel does not know the master.
fn master_of(reply: &Reply) -> io::Result<SocketAddr> {
    let text = |r: &Reply| match r {
        Reply::BulkString(b) | Reply::SimpleString(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    match reply {
        Reply::Array(parts) if parts.len() == 2 => {
            let (host, port) = (text(&parts[0]), text(&parts[1]));
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            format!("{host}:{port}")
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::other("the master has no address"))
        }
        Reply::Error(e) => Err(io::Error::other(e.to_string())),
        _ => Err(io::Error::other("it does not know that master")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(Sentinels::parse("redis://h:1"), Ok(None));
        assert_eq!(
            Sentinels::parse("redis+sentinel://a:26379,10.0.0.2:26380/chat"),
            Ok(Some(Sentinels {
                addrs: vec!["a:26379".into(), "10.0.0.2:26380".into()],
                master: "chat".into(),
            }))
        );
        for bad in [
            "redis+sentinel://a:26379",
            "redis+sentinel://a:26379/",
            "redis+sentinel://a/chat",
            "redis+sentinel://a:1,/chat",
        ] {
            assert!(Sentinels::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies() {
        let bulk = |s: &str| Reply::BulkString(s.as_bytes().to_vec());
        let r = Reply::Array(vec![bulk("127.0.0.1"), bulk("6380")]);
        assert_eq!(master_of(&r).unwrap(), "127.0.0.1:6380".parse().unwrap());
        assert!(master_of(&Reply::Null).is_err());
        assert!(master_of(&Reply::Array(vec![bulk("::1"), bulk("x")])).is_err());
    }
}
