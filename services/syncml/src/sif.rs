//! Funambol's SIF ("Sync4j Interchange Format"), what the Funambol Outlook plug-in and
//! Funambol's phone clients send: a flat XML document per item, one element per Outlook
//! field (SIF-C `<contact>`, SIF-E `<appointment>`, SIF-T `<task>`, SIF-N `<note>`, as
//! Funambol's SIF 1.1 documents them), to and from the vCard 3.0 and iCalendar the store
//! keeps.
//!
//! Times are UTC (`20270110T090000Z`) or, for all-day events, birthdays and task dates,
//! days (`2027-01-10`); an all-day event's End is its last day. A field this module does
//! not map is kept as an `X-SIF-<FIELD>` property and sent back as it came, so the client
//! loses nothing of its own. What SIF cannot say of a stored object stays in the store
//! (merge.rs, by [`caps`]), and a device's UTC times are given back the stored zone
//! (vcal10::zoned_like).

use crate::kind::Kind;
use crate::merge::Caps;
use bureau_groupware::contentline::{Comp, Line, esc, split, unescape};
use bureau_groupware::tzi::Tzi;
use bureau_groupware::when::{At, Zones, duration};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use quick_xml::escape::escape;
use quick_xml::events::Event;

/// Fields read of one item (a SIF document is a few dozen).
const MAX_FIELDS: usize = 400;

/// SIF's content type for a kind, if SIF has one (it has none for journals and mail).
pub fn content_type(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Contacts => Some("text/x-s4j-sifc"),
        Kind::Events => Some("text/x-s4j-sife"),
        Kind::Tasks => Some("text/x-s4j-sift"),
        Kind::Notes => Some("text/x-s4j-sifn"),
        Kind::Journal | Kind::Mail | Kind::Files => None,
    }
}

/// Whether a content type is one of SIF's.
pub fn is_sif(ct: &str) -> bool {
    ct.to_ascii_lowercase().starts_with("text/x-s4j-sif")
}

/// A SIF document's root element and fields in order (the text of every element with no
/// element inside; an `ExcludeDate` list gives one field per date). None for what is not
/// SIF, or holds a DOCTYPE.
pub(crate) fn fields(xml: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut r = quick_xml::Reader::from_str(xml);
    let (mut root, mut open, mut out) = (None, Vec::<String>::new(), Vec::new());
    let mut text = String::new();
    loop {
        match r.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                root.get_or_insert_with(|| name.clone());
                open.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                out.push((name, String::new()));
            }
            Event::Text(t) => text.push_str(&t.decode().ok()?),
            Event::CData(t) => text.push_str(&t.decode().ok()?),
            Event::GeneralRef(g) => {
                let name = g.decode().ok()?;
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(s) => text.push_str(s),
                    None => text.push(g.resolve_char_ref().ok()??),
                }
            }
            Event::End(_) => {
                let name = open.pop()?;
                if open.len() == 1 || (name == "ExcludeDate" && !open.is_empty()) {
                    out.push((name, std::mem::take(&mut text)));
                }
                text.clear();
            }
            Event::DocType(_) => return None,
            Event::Eof => break,
            _ => {}
        }
        if out.len() > MAX_FIELDS || open.len() > 4 {
            return None;
        }
    }
    Some((root?, out))
}

fn get<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter()
        .find(|(n, v)| n == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// A SIF time: UTC (`20270110T090000Z`, `2027-01-10T09:00:00Z`) or a day (`2027-01-10`,
/// `20270110`).
fn sif_time(v: &str) -> Option<At> {
    let v = v.trim();
    let digits: String = v.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if digits.len() == 8 {
        return NaiveDate::parse_from_str(&digits, "%Y%m%d")
            .ok()
            .map(At::Date);
    }
    let t = NaiveDateTime::parse_from_str(digits.trim_end_matches('Z'), "%Y%m%dT%H%M%S").ok()?;
    Some(if digits.ends_with('Z') {
        At::Utc(t)
    } else {
        At::Floating(t)
    })
}

fn ical_value(a: &At) -> String {
    match a {
        At::Date(d) => d.format("%Y%m%d").to_string(),
        other => other.value(),
    }
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn utc(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The fields every SIF kind shares: 0 normal, 1 personal, 2 private, 3 confidential.
fn class_of(sensitivity: Option<&str>) -> Option<&'static str> {
    Some(match sensitivity? {
        "0" => "PUBLIC",
        "1" | "2" => "PRIVATE",
        "3" => "CONFIDENTIAL",
        _ => return None,
    })
}

fn sensitivity_of(class: Option<&str>) -> &'static str {
    match class.map(str::to_ascii_uppercase).as_deref() {
        Some("PRIVATE") => "2",
        Some("CONFIDENTIAL") => "3",
        _ => "0",
    }
}

/// Outlook's importance (0 low, 1 normal, 2 high) and iCalendar's PRIORITY.
fn priority_of(importance: Option<&str>) -> Option<&'static str> {
    Some(match importance? {
        "0" => "9",
        "2" => "1",
        _ => return None,
    })
}

