//! The parts of a message FETCH returns: whole, header, text, chosen header fields, and
//! numbered MIME parts.

use imap_codec::imap_types::core::{AString, Vec1};
use imap_codec::imap_types::fetch::{Part, Section};

pub(crate) use bureau_core::mailsearch::header_end;

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

/// The label (as echoed in the response) and bytes of a BODY[section]. A part that does not
/// exist gives an empty string.
pub(crate) fn section(section: Option<&Section>, content: &[u8]) -> (String, Vec<u8>) {
    let names = |fields: &Vec1<AString>| -> Vec<Vec<u8>> {
        fields
            .as_ref()
            .iter()
            .map(|f| f.as_ref().to_vec())
            .collect()
    };
    let fields_label = |fs: &[Vec<u8>], not: bool| {
        let list: Vec<String> = fs
            .iter()
            .map(|f| String::from_utf8_lossy(f).to_uppercase())
            .collect();
        format!(
            "HEADER.FIELDS{} ({})",
            if not { ".NOT" } else { "" },
            list.join(" ")
        )
    };
    let num = |p: &Part| -> (Vec<u32>, String) {
        let v: Vec<u32> = p.0.as_ref().iter().map(|n| n.get()).collect();
        let s = v.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
        (v, s)
    };
    let in_part = |p: &Part, what: PartWhat, suffix: &str| {
        let (path, label) = num(p);
        let label = if suffix.is_empty() {
            label
        } else {
            format!("{label}.{suffix}")
        };
        (
            label,
            part_section(content, &path, what).unwrap_or_default(),
        )
    };
    match section {
        None => (String::new(), content.to_vec()),
        Some(Section::Header(None)) => ("HEADER".into(), content[..header_end(content)].to_vec()),
        Some(Section::Text(None)) => ("TEXT".into(), content[header_end(content)..].to_vec()),
        Some(Section::HeaderFields(None, f)) => {
            let fs = names(f);
            (fields_label(&fs, false), header_fields(content, &fs, false))
        }
        Some(Section::HeaderFieldsNot(None, f)) => {
            let fs = names(f);
            (fields_label(&fs, true), header_fields(content, &fs, true))
        }
        Some(Section::Part(p)) => in_part(p, PartWhat::Body, ""),
        Some(Section::Mime(p)) => in_part(p, PartWhat::Mime, "MIME"),
        Some(Section::Header(Some(p))) => in_part(p, PartWhat::Header, "HEADER"),
        Some(Section::Text(Some(p))) => in_part(p, PartWhat::Text, "TEXT"),
        Some(Section::HeaderFields(Some(p), f)) => {
            let fs = names(f);
            let label = fields_label(&fs, false);
            in_part(p, PartWhat::Fields(&fs, false), &label)
        }
        Some(Section::HeaderFieldsNot(Some(p), f)) => {
            let fs = names(f);
            let label = fields_label(&fs, true);
            in_part(p, PartWhat::Fields(&fs, true), &label)
        }
    }
}

/// What of a numbered part a section asks for.
pub(crate) enum PartWhat<'a> {
    /// BODY[1.2]: the part's body, as sent (still transfer-encoded).
    Body,
    /// BODY[1.2.MIME]: the part's own header.
    Mime,
    /// BODY[1.2.HEADER] and .TEXT: of a message/rfc822 part.
    Header,
    Text,
    Fields(&'a [Vec<u8>], bool),
}

/// The bytes of section `path` of `raw` (see `with_part`).
pub(crate) fn part_section(raw: &[u8], path: &[u32], what: PartWhat) -> Option<Vec<u8>> {
    with_part(raw, path, |bytes, part| {
        let slice = |a: u32, b: u32| bytes.get(a as usize..b as usize).map(<[u8]>::to_vec);
        match what {
            PartWhat::Body => slice(part.offset_body, part.offset_end),
            PartWhat::Mime => slice(part.offset_header, part.offset_body),
            PartWhat::Header | PartWhat::Text | PartWhat::Fields(..) => {
                let mail_parser::PartType::Message(inner) = &part.body else {
                    return None;
                };
                // The encapsulated message runs to the end of this part: an inner multipart's
                // epilogue is part of its TEXT (issue 18), though mail-parser ends the inner
                // root at its closing boundary.
                let root = inner.parts.first()?;
                let end = part.offset_end.max(root.offset_end);
                let r = bytes.get(root.offset_header as usize..end as usize)?;
                Some(match what {
                    PartWhat::Header => r[..header_end(r)].to_vec(),
                    PartWhat::Text => r[header_end(r)..].to_vec(),
                    PartWhat::Fields(names, not) => header_fields(r, names, not),
                    _ => unreachable!("matched above"),
                })
            }
        }
    })
}

/// What FETCH BINARY[section] finds (RFC 3516).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Binary {
    /// The part's content with its transfer encoding undone.
    Data(Vec<u8>),
    /// A Content-Transfer-Encoding other than 7bit, 8bit, binary, base64, quoted-printable.
    UnknownCte,
    /// Base64 or quoted-printable that does not decode.
    Undecodable,
}

