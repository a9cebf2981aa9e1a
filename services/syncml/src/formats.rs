//! The formats devices send that the store does not keep as they are:
//! - a plain-text note (what phones and SyncEvolution's memos send) is kept as an
//!   iCalendar VJOURNAL, as CalDAV and ActiveSync's Notes keep notes: the note's first line
//!   is its SUMMARY and the whole text its DESCRIPTION; read back, a DESCRIPTION that does
//!   not start with the SUMMARY gets it as its first line;
//! - a vCard 2.1 (`text/x-vcard`, what older phones take and send) is kept as vCard 3.0,
//!   and a device that prefers 2.1 gets its cards so: bare TYPE values, QUOTED-PRINTABLE
//!   and CHARSET for text that is not plain ASCII on one line, BASE64 for binary values.

use crate::merge::Caps;
use bureau_groupware::contentline::{Comp, Line, esc, fold, unescape};

/// A device's plain-text note as a VCALENDAR holding one VJOURNAL.
pub fn note_from_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let text = text.trim_end_matches('\n');
    let summary = text.lines().next().unwrap_or("").trim();
    let mut journal = Comp::new("VJOURNAL");
    journal
        .props
        .push(format!("UID:{:032x}", rand::random::<u128>()));
    journal.props.push(format!(
        "DTSTAMP:{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    journal.props.push(format!("SUMMARY:{}", esc(summary)));
    journal.props.push(format!("DESCRIPTION:{}", esc(text)));
    let mut cal = Comp::new("VCALENDAR");
    cal.props.push("VERSION:2.0".into());
    cal.props.push("PRODID:-//Bureau//SyncML//EN".into());
    cal.subs.push(journal);
    cal.text()
}

/// What a device holding plain-text notes holds of a VJOURNAL.
pub fn note_caps() -> Caps {
    Caps::of([
        "BEGIN:VCALENDAR",
        "BEGIN:VJOURNAL",
        "SUMMARY",
        "DESCRIPTION",
    ])
}

/// A stored VJOURNAL as a plain-text note; None when the text holds none.
pub fn note_to_text(ical: &str) -> Option<String> {
    let cal = Comp::parse(ical)?;
    let j = cal.subs.iter().find(|s| s.name == "VJOURNAL")?;
    let value = |name| j.get(name).map(|l| unescape(&l.value)).unwrap_or_default();
    let (summary, description) = (value("SUMMARY"), value("DESCRIPTION"));
    Some(if description.starts_with(&summary) {
        description
    } else if description.is_empty() {
        summary
    } else {
        format!("{summary}\n{description}")
    })
}

/// Properties whose value is text, where vCard 3.0 escapes a comma and 2.1 does not.
const TEXT: [&str; 8] = ["FN", "N", "ADR", "ORG", "TITLE", "NOTE", "ROLE", "LABEL"];

/// A vCard 2.1 as vCard 3.0; None if it is not a 2.1 card.
pub fn vcard_from_21(text: &str) -> Option<String> {
    let lines = unfold_21(text);
    if !lines.iter().any(|l| l.eq_ignore_ascii_case("VERSION:2.1")) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 64);
    for raw in lines {
        let l = Line::parse(&raw);
        if l.name == "VERSION" {
            out.push_str("VERSION:3.0\r\n");
            continue;
        }
        let group = raw
            .split([';', ':'])
            .next()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(g, _)| format!("{g}."))
            .unwrap_or_default();
        let mut params: Vec<String> = Vec::new();
        let (mut qp, mut charset) = (false, None);
        for (k, v) in &l.params {
            match (
                k.to_ascii_uppercase().as_str(),
                v.to_ascii_uppercase().as_str(),
            ) {
                ("ENCODING", "QUOTED-PRINTABLE") => qp = true,
                ("ENCODING", "BASE64") => params.push("ENCODING=b".into()),
                ("ENCODING", "8BIT" | "7BIT") => {}
                ("CHARSET", _) => charset = Some(v.to_ascii_uppercase()),
                ("VALUE", "URL") => params.push("VALUE=uri".into()),
                _ => params.push(format!("{k}={v}")),
            }
        }
        if !l.types.is_empty() {
            params.insert(0, format!("TYPE={}", l.types.join(",")));
        }
        let mut value = l.value.clone();
        if qp {
            let bytes = decode_qp(&value);
            value = match charset.as_deref() {
                Some("ISO-8859-1" | "LATIN1" | "WINDOWS-1252") => {
                    bytes.iter().map(|&b| b as char).collect()
                }
                _ => String::from_utf8_lossy(&bytes).into_owned(),
            };
            value = value
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .replace('\n', "\\n");
        }
        if TEXT.contains(&l.name.as_str()) {
            value = escape_commas(&value);
        }
        let head = std::iter::once(format!("{group}{}", l.name))
            .chain(params)
            .collect::<Vec<_>>()
            .join(";");
        fold(&format!("{head}:{value}"), &mut out);
    }
    Some(out)
}

