//! Splitting a TCP byte stream into JSON objects.
//!
//! Objects may come back-to-back or separated by any JSON white space, split
//! across reads or many to a read. The splitter only tracks brace depth and
//! string/escape state, so finding the end of an object costs one pass over
//! its bytes even when it trickles in a byte at a time; the JSON parser
//! then sees each complete object once.
//!
//! It also reports when a client ends an object with a line break, which is
//! how the server learns to mirror newline framing (docs/PROTOCOL.md).

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
    /// An object just ended and only spaces/tabs (or a `\r`) followed so
    /// far: a line break arriving next still counts as its terminator.
    awaiting_eol: Eol,
    /// `partial` holds the complete object handed out last; it is cleared
    /// (keeping its allocation) before the next frame.
    partial_complete: bool,
}

/// What may still end the last object's line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Eol {
    /// Nothing: the object was not the last thing on its line.
    #[default]
    No,
    /// `\n` or `\r\n`, after any spaces and tabs.
    Any,
    /// A `\r` came last: only a `\n` now makes it a line break.
    Lf,
}

/// Where the splitter is in one read's bytes: what the caller keeps
/// between [`Splitter::next_frame`] calls on the same input.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Next byte of the input to look at.
    pos: usize,
    /// The object left partial by earlier reads has been continued.
    resumed: bool,
    /// An object found together with the line break after it: the line
    /// break is reported first, the object on the next call.
    held: Option<Held>,
}

impl Cursor {
    /// Index of the next byte not yet handed out.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether stopping here and feeding `input[position()..]` later (with
    /// a fresh cursor) gives the same frames: no frame is half handed out.
    pub fn between_frames(&self) -> bool {
        self.held.is_none()
    }
}

#[derive(Clone, Copy, Debug)]
enum Held {
    Input(usize, usize),
    Partial,
}

/// The frames found in one read, pulled one at a time: a [`Splitter`], its
/// input and a [`Cursor`] together.
pub struct Frames<'s, 'i> {
    splitter: &'s mut Splitter,
    input: &'i [u8],
    at: Cursor,
    max_object: usize,
}

impl Frames<'_, '_> {
    /// The next frame, or `None` once the input is used up.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        self.splitter
            .next_frame(self.input, &mut self.at, self.max_object)
    }
}

