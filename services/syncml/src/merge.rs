//! A device's changed object laid over the stored one, line by line, so that what the
//! device never saw survives its edit.
//!
//! A SyncML device sends an object whole, but holds only the properties its DevInf lists
//! (CTCap): a phone has no place for a card's UID, its PHOTO or a calendar client's X-
//! properties, and sends the card back without them. So for each component:
//! - a property the device can hold comes from the device (a line it dropped was deleted
//!   there; an empty one, as "TITLE:" or "ADR:;;;;;;", says nothing and is left out);
//! - a property it cannot hold comes from the stored object, whatever the device sent;
//! - the UID and VERSION are the stored object's: its identity is the store's;
//! - a device line equal in name and value to a stored one is the stored line, with the
//!   parameters the device could not keep;
//! - sub-components pair up by name and RECURRENCE-ID (VTIMEZONE by TZID, others in
//!   order); a stored one the device cannot hold, or a VTIMEZONE, stays when the device
//!   sent none.
//!
//! Without a CTCap the device is taken to hold every property: its object stands, with
//! the rules above for UID, VERSION, parameters and time zones.

use bureau_groupware::contentline::{Comp, Line, unescape};
use std::collections::BTreeSet;

/// What a device holds for one content type: upper-case property names, "X-*" as every
/// extension, and "BEGIN:<NAME>" for each component it names.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Caps(pub BTreeSet<String>);

impl Caps {
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Caps {
        Caps(names.into_iter().map(|n| n.to_ascii_uppercase()).collect())
    }

    fn holds(&self, name: &str) -> bool {
        self.0.contains(name) || (name.starts_with("X-") && self.0.contains("X-*"))
    }

    /// Whether it holds this component: named in BEGIN's values, or BEGIN lists none.
    fn holds_component(&self, name: &str) -> bool {
        !self.0.iter().any(|n| n.starts_with("BEGIN:")) || self.0.contains(&format!("BEGIN:{name}"))
    }
}

/// Properties whose stored line always stands.
const STORED: [&str; 2] = ["UID", "VERSION"];

/// The device's object with what it could not hold taken from the stored one; None when
/// either does not parse as one component.
pub fn merge(stored: &str, device: &str, caps: Option<&Caps>) -> Option<String> {
    let stored = Comp::parse(stored)?;
    let mut device = Comp::parse(device)?;
    if !stored.name.eq_ignore_ascii_case(&device.name) {
        return None;
    }
    merge_comp(&stored, &mut device, caps);
    Some(device.text())
}

/// A device's object without the properties it sends empty ("TITLE:", "ADR:;;;;;;", as
/// phones send every field they have a place for), but N and FN, which a vCard 3.0 must
/// have. Lines are kept as they were, folded or not.
pub fn without_empty(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut keep = true;
    for l in text.split_inclusive('\n') {
        if !l.starts_with([' ', '\t']) {
            let line = Line::parse(l.trim_end_matches(['\r', '\n']));
            keep = !is_empty(&line) || matches!(line.name.as_str(), "N" | "FN");
        }
        if keep {
            out.push_str(l);
        }
    }
    out
}

fn is_empty(l: &Line) -> bool {
    l.value.chars().all(|c| c == ';' || c.is_whitespace())
}

fn merge_comp(stored: &Comp, device: &mut Comp, caps: Option<&Caps>) {
    let held = |name: &str| !STORED.contains(&name) && caps.is_none_or(|c| c.holds(name));
    let mut unused: Vec<Option<Line>> = stored.props.iter().map(|p| Some(Line::parse(p))).collect();
    let mut props = Vec::new();
    for raw in &device.props {
        let l = Line::parse(raw);
        if is_empty(&l) || !held(&l.name) {
            continue;
        }
        // The stored line of the same value, with its parameters.
        let same = unused.iter_mut().find(|s| {
            s.as_ref().is_some_and(|s| {
                s.name == l.name && unescape(s.value.trim()) == unescape(l.value.trim())
            })
        });
        match same.and_then(Option::take) {
            Some(s) => props.push(s.raw),
            None => props.push(raw.clone()),
        }
    }
    for s in unused.into_iter().flatten() {
        if !held(&s.name) {
            props.push(s.raw);
        }
    }
    // VERSION first, as vCard 4.0 and some readers want it.
    if let Some(i) = props.iter().position(|p| Line::parse(p).name == "VERSION") {
        let version = props.remove(i);
        props.insert(0, version);
    }
    device.props = props;

    let mut taken = vec![false; device.subs.len()];
    for s in &stored.subs {
        let pair = device
            .subs
            .iter()
            .enumerate()
            .position(|(i, d)| !taken[i] && same_sub(s, d));
        match pair {
            Some(i) => {
                taken[i] = true;
                merge_comp(s, &mut device.subs[i], caps);
            }
            None if s.name == "VTIMEZONE" || caps.is_some_and(|c| !c.holds_component(&s.name)) => {
                device.subs.push(s.clone());
                taken.push(true);
            }
            None => {}
        }
    }
}