/// A stored vCard (3.0 or 4.0) as vCard 2.1.
pub fn vcard_to_21(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for raw in bureau_groupware::contentline::unfold(text) {
        let l = Line::parse(&raw);
        if l.name == "VERSION" {
            out.push_str("VERSION:2.1\r\n");
            continue;
        }
        let mut params: Vec<String> = l.types.iter().map(|t| t.to_ascii_uppercase()).collect();
        let mut base64 = false;
        for (k, v) in &l.params {
            match (
                k.to_ascii_uppercase().as_str(),
                v.to_ascii_lowercase().as_str(),
            ) {
                ("ENCODING", "b") => {
                    base64 = true;
                    params.push("ENCODING=BASE64".into());
                }
                ("VALUE", "uri") => params.push("VALUE=URL".into()),
                _ => params.push(format!("{k}={v}")),
            }
        }
        if l.pref < 100 {
            params.push("PREF".into());
        }
        // 2.1 escapes no comma; a line break or anything not plain ASCII goes
        // quoted-printable, in UTF-8.
        let mut value = if TEXT.contains(&l.name.as_str()) {
            l.value.replace("\\,", ",")
        } else {
            l.value.clone()
        };
        let multiline = value.contains("\\n") || value.contains("\\N");
        if !base64 && (multiline || !value.is_ascii()) {
            let plain = value.replace("\\n", "\r\n").replace("\\N", "\r\n");
            value = encode_qp(&plain);
            params.push("ENCODING=QUOTED-PRINTABLE".into());
            params.push("CHARSET=UTF-8".into());
        }
        let head = std::iter::once(l.name.clone())
            .chain(params)
            .collect::<Vec<_>>()
            .join(";");
        let line = format!("{head}:{value}");
        if base64 {
            // Folded, and ended by an empty line (vCard 2.1, 2.1.3).
            fold(&line, &mut out);
            out.push_str("\r\n");
        } else if line.contains("=QUOTED-PRINTABLE") {
            // Quoted-printable lines break with soft breaks ("=" at the end), not folding.
            out.push_str(&soft_breaks(&line));
        } else {
            fold(&line, &mut out);
        }
    }
    out
}

/// Lines of a 2.1 card: folded lines joined, and quoted-printable soft breaks ("=" at a
/// line's end) joined with the next line.
pub(crate) fn unfold_21(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut soft = false;
    for l in text.split('\n') {
        let l = l.strip_suffix('\r').unwrap_or(l);
        if soft {
            let last = out.last_mut().expect("a line before");
            last.pop();
            last.push_str(l);
        } else if (l.starts_with(' ') || l.starts_with('\t')) && !out.is_empty() {
            out.last_mut().expect("checked").push_str(&l[1..]);
        } else if !l.is_empty() {
            out.push(l.to_string());
        }
        soft = out.last().is_some_and(|last| {
            last.ends_with('=') && last.to_ascii_uppercase().contains("QUOTED-PRINTABLE")
        });
    }
    out
}

