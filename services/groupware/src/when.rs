//! When an iCalendar property says something happens: a DTSTART-like value read as a
//! date, a UTC time, a zoned local time or a floating one, with the object's time zones
//! resolved as calcard resolves them (its VTIMEZONEs' locations, Windows names, the zone
//! database). Shared by the protocols that give devices times in UTC (ActiveSync, SyncML's
//! vCalendar 1.0).

use crate::contentline::{Comp, Line};
use crate::tzi::{Tzi, local_in};
use calcard::common::timezone::Tz as CalTz;
use chrono::{Duration, NaiveDate, NaiveDateTime, TimeZone};

/// A DTSTART-like value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum At {
    Date(NaiveDate),
    Utc(NaiveDateTime),
    Zoned(NaiveDateTime, chrono_tz::Tz),
    Floating(NaiveDateTime),
}

pub fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_hms_opt(0, 0, 0).unwrap_or_default()
}

impl At {
    pub fn utc(&self, dev: &Tzi) -> NaiveDateTime {
        match *self {
            At::Date(d) => dev.to_utc(midnight(d)),
            At::Utc(t) => t,
            At::Zoned(l, z) => z
                .from_local_datetime(&l)
                .earliest()
                .map_or(l, |t| t.naive_utc()),
            At::Floating(l) => dev.to_utc(l),
        }
    }

    /// The same form (date, UTC, zone) at another instant.
    pub fn like(&self, utc: NaiveDateTime, dev: &Tzi) -> At {
        match *self {
            At::Date(_) => At::Date(dev.to_local(utc).date()),
            At::Utc(_) => At::Utc(utc),
            At::Zoned(_, z) => At::Zoned(local_in(z, utc), z),
            At::Floating(_) => At::Floating(dev.to_local(utc)),
        }
    }

    pub fn value(&self) -> String {
        match self {
            At::Date(d) => d.format("%Y%m%d").to_string(),
            At::Utc(t) => t.format("%Y%m%dT%H%M%SZ").to_string(),
            At::Zoned(l, _) | At::Floating(l) => l.format("%Y%m%dT%H%M%S").to_string(),
        }
    }

    pub fn line(&self, name: &str) -> String {
        match self {
            At::Date(_) => format!("{name};VALUE=DATE:{}", self.value()),
            At::Zoned(_, z) => format!("{name};TZID={}:{}", z.name(), self.value()),
            _ => format!("{name}:{}", self.value()),
        }
    }

    pub fn is_date(&self) -> bool {
        matches!(self, At::Date(_))
    }
}

/// The zones an object names, resolved as calcard does (its VTIMEZONEs' locations,
/// Windows names, the zone database).
pub struct Zones(calcard::icalendar::timezone::TzResolver<String>);

impl Zones {
    pub fn of(text: &str) -> Zones {
        let cal = calcard::icalendar::ICalendar::parse(text).unwrap_or_default();
        Zones(cal.build_owned_tz_resolver())
    }

    /// Every value of a DTSTART-like line (EXDATE may list several).
    pub fn all(&self, l: &Line) -> Vec<At> {
        let date = l
            .param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
        l.value
            .split(',')
            .filter_map(|v| {
                let v = v.trim();
                if date || v.len() == 8 {
                    return NaiveDate::parse_from_str(v, "%Y%m%d").ok().map(At::Date);
                }
                if let Some(u) = v.strip_suffix('Z') {
                    return NaiveDateTime::parse_from_str(u, "%Y%m%dT%H%M%S")
                        .ok()
                        .map(At::Utc);
                }
                let t = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").ok()?;
                Some(match l.param("TZID").and_then(|n| self.0.resolve(n)) {
                    Some(CalTz::Tz(z)) => At::Zoned(t, z),
                    Some(CalTz::Fixed(o)) => {
                        At::Utc(t - Duration::seconds(o.local_minus_utc() as i64))
                    }
                    _ => At::Floating(t),
                })
            })
            .collect()
    }

    pub fn at(&self, c: &Comp, name: &str) -> Option<At> {
        c.get(name).and_then(|l| self.all(&l).into_iter().next())
    }
}

/// An RFC 5545 duration ("-PT15M", "P1D").
pub fn duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (neg, rest) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v.trim_start_matches('+')),
    };
    let mut secs = 0i64;
    let mut num = String::new();
    let mut time = false;
    for c in rest.strip_prefix('P')?.chars() {
        match c {
            '0'..='9' => num.push(c),
            'T' => time = true,
            unit => {
                let n: i64 = num.parse().ok()?;
                num.clear();
                let per = match (unit, time) {
                    ('W', false) => 604_800,
                    ('D', false) => 86_400,
                    ('H', true) => 3_600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return None,
                };
                secs = secs.checked_add(n.checked_mul(per)?)?;
            }
        }
    }
    Duration::try_seconds(if neg { -secs } else { secs })
}
