//! mp1d's HTTP face (`--http ADDR:PORT`, off by default), on the same
//! poll loop: `GET /` (the chat page, built into the binary), `GET /ws`
//! (a WebSocket: the connection becomes an MP1 client like any other),
//! `GET /metrics` (Prometheus text format) and `GET /healthz` for service
//! managers. One request per connection (`Connection: close`): read the
//! head (`httparse`), answer, send our FIN, wait for the client's. Every
//! connection has a deadline; a head over the size limit gets 431, a bad
//! one 400, an unknown path 404, another method 405, a WebSocket from an
//! origin not allowed 403.

use super::{metrics, Server, Timer, KEY_MASK};
use log::warn;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

pub(super) const HTTP_LISTENER: Token = Token(usize::MAX - 3);
/// HTTP connections' slab keys sit at and above this in a token's low
/// half, far above any client's (clients are capped at 2^24).
const HTTP_BASE: usize = 1 << 31;
/// HTTP connections open at once at most; more are refused (503).
const MAX_CONNS: usize = 256;
/// Largest request head (request line and headers) read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

pub(super) struct Http {
    listener: TcpListener,
    conns: Slab<Conn>,
    next_generation: u32,
    /// Connections done this turn, freed at its end.
    dead: Vec<usize>,
}

struct Conn {
    stream: TcpStream,
    generation: u32,
    head: Vec<u8>,
    /// The response, less what is written.
    response: Vec<u8>,
    /// Response out and our FIN sent: reading until the client's.
    draining: bool,
}

/// Whether `token` belongs to an HTTP connection.
pub(super) fn is_http(token: Token) -> bool {
    let low = token.0 & KEY_MASK;
    (HTTP_BASE..HTTP_BASE + MAX_CONNS).contains(&low)
}

fn token(key: usize, generation: u32) -> Token {
    Token((HTTP_BASE + key) | ((generation as usize & KEY_MASK) << (usize::BITS / 2)))
}

impl Http {
    pub(super) fn bind(addr: SocketAddr, registry: &Registry) -> io::Result<Http> {
        let std_listener = std::net::TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("HTTP on {addr}: {e}")))?;
        std_listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(std_listener);
        registry.register(&mut listener, HTTP_LISTENER, Interest::READABLE)?;
        Ok(Http {
            listener,
            conns: Slab::new(),
            next_generation: 0,
            dead: Vec::new(),
        })
    }

    pub(super) fn listener(&self) -> &TcpListener {
        &self.listener
    }

    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A complete response with a text body.
fn response(status: &str, content_type: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn text(status: &str, body: &str) -> Vec<u8> {
    response(status, "text/plain; charset=utf-8", body, "")
}

/// The chat page, built in.
const PAGE: &str = include_str!("../web/index.html");

/// What to do with a request.
#[derive(Debug)]
enum Answer {
    Respond(Vec<u8>),
    /// Switch to WebSocket: the 101 response, and bytes that came after
    /// the request head (frames already sent).
    Upgrade {
        response: Vec<u8>,
        rest: Vec<u8>,
    },
}

fn header<'h>(req: &'h httparse::Request, name: &str) -> Option<&'h str> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

/// Whether a comma-separated header value lists `token`.
fn lists(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// A WebSocket opening handshake (RFC 6455, 4.2): the 101 response, or the
/// refusal.
fn upgrade(req: &httparse::Request, origins: &[String]) -> Result<Vec<u8>, Vec<u8>> {
    if !lists(header(req, "Upgrade"), "websocket") || !lists(header(req, "Connection"), "upgrade") {
        return Err(text("400 Bad Request", "not a WebSocket upgrade\n"));
    }
    if header(req, "Sec-WebSocket-Version") != Some("13") {
        return Err(response(
            "426 Upgrade Required",
            "text/plain; charset=utf-8",
            "WebSocket version 13 only\n",
            "Sec-WebSocket-Version: 13\r\n",
        ));
    }
    let Some(key) = header(req, "Sec-WebSocket-Key").filter(|k| !k.is_empty()) else {
        return Err(text("400 Bad Request", "no Sec-WebSocket-Key\n"));
    };
    // Browsers always say where the page came from; other clients may not.
    if let Some(origin) = header(req, "Origin") {
        let allowed = if origins.is_empty() {
            let host = header(req, "Host").unwrap_or("");
            origin == format!("http://{host}") || origin == format!("https://{host}")
        } else {
            origins.iter().any(|o| o == origin || o == "*")
        };
        if !allowed {
            return Err(text(
                "403 Forbidden",
                "origin not allowed (--http-origin)\n",
            ));
        }
    }
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        crate::websocket::accept_key(key)
    )
    .into_bytes())
}

