//! ENVELOPE and BODYSTRUCTURE (RFC 9051 7.5.2) from mail-parser's reading of a message.

use crate::wire;
use base64::Engine;
use mail_parser::{Address, Message, MimeHeaders, PartType};

fn nil_or(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) => wire::string(out, v),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A header value as sent, unfolded and trimmed.
fn raw_header(m: &Message, name: &str) -> Option<String> {
    m.header_raw(name)
        .map(|v| v.replace("\r\n", "").replace('\n', "").trim().to_string())
}

/// A decoded display name back in RFC 2047 form when it is not ASCII.
fn encoded_word(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        s.as_bytes().to_vec()
    } else {
        format!(
            "=?utf-8?b?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
        .into_bytes()
    }
}

fn addr(out: &mut Vec<u8>, name: Option<&str>, address: Option<&str>) {
    // An entry with no address is a comment mail-parser read as a name ("group: (foo) ;"):
    // (name NIL NIL NIL) would read as a group's end, so there is nothing to write.
    if address.is_none_or(str::is_empty) {
        return;
    }
    out.push(b'(');
    nil_or(out, name.map(encoded_word).as_deref());
    // An obsolete source route (RFC 5322 4.4, "@route:user@domain") goes in the adl field.
    let (route, address) = match address.and_then(|a| a.strip_prefix('@').and(a.split_once(':'))) {
        Some((route, rest)) => (Some(route), Some(rest)),
        None => (None, address),
    };
    out.push(b' ');
    nil_or(out, route.map(str::as_bytes));
    out.push(b' ');
    let (local, host) = match address.and_then(|a| a.rsplit_once('@')) {
        Some((l, h)) => (Some(l), Some(h)),
        None => (address, None),
    };
    nil_or(out, local.map(str::as_bytes));
    out.push(b' ');
    nil_or(out, host.map(str::as_bytes));
    out.push(b')');
}

