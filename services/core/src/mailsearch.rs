//! What a search looks into in a mail message, and the message's terms for the store's
//! term index (`bureau_store::terms`) made from those very texts, so that a search served
//! from the index finds what reading every message would: IMAP SEARCH's keys and
//! ActiveSync's mail search both read messages through this module.
//!
//! - Header fields: a field's raw values, unfolded; the Subject also decoded (RFC 2047);
//!   address fields also as addresses (names and addresses, decoded, comments dropped).
//! - The body: the text parts, decoded (transfer encoding and charset), of the message and
//!   of the messages it carries, as Dovecot searches them; attachments that are not text
//!   are not searched. TEXT is the header and the body.
//! - The index keeps the header and the body as two fields, so that BODY's candidates are
//!   the messages whose text parts may hold the needle (a word of the header alone, as a
//!   Message-ID's hex, would make every message holding it one) and TEXT's are either's.
//! - Comparison ignores case, character by character (`bureau_store::terms::fold`).

use crate::mime;
use bureau_store::terms::{Field, Terms, fold};
use mail_parser::{Message, MessageParser, PartType};

/// The fields of a message's terms.
pub const SUBJECT: Field = 1;
pub const FROM: Field = 2;
pub const TO: Field = 3;
pub const CC: Field = 4;
pub const BCC: Field = 5;
/// The header as written: what TEXT looks into besides the body.
pub const HEADER: Field = 6;
/// The text parts (and the headers of the messages the message carries): what BODY looks
/// into.
pub const BODY: Field = 7;
/// What TEXT looks into: a message matches if either field holds the needle.
pub const TEXT: [Field; 2] = [HEADER, BODY];

pub const ADDRESS_FIELDS: [(&str, Field); 4] =
    [("from", FROM), ("to", TO), ("cc", CC), ("bcc", BCC)];

/// Where a message's header ends: after its blank line, or at its end.
pub fn header_end(msg: &[u8]) -> usize {
    msg.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(msg.len(), |p| p + 4)
}

/// A message's terms (`bureau_store::terms`): each field's texts as a search reads them.
pub fn terms(raw: &[u8]) -> Vec<u8> {
    let mut t = Terms::default();
    let head = MessageParser::default().parse_headers(raw);
    if let Some(s) = header(raw, b"subject") {
        t.add(SUBJECT, &s);
    }
    if let Some(s) = head.as_ref().and_then(|m| m.subject()) {
        t.add(SUBJECT, s.as_bytes());
    }
    for (name, field) in ADDRESS_FIELDS {
        if let Some(v) = header(raw, name.as_bytes()) {
            t.add(field, &v);
        }
        if let Some(m) = &head {
            for_address(m, name, |s| t.add(field, s.as_bytes()));
        }
    }
    t.add(HEADER, &raw[..header_end(raw)]);
    if let Some(m) = mime::parse(raw) {
        body_texts(&m, 0, &mut |s| t.add(BODY, s.as_bytes()));
        // As ActiveSync's search reads it: an HTML-only message rendered as text.
        if let Some(s) = m.body_text(0) {
            t.add(BODY, s.as_bytes());
        }
    }
    t.encode()
}

/// The unfolded values of a header field (all of its occurrences, joined); `None` when the
/// message has no such field.
pub fn header(content: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let end = header_end(content);
    let mut out = Vec::new();
    let mut inside = false;
    let mut found = false;
    for line in content[..end].split_inclusive(|b| *b == b'\n') {
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            inside = false;
            if let Some(p) = line.iter().position(|b| *b == b':')
                && line[..p].trim_ascii().eq_ignore_ascii_case(name)
            {
                inside = true;
                found = true;
                out.extend_from_slice(line[p + 1..].trim_ascii());
                continue;
            }
        }
        if inside {
            out.push(b' ');
            out.extend_from_slice(line.trim_ascii());
        }
    }
    found.then_some(out)
}

/// Whether `needle` is in `hay`, case ignored (character by character, as the term index
/// folds: RFC 9051 6.4.4).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        return hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle));
    }
    let (hay, needle) = (fold(hay), fold(needle));
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Each name and address of a message's address field (`from`, `to`, `cc`, `bcc`).
pub fn for_address(m: &Message, field: &str, mut each: impl FnMut(&str)) {
    let a = match field {
        "from" => m.from(),
        "to" => m.to(),
        "cc" => m.cc(),
        _ => m.bcc(),
    };
    for x in a.into_iter().flat_map(|a| a.iter()) {
        x.address().into_iter().chain(x.name()).for_each(&mut each);
    }
}

/// Each decoded text part of a message and of the messages it carries (three deep).
pub fn body_texts(m: &Message, depth: usize, each: &mut dyn FnMut(&str)) {
    for p in &m.parts {
        match &p.body {
            PartType::Text(s) | PartType::Html(s) => each(s),
            PartType::Message(inner) if depth < 3 => {
                let raw = inner.raw_message();
                each(&String::from_utf8_lossy(&raw[..header_end(raw)]));
                body_texts(inner, depth + 1, each);
            }
            _ => {}
        }
    }
}

/// Whether a decoded text part of the message holds `v` (BODY).
pub fn body_has(content: &[u8], v: &[u8]) -> bool {
    let Some(m) = mime::parse(content) else {
        return false;
    };
    let mut found = false;
    body_texts(&m, 0, &mut |s| found = found || contains(s.as_bytes(), v));
    found
}

/// Whether an address field, read as addresses (comments and spacing dropped, as in
/// `<user (comment)@ (comment) domain>`), holds `v` in a name or an address.
pub fn address_has(content: &[u8], field: &str, v: &[u8]) -> bool {
    let Some(m) = MessageParser::default().parse_headers(content) else {
        return false;
    };
    let mut found = false;
    for_address(&m, field, |s| found = found || contains(s.as_bytes(), v));
    found
}

/// Whether the Subject:, decoded (RFC 2047), holds `v`.
pub fn subject_has(content: &[u8], v: &[u8]) -> bool {
    MessageParser::default()
        .parse_headers(content)
        .is_some_and(|m| m.subject().is_some_and(|s| contains(s.as_bytes(), v)))
}
