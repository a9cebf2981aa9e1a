//! CalDAV and CardDAV (RFC 4918, 4791, 6352, 6578, 5397, 6764) on the shared HTTPS
//! listener. Calendars and address books are store collections (kinds Calendar and
//! AddressBook); each calendar object or vCard is an item whose name is its resource name,
//! whose blob is its text and whose props index it. ETags and sync tokens come from the
//! store's modseqs, sync-collection from its change log.
//!
//! URLs: /dav/principals/<uid>/, /dav/calendars/<uid>/<calendar>/<object>.ics,
//! /dav/addressbooks/<uid>/<book>/<card>.vcf; /.well-known/caldav and carddav lead to /dav/.

// Errors are the HTTP answers themselves, returned at once: not worth a box.
#![allow(clippy::result_large_err)]

pub mod autoconfig;
pub mod bulk;
pub mod check;
mod expand;
mod filter;
mod http;
mod outbox;
mod principals;
mod validate;
pub(crate) use validate::{check_object, object_props};
mod props;
mod report;
pub mod xml;

use bureau_core::auth::{Auth, AuthError};
use bureau_directory::User;
use bureau_store::{
    Access, Actor, Collection, CollectionKind, Item, NewItem, Reader, Store, StoreError, prop,
};
use http::{Resp, dav_error, empty, redirect, status};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use std::net::IpAddr;
use xml::{CALDAV, CARDDAV, DAV};

/// Thunderbird's autoconfiguration file, at the box and under /.well-known.
const AUTOCONFIG: &str = "/mail/config-v1.1.xml";
const AUTOCONFIG_WELL_KNOWN: &str = "/.well-known/autoconfig/mail/config-v1.1.xml";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Calendar,
    Contacts,
}

impl Kind {
    fn segment(self) -> &'static str {
        match self {
            Kind::Calendar => "calendars",
            Kind::Contacts => "addressbooks",
        }
    }
    /// Whether a store collection is one of this kind: task lists (VTODO) and notes
    /// (VJOURNAL) are calendars to CalDAV.
    pub(crate) fn holds(self, k: CollectionKind) -> bool {
        match self {
            Kind::Calendar => matches!(
                k,
                CollectionKind::Calendar | CollectionKind::TaskList | CollectionKind::Notes
            ),
            Kind::Contacts => k == CollectionKind::AddressBook,
        }
    }
    fn content_type(self) -> &'static str {
        match self {
            Kind::Calendar => "text/calendar; charset=utf-8",
            Kind::Contacts => "text/vcard; charset=utf-8",
        }
    }
    /// The collection every user has (the directory makes it; made again on first use if
    /// it was deleted).
    fn default_collection(self) -> (CollectionKind, &'static str, &'static str) {
        match self {
            Kind::Calendar => (CollectionKind::Calendar, "calendar", "Calendar"),
            Kind::Contacts => (CollectionKind::AddressBook, "contacts", "Contacts"),
        }
    }
    /// The REPORT property carrying an object's text.
    fn data_prop(self) -> (&'static str, &'static str) {
        match self {
            Kind::Calendar => (CALDAV, "calendar-data"),
            Kind::Contacts => (CARDDAV, "address-data"),
        }
    }
}

/// What a request's path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Root,
    Principals,
    Principal(String),
    Home(Kind, String),
    Collection(Kind, String, String),
    Object(Kind, String, String, String),
}

impl Target {
    pub(crate) fn parse(path: &str) -> Option<Target> {
        let rest = path.strip_prefix("/dav")?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let segs: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(http::unescape)
            .collect::<Option<_>>()?;
        if segs
            .iter()
            .any(|s| s == "." || s == ".." || s.contains('/'))
        {
            return None;
        }
        let kind = |s: &str| match s {
            "calendars" => Some(Kind::Calendar),
            "addressbooks" => Some(Kind::Contacts),
            _ => None,
        };
        Some(match segs.as_slice() {
            [] => Target::Root,
            [p] if p == "principals" => Target::Principals,
            [p, u] if p == "principals" => Target::Principal(u.clone()),
            [k, u] => Target::Home(kind(k)?, u.clone()),
            [k, u, c] => Target::Collection(kind(k)?, u.clone(), c.clone()),
            [k, u, c, o] => Target::Object(kind(k)?, u.clone(), c.clone(), o.clone()),
            _ => return None,
        })
    }
}

/// The principal collection (RFC 3744 5.8).
pub(crate) const PRINCIPALS: &str = "/dav/principals/";

pub(crate) fn principal_href(uid: &str) -> String {
    format!("/dav/principals/{}/", http::escape(uid))
}

