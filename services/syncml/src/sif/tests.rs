use super::*;

fn has(text: &str, want: &str) {
    let lines = bureau_groupware::contentline::unfold(text);
    assert!(lines.iter().any(|l| l == want), "{want:?} in\n{text}");
}

fn field<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let from = xml
        .find(&open)
        .unwrap_or_else(|| panic!("<{name}> in {xml}"))
        + open.len();
    &xml[from..from + xml[from..].find('<').unwrap()]
}

const CONTACT: &str = r#"<?xml version="1.0" encoding="UTF-8"?><contact><SIFVersion>1.1</SIFVersion>
<FirstName>Zoë</FirstName><LastName>Dupré &amp; fils</LastName><CompanyName>Acme</CompanyName>
<Department>Sales</Department><JobTitle>Boss</JobTitle><Email1Address>zoe@acme.example</Email1Address>
<Email2Address>zoe@home.example</Email2Address><BusinessTelephoneNumber>+33 1 11</BusinessTelephoneNumber>
<MobileTelephoneNumber>+33 6 22</MobileTelephoneNumber><HomeAddressStreet>1 rue X</HomeAddressStreet>
<HomeAddressCity>Lyon</HomeAddressCity><HomeAddressPostalCode>69001</HomeAddressPostalCode>
<Birthday>1980-05-17</Birthday><Body>line one
line two, still</Body><Categories>VIP, Clients</Categories><Sensitivity>2</Sensitivity>
<Spouse>Max</Spouse><Photo>AAAA
BBBB</Photo></contact>"#;

#[test]
fn a_sif_contact_both_ways() {
    let card = to_stored(Kind::Contacts, CONTACT).unwrap();
    bureau_groupware::object::check_card(&card.replace("VERSION:3.0", "VERSION:3.0\r\nUID:u"))
        .unwrap();
    for want in [
        "FN:Zoë Dupré & fils",
        "N:Dupré & fils;Zoë;;;",
        "ORG:Acme;Sales",
        "TITLE:Boss",
        "EMAIL;TYPE=internet:zoe@acme.example",
        "EMAIL;TYPE=internet,home:zoe@home.example",
        "TEL;TYPE=work,voice:+33 1 11",
        "TEL;TYPE=cell:+33 6 22",
        "ADR;TYPE=home:;;1 rue X;Lyon;;69001;",
        "BDAY:19800517",
        "NOTE:line one\\nline two\\, still",
        "CATEGORIES:VIP,Clients",
        "CLASS:PRIVATE",
        "X-SIF-SPOUSE:Max",
        "PHOTO;ENCODING=b;TYPE=JPEG:AAAABBBB",
    ] {
        has(&card, want);
    }
    let back = from_stored(Kind::Contacts, &card).unwrap();
    for (f, v) in [
        ("FirstName", "Zoë"),
        ("LastName", "Dupré &amp; fils"),
        ("CompanyName", "Acme"),
        ("Department", "Sales"),
        ("Email1Address", "zoe@acme.example"),
        ("Email2Address", "zoe@home.example"),
        ("BusinessTelephoneNumber", "+33 1 11"),
        ("MobileTelephoneNumber", "+33 6 22"),
        ("HomeAddressCity", "Lyon"),
        ("Birthday", "1980-05-17"),
        ("Body", "line one\nline two, still"),
        ("Categories", "VIP,Clients"),
        ("Sensitivity", "2"),
        ("Spouse", "Max"),
        ("Photo", "AAAABBBB"),
    ] {
        assert_eq!(field(&back, f), v, "{f} in {back}");
    }
    // And in again: the same card.
    let again = to_stored(Kind::Contacts, &back).unwrap();
    let sorted = |t: &str| {
        let mut l = bureau_groupware::contentline::unfold(t);
        l.sort();
        l
    };
    assert_eq!(sorted(&again).len(), sorted(&card).len(), "{again}\n{card}");
    // Not SIF, a DOCTYPE, or another kind's document: none.
    assert!(to_stored(Kind::Contacts, "BEGIN:VCARD").is_none());
    assert!(to_stored(Kind::Contacts, "<!DOCTYPE x [<!ENTITY a 'b'>]><contact/>").is_none());
    assert!(to_stored(Kind::Events, CONTACT).is_none());
}

