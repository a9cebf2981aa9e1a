//! The time zone ActiveSync's Calendar class carries (MS-ASCAL 2.2.2.46): a Windows
//! TIME_ZONE_INFORMATION structure, base64-encoded. It holds a bias and, for zones with
//! summer time, the yearly rule of each change ("the last Sunday of March at 02:00").
//!
//! A zone of the zone database is described for a given year by finding its changes in
//! that year; a device's structure is matched back to a zone of the database when one has
//! the same rules, so events keep a TZID that CalDAV clients know.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::OffsetComponents;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The structure's size: bias, two names of 32 UTF-16 units, two SYSTEMTIMEs, two biases.
pub const SIZE: usize = 172;

/// When a change happens, as SYSTEMTIME gives it: with `year` 0, on the `day`th (5: last)
/// `weekday` (0: Sunday) of `month`, at `hour`:`minute` local time before the change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rule {
    pub year: u16,
    pub month: u16,
    pub weekday: u16,
    pub day: u16,
    pub hour: u16,
    pub minute: u16,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tzi {
    /// Minutes: UTC = local time + bias.
    pub bias: i32,
    pub standard_name: String,
    pub standard: Rule,
    pub standard_bias: i32,
    pub daylight_name: String,
    pub daylight: Rule,
    pub daylight_bias: i32,
}

fn name_bytes(out: &mut Vec<u8>, name: &str) {
    let units: Vec<u16> = name.encode_utf16().take(31).collect();
    for i in 0..32 {
        out.extend_from_slice(&units.get(i).copied().unwrap_or(0).to_le_bytes());
    }
}

