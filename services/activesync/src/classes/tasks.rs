//! The Tasks class (MS-ASTASK) from and into VTODOs, and the editing the Notes class
//! (notes.rs) shares for VJOURNALs, kept the way calendar.rs keeps events: a field the device sends
//! replaces the properties it stands for, and every other line stays as it was. A field
//! the device leaves out is left unchanged; an empty one clears its property. A task's
//! recurrence is not shown to devices, so it is never changed from one.

use crate::classes::ConvertError;
use crate::classes::calendar::{At, View, Zones, categories, compact, parse_time};
use crate::formats::body::{BodyPreference, eas_date, plain_body};
use crate::formats::wbxml::{Element, page};
use bureau_groupware::contentline::{Comp, Line, esc, unescape};
use chrono::{NaiveDateTime, NaiveTime};

/// The long form tasks and notes use: 2026-12-01T09:00:00.000Z.
pub(crate) fn long(t: NaiveDateTime) -> String {
    eas_date(t.and_utc().timestamp())
}

pub(crate) fn main_of<'a>(vcal: &'a Comp, name: &str) -> Option<&'a Comp> {
    vcal.subs.iter().find(|c| c.name == name)
}

fn main_index(vcal: &Comp, name: &str) -> Option<usize> {
    vcal.subs.iter().position(|c| c.name == name)
}

pub(crate) fn text_of(c: &Comp, name: &str) -> Option<String> {
    c.get(name)
        .map(|l| unescape(&l.value))
        .filter(|v| !v.is_empty())
}

/// A date-time property read in UTC, as calendar.rs reads events' (dates and floating times
/// in the device's zone).
pub(crate) fn utc_of(zones: &Zones, c: &Comp, name: &str, v: &View) -> Option<NaiveDateTime> {
    zones.at(c, name).map(|a| a.utc(&v.device))
}

/// A stored VTODO as the Tasks class's ApplicationData.
pub fn task_data(text: &str, v: &View, pref: &BodyPreference) -> Option<Element> {
    let vcal = Comp::parse(text)?;
    let zones = Zones::of(text);
    let t = main_of(&vcal, "VTODO")?;
    let e = |n: &'static str| Element::new(page::TASKS, n);
    let mut d = Element::new(page::AIRSYNC, "ApplicationData");
    if let Some(body) = text_of(t, "DESCRIPTION") {
        d = d.with(plain_body(&body, pref));
    }
    d = categories(t, page::TASKS, d);
    let completed = utc_of(&zones, t, "COMPLETED", v);
    let done = completed.is_some()
        || t.get("STATUS")
            .is_some_and(|s| s.value.eq_ignore_ascii_case("COMPLETED"));
    d = d.with(e("Complete").text(if done { "1" } else { "0" }));
    if done {
        let when = completed
            .or_else(|| utc_of(&zones, t, "LAST-MODIFIED", v))
            .unwrap_or_default();
        d = d.with(e("DateCompleted").text(long(when)));
    }
    for (prop, utc_name, local_name) in [
        ("DUE", "UtcDueDate", "DueDate"),
        ("DTSTART", "UtcStartDate", "StartDate"),
    ] {
        if let Some(u) = utc_of(&zones, t, prop, v) {
            d = d
                .with(e(local_name).text(long(v.device.to_local(u))))
                .with(e(utc_name).text(long(u)));
        }
    }
    if let Some(r) = crate::classes::calendar::task_recurrence(text, v) {
        d = d.with(r);
    }
    let importance = match t
        .get("PRIORITY")
        .and_then(|p| p.value.trim().parse::<u8>().ok())
    {
        Some(1..=4) => "2",
        Some(6..=9) => "0",
        _ => "1",
    };
    d = d.with(e("Importance").text(importance));
    let alarm = absolute_alarm(t).and_then(|(i, _)| utc_of(&zones, &t.subs[i], "TRIGGER", v));
    d = d.with(e("ReminderSet").text(if alarm.is_some() { "1" } else { "0" }));
    if let Some(a) = alarm {
        d = d.with(e("ReminderTime").text(long(a)));
    }
    d = d.with(e("Sensitivity").text(crate::classes::calendar::sensitivity(t)));
    Some(d.with(e("Subject").text(text_of(t, "SUMMARY").unwrap_or_default())))
}

