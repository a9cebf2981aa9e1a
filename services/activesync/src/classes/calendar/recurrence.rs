//! Recurrence between MS-ASCAL's Recurrence element and RRULE, both ways, for events and
//! tasks.

use super::*;

const WEEKDAYS: [&str; 7] = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"];

fn rule_parts(v: &str) -> Vec<(String, String)> {
    v.split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim().to_ascii_uppercase()))
        .collect()
}

/// BYDAY entries: (ordinal, weekday index from Sunday).
fn by_day(v: &str) -> Option<Vec<(i32, u32)>> {
    v.split(',')
        .map(|d| {
            let (n, wd) = d.split_at(d.len().checked_sub(2)?);
            let ord = if n.is_empty() { 0 } else { n.parse().ok()? };
            Some((ord, WEEKDAYS.iter().position(|w| *w == wd)? as u32))
        })
        .collect()
}

fn week_of_month(n: i32) -> Option<String> {
    match n {
        1..=4 => Some(n.to_string()),
        -1 | 5 => Some("5".into()),
        _ => None,
    }
}

/// An RRULE's UNTIL in UTC; a date means that day at the start's time of day.
pub(super) fn until_of(zones: &Zones, start: &At, until: &str, dev: &Tzi) -> Option<NaiveDateTime> {
    let l = Line::parse(&format!("UNTIL:{until}"));
    let at = zones.all(&l).into_iter().next()?;
    Some(match (at, *start) {
        (At::Date(day), At::Zoned(l, z)) => At::Zoned(day.and_time(l.time()), z).utc(dev),
        (At::Date(day), At::Floating(l)) => dev.to_utc(day.and_time(l.time())),
        (At::Date(day), At::Utc(t)) => day.and_time(t.time()),
        (a, _) => a.utc(dev),
    })
}

/// A task's RRULE as the Tasks class's Recurrence (its dates in the long form, with the
/// Start the class requires), when ActiveSync can express it.
pub fn task_recurrence(text: &str, v: &View) -> Option<Element> {
    let vcal = Comp::parse(text)?;
    let zones = Zones::of(text);
    let t = vcal.subs.iter().find(|c| c.name == "VTODO")?;
    let rule = t.get("RRULE")?;
    let start = zones.at(t, "DTSTART").or_else(|| zones.at(t, "DUE"))?;
    let long = |u: NaiveDateTime| crate::formats::body::eas_date(u.and_utc().timestamp());
    let until = |u: &str| until_of(&zones, &start, u, &v.device).map(long);
    let r = recurrence(page::TASKS, &rule.value, &start, until, v.version)?;
    Some(r.with(Element::new(page::TASKS, "Start").text(long(start.utc(&v.device)))))
}

/// A task's new RRULE from the device's Recurrence, in the form its DTSTART (or DUE) asks.
pub fn task_rule(c: &Comp, r: &Element, text: &str, v: &View) -> Result<String, ConvertError> {
    let zones = Zones::of(text);
    let start = zones
        .at(c, "DTSTART")
        .or_else(|| zones.at(c, "DUE"))
        .ok_or("a recurring task needs a start or due date")?;
    rule_of(r, &start, &v.device)
}

