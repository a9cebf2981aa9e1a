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

pub(crate) fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Decoded content (FETCH BINARY): a literal8 (RFC 3516, `~{n}`) when it holds a NUL, which
/// an ordinary literal may not carry.
pub(crate) fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    if s.contains(&0) {
        out.push(b'~');
    }
    literal(out, s);
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
}