fn rule_bytes(out: &mut Vec<u8>, r: &Rule) {
    for v in [r.year, r.month, r.weekday, r.day, r.hour, r.minute, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

impl Tzi {
    /// A fixed offset from UTC, in minutes east.
    pub fn fixed(offset: i32) -> Tzi {
        Tzi {
            bias: -offset,
            ..Default::default()
        }
    }

    pub fn decode(b: &[u8]) -> Option<Tzi> {
        if b.len() != SIZE {
            return None;
        }
        let i32_at = |o: usize| i32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let name = |o: usize| {
            let units: Vec<u16> = (0..32).map(|i| u16_at(o + 2 * i)).collect();
            let end = units.iter().position(|u| *u == 0).unwrap_or(32);
            String::from_utf16_lossy(&units[..end])
        };
        let rule = |o: usize| Rule {
            year: u16_at(o),
            month: u16_at(o + 2),
            weekday: u16_at(o + 4),
            day: u16_at(o + 6),
            hour: u16_at(o + 8),
            minute: u16_at(o + 10),
        };
        let t = Tzi {
            bias: i32_at(0),
            standard_name: name(4),
            standard: rule(68),
            standard_bias: i32_at(84),
            daylight_name: name(88),
            daylight: rule(152),
            daylight_bias: i32_at(168),
        };
        let sane = |r: &Rule| {
            r.month == 0 || (r.month <= 12 && r.weekday <= 6 && r.hour < 24 && r.minute < 60)
        };
        (t.bias.abs() <= 24 * 60 && sane(&t.standard) && sane(&t.daylight)).then_some(t)
    }

    /// As the Timezone element carries it.
    pub fn from_base64(text: &str) -> Option<Tzi> {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        Tzi::decode(&b)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SIZE);
        out.extend_from_slice(&self.bias.to_le_bytes());
        name_bytes(&mut out, &self.standard_name);
        rule_bytes(&mut out, &self.standard);
        out.extend_from_slice(&self.standard_bias.to_le_bytes());
        name_bytes(&mut out, &self.daylight_name);
        rule_bytes(&mut out, &self.daylight);
        out.extend_from_slice(&self.daylight_bias.to_le_bytes());
        out
    }

    fn has_summer_time(&self) -> bool {
        self.standard.month != 0 && self.daylight.month != 0
    }

    /// The same clock as another, whatever the names.
    pub fn same_rules(&self, o: &Tzi) -> bool {
        if self.bias + self.standard_bias != o.bias + o.standard_bias
            || self.has_summer_time() != o.has_summer_time()
        {
            return false;
        }
        !self.has_summer_time()
            || (self.standard == o.standard
                && self.daylight == o.daylight
                && self.daylight_bias - self.standard_bias == o.daylight_bias - o.standard_bias)
    }

    /// Minutes east of UTC at a UTC time.
    pub fn offset_at(&self, utc: NaiveDateTime) -> i32 {
        let standard = -(self.bias + self.standard_bias);
        if !self.has_summer_time() {
            return standard;
        }
        let daylight = -(self.bias + self.daylight_bias);
        let year = (utc + Duration::minutes(standard as i64)).year();
        let (Some(start), Some(end)) = (
            change_in(&self.daylight, year).map(|l| l - Duration::minutes(standard as i64)),
            change_in(&self.standard, year).map(|l| l - Duration::minutes(daylight as i64)),
        ) else {
            return standard;
        };
        let summer = if start < end {
            start <= utc && utc < end
        } else {
            utc >= start || utc < end
        };
        if summer { daylight } else { standard }
    }

    pub fn to_local(&self, utc: NaiveDateTime) -> NaiveDateTime {
        utc + Duration::minutes(self.offset_at(utc) as i64)
    }

    /// The UTC time of a local time (the earlier one where the clock repeats).
    pub fn to_utc(&self, local: NaiveDateTime) -> NaiveDateTime {
        let guess = local - Duration::minutes(self.offset_at(local) as i64);
        local - Duration::minutes(self.offset_at(guess) as i64)
    }

    /// A zone of the database as the structure describes it in `year`.
    pub fn of_zone(tz: chrono_tz::Tz, year: i32) -> Tzi {
        let at = |t: NaiveDateTime| tz.offset_from_utc_datetime(&t);
        let jan = NaiveDate::from_ymd_opt(year, 1, 1)
            .unwrap_or_default()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default();
        let base = at(jan).base_utc_offset().num_minutes() as i32;
        let mut t = Tzi {
            bias: -base,
            standard_name: tz.name().to_string(),
            daylight_name: tz.name().to_string(),
            ..Default::default()
        };
        // The changes of the year, found month by month, then to the minute.
        let offset = |t: NaiveDateTime| at(t).fix().local_minus_utc() / 60;
        let mut changes = Vec::new();
        for m in 0..12 {
            let from = months_after(jan, m);
            let to = months_after(jan, m + 1);
            let (a, b) = (offset(from), offset(to));
            if a != b {
                let (mut lo, mut hi) = (from, to);
                while hi - lo > Duration::minutes(1) {
                    let mid = lo + (hi - lo) / 2;
                    if offset(mid) == a { lo = mid } else { hi = mid }
                }
                changes.push((hi, a, b));
            }
        }
        let [first, second] = changes[..] else {
            // No summer time this year (or a one-off change): the offset of the year's end.
            t.bias = -offset(months_after(jan, 12) - Duration::minutes(1));
            return t;
        };
        for (when, before, after) in [first, second] {
            let local = when + Duration::minutes(before as i64);
            let day = local.day() as u16;
            let last = local.date() + Duration::days(7);
            let rule = Rule {
                year: 0,
                month: local.month() as u16,
                weekday: local.weekday().num_days_from_sunday() as u16,
                day: if last.month() != local.month() {
                    5
                } else {
                    (day - 1) / 7 + 1
                },
                hour: local.hour() as u16,
                minute: local.minute() as u16,
            };
            if after > before {
                t.daylight = rule;
                t.daylight_bias = -(after - base);
            } else {
                t.standard = rule;
                t.standard_bias = -(after - base);
            }
        }
        t
    }

    /// A zone of the database with the same rules in `year`: the one the structure names
    /// (a Windows name such as "Romance Standard Time", or a zone's own name) when it has
    /// them, else `prefer` when it has them, else the first by name. Matches are remembered.
    pub fn zone(&self, year: i32, prefer: Option<chrono_tz::Tz>) -> Option<chrono_tz::Tz> {
        let named = [&self.standard_name, &self.daylight_name]
            .into_iter()
            .filter_map(|n| zone(n.trim()));
        for z in named.chain(prefer) {
            if Tzi::of_zone(z, year).same_rules(self) {
                return Some(z);
            }
        }
        type Found = HashMap<(Vec<u8>, i32), Option<chrono_tz::Tz>>;
        static FOUND: OnceLock<Mutex<Found>> = OnceLock::new();
        let mut key = self.clone();
        key.standard_name.clear();
        key.daylight_name.clear();
        let key = (key.encode(), year);
        let found = FOUND.get_or_init(Default::default);
        if let Some(z) = found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return *z;
        }
        let z = chrono_tz::TZ_VARIANTS
            .iter()
            .copied()
            // Area/City names first: what calendar clients show.
            .filter(|z| z.name().contains('/') && !z.name().starts_with("Etc/"))
            .chain([chrono_tz::UTC])
            .find(|z| Tzi::of_zone(*z, year).same_rules(self));
        let mut map = found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 256 {
            map.clear();
        }
        map.insert(key, z);
        z
    }
}