pub(crate) fn home_href(kind: Kind, uid: &str) -> String {
    format!("/dav/{}/{}/", kind.segment(), http::escape(uid))
}

pub(crate) fn collection_href(kind: Kind, uid: &str, coll: &str) -> String {
    format!("{}{}/", home_href(kind, uid), http::escape(coll))
}

pub(crate) fn object_href(kind: Kind, uid: &str, coll: &str, name: &str) -> String {
    format!("{}{}", collection_href(kind, uid, coll), http::escape(name))
}

use bureau_groupware::items::{Items, ItemsCache};
use bureau_groupware::schedule::objects::{components, write_object};
use bureau_groupware::schedule::{INBOX, Scheduler, new_schedule_tag};
pub(crate) use bureau_store::prop::SCHEDULE_TAG;

fn schedule_tag_header(r: &mut Resp, item: &Item) {
    if let Some(v) = item.props.get(SCHEDULE_TAG).and_then(|t| t.parse().ok()) {
        r.headers_mut().insert("schedule-tag", v);
    }
}

/// A strong ETag from the item's identity and its last change.
pub(crate) fn etag(item: &Item) -> String {
    format!("\"{}-{}\"", item.id, item.modseq)
}

/// A collection the request reached, with the user's access to it.
pub(crate) struct Coll {
    pub kind: Kind,
    /// The owner's uid (the URL's).
    pub owner: String,
    pub coll: Collection,
    pub access: Access,
}

#[derive(Clone)]
pub struct Dav {
    store: Store,
    auth: Auth,
    hostname: String,
    instances: std::sync::Arc<report::InstanceCache>,
    /// The scheduler's cache of item records, shared.
    items: std::sync::Arc<ItemsCache>,
    ports: autoconfig::Ports,
    sched: Scheduler,
    /// Stored objects that break today's rules (`check_stored`), by collection, item and
    /// modseq: queries leave them out. Writes store only sound objects, so a rewritten one
    /// is no longer listed.
    broken: std::sync::Arc<std::sync::RwLock<std::collections::HashSet<(u64, u64, u64)>>>,
}

pub(crate) struct Ctx<'a> {
    pub dav: &'a Dav,
    pub user: &'a User,
}

impl Ctx<'_> {
    pub(crate) fn reader(&self) -> Result<Reader, StoreError> {
        self.dav.store.reader(self.actor())
    }
    pub(crate) fn actor(&self) -> Actor {
        Actor::Principal(self.user.principal)
    }
    /// Every enabled user and resource, by uid.
    pub(crate) fn principals(&self) -> Result<Vec<User>, Resp> {
        let fail = |e: bureau_directory::DirectoryError| {
            status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        };
        let mut out = self.dav.auth.directory().calendar_users().map_err(fail)?;
        out.retain(|u| u.enabled);
        out.sort_by(|a, b| a.uid.cmp(&b.uid));
        Ok(out)
    }

    /// A collection's items (cached; see `ItemsCache`).
    pub(crate) fn items(&self, r: &Reader, coll: u64) -> Result<Items, StoreError> {
        self.dav.items.items(r, coll)
    }
    /// A sync token: the collection's validity and modseq.
    pub(crate) fn sync_token(&self, c: &Collection) -> String {
        format!(
            "https://{}/dav/sync/{}/{}",
            self.dav.hostname, c.validity, c.modseq
        )
    }

    /// The collection a URL names, if the user may read it; the wrong kind is not found.
    pub(crate) fn collection(
        &self,
        kind: Kind,
        owner: &str,
        name: &str,
    ) -> Result<Coll, StoreError> {
        let r = self.reader()?;
        let p = r.principal_by_name(owner)?;
        let coll = r.collection_by_name(p.id, name)?;
        let inbox = kind == Kind::Calendar && coll.kind == CollectionKind::ScheduleInbox;
        if !kind.holds(coll.kind) && !inbox {
            return Err(StoreError::NotFound);
        }
        let access = r.access(coll.id)?.ok_or(StoreError::NotFound)?;
        Ok(Coll {
            kind,
            owner: owner.to_string(),
            coll,
            access,
        })
    }

    /// The user's collections of a kind, made with the default one if there is none.
    pub(crate) async fn own_collections(&self, kind: Kind) -> Result<Vec<Collection>, StoreError> {
        let mine = |r: &Reader| -> Result<Vec<Collection>, StoreError> {
            Ok(r.collections_of(self.user.principal)?
                .into_iter()
                .filter(|c| kind.holds(c.kind))
                .collect())
        };
        let found = mine(&self.reader()?)?;
        if !found.is_empty() {
            return Ok(found);
        }
        let (ck, name, display) = kind.default_collection();
        let p = self.user.principal;
        let made = self
            .dav
            .store
            .write(self.actor(), vec![], move |w| {
                let c = w.create_collection(p, ck, name)?;
                w.set_display_name(c.id, display)
            })
            .await;
        match made {
            Ok(_) | Err(StoreError::Exists(_)) => mine(&self.reader()?),
            Err(e) => Err(e),
        }
    }
}

