//! Finding calendar users: the principal collection (/dav/principals/) and its two reports,
//! principal-property-search and principal-search-property-set (RFC 3744 9.4, 9.5), which
//! clients use to find people and rooms to invite. Every enabled user and resource is a
//! principal; searches look at the name, the calendar addresses and the calendar user type
//! (RFC 6638 2.4.2: INDIVIDUAL, ROOM, RESOURCE).

use crate::http::{Resp, status};
use crate::props::{Multistatus, PropReq, Res, calendar_user_type};
use crate::xml::{self, CALDAV, CS, DAV, Element};
use crate::{Ctx, Target};
use bureau_directory::User;
use hyper::StatusCode;

/// Most principals one search answers with.
const MAX_RESULTS: usize = 200;

/// The properties a search may name, with how `principal-search-property-set` describes
/// them.
const SEARCHABLE: &[(&str, &str, &str)] = &[
    (DAV, "displayname", "Display name"),
    (CALDAV, "calendar-user-address-set", "Calendar address"),
    (CALDAV, "calendar-user-type", "Calendar user type"),
    (CS, "email-address-set", "Email address"),
];

/// Whether a REPORT is one of these; `report` answers it.
pub(crate) fn is_principal_report(root: &Element) -> bool {
    root.is(DAV, "principal-property-search") || root.is(DAV, "principal-search-property-set")
}

pub(crate) fn report(ctx: &Ctx, t: &Target, root: &Element) -> Resp {
    // On the principal collection, or anywhere with apply-to-principal-collection-set.
    let applies = matches!(t, Target::Principals)
        || root
            .child(DAV, "apply-to-principal-collection-set")
            .is_some();
    if !applies {
        return crate::http::dav_error(StatusCode::FORBIDDEN, DAV, "supported-report");
    }
    if root.is(DAV, "principal-search-property-set") {
        return search_property_set();
    }
    property_search(ctx, root)
}

fn search_property_set() -> Resp {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:principal-search-property-set {}>",
        xml::NAMESPACES
    );
    for (ns, name, description) in SEARCHABLE {
        out.push_str(&format!(
            "<d:principal-search-property><d:prop>{}</d:prop><d:description xml:lang=\"en\">{description}</d:description></d:principal-search-property>",
            xml::empty_tag(ns, name)
        ));
    }
    out.push_str("</d:principal-search-property-set>");
    crate::http::xml(StatusCode::OK, out)
}

/// One DAV:property-search: the properties it looks in and what it looks for.
struct Search {
    props: Vec<(String, String)>,
    what: String,
    /// CalendarServer's match-type: "starts-with", "equals", else contains (RFC 3744).
    how: String,
}

impl Search {
    fn matches(&self, u: &User) -> bool {
        self.props.iter().any(|(ns, name)| {
            values(u, ns, name).iter().any(|v| {
                let v = v.to_lowercase();
                match self.how.as_str() {
                    "starts-with" => v.starts_with(&self.what),
                    "equals" => v == self.what,
                    _ => v.contains(&self.what),
                }
            })
        })
    }
}

/// A principal's values of a searchable property, as text.
fn values(u: &User, ns: &str, name: &str) -> Vec<String> {
    match (ns, name) {
        (DAV, "displayname") => vec![u.display_name.clone()],
        (CALDAV, "calendar-user-address-set") | (CS, "email-address-set") => {
            std::iter::once(&u.address)
                .chain(&u.aliases)
                .flat_map(|a| [a.clone(), format!("mailto:{a}")])
                .collect()
        }
        (CALDAV, "calendar-user-type") => vec![calendar_user_type(u).into()],
        _ => Vec::new(),
    }
}

fn property_search(ctx: &Ctx, root: &Element) -> Resp {
    let mut searches = Vec::new();
    for ps in root.children_named(DAV, "property-search") {
        let props: Vec<(String, String)> = ps
            .child(DAV, "prop")
            .map(|p| {
                p.children
                    .iter()
                    .map(|c| (c.ns.clone(), c.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let Some(m) = ps.child(DAV, "match") else {
            return status(StatusCode::BAD_REQUEST, "a property-search needs a match");
        };
        if props.is_empty() {
            return status(StatusCode::BAD_REQUEST, "a property-search needs a prop");
        }
        searches.push(Search {
            props,
            what: m.text.trim().to_lowercase(),
            how: m.attr("match-type").unwrap_or("contains").to_string(),
        });
    }
    if searches.is_empty() {
        return status(StatusCode::BAD_REQUEST, "no property-search");
    }
    let any = root.attr("test") == Some("anyof");
    let principals = match ctx.principals() {
        Ok(p) => p,
        Err(r) => return r,
    };
    let req = PropReq::of(root);
    let mut ms = Multistatus::new();
    let found = principals.iter().filter(|u| {
        if any {
            searches.iter().any(|s| s.matches(u))
        } else {
            searches.iter().all(|s| s.matches(u))
        }
    });
    for u in found.take(MAX_RESULTS) {
        ms.resource(ctx, &Res::Principal(u), &req);
    }
    ms.finish(None)
}
