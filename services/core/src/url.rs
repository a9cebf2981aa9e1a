//! Percent-decoding of URL parts (RFC 3986 2.1), one way for every service, on the
//! `percent-encoding` crate. A hand-written decoder once sliced a `%aé` through a UTF-8
//! character and panicked (issue 17, defect 11).

use percent_encoding::percent_decode_str;

/// A path segment, percent-decoded; `None` if a `%` is not followed by two hex digits or
/// the bytes it gives are not UTF-8 (the caller answers 400).
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let well_formed = b.iter().enumerate().all(|(i, c)| {
        *c != b'%'
            || b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// A value of an `application/x-www-form-urlencoded` query, where `+` is a space;
/// invalid UTF-8 is replaced rather than refused.
pub fn decode_form(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_never_panics() {
        assert_eq!(decode("Sent%20Items").as_deref(), Some("Sent Items"));
        assert_eq!(decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(decode("%aé"), None);
        assert_eq!(decode("%é"), None);
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%FF"), None);
        assert_eq!(decode("%"), None);
        assert_eq!(decode_form("a+b%2Bc"), "a b+c");
    }
}
