//! The Calendar class (MS-ASCAL) from and into the iCalendar events CalDAV keeps.
//!
//! Reading: the master VEVENT is the item; its EXDATEs and RECURRENCE-ID overrides are the
//! Exceptions. Times go out in UTC with the event's zone as Timezone; an all-day event is
//! midnight to midnight in the device's zone (the last one it sent, else the box's).
//!
//! Writing, as for contacts: each field the device sends owns the properties it stands for
//! (Subject → SUMMARY, StartTime/EndTime/AllDayEvent → DTSTART/DTEND/DURATION, Reminder →
//! the first relative VALARM, ...). Those lines are replaced; every other line and
//! component (X- properties, ATTACH, CONFERENCE, COLOR, other alarms, other clients'
//! parameters, a kept attendee's own line) stays byte for byte. From 16.0 a field the
//! device leaves out is unchanged (MS-ASCAL 3.1.5.3); before 16.0 the item comes whole and
//! a field left out is removed, except those devices routinely leave out: the body, the
//! organizer and the attendees. calcard resolves time zones, makes VTIMEZONEs and checks
//! the result; the lines themselves are kept as text so what is untouched stays exact.

mod meeting;
mod recurrence;

use crate::classes::ConvertError;
use crate::formats::body::{BodyPreference, plain_body};
use crate::formats::wbxml::{Element, page};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bureau_groupware::contentline::{Comp, Line, esc, split, unescape};
use bureau_groupware::tzi::{Tzi, local_in};
pub use bureau_groupware::when::{At, Zones, duration, midnight};
use chrono::{Datelike, Duration, NaiveDateTime};
pub use meeting::{invitation_of, meeting_request, object_name, respond, uid_of, usable_uid};
use recurrence::*;
pub use recurrence::{task_recurrence, task_rule};

/// What reading and writing an event need besides its text.
pub struct View {
    /// The protocol version as a number (161).
    pub version: u32,
    /// The user's own addresses, lower case.
    pub me: Vec<String>,
    /// The device's clock: all-day events and floating times are in it.
    pub device: Tzi,
    /// The box's zone: preferred when several zones match a device's clock.
    pub home: chrono_tz::Tz,
}

