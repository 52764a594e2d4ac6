//! A small line editor for a terminal in raw mode, so that messages that
//! arrive while a person types are printed above the prompt instead of
//! through the half-typed line. Left/right, home/end, backspace, Ctrl-U,
//! and up/down history. Pure apart from the termios guard: it turns bytes
//! typed into [`Key`] events and renders into a byte buffer.

use std::cell::Cell;
use std::io::{self, Write};

/// What typing produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// Enter was pressed on this line.
    Line(String),
    /// Ctrl-D on an empty line, or Ctrl-C.
    Quit,
}

#[derive(Default)]
pub struct LineEditor {
    prompt: String,
    buf: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing history (len = not browsing).
    hist_pos: usize,
    /// Bytes of a UTF-8 character or escape sequence still incomplete.
    pending: Vec<u8>,
    /// Rows between the first row of the prompt and the terminal cursor,
    /// as the last render left them (a long line wraps over many rows).
    cursor_row: Cell<usize>,
}

impl LineEditor {
    pub fn new(prompt: &str) -> LineEditor {
        LineEditor {
            prompt: prompt.to_string(),
            ..LineEditor::default()
        }
    }

    pub fn set_prompt(&mut self, prompt: &str) {
        self.prompt = prompt.to_string();
    }

    /// Feeds typed bytes; returns completed lines and quit requests.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut keys = Vec::new();
        self.pending.extend_from_slice(bytes);
        let input = std::mem::take(&mut self.pending);
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match b {
                b'\r' | b'\n' => {
                    let line: String = self.buf.drain(..).collect();
                    self.cursor = 0;
                    if !line.is_empty() && self.history.last() != Some(&line) {
                        self.history.push(line.clone());
                    }
                    self.hist_pos = self.history.len();
                    keys.push(Key::Line(line));
                    // A CR LF pair is one Enter.
                    if b == b'\r' && input.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                0x03 => keys.push(Key::Quit),
                0x04 if self.buf.is_empty() => keys.push(Key::Quit),
                0x7f | 0x08 => {
                    if self.cursor > 0 {
                        self.cursor -= 1;
                        self.buf.remove(self.cursor);
                    }
                }
                0x01 => self.cursor = 0,
                0x05 => self.cursor = self.buf.len(),
                0x15 => {
                    self.buf.drain(..self.cursor);
                    self.cursor = 0;
                }
                0x1b => {
                    // ESC [ X, ESC O X, or ESC [ n ~
                    let rest = &input[i..];
                    let Some(len) = escape_len(rest) else {
                        self.pending = rest.to_vec();
                        return keys;
                    };
                    self.escape(&rest[..len]);
                    i += len;
                    continue;
                }
                b if b < 0x20 => {}
                _ => {
                    let width = utf8_len(b);
                    if i + width > input.len() {
                        self.pending = input[i..].to_vec();
                        return keys;
                    }
                    if let Ok(s) = std::str::from_utf8(&input[i..i + width]) {
                        for c in s.chars() {
                            self.buf.insert(self.cursor, c);
                            self.cursor += 1;
                        }
                    }
                    i += width;
                    continue;
                }
            }
            i += 1;
        }
        keys
    }

    fn escape(&mut self, seq: &[u8]) {
        match seq.last() {
            Some(b'A') => self.browse(-1),
            Some(b'B') => self.browse(1),
            Some(b'C') => self.cursor = (self.cursor + 1).min(self.buf.len()),
            Some(b'D') => self.cursor = self.cursor.saturating_sub(1),
            Some(b'H') => self.cursor = 0,
            Some(b'F') => self.cursor = self.buf.len(),
            // ESC [ n ~: home is 1 (tmux, screen, linux console) or 7
            // (rxvt); end is 4 or 8; delete is 3.
            Some(b'~') => match &seq[2..seq.len() - 1] {
                b"1" | b"7" => self.cursor = 0,
                b"4" | b"8" => self.cursor = self.buf.len(),
                b"3" if self.cursor < self.buf.len() => {
                    self.buf.remove(self.cursor);
                }
                _ => {}
            },
            _ => {}
        }
    }

    fn browse(&mut self, step: isize) {
        let pos = self.hist_pos as isize + step;
        if pos < 0 || pos as usize > self.history.len() {
            return;
        }
        self.hist_pos = pos as usize;
        self.buf = self
            .history
            .get(self.hist_pos)
            .map(|s| s.chars().collect())
            .unwrap_or_default();
        self.cursor = self.buf.len();
    }

    /// Redraws the prompt and the line being typed for a terminal `width`
    /// columns wide, over as many rows as they wrap to, and puts the
    /// cursor where it is in the line. (One column per character.)
    pub fn render(&self, width: usize, out: &mut Vec<u8>) {
        let width = width.max(1);
        self.to_first_row(out);
        out.extend_from_slice(self.prompt.as_bytes());
        let text: String = self.buf.iter().collect();
        out.extend_from_slice(text.as_bytes());
        let total = self.prompt.chars().count() + self.buf.len();
        if total > 0 && total % width == 0 {
            // The terminal holds the cursor on the last column until the
            // next character; start the next row so the rows add up.
            out.extend_from_slice(b"\r\n");
        }
        let end_row = total / width;
        let at = self.prompt.chars().count() + self.cursor;
        let (row, col) = (at / width, at % width);
        if end_row > row {
            out.extend_from_slice(format!("\x1b[{}A", end_row - row).as_bytes());
        }
        out.push(b'\r');
        if col > 0 {
            out.extend_from_slice(format!("\x1b[{col}C").as_bytes());
        }
        self.cursor_row.set(row);
    }

    /// Prints `line` above the prompt and redraws the prompt line.
    pub fn print_above(&self, line: &str, width: usize, out: &mut Vec<u8>) {
        self.to_first_row(out);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.cursor_row.set(0);
        self.render(width, out);
    }

    /// Rewrites the line printed just above the prompt (`old_chars` long
    /// when printed) as `line`, and redraws the prompt.
    pub fn replace_above(&self, old_chars: usize, line: &str, width: usize, out: &mut Vec<u8>) {
        let rows = old_chars.max(1).div_ceil(width.max(1));
        self.to_first_row(out);
        out.extend_from_slice(format!("\x1b[{rows}A").as_bytes());
        self.cursor_row.set(0);
        self.print_above(line, width, out);
    }

    /// Moves to the start of the prompt's first row and clears everything
    /// below, so no row of a longer line is left behind.
    fn to_first_row(&self, out: &mut Vec<u8>) {
        let up = self.cursor_row.get();
        if up > 0 {
            out.extend_from_slice(format!("\x1b[{up}A").as_bytes());
        }
        out.extend_from_slice(b"\r\x1b[J");
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xf7 => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Length of the escape sequence at the start of `s`, if complete.
fn escape_len(s: &[u8]) -> Option<usize> {
    match s.get(1)? {
        b'[' | b'O' => {
            for (k, &b) in s.iter().enumerate().skip(2) {
                if (0x40..=0x7e).contains(&b) {
                    return Some(k + 1);
                }
            }
            None
        }
        _ => Some(2),
    }
}

/// Puts the terminal in raw mode until dropped (keeping output
/// processing, so `\n` still moves to the next line start).
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    pub fn enable() -> io::Result<RawMode> {
        // SAFETY: tcgetattr fills the struct we pass; fd 0 is stdin.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Err(io::Error::last_os_error());
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
            t.c_iflag &= !(libc::IXON | libc::ICRNL);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `enable`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
        let _ = io::stdout().write_all(b"\r\n");
        let _ = io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(e: &mut LineEditor, s: &[u8]) -> Vec<Key> {
        e.feed(s)
    }

    #[test]
    fn editing_keys() {
        let mut e = LineEditor::new("> ");
        assert_eq!(
            typed(&mut e, b"helo\x1b[Dl\r"),
            vec![Key::Line("hello".into())]
        );
        assert_eq!(
            typed(&mut e, b"abc\x7f\x7fx\r"),
            vec![Key::Line("ax".into())]
        );
        assert_eq!(
            typed(&mut e, b"junk\x15ok\r\n"),
            vec![Key::Line("ok".into())]
        );
        // History: up recalls, down returns to an empty line.
        assert_eq!(typed(&mut e, b"\x1b[A\r"), vec![Key::Line("ok".into())]);
        assert_eq!(
            typed(&mut e, b"\x1b[A\x1b[A\x1b[B\x1b[B\r"),
            vec![Key::Line("".into())]
        );
        assert_eq!(typed(&mut e, b"\x04"), vec![Key::Quit]);
        assert_eq!(typed(&mut e, b"x\x04\r"), vec![Key::Line("x".into())]);
    }

    #[test]
    fn utf8_and_escapes_split_across_reads() {
        let mut e = LineEditor::new("> ");
        let bytes = "é😀".as_bytes();
        assert_eq!(e.feed(&bytes[..1]), vec![]);
        assert_eq!(e.feed(&bytes[1..3]), vec![]);
        assert_eq!(e.feed(&bytes[3..]), vec![]);
        assert_eq!(e.feed(b"\x1b"), vec![]);
        assert_eq!(e.feed(b"[D!\r"), vec![Key::Line("é!😀".into())]);
    }

    #[test]
    fn incoming_lines_go_above_the_prompt() {
        let mut e = LineEditor::new("> ");
        e.feed(b"half");
        let mut out = Vec::new();
        e.print_above("alice: hi", 80, &mut out);
        assert_eq!(out, b"\r\x1b[Jalice: hi\r\n\r\x1b[J> half\r\x1b[6C");
    }

    #[test]
    fn home_and_end_as_every_terminal_sends_them() {
        for (home, end) in [
            (&b"\x1b[H"[..], &b"\x1b[F"[..]),
            (b"\x1bOH", b"\x1bOF"),
            (b"\x1b[1~", b"\x1b[4~"), // tmux, screen
            (b"\x1b[7~", b"\x1b[8~"), // rxvt
        ] {
            let mut e = LineEditor::new("> ");
            let mut typed = b"bc".to_vec();
            typed.extend_from_slice(home);
            typed.push(b'a');
            typed.extend_from_slice(end);
            typed.extend_from_slice(b"d\r");
            assert_eq!(e.feed(&typed), vec![Key::Line("abcd".into())], "{home:?}");
        }
        let mut e = LineEditor::new("> ");
        assert_eq!(e.feed(b"abc\x1b[1~\x1b[3~\r"), vec![Key::Line("bc".into())]);
    }

    /// A line longer than the terminal is redrawn from its first row, and
    /// the rows below are cleared, so none is left behind.
    #[test]
    fn a_wrapped_line_is_redrawn_whole() {
        let mut e = LineEditor::new("> ");
        e.feed(&[b'x'; 23]); // 25 columns with the prompt: three rows of 10
        let mut out = Vec::new();
        e.render(10, &mut out);
        assert_eq!(
            out,
            [&b"\r\x1b[J> "[..], &[b'x'; 23], b"\r\x1b[5C"].concat()
        );
        // A message arrives: up two rows to the prompt's first row, clear
        // to the end of the screen, print, redraw.
        out.clear();
        e.print_above("hi", 10, &mut out);
        let redraw = [&b"\r\x1b[J> "[..], &[b'x'; 23], b"\r\x1b[5C"].concat();
        assert_eq!(out, [&b"\x1b[2A\r\x1b[Jhi\r\n"[..], &redraw].concat());
        // Enter: the empty prompt replaces all three rows.
        e.feed(b"\r");
        out.clear();
        e.render(10, &mut out);
        assert_eq!(out, b"\x1b[2A\r\x1b[J> \r\x1b[2C");
        // Exactly at the edge, the cursor moves to a row of its own.
        let mut e = LineEditor::new("> ");
        e.feed(&[b'y'; 8]);
        out.clear();
        e.render(10, &mut out);
        assert_eq!(out, [&b"\r\x1b[J> "[..], &[b'y'; 8], b"\r\n\r"].concat());
    }
}
