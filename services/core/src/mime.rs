//! Parsing a stored or received message with bounds, for every protocol.
//!
//! mail-parser reads multipart trees iteratively, but each `message/rfc822` part (and each
//! part of a `multipart/digest`) becomes a nested `Message` value: 10,000 of them nested in
//! a 700 KB mail made a tree whose walking (and dropping) overflowed a worker's stack, and
//! 100,000 flat parts took seconds to describe. A message over these bounds is still kept
//! and served whole as bytes; it is described as one part (its headers, and its raw body as
//! plain text), as Dovecot does past its MIME limits.

use mail_parser::{HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Parses `raw` into its parts, or, past the bounds of `[limits]`, into its headers and its
/// raw body as one text part. `None` only where mail-parser finds no message at all.
///
/// - `mime_content_types` (1,000): `Content-Type` fields a message may hold to be parsed
///   into parts. Each level of nesting needs one, so this also bounds the depth of any walk
///   over the parts. Far above what a mail client writes (a digest of 100 forwarded
///   messages has about 300).
/// - `mime_parts` (10,000, Dovecot's default): parts a message may have to be described
///   part by part.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    let limits = crate::limits::get();
    if count_content_types(raw) <= limits.mime_content_types {
        // mail-parser's debug assertions fire on some malformed trees (found by the property
        // test below); release builds have none, but a parser's panic is never the caller's.
        match std::panic::catch_unwind(|| MessageParser::default().parse(raw)) {
            Ok(m) => {
                let m = m?;
                if m.parts.len() <= limits.mime_parts {
                    return Some(m);
                }
                log::info!(
                    "mime: a message of {} parts is described as one part",
                    m.parts.len()
                );
            }
            Err(_) => log::warn!("mime: the parser failed on a message: described as one part"),
        }
    } else {
        log::info!("mime: a message nested too deeply is described as one part");
    }
    opaque(raw)
}

/// Whether `m` was described as one opaque part by [`parse`].
pub fn is_opaque(m: &Message<'_>) -> bool {
    m.parts.len() == 1 && m.parts[0].is_encoding_problem && m.parts[0].content_type().is_none()
}

fn opaque(raw: &[u8]) -> Option<Message<'_>> {
    let mut m = MessageParser::default().parse_headers(raw)?;
    let body_at = header_end(raw);
    let headers = m
        .parts
        .first()
        .map(|p| p.headers.clone())
        .unwrap_or_default();
    m.parts.clear();
    m.parts.push(MessagePart {
        headers: headers
            .into_iter()
            .filter(|h| {
                !matches!(
                    h.name,
                    HeaderName::ContentType | HeaderName::ContentTransferEncoding
                )
            })
            .collect(),
        is_encoding_problem: true,
        encoding: mail_parser::Encoding::None,
        body: PartType::Text(String::from_utf8_lossy(&raw[body_at..])),
        offset_header: 0,
        offset_body: body_at as u32,
        offset_end: raw.len() as u32,
    });
    m.text_body = vec![0];
    m.html_body = vec![0];
    m.attachments.clear();
    Some(m)
}

/// Where the body starts: after the first empty line, else at the end.
fn header_end(raw: &[u8]) -> usize {
    let mut at_line_start = true;
    for (i, &b) in raw.iter().enumerate() {
        if at_line_start && b == b'\n' {
            return i + 1;
        }
        if at_line_start && b == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            return i + 2;
        }
        at_line_start = b == b'\n';
    }
    raw.len()
}