/// The RRULE as a Recurrence, when ActiveSync can express it (else the device sees the
/// first instance only, and the rule, not being shown, is never changed from there).
pub(super) fn recurrence(
    page: u8,
    rule: &str,
    start: &At,
    until_text: impl Fn(&str) -> Option<String>,
    version: u32,
) -> Option<Element> {
    let parts = rule_parts(rule);
    let get = |k: &str| parts.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if parts.iter().any(|(k, _)| {
        !matches!(
            k.as_str(),
            "FREQ"
                | "INTERVAL"
                | "COUNT"
                | "UNTIL"
                | "BYDAY"
                | "BYMONTHDAY"
                | "BYMONTH"
                | "BYSETPOS"
                | "WKST"
        )
    }) {
        return None;
    }
    let local = match start {
        At::Date(d) => *d,
        At::Zoned(l, _) | At::Floating(l) => l.date(),
        At::Utc(t) => t.date(),
    };
    let days = get("BYDAY").map(by_day).unwrap_or(Some(vec![]))?;
    let mask = |days: &[(i32, u32)]| days.iter().map(|(_, d)| 1u32 << d).sum::<u32>().to_string();
    let setpos: Option<i32> = match get("BYSETPOS") {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    let month_day: Option<u32> = match get("BYMONTHDAY") {
        Some(d) => Some(d.parse().ok().filter(|d| (1..=31).contains(d))?),
        None => None,
    };
    let month: Option<u32> = match get("BYMONTH") {
        Some(m) => Some(m.parse().ok().filter(|m| (1..=12).contains(m))?),
        None => None,
    };
    let e = |name: &'static str| Element::new(page, name);
    let mut r = Element::new(page, "Recurrence");
    let nth = |days: &[(i32, u32)]| -> Option<(String, String)> {
        match (days, setpos) {
            ([(n, _)], None) if *n != 0 => Some((week_of_month(*n)?, mask(days))),
            (d, Some(p)) if !d.is_empty() && d.iter().all(|(n, _)| *n == 0) => {
                Some((week_of_month(p)?, mask(days)))
            }
            _ => None,
        }
    };
    match get("FREQ")? {
        "DAILY" if days.is_empty() && setpos.is_none() && month_day.is_none() => {
            r = r.with(e("Type").text("0"));
        }
        "DAILY" | "WEEKLY" if days.iter().all(|(n, _)| *n == 0) && setpos.is_none() => {
            let mut days = days.clone();
            if days.is_empty() {
                days.push((0, local.weekday().num_days_from_sunday()));
            }
            r = r
                .with(e("Type").text("1"))
                .with(e("DayOfWeek").text(mask(&days)));
        }
        "MONTHLY" if days.is_empty() => {
            let d = month_day.unwrap_or(local.day());
            r = r
                .with(e("Type").text("2"))
                .with(e("DayOfMonth").text(d.to_string()));
        }
        "MONTHLY" => {
            let (week, dow) = nth(&days)?;
            r = r
                .with(e("Type").text("3"))
                .with(e("WeekOfMonth").text(week))
                .with(e("DayOfWeek").text(dow));
        }
        "YEARLY" if days.is_empty() => {
            r = r
                .with(e("Type").text("5"))
                .with(e("MonthOfYear").text(month.unwrap_or(local.month()).to_string()))
                .with(e("DayOfMonth").text(month_day.unwrap_or(local.day()).to_string()));
        }
        "YEARLY" => {
            let (week, dow) = nth(&days)?;
            r = r
                .with(e("Type").text("6"))
                .with(e("MonthOfYear").text(month.unwrap_or(local.month()).to_string()))
                .with(e("WeekOfMonth").text(week))
                .with(e("DayOfWeek").text(dow));
        }
        _ => return None,
    }
    if let Some(i) = get("INTERVAL").filter(|i| *i != "1") {
        r = r.with(e("Interval").text(i.to_string()));
    }
    if let Some(c) = get("COUNT") {
        r = r.with(e("Occurrences").text(c.to_string()));
    }
    if let Some(u) = get("UNTIL").and_then(&until_text) {
        r = r.with(e("Until").text(u));
    }
    if version >= 141
        && let Some(w) = get("WKST").and_then(|w| WEEKDAYS.iter().position(|d| *d == w))
    {
        r = r.with(e("FirstDayOfWeek").text(w.to_string()));
    }
    Some(r)
}

/// The RRULE for a device's Recurrence, its UNTIL in the form DTSTART asks.
pub(super) fn rule_of(r: &Element, start: &At, dev: &Tzi) -> Result<String, ConvertError> {
    let get = |n: &str| r.child_value(n).map(|v| v.trim().to_string());
    let num = |n: &str| get(n).and_then(|v| v.parse::<i64>().ok());
    let days = |mask: i64| {
        (0..7)
            .filter(|d| mask & (1 << d) != 0)
            .map(|d| WEEKDAYS[d])
            .collect::<Vec<_>>()
    };
    let nth = |parts: &mut Vec<String>| -> Result<(), ConvertError> {
        let week = num("WeekOfMonth").ok_or("WeekOfMonth is needed")?;
        let week = if week >= 5 { -1 } else { week };
        let d = days(num("DayOfWeek").ok_or("DayOfWeek is needed")?);
        match d[..] {
            [one] => parts.push(format!("BYDAY={week}{one}")),
            [] => return Err("DayOfWeek names no day".into()),
            _ => parts.push(format!("BYDAY={};BYSETPOS={week}", d.join(","))),
        }
        Ok(())
    };
    let mut parts = Vec::new();
    match num("Type").ok_or("a recurrence needs a Type")? {
        0 => {
            parts.push("FREQ=DAILY".to_string());
            if let Some(m) = num("DayOfWeek") {
                parts.push(format!("BYDAY={}", days(m).join(",")));
            }
        }
        1 => {
            parts.push("FREQ=WEEKLY".into());
            let d = days(num("DayOfWeek").unwrap_or(0));
            if !d.is_empty() {
                parts.push(format!("BYDAY={}", d.join(",")));
            }
        }
        2 => {
            parts.push("FREQ=MONTHLY".into());
            if let Some(d) = num("DayOfMonth") {
                parts.push(format!("BYMONTHDAY={d}"));
            }
        }
        3 => {
            parts.push("FREQ=MONTHLY".into());
            nth(&mut parts)?;
        }
        5 => {
            parts.push("FREQ=YEARLY".into());
            if let Some(m) = num("MonthOfYear") {
                parts.push(format!("BYMONTH={m}"));
            }
            if let Some(d) = num("DayOfMonth") {
                parts.push(format!("BYMONTHDAY={d}"));
            }
        }
        6 => {
            parts.push("FREQ=YEARLY".into());
            if let Some(m) = num("MonthOfYear") {
                parts.push(format!("BYMONTH={m}"));
            }
            nth(&mut parts)?;
        }
        t => return Err(format!("recurrence type {t} is unknown").into()),
    }
    if let Some(i) = num("Interval").filter(|i| *i > 1) {
        parts.push(format!("INTERVAL={i}"));
    }
    if let Some(c) = num("Occurrences").filter(|c| *c > 0) {
        parts.push(format!("COUNT={c}"));
    } else if let Some(u) = get("Until").and_then(|u| parse_time(&u)) {
        let until = match start {
            At::Date(_) => At::Date(dev.to_local(u).date()),
            At::Floating(_) => At::Floating(dev.to_local(u)),
            _ => At::Utc(u),
        };
        parts.push(format!("UNTIL={}", until.value()));
    }
    if let Some(w) = num("FirstDayOfWeek").filter(|w| (0..7).contains(w)) {
        parts.push(format!("WKST={}", WEEKDAYS[w as usize]));
    }
    Ok(format!("RRULE:{}", parts.join(";")))
}