/// A store error in HTTP terms: never a 500 for something the client did.
pub(crate) fn store_status(e: &StoreError) -> Resp {
    match e {
        StoreError::NotFound => status(StatusCode::NOT_FOUND, "not found"),
        StoreError::Forbidden => dav_error(StatusCode::FORBIDDEN, DAV, "need-privileges"),
        StoreError::Exists(_) => dav_error(StatusCode::CONFLICT, DAV, "resource-must-be-null"),
        StoreError::OverQuota => {
            dav_error(StatusCode::INSUFFICIENT_STORAGE, DAV, "quota-not-exceeded")
        }
        StoreError::Invalid(m) => status(StatusCode::BAD_REQUEST, m),
        StoreError::Conflict(_) => status(StatusCode::PRECONDITION_FAILED, "changed meanwhile"),
        StoreError::TooOld => dav_error(StatusCode::FORBIDDEN, DAV, "valid-sync-token"),
        StoreError::DiskFull(_) => status(StatusCode::INSUFFICIENT_STORAGE, "disk full"),
        other => {
            log::error!("dav: store: {other}");
            status(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable")
        }
    }
}

impl Dav {
    /// DAV over the store, signing in through `auth`, naming itself `hostname` in sync
    /// tokens, scheduling through `sched`.
    pub fn new(store: Store, auth: Auth, hostname: &str, sched: Scheduler) -> Dav {
        Dav {
            store,
            auth,
            hostname: hostname.to_string(),
            instances: Default::default(),
            items: sched.items().clone(),
            ports: Default::default(),
            sched,
            broken: Default::default(),
        }
    }

    /// Finds the stored objects that break the rules writes follow (check.rs), logs each,
    /// and has queries leave them out from now on. Blocking: a whole scan.
    pub fn check_stored(&self) -> Result<Vec<check::Broken>, StoreError> {
        let broken = check::broken_objects(&self.store, self.auth.directory())?;
        for b in &broken {
            log::warn!(
                "dav: {}/{}/{} breaks the rules writes follow ({}); queries skip it",
                b.owner,
                b.collection,
                b.name,
                b.why
            );
        }
        if !broken.is_empty() {
            log::warn!(
                "dav: {} stored object(s) to mend or remove: `bureau check` lists them",
                broken.len()
            );
        }
        *self
            .broken
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            broken.iter().map(|b| b.key).collect();
        Ok(broken)
    }

    /// Whether `check_stored` found this version of the item broken.
    pub(crate) fn is_broken(&self, item: &Item) -> bool {
        let set = self
            .broken
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !set.is_empty() && set.contains(&(item.collection, item.id, item.modseq))
    }

    /// The ports autoconfiguration tells clients (the standard ones by default).
    pub fn with_ports(mut self, ports: autoconfig::Ports) -> Dav {
        self.ports = ports;
        self
    }

    /// Whether a path is DAV's.
    pub fn serves(path: &str) -> bool {
        path == "/dav"
            || path.starts_with("/dav/")
            || path.starts_with("/.well-known/caldav")
            || path.starts_with("/.well-known/carddav")
            || path == AUTOCONFIG
            || path == AUTOCONFIG_WELL_KNOWN
    }

    pub async fn handle(&self, req: Request<Incoming>, ip: IpAddr) -> Resp {
        let path = req.uri().path().to_string();
        if path == AUTOCONFIG || path == AUTOCONFIG_WELL_KNOWN {
            // Public, as the MX records are: Thunderbird asks before it has a password.
            return match self.auth.directory().domains() {
                Ok(ds) => {
                    let names: Vec<String> = ds.into_iter().map(|d| d.name).collect();
                    autoconfig::thunderbird(&self.hostname, &self.ports, &names)
                }
                Err(e) => store_status(&StoreError::Io(e.to_string())),
            };
        }
        if path.starts_with("/.well-known/") {
            return redirect("/dav/");
        }
        let user = match self.authenticate(&req, ip).await {
            Ok(u) => u,
            Err(r) => return r,
        };
        if path == "/dav/mobileconfig" {
            return autoconfig::mobileconfig(
                &self.hostname,
                &self.ports,
                &user.uid,
                &user.address,
                &user.display_name,
            );
        }
        let Some(target) = Target::parse(&path) else {
            return status(StatusCode::NOT_FOUND, "not found");
        };
        let ctx = Ctx {
            dav: self,
            user: &user,
        };
        // The schedule inbox and outbox (RFC 6638), the user's own only.
        if let Target::Collection(Kind::Calendar, owner, name)
        | Target::Object(Kind::Calendar, owner, name, _) = &target
            && (name == INBOX || name == outbox::OUTBOX)
        {
            // Nobody else's is reachable, even with a grant.
            if owner != &user.uid {
                return status(StatusCode::NOT_FOUND, "not found");
            }
            if name == INBOX
                && let Err(e) = self.sched.ensure_inbox(&user).await
            {
                return store_status(&e);
            }
            if name == outbox::OUTBOX {
                return self.outbox(&ctx, &target, req).await;
            }
        }
        let method = req.method().clone();
        let headers = req.headers().clone();
        let limits = bureau_core::limits::get();
        let limit = if method == Method::PUT {
            limits.object_bytes
        } else {
            limits.dav_xml_bytes
        };
        // A body announced too large is refused before a byte of it is read (RFC 4791
        // 5.3.2.1: max-resource-size; issue 19: ~10 MB was read first).
        let announced = headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return if method == Method::PUT {
                let ns = if matches!(target, Target::Object(Kind::Contacts, ..)) {
                    CARDDAV
                } else {
                    CALDAV
                };
                let mut r = dav_error(StatusCode::PAYLOAD_TOO_LARGE, ns, "max-resource-size");
                r.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
                r
            } else {
                status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            };
        }
        let body = match http::body(req.into_body(), limit).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let h = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        match method.as_str() {
            "OPTIONS" => http::options(),
            "PROPFIND" => props::propfind(&ctx, &target, h("depth").as_deref(), &body).await,
            "PROPPATCH" => props::proppatch(&ctx, &target, &body).await,
            "MKCALENDAR" => props::mkcol(&ctx, &target, Some(Kind::Calendar), &body).await,
            "MKCOL" => props::mkcol(&ctx, &target, None, &body).await,
            "REPORT" => report::report(&ctx, &target, &body),
            "GET" | "HEAD" => self.get(&ctx, &target, method == Method::HEAD),
            "PUT" => {
                let cond = Conditions {
                    if_match: h("if-match"),
                    if_none_match: h("if-none-match"),
                    if_schedule_tag_match: h("if-schedule-tag-match"),
                };
                self.put(&ctx, &target, &cond, &body).await
            }
            "DELETE" => self.delete(&ctx, &target, h("if-match").as_deref()).await,
            "COPY" | "MOVE" => {
                let dest = h("destination");
                let overwrite = h("overwrite");
                self.transfer(
                    &ctx,
                    &target,
                    dest.as_deref(),
                    overwrite.as_deref(),
                    method.as_str() == "MOVE",
                )
                .await
            }
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    /// The outbox takes POSTed free/busy requests and answers PROPFIND about itself.
    async fn outbox(&self, ctx: &Ctx<'_>, t: &Target, req: Request<Incoming>) -> Resp {
        let method = req.method().clone();
        let depth = req
            .headers()
            .get("depth")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match http::body(req.into_body(), bureau_core::limits::get().dav_xml_bytes).await
        {
            Ok(b) => b,
            Err(r) => return r,
        };
        match (method.as_str(), t) {
            ("POST", Target::Collection(..)) => self.outbox_post(ctx.user, &body),
            ("PROPFIND", Target::Collection(..)) => {
                props::propfind(ctx, t, depth.as_deref(), &body).await
            }
            ("OPTIONS", _) => http::options(),
            _ => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "the schedule outbox takes POST and PROPFIND",
            ),
        }
    }

    async fn authenticate(&self, req: &Request<Incoming>, ip: IpAddr) -> Result<User, Resp> {
        let Some((login, password)) = http::basic_credentials(req.headers()) else {
            return Err(http::unauthorized());
        };
        match self.auth.login(ip, &login, &password, "dav").await {
            Ok(u) => Ok(u),
            Err(AuthError::Internal(_)) => Err(status(
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication unavailable",
            )),
            // A lockout is not a wrong password: a calendar app that got 401 would only ask
            // for the password again (RFC 6585 4; Retry-After as the lockout lasts).
            Err(AuthError::Refused) => {
                let mut r = status(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed sign-ins from this address; try again later",
                );
                let secs = self.auth.guard().lockout_secs().to_string();
                if let Ok(v) = hyper::header::HeaderValue::from_str(&secs) {
                    r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
                }
                Err(r)
            }
            Err(_) => Err(http::unauthorized()),
        }
    }

    fn get(&self, ctx: &Ctx, t: &Target, head: bool) -> Resp {
        if let Target::Collection(kind, owner, coll) = t {
            return export(ctx, *kind, owner, coll, head);
        }
        let Target::Object(kind, owner, coll, name) = t else {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "GET is for objects and collections",
            );
        };
        let found = ctx.collection(*kind, owner, coll).and_then(|c| {
            let r = ctx.reader()?;
            let item = r.item_by_name(c.coll.id, name)?;
            let data = r.content(&item)?;
            Ok((item, data))
        });
        match found {
            Ok((item, data)) => {
                let len = data.len();
                let body = if head { Vec::new() } else { data };
                let mut r = http::bytes(StatusCode::OK, kind.content_type(), body);
                r.headers_mut()
                    .insert("etag", etag(&item).parse().expect("ascii"));
                schedule_tag_header(&mut r, &item);
                if head {
                    r.headers_mut().insert("content-length", len.into());
                }
                r
            }
            Err(e) => store_status(&e),
        }
    }

    async fn put(&self, ctx: &Ctx<'_>, t: &Target, cond: &Conditions, body: &[u8]) -> Resp {
        let Target::Object(kind, owner, coll, name) = t else {
            return status(StatusCode::METHOD_NOT_ALLOWED, "PUT is for objects");
        };
        let kind = *kind;
        let c = match ctx.collection(kind, owner, coll) {
            Ok(c) => c,
            Err(e) => return store_status(&e),
        };
        if c.access < Access::ReadWrite {
            return dav_error(StatusCode::FORBIDDEN, DAV, "need-privileges");
        }
        if c.coll.kind == CollectionKind::ScheduleInbox {
            return dav_error(StatusCode::FORBIDDEN, DAV, "need-privileges");
        }
        let props = match object_props(kind, body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if let Some(comp) = props.get(prop::COMPONENT)
            && !components(&c.coll).contains(&comp.as_str())
        {
            return dav_error(
                StatusCode::FORBIDDEN,
                CALDAV,
                "supported-calendar-component",
            );
        }
        if let Some(r) = uid_conflict(ctx, &c, props.get(prop::UID), name) {
            return r;
        }
        let mut props = props;
        let existing = match ctx.reader().and_then(|r| r.item_by_name(c.coll.id, name)) {
            Ok(i) => Some(i),
            Err(StoreError::NotFound) => None,
            Err(e) => return store_status(&e),
        };
        // A scheduling object's own change: a new Schedule-Tag (RFC 6638 3.2). Not when an
        // attendee changes its own copy (its PARTSTAT, its alarms): RFC 6638 3.2.10 keeps
        // the tag then, so the organizer's next update is not taken for a conflict.
        if let Some(org) = props.get(prop::ORGANIZER) {
            let org = org.trim_start_matches("mailto:");
            let user = &ctx.user;
            let attendee_copy = owner == user.uid.as_str()
                && !org.eq_ignore_ascii_case(&user.address)
                && !user.aliases.iter().any(|a| a.eq_ignore_ascii_case(org));
            let kept = existing
                .as_ref()
                .filter(|_| attendee_copy)
                .and_then(|i| i.props.get(SCHEDULE_TAG).cloned());
            props.insert(SCHEDULE_TAG.into(), kept.unwrap_or_else(new_schedule_tag));
        }
        let expect = match cond.check(existing.as_ref()) {
            Ok(m) => m,
            Err(r) => return r,
        };
        // The version scheduling compares with.
        let old = match (&existing, kind) {
            (Some(i), Kind::Calendar) => match ctx.reader().and_then(|r| r.content(i)) {
                Ok(t) => Some(t),
                Err(e) => return store_status(&e),
            },
            _ => None,
        };
        let staged = match self
            .store
            .stage(body.to_vec(), bureau_store::Content::Data)
            .await
        {
            Ok(s) => s,
            Err(e) => return store_status(&e),
        };
        let created = existing.is_none();
        let r = write_object(
            &self.store,
            ctx.actor(),
            c.coll.id,
            name,
            expect,
            staged,
            props,
        )
        .await;
        match r {
            Ok(item) => {
                if kind == Kind::Calendar {
                    self.sched.schedule(owner, old.as_deref(), Some(body)).await;
                }
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::NO_CONTENT
                };
                let mut resp = empty(code);
                resp.headers_mut()
                    .insert("etag", etag(&item).parse().expect("ascii"));
                schedule_tag_header(&mut resp, &item);
                resp
            }
            // Made by someone else between the check and the write.
            Err(StoreError::Exists(_)) => {
                status(StatusCode::PRECONDITION_FAILED, "the resource exists now")
            }
            Err(e) => store_status(&e),
        }
    }

    /// COPY and MOVE of an object (RFC 4918 9.8, 9.9) into a calendar or address book the
    /// user may write, checked as a PUT there would be. The blob is shared, not copied.
    /// Nothing is scheduled: the object is the same event.
    async fn transfer(
        &self,
        ctx: &Ctx<'_>,
        t: &Target,
        dest: Option<&str>,
        overwrite: Option<&str>,
        moving: bool,
    ) -> Resp {
        let Target::Object(kind, owner, coll, name) = t else {
            return status(StatusCode::FORBIDDEN, "COPY and MOVE are for objects");
        };
        let Some(dest) = dest else {
            return status(StatusCode::BAD_REQUEST, "a Destination header is needed");
        };
        let path = dest
            .parse::<hyper::Uri>()
            .ok()
            .map(|u| u.path().to_string());
        let Some(Target::Object(dkind, downer, dcoll, dname)) =
            path.as_deref().and_then(Target::parse)
        else {
            return status(
                StatusCode::BAD_GATEWAY,
                "the destination is not an object here",
            );
        };
        if dkind != *kind {
            return status(
                StatusCode::FORBIDDEN,
                "the destination holds another kind of object",
            );
        }
        if (&downer, &dcoll, &dname) == (owner, coll, name) {
            return status(StatusCode::FORBIDDEN, "source and destination are the same");
        }
        let overwrite = !matches!(overwrite.map(str::trim), Some("F" | "f"));
        let (src, dst) = match (
            ctx.collection(*kind, owner, coll),
            ctx.collection(dkind, &downer, &dcoll),
        ) {
            (Ok(s), Ok(d)) => (s, d),
            (Err(e), _) => return store_status(&e),
            (_, Err(StoreError::NotFound)) => {
                return status(
                    StatusCode::CONFLICT,
                    "the destination collection does not exist",
                );
            }
            (_, Err(e)) => return store_status(&e),
        };
        if (moving && src.access < Access::ReadWrite)
            || dst.access < Access::ReadWrite
            || dst.coll.kind == CollectionKind::ScheduleInbox
        {
            return dav_error(StatusCode::FORBIDDEN, DAV, "need-privileges");
        }
        let item = match ctx.reader().and_then(|r| r.item_by_name(src.coll.id, name)) {
            Ok(i) => i,
            Err(e) => return store_status(&e),
        };
        if let Some(comp) = item.component()
            && !components(&dst.coll).contains(&comp)
        {
            return dav_error(
                StatusCode::FORBIDDEN,
                CALDAV,
                "supported-calendar-component",
            );
        }
        if let Some(r) = uid_conflict(ctx, &dst, item.props.get(prop::UID), &dname) {
            // Moving onto itself by another name within one collection is a rename.
            if !(moving && src.coll.id == dst.coll.id) {
                return r;
            }
        }
        let (sid, did, src_item) = (src.coll.id, dst.coll.id, item.clone());
        let r = self
            .store
            .write(ctx.actor(), vec![], move |w| {
                let created = match w.item_by_name(did, &dname) {
                    Ok(_) if !overwrite => return Err(StoreError::Exists(dname.clone())),
                    Ok(old) => {
                        w.update_item(did, old.id, None, |it| {
                            it.blob = src_item.blob;
                            it.props = src_item.props.clone();
                        })?;
                        false
                    }
                    Err(StoreError::NotFound) => {
                        w.put_item(
                            did,
                            NewItem {
                                name: Some(dname.clone()),
                                blob: src_item.blob,
                                props: src_item.props.clone(),
                                ..Default::default()
                            },
                        )?;
                        true
                    }
                    Err(e) => return Err(e),
                };
                if moving {
                    w.delete_item(sid, src_item.id)?;
                }
                Ok(created)
            })
            .await;
        match r {
            Ok(true) => empty(StatusCode::CREATED),
            Ok(false) => empty(StatusCode::NO_CONTENT),
            Err(StoreError::Exists(_)) => status(
                StatusCode::PRECONDITION_FAILED,
                "the destination exists (Overwrite: F)",
            ),
            Err(e) => store_status(&e),
        }
    }

    async fn delete(&self, ctx: &Ctx<'_>, t: &Target, if_match: Option<&str>) -> Resp {
        match t {
            Target::Object(kind, owner, coll, name) => {
                let c = match ctx.collection(*kind, owner, coll) {
                    Ok(c) => c,
                    Err(e) => return store_status(&e),
                };
                let item = match ctx.reader().and_then(|r| r.item_by_name(c.coll.id, name)) {
                    Ok(i) => i,
                    Err(e) => return store_status(&e),
                };
                let cond = Conditions {
                    if_match: if_match.map(str::to_string),
                    if_none_match: None,
                    if_schedule_tag_match: None,
                };
                let expect = match cond.check(Some(&item)) {
                    Ok(m) => m,
                    Err(r) => return r,
                };
                let old = match (*kind, c.coll.kind) {
                    (Kind::Calendar, k) if k != CollectionKind::ScheduleInbox => {
                        match ctx.reader().and_then(|r| r.content(&item)) {
                            Ok(t) => Some(t),
                            Err(e) => return store_status(&e),
                        }
                    }
                    _ => None,
                };
                let (cid, iid) = (c.coll.id, item.id);
                let r = self
                    .store
                    .write(ctx.actor(), vec![], move |w| {
                        let now = w.item(cid, iid)?;
                        if expect.is_some_and(|m| m != now.modseq) {
                            return Err(StoreError::Conflict(now.modseq));
                        }
                        w.delete_item(cid, iid)
                    })
                    .await;
                match r {
                    Ok(()) => {
                        if old.is_some() {
                            self.sched.schedule(owner, old.as_deref(), None).await;
                        }
                        empty(StatusCode::NO_CONTENT)
                    }
                    Err(e) => store_status(&e),
                }
            }
            Target::Collection(kind, owner, coll) => {
                let c = match ctx.collection(*kind, owner, coll) {
                    Ok(c) => c,
                    Err(e) => return store_status(&e),
                };
                let id = c.coll.id;
                match self
                    .store
                    .write(ctx.actor(), vec![], move |w| w.delete_collection(id))
                    .await
                {
                    Ok(()) => empty(StatusCode::NO_CONTENT),
                    Err(e) => store_status(&e),
                }
            }
            _ => status(StatusCode::FORBIDDEN, "this resource cannot be deleted"),
        }
    }
}