fn importance_of(priority: Option<&str>) -> &'static str {
    match priority.and_then(|p| p.trim().parse::<u8>().ok()) {
        Some(1..=4) => "2",
        Some(6..=9) => "0",
        _ => "1",
    }
}

/// Fields left unmapped, kept as X-SIF- properties.
fn kept(f: &[(String, String)], mapped: &[&str], out: &mut Vec<String>) {
    for (n, v) in f {
        if !mapped.contains(&n.as_str()) && n != "ExcludeDate" && !v.trim().is_empty() {
            out.push(format!(
                "X-SIF-{}:{}",
                n.to_ascii_uppercase(),
                esc(v.trim())
            ));
        }
    }
}

// ---- SIF-C ----

/// Phone fields and the TYPEs they stand for.
const PHONES: [(&str, &str); 12] = [
    ("BusinessTelephoneNumber", "work,voice"),
    ("Business2TelephoneNumber", "work,voice"),
    ("HomeTelephoneNumber", "home,voice"),
    ("Home2TelephoneNumber", "home,voice"),
    ("MobileTelephoneNumber", "cell"),
    ("BusinessFaxNumber", "work,fax"),
    ("HomeFaxNumber", "home,fax"),
    ("PagerNumber", "pager"),
    ("CarTelephoneNumber", "car"),
    ("PrimaryTelephoneNumber", "pref,voice"),
    ("CompanyMainTelephoneNumber", "work,pref"),
    ("OtherTelephoneNumber", "voice"),
];
const EMAILS: [(&str, &str); 3] = [
    ("Email1Address", "internet"),
    ("Email2Address", "internet,home"),
    ("Email3Address", "internet,work"),
];
const ADDRESSES: [(&str, &str); 3] = [("Home", "home"), ("Business", "work"), ("Other", "postal")];
const ADDRESS_PARTS: [&str; 5] = ["Street", "City", "State", "PostalCode", "Country"];
const CONTACT_FIELDS: [&str; 14] = [
    "SIFVersion",
    "FirstName",
    "MiddleName",
    "LastName",
    "Title",
    "Suffix",
    "FileAs",
    "NickName",
    "CompanyName",
    "Department",
    "JobTitle",
    "Birthday",
    "Body",
    "Categories",
];
const CONTACT_MORE: [&str; 5] = [
    "WebPage",
    "HomeWebPage",
    "Sensitivity",
    "Photo",
    "Anniversary",
];

