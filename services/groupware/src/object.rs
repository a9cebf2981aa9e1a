//! What a calendar or contact object must be to be stored, whichever protocol brings it
//! (issue 19: broken objects were stored with 201, and one made python-caldav's search fail
//! for the whole calendar). calcard reads leniently, so the rules it lets pass are checked
//! here: components that open must close, in order; a VEVENT has a DTSTART that is a date
//! or date-time; an RRULE is a rule; a vCard has its UID (RFC 6352 5.1) and its END. The
//! reason is said in words. `check` applies them all and gives the props an object is
//! indexed by (`bureau_store::prop`), its recurrence span among them.

use bureau_store::prop;
use calcard::icalendar::{ICalendar, ICalendarComponentType, ICalendarProperty, ICalendarValue};
use calcard::vcard::VCard;
use std::collections::BTreeMap;

/// What an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// An iCalendar object: events, to-dos, journals.
    Calendar,
    /// A vCard.
    Contact,
}

/// Which rule an object breaks: its data (not valid iCalendar or vCard by the rules
/// here), or the one-object-per-resource rule (RFC 4791 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Data,
    Resource,
}

/// Why an object may not be stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{why}")]
pub struct Invalid {
    pub fault: Fault,
    pub why: String,
}

fn bad(why: impl Into<String>) -> Invalid {
    Invalid {
        fault: Fault::Data,
        why: why.into(),
    }
}

/// Whether BEGIN and END lines pair up, innermost first (lines unfolded).
fn balanced(text: &str) -> Result<(), Invalid> {
    let mut open: Vec<String> = Vec::new();
    let mut unfolded: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match (line.starts_with([' ', '\t']), unfolded.last_mut()) {
            (true, Some(last)) => last.push_str(&line[1..]),
            _ => unfolded.push(line.to_string()),
        }
    }
    for line in &unfolded {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.split(';').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("BEGIN") {
            open.push(value.trim().to_ascii_uppercase());
        } else if name.eq_ignore_ascii_case("END") {
            match open.pop() {
                Some(o) if o.eq_ignore_ascii_case(value.trim()) => {}
                Some(o) => return Err(bad(format!("END:{} closes BEGIN:{o}", value.trim()))),
                None => return Err(bad(format!("END:{} without its BEGIN", value.trim()))),
            }
        }
    }
    match open.last() {
        Some(o) => Err(bad(format!("BEGIN:{o} is never closed"))),
        None => Ok(()),
    }
}

/// The rules for a calendar object's components.
fn calendar(cal: &ICalendar) -> Result<(), Invalid> {
    for c in &cal.components {
        let is_event = c.component_type == ICalendarComponentType::VEvent;
        let dtstart = c.property(&ICalendarProperty::Dtstart);
        if is_event && dtstart.is_none() {
            return Err(bad("a VEVENT needs a DTSTART"));
        }
        for (prop, what) in [
            (ICalendarProperty::Dtstart, "DTSTART"),
            (ICalendarProperty::Dtend, "DTEND"),
            (ICalendarProperty::Due, "DUE"),
        ] {
            for e in c.properties(&prop) {
                if !e
                    .values
                    .iter()
                    .any(|v| matches!(v, ICalendarValue::PartialDateTime(_)))
                {
                    return Err(bad(format!("{what} is not a date or date-time")));
                }
            }
        }
        for e in c.properties(&ICalendarProperty::Rrule) {
            if !e
                .values
                .iter()
                .all(|v| matches!(v, ICalendarValue::RecurrenceRule(_)))
            {
                return Err(bad("RRULE is not a recurrence rule"));
            }
        }
    }
    Ok(())
}

/// The rules for a vCard.
fn card(card: &VCard) -> Result<(), Invalid> {
    if card.uid().is_none_or(str::is_empty) {
        return Err(bad("a vCard needs a UID (RFC 6352 5.1)"));
    }
    Ok(())
}

