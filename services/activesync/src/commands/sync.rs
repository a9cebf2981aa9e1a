//! Sync (MS-ASCMD 2.2.1.21) for mail folders and address books, from the store's change
//! log.
//!
//! A folder's state on a device is its sync state in the store: `sync_key` is the key the
//! device presents next, `acked_modseq` how far in the change log it has been told,
//! `known` the items it holds. Presenting the key acknowledges the previous answer; the
//! previous key again is a retry and gets the same answer (`last_response`); key 0 starts
//! this folder over and no other. Changes come in modseq order, `WindowSize` at a time,
//! with MoreAvailable while more wait. The device's own changes (read, flag, delete, moved
//! to Trash when DeletesAsMoves) are applied and not sent back to it (`own_changes`).

use crate::classes::calendar::{self, View};
use crate::classes::contacts;
use crate::classes::email;
use crate::classes::tasks;
use crate::formats::body::BodyPreference;
use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document, server_id};
use bureau_store::{Actor, Collection, CollectionKind, Item, ItemId, StoreError, SyncState};
use chrono::NaiveDateTime;

/// Sync status codes (MS-ASCMD 2.2.3.177.16).
mod status {
    pub const SUCCESS: &str = "1";
    pub const INVALID_SYNC_KEY: &str = "3";
    pub const PROTOCOL_ERROR: &str = "4";
    pub const SERVER_ERROR: &str = "5";
    pub const CONVERSION_ERROR: &str = "6";
    pub const NOT_FOUND: &str = "8";
    pub const FOLDER_HIERARCHY_CHANGED: &str = "12";
}

const DEFAULT_WINDOW: usize = 100;
const MAX_WINDOW: usize = 512;

/// The oldest date FilterType lets through (MS-ASCMD 2.2.3.73.2), from now.
fn filter_since(filter: Option<&str>, now: i64) -> Option<i64> {
    let days = match filter? {
        "1" => 1,
        "2" => 3,
        "3" => 7,
        "4" => 14,
        "5" => 31,
        "6" => 92,
        "7" => 183,
        _ => return None,
    };
    Some(now - days * 86_400)
}

/// When an item is over, for FilterType: an event or task when its last instance ends
/// (the span CalDAV indexes; open-ended series never), a message when it arrived.
fn ends(it: &Item) -> i64 {
    it.span().map_or(it.date, |(_, to)| to)
}

/// The item id a ServerId names in this collection.
fn item_of(coll: u64, server_id: &str) -> Option<ItemId> {
    crate::parse_server_id(server_id)
        .filter(|(c, _)| *c == coll)
        .map(|(_, i)| i)
}

pub async fn sync(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let root = |s: &str| Element::new(page::AIRSYNC, "Sync").with_text("Status", s);
    let Some(doc) = doc.filter(|d| d.name == "Sync") else {
        // An empty Sync asks to repeat the last one's collections: not kept here.
        return Ok(document(&root("13")));
    };
    let Some(colls) = doc.child("Collections") else {
        return Ok(document(&root(status::PROTOCOL_ERROR)));
    };
    let window = doc
        .child_value("WindowSize")
        .and_then(|w| w.trim().parse::<usize>().ok());
    let view = eas.view(cx);
    let mut out = Element::new(page::AIRSYNC, "Collections");
    for c in colls.children_named("Collection") {
        out = out.with(collection(eas, cx, &view, c, window).await?);
    }
    Ok(document(&Element::new(page::AIRSYNC, "Sync").with(out)))
}

/// One folder's Sync, as its commands from the device need it.
#[derive(Clone, Copy)]
struct Folder<'a> {
    eas: &'a ActiveSync,
    cx: &'a Context,
    view: &'a View,
    collection: &'a Collection,
    /// The store as the request found it.
    reader: &'a bureau_store::Reader,
    /// A calendar, task list or notes.
    ical: bool,
    /// The Drafts mailbox: drafts are made and changed on the device (16.x).
    drafts: bool,
    pref: &'a BodyPreference,
    /// Options/Conflict 0: the device's change wins over the server's.
    client_wins: bool,
    /// A deleted message goes to Deleted Items (DeletesAsMoves, on by default).
    deletes_as_moves: bool,
}

