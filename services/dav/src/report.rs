//! REPORT: calendar-multiget and addressbook-multiget (RFC 4791 7.9, RFC 6352 8.7),
//! calendar-query with component and time-range filters (RFC 4791 7.8, recurrences expanded
//! by calcard), addressbook-query with property text matches (RFC 6352 8.6), and
//! sync-collection from the change log (RFC 6578).

use crate::filter::{PropFilter, PropView};
use crate::http::{Resp, dav_error, status};
use crate::props::{Multistatus, PropReq, Res, parse_body};
use crate::xml::{CALDAV, CARDDAV, DAV, Element};
use crate::{Coll, Ctx, Kind, Target, store_status};
use bureau_groupware::busy::{busy_periods, expand_until, vfreebusy};
use bureau_store::{Item, StoreError};
use hyper::StatusCode;

pub(crate) fn report(ctx: &Ctx, t: &Target, body: &[u8]) -> Resp {
    let root = match parse_body(body) {
        Ok(Some(r)) => r,
        Ok(None) => return status(StatusCode::BAD_REQUEST, "a REPORT needs a body"),
        Err(r) => return r,
    };
    if crate::principals::is_principal_report(&root) {
        return crate::principals::report(ctx, t, &root);
    }
    let (kind, owner, name, only) = match t {
        Target::Collection(k, u, c) => (*k, u, c, None),
        // A report on one object (depth 0) looks at that object alone.
        Target::Object(k, u, c, o) => (*k, u, c, Some(o.as_str())),
        _ => return dav_error(StatusCode::FORBIDDEN, DAV, "supported-report"),
    };
    let c = match ctx.collection(kind, owner, name) {
        Ok(c) => c,
        Err(e) => return store_status(&e),
    };
    if crate::expand::CalData::of(&root).is_err() {
        return status(
            StatusCode::BAD_REQUEST,
            "calendar-data: expand and limits need start and end in UTC, start before end",
        );
    }
    let req = PropReq::of(&root);
    let r = match (root.ns.as_str(), root.name.as_str(), kind) {
        (CALDAV, "calendar-multiget", Kind::Calendar)
        | (CARDDAV, "addressbook-multiget", Kind::Contacts) => multiget(ctx, &c, &root, &req),
        (CALDAV, "calendar-query", Kind::Calendar) => match CalFilter::of(&root) {
            Ok(f) => query(
                ctx,
                &c,
                only,
                &req,
                |i| f.by_record(i),
                |i, text| f.by_text(&ctx.dav.instances, i, text),
            ),
            Err(r) => Err(r),
        },
        (CARDDAV, "addressbook-query", Kind::Contacts) => query(
            ctx,
            &c,
            only,
            &req,
            |_| None,
            |_, text| card_match(&root, &text()?),
        ),
        (DAV, "sync-collection", _) => sync(ctx, &c, &root, &req),
        (CALDAV, "free-busy-query", Kind::Calendar) => free_busy(ctx, &c, &root),
        _ => Err(dav_error(StatusCode::FORBIDDEN, DAV, "supported-report")),
    };
    r.unwrap_or_else(|e| e)
}

fn store(e: StoreError) -> Resp {
    store_status(&e)
}

fn multiget(ctx: &Ctx, c: &Coll, root: &Element, req: &PropReq) -> Result<Resp, Resp> {
    let r = ctx.reader().map_err(store)?;
    let base = crate::collection_href(c.kind, &c.owner, &c.coll.name);
    let mut ms = Multistatus::new();
    for h in root.children_named(DAV, "href") {
        let href = h.text.trim();
        // Absolute URLs name the same path.
        let path = href.find("/dav/").map_or(href, |at| &href[at..]);
        let item = path
            .strip_prefix(&base)
            .and_then(crate::http::unescape)
            .filter(|n| !n.contains('/'))
            .and_then(|n| r.item_by_name(c.coll.id, &n).ok());
        match item {
            Some(i) => ms.resource(ctx, &Res::Obj(c, &i), req),
            None => ms.gone(href),
        }
    }
    Ok(ms.finish(None))
}