/// ActiveSync's compact UTC form (MS-ASDTYPE 2.7.2).
pub fn compact(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A device's date-time: compact ("20261201T090000Z") or long ("2026-12-01T09:00:00.000Z").
pub fn parse_time(v: &str) -> Option<NaiveDateTime> {
    let v = v.trim().trim_end_matches('Z');
    NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S")
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
}

fn cal(name: &'static str) -> Element {
    Element::new(page::CALENDAR, name)
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

fn text_of(c: &Comp, name: &str) -> Option<String> {
    c.get(name)
        .map(|l| unescape(&l.value))
        .filter(|v| !v.is_empty())
}

fn address(value: &str) -> String {
    let v = value.trim();
    let v = if v.len() > 7 && v[..7].eq_ignore_ascii_case("mailto:") {
        &v[7..]
    } else {
        v
    };
    v.to_ascii_lowercase()
}

/// The main VEVENT and its overrides.
fn events(vcal: &Comp) -> Option<(usize, Vec<usize>)> {
    let all: Vec<usize> = (0..vcal.subs.len())
        .filter(|i| vcal.subs[*i].name == "VEVENT")
        .collect();
    let master = *all
        .iter()
        .find(|i| vcal.subs[**i].get("RECURRENCE-ID").is_none())
        .or(all.first())?;
    Some((master, all.into_iter().filter(|i| *i != master).collect()))
}

fn end_of(c: &Comp, start: &At, zones: &Zones, dev: &Tzi) -> NaiveDateTime {
    let s = start.utc(dev);
    if let Some(e) = zones.at(c, "DTEND") {
        return e.utc(dev);
    }
    let length = match c.get("DURATION").and_then(|l| duration(&l.value)) {
        Some(d) => d,
        None if start.is_date() => Duration::days(1),
        None => Duration::zero(),
    };
    // A duration past the calendar's end is none.
    s.checked_add_signed(length).unwrap_or(s)
}

/// The reminder: minutes before the start, of the first alarm relative to the start.
fn reminder(c: &Comp) -> Option<(usize, i64)> {
    c.subs.iter().enumerate().find_map(|(i, s)| {
        let t = s.get("TRIGGER").filter(|_| s.name == "VALARM")?;
        if t.param("VALUE").is_some() || t.param("RELATED").is_some_and(|r| r == "END") {
            return None;
        }
        Some((i, -duration(&t.value)?.num_minutes()))
    })
}

fn attendee_status(partstat: Option<&str>) -> &'static str {
    match partstat.map(|p| p.to_ascii_uppercase()).as_deref() {
        Some("ACCEPTED") => "3",
        Some("TENTATIVE") => "2",
        Some("DECLINED") => "4",
        Some("NEEDS-ACTION") | None => "5",
        _ => "0",
    }
}

/// What an override or the master shows besides times: body, busy status, location,
/// reminder, sensitivity, subject, categories.
fn describe(c: &Comp, v: &View, pref: &BodyPreference, mut d: Element) -> Element {
    if let Some(body) = text_of(c, "DESCRIPTION") {
        d = d.with(plain_body(&body, pref));
    }
    let busy = match c
        .get("X-MICROSOFT-CDO-BUSYSTATUS")
        .map(|l| l.value.to_ascii_uppercase())
        .as_deref()
    {
        Some("FREE") => "0",
        Some("TENTATIVE") => "1",
        Some("OOF") => "3",
        Some("WORKINGELSEWHERE") => "4",
        Some(_) => "2",
        None => match (c.get("TRANSP"), c.get("STATUS")) {
            (Some(t), _) if t.value.eq_ignore_ascii_case("TRANSPARENT") => "0",
            (_, Some(s)) if s.value.eq_ignore_ascii_case("TENTATIVE") => "1",
            _ => "2",
        },
    };
    d = d.with(cal("BusyStatus").text(busy));
    if let Some(loc) = text_of(c, "LOCATION") {
        d = d.with(if v.version >= 160 {
            Element::new(page::AIRSYNCBASE, "Location").with_text("DisplayName", loc)
        } else {
            cal("Location").text(loc)
        });
    }
    if let Some((_, minutes)) = reminder(c).filter(|(_, m)| *m >= 0) {
        d = d.with(cal("Reminder").text(minutes.to_string()));
    }
    d = d.with(cal("Sensitivity").text(sensitivity(c)));
    d = d.with(cal("Subject").text(text_of(c, "SUMMARY").unwrap_or_default()));
    categories(c, page::CALENDAR, d)
}

/// CLASS as Sensitivity: 0 normal, 2 private, 3 confidential.
pub fn sensitivity(c: &Comp) -> &'static str {
    match c
        .get("CLASS")
        .map(|l| l.value.to_ascii_uppercase())
        .as_deref()
    {
        Some("PRIVATE") => "2",
        Some("CONFIDENTIAL") => "3",
        _ => "0",
    }
}

/// Sensitivity as CLASS: personal and private are PRIVATE; normal has no CLASS.
pub fn set_sensitivity(c: &mut Comp, value: Option<&str>) {
    c.remove(&["CLASS"]);
    match value.map(str::trim) {
        Some("1" | "2") => c.props.push("CLASS:PRIVATE".into()),
        Some("3") => c.props.push("CLASS:CONFIDENTIAL".into()),
        _ => {}
    }
}

/// CATEGORIES lines as Categories/Category of a page.
pub fn categories(c: &Comp, page: u8, d: Element) -> Element {
    let cats: Vec<String> = c
        .props
        .iter()
        .map(|p| Line::parse(p))
        .filter(|l| l.name == "CATEGORIES")
        .flat_map(|l| split(&l.value, ','))
        .filter(|c| !c.is_empty())
        .collect();
    if cats.is_empty() {
        return d;
    }
    let mut e = Element::new(page, "Categories");
    for c in cats {
        e = e.with(Element::new(page, "Category").text(c));
    }
    d.with(e)
}