impl Folder<'_> {
    /// The device changed an item: applied, unless the server changed it too since the
    /// device was told (by default the server's version wins and goes to the device).
    /// Gives the response, for a change that fails.
    async fn change(
        self,
        state: &mut SyncState,
        cmd: &Element,
        sid: &str,
    ) -> Result<Option<Element>, StoreError> {
        let Folder {
            eas,
            cx,
            view,
            collection,
            reader,
            ical,
            drafts,
            client_wins,
            ..
        } = self;
        let (coll, kind, principal) = (collection.id, collection.kind, cx.user.principal);
        let Some(item) = item_of(coll, sid) else {
            return Ok(Some(reply("Change", sid, status::NOT_FOUND)));
        };
        let empty = Element::new(page::AIRSYNC, "ApplicationData");
        let data = cmd.child("ApplicationData").unwrap_or(&empty);
        let instance = cmd
            .child_value("InstanceId")
            .and_then(|t| calendar::parse_time(&t));
        // Changed here too since the device was told: by default the server's
        // version wins and goes to the device below (Options/Conflict 0: the
        // device's wins).
        if kind != CollectionKind::Mailbox
            && !client_wins
            && reader.item(coll, item).is_ok_and(|it| {
                it.modseq > state.acked_modseq && state.own_changes.get(&item) != Some(&it.modseq)
            })
        {
            log::info!("activesync: change of {sid} lost to the server's");
            return Ok(None);
        }
        let edits_draft = drafts
            && data
                .elements()
                .any(|e| matches!(e.name, "To" | "Cc" | "Bcc" | "Subject" | "Body"));
        let done = match kind {
            CollectionKind::Mailbox if edits_draft => change_draft(eas, cx, coll, item, data).await,
            CollectionKind::AddressBook => {
                let supported = state.supported.as_deref();
                change_contact(eas, principal, coll, item, data, supported).await
            }
            _ if ical => {
                let supported = state.supported.as_deref();
                change_ical(eas, cx, view, collection, item, data, instance, supported).await
            }
            _ => change_mail(eas, principal, coll, item, data).await,
        };
        // A draft the device asks to send (email2:Send, 16.x).
        let done = match done {
            Ok(m) if drafts && cmd.child("Send").is_some() => {
                send_draft(eas, cx, coll, item).await.map(|()| m)
            }
            other => other,
        };
        match done {
            Ok(modseq) => {
                state.own_changes.insert(item, modseq);
            }
            Err(StoreError::NotFound) => {
                return Ok(Some(reply("Change", sid, status::NOT_FOUND)));
            }
            Err(StoreError::Invalid(why)) => {
                log::info!("activesync: change of {sid} refused: {why}");
                return Ok(Some(reply("Change", sid, status::CONVERSION_ERROR)));
            }
            Err(StoreError::Corrupt(why)) => {
                log::warn!("activesync: change of {sid} not made: {why}");
                return Ok(Some(reply("Change", sid, status::SERVER_ERROR)));
            }
            Err(e) => return Err(e),
        }
        Ok(None)
    }

    /// The device deleted an item (or, from 16.0, one occurrence of an event). Gives the
    /// response, for a delete that fails.
    async fn delete(
        self,
        state: &mut SyncState,
        cmd: &Element,
        sid: &str,
    ) -> Result<Option<Element>, StoreError> {
        let Folder {
            eas,
            cx,
            view,
            collection,
            reader,
            ical,
            deletes_as_moves,
            ..
        } = self;
        let (coll, kind, principal) = (collection.id, collection.kind, cx.user.principal);
        let Some(item) = item_of(coll, sid) else {
            return Ok(None);
        };
        if ical {
            let instance = cmd
                .child_value("InstanceId")
                .and_then(|t| calendar::parse_time(&t));
            match delete_ical(eas, cx, view, collection, item, instance).await {
                Ok(Some(modseq)) => {
                    state.own_changes.insert(item, modseq);
                }
                Ok(None) | Err(StoreError::NotFound) => {
                    if instance.is_none() {
                        state.known.remove(&item);
                    }
                }
                Err(StoreError::Invalid(why)) => {
                    log::info!("activesync: delete of {sid} refused: {why}");
                    return Ok(Some(reply("Delete", sid, status::CONVERSION_ERROR)));
                }
                Err(StoreError::Corrupt(why)) => {
                    log::warn!("activesync: delete of {sid} not made: {why}");
                    return Ok(Some(reply("Delete", sid, status::SERVER_ERROR)));
                }
                Err(e) => return Err(e),
            }
            return Ok(None);
        }
        let trash = crate::special_mailbox(reader, principal, "\\Trash")?
            .filter(|t| *t != coll && deletes_as_moves && kind == CollectionKind::Mailbox);
        let done = eas
            .store()
            .write(Actor::Principal(principal), vec![], move |w| {
                if let Some(t) = trash {
                    w.copy_item(coll, item, t)?;
                }
                w.delete_item(coll, item)
            })
            .await;
        match done {
            Ok(()) | Err(StoreError::NotFound) => {
                state.known.remove(&item);
            }
            Err(e) => return Err(e),
        }
        Ok(None)
    }

    /// The device asks for an item whole.
    fn fetch(self, sid: &str) -> Result<Element, StoreError> {
        let (coll, kind) = (self.collection.id, self.collection.kind);
        let Some(it) = item_of(coll, sid).and_then(|i| self.reader.item(coll, i).ok()) else {
            return Ok(reply("Fetch", sid, status::NOT_FOUND));
        };
        let raw = self.reader.content(&it)?;
        let data =
            application_data(kind, &it, &raw, self.pref, self.view).unwrap_or_else(empty_data);
        Ok(Element::new(page::AIRSYNC, "Fetch")
            .with_text("ServerId", sid)
            .with_text("Status", status::SUCCESS)
            .with(data))
    }

    /// The device made an item: a contact, an event, task or note, or a draft. A retried
    /// Add (same ClientId) is the item made the first time.
    async fn add(self, state: &mut SyncState, cmd: &Element) -> Result<Element, StoreError> {
        let Folder {
            eas,
            cx,
            view,
            collection,
            ical,
            drafts,
            ..
        } = self;
        let (coll, kind, principal) = (collection.id, collection.kind, cx.user.principal);
        let client = cmd.child_value("ClientId").unwrap_or_default();
        let answer = |status: &str, server: Option<String>| {
            let mut a = Element::new(page::AIRSYNC, "Add");
            if let Some(sid) = server {
                a = a.with_text("ServerId", sid);
            }
            a.with_text("ClientId", client.clone())
                .with_text("Status", status)
        };
        let data = cmd.child("ApplicationData");
        if let Some(done) = state.id_map.get(&client) {
            return Ok(answer(status::SUCCESS, Some(server_id(coll, *done))));
        }
        Ok(match (kind, data) {
            (CollectionKind::AddressBook, Some(d)) if !client.is_empty() => {
                let (id, modseq) = add_contact(eas, principal, coll, d).await?;
                state.known.insert(id);
                state.own_changes.insert(id, modseq);
                state.id_map.insert(client.clone(), id);
                answer(status::SUCCESS, Some(server_id(coll, id)))
            }
            (_, Some(d)) if (ical || drafts) && !client.is_empty() => {
                let made = if drafts {
                    add_draft(eas, cx, coll, d).await
                } else {
                    add_ical(eas, cx, view, collection, d).await
                };
                match made {
                    Ok(it) => {
                        state.known.insert(it.id);
                        state.own_changes.insert(it.id, it.modseq);
                        state.id_map.insert(client.clone(), it.id);
                        answer(status::SUCCESS, Some(server_id(coll, it.id)))
                    }
                    Err(StoreError::Invalid(why)) | Err(StoreError::Exists(why)) => {
                        log::info!("activesync: add refused: {why}");
                        answer(status::CONVERSION_ERROR, None)
                    }
                    Err(e) => return Err(e),
                }
            }
            // Mail is not made on the device (drafts come later).
            _ => answer(status::CONVERSION_ERROR, None),
        })
    }

    /// What changed on the server since the device was last told, a window of it: the
    /// commands that tell it, and whether more wait. Moves the state's acknowledged modseq.
    fn server_changes(
        self,
        state: &mut SyncState,
        reader: &bureau_store::Reader,
        changes: &bureau_store::Changes,
        window: usize,
        since: Option<i64>,
    ) -> Result<(Vec<Element>, bool), StoreError> {
        let (coll, kind) = (self.collection.id, self.collection.kind);
        let mut commands = Vec::new();
        let mut acked = state.acked_modseq;
        let mut more = false;
        for gone in &changes.deleted {
            if state.known.remove(gone) {
                commands.push(
                    Element::new(page::AIRSYNC, "Delete")
                        .with_text("ServerId", server_id(coll, *gone)),
                );
            }
        }
        let mut sent = 0;
        for it in &changes.changed {
            if sent == window {
                more = true;
                break;
            }
            acked = it.modseq;
            if state.own_changes.remove(&it.id) == Some(it.modseq) {
                continue;
            }
            let known = state.known.contains(&it.id);
            if !known && since.is_some_and(|s| ends(it) < s) {
                continue;
            }
            let raw = reader.content(it)?;
            // What the class cannot show (a to-do in a calendar) is not sent.
            let Some(data) = application_data(kind, it, &raw, self.pref, self.view) else {
                continue;
            };
            let verb = if known { "Change" } else { "Add" };
            commands.push(
                Element::new(page::AIRSYNC, verb)
                    .with_text("ServerId", server_id(coll, it.id))
                    .with(data),
            );
            state.known.insert(it.id);
            sent += 1;
        }
        if !more {
            acked = changes.modseq;
        }
        state.acked_modseq = acked;
        Ok((commands, more))
    }
}