fn contact_in(f: &[(String, String)]) -> String {
    let v = |n: &str| get(f, n).unwrap_or("").to_string();
    let mut p = vec!["VERSION:3.0".to_string()];
    let given = [v("FirstName"), v("MiddleName"), v("LastName")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let fn_ = [given, v("FileAs"), v("CompanyName"), v("Email1Address")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    p.push(format!("FN:{}", esc(&fn_)));
    p.push(format!(
        "N:{};{};{};{};{}",
        esc(&v("LastName")),
        esc(&v("FirstName")),
        esc(&v("MiddleName")),
        esc(&v("Title")),
        esc(&v("Suffix"))
    ));
    let mut put = |name: &str, value: &str| {
        if !value.is_empty() {
            p.push(format!("{name}:{}", esc(value)));
        }
    };
    put("NICKNAME", &v("NickName"));
    put("TITLE", &v("JobTitle"));
    put("NOTE", &v("Body"));
    let date = |n: &str| sif_time(&v(n)).map(|a| ical_value(&a)).unwrap_or_default();
    put("BDAY", &date("Birthday"));
    put("X-ANNIVERSARY", &date("Anniversary"));
    if !v("CompanyName").is_empty() || !v("Department").is_empty() {
        p.push(format!(
            "ORG:{};{}",
            esc(&v("CompanyName")),
            esc(&v("Department"))
        ));
    }
    for (field, types) in EMAILS {
        if let Some(e) = get(f, field) {
            p.push(format!("EMAIL;TYPE={types}:{}", esc(e)));
        }
    }
    for (field, types) in PHONES {
        if let Some(t) = get(f, field) {
            p.push(format!("TEL;TYPE={types}:{}", esc(t)));
        }
    }
    for (prefix, ty) in ADDRESSES {
        let parts: Vec<String> = ADDRESS_PARTS
            .iter()
            .map(|part| esc(&v(&format!("{prefix}Address{part}"))))
            .collect();
        if parts.iter().any(|s| !s.is_empty()) {
            p.push(format!("ADR;TYPE={ty}:;;{}", parts.join(";")));
        }
    }
    if let Some(u) = get(f, "WebPage") {
        p.push(format!("URL;TYPE=work:{}", u));
    }
    if let Some(u) = get(f, "HomeWebPage") {
        p.push(format!("URL;TYPE=home:{}", u));
    }
    if let Some(c) = get(f, "Categories") {
        p.push(format!("CATEGORIES:{}", categories_in(c)));
    }
    if let Some(c) = class_of(get(f, "Sensitivity")) {
        p.push(format!("CLASS:{c}"));
    }
    if let Some(photo) = get(f, "Photo") {
        let b64: String = photo.split_whitespace().collect();
        p.push(format!("PHOTO;ENCODING=b;TYPE=JPEG:{b64}"));
    }
    let mut mapped: Vec<&str> = CONTACT_FIELDS
        .iter()
        .chain(&CONTACT_MORE)
        .copied()
        .collect();
    mapped.extend(EMAILS.iter().chain(&PHONES).map(|(f, _)| *f));
    let addr: Vec<String> = ADDRESSES
        .iter()
        .flat_map(|(prefix, _)| {
            ADDRESS_PARTS
                .iter()
                .map(move |part| format!("{prefix}Address{part}"))
        })
        .collect();
    mapped.extend(addr.iter().map(String::as_str));
    kept(f, &mapped, &mut p);
    let mut card = Comp::new("VCARD");
    card.props = p;
    card.text()
}

/// SIF lists categories with `,` or `;`; iCalendar and vCard with `,`.
fn categories_in(v: &str) -> String {
    v.split([',', ';'])
        .map(|c| esc(c.trim()))
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

fn element(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(value));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// X-SIF- properties back as the fields they came as.
fn fields_back(c: &Comp, out: &mut String) {
    for raw in &c.props {
        let l = Line::parse(raw);
        if let Some(field) = l.name.strip_prefix("X-SIF-") {
            element(out, &sif_name(field), &unescape(&l.value));
        }
    }
}

/// An X-SIF- property's field name as Outlook spells it (property names are upper case):
/// the unmapped fields Funambol's clients send, else the name in lower case.
fn sif_name(upper: &str) -> String {
    const KNOWN: [&str; 13] = [
        "Spouse",
        "Children",
        "Manager",
        "AssistantName",
        "AssistantTelephoneNumber",
        "IMAddress",
        "Profession",
        "OfficeLocation",
        "Color",
        "Height",
        "Width",
        "Left",
        "Top",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(upper))
        .map_or_else(|| upper.to_ascii_lowercase(), |k| k.to_string())
}

fn contact_out(card: &Comp) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><contact><SIFVersion>1.1</SIFVersion>",
    );
    let lines: Vec<Line> = card.props.iter().map(|p| Line::parse(p)).collect();
    let one = |name: &str| lines.iter().find(|l| l.name == name);
    if let Some(n) = one("N") {
        let parts = split(&n.value, ';');
        let at = |i: usize| parts.get(i).cloned().unwrap_or_default();
        for (i, field) in ["LastName", "FirstName", "MiddleName", "Title", "Suffix"]
            .iter()
            .enumerate()
        {
            element(&mut out, field, &at(i));
        }
    }
    if let Some(f) = one("FN") {
        element(&mut out, "FileAs", &unescape(&f.value));
    }
    for (prop, field) in [
        ("NICKNAME", "NickName"),
        ("TITLE", "JobTitle"),
        ("NOTE", "Body"),
    ] {
        if let Some(l) = one(prop) {
            element(&mut out, field, &unescape(&l.value));
        }
    }
    if let Some(o) = one("ORG") {
        let parts = split(&o.value, ';');
        element(
            &mut out,
            "CompanyName",
            parts.first().map_or("", String::as_str),
        );
        element(
            &mut out,
            "Department",
            parts.get(1).map_or("", String::as_str),
        );
    }
    for (prop, field) in [("BDAY", "Birthday"), ("X-ANNIVERSARY", "Anniversary")] {
        if let Some(d) = one(prop).and_then(|l| sif_time(&l.value)) {
            let d = match d {
                At::Date(d) => d,
                other => other.utc(&Tzi::default()).date(),
            };
            element(&mut out, field, &day(d));
        }
    }
    // Each phone, address and e-mail in the first field whose TYPEs it has, else the
    // first free one of its kind.
    let mut taken = Vec::new();
    let mut place = |l: &Line, table: &[(&'static str, &str)], out: &mut String| {
        let has = |types: &str| types.split(',').all(|t| l.types.iter().any(|x| x == t));
        let field = table
            .iter()
            .find(|(f, t)| !taken.contains(f) && has(t))
            .or_else(|| table.iter().rev().find(|(f, _)| !taken.contains(f)));
        if let Some((f, _)) = field {
            taken.push(*f);
            element(out, f, &unescape(&l.value));
        }
    };
    for l in lines.iter().filter(|l| l.name == "TEL") {
        place(l, &PHONES, &mut out);
    }
    for l in lines.iter().filter(|l| l.name == "EMAIL") {
        place(l, &EMAILS, &mut out);
    }
    for (prefix, ty) in ADDRESSES {
        let adr = lines.iter().find(|l| {
            l.name == "ADR"
                && (l.types.iter().any(|t| t == ty)
                    || (prefix == "Other" && !l.types.iter().any(|t| t == "home" || t == "work")))
        });
        if let Some(a) = adr {
            let parts = split(&a.value, ';');
            for (i, part) in ADDRESS_PARTS.iter().enumerate() {
                let v = parts.get(i + 2).cloned().unwrap_or_default();
                element(&mut out, &format!("{prefix}Address{part}"), &v);
            }
        }
    }
    for l in lines.iter().filter(|l| l.name == "URL") {
        let field = if l.types.iter().any(|t| t == "home") {
            "HomeWebPage"
        } else {
            "WebPage"
        };
        element(&mut out, field, &l.value);
    }
    if let Some(c) = one("CATEGORIES") {
        element(&mut out, "Categories", &split(&c.value, ',').join(","));
    }
    element(
        &mut out,
        "Sensitivity",
        sensitivity_of(one("CLASS").map(|l| l.value.as_str())),
    );
    if let Some(p) = one("PHOTO").filter(|l| {
        l.param("ENCODING")
            .is_some_and(|e| e.eq_ignore_ascii_case("b"))
    }) {
        element(&mut out, "Photo", &p.value);
    }
    fields_back(card, &mut out);
    out.push_str("</contact>");
    out
}

// ---- SIF-E and SIF-T ----

/// Outlook's recurrence (the fields MS-ASCAL shares): RecurrenceType 0 daily, 1 weekly,
/// 2 monthly, 3 monthly on the nth weekday, 5 yearly, 6 yearly on the nth weekday;
/// DayOfWeekMask 1 Sunday … 64 Saturday.
const WEEKDAYS: [&str; 7] = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];
const RECURRENCE: [&str; 10] = [
    "IsRecurring",
    "RecurrenceType",
    "Interval",
    "DayOfWeekMask",
    "DayOfMonth",
    "Instance",
    "MonthOfYear",
    "NoEndDate",
    "Occurrences",
    "PatternEndDate",
];

fn rrule_in(f: &[(String, String)]) -> Option<String> {
    if get(f, "IsRecurring") != Some("1") {
        return None;
    }
    let num = |n| get(f, n).and_then(|v| v.parse::<i64>().ok());
    let mask = num("DayOfWeekMask").unwrap_or(0);
    let days: Vec<&str> = (0..7)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| WEEKDAYS[i])
        .collect();
    let instance = num("Instance")
        .map(|n| if n == 5 { -1 } else { n })
        .unwrap_or(1);
    let nth = days
        .iter()
        .map(|d| format!("{instance}{d}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut parts = vec![match num("RecurrenceType")? {
        0 => "FREQ=DAILY".to_string(),
        1 if days.is_empty() => "FREQ=WEEKLY".to_string(),
        1 => format!("FREQ=WEEKLY;BYDAY={}", days.join(",")),
        2 => format!("FREQ=MONTHLY;BYMONTHDAY={}", num("DayOfMonth")?),
        // The nth weekday of no weekday: no rule.
        3 | 6 if days.is_empty() => return None,
        3 => format!("FREQ=MONTHLY;BYDAY={nth}"),
        5 => format!(
            "FREQ=YEARLY;BYMONTH={};BYMONTHDAY={}",
            num("MonthOfYear")?,
            num("DayOfMonth")?
        ),
        6 => format!("FREQ=YEARLY;BYMONTH={};BYDAY={nth}", num("MonthOfYear")?),
        _ => return None,
    }];
    if let Some(i) = num("Interval").filter(|i| *i > 1) {
        parts.push(format!("INTERVAL={i}"));
    }
    if get(f, "NoEndDate") != Some("1") {
        if let Some(n) = num("Occurrences").filter(|n| *n > 0) {
            parts.push(format!("COUNT={n}"));
        } else if let Some(end) = get(f, "PatternEndDate").and_then(sif_time) {
            let until = match end {
                At::Date(d) => d.format("%Y%m%dT235959Z").to_string(),
                other => utc(other.utc(&Tzi::default())),
            };
            parts.push(format!("UNTIL={until}"));
        }
    }
    Some(format!("RRULE:{}", parts.join(";")))
}