fn addresses(out: &mut Vec<u8>, a: Option<&Address>) {
    let Some(a) = a else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let start = out.len();
    out.push(b'(');
    match a {
        Address::List(list) => {
            for x in list {
                addr(out, x.name.as_deref(), x.address.as_deref());
            }
        }
        Address::Group(groups) => {
            for g in groups {
                // RFC 9051: a group starts with (NIL NIL "name" NIL) and ends with NIL x4.
                if let Some(name) = &g.name {
                    out.extend_from_slice(b"(NIL NIL ");
                    wire::string(out, name.as_bytes());
                    out.extend_from_slice(b" NIL)");
                }
                for x in &g.addresses {
                    addr(out, x.name.as_deref(), x.address.as_deref());
                }
                if g.name.is_some() {
                    out.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
    }
    if out.len() == start + 1 {
        out.truncate(start);
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b')');
    }
}

pub(crate) fn envelope(out: &mut Vec<u8>, m: &Message) {
    out.push(b'(');
    nil_or(out, raw_header(m, "Date").as_deref().map(str::as_bytes));
    out.push(b' ');
    nil_or(out, raw_header(m, "Subject").as_deref().map(str::as_bytes));
    out.push(b' ');
    addresses(out, m.from());
    out.push(b' ');
    // Sender and Reply-To default to From (RFC 9051 7.5.2).
    addresses(out, m.sender().or(m.from()));
    out.push(b' ');
    addresses(out, m.reply_to().or(m.from()));
    out.push(b' ');
    addresses(out, m.to());
    out.push(b' ');
    addresses(out, m.cc());
    out.push(b' ');
    addresses(out, m.bcc());
    out.push(b' ');
    nil_or(
        out,
        raw_header(m, "In-Reply-To").as_deref().map(str::as_bytes),
    );
    out.push(b' ');
    nil_or(
        out,
        raw_header(m, "Message-ID").as_deref().map(str::as_bytes),
    );
    out.push(b')');
}

fn params(out: &mut Vec<u8>, attrs: &[(String, String)]) {
    if attrs.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        wire::string(out, k.to_ascii_uppercase().as_bytes());
        out.push(b' ');
        wire::string(out, v.as_bytes());
    }
    out.push(b')');
}

fn disposition_etc(out: &mut Vec<u8>, part: &mail_parser::MessagePart) {
    out.push(b' ');
    match part.content_disposition() {
        Some(d) => {
            out.push(b'(');
            wire::string(out, d.ctype().to_ascii_uppercase().as_bytes());
            out.push(b' ');
            let attrs: Vec<(String, String)> = d
                .attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect();
            params(out, &attrs);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.extend_from_slice(b" NIL ");
    nil_or(out, part.content_location().map(str::as_bytes));
}

/// BODYSTRUCTURE of part `id` of `m`; BODY (no extension data) when `ext` is false.
pub(crate) fn body_structure(out: &mut Vec<u8>, m: &Message, id: usize, ext: bool) {
    structure_at(out, m, id, ext, 0)
}

/// The part at `depth` levels of nesting. Past `MAX_DEPTH` a part is shown as an opaque
/// leaf, so the recursion is bounded whatever the message (mime::parse bounds it too).
fn structure_at(out: &mut Vec<u8>, m: &Message, id: usize, ext: bool, depth: usize) {
    let Some(part) = m.parts.get(id) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let raw = m.raw_message();
    let ct = part.content_type();
    let attrs: Vec<(String, String)> = ct
        .and_then(|c| c.attributes())
        .unwrap_or_default()
        .iter()
        .map(|a| (a.name.to_string(), a.value.to_string()))
        .collect();
    let too_deep = depth >= bureau_core::limits::get().bodystructure_depth;
    if too_deep {
        let raw = m.raw_message();
        let start = (part.offset_body as usize).min(raw.len());
        let end = (part.offset_end as usize).clamp(start, raw.len());
        let size = end - start;
        out.extend_from_slice(
            format!("(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" {size}").as_bytes(),
        );
        if ext {
            out.extend_from_slice(b" NIL NIL NIL NIL");
        }
        out.push(b')');
        return;
    }
    if let PartType::Multipart(children) = &part.body {
        out.push(b'(');
        for c in children {
            structure_at(out, m, *c as usize, ext, depth + 1);
        }
        out.push(b' ');
        let sub = ct
            .and_then(|c| c.subtype())
            .unwrap_or("mixed")
            .to_ascii_uppercase();
        wire::string(out, sub.as_bytes());
        if ext {
            out.push(b' ');
            params(out, &attrs);
            disposition_etc(out, part);
        }
        out.push(b')');
        return;
    }
    let (ty, sub) = match ct {
        Some(c) => (
            c.ctype().to_ascii_uppercase(),
            c.subtype().unwrap_or("plain").to_ascii_uppercase(),
        ),
        None => ("TEXT".to_string(), "PLAIN".to_string()),
    };
    let mut attrs = attrs;
    if ty == "TEXT" && !attrs.iter().any(|(k, _)| k.eq_ignore_ascii_case("charset")) {
        attrs.push(("charset".into(), "us-ascii".into()));
    }
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    let body = &raw[start..end];
    out.push(b'(');
    wire::string(out, ty.as_bytes());
    out.push(b' ');
    wire::string(out, sub.as_bytes());
    out.push(b' ');
    params(out, &attrs);
    out.push(b' ');
    nil_or(out, part.content_id().map(str::as_bytes));
    out.push(b' ');
    nil_or(out, part.content_description().map(str::as_bytes));
    out.push(b' ');
    let enc = part
        .content_transfer_encoding()
        .unwrap_or("7bit")
        .to_ascii_uppercase();
    wire::string(out, enc.as_bytes());
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let lines = body.iter().filter(|b| **b == b'\n').count();
    match &part.body {
        PartType::Message(inner) => {
            out.push(b' ');
            envelope(out, inner);
            out.push(b' ');
            structure_at(out, inner, 0, ext, depth + 1);
            out.extend_from_slice(format!(" {lines}").as_bytes());
        }
        _ if ty == "TEXT" => out.extend_from_slice(format!(" {lines}").as_bytes()),
        _ => {}
    }
    if ext {
        // Extension data: MD5 (not computed), disposition, language, location.
        out.extend_from_slice(b" NIL");
        disposition_etc(out, part);
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    #[test]
    fn envelope_and_structure_of_a_multipart_message() {
        let raw = b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nFrom: =?utf-8?q?Ren=C3=A9e?= <renee@example.com>\r\nTo: a@example.com, Team: b@example.com;\r\nSubject: Hi\r\nMessage-ID: <1@example.com>\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--X\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\nJVBERg==\r\n--X--\r\n";
        let m = mail_parser::MessageParser::default().parse(raw).unwrap();
        let mut e = Vec::new();
        super::envelope(&mut e, &m);
        let e = String::from_utf8(e).unwrap();
        assert!(e.starts_with("(\"Sun, 22 Nov 2026 10:00:00 +0000\" \"Hi\" ((\"=?utf-8?b?UmVuw6ll?=\" NIL \"renee\" \"example.com\"))"), "{e}");
        assert!(
            e.contains("(NIL NIL \"Team\" NIL)") && e.ends_with("NIL \"<1@example.com>\")"),
            "{e}"
        );
        let mut b = Vec::new();
        super::body_structure(&mut b, &m, 0, true);
        let b = String::from_utf8(b).unwrap();
        assert!(
            b.starts_with("((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" "),
            "{b}"
        );
        assert!(
            b.contains("(\"APPLICATION\" \"PDF\" (\"NAME\" \"a.pdf\") NIL NIL \"BASE64\" "),
            "{b}"
        );
        assert!(
            b.contains("(\"ATTACHMENT\" (\"FILENAME\" \"a.pdf\"))")
                && b.contains(" \"MIXED\" (\"BOUNDARY\" \"X\")"),
            "{b}"
        );
        let mut plain = Vec::new();
        super::body_structure(&mut plain, &m, 0, false);
        let plain = String::from_utf8(plain).unwrap();
        assert!(
            plain.ends_with(" \"MIXED\")") && !plain.contains("ATTACHMENT"),
            "{plain}"
        );
    }
}

/// What FETCH tells of a message without its content: ENVELOPE, BODY and BODYSTRUCTURE as
/// written on the wire. Made once, when the message is stored (`Store::stage`),
/// and kept beside its blob, as Dovecot's index cache keeps them.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub envelope: Vec<u8>,
    pub body: Vec<u8>,
    pub bodystructure: Vec<u8>,
}

/// The store's name for a message's [`Summary`].
pub(crate) const SUMMARY: &str = "imap.summary";

impl Summary {
    pub(crate) fn of(raw: &[u8]) -> Summary {
        let Some(m) = bureau_core::mime::parse(raw) else {
            let leaf = format!("(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" {} 0)", raw.len());
            return Summary {
                envelope: b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)".to_vec(),
                body: leaf.clone().into_bytes(),
                bodystructure: leaf.into_bytes(),
            };
        };
        let mut s = Summary {
            envelope: Vec::new(),
            body: Vec::new(),
            bodystructure: Vec::new(),
        };
        envelope(&mut s.envelope, &m);
        body_structure(&mut s.body, &m, 0, false);
        body_structure(&mut s.bodystructure, &m, 0, true);
        s
    }

    /// Three length-prefixed fields.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            12 + self.envelope.len() + self.body.len() + self.bodystructure.len(),
        );
        for f in [&self.envelope, &self.body, &self.bodystructure] {
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    pub(crate) fn decode(mut b: &[u8]) -> Option<Summary> {
        let mut field = || {
            let (len, rest) = b.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let (f, rest) = (rest.get(..len)?, &rest[len..]);
            b = rest;
            Some(f.to_vec())
        };
        let s = Summary {
            envelope: field()?,
            body: field()?,
            bodystructure: field()?,
        };
        b.is_empty().then_some(s)
    }
}

/// The store's deriver for messages (`Store::set_deriver`): their summary and their terms
/// for the term index.
pub fn derive(raw: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (SUMMARY, Summary::of(raw).encode()),
        (
            bureau_store::terms::TERMS_FIELD,
            bureau_core::mailsearch::terms(raw),
        ),
    ]
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn a_summary_reads_back_and_refuses_damage() {
        let s = Summary::of(
            b"From: a@x.example\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
              --b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n",
        );
        assert!(
            s.envelope
                .starts_with(b"(NIL \"hi\" ((NIL NIL \"a\" \"x.example\"))")
        );
        assert!(s.body.starts_with(b"((\"TEXT\" \"PLAIN\""));
        assert!(s.bodystructure.len() > s.body.len());
        let bytes = s.encode();
        assert_eq!(Summary::decode(&bytes), Some(s));
        assert_eq!(Summary::decode(&bytes[..bytes.len() - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Summary::decode(&longer), None);
    }
}