async fn collection(
    eas: &ActiveSync,
    cx: &Context,
    view: &View,
    req: &Element,
    overall_window: Option<usize>,
) -> Result<Element, StoreError> {
    let key = req.child_value("SyncKey").unwrap_or_default();
    let id_text = req.child_value("CollectionId").unwrap_or_default();
    let answer = |k: &str, s: &str| {
        Element::new(page::AIRSYNC, "Collection")
            .with_text("SyncKey", k)
            .with_text("CollectionId", id_text.clone())
            .with_text("Status", s)
    };
    let principal = cx.user.principal;
    let reader = eas.store().reader(Actor::Principal(principal))?;
    let Some(collection) = crate::own_collection(&reader, principal, &id_text)? else {
        return Ok(answer(&key, status::FOLDER_HIERARCHY_CHANGED));
    };
    let coll = collection.id;
    let kind = collection.kind;
    let ical = matches!(
        kind,
        CollectionKind::Calendar | CollectionKind::TaskList | CollectionKind::Notes
    );
    // Drafts are made and changed on the device (16.x).
    let drafts = kind == CollectionKind::Mailbox && collection.special_use() == Some("\\Drafts");
    if kind == CollectionKind::ScheduleInbox {
        return Ok(answer(&key, status::SERVER_ERROR));
    }
    let device = cx.device.id.clone();
    let mut state = reader
        .sync_state(principal, &device, coll)?
        .unwrap_or_default();
    let save = |state: SyncState| {
        let device = device.clone();
        async move {
            eas.store()
                .write(Actor::Principal(principal), vec![], move |w| {
                    w.put_sync_state(principal, &device, coll, &state)
                })
                .await
        }
    };
    if key.trim() == "0" {
        // This folder starts over: the device is told every item again from key 1.
        let supported = req
            .child("Supported")
            .map(|s| s.elements().map(|e| e.name.to_string()).collect());
        save(SyncState {
            sync_key: 1,
            supported,
            ..Default::default()
        })
        .await?;
        return Ok(answer("1", status::SUCCESS));
    }
    let Ok(presented) = key.trim().parse::<u64>() else {
        return Ok(answer(&key, status::INVALID_SYNC_KEY));
    };
    if presented == state.last_key
        && presented != state.sync_key
        && let Ok(previous) = crate::formats::wbxml::decode(&state.last_response)
    {
        return Ok(previous);
    }
    if presented != state.sync_key {
        return Ok(answer(&key, status::INVALID_SYNC_KEY));
    }

    // The device's own changes first.
    let options = req.child("Options");
    let pref = BodyPreference::from_options(options);
    let folder = Folder {
        eas,
        cx,
        view,
        collection: &collection,
        reader: &reader,
        ical,
        drafts,
        pref: &pref,
        client_wins: options
            .and_then(|o| o.child_value("Conflict"))
            .is_some_and(|c| c.trim() == "0"),
        deletes_as_moves: req
            .child_value("DeletesAsMoves")
            .is_none_or(|v| v.trim() != "0"),
    };
    let mut responses = Vec::new();
    for cmd in req
        .child("Commands")
        .into_iter()
        .flat_map(Element::elements)
    {
        let sid = cmd.child_value("ServerId").unwrap_or_default();
        let response = match cmd.name {
            "Change" => folder.change(&mut state, cmd, &sid).await?,
            "Delete" => folder.delete(&mut state, cmd, &sid).await?,
            "Fetch" => Some(folder.fetch(&sid)?),
            "Add" => Some(folder.add(&mut state, cmd).await?),
            _ => None,
        };
        responses.extend(response);
    }

    // Then what changed on the server since the device was last told.
    let get_changes = req
        .child("GetChanges")
        .is_none_or(|g| g.value().trim() != "0");
    let reader = eas.store().reader(Actor::Principal(principal))?;
    let changes = match reader.changes_since(coll, state.acked_modseq) {
        Ok(c) => c,
        // The log no longer reaches back that far: the device starts this folder over.
        Err(StoreError::TooOld) => return Ok(answer(&key, status::INVALID_SYNC_KEY)),
        Err(e) => return Err(e),
    };
    let window = req
        .child_value("WindowSize")
        .and_then(|w| w.trim().parse::<usize>().ok())
        .or(overall_window)
        .unwrap_or(DEFAULT_WINDOW)
        .clamp(1, MAX_WINDOW);
    let now = bureau_store::now();
    let since = filter_since(
        options
            .and_then(|o| o.child_value("FilterType"))
            .as_deref()
            .map(str::trim),
        now,
    );
    let (commands, more) = if get_changes {
        folder.server_changes(&mut state, &reader, &changes, window, since)?
    } else {
        (Vec::new(), false)
    };
    let next = presented + 1;
    let out = answered(next, &id_text, commands, more, responses);
    state.last_key = presented;
    state.sync_key = next;
    state.last_response =
        crate::formats::wbxml::encode(&out).map_err(|e| StoreError::Invalid(e.to_string()))?;
    save(state).await?;
    Ok(out)
}

