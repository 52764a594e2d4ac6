//! The chat page in real browsers: tests/browser/chat.py drives two
//! headless Chromium windows (Selenium, Debian's python3-selenium and
//! chromium-driver; `.ci/run` installs them) and one `mp1 connect` against
//! an mp1d with `--http`. Skipped, saying why, only where Chromium or
//! Selenium is missing. Screenshots land in target/browser-test/.

mod common;
use common::Mp1d;
use std::path::Path;
use std::process::Command;

fn missing() -> Option<String> {
    for tool in [
        "/usr/bin/chromium",
        "/usr/bin/chromedriver",
        "/usr/bin/python3",
    ] {
        if !Path::new(tool).exists() {
            return Some(format!("{tool} is not installed"));
        }
    }
    let selenium = Command::new("/usr/bin/python3")
        .args(["-c", "import selenium"])
        .output()
        .ok()?;
    (!selenium.status.success()).then(|| "python3-selenium is not installed".to_string())
}

#[cfg_attr(not(have_browser), ignore = "needs chromium, chromium-driver and python3-selenium (.ci/run installs them)")]
#[test]
fn two_browsers_and_a_terminal_chat() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED two_browsers_and_a_terminal_chat: {why} (.ci/run installs it)");
        return;
    }
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    let url = format!("http://{}/", server.http_addr());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-test");
    std::fs::create_dir_all(&out).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/chat.py");
    let run = Command::new("timeout")
        .args(["120", "/usr/bin/python3"])
        .arg(&script)
        .args([&url, env!("CARGO_BIN_EXE_mp1"), &server.addr.to_string()])
        .arg(&out)
        .output()
        .expect("python3 runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}");
    assert!(said.contains("all steps passed"), "{said}");
    for shot in ["chat.png", "chat-phone.png"] {
        let png = std::fs::read(out.join(shot)).unwrap();
        assert_eq!(&png[..4], b"\x89PNG", "{shot}");
    }
}
