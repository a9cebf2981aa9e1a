//! Scheduling: RFC 6638 implicit scheduling, with iTIP (RFC 5546) messages between users
//! here and iMIP (RFC 6047) mail with everyone else.
//!
//! After a calendar object is written or deleted, `Scheduler::schedule` compares its old
//! and new versions:
//! - Its owner organizes it: an attendee who is new, or who must hear of a change of time,
//!   recurrence, place, title or status, gets a REQUEST; one taken off the list (or all,
//!   when the object is deleted) gets a CANCEL. A user here gets the event in its own
//!   calendar (where it already is, else as `<uid>.ics` in its default calendar; a CANCEL
//!   removes it) and the message in its schedule inbox; a group address reaches each
//!   member; anyone else gets it by mail through the SMTP queue, signed for the organizer's
//!   domain. Attendees with SCHEDULE-AGENT=CLIENT are left to the client.
//! - Its owner attends it: a change of the owner's PARTSTAT (deleting the copy counts as
//!   DECLINED) is a REPLY. An organizer here has its copy's PARTSTAT for that attendee
//!   updated and the reply in its schedule inbox; one elsewhere gets the reply by mail.
//! - Mail from outside carrying a REPLY (told by SMTP, `Arrivals`) updates the organizer's
//!   copy the same way, when the reply's attendee is the mail's From: address, that address
//!   is on the event, and DMARC did not fail.
//!
//! Scheduling runs as the system once the client's write is durable; a failure is logged and
//! the write stands (the client's next change schedules again). Imports do not schedule.
//!
//! Any protocol schedules through the `Scheduler`: CalDAV after its PUT and DELETE (and its
//! outbox's free/busy requests), ActiveSync through `put_object` and `delete_object`
//! (objects.rs), SMTP with the replies that arrive by mail (`Arrivals`).

mod booking;
pub mod objects;

use crate::items::ItemsCache;
use crate::object::{ObjectKind, check};
use bureau_directory::{Directory, Target as Addressee, User};
use bureau_store::prop::SCHEDULE_TAG;
use bureau_store::{Actor, CollectionKind, Item, NewItem, Reader, Store, StoreError};
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType as T, ICalendarEntry, ICalendarMethod,
    ICalendarParameter, ICalendarParameterName as PN, ICalendarParameterValue as PV,
    ICalendarParticipationStatus, ICalendarProperty as P, ICalendarStatus, ICalendarValue as V,
};
use std::sync::Arc;

/// The schedule inbox's name among a user's collections.
pub const INBOX: &str = "schedule-inbox";

/// Runs scheduling for every protocol; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    directory: Directory,
    /// The outbound mail queue, for invitations to people elsewhere (iMIP); none when this
    /// box sends no mail.
    queue: Option<bureau_smtp::Queue>,
    items: Arc<ItemsCache>,
}

/// A Schedule-Tag (an opaque quoted string), new at each call.
pub fn new_schedule_tag() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("\"{t:x}-{n:x}\"")
}

/// Whether an address is one of the user's.
pub fn owns(u: &User, addr: &str) -> bool {
    u.address.eq_ignore_ascii_case(addr) || u.aliases.iter().any(|a| a.eq_ignore_ascii_case(addr))
}

/// The props of an iCalendar text found fit to store.
fn props_of(text: &str) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    check(ObjectKind::Calendar, text.as_bytes())
        .map_err(|_| StoreError::Invalid("not a valid calendar object".into()))
}

/// A calendar user an object names as attendee.
#[derive(Clone, Debug, PartialEq)]
struct Party {
    addr: String,
    partstat: String,
    /// SCHEDULE-AGENT=CLIENT: the client schedules for this one.
    client: bool,
}

/// Whether a component is an event, a task or a journal (not a zone or an alarm).
pub fn is_main(c: &ICalendarComponent) -> bool {
    matches!(c.component_type, T::VEvent | T::VTodo | T::VJournal)
}

/// A calendar address as a lower-case mail address (mailto: removed).
pub fn address(e: &ICalendarEntry) -> Option<String> {
    e.calendar_address()
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| a.contains('@'))
}

fn organizer(cal: &ICalendar) -> Option<String> {
    cal.components
        .iter()
        .filter(|c| is_main(c))
        .find_map(|c| c.property(&P::Organizer))
        .and_then(address)
}

