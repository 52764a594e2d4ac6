//! The Redis protocol (RESP2) as loadgen's pub/sub baseline needs it, over
//! the codec the rest of mp1 uses: commands are encoded by the library's
//! cluster connection, replies and pushes decoded by `redis-protocol`
//! (ranges into the bytes read, nothing copied); all this adds is what
//! loadgen cares about in them.

use mp1::cluster::redis::Connection;
use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;

/// Appends `args` as one RESP command (an array of bulk strings).
pub fn command(args: &[&[u8]], out: &mut Vec<u8>) {
    let mut c = Connection::default();
    c.command((), args);
    out.extend_from_slice(c.output());
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
    let (frame, used) = match decode_range(buf) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("not RESP: {e:?}")),
    };
    let bytes = |r: &RangeFrame| match r {
        RangeFrame::BulkString((a, b)) => &buf[*a..*b],
        _ => &[],
    };
    let value = match &frame {
        RangeFrame::Error((a, b)) => Value::Error(String::from_utf8_lossy(&buf[*a..*b]).into()),
        // Pushes are [kind, channel, payload-or-count].
        RangeFrame::Array(items) => match (items.first().map(bytes), items.get(2)) {
            (Some(b"message"), Some(payload)) => Value::Message(bytes(payload)),
            (Some(b"subscribe"), _) => Value::Subscribed,
            _ => Value::Other,
        },
        _ => Value::Other,
    };
    Ok(Some((value, used)))
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