/// The deepest nesting of components (VCALENDAR > VEVENT > VALARM is 3), walked without
/// recursion. Objects deeper than `limits.component_depth` are refused, so every walker
/// over a stored object is bounded, whatever a client sent.
fn component_depth(cal: &calcard::icalendar::ICalendar) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(0u32, 1usize)];
    let mut seen = 0usize;
    while let Some((id, depth)) = stack.pop() {
        seen += 1;
        let Some(c) = cal.components.get(id as usize) else {
            continue;
        };
        deepest = deepest.max(depth);
        if depth > bureau_core::limits::get().component_depth || seen > cal.components.len() {
            break;
        }
        stack.extend(c.component_ids.iter().map(|i| (*i, depth + 1)));
    }
    deepest
}

/// Instances expanded when an object is stored, to find its span.
const SPAN_INSTANCES: usize = 1_000;
/// When an object's instances begin and end (kept as `prop::SPAN`, so that time-range
/// queries parse only the objects that may match); None when it has no dated instance (a
/// to-do without dates). A rule without COUNT or UNTIL, or with more instances than are expanded
/// here, runs to the end of time.
pub fn span(cal: &calcard::icalendar::ICalendar, text: &str) -> Option<(i64, i64)> {
    let open = text.lines().any(|l| {
        let l = l.to_ascii_uppercase();
        l.starts_with("RRULE") && !l.contains("COUNT=") && !l.contains("UNTIL=")
    });
    // A rule without end needs only its first instances, for the start.
    let limit = if open { 64 } else { SPAN_INSTANCES };
    let expanded = cal.expand_dates(calcard::common::timezone::Tz::UTC, limit);
    let from = expanded.events.iter().map(|e| e.timestamps().0).min()?;
    let endless = open || expanded.events.len() >= limit;
    let to = if endless {
        i64::MAX
    } else {
        expanded.events.iter().map(|e| e.timestamps().1).max()?
    };
    Some((from, to))
}

/// Checks a vCard by the rules every write of a contact follows.
pub fn check_card(text: &str) -> Result<(), Invalid> {
    check(ObjectKind::Contact, text.as_bytes()).map(drop)
}

