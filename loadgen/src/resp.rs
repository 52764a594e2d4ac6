//! Just enough RESP2 (the Redis protocol) to drive Redis pub/sub as the
//! baseline mp1d is compared with: commands out, and from what comes back,
//! the `message` pushes, the `subscribe` confirmations and errors.

/// Appends `args` as one RESP command (an array of bulk strings).
pub fn command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One reply or push, as far as loadgen cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// `message` push: the payload published on the channel.
    Message(&'a [u8]),
    /// `subscribe` confirmation.
    Subscribed,
    /// An error reply.
    Error(String),
    /// Anything else (PUBLISH's receiver count, other pushes).
    Other,
}

/// Reads the value at the front of `buf`: `Ok(None)` until all of it has
/// arrived, then the value and the bytes it took.
pub fn next(buf: &[u8]) -> Result<Option<(Value<'_>, usize)>, String> {
    let Some((head, mut at)) = line(buf, 0) else {
        return Ok(None);
    };
    let (kind, rest) = head.split_first().ok_or("empty RESP line")?;
    match kind {
        b'+' | b':' => Ok(Some((Value::Other, at))),
        b'-' => {
            let text = String::from_utf8_lossy(rest).into_owned();
            Ok(Some((Value::Error(text), at)))
        }
        b'$' => match bulk(buf, 0)? {
            Some((_, end)) => Ok(Some((Value::Other, end))),
            None => Ok(None),
        },
        b'*' => {
            let n = number(rest)?;
            // Pushes are [kind, channel, payload-or-count].
            let mut items: [&[u8]; 3] = [&[]; 3];
            for i in 0..n.max(0) as usize {
                let Some((item, end)) = bulk(buf, at)? else {
                    return Ok(None);
                };
                if let Some(slot) = items.get_mut(i) {
                    *slot = item;
                }
                at = end;
            }
            let value = match items[0] {
                b"message" => Value::Message(items[2]),
                b"subscribe" => Value::Subscribed,
                _ => Value::Other,
            };
            Ok(Some((value, at)))
        }
        _ => Err(format!("not RESP: {:?}", String::from_utf8_lossy(head))),
    }
}

/// The line starting at `from` (without its CRLF) and the index after it.
fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let end = buf[from..].windows(2).position(|w| w == b"\r\n")? + from;
    Some((&buf[from..end], end + 2))
}

/// A bulk string (or an integer, inside a push) starting at `from`.
fn bulk(buf: &[u8], from: usize) -> Result<Option<(&[u8], usize)>, String> {
    let Some((head, at)) = line(buf, from) else {
        return Ok(None);
    };
    match head.split_first() {
        Some((b'$', len)) => {
            let len = number(len)?;
            if len < 0 {
                return Ok(Some((&[], at)));
            }
            let end = at + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            Ok(Some((&buf[at..end], end + 2)))
        }
        Some((b':', digits)) => Ok(Some((digits, at))),
        _ => Err(format!(
            "expected a bulk string, got {:?}",
            String::from_utf8_lossy(head)
        )),
    }
}

fn number(digits: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad RESP length {:?}", String::from_utf8_lossy(digits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&[b"PUBLISH", b"mp1", b"hi"], &mut out);
        assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$3\r\nmp1\r\n$2\r\nhi\r\n");
    }

    #[test]
    fn pushes_and_replies_byte_by_byte() {
        let stream: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$3\r\nmp1\r\n:1\r\n\
            *3\r\n$7\r\nmessage\r\n$3\r\nmp1\r\n$5\r\na\r\nb!\r\n:3\r\n-ERR no\r\n";
        let mut got = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            // Every strict prefix of a value is incomplete.
            let mut k = at + 1;
            let (value, used) = loop {
                match next(&stream[at..k]).unwrap() {
                    Some(v) => break v,
                    None => k += 1,
                }
            };
            assert_eq!(at + used, k, "a value ends where its last byte is");
            got.push(value);
            at += used;
        }
        assert_eq!(
            got,
            vec![
                Value::Subscribed,
                Value::Message(b"a\r\nb!"),
                Value::Other,
                Value::Error("ERR no".into()),
            ]
        );
        assert!(next(b"?what\r\n").is_err());
    }
}