/// A folder's answer: its next key, the server's commands, MoreAvailable while more wait,
/// and the responses to the device's own commands.
fn answered(
    next: u64,
    id_text: &str,
    commands: Vec<Element>,
    more: bool,
    responses: Vec<Element>,
) -> Element {
    let mut out = Element::new(page::AIRSYNC, "Collection")
        .with_text("SyncKey", next.to_string())
        .with_text("CollectionId", id_text)
        .with_text("Status", status::SUCCESS);
    if !commands.is_empty() {
        let mut c = Element::new(page::AIRSYNC, "Commands");
        for x in commands {
            c = c.with(x);
        }
        out = out.with(c);
    }
    if more {
        out = out.with(Element::new(page::AIRSYNC, "MoreAvailable"));
    }
    if !responses.is_empty() {
        let mut r = Element::new(page::AIRSYNC, "Responses");
        for x in responses {
            r = r.with(x);
        }
        out = out.with(r);
    }
    out
}

/// An item as its class's ApplicationData; None when the class cannot show it.
fn application_data(
    kind: CollectionKind,
    item: &Item,
    raw: &[u8],
    pref: &BodyPreference,
    view: &View,
) -> Option<Element> {
    let text = || String::from_utf8_lossy(raw);
    match kind {
        CollectionKind::AddressBook => Some(contacts::application_data(&text())),
        CollectionKind::Calendar => calendar::event_data(&text(), view, pref),
        CollectionKind::TaskList => tasks::task_data(&text(), view, pref),
        CollectionKind::Notes => crate::classes::notes::note_data(&text(), view, pref),
        _ => Some(email::application_data(item, raw, pref, view)),
    }
}

