//! Bounded strings. Everything an AP sends is cut to a documented size (docs/ingress.md), and
//! always on a UTF-8 character boundary: a cut in the middle of a character would make the
//! string invalid and the whole record unreadable further on.

/// Longest USB stick identifier kept, in bytes (the stream entry stores its length in a byte).
pub const MAX_USB_ID: usize = 255;
/// Longest AP name, hardware type, software version or address kept, in bytes.
pub const MAX_AP_FIELD: usize = 128;
/// Most USB sticks taken from one health report (Aruba APs have one or two USB ports).
pub const MAX_USB_PER_REPORT: usize = 8;
/// Longest access token accepted, in bytes (issued tokens are 64 hex digits).
pub const MAX_TOKEN: usize = 512;

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Cuts `s` in place to at most `max` bytes, on a character boundary; true if it was cut.
pub fn cut_in_place(s: &mut String, max: usize) -> bool {
    let len = cut(s, max).len();
    let was_cut = len < s.len();
    s.truncate(len);
    was_cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_before_a_multibyte_character() {
        // "é" is 2 bytes, "€" 3, "😀" 4.
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("a€", 3), "a");
        assert_eq!(cut("😀😀", 7), "😀");
        assert_eq!(cut("😀😀", 8), "😀😀");
        assert_eq!(cut("😀", 3), "");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn every_cut_is_valid_and_maximal() {
        let s = "x€é😀ab€";
        for max in 0..=s.len() + 1 {
            let c = cut(s, max);
            assert!(c.len() <= max && s.starts_with(c));
            // Nothing longer would have fitted.
            let next = s[c.len()..].chars().next().map_or(0, char::len_utf8);
            assert!(c.len() == s.len() || c.len() + next > max);
        }
    }

    #[test]
    fn in_place() {
        let mut s = "€€".to_string();
        assert!(cut_in_place(&mut s, 5));
        assert_eq!(s, "€");
        assert!(!cut_in_place(&mut s, 5));
    }
}