/// RFC 4791 5.3.2.1 and RFC 6352 6.3.2.1: one UID per collection. The answer when another
/// resource than `name` has `uid`, naming it.
fn uid_conflict(ctx: &Ctx, c: &Coll, uid: Option<&String>, name: &str) -> Option<Resp> {
    let uid = uid?;
    let items = match ctx.reader().and_then(|r| r.items_with_uid(c.coll.id, uid)) {
        Ok(i) => i,
        Err(e) => return Some(store_status(&e)),
    };
    let other = items
        .iter()
        .find(|i| i.name.as_deref().is_some_and(|n| n != name))?;
    let ns = if c.kind == Kind::Calendar {
        CALDAV
    } else {
        CARDDAV
    };
    let href = object_href(c.kind, &c.owner, &c.coll.name, other.name.as_deref()?);
    Some(http::dav_error_with(
        StatusCode::FORBIDDEN,
        ns,
        "no-uid-conflict",
        &format!("<d:href>{}</d:href>", xml::esc(&href)),
    ))
}

/// GET on a calendar: the whole calendar as one .ics; on an address book, every card.
fn export(ctx: &Ctx, kind: Kind, owner: &str, coll: &str, head: bool) -> Resp {
    let texts = ctx.collection(kind, owner, coll).and_then(|c| {
        let r = ctx.reader()?;
        r.items(c.coll.id)?
            .iter()
            .filter(|i| i.name.is_some())
            .map(|i| Ok(String::from_utf8_lossy(&r.content(i)?).into_owned()))
            .collect::<Result<Vec<String>, StoreError>>()
    });
    let texts = match texts {
        Ok(t) => t,
        Err(e) => return store_status(&e),
    };
    let body = match kind {
        Kind::Calendar => bulk::join_ics(&texts),
        Kind::Contacts => texts.concat(),
    };
    let len = body.len();
    let mut r = http::bytes(
        StatusCode::OK,
        kind.content_type(),
        if head { Vec::new() } else { body.into_bytes() },
    );
    let ext = if kind == Kind::Calendar { "ics" } else { "vcf" };
    let file = coll.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    if let Ok(v) = format!("attachment; filename=\"{file}.{ext}\"").parse() {
        r.headers_mut().insert("content-disposition", v);
    }
    if head {
        r.headers_mut().insert("content-length", len.into());
    }
    r
}