fn empty_data() -> Element {
    Element::new(page::AIRSYNC, "ApplicationData")
}

/// The iCalendar component a collection's ActiveSync class stands for.
fn component_of(kind: CollectionKind) -> &'static str {
    match kind {
        CollectionKind::TaskList => "VTODO",
        CollectionKind::Notes => "VJOURNAL",
        _ => "VEVENT",
    }
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// A stored calendar object's text, item and DAV name.
fn ical_text(
    eas: &ActiveSync,
    principal: u64,
    coll: u64,
    item: ItemId,
) -> Result<(Item, String, String), StoreError> {
    let r = eas.store().reader(Actor::Principal(principal))?;
    let it = r.item(coll, item)?;
    let text = String::from_utf8_lossy(&r.content(&it)?).into_owned();
    let name = it.name.clone().ok_or(StoreError::NotFound)?;
    Ok((it, text, name))
}

/// The device wrote a draft: flagged \Draft, and read and flagged as it says.
async fn add_draft(
    eas: &ActiveSync,
    cx: &Context,
    coll: u64,
    data: &Element,
) -> Result<Item, StoreError> {
    let msg = email::draft(&cx.user, data, None)
        .ok_or_else(|| StoreError::Invalid("the draft does not make a message".into()))?;
    let staged = eas.stage(msg, true).await?;
    let blob = staged.blob_ref();
    let mut flags = vec!["\\Draft".to_string()];
    if data.child_value("Read").is_none_or(|r| r.trim() == "1") {
        flags.push("\\Seen".into());
    }
    if data
        .child("Flag")
        .and_then(|f| f.child_value("Status"))
        .is_some_and(|st| st.trim() == "2")
    {
        flags.push("\\Flagged".into());
    }
    eas.store()
        .write(
            Actor::Principal(cx.user.principal),
            vec![staged],
            move |w| {
                w.put_item(
                    coll,
                    bureau_store::NewItem {
                        blob: Some(blob),
                        flags: flags.clone(),
                        ..Default::default()
                    },
                )
            },
        )
        .await
}

