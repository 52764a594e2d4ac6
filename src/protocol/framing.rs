//! Splitting a TCP byte stream into JSON objects.
//!
//! Objects may come back-to-back or separated by any JSON white space, split
//! across reads or many to a read. The splitter only tracks brace depth and
//! string/escape state, so finding the end of an object costs one pass over
//! its bytes even when it trickles in a byte at a time; the JSON parser
//! then sees each complete object once.
//!
//! It also reports when a client ends an object with a line break, which is
//! how the server learns to mirror newline framing (SEMANTICS.md).

/// What the splitter found in the stream, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One complete, brace-balanced candidate object (not yet parsed).
    Object(&'a [u8]),
    /// The client ended an object with `\n` or `\r\n`. Reported *before*
    /// that object when the line break arrived together with it.
    LineBreak,
    /// Bytes that cannot start or be part of a JSON object were discarded
    /// (up to and including the next line break, or all that was buffered).
    Garbage,
    /// An object grew beyond the size limit; the stream cannot continue.
    Oversized,
}

/// Per-connection splitter state: the partial object, if any, and where
/// scanning it stopped.
#[derive(Debug, Default)]
pub struct Splitter {
    /// Bytes of an object that has started but not ended.
    partial: Vec<u8>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// An object just ended and only spaces/tabs followed so far: a line
    /// break arriving next still counts as its terminator.
    awaiting_eol: bool,
}

/// Where a scan for the end of an object stopped.
enum Scan {
    /// The object ends at this index (inclusive).
    End(usize),
    /// A raw control character inside a string at this index: not JSON.
    Broken(usize),
    /// More bytes are needed.
    More,
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter::default()
    }

    /// Bytes held for an object that has not ended yet.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feeds newly read bytes, calling `on_frame` for each frame found. The
    /// callback returns `false` to stop early (the connection is closing);
    /// the remaining input is then dropped.
    pub fn feed(
        &mut self,
        input: &[u8],
        max_object: usize,
        on_frame: impl FnMut(Frame<'_>) -> bool,
    ) {
        let mut on_frame = on_frame;
        let mut i = 0;
        if !self.partial.is_empty() {
            match self.scan(input) {
                Scan::End(j) => {
                    if self.partial.len() + j + 1 > max_object {
                        self.reset();
                        on_frame(Frame::Oversized);
                        return;
                    }
                    self.partial.extend_from_slice(&input[..=j]);
                    let object = std::mem::take(&mut self.partial);
                    i = j + 1;
                    let eol = self.line_break_after(input, &mut i);
                    if eol && !on_frame(Frame::LineBreak) {
                        return;
                    }
                    let go_on = on_frame(Frame::Object(&object));
                    // Keep the allocation for the next partial object.
                    self.partial = object;
                    self.partial.clear();
                    if !go_on {
                        return;
                    }
                }
                Scan::Broken(j) => {
                    self.reset();
                    i = skip_line(input, j);
                    if !on_frame(Frame::Garbage) {
                        return;
                    }
                }
                Scan::More => {
                    if self.partial.len() + input.len() > max_object {
                        self.reset();
                        on_frame(Frame::Oversized);
                    } else {
                        self.partial.extend_from_slice(input);
                    }
                    return;
                }
            }
        }
        while i < input.len() {
            if self.awaiting_eol {
                match input[i] {
                    b' ' | b'\t' => {
                        i += 1;
                        continue;
                    }
                    b'\n' | b'\r' => {
                        self.awaiting_eol = false;
                        if !on_frame(Frame::LineBreak) {
                            return;
                        }
                    }
                    _ => self.awaiting_eol = false,
                }
            }
            match input[i] {
                b' ' | b'\t' | b'\n' | b'\r' => i += 1,
                b'{' => {
                    let rest = &input[i..];
                    match self.scan(rest) {
                        Scan::End(j) => {
                            if j + 1 > max_object {
                                self.reset();
                                on_frame(Frame::Oversized);
                                return;
                            }
                            let object = &rest[..=j];
                            i += j + 1;
                            let eol = self.line_break_after(input, &mut i);
                            if eol && !on_frame(Frame::LineBreak) {
                                return;
                            }
                            if !on_frame(Frame::Object(object)) {
                                return;
                            }
                        }
                        Scan::Broken(j) => {
                            self.reset();
                            i = skip_line(input, i + j);
                            if !on_frame(Frame::Garbage) {
                                return;
                            }
                        }
                        Scan::More => {
                            if rest.len() > max_object {
                                self.reset();
                                on_frame(Frame::Oversized);
                            } else {
                                self.partial.extend_from_slice(rest);
                            }
                            return;
                        }
                    }
                }
                _ => {
                    i = skip_line(input, i);
                    if !on_frame(Frame::Garbage) {
                        return;
                    }
                }
            }
        }
    }

    /// Continues the brace/string scan over `bytes`, updating the state.
    fn scan(&mut self, bytes: &[u8]) -> Scan {
        for (j, &b) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else if b < 0x20 {
                    return Scan::Broken(j);
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' => self.depth += 1,
                b'}' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Scan::End(j);
                    }
                }
                _ => {}
            }
        }
        Scan::More
    }

    /// After an object ending just before `*i`: skips spaces and tabs, and
    /// consumes a following line break (returning true). At the end of the
    /// input it remembers to look at the next bytes instead.
    fn line_break_after(&mut self, input: &[u8], i: &mut usize) -> bool {
        let mut k = *i;
        while k < input.len() && matches!(input[k], b' ' | b'\t') {
            k += 1;
        }
        if k == input.len() {
            *i = k;
            self.awaiting_eol = true;
            return false;
        }
        self.awaiting_eol = false;
        match input[k] {
            b'\n' => {
                *i = k + 1;
                true
            }
            b'\r' => {
                *i = if input.get(k + 1) == Some(&b'\n') {
                    k + 2
                } else {
                    k + 1
                };
                true
            }
            _ => {
                *i = k;
                false
            }
        }
    }

    fn reset(&mut self) {
        self.partial.clear();
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.awaiting_eol = false;
    }
}

