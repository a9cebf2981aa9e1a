//! Properties: PROPFIND, PROPPATCH, MKCALENDAR/MKCOL, and the multistatus every REPORT
//! answers with.

use crate::expand::CalData;
use crate::http::{Resp, dav_error, status, xml as xml_resp};
use crate::xml::{self, APPLE, CALDAV, CARDDAV, CS, DAV, Element, XmlError, esc};
use crate::{Coll, Ctx, Kind, Target, store_status};
use bureau_directory::User;
use bureau_store::{Access, CollectionKind, Item, StoreError};
use hyper::StatusCode;

/// What a request asks of each resource's properties.
pub(crate) enum PropReq {
    All,
    Names,
    /// These properties; calendar-data as its element asks (expand and limits).
    Some(Vec<(String, String)>, Option<CalData>),
}

impl PropReq {
    /// From a propfind or REPORT root: its `prop`, `allprop` or `propname`.
    pub(crate) fn of(root: &Element) -> PropReq {
        if root.child(DAV, "propname").is_some() {
            return PropReq::Names;
        }
        match root.child(DAV, "prop") {
            Some(p) => PropReq::Some(
                p.children
                    .iter()
                    .map(|c| (c.ns.clone(), c.name.clone()))
                    .collect(),
                CalData::of(root).ok().flatten(),
            ),
            None => PropReq::All,
        }
    }
}

/// A resource whose properties are told.
pub(crate) enum Res<'a> {
    Root,
    /// A calendar user's principal: the signed-in user's, another user's or a resource's.
    Principal(&'a User),
    /// /dav/principals/, which principal searches run on (RFC 3744 9.4).
    Principals,
    Home(Kind),
    /// The schedule outbox (RFC 6638 2.1), which holds nothing.
    Outbox,
    Coll(&'a Coll),
    Obj(&'a Coll, &'a Item),
}

const ALL: &[(&str, &str)] = &[
    (DAV, "resourcetype"),
    (DAV, "displayname"),
    (DAV, "getetag"),
    (DAV, "getcontenttype"),
    (DAV, "getcontentlength"),
    (DAV, "sync-token"),
    (DAV, "current-user-principal"),
];

const NAMES: &[(&str, &str)] = &[
    (DAV, "resourcetype"),
    (DAV, "displayname"),
    (DAV, "current-user-principal"),
    (DAV, "principal-URL"),
    (DAV, "principal-collection-set"),
    (DAV, "owner"),
    (DAV, "current-user-privilege-set"),
    (DAV, "supported-report-set"),
    (DAV, "sync-token"),
    (DAV, "getetag"),
    (DAV, "getcontenttype"),
    (DAV, "getcontentlength"),
    (CALDAV, "calendar-home-set"),
    (CALDAV, "calendar-user-address-set"),
    (CALDAV, "schedule-inbox-URL"),
    (CALDAV, "schedule-outbox-URL"),
    (CALDAV, "calendar-user-type"),
    (CALDAV, "supported-calendar-component-set"),
    (CALDAV, "calendar-description"),
    (CALDAV, "max-resource-size"),
    (CARDDAV, "addressbook-home-set"),
    (CARDDAV, "addressbook-description"),
    (CARDDAV, "max-resource-size"),
    (CS, "getctag"),
    (CS, "email-address-set"),
    (APPLE, "calendar-color"),
    (APPLE, "calendar-order"),
];

/// The properties every principal shows, and searches look at (RFC 3744 9.4).
pub(crate) fn principal_value(u: &User, ns: &str, name: &str) -> Option<String> {
    match (ns, name) {
        (DAV, "resourcetype") => Some("<d:collection/><d:principal/>".into()),
        (DAV, "displayname") => Some(esc(&u.display_name)),
        (DAV, "principal-URL") => Some(href(&crate::principal_href(&u.uid))),
        (CALDAV, "calendar-user-address-set") => Some(
            std::iter::once(&u.address)
                .chain(&u.aliases)
                .map(|a| href(&format!("mailto:{a}")))
                .collect(),
        ),
        (CALDAV, "calendar-user-type") => Some(calendar_user_type(u).into()),
        // Apple's and CalendarServer's, which clients search rooms by.
        (CS, "email-address-set") => Some(format!(
            "<cs:email-address>{}</cs:email-address>",
            esc(&u.address)
        )),
        _ => None,
    }
}

/// RFC 6638 2.4.2.
pub(crate) fn calendar_user_type(u: &User) -> &'static str {
    match u.resource.as_ref().map(|r| r.kind) {
        None => "INDIVIDUAL",
        Some(bureau_directory::ResourceKind::Room) => "ROOM",
        Some(bureau_directory::ResourceKind::Equipment) => "RESOURCE",
    }
}

