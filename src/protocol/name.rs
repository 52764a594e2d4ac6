//! The rule for user names, shared by the server and peers.

/// Most Unicode scalar values a name may have.
pub const MAX_NAME_CHARS: usize = 32;

/// 1 to 32 Unicode scalar values, none of them white space or a control
/// character (docs/PROTOCOL.md). Names are case-sensitive.
pub fn is_valid_name(name: &str) -> bool {
    let mut n = 0;
    for c in name.chars() {
        if c.is_whitespace() || c.is_control() {
            return false;
        }
        n += 1;
        if n > MAX_NAME_CHARS {
            return false;
        }
    }
    n > 0
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
    }
}
