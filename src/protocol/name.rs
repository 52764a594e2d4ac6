//! The rule for user names, shared by the server and peers.

/// Most Unicode scalar values a name may have.
pub const MAX_NAME_CHARS: usize = 32;

/// 1 to 32 Unicode scalar values, none of them white space, a control
/// character or a format character (docs/PROTOCOL.md), so that no name is
/// invisible or displays as another. Names are case-sensitive.
pub fn is_valid_name(name: &str) -> bool {
    let mut n = 0;
    for c in name.chars() {
        if c.is_whitespace() || c.is_control() || is_format(c) {
            return false;
        }
        n += 1;
        if n > MAX_NAME_CHARS {
            return false;
        }
    }
    n > 0
}

/// Unicode general category Cf (format characters: soft hyphen, zero-width
/// spaces and joiners, bidirectional marks, overrides and isolates, the
/// byte-order mark, interlinear annotation, tags...), Unicode 15.1.
fn is_format(c: char) -> bool {
    const CF: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = c as u32;
    CF.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("José_日本😀"));
        assert!(is_valid_name(&"x".repeat(32)));
        assert!(!is_valid_name(&"x".repeat(33)));
        assert!(is_valid_name(&"é".repeat(32)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a\u{a0}b"));
        assert!(!is_valid_name("a\u{7}"));
        assert!(!is_valid_name("tab\t"));
        // Format characters: invisible, or displaying as something else.
        assert!(!is_valid_name("\u{200b}"));
        assert!(!is_valid_name("\u{202e}gnp.exe"));
        assert!(!is_valid_name("\u{feff}"));
        assert!(!is_valid_name("a\u{200d}b"));
        assert!(!is_valid_name("soft\u{ad}hyphen"));
        assert!(!is_valid_name("tag\u{e0041}"));
        // Letters and marks that merely look unusual stay valid.
        assert!(is_valid_name("Zoë"));
        assert!(is_valid_name("ﷺ"));
    }
}
