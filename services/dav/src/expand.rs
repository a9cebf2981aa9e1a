//! What a `calendar-data` element of a REPORT asks beyond the stored text (RFC 4791
//! 9.6.5–9.6.7): `expand` (each instance overlapping a range as its own component, in UTC,
//! without recurrence properties or time zones), `limit-recurrence-set` (the master and only
//! the overridden instances that overlap) and `limit-freebusy-set` (only the FREEBUSY
//! periods that overlap), and the components and properties to return (`comp`, `prop`,
//! `allcomp`, `allprop`: RFC 4791 9.6.1–9.6.4). Sans I/O: text in, text out, with calcard's
//! parser, recurrence expansion and writer.

use crate::xml::{CALDAV, Element};
use calcard::common::PartialDateTime;
use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType as T, ICalendarEntry, ICalendarParameter,
    ICalendarPeriod, ICalendarProperty as P, ICalendarValue, ICalendarValueType,
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CalData {
    expand: Option<(i64, i64)>,
    limit_recurrence: Option<(i64, i64)>,
    limit_freebusy: Option<(i64, i64)>,
    select: Option<Comp>,
}

/// A `comp` element: which of a component's properties and subcomponents to return. An
/// empty one returns the whole component, as RFC 4791's example 7.8.1 does with VTIMEZONE.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Comp {
    name: String,
    /// None: all; else by name, with whether only the name is wanted (novalue="yes").
    props: Option<Vec<(String, bool)>>,
    /// None: all.
    comps: Option<Vec<Comp>>,
}

impl Comp {
    fn of(e: &Element) -> Option<Comp> {
        let name = e.attr("name")?.trim().to_ascii_uppercase();
        let props: Vec<(String, bool)> = e
            .children_named(CALDAV, "prop")
            .filter_map(|p| {
                let novalue = p
                    .attr("novalue")
                    .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
                Some((p.attr("name")?.trim().to_ascii_uppercase(), novalue))
            })
            .collect();
        let comps: Vec<Comp> = e
            .children_named(CALDAV, "comp")
            .filter_map(Comp::of)
            .collect();
        let empty = e.children.is_empty();
        Some(Comp {
            name,
            props: (!empty && e.child(CALDAV, "allprop").is_none()).then_some(props),
            comps: (!empty && e.child(CALDAV, "allcomp").is_none()).then_some(comps),
        })
    }

