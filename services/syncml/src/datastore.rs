//! The datastores a device names (Target LocURI) and the store's collections behind them:
//! a device's change made into a stored object, and the server's changes read for it.
//!
//! Contacts are vCards, as CardDAV keeps them: a device's card is checked by the rules every
//! write of a contact follows (a card without a UID gets one), and the server's cards go
//! out as they are stored. Events and tasks are iCalendar objects written through the
//! groupware `Scheduler`, as CalDAV's and ActiveSync's are: checked the same way, their UID
//! kept unique in the collection, and an organizer's change reaching the attendees. Notes
//! are VJOURNALs, which devices send and take as plain text (formats.rs). A device that
//! prefers the older formats sends and gets vCard 2.1 (formats.rs) and vCalendar 1.0
//! (vcal10.rs); the store keeps vCard 3.0 and iCalendar 2.0.
//!
//! A device's change to an item it was sent is laid over the stored item (merge.rs), so what
//! the device cannot hold, by its CTCap, stays.

use crate::formats;
pub use crate::kind::Kind;
use crate::mail;
pub use crate::mail::Filter;
use crate::merge::{self, Caps};
use crate::message::status;
use crate::modes::{Mode, Sends};
use crate::{sif, vcal10};
use bureau_directory::User;
use bureau_groupware::object::{self, ObjectKind};
use bureau_groupware::schedule::Scheduler;
use bureau_store::{
    Actor, Collection, CollectionId, CollectionKind, Item, ItemId, ModSeq, NewItem, Reader, Store,
    StoreError, SyncState,
};
use std::collections::BTreeSet;

/// What the server still has to send to a datastore: the items, by id, read when they go
/// (so a session holding thousands of changes holds their ids only).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Out {
    Add {
        id: ItemId,
        size: usize,
    },
    Replace {
        luid: String,
        id: ItemId,
        size: usize,
    },
    Delete {
        luid: String,
    },
}

impl Out {
    /// About what it takes of a message.
    pub fn size(&self) -> usize {
        300 + match self {
            Out::Add { size, .. } | Out::Replace { size, .. } => *size,
            Out::Delete { .. } => 0,
        }
    }

    /// The stored item it carries (none for a Delete).
    pub fn item(&self) -> Option<ItemId> {
        match self {
            Out::Add { id, .. } | Out::Replace { id, .. } => Some(*id),
            Out::Delete { .. } => None,
        }
    }
}

/// The formats a datastore's items go to the device in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Wire {
    /// vCard 3.0, iCalendar 2.0, plain-text notes.
    #[default]
    Standard,
    /// vCard 2.1, vCalendar 1.0 (the device's DevInf prefers them).
    Legacy,
    /// Funambol's SIF (sif.rs), base64-encoded.
    Sif,
}

impl Wire {
    /// The formats for a datastore: the URL's `format=`, else what the device prefers.
    pub fn choose(kind: Kind, url: Option<crate::modes::Format>, prefers: Option<&str>) -> Wire {
        use crate::modes::Format;
        let legacy = kind.legacy_type().is_some() && prefers == kind.legacy_type();
        let sif = sif::content_type(kind).is_some();
        match url {
            Some(Format::Sif) if sif => Wire::Sif,
            _ if legacy => Wire::Legacy,
            Some(Format::Vob) => Wire::Standard,
            _ if sif && prefers.is_some_and(sif::is_sif) => Wire::Sif,
            _ => Wire::Standard,
        }
    }

    pub fn content_type(self, kind: Kind) -> &'static str {
        match (self, kind.legacy_type()) {
            (Wire::Sif, _) => sif::content_type(kind).unwrap_or(kind.content_type()),
            (Wire::Legacy, Some(t)) => t,
            _ => kind.content_type(),
        }
    }
}

/// A stored item as the device gets it (a note as plain text, in the format the device
/// takes; a message as its filter says); None if it is gone, or cannot be said in that
/// format.
pub fn outgoing(
    r: &Reader,
    coll: CollectionId,
    kind: Kind,
    id: ItemId,
    wire: Wire,
    filter: &Filter,
    files: Option<&(crate::files::Folder, std::sync::Arc<crate::files::Manifest>)>,
) -> Result<Option<String>, StoreError> {
    if kind == Kind::Files {
        return Ok(crate::filestore::outgoing(files, id));
    }
    let item = match r.item(coll, id) {
        Ok(i) => i,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let content = r.content(&item)?;
    if kind == Kind::Mail {
        return Ok(Some(mail::outgoing(
            &item,
            &content,
            wire == Wire::Legacy,
            filter,
        )));
    }
    let stored = String::from_utf8_lossy(&content).into_owned();
    Ok(match (kind, wire) {
        (_, Wire::Sif) => {
            let sif = sif::from_stored(kind, &stored);
            if sif.is_none() {
                log::info!("syncml: item {id} cannot be said in SIF; not sent");
            }
            sif
        }
        (Kind::Notes, _) => Some(formats::note_to_text(&stored).unwrap_or_default()),
        (Kind::Contacts, Wire::Legacy) => Some(formats::vcard_to_21(&stored)),
        (Kind::Events | Kind::Tasks, Wire::Legacy) => {
            Some(vcal10::to_10(&stored).unwrap_or(stored))
        }
        _ => Some(stored),
    })
}

/// Who writes, and through what.
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub sched: &'a Scheduler,
    pub user: &'a User,
    /// The user's home folder, for the Files datastore.
    pub folder: Option<&'a crate::files::Folder>,
}