/// The objects a filter keeps: `pre` decides from the item's record when it can, `keep`
/// otherwise, given the means to read the item's text.
fn query(
    ctx: &Ctx,
    c: &Coll,
    only: Option<&str>,
    req: &PropReq,
    pre: impl Fn(&Item) -> Option<bool>,
    keep: impl Fn(&Item, &dyn Fn() -> Result<String, Resp>) -> Result<bool, Resp>,
) -> Result<Resp, Resp> {
    let r = ctx.reader().map_err(store)?;
    let items = match only {
        Some(n) => std::sync::Arc::new(vec![r.item_by_name(c.coll.id, n).map_err(store)?]),
        None => ctx.items(&r, c.coll.id).map_err(store)?,
    };
    let mut ms = Multistatus::new();
    // Objects stored broken before today's rules are left out: a client that cannot read
    // one would fail its whole query (issue 19).
    for item in items
        .iter()
        .filter(|i| i.name.is_some() && !ctx.dav.is_broken(i))
    {
        let kept = match pre(item) {
            Some(k) => k,
            None => {
                let text = || -> Result<String, Resp> {
                    let data = r.content(item).map_err(store)?;
                    Ok(String::from_utf8_lossy(&data).into_owned())
                };
                keep(item, &text)?
            }
        };
        if kept {
            ms.resource(ctx, &Res::Obj(c, item), req);
        }
    }
    Ok(ms.finish(None))
}