/// How often "content-type" appears, in any case: an upper bound on the fields.
fn count_content_types(raw: &[u8]) -> usize {
    const NEEDLE: &[u8] = b"content-type";
    let mut n = 0;
    let mut i = 0;
    while let Some(p) = raw[i..].iter().position(|b| b | 0x20 == b'c') {
        let at = i + p;
        if raw.len() - at >= NEEDLE.len() && raw[at..at + NEEDLE.len()].eq_ignore_ascii_case(NEEDLE)
        {
            n += 1;
            i = at + NEEDLE.len();
        } else {
            i = at + 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect 1 of issue 17: 10,000 nested message/rfc822 parts.
    #[test]
    fn deep_nesting_is_one_opaque_part() {
        let mut raw = Vec::new();
        for _ in 0..10_000 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: deep\r\n\r\nbottom\r\n");
        let m = parse(&raw).unwrap();
        assert!(is_opaque(&m));
        assert_eq!(m.parts.len(), 1);
        let mut raw =
            b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n".to_vec();
        for i in 1..10_000 {
            raw.extend_from_slice(
                format!(
                    "--b{}\r\nContent-Type: multipart/mixed; boundary=b{i}\r\n\r\n",
                    i - 1
                )
                .as_bytes(),
            );
        }
        let m = parse(&raw).unwrap();
        assert!(is_opaque(&m));
        assert_eq!(m.subject(), Some("deep"));
    }

    #[test]
    fn many_flat_parts_are_one_opaque_part() {
        let mut raw =
            b"Subject: flat\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n".to_vec();
        for _ in 0..(crate::limits::get().mime_parts + 10) {
            raw.extend_from_slice(b"--x\r\n\r\na\r\n");
        }
        raw.extend_from_slice(b"--x--\r\n");
        let m = parse(&raw).unwrap();
        assert!(is_opaque(&m));
    }

    #[test]
    fn ordinary_messages_are_parsed() {
        let raw = b"Subject: hi\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nin\r\n--x--\r\n";
        let m = parse(raw).unwrap();
        assert!(!is_opaque(&m));
        assert_eq!(m.parts.len(), 3);
        assert_eq!(
            count_content_types(b"CONTENT-TYPE content-Type content-typ"),
            2
        );
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_end(b"A: b\n\nbody"), 6);
    }
}

/// Property tests (issue 17's fuzz targets, on stable Rust): any bytes, and generated
/// nesting of every kind, parse without panic into parts whose offsets lie in the message.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn check(raw: &[u8]) {
        let Some(m) = parse(raw) else { return };
        // Walk every message and part without recursion.
        let mut stack = vec![&m];
        let mut seen = 0;
        while let Some(msg) = stack.pop() {
            for p in &msg.parts {
                seen += 1;
                assert!(p.offset_body <= p.offset_end.max(p.offset_body));
                if let PartType::Message(inner) = &p.body {
                    stack.push(inner);
                }
            }
        }
        assert!(seen <= crate::limits::get().mime_parts * 4 + 1 || is_opaque(&m));
    }

    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec()),
            Just(b"Content-Type: message/rfc822\r\n\r\n".to_vec()),
            Just(b"Content-Type: multipart/digest; boundary=d\r\n\r\n".to_vec()),
            Just(b"--b\r\n".to_vec()),
            Just(b"--d\r\n\r\n".to_vec()),
            Just(b"--b--\r\n".to_vec()),
            Just(b"Content-Transfer-Encoding: base64\r\n".to_vec()),
            Just(b"Subject: =?utf-8?q?x?=\r\n".to_vec()),
            Just(b"\r\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..40),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_bytes(raw in prop::collection::vec(any::<u8>(), 0..4096)) {
            check(&raw);
        }

        #[test]
        fn mime_shaped(frags in prop::collection::vec(fragment(), 0..300)) {
            check(&frags.concat());
        }

        #[test]
        fn deep_nesting(depth in 0usize..5000, kind in 0usize..3) {
            let level: &[u8] = [
                &b"Content-Type: message/rfc822\r\n\r\n"[..],
                &b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"[..],
                &b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n"[..],
            ][kind];
            let mut raw = b"Subject: s\r\n".to_vec();
            raw.extend(level.repeat(depth));
            raw.extend_from_slice(b"end\r\n");
            check(&raw);
        }
    }
}