/// A stored event as the Calendar class's ApplicationData; None when it is no event.
pub fn event_data(text: &str, v: &View, pref: &BodyPreference) -> Option<Element> {
    let vcal = Comp::parse(text)?;
    let zones = Zones::of(text);
    let (mi, overrides) = events(&vcal)?;
    let master = &vcal.subs[mi];
    let dev = &v.device;
    let start = zones.at(master, "DTSTART")?;
    let start_utc = start.utc(dev);
    let end_utc = end_of(master, &start, &zones, dev);
    let tzi = match start {
        At::Zoned(_, z) => Tzi::of_zone(z, start_utc.year()),
        _ => dev.clone(),
    };
    let mut d = Element::new(page::AIRSYNC, "ApplicationData")
        .with(cal("Timezone").text(B64.encode(tzi.encode())))
        .with(cal("AllDayEvent").text(flag(start.is_date())));
    let organizer = master.get("ORGANIZER");
    let organizer_addr = organizer.as_ref().map(|o| address(&o.value));
    if let Some(o) = &organizer {
        if let Some(n) = o.param("CN") {
            d = d.with(cal("OrganizerName").text(n));
        }
        d = d.with(cal("OrganizerEmail").text(address(&o.value)));
    }
    if let Some(stamp) = zones.at(master, "DTSTAMP") {
        d = d.with(cal("DtStamp").text(compact(stamp.utc(dev))));
    }
    d = d
        .with(cal("StartTime").text(compact(start_utc)))
        .with(cal("EndTime").text(compact(end_utc)));
    d = describe(master, v, pref, d);
    if let Some(uid) = text_of(master, "UID") {
        d = d.with(cal("UID").text(uid));
    }
    let attendees: Vec<Line> = master
        .props
        .iter()
        .map(|p| Line::parse(p))
        .filter(|l| l.name == "ATTENDEE")
        .collect();
    let i_organize = organizer_addr.as_ref().is_none_or(|o| v.me.contains(o));
    let cancelled = master
        .get("STATUS")
        .is_some_and(|s| s.value.eq_ignore_ascii_case("CANCELLED"));
    let meeting_status = match (attendees.is_empty(), i_organize) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 3,
    } + if cancelled && !attendees.is_empty() {
        4
    } else {
        0
    };
    d = d.with(cal("MeetingStatus").text(meeting_status.to_string()));
    if !attendees.is_empty() {
        let mut list = cal("Attendees");
        for a in &attendees {
            let mut e = cal("Attendee").with(cal("Email").text(address(&a.value)));
            e = e.with(
                cal("Name").text(
                    a.param("CN")
                        .map_or_else(|| address(&a.value), str::to_string),
                ),
            );
            let kind = match (a.param("ROLE"), a.param("CUTYPE")) {
                (_, Some(c))
                    if c.eq_ignore_ascii_case("RESOURCE") || c.eq_ignore_ascii_case("ROOM") =>
                {
                    "3"
                }
                (Some(r), _) if r.eq_ignore_ascii_case("OPT-PARTICIPANT") => "2",
                _ => "1",
            };
            e = e
                .with(cal("AttendeeStatus").text(attendee_status(a.param("PARTSTAT"))))
                .with(cal("AttendeeType").text(kind));
            list = list.with(e);
        }
        d = d.with(list);
    }
    if let Some(rule) = master.get("RRULE") {
        let until = |u: &str| until_of(&zones, &start, u, dev).map(compact);
        if let Some(r) = recurrence(page::CALENDAR, &rule.value, &start, until, v.version) {
            d = d.with(r);
            d = exceptions_of(&vcal, mi, &overrides, &zones, v, pref, d);
        }
    }
    if !i_organize && let Some(mine) = attendees.iter().find(|a| v.me.contains(&address(&a.value)))
    {
        if mine
            .param("RSVP")
            .is_some_and(|r| r.eq_ignore_ascii_case("TRUE"))
        {
            d = d.with(cal("ResponseRequested").text("1"));
        }
        if v.version >= 140 {
            d = d.with(cal("ResponseType").text(attendee_status(mine.param("PARTSTAT"))));
        }
    } else if v.version >= 140 && !attendees.is_empty() {
        d = d.with(cal("ResponseType").text("1"));
    }
    Some(d)
}

fn instance_element(v: &View, t: NaiveDateTime) -> Element {
    if v.version >= 160 {
        Element::new(page::AIRSYNCBASE, "InstanceId").text(compact(t))
    } else {
        cal("ExceptionStartTime").text(compact(t))
    }
}

