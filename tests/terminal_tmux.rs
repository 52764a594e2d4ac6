//! `mp1` as a person uses it: two users in real terminals (tmux panes)
//! chatting through mp1d, checked by reading the screens. Incoming
//! messages must not garble a half-typed line. Skipped with a message when
//! tmux is not installed (.ci/run installs it).

mod common;
use common::Mp1d;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Option<Tmux> {
        Command::new("tmux").arg("-V").output().ok()?;
        Some(Tmux {
            socket: format!("mp1test{}", std::process::id()),
        })
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start(&self, session: &str, command: &str) {
        self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "20",
            command,
        ]);
    }

    fn keys(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self, session: &str) -> String {
        self.run(&["capture-pane", "-p", "-t", session])
    }

    /// Waits until the screen shows `text`; returns the screen.
    fn wait_for(&self, session: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.screen(session);
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{session} never showed {text:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn two_people_chat_in_terminals() {
    let Some(tmux) = Tmux::new() else {
        eprintln!("SKIPPED two_people_chat_in_terminals: tmux is not installed");
        return;
    };
    let server = Mp1d::start(&[]);
    let bin = env!("CARGO_BIN_EXE_mp1");
    let addr = server.addr;
    tmux.start("alice", &format!("{bin} connect {addr} --name alice"));
    tmux.wait_for("alice", "* You are the admin.");
    tmux.start("bob", &format!("{bin} connect {addr} --name bob"));
    tmux.wait_for("bob", "* logged in as bob");
    tmux.wait_for("alice", "* bob joined the server.");

    tmux.keys("bob", &["hello alice", "Enter"]);
    tmux.wait_for("alice", "bob: hello alice");

    // Alice is halfway through a line when bob's message arrives: it is
    // printed above her prompt, and her typing stays intact below.
    tmux.keys("alice", &["-l", "half typ"]);
    tmux.wait_for("alice", "alice> half typ");
    tmux.keys("bob", &["/msg alice are you there", "Enter"]);
    let screen = tmux.wait_for("alice", "[bob -> me] are you there");
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.last(), Some(&"alice> half typ"), "screen:\n{screen}");
    assert!(
        lines.contains(&"[bob -> me] are you there"),
        "screen:\n{screen}"
    );
    tmux.keys("alice", &["-l", "ed"]);
    tmux.keys("alice", &["Enter"]);
    tmux.wait_for("bob", "alice: half typed");

    // History: Up brings back the last line.
    tmux.keys("alice", &["Up", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmux.screen("bob").matches("alice: half typed").count() < 2 {
        assert!(Instant::now() < deadline, "history line never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }

    tmux.keys("bob", &["/list", "Enter"]);
    tmux.wait_for("bob", "* online (2): alice, bob");
    tmux.keys("bob", &["/quit", "Enter"]);
    tmux.wait_for("alice", "* bob left the server.");
}
