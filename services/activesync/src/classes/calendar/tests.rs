use super::*;

fn view(version: u32, device: chrono_tz::Tz) -> View {
    View {
        version,
        me: vec!["alice@office.example".into()],
        device: Tzi::of_zone(device, 2026),
        home: chrono_tz::Europe::Paris,
    }
}

fn now() -> NaiveDateTime {
    parse_time("20261201T120000Z").unwrap()
}

fn data(fields: &[(&'static str, &str)]) -> Element {
    let mut d = Element::new(page::AIRSYNC, "ApplicationData");
    for (k, v) in fields {
        d = d.with(cal(k).text(*v));
    }
    d
}

const PARIS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Corp.//CalDAV Client//EN\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:review-1@example\r\nDTSTAMP:20261101T080000Z\r\nSEQUENCE:2\r\nDTSTART;TZID=Europe/Paris:20261208T100000\r\nDTEND;TZID=Europe/Paris:20261208T110000\r\nSUMMARY:Budget review\r\nLOCATION:Room 2\r\nDESCRIPTION:Bring the figures\r\nORGANIZER;CN=Alice:mailto:alice@office.example\r\nATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;X-NUM-GUESTS=0:mailto:bob@office.example\r\nX-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r\nCOLOR:turquoise\r\nCONFERENCE;VALUE=URI;FEATURE=VIDEO:https://meet.example/abc\r\nATTACH;FMTTYPE=application/pdf:https://files.example/budget.pdf\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nBEGIN:VALARM\r\nACTION:EMAIL\r\nSUMMARY:Mail me\r\nDESCRIPTION:Budget review soon\r\nATTENDEE:mailto:alice@office.example\r\nTRIGGER:-P1D\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn an_event_as_the_device_sees_it() {
    let v = view(161, chrono_tz::Europe::Paris);
    let d = event_data(PARIS, &v, &BodyPreference::default()).unwrap();
    let f = |n: &str| d.child_value(n);
    // 10:00 in Paris in December is 09:00 UTC.
    assert_eq!(f("StartTime").as_deref(), Some("20261208T090000Z"));
    assert_eq!(f("EndTime").as_deref(), Some("20261208T100000Z"));
    assert_eq!(f("AllDayEvent").as_deref(), Some("0"));
    assert_eq!(f("Subject").as_deref(), Some("Budget review"));
    assert_eq!(f("Reminder").as_deref(), Some("15"));
    assert_eq!(f("MeetingStatus").as_deref(), Some("1"));
    assert_eq!(f("OrganizerEmail").as_deref(), Some("alice@office.example"));
    assert_eq!(
        d.child("Location")
            .and_then(|l| l.child_value("DisplayName"))
            .as_deref(),
        Some("Room 2")
    );
    let tz = Tzi::from_base64(&f("Timezone").unwrap()).unwrap();
    assert!(tz.same_rules(&Tzi::of_zone(chrono_tz::Europe::Paris, 2026)));
    let a = d.child("Attendees").unwrap().child("Attendee").unwrap();
    assert_eq!(a.child_value("AttendeeStatus").as_deref(), Some("3"));
    assert!(crate::formats::wbxml::encode(&d).is_ok());
}

#[test]
fn a_change_from_the_device_keeps_what_caldav_clients_added() {
    let v = view(161, chrono_tz::Europe::Paris);
    // 16.1: only what changed is sent.
    let change = data(&[
        ("Subject", "Budget review (moved)"),
        ("StartTime", "20261208T130000Z"),
        ("EndTime", "20261208T140000Z"),
    ]);
    let out = change_event(PARIS, &change, None, None, &v, now()).unwrap();
    for kept in [
        "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
        "COLOR:turquoise",
        "CONFERENCE;VALUE=URI;FEATURE=VIDEO:https://meet.example/abc",
        "ATTACH;FMTTYPE=application/pdf:https://files.example/budget.pdf",
        "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;X-NUM-GUESTS=0:mailto:bob@office.example",
        "LOCATION:Room 2",
        "DESCRIPTION:Bring the figures",
        "ACTION:EMAIL",
        "TRIGGER:-PT15M",
        "PRODID:-//Example Corp.//CalDAV Client//EN",
    ] {
        assert!(out.contains(kept), "{kept} lost:\n{out}");
    }
    assert!(out.contains("SUMMARY:Budget review (moved)"));
    // Moved to 14:00 Paris time, in the zone it had; the series is a new version.
    assert!(
        out.contains("DTSTART;TZID=Europe/Paris:20261208T140000"),
        "{out}"
    );
    assert!(out.contains("DTEND;TZID=Europe/Paris:20261208T150000"));
    assert!(out.contains("SEQUENCE:3"));
    assert!(calcard::icalendar::ICalendar::parse(&out).is_ok());

    // Before 16.0 the item is whole: what it leaves out goes (but not the body,
    // the organizer or the attendees, which devices leave out routinely).
    let v = view(141, chrono_tz::Europe::Paris);
    let whole = data(&[
        ("Subject", "Review"),
        ("StartTime", "20261208T090000Z"),
        ("EndTime", "20261208T100000Z"),
        ("AllDayEvent", "0"),
    ]);
    let out = change_event(PARIS, &whole, None, None, &v, now()).unwrap();
    assert!(!out.contains("LOCATION:") && !out.contains("TRIGGER:-PT15M"));
    assert!(out.contains("TRIGGER:-P1D") && out.contains("COLOR:turquoise"));
    assert!(out.contains("ORGANIZER;CN=Alice") && out.contains("DESCRIPTION:Bring"));
    assert!(out.contains("SEQUENCE:2"), "same time, same sequence");
    // Told Supported without Location and Reminder: those are ghosted, kept.
    let supported: Vec<String> = ["Subject", "StartTime", "EndTime", "Sensitivity"]
        .map(String::from)
        .to_vec();
    let out = change_event(PARIS, &whole, None, Some(&supported), &v, now()).unwrap();
    assert!(out.contains("LOCATION:Room 2") && out.contains("TRIGGER:-PT15M"));
    assert!(out.contains("SUMMARY:Review"));
}

const WEEKLY: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:standup\r\nDTSTAMP:20261101T080000Z\r\nDTSTART;TZID=Europe/Paris:20261207T091500\r\nDTEND;TZID=Europe/Paris:20261207T093000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270131T235959Z\r\nEXDATE;TZID=Europe/Paris:20261209T091500\r\nSUMMARY:Stand-up\r\nX-CUSTOM:kept\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:standup\r\nRECURRENCE-ID;TZID=Europe/Paris:20261214T091500\r\nDTSTART;TZID=Europe/Paris:20261214T100000\r\nDTEND;TZID=Europe/Paris:20261214T101500\r\nSUMMARY:Stand-up (late)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn recurrence_and_exceptions_both_ways() {
    let v = view(161, chrono_tz::Europe::Paris);
    let d = event_data(WEEKLY, &v, &BodyPreference::default()).unwrap();
    let r = d.child("Recurrence").unwrap();
    assert_eq!(r.child_value("Type").as_deref(), Some("1"));
    // Monday (2) and Wednesday (8).
    assert_eq!(r.child_value("DayOfWeek").as_deref(), Some("10"));
    assert_eq!(r.child_value("Until").as_deref(), Some("20270131T235959Z"));
    let ex: Vec<&Element> = d
        .child("Exceptions")
        .unwrap()
        .children_named("Exception")
        .collect();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].child_value("Deleted").as_deref(), Some("1"));
    assert_eq!(
        ex[0].child_value("InstanceId").as_deref(),
        Some("20261209T081500Z")
    );
    assert_eq!(
        ex[1].child_value("InstanceId").as_deref(),
        Some("20261214T081500Z")
    );
    assert_eq!(
        ex[1].child_value("StartTime").as_deref(),
        Some("20261214T090000Z")
    );
    assert_eq!(
        ex[1].child_value("Subject").as_deref(),
        Some("Stand-up (late)")
    );

    // 16.1: one occurrence changed by InstanceId gets its own override.
    let change = data(&[("Subject", "Stand-up with guests")]);
    let at = parse_time("20261216T081500Z").unwrap();
    let out = change_event(WEEKLY, &change, Some(at), None, &v, now()).unwrap();
    assert!(
        out.contains("RECURRENCE-ID;TZID=Europe/Paris:20261216T091500"),
        "{out}"
    );
    assert!(out.contains("SUMMARY:Stand-up with guests"));
    assert!(out.contains("SUMMARY:Stand-up (late)") && out.contains("X-CUSTOM:kept"));
    let back = event_data(&out, &v, &BodyPreference::default()).unwrap();
    assert_eq!(
        back.child("Exceptions")
            .unwrap()
            .children_named("Exception")
            .count(),
        3
    );

    // And one deleted.
    let out = delete_instance(&out, at, &v, now()).unwrap();
    assert!(!out.contains("Stand-up with guests"));
    assert!(out.contains("EXDATE;TZID=Europe/Paris:20261216T091500"));

    // Before 16.0 the device sends its exceptions with the item.
    let v = view(141, chrono_tz::Europe::Paris);
    let mut whole = data(&[
        ("Subject", "Stand-up"),
        ("StartTime", "20261207T081500Z"),
        ("EndTime", "20261207T083000Z"),
    ]);
    whole = whole
        .with(
            cal("Recurrence")
                .with(cal("Type").text("1"))
                .with(cal("DayOfWeek").text("2"))
                .with(cal("Occurrences").text("10")),
        )
        .with(
            cal("Exceptions").with(
                cal("Exception")
                    .with(cal("ExceptionStartTime").text("20261221T081500Z"))
                    .with(cal("Deleted").text("1")),
            ),
        );
    let out = change_event(WEEKLY, &whole, None, None, &v, now()).unwrap();
    assert!(out.contains("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10"), "{out}");
    assert!(out.contains("EXDATE;TZID=Europe/Paris:20261221T091500"));
    assert!(
        !out.contains("RECURRENCE-ID"),
        "the old override is gone:\n{out}"
    );
    assert!(calcard::icalendar::ICalendar::parse(&out).is_ok());
}