/// The device changed a draft: the message made again with what it sent and what it left.
async fn change_draft(
    eas: &ActiveSync,
    cx: &Context,
    coll: u64,
    item: ItemId,
    data: &Element,
) -> Result<u64, StoreError> {
    replace_content(eas, cx.user.principal, coll, item, true, |old| {
        email::draft(&cx.user, data, Some(old))
            .ok_or_else(|| StoreError::Invalid("the draft does not make a message".into()))
    })
    .await
}

/// An item's content (a mail `message` or not) replaced by what `edit` makes of it. Gives
/// the new modseq.
async fn replace_content(
    eas: &ActiveSync,
    principal: u64,
    coll: u64,
    item: ItemId,
    message: bool,
    edit: impl FnOnce(&[u8]) -> Result<Vec<u8>, StoreError>,
) -> Result<u64, StoreError> {
    let r = eas.store().reader(Actor::Principal(principal))?;
    let new = edit(&r.content(&r.item(coll, item)?)?)?;
    let staged = eas.stage(new, message).await?;
    let blob = staged.blob_ref();
    eas.store()
        .write(Actor::Principal(principal), vec![staged], move |w| {
            w.update_item(coll, item, None, |it| it.blob = Some(blob))
                .map(|i| i.modseq)
        })
        .await
}

