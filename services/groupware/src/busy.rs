//! Free and busy time: the instances of a calendar object (its recurrences expanded by
//! calcard, bounded), the busy and tentative periods of a set of events within a range, and
//! those periods as one VFREEBUSY. CalDAV's queries and free/busy reports, scheduling's
//! free/busy answers and resource bookings, and ActiveSync's availability read them here.

use bureau_store::{Item, StoreError};

/// Recurrence instances looked at per object, so that an endless rule ends.
pub const MAX_INSTANCES: usize = 50_000;
/// An instance: (start, end) and the index of the component it comes from.
pub type Instance = ((i64, i64), u32);

/// The instances of a calendar object, at least those
/// starting before `to`, and the time before which the list is complete (i64::MAX: all).
/// 64 instances, then twice as many while the last one still starts before `to`.
pub fn expand_until(ics: &calcard::icalendar::ICalendar, to: i64) -> (Vec<Instance>, i64) {
    let mut limit = 64;
    loop {
        let expanded = ics.expand_dates(calcard::common::timezone::Tz::UTC, limit);
        let complete = expanded.events.len() < limit;
        let instances: Vec<Instance> = expanded
            .events
            .iter()
            .map(|e| (e.timestamps(), e.comp_id))
            .collect();
        let reached = instances.iter().map(|i| i.0.0).max().unwrap_or(i64::MAX);
        if complete || limit >= MAX_INSTANCES || reached >= to {
            return (instances, if complete { i64::MAX } else { reached });
        }
        limit = (limit * 2).min(MAX_INSTANCES);
    }
}

/// Busy and tentative periods (Unix seconds, start and end).
pub type Busy = (Vec<(i64, i64)>, Vec<(i64, i64)>);

/// Periods (busy, tentative) of events within a range. Cancelled and transparent instances
/// are free; tentative ones are BUSY-TENTATIVE, others BUSY.
pub fn busy_periods(
    r: &bureau_store::Reader,
    items: &[Item],
    from: i64,
    to: i64,
) -> Result<Busy, StoreError> {
    use calcard::icalendar::{
        ICalendarProperty, ICalendarStatus, ICalendarTransparency, ICalendarValue,
    };
    let (mut busy, mut tentative) = (Vec::new(), Vec::new());
    // Events whose span (when known) reaches into the range.
    let events = items.iter().filter(|i| {
        i.component() == Some("VEVENT") && i.span().is_none_or(|(a, b)| a < to && b >= from)
    });
    for item in events {
        let data = r.content(item)?;
        let Ok(ics) = calcard::icalendar::ICalendar::parse(String::from_utf8_lossy(&data)) else {
            continue;
        };
        for ((s, e), comp) in expand_until(&ics, to).0 {
            if s >= to || e <= from {
                continue;
            }
            let Some(comp) = ics.components.get(comp as usize) else {
                continue;
            };
            let value = |p: ICalendarProperty| comp.property(&p).and_then(|x| x.values.first());
            if matches!(
                value(ICalendarProperty::Transp),
                Some(ICalendarValue::Transparency(
                    ICalendarTransparency::Transparent
                ))
            ) || matches!(
                value(ICalendarProperty::Status),
                Some(ICalendarValue::Status(ICalendarStatus::Cancelled))
            ) {
                continue;
            }
            let period = (s.max(from), e.min(to));
            match value(ICalendarProperty::Status) {
                Some(ICalendarValue::Status(ICalendarStatus::Tentative)) => tentative.push(period),
                _ => busy.push(period),
            }
        }
    }
    Ok((busy, tentative))
}

/// One VFREEBUSY over a range, overlapping periods of a kind merged; with `reply` (its
/// UID, ORGANIZER and ATTENDEE lines), an iTIP REPLY (RFC 5546 3.3.2).
pub fn vfreebusy(
    from: i64,
    to: i64,
    busy: &[(i64, i64)],
    tentative: &[(i64, i64)],
    reply: Option<&str>,
) -> String {
    let stamp = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default()
    };
    let method = if reply.is_some() {
        "METHOD:REPLY\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bureau//free-busy//EN\r\n{method}BEGIN:VFREEBUSY\r\n{}DTSTAMP:{}\r\nDTSTART:{}\r\nDTEND:{}\r\n",
        reply.unwrap_or_default(),
        stamp(chrono::Utc::now().timestamp()),
        stamp(from),
        stamp(to)
    );
    for (kind, periods) in [("BUSY", busy), ("BUSY-TENTATIVE", tentative)] {
        let mut periods = periods.to_vec();
        periods.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (s, e) in periods {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        for (s, e) in merged {
            out.push_str(&format!(
                "FREEBUSY;FBTYPE={kind}:{}/{}\r\n",
                stamp(s),
                stamp(e)
            ));
        }
    }
    out.push_str("END:VFREEBUSY\r\nEND:VCALENDAR\r\n");
    out
}