fn rrule_out(rule: &str, start: NaiveDate, out: &mut String) -> bool {
    let mut get_part = std::collections::HashMap::new();
    for p in rule.split(';') {
        if let Some((k, v)) = p.split_once('=') {
            get_part.insert(k.to_ascii_uppercase(), v.to_string());
        }
    }
    let by_day = get_part.get("BYDAY").cloned().unwrap_or_default();
    let mut mask = 0;
    let mut instance = None;
    for d in by_day.split(',').filter(|d| !d.is_empty()) {
        let (n, name) = d.split_at(d.len().saturating_sub(2));
        match WEEKDAYS.iter().position(|w| *w == name) {
            Some(i) => mask |= 1 << i,
            None => return false,
        }
        if !n.is_empty() {
            instance = n.parse::<i64>().ok().map(|n| if n < 0 { 5 } else { n });
        }
    }
    let month_day = get_part
        .get("BYMONTHDAY")
        .and_then(|v| v.parse::<u32>().ok());
    let month = get_part.get("BYMONTH").and_then(|v| v.parse::<u32>().ok());
    let ty = match (get_part.get("FREQ").map(String::as_str), instance) {
        (Some("DAILY"), _) if by_day.is_empty() => 0,
        (Some("WEEKLY"), None) => 1,
        (Some("MONTHLY"), None) if by_day.is_empty() => 2,
        (Some("MONTHLY"), Some(_)) => 3,
        (Some("YEARLY"), None) if by_day.is_empty() => 5,
        (Some("YEARLY"), Some(_)) => 6,
        _ => return false,
    };
    if ty == 1 && mask == 0 {
        mask = 1 << start.weekday().num_days_from_sunday();
    }
    let mut e = |n: &str, v: String| element(out, n, &v);
    e("IsRecurring", "1".into());
    e("RecurrenceType", ty.to_string());
    e(
        "Interval",
        get_part
            .get("INTERVAL")
            .cloned()
            .unwrap_or_else(|| "1".into()),
    );
    e("DayOfWeekMask", mask.to_string());
    e("DayOfMonth", month_day.unwrap_or(start.day()).to_string());
    e("Instance", instance.unwrap_or(0).to_string());
    e("MonthOfYear", month.unwrap_or(start.month()).to_string());
    match (get_part.get("COUNT"), get_part.get("UNTIL")) {
        (Some(n), _) => {
            e("NoEndDate", "0".into());
            e("Occurrences", n.clone());
        }
        (None, Some(u)) => {
            e("NoEndDate", "0".into());
            let d = sif_time(u).map(|a| match a {
                At::Date(d) => d,
                other => other.utc(&Tzi::default()).date(),
            });
            e("PatternEndDate", d.map(day).unwrap_or_default());
        }
        _ => e("NoEndDate", "1".into()),
    }
    true
}