impl Splitter {
    /// The next frame in `input`, or `None` once it is used up (a partial
    /// object at its end is kept for the next read). Pass the same input
    /// and cursor until then; a fresh cursor starts on the next read.
    /// Stopping early (the connection is closing) drops the rest.
    pub fn next_frame<'a>(
        &'a mut self,
        input: &'a [u8],
        at: &mut Cursor,
        max_object: usize,
    ) -> Option<Frame<'a>> {
        if self.partial_complete {
            self.partial.clear();
            self.partial_complete = false;
        }
        match at.held.take() {
            Some(Held::Input(a, b)) => return Some(Frame::Object(&input[a..b])),
            Some(Held::Partial) => {
                self.partial_complete = true;
                return Some(Frame::Object(&self.partial));
            }
            None => {}
        }
        if !at.resumed {
            at.resumed = true;
            if !self.partial.is_empty() {
                return self.resume_partial(input, at, max_object);
            }
        }
        self.scan_input(input, at, max_object)
    }

    /// Frames that start in this read.
    fn scan_input<'a>(
        &mut self,
        input: &'a [u8],
        at: &mut Cursor,
        max: usize,
    ) -> Option<Frame<'a>> {
        let s = self;
        while at.pos < input.len() {
            let i = at.pos;
            match (s.awaiting_eol, input[i]) {
                (Eol::No, _) => {}
                (Eol::Any, b' ' | b'\t') => {
                    at.pos += 1;
                    continue;
                }
                (Eol::Any, b'\r') => {
                    at.pos += 1;
                    s.awaiting_eol = Eol::Lf;
                    continue;
                }
                (Eol::Any | Eol::Lf, b'\n') => {
                    at.pos += 1;
                    s.awaiting_eol = Eol::No;
                    return Some(Frame::LineBreak);
                }
                _ => s.awaiting_eol = Eol::No,
            }
            match input[i] {
                b' ' | b'\t' | b'\n' | b'\r' => at.pos += 1,
                b'{' => {
                    let rest = &input[i..];
                    return match s.scan(rest) {
                        Scan::End(j) => {
                            if j + 1 > max {
                                s.reset();
                                at.pos = input.len();
                                return Some(Frame::Oversized);
                            }
                            let (a, b) = (i, i + j + 1);
                            at.pos = b;
                            if s.line_break_after(input, &mut at.pos) {
                                at.held = Some(Held::Input(a, b));
                                Some(Frame::LineBreak)
                            } else {
                                Some(Frame::Object(&input[a..b]))
                            }
                        }
                        Scan::Broken(j) => {
                            s.reset();
                            at.pos = skip_line(input, i + j);
                            Some(Frame::Garbage)
                        }
                        Scan::More => {
                            at.pos = input.len();
                            if rest.len() > max {
                                s.reset();
                                Some(Frame::Oversized)
                            } else {
                                s.partial.extend_from_slice(rest);
                                None
                            }
                        }
                    };
                }
                _ => {
                    at.pos = skip_line(input, i);
                    return Some(Frame::Garbage);
                }
            }
        }
        None
    }

    /// Continues the object an earlier read left unfinished.
    fn resume_partial<'a>(
        &'a mut self,
        input: &[u8],
        at: &mut Cursor,
        max_object: usize,
    ) -> Option<Frame<'a>> {
        let s = self;
        match s.scan(input) {
            Scan::End(j) => {
                if s.partial.len() + j + 1 > max_object {
                    s.reset();
                    at.pos = input.len();
                    return Some(Frame::Oversized);
                }
                s.partial.extend_from_slice(&input[..=j]);
                at.pos = j + 1;
                if s.line_break_after(input, &mut at.pos) {
                    at.held = Some(Held::Partial);
                    return Some(Frame::LineBreak);
                }
                s.partial_complete = true;
                Some(Frame::Object(&s.partial))
            }
            Scan::Broken(j) => {
                s.reset();
                at.pos = skip_line(input, j);
                Some(Frame::Garbage)
            }
            Scan::More => {
                at.pos = input.len();
                if s.partial.len() + input.len() > max_object {
                    s.reset();
                    Some(Frame::Oversized)
                } else {
                    s.partial.extend_from_slice(input);
                    None
                }
            }
        }
    }
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
        if self.partial_complete {
            0
        } else {
            self.partial.len()
        }
    }

    /// A cursor over newly read bytes: call [`Frames::next_frame`] until it
    /// returns `None`, handling each frame before asking for the next.
    /// Dropping the cursor early (the connection is closing) drops the
    /// rest of `input`.
    pub fn frames<'s, 'i>(&'s mut self, input: &'i [u8], max_object: usize) -> Frames<'s, 'i> {
        Frames {
            splitter: self,
            input,
            at: Cursor::default(),
            max_object,
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
    /// Only `\n` or `\r\n` is a line break: a `\r` alone is white space.
    fn line_break_after(&mut self, input: &[u8], i: &mut usize) -> bool {
        let mut k = *i;
        while k < input.len() && matches!(input[k], b' ' | b'\t') {
            k += 1;
        }
        self.awaiting_eol = Eol::No;
        match (input.get(k), input.get(k + 1)) {
            (None, _) => {
                *i = k;
                self.awaiting_eol = Eol::Any;
                false
            }
            (Some(b'\n'), _) => {
                *i = k + 1;
                true
            }
            (Some(b'\r'), Some(b'\n')) => {
                *i = k + 2;
                true
            }
            (Some(b'\r'), None) => {
                *i = k + 1;
                self.awaiting_eol = Eol::Lf;
                false
            }
            _ => {
                *i = k;
                false
            }
        }
    }

    fn reset(&mut self) {
        self.partial.clear();
        self.partial_complete = false;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.awaiting_eol = Eol::No;
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
            let mut frames = s.frames(c, max);
            while let Some(f) = frames.next_frame() {
                out.push(match f {
                    Frame::Object(o) => F::O(String::from_utf8_lossy(o).into_owned()),
                    Frame::LineBreak => F::Eol,
                    Frame::Garbage => F::Junk,
                    Frame::Oversized => F::Big,
                });
            }
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

    /// Only `\n` or `\r\n` ends a line: a `\r` alone, or one whose `\n`
    /// has not arrived yet, switches nothing.
    #[test]
    fn a_carriage_return_alone_is_not_a_line_break() {
        assert_eq!(run(&[b"{}\r"], 100), vec![o("{}")]);
        assert_eq!(run(&[b"{}\r", b"\n"], 100), vec![o("{}"), F::Eol]);
        assert_eq!(run(&[b"{} \r", b"{}"], 100), vec![o("{}"), o("{}")]);
        assert_eq!(run(&[b"{}\r{}\r\n"], 100), vec![o("{}"), F::Eol, o("{}")]);
        assert_eq!(run(&[b"{}", b"\r", b"\n"], 100), vec![o("{}"), F::Eol]);
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
        assert_eq!(
            s.frames(b"{}{}{\"a\"", 100).next_frame(),
            Some(Frame::Object(b"{}"))
        );
        // Nothing of the abandoned input was kept.
        assert_eq!(s.buffered(), 0);
        assert_eq!(
            s.frames(b"{}", 100).next_frame(),
            Some(Frame::Object(b"{}"))
        );
    }

    #[test]
    fn an_object_completed_across_reads_is_handed_out_once() {
        let mut s = Splitter::new();
        assert_eq!(s.frames(b"{\"a\":", 100).next_frame(), None);
        assert_eq!(s.buffered(), 5);
        let mut frames = s.frames(b"1}\r\n{}", 100);
        assert_eq!(frames.next_frame(), Some(Frame::LineBreak));
        assert_eq!(frames.next_frame(), Some(Frame::Object(b"{\"a\":1}")));
        assert_eq!(frames.next_frame(), Some(Frame::Object(b"{}")));
        assert_eq!(frames.next_frame(), None);
        assert_eq!(s.buffered(), 0);
    }
}
