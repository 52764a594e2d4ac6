//! One client connection's protocol session, with no I/O: the rules for
//! what a client sends (objects, line breaks, garbage, size and
//! unparsable-run limits) and how replies are framed for it (the bare /
//! newline mirror of docs/PROTOCOL.md, "Framing").
//!
//! It is driven from any byte transport, in the manner of quinn-proto's
//! `Connection`:
//! - bytes in: for each batch of received bytes, start a fresh
//!   [`Cursor`] and call [`Session::poll_input`] with the same bytes until
//!   it returns `None`, acting on each [`Input`] before asking for the next
//!   (replies to it may be framed in between). A request may close the
//!   connection: then stop asking; the rest of the bytes is dropped;
//! - replies out: every encoded reply (ending in `\n`) is sent as its first
//!   [`Session::framed_len`] bytes, so one encoding serves bare and
//!   newline clients alike.

use crate::protocol::{decode_request, Cursor, DecodeError, Frame, Reply, Request, Splitter};

/// The limits a session enforces, shared by every session of a server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest object a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Unparsable inputs in a row before the connection is cut.
    pub max_unparsable: u32,
}

/// How a session frames replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Bare until the client ends an object with a line break, then
    /// newline.
    Mirror,
    /// Every reply ends with `\n`.
    Newline,
    /// Replies back-to-back, never a `\n`.
    Bare,
}

/// What the client's bytes amount to, in order.
#[derive(Debug)]
pub enum Input {
    /// A request (or why it could not be decoded) for the chat to handle.
    Request(Result<Request, DecodeError>),
    /// Send this reply to the client; nothing else happens.
    Answer(Reply),
    /// Send one `\n` now: the client switched to newline framing after
    /// bare replies went out, and a line reader waits for its line to end.
    EndLine,
    /// Close the connection, telling the client why; the session reads
    /// nothing more.
    Cut(Cut),
}

/// Why a session cuts its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// One object over [`Limits::max_message_bytes`].
    Oversized { limit: usize },
    /// [`Limits::max_unparsable`] unparsable inputs in a row.
    Unparsable { count: u32 },
}

impl Cut {
    /// The `Disconnect` message that tells the client why.
    pub fn message(&self) -> String {
        match self {
            Cut::Oversized { limit } => {
                format!("Message too large: the limit is {limit} bytes.")
            }
            Cut::Unparsable { .. } => "Too many unparsable messages.".to_string(),
        }
    }
}

/// The reply to bytes that are not a JSON object.
pub const NOT_AN_OBJECT: &str = "Invalid JSON: expected a JSON object.";

#[derive(Debug)]
pub struct Session {
    splitter: Splitter,
    /// Replies end in `\n` (newline framing) rather than back-to-back.
    newline: bool,
    /// Framing still follows the client.
    mirror: bool,
    /// Some reply went out bare: a switch to newline owes one `\n`.
    sent_bare: bool,
    /// Unparsable inputs in a row.
    unparsable: u32,
    /// A cut was decided; input is ignored from then on.
    cut: bool,
}

impl Session {
    pub fn new(framing: Framing) -> Session {
        Session {
            splitter: Splitter::new(),
            newline: framing == Framing::Newline,
            mirror: framing == Framing::Mirror,
            sent_bare: false,
            unparsable: 0,
            cut: false,
        }
    }

    /// The next input in `bytes` (see the module doc), or `None` when
    /// they are used up or the session has cut its connection.
    pub fn poll_input(&mut self, bytes: &[u8], at: &mut Cursor, limits: &Limits) -> Option<Input> {
        loop {
            if self.cut {
                return None;
            }
            // Checked before each frame and once after the last, so the
            // reply to the input that completes a run goes out first.
            if self.unparsable >= limits.max_unparsable {
                return Some(self.cut(Cut::Unparsable {
                    count: self.unparsable,
                }));
            }
            match self
                .splitter
                .next_frame(bytes, at, limits.max_message_bytes)?
            {
                Frame::Object(object) => {
                    let request = decode_request(object);
                    match &request {
                        Err(DecodeError::Malformed(_)) => self.unparsable += 1,
                        _ => self.unparsable = 0,
                    }
                    return Some(Input::Request(request));
                }
                Frame::LineBreak => {
                    if self.mirror && !self.newline {
                        self.newline = true;
                        if self.sent_bare {
                            return Some(Input::EndLine);
                        }
                    }
                }
                Frame::Garbage => {
                    self.unparsable += 1;
                    return Some(Input::Answer(Reply::server_message(NOT_AN_OBJECT)));
                }
                Frame::Oversized => {
                    return Some(self.cut(Cut::Oversized {
                        limit: limits.max_message_bytes,
                    }))
                }
            }
        }
    }

    fn cut(&mut self, why: Cut) -> Input {
        self.cut = true;
        Input::Cut(why)
    }

    /// How many bytes of an encoded reply (ending in `\n`) this client is
    /// sent; records that a bare reply went out.
    pub fn framed_len(&mut self, line_len: usize) -> usize {
        if self.newline {
            line_len
        } else {
            self.sent_bare = true;
            line_len - 1
        }
    }

    /// Whether replies currently end in `\n`.
    pub fn is_newline(&self) -> bool {
        self.newline
    }

    /// Bytes held for an object that has not ended yet.
    pub fn buffered(&self) -> usize {
        self.splitter.buffered()
    }
}

#[cfg(test)]
mod tests;
