//! Whole calendars and address books as one file: an .ics split into calendar objects (one
//! per UID, with the time zones they use) for import, and a collection joined back into
//! one .ics or .vcf for export. Line-based and lossless: every property line (folded
//! continuation lines included) is kept as it was. Sans-I/O.

use std::collections::BTreeMap;

/// One object of an import: its resource name and its text.
#[derive(Debug, PartialEq, Eq)]
pub struct Object {
    pub name: String,
    pub text: String,
}

/// A resource name for a UID: the UID itself when it is a safe path segment, else a hash.
fn resource_name(uid: &str, ext: &str) -> String {
    let safe = !uid.is_empty()
        && uid.len() <= 200
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@+".contains(&b))
        && !uid.starts_with('.');
    if safe {
        format!("{uid}.{ext}")
    } else {
        format!("{}.{ext}", name_hash(uid))
    }
}

fn name_hash(s: &str) -> String {
    // FNV-1a 128 is plenty to name resources apart; no need for a cryptographic hash.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in s.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    format!("{h:032x}")
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
}

fn value_of<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (head, value) = line.split_once(':')?;
    let prop = head.split(';').next()?;
    prop.eq_ignore_ascii_case(name).then_some(value)
}

/// Why a file to import is not a calendar or an address book.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadFile {
    #[error("text outside {outer}: {line:.60}")]
    Outside { outer: &'static str, line: String },
    #[error("the file ends inside a {0}")]
    Unclosed(&'static str),
    #[error("a {0} without {1}")]
    Without(String, &'static str),
    #[error("a VCARD inside a VCARD")]
    Nested,
}

/// Splits an iCalendar file into one object per UID (RFC 4791 4.1), each with the
/// calendar's own properties and the VTIMEZONEs it refers to. Components without a UID are
/// an error, as is text outside VCALENDAR.
pub fn split_ics(text: &str) -> Result<Vec<Object>, BadFile> {
    let mut header: Vec<&str> = Vec::new();
    let mut zones: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut by_uid: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut depth = 0usize;
    let mut current: Vec<&str> = Vec::new();
    let mut current_uid: Option<String> = None;
    let mut current_tzid: Option<String> = None;
    let mut current_kind = String::new();
    for line in lines(text) {
        let begin = value_of(line, "BEGIN");
        let end = value_of(line, "END");
        match (depth, begin, end) {
            (0, Some(b), _) if b.eq_ignore_ascii_case("VCALENDAR") => depth = 1,
            (0, _, _) => {
                return Err(BadFile::Outside {
                    outer: "VCALENDAR",
                    line: line.into(),
                });
            }
            (1, _, Some(e)) if e.eq_ignore_ascii_case("VCALENDAR") => depth = 0,
            (1, Some(b), _) => {
                depth = 2;
                current = vec![line];
                current_uid = None;
                current_tzid = None;
                current_kind = b.to_ascii_uppercase();
            }
            (1, None, _) => {
                let skip = ["VERSION", "PRODID"]
                    .iter()
                    .any(|n| value_of(line, n).is_some())
                    || line.starts_with(' ')
                    || line.starts_with('\t');
                if !skip {
                    header.push(line);
                }
            }
            (2, _, Some(_)) => {
                current.push(line);
                depth = 1;
                let lines = std::mem::take(&mut current);
                if current_kind == "VTIMEZONE" {
                    let id = current_tzid
                        .take()
                        .ok_or(BadFile::Without("VTIMEZONE".into(), "TZID"))?;
                    zones.insert(id, lines);
                } else {
                    let uid = current_uid
                        .take()
                        .ok_or_else(|| BadFile::Without(current_kind.clone(), "UID"))?;
                    if !by_uid.contains_key(&uid) {
                        order.push(uid.clone());
                    }
                    by_uid.entry(uid).or_default().extend(lines);
                }
            }
            (d, b, e) => {
                current.push(line);
                if let Some(v) = value_of(line, "UID").filter(|_| d == 2) {
                    current_uid.get_or_insert_with(|| v.trim().to_string());
                }
                if let Some(v) = value_of(line, "TZID").filter(|_| d == 2) {
                    current_tzid.get_or_insert_with(|| v.trim().to_string());
                }
                if b.is_some() {
                    depth += 1;
                } else if e.is_some() {
                    depth -= 1;
                }
            }
        }
    }
    if depth != 0 {
        return Err(BadFile::Unclosed("component"));
    }
    let mut out = Vec::with_capacity(order.len());
    for uid in order {
        let comps = &by_uid[&uid];
        let mut text =
            String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bureau//import//EN\r\n");
        for l in &header {
            text.push_str(l);
            text.push_str("\r\n");
        }
        for (id, zone) in &zones {
            if comps
                .iter()
                .any(|l| l.contains(&format!("TZID={id}")) || l.contains(&format!("TZID=\"{id}\"")))
            {
                for l in zone {
                    text.push_str(l);
                    text.push_str("\r\n");
                }
            }
        }
        for l in comps {
            text.push_str(l);
            text.push_str("\r\n");
        }
        text.push_str("END:VCALENDAR\r\n");
        out.push(Object {
            name: resource_name(&uid, "ics"),
            text,
        });
    }
    Ok(out)
}

/// Splits a vCard file into its cards, named by UID (or by the card's text without one).
pub fn split_vcf(text: &str) -> Result<Vec<Object>, BadFile> {
    let mut out = Vec::new();
    let mut card: Option<(String, Option<String>)> = None;
    for line in lines(text) {
        if value_of(line, "BEGIN").is_some_and(|v| v.eq_ignore_ascii_case("VCARD")) {
            if card.is_some() {
                return Err(BadFile::Nested);
            }
            card = Some((String::new(), None));
        }
        let Some((text, uid)) = card.as_mut() else {
            return Err(BadFile::Outside {
                outer: "VCARD",
                line: line.into(),
            });
        };
        text.push_str(line);
        text.push_str("\r\n");
        if let Some(v) = value_of(line, "UID") {
            uid.get_or_insert_with(|| v.trim().to_string());
        }
        if value_of(line, "END").is_some_and(|v| v.eq_ignore_ascii_case("VCARD")) {
            let (text, uid) = card.take().expect("inside a card");
            let name = resource_name(uid.as_deref().unwrap_or(&text), "vcf");
            out.push(Object { name, text });
        }
    }
    if card.is_some() {
        return Err(BadFile::Unclosed("VCARD"));
    }
    Ok(out)
}

/// Joins calendar objects into one calendar: their components, each time zone once.
pub fn join_ics(objects: &[String]) -> String {
    let mut out =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bureau//export//EN\r\n");
    let mut zones_seen = std::collections::BTreeSet::new();
    for obj in objects {
        let mut depth = 0usize;
        let mut comp: Vec<&str> = Vec::new();
        let mut tzid: Option<String> = None;
        for line in lines(obj) {
            let begin = value_of(line, "BEGIN").is_some();
            let end = value_of(line, "END").is_some();
            if depth == 1 && !begin && !end {
                continue; // the object's VERSION, PRODID and the like
            }
            if begin {
                depth += 1;
            }
            if depth >= 2 {
                comp.push(line);
                if depth == 2 && tzid.is_none() {
                    tzid = value_of(line, "TZID").map(|v| v.trim().to_string());
                }
            }
            if end {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    let is_zone = comp
                        .first()
                        .and_then(|l| value_of(l, "BEGIN"))
                        .is_some_and(|v| v.eq_ignore_ascii_case("VTIMEZONE"));
                    if !is_zone || zones_seen.insert(tzid.take().unwrap_or_default()) {
                        for l in &comp {
                            out.push_str(l);
                            out.push_str("\r\n");
                        }
                    }
                    comp.clear();
                    tzid = None;
                }
            }
        }
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\nX-WR-CALNAME:Team\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:a@x\r\nDTSTART;TZID=Europe/Paris:20261123T100000\r\nSUMMARY:A long\r\n  folded summary\r\nBEGIN:VALARM\r\nUID:alarm-1\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b/odd uid\r\nDTSTART:20261124T100000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:a@x\r\nRECURRENCE-ID;TZID=Europe/Paris:20261130T100000\r\nDTSTART:20261201T100000Z\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn split_by_uid_with_zones_and_back() {
        let objs = split_ics(FILE).unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].name, "a@x.ics");
        let a = &objs[0].text;
        assert!(a.contains("TZID:Europe/Paris") && a.contains("X-WR-CALNAME:Team"));
        assert!(a.contains("  folded summary\r\n") && a.contains("UID:alarm-1"));
        assert_eq!(
            a.matches("BEGIN:VEVENT").count(),
            2,
            "the override joins its series"
        );
        assert!(calcard::icalendar::ICalendar::parse(a).is_ok());
        let b = &objs[1];
        assert!(b.name.ends_with(".ics") && !b.name.contains('/'));
        assert!(!b.text.contains("VTIMEZONE"), "b uses no time zone");

        let joined = join_ics(&objs.iter().map(|o| o.text.clone()).collect::<Vec<_>>());
        assert_eq!(joined.matches("BEGIN:VEVENT").count(), 3);
        assert_eq!(joined.matches("BEGIN:VTIMEZONE").count(), 1);
        assert_eq!(split_ics(&joined).unwrap().len(), 2);
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(split_ics("hello").is_err());
        assert!(
            split_ics(
                "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            )
            .is_err()
        );
        assert!(split_ics("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n").is_err());
    }

    #[test]
    fn cards() {
        let f = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:One\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:4.0\r\nFN:No uid\r\nEND:VCARD\r\n";
        let cards = split_vcf(f).unwrap();
        assert_eq!(cards.len(), 2);
        assert_eq!(cards[0].name, "c1.vcf");
        assert!(cards[1].text.contains("FN:No uid") && cards[1].name.ends_with(".vcf"));
        assert_eq!(
            split_vcf("FN:x\r\n")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("text outside VCARD: FN:x")
        );
        assert!(split_vcf("BEGIN:VCARD\r\nFN:x\r\n").is_err());
    }
}
