//! mp1d's HTTP face (`--http ADDR:PORT`, off by default), on the same
//! poll loop: `GET /` (the chat page, built into the binary), `GET /ws`
//! (a WebSocket: the connection becomes an MP1 client like any other),
//! `GET /metrics` (Prometheus text format) and `GET /healthz` for service
//! managers. One request per connection (`Connection: close`): read the
//! head (`httparse`), answer, send our FIN, wait for the client's. Every
//! connection has a deadline; a head over the size limit gets 431, a bad
//! one 400, an unknown path 404, another method 405, a WebSocket from an
//! origin not allowed 403.

use super::connection::Face;
use super::start::StartError;
use super::table::{Listening, Source};
use super::{metrics, Server, Timer};
use crate::chat::ConnId;
use crate::session::Framing;
use log::warn;
use mio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// HTTP connections open at once at most; more are refused (503).
const MAX_CONNS: usize = 256;
/// Largest request head (request line and headers) read.
const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

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

/// A head over [`MAX_HEAD_BYTES`], complete or not.
fn too_large() -> Vec<u8> {
    text(
        "431 Request Header Fields Too Large",
        "request head too large\n",
    )
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

/// Whether a request naming `host` (its `Host` header) is for this
/// server: an IP address or `localhost` always is; a name only when
/// `allowed` lists it (or `*`). A page served from another name that
/// resolves here (DNS rebinding) is thereby refused. A request with no
/// `Host` (not a browser) is not refused for it.
fn host_allowed(host: Option<&str>, allowed: &[String]) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    let name = name.to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name == "localhost"
        || allowed.iter().any(|a| a == "*" || *a == name)
}

/// What the server's HTTP face accepts beyond the defaults.
#[derive(Clone, Copy)]
struct Policy<'a> {
    /// `--http-origin`.
    origins: &'a [String],
    /// `--http-allowed-host`.
    hosts: &'a [String],
}