/// The user's collection a datastore name stands for: a collection of the datastore's
/// kind named so, else the default one (named so by the directory) before the others; for
/// "Mail", INBOX, and for "mail/<folder>" or any other name, the mailbox named so; for
/// "Journal", the "journal" collection, made on first use.
pub async fn resolve(
    store: &Store,
    principal: u64,
    uri: &str,
    folder: Option<&crate::files::Folder>,
) -> Result<Option<(Kind, Collection)>, StoreError> {
    let name = crate::devinf::datastore_name(uri);
    let mine = store
        .reader(Actor::Principal(principal))?
        .collections_of(principal)?;
    let named = |kinds: &[CollectionKind], name: &str| {
        mine.iter()
            .find(|c| kinds.contains(&c.kind) && c.name.eq_ignore_ascii_case(name))
            .cloned()
    };
    let kind = match Kind::of_name(&name) {
        Some(Kind::Mail) => {
            let folder = crate::kind::mail_folder(&name).unwrap_or(crate::kind::INBOX);
            return Ok(named(&[CollectionKind::Mailbox], folder).map(|c| (Kind::Mail, c)));
        }
        Some(Kind::Files) => {
            let Some(folder) = folder else {
                return Ok(None);
            };
            let m = folder.scan(store).await?;
            return Ok(Some((Kind::Files, m.collection(principal))));
        }
        Some(k) => k,
        // A collection by its own name: a calendar, an address book, a mailbox...
        None => {
            return Ok(mine
                .iter()
                .filter(|c| c.name.eq_ignore_ascii_case(&name))
                .find_map(|c| Some((Kind::of_collection(c.kind)?, c.clone()))));
        }
    };
    let (kinds, default) = kind.collections();
    if kind == Kind::Journal {
        if let Some(c) = named(kinds, default) {
            return Ok(Some((kind, c)));
        }
        let made = store
            .write(Actor::Principal(principal), vec![], move |w| {
                w.create_collection(principal, CollectionKind::Notes, default)
            })
            .await?;
        return Ok(Some((kind, made)));
    }
    let mut of_kind: Vec<&Collection> = of_kind(&mine, kind).collect();
    of_kind.sort_by_key(|c| {
        let rank = kinds.iter().position(|k| *k == c.kind);
        let own_name = !c.name.eq_ignore_ascii_case(&name);
        (own_name, rank, c.name != default, c.id)
    });
    Ok(of_kind.into_iter().next().map(|c| (kind, c.clone())))
}

/// The user's collections a datastore of `kind` may stand for (the journal is its own).
pub fn of_kind(mine: &[Collection], kind: Kind) -> impl Iterator<Item = &Collection> {
    let (kinds, _) = kind.collections();
    mine.iter()
        .filter(move |c| kinds.contains(&c.kind) && c.name != crate::kind::JOURNAL)
}

/// A datastore as a device's changes are made to it.
pub struct Target<'a> {
    pub coll: &'a Collection,
    pub kind: Kind,
    pub mode: Mode,
    pub state: &'a mut SyncState,
    pub matched: &'a mut BTreeSet<ItemId>,
    /// A slow or refresh sync's index of the stored items by content, made at its first
    /// lookup: each of the device's items is then matched at once, not against every item.
    pub by_content: &'a mut Option<ContentIndex>,
    /// The session was taken up again after a restart: new items are matched too.
    pub resumed: bool,
}

/// Stored items by the hash of their [`comparable`] lines.
pub type ContentIndex = std::collections::HashMap<u64, Vec<ItemId>>;

fn content_key(kind: Kind, text: &[u8]) -> u64 {
    if kind == Kind::Mail {
        return mail::key(text);
    }
    let text = String::from_utf8_lossy(text);
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    comparable(&text).hash(&mut h);
    h.finish()
}

fn content_index(r: &Reader, coll: CollectionId, kind: Kind) -> Result<ContentIndex, StoreError> {
    let mut index = ContentIndex::new();
    for i in r.items(coll)?.into_iter().filter(|i| holds(kind, i)) {
        index
            .entry(content_key(kind, &r.content(&i)?))
            .or_default()
            .push(i.id);
    }
    Ok(index)
}