/// What the request head in `head` asks for; `None` until it is complete.
fn route(head: &[u8], origins: &[String], metrics: impl FnOnce() -> String) -> Option<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = req.parse(head);
    if let Ok(httparse::Status::Complete(n)) = parsed {
        let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
        if req.method == Some("GET") && path == "/ws" {
            return Some(match upgrade(&req, origins) {
                Ok(response) => Answer::Upgrade {
                    response,
                    rest: head[n..].to_vec(),
                },
                Err(refusal) => Answer::Respond(refusal),
            });
        }
    }
    route_plain(parsed, &req, head, metrics).map(Answer::Respond)
}

fn route_plain(
    parsed: httparse::Result<usize>,
    req: &httparse::Request,
    head: &[u8],
    metrics: impl FnOnce() -> String,
) -> Option<Vec<u8>> {
    match parsed {
        Ok(httparse::Status::Partial) if head.len() > MAX_HEAD_BYTES => Some(text(
            "431 Request Header Fields Too Large",
            "request head too large\n",
        )),
        Ok(httparse::Status::Partial) => None,
        Err(httparse::Error::TooManyHeaders) => Some(text(
            "431 Request Header Fields Too Large",
            "too many headers\n",
        )),
        Err(e) => Some(text("400 Bad Request", &format!("bad request: {e}\n"))),
        Ok(httparse::Status::Complete(_)) => {
            let path = req.path.unwrap_or("");
            let path = path.split('?').next().unwrap_or("");
            Some(match (req.method, path) {
                (Some("GET"), "/metrics") => response(
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    &metrics(),
                    "",
                ),
                (Some("GET"), "/healthz") => text("200 OK", "ok\n"),
                (Some("GET"), "/") => response("200 OK", "text/html; charset=utf-8", PAGE, ""),
                (Some("GET"), _) => text("404 Not Found", "not found\n"),
                _ => response(
                    "405 Method Not Allowed",
                    "text/plain; charset=utf-8",
                    "only GET\n",
                    "Allow: GET\r\n",
                ),
            })
        }
    }
}

/// `503` and why, for a complete `GET /healthz` while the node cannot
/// serve (`reason`: a cluster node with no Redis, or fenced).
fn unhealthy(head: &[u8], reason: Option<&str>) -> Option<Answer> {
    let reason = reason?;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let complete = matches!(req.parse(head), Ok(httparse::Status::Complete(_)));
    let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
    (complete && req.method == Some("GET") && path == "/healthz")
        .then(|| Answer::Respond(text("503 Service Unavailable", &format!("{reason}\n"))))
}

impl Server {
    /// Starts the HTTP face when configured.
    pub(super) fn start_http(mut self) -> io::Result<Server> {
        if let Some(addr) = self.config.http {
            self.http = Some(Http::bind(addr, self.el.registry())?);
        }
        Ok(self)
    }

