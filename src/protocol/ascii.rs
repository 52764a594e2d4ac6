//! Pure-ASCII JSON output, byte for byte what Python's `json.dumps` writes
//! by default (`ensure_ascii=True`), but compact.
//!
//! Clients in the wild read one byte at a time and decode each byte alone,
//! so a raw UTF-8 byte above 0x7F crashes them. serde_json escapes only `"`,
//! `\` and control characters; this formatter also escapes DEL and every
//! non-ASCII character as `\uXXXX` (a UTF-16 surrogate pair beyond U+FFFF),
//! with lowercase hex digits like Python.

use serde_json::ser::Formatter;
use std::io;

/// A compact serde_json formatter that never writes a byte above 0x7E
/// inside a string.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsciiFormatter;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_u16_escape<W: ?Sized + io::Write>(writer: &mut W, unit: u16) -> io::Result<()> {
    let buf = [
        b'\\',
        b'u',
        HEX[(unit >> 12) as usize & 0xF],
        HEX[(unit >> 8) as usize & 0xF],
        HEX[(unit >> 4) as usize & 0xF],
        HEX[unit as usize & 0xF],
    ];
    writer.write_all(&buf)
}

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        // Fast path: chat text is nearly always printable ASCII.
        if bytes.iter().all(|&b| b < 0x7F) {
            return writer.write_all(bytes);
        }
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if (ch as u32) < 0x7F {
                continue;
            }
            writer.write_all(&bytes[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write_u16_escape(writer, *unit)?;
            }
            start = i + ch.len_utf8();
        }
        writer.write_all(&bytes[start..])
    }
}

/// Bytes `c` takes inside a string written by [`AsciiFormatter`]: what
/// splitting text to fit a datagram counts, without encoding it.
pub fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 || c as u32 == 0x7f => 6,
        c if (c as u32) < 0x7f => 1,
        c if (c as u32) < 0x1_0000 => 6,
        _ => 12,
    }
}

/// Serializes `value` as compact pure-ASCII JSON, appending to `out`.
pub fn to_writer<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, AsciiFormatter);
    // Writing to a Vec cannot fail, and our message types have only
    // string keys, so serialization cannot fail either.
    value
        .serialize(&mut ser)
        .expect("serializing a message into memory cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(s: &str) -> String {
        let mut out = Vec::new();
        to_writer(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_python_json_dumps() {
        // Expected strings are what CPython 3.11 json.dumps prints.
        assert_eq!(enc("hi"), r#""hi""#);
        assert_eq!(enc("é"), r#""\u00e9""#);
        assert_eq!(enc("日本"), r#""\u65e5\u672c""#);
        assert_eq!(enc("😀"), r#""\ud83d\ude00""#);
        assert_eq!(enc("a\"b\\c\n\r\t\u{8}\u{c}"), r#""a\"b\\c\n\r\t\b\f""#);
        assert_eq!(enc("\u{1}\u{1f}"), r#""\u0001\u001f""#);
        assert_eq!(enc("\u{7f}"), r#""\u007f""#);
        assert_eq!(enc("x/y <z>"), r#""x/y <z>""#);
    }

    #[test]
    fn escaped_len_is_what_the_formatter_writes() {
        for c in (0u32..0x2_0000)
            .chain([0x10_FFFF])
            .filter_map(char::from_u32)
        {
            let written = enc(&c.to_string()).len() - 2; // less the quotes
            assert_eq!(escaped_len(c), written, "{c:?}");
        }
    }

    #[test]
    fn output_is_ascii_for_any_text() {
        let s: String = (0u32..0x2_0000).filter_map(char::from_u32).collect();
        let out = enc(&s);
        assert!(out.bytes().all(|b| (0x20..0x7F).contains(&b)));
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, s);
    }
}
