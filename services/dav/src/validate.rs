//! What a calendar or contact object must be to be stored is the groupware crate's
//! (`bureau_groupware::object`); here, its refusal as CalDAV and CardDAV say it: a 403
//! with the precondition and the reason.

use crate::Kind;
use crate::http::{self, Resp};
use crate::xml::{CALDAV, CARDDAV};
use bureau_groupware::object::{self, Fault, Invalid, ObjectKind};
use hyper::StatusCode;

impl From<Kind> for ObjectKind {
    fn from(k: Kind) -> ObjectKind {
        match k {
            Kind::Calendar => ObjectKind::Calendar,
            Kind::Contacts => ObjectKind::Contact,
        }
    }
}

/// The precondition an object fails (RFC 4791 5.3.2, RFC 6352 6.3.2.1).
pub(crate) fn precondition(kind: Kind, e: &Invalid) -> &'static str {
    match (kind, e.fault) {
        (Kind::Calendar, Fault::Data) => "valid-calendar-data",
        (Kind::Calendar, Fault::Resource) => "valid-calendar-object-resource",
        (Kind::Contacts, _) => "valid-address-data",
    }
}

/// The 403 with the precondition and the reason.
pub(crate) fn refusal(kind: Kind, e: &Invalid) -> Resp {
    let ns = match kind {
        Kind::Calendar => CALDAV,
        Kind::Contacts => CARDDAV,
    };
    http::dav_error_because(StatusCode::FORBIDDEN, ns, precondition(kind, e), &e.why)
}

/// The props an object is indexed by (UID, component, organizer, time span), once it is
/// found fit to store; else a 403 saying why.
pub(crate) fn object_props(
    kind: Kind,
    body: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, Resp> {
    object::check(kind.into(), body).map_err(|e| refusal(kind, &e))
}

/// `bureau_groupware::object::check` for a DAV kind.
pub(crate) fn check_object(
    kind: Kind,
    body: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, Invalid> {
    object::check(kind.into(), body)
}
