//! The `mp1` terminal program in client mode, scripted through pipes
//! against a real mp1d: every command, every error status, a name taken at
//! login, kick and server shutdown as the client sees them, exit codes.

mod common;
use common::terminal::Mp1;
use common::Mp1d;

fn connect(server: &Mp1d, name: &str) -> Mp1 {
    let addr = server.addr.to_string();
    let mut c = Mp1::spawn(&["connect", &addr, "--name", name]);
    c.expect(&format!("* logged in as {name}"));
    c
}

#[test]
fn every_command_reads_naturally() {
    let server = Mp1d::start(&[]);
    let mut ana = connect(&server, "ana");
    ana.expect("* ana joined the server.");
    ana.expect("* You are the admin.");
    let mut bob = connect(&server, "bob");
    bob.expect("* bob joined the server.");
    ana.expect("* bob joined the server.");

    bob.type_line("hello everyone");
    bob.expect("bob: hello everyone"); // one's own line is shown too
    ana.expect("bob: hello everyone");
    bob.type_line("//slash at the start");
    ana.expect("bob: /slash at the start");
    ana.type_line("/msg bob,ghost psst");
    ana.expect("[me -> bob,ghost] psst");
    bob.expect("[ana -> me] psst");
    // No positive answer comes for a chat; a refusal marks the line (in
    // place on a terminal, again below it through a pipe).
    ana.expect("[me -> bob,ghost] psst  [not delivered to ghost: not online]");
    bob.type_line("/w ana back at you");
    ana.expect("[bob -> me] back at you");
    ana.type_line("/list");
    ana.expect("* online (2): ana, bob");
    ana.type_line("/online");
    ana.expect("* online (2): ana, bob");
    ana.type_line("/who bob");
    ana.expect_prefix("* bob is at 127.0.0.1:");
    ana.type_line("/who ghost");
    ana.expect("who failed: no user ghost");
    ana.type_line("/time");
    let t = ana.expect_prefix("* server time: ");
    assert_eq!(t.len(), "* server time: 12:34:56".len(), "{t}");
    bob.type_line("/nick ana");
    bob.expect("nick failed: ana is taken");
    bob.type_line("/nick has space");
    bob.expect("usage: /nick NAME");
    bob.type_line("/changename bobby");
    bob.expect("* you are now bobby");
    ana.expect("* bob has changed username to bobby.");

    // Admin commands: refused for a non-admin, each status in words.
    bob.type_line("/kick ana");
    bob.expect("kick failed: you are not the admin");
    bob.type_line("/mute ana");
    bob.expect("mute failed: you are not the admin");
    ana.type_line("/mute ghost");
    ana.expect("mute failed: no user ghost");
    ana.type_line("/mute bobby");
    let before = ana.expect("* muted bobby");
    ana.type_line("/mute bobby");
    ana.expect("mute failed: bobby is already muted");
    bob.type_line("can anyone hear me");
    bob.expect("bobby: can anyone hear me  [not sent: you are muted]");
    ana.type_line("/unmute bobby");
    ana.expect("* unmuted bobby");
    ana.type_line("/unmute bobby");
    ana.expect("unmute failed: bobby is not muted");
    ana.type_line("/op ana");
    ana.expect("op failed: you are already the admin");
    ana.type_line("/setadmin bobby");
    ana.expect("* bobby is the admin now");
    bob.expect("* bobby is now the admin.");
    ana.type_line("/kick bobby");
    ana.expect("kick failed: you are not the admin");
    ana.type_line("/dance");
    ana.expect("unknown command /dance; /help lists them");
    ana.type_line("/help");
    ana.expect("commands:");

    // Kicked: the client says so and exits non-zero.
    bob.type_line("/kick ana");
    bob.expect("* kicked ana");
    ana.expect("* disconnected: Kicked from the server.");
    assert_eq!(ana.wait_exit(), Some(1));

    // /quit: Goodbye and exit 0.
    bob.type_line("/quit");
    bob.expect("* disconnected: Goodbye.");
    assert_eq!(bob.wait_exit(), Some(0));
    // The admin saw each action once: its answer, not the announcement
    // to everyone as well; the others see the announcement.
    let saw = |c: &Mp1, line: &str| c.seen.iter().any(|l| l == line);
    for (admin, other, line) in [
        (&ana, &bob, "* bobby has been muted."),
        (&ana, &bob, "* bobby has been unmuted."),
        (&ana, &bob, "* bobby is now the admin."),
    ] {
        assert!(!saw(admin, line), "{line}: {:?}", admin.seen);
        assert!(saw(other, line), "{line}: {:?}", other.seen);
    }
    assert!(!saw(&bob, "* ana has been kicked from the server."));
    assert!(before.iter().all(|l| l != "* bobby has been muted."));
}