fn partstat(e: &ICalendarEntry) -> String {
    e.parameter(&PN::Partstat)
        .and_then(|v| v.as_text())
        .unwrap_or("NEEDS-ACTION")
        .to_ascii_uppercase()
}

/// Every attendee, once, with its answer in the first component that lists it (the master).
fn attendees(cal: &ICalendar) -> Vec<Party> {
    let mut out: Vec<Party> = Vec::new();
    for c in cal.components.iter().filter(|c| is_main(c)) {
        for e in c.entries.iter().filter(|e| e.name == P::Attendee) {
            let Some(addr) = address(e) else { continue };
            if out.iter().any(|p| p.addr == addr) {
                continue;
            }
            let client = e
                .parameter(&PN::ScheduleAgent)
                .and_then(|v| v.as_text())
                .is_some_and(|v| v.eq_ignore_ascii_case("CLIENT"));
            out.push(Party {
                partstat: partstat(e),
                addr,
                client,
            });
        }
    }
    out
}

/// What attendees must hear of again when it changes: times, recurrence, title, place and
/// status of every component (not the answers, stamps or alarms).
fn substance(cal: &ICalendar) -> String {
    let mut s = String::new();
    for c in cal.components.iter().filter(|c| is_main(c)) {
        for e in &c.entries {
            if matches!(
                e.name,
                P::Dtstart
                    | P::Dtend
                    | P::Duration
                    | P::Due
                    | P::Rrule
                    | P::Rdate
                    | P::Exdate
                    | P::RecurrenceId
                    | P::Summary
                    | P::Location
                    | P::Status
            ) {
                s.push_str(&format!("{e:?}\n"));
            }
        }
        s.push('\n');
    }
    s
}

/// The UID of the object's main component.
pub fn uid(cal: &ICalendar) -> Option<String> {
    cal.components
        .iter()
        .filter(|c| is_main(c))
        .find_map(|c| c.uid())
        .map(str::to_string)
}

/// The calendar with its METHOD set (or removed).
pub fn with_method(cal: &ICalendar, m: Option<ICalendarMethod>) -> ICalendar {
    let mut cal = cal.clone();
    if let Some(root) = cal
        .components
        .iter_mut()
        .find(|c| c.component_type == T::VCalendar)
    {
        root.entries.retain(|e| e.name != P::Method);
        if let Some(m) = m {
            root.entries
                .push(ICalendarEntry::new(P::Method).with_value(V::Method(m)));
        }
    }
    cal
}

/// The CANCEL for an organizer's object: STATUS:CANCELLED everywhere.
fn cancel_of(cal: &ICalendar) -> ICalendar {
    let mut c = with_method(cal, Some(ICalendarMethod::Cancel));
    for comp in c.components.iter_mut().filter(|c| is_main(c)) {
        comp.entries.retain(|e| e.name != P::Status);
        comp.entries
            .push(ICalendarEntry::new(P::Status).with_value(V::Status(ICalendarStatus::Cancelled)));
    }
    c
}

/// An attendee's REPLY: the object with only that attendee, DECLINED if `declined`.
pub fn reply_of(cal: &ICalendar, me: &str, declined: bool) -> ICalendar {
    let mut r = with_method(cal, Some(ICalendarMethod::Reply));
    for c in r.components.iter_mut().filter(|c| is_main(c)) {
        c.entries
            .retain(|e| e.name != P::Attendee || address(e).as_deref() == Some(me));
        if declined {
            for e in c.entries.iter_mut().filter(|e| e.name == P::Attendee) {
                e.params.retain(|p| p.name != PN::Partstat);
                e.params.push(ICalendarParameter::partstat(PV::Partstat(
                    ICalendarParticipationStatus::Declined,
                )));
            }
        }
    }
    r
}

/// Applies a REPLY from `attendee` to the organizer's copy: each replied component (the
/// master, or the instance its RECURRENCE-ID names) takes the attendee's PARTSTAT. False if
/// the copy does not list the attendee.
fn apply_reply(copy: &mut ICalendar, reply: &ICalendar, attendee: &str) -> bool {
    let mut applied = false;
    for rc in reply.components.iter().filter(|c| is_main(c)) {
        let Some(answer) = rc
            .entries
            .iter()
            .find(|e| e.name == P::Attendee && address(e).as_deref() == Some(attendee))
            .and_then(|e| e.parameter(&PN::Partstat).cloned())
        else {
            continue;
        };
        let rid = rc.property(&P::RecurrenceId).map(|e| &e.values);
        for c in copy.components.iter_mut().filter(|c| is_main(c)) {
            if rid.is_some() && c.property(&P::RecurrenceId).map(|e| &e.values) != rid {
                continue;
            }
            for e in c.entries.iter_mut().filter(|e| e.name == P::Attendee) {
                if address(e).as_deref() == Some(attendee) {
                    e.params.retain(|p| p.name != PN::Partstat);
                    e.params.push(ICalendarParameter::partstat(answer.clone()));
                    applied = true;
                }
            }
        }
    }
    applied
}

