//! What a calendar or contact object must be to be stored (issue 19: broken objects were
//! stored with 201, and one made python-caldav's search fail for the whole calendar).
//! calcard reads leniently, so the rules it lets pass are checked here: components that
//! open must close, in order; a VEVENT has a DTSTART that is a date or date-time; an RRULE
//! is a rule; a vCard has its UID (RFC 6352 5.1) and its END. The reason is said in the
//! error body. `check_object` applies them all and gives the props an object is indexed by.

use crate::Kind;
use crate::http::{self, Resp};
use crate::xml::{CALDAV, CARDDAV};
use bureau_store::prop;
use calcard::icalendar::{ICalendar, ICalendarComponentType, ICalendarProperty, ICalendarValue};
use calcard::vcard::VCard;
use hyper::StatusCode;

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

/// Why an object may not be stored: the CalDAV/CardDAV precondition it fails and, in words,
/// what is wrong.
pub(crate) struct Invalid {
    pub precondition: &'static str,
    pub why: String,
}

impl Invalid {
    fn data(kind: Kind, why: impl Into<String>) -> Invalid {
        Invalid {
            precondition: match kind {
                Kind::Calendar => "valid-calendar-data",
                Kind::Contacts => "valid-address-data",
            },
            why: why.into(),
        }
    }

    /// The 403 with the precondition and the reason (RFC 4791 5.3.2, RFC 6352 6.3.2.1).
    pub(crate) fn resp(&self, kind: Kind) -> Resp {
        let ns = match kind {
            Kind::Calendar => CALDAV,
            Kind::Contacts => CARDDAV,
        };
        http::dav_error_because(StatusCode::FORBIDDEN, ns, self.precondition, &self.why)
    }
}

/// Checks a vCard by the rules a CardDAV PUT follows (for ActiveSync's and other writes of
/// contacts): the reason when it breaks one.
pub fn check_card(text: &str) -> Result<(), String> {
    check_object(Kind::Contacts, text.as_bytes())
        .map(drop)
        .map_err(|e| e.why)
}

/// The props an object is indexed by (UID, component, organizer, time span), once it is
/// found fit to store; else a 403 saying why.
pub(crate) fn object_props(
    kind: Kind,
    body: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, Resp> {
    check_object(kind, body).map_err(|e| e.resp(kind))
}

/// Checks an object by the rules every write follows (validate.rs, RFC 4791 4.1, RFC 6352
/// 5.1) and gives the props it is indexed by.
pub(crate) fn check_object(
    kind: Kind,
    body: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, Invalid> {
    let bad = |why: &str| Invalid::data(kind, why);
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    balanced(text).map_err(|why| Invalid::data(kind, why))?;
    let mut props = std::collections::BTreeMap::new();
    match kind {
        Kind::Calendar => {
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
            calendar(&cal).map_err(|why| Invalid::data(kind, why))?;
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
                    precondition: "valid-calendar-object-resource",
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
            if let Some((from, to)) = crate::report::span(&cal, text) {
                props.insert(prop::SPAN.into(), prop::span_value(from, to));
            }
        }
        Kind::Contacts => {
            let mut parser = calcard::Parser::new(text);
            let calcard::Entry::VCard(card) = parser.entry() else {
                return Err(bad("not a vCard"));
            };
            // A single vCard per resource (RFC 6352 5.1), nothing after it.
            if !matches!(parser.entry(), calcard::Entry::Eof) {
                return Err(bad("more than one vCard in the resource"));
            }
            self::card(&card).map_err(|why| Invalid::data(kind, why))?;
            if let Some(uid) = card.uid() {
                props.insert(prop::UID.into(), uid.to_string());
            }
        }
    }
    Ok(props)
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