    /// Where the HTTP face listens, if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|h| h.local_addr().ok())
    }

    /// Takes a connection the HTTP listener accepted.
    pub(super) fn admit_http(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        let timeout = self.config.http_timeout;
        let Some(http) = self.http.as_mut() else {
            return;
        };
        if http.conns.len() >= MAX_CONNS {
            warn!("HTTP: refused {addr}: {MAX_CONNS} connections open");
            let busy = text("503 Service Unavailable", "busy\n");
            let _ = io::Write::write(&mut stream, &busy);
            return;
        }
        let generation = http.next_generation;
        http.next_generation = http.next_generation.wrapping_add(1);
        let entry = http.conns.vacant_entry();
        let key = entry.key();
        let registered =
            self.el
                .registry()
                .register(&mut stream, token(key, generation), Interest::READABLE);
        if registered.is_err() {
            return;
        }
        entry.insert(Conn {
            stream,
            generation,
            head: Vec::new(),
            response: Vec::new(),
            draining: false,
        });
        let at = Instant::now() + timeout;
        self.el.timers.set(at, Timer::Http(key, generation));
    }

    pub(super) fn on_http_event(&mut self, event: Token) {
        let key = (event.0 & KEY_MASK) - HTTP_BASE;
        let Some(http) = self.http.as_mut() else {
            return;
        };
        match http.conns.get(key) {
            Some(c) if token(key, c.generation) == event => {}
            _ => return, // for a previous occupant of this slot
        }
        if !self.http_read(key) {
            return;
        }
        self.http_write(key);
    }

    /// Reads what arrived; answers once the head is complete. False if
    /// the connection is done.
    fn http_read(&mut self, key: usize) -> bool {
        let http = self.http.as_mut().expect("HTTP is on");
        let conn = &mut http.conns[key];
        let mut buf = [0u8; 4096];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => {
                    http.dead.push(key);
                    return false;
                }
                Ok(n) if conn.draining || !conn.response.is_empty() => {
                    // Anything after the request is not read as one.
                    let _ = n;
                }
                Ok(n) => {
                    conn.head.extend_from_slice(&buf[..n]);
                    if conn.head.len() > MAX_HEAD_BYTES + buf.len() {
                        break; // enough to answer 431; the rest is not read
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    http.dead.push(key);
                    return false;
                }
            }
        }
        if conn.response.is_empty() && !conn.draining {
            let head = std::mem::take(&mut conn.head);
            let answer = unhealthy(&head, self.cluster_health())
                .or_else(|| route(&head, &self.config.http_origins, || self.render_metrics()));
            let conn = &mut self.http.as_mut().expect("HTTP is on").conns[key];
            match answer {
                Some(Answer::Respond(r)) => conn.response = r,
                Some(Answer::Upgrade { response, rest }) => {
                    self.become_websocket(key, &response, &rest);
                    return false;
                }
                None => conn.head = head,
            }
        }
        true
    }

    /// Hands an upgraded connection to the client table: from now on it
    /// is an MP1 client whose bytes come in WebSocket frames.
    fn become_websocket(&mut self, key: usize, response: &[u8], rest: &[u8]) {
        let http = self.http.as_mut().expect("HTTP is on");
        let mut conn = http.conns.remove(key);
        let _ = self.el.registry().deregister(&mut conn.stream);
        let Ok(addr) = conn.stream.peer_addr() else {
            return;
        };
        if self.clients.len() >= self.config.max_clients {
            let full = text("503 Service Unavailable", "server full\n");
            let _ = io::Write::write(&mut conn.stream, &full);
            return;
        }
        // A fresh socket: the whole response fits in its buffer.
        if io::Write::write_all(&mut conn.stream, response).is_err() {
            return;
        }
        let framing = crate::session::Framing::Bare;
        if let Some(client) = self.admit_client(conn.stream, addr, framing, true) {
            if !rest.is_empty() {
                self.on_ws_bytes(client, rest);
            }
        }
    }

    /// Writes the response; then our FIN, and waits for the client's.
    fn http_write(&mut self, key: usize) {
        let http = self.http.as_mut().expect("HTTP is on");
        let conn = &mut http.conns[key];
        if conn.response.is_empty() || conn.draining {
            return;
        }
        if crate::pending::write_pending(&mut conn.stream, &mut conn.response).is_err() {
            http.dead.push(key);
            return;
        }
        if !conn.response.is_empty() {
            // The socket is full: write the rest when it has room.
            let t = token(key, conn.generation);
            let both = Interest::READABLE | Interest::WRITABLE;
            let _ = self.el.registry().reregister(&mut conn.stream, t, both);
            return;
        }
        let _ = conn.stream.shutdown(Shutdown::Write);
        conn.draining = true;
    }

    /// The deadline of an HTTP connection passed: a request not complete
    /// by then gets 408; any connection still open is closed.
    pub(super) fn on_http_deadline(&mut self, key: usize, generation: u32) {
        let Some(http) = self.http.as_mut() else {
            return;
        };
        let Some(conn) = http.conns.get_mut(key) else {
            return;
        };
        if conn.generation != generation {
            return;
        }
        if conn.response.is_empty() && !conn.draining {
            let timeout = text("408 Request Timeout", "request timeout\n");
            let _ = io::Write::write(&mut conn.stream, &timeout);
        }
        http.dead.push(key);
    }

    /// Frees the HTTP connections that finished this turn.
    pub(super) fn free_http(&mut self) {
        let Some(http) = self.http.as_mut() else {
            return;
        };
        for key in std::mem::take(&mut http.dead) {
            if let Some(mut conn) = http.conns.try_remove(key) {
                let _ = self.el.registry().deregister(&mut conn.stream);
            }
        }
    }

    /// `/metrics` now.
    fn render_metrics(&self) -> String {
        let (ws_connected, ws_logged_in) = self.clients.websockets(self.chat.members());
        let gauges = metrics::Gauges {
            tcp_connected: self.clients.len() - ws_connected,
            tcp_logged_in: self.chat.members().len() - ws_logged_in,
            ws_connected,
            ws_logged_in,
            lan_peers: self.chat.lan_peer_count(),
            output_queue_bytes: self.clients.total_out(),
            cluster: self
                .cluster
                .as_ref()
                .map(|c| (c.backplane.is_up(), self.chat.online_names().len())),
        };
        let mut counters = self.counters.clone();
        counters.deliveries = self.clients.delivered();
        metrics::render(&counters, &gauges, &self.turns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(a: Option<Answer>) -> String {
        let r = match a {
            Some(Answer::Respond(r)) | Some(Answer::Upgrade { response: r, .. }) => r,
            None => return "(incomplete)".into(),
        };
        let text = String::from_utf8_lossy(&r);
        text.lines().next().unwrap_or("").to_string()
    }

    fn route(head: &[u8], m: impl FnOnce() -> String) -> Option<Answer> {
        super::route(head, &[], m)
    }

    #[test]
    fn websocket_upgrades() {
        let m = || String::new();
        let req = |extra: &str| {
            format!(
                "GET /ws HTTP/1.1\r\nHost: chat:8080\r\nUpgrade: websocket\r\n\
                 Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
            )
        };
        match super::route(req("Origin: http://chat:8080\r\n").as_bytes(), &[], m) {
            Some(Answer::Upgrade { response, rest }) => {
                let r = String::from_utf8(response).unwrap();
                assert!(r.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{r}");
                assert!(r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
                assert!(rest.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let foreign = req("Origin: http://evil.example\r\n");
        assert_eq!(
            status(super::route(foreign.as_bytes(), &[], m)),
            "HTTP/1.1 403 Forbidden"
        );
        let allowed = ["http://evil.example".to_string()];
        assert_eq!(
            status(super::route(foreign.as_bytes(), &allowed, m)),
            "HTTP/1.1 101 Switching Protocols"
        );
        let old = req("").replace("Version: 13", "Version: 8");
        assert_eq!(
            status(route(old.as_bytes(), m)),
            "HTTP/1.1 426 Upgrade Required"
        );
        assert_eq!(
            status(route(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", m)),
            "HTTP/1.1 400 Bad Request"
        );
        let page = route(b"GET / HTTP/1.1\r\n\r\n", m);
        assert_eq!(status(page), "HTTP/1.1 200 OK");
    }

    #[test]
    fn routes_and_errors() {
        let m = || "m 1\n".to_string();
        let Some(Answer::Respond(ok)) = route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", m)
        else {
            panic!("no answer")
        };
        assert!(String::from_utf8_lossy(&ok).ends_with("\r\n\r\nm 1\n"));
        let health = route(b"GET /healthz?x=1 HTTP/1.1\r\n\r\n", m);
        assert_eq!(status(health), "HTTP/1.1 200 OK");
        assert_eq!(
            status(route(b"GET /nope HTTP/1.1\r\n\r\n", m)),
            "HTTP/1.1 404 Not Found"
        );
        assert_eq!(
            status(route(b"POST /metrics HTTP/1.1\r\n\r\n", m)),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(
            status(route(b"\x01\x02 garbage\r\n\r\n", m)),
            "HTTP/1.1 400 Bad Request"
        );
        // Incomplete: wait for more, unless it is already too big.
        assert!(route(b"GET /metrics HTTP/1.1\r\nHost:", m).is_none());
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        assert_eq!(
            status(route(&big, m)),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        let many: String = (0..40).map(|i| format!("H{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            status(route(req.as_bytes(), m)),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }
}