/// A datastore as its server changes are read.
pub struct View<'a> {
    pub coll: CollectionId,
    pub kind: Kind,
    pub mode: Mode,
    pub state: &'a SyncState,
    pub matched: &'a BTreeSet<ItemId>,
    /// The device's filter (mail only).
    pub filter: &'a Filter,
    /// The user's home folder (Files only).
    pub folder: Option<&'a crate::files::Folder>,
}

/// The props `object::check` gives an object it accepts.
type Props = std::collections::BTreeMap<String, String>;

/// A card fit to store: checked, with a UID if it had none; with its props.
fn card(data: &str) -> Result<(String, Props), object::Invalid> {
    let mut text = crlf(data);
    let has_uid = text.lines().any(|l| {
        l.split([':', ';'])
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case("UID"))
    });
    if !has_uid && let Some(end) = text.to_ascii_uppercase().rfind("END:VCARD") {
        let uid = format!("UID:urn:uuid:{:032x}\r\n", rand::random::<u128>());
        text.insert_str(end, &uid);
    }
    object::check(ObjectKind::Contact, text.as_bytes()).map(|props| (text, props))
}

/// The text of a card for comparing, as devices rewrite what they store: unfolded, sorted
/// lines, names upper-cased, without the lines that only say how it was kept (VERSION,
/// REV, PRODID, UID, DTSTAMP, LAST-MODIFIED, CREATED, X- extensions) and without empty
/// ones ("TITLE:", "ADR:;;;;;;").
fn comparable(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for l in text.split('\n') {
        let l = l.trim_end_matches('\r');
        if let Some(rest) = l.strip_prefix([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push_str(rest);
            }
            continue;
        }
        lines.push(l.to_string());
    }
    let mut keep: Vec<String> = lines
        .into_iter()
        .filter_map(|l| {
            let (head, value) = l.split_once(':')?;
            let name = head
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_uppercase();
            let empty = value.chars().all(|c| c == ';' || c.is_whitespace());
            let meta = matches!(
                name.as_str(),
                "VERSION" | "REV" | "PRODID" | "UID" | "DTSTAMP" | "LAST-MODIFIED" | "CREATED"
            );
            (!empty && !meta && !name.starts_with("X-"))
                .then(|| format!("{}:{}", head.to_ascii_uppercase(), value.trim()))
        })
        .collect();
    keep.sort();
    keep
}

/// Whether a stored item is of the datastore (a calendar holds events and tasks both).
fn holds(kind: Kind, item: &Item) -> bool {
    kind.component().is_none_or(|c| {
        item.props
            .get(bureau_store::prop::COMPONENT)
            .map(String::as_str)
            == Some(c)
    })
}

/// A device's object fit to store, or why not: a card checked (with a UID if it had
/// none), an iCalendar object checked and of the datastore's component.
fn fit(kind: Kind, data: &str) -> Result<(String, Props), object::Invalid> {
    match kind.component() {
        None => card(data),
        Some(comp) => {
            let text = crlf(data);
            let props = object::check(ObjectKind::Calendar, text.as_bytes())?;
            match props.get(bureau_store::prop::COMPONENT) {
                Some(c) if c == comp => Ok((text, props)),
                other => Err(object::Invalid {
                    fault: object::Fault::Data,
                    why: format!("a {other:?} where a {comp} goes"),
                }),
            }
        }
    }
}

/// Text with CRLF line ends, ending in one.
fn crlf(data: &str) -> String {
    let mut text = data.replace("\r\n", "\n").replace('\n', "\r\n");
    if !text.ends_with("\r\n") {
        text.push_str("\r\n");
    }
    text
}

/// The stored item a device's change is to: the device's id for it, else (a slow or
/// refresh sync, or an Add or Replace of what is already here) the same UID or the same
/// content.
fn existing(
    r: &Reader,
    t: &mut Target<'_>,
    known: Option<ItemId>,
    verb: &str,
    text: &[u8],
    uid: &str,
) -> Result<Option<Item>, StoreError> {
    let coll = t.coll.id;
    if let Some(item) = known.and_then(|id| r.item(coll, id).ok()) {
        return Ok(Some(item));
    }
    let matches = t.mode.matches() || t.resumed;
    if verb != "Replace" && t.mode == Mode::TwoWay && !t.resumed {
        return Ok(None);
    }
    let by_uid = r
        .items_with_uid(coll, uid)?
        .into_iter()
        .find(|i| !t.matched.contains(&i.id));
    if by_uid.is_some() || !matches {
        return Ok(by_uid);
    }
    if t.by_content.is_none() {
        *t.by_content = Some(content_index(r, coll, t.kind)?);
    }
    let index = t.by_content.as_mut().expect("made above");
    let Some(ids) = index.get_mut(&content_key(t.kind, text)) else {
        return Ok(None);
    };
    while let Some(id) = ids.pop() {
        if !t.matched.contains(&id)
            && let Ok(item) = r.item(coll, id)
        {
            return Ok(Some(item));
        }
    }
    Ok(None)
}

