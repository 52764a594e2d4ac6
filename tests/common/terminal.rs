//! Runs the `mp1` terminal program with piped stdin/stdout, as a script
//! would, and reads what it prints line by line.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Mp1 {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every line printed so far.
    pub seen: Vec<String>,
}

impl Mp1 {
    pub fn spawn(args: &[&str]) -> Mp1 {
        Mp1::spawn_in(&[], args)
    }

    /// Runs mp1 under a wrapper command (`ip netns exec NS`).
    pub fn spawn_in(wrapper: &[&str], args: &[&str]) -> Mp1 {
        let mut command = super::command_in(wrapper, env!("CARGO_BIN_EXE_mp1"));
        command.args(args);
        Mp1::from_command(command)
    }

    /// Runs any line-oriented program the same way (`openssl s_client`).
    pub fn from_command(mut command: Command) -> Mp1 {
        #[allow(clippy::zombie_processes)] // Drop kills and waits
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the program starts");
        let (tx, rx) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Mp1 {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    pub fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin, as the end of a script does.
    pub fn end_input(&mut self) {
        self.stdin = None;
    }

    /// Waits for a printed line equal to `want`; returns the lines before it.
    pub fn expect(&mut self, want: &str) -> Vec<String> {
        self.expect_where(|l| l == want, want)
    }

    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        self.expect_where(|l| l.starts_with(prefix), prefix);
        self.seen.last().unwrap().clone()
    }

    /// Waits for a printed line that passes `pred`; returns the lines before it.
    pub fn expect_where(&mut self, pred: impl Fn(&str) -> bool, what: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return before;
                    }
                    before.push(line);
                }
                Err(_) => panic!("never printed {what:?}; printed {:#?}", self.seen),
            }
        }
    }

    /// Waits for the process to exit; returns its code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Collect what it printed last.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                    self.seen.push(line);
                }
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("mp1 did not exit; printed {:#?}", self.seen);
    }
}

impl Drop for Mp1 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
