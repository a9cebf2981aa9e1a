//! Writing IMAP responses: strings as atoms, quoted strings or literals as their bytes
//! require (RFC 9051 4.3), and the date format of INTERNALDATE.

/// A string: quoted when it can be, else a literal (CR, LF, NUL, 8-bit or long).
pub(crate) fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|b| *b >= 0x20 && *b < 0x7f);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// An astring: a bare atom when the bytes allow one (RFC 9051 ASTRING-CHAR), else a string.
pub(crate) fn astring(out: &mut Vec<u8>, s: &[u8]) {
    let atom = !s.is_empty()
        && s.iter()
            .all(|b| *b > 0x20 && *b < 0x7f && !b"(){%*\"\\".contains(b));
    if atom {
        out.extend_from_slice(s);
    } else {
        string(out, s);
    }
}

/// A literal. A literal may not hold NUL (RFC 9051 4.3, CHAR8): each becomes 0x80, as
/// Dovecot does, so sizes stay true; BINARY's literal8 carries them as they are.
pub(crate) fn literal(out: &mut Vec<u8>, s: &[u8]) {
    let start = out.len() + literal_head(out, s.len());
    out.extend_from_slice(s);
    if s.contains(&0) {
        out[start..]
            .iter_mut()
            .filter(|b| **b == 0)
            .for_each(|b| *b = 0x80);
    }
}

/// `{n}` and its CRLF; how many bytes it wrote.
fn literal_head(out: &mut Vec<u8>, n: usize) -> usize {
    let head = format!("{{{n}}}\r\n");
    out.extend_from_slice(head.as_bytes());
    head.len()
}

fn mutf7_engine() -> base64::engine::GeneralPurpose {
    use base64::engine::{DecodePaddingMode, GeneralPurposeConfig};
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::IMAP_MUTF7,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

/// A UTF-8 mailbox name in modified UTF-7 (RFC 3501 5.1.3): printable ASCII as it is ("&"
/// as "&-"), every other run as "&" + base64 (with "," for "/") of its UTF-16 + "-".
pub(crate) fn mutf7_encode(name: &str) -> String {
    use base64::Engine;
    let engine = mutf7_engine();
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u8> = Vec::new();
    let flush = |out: &mut String, run: &mut Vec<u8>| {
        if !run.is_empty() {
            out.push('&');
            out.push_str(&engine.encode(&*run));
            out.push('-');
            run.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut run);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                run.extend_from_slice(&u.to_be_bytes());
            }
        }
    }
    flush(&mut out, &mut run);
    out
}

/// The UTF-8 name of a modified UTF-7 one; None if it is not valid modified UTF-7. Bytes
/// outside printable ASCII pass as they are (clients that send UTF-8 regardless).
pub(crate) fn mutf7_decode(name: &str) -> Option<String> {
    use base64::Engine;
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at + 1..].find('-')? + at + 1;
        let b64 = &rest[at + 1..end];
        rest = &rest[end + 1..];
        if b64.is_empty() {
            out.push('&');
            continue;
        }
        let bytes = mutf7_engine().decode(b64).ok()?;
        if bytes.len() % 2 != 0 {
            return None;
        }
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let text = String::from_utf16(&units).ok()?;
        // Printable ASCII must not be encoded (RFC 3501 5.1.3).
        if text.chars().any(|c| (' '..='~').contains(&c)) {
            return None;
        }
        out.push_str(&text);
    }
    out.push_str(rest);
    Some(out)
}

/// Decoded content (FETCH BINARY): a literal8 (RFC 3516, `~{n}`) when it holds a NUL, which
/// an ordinary literal may not carry.
pub(crate) fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    if s.contains(&0) {
        out.push(b'~');
    }
    literal_head(out, s.len());
    out.extend_from_slice(s);
}

/// INTERNALDATE: "22-Nov-2026 10:00:00 +0000" (RFC 9051 date-time).
pub(crate) fn internal_date(ts: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:2}-{}-{year} {:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn literals_carry_no_nul() {
        let mut out = Vec::new();
        super::literal(&mut out, b"a\0b");
        assert_eq!(out, b"{3}\r\na\x80b");
        let mut out = Vec::new();
        super::literal8(&mut out, b"a\0b");
        assert!(out.ends_with(b"a\0b"));
    }

    #[test]
    fn strings_and_dates() {
        let mut o = Vec::new();
        super::string(&mut o, b"a \"b\" \\c");
        assert_eq!(o, b"\"a \\\"b\\\" \\\\c\"");
        o.clear();
        super::string(&mut o, b"line\r\nnext");
        assert_eq!(o, b"{10}\r\nline\r\nnext");
        o.clear();
        super::astring(&mut o, b"bob");
        o.push(b' ');
        super::astring(&mut o, b"a b");
        assert_eq!(o, b"bob \"a b\"");
        assert_eq!(super::internal_date(0), " 1-Jan-1970 00:00:00 +0000");
        assert_eq!(
            super::internal_date(1_795_314_848),
            "22-Nov-2026 02:34:08 +0000"
        );
    }

    #[test]
    fn modified_utf7() {
        use super::{mutf7_decode, mutf7_encode};
        for (utf8, wire) in [
            ("INBOX", "INBOX"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
            ("Tom & Jerry", "Tom &- Jerry"),
            ("日本語/メモ", "&ZeVnLIqe-/&MOEw4g-"),
            ("😀", "&2D3eAA-"),
        ] {
            assert_eq!(mutf7_encode(utf8), wire, "{utf8}");
            assert_eq!(mutf7_decode(wire).as_deref(), Some(utf8), "{wire}");
        }
        // Not closed, bad base64, odd length, encoded ASCII.
        for bad in ["&AGE", "&A!E-", "&AA-", "&AGE-"] {
            assert_eq!(mutf7_decode(bad), None, "{bad}");
        }
        assert_eq!(mutf7_decode("Café").as_deref(), Some("Café"));
    }
}
