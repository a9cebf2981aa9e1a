//! REPORT: calendar-multiget and addressbook-multiget (RFC 4791 7.9, RFC 6352 8.7),
//! calendar-query with component and time-range filters (RFC 4791 7.8, recurrences expanded
//! by calcard), addressbook-query with property text matches (RFC 6352 8.6), and
//! sync-collection from the change log (RFC 6578).

use crate::http::{Resp, dav_error, status};
use crate::props::{Multistatus, PropReq, Res, parse_body};
use crate::xml::{CALDAV, CARDDAV, DAV, Element};
use crate::{Coll, Ctx, Kind, Target, store_status};
use bureau_store::{Item, StoreError};
use hyper::StatusCode;

/// Recurrence instances looked at per object, so that an endless rule ends.
const MAX_INSTANCES: usize = 50_000;

pub(crate) fn report(ctx: &Ctx, t: &Target, depth: Option<&str>, body: &[u8]) -> Resp {
    let root = match parse_body(body) {
        Ok(Some(r)) => r,
        Ok(None) => return status(StatusCode::BAD_REQUEST, "a REPORT needs a body"),
        Err(r) => return r,
    };
    let (kind, owner, name, only) = match t {
        Target::Collection(k, u, c) => (*k, u, c, None),
        // A report on one object (depth 0) looks at that object alone.
        Target::Object(k, u, c, o) => (*k, u, c, Some(o.as_str())),
        _ => return dav_error(StatusCode::FORBIDDEN, DAV, "supported-report"),
    };
    let _ = depth;
    let c = match ctx.collection(kind, owner, name) {
        Ok(c) => c,
        Err(e) => return store_status(&e),
    };
    let req = PropReq::of(&root);
    let r = match (root.ns.as_str(), root.name.as_str(), kind) {
        (CALDAV, "calendar-multiget", Kind::Calendar)
        | (CARDDAV, "addressbook-multiget", Kind::Contacts) => multiget(ctx, &c, &root, &req),
        (CALDAV, "calendar-query", Kind::Calendar) => query(ctx, &c, only, &req, |item, data| {
            calendar_match(&root, item, data)
        }),
        (CARDDAV, "addressbook-query", Kind::Contacts) => {
            query(ctx, &c, only, &req, |_, data| card_match(&root, data))
        }
        (DAV, "sync-collection", _) => sync(ctx, &c, &root, &req),
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

/// The objects for which `keep` holds, given each one's text.
fn query(
    ctx: &Ctx,
    c: &Coll,
    only: Option<&str>,
    req: &PropReq,
    keep: impl Fn(&Item, &str) -> Result<bool, Resp>,
) -> Result<Resp, Resp> {
    let r = ctx.reader().map_err(store)?;
    let items = match only {
        Some(n) => vec![r.item_by_name(c.coll.id, n).map_err(store)?],
        None => r.items(c.coll.id).map_err(store)?,
    };
    let mut ms = Multistatus::new();
    for item in items.iter().filter(|i| i.name.is_some()) {
        let data = r.content(item).map_err(store)?;
        if keep(item, &String::from_utf8_lossy(&data))? {
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
fn calendar_match(root: &Element, item: &Item, data: &str) -> Result<bool, Resp> {
    let bad = || dav_error(StatusCode::FORBIDDEN, CALDAV, "valid-filter");
    let Some(filter) = root.child(CALDAV, "filter") else {
        return Err(bad());
    };
    let Some(cal) = filter.child(CALDAV, "comp-filter") else {
        return Err(bad());
    };
    if !cal
        .attr("name")
        .is_some_and(|n| n.eq_ignore_ascii_case("VCALENDAR"))
    {
        return Err(bad());
    }
    let Some(comp) = cal.child(CALDAV, "comp-filter") else {
        return Ok(true);
    };
    let name = comp.attr("name").ok_or_else(bad)?;
    let is_type = item
        .props
        .get("component")
        .is_some_and(|c| c.eq_ignore_ascii_case(name));
    if comp.child(CALDAV, "is-not-defined").is_some() {
        return Ok(!is_type);
    }
    if !is_type {
        return Ok(false);
    }
    let Some(range) = comp.child(CALDAV, "time-range") else {
        return Ok(true);
    };
    let start = range.attr("start").map(utc_time);
    let end = range.attr("end").map(utc_time);
    if matches!(start, Some(None))
        || matches!(end, Some(None))
        || (start.is_none() && end.is_none())
    {
        return Err(bad());
    }
    let (from, to) = (
        start.flatten().unwrap_or(i64::MIN),
        end.flatten().unwrap_or(i64::MAX),
    );
    let Ok(ics) = calcard::icalendar::ICalendar::parse(data) else {
        return Ok(false);
    };
    let expanded = ics.expand_dates(calcard::common::timezone::Tz::UTC, MAX_INSTANCES);
    Ok(expanded.events.iter().any(|e| {
        let (s, e) = e.timestamps();
        // RFC 4791 9.9: an instance overlaps when it starts before the end and ends after
        // the start; one without duration, when it starts within the range.
        if e > s {
            s < to && e > from
        } else {
            s >= from && s < to
        }
    }))
}

/// addressbook-query's filter: prop-filters with text-match (contains, case-insensitive),
/// any of them (the default) or all.
fn card_match(root: &Element, data: &str) -> Result<bool, Resp> {
    let Some(filter) = root.child(CARDDAV, "filter") else {
        return Ok(true);
    };
    let all = filter.attr("test") == Some("allof");
    let mut results = Vec::new();
    for pf in filter.children_named(CARDDAV, "prop-filter") {
        let Some(name) = pf.attr("name") else {
            return Err(dav_error(StatusCode::FORBIDDEN, CARDDAV, "valid-filter"));
        };
        let values: Vec<String> = data
            .lines()
            .filter_map(|l| {
                let (head, value) = l.split_once(':')?;
                let prop = head.split(';').next()?.rsplit('.').next()?;
                prop.eq_ignore_ascii_case(name)
                    .then(|| value.to_lowercase())
            })
            .collect();
        let hit = match pf.child(CARDDAV, "text-match") {
            Some(tm) => {
                let needle = tm.text.to_lowercase();
                let found = values.iter().any(|v| v.contains(&needle));
                found != (tm.attr("negate-condition") == Some("yes"))
            }
            None => pf.child(CARDDAV, "is-not-defined").is_some() == values.is_empty(),
        };
        results.push(hit);
    }
    Ok(if results.is_empty() {
        true
    } else if all {
        results.iter().all(|x| *x)
    } else {
        results.iter().any(|x| *x)
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