/// Sends a draft as SendMail would, files it in Sent, and takes it out of Drafts.
async fn send_draft(
    eas: &ActiveSync,
    cx: &Context,
    coll: u64,
    item: ItemId,
) -> Result<(), StoreError> {
    let principal = cx.user.principal;
    let r = eas.store().reader(Actor::Principal(principal))?;
    let msg = r.content(&r.item(coll, item)?)?;
    let queue = eas
        .queue
        .as_ref()
        .ok_or_else(|| StoreError::Invalid("mail is turned off on this box".into()))?;
    queue
        .send_as(&cx.user, &msg, "activesync", cx.ip)
        .await
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    crate::commands::mail::save_in_sent(eas, principal, msg).await?;
    eas.store()
        .write(Actor::Principal(principal), vec![], move |w| {
            w.delete_item(coll, item)
        })
        .await
}

/// The device changed an event (or one occurrence), a task or a note: the stored object
/// edited in place and written as CalDAV writes it. Gives the new modseq.
#[allow(clippy::too_many_arguments)]
async fn change_ical(
    eas: &ActiveSync,
    cx: &Context,
    view: &View,
    coll: &Collection,
    item: ItemId,
    data: &Element,
    instance: Option<NaiveDateTime>,
    supported: Option<&[String]>,
) -> Result<u64, StoreError> {
    let (it, text, name) = ical_text(eas, cx.user.principal, coll.id, item)?;
    let edited = match coll.kind {
        CollectionKind::Calendar => {
            calendar::change_event(&text, data, instance, supported, view, now())
        }
        k => tasks::change(component_of(k), &text, data, view, now()),
    }?;
    eas.sched()
        .put_object(&cx.user, coll, &name, Some(it.modseq), edited)
        .await
        .map(|i| i.modseq)
}

/// The device deleted an item, or from 16.0 one occurrence of an event (then the new
/// modseq of the event is given).
async fn delete_ical(
    eas: &ActiveSync,
    cx: &Context,
    view: &View,
    coll: &Collection,
    item: ItemId,
    instance: Option<NaiveDateTime>,
) -> Result<Option<u64>, StoreError> {
    let sched = eas.sched();
    let Some(at) = instance.filter(|_| coll.kind == CollectionKind::Calendar) else {
        sched.delete_object(&cx.user, coll, item).await?;
        return Ok(None);
    };
    let (it, text, name) = ical_text(eas, cx.user.principal, coll.id, item)?;
    let edited = calendar::delete_instance(&text, at, view, now())?;
    sched
        .put_object(&cx.user, coll, &name, Some(it.modseq), edited)
        .await
        .map(|i| Some(i.modseq))
}

/// The device made an event, a task or a note: a new object, as CalDAV clients see it.
/// A new event's time zone becomes the device's own.
async fn add_ical(
    eas: &ActiveSync,
    cx: &Context,
    view: &View,
    coll: &Collection,
    data: &Element,
) -> Result<Item, StoreError> {
    let uid = calendar::usable_uid(data.child_value("UID"))
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let text = match coll.kind {
        CollectionKind::Calendar => calendar::new_event(data, &uid, view, now()),
        k => tasks::new(component_of(k), data, &uid, view, now()),
    }?;
    let item = eas
        .sched()
        .put_object(&cx.user, coll, &calendar::object_name(&uid), None, text)
        .await?;
    if let Some(tz) = data.child_value("Timezone").map(|t| t.trim().to_string())
        && bureau_groupware::tzi::Tzi::from_base64(&tz).is_some()
        && cx.device.info.get(crate::DEVICE_TIMEZONE) != Some(&tz)
    {
        let mut d = cx.device.clone();
        d.info.insert(crate::DEVICE_TIMEZONE.into(), tz);
        eas.save_device(cx.user.principal, &d).await?;
    }
    Ok(item)
}