/// Whether an item the device changed was changed on the server too since the device's
/// last sync (not by the device itself), in a sync that sends the server's changes: a
/// conflict, which the server wins (OMA DS 1.2 Protocol 6.11 leaves the policy to it; this
/// is IceWarp's and Funambol's default).
fn changed_since(r: &Reader, t: &Target<'_>, id: ItemId) -> Result<bool, StoreError> {
    if t.mode.sends() != Sends::Changes {
        return Ok(false);
    }
    let item = match r.item(t.coll.id, id) {
        Ok(item) => item,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(item.modseq > t.state.acked_modseq
        && t.state.own_changes.get(&id) != Some(&item.modseq)
        && holds(t.kind, &item))
}

/// A device's Add, Replace or Delete of one item.
pub struct Change<'a> {
    pub verb: &'a str,
    /// A Delete's SftDel (the device let go of its copy, the item stays) or Archive.
    pub delete: DeleteKind,
    pub luid: &'a str,
    pub content_type: Option<&'a str>,
    pub data: &'a str,
    /// What the device holds of this content type (its CTCap), when it said.
    pub caps: Option<&'a Caps>,
    /// The folder the item names as its own (Files synced as folders).
    pub parent: Option<&'a crate::filestore::Parent>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeleteKind {
    #[default]
    Hard,
    /// OMA DS 1.2 soft delete: the device dropped its copy (for room, say); the item stays
    /// and the device is no longer taken to hold it.
    Soft,
    /// The device asks that the item be archived: it is deleted, answered 210.
    Archive,
}

/// A device's change, checked and matched, ready to write: the writes of one Sync command
/// go to the store together, so that they commit as one batch.
pub enum Step {
    /// Nothing to write: the item's status.
    Done(u16),
    Write(Box<Pending>),
}

pub struct Pending {
    pub(crate) luid: String,
    pub(crate) what: Write,
    /// An archive was asked for: the delete is answered 210.
    pub(crate) archive: bool,
}