fn href(v: &str) -> String {
    format!("<d:href>{}</d:href>", esc(v))
}

fn privileges(access: Access) -> String {
    let mut p = vec!["<d:read/>", "<c:read-free-busy/>"];
    if access >= Access::ReadWrite {
        p.extend([
            "<d:write/>",
            "<d:write-content/>",
            "<d:write-properties/>",
            "<d:bind/>",
            "<d:unbind/>",
        ]);
    }
    if access == Access::Owner {
        p.extend(["<d:read-acl/>", "<d:write-acl/>", "<d:all/>"]);
    }
    p.iter()
        .map(|x| format!("<d:privilege>{x}</d:privilege>"))
        .collect()
}

impl Res<'_> {
    pub(crate) fn href(&self, ctx: &Ctx) -> String {
        let me = &ctx.user.uid;
        match self {
            Res::Root => "/dav/".into(),
            Res::Principal(u) => crate::principal_href(&u.uid),
            Res::Principals => crate::PRINCIPALS.into(),
            Res::Home(k) => crate::home_href(*k, me),
            Res::Outbox => crate::collection_href(Kind::Calendar, me, crate::outbox::OUTBOX),
            Res::Coll(c) => crate::collection_href(c.kind, &c.owner, &c.coll.name),
            Res::Obj(c, i) => crate::object_href(
                c.kind,
                &c.owner,
                &c.coll.name,
                i.name.as_deref().unwrap_or_default(),
            ),
        }
    }

    /// A property's value as XML, None if this resource has no such property.
    fn value(&self, ctx: &Ctx, ns: &str, name: &str) -> Option<String> {
        let me = ctx.user;
        let common = match (ns, name) {
            (DAV, "current-user-principal") => Some(href(&crate::principal_href(&me.uid))),
            (DAV, "principal-collection-set") => Some(href(crate::PRINCIPALS)),
            _ => None,
        };
        if common.is_some() {
            return common;
        }
        match self {
            Res::Root => match (ns, name) {
                (DAV, "resourcetype") => Some("<d:collection/>".into()),
                (DAV, "principal-URL") => Some(href(&crate::principal_href(&me.uid))),
                _ => None,
            },
            Res::Principals => match (ns, name) {
                (DAV, "resourcetype") => Some("<d:collection/>".into()),
                (DAV, "displayname") => Some("Principals".into()),
                _ => None,
            },
            // Another principal: what finds and invites it, not its homes or mailboxes.
            Res::Principal(u) if u.uid != me.uid => principal_value(u, ns, name),
            Res::Principal(_) => match (ns, name) {
                (CALDAV, "calendar-home-set") => {
                    Some(href(&crate::home_href(Kind::Calendar, &me.uid)))
                }
                (CARDDAV, "addressbook-home-set") => {
                    Some(href(&crate::home_href(Kind::Contacts, &me.uid)))
                }
                (CALDAV, "schedule-inbox-URL") => Some(href(&crate::collection_href(
                    Kind::Calendar,
                    &me.uid,
                    bureau_groupware::schedule::INBOX,
                ))),
                (CALDAV, "schedule-outbox-URL") => Some(href(&crate::collection_href(
                    Kind::Calendar,
                    &me.uid,
                    crate::outbox::OUTBOX,
                ))),
                _ => principal_value(me, ns, name),
            },
            Res::Outbox => match (ns, name) {
                (DAV, "resourcetype") => Some("<d:collection/><c:schedule-outbox/>".into()),
                (DAV, "displayname") => Some("Outbox".into()),
                (DAV, "owner") => Some(href(&crate::principal_href(&me.uid))),
                (DAV, "current-user-privilege-set") => Some(
                    "<d:privilege><c:schedule-send/></d:privilege><d:privilege><d:read/></d:privilege>"
                        .into(),
                ),
                _ => None,
            },
            Res::Home(_) => match (ns, name) {
                (DAV, "resourcetype") => Some("<d:collection/>".into()),
                (DAV, "owner") => Some(href(&crate::principal_href(&me.uid))),
                _ => None,
            },
            Res::Coll(c) => {
                let p = |k: &str| c.coll.props.get(k).map(|v| esc(v));
                match (ns, name) {
                    (DAV, "resourcetype") => Some(match c.kind {
                        _ if c.coll.kind == CollectionKind::ScheduleInbox => {
                            "<d:collection/><c:schedule-inbox/>".into()
                        }
                        Kind::Calendar => "<d:collection/><c:calendar/>".into(),
                        Kind::Contacts => "<d:collection/><a:addressbook/>".into(),
                    }),
                    (DAV, "displayname") => {
                        let name = esc(c.coll.display_name().unwrap_or(&c.coll.name));
                        // Someone else's, shared: say whose (not for the company's own).
                        Some(if c.owner == ctx.user.uid || c.owner.starts_with('_') {
                            name
                        } else {
                            format!("{name} ({})", esc(&c.owner))
                        })
                    }
                    (DAV, "owner") => Some(href(&crate::principal_href(&c.owner))),
                    (DAV, "current-user-privilege-set") => Some(privileges(c.access)),
                    (DAV, "sync-token") => Some(esc(&ctx.sync_token(&c.coll))),
                    (CS, "getctag") => Some(c.coll.modseq.to_string()),
                    (DAV, "supported-report-set") => Some(
                        match c.kind {
                            Kind::Calendar => &[
                                (CALDAV, "calendar-multiget"),
                                (CALDAV, "calendar-query"),
                                (CALDAV, "free-busy-query"),
                            ][..],
                            Kind::Contacts => &[
                                (CARDDAV, "addressbook-multiget"),
                                (CARDDAV, "addressbook-query"),
                            ][..],
                        }
                        .iter()
                        .chain(&[(DAV, "sync-collection")])
                        .map(|(n, r)| {
                            format!(
                                "<d:supported-report><d:report>{}</d:report></d:supported-report>",
                                xml::empty_tag(n, r)
                            )
                        })
                        .collect(),
                    ),
                    (CALDAV, "supported-calendar-component-set") if c.kind == Kind::Calendar => {
                        Some(
                            bureau_groupware::schedule::objects::components(&c.coll)
                                .iter()
                                .map(|n| format!("<c:comp name=\"{n}\"/>"))
                                .collect(),
                        )
                    }
                    // RFC 4791 5.2.5, RFC 6352 6.2.3: what PUT takes.
                    (CALDAV, "max-resource-size") if c.kind == Kind::Calendar => {
                        Some(bureau_core::limits::get().object_bytes.to_string())
                    }
                    (CARDDAV, "max-resource-size") if c.kind == Kind::Contacts => {
                        Some(bureau_core::limits::get().object_bytes.to_string())
                    }
                    (CALDAV, "calendar-description") if c.kind == Kind::Calendar => {
                        p("description")
                    }
                    (CARDDAV, "addressbook-description") if c.kind == Kind::Contacts => {
                        p("description")
                    }
                    (APPLE, "calendar-color") if c.kind == Kind::Calendar => p("color"),
                    (APPLE, "calendar-order") if c.kind == Kind::Calendar => p("order"),
                    _ => None,
                }
            }
            Res::Obj(c, i) => match (ns, name) {
                (DAV, "resourcetype") => Some(String::new()),
                (DAV, "getetag") => Some(esc(&crate::etag(i))),
                (DAV, "getcontenttype") => Some(c.kind.content_type().into()),
                (DAV, "getcontentlength") => Some(i.size().to_string()),
                (DAV, "current-user-privilege-set") => Some(privileges(c.access)),
                (CALDAV, "schedule-tag") => i.props.get(crate::SCHEDULE_TAG).map(|t| esc(t)),
                _ if (ns, name) == c.kind.data_prop() => {
                    let data = ctx.reader().and_then(|r| r.content(i)).ok()?;
                    Some(esc(&String::from_utf8_lossy(&data)))
                }
                _ => None,
            },
        }
    }
}

