//! The schedule outbox (RFC 6638 5): not stored, it only takes free/busy requests (POST),
//! answered from the calendars of users here by the scheduler.

use crate::{Dav, http, xml};
use bureau_directory::{Target as Addressee, User};
use bureau_groupware::busy::vfreebusy;
use bureau_groupware::schedule::{address, owns};
use bureau_store::Actor;
use calcard::icalendar::{
    ICalendar, ICalendarComponentType as T, ICalendarProperty as P, ICalendarValue as V,
};
use hyper::StatusCode;

/// The schedule outbox's name among a user's collections.
pub(crate) const OUTBOX: &str = "schedule-outbox";

/// Largest free/busy request taken.
const MAX_REQUEST: usize = 1 << 20;

impl Dav {
    /// POST to the outbox (RFC 6638 5): a VFREEBUSY request answered for each attendee, from
    /// the calendars of users here.
    pub(crate) fn outbox_post(&self, u: &User, body: &[u8]) -> http::Resp {
        let bad = |m: &str| http::status(StatusCode::BAD_REQUEST, m);
        if body.len() > MAX_REQUEST {
            return http::status(StatusCode::PAYLOAD_TOO_LARGE, "too large");
        }
        let Some(req) = std::str::from_utf8(body)
            .ok()
            .and_then(|t| ICalendar::parse(t).ok())
        else {
            return http::dav_error(StatusCode::BAD_REQUEST, xml::CALDAV, "valid-calendar-data");
        };
        let Some(fb) = req
            .components
            .iter()
            .find(|c| c.component_type == T::VFreebusy)
        else {
            return bad("the outbox takes VFREEBUSY requests");
        };
        let org = fb.property(&P::Organizer).and_then(address);
        if !org.as_deref().is_some_and(|o| owns(u, o)) {
            return http::dav_error(StatusCode::FORBIDDEN, xml::CALDAV, "organizer-allowed");
        }
        let time = |p: P| {
            fb.property(&p)
                .and_then(|e| e.values.first())
                .and_then(|v| match v {
                    V::PartialDateTime(d) => d.to_timestamp(),
                    _ => None,
                })
        };
        let (Some(from), Some(to)) = (time(P::Dtstart), time(P::Dtend)) else {
            return bad("a free/busy request needs DTSTART and DTEND");
        };
        if from >= to || to - from > 366 * 86400 {
            return bad("the free/busy range must be positive and at most a year");
        }
        let uid = fb.uid().unwrap_or("");
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<c:schedule-response {}>",
            xml::NAMESPACES
        );
        let r = match self.store.reader(Actor::System) {
            Ok(r) => r,
            Err(e) => return crate::store_status(&e),
        };
        for e in fb.entries.iter().filter(|e| e.name == P::Attendee) {
            let Some(addr) = address(e) else { continue };
            let found = match self.auth.directory().resolve(&addr) {
                Ok(Some(Addressee::User(a))) if a.enabled => Some(a),
                _ => None,
            };
            // A resource's time is shown to those who may book it.
            let hidden = found.as_ref().is_some_and(|a| {
                a.resource.is_some() && !self.auth.directory().may_book(a, u).unwrap_or(false)
            });
            let (code, data) = match found {
                Some(_) if hidden => ("3.8;No authority", None),
                Some(a) => match self.sched.busy_of(&r, a.principal, from, to) {
                    Ok((busy, tentative)) => {
                        let extra = format!(
                            "UID:{uid}\r\nORGANIZER:mailto:{}\r\nATTENDEE:mailto:{addr}\r\n",
                            org.as_deref().unwrap_or_default()
                        );
                        (
                            "2.0;Success",
                            Some(vfreebusy(from, to, &busy, &tentative, Some(&extra))),
                        )
                    }
                    Err(e) => return crate::store_status(&e),
                },
                None => ("3.7;Invalid calendar user", None),
            };
            out.push_str(&format!(
                "<c:response><c:recipient><d:href>mailto:{}</d:href></c:recipient><c:request-status>{code}</c:request-status>",
                xml::esc(&addr)
            ));
            if let Some(d) = data {
                out.push_str(&format!(
                    "<c:calendar-data>{}</c:calendar-data>",
                    xml::esc(&d)
                ));
            }
            out.push_str("</c:response>");
        }
        out.push_str("</c:schedule-response>");
        http::xml(StatusCode::OK, out)
    }
}