/// What an import stored, and what it refused (and why).
#[derive(Debug, Default)]
pub struct Imported {
    pub stored: usize,
    pub refused: Vec<String>,
}

/// Objects stored per write transaction during an import.
const IMPORT_BATCH: usize = 500;

/// Imports a whole .ics (split into one object per UID) or .vcf into `owner`'s calendar or
/// address book `name`, as the system. Each object is checked as a PUT would check it; one
/// whose resource exists already is replaced. Err: `Invalid` when the file itself cannot be
/// read (the caller's fault), or the store's own error (no such collection, a full disk…).
pub async fn import(
    store: &Store,
    owner: u64,
    name: &str,
    data: &[u8],
) -> Result<Imported, StoreError> {
    let coll = store
        .reader(Actor::System)?
        .collection_by_name(owner, name)?;
    let kind = if Kind::Contacts.holds(coll.kind) {
        Kind::Contacts
    } else if Kind::Calendar.holds(coll.kind) {
        Kind::Calendar
    } else {
        return Err(StoreError::Invalid(format!(
            "{name} is not a calendar or an address book"
        )));
    };
    let text = std::str::from_utf8(data)
        .map_err(|_| StoreError::Invalid("the file is not UTF-8".into()))?;
    let objects = match kind {
        Kind::Calendar => bulk::split_ics(text),
        Kind::Contacts => bulk::split_vcf(text),
    }
    .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let mut done = Imported::default();
    let mut batch = Vec::new();
    for o in objects {
        match object_props(kind, o.text.as_bytes()) {
            Ok(props)
                if props
                    .get(prop::COMPONENT)
                    .is_none_or(|c| components(&coll).contains(&c.as_str())) =>
            {
                let staged = store
                    .stage(o.text.into_bytes(), bureau_store::Content::Data)
                    .await?;
                batch.push((o.name, props, staged));
            }
            _ => done
                .refused
                .push(format!("{}: not a valid object for {name}", o.name)),
        }
        if batch.len() == IMPORT_BATCH {
            done.stored += store_batch(store, coll.id, std::mem::take(&mut batch)).await?;
        }
    }
    done.stored += store_batch(store, coll.id, batch).await?;
    Ok(done)
}