/// A 207 Multi-Status being written.
pub(crate) struct Multistatus(String, Option<CollHref>);

/// The href of the collection the last object written was in: a listing's objects share
/// it, so it is made once, not once an object.
struct CollHref {
    coll: u64,
    href: String,
}

impl Multistatus {
    pub(crate) fn new() -> Multistatus {
        Multistatus(
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus {}>",
                xml::NAMESPACES
            ),
            None,
        )
    }

    /// Room for `n` more responses (a listing's, written one by one).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.0.reserve(n.saturating_mul(224));
    }

    /// One resource's response: the properties it has (200) and those it has not (404).
    pub(crate) fn resource(&mut self, ctx: &Ctx, res: &Res, req: &PropReq) {
        let (mut found, mut missing) = (String::new(), String::new());
        match req {
            PropReq::Names => {
                for (ns, name) in NAMES {
                    if res.value(ctx, ns, name).is_some() {
                        found.push_str(&xml::empty_tag(ns, name));
                    }
                }
            }
            PropReq::All => {
                for (ns, name) in ALL {
                    if let Some(v) = res.value(ctx, ns, name) {
                        xml::push_tag(&mut found, ns, name, &v);
                    }
                }
            }
            PropReq::Some(list, data) => {
                for (ns, name) in list {
                    let value = match (data, res) {
                        (Some(d), Res::Obj(c, i))
                            if c.kind == Kind::Calendar
                                && (ns.as_str(), name.as_str()) == (CALDAV, "calendar-data") =>
                        {
                            let text = ctx.reader().and_then(|r| r.content(i)).ok();
                            text.map(|t| esc(&d.apply(&String::from_utf8_lossy(&t))))
                        }
                        _ => res.value(ctx, ns, name),
                    };
                    match value {
                        Some(v) => xml::push_tag(&mut found, ns, name, &v),
                        None => missing.push_str(&xml::empty_tag(ns, name)),
                    }
                }
            }
        }
        self.0.push_str("<d:response>");
        match res {
            Res::Obj(c, i) => self.object_href(c, i),
            _ => self.0.push_str(&href(&res.href(ctx))),
        }
        for (props, code) in [(found, "200 OK"), (missing, "404 Not Found")] {
            if !props.is_empty() {
                for part in [
                    "<d:propstat><d:prop>",
                    &props,
                    "</d:prop><d:status>HTTP/1.1 ",
                    code,
                    "</d:status></d:propstat>",
                ] {
                    self.0.push_str(part);
                }
            }
        }
        self.0.push_str("</d:response>");
    }

    /// An object's href, after its collection's (kept while the objects are its).
    fn object_href(&mut self, c: &Coll, i: &Item) {
        let coll = match self.1.take() {
            Some(h) if h.coll == c.coll.id => h,
            _ => CollHref {
                coll: c.coll.id,
                href: crate::collection_href(c.kind, &c.owner, &c.coll.name),
            },
        };
        // Percent-escaped (`http::escape`): nothing in it needs XML escaping.
        self.0.push_str("<d:href>");
        self.0.push_str(&coll.href);
        crate::http::escape_into(&mut self.0, i.name.as_deref().unwrap_or_default());
        self.0.push_str("</d:href>");
        self.1 = Some(coll);
    }

    /// A resource that is not there (a multiget's unknown href, a sync's deletion).
    pub(crate) fn gone(&mut self, href_: &str) {
        self.0.push_str(&format!(
            "<d:response>{}<d:status>HTTP/1.1 404 Not Found</d:status></d:response>",
            href(href_)
        ));
    }

    pub(crate) fn finish(mut self, sync_token: Option<&str>) -> Resp {
        if let Some(t) = sync_token {
            self.0
                .push_str(&format!("<d:sync-token>{}</d:sync-token>", esc(t)));
        }
        self.0.push_str("</d:multistatus>");
        xml_resp(StatusCode::MULTI_STATUS, self.0)
    }
}

