//! WebSocket (RFC 6455) framing for mp1d's browser users, with no I/O: the
//! opening handshake's accept key, a decoder that turns received bytes
//! into messages and control events (enforcing the rules a server must:
//! masked client frames, no reserved bits, control frames small and whole,
//! fragments in order, UTF-8 text, a size limit), and the header of the
//! unmasked frames a server sends. Each text message carries one MP1 JSON
//! object; the WebSocket layer only frames bytes.
//!
//! Written here rather than taken from tungstenite: its frame parser would
//! bring a random-number generator and four more crates into the server
//! for a hundred lines of header arithmetic, tested below against the
//! RFC's own examples.

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &str) -> String {
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut sha = sha1_smol::Sha1::new();
    sha.update(client_key.trim().as_bytes());
    sha.update(GUID.as_bytes());
    base64(&sha.digest().bytes())
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Close codes (RFC 6455, 7.4.1).
pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_PROTOCOL: u16 = 1002;
pub const CLOSE_UNSUPPORTED: u16 = 1003;
pub const CLOSE_INVALID_DATA: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// What the client's bytes amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole text message (one MP1 object).
    Text(Vec<u8>),
    /// Answer with a pong carrying the same bytes.
    Ping(Vec<u8>),
    /// The client closes, with this code (1005 if it gave none).
    Close(u16),
    /// The client broke the rules: close with this code and reason.
    Fail(u16, &'static str),
}

/// Received bytes in, events out. Work is linear in the bytes: frames
/// are read from an offset, and the buffer is compacted once per feed,
/// not once per frame.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already decoded.
    consumed: usize,
    /// A fragmented text message being put together.
    message: Option<Vec<u8>>,
    /// Bytes its frames took on the wire so far, headers included: what
    /// the size limit counts, so that a message of empty fragments that
    /// never ends is bounded too.
    message_wire: usize,
    /// A failure or close was reported: nothing more is read.
    done: bool,
}

impl Decoder {
    /// Adds received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.done {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held for frames not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed + self.message.as_ref().map_or(0, Vec::len)
    }

    /// The next event; `None` until more bytes arrive. A message or frame
    /// over `max_message` bytes fails the connection.
    pub fn next_event(&mut self, max_message: usize) -> Option<Event> {
        loop {
            if self.done {
                return None;
            }
            let frame = match parse_frame(&self.buf[self.consumed..], max_message) {
                Parsed::More => return None,
                Parsed::Bad(code, why) => return Some(self.fail(code, why)),
                Parsed::Frame(f) => f,
            };
            let (fin, opcode, payload) = (frame.fin, frame.opcode, frame.payload);
            self.consumed += frame.len;
            match opcode {
                OP_PING => return Some(Event::Ping(payload)),
                OP_PONG => continue,
                OP_CLOSE => {
                    self.done = true;
                    let code = match payload.len() {
                        0 => 1005,
                        1 => return Some(self.fail(CLOSE_PROTOCOL, "a one-byte close payload")),
                        _ => u16::from_be_bytes([payload[0], payload[1]]),
                    };
                    if std::str::from_utf8(&payload[payload.len().min(2)..]).is_err() {
                        return Some(self.fail(CLOSE_INVALID_DATA, "a close reason not UTF-8"));
                    }
                    return Some(Event::Close(code));
                }
                OP_BINARY => {
                    return Some(self.fail(CLOSE_UNSUPPORTED, "binary messages are not MP1"))
                }
                OP_TEXT if self.message.is_some() => {
                    return Some(self.fail(CLOSE_PROTOCOL, "a new message inside a fragmented one"))
                }
                OP_CONTINUATION if self.message.is_none() => {
                    return Some(self.fail(CLOSE_PROTOCOL, "a continuation with no message"))
                }
                _ => {}
            }
            let mut message = self.message.take().unwrap_or_default();
            if message.is_empty() {
                self.message_wire = 0;
            }
            self.message_wire += frame.len;
            if message.len() + payload.len() > max_message {
                return Some(self.fail(CLOSE_TOO_BIG, "message over the size limit"));
            }
            if !fin && self.message_wire > max_message {
                return Some(self.fail(CLOSE_TOO_BIG, "a message in too many fragments"));
            }
            message.extend_from_slice(&payload);
            if !fin {
                self.message = Some(message);
                continue;
            }
            if std::str::from_utf8(&message).is_err() {
                return Some(self.fail(CLOSE_INVALID_DATA, "text that is not UTF-8"));
            }
            return Some(Event::Text(message));
        }
    }

    fn fail(&mut self, code: u16, why: &'static str) -> Event {
        self.done = true;
        self.buf = Vec::new();
        self.consumed = 0;
        self.message = None;
        Event::Fail(code, why)
    }
}

struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
    /// Bytes of the frame, header included.
    len: usize,
}

enum Parsed {
    More,
    Frame(Frame),
    Bad(u16, &'static str),
}

/// One client frame from the front of `buf`, unmasked.
fn parse_frame(buf: &[u8], max_message: usize) -> Parsed {
    if buf.len() < 2 {
        return Parsed::More;
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    if b0 & 0x70 != 0 {
        return Parsed::Bad(CLOSE_PROTOCOL, "reserved bits set");
    }
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Parsed::Bad(CLOSE_PROTOCOL, "unknown opcode");
    }
    if b1 & 0x80 == 0 {
        return Parsed::Bad(CLOSE_PROTOCOL, "client frames must be masked");
    }
    let control = opcode >= OP_CLOSE;
    let (len, mut at) = match b1 & 0x7F {
        126 if buf.len() < 4 => return Parsed::More,
        126 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() < 10 => return Parsed::More,
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        n => (u64::from(n), 2),
    };
    if control && (len > 125 || !fin) {
        return Parsed::Bad(CLOSE_PROTOCOL, "a control frame too long or fragmented");
    }
    if len > max_message as u64 {
        return Parsed::Bad(CLOSE_TOO_BIG, "frame over the size limit");
    }
    let len = len as usize;
    if buf.len() < at + 4 + len {
        return Parsed::More;
    }
    let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    at += 4;
    let payload = buf[at..at + len]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Parsed::Frame(Frame {
        fin,
        opcode,
        payload,
        len: at + len,
    })
}

/// The header of an unmasked, final server frame of `len` bytes.
pub fn frame_header(opcode: u8, len: usize, out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// A whole server frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    frame_header(opcode, payload.len(), &mut out);
    out.extend_from_slice(payload);
    out
}

/// Appends a client's frame: masked with `mask`, as browsers (and
/// loadgen, and the tests) send them.
pub fn masked_frame(opcode: u8, fin: bool, mask: [u8; 4], payload: &[u8], out: &mut Vec<u8>) {
    out.push(u8::from(fin) << 7 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// A close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload.truncate(125);
    frame(OP_CLOSE, &payload)
}

/// A frame a server sent, as a client reads it: where its payload lies in
/// the bytes it was decoded from, and how many bytes the whole frame took.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: std::ops::Range<usize>,
    pub len: usize,
}

/// The server frame at the front of `buf`, for clients (loadgen, the
/// tests): `Ok(None)` until all of it has arrived. Nothing is copied: the
/// payload is a range of `buf`. A masked frame is an error, since a server
/// must never send one (RFC 6455, 5.1).
pub fn decode_server_frame(buf: &[u8]) -> Result<Option<ServerFrame>, &'static str> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err("a masked frame from the server");
    }
    let Some((len, at)) = server_payload_len(b1 & 0x7F, &buf[2..]) else {
        return Ok(None);
    };
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| len.checked_add(at))
        .ok_or("a frame longer than memory")?;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some(ServerFrame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        payload: at..end,
        len: end,
    }))
}