/// An iCalendar UTC time ("20261122T100000Z") as seconds since the epoch.
fn utc_time(v: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(v.trim(), "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// calendar-query's filter: VCALENDAR, then the component asked for, with an optional
/// time-range that any instance (recurrences expanded) must overlap.
struct CalFilter {
    /// The component, and whether it must be absent (is-not-defined).
    comp: Option<(String, bool)>,
    range: Option<(i64, i64)>,
    /// Property filters one component of that type must pass.
    props: Vec<PropFilter>,
    /// A comp-filter nested in that component's (RFC 4791 9.7.1), as for its VALARMs.
    sub: Option<SubFilter>,
}

/// A component within the filtered one: its name, whether it must be absent, a time range
/// (for a VALARM, of its trigger times: RFC 4791 9.9) and property filters.
struct SubFilter {
    name: String,
    not: bool,
    range: Option<(i64, i64)>,
    props: Vec<PropFilter>,
}

/// A comp-filter's time-range: start and end in UTC, one of them at least (RFC 4791 9.9).
fn time_range(comp: &Element) -> Result<Option<(i64, i64)>, ()> {
    let Some(r) = comp.child(CALDAV, "time-range") else {
        return Ok(None);
    };
    let start = r.attr("start").map(utc_time);
    let end = r.attr("end").map(utc_time);
    if matches!(start, Some(None))
        || matches!(end, Some(None))
        || (start.is_none() && end.is_none())
    {
        return Err(());
    }
    Ok(Some((
        start.flatten().unwrap_or(i64::MIN),
        end.flatten().unwrap_or(i64::MAX),
    )))
}

impl CalFilter {
    fn of(root: &Element) -> Result<CalFilter, Resp> {
        let bad = || dav_error(StatusCode::FORBIDDEN, CALDAV, "valid-filter");
        let cal = root
            .child(CALDAV, "filter")
            .and_then(|f| f.child(CALDAV, "comp-filter"))
            .ok_or_else(bad)?;
        if !cal
            .attr("name")
            .is_some_and(|n| n.eq_ignore_ascii_case("VCALENDAR"))
        {
            return Err(bad());
        }
        let Some(comp) = cal.child(CALDAV, "comp-filter") else {
            return Ok(CalFilter {
                comp: None,
                range: None,
                props: Vec::new(),
                sub: None,
            });
        };
        let name = comp.attr("name").ok_or_else(bad)?.to_ascii_uppercase();
        let not = comp.child(CALDAV, "is-not-defined").is_some();
        let range = time_range(comp).map_err(|_| bad())?;
        let sub = match comp.child(CALDAV, "comp-filter") {
            None => None,
            Some(inner) => {
                // Nothing lies deeper than an alarm (RFC 5545 3.6).
                if inner.child(CALDAV, "comp-filter").is_some() {
                    return Err(bad());
                }
                Some(SubFilter {
                    name: inner.attr("name").ok_or_else(bad)?.to_ascii_uppercase(),
                    not: inner.child(CALDAV, "is-not-defined").is_some(),
                    range: time_range(inner).map_err(|_| bad())?,
                    props: PropFilter::list(inner, CALDAV)?,
                })
            }
        };
        Ok(CalFilter {
            comp: Some((name, not)),
            range,
            props: PropFilter::list(comp, CALDAV)?,
            sub,
        })
    }

    /// The answer from the item's record alone (its component and span), or None when
    /// its text must be read.
    fn by_record(&self, item: &Item) -> Option<bool> {
        let Some((name, not)) = &self.comp else {
            return Some(true);
        };
        let is_type = item.component() == Some(name.as_str());
        if *not || !is_type {
            return Some(*not != is_type);
        }
        let (from, to) = match self.range {
            Some(r) => r,
            None if self.props.is_empty() && self.sub.is_none() => return Some(true),
            None => return None,
        };
        if let Some((a, b)) = item.span()
            && (a >= to || b < from)
        {
            return Some(false);
        }
        None
    }

    /// Whether any instance overlaps the range (RFC 4791 9.9: it starts before the end
    /// and ends after the start; one without duration, when it starts within the range).
    fn by_text(
        &self,
        instances: &InstanceCache,
        item: &Item,
        text: &dyn Fn() -> Result<String, Resp>,
    ) -> Result<bool, Resp> {
        if let Some((from, to)) = self.range {
            let spans = instances.get(item, to, text)?;
            let overlaps =
                if spans.is_empty() && self.comp.as_ref().is_some_and(|(n, _)| n == "VTODO") {
                    todo_overlaps(&text()?, from, to)
                } else {
                    spans.iter().any(|&(s, e)| {
                        if e > s {
                            s < to && e > from
                        } else {
                            s >= from && s < to
                        }
                    })
                };
            if !overlaps {
                return Ok(false);
            }
        }
        let Some((name, _)) = &self.comp else {
            return Ok(true);
        };
        if self.props.is_empty() && self.sub.is_none() {
            return Ok(true);
        }
        let Ok(ics) = calcard::icalendar::ICalendar::parse(text()?) else {
            return Ok(false);
        };
        let alarms = self.sub.as_ref().map(|s| s.triggers(&ics));
        Ok(ics
            .components
            .iter()
            .enumerate()
            .filter(|(_, c)| c.component_type.as_str().eq_ignore_ascii_case(name))
            .any(|(at, c)| {
                let views: Vec<PropView> = c.entries.iter().map(PropView::of_ical).collect();
                self.props.iter().all(|f| f.matches(&views))
                    && self.sub.as_ref().is_none_or(|s| {
                        s.holds(&ics, at as u32, alarms.as_ref().unwrap_or(&Vec::new()))
                    })
            }))
    }
}

impl SubFilter {
    /// Whether the component at `parent` passes: it has a child of this name passing the
    /// property filters and, with a range, one of whose trigger times (`triggers`: alarm
    /// index and time) falls in it; or, for is-not-defined, no child of this name.
    fn holds(
        &self,
        ics: &calcard::icalendar::ICalendar,
        parent: u32,
        triggers: &[(u32, i64)],
    ) -> bool {
        let Some(p) = ics.components.get(parent as usize) else {
            return false;
        };
        let mut children = p.component_ids.iter().filter(|id| {
            ics.components
                .get(**id as usize)
                .is_some_and(|c| c.component_type.as_str().eq_ignore_ascii_case(&self.name))
        });
        if self.not {
            return children.next().is_none();
        }
        children.any(|id| {
            let c = &ics.components[*id as usize];
            let views: Vec<PropView> = c.entries.iter().map(PropView::of_ical).collect();
            self.props.iter().all(|f| f.matches(&views))
                && self.range.is_none_or(|(from, to)| {
                    triggers
                        .iter()
                        .any(|(alarm, t)| alarm == id && *t >= from && *t < to)
                })
        })
    }

    /// Every trigger time of every alarm (by component index) of every instance, far
    /// enough to decide the range: TRIGGER as a date-time, or a duration from the
    /// instance's start (or end, RELATED=END), then REPEAT times DURATION after it.
    fn triggers(&self, ics: &calcard::icalendar::ICalendar) -> Vec<(u32, i64)> {
        use calcard::icalendar::{
            ICalendarComponentType as T, ICalendarParameterName as PN,
            ICalendarParameterValue as PV, ICalendarProperty as P, ICalendarRelated,
            ICalendarValue as V,
        };
        let Some((_, to)) = self.range else {
            return Vec::new();
        };
        let utc = calcard::common::timezone::Tz::UTC;
        // An alarm may ring before its instance: expand far enough for the earliest.
        let mut lead = 0i64;
        let mut alarms = Vec::new();
        for (at, c) in ics.components.iter().enumerate() {
            if c.component_type != T::VAlarm {
                continue;
            }
            let Some(trigger) = c.property(&P::Trigger) else {
                continue;
            };
            let end = trigger
                .parameters(&PN::Related)
                .any(|v| matches!(v, PV::Related(ICalendarRelated::End)));
            let when = trigger.values.iter().find_map(|v| match v {
                V::Duration(d) => Some(Err(d.as_seconds())),
                V::PartialDateTime(d) => d.to_date_time_with_tz(utc).map(|t| Ok(t.timestamp())),
                _ => None,
            });
            let Some(when) = when else { continue };
            if let Err(offset) = when {
                lead = lead.max(-offset);
            }
            let repeat = c
                .property(&P::Repeat)
                .and_then(|e| e.values.first())
                .and_then(|v| match v {
                    V::Integer(n) => Some((*n).clamp(0, 100)),
                    _ => None,
                })
                .unwrap_or(0);
            let every = c
                .property(&P::Duration)
                .and_then(|e| e.values.first())
                .and_then(|v| match v {
                    V::Duration(d) => Some(d.as_seconds()),
                    _ => None,
                })
                .unwrap_or(0);
            alarms.push((at as u32, when, end, repeat, every));
        }
        if alarms.is_empty() {
            return Vec::new();
        }
        let (instances, _) = expand_until(ics, to.saturating_add(lead));
        let mut out = Vec::new();
        for (alarm, when, end, repeat, every) in alarms {
            let mut first = Vec::new();
            match when {
                Ok(t) => first.push(t),
                Err(offset) => {
                    for ((s, e), comp) in &instances {
                        let owns = ics
                            .components
                            .get(*comp as usize)
                            .is_some_and(|c| c.component_ids.contains(&alarm));
                        if owns {
                            first.push(if end { *e } else { *s } + offset);
                        }
                    }
                }
            }
            for t in first {
                for k in 0..=repeat {
                    out.push((alarm, t + k * every));
                }
            }
        }
        out
    }
}

/// RFC 4791 9.9's rows for a VTODO with no DTSTART (so no instance to expand): by DUE, by
/// COMPLETED and CREATED, and one with none of them matches every range.
fn todo_overlaps(text: &str, start: i64, end: i64) -> bool {
    use calcard::icalendar::{ICalendarComponentType, ICalendarProperty as P, ICalendarValue};
    let Ok(ics) = calcard::icalendar::ICalendar::parse(text) else {
        return false;
    };
    let utc = calcard::common::timezone::Tz::UTC;
    ics.components
        .iter()
        .filter(|c| c.component_type == ICalendarComponentType::VTodo)
        .any(|c| {
            let at = |p: &P| {
                c.property(p)?.values.iter().find_map(|v| match v {
                    ICalendarValue::PartialDateTime(d) => {
                        d.to_date_time_with_tz(utc).map(|t| t.timestamp())
                    }
                    _ => None,
                })
            };
            match (at(&P::Due), at(&P::Completed), at(&P::Created)) {
                (Some(d), _, _) => start < d && end >= d,
                (None, Some(c), Some(cr)) => (start <= cr || start <= c) && (end >= cr || end >= c),
                (None, Some(c), None) => start <= c && end >= c,
                (None, None, Some(cr)) => end > cr,
                (None, None, None) => true,
            }
        })
}

/// free-busy-query (RFC 4791 7.10): the busy time of the calendar's events within a range,
/// as one VFREEBUSY.
fn free_busy(ctx: &Ctx, c: &Coll, root: &Element) -> Result<Resp, Resp> {
    let bad = || {
        status(
            StatusCode::BAD_REQUEST,
            "free-busy-query needs a time-range with start and end",
        )
    };
    let range = root.child(CALDAV, "time-range").ok_or_else(bad)?;
    let (from, to) = match (
        range.attr("start").and_then(utc_time),
        range.attr("end").and_then(utc_time),
    ) {
        (Some(a), Some(b)) if a < b => (a, b),
        _ => return Err(bad()),
    };
    let r = ctx.reader().map_err(store)?;
    let items = ctx.items(&r, c.coll.id).map_err(store)?;
    let (busy, tentative) = busy_periods(&r, &items, from, to).map_err(store)?;
    Ok(crate::http::bytes(
        StatusCode::OK,
        "text/calendar; charset=utf-8",
        vfreebusy(from, to, &busy, &tentative, None).into_bytes(),
    ))
}

/// The instances (start, end) of calendar objects as far as queries have needed them, by
/// item and modseq, so that a recurring event is not parsed and expanded at every query.
/// At most `CACHED_SPANS` instances are kept in all; past that the cache starts again.
#[derive(Default)]
pub(crate) struct InstanceCache {
    map: std::sync::Mutex<std::collections::HashMap<(u64, u64), Instances>>,
}

const CACHED_SPANS: usize = 1 << 20;

struct Instances {
    modseq: u64,
    spans: std::sync::Arc<Vec<(i64, i64)>>,
    /// Every instance starting before this is in `spans` (i64::MAX: all of them).
    until: i64,
}

impl InstanceCache {
    /// The instances of `item` covering at least everything that starts before `to`,
    /// expanding its text (from `text`) only when the cache cannot answer: 64 instances,
    /// then twice as many while the last one still starts before `to`.
    fn get(
        &self,
        item: &Item,
        to: i64,
        text: &dyn Fn() -> Result<String, Resp>,
    ) -> Result<std::sync::Arc<Vec<(i64, i64)>>, Resp> {
        let key = (item.collection, item.id);
        if let Some(c) = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            && c.modseq == item.modseq
            && c.until >= to
        {
            return Ok(c.spans.clone());
        }
        let Ok(ics) = calcard::icalendar::ICalendar::parse(text()?) else {
            return Ok(Default::default());
        };
        let (instances, until) = expand_until(&ics, to);
        let mut spans: Vec<(i64, i64)> = instances.iter().map(|i| i.0).collect();
        spans.sort_unstable();
        let spans = std::sync::Arc::new(spans);
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held: usize = map.values().map(|c| c.spans.len()).sum();
        if held + spans.len() > CACHED_SPANS {
            map.clear();
        }
        map.insert(
            key,
            Instances {
                modseq: item.modseq,
                spans: spans.clone(),
                until,
            },
        );
        Ok(spans)
    }
}

/// addressbook-query's filter: prop-filters, any of them (the default) or all.
fn card_match(root: &Element, data: &str) -> Result<bool, Resp> {
    let Some(filter) = root.child(CARDDAV, "filter") else {
        return Ok(true);
    };
    let filters = PropFilter::list(filter, CARDDAV)?;
    if filters.is_empty() {
        return Ok(true);
    }
    let Ok(card) = calcard::vcard::VCard::parse(data) else {
        return Ok(false);
    };
    let views: Vec<PropView> = card.entries.iter().map(PropView::of_vcard).collect();
    let mut results = filters.iter().map(|f| f.matches(&views));
    Ok(if filter.attr("test") == Some("allof") {
        results.all(|x| x)
    } else {
        results.any(|x| x)
    })
}

/// sync-collection (RFC 6578): everything for an empty token, else exactly what changed and
/// what was deleted since the token's modseq.
fn sync(ctx: &Ctx, c: &Coll, root: &Element, req: &PropReq) -> Result<Resp, Resp> {
    let invalid = || dav_error(StatusCode::FORBIDDEN, DAV, "valid-sync-token");
    let token = root
        .child(DAV, "sync-token")
        .map(|t| t.text.trim().to_string())
        .unwrap_or_default();
    let since = if token.is_empty() {
        0
    } else {
        // https://<host>/dav/sync/<validity>/<modseq>
        let mut parts = token.rsplit('/');
        let modseq: u64 = parts
            .next()
            .and_then(|m| m.parse().ok())
            .ok_or_else(invalid)?;
        let validity: u32 = parts
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(invalid)?;
        if validity != c.coll.validity || modseq > c.coll.modseq {
            return Err(invalid());
        }
        modseq
    };
    let ch = ctx
        .reader()
        .and_then(|r| r.changes_since(c.coll.id, since))
        .map_err(store)?;
    let mut ms = Multistatus::new();
    for item in ch.changed.iter().filter(|i| i.name.is_some()) {
        ms.resource(ctx, &Res::Obj(c, item), req);
    }
    if since > 0 {
        for name in ch.deleted_names.values() {
            ms.gone(&crate::object_href(c.kind, &c.owner, &c.coll.name, name));
        }
    }
    let mut now = c.coll.clone();
    now.modseq = ch.modseq;
    Ok(ms.finish(Some(&ctx.sync_token(&now))))
}
