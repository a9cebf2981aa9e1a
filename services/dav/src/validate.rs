//! What a calendar or contact object must be to be stored (issue 19: broken objects were
//! stored with 201, and one made python-caldav's search fail for the whole calendar).
//! calcard reads leniently, so the rules it lets pass are checked here: components that
//! open must close, in order; a VEVENT has a DTSTART that is a date or date-time; an RRULE
//! is a rule; a vCard has its UID (RFC 6352 5.1) and its END. The reason is said in the
//! error body.

use calcard::icalendar::{ICalendar, ICalendarComponentType, ICalendarProperty, ICalendarValue};
use calcard::vcard::VCard;

/// Whether BEGIN and END lines pair up, innermost first (lines unfolded).
pub(crate) fn balanced(text: &str) -> Result<(), String> {
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
                Some(o) => return Err(format!("END:{} closes BEGIN:{o}", value.trim())),
                None => return Err(format!("END:{} without its BEGIN", value.trim())),
            }
        }
    }
    match open.last() {
        Some(o) => Err(format!("BEGIN:{o} is never closed")),
        None => Ok(()),
    }
}

/// The rules for a calendar object's components.
pub(crate) fn calendar(cal: &ICalendar) -> Result<(), String> {
    for c in &cal.components {
        let is_event = c.component_type == ICalendarComponentType::VEvent;
        let dtstart = c.property(&ICalendarProperty::Dtstart);
        if is_event && dtstart.is_none() {
            return Err("a VEVENT needs a DTSTART".into());
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
                    return Err(format!("{what} is not a date or date-time"));
                }
            }
        }
        for e in c.properties(&ICalendarProperty::Rrule) {
            if !e
                .values
                .iter()
                .all(|v| matches!(v, ICalendarValue::RecurrenceRule(_)))
            {
                return Err("RRULE is not a recurrence rule".into());
            }
        }
    }
    Ok(())
}

/// The rules for a vCard.
pub(crate) fn card(card: &VCard) -> Result<(), String> {
    if card.uid().is_none_or(str::is_empty) {
        return Err("a vCard needs a UID (RFC 6352 5.1)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn begin_and_end_pair_up() {
        assert!(super::balanced("BEGIN:A\r\nBEGIN:B\r\nEND:B\r\nEND:A\r\n").is_ok());
        assert!(super::balanced("BEGIN:A\r\nBEGIN:B\r\nEND:A\r\n").is_err());
        assert!(super::balanced("BEGIN:A\r\nX:1\r\n").is_err());
        assert!(super::balanced("BEGIN:A\r\nX:lo\r\n ng\r\nEND:A\r\n").is_ok());
        assert!(super::balanced("BEGIN:A\r\nEN\r\n D:A\r\n").is_ok());
        assert!(super::balanced("END:A\r\n").is_err());
    }
}
