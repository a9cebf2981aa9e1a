//! vCalendar 1.0 (`text/x-vcalendar`), what most phones that speak SyncML hold their
//! calendar in, to and from the iCalendar 2.0 the store keeps.
//!
//! A device's 1.0 object becomes 2.0: quoted-printable and CHARSET decoded; times with the
//! object's TZ (and DAYLIGHT periods) made UTC, floating ones without TZ left floating; an
//! all-day entry (date values, or midnight to midnight or 23:59 of the last day) made of
//! dates, and a task due at midnight (floating) due on that day; DCREATED as CREATED; CATEGORIES and EXDATE lists from `;` to `,`; STATUS and
//! TRANSP in 2.0 words; the basic recurrence grammar (`W1 MO WE #10`) as an RRULE; an
//! AALARM or DALARM as one VALARM relative to the start; ATTENDEE with ROLE=ORGANIZER as
//! ORGANIZER; a UID and DTSTAMP added when missing.
//!
//! A stored 2.0 object goes to such a device as 1.0, the same mapping the other way: every
//! time in UTC (no TZ line), an all-day event from 00:00 to 23:59 of its last day, the
//! first VALARM as DALARM and AALARM, recurrence overrides and what 1.0 cannot say left
//! out (the store keeps them: merge.rs lays the device's edit over the stored object, and
//! [`zoned_like`] gives the device's UTC times back the stored zone).

use crate::formats::{decode_qp, encode_qp, soft_breaks, unfold_21};
use crate::merge::Caps;
use bureau_groupware::contentline::{Comp, Line, esc, split, unescape};
use bureau_groupware::tzi::Tzi;
use bureau_groupware::when::{At, Zones, duration};
use chrono::{Duration, NaiveDateTime, NaiveTime};

const DATE_TIMES: [&str; 7] = [
    "DTSTART",
    "DTEND",
    "DUE",
    "COMPLETED",
    "LAST-MODIFIED",
    "RECURRENCE-ID",
    "CREATED",
];
const TEXTS: [&str; 4] = ["SUMMARY", "DESCRIPTION", "LOCATION", "COMMENT"];
const ALARMS: [&str; 4] = ["AALARM", "DALARM", "PALARM", "MALARM"];
const DAYS: [&str; 7] = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];

/// How a 1.0 object's floating times map to UTC: its TZ, and DAYLIGHT periods.
#[derive(Default)]
struct Clock {
    tz: Option<i64>,
    /// (offset in minutes, from, to), the bounds in UTC.
    daylight: Vec<(i64, NaiveDateTime, NaiveDateTime)>,
}