#[test]
fn all_day_events_are_days_in_the_devices_zone() {
    let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:xmas\r\nDTSTAMP:20261101T080000Z\r\nDTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261226\r\nSUMMARY:Office closed\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let paris = view(161, chrono_tz::Europe::Paris);
    let d = event_data(text, &paris, &BodyPreference::default()).unwrap();
    assert_eq!(d.child_value("AllDayEvent").as_deref(), Some("1"));
    assert_eq!(
        d.child_value("StartTime").as_deref(),
        Some("20261223T230000Z")
    );
    assert_eq!(
        d.child_value("EndTime").as_deref(),
        Some("20261225T230000Z")
    );
    let tokyo = view(161, chrono_tz::Asia::Tokyo);
    let d = event_data(text, &tokyo, &BodyPreference::default()).unwrap();
    assert_eq!(
        d.child_value("StartTime").as_deref(),
        Some("20261223T150000Z")
    );

    // A device in Tokyo makes an all-day event: midnight there is 15:00 UTC the day before.
    let tz = B64.encode(Tzi::of_zone(chrono_tz::Asia::Tokyo, 2026).encode());
    let add = data(&[
        ("Timezone", &tz),
        ("AllDayEvent", "1"),
        ("StartTime", "20261224T150000Z"),
        ("EndTime", "20261225T150000Z"),
        ("Subject", "Holiday"),
    ]);
    let out = new_event(&add, "h1", &paris, now()).unwrap();
    assert!(out.contains("DTSTART;VALUE=DATE:20261225"), "{out}");
    assert!(out.contains("DTEND;VALUE=DATE:20261226"));
    // A timed one gets the device's zone, with its definition.
    let add = data(&[
        ("Timezone", &tz),
        ("StartTime", "20261224T010000Z"),
        ("EndTime", "20261224T020000Z"),
        ("Subject", "Call"),
    ]);
    let out = new_event(&add, "c1", &paris, now()).unwrap();
    assert!(out.contains("DTSTART;TZID=Asia/"), "{out}");
    assert!(out.contains("T100000\r\n") && out.contains("BEGIN:VTIMEZONE"));
    assert!(calcard::icalendar::ICalendar::parse(&out).is_ok());
}

/// A change the device's data cannot make is the device's (Status 6); one the stored
/// object cannot take is the box's (Status 5): before, both were the device's.
#[test]
fn a_refused_change_says_whose_fault_it_is() {
    let v = view(161, chrono_tz::Europe::Paris);
    let bad_rule = data(&[]).with(cal("Recurrence").with(cal("Type").text("9")));
    assert!(matches!(
        change_event(PARIS, &bad_rule, None, None, &v, now()),
        Err(ConvertError::Device(_))
    ));
    let todo = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t1\r\nSUMMARY:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    let change = data(&[("Subject", "renamed")]);
    assert!(matches!(
        change_event(todo, &change, None, None, &v, now()),
        Err(ConvertError::Stored(_))
    ));
    assert!(matches!(
        bureau_store::StoreError::from(ConvertError::Stored("x")),
        bureau_store::StoreError::Corrupt(_)
    ));
}
