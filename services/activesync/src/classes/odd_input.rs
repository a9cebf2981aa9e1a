//! Whatever a CalDAV client stored, and whatever a device sent, through every class that
//! reads iCalendar: an answer or an error, never a panic.

use super::calendar::{View, change_event, delete_instance, event_data, new_event, parse_time};
use super::calendar::{meeting_request, respond};
use super::{notes, tasks};
use crate::formats::body::BodyPreference;
use crate::formats::wbxml::{Element, page};
use bureau_groupware::contentline::Comp;
use bureau_groupware::tzi::Tzi;

fn cal(name: &'static str) -> Element {
    Element::new(page::CALENDAR, name)
}

/// Whatever a CalDAV client stored, and whatever a device sent: an answer or an error,
/// never a panic.
#[test]
fn odd_events_and_changes_never_panic() {
    let events = [
        "",
        "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:garbage\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Nowhere/Land:20261201T100000\r\nDURATION:PXYZ\r\nRRULE:FREQ=MONTHLY;BYDAY=99XX;BYSETPOS=banana\r\nEXDATE:,,,\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:99991231T230000Z\r\nDURATION:P99999999W\r\nRRULE:FREQ=DAILY;UNTIL=99991231\r\nEXDATE:99991231T230000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;VALUE=DATE:00010101\r\nDTEND;VALUE=DATE:00010102\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;VALUE=DATE:20261301\r\nRRULE:FREQ=YEARLY;BYMONTH=13;BYMONTHDAY=40;UNTIL=x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20261201T100000Z\r\nRRULE:FREQ=WEEKLY;BYDAY=\r\nBEGIN:VALARM\r\nTRIGGER:-P99999999999W\r\nEND:VALARM\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:x\r\nRECURRENCE-ID:nonsense\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    ];
    let v = View {
        version: 141,
        me: vec!["a@x.example".into()],
        device: Tzi::fixed(60),
        home: chrono_tz::UTC,
    };
    let d = |fields: Vec<Element>| {
        let mut e = Element::new(page::AIRSYNC, "ApplicationData");
        for f in fields {
            e = e.with(f);
        }
        e
    };
    let changes = [
        d(vec![]),
        d(vec![
            cal("StartTime").text("not a time"),
            cal("AllDayEvent").text("1"),
        ]),
        d(vec![
            cal("Timezone").text("!!!"),
            cal("StartTime").text("99991231T235959Z"),
        ]),
        d(vec![cal("Recurrence").with(cal("Type").text("3"))]),
        d(vec![
            cal("Recurrence")
                .with(cal("Type").text("6"))
                .with(cal("WeekOfMonth").text("-7"))
                .with(cal("DayOfWeek").text("0")),
        ]),
        d(vec![cal("Exceptions").with(
            cal("Exception").with(cal("ExceptionStartTime").text("x")),
        )]),
        d(vec![cal("Attendees").with(
            cal("Attendee").with(cal("Email").text("no-at-sign")),
        )]),
        d(vec![
            cal("Reminder").text("-5"),
            cal("Sensitivity").text("9"),
        ]),
    ];
    let now = parse_time("20261201T120000Z").unwrap();
    for e in events {
        let _ = event_data(e, &v, &BodyPreference::default());
        let _ = tasks::task_data(e, &v, &BodyPreference::default());
        let _ = notes::note_data(e, &v, &BodyPreference::default());
        let _ = meeting_request(e, &v);
        let _ = delete_instance(e, now, &v, now);
        let _ = respond(e, "ACCEPTED", Some(now), &v, now);
        for c in &changes {
            for instance in [None, Some(now)] {
                if let Ok(out) = change_event(e, c, instance, None, &v, now) {
                    // Whatever is written is written whole: it reads back.
                    assert!(Comp::parse(&out).is_some(), "{out}");
                }
            }
            let _ = new_event(c, "u", &v, now);
            let _ = tasks::change("VTODO", e, c, &v, now);
        }
    }
    for bytes in [vec![0u8; 172], vec![0xff; 172], vec![1; 10]] {
        if let Some(t) = Tzi::decode(&bytes) {
            let _ = t.offset_at(now);
            let _ = t.zone(2026, None);
        }
    }
}