/// A request body as XML, or the answer to a bad one (DTDs refused).
pub(crate) fn parse_body(body: &[u8]) -> Result<Option<Element>, Resp> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match xml::parse(body) {
        Ok(e) => Ok(Some(e)),
        Err(XmlError::Dtd) => Err(status(
            StatusCode::BAD_REQUEST,
            "DTDs and entity declarations are not accepted",
        )),
        Err(XmlError::Malformed(m)) => Err(status(
            StatusCode::BAD_REQUEST,
            &format!("malformed XML: {m}"),
        )),
    }
}

pub(crate) async fn propfind(ctx: &Ctx<'_>, t: &Target, depth: Option<&str>, body: &[u8]) -> Resp {
    let root = match parse_body(body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let req = match &root {
        None => PropReq::All,
        Some(r) if r.is(DAV, "propfind") => PropReq::of(r),
        Some(_) => return status(StatusCode::BAD_REQUEST, "expected a propfind element"),
    };
    let deep = match depth.map(str::trim) {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => return dav_error(StatusCode::FORBIDDEN, DAV, "propfind-finite-depth"),
    };
    let me = &ctx.user.uid;
    let mut ms = Multistatus::new();
    match t {
        Target::Root => ms.resource(ctx, &Res::Root, &req),
        Target::Principal(uid) if uid == me => ms.resource(ctx, &Res::Principal(ctx.user), &req),
        // Others' principals show who they are (a search's results are looked up so).
        Target::Principal(uid) => match ctx.dav.auth.directory().user(uid) {
            Ok(Some(u)) if u.enabled => ms.resource(ctx, &Res::Principal(&u), &req),
            Ok(_) => return status(StatusCode::NOT_FOUND, "not found"),
            Err(e) => return status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        Target::Principals => {
            ms.resource(ctx, &Res::Principals, &req);
            if deep {
                match ctx.principals() {
                    Ok(all) => {
                        for u in &all {
                            ms.resource(ctx, &Res::Principal(u), &req);
                        }
                    }
                    Err(r) => return r,
                }
            }
        }
        Target::Home(kind, uid) if uid == me => {
            let colls = match ctx.own_collections(*kind).await {
                Ok(c) => c,
                Err(e) => return store_status(&e),
            };
            ms.resource(ctx, &Res::Home(*kind), &req);
            if deep {
                let mut all: Vec<Coll> = colls
                    .into_iter()
                    .map(|coll| Coll {
                        kind: *kind,
                        owner: me.clone(),
                        coll,
                        access: Access::Owner,
                    })
                    .collect();
                // What others share with the user (or its groups), at their own URLs.
                let shared = ctx.reader().and_then(|r| {
                    let mut out = Vec::new();
                    for (coll, access) in r.shared_with_me()? {
                        if kind.holds(coll.kind) {
                            let owner = r.principal(coll.owner)?.name;
                            out.push(Coll {
                                kind: *kind,
                                owner,
                                coll,
                                access,
                            });
                        }
                    }
                    Ok(out)
                });
                match shared {
                    Ok(s) => all.extend(s),
                    Err(e) => return store_status(&e),
                }
                for c in &all {
                    ms.resource(ctx, &Res::Coll(c), &req);
                }
            }
        }
        Target::Collection(Kind::Calendar, uid, name)
            if uid == me && name == crate::outbox::OUTBOX =>
        {
            ms.resource(ctx, &Res::Outbox, &req)
        }
        Target::Collection(kind, uid, name) => {
            let c = match ctx.collection(*kind, uid, name) {
                Ok(c) => c,
                Err(e) => return store_status(&e),
            };
            ms.resource(ctx, &Res::Coll(&c), &req);
            if deep {
                let items = match ctx.reader().and_then(|r| ctx.items(&r, c.coll.id)) {
                    Ok(i) => i,
                    Err(e) => return store_status(&e),
                };
                ms.reserve(items.len());
                for i in items.iter().filter(|i| i.name.is_some()) {
                    ms.resource(ctx, &Res::Obj(&c, i), &req);
                }
            }
        }
        Target::Object(kind, uid, coll, name) => {
            let found = ctx.collection(*kind, uid, coll).and_then(|c| {
                let i = ctx.reader()?.item_by_name(c.coll.id, name)?;
                Ok((c, i))
            });
            match found {
                Ok((c, i)) => ms.resource(ctx, &Res::Obj(&c, &i), &req),
                Err(e) => return store_status(&e),
            }
        }
        // Other users' homes: not shown (sharing shows collections).
        _ => return status(StatusCode::NOT_FOUND, "not found"),
    }
    ms.finish(None)
}

/// The collection props DAV properties map to.
fn store_prop(ns: &str, name: &str, kind: Kind) -> Option<&'static str> {
    Some(match (ns, name, kind) {
        (DAV, "displayname", _) => bureau_store::prop::DISPLAY_NAME,
        (CALDAV, "calendar-description", Kind::Calendar) => "description",
        (CARDDAV, "addressbook-description", Kind::Contacts) => "description",
        (APPLE, "calendar-color", Kind::Calendar) => "color",
        (APPLE, "calendar-order", Kind::Calendar) => "order",
        _ => return None,
    })
}

/// `set`/`remove` instructions of a PROPPATCH or an (extended) MKCOL body: (ns, name, value).
fn changes(root: &Element) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for op in &root.children {
        let set = op.is(DAV, "set");
        if !set && !op.is(DAV, "remove") {
            continue;
        }
        for prop in op.children_named(DAV, "prop") {
            for p in &prop.children {
                out.push((p.ns.clone(), p.name.clone(), set.then(|| p.text.clone())));
            }
        }
    }
    out
}

