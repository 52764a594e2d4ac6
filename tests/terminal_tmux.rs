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
    /// A tmux server of the test's own (`tag` tells the tests apart).
    fn new(tag: &str) -> Option<Tmux> {
        Command::new("tmux").arg("-V").output().ok()?;
        Some(Tmux {
            socket: format!("mp1test{}{tag}", std::process::id()),
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
        self.start_sized(session, command, 100);
    }

    fn start_sized(&self, session: &str, command: &str, width: u16) {
        let width = width.to_string();
        self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            &width,
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
        self.wait_until(session, text, |s| s.contains(text))
    }

    /// Waits until the screen, as its non-blank rows, passes `done` (a
    /// redraw can be caught half-written, so check whole states).
    fn wait_until(&self, session: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.screen(session);
            if done(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{session} never showed {what}; screen:\n{s}"
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

#[cfg_attr(not(have_tmux), ignore = "tmux is not installed")]
#[test]
fn two_people_chat_in_terminals() {
    let Some(tmux) = Tmux::new("chat") else {
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
    let screen = tmux.wait_until("alice", "the whisper above the prompt", |s| {
        s.contains("[bob -> me] are you there") && s.contains("alice> half typ")
    });
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

/// Home and End as tmux sends them (`ESC[1~`, `ESC[4~`), and a line wider
/// than the terminal: a message arriving, and Enter, leave no row of it
/// behind.
#[cfg_attr(not(have_tmux), ignore = "tmux is not installed")]
#[test]
fn home_end_and_a_wrapped_line_in_a_narrow_terminal() {
    let Some(tmux) = Tmux::new("narrow") else {
        eprintln!(
            "SKIPPED home_end_and_a_wrapped_line_in_a_narrow_terminal: tmux is not installed"
        );
        return;
    };
    let server = Mp1d::start(&[]);
    let bin = env!("CARGO_BIN_EXE_mp1");
    let addr = server.addr;
    tmux.start_sized("cat", &format!("{bin} connect {addr} --name cat"), 30);
    tmux.wait_for("cat", "* You are the admin.");
    tmux.start("dog", &format!("{bin} connect {addr} --name dog"));
    tmux.wait_for("cat", "* dog joined the server.");

    tmux.keys("cat", &["-l", "bcd"]);
    tmux.keys("cat", &["Home"]);
    tmux.keys("cat", &["-l", "a"]);
    tmux.keys("cat", &["End"]);
    tmux.keys("cat", &["-l", "e"]);
    tmux.keys("cat", &["Enter"]);
    tmux.wait_for("dog", "cat: abcde");

    // 62 distinct characters after "cat> ": three rows of 30 columns.
    let long: String = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    tmux.keys("cat", &["-l", &long]);
    tmux.wait_for("cat", &long[55..]);
    tmux.keys("dog", &["ping", "Enter"]);
    let screen = tmux.wait_until("cat", "the message above the long line", |s| {
        s.contains("dog: ping") && s.contains(&long[55..])
    });
    let rows: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    let n = rows.len();
    assert!(n >= 4, "screen:\n{screen}");
    // The message, then the whole line below it once, and nothing else.
    assert_eq!(rows[n - 4], "dog: ping", "screen:\n{screen}");
    assert_eq!(
        rows[n - 3..].concat(),
        format!("cat> {long}"),
        "screen:\n{screen}"
    );
    assert_eq!(screen.matches(&long[..20]).count(), 1, "screen:\n{screen}");

    tmux.keys("cat", &["Enter"]);
    tmux.wait_for("dog", &format!("cat: {long}"));
    let screen = tmux.wait_until("cat", "the echoed line and an empty prompt", |s| {
        s.contains(&format!("cat: {}", &long[..25])) && s.trim_end().ends_with("cat>")
    });
    let rows: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.last(), Some(&"cat>"), "screen:\n{screen}");
    // The typed rows were replaced by the echoed line, not left behind.
    assert_eq!(
        screen.matches(&long[30..50]).count(),
        1,
        "screen:\n{screen}"
    );
}

/// A refused whisper is marked where it stands, not left looking sent;
/// the admin sees each of their actions once; one Ctrl-D at the name
/// prompt leaves.
#[cfg_attr(not(have_tmux), ignore = "tmux is not installed")]
#[test]
fn refusals_are_marked_in_place_and_actions_said_once() {
    let Some(tmux) = Tmux::new("refused") else {
        return;
    };
    let server = Mp1d::start(&[]);
    let bin = env!("CARGO_BIN_EXE_mp1");
    let addr = server.addr;
    tmux.start("ann", &format!("{bin} connect {addr} --name ann"));
    tmux.wait_for("ann", "* You are the admin.");
    tmux.start("carlos", &format!("{bin} connect {addr} --name carlos"));
    tmux.wait_for("ann", "* carlos joined the server.");

    tmux.keys("ann", &["/msg nobody hi", "Enter"]);
    let screen = tmux.wait_for(
        "ann",
        "[me -> nobody] hi  [not delivered to nobody: not online]",
    );
    assert_eq!(screen.matches("[me -> nobody] hi").count(), 1, "{screen}");
    assert!(!screen.contains("UserDoesNotExist"), "{screen}");

    tmux.keys("ann", &["/mute carlos", "Enter"]);
    tmux.wait_for("carlos", "* carlos has been muted.");
    tmux.keys("carlos", &["anyone?", "Enter"]);
    let screen = tmux.wait_for("carlos", "carlos: anyone?  [not sent: you are muted]");
    assert_eq!(screen.matches("carlos: anyone?").count(), 1, "{screen}");
    let screen = tmux.wait_for("ann", "* muted carlos");
    assert!(!screen.contains("carlos has been muted"), "{screen}");

    // A taken name asks for another; Ctrl-D there leaves at once.
    tmux.start(
        "again",
        &format!("{bin} connect {addr} --name ann; echo exit=$?; sleep 30"),
    );
    tmux.wait_for("again", "name>");
    tmux.keys("again", &["C-d"]);
    let screen = tmux.wait_for("again", "exit=1");
    assert!(screen.contains("mp1: never logged in"), "{screen}");
    assert!(!screen.contains("Not logged in"), "{screen}");
}