/// The first alarm at a fixed time: a task's reminder.
fn absolute_alarm(c: &Comp) -> Option<(usize, Line)> {
    c.subs.iter().enumerate().find_map(|(i, s)| {
        let t = s.get("TRIGGER").filter(|_| s.name == "VALARM")?;
        t.param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("DATE-TIME"))
            .then_some((i, t))
    })
}

fn set_text(c: &mut Comp, name: &str, value: Option<String>) {
    c.remove(&[name]);
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        c.props.push(format!("{name}:{}", esc(&v)));
    }
}

/// The value of a field the device sent, on this page.
fn field(data: &Element, page: u8, name: &str) -> Option<String> {
    data.elements()
        .find(|e| e.page == page && e.name == name)
        .map(|e| e.value().trim().to_string())
}

fn common(c: &mut Comp, data: &Element, page: u8, now: NaiveDateTime) {
    if let Some(s) = field(data, page, "Subject") {
        set_text(c, "SUMMARY", Some(s));
    }
    if let Some(b) = data.child("Body").and_then(|b| b.child_value("Data")) {
        set_text(c, "DESCRIPTION", Some(b));
    }
    if let Some(cats) = data
        .elements()
        .find(|e| e.page == page && e.name == "Categories")
    {
        c.remove(&["CATEGORIES"]);
        let list: Vec<String> = cats
            .children_named("Category")
            .map(|c| esc(&c.value()))
            .collect();
        if !list.is_empty() {
            c.props.push(format!("CATEGORIES:{}", list.join(",")));
        }
    }
    c.set("DTSTAMP", format!("DTSTAMP:{}", compact(now)));
    c.set("LAST-MODIFIED", format!("LAST-MODIFIED:{}", compact(now)));
}

/// A date the device sent for a task, as DTSTART/DUE: a date when it is local midnight.
fn task_date(data: &Element, utc: &str, local: &str, v: &View) -> Option<At> {
    let u = field(data, page::TASKS, utc)
        .and_then(|t| parse_time(&t))
        .or_else(|| {
            field(data, page::TASKS, local)
                .and_then(|t| parse_time(&t))
                .map(|l| v.device.to_utc(l))
        })?;
    let l = v.device.to_local(u);
    Some(if l.time() == NaiveTime::MIN {
        At::Date(l.date())
    } else {
        At::Utc(u)
    })
}

fn edit_task(c: &mut Comp, data: &Element, v: &View, now: NaiveDateTime) {
    common(c, data, page::TASKS, now);
    let p = page::TASKS;
    if let Some(i) = field(data, p, "Importance") {
        c.remove(&["PRIORITY"]);
        match i.as_str() {
            "2" => c.props.push("PRIORITY:1".into()),
            "0" => c.props.push("PRIORITY:9".into()),
            _ => {}
        }
    }
    let start_sent = field(data, p, "UtcStartDate").or(field(data, p, "StartDate"));
    let due_sent = field(data, p, "UtcDueDate").or(field(data, p, "DueDate"));
    if start_sent.is_some() || due_sent.is_some() {
        let start = task_date(data, "UtcStartDate", "StartDate", v);
        let due = task_date(data, "UtcDueDate", "DueDate", v);
        // DTSTART and DUE take the same value type (RFC 5545 3.8.2.3).
        let both_dates = [start, due].iter().flatten().all(At::is_date);
        let form = |a: At| match a {
            At::Date(d) if !both_dates => At::Utc(v.device.to_utc(d.and_time(NaiveTime::MIN))),
            other => other,
        };
        for (sent, at, prop) in [(&start_sent, start, "DTSTART"), (&due_sent, due, "DUE")] {
            if sent.is_some() {
                c.remove(&[prop]);
                if let Some(a) = at {
                    c.props.push(form(a).line(prop));
                }
            }
        }
    }
    if let Some(done) = field(data, p, "Complete") {
        c.remove(&["STATUS", "COMPLETED", "PERCENT-COMPLETE"]);
        if done == "1" {
            let when = field(data, p, "DateCompleted")
                .and_then(|t| parse_time(&t))
                .unwrap_or(now);
            c.props.push("STATUS:COMPLETED".into());
            c.props.push(format!("COMPLETED:{}", compact(when)));
            c.props.push("PERCENT-COMPLETE:100".into());
        } else {
            c.props.push("STATUS:NEEDS-ACTION".into());
        }
    }
    if let Some(s) = field(data, p, "Sensitivity") {
        crate::classes::calendar::set_sensitivity(c, Some(&s));
    }
    if let Some(set) = field(data, p, "ReminderSet") {
        let at = absolute_alarm(c).map(|(i, _)| {
            c.subs.remove(i);
            i
        });
        let when = field(data, p, "ReminderTime").and_then(|t| parse_time(&t));
        if let (true, Some(w)) = (set == "1", when) {
            let mut alarm = Comp::new("VALARM");
            alarm.props = vec![
                "ACTION:DISPLAY".into(),
                "DESCRIPTION:Reminder".into(),
                format!("TRIGGER;VALUE=DATE-TIME:{}", compact(w)),
            ];
            c.subs.insert(at.unwrap_or(c.subs.len()), alarm);
        }
    }
}