/// Checks an object by the rules every write follows (RFC 4791 4.1, RFC 6352 5.1) and
/// gives the props it is indexed by.
pub fn check(kind: ObjectKind, body: &[u8]) -> Result<BTreeMap<String, String>, Invalid> {
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    balanced(text)?;
    let mut props = BTreeMap::new();
    match kind {
        ObjectKind::Calendar => {
            let mut parser = calcard::Parser::new(text);
            let calcard::Entry::ICalendar(cal) = parser.entry() else {
                return Err(bad("not an iCalendar object"));
            };
            // One object per resource, nothing after it (RFC 4791 4.1).
            if !matches!(parser.entry(), calcard::Entry::Eof) {
                return Err(bad("more than one object in the resource"));
            }
            if component_depth(&cal) > bureau_core::limits::get().component_depth {
                return Err(bad("components nested too deep"));
            }
            calendar(&cal)?;
            use calcard::icalendar::ICalendarComponentType as T;
            let main: Vec<_> = cal
                .components
                .iter()
                .filter(|c| matches!(c.component_type, T::VEvent | T::VTodo | T::VJournal))
                .collect();
            let Some(first) = main.first() else {
                return Err(bad("no VEVENT, VTODO or VJOURNAL"));
            };
            // One object, one UID (RFC 4791 4.1); instances may repeat it.
            let uid = first.uid().ok_or_else(|| bad("no UID"))?;
            if main
                .iter()
                .any(|c| c.uid() != Some(uid) || c.component_type != first.component_type)
            {
                return Err(Invalid {
                    fault: Fault::Resource,
                    why: "components of more than one UID or kind".into(),
                });
            }
            props.insert(prop::UID.into(), uid.to_string());
            props.insert(
                prop::COMPONENT.into(),
                first.component_type.as_str().to_string(),
            );
            if let Some(org) = first
                .property(&calcard::icalendar::ICalendarProperty::Organizer)
                .and_then(|e| e.calendar_address())
            {
                props.insert(prop::ORGANIZER.into(), org.to_ascii_lowercase());
            }
            if let Some((from, to)) = span(&cal, text) {
                props.insert(prop::SPAN.into(), prop::span_value(from, to));
            }
        }
        ObjectKind::Contact => {
            let mut parser = calcard::Parser::new(text);
            let calcard::Entry::VCard(card) = parser.entry() else {
                return Err(bad("not a vCard"));
            };
            // A single vCard per resource (RFC 6352 5.1), nothing after it.
            if !matches!(parser.entry(), calcard::Entry::Eof) {
                return Err(bad("more than one vCard in the resource"));
            }
            self::card(&card)?;
            if let Some(uid) = card.uid() {
                props.insert(prop::UID.into(), uid.to_string());
            }
        }
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: &str) -> String {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n{body}END:VCALENDAR\r\n")
    }

    #[test]
    fn a_sound_event_is_indexed_by_uid_component_organizer_and_span() {
        let text = event(
            "BEGIN:VEVENT\r\nUID:a@x\r\nDTSTAMP:20261201T000000Z\r\n\
             DTSTART:20261207T100000Z\r\nDTEND:20261207T110000Z\r\n\
             ORGANIZER:mailto:Boss@X.example\r\nEND:VEVENT\r\n",
        );
        let props = check(ObjectKind::Calendar, text.as_bytes()).unwrap();
        assert_eq!(props[prop::UID], "a@x");
        assert_eq!(props[prop::COMPONENT], "VEVENT");
        assert_eq!(props[prop::ORGANIZER], "boss@x.example");
        let start = 1_796_637_600; // 2026-12-07T10:00:00Z
        assert_eq!(props[prop::SPAN], prop::span_value(start, start + 3600));
    }

    #[test]
    fn broken_objects_are_refused_with_their_reason() {
        let refused = |kind, text: &str| check(kind, text.as_bytes()).unwrap_err();
        let no_start = refused(
            ObjectKind::Calendar,
            &event("BEGIN:VEVENT\r\nUID:a\r\nDTSTAMP:20261201T000000Z\r\nEND:VEVENT\r\n"),
        );
        assert_eq!(
            (no_start.fault, no_start.why.as_str()),
            (Fault::Data, "a VEVENT needs a DTSTART")
        );
        let two = refused(
            ObjectKind::Calendar,
            &event(
                "BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20261207T100000Z\r\nEND:VEVENT\r\n\
                 BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20261207T100000Z\r\nEND:VEVENT\r\n",
            ),
        );
        assert_eq!(two.fault, Fault::Resource);
        let cut = refused(ObjectKind::Calendar, "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n");
        assert!(cut.why.contains("never closed"), "{}", cut.why);
        assert!(
            check_card("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nEND:VCARD\r\n")
                .unwrap_err()
                .why
                .contains("UID")
        );
        assert!(check_card("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u\r\nFN:A\r\nEND:VCARD\r\n").is_ok());
        let deep = format!(
            "BEGIN:VCALENDAR\r\n{}{}END:VCALENDAR\r\n",
            "BEGIN:X\r\n".repeat(200),
            "END:X\r\n".repeat(200)
        );
        assert_eq!(refused(ObjectKind::Calendar, &deep).fault, Fault::Data);
    }

    #[test]
    fn begin_and_end_pair_up() {
        assert!(balanced("BEGIN:A\r\nBEGIN:B\r\nEND:B\r\nEND:A\r\n").is_ok());
        assert!(balanced("BEGIN:A\r\nBEGIN:B\r\nEND:A\r\n").is_err());
        assert!(balanced("BEGIN:A\r\nX:1\r\n").is_err());
        assert!(balanced("BEGIN:A\r\nX:lo\r\n ng\r\nEND:A\r\n").is_ok());
        assert!(balanced("BEGIN:A\r\nEN\r\n D:A\r\n").is_ok());
        assert!(balanced("END:A\r\n").is_err());
    }
}