const EVENT_FIELDS: [&str; 14] = [
    "SIFVersion",
    "Subject",
    "Body",
    "Location",
    "Start",
    "End",
    "AllDayEvent",
    "BusyStatus",
    "Categories",
    "Importance",
    "Sensitivity",
    "ReminderSet",
    "ReminderMinutesBeforeStart",
    "Exceptions",
];

fn event_in(f: &[(String, String)]) -> Option<String> {
    let mut p = vec![format!("UID:{:032x}", rand::random::<u128>())];
    for (field, prop) in [
        ("Subject", "SUMMARY"),
        ("Body", "DESCRIPTION"),
        ("Location", "LOCATION"),
    ] {
        if let Some(v) = get(f, field) {
            p.push(format!("{prop}:{}", esc(v)));
        }
    }
    let all_day = get(f, "AllDayEvent") == Some("1");
    let start = get(f, "Start").and_then(sif_time)?;
    let end = get(f, "End").and_then(sif_time);
    let as_day = |a: At| match a {
        At::Date(d) => d,
        other => other.utc(&Tzi::default()).date(),
    };
    if all_day || matches!(start, At::Date(_)) {
        let first = as_day(start);
        // SIF's End is the last day; iCalendar's DTEND the day after.
        let last = end.map(as_day).unwrap_or(first).max(first);
        p.push(format!("DTSTART;VALUE=DATE:{}", first.format("%Y%m%d")));
        p.push(format!(
            "DTEND;VALUE=DATE:{}",
            (last + Duration::days(1)).format("%Y%m%d")
        ));
    } else {
        p.push(format!("DTSTART:{}", ical_value(&start)));
        if let Some(e) = end {
            p.push(format!("DTEND:{}", ical_value(&e)));
        }
    }
    if let Some(b) = get(f, "BusyStatus") {
        p.push(format!(
            "TRANSP:{}",
            if b == "0" { "TRANSPARENT" } else { "OPAQUE" }
        ));
    }
    common_in(f, &mut p);
    if let Some(r) = rrule_in(f) {
        p.push(r);
        let dates: Vec<String> = f
            .iter()
            .filter(|(n, _)| n == "ExcludeDate")
            .filter_map(|(_, v)| sif_time(v))
            .map(|a| ical_value(&a))
            .collect();
        if !dates.is_empty() {
            let date = if dates.iter().all(|d| d.len() == 8) {
                ";VALUE=DATE"
            } else {
                ""
            };
            p.push(format!("EXDATE{date}:{}", dates.join(",")));
        }
    }
    let mut ev = Comp::new("VEVENT");
    ev.props = p;
    if get(f, "ReminderSet") == Some("1") {
        let mins = get(f, "ReminderMinutesBeforeStart")
            .and_then(|m| m.parse::<i64>().ok())
            .unwrap_or(15);
        ev.subs.push(alarm(format!("TRIGGER:-PT{mins}M")));
    }
    let mapped: Vec<&str> = EVENT_FIELDS.iter().chain(&RECURRENCE).copied().collect();
    kept(f, &mapped, &mut ev.props);
    Some(calendar(ev))
}