/// BINARY[path]: the whole message as it is for an empty path, else the part's body with
/// only its Content-Transfer-Encoding undone (the charset stays). None: no such part.
pub(crate) fn binary(raw: &[u8], path: &[u32]) -> Option<Binary> {
    use mail_parser::MimeHeaders;
    use mail_parser::decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode};
    if path.is_empty() {
        return Some(Binary::Data(raw.to_vec()));
    }
    with_part(raw, path, |bytes, part| {
        let body = bytes.get(part.offset_body as usize..part.offset_end as usize)?;
        let cte = part
            .content_transfer_encoding()
            .unwrap_or("7bit")
            .trim()
            .to_ascii_lowercase();
        let decoded = match cte.as_str() {
            "7bit" | "8bit" | "binary" => Some(body.to_vec()),
            "base64" => base64_decode(body),
            "quoted-printable" => quoted_printable_decode(body),
            _ => return Some(Binary::UnknownCte),
        };
        Some(decoded.map_or(Binary::Undecodable, Binary::Data))
    })
}

/// Finds section `path` of `raw` (RFC 9051 6.4.5 numbering: the children of a multipart; 1
/// for a single-part body; into a message/rfc822 part's own message) and hands `f` the
/// outermost message's bytes, from which every part's offsets count, and the part.
fn with_part<R>(
    raw: &[u8],
    path: &[u32],
    f: impl FnOnce(&[u8], &mail_parser::MessagePart) -> Option<R>,
) -> Option<R> {
    use mail_parser::PartType;
    let top = bureau_core::mime::parse(raw)?;
    let mut msg = &top;
    let mut id = 0usize;
    let mut entered = true;
    for n in path {
        if let PartType::Message(inner) = &msg.parts.get(id)?.body
            && !entered
        {
            msg = inner;
            id = 0;
            entered = true;
        }
        match &msg.parts.get(id)?.body {
            PartType::Multipart(children) => {
                id = *children.get((*n as usize).checked_sub(1)?)? as usize
            }
            _ if *n == 1 && entered => {}
            _ => return None,
        }
        entered = false;
    }
    f(top.raw_message(), msg.parts.get(id)?)
}

#[cfg(test)]
mod part_tests {
    use super::*;

    #[test]
    fn numbered_parts() {
        let raw = b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=A\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--A\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n--B\r\nContent-Type: text/html\r\n\r\n<p>inner</p>\r\n--B--\r\n--A--\r\n";
        let body =
            |p: &[u32]| part_section(raw, p, PartWhat::Body).map(|b| String::from_utf8(b).unwrap());
        assert_eq!(body(&[1]).unwrap().trim_end(), "first");
        assert_eq!(body(&[2, 1]).unwrap().trim_end(), "inner plain");
        assert_eq!(body(&[2, 2]).unwrap().trim_end(), "<p>inner</p>");
        assert!(body(&[3]).is_none() && body(&[1, 1]).is_none());
        let mime = part_section(raw, &[1], PartWhat::Mime).unwrap();
        assert!(
            String::from_utf8(mime)
                .unwrap()
                .contains("Content-Type: text/plain")
        );
        let h = part_section(raw, &[2], PartWhat::Header).unwrap();
        assert!(String::from_utf8(h).unwrap().starts_with("Subject: inner"));
        // Issue 18: the TEXT of a forwarded multipart message keeps its epilogue.
        let fwd = b"Content-Type: multipart/mixed; boundary=A\r\n\r\n--A\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nx\r\n--B--\r\nepilogue\r\n--A--\r\n";
        let text = part_section(fwd, &[1], PartWhat::Text).unwrap();
        // The CRLF before "--A--" belongs to the boundary (RFC 2046 5.1.1).
        assert_eq!(text, b"--B\r\n\r\nx\r\n--B--\r\nepilogue");
        let top = b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\npreamble\r\n--B\r\n\r\nx\r\n--B--\r\nepilogue\r\n";
        let text = part_section(top, &[1], PartWhat::Text).unwrap();
        assert_eq!(text, b"preamble\r\n--B\r\n\r\nx\r\n--B--\r\nepilogue\r\n");
        let single = b"Subject: s\r\n\r\njust text\r\n";
        assert_eq!(binary(single, &[]), Some(Binary::Data(single.to_vec())));
        assert_eq!(
            binary(single, &[1]),
            Some(Binary::Data(b"just text\r\n".to_vec()))
        );
        assert_eq!(
            part_section(single, &[1], PartWhat::Body).unwrap(),
            b"just text\r\n"
        );
    }
}

#[cfg(test)]
mod binary_tests {
    use super::*;

    #[test]
    fn transfer_encodings_undone_charset_kept() {
        // Latin-1 "café" as quoted-printable, a PNG-ish base64 blob with a NUL, an unknown CTE.
        let raw = b"Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
caf=E9 =\r\nsoft break\r\n--X\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
iVBORw0KGgoA\r\nAP8=\r\n--X\r\n\
Content-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--X--\r\n";
        let Some(Binary::Data(qp)) = binary(raw, &[1]) else {
            panic!("part 1")
        };
        assert!(qp.starts_with(b"caf\xe9 soft break"), "{qp:?}");
        assert_eq!(
            binary(raw, &[2]),
            Some(Binary::Data(b"\x89PNG\r\n\x1a\n\0\0\xff".to_vec()))
        );
        assert_eq!(binary(raw, &[3]), Some(Binary::UnknownCte));
        assert_eq!(binary(raw, &[4]), None);
    }
}
