//! Running the loadgen binary from its tests.
#![allow(dead_code)]

use serde_json::Value;
use std::process::Command;

/// Runs loadgen with `args`: its exit code, its last stdout line as JSON
/// (with `--json`), and everything it printed.
pub fn loadgen(args: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap_or(Value::Null);
    (out.status.code(), json, format!("{stdout}{stderr}"))
}
