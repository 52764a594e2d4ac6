//! The chat page in real browsers: tests/browser/*.py drive headless
//! Chromium (Selenium, Debian's python3-selenium and chromium-driver;
//! `.ci/run` installs them) against an mp1d with `--http`. Shown as
//! ignored, saying why, where Chromium or Selenium is missing (build.rs).
//! Screenshots land in target/tmp/browser-test/.

mod common;
use common::browser::{assert_png, out_dir, run_script};
use common::Mp1d;

#[cfg_attr(
    not(have_browser),
    ignore = "needs chromium, chromium-driver and python3-selenium (.ci/run installs them)"
)]
#[test]
fn two_browsers_and_a_terminal_chat() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    let url = format!("http://{}/", server.http_addr());
    let out = out_dir();
    let addr = server.addr.to_string();
    run_script(
        "chat.py",
        &[
            &url,
            env!("CARGO_BIN_EXE_mp1"),
            &addr,
            out.to_str().unwrap(),
        ],
    );
    for shot in ["chat.png", "chat-phone.png", "kicked.png"] {
        assert_png(&out, shot);
    }
}

/// The server goes away and comes back: the page greys out, retries with
/// a growing wait, and logs in again under the same name.
#[cfg_attr(
    not(have_browser),
    ignore = "needs chromium, chromium-driver and python3-selenium (.ci/run installs them)"
)]
#[test]
fn the_page_reconnects_when_the_server_comes_back() {
    let out = out_dir();
    run_script(
        "reconnect.py",
        &[env!("CARGO_BIN_EXE_mp1d"), out.to_str().unwrap()],
    );
    assert_png(&out, "offline.png");
}
