use super::*;

fn lines(text: &str) -> Vec<String> {
    bureau_groupware::contentline::unfold(text)
}

fn has(text: &str, want: &str) {
    assert!(lines(text).iter().any(|l| l == want), "{want:?} in\n{text}");
}

/// As a Nokia phone writes an event: local times with TZ and DAYLIGHT, quoted-printable
/// text, an alarm, a weekly rule, attendees.
const NOKIA: &str = "BEGIN:VCALENDAR\r\nVERSION:1.0\r\nTZ:+01:00\r\n\
    DAYLIGHT:TRUE;+02;20270328T020000;20271031T030000;;\r\n\
    BEGIN:VEVENT\r\nSUMMARY;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:R=C3=A9union=3B budget\r\n\
    DESCRIPTION;ENCODING=QUOTED-PRINTABLE:line one=0D=0Aline two, still=\r\n one\r\n\
    DTSTART:20270110T090000\r\nDTEND:20270110T100000\r\n\
    RRULE:W1 MO WE #10\r\nCATEGORIES:Work;Budget\r\nAALARM:20270110T074500Z;;;\r\n\
    DALARM:20270110T074500Z;;;Go\r\nATTENDEE;ROLE=ORGANIZER:Ann <ann@example.org>\r\n\
    ATTENDEE;STATUS=ACCEPTED;RSVP=YES:bob@example.org\r\nX-EPOCAGENDAENTRYTYPE:APPOINTMENT\r\n\
    DCREATED:20261201T080000\r\nCLASS:PRIVATE\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn a_phones_event_becomes_icalendar() {
    let ical = from_10(NOKIA).unwrap();
    bureau_groupware::object::check(
        bureau_groupware::object::ObjectKind::Calendar,
        ical.as_bytes(),
    )
    .unwrap();
    for want in [
        "VERSION:2.0",
        "SUMMARY:Réunion\\; budget",
        "DESCRIPTION:line one\\nline two\\, still one",
        // Winter: TZ's +01:00.
        "DTSTART:20270110T080000Z",
        "DTEND:20270110T090000Z",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10",
        "CATEGORIES:Work,Budget",
        "ORGANIZER;CN=\"Ann\":mailto:ann@example.org",
        "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TRUE:mailto:bob@example.org",
        "X-EPOCAGENDAENTRYTYPE:APPOINTMENT",
        "CREATED:20261201T070000Z",
        "CLASS:PRIVATE",
        // One alarm, a quarter of an hour before the start, its text the device's.
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT15M",
        "DESCRIPTION:Go",
    ] {
        has(&ical, want);
    }
    assert_eq!(ical.matches("BEGIN:VALARM").count(), 1, "{ical}");
    assert!(!ical.contains("TZ:") && !ical.contains("DAYLIGHT") && !ical.contains("AALARM"));
    // Summer: DAYLIGHT's +02.
    let summer = from_10(
        &NOKIA
            .replace("20270110T09", "20270610T09")
            .replace("20270110T10", "20270610T10"),
    )
    .unwrap();
    has(&summer, "DTSTART:20270610T070000Z");
    // Not 1.0: not for this module.
    assert!(from_10("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n").is_none());
}