fn skeleton(component: &str, uid: &str, now: NaiveDateTime) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bureau//ActiveSync//EN\r\nBEGIN:{component}\r\nUID:{}\r\nDTSTAMP:{}\r\nCREATED:{}\r\nEND:{component}\r\nEND:VCALENDAR\r\n",
        esc(uid),
        compact(now),
        compact(now)
    )
}

/// The stored task or note (`component` VTODO or VJOURNAL) with the device's change.
pub fn change(
    component: &str,
    text: &str,
    data: &Element,
    v: &View,
    now: NaiveDateTime,
) -> Result<String, ConvertError> {
    let mut vcal =
        Comp::parse(text).ok_or(ConvertError::Stored("the stored object is not readable"))?;
    let i = main_index(&vcal, component)
        .ok_or(ConvertError::Stored("the stored object is of another kind"))?;
    let c = &mut vcal.subs[i];
    if component == "VTODO" {
        edit_task(c, data, v, now);
        // The recurrence, once the dates it hangs on are in place.
        if let Some(r) = data
            .elements()
            .find(|e| e.page == page::TASKS && e.name == "Recurrence")
        {
            let rule = crate::classes::calendar::task_rule(c, r, text, v)?;
            c.set("RRULE", rule);
        }
    } else {
        common(c, data, page::NOTES, now);
    }
    Ok(vcal.text())
}

/// A device's new task or note.
pub fn new(
    component: &str,
    data: &Element,
    uid: &str,
    v: &View,
    now: NaiveDateTime,
) -> Result<String, ConvertError> {
    change(component, &skeleton(component, uid, now), data, v, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::calendar::View;

    #[test]
    fn a_recurring_task_both_ways() {
        let v = View {
            version: 161,
            me: vec![],
            device: bureau_groupware::tzi::Tzi::of_zone(chrono_tz::Europe::Paris, 2026),
            home: chrono_tz::Europe::Paris,
        };
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20261101T000000Z\r\nDUE;VALUE=DATE:20261207\r\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=5\r\nSUMMARY:Timesheet\r\nX-KEEP:me\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
        let d = task_data(text, &v, &BodyPreference::default()).unwrap();
        let r = d.child("Recurrence").unwrap();
        assert_eq!(r.child_value("Type").as_deref(), Some("1"));
        assert_eq!(r.child_value("DayOfWeek").as_deref(), Some("2"));
        assert_eq!(r.child_value("Occurrences").as_deref(), Some("5"));
        // Midnight in Paris.
        assert_eq!(
            r.child_value("Start").as_deref(),
            Some("2026-12-06T23:00:00.000Z")
        );
        assert!(crate::formats::wbxml::encode(&d).is_ok());
        // The device makes it monthly, on the first Monday.
        let t = |n: &'static str| Element::new(page::TASKS, n);
        let edit = Element::new(page::AIRSYNC, "ApplicationData").with(
            t("Recurrence")
                .with(t("Type").text("3"))
                .with(t("WeekOfMonth").text("1"))
                .with(t("DayOfWeek").text("2"))
                .with(t("Start").text("2026-12-06T23:00:00.000Z")),
        );
        let now = crate::classes::calendar::parse_time("20261201T120000Z").unwrap();
        let out = change("VTODO", text, &edit, &v, now).unwrap();
        assert!(out.contains("RRULE:FREQ=MONTHLY;BYDAY=1MO"), "{out}");
        assert!(out.contains("X-KEEP:me") && out.contains("DUE;VALUE=DATE:20261207"));
        assert!(calcard::icalendar::ICalendar::parse(&out).is_ok());
    }
}