fn method_name(m: &ICalendarMethod) -> &'static str {
    match m {
        ICalendarMethod::Request => "REQUEST",
        ICalendarMethod::Reply => "REPLY",
        ICalendarMethod::Cancel => "CANCEL",
        _ => "PUBLISH",
    }
}

/// A resource name for an object placed in someone's calendar: `<uid>.ics`, as clients
/// name what they create (a '/' would not survive in a URL segment).
fn object_name(uid: &str) -> String {
    let mut n: String = uid
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .take(200)
        .collect();
    n.push_str(".ics");
    n
}

/// The object's SUMMARY, for people ("an event" without one).
pub fn summary(cal: &ICalendar) -> String {
    cal.components
        .iter()
        .filter(|c| is_main(c))
        .find_map(|c| c.property(&P::Summary))
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
        .unwrap_or("an event")
        .to_string()
}

/// Why scheduling could not tell someone. Scheduling follows a write that stands, so it is
/// logged, not answered; the kind says whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] bureau_directory::DirectoryError),
    /// Writing a user's copy or answer here.
    #[error("to {to}: {source}")]
    Deliver { to: String, source: StoreError },
    /// An address from the calendar object that is no mail address.
    #[error("{0:?} is not a mail address")]
    Address(String),
    /// The party is elsewhere and mail is turned off.
    #[error("no mail service to reach {0}")]
    NoMail(String),
    #[error("composing the mail: {0}")]
    Compose(#[from] std::io::Error),
}

/// The iMIP mail (RFC 6047) carrying an iTIP message: a line of text for people, and the
/// calendar for their software.
fn imip(
    from: &User,
    to: &str,
    method: &ICalendarMethod,
    cal: &ICalendar,
) -> Result<Vec<u8>, ScheduleError> {
    use mail_builder::MessageBuilder;
    use mail_builder::mime::MimePart;
    // The address comes from the calendar object: it must not carry a header of its own.
    if to.is_empty() || !to.contains('@') || to.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ScheduleError::Address(to.to_string()));
    }
    let summary = summary(cal);
    let who = &from.display_name;
    let (subject, text) = match method {
        ICalendarMethod::Request => (
            format!("Invitation: {summary}"),
            format!("{who} invites you to \"{summary}\"."),
        ),
        ICalendarMethod::Cancel => (
            format!("Cancelled: {summary}"),
            format!("{who} has cancelled \"{summary}\"."),
        ),
        _ => (
            format!("Reply: {summary}"),
            format!("{who} has answered your invitation to \"{summary}\"."),
        ),
    };
    // The calendar part's header as RFC 6047 shows it (mail-builder would quote the method,
    // which some clients do not read).
    let cal_part = format!(
        "Content-Type: text/calendar; charset=utf-8; method={}\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{cal}",
        method_name(method)
    );
    let domain = from.address.rsplit_once('@').map_or("", |(_, d)| d);
    MessageBuilder::new()
        .from((who.as_str(), from.address.as_str()))
        .to(to)
        .subject(subject)
        .message_id(format!("{:032x}@{domain}", rand::random::<u128>()))
        .body(MimePart::new(
            "multipart/alternative",
            vec![
                MimePart::new("text/plain", format!("{text}\r\n")),
                MimePart::raw(cal_part),
            ],
        ))
        .write_to_vec()
        .map_err(ScheduleError::Compose)
}

impl Scheduler {
    /// Scheduling over the store and directory, with the queue for mail to people elsewhere
    /// (None: they are not told), reading calendars through `items`.
    pub fn new(
        store: Store,
        directory: Directory,
        queue: Option<bureau_smtp::Queue>,
        items: Arc<ItemsCache>,
    ) -> Scheduler {
        Scheduler {
            store,
            directory,
            queue,
            items,
        }
    }

    fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The cache of item records the scheduler reads calendars through, for a protocol to
    /// share.
    pub fn items(&self) -> &Arc<ItemsCache> {
        &self.items
    }