/// One Ctrl-D (end of input) at the name prompt leaves, and a run that
/// never logged in exits non-zero.
#[test]
fn leaving_without_logging_in_exits_non_zero() {
    let server = Mp1d::start(&[]);
    let _ana = connect(&server, "ana");
    let addr = server.addr.to_string();
    let mut c = Mp1::spawn(&["connect", &addr, "--name", "ana"]);
    c.expect("name ana is taken; type another name");
    c.end_input();
    assert_eq!(c.wait_exit(), Some(1));
    assert!(
        c.seen.contains(&"mp1: never logged in".to_string()),
        "{:?}",
        c.seen
    );
    assert!(
        !c.seen.iter().any(|l| l.contains("Not logged in")),
        "{:?}",
        c.seen
    );
    // The same with nothing typed at all (`</dev/null`).
    let mut c = Mp1::spawn(&["connect", &addr, "--name", "bad name"]);
    c.end_input();
    assert_eq!(c.wait_exit(), Some(1));
}

#[test]
fn a_taken_name_asks_for_another() {
    let server = Mp1d::start(&[]);
    let _ana = connect(&server, "ana");
    let addr = server.addr.to_string();
    let mut c = Mp1::spawn(&["connect", &addr, "--name", "ana"]);
    c.expect("name ana is taken; type another name");
    c.type_line("has space");
    c.expect("\"has space\" is not a valid name (1-32 characters, no spaces); type another name");
    c.type_line("ana2");
    c.expect("* logged in as ana2");
}

#[test]
fn end_of_script_quits_cleanly() {
    let server = Mp1d::start(&[]);
    let mut watcher = connect(&server, "watcher");
    let addr = server.addr.to_string();
    let mut c = Mp1::spawn(&["connect", &addr, "--name", "script"]);
    c.type_line("one");
    c.type_line("two");
    c.end_input();
    assert_eq!(c.wait_exit(), Some(0));
    assert!(
        c.seen.contains(&"* disconnected: Goodbye.".to_string()),
        "{:?}",
        c.seen
    );
    watcher.expect("script: one");
    watcher.expect("script: two");
    watcher.expect("* script left the server.");
}

#[test]
fn server_shutdown_and_unreachable_server_exit_non_zero() {
    let mut server = Mp1d::start(&[]);
    let mut c = connect(&server, "ana");
    server.signal(libc::SIGTERM);
    c.expect("* disconnected: Server closing.");
    assert_eq!(c.wait_exit(), Some(1));
    assert_eq!(server.wait_exit(), Some(0));
    // Nothing listens there any more.
    let addr = server.addr.to_string();
    let mut gone = Mp1::spawn(&["connect", &addr, "--name", "x"]);
    assert_eq!(gone.wait_exit(), Some(1));
    assert!(
        gone.seen.iter().any(|l| l.starts_with("mp1: cannot reach")),
        "{:?}",
        gone.seen
    );
}

#[test]
fn works_against_a_bare_framing_server() {
    let server = Mp1d::start(&["--framing", "bare"]);
    let mut a = connect(&server, "a");
    let mut b = connect(&server, "b");
    b.type_line("bare hello");
    a.expect("b: bare hello");
}

#[test]
fn usage_errors_exit_2() {
    let mut c = Mp1::spawn(&["connect", "127.0.0.1:1"]);
    assert_eq!(c.wait_exit(), Some(2));
    assert!(c.seen.iter().any(|l| l.contains("--name NAME is required")));
}