fn exceptions_of(
    vcal: &Comp,
    mi: usize,
    overrides: &[usize],
    zones: &Zones,
    v: &View,
    pref: &BodyPreference,
    d: Element,
) -> Element {
    let dev = &v.device;
    let master = &vcal.subs[mi];
    let mut list = cal("Exceptions");
    for l in master
        .props
        .iter()
        .map(|p| Line::parse(p))
        .filter(|l| l.name == "EXDATE")
    {
        for at in zones.all(&l) {
            list = list.with(
                cal("Exception")
                    .with(cal("Deleted").text("1"))
                    .with(instance_element(v, at.utc(dev))),
            );
        }
    }
    for i in overrides {
        let o = &vcal.subs[*i];
        let (Some(rid), Some(start)) = (zones.at(o, "RECURRENCE-ID"), zones.at(o, "DTSTART"))
        else {
            continue;
        };
        let mut e = cal("Exception")
            .with(instance_element(v, rid.utc(dev)))
            .with(cal("StartTime").text(compact(start.utc(dev))))
            .with(cal("EndTime").text(compact(end_of(o, &start, zones, dev))))
            .with(cal("AllDayEvent").text(flag(start.is_date())));
        e = describe(o, v, pref, e);
        list = list.with(e);
    }
    if list.children.is_empty() {
        d
    } else {
        d.with(list)
    }
}

// ---------------------------------------------------------------------------------------
// Writing.

/// What the device sent for one event or occurrence, and how to read what it left out.
struct Sent<'a> {
    data: &'a Element,
    /// Before 16.0 the master comes whole: a field left out is removed, unless the device
    /// listed what it supports (Supported) and this is not among it ("ghosted").
    whole: Option<Option<&'a [String]>>,
}

impl Sent<'_> {
    fn has(&self, name: &str) -> bool {
        self.data.elements().any(|e| e.name == name)
    }

    fn value(&self, name: &str) -> Option<String> {
        self.data
            .elements()
            .find(|e| e.name == name)
            .map(|e| e.value().trim().to_string())
    }

    fn owns(&self, name: &str) -> bool {
        self.has(name)
            || match self.whole {
                None => false,
                Some(None) => true,
                Some(Some(supported)) => supported.iter().any(|s| s == name),
            }
    }
}

fn text_line(c: &mut Comp, name: &str, value: Option<String>) {
    c.remove(&[name]);
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        c.props.push(format!("{name}:{}", esc(&v)));
    }
}