    /// The selection for a subcomponent: None to leave it out.
    fn child(&self, name: &str) -> Option<Comp> {
        match &self.comps {
            None => Some(Comp {
                name: name.to_string(),
                props: None,
                comps: None,
            }),
            Some(cs) => cs
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name))
                .cloned(),
        }
    }

    /// Whether a property is kept, and if so whether without its value.
    fn prop(&self, name: &str) -> Option<bool> {
        match &self.props {
            None => Some(false),
            Some(ps) => ps
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, novalue)| *novalue),
        }
    }

    /// The text with only what is selected: line by line (a property's folded lines kept
    /// together), so what is kept is as stored.
    fn select(&self, text: &str) -> String {
        let mut logical: Vec<Vec<&str>> = Vec::new();
        for line in text.split_inclusive('\n') {
            match logical.last_mut() {
                Some(l) if line.starts_with([' ', '\t']) => l.push(line),
                _ => logical.push(vec![line]),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut stack: Vec<Option<Comp>> = Vec::new();
        for lines in logical {
            let first = lines[0].trim_end_matches(['\r', '\n']);
            let name = first
                .split([':', ';'])
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_uppercase();
            let value = first.split_once(':').map_or("", |(_, v)| v.trim());
            let keep = match name.as_str() {
                "BEGIN" => {
                    let sel = match stack.last() {
                        None => (self.name.eq_ignore_ascii_case(value)).then(|| self.clone()),
                        Some(Some(parent)) => parent.child(value),
                        Some(None) => None,
                    };
                    let keep = sel.is_some();
                    stack.push(sel);
                    keep
                }
                "END" => stack.pop().flatten().is_some(),
                _ => match stack.last() {
                    Some(Some(c)) => match c.prop(&name) {
                        None => false,
                        Some(false) => true,
                        Some(true) => {
                            // The name and parameters only (RFC 4791 9.6.4 novalue).
                            let unfolded: String = lines
                                .iter()
                                .enumerate()
                                .map(|(i, l)| {
                                    let l = l.trim_end_matches(['\r', '\n']);
                                    if i == 0 { l } else { &l[1..] }
                                })
                                .collect();
                            let cut = unfolded.find(':').map_or(unfolded.len(), |i| i + 1);
                            out.push_str(&unfolded[..cut]);
                            out.push_str("\r\n");
                            false
                        }
                    },
                    _ => false,
                },
            };
            if keep {
                lines.iter().for_each(|l| out.push_str(l));
            }
        }
        out
    }
}

/// A range's `start` and `end` attributes (UTC date-times, both required).
fn range(e: &Element) -> Option<(i64, i64)> {
    let at = |n| {
        chrono::NaiveDateTime::parse_from_str(e.attr(n)?.trim(), "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|t| t.and_utc().timestamp())
    };
    let (start, end) = (at("start")?, at("end")?);
    (start < end).then_some((start, end))
}

impl CalData {
    /// From a REPORT's `prop`: `None` when its calendar-data asks for the text as stored,
    /// `Err` when a range in it is malformed.
    pub(crate) fn of(root: &Element) -> Result<Option<CalData>, ()> {
        let Some(data) = root
            .child(crate::xml::DAV, "prop")
            .and_then(|p| p.child(CALDAV, "calendar-data"))
        else {
            return Ok(None);
        };
        let get = |name| match data.child(CALDAV, name) {
            None => Ok(None),
            Some(e) => range(e).map(Some).ok_or(()),
        };
        let d = CalData {
            expand: get("expand")?,
            limit_recurrence: get("limit-recurrence-set")?,
            limit_freebusy: get("limit-freebusy-set")?,
            select: data.child(CALDAV, "comp").and_then(Comp::of),
        };
        Ok((d != CalData::default()).then_some(d))
    }

    /// The object's text as asked; the stored text when calcard cannot read it.
    pub(crate) fn apply(&self, text: &str) -> String {
        let changed = self.expand.is_some()
            || self.limit_recurrence.is_some()
            || self.limit_freebusy.is_some();
        let text = if changed {
            self.transform(text)
        } else {
            text.to_string()
        };
        match &self.select {
            Some(c) => c.select(&text),
            None => text,
        }
    }

    /// Expansion and limits.
    fn transform(&self, text: &str) -> String {
        let mut parser = calcard::Parser::new(text);
        let calcard::Entry::ICalendar(mut cal) = parser.entry() else {
            return text.to_string();
        };
        if let Some((start, end)) = self.limit_freebusy {
            limit_freebusy(&mut cal, start, end);
        }
        if let Some((start, end)) = self.expand {
            cal = expand(&cal, start, end);
        } else if let Some((start, end)) = self.limit_recurrence {
            limit_recurrence(&mut cal, start, end);
        }
        cal.to_string()
    }
}

/// A date-time property at `ts` in UTC, or its date (`VALUE=DATE`) for an all-day event.
fn at(name: P, ts: i64, day: bool) -> ICalendarEntry {
    let mut d = PartialDateTime::from_utc_timestamp(ts);
    let mut params = Vec::new();
    if day {
        (d.hour, d.minute, d.second, d.tz_hour, d.tz_minute) = (None, None, None, None, None);
        params.push(ICalendarParameter::value(ICalendarValueType::Date));
    }
    ICalendarEntry {
        name,
        params,
        values: vec![ICalendarValue::PartialDateTime(Box::new(d))],
    }
}

/// Whether a component's DTSTART is a date (an all-day event keeps date values).
fn all_day(c: &ICalendarComponent) -> bool {
    c.entries.iter().any(|e| {
        e.name == P::Dtstart
            && matches!(e.values.first(), Some(ICalendarValue::PartialDateTime(d)) if d.hour.is_none())
    })
}

/// Copies component `id` of `from` and its sub-components into `to`, editing the copy's
/// entries with `edit`; gives the copy's index.
fn copy(
    from: &ICalendar,
    id: u32,
    to: &mut Vec<ICalendarComponent>,
    edit: &dyn Fn(&mut Vec<ICalendarEntry>),
) -> u32 {
    let src = &from.components[id as usize];
    let children: Vec<u32> = src
        .component_ids
        .iter()
        .filter(|c| (**c as usize) < from.components.len())
        .map(|c| copy(from, *c, to, &|_| {}))
        .collect();
    let mut entries = src.entries.clone();
    edit(&mut entries);
    to.push(ICalendarComponent {
        component_type: src.component_type.clone(),
        entries,
        component_ids: children,
    });
    (to.len() - 1) as u32
}

/// RFC 4791 9.6.5: every instance overlapping [start, end) as a component of its own, with
/// its RECURRENCE-ID, DTSTART and DTEND in UTC (dates for an all-day event) and no RRULE,
/// RDATE, EXDATE, EXRULE, DURATION or VTIMEZONE. Components without instances (a VTODO
/// without dates) are kept as they are.
fn expand(cal: &ICalendar, start: i64, end: i64) -> ICalendar {
    let Some(root) = cal.components.first() else {
        return cal.clone();
    };
    // Only as far as the range needs (a rule without end is not expanded for ever).
    let (instances, _) = bureau_groupware::busy::expand_until(cal, end);
    let zones = cal.build_tz_resolver().with_default(Tz::UTC);
    let timed: std::collections::HashSet<u32> = instances.iter().map(|i| i.1).collect();
    let mut out = vec![ICalendarComponent {
        component_type: T::VCalendar,
        entries: root.entries.clone(),
        component_ids: Vec::new(),
    }];
    let mut top = Vec::new();
    for &((s, f), comp_id) in &instances {
        if !(s < end && (f > start || (f == s && s >= start))) {
            continue;
        }
        let src = &cal.components[comp_id as usize];
        let day = all_day(src);
        // An overridden instance keeps the start of the instance it replaces; the others
        // are their own.
        let rid = src
            .entries
            .iter()
            .find(|x| x.name == P::RecurrenceId)
            .and_then(|r| match r.values.first() {
                Some(ICalendarValue::PartialDateTime(d)) => d
                    .to_date_time_with_tz(zones.resolve_or_default(r.tz_id()))
                    .map(|t| t.timestamp()),
                _ => None,
            })
            .unwrap_or(s);
        let edit = move |entries: &mut Vec<ICalendarEntry>| {
            entries.retain(|x| {
                !matches!(
                    x.name,
                    P::Dtstart
                        | P::Dtend
                        | P::Due
                        | P::Duration
                        | P::Rrule
                        | P::Rdate
                        | P::Exdate
                        | P::Exrule
                        | P::RecurrenceId
                )
            });
            entries.insert(0, at(P::Dtstart, s, day));
            entries.insert(1, at(P::Dtend, f, day));
            entries.insert(2, at(P::RecurrenceId, rid, day));
        };
        top.push(copy(cal, comp_id, &mut out, &edit));
    }
    // What has no instance to expand (a task without dates, a journal) stays whole.
    for id in &root.component_ids {
        let c = &cal.components[*id as usize];
        if c.component_type != T::VTimezone
            && !timed.contains(id)
            && !c.component_type.has_time_ranges()
        {
            top.push(copy(cal, *id, &mut out, &|_| {}));
        }
    }
    out[0].component_ids = top;
    ICalendar { components: out }
}

/// RFC 4791 9.6.6: the master component and the overridden instances that overlap.
fn limit_recurrence(cal: &mut ICalendar, start: i64, end: i64) {
    let (instances, _) = bureau_groupware::busy::expand_until(cal, end);
    let overlapping: std::collections::HashSet<u32> = instances
        .iter()
        .filter(|((s, f), _)| *s < end && *f > start)
        .map(|i| i.1)
        .collect();
    let Some(root) = cal.components.first() else {
        return;
    };
    let kept: Vec<u32> = root
        .component_ids
        .iter()
        .copied()
        .filter(|id| {
            let c = &cal.components[*id as usize];
            let overrides = c.entries.iter().any(|e| e.name == P::RecurrenceId);
            !overrides || overlapping.contains(id)
        })
        .collect();
    cal.components[0].component_ids = kept;
}

/// RFC 4791 9.6.7: in VFREEBUSY components, only the FREEBUSY periods that overlap.
fn limit_freebusy(cal: &mut ICalendar, start: i64, end: i64) {
    for c in &mut cal.components {
        if c.component_type != T::VFreebusy {
            continue;
        }
        for e in &mut c.entries {
            if e.name != P::Freebusy {
                continue;
            }
            e.values.retain(|v| match v {
                ICalendarValue::Period(p) => period(p).is_none_or(|(s, f)| s < end && f > start),
                _ => true,
            });
        }
        c.entries
            .retain(|e| e.name != P::Freebusy || !e.values.is_empty());
    }
}

/// A FREEBUSY period as UTC seconds.
fn period(p: &ICalendarPeriod) -> Option<(i64, i64)> {
    let at = |d: &PartialDateTime| d.to_date_time_with_tz(Tz::UTC).map(|t| t.timestamp());
    match p {
        ICalendarPeriod::Range { start, end } => Some((at(start)?, at(end)?)),
        ICalendarPeriod::Duration { start, duration } => {
            let s = at(start)?;
            Some((s, s + duration.as_seconds()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEEKLY: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n\
END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
END:DAYLIGHT\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:w\r\nDTSTAMP:20261101T000000Z\r\n\
DTSTART;TZID=Europe/Paris:20261102T100000\r\nDTEND;TZID=Europe/Paris:20261102T110000\r\n\
RRULE:FREQ=WEEKLY;COUNT=6\r\nEXDATE;TZID=Europe/Paris:20261109T100000\r\nSUMMARY:Weekly\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:w\r\nDTSTAMP:20261101T000000Z\r\n\
RECURRENCE-ID;TZID=Europe/Paris:20261116T100000\r\n\
DTSTART;TZID=Europe/Paris:20261116T150000\r\nDTEND;TZID=Europe/Paris:20261116T160000\r\n\
SUMMARY:Moved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    fn data(xml: &str) -> Option<CalData> {
        let doc = format!(
            "<d:propfind xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">\
             <d:prop><c:calendar-data>{xml}</c:calendar-data></d:prop></d:propfind>"
        );
        CalData::of(&crate::xml::parse(doc.as_bytes()).unwrap()).unwrap()
    }

    fn lines(text: &str, name: &str) -> Vec<String> {
        text.split("\r\n")
            .filter(|l| l.starts_with(name))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn expand_gives_each_instance_in_utc() {
        // 2 Nov to 30 Nov: the 2nd, the 16th moved to 15:00, the 23rd, the 30th (the 9th is
        // excluded); 7 Dec is outside.
        let d = data(r#"<c:expand start="20261102T000000Z" end="20261201T000000Z"/>"#).unwrap();
        let out = d.apply(WEEKLY);
        assert_eq!(
            lines(&out, "DTSTART"),
            [
                "DTSTART:20261102T090000Z",
                "DTSTART:20261116T140000Z",
                "DTSTART:20261123T090000Z",
                "DTSTART:20261130T090000Z",
            ]
        );
        assert_eq!(
            lines(&out, "RECURRENCE-ID"),
            [
                "RECURRENCE-ID:20261102T090000Z",
                "RECURRENCE-ID:20261116T090000Z",
                "RECURRENCE-ID:20261123T090000Z",
                "RECURRENCE-ID:20261130T090000Z",
            ]
        );
        assert_eq!(lines(&out, "DTEND")[0], "DTEND:20261102T100000Z");
        for gone in ["RRULE", "EXDATE", "BEGIN:VTIMEZONE", "TZID"] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        assert_eq!(
            lines(&out, "BEGIN:VALARM").len(),
            3,
            "alarms travel with instances"
        );
        assert_eq!(lines(&out, "SUMMARY:Moved").len(), 1);
        // The result is itself valid iCalendar.
        assert!(matches!(
            calcard::Parser::new(&out).entry(),
            calcard::Entry::ICalendar(_)
        ));
    }

    #[test]
    fn an_endless_rule_is_expanded_over_the_range_only() {
        let daily = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\n\
UID:d\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261101T080000Z\r\nDURATION:PT30M\r\n\
RRULE:FREQ=DAILY\r\nSUMMARY:Stand-up\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let d = data(r#"<c:expand start="20270104T000000Z" end="20270111T000000Z"/>"#).unwrap();
        let out = d.apply(daily);
        let starts = lines(&out, "DTSTART");
        assert_eq!(starts.len(), 7, "{out}");
        assert_eq!(starts[0], "DTSTART:20270104T080000Z");
        assert_eq!(lines(&out, "DTEND")[0], "DTEND:20270104T083000Z");
        assert!(!out.contains("DURATION") && !out.contains("RRULE"));
    }

    #[test]
    fn limit_recurrence_set_keeps_the_master_and_overlapping_overrides() {
        let d =
            data(r#"<c:limit-recurrence-set start="20261120T000000Z" end="20261201T000000Z"/>"#)
                .unwrap();
        let out = d.apply(WEEKLY);
        assert!(
            out.contains("RRULE:") && !out.contains("SUMMARY:Moved"),
            "{out}"
        );
        let d =
            data(r#"<c:limit-recurrence-set start="20261116T000000Z" end="20261117T000000Z"/>"#)
                .unwrap();
        assert!(d.apply(WEEKLY).contains("SUMMARY:Moved"));
    }

    #[test]
    fn limit_freebusy_set_keeps_overlapping_periods() {
        let fb = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VFREEBUSY\r\n\
UID:f\r\nDTSTAMP:20261101T000000Z\r\nFREEBUSY:20261102T090000Z/20261102T100000Z\r\n\
FREEBUSY:20261110T090000Z/PT1H\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n";
        let d = data(r#"<c:limit-freebusy-set start="20261109T000000Z" end="20261111T000000Z"/>"#)
            .unwrap();
        let out = d.apply(fb);
        assert_eq!(lines(&out, "FREEBUSY"), ["FREEBUSY:20261110T090000Z/PT1H"]);
    }

    #[test]
    fn ranges_are_checked() {
        assert_eq!(data(""), None);
        for bad in [
            r#"<c:expand start="20261102T000000Z"/>"#,
            r#"<c:expand start="2026-11-02" end="20261201T000000Z"/>"#,
            r#"<c:expand start="20261201T000000Z" end="20261102T000000Z"/>"#,
        ] {
            let doc = format!(
                "<d:propfind xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">\
                 <d:prop><c:calendar-data>{bad}</c:calendar-data></d:prop></d:propfind>"
            );
            assert!(
                CalData::of(&crate::xml::parse(doc.as_bytes()).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn components_and_properties_are_selected() {
        // RFC 4791 7.8.1's selection: VERSION, some VEVENT properties, the whole VTIMEZONE.
        let d = data(
            "<c:comp name=\"VCALENDAR\"><c:prop name=\"VERSION\"/><c:comp name=\"VEVENT\">\
             <c:prop name=\"SUMMARY\"/><c:prop name=\"UID\"/><c:prop name=\"DTSTART\"/>\
             <c:prop name=\"DESCRIPTION\" novalue=\"yes\"/><c:prop name=\"RRULE\" novalue=\"yes\"/>\
             </c:comp><c:comp name=\"VTIMEZONE\"/></c:comp>",
        )
        .unwrap();
        let out = d.apply(WEEKLY);
        assert!(
            out.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\n"),
            "{out}"
        );
        assert!(
            out.contains("BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n"),
            "{out}"
        );
        assert!(out.contains("SUMMARY:Weekly\r\n") && out.contains("SUMMARY:Moved\r\n"));
        assert!(
            out.contains("RRULE:\r\n") && !out.contains("FREQ=WEEKLY"),
            "{out}"
        );
        for gone in [
            "PRODID",
            "DTEND",
            "DTSTAMP",
            "EXDATE",
            "RECURRENCE-ID",
            "VALARM",
        ] {
            assert!(!out.contains(gone), "{gone} in {out}");
        }
        assert!(out.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        // allprop and allcomp; another component type returns nothing of it.
        let d = data(
            "<c:comp name=\"VCALENDAR\"><c:allprop/><c:comp name=\"VEVENT\"><c:allprop/><c:allcomp/></c:comp></c:comp>",
        )
        .unwrap();
        let out = d.apply(WEEKLY);
        assert!(
            out.contains("PRODID") && out.contains("BEGIN:VALARM") && !out.contains("VTIMEZONE")
        );
        let d = data("<c:comp name=\"VTODO\"/>").unwrap();
        assert_eq!(d.apply(WEEKLY), "");
    }
}