fn escape_commas(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut escaped = false;
    for c in v.chars() {
        if c == ',' && !escaped {
            out.push('\\');
        }
        escaped = c == '\\' && !escaped;
        out.push(c);
    }
    out
}

pub(crate) fn decode_qp(v: &str) -> Vec<u8> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(n) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(n);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

pub(crate) fn encode_qp(v: &str) -> String {
    let mut out = String::with_capacity(v.len() * 3);
    for &b in v.as_bytes() {
        match b {
            b'=' | 0..=31 | 127..=255 => out.push_str(&format!("={b:02X}")),
            b => out.push(b as char),
        }
    }
    out
}

/// A quoted-printable line broken at 75 characters with soft breaks, never inside an
/// "=XX" escape.
pub(crate) fn soft_breaks(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut width = 0;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let unit = if c == '=' && line[i..].len() >= 3 {
            &line[i..i + 3]
        } else {
            &line[i..i + c.len_utf8()]
        };
        if width + unit.len() > 74 {
            out.push_str("=\r\n");
            width = 0;
        }
        out.push_str(unit);
        width += unit.len();
        for _ in 1..unit.chars().count() {
            chars.next();
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_goes_in_as_a_journal_and_comes_back_the_same() {
        let text = "Shopping; milk, eggs\nand \\ bread\n";
        let ical = note_from_text(text);
        bureau_groupware::object::check(
            bureau_groupware::object::ObjectKind::Calendar,
            ical.as_bytes(),
        )
        .unwrap();
        assert!(
            ical.contains("SUMMARY:Shopping\\; milk\\, eggs\r\n"),
            "{ical}"
        );
        assert_eq!(note_to_text(&ical).unwrap(), text.trim_end());
        // A journal written elsewhere, its description without the summary.
        let other = "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:1\r\nSUMMARY:Title\r\n\
            DESCRIPTION:Body\\nmore\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n";
        assert_eq!(note_to_text(other).unwrap(), "Title\nBody\nmore");
    }

    #[test]
    fn vcard_21_both_ways() {
        let v21 = "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Dupr=C3=A9;Zo=C3=AB;;;\r\n\
            TEL;WORK;VOICE:+33 1\r\nNOTE;ENCODING=QUOTED-PRINTABLE:first line=0D=0Asecond, with =\r\nsoft break\r\n\
            ORG:Acme, Inc.\r\nPHOTO;ENCODING=BASE64;TYPE=JPEG:\r\n AAAA\r\n BBBB\r\n\r\nEND:VCARD\r\n";
        let v30 = vcard_from_21(v21).unwrap();
        for want in [
            "VERSION:3.0\r\n",
            "N:Dupré;Zoë;;;\r\n",
            "TEL;TYPE=work,voice:+33 1\r\n",
            "NOTE:first line\\nsecond\\, with soft break\r\n",
            "ORG:Acme\\, Inc.\r\n",
            "PHOTO;TYPE=jpeg;ENCODING=b:AAAABBBB\r\n",
        ] {
            assert!(v30.contains(want), "{want:?} in {v30}");
        }
        assert!(vcard_from_21("BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n").is_none());
        // And back: what a 2.1 device reads.
        let back = vcard_to_21(&v30);
        for want in [
            "VERSION:2.1\r\n",
            "N;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:Dupr=C3=A9;Zo=C3=AB;;;\r\n",
            "TEL;WORK;VOICE:+33 1\r\n",
            "ORG:Acme, Inc.\r\n",
            "PHOTO;JPEG;ENCODING=BASE64:AAAABBBB\r\n\r\n",
        ] {
            assert!(back.contains(want), "{want:?} in {back}");
        }
        // The two ways agree.
        let again = vcard_from_21(&back).unwrap();
        assert_eq!(
            bureau_groupware::contentline::unfold(&again),
            bureau_groupware::contentline::unfold(&v30)
        );
    }
}
