//! Driving a [`Peer`] over one UDP socket with mio: receive datagrams until
//! the socket is drained, send what the peer owes in `sendmmsg` batches,
//! and keep what the socket would not take for the next writable event.

use super::{Peer, PeerConfig, PeerEvent, Transmit};
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Datagrams handed to one `sendmmsg`.
const BATCH: usize = 64;
const SEND_ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

pub struct PeerNode {
    pub socket: UdpSocket,
    pub peer: Peer,
    /// Datagrams the socket would not take yet.
    pending: VecDeque<Transmit>,
    buf: Vec<u8>,
    /// WRITABLE interest is registered (only while datagrams wait).
    writable: bool,
    /// When a failed send to each destination was last logged.
    send_errors: Vec<(SocketAddr, Instant)>,
    token: Option<Token>,
}

impl PeerNode {
    /// Binds `bind:port` with `SO_BROADCAST`. Our address as peers see it
    /// is the source the kernel picks towards the first broadcast address
    /// (127.0.0.1 when there is none or no route).
    pub fn bind(bind: IpAddr, port: u16, config: PeerConfig) -> io::Result<PeerNode> {
        let socket = std::net::UdpSocket::bind((bind, port))?;
        let ip = if !bind.is_unspecified() {
            bind
        } else {
            config
                .broadcast
                .first()
                .and_then(|b| source_ip_towards(*b))
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        };
        PeerNode::from_std(socket, ip, config)
    }

    /// Wraps a bound socket; `ip` is our address as peers see it.
    pub fn from_std(
        socket: std::net::UdpSocket,
        ip: IpAddr,
        config: PeerConfig,
    ) -> io::Result<PeerNode> {
        socket.set_broadcast(true)?;
        socket.set_nonblocking(true)?;
        let me = SocketAddr::new(ip, socket.local_addr()?.port());
        Ok(PeerNode {
            socket: UdpSocket::from_std(socket),
            peer: Peer::new(me, config),
            pending: VecDeque::new(),
            buf: vec![0; 65536],
            writable: false,
            send_errors: Vec::new(),
            token: None,
        })
    }

    /// Where the socket is bound (`0.0.0.0:P` on all interfaces), and, if
    /// that is not the address peers see, that one too: for people.
    pub fn describe(&self) -> String {
        let me = self.peer.me();
        match self.socket.local_addr() {
            Ok(bound) if bound == me => format!("UDP {bound}"),
            Ok(bound) => format!("UDP {bound} (peers see {me})"),
            Err(_) => format!("UDP {me}"),
        }
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        self.token = Some(token);
        registry.register(&mut self.socket, token, Interest::READABLE)
    }

    /// Receives every waiting datagram into the peer.
    pub fn on_readable(&mut self, now: Instant, taken: &dyn Fn(&str) -> bool) {
        loop {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    log::trace!("udp <- {from}: {}", String::from_utf8_lossy(&self.buf[..n]));
                    self.peer.handle_datagram(from, &self.buf[..n], now, taken)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from an earlier send surface here; they
                // concern one destination, not the socket.
                Err(e) => {
                    log::debug!("peer socket: {e}");
                    continue;
                }
            }
        }
    }

    pub fn poll_events(&mut self) -> Vec<PeerEvent> {
        self.peer.poll_events().collect()
    }

    /// Sends everything the peer owes, in batches; what the socket will
    /// not take waits for a writable event.
    pub fn flush(&mut self, registry: &Registry) {
        for t in self.peer.poll_transmits() {
            log::trace!("udp -> {}: {}", t.to, String::from_utf8_lossy(&t.bytes));
            self.pending.push_back(t);
        }
        while !self.pending.is_empty() {
            let n = self.pending.len().min(BATCH);
            match send_batch(&self.socket, self.pending.range(..n)) {
                Ok(sent) => {
                    self.pending.drain(..sent.max(1).min(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A bad destination (no route, not permitted): drop
                    // that datagram, keep the rest.
                    if let Some(t) = self.pending.pop_front() {
                        self.send_failed(t.to, &e);
                    }
                }
            }
        }
        let want = !self.pending.is_empty();
        if want != self.writable {
            if let Some(token) = self.token {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                if registry
                    .reregister(&mut self.socket, token, interest)
                    .is_ok()
                {
                    self.writable = want;
                }
            }
        }
    }

    /// Logs a failed send, once a minute per destination at most: an
    /// unreachable broadcast address fails on every chat.
    fn send_failed(&mut self, to: SocketAddr, e: &io::Error) {
        let now = Instant::now();
        let quiet = self
            .send_errors
            .iter()
            .any(|(addr, at)| *addr == to && now.duration_since(*at) < SEND_ERROR_LOG_EVERY);
        if quiet {
            return;
        }
        self.send_errors.retain(|(addr, _)| *addr != to);
        self.send_errors.push((to, now));
        log::warn!("peer send to {to}: {e} (logged once a minute)");
    }

    /// Datagrams still waiting for the socket.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// The source address the kernel would use towards `dest`.
fn source_ip_towards(dest: SocketAddr) -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    s.set_broadcast(true).ok()?;
    s.connect(dest).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Sends a batch with one `sendmmsg`; returns how many went out.
#[cfg(target_os = "linux")]
fn send_batch<'a>(
    socket: &UdpSocket,
    batch: impl Iterator<Item = &'a Transmit>,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)> = Vec::with_capacity(BATCH);
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(BATCH);
    for t in batch {
        addrs.push(sockaddr(t.to));
        iovs.push(libc::iovec {
            iov_base: t.bytes.as_ptr() as *mut libc::c_void,
            iov_len: t.bytes.len(),
        });
    }
    // SAFETY: zeroed mmsghdr is a valid "empty" header; every pointer set
    // below points into `addrs`/`iovs`, which outlive the call.
    let mut msgs: Vec<libc::mmsghdr> = (0..iovs.len())
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    for (i, m) in msgs.iter_mut().enumerate() {
        m.msg_hdr.msg_name = &mut addrs[i].0 as *mut _ as *mut libc::c_void;
        m.msg_hdr.msg_namelen = addrs[i].1;
        m.msg_hdr.msg_iov = &mut iovs[i];
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: msgs holds msgs.len() initialised headers.
    let n = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            // The flags argument is int on glibc, unsigned on musl.
            libc::MSG_DONTWAIT as _,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(target_os = "linux")]
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: plain data.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Elsewhere: one `send_to` per datagram.
#[cfg(not(target_os = "linux"))]
fn send_batch<'a>(
    socket: &UdpSocket,
    mut batch: impl Iterator<Item = &'a Transmit>,
) -> io::Result<usize> {
    match batch.next() {
        Some(t) => socket.send_to(&t.bytes, t.to).map(|_| 1),
        None => Ok(0),
    }
}