#[test]
fn all_day_entries_are_dates_both_ways() {
    for (start, end) in [
        ("20270110T000000", "20270110T235900"),
        ("20270110T000000", "20270111T000000"),
        ("20270110", "20270111"),
    ] {
        let v10 = format!(
            "BEGIN:VCALENDAR\r\nVERSION:1.0\r\nTZ:+01\r\nBEGIN:VEVENT\r\nSUMMARY:Off\r\n\
             DTSTART:{start}\r\nDTEND:{end}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        );
        let ical = from_10(&v10).unwrap();
        has(&ical, "DTSTART;VALUE=DATE:20270110");
        has(&ical, "DTEND;VALUE=DATE:20270111");
        let back = to_10(&ical).unwrap();
        has(&back, "DTSTART:20270110T000000");
        has(&back, "DTEND:20270110T235900");
    }
}

const STORED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\n\
    BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n\
    TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
    END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nTZOFFSETFROM:+0100\r\n\
    TZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n\
    END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:s-1\r\nDTSTAMP:20261201T000000Z\r\n\
    DTSTART;TZID=Europe/Paris:20270607T090000\r\nDURATION:PT1H30M\r\n\
    SUMMARY:Stand-up\\, daily\r\nRRULE:FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20271231T230000Z\r\n\
    EXDATE;TZID=Europe/Paris:20270625T090000\r\nTRANSP:TRANSPARENT\r\nSTATUS:CONFIRMED\r\n\
    ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION:mailto:bob@example.org\r\n\
    CONFERENCE;VALUE=URI:https://x\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\n\
    DESCRIPTION:Soon\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[test]
fn a_stored_event_goes_out_in_utc_and_comes_back_in_its_zone() {
    let v10 = to_10(STORED).unwrap();
    for want in [
        "VERSION:1.0",
        "DTSTART:20270607T070000Z",
        "DTEND:20270607T083000Z",
        "SUMMARY:Stand-up, daily",
        "RRULE:MP1 1- FR 20271231T230000Z",
        "EXDATE:20270625T070000Z",
        "TRANSP:1",
        "ATTENDEE;ROLE=ATTENDEE;STATUS=NEEDS ACTION:bob@example.org",
        "DALARM:20270607T065000Z;;;Soon",
        "AALARM:20270607T065000Z;;;",
    ] {
        has(&v10, want);
    }
    assert!(!v10.contains("VTIMEZONE") && !v10.contains("CONFERENCE") && !v10.contains("TZID"));
    // Read back, and given the stored zone: the same times, lines and rule.
    let ical = zoned_like(&from_10(&v10).unwrap(), STORED);
    for want in [
        "DTSTART;TZID=Europe/Paris:20270607T090000",
        "DTEND;TZID=Europe/Paris:20270607T103000",
        "EXDATE;TZID=Europe/Paris:20270625T090000",
        "SUMMARY:Stand-up\\, daily",
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20271231T230000Z",
        "TRANSP:TRANSPARENT",
        "TRIGGER:-PT10M",
    ] {
        has(&ical, want);
    }
}

#[test]
fn recurrence_rules_both_ways() {
    let clock = Clock::default();
    for (v10, rrule) in [
        ("D2 #5", "RRULE:FREQ=DAILY;INTERVAL=2;COUNT=5"),
        ("W1 #0", "RRULE:FREQ=WEEKLY"),
        ("W1 TU TH #0", "RRULE:FREQ=WEEKLY;BYDAY=TU,TH"),
        ("MD1 1 15 #0", "RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15"),
        ("MD1 1- #3", "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3"),
        ("MP1 2+ TU #0", "RRULE:FREQ=MONTHLY;BYDAY=2TU"),
        ("YM1 6 #0", "RRULE:FREQ=YEARLY;BYMONTH=6"),
        (
            "W1 MO 20271231T000000Z",
            "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20271231T000000Z",
        ),
    ] {
        assert_eq!(rrule_from_10(v10, &clock).as_deref(), Some(rrule), "{v10}");
        let back = rrule_to_10(rrule.trim_start_matches("RRULE:"), |v| Some(v.to_string()));
        assert_eq!(back.as_deref(), Some(v10), "{rrule}");
    }
    // No end: two occurrences (vCalendar 1.0, 3.1.2.1); "LD", the last day.
    assert_eq!(
        rrule_from_10("MD1 LD", &clock).as_deref(),
        Some("RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=2")
    );
    assert!(rrule_from_10("XX1 #0", &clock).is_none());
    // What 1.0 cannot say is left out.
    assert!(rrule_to_10("FREQ=YEARLY;BYMONTH=5;BYDAY=2SU", |v| Some(v.into())).is_none());
    assert!(rrule_to_10("FREQ=DAILY;BYHOUR=9", |v| Some(v.into())).is_none());
}

#[test]
fn a_task_due_on_a_day() {
    let ical = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20261201T000000Z\r\n\
        SUMMARY:File\r\nDUE;VALUE=DATE:20270115\r\nSTATUS:NEEDS-ACTION\r\nPRIORITY:1\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    let v10 = to_10(ical).unwrap();
    has(&v10, "DUE:20270115T000000");
    has(&v10, "STATUS:NEEDS ACTION");
    let back = from_10(&v10).unwrap();
    has(&back, "DUE;VALUE=DATE:20270115");
    has(&back, "STATUS:NEEDS-ACTION");
    has(&back, "PRIORITY:1");
}

#[test]
fn a_devices_alarm_names_are_its_valarm() {
    let caps = caps_in_20(&Caps::of([
        "BEGIN", "SUMMARY", "DALARM", "DCREATED", "ATTENDEE",
    ]));
    for n in ["BEGIN:VALARM", "TRIGGER", "CREATED", "ORGANIZER", "SUMMARY"] {
        assert!(caps.0.contains(n), "{n}");
    }
}