/// The device's fields laid into one VEVENT (the master or an override). `zones_used`
/// gathers the zones its times were written in, for their VTIMEZONEs.
fn apply_fields(
    ev: &mut Comp,
    s: &Sent,
    v: &View,
    zones: &Zones,
    device: &Tzi,
    zones_used: &mut Vec<chrono_tz::Tz>,
) -> Result<(), ConvertError> {
    if s.owns("Subject") {
        text_line(ev, "SUMMARY", s.value("Subject"));
    }
    if s.owns("Location") {
        let loc = s
            .data
            .elements()
            .find(|e| e.name == "Location")
            .map(|l| l.child_value("DisplayName").unwrap_or_else(|| l.value()));
        text_line(ev, "LOCATION", loc);
    }
    if let Some(body) = s.data.child("Body").and_then(|b| b.child_value("Data")) {
        text_line(ev, "DESCRIPTION", Some(body));
    }
    if s.has("StartTime") || s.has("EndTime") || s.has("AllDayEvent") {
        let dev = device;
        let old_start = zones.at(ev, "DTSTART");
        let old_end = old_start.map(|st| end_of(ev, &st, zones, dev));
        let start = s
            .value("StartTime")
            .and_then(|t| parse_time(&t))
            .or(old_start.map(|a| a.utc(dev)))
            .ok_or("an event needs a start time")?;
        let end = s
            .value("EndTime")
            .and_then(|t| parse_time(&t))
            .or(old_end)
            .unwrap_or(start);
        let all_day = match s.value("AllDayEvent") {
            Some(a) => a == "1",
            None => old_start.is_some_and(|a| a.is_date()),
        };
        let (start_at, end_at) = if all_day {
            let from = dev.to_local(start).date();
            let mut to = dev.to_local(end).date();
            if to <= from {
                to = from + Duration::days(1);
            }
            (At::Date(from), At::Date(to))
        } else {
            let year = start.year();
            // The event keeps its zone unless the device sent another clock with it.
            let zone = match old_start {
                Some(At::Zoned(_, z))
                    if !s.has("Timezone") || Tzi::of_zone(z, year).same_rules(dev) =>
                {
                    Some(z)
                }
                _ => dev.zone(year, Some(v.home)),
            };
            match zone {
                Some(z) if z != chrono_tz::UTC => {
                    if !zones_used.contains(&z) {
                        zones_used.push(z);
                    }
                    (
                        At::Zoned(local_in(z, start), z),
                        At::Zoned(local_in(z, end.max(start)), z),
                    )
                }
                _ => (At::Utc(start), At::Utc(end.max(start))),
            }
        };
        ev.remove(&["DTSTART", "DTEND", "DURATION"]);
        ev.props.push(start_at.line("DTSTART"));
        ev.props.push(end_at.line("DTEND"));
    } else if s.whole.is_some() && zones.at(ev, "DTSTART").is_none() {
        return Err("an event needs a start time".into());
    }
    if s.owns("Sensitivity") {
        set_sensitivity(ev, s.value("Sensitivity").as_deref());
    }
    if s.owns("BusyStatus") {
        ev.remove(&["TRANSP", "X-MICROSOFT-CDO-BUSYSTATUS"]);
        match s.value("BusyStatus").as_deref() {
            Some("0") => ev.props.push("TRANSP:TRANSPARENT".into()),
            Some("1") => ev.props.push("X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE".into()),
            Some("3") => ev.props.push("X-MICROSOFT-CDO-BUSYSTATUS:OOF".into()),
            Some("4") => ev
                .props
                .push("X-MICROSOFT-CDO-BUSYSTATUS:WORKINGELSEWHERE".into()),
            _ => {}
        }
    }
    if s.owns("Reminder") {
        let at = reminder(ev).map(|(i, _)| {
            ev.subs.remove(i);
            i
        });
        if let Some(m) = s.value("Reminder").and_then(|m| m.parse::<i64>().ok()) {
            let mut alarm = Comp::new("VALARM");
            alarm.props = vec![
                "ACTION:DISPLAY".into(),
                "DESCRIPTION:Reminder".into(),
                format!("TRIGGER:-PT{}M", m.max(0)),
            ];
            ev.subs.insert(at.unwrap_or(ev.subs.len()), alarm);
        }
    }
    if s.owns("Categories") {
        let cats: Vec<String> = s
            .data
            .child("Categories")
            .map(|c| {
                c.children_named("Category")
                    .map(|c| esc(&c.value()))
                    .collect()
            })
            .unwrap_or_default();
        ev.remove(&["CATEGORIES"]);
        if !cats.is_empty() {
            ev.props.push(format!("CATEGORIES:{}", cats.join(",")));
        }
    }
    if let Some(list) = s.data.child("Attendees") {
        attendees_into(ev, list, v);
    }
    if let Some(org) = s.value("OrganizerEmail").filter(|o| o.contains('@')) {
        let same = ev
            .get("ORGANIZER")
            .is_some_and(|o| address(&o.value) == org.to_ascii_lowercase());
        if !same {
            let line = match s.value("OrganizerName").filter(|n| !n.is_empty()) {
                Some(n) => format!("ORGANIZER;CN=\"{}\":mailto:{org}", n.replace('"', "'")),
                None => format!("ORGANIZER:mailto:{org}"),
            };
            ev.set("ORGANIZER", line);
        }
    }
    if let Some(status) = s.value("MeetingStatus").and_then(|m| m.parse::<u32>().ok()) {
        let cancelled = ev
            .get("STATUS")
            .is_some_and(|l| l.value.eq_ignore_ascii_case("CANCELLED"));
        if status & 4 != 0 {
            ev.set("STATUS", "STATUS:CANCELLED".into());
        } else if cancelled {
            ev.remove(&["STATUS"]);
        }
    }
    Ok(())
}