#[test]
fn a_sif_appointment_both_ways() {
    let xml = "<appointment><SIFVersion>1.1</SIFVersion><Subject>Review</Subject>\
        <Start>20270104T080000Z</Start><End>20270104T090000Z</End><AllDayEvent>0</AllDayEvent>\
        <BusyStatus>2</BusyStatus><Importance>2</Importance><ReminderSet>1</ReminderSet>\
        <ReminderMinutesBeforeStart>10</ReminderMinutesBeforeStart><IsRecurring>1</IsRecurring>\
        <RecurrenceType>1</RecurrenceType><Interval>1</Interval><DayOfWeekMask>10</DayOfWeekMask>\
        <NoEndDate>0</NoEndDate><Occurrences>8</Occurrences>\
        <Exceptions><ExcludeDate>2027-01-11</ExcludeDate><ExcludeDate>2027-01-13</ExcludeDate></Exceptions>\
        </appointment>";
    let ical = to_stored(Kind::Events, xml).unwrap();
    bureau_groupware::object::check(
        bureau_groupware::object::ObjectKind::Calendar,
        ical.as_bytes(),
    )
    .unwrap();
    for want in [
        "SUMMARY:Review",
        "DTSTART:20270104T080000Z",
        "DTEND:20270104T090000Z",
        "TRANSP:OPAQUE",
        "PRIORITY:1",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=8",
        "EXDATE;VALUE=DATE:20270111,20270113",
        "TRIGGER:-PT10M",
    ] {
        has(&ical, want);
    }
    let back = from_stored(Kind::Events, &ical).unwrap();
    for (f, v) in [
        ("Start", "20270104T080000Z"),
        ("End", "20270104T090000Z"),
        ("AllDayEvent", "0"),
        ("RecurrenceType", "1"),
        ("DayOfWeekMask", "10"),
        ("Occurrences", "8"),
        ("ReminderMinutesBeforeStart", "10"),
        ("Importance", "2"),
        ("ExcludeDate", "2027-01-11"),
    ] {
        assert_eq!(field(&back, f), v, "{f} in {back}");
    }
    // All day: SIF's End is the last day.
    let day = to_stored(
        Kind::Events,
        "<appointment><Subject>Off</Subject><AllDayEvent>1</AllDayEvent>\
         <Start>2027-01-15</Start><End>2027-01-16</End></appointment>",
    )
    .unwrap();
    has(&day, "DTSTART;VALUE=DATE:20270115");
    has(&day, "DTEND;VALUE=DATE:20270117");
    let back = from_stored(Kind::Events, &day).unwrap();
    assert_eq!(
        (field(&back, "Start"), field(&back, "End")),
        ("2027-01-15", "2027-01-16")
    );
    // A monthly rule on the last Friday.
    let monthly = "<appointment><Subject>M</Subject><Start>20270129T080000Z</Start>\
        <IsRecurring>1</IsRecurring><RecurrenceType>3</RecurrenceType><DayOfWeekMask>32</DayOfWeekMask>\
        <Instance>5</Instance><NoEndDate>1</NoEndDate></appointment>";
    has(
        &to_stored(Kind::Events, monthly).unwrap(),
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
    );
}

#[test]
fn a_sif_task_and_note() {
    let task = to_stored(
        Kind::Tasks,
        "<task><Subject>File</Subject><DueDate>2027-01-20</DueDate><Status>1</Status>\
         <PercentComplete>40</PercentComplete><Importance>0</Importance></task>",
    )
    .unwrap();
    for want in [
        "SUMMARY:File",
        "DUE;VALUE=DATE:20270120",
        "STATUS:IN-PROCESS",
        "PERCENT-COMPLETE:40",
        "PRIORITY:9",
    ] {
        has(&task, want);
    }
    let back = from_stored(Kind::Tasks, &task).unwrap();
    for (f, v) in [
        ("DueDate", "2027-01-20"),
        ("Status", "1"),
        ("Complete", "0"),
        ("Importance", "0"),
    ] {
        assert_eq!(field(&back, f), v, "{f} in {back}");
    }
    let note = to_stored(
        Kind::Notes,
        "<note><Subject>Shopping</Subject><Body>Shopping\nmilk</Body><Color>2</Color></note>",
    )
    .unwrap();
    has(&note, "SUMMARY:Shopping");
    has(&note, "DESCRIPTION:Shopping\\nmilk");
    has(&note, "X-SIF-COLOR:2");
    let back = from_stored(Kind::Notes, &note).unwrap();
    assert_eq!(field(&back, "Body"), "Shopping\nmilk");
    assert_eq!(field(&back, "Color"), "2");
}