pub(crate) async fn proppatch(ctx: &Ctx<'_>, t: &Target, body: &[u8]) -> Resp {
    let Target::Collection(kind, uid, name) = t else {
        return dav_error(
            StatusCode::FORBIDDEN,
            DAV,
            "cannot-modify-protected-property",
        );
    };
    let root = match parse_body(body) {
        Ok(Some(r)) if r.is(DAV, "propertyupdate") => r,
        Ok(_) => return status(StatusCode::BAD_REQUEST, "expected a propertyupdate element"),
        Err(r) => return r,
    };
    let c = match ctx.collection(*kind, uid, name) {
        Ok(c) => c,
        Err(e) => return store_status(&e),
    };
    let asked = changes(&root);
    let unknown = asked
        .iter()
        .any(|(ns, n, _)| store_prop(ns, n, *kind).is_none());
    let mut ms = Multistatus::new();
    let tags: Vec<String> = asked
        .iter()
        .map(|(ns, n, _)| xml::empty_tag(ns, n))
        .collect();
    if !unknown {
        let set: Vec<(String, Option<String>)> = asked
            .iter()
            .map(|(ns, n, v)| {
                (
                    store_prop(ns, n, *kind).unwrap_or_default().into(),
                    v.clone(),
                )
            })
            .collect();
        let id = c.coll.id;
        if let Err(e) = ctx
            .dav
            .store
            .write(ctx.actor(), vec![], move |w| {
                w.set_collection_props(id, &set)
            })
            .await
        {
            return store_status(&e);
        }
    }
    // All or nothing (RFC 4918 9.2): with one property refused, the others fail too (424).
    ms.0.push_str(&format!(
        "<d:response>{}",
        href(&crate::collection_href(*kind, uid, name))
    ));
    for ((ns, n, _), tag_) in asked.iter().zip(&tags) {
        let code = match (unknown, store_prop(ns, n, *kind).is_some()) {
            (false, _) => "200 OK",
            (true, false) => "403 Forbidden",
            (true, true) => "424 Failed Dependency",
        };
        ms.0.push_str(&format!(
            "<d:propstat><d:prop>{tag_}</d:prop><d:status>HTTP/1.1 {code}</d:status></d:propstat>"
        ));
    }
    ms.0.push_str("</d:response>");
    ms.finish(None)
}