/// A frame's payload length from its 7-bit field and the extended length
/// bytes after it (`rest`), and where the payload starts; `None` until the
/// extended length has arrived.
fn server_payload_len(short: u8, rest: &[u8]) -> Option<(u64, usize)> {
    match short {
        126 => Some((
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            4,
        )),
        127 => Some((u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 10)),
        n => Some((u64::from(n), 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, with the RFC's example mask.
    fn client(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        masked_frame(opcode, fin, [0x37, 0xfa, 0x21, 0x3d], payload, &mut out);
        out
    }

    fn events(bytes: &[u8], max: usize) -> Vec<Event> {
        let mut d = Decoder::default();
        d.feed(bytes);
        std::iter::from_fn(|| d.next_event(max)).collect()
    }

    /// Empty continuations of a message that never ends cost the size
    /// limit like its bytes would: the connection fails, it is not kept
    /// decoding fragments forever.
    #[test]
    fn a_message_of_endless_empty_fragments_fails() {
        let mut bytes = client(OP_TEXT, false, b"{");
        for _ in 0..100_000 {
            bytes.extend(client(OP_CONTINUATION, false, b""));
        }
        let got = events(&bytes, 65536);
        assert_eq!(
            got,
            vec![Event::Fail(
                CLOSE_TOO_BIG,
                "a message in too many fragments"
            )]
        );
        // A message in a few fragments is fine.
        let mut few = client(OP_TEXT, false, b"{\"a\"");
        few.extend(client(OP_CONTINUATION, false, b":"));
        few.extend(client(OP_CONTINUATION, true, b"1}"));
        assert_eq!(
            events(&few, 65536),
            vec![Event::Text(b"{\"a\":1}".to_vec())]
        );
    }

    /// Many tiny frames in one read are decoded from an offset, and what
    /// was decoded is dropped at the next feed.
    #[test]
    fn tiny_frames_in_one_read_are_all_decoded() {
        let mut d = Decoder::default();
        let pong = client(OP_PONG, true, b"");
        d.feed(&pong.repeat(200_000));
        assert_eq!(d.next_event(65536), None, "pongs are dropped");
        assert_eq!(d.buffered(), 0);
        d.feed(&client(OP_PING, true, b"x"));
        assert_eq!(d.buf.len(), 7, "compacted once, at the feed");
        assert_eq!(d.next_event(65536), Some(Event::Ping(b"x".to_vec())));
    }

    #[test]
    fn rfc_6455_examples() {
        // 4.1's key and 5.7's masked "Hello".
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(events(&hello, 100), vec![Event::Text(b"Hello".to_vec())]);
        // Unmasked frames from the server side, as 5.7 shows them.
        assert_eq!(
            frame(OP_TEXT, b"Hello"),
            [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']
        );
        let mut h = Vec::new();
        frame_header(OP_TEXT, 256, &mut h);
        assert_eq!(h, [0x81, 0x7E, 0x01, 0x00]);
        h.clear();
        frame_header(OP_TEXT, 65536, &mut h);
        assert_eq!(h, [0x81, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn fragments_with_a_ping_between_and_bytes_one_at_a_time() {
        let mut stream = client(OP_TEXT, false, b"{\"mtp\":");
        stream.extend(client(OP_PING, true, b"hb"));
        stream.extend(client(OP_CONTINUATION, true, b"\"Login\"}"));
        stream.extend(client(OP_TEXT, true, &vec![b'x'; 300]));
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in &stream {
            d.feed(&[*b]);
            got.extend(std::iter::from_fn(|| d.next_event(1000)));
        }
        assert_eq!(
            got,
            vec![
                Event::Ping(b"hb".to_vec()),
                Event::Text(b"{\"mtp\":\"Login\"}".to_vec()),
                Event::Text(vec![b'x'; 300]),
            ]
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn rule_breakers_fail_with_the_right_code() {
        let unmasked = frame(OP_TEXT, b"hi");
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (unmasked, CLOSE_PROTOCOL),
            (client(OP_BINARY, true, b"\x00"), CLOSE_UNSUPPORTED),
            (client(0x3, true, b""), CLOSE_PROTOCOL),
            (client(OP_PING, false, b""), CLOSE_PROTOCOL),
            (client(OP_PING, true, &[0u8; 126]), CLOSE_PROTOCOL),
            (client(OP_CONTINUATION, true, b"x"), CLOSE_PROTOCOL),
            (client(OP_TEXT, true, &[0xff, 0xfe]), CLOSE_INVALID_DATA),
            (client(OP_TEXT, true, &[b'a'; 2000]), CLOSE_TOO_BIG),
            (
                {
                    let mut f = client(OP_TEXT, true, b"x");
                    f[0] |= 0x40; // RSV1
                    f
                },
                CLOSE_PROTOCOL,
            ),
            (
                {
                    let mut f = client(OP_TEXT, false, &[b'a'; 600]);
                    f.extend(client(OP_CONTINUATION, true, &[b'a'; 600]));
                    f
                },
                CLOSE_TOO_BIG,
            ),
            (
                {
                    let mut f = client(OP_TEXT, false, b"a");
                    f.extend(client(OP_TEXT, true, b"b"));
                    f
                },
                CLOSE_PROTOCOL,
            ),
        ];
        for (bytes, code) in cases {
            match events(&bytes, 1000).as_slice() {
                [Event::Fail(c, _)] => assert_eq!(*c, code, "{bytes:?}"),
                other => panic!("{bytes:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn close_frames() {
        let mut payload = 1001u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"going away");
        assert_eq!(
            events(&client(OP_CLOSE, true, &payload), 100),
            vec![Event::Close(1001)]
        );
        assert_eq!(
            events(&client(OP_CLOSE, true, b""), 100),
            vec![Event::Close(1005)]
        );
        // Nothing after a close is read.
        let mut two = client(OP_CLOSE, true, b"");
        two.extend(client(OP_TEXT, true, b"late"));
        assert_eq!(events(&two, 100), vec![Event::Close(1005)]);
        assert_eq!(&close_frame(1000, "bye")[..4], &[0x88, 0x05, 0x03, 0xE8]);
    }
}

#[cfg(test)]
mod client_tests {
    use super::*;

    #[test]
    fn server_frames_decode_whole_and_not_before() {
        // RFC 6455 5.7's unmasked "Hello".
        let hello = [0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
        let f = decode_server_frame(&hello).unwrap().unwrap();
        assert_eq!(
            f,
            ServerFrame {
                fin: true,
                opcode: OP_TEXT,
                payload: 2..7,
                len: 7
            }
        );
        // Each length encoding (7-bit, 16-bit, 64-bit), with a second
        // frame behind it that must not be taken.
        for n in [0, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut bytes = frame(OP_BINARY, &payload);
            let whole = bytes.len();
            bytes.extend(frame(OP_PING, b"next"));
            let f = decode_server_frame(&bytes).unwrap().unwrap();
            assert_eq!((f.opcode, f.len), (OP_BINARY, whole), "{n}");
            assert_eq!(&bytes[f.payload], &payload[..], "{n}");
            for cut in [0, 1, 2, 3, 9, whole - 1] {
                if cut < whole {
                    assert_eq!(decode_server_frame(&bytes[..cut]), Ok(None), "{n} at {cut}");
                }
            }
        }
    }

    #[test]
    fn a_masked_server_frame_is_refused() {
        let mut masked = Vec::new();
        masked_frame(OP_TEXT, true, [1, 2, 3, 4], b"hi", &mut masked);
        assert!(decode_server_frame(&masked).is_err());
        // A fragment's first frame says it is not the last.
        let mut first = frame(OP_TEXT, b"a");
        first[0] &= 0x7F;
        assert!(!decode_server_frame(&first).unwrap().unwrap().fin);
    }
}