pub(crate) enum Write {
    /// A file of the user's home folder written (filestore.rs).
    PutFile(crate::filestore::Put),
    Delete(ItemId),
    /// A message stored, as IMAP's APPEND would.
    Append {
        raw: Vec<u8>,
        flags: Vec<String>,
        date: Option<i64>,
    },
    /// A message's flags set or cleared.
    Flags {
        id: ItemId,
        changes: Vec<(&'static str, bool)>,
    },
    /// The object over `found`, else as a new item.
    Put {
        found: Option<Item>,
        text: String,
        props: Props,
    },
}

/// Checks and matches a device's Add, Replace or Delete.
pub fn prepare(cx: &Ctx<'_>, t: &mut Target<'_>, c: Change<'_>) -> Result<Step, StoreError> {
    let Change { verb, luid, .. } = c;
    if luid.is_empty() || luid.len() > 256 {
        return Ok(Step::Done(status::BAD_REQUEST));
    }
    let known = t.state.id_map.get(luid).copied();
    if verb == "Move" {
        return prepare_move(cx, t, &c, known);
    }
    let pending = |what| {
        Ok(Step::Write(Box::new(Pending {
            luid: luid.to_string(),
            what,
            archive: false,
        })))
    };
    if verb == "Delete" {
        if !t.mode.stores() {
            return Ok(Step::Done(status::OK));
        }
        t.state.id_map.remove(luid);
        if c.delete == DeleteKind::Soft {
            return Ok(Step::Done(if known.is_some() {
                status::OK
            } else {
                status::NOT_DELETED
            }));
        }
        let r = cx.store.reader(Actor::Principal(cx.user.principal))?;
        return match known {
            // Changed on the server since: it stays, and goes to the device again as new.
            Some(id) if changed_since(&r, t, id)? => Ok(Step::Done(status::SERVER_WON)),
            Some(id) => Ok(Step::Write(Box::new(Pending {
                luid: luid.to_string(),
                what: Write::Delete(id),
                // Bureau keeps no archive, and says so (210).
                archive: c.delete == DeleteKind::Archive,
            }))),
            None => Ok(Step::Done(status::NOT_DELETED)),
        };
    }
    if verb == "Replace"
        && let Some(id) = known
    {
        let r = cx.store.reader(Actor::Principal(cx.user.principal))?;
        if changed_since(&r, t, id)? {
            // The server's version stands, and is among its changes for the device.
            return Ok(Step::Done(status::SERVER_WON));
        }
    }
    if c.content_type.is_some_and(|ct| {
        !t.kind.accepts(ct) && sif::content_type(t.kind).is_none_or(|s| !ct.eq_ignore_ascii_case(s))
    }) {
        return Ok(Step::Done(status::UNSUPPORTED_TYPE));
    }
    if t.kind == Kind::Mail {
        return prepare_mail(cx, t, &c, known);
    }
    if t.kind == Kind::Files {
        return prepare_file(cx, t, &c, known);
    }
    // A plain-text note becomes a journal, of which the device holds two lines.
    let plain_note = t.kind == Kind::Notes
        && c.content_type
            .map_or(!c.data.trim_start().starts_with("BEGIN:"), |ct| {
                ct.eq_ignore_ascii_case("text/plain")
            });
    let (note_caps, v10_caps, sif_caps);
    let v10 = matches!(t.kind, Kind::Events | Kind::Tasks)
        .then(|| vcal10::from_10(c.data))
        .flatten();
    // SIF by its type, or by its look when the device gave none.
    let is_sif = c
        .content_type
        .map_or(c.data.trim_start().starts_with('<'), sif::is_sif);
    let from_sif = if is_sif {
        match sif::to_stored(t.kind, c.data) {
            Some(s) => Some(s),
            None => {
                log::info!(
                    "syncml: a device's SIF item refused: not a SIF {:?}",
                    t.kind
                );
                return Ok(Step::Done(status::BAD_REQUEST));
            }
        }
    } else {
        None
    };
    let (data, caps) = if let Some(stored) = &from_sif {
        // A SIF item is kept as the store's format; it holds the fields SIF maps.
        sif_caps = sif::caps(t.kind, stored);
        (stored.clone(), Some(&sif_caps))
    } else if plain_note {
        note_caps = formats::note_caps();
        (formats::note_from_text(c.data), Some(&note_caps))
    } else if t.kind == Kind::Contacts
        && let Some(v30) = formats::vcard_from_21(c.data)
    {
        // A vCard 2.1 is kept as 3.0.
        (merge::without_empty(&v30), c.caps)
    } else if let Some(v20) = &v10 {
        // A vCalendar 1.0 is kept as iCalendar 2.0; its CTCap read in 2.0's names.
        v10_caps = c.caps.map(vcal10::caps_in_20);
        (merge::without_empty(v20), v10_caps.as_ref())
    } else {
        (merge::without_empty(c.data), c.caps)
    };
    let (mut text, mut props) = match fit(t.kind, &data) {
        Ok(fitted) => fitted,
        Err(why) => {
            log::info!("syncml: a device's item refused: {why}");
            return Ok(Step::Done(status::BAD_REQUEST));
        }
    };
    let r = cx.store.reader(Actor::Principal(cx.user.principal))?;
    let uid = props
        .get(bureau_store::prop::UID)
        .map_or("", String::as_str)
        .to_string();
    let found = existing(&r, t, known, verb, text.as_bytes(), &uid)?;
    if !t.mode.stores() {
        // Matched, so not sent back; nothing of the device's is stored.
        if let Some(item) = &found {
            t.matched.insert(item.id);
            t.state.id_map.insert(luid.to_string(), item.id);
        }
        return Ok(Step::Done(status::OK));
    }
    // What the device never saw of the stored object stays.
    if let Some(item) = &found {
        t.matched.insert(item.id);
        let stored = String::from_utf8_lossy(&r.content(item)?).into_owned();
        // Devices that hold times in UTC get the stored zone back.
        if v10.is_some() || (from_sif.is_some() && t.kind != Kind::Contacts) {
            text = vcal10::zoned_like(&text, &stored);
        }
        match merge::merge(&stored, &text, caps).map(|m| fit(t.kind, &m)) {
            Some(Ok(fitted)) => (text, props) = fitted,
            Some(Err(why)) => log::info!("syncml: the device's item stands whole: {why}"),
            None => log::info!("syncml: the device's item stands whole: no component to merge"),
        }
    }
    pending(Write::Put { found, text, props })
}

/// A device's Add or Replace of a file or folder (filestore.rs), as a step.
fn prepare_file(
    cx: &Ctx<'_>,
    t: &mut Target<'_>,
    c: &Change<'_>,
    known: Option<ItemId>,
) -> Result<Step, StoreError> {
    let folder = cx.folder.ok_or_else(no_folder)?;
    let prepared = crate::filestore::prepare(
        (cx.store, folder),
        (t.state, t.matched),
        t.mode.stores(),
        (c.luid, c.content_type, c.data, c.parent),
        known,
    )?;
    Ok(file_step(c.luid, prepared))
}

/// A device's Move to another folder: only the Files datastore has folders within one
/// datastore (collections are folders of their own, session/tree.rs).
fn prepare_move(
    cx: &Ctx<'_>,
    t: &mut Target<'_>,
    c: &Change<'_>,
    known: Option<ItemId>,
) -> Result<Step, StoreError> {
    match cx.folder.filter(|f| f.nested && t.kind == Kind::Files) {
        Some(folder) if t.mode.stores() => {
            let moved =
                crate::filestore::prepare_move((cx.store, folder), t.state, c.parent, known)?;
            Ok(file_step(c.luid, moved))
        }
        Some(_) => Ok(Step::Done(status::OK)),
        None => Ok(Step::Done(status::NOT_SUPPORTED)),
    }
}

fn file_step(luid: &str, p: crate::filestore::Prepared) -> Step {
    match p {
        crate::filestore::Prepared::Done(code) => Step::Done(code),
        crate::filestore::Prepared::Put(put) => Step::Write(Box::new(Pending {
            luid: luid.to_string(),
            what: Write::PutFile(put),
            archive: false,
        })),
    }
}

fn no_folder() -> StoreError {
    StoreError::Invalid("the user has no home folder on this box".into())
}

/// A written file as the sync state keeps it: its id, its version as the modseq.
fn file_item(id: ItemId, version: ModSeq) -> Item {
    Item {
        id,
        collection: crate::files::COLLECTION,
        modseq: version,
        name: None,
        blob: None,
        flags: Vec::new(),
        date: 0,
        props: Default::default(),
    }
}

/// A device's Add or Replace of a message: a new message stored, or the state of one it
/// holds (a slow sync matches its copy by Message-ID).
fn prepare_mail(
    cx: &Ctx<'_>,
    t: &mut Target<'_>,
    c: &Change<'_>,
    known: Option<ItemId>,
) -> Result<Step, StoreError> {
    let got = match mail::incoming(c.content_type, c.data) {
        Ok(got) => got,
        Err(why) => {
            log::info!("syncml: a device's message refused: {why}");
            return Ok(Step::Done(status::BAD_REQUEST));
        }
    };
    let r = cx.store.reader(Actor::Principal(cx.user.principal))?;
    let raw = got.message.as_deref().unwrap_or_default();
    let found = existing(&r, t, known, c.verb, raw, "")?;
    if let Some(item) = &found {
        t.matched.insert(item.id);
        if !t.mode.stores() || got.flags.is_empty() {
            t.state.id_map.insert(c.luid.to_string(), item.id);
            return Ok(Step::Done(status::OK));
        }
    } else if !t.mode.stores() {
        return Ok(Step::Done(status::OK));
    }
    let what = match (found, got.message) {
        (Some(item), _) => Write::Flags {
            id: item.id,
            changes: got.flags,
        },
        (None, Some(raw)) => {
            let mut flags = Vec::new();
            mail::apply(&mut flags, &got.flags);
            Write::Append {
                raw,
                flags,
                date: got.received,
            }
        }
        (None, None) => {
            log::info!("syncml: a device's change to a message it does not hold, without one");
            return Ok(Step::Done(status::BAD_REQUEST));
        }
    };
    Ok(Step::Write(Box::new(Pending {
        luid: c.luid.to_string(),
        what,
        archive: false,
    })))
}

/// Writes one prepared change: the written item and whether it is new, or the item's
/// status when the store refused it for what it is.
async fn write(
    cx: &Ctx<'_>,
    coll: &Collection,
    kind: Kind,
    what: &Write,
) -> Result<Result<Option<(Item, bool)>, u16>, StoreError> {
    let actor = Actor::Principal(cx.user.principal);
    let id = coll.id;
    let written = match (kind, what) {
        (_, Write::PutFile(put)) => {
            let folder = cx.folder.ok_or_else(no_folder)?;
            crate::filestore::write(cx.store, folder, put)
                .await
                .map(|(id, version, added)| Some((file_item(id, version), added)))
        }
        (Kind::Files, Write::Delete(id)) => {
            let folder = cx.folder.ok_or_else(no_folder)?;
            crate::filestore::remove(cx.store, folder, *id)
                .await
                .map(|()| None)
        }
        (_, Write::Append { raw, flags, date }) => {
            let staged = cx
                .store
                .stage(raw.clone(), bureau_store::Content::Message)
                .await?;
            let new = NewItem {
                blob: Some(staged.blob_ref()),
                flags: flags.clone(),
                date: *date,
                ..Default::default()
            };
            cx.store
                .write(actor, vec![staged], move |w| w.put_item(id, new.clone()))
                .await
                .map(|i| Some((i, true)))
        }
        (_, Write::Flags { id: item, changes }) => {
            let (item, changes) = (*item, changes.clone());
            cx.store
                .write(actor, vec![], move |w| {
                    w.update_item(id, item, None, |it| mail::apply(&mut it.flags, &changes))
                })
                .await
                .map(|i| Some((i, false)))
        }
        (Kind::Contacts | Kind::Mail, Write::Delete(item)) => {
            let item = *item;
            cx.store
                .write(actor, vec![], move |w| w.delete_item(id, item))
                .await
                .map(|()| None)
        }
        (_, Write::Delete(item)) => cx
            .sched
            .delete_object(cx.user, coll, *item)
            .await
            .map(|()| None),
        (Kind::Contacts, Write::Put { found, text, props }) => {
            write_card(cx.store, actor, id, found, text, props)
                .await
                .map(Some)
        }
        (_, Write::Put { found, text, .. }) => {
            let (name, expect, added) = match found {
                Some(item) => (
                    item.name.clone().unwrap_or_default(),
                    Some(item.modseq),
                    false,
                ),
                None => (format!("{:032x}.ics", rand::random::<u128>()), None, true),
            };
            cx.sched
                .put_object(cx.user, coll, &name, expect, text.clone())
                .await
                .map(|i| Some((i, added)))
        }
    };
    match written {
        Ok(w) => Ok(Ok(w)),
        Err(StoreError::NotFound) if matches!(what, Write::Delete(_)) => {
            Ok(Err(status::NOT_DELETED))
        }
        // Another item of the collection has its UID, or its component does not belong.
        Err(StoreError::Exists(why) | StoreError::Invalid(why)) => {
            log::info!("syncml: a device's item refused: {why}");
            Ok(Err(status::BAD_REQUEST))
        }
        Err(StoreError::OverQuota) => Ok(Err(status::DEVICE_FULL)),
        Err(e) => Err(e),
    }
}

/// Writes a Sync command's prepared changes together; their statuses, in order.
pub async fn write_all(
    cx: &Ctx<'_>,
    t: Target<'_>,
    pending: Vec<Pending>,
) -> Result<Vec<u16>, StoreError> {
    let (coll, kind) = (t.coll, t.kind);
    let results =
        futures_util::future::join_all(pending.iter().map(|p| write(cx, coll, kind, &p.what)))
            .await;
    let mut codes = Vec::with_capacity(pending.len());
    for (p, result) in pending.into_iter().zip(results) {
        codes.push(match result? {
            Err(code) => code,
            Ok(None) if p.archive => status::DELETED_WITHOUT_ARCHIVE,
            Ok(None) => status::OK,
            Ok(Some((item, added))) => {
                t.state.id_map.insert(p.luid, item.id);
                t.state.own_changes.insert(item.id, item.modseq);
                t.matched.insert(item.id);
                if added { status::ADDED } else { status::OK }
            }
        });
    }
    Ok(codes)
}

/// A card written over `found`, or as a new item; the item and whether it is new.
async fn write_card(
    store: &Store,
    actor: Actor,
    coll: CollectionId,
    found: &Option<Item>,
    text: &str,
    props: &Props,
) -> Result<(Item, bool), StoreError> {
    let staged = store
        .stage(text.as_bytes().to_vec(), bureau_store::Content::Data)
        .await?;
    let blob = staged.blob_ref();
    let props = props.clone();
    match found {
        Some(item) => {
            let id = item.id;
            let done = store
                .write(actor, vec![staged], move |w| {
                    w.update_item(coll, id, None, |it| {
                        it.blob = Some(blob);
                        it.props.extend(props.clone());
                    })
                })
                .await?;
            Ok((done, false))
        }
        None => {
            let name = format!("{:032x}.vcf", rand::random::<u128>());
            let done = store
                .write(actor, vec![staged], move |w| {
                    w.put_item(
                        coll,
                        NewItem {
                            name: Some(name.clone()),
                            blob: Some(blob),
                            props: props.clone(),
                            ..Default::default()
                        },
                    )
                })
                .await?;
            Ok((done, true))
        }
    }
}

/// A refresh from the client: the stored items it did not send go (the device's set is
/// the datastore's now).
pub async fn drop_unmatched(
    store: &Store,
    principal: u64,
    kind: Kind,
    coll: CollectionId,
    matched: &BTreeSet<ItemId>,
    folder: Option<&crate::files::Folder>,
) -> Result<(), StoreError> {
    if let (Kind::Files, Some(folder)) = (kind, folder) {
        return crate::filestore::drop_unmatched(store, folder, matched).await;
    }
    let actor = Actor::Principal(principal);
    let gone: Vec<ItemId> = store
        .reader(actor)?
        .items(coll)?
        .into_iter()
        .filter(|i| holds(kind, i) && !matched.contains(&i.id))
        .map(|i| i.id)
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    store
        .write(actor, vec![], move |w| {
            for id in &gone {
                w.delete_item(coll, *id)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
}

/// The server's changes for a datastore, in the session's sync type, and the collection's
/// modseq they were read at.
pub fn changes_for(
    store: &Store,
    principal: u64,
    v: View<'_>,
) -> Result<(Vec<Out>, ModSeq), StoreError> {
    if v.kind == Kind::Files {
        use crate::filestore::Sent;
        let folder = v.folder.ok_or_else(no_folder)?;
        let (sent, at) =
            crate::filestore::changes_for(store, folder, v.mode.sends(), (v.state, v.matched))?;
        let out = sent.into_iter().map(|s| match s {
            Sent::Add(id, size) => Out::Add { id, size },
            Sent::Replace(luid, id, size) => Out::Replace { luid, id, size },
            Sent::Delete(luid) => Out::Delete { luid },
        });
        return Ok((out.collect(), at));
    }
    let r = store.reader(Actor::Principal(principal))?;
    let luid_of: std::collections::BTreeMap<ItemId, &String> =
        v.state.id_map.iter().map(|(l, id)| (*id, l)).collect();
    let size = |i: &Item| i.blob.map_or(0, |b| b.size as usize);
    // A Replace for an item the device holds, an Add for another.
    let change = |i: &Item| match luid_of.get(&i.id) {
        Some(l) => Out::Replace {
            luid: (*l).clone(),
            id: i.id,
            size: size(i),
        },
        None => Out::Add {
            id: i.id,
            size: size(i),
        },
    };
    // What the device's filter leaves out is not sent, unless the device holds it.
    let wanted = |i: &Item| holds(v.kind, i) && (v.filter.admits(i) || luid_of.contains_key(&i.id));
    let mut out = Vec::new();
    let at = r.collection(v.coll)?.modseq;
    match v.mode.sends() {
        Sends::Nothing => {}
        Sends::Everything => {
            // Everything the device did not just send or match.
            for i in r.items(v.coll)? {
                if wanted(&i) && !v.matched.contains(&i.id) {
                    out.push(Out::Add {
                        id: i.id,
                        size: size(&i),
                    });
                }
            }
        }
        Sends::Changes => {
            let changes = match r.changes_since(v.coll, v.state.acked_modseq) {
                Ok(c) => c,
                // The log no longer reaches back: everything, as in a slow sync.
                Err(StoreError::TooOld) => {
                    for i in r.items(v.coll)?.into_iter().filter(|i| wanted(i)) {
                        out.push(change(&i));
                    }
                    return Ok((out, at));
                }
                Err(e) => return Err(e),
            };
            for i in changes.changed {
                if !wanted(&i) || v.state.own_changes.get(&i.id) == Some(&i.modseq) {
                    continue;
                }
                out.push(change(&i));
            }
            for id in changes.deleted {
                if let Some(l) = luid_of.get(&id) {
                    out.push(Out::Delete { luid: (*l).clone() });
                }
            }
        }
    }
    Ok((out, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_and_the_devices_preference_choose_the_formats() {
        use crate::modes::Format::*;
        let choose = Wire::choose;
        assert_eq!(choose(Kind::Contacts, None, None), Wire::Standard);
        assert_eq!(
            choose(Kind::Contacts, None, Some("text/x-vcard")),
            Wire::Legacy
        );
        assert_eq!(
            choose(Kind::Events, Some(Get), Some("text/x-vcalendar")),
            Wire::Legacy
        );
        assert_eq!(
            choose(Kind::Events, None, Some("text/x-s4j-sife")),
            Wire::Sif
        );
        assert_eq!(
            choose(Kind::Events, Some(Vob), Some("text/x-s4j-sife")),
            Wire::Standard
        );
        assert_eq!(
            choose(Kind::Notes, Some(Sif), Some("text/plain")),
            Wire::Sif
        );
        assert_eq!(
            choose(Kind::Notes, None, Some("text/x-vcard")),
            Wire::Standard
        );
        assert_eq!(Wire::Sif.content_type(Kind::Tasks), "text/x-s4j-sift");
        assert_eq!(Wire::Legacy.content_type(Kind::Notes), "text/plain");
    }

    #[test]
    fn a_devices_card_gets_a_uid_and_compares_by_its_content() {
        let (c, props) = card("BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nN:;Ann;;;\nEND:VCARD").unwrap();
        assert!(props[bureau_store::prop::UID].starts_with("urn:uuid:"));
        assert!(
            c.contains("\r\nUID:urn:uuid:") && c.ends_with("END:VCARD\r\n"),
            "{c}"
        );
        assert!(card("BEGIN:VCARD\nVERSION:3.0\nFN:Ann\n").is_err());
        let a = "BEGIN:VCARD\r\nVERSION:3.0\r\nREV:1\r\nFN:Ann\r\nTEL:1\r\nEND:VCARD\r\n";
        let b = "BEGIN:VCARD\r\nVERSION:3.0\r\nTEL:1\r\nFN:Ann\r\nREV:2\r\nEND:VCARD\r\n";
        assert_eq!(comparable(a), comparable(b));
        // As a device writes it back: version, empty fields, extensions.
        let c = "BEGIN:VCARD\r\nVERSION:4.0\r\nfn:Ann\r\nTITLE:\r\nADR:;;;;;;\r\nX-A:1\r\nTEL:1\r\nEND:VCARD\r\n";
        assert_eq!(comparable(a), comparable(c));
        assert_ne!(comparable(a), comparable(&a.replace("TEL:1", "TEL:2")));
        for name in ["Contacts", "./contacts", "card", "ADDRESSBOOK"] {
            let n = name.trim_start_matches("./").to_ascii_lowercase();
            assert_eq!(Kind::of_name(&n), Some(Kind::Contacts), "{name}");
        }
    }
}