/// The device read or flagged a message: its flags in the store. Gives the new modseq.
async fn change_mail(
    eas: &ActiveSync,
    principal: u64,
    coll: u64,
    item: ItemId,
    data: &Element,
) -> Result<u64, StoreError> {
    let read = data.child_value("Read");
    let flag = data
        .child("Flag")
        .map(|f| f.child_value("Status").unwrap_or_default());
    eas.store()
        .write(Actor::Principal(principal), vec![], move |w| {
            w.update_item(coll, item, None, |it| {
                let mut set = |flag: &str, on: bool| {
                    it.flags.retain(|f| f != flag);
                    if on {
                        it.flags.push(flag.to_string());
                    }
                };
                if let Some(r) = &read {
                    set("\\Seen", r.trim() == "1");
                }
                if let Some(f) = &flag {
                    set("\\Flagged", f.trim() == "2");
                }
            })
            .map(|i| i.modseq)
        })
        .await
}

/// A card's text, checked by the rules a CardDAV PUT follows (issue 19).
fn checked_card(card: String) -> Result<String, StoreError> {
    match bureau_groupware::object::check_card(&card) {
        Ok(()) => Ok(card),
        Err(why) => Err(StoreError::Invalid(format!(
            "the contact does not make a vCard: {why}"
        ))),
    }
}

/// The device changed a contact: its card, merged (what the device never saw is kept).
async fn change_contact(
    eas: &ActiveSync,
    principal: u64,
    coll: u64,
    item: ItemId,
    data: &Element,
    supported: Option<&[String]>,
) -> Result<u64, StoreError> {
    replace_content(eas, principal, coll, item, false, |old| {
        let card = String::from_utf8_lossy(old);
        checked_card(contacts::merge(&card, data, supported)).map(String::into_bytes)
    })
    .await
}

/// The device made a contact: a new card, as CardDAV clients see it. Gives its id and
/// modseq.
async fn add_contact(
    eas: &ActiveSync,
    principal: u64,
    coll: u64,
    data: &Element,
) -> Result<(ItemId, u64), StoreError> {
    let uid = format!("{:032x}", rand::random::<u128>());
    let card = checked_card(contacts::new_card(data, &format!("urn:uuid:{uid}")))?;
    let staged = eas.stage(card.into_bytes(), false).await?;
    let blob = staged.blob_ref();
    eas.store()
        .write(Actor::Principal(principal), vec![staged], move |w| {
            let mut props = std::collections::BTreeMap::new();
            props.insert(
                bureau_store::prop::UID.to_string(),
                format!("urn:uuid:{uid}"),
            );
            w.put_item(
                coll,
                bureau_store::NewItem {
                    name: Some(format!("{uid}.vcf")),
                    blob: Some(blob),
                    props,
                    ..Default::default()
                },
            )
            .map(|i| (i.id, i.modseq))
        })
        .await
}

fn reply(verb: &'static str, server_id: &str, status: &str) -> Element {
    Element::new(page::AIRSYNC, verb)
        .with_text("ServerId", server_id)
        .with_text("Status", status)
}

#[cfg(test)]
mod tests {
    #[test]
    fn contacts_are_checked_by_carddav_rules() {
        let card =
            |uid: &str| format!("BEGIN:VCARD\r\nVERSION:4.0\r\n{uid}FN:Ann\r\nEND:VCARD\r\n");
        assert!(super::checked_card(card("UID:urn:uuid:1\r\n")).is_ok());
        // calcard reads each of these; CardDAV refuses them, and so does ActiveSync.
        assert!(super::checked_card(card("")).is_err(), "no UID");
        let two = card("UID:urn:uuid:1\r\n") + &card("UID:urn:uuid:2\r\n");
        assert!(super::checked_card(two).is_err(), "two cards");
        let cut = card("UID:urn:uuid:1\r\n").replace("END:VCARD\r\n", "");
        assert!(super::checked_card(cut).is_err(), "cut off");
    }
}