/// Categories, sensitivity and importance, the same in events and tasks.
fn common_in(f: &[(String, String)], p: &mut Vec<String>) {
    if let Some(c) = get(f, "Categories") {
        p.push(format!("CATEGORIES:{}", categories_in(c)));
    }
    if let Some(c) = class_of(get(f, "Sensitivity")) {
        p.push(format!("CLASS:{c}"));
    }
    if let Some(pr) = priority_of(get(f, "Importance")) {
        p.push(format!("PRIORITY:{pr}"));
    }
    p.push(format!("DTSTAMP:{}", utc(chrono::Utc::now().naive_utc())));
}

fn alarm(trigger: String) -> Comp {
    let mut a = Comp::new("VALARM");
    a.props = vec![
        "ACTION:DISPLAY".into(),
        trigger,
        "DESCRIPTION:Reminder".into(),
    ];
    a
}

fn calendar(c: Comp) -> String {
    let mut cal = Comp::new("VCALENDAR");
    cal.props = vec![
        "VERSION:2.0".into(),
        "PRODID:-//Bureau//SyncML SIF//EN".into(),
    ];
    cal.subs.push(c);
    cal.text()
}

const TASK_FIELDS: [&str; 15] = [
    "SIFVersion",
    "Subject",
    "Body",
    "StartDate",
    "DueDate",
    "Complete",
    "DateCompleted",
    "PercentComplete",
    "Status",
    "Categories",
    "Importance",
    "Sensitivity",
    "ReminderSet",
    "ReminderTime",
    "Exceptions",
];

fn task_in(f: &[(String, String)]) -> String {
    let mut p = vec![format!("UID:{:032x}", rand::random::<u128>())];
    for (field, prop) in [("Subject", "SUMMARY"), ("Body", "DESCRIPTION")] {
        if let Some(v) = get(f, field) {
            p.push(format!("{prop}:{}", esc(v)));
        }
    }
    for (field, prop) in [("StartDate", "DTSTART"), ("DueDate", "DUE")] {
        match get(f, field).and_then(sif_time) {
            Some(At::Date(d)) => p.push(format!("{prop};VALUE=DATE:{}", d.format("%Y%m%d"))),
            Some(a) => p.push(format!("{prop}:{}", ical_value(&a))),
            None => {}
        }
    }
    let done = get(f, "Complete") == Some("1") || get(f, "Status") == Some("2");
    let status = match get(f, "Status") {
        _ if done => "COMPLETED",
        Some("1") => "IN-PROCESS",
        Some("4") => "CANCELLED",
        _ => "NEEDS-ACTION",
    };
    p.push(format!("STATUS:{status}"));
    if done {
        let when = get(f, "DateCompleted")
            .and_then(sif_time)
            .map(|a| a.utc(&Tzi::default()))
            .unwrap_or_else(|| chrono::Utc::now().naive_utc());
        p.push(format!("COMPLETED:{}", utc(when)));
    }
    if let Some(pc) = get(f, "PercentComplete").and_then(|v| v.parse::<u8>().ok()) {
        p.push(format!("PERCENT-COMPLETE:{}", pc.min(100)));
    }
    common_in(f, &mut p);
    if let Some(r) = rrule_in(f) {
        p.push(r);
    }
    let mut t = Comp::new("VTODO");
    t.props = p;
    if get(f, "ReminderSet") == Some("1")
        && let Some(at) = get(f, "ReminderTime").and_then(sif_time)
    {
        t.subs.push(alarm(format!(
            "TRIGGER;VALUE=DATE-TIME:{}",
            utc(at.utc(&Tzi::default()))
        )));
    }
    let mapped: Vec<&str> = TASK_FIELDS.iter().chain(&RECURRENCE).copied().collect();
    kept(f, &mapped, &mut t.props);
    calendar(t)
}