/// What the request head in `head` asks for; `None` until it is complete.
fn route(head: &[u8], policy: Policy, metrics: impl FnOnce() -> String) -> Option<Answer> {
    let origins = policy.origins;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = req.parse(head);
    if matches!(parsed, Ok(httparse::Status::Complete(n)) if n > MAX_HEAD_BYTES) {
        return Some(Answer::Respond(too_large()));
    }
    if let Ok(httparse::Status::Complete(n)) = parsed {
        let path = req.path.unwrap_or("").split('?').next().unwrap_or("");
        if req.method == Some("GET") && path == "/ws" {
            // The chat is what a rebound page would be after; the page,
            // /metrics and /healthz answer to any name (monitors and
            // proxies probe them by names of their own).
            if !host_allowed(header(&req, "Host"), policy.hosts) {
                return Some(Answer::Respond(text(
                    "403 Forbidden",
                    "this host name is not allowed (--http-allowed-host)\n",
                )));
            }
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
        Ok(httparse::Status::Partial) if head.len() > MAX_HEAD_BYTES => Some(too_large()),
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
    pub(super) fn start_http(mut self) -> Result<Server, StartError> {
        let Some(addr) = self.config.http else {
            return Ok(self);
        };
        let listener = super::sys::listen(addr, 128).map_err(|e| StartError::Http(addr, e))?;
        self.http_addr = Some(listener.local_addr()?);
        self.table.add_registered(
            self.el.registry(),
            Source::Listener(listener, Listening::Http),
        )?;
        Ok(self)
    }

    /// Where the HTTP face listens, if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Takes a connection the HTTP listener accepted.
    pub(super) fn admit_http(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        if self.table.requests() >= MAX_CONNS {
            warn!("HTTP: refused {addr}: {MAX_CONNS} connections open");
            let busy = text("503 Service Unavailable", "busy\n");
            let _ = io::Write::write(&mut stream, &busy);
            return;
        }
        let face = Face::Http(Box::default());
        let Some(key) = self.add_conn(stream, addr, Framing::Bare, face) else {
            return;
        };
        let generation = self.table.generation(key).expect("just added");
        let at = Instant::now() + self.config.http_timeout;
        self.el.timers.set(at, Timer::Http(key, generation));
    }

    /// Bytes of an HTTP request: once its head is complete, the answer is
    /// queued and the connection closes after it (or it becomes a
    /// WebSocket). Anything after the head is not read as a request.
    pub(super) fn on_http_bytes(&mut self, key: ConnId, bytes: &[u8]) {
        let Some(Face::Http(request)) = self.table.get_mut(key).map(|c| &mut c.face) else {
            return;
        };
        if request.answered {
            return;
        }
        let head = &mut request.head;
        // At most one read past the limit is kept: a head over it is
        // answered 431 at once, complete or not.
        head.extend_from_slice(bytes);
        let head = std::mem::take(head);
        let policy = Policy {
            origins: &self.config.http_origins,
            hosts: &self.config.http_allowed_hosts,
        };
        let answer = unhealthy(&head, self.cluster_health())
            .or_else(|| route(&head, policy, || self.render_metrics()));
        match answer {
            Some(Answer::Respond(r)) => self.answer_http(key, &r),
            Some(Answer::Upgrade { response, rest }) => {
                self.become_websocket(key, &response, &rest, &head)
            }
            None => {
                if let Some(Face::Http(request)) = self.table.get_mut(key).map(|c| &mut c.face) {
                    request.head = head;
                }
            }
        }
    }

    /// Queues the response; the connection closes once it is out.
    fn answer_http(&mut self, key: ConnId, response: &[u8]) {
        if let Some(Face::Http(request)) = self.table.get_mut(key).map(|c| &mut c.face) {
            request.answered = true;
        }
        self.table.queue_raw(key, response);
        self.begin_close(key);
    }

    /// An HTTP connection asked for a WebSocket: from now on it is an MP1
    /// client whose bytes come in frames (a change of face in its slot).
    fn become_websocket(&mut self, key: ConnId, response: &[u8], rest: &[u8], head: &[u8]) {
        if self.table.clients() >= self.config.max_clients {
            self.answer_http(key, &text("503 Service Unavailable", "server full\n"));
            return;
        }
        if let Some(conn) = self.table.get_mut(key) {
            // Behind a trusted reverse proxy: the browser's address.
            let trusted = &self.config.http_trust_proxy;
            conn.addr = super::forwarded::client_addr(head, conn.addr, trusted);
        }
        self.table.queue_raw(key, response);
        self.table.upgrade(key);
        self.admit_client(key);
        if !rest.is_empty() {
            self.on_ws_bytes(key, rest);
        }
    }

    /// The deadline of an HTTP connection passed: a request not complete
    /// by then gets 408; any connection still open is closed.
    pub(super) fn on_http_deadline(&mut self, key: ConnId, generation: u32) {
        if self.table.generation(key) != Some(generation) {
            return;
        }
        let Some(Face::Http(request)) = self.table.get(key).map(|c| &c.face) else {
            return; // became a WebSocket
        };
        if request.answered {
            self.table.abort(key);
        } else {
            self.answer_http(key, &text("408 Request Timeout", "request timeout\n"));
        }
    }

    /// `/metrics` now.
    fn render_metrics(&self) -> String {
        let (ws_connected, ws_logged_in) = self.table.websockets(self.chat.members());
        let gauges = metrics::Gauges {
            tcp_connected: self.table.clients() - ws_connected,
            tcp_logged_in: self.chat.members().len() - ws_logged_in,
            ws_connected,
            ws_logged_in,
            lan_peers: self.chat.lan_peer_count(),
            output_queue_bytes: self.table.total_out(),
            cluster: self
                .cluster
                .as_ref()
                .map(|c| (c.backplane.is_up(), self.chat.online_names().len())),
        };
        let mut counters = self.counters.clone();
        counters.deliveries = self.table.delivered();
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
        super::route(head, policy(&[]), m)
    }

    fn policy(origins: &[String]) -> Policy<'_> {
        Policy {
            origins,
            hosts: &[],
        }
    }

    #[test]
    fn another_host_name_is_refused_unless_allowed() {
        let m = || String::new();
        let get = |host: &str| {
            format!(
                "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
        };
        let ok = "HTTP/1.1 101 Switching Protocols";
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "10.1.2.3",
            "LOCALHOST",
        ] {
            assert_eq!(status(route(get(host).as_bytes(), m)), ok, "{host}");
        }
        let evil = get("evil.example:8080");
        assert_eq!(status(route(evil.as_bytes(), m)), "HTTP/1.1 403 Forbidden");
        // What monitors probe answers to any name.
        let health = b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\n\r\n";
        assert_eq!(status(route(health, m)), "HTTP/1.1 200 OK");
        let allowed = ["evil.example".to_string()];
        let p = Policy {
            origins: &[],
            hosts: &allowed,
        };
        assert_eq!(status(super::route(evil.as_bytes(), p, m)), ok);
        let any = ["*".to_string()];
        let p = Policy {
            origins: &[],
            hosts: &any,
        };
        assert_eq!(status(super::route(evil.as_bytes(), p, m)), ok);
    }

    #[test]
    fn websocket_upgrades() {
        let m = || String::new();
        let req = |extra: &str| {
            format!(
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n\
                 Connection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
            )
        };
        match super::route(
            req("Origin: http://127.0.0.1:8080\r\n").as_bytes(),
            policy(&[]),
            m,
        ) {
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
            status(super::route(foreign.as_bytes(), policy(&[]), m)),
            "HTTP/1.1 403 Forbidden"
        );
        let allowed = ["http://evil.example".to_string()];
        assert_eq!(
            status(super::route(foreign.as_bytes(), policy(&allowed), m)),
            "HTTP/1.1 101 Switching Protocols"
        );
        let old = req("").replace("Version: 13", "Version: 8");
        assert_eq!(
            status(route(old.as_bytes(), m)),
            "HTTP/1.1 426 Upgrade Required"
        );
        assert_eq!(
            status(route(b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n", m)),
            "HTTP/1.1 400 Bad Request"
        );
        let page = route(b"GET / HTTP/1.1\r\n\r\n", m);
        assert_eq!(status(page), "HTTP/1.1 200 OK");
    }

    #[test]
    fn routes_and_errors() {
        let m = || "m 1\n".to_string();
        let Some(Answer::Respond(ok)) =
            route(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n", m)
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
