//! mp1d behind TLS, the way the README deploys it: the real nginx runs the
//! shipped dist/nginx/*.conf (ports, addresses and certificate paths
//! swapped for the test's) with a certificate made for the test (openssl),
//! stopped by its PID. Browsers chat over https and wss, and an MP1 client
//! over TLS (`openssl s_client`) chats with a plain TCP user. nginx listens
//! on 127.0.0.2 and talks to mp1d from 127.0.0.3 (the trusted proxy), so
//! the browser's forwarded address (127.0.0.1) is told apart from the
//! proxy's. Shown as ignored where nginx (with its
//! stream module) or openssl is missing (build.rs); `.ci/run` installs
//! them.

mod common;
use common::browser::{assert_png, out_dir, run_script};
use common::terminal::Mp1;
use common::{msg, Client, Mp1d};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
/// Where nginx listens...
const FRONT: &str = "127.0.0.2";
/// ...and the address it talks to mp1d from: the proxy mp1d trusts.
const PROXY: &str = "127.0.0.3";

fn free_port() -> u16 {
    std::net::TcpListener::bind((FRONT, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory of the test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// nginx in front of one mp1d: `web` (https) and `mp1` (MP1 over TLS).
struct Nginx {
    child: Child,
    web: u16,
    mp1: u16,
    cert: PathBuf,
    dir: TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: nginx's graceful stop, by the master's PID.
        // SAFETY: kill(2) on the PID of a child we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` with `from` replaced by `to`, which must be there.
fn swap(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "dist/nginx no longer has {from:?}");
    text.replace(from, to)
}

impl Nginx {
    fn start(server: &Mp1d, tag: &str) -> Nginx {
        let dir = TempDir::new(tag);
        let d = dir.0.display().to_string();
        let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=mp1 test", "-addext"])
            .arg(format!("subjectAltName=IP:{FRONT}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(made.success(), "openssl could not make a certificate");

        let (web, plain, mp1) = (free_port(), free_port(), free_port());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/nginx");
        let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
        let certs = |text: String| {
            let text = swap(
                text,
                "/etc/letsencrypt/live/chat.example.org/fullchain.pem",
                &cert.display().to_string(),
            );
            swap(
                text,
                "/etc/letsencrypt/live/chat.example.org/privkey.pem",
                &key.display().to_string(),
            )
        };
        let mut site = certs(read("mp1-web.conf"));
        site = swap(
            site,
            "listen 443 ssl;",
            &format!("listen {FRONT}:{web} ssl;"),
        );
        site = swap(site, "listen 80;", &format!("listen {FRONT}:{plain};"));
        site = swap(site, "listen [::]:443 ssl;", "");
        site = swap(site, "listen [::]:80;", "");
        site = swap(
            site,
            "proxy_pass http://127.0.0.1:8080;",
            &format!(
                "proxy_bind {PROXY};\n        proxy_pass http://{};",
                server.http_addr()
            ),
        );
        let mut stream = certs(read("mp1-stream.conf"));
        stream = swap(
            stream,
            "listen 15152 ssl;",
            &format!("listen {FRONT}:{mp1} ssl;"),
        );
        stream = swap(stream, "listen [::]:15152 ssl;", "");
        stream = swap(stream, "127.0.0.1:15151", &server.addr.to_string());
        let module = "/usr/lib/nginx/modules/ngx_stream_module.so";
        let load = if Path::new(module).exists() {
            format!("load_module {module};")
        } else {
            String::new()
        };
        let conf = format!(
            "{load}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{site}
}}
{stream}"
        );
        std::fs::write(dir.0.join("nginx.conf"), conf).unwrap();
        #[allow(clippy::zombie_processes)] // Drop stops and waits
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(dir.0.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx {
            child,
            web,
            mp1,
            cert,
            dir,
        };
        nginx.wait_listening();
        nginx
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + WAIT;
        for port in [self.web, self.mp1] {
            while std::net::TcpStream::connect((FRONT, port)).is_err() {
                let log = std::fs::read_to_string(self.dir.0.join("error.log")).unwrap_or_default();
                assert!(Instant::now() < deadline, "nginx did not listen:\n{log}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// An MP1 client over TLS: `openssl s_client`, checking nginx's
/// certificate against the test's, one JSON object a line each way.
fn tls_client(nginx: &Nginx) -> Mp1 {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
        .arg(&nginx.cert)
        .args(["-verify_ip", FRONT, "-connect"])
        .arg(format!("{FRONT}:{}", nginx.mp1));
    Mp1::from_command(command)
}

/// The next reply of kind `mtp` over TLS, skipping others.
fn expect_tls(tls: &mut Mp1, mtp: &str) -> Value {
    let want = format!("\"mtp\":\"{mtp}\"");
    tls.expect_where(|l| l.contains(&want), mtp);
    serde_json::from_str(tls.seen.last().unwrap()).unwrap()
}

/// The next reply of kind `mtp` for a plain TCP client, skipping others.
fn expect(c: &mut Client, mtp: &str) -> Value {
    loop {
        let v = c.recv();
        if v["mtp"] == mtp {
            return v;
        }
    }
}

#[cfg_attr(
    not(have_nginx),
    ignore = "needs nginx with its stream module (libnginx-mod-stream) and openssl; .ci/run installs them"
)]
#[test]
fn mp1_over_tls_through_nginx_with_a_plain_tcp_user() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    let nginx = Nginx::start(&server, "mp1");
    let mut plain = server.login("plain");
    let mut tls = tls_client(&nginx);
    tls.type_line(&msg("Login", json!({"name": "secure"})));
    let v = expect_tls(&mut tls, "AssignUsername");
    assert_eq!(v["status"], "OK", "{v}");

    tls.type_line(&msg("SendChat", json!({"message": "hello over TLS"})));
    let v = expect(&mut plain, "SendChatFromUser");
    assert_eq!(
        (v["data"]["name"].as_str(), v["data"]["message"].as_str()),
        (Some("secure"), Some("hello over TLS"))
    );
    plain.send(&msg(
        "WhisperToUser",
        json!({"to": ["secure"], "message": "psst, in the clear to mp1d"}),
    ));
    let v = expect_tls(&mut tls, "WhisperFromUser");
    assert_eq!(v["data"]["message"], "psst, in the clear to mp1d");
    assert_eq!(v["data"]["from"], "plain");
}

#[cfg_attr(
    not(all(have_nginx, have_browser)),
    ignore = "needs nginx with its stream module, openssl, chromium, chromium-driver and python3-selenium; .ci/run installs them"
)]
#[test]
fn browsers_chat_over_https_and_wss_behind_nginx() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0", "--http-trust-proxy", PROXY]);
    let nginx = Nginx::start(&server, "web");
    let url = format!("https://{FRONT}:{}/", nginx.web);
    let out = out_dir();
    let tcp = server.addr.to_string();
    run_script("tls.py", &[&url, &tcp, out.to_str().unwrap()]);
    assert_png(&out, "https.png");
    // mp1d logged the browser as nginx said it was, not as nginx.
    let line = server.wait_log("over WebSocket");
    assert!(line.contains("connect 127.0.0.1:"), "{line}");
}