/// A stored event or task as SIF-E or SIF-T.
fn calendar_out(ical: &str, kind: Kind) -> Option<String> {
    let cal = Comp::parse(ical)?;
    let zones = Zones::of(ical);
    let name = if kind == Kind::Tasks {
        "VTODO"
    } else {
        "VEVENT"
    };
    let c = cal
        .subs
        .iter()
        .find(|c| c.name == name && c.get("RECURRENCE-ID").is_none())?;
    let root = if kind == Kind::Tasks {
        "task"
    } else {
        "appointment"
    };
    let mut out =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><{root}><SIFVersion>1.1</SIFVersion>");
    let text = |n: &str| c.get(n).map(|l| unescape(&l.value)).unwrap_or_default();
    element(&mut out, "Subject", &text("SUMMARY"));
    element(&mut out, "Body", &text("DESCRIPTION"));
    let any = Tzi::default();
    let start = zones.at(c, "DTSTART");
    if kind == Kind::Events {
        element(&mut out, "Location", &text("LOCATION"));
        let start = start?;
        let end = zones.at(c, "DTEND").or_else(|| {
            let d = duration(&c.get("DURATION")?.value)?;
            Some(match start {
                At::Date(day) => At::Date(day + Duration::days(d.num_days().max(1))),
                other => At::Utc(other.utc(&any) + d),
            })
        });
        match (start, end) {
            (At::Date(first), end) => {
                let after = match end {
                    Some(At::Date(d)) => d,
                    _ => first + Duration::days(1),
                };
                element(&mut out, "AllDayEvent", "1");
                element(&mut out, "Start", &day(first));
                element(
                    &mut out,
                    "End",
                    &day((after - Duration::days(1)).max(first)),
                );
            }
            (s, e) => {
                element(&mut out, "AllDayEvent", "0");
                element(&mut out, "Start", &utc(s.utc(&any)));
                if let Some(e) = e {
                    element(&mut out, "End", &utc(e.utc(&any)));
                }
            }
        }
        let transparent = text("TRANSP").eq_ignore_ascii_case("TRANSPARENT");
        element(&mut out, "BusyStatus", if transparent { "0" } else { "2" });
        let mins = c
            .subs
            .iter()
            .find(|s| s.name == "VALARM")
            .and_then(|a| duration(&a.get("TRIGGER")?.value).map(|d| -d.num_minutes()));
        element(
            &mut out,
            "ReminderSet",
            if mins.is_some() { "1" } else { "0" },
        );
        if let Some(m) = mins {
            element(&mut out, "ReminderMinutesBeforeStart", &m.to_string());
        }
    } else {
        for (prop, field) in [("DTSTART", "StartDate"), ("DUE", "DueDate")] {
            if let Some(a) = zones.at(c, prop) {
                let v = match a {
                    At::Date(d) => day(d),
                    other => utc(other.utc(&any)),
                };
                element(&mut out, field, &v);
            }
        }
        let done = text("STATUS").eq_ignore_ascii_case("COMPLETED") || c.get("COMPLETED").is_some();
        element(&mut out, "Complete", if done { "1" } else { "0" });
        if let Some(a) = zones.at(c, "COMPLETED") {
            element(&mut out, "DateCompleted", &utc(a.utc(&any)));
        }
        let status = match text("STATUS").to_ascii_uppercase().as_str() {
            _ if done => "2",
            "IN-PROCESS" => "1",
            "CANCELLED" => "4",
            _ => "0",
        };
        element(&mut out, "Status", status);
        if let Some(pc) = c.get("PERCENT-COMPLETE") {
            element(&mut out, "PercentComplete", pc.value.trim());
        }
    }
    element(
        &mut out,
        "Categories",
        &split(&text_raw(c, "CATEGORIES"), ',').join(","),
    );
    element(
        &mut out,
        "Sensitivity",
        sensitivity_of(c.get("CLASS").map(|l| l.value).as_deref()),
    );
    element(
        &mut out,
        "Importance",
        importance_of(c.get("PRIORITY").map(|l| l.value).as_deref()),
    );
    let first_day = start.map(|a| match a {
        At::Date(d) => d,
        other => other.utc(&any).date(),
    });
    let recurs = match (c.get("RRULE"), first_day) {
        (Some(r), Some(d)) => rrule_out(&r.value, d, &mut out),
        _ => false,
    };
    if !recurs {
        element(&mut out, "IsRecurring", "0");
    } else if let Some(ex) = c.get("EXDATE") {
        out.push_str("<Exceptions>");
        for a in zones.all(&ex) {
            let v = match a {
                At::Date(d) => day(d),
                other => day(other.utc(&any).date()),
            };
            element(&mut out, "ExcludeDate", &v);
        }
        out.push_str("</Exceptions>");
    }
    fields_back(c, &mut out);
    out.push_str(&format!("</{root}>"));
    Some(out)
}

