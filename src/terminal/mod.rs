//! The `mp1` terminal program: a person chatting against a server (client
//! mode) or on a LAN with no server (peer mode). Each mode is one mio loop
//! over its socket plus stdin; typed lines become [`command::Command`]s and
//! what arrives is shown by [`display`].
//!
//! Stdin is read by a small thread that wakes the loop through a
//! `mio::Waker`: epoll cannot watch a regular file (`mp1 ... < script`),
//! and making a shared terminal non-blocking would leak into the shell.

pub mod client;
pub mod command;
pub mod display;
pub mod line_editor;
pub mod peer_chat;

use line_editor::{Key, LineEditor, RawMode};
use std::cell::Cell;
use std::io::IsTerminal;
use std::io::{self, Read, Write};
use std::sync::{mpsc, Arc};

/// The token the stdin thread wakes the loop with.
pub const STDIN: mio::Token = mio::Token(1);

/// How a session ended: the process exit code and why.
pub struct Ended {
    pub code: u8,
    pub why: Option<String>,
}

impl Ended {
    /// The session could not go on: exit status 1, with the reason.
    pub fn failed(why: String) -> Ended {
        Ended {
            code: 1,
            why: Some(why),
        }
    }
}

/// The name was refused (taken, or invalid): the next typed line is a new
/// name, in both modes, until one is accepted.
#[derive(Default)]
pub struct NamePrompt {
    asking: bool,
}

impl NamePrompt {
    /// Asks the person for another name.
    pub fn ask(&mut self, screen: &mut Screen) {
        self.asking = true;
        screen.set_prompt("name> ");
    }

    /// While asking, every typed line is an answer: `Some(Some(name))` to
    /// try, `Some(None)` for a blank line. `None`: not asking, an ordinary
    /// line.
    pub fn answer<'a>(&self, line: &'a str) -> Option<Option<&'a str>> {
        self.asking
            .then(|| Some(line.trim()).filter(|n| !n.is_empty()))
    }

    /// The answer was accepted (or sent to be checked).
    pub fn settled(&mut self) {
        self.asking = false;
    }
}

/// Columns of the terminal on stdout (80 if it cannot be told). Asked
/// at every redraw, so a resized window is drawn right from then on.
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills the struct we pass; fd 1 is stdout.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        size.ws_col as usize
    } else {
        80
    }
}

/// Typed input, as lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// End of input (Ctrl-D, Ctrl-C, or the end of a piped script).
    End,
}

/// Where lines go and where typed input comes from: a line editor in raw
/// mode on a terminal, plain lines otherwise (pipes, scripts, tests).
pub struct Screen {
    editor: Option<(LineEditor, RawMode)>,
    /// Held here too: if the thread's copy were the last, its eventfd
    /// would close as the thread ends, taking the final wake-up with it.
    _waker: Arc<mio::Waker>,
    rx: mpsc::Receiver<Option<Vec<u8>>>,
    partial: Vec<u8>,
    ended: bool,
    /// Lines shown so far, and the last one's length in characters (for
    /// [`Screen::amend`]).
    shown: Cell<u64>,
    last_chars: Cell<usize>,
}

impl Screen {
    /// Starts the stdin thread, which wakes `waker` whenever it read.
    pub fn new(waker: mio::Waker, prompt: &str) -> Screen {
        let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        let editor = if tty {
            RawMode::enable()
                .ok()
                .map(|raw| (LineEditor::new(prompt), raw))
        } else {
            None
        };
        let (tx, rx) = mpsc::channel();
        let waker = Arc::new(waker);
        let thread_waker = Arc::clone(&waker);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = io::stdin().lock();
            loop {
                let chunk = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => None,
                    Ok(n) => Some(buf[..n].to_vec()),
                };
                let end = chunk.is_none();
                if tx.send(chunk).is_err() || thread_waker.wake().is_err() || end {
                    return;
                }
            }
        });
        let screen = Screen {
            editor,
            _waker: waker,
            rx,
            partial: Vec::new(),
            ended: false,
            shown: Cell::new(0),
            last_chars: Cell::new(0),
        };
        screen.redraw();
        screen
    }

    /// Shows one line (above the prompt on a terminal).
    pub fn show(&self, line: &str) {
        self.show_numbered(line);
    }

    /// Shows one line and returns its number, for [`Screen::amend`].
    pub fn show_numbered(&self, line: &str) -> u64 {
        let mut out = Vec::new();
        match &self.editor {
            Some((e, _)) => e.print_above(line, terminal_width(), &mut out),
            None => {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(&out);
        let _ = stdout.flush();
        self.last_chars.set(line.chars().count());
        self.shown.set(self.shown.get() + 1);
        self.shown.get()
    }

    /// Rewrites line number `id` as `line` where it stands, if it is the
    /// last line shown on a terminal; otherwise shows `line` below.
    pub fn amend(&self, id: u64, line: &str) -> u64 {
        match &self.editor {
            Some((e, _)) if id == self.shown.get() => {
                let mut out = Vec::new();
                e.replace_above(self.last_chars.get(), line, terminal_width(), &mut out);
                let mut stdout = io::stdout().lock();
                let _ = stdout.write_all(&out);
                let _ = stdout.flush();
                self.last_chars.set(line.chars().count());
                id
            }
            _ => self.show_numbered(line),
        }
    }

    pub fn set_prompt(&mut self, prompt: &str) {
        if let Some((e, _)) = self.editor.as_mut() {
            e.set_prompt(prompt);
        }
        self.redraw();
    }

    fn redraw(&self) {
        if let Some((e, _)) = &self.editor {
            let mut out = Vec::new();
            e.render(terminal_width(), &mut out);
            let _ = io::stdout().write_all(&out);
            let _ = io::stdout().flush();
        }
    }

    /// Typed lines that arrived since the last call.
    pub fn take_input(&mut self) -> Vec<Input> {
        let mut inputs = Vec::new();
        while let Ok(chunk) = self.rx.try_recv() {
            if self.ended {
                break;
            }
            let Some(bytes) = chunk else {
                if !self.partial.is_empty() {
                    let line =
                        String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
                    inputs.push(Input::Line(line));
                }
                inputs.push(Input::End);
                self.ended = true;
                break;
            };
            match self.editor.as_mut() {
                Some((e, _)) => {
                    for key in e.feed(&bytes) {
                        inputs.push(match key {
                            Key::Line(l) => Input::Line(l),
                            Key::Quit => Input::End,
                        });
                    }
                    self.redraw();
                }
                None => {
                    self.partial.extend_from_slice(&bytes);
                    while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = self.partial.drain(..=i).collect();
                        let text = String::from_utf8_lossy(&line[..i]);
                        inputs.push(Input::Line(text.trim_end_matches('\r').to_string()));
                    }
                }
            }
        }
        inputs
    }
}