/// "+01:00", "-0500", "+01": minutes east of UTC.
fn offset(v: &str) -> Option<i64> {
    let v = v.trim();
    let (sign, rest) = match v.as_bytes().first()? {
        b'-' => (-1, &v[1..]),
        b'+' => (1, &v[1..]),
        _ => (1, v),
    };
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

fn time(v: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(v.trim().trim_end_matches('Z'), "%Y%m%dT%H%M%S").ok()
}

fn utc_text(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

impl Clock {
    /// A 1.0 date-time value as 2.0 would write it.
    fn value(&self, v: &str) -> String {
        let v = v.trim();
        if v.ends_with('Z') || v.len() == 8 {
            return v.to_string();
        }
        let (Some(local), Some(tz)) = (time(v), self.tz) else {
            return v.to_string();
        };
        let off = self
            .daylight
            .iter()
            .find(|(o, from, to)| {
                let t = local - Duration::minutes(*o);
                (*from..*to).contains(&t)
            })
            .map_or(tz, |d| d.0);
        utc_text(local - Duration::minutes(off))
    }
}

/// A 1.0 line's value decoded (quoted-printable, CHARSET), CRLFs as LFs.
fn decoded(l: &Line) -> String {
    let qp = l
        .types
        .iter()
        .any(|t| t.eq_ignore_ascii_case("quoted-printable"))
        || l.param("ENCODING")
            .is_some_and(|e| e.eq_ignore_ascii_case("QUOTED-PRINTABLE"));
    if !qp {
        return l.value.clone();
    }
    let bytes = decode_qp(&l.value);
    let text = match l.param("CHARSET").map(str::to_ascii_uppercase).as_deref() {
        Some("ISO-8859-1" | "LATIN1" | "WINDOWS-1252") => {
            bytes.iter().map(|&b| b as char).collect()
        }
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// 1.0 text: only `\;` (and `\\`) are escapes.
fn text_10(v: &str) -> String {
    v.replace("\\;", ";").replace("\\\\", "\\")
}

/// A device's vCalendar 1.0 as iCalendar 2.0; None if it is not a 1.0 object.
pub fn from_10(text: &str) -> Option<String> {
    let lines = unfold_21(text);
    if !lines.iter().any(|l| l.eq_ignore_ascii_case("VERSION:1.0")) {
        return None;
    }
    let mut clock = Clock::default();
    for l in lines.iter().map(|l| Line::parse(l)) {
        match l.name.as_str() {
            "TZ" => clock.tz = offset(&l.value),
            "DAYLIGHT" => {
                let parts: Vec<&str> = l.value.split(';').collect();
                if let [on, off, from, to, ..] = parts[..]
                    && on.eq_ignore_ascii_case("TRUE")
                    && let (Some(o), Some(f), Some(t)) = (offset(off), time(from), time(to))
                {
                    // Bounds given in local time are read in the standard offset.
                    let utc = |v: &str, t: NaiveDateTime| match (v.ends_with('Z'), clock.tz) {
                        (false, Some(tz)) => t - Duration::minutes(tz),
                        _ => t,
                    };
                    clock.daylight.push((o, utc(from, f), utc(to, t)));
                }
            }
            _ => {}
        }
    }
    let mut stack: Vec<Comp> = Vec::new();
    let mut done = None;
    for raw in &lines {
        let l = Line::parse(raw);
        match l.name.as_str() {
            "BEGIN" => stack.push(Comp::new(&l.value.trim().to_ascii_uppercase())),
            "END" => {
                let mut c = stack.pop()?;
                if c.name == "VEVENT" || c.name == "VTODO" {
                    finish_component(&mut c, &clock);
                }
                match stack.last_mut() {
                    Some(parent) => parent.subs.push(c),
                    None => done = Some(c),
                }
            }
            _ => {
                let comp = stack.last_mut()?;
                if comp.name == "VCALENDAR" {
                    match l.name.as_str() {
                        "VERSION" => comp.props.push("VERSION:2.0".into()),
                        "PRODID" => comp.props.push(l.raw.clone()),
                        _ => {}
                    }
                } else {
                    comp.props.extend(line_from_10(&l, &clock));
                }
            }
        }
    }
    let mut cal = done.filter(|_| stack.is_empty())?;
    if cal.get("PRODID").is_none() {
        cal.props
            .push("PRODID:-//Bureau//SyncML vCalendar 1.0//EN".into());
    }
    Some(cal.text())
}

/// One property of a 1.0 VEVENT or VTODO as 2.0 lines (none for what 2.0 has no place
/// for). Alarms are kept as `X-BUREAU-ALARM` until the component ends.
fn line_from_10(l: &Line, clock: &Clock) -> Vec<String> {
    let v = decoded(l);
    let name = l.name.as_str();
    let one = |s: String| vec![s];
    match name {
        _ if TEXTS.contains(&name) => one(format!("{name}:{}", esc(&text_10(&v)))),
        "CATEGORIES" | "RESOURCES" => {
            let list: Vec<String> = v
                .split(';')
                .map(|c| esc(c.trim()))
                .filter(|c| !c.is_empty())
                .collect();
            one(format!("{name}:{}", list.join(",")))
        }
        "DCREATED" => one(format!("CREATED:{}", clock.value(&v))),
        // Read with its pair when the component ends: an all-day entry is in local dates.
        "DTSTART" | "DTEND" => one(format!("{name}:{}", v.trim())),
        // Due on a day: a date, or midnight in the device's own day.
        "DUE" => {
            let v = v.trim();
            match v.strip_suffix("T000000") {
                Some(day) if day.len() == 8 => one(format!("DUE;VALUE=DATE:{day}")),
                _ if v.len() == 8 => one(format!("DUE;VALUE=DATE:{v}")),
                _ => one(format!("DUE:{}", clock.value(v))),
            }
        }
        _ if DATE_TIMES.contains(&name) => {
            let value = clock.value(&v);
            if value.len() == 8 {
                one(format!("{name};VALUE=DATE:{value}"))
            } else {
                one(format!("{name}:{value}"))
            }
        }
        "EXDATE" | "RDATE" => {
            let values: Vec<String> = v.split([';', ',']).map(|d| clock.value(d)).collect();
            let date = values.iter().all(|d| d.len() == 8);
            let head = if date { ";VALUE=DATE" } else { "" };
            one(format!("{name}{head}:{}", values.join(",")))
        }
        "RRULE" => rrule_from_10(&v, clock).map(one).unwrap_or_default(),
        "STATUS" => {
            let s = v.trim().to_ascii_uppercase();
            let s = match s.as_str() {
                "NEEDS ACTION" | "NEEDS-ACTION" | "SENT" => "NEEDS-ACTION",
                "COMPLETED" => "COMPLETED",
                "CONFIRMED" | "ACCEPTED" => "CONFIRMED",
                "TENTATIVE" => "TENTATIVE",
                "DECLINED" | "CANCELLED" => "CANCELLED",
                "IN-PROCESS" => "IN-PROCESS",
                _ => return vec![],
            };
            one(format!("STATUS:{s}"))
        }
        "TRANSP" => {
            let opaque = matches!(v.trim(), "0" | "OPAQUE");
            one(format!(
                "TRANSP:{}",
                if opaque { "OPAQUE" } else { "TRANSPARENT" }
            ))
        }
        "ATTENDEE" => attendee_from_10(l, &v),
        "GEO" => one(format!("GEO:{}", v.trim().replacen(',', ";", 1))),
        _ if ALARMS.contains(&name) => {
            let run = v.split(';').next().unwrap_or("");
            let text = v.split(';').nth(3).unwrap_or("");
            one(format!(
                "X-BUREAU-ALARM;KIND={name}:{};{}",
                clock.value(run),
                esc(&text_10(text))
            ))
        }
        "UID" | "CLASS" | "PRIORITY" | "SEQUENCE" | "URL" => one(format!("{name}:{}", v.trim())),
        _ if name.starts_with("X-") => one(format!("{name}:{}", v.replace('\n', "\\n"))),
        _ => vec![],
    }
}

/// "Ann <ann@example.org>" or "ann@example.org", with ROLE, STATUS, RSVP, EXPECT.
fn attendee_from_10(l: &Line, v: &str) -> Vec<String> {
    let v = v.trim();
    let (cn, addr) = match v.split_once('<') {
        Some((n, a)) => (n.trim().trim_matches('"'), a.trim_end_matches('>').trim()),
        None => ("", v),
    };
    let addr = addr
        .trim_start_matches("mailto:")
        .trim_start_matches("MAILTO:");
    if addr.is_empty() {
        return vec![];
    }
    let cn = if cn.is_empty() {
        String::new()
    } else {
        format!(";CN=\"{}\"", cn.replace('"', ""))
    };
    let role = l.param("ROLE").map(str::to_ascii_uppercase);
    if role.as_deref() == Some("ORGANIZER") || role.as_deref() == Some("OWNER") {
        return vec![format!("ORGANIZER{cn}:mailto:{addr}")];
    }
    let partstat = match l.param("STATUS").map(str::to_ascii_uppercase).as_deref() {
        Some("ACCEPTED" | "CONFIRMED") => "ACCEPTED",
        Some("DECLINED") => "DECLINED",
        Some("TENTATIVE") => "TENTATIVE",
        Some("DELEGATED") => "DELEGATED",
        Some("COMPLETED") => "COMPLETED",
        _ => "NEEDS-ACTION",
    };
    let role = match l.param("EXPECT").map(str::to_ascii_uppercase).as_deref() {
        Some("REQUEST") => "OPT-PARTICIPANT",
        Some("FYI") => "NON-PARTICIPANT",
        _ => "REQ-PARTICIPANT",
    };
    let rsvp = match l.param("RSVP").map(str::to_ascii_uppercase).as_deref() {
        Some("YES" | "TRUE") => ";RSVP=TRUE",
        _ => "",
    };
    vec![format!(
        "ATTENDEE{cn};ROLE={role};PARTSTAT={partstat}{rsvp}:mailto:{addr}"
    )]
}

/// A component's last touches: an all-day entry made of dates (else its start and end
/// read in the clock), the alarms as one VALARM relative to the start, a UID and DTSTAMP.
fn finish_component(c: &mut Comp, clock: &Clock) {
    let raw = |c: &Comp, n: &str| c.get(n).map(|l| l.value.trim().to_string());
    let (s, e) = (raw(c, "DTSTART"), raw(c, "DTEND"));
    // Dates, or midnight to midnight or to 23:59 of the last day (floating, or in TZ: the
    // device's own day): dates.
    let date = |v: &Option<String>| v.as_ref().filter(|v| v.len() == 8).cloned();
    let all_day = match (&s, &e) {
        _ if date(&s).is_some() => date(&s).map(|st| (st, date(&e))),
        (Some(sv), Some(ev)) if !sv.ends_with('Z') && !ev.ends_with('Z') => {
            match (time(sv), time(ev)) {
                (Some(st), Some(en)) if st.time() == NaiveTime::MIN && en > st => {
                    let last = match en.format("%H%M").to_string().as_str() {
                        "0000" => Some(en.date()),
                        "2359" => en.date().succ_opt(),
                        _ => None,
                    };
                    last.map(|l| {
                        let f = |d: chrono::NaiveDate| d.format("%Y%m%d").to_string();
                        (f(st.date()), Some(f(l)))
                    })
                }
                _ => None,
            }
        }
        _ => None,
    };
    match all_day {
        Some((start, end)) => {
            c.set("DTSTART", format!("DTSTART;VALUE=DATE:{start}"));
            match end {
                Some(end) => c.set("DTEND", format!("DTEND;VALUE=DATE:{end}")),
                None => c.remove(&["DTEND"]),
            }
        }
        None => {
            for (name, v) in [("DTSTART", s), ("DTEND", e)] {
                if let Some(v) = v {
                    c.set(name, format!("{name}:{}", clock.value(&v)));
                }
            }
        }
    }
    let alarms: Vec<Line> = c
        .props
        .iter()
        .map(|p| Line::parse(p))
        .filter(|l| l.name == "X-BUREAU-ALARM")
        .collect();
    c.remove(&["X-BUREAU-ALARM"]);
    let display = alarms.iter().find(|a| a.param("KIND") == Some("DALARM"));
    if let Some(a) = display.or(alarms.first()) {
        let (run, text) = a.value.split_once(';').unwrap_or((&a.value, ""));
        let start = c.get("DTSTART").or_else(|| c.get("DUE"));
        let start = start
            .as_ref()
            .and_then(|l| time(&l.value).filter(|_| l.value.ends_with('Z')));
        let trigger = match (start, time(run)) {
            (Some(s), Some(r)) if run.ends_with('Z') => {
                let mins = (s - r).num_minutes();
                if mins >= 0 {
                    format!("TRIGGER:-PT{mins}M")
                } else {
                    format!("TRIGGER:PT{}M", -mins)
                }
            }
            (_, Some(_)) if run.ends_with('Z') => format!("TRIGGER;VALUE=DATE-TIME:{run}"),
            _ => String::new(),
        };
        if !trigger.is_empty() {
            let mut alarm = Comp::new("VALARM");
            let audio = display.is_none();
            alarm.props.push(format!(
                "ACTION:{}",
                if audio { "AUDIO" } else { "DISPLAY" }
            ));
            alarm.props.push(trigger);
            if !audio {
                let summary = c.get("SUMMARY").map(|l| l.value).unwrap_or_default();
                let text = if text.is_empty() {
                    summary
                } else {
                    text.to_string()
                };
                alarm.props.push(format!("DESCRIPTION:{text}"));
            }
            c.subs.push(alarm);
        }
    }
    if c.get("UID").is_none() {
        c.props
            .insert(0, format!("UID:{:032x}", rand::random::<u128>()));
    }
    if c.get("DTSTAMP").is_none() {
        c.props.push(format!(
            "DTSTAMP:{}",
            utc_text(chrono::Utc::now().naive_utc())
        ));
    }
}

/// The basic recurrence grammar of vCalendar 1.0 (3.1.2.1: `D1 #5`, `W2 MO TH 20271231T000000`,
/// `MP1 2+ TU #0`, `MD1 1 15 LD #0`, `YM1 6 #3`, `YD1 100 #0`) as an RRULE; None for one it
/// cannot read.
fn rrule_from_10(rule: &str, clock: &Clock) -> Option<String> {
    let mut words = rule.split_whitespace();
    let head = words.next()?;
    let split = head.find(|c: char| c.is_ascii_digit())?;
    let (freq, interval) = head.split_at(split);
    let interval: u32 = interval.trim_end_matches('$').parse().ok()?;
    let freq = freq.to_ascii_uppercase();
    let mut parts = vec![format!(
        "FREQ={}",
        match freq.as_str() {
            "D" => "DAILY",
            "W" => "WEEKLY",
            "MP" | "MD" => "MONTHLY",
            "YM" | "YD" => "YEARLY",
            _ => return None,
        }
    )];
    if interval > 1 {
        parts.push(format!("INTERVAL={interval}"));
    }
    let (mut list, mut ordinal): (Vec<String>, Option<String>) = (Vec::new(), None);
    // A rule without an end lasts two occurrences (3.1.2.1).
    let mut end = "COUNT=2".to_string();
    for w in words {
        let w = w.trim_end_matches('$').to_ascii_uppercase();
        if let Some(n) = w.strip_prefix('#') {
            let n: u32 = n.parse().ok()?;
            end = if n == 0 {
                String::new()
            } else {
                format!("COUNT={n}")
            };
        } else if w.len() >= 8 && w.as_bytes()[0].is_ascii_digit() {
            let until = clock.value(&w);
            end = format!("UNTIL={until}");
        } else if DAYS.contains(&w.as_str()) {
            list.push(format!("{}{w}", ordinal.clone().unwrap_or_default()));
        } else if freq == "MP" {
            // "2+" second, "1-" last.
            let n: u32 = w.trim_end_matches(['+', '-']).parse().ok()?;
            ordinal = Some(if w.ends_with('-') {
                format!("-{n}")
            } else {
                n.to_string()
            });
        } else if w == "LD" {
            list.push("-1".into());
        } else if let Some(n) = w.strip_suffix('-') {
            list.push(format!("-{}", n.parse::<u32>().ok()?));
        } else {
            list.push(w.trim_end_matches('+').parse::<u32>().ok()?.to_string());
        }
    }
    if !list.is_empty() {
        let by = match freq.as_str() {
            "W" | "MP" => "BYDAY",
            "MD" => "BYMONTHDAY",
            "YM" => "BYMONTH",
            _ => "BYYEARDAY",
        };
        parts.push(format!("{by}={}", list.join(",")));
    }
    if !end.is_empty() {
        parts.push(end);
    }
    Some(format!("RRULE:{}", parts.join(";")))
}

/// A stored RRULE in 1.0's grammar; None for one 1.0 cannot say (BYHOUR, BYSETPOS,
/// a yearly rule by weekday...).
fn rrule_to_10(rule: &str, at: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut freq = "";
    let (mut interval, mut end) = ("1".to_string(), "#0".to_string());
    let (mut by_day, mut by_month_day, mut by_month) = (None, None, None);
    for part in rule.split(';') {
        let (k, v) = part.split_once('=')?;
        match k.to_ascii_uppercase().as_str() {
            "FREQ" => freq = v,
            "INTERVAL" => interval = v.to_string(),
            "COUNT" => end = format!("#{v}"),
            "UNTIL" => end = at(v)?,
            "BYDAY" => by_day = Some(v),
            "BYMONTHDAY" => by_month_day = Some(v),
            "BYMONTH" => by_month = Some(v),
            "WKST" => {}
            _ => return None,
        }
    }
    let list = |v: Option<&str>, f: &dyn Fn(&str) -> Option<String>| -> Option<String> {
        v.map_or(Some(String::new()), |v| {
            v.split(',')
                .map(f)
                .collect::<Option<Vec<_>>>()
                .map(|l| format!(" {}", l.join(" ")))
        })
    };
    let day = |d: &str| DAYS.contains(&d).then(|| d.to_string());
    let number = |d: &str| match d.strip_prefix('-') {
        Some(n) => Some(format!("{n}-")),
        None => d.parse::<u32>().ok().map(|n| n.to_string()),
    };
    let ordinal_day = |d: &str| {
        let (n, name) = d.split_at(d.len().checked_sub(2)?);
        let n: i32 = n.trim_start_matches('+').parse().ok()?;
        day(name)?;
        Some(if n < 0 {
            format!("{}- {name}", -n)
        } else {
            format!("{n}+ {name}")
        })
    };
    let body = match freq.to_ascii_uppercase().as_str() {
        "DAILY" if by_day.is_none() && by_month_day.is_none() => format!("D{interval}"),
        "WEEKLY" if by_month_day.is_none() => format!("W{interval}{}", list(by_day, &day)?),
        "MONTHLY" if by_day.is_some() && by_month_day.is_none() => {
            format!("MP{interval}{}", list(by_day, &ordinal_day)?)
        }
        "MONTHLY" if by_day.is_none() => format!("MD{interval}{}", list(by_month_day, &number)?),
        "YEARLY" if by_day.is_none() && by_month_day.is_none() => {
            format!("YM{interval}{}", list(by_month, &number)?)
        }
        _ => return None,
    };
    Some(format!("{body} {end}"))
}

/// A stored iCalendar 2.0 object as vCalendar 1.0; None when it holds no event or task.
pub fn to_10(ical: &str) -> Option<String> {
    let cal = Comp::parse(ical)?;
    let zones = Zones::of(ical);
    let utc = Tzi::default();
    let main = cal
        .subs
        .iter()
        .find(|c| (c.name == "VEVENT" || c.name == "VTODO") && c.get("RECURRENCE-ID").is_none())?;
    let mut out = String::from("BEGIN:VCALENDAR\r\nVERSION:1.0\r\n");
    out.push_str(&format!("BEGIN:{}\r\n", main.name));
    let start = zones.at(main, "DTSTART");
    // Times as 1.0 writes them: UTC, floating as it is, a date from midnight.
    let value = |a: &At, end: bool| match a {
        At::Date(d) if end => {
            let last = d.pred_opt().unwrap_or(*d);
            format!("{}T235900", last.format("%Y%m%d"))
        }
        At::Date(d) => format!("{}T000000", d.format("%Y%m%d")),
        At::Floating(l) => l.format("%Y%m%dT%H%M%S").to_string(),
        other => utc_text(other.utc(&utc)),
    };
    let mut ended = false;
    for raw in &main.props {
        let l = Line::parse(raw);
        let name = l.name.as_str();
        let line = match name {
            _ if TEXTS.contains(&name) => text_line(name, &unescape(&l.value)),
            "CATEGORIES" | "RESOURCES" => text_line(name, &split(&l.value, ',').join(";")),
            "DTEND" => {
                ended = true;
                zones
                    .at(main, name)
                    .map(|a| format!("{name}:{}", value(&a, true)))
            }
            // A task due on a day: its midnight, floating, as phones write it.
            "DUE" => zones
                .at(main, name)
                .map(|a| format!("DUE:{}", value(&a, false))),
            "CREATED" => zones
                .at(main, name)
                .map(|a| format!("DCREATED:{}", value(&a, false))),
            "EXDATE" | "RDATE" => {
                let all: Vec<String> = zones.all(&l).iter().map(|a| value(a, false)).collect();
                Some(format!("{name}:{}", all.join(";")))
            }
            _ if DATE_TIMES.contains(&name) => zones
                .at(main, name)
                .map(|a| format!("{name}:{}", value(&a, false))),
            "RRULE" => rrule_to_10(&l.value, |v| {
                let until = Line::parse(&format!("UNTIL:{v}"));
                zones.all(&until).first().map(|a| value(a, false))
            })
            .map(|r| format!("RRULE:{r}")),
            "STATUS" => Some(format!(
                "STATUS:{}",
                l.value.replace("NEEDS-ACTION", "NEEDS ACTION")
            )),
            "TRANSP" => Some(format!(
                "TRANSP:{}",
                if l.value.eq_ignore_ascii_case("TRANSPARENT") {
                    1
                } else {
                    0
                }
            )),
            "ORGANIZER" | "ATTENDEE" => {
                let addr = l
                    .value
                    .trim_start_matches("mailto:")
                    .trim_start_matches("MAILTO:");
                let status = match l.param("PARTSTAT").unwrap_or("NEEDS-ACTION") {
                    "NEEDS-ACTION" => "NEEDS ACTION",
                    other => other,
                };
                Some(if name == "ORGANIZER" {
                    format!("ATTENDEE;ROLE=ORGANIZER:{addr}")
                } else {
                    format!("ATTENDEE;ROLE=ATTENDEE;STATUS={status}:{addr}")
                })
            }
            "GEO" => Some(format!("GEO:{}", l.value.replacen(';', ",", 1))),
            "UID" | "CLASS" | "PRIORITY" | "SEQUENCE" | "URL" => Some(raw.clone()),
            _ if name.starts_with("X-") => Some(raw.clone()),
            _ => None,
        };
        if let Some(line) = line {
            push(&mut out, &line);
        }
    }
    // A DURATION is an end.
    if !ended
        && let (Some(s), Some(d)) = (start, main.get("DURATION").and_then(|l| duration(&l.value)))
    {
        let end = match s {
            At::Date(day) => At::Date(day + Duration::days(d.num_days().max(1))),
            At::Floating(l) => At::Floating(l + d),
            other => At::Utc(other.utc(&utc) + d),
        };
        push(&mut out, &format!("DTEND:{}", value(&end, true)));
    }
    if let Some(run) = alarm_time(main, &zones, start) {
        if let Some(a) = main.subs.iter().find(|s| s.name == "VALARM")
            && a.get("ACTION")
                .is_some_and(|l| l.value.eq_ignore_ascii_case("DISPLAY"))
        {
            let text = a
                .get("DESCRIPTION")
                .map(|l| unescape(&l.value))
                .unwrap_or_default();
            let line = text_line("DALARM", &format!("{};;;{text}", utc_text(run)));
            push(&mut out, &line.unwrap_or_default());
        }
        push(&mut out, &format!("AALARM:{};;;", utc_text(run)));
    }
    out.push_str(&format!("END:{}\r\nEND:VCALENDAR\r\n", main.name));
    Some(out)
}

/// When the first VALARM rings, in UTC.
fn alarm_time(c: &Comp, zones: &Zones, start: Option<At>) -> Option<NaiveDateTime> {
    let a = c.subs.iter().find(|s| s.name == "VALARM")?;
    let t = a.get("TRIGGER")?;
    if let Some(d) = duration(&t.value) {
        let from = if t
            .param("RELATED")
            .is_some_and(|r| r.eq_ignore_ascii_case("END"))
        {
            zones.at(c, "DTEND").or_else(|| zones.at(c, "DUE"))
        } else {
            start.or_else(|| zones.at(c, "DUE"))
        }?;
        return Some(from.utc(&Tzi::default()) + d);
    }
    time(&t.value).filter(|_| t.value.ends_with('Z'))
}

/// A text line in 1.0: `;` escaped, quoted-printable (UTF-8) when it is not plain ASCII on
/// one line.
fn text_line(name: &str, value: &str) -> Option<String> {
    let v = value.replace('\\', "\\\\").replace(';', "\\;");
    let v = if name == "CATEGORIES" || name == "RESOURCES" || name == "DALARM" {
        value.to_string()
    } else {
        v
    };
    if v.is_ascii() && !v.contains('\n') {
        return Some(format!("{name}:{v}"));
    }
    let plain = v.replace("\r\n", "\n").replace('\n', "\r\n");
    Some(format!(
        "{name};ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:{}",
        encode_qp(&plain)
    ))
}

fn push(out: &mut String, line: &str) {
    if line.is_empty() {
        return;
    }
    if line.contains("=QUOTED-PRINTABLE") {
        out.push_str(&soft_breaks(line));
    } else {
        bureau_groupware::contentline::fold(line, out);
    }
}

/// What a device holding vCalendar 1.0 holds, in 2.0's names: its alarms are a VALARM,
/// DCREATED is CREATED, an ATTENDEE may be the ORGANIZER, its end replaces a DURATION.
pub fn caps_in_20(caps: &Caps) -> Caps {
    let mut out = caps.clone();
    for name in &caps.0 {
        let more: &[&str] = match name.as_str() {
            "AALARM" | "DALARM" | "PALARM" | "MALARM" => {
                &["BEGIN:VALARM", "TRIGGER", "ACTION", "DESCRIPTION"]
            }
            "DCREATED" => &["CREATED"],
            "ATTENDEE" => &["ORGANIZER"],
            // An end given as DTEND or DUE stands for a DURATION too.
            "DTEND" | "DUE" => &["DURATION"],
            _ => &[],
        };
        out.0.extend(more.iter().map(|m| m.to_string()));
    }
    out
}

/// A device's object (made 2.0 from 1.0, so in UTC) with its times put back in the zone
/// the stored object's same property (else its start) has: an unchanged time is then the stored line, and a
/// moved one stays in its zone (a weekly meeting keeps its hour across summer time).
pub fn zoned_like(device: &str, stored: &str) -> String {
    let (Some(mut d), Some(s)) = (Comp::parse(device), Comp::parse(stored)) else {
        return device.to_string();
    };
    let zones = Zones::of(stored);
    let Some(sm) = s
        .subs
        .iter()
        .find(|c| c.name != "VTIMEZONE" && c.get("RECURRENCE-ID").is_none())
    else {
        return device.to_string();
    };
    let Some(dm) = d.subs.iter_mut().find(|c| c.name != "VTIMEZONE") else {
        return device.to_string();
    };
    for name in ["DTSTART", "DTEND", "DUE", "EXDATE"] {
        // The zone of the stored line, else of the stored start (an end kept as DURATION).
        let Some(At::Zoned(_, z)) = zones.at(sm, name).or_else(|| zones.at(sm, "DTSTART")) else {
            continue;
        };
        let Some(l) = dm.get(name) else { continue };
        let values: Option<Vec<String>> = l
            .value
            .split(',')
            .map(|v| {
                let t = time(v).filter(|_| v.ends_with('Z'))?;
                Some(
                    bureau_groupware::tzi::local_in(z, t)
                        .format("%Y%m%dT%H%M%S")
                        .to_string(),
                )
            })
            .collect();
        if let Some(values) = values {
            dm.set(
                name,
                format!("{name};TZID={}:{}", z.name(), values.join(",")),
            );
        }
    }
    d.text()
}

#[cfg(test)]
mod tests;