async fn store_batch(
    store: &Store,
    coll: u64,
    batch: Vec<(
        String,
        std::collections::BTreeMap<String, String>,
        bureau_store::StagedBlob,
    )>,
) -> Result<usize, StoreError> {
    if batch.is_empty() {
        return Ok(0);
    }
    let n = batch.len();
    let objs: Vec<_> = batch
        .iter()
        .map(|(name, props, s)| (name.clone(), props.clone(), s.blob_ref()))
        .collect();
    let staged = batch.into_iter().map(|(_, _, s)| s).collect();
    store
        .write(Actor::System, staged, move |w| {
            for (name, props, blob) in &objs {
                // An object already here under its UID is replaced wherever it is named
                // (a client's name), so that a collection keeps one object per UID.
                let known = match props.get(bureau_store::prop::UID) {
                    Some(uid) => w.items_with_uid(coll, uid)?.into_iter().next(),
                    None => None,
                };
                match known.map_or_else(|| w.item_by_name(coll, name), Ok) {
                    Ok(old) => {
                        w.update_item(coll, old.id, None, |it| {
                            it.blob = Some(*blob);
                            it.props = props.clone();
                        })?;
                    }
                    Err(StoreError::NotFound) => {
                        w.put_item(
                            coll,
                            NewItem {
                                name: Some(name.clone()),
                                blob: Some(*blob),
                                props: props.clone(),
                                ..Default::default()
                            },
                        )?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .await?;
    Ok(n)
}

/// If-Match and If-None-Match of a PUT or DELETE.
struct Conditions {
    if_match: Option<String>,
    if_none_match: Option<String>,
    /// RFC 6638 3.2.10: the organizer's or attendee's own last change, whatever scheduling
    /// did to the object since.
    if_schedule_tag_match: Option<String>,
}

impl Conditions {
    /// The modseq the write must find (None: the resource must not exist yet), or 412.
    fn check(&self, existing: Option<&Item>) -> Result<Option<u64>, Resp> {
        let fail = || status(StatusCode::PRECONDITION_FAILED, "precondition failed");
        if let Some(tag) = &self.if_schedule_tag_match
            && existing.and_then(|i| i.props.get(SCHEDULE_TAG)) != Some(&tag.trim().to_string())
        {
            return Err(fail());
        }
        let lists = |v: &str, tag: &str| v.split(',').any(|t| t.trim() == tag || t.trim() == "*");
        if let Some(v) = &self.if_none_match {
            match existing {
                Some(i) if lists(v, &etag(i)) => return Err(fail()),
                _ => {}
            }
        }
        if let Some(v) = &self.if_match {
            match existing {
                Some(i) if lists(v, &etag(i)) => {}
                _ => return Err(fail()),
            }
        }
        Ok(existing.map(|i| i.modseq))
    }
}