/// The device's attendee list: a listed attendee already on the event keeps its own line
/// (its answer and every parameter); a new one is invited; one left off is removed. An
/// event that gains attendees without an organizer is organized by the user.
fn attendees_into(ev: &mut Comp, list: &Element, v: &View) {
    let sent: Vec<(String, String, String)> = list
        .children_named("Attendee")
        .filter_map(|a| {
            let email = a.child_value("Email")?.trim().to_ascii_lowercase();
            email.contains('@').then(|| {
                (
                    email,
                    a.child_value("Name").unwrap_or_default(),
                    a.child_value("AttendeeType").unwrap_or_default(),
                )
            })
        })
        .collect();
    let mut kept: Vec<String> = Vec::new();
    ev.props.retain(|p| {
        let l = Line::parse(p);
        if l.name != "ATTENDEE" {
            return true;
        }
        let a = address(&l.value);
        let keep = sent.iter().any(|(e, _, _)| *e == a);
        if keep {
            kept.push(a);
        }
        keep
    });
    for (email, name, kind) in sent.iter().filter(|(e, _, _)| !kept.contains(e)) {
        let mut line = "ATTENDEE".to_string();
        if !name.is_empty() && name != email {
            line.push_str(&format!(";CN=\"{}\"", name.replace('"', "'")));
        }
        line.push_str(match kind.trim() {
            "2" => ";ROLE=OPT-PARTICIPANT",
            "3" => ";CUTYPE=RESOURCE",
            _ => ";ROLE=REQ-PARTICIPANT",
        });
        line.push_str(&format!(";PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{email}"));
        ev.props.push(line);
    }
    if !sent.is_empty()
        && ev.get("ORGANIZER").is_none()
        && let Some(me) = v.me.first()
    {
        ev.props.push(format!("ORGANIZER:mailto:{me}"));
    }
}

/// An occurrence's instant a device names (InstanceId, or ExceptionStartTime before 16.0).
fn instance_of(e: &Element) -> Option<NaiveDateTime> {
    e.child_value("InstanceId")
        .or_else(|| e.child_value("ExceptionStartTime"))
        .and_then(|t| parse_time(&t))
}

/// The override of the occurrence at `instant`, made from the master when there is none.
fn override_at(
    vcal: &mut Comp,
    mi: usize,
    instant: NaiveDateTime,
    zones: &Zones,
    dev: &Tzi,
) -> Result<usize, ConvertError> {
    let found = (0..vcal.subs.len()).find(|i| {
        *i != mi
            && vcal.subs[*i].name == "VEVENT"
            && zones
                .at(&vcal.subs[*i], "RECURRENCE-ID")
                .is_some_and(|r| r.utc(dev) == instant)
    });
    if let Some(i) = found {
        return Ok(i);
    }
    let master = &vcal.subs[mi];
    let start = zones
        .at(master, "DTSTART")
        .ok_or("the event has no start")?;
    let length = end_of(master, &start, zones, dev) - start.utc(dev);
    let mut o = Comp::new("VEVENT");
    o.props = master
        .props
        .iter()
        .filter(|p| {
            !matches!(
                Line::parse(p).name.as_str(),
                "RRULE"
                    | "RDATE"
                    | "EXDATE"
                    | "EXRULE"
                    | "DTSTART"
                    | "DTEND"
                    | "DURATION"
                    | "RECURRENCE-ID"
            )
        })
        .cloned()
        .collect();
    o.subs = master.subs.clone();
    o.props.push(start.like(instant, dev).line("RECURRENCE-ID"));
    o.props.push(start.like(instant, dev).line("DTSTART"));
    o.props.push(
        start
            .like(instant.checked_add_signed(length).unwrap_or(instant), dev)
            .line("DTEND"),
    );
    vcal.subs.push(o);
    Ok(vcal.subs.len() - 1)
}