fn text_raw(c: &Comp, name: &str) -> String {
    c.get(name).map(|l| l.value).unwrap_or_default()
}

// ---- SIF-N ----

fn note_in(f: &[(String, String)]) -> String {
    let subject = get(f, "Subject").unwrap_or("");
    let body = get(f, "Body").unwrap_or(subject);
    let text = if body.starts_with(subject) {
        body.to_string()
    } else {
        format!("{subject}\n{body}")
    };
    let mut cal = Comp::parse(&crate::formats::note_from_text(&text))
        .unwrap_or_else(|| Comp::new("VCALENDAR"));
    if let Some(j) = cal.subs.first_mut() {
        if let Some(c) = get(f, "Categories") {
            j.props.push(format!("CATEGORIES:{}", categories_in(c)));
        }
        kept(
            f,
            &["SIFVersion", "Subject", "Body", "Categories"],
            &mut j.props,
        );
    }
    cal.text()
}

fn note_out(ical: &str) -> Option<String> {
    let cal = Comp::parse(ical)?;
    let j = cal.subs.iter().find(|c| c.name == "VJOURNAL")?;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><note><SIFVersion>1.1</SIFVersion>",
    );
    let text = crate::formats::note_to_text(ical).unwrap_or_default();
    element(&mut out, "Subject", text.lines().next().unwrap_or(""));
    element(&mut out, "Body", &text);
    element(
        &mut out,
        "Categories",
        &split(&text_raw(j, "CATEGORIES"), ',').join(","),
    );
    fields_back(j, &mut out);
    out.push_str("</note>");
    Some(out)
}

/// A device's SIF document as the object the store keeps; None when it is not SIF of
/// this datastore's kind.
pub fn to_stored(kind: Kind, xml: &str) -> Option<String> {
    let (root, f) = fields(xml)?;
    match (kind, root.as_str()) {
        (Kind::Contacts, "contact") => Some(contact_in(&f)),
        (Kind::Events, "appointment") => event_in(&f),
        (Kind::Tasks, "task") => Some(task_in(&f)),
        (Kind::Notes, "note") => Some(note_in(&f)),
        _ => None,
    }
}

/// A stored object as SIF; None when it holds nothing of the kind.
pub fn from_stored(kind: Kind, stored: &str) -> Option<String> {
    match kind {
        Kind::Contacts => Comp::parse(stored).map(|c| contact_out(&c)),
        Kind::Events | Kind::Tasks => calendar_out(stored, kind),
        Kind::Notes => note_out(stored),
        Kind::Journal | Kind::Mail | Kind::Files => None,
    }
}

/// What a SIF client holds, in the stored object's property names: the mapped ones, and
/// the X-SIF- properties its item carries.
pub fn caps(kind: Kind, device_item: &str) -> Caps {
    let base: &[&str] = match kind {
        Kind::Contacts => &[
            "N",
            "FN",
            "NICKNAME",
            "TITLE",
            "NOTE",
            "BDAY",
            "X-ANNIVERSARY",
            "ORG",
            "EMAIL",
            "TEL",
            "ADR",
            "URL",
            "CATEGORIES",
            "CLASS",
            "PHOTO",
        ],
        Kind::Events => &[
            "BEGIN:VCALENDAR",
            "BEGIN:VEVENT",
            "BEGIN:VALARM",
            "SUMMARY",
            "DESCRIPTION",
            "LOCATION",
            "DTSTART",
            "DTEND",
            "DURATION",
            "TRANSP",
            "CATEGORIES",
            "CLASS",
            "PRIORITY",
            "RRULE",
            "EXDATE",
            "TRIGGER",
            "ACTION",
        ],
        Kind::Tasks => &[
            "BEGIN:VCALENDAR",
            "BEGIN:VTODO",
            "BEGIN:VALARM",
            "SUMMARY",
            "DESCRIPTION",
            "DTSTART",
            "DUE",
            "STATUS",
            "COMPLETED",
            "PERCENT-COMPLETE",
            "CATEGORIES",
            "CLASS",
            "PRIORITY",
            "RRULE",
            "TRIGGER",
            "ACTION",
        ],
        Kind::Notes => &[
            "BEGIN:VCALENDAR",
            "BEGIN:VJOURNAL",
            "SUMMARY",
            "DESCRIPTION",
            "CATEGORIES",
        ],
        Kind::Journal | Kind::Mail | Kind::Files => &[],
    };
    let own = device_item
        .lines()
        .filter_map(|l| l.split([':', ';']).next())
        .filter(|n| n.starts_with("X-SIF-"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    let mut c = Caps::of(base.iter().copied());
    c.0.extend(own);
    c
}

#[cfg(test)]
mod tests;