/// Whether two sub-components are the same one: same name, and the same RECURRENCE-ID
/// (or TZID, for a time zone).
fn same_sub(a: &Comp, b: &Comp) -> bool {
    if a.name != b.name {
        return false;
    }
    let key = if a.name == "VTIMEZONE" {
        "TZID"
    } else {
        "RECURRENCE-ID"
    };
    let value = |c: &Comp| c.get(key).map(|l| l.value.trim().to_string());
    value(a) == value(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        let mut v: Vec<String> = bureau_groupware::contentline::unfold(text);
        v.sort();
        v
    }

    #[test]
    fn a_card_keeps_what_the_device_cannot_hold() {
        let stored = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u-1\r\nFN:Ann\r\nTEL;TYPE=work:111\r\n\
            EMAIL;TYPE=INTERNET,X-CUSTOM:a@x\r\nKEY:data:k\r\nX-SECRET:s\r\nNOTE:old\r\nEND:VCARD\r\n";
        // The device holds FN, TEL, EMAIL and NOTE; it changed the phone, dropped the note,
        // lost a parameter, its own UID and an empty title.
        let device = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:other\r\nFN:Ann\r\nTITLE:\r\n\
            TEL;TYPE=WORK:222\r\nEMAIL;TYPE=INTERNET:a@x\r\nEND:VCARD\r\n";
        let caps = Caps::of(["VERSION", "UID", "FN", "TEL", "EMAIL", "NOTE", "TITLE"]);
        let got = merge(stored, device, Some(&caps)).unwrap();
        assert!(got.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{got}");
        assert_eq!(
            lines(&got),
            lines(
                "BEGIN:VCARD\r\nFN:Ann\r\nTEL;TYPE=WORK:222\r\nEMAIL;TYPE=INTERNET,X-CUSTOM:a@x\r\n\
                VERSION:4.0\r\nUID:u-1\r\nKEY:data:k\r\nX-SECRET:s\r\nEND:VCARD\r\n"
            )
        );
        // "X-*" holds every extension: the device dropped it, so it goes.
        let caps = Caps::of(["FN", "TEL", "EMAIL", "NOTE", "KEY", "X-*"]);
        let got = merge(stored, device, Some(&caps)).unwrap();
        assert!(!got.contains("X-SECRET") && !got.contains("KEY:"), "{got}");
        // Without a CTCap the device's card stands, but not its UID or VERSION.
        let got = merge(stored, device, None).unwrap();
        assert!(got.contains("UID:u-1") && !got.contains("UID:other") && !got.contains("NOTE"));
        assert!(merge(stored, "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", None).is_none());
    }

    #[test]
    fn empty_properties_are_left_out() {
        let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:;;;;\r\nFN:\r\nTITLE:\r\nADR;TYPE=WORK:;;;;;;\r\n\
            NOTE:a long\r\n  note\r\nORG:;\r\n \r\nEND:VCARD\r\n";
        assert_eq!(
            without_empty(card),
            "BEGIN:VCARD\r\nVERSION:3.0\r\nN:;;;;\r\nFN:\r\nNOTE:a long\r\n  note\r\nEND:VCARD\r\n"
        );
    }

    #[test]
    fn an_event_keeps_its_time_zone_attendees_and_alarms_the_device_lacks() {
        let stored = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n\
            BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n\
            END:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:e-1\r\nSUMMARY:Old\r\n\
            DTSTART;TZID=Europe/Paris:20261201T100000\r\nATTENDEE:mailto:b@x\r\n\
            BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nUID:e-1\r\nRECURRENCE-ID:20261208T090000Z\r\nSUMMARY:Moved\r\n\
            END:VEVENT\r\nEND:VCALENDAR\r\n";
        let device = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nSUMMARY:New\r\n\
            DTSTART;TZID=Europe/Paris:20261201T100000\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nRECURRENCE-ID:20261208T090000Z\r\nSUMMARY:Moved again\r\n\
            END:VEVENT\r\nEND:VCALENDAR\r\n";
        let caps = Caps::of([
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "VERSION",
            "SUMMARY",
            "DTSTART",
            "RECURRENCE-ID",
        ]);
        let got = merge(stored, device, Some(&caps)).unwrap();
        let c = Comp::parse(&got).unwrap();
        let names: Vec<&str> = c.subs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["VEVENT", "VEVENT", "VTIMEZONE"]);
        let main = &c.subs[0];
        assert_eq!(main.get("UID").unwrap().value, "e-1");
        assert_eq!(main.get("SUMMARY").unwrap().value, "New");
        assert_eq!(main.get("ATTENDEE").unwrap().value, "mailto:b@x");
        assert_eq!(main.subs.len(), 1, "the alarm it cannot hold stays");
        assert_eq!(c.subs[1].get("SUMMARY").unwrap().value, "Moved again");
        assert_eq!(c.subs[1].get("UID").unwrap().value, "e-1");
        // A device that holds alarms and dropped this one deleted it.
        let caps = Caps::of(["BEGIN:VEVENT", "BEGIN:VALARM", "SUMMARY", "DTSTART"]);
        let got = merge(stored, device, Some(&caps)).unwrap();
        assert!(!got.contains("VALARM"), "{got}");
    }
}