/// A device's Exceptions (an Add, or a change before 16.0): EXDATEs for deleted
/// occurrences, overrides for changed ones; overrides it no longer lists are removed.
fn apply_exceptions(
    vcal: &mut Comp,
    mut mi: usize,
    list: &Element,
    v: &View,
    zones: &Zones,
    dev: &Tzi,
    used: &mut Vec<chrono_tz::Tz>,
) -> Result<usize, ConvertError> {
    let start = zones
        .at(&vcal.subs[mi], "DTSTART")
        .ok_or("the event has no start")?;
    vcal.subs[mi].remove(&["EXDATE"]);
    let mut listed = Vec::new();
    for e in list.children_named("Exception") {
        let Some(at) = instance_of(e) else { continue };
        if e.child_value("Deleted").is_some_and(|d| d.trim() == "1") {
            vcal.subs[mi].props.push(start.like(at, dev).line("EXDATE"));
        } else {
            let i = override_at(vcal, mi, at, zones, dev)?;
            apply_fields(
                &mut vcal.subs[i],
                &Sent {
                    data: e,
                    whole: None,
                },
                v,
                zones,
                dev,
                used,
            )?;
            listed.push(at);
        }
    }
    let uid = vcal.subs[mi].get("UID").map(|l| l.value);
    let mut i = 0;
    while i < vcal.subs.len() {
        let c = &vcal.subs[i];
        let stale = i != mi
            && c.name == "VEVENT"
            && c.get("UID").map(|l| l.value) == uid
            && zones
                .at(c, "RECURRENCE-ID")
                .is_some_and(|r| !listed.contains(&r.utc(dev)));
        if stale {
            vcal.subs.remove(i);
            if i < mi {
                mi -= 1;
            }
        } else {
            i += 1;
        }
    }
    Ok(mi)
}

fn stamp(ev: &mut Comp, now: NaiveDateTime) {
    ev.set("DTSTAMP", format!("DTSTAMP:{}", compact(now)));
    ev.set("LAST-MODIFIED", format!("LAST-MODIFIED:{}", compact(now)));
}

/// A VTIMEZONE for each zone written that the calendar does not define yet.
fn define_zones(vcal: &mut Comp, used: &[chrono_tz::Tz], around: NaiveDateTime) {
    for z in used {
        let defined = vcal
            .subs
            .iter()
            .any(|c| c.name == "VTIMEZONE" && c.get("TZID").is_some_and(|t| t.value == z.name()));
        if defined {
            continue;
        }
        let mut cal = match calcard::icalendar::ICalendar::parse(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
        ) {
            Ok(c) => c,
            Err(_) => continue,
        };
        let from = around.and_utc().timestamp() - 366 * 86_400;
        if cal
            .add_timezone(z.name(), from, from + 12 * 366 * 86_400)
            .is_none()
        {
            continue;
        }
        if let Some(tz) = Comp::parse(&cal.to_string())
            .and_then(|c| c.subs.into_iter().find(|s| s.name == "VTIMEZONE"))
        {
            let at = vcal
                .subs
                .iter()
                .position(|c| c.name != "VTIMEZONE")
                .unwrap_or(vcal.subs.len());
            vcal.subs.insert(at, tz);
        }
    }
}

/// The zone the device sent with the item, else the one it is known by.
fn device_zone(data: &Element, v: &View) -> Tzi {
    data.child_value("Timezone")
        .and_then(|t| Tzi::from_base64(&t))
        .unwrap_or_else(|| v.device.clone())
}

/// A device's new event as an iCalendar object.
pub fn new_event(
    data: &Element,
    uid: &str,
    v: &View,
    now: NaiveDateTime,
) -> Result<String, ConvertError> {
    let text = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bureau//ActiveSync//EN\r\nBEGIN:VEVENT\r\nUID:{}\r\nDTSTAMP:{}\r\nCREATED:{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        esc(uid),
        compact(now),
        compact(now)
    );
    edit(&text, data, None, Some(None), v, now)
}

/// The stored event with the device's change: of the whole series, or from 16.0 of the one
/// occurrence `instance` names.
pub fn change_event(
    text: &str,
    data: &Element,
    instance: Option<NaiveDateTime>,
    supported: Option<&[String]>,
    v: &View,
    now: NaiveDateTime,
) -> Result<String, ConvertError> {
    let whole = (v.version < 160).then_some(supported);
    edit(text, data, instance, whole, v, now)
}

