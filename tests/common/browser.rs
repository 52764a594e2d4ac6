//! Runs the Selenium scripts in tests/browser/ (headless Chromium).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the screenshots go: target/tmp/browser-test/.
pub fn out_dir() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-test");
    std::fs::create_dir_all(&out).unwrap();
    out
}

/// Runs tests/browser/SCRIPT with `args`; it must say "all steps passed".
pub fn run_script(script: &str, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let run = Command::new("timeout")
        .args(["120", "/usr/bin/python3"])
        .arg(&script)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{said}");
    assert!(said.contains("all steps passed"), "{said}");
}

/// The screenshot `shot` in `out` is a PNG.
pub fn assert_png(out: &Path, shot: &str) {
    let png = std::fs::read(out.join(shot)).unwrap();
    assert_eq!(&png[..4], b"\x89PNG", "{shot}");
}