/// Index just past the next `\n` at or after `from`, or the end.
fn skip_line(input: &[u8], from: usize) -> usize {
    match input[from..].iter().position(|&b| b == b'\n') {
        Some(k) => from + k + 1,
        None => input.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum F {
        O(String),
        Eol,
        Junk,
        Big,
    }

    fn run(chunks: &[&[u8]], max: usize) -> Vec<F> {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, max, |f| {
                out.push(match f {
                    Frame::Object(o) => F::O(String::from_utf8_lossy(o).into_owned()),
                    Frame::LineBreak => F::Eol,
                    Frame::Garbage => F::Junk,
                    Frame::Oversized => F::Big,
                });
                true
            });
        }
        out
    }

    fn o(s: &str) -> F {
        F::O(s.to_string())
    }

    #[test]
    fn back_to_back_and_whitespace() {
        assert_eq!(
            run(&[b"{\"a\":1}{\"b\":{\"c\":2}} \r\n {}"], 100),
            vec![o("{\"a\":1}"), F::Eol, o("{\"b\":{\"c\":2}}"), o("{}")]
        );
    }

    #[test]
    fn byte_by_byte_equals_one_write() {
        let whole: &[u8] = b"{\"m\":\"x}{\\\"y\"}\n{\"n\":[1,{}]}";
        let bytes: Vec<&[u8]> = whole.chunks(1).collect();
        let expect = vec![F::Eol, o("{\"m\":\"x}{\\\"y\"}"), o("{\"n\":[1,{}]}")];
        assert_eq!(run(&[whole], 100), expect);
        // Split byte by byte, the line break arrives after the object.
        assert_eq!(
            run(&bytes, 100),
            vec![o("{\"m\":\"x}{\\\"y\"}"), F::Eol, o("{\"n\":[1,{}]}")]
        );
    }

    #[test]
    fn line_break_after_spaces_in_a_later_read() {
        assert_eq!(run(&[b"{}  ", b"\t\r\n"], 100), vec![o("{}"), F::Eol]);
        assert_eq!(run(&[b"{} x\n"], 100), vec![o("{}"), F::Junk]);
    }

    #[test]
    fn garbage_is_dropped_to_the_line_break() {
        assert_eq!(
            run(&[b"hello\n{}\nnope"], 100),
            vec![F::Junk, F::Eol, o("{}"), F::Junk]
        );
        // A raw newline inside a string cannot be JSON: the line is dropped.
        assert_eq!(run(&[b"{\"a\":\"b\n{}"], 100), vec![F::Junk, o("{}")]);
        assert_eq!(run(&[b"{\"a\":\"b", b"\n{}"], 100), vec![F::Junk, o("{}")]);
    }

    #[test]
    fn oversized_objects() {
        assert_eq!(run(&[b"{\"a\":\"0123456789\"}"], 10), vec![F::Big]);
        assert_eq!(run(&[b"{\"a\":", b"\"0123456789\"}"], 10), vec![F::Big]);
        assert_eq!(run(&[b"{\"a\":\"01234"], 10), vec![F::Big]);
        assert_eq!(run(&[b"{\"a\":1}"], 7), vec![o("{\"a\":1}")]);
    }

    #[test]
    fn stopping_early_drops_the_rest() {
        let mut s = Splitter::new();
        let mut n = 0;
        s.feed(b"{}{}{}", 100, |_| {
            n += 1;
            false
        });
        assert_eq!(n, 1);
    }
}