/// `whole`: the item comes whole (before 16.0, and every Add), with the fields a device
/// said it supports if it did; a field it left out and supports is removed.
fn edit(
    text: &str,
    data: &Element,
    instance: Option<NaiveDateTime>,
    whole: Option<Option<&[String]>>,
    v: &View,
    now: NaiveDateTime,
) -> Result<String, ConvertError> {
    let mut vcal =
        Comp::parse(text).ok_or(ConvertError::Stored("the stored event is not readable"))?;
    let zones = Zones::of(text);
    let (mut mi, _) =
        events(&vcal).ok_or(ConvertError::Stored("the stored object has no event"))?;
    let dev = device_zone(data, v);
    let mut used = Vec::new();
    let before: Vec<String> = vcal.subs[mi].props.clone();
    match instance {
        Some(at) => {
            let i = override_at(&mut vcal, mi, at, &zones, &dev)?;
            apply_fields(
                &mut vcal.subs[i],
                &Sent { data, whole: None },
                v,
                &zones,
                &dev,
                &mut used,
            )?;
            stamp(&mut vcal.subs[i], now);
        }
        None => {
            let s = Sent { data, whole };
            apply_fields(&mut vcal.subs[mi], &s, v, &zones, &dev, &mut used)?;
            let master = &mut vcal.subs[mi];
            if s.owns("Recurrence") {
                master.remove(&["RRULE"]);
                if let Some(r) = data.child("Recurrence") {
                    let start = zones
                        .at(master, "DTSTART")
                        .ok_or("the event has no start")?;
                    master.props.push(rule_of(r, &start, &dev)?);
                }
            }
            // The series' time or rule changed: its occurrences are new ones (MS-ASCAL
            // 2.2.2.22 for 16.0; a whole item before carries its exceptions again).
            let key = |c: &Comp| {
                ["DTSTART", "DTEND", "DURATION", "RRULE"].map(|n| c.get(n).map(|l| l.raw))
            };
            let old = Comp {
                name: String::new(),
                props: before.clone(),
                subs: vec![],
            };
            let moved = old.get("DTSTART").is_some() && key(&old) != key(&vcal.subs[mi]);
            if let Some(list) = data.child("Exceptions") {
                mi = apply_exceptions(&mut vcal, mi, list, v, &zones, &dev, &mut used)?;
            } else if moved || (s.whole.is_some() && vcal.subs[mi].get("RRULE").is_none()) {
                let empty = Element::new(page::CALENDAR, "Exceptions");
                mi = apply_exceptions(&mut vcal, mi, &empty, v, &zones, &dev, &mut used)?;
            }
            if moved {
                let seq = vcal.subs[mi]
                    .get("SEQUENCE")
                    .and_then(|l| l.value.trim().parse::<u32>().ok())
                    .unwrap_or(0);
                vcal.subs[mi].set("SEQUENCE", format!("SEQUENCE:{}", seq + 1));
            }
            stamp(&mut vcal.subs[mi], now);
        }
    }
    let start = zones
        .at(&vcal.subs[mi], "DTSTART")
        .map_or(now, |s| s.utc(&dev));
    define_zones(&mut vcal, &used, start);
    Ok(vcal.text())
}

/// The stored event without one occurrence (a 16.0 Delete with InstanceId).
pub fn delete_instance(
    text: &str,
    instance: NaiveDateTime,
    v: &View,
    now: NaiveDateTime,
) -> Result<String, ConvertError> {
    let mut vcal =
        Comp::parse(text).ok_or(ConvertError::Stored("the stored event is not readable"))?;
    let zones = Zones::of(text);
    let (mi, _) = events(&vcal).ok_or(ConvertError::Stored("the stored object has no event"))?;
    let dev = &v.device;
    let start = zones
        .at(&vcal.subs[mi], "DTSTART")
        .ok_or("the event has no start")?;
    vcal.subs.retain(|c| {
        !(c.name == "VEVENT"
            && zones
                .at(c, "RECURRENCE-ID")
                .is_some_and(|r| r.utc(dev) == instance))
    });
    let (mi, _) = events(&vcal).ok_or(ConvertError::Stored("the stored object has no event"))?;
    vcal.subs[mi]
        .props
        .push(start.like(instance, dev).line("EXDATE"));
    stamp(&mut vcal.subs[mi], now);
    Ok(vcal.text())
}

#[cfg(test)]
mod tests;