    /// Schedules after `owner`'s calendar object went from `old` to `new` (None: absent).
    pub async fn schedule(&self, owner: &str, old: Option<&[u8]>, new: Option<&[u8]>) {
        let parse = |t: Option<&[u8]>| {
            t.and_then(|t| std::str::from_utf8(t).ok())
                .and_then(|t| ICalendar::parse(t).ok())
        };
        let (old, new) = (parse(old), parse(new));
        let Some(org) = new.as_ref().or(old.as_ref()).and_then(organizer) else {
            return;
        };
        let owner = match self.directory().user(owner) {
            Ok(Some(u)) => u,
            _ => return,
        };
        let done = if owns(&owner, &org) {
            self.as_organizer(&owner, &org, old.as_ref(), new.as_ref())
                .await
        } else {
            self.as_attendee(&owner, &org, old.as_ref(), new.as_ref())
                .await
        };
        if let Err(e) = done {
            log::warn!("scheduling for {}: {e}", owner.uid);
        }
    }

    async fn as_organizer(
        &self,
        owner: &User,
        org: &str,
        old: Option<&ICalendar>,
        new: Option<&ICalendar>,
    ) -> Result<(), ScheduleError> {
        let told = |p: &Party| p.addr != org && !p.client && !owns(owner, &p.addr);
        let before: Vec<Party> = old.map(attendees).unwrap_or_default();
        let after: Vec<Party> = new.map(attendees).unwrap_or_default();
        let changed = match (old, new) {
            (Some(o), Some(n)) => substance(o) != substance(n),
            _ => true,
        };
        if let Some(new) = new {
            let request = with_method(new, Some(ICalendarMethod::Request));
            for p in after.iter().filter(|p| told(p)) {
                if changed || !before.iter().any(|b| b.addr == p.addr) {
                    self.send(owner, &p.addr, ICalendarMethod::Request, &request)
                        .await?;
                }
            }
        }
        if let Some(old) = old {
            let cancel = cancel_of(old);
            for p in before.iter().filter(|p| told(p)) {
                if !after.iter().any(|a| a.addr == p.addr) {
                    self.send(owner, &p.addr, ICalendarMethod::Cancel, &cancel)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn as_attendee(
        &self,
        owner: &User,
        org: &str,
        old: Option<&ICalendar>,
        new: Option<&ICalendar>,
    ) -> Result<(), ScheduleError> {
        let me_in = |c: Option<&ICalendar>| {
            c.and_then(|c| attendees(c).into_iter().find(|p| owns(owner, &p.addr)))
        };
        let (was, is) = (me_in(old), me_in(new));
        let Some(me) = is.clone().or(was.clone()) else {
            return Ok(());
        };
        if me.client {
            return Ok(());
        }
        let cancelled = |c: &ICalendar| {
            c.components
                .iter()
                .filter(|c| is_main(c))
                .any(|c| c.status() == Some(&ICalendarStatus::Cancelled))
        };
        let (cal, declined) = match new {
            Some(n) => (n, false),
            // A deleted copy declines, unless the organizer had cancelled it.
            None => match old {
                Some(o) if !cancelled(o) => (o, true),
                _ => return Ok(()),
            },
        };
        let before = was.map_or("NEEDS-ACTION".to_string(), |p| p.partstat);
        let after = if declined {
            "DECLINED".to_string()
        } else {
            is.map_or_else(|| "NEEDS-ACTION".to_string(), |p| p.partstat)
        };
        if before == after {
            return Ok(());
        }
        let reply = reply_of(cal, &me.addr, declined);
        self.send(owner, org, ICalendarMethod::Reply, &reply).await
    }

    /// Sends an iTIP message from `from` to one calendar address: into the store for users
    /// here (each member, for a group address), by mail for others.
    pub(crate) async fn send(
        &self,
        from: &User,
        to: &str,
        method: ICalendarMethod,
        msg: &ICalendar,
    ) -> Result<(), ScheduleError> {
        let dir = self.directory();
        let users = match dir.resolve(to)? {
            Some(Addressee::User(u)) => vec![u],
            Some(Addressee::Group(g)) => g
                .members
                .iter()
                .filter_map(|m| dir.user(m).ok().flatten())
                .filter(|u| u.uid != from.uid)
                .collect(),
            None => {
                let domain = to.rsplit_once('@').map_or("", |(_, d)| d);
                if dir.domain(domain)?.is_some() {
                    log::info!("scheduling: no user {to} here");
                    return Ok(());
                }
                return self.mail(from, to, &method, msg).await;
            }
        };
        for u in users.iter().filter(|u| u.enabled) {
            let delivered = match method {
                ICalendarMethod::Reply => {
                    // A reply names one attendee: the one answering.
                    let who = attendees(msg).into_iter().next().map(|p| p.addr);
                    self.reply_here(u, who.as_deref().unwrap_or_default(), msg)
                        .await
                }
                _ => self.deliver_here(u, &method, msg).await,
            };
            delivered.map_err(|source| ScheduleError::Deliver {
                to: u.uid.clone(),
                source,
            })?;
            // A room or equipment answers at once (booking.rs).
            if u.resource.is_some() && matches!(method, ICalendarMethod::Request) {
                let allowed = dir.may_book(u, from)?;
                self.book(u, &from.address, allowed, msg).await?;
            }
        }
        Ok(())
    }

    async fn mail(
        &self,
        from: &User,
        to: &str,
        method: &ICalendarMethod,
        msg: &ICalendar,
    ) -> Result<(), ScheduleError> {
        let Some(queue) = &self.queue else {
            return Err(ScheduleError::NoMail(to.to_string()));
        };
        let data = imip(from, to, method, msg)?;
        queue
            .submit(&from.address, &[to.to_string()], &data)
            .await?;
        Ok(())
    }

    /// The collection and item of `uid` in a user's calendars, if any.
    pub(crate) fn find(
        &self,
        r: &Reader,
        owner: u64,
        uid: &str,
    ) -> Result<Option<Item>, StoreError> {
        for c in r.collections_of(owner)? {
            if !matches!(
                c.kind,
                CollectionKind::Calendar | CollectionKind::TaskList | CollectionKind::Notes
            ) {
                continue;
            }
            if let Some(i) = r
                .items_with_uid(c.id, uid)?
                .into_iter()
                .find(|i| i.name.is_some())
            {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// A REQUEST or CANCEL for a user here: its copy of the object written (or removed) and
    /// the message filed in its schedule inbox, in one write.
    async fn deliver_here(
        &self,
        u: &User,
        method: &ICalendarMethod,
        msg: &ICalendar,
    ) -> Result<(), StoreError> {
        let uid = uid(msg).ok_or_else(|| StoreError::Invalid("no UID".into()))?;
        let r = self.store.reader(Actor::System)?;
        let existing = self.find(&r, u.principal, &uid)?;
        let copy = match method {
            ICalendarMethod::Request => Some(with_method(msg, None).to_string()),
            _ => None,
        };
        let calendar = match &existing {
            Some(i) => i.collection,
            None if copy.is_some() => self.default_calendar(&r, u).await?,
            None => 0,
        };
        self.file(
            u,
            &msg.to_string(),
            move |w, blob, props| {
                match (&existing, blob, props) {
                    (Some(i), Some(b), Some(mut p)) => {
                        // The organizer's change is news to the attendee: a new Schedule-Tag.
                        p.insert(SCHEDULE_TAG.into(), new_schedule_tag());
                        w.update_item(calendar, i.id, None, |it| {
                            it.blob = Some(b);
                            it.props = p;
                        })?;
                    }
                    (None, Some(b), Some(mut p)) => {
                        p.insert(SCHEDULE_TAG.into(), new_schedule_tag());
                        let mut name = object_name(&uid);
                        while w.item_by_name(calendar, &name).is_ok() {
                            name.insert(0, '_');
                        }
                        w.put_item(
                            calendar,
                            NewItem {
                                name: Some(name),
                                blob: Some(b),
                                props: p,
                                past_quota: true,
                                ..Default::default()
                            },
                        )?;
                    }
                    (Some(i), None, _) => w.delete_item(calendar, i.id)?,
                    _ => {}
                }
                Ok(())
            },
            copy,
        )
        .await
    }

    /// A REPLY from `attendee` for an organizer here: its copy takes the answer and the
    /// reply is filed in its schedule inbox. A reply to an object the organizer does not
    /// have, or from someone not invited, changes nothing.
    async fn reply_here(
        &self,
        org: &User,
        attendee: &str,
        reply: &ICalendar,
    ) -> Result<(), StoreError> {
        let uid = uid(reply).ok_or_else(|| StoreError::Invalid("no UID".into()))?;
        let r = self.store.reader(Actor::System)?;
        let Some(item) = self.find(&r, org.principal, &uid)? else {
            log::info!(
                "scheduling: a reply from {attendee} for an event {} does not have",
                org.uid
            );
            return Ok(());
        };
        let text = String::from_utf8_lossy(&r.content(&item)?).into_owned();
        let mut copy =
            ICalendar::parse(&text).map_err(|_| StoreError::Invalid("stored object".into()))?;
        if organizer(&copy).is_none_or(|o| !owns(org, &o))
            || !apply_reply(&mut copy, reply, attendee)
        {
            log::info!(
                "scheduling: a reply from {attendee} to {} does not match the event",
                org.uid
            );
            return Ok(());
        }
        let (coll, id) = (item.collection, item.id);
        self.file(
            org,
            &reply.to_string(),
            move |w, blob, props| {
                if let (Some(b), Some(mut p)) = (blob, props) {
                    w.update_item(coll, id, None, |it| {
                        // A reply merged by the server keeps the organizer's Schedule-Tag, so
                        // its client's next If-Schedule-Tag-Match still holds.
                        if let Some(tag) = it.props.get(SCHEDULE_TAG) {
                            p.insert(SCHEDULE_TAG.into(), tag.clone());
                        }
                        it.blob = Some(b);
                        it.props = p;
                    })?;
                }
                Ok(())
            },
            Some(copy.to_string()),
        )
        .await
    }

    /// One write: `message` filed in `u`'s schedule inbox (made if missing), and `change`
    /// given the blob and props of `object` (a calendar object's new text) if there is one.
    async fn file(
        &self,
        u: &User,
        message: &str,
        change: impl Fn(
            &mut bureau_store::Writer,
            Option<bureau_store::BlobRef>,
            Option<std::collections::BTreeMap<String, String>>,
        ) -> Result<(), StoreError>
        + Send
        + 'static,
        object: Option<String>,
    ) -> Result<(), StoreError> {
        let msg_props = props_of(message)?;
        let obj_props = object.as_deref().map(props_of).transpose()?;
        let staged_msg = self
            .store
            .stage(message.into(), bureau_store::Content::Data)
            .await?;
        let msg_blob = staged_msg.blob_ref();
        let mut staged = vec![staged_msg];
        let obj_blob = match &object {
            Some(o) => {
                let s = self
                    .store
                    .stage(o.clone().into_bytes(), bureau_store::Content::Data)
                    .await?;
                let b = s.blob_ref();
                staged.push(s);
                Some(b)
            }
            None => None,
        };
        let p = u.principal;
        self.store
            .write(Actor::System, staged, move |w| {
                let inbox = match w.collection_by_name(p, INBOX) {
                    Ok(c) => c,
                    Err(StoreError::NotFound) => {
                        w.create_collection(p, CollectionKind::ScheduleInbox, INBOX)?
                    }
                    Err(e) => return Err(e),
                };
                let name = format!("itip-{}.ics", inbox.modseq + 1);
                w.put_item(
                    inbox.id,
                    NewItem {
                        name: Some(name),
                        blob: Some(msg_blob),
                        props: msg_props.clone(),
                        past_quota: true,
                        ..Default::default()
                    },
                )?;
                change(w, obj_blob, obj_props.clone())
            })
            .await
    }

    /// Where invitations go: the user's "calendar", else its first calendar, else a new one.
    async fn default_calendar(&self, r: &Reader, u: &User) -> Result<u64, StoreError> {
        let calendars: Vec<_> = r
            .collections_of(u.principal)?
            .into_iter()
            .filter(|c| c.kind == CollectionKind::Calendar)
            .collect();
        if let Some(c) = calendars
            .iter()
            .find(|c| c.name == "calendar")
            .or(calendars.first())
        {
            return Ok(c.id);
        }
        let p = u.principal;
        let c = self
            .store
            .write(Actor::System, vec![], move |w| {
                let c = w.create_collection(p, CollectionKind::Calendar, "calendar")?;
                w.set_display_name(c.id, "Calendar")?;
                Ok::<_, StoreError>(c)
            })
            .await?;
        Ok(c.id)
    }

    /// The schedule inbox, made on first use.
    pub async fn ensure_inbox(&self, u: &User) -> Result<(), StoreError> {
        let r = self.store.reader(Actor::System)?;
        if r.collection_by_name(u.principal, INBOX).is_ok() {
            return Ok(());
        }
        let p = u.principal;
        match self
            .store
            .write(Actor::System, vec![], move |w| {
                w.create_collection(p, CollectionKind::ScheduleInbox, INBOX)
            })
            .await
        {
            Ok(_) | Err(StoreError::Exists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A reply by mail from outside (see `Arrivals`): applied for each recipient who
    /// organizes the event.
    async fn mail_reply(&self, principals: Vec<u64>, from: String, msg: Vec<u8>) {
        use mail_parser::MimeHeaders;
        let Some(parsed) = bureau_core::mime::parse(&msg) else {
            return;
        };
        let Some(text) = parsed.parts.iter().find_map(|p| {
            let ct = p.content_type()?;
            let is_cal = ct.ctype().eq_ignore_ascii_case("text")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("calendar"));
            is_cal.then(|| p.text_contents()).flatten()
        }) else {
            return;
        };
        let Ok(reply) = ICalendar::parse(text) else {
            return;
        };
        let method = reply.components.iter().find_map(|c| {
            c.property(&P::Method)
                .and_then(|e| e.values.first())
                .and_then(|v| match v {
                    V::Method(m) => Some(m.clone()),
                    _ => None,
                })
        });
        if let Some(m @ (ICalendarMethod::Request | ICalendarMethod::Cancel)) = method {
            return self.booked_by_mail(principals, from, m, reply).await;
        }
        let is_reply = matches!(method, Some(ICalendarMethod::Reply));
        // Only the sender's own answer: every attendee in the reply must be the From: address.
        let parties = attendees(&reply);
        if !is_reply || parties.is_empty() || parties.iter().any(|p| p.addr != from) {
            return;
        }
        let Some(org) = organizer(&reply) else { return };
        let dir = self.directory();
        let Ok(users) = dir.users() else { return };
        for u in users.iter().filter(|u| principals.contains(&u.principal)) {
            if owns(u, &org)
                && let Err(e) = self.reply_here(u, &from, &reply).await
            {
                log::warn!("scheduling: applying {from}'s reply for {}: {e}", u.uid);
            }
        }
    }

    /// An invitation (or its cancellation) by mail from outside: only resources open to
    /// outside bookings act on one, when its organizer is the mail's From: address (SMTP
    /// refuses mail from outside to the others). People get it as mail, for their client.
    async fn booked_by_mail(
        &self,
        principals: Vec<u64>,
        from: String,
        method: ICalendarMethod,
        msg: ICalendar,
    ) {
        if organizer(&msg).as_deref() != Some(from.as_str()) {
            return;
        }
        let Ok(rooms) = self.directory().resources() else {
            return;
        };
        for room in rooms.iter().filter(|r| principals.contains(&r.principal)) {
            if !room.resource.as_ref().is_some_and(|r| r.external) {
                continue;
            }
            let done = match self.deliver_here(room, &method, &msg).await {
                Ok(()) if matches!(method, ICalendarMethod::Request) => {
                    self.book(room, &from, true, &msg).await
                }
                Ok(()) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = done {
                log::warn!("scheduling: a booking of {} by {from}: {e}", room.uid);
            }
        }
    }

    /// Busy and tentative periods of a user's calendars (not task lists, notes or inbox).
    pub fn busy_of(
        &self,
        r: &Reader,
        owner: u64,
        from: i64,
        to: i64,
    ) -> Result<crate::busy::Busy, StoreError> {
        let (mut busy, mut tentative) = (Vec::new(), Vec::new());
        for c in r.collections_of(owner)? {
            if c.kind != CollectionKind::Calendar {
                continue;
            }
            let items = self.items.items(r, c.id)?;
            let (b, t) = crate::busy::busy_periods(r, &items, from, to)?;
            busy.extend(b);
            tentative.extend(t);
        }
        Ok((busy, tentative))
    }
}

impl bureau_smtp::Arrivals for Scheduler {
    fn arrived(&self, principals: &[u64], from: &str, dmarc_failed: bool, msg: &[u8]) {
        if dmarc_failed {
            log::info!(
                "scheduling: calendar mail claiming to be from {from} failed DMARC; not applied"
            );
            return;
        }
        let (sched, principals, from, msg) = (
            self.clone(),
            principals.to_vec(),
            from.to_string(),
            msg.to_vec(),
        );
        tokio::spawn(async move { sched.mail_reply(principals, from, msg).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:m1\r\nDTSTAMP:20261201T090000Z\r\nDTSTART:20261210T100000Z\r\nDTEND:20261210T110000Z\r\nSUMMARY:Planning\r\nORGANIZER:mailto:alice@example.com\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.com\r\nATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:Bob@Example.com\r\nATTENDEE;SCHEDULE-AGENT=CLIENT:mailto:carol@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn organizer_and_attendees_are_read() {
        let cal = ICalendar::parse(EVENT).unwrap();
        assert_eq!(organizer(&cal).as_deref(), Some("alice@example.com"));
        let a = attendees(&cal);
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].addr, "bob@example.com");
        assert_eq!(a[1].partstat, "NEEDS-ACTION");
        assert!(a[2].client && !a[1].client);
    }

    #[test]
    fn a_reply_carries_one_attendee_and_updates_the_copy() {
        let cal =
            ICalendar::parse(EVENT.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")).unwrap();
        let reply = reply_of(&cal, "bob@example.com", false);
        let text = reply.to_string();
        assert!(text.contains("METHOD:REPLY"), "{text}");
        assert_eq!(attendees(&reply).len(), 1);
        let mut copy = ICalendar::parse(EVENT).unwrap();
        assert!(apply_reply(&mut copy, &reply, "bob@example.com"));
        let bob = attendees(&copy)
            .into_iter()
            .find(|p| p.addr == "bob@example.com")
            .unwrap();
        assert_eq!(bob.partstat, "ACCEPTED");
        // Someone not on the event changes nothing.
        assert!(!apply_reply(&mut copy, &reply, "mallory@example.net"));
        let declined = reply_of(&cal, "bob@example.com", true);
        assert_eq!(attendees(&declined)[0].partstat, "DECLINED");
    }

    #[test]
    fn only_substantial_changes_count() {
        let a = ICalendar::parse(EVENT).unwrap();
        let answered = ICalendar::parse(
            EVENT
                .replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=TENTATIVE")
                .replace("DTSTAMP:20261201T090000Z", "DTSTAMP:20261202T090000Z"),
        )
        .unwrap();
        assert_eq!(substance(&a), substance(&answered));
        let moved =
            ICalendar::parse(EVENT.replace("DTSTART:20261210T100000Z", "DTSTART:20261210T103000Z"))
                .unwrap();
        assert_ne!(substance(&a), substance(&moved));
        let c = cancel_of(&a).to_string();
        assert!(
            c.contains("METHOD:CANCEL") && c.contains("STATUS:CANCELLED"),
            "{c}"
        );
    }

    #[test]
    fn imip_mail_has_the_calendar_part_with_its_method() {
        use mail_parser::MimeHeaders;
        let u = User {
            uid: "alice".into(),
            principal: 1,
            address: "alice@example.com".into(),
            display_name: "Alice Martin".into(),
            aliases: vec![],
            quota: None,
            enabled: true,
            admin: false,
            created: 0,
            phone: None,
            resource: None,
            syncml: true,
        };
        let cal = with_method(
            &ICalendar::parse(EVENT).unwrap(),
            Some(ICalendarMethod::Request),
        );
        let m = imip(&u, "dave@remote.example", &ICalendarMethod::Request, &cal).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&m).unwrap();
        assert_eq!(parsed.subject(), Some("Invitation: Planning"));
        let text = String::from_utf8_lossy(&m);
        assert!(
            parsed.message_id().unwrap().ends_with("@example.com"),
            "{text}"
        );
        let part = parsed
            .parts
            .iter()
            .find(|p| {
                p.content_type()
                    .is_some_and(|c| c.subtype() == Some("calendar"))
            })
            .unwrap();
        assert_eq!(
            part.content_type().unwrap().attribute("method"),
            Some("REQUEST"),
            "{text}"
        );
        assert!(text.contains("; method=REQUEST\r\n"), "{text}");
        let cal_part = part.text_contents().unwrap();
        // An attendee address that would carry a header of its own is refused.
        let forged = imip(
            &u,
            "x@remote.example\r\nBcc: y@else.example",
            &ICalendarMethod::Request,
            &cal,
        );
        assert!(forged.is_err());
        assert!(cal_part.contains("UID:m1") && cal_part.contains("METHOD:REQUEST"));
    }

    #[test]
    fn object_names_stay_one_segment() {
        assert_eq!(object_name("a/b"), "a_b.ics");
        assert_eq!(object_name("x@y"), "x@y.ics");
    }
}