/// MKCALENDAR (RFC 4791 5.3.1), and MKCOL, extended (RFC 5689) or plain, for address books.
pub(crate) async fn mkcol(ctx: &Ctx<'_>, t: &Target, forced: Option<Kind>, body: &[u8]) -> Resp {
    let Target::Collection(kind, uid, name) = t else {
        return status(StatusCode::FORBIDDEN, "collections are made in a home");
    };
    if uid != &ctx.user.uid {
        return dav_error(StatusCode::FORBIDDEN, DAV, "need-privileges");
    }
    if forced.is_some_and(|k| k != *kind) {
        return status(
            StatusCode::FORBIDDEN,
            "calendars are made under /dav/calendars/",
        );
    }
    let root = match parse_body(body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let asked = root.as_ref().map(changes).unwrap_or_default();
    let mut props: Vec<(String, Option<String>)> = Vec::new();
    for (ns, n, v) in &asked {
        if (ns.as_str(), n.as_str()) == (DAV, "resourcetype")
            || (ns.as_str(), n.as_str()) == (CALDAV, "supported-calendar-component-set")
        {
            continue;
        }
        match store_prop(ns, n, *kind) {
            Some(k) => props.push((k.into(), v.clone())),
            None => {
                return dav_error(StatusCode::FORBIDDEN, DAV, "valid-resourcetype");
            }
        }
    }
    let ck = match kind {
        Kind::Contacts => CollectionKind::AddressBook,
        Kind::Calendar => {
            let comps: Vec<String> = root
                .iter()
                .flat_map(|r| r.children.iter())
                .flat_map(|op| op.children_named(DAV, "prop"))
                .flat_map(|p| p.children_named(CALDAV, "supported-calendar-component-set"))
                .flat_map(|s| s.children_named(CALDAV, "comp"))
                .filter_map(|c| c.attr("name").map(str::to_ascii_uppercase))
                .collect();
            if comps
                .iter()
                .any(|c| !["VEVENT", "VTODO", "VJOURNAL"].contains(&c.as_str()))
            {
                return dav_error(
                    StatusCode::FORBIDDEN,
                    CALDAV,
                    "supported-calendar-component",
                );
            }
            match comps
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["VTODO"] => CollectionKind::TaskList,
                ["VJOURNAL"] => CollectionKind::Notes,
                [] => CollectionKind::Calendar,
                some => {
                    // Only what was asked for (RFC 4791 5.3.1), not the kind's whole set.
                    let mut set: Vec<&str> = some.to_vec();
                    set.sort();
                    set.dedup();
                    if set.len() < 3 {
                        props.push((bureau_store::prop::COMPONENTS.into(), Some(set.join(" "))));
                    }
                    CollectionKind::Calendar
                }
            }
        }
    };
    let (owner, name) = (ctx.user.principal, name.clone());
    if name.len() > 200 || name.starts_with('.') {
        return status(StatusCode::FORBIDDEN, "choose another collection name");
    }
    let r = ctx
        .dav
        .store
        .write(ctx.actor(), vec![], move |w| {
            let c = w.create_collection(owner, ck, &name)?;
            w.set_collection_props(c.id, &props)
        })
        .await;
    match r {
        Ok(_) => crate::http::empty(StatusCode::CREATED),
        Err(StoreError::Exists(_)) => status(StatusCode::METHOD_NOT_ALLOWED, "it exists"),
        Err(e) => store_status(&e),
    }
}
