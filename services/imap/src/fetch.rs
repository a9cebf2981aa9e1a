//! The parts of a message FETCH returns: whole, header, text, chosen header fields.

/// Where the header section ends (after its blank line).
pub(crate) fn header_end(msg: &[u8]) -> usize {
    msg.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(msg.len(), |p| p + 4)
}

/// The header fields named (or all but them, when `not`), with the blank line after.
pub(crate) fn header_fields(msg: &[u8], names: &[Vec<u8>], not: bool) -> Vec<u8> {
    let head = &msg[..header_end(msg)];
    let mut out = Vec::new();
    let mut keep = false;
    for line in head.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" {
            break;
        }
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            let name = line.split(|b| *b == b':').next().unwrap_or(b"");
            let listed = names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.trim_ascii()));
            keep = listed != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `<origin.length>` of a section (RFC 9051 6.4.5).
pub(crate) fn partial(data: &[u8], origin: u32, length: u32) -> &[u8] {
    let start = (origin as usize).min(data.len());
    let end = start.saturating_add(length as usize).min(data.len());
    &data[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"From: a@example.com\r\nSubject: long\r\n folded\r\nTo: b@example.com\r\n\r\nbody\r\n";

    #[test]
    fn sections() {
        assert_eq!(&MSG[header_end(MSG)..], b"body\r\n");
        assert_eq!(
            header_fields(MSG, &[b"subject".to_vec()], false),
            b"Subject: long\r\n folded\r\n\r\n"
        );
        assert_eq!(
            header_fields(MSG, &[b"SUBJECT".to_vec(), b"to".to_vec()], true),
            b"From: a@example.com\r\n\r\n"
        );
        assert_eq!(partial(b"0123456789", 2, 3), b"234");
        assert_eq!(partial(b"0123", 10, 3), b"");
    }
}