fn months_after(jan: NaiveDateTime, months: u32) -> NaiveDateTime {
    let y = jan.year() + (months / 12) as i32;
    let m = months % 12 + 1;
    NaiveDate::from_ymd_opt(y, m, 1)
        .unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
}

/// The local time a rule names in a year.
fn change_in(r: &Rule, year: i32) -> Option<NaiveDateTime> {
    let date = if r.year != 0 {
        NaiveDate::from_ymd_opt(year, r.month as u32, r.day as u32)?
    } else {
        let first = NaiveDate::from_ymd_opt(year, r.month as u32, 1)?;
        let shift = (r.weekday as i64 - first.weekday().num_days_from_sunday() as i64 + 7) % 7;
        let mut d = first + Duration::days(shift + 7 * (r.day.clamp(1, 5) as i64 - 1));
        while d.month() != r.month as u32 {
            d -= Duration::days(7);
        }
        d
    };
    date.and_hms_opt(r.hour as u32, r.minute as u32, 0)
}

/// The zone a TZID names, read as calcard reads it (the zone database, Windows and
/// Outlook names).
pub fn zone(name: &str) -> Option<chrono_tz::Tz> {
    match name.parse::<calcard::common::timezone::Tz>().ok()? {
        calcard::common::timezone::Tz::Tz(z) => Some(z),
        _ => None,
    }
}

/// A UTC time as the zone's local time (for zones of the database).
pub fn local_in(tz: chrono_tz::Tz, utc: NaiveDateTime) -> NaiveDateTime {
    DateTime::<chrono::Utc>::from_naive_utc_and_offset(utc, chrono::Utc)
        .with_timezone(&tz)
        .naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S").unwrap()
    }

    #[test]
    fn paris_as_windows_knows_it() {
        let t = Tzi::of_zone(chrono_tz::Europe::Paris, 2026);
        assert_eq!(t.bias, -60);
        // Summer time: last Sunday of March at 02:00; back on the last Sunday of October
        // at 03:00 summer time.
        assert_eq!(
            (t.daylight.month, t.daylight.weekday, t.daylight.day),
            (3, 0, 5)
        );
        assert_eq!((t.daylight.hour, t.daylight.minute), (2, 0));
        assert_eq!(
            (t.standard.month, t.standard.day, t.standard.hour),
            (10, 5, 3)
        );
        assert_eq!((t.standard_bias, t.daylight_bias), (0, -60));
        let back = Tzi::decode(&t.encode()).unwrap();
        assert_eq!(back, t);
        assert_eq!(t.offset_at(at("20260115T120000")), 60);
        assert_eq!(t.offset_at(at("20260715T120000")), 120);
        // The change itself: 2026-03-29 01:00 UTC.
        assert_eq!(t.offset_at(at("20260329T005900")), 60);
        assert_eq!(t.offset_at(at("20260329T010000")), 120);
        assert_eq!(t.to_utc(at("20260715T090000")), at("20260715T070000"));
        // Without a preference, some zone with Paris's rules (Europe/Amsterdam comes first).
        let other = t.zone(2026, None).unwrap();
        assert!(Tzi::of_zone(other, 2026).same_rules(&t));
        assert_eq!(
            t.zone(2026, Some(chrono_tz::Europe::Paris)),
            Some(chrono_tz::Europe::Paris)
        );
    }

    #[test]
    fn southern_and_fixed_zones() {
        let t = Tzi::of_zone(chrono_tz::Australia::Sydney, 2026);
        assert_eq!(t.offset_at(at("20260115T000000")), 660);
        assert_eq!(t.offset_at(at("20260715T000000")), 600);
        let tokyo = Tzi::of_zone(chrono_tz::Asia::Tokyo, 2026);
        assert_eq!((tokyo.bias, tokyo.standard.month), (-540, 0));
        assert!(tokyo.same_rules(&Tzi::fixed(540)));
        // Some zone has UTC's clock all year.
        let utc = Tzi::fixed(0).zone(2026, None).unwrap();
        assert_eq!(Tzi::of_zone(utc, 2026).bias, 0);
        assert!(Tzi::decode(&[0; 10]).is_none());
    }
}
