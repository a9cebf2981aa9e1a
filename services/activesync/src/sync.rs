//! Sync (MS-ASCMD 2.2.1.21) for mail folders, from the store's change log.
//!
//! A folder's state on a device is its sync state in the store: `sync_key` is the key the
//! device presents next, `acked_modseq` how far in the change log it has been told,
//! `known` the items it holds. Presenting the key acknowledges the previous answer; the
//! previous key again is a retry and gets the same answer (`last_response`); key 0 starts
//! this folder over and no other. Changes come in modseq order, `WindowSize` at a time,
//! with MoreAvailable while more wait. The device's own changes (read, flag, delete, moved
//! to Trash when DeletesAsMoves) are applied and not sent back to it (`own_changes`).

use crate::email::{self, BodyPreference};
use crate::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_store::{Actor, CollectionKind, ItemId, StoreError, SyncState};

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

fn server_id(coll: u64, item: ItemId) -> String {
    format!("{coll}:{item}")
}

/// The item id a ServerId names in this collection.
fn item_of(coll: u64, server_id: &str) -> Option<ItemId> {
    let (c, i) = server_id.split_once(':')?;
    (c.parse::<u64>().ok()? == coll).then_some(())?;
    i.parse().ok()
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
    let mut out = Element::new(page::AIRSYNC, "Collections");
    for c in colls.children_named("Collection") {
        out = out.with(collection(eas, cx, c, window).await?);
    }
    Ok(document(&Element::new(page::AIRSYNC, "Sync").with(out)))
}

async fn collection(
    eas: &ActiveSync,
    cx: &Context,
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
    let Ok(coll) = id_text.trim().parse::<u64>() else {
        return Ok(answer(&key, status::FOLDER_HIERARCHY_CHANGED));
    };
    let reader = eas.store().reader(Actor::Principal(principal))?;
    let collection = match reader.collection(coll) {
        Ok(c) if c.owner == principal => c,
        Ok(_) | Err(StoreError::NotFound) | Err(StoreError::Forbidden) => {
            return Ok(answer(&key, status::FOLDER_HIERARCHY_CHANGED));
        }
        Err(e) => return Err(e),
    };
    if collection.kind != CollectionKind::Mailbox {
        // Calendars, contacts, tasks and notes are not synchronised over ActiveSync yet.
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
        save(SyncState {
            sync_key: 1,
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
        && let Ok(previous) = crate::wbxml::decode(&state.last_response)
    {
        return Ok(previous);
    }
    if presented != state.sync_key {
        return Ok(answer(&key, status::INVALID_SYNC_KEY));
    }

    // The device's own changes first.
    let deletes_as_moves = req
        .child_value("DeletesAsMoves")
        .is_none_or(|v| v.trim() != "0");
    let options = req.child("Options");
    let pref = BodyPreference::from_options(options);
    let mut responses = Vec::new();
    if let Some(commands) = req.child("Commands") {
        for cmd in commands.elements() {
            let sid = cmd.child_value("ServerId").unwrap_or_default();
            match cmd.name {
                "Change" => {
                    let Some(item) = item_of(coll, &sid) else {
                        responses.push(reply("Change", &sid, status::NOT_FOUND));
                        continue;
                    };
                    let data = cmd.child("ApplicationData");
                    let read = data.and_then(|d| d.child_value("Read"));
                    let flag = data
                        .and_then(|d| d.child("Flag"))
                        .map(|f| f.child_value("Status").unwrap_or_default());
                    let done = eas
                        .store()
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
                        })
                        .await;
                    match done {
                        Ok(changed) => {
                            state.own_changes.insert(item, changed.modseq);
                        }
                        Err(StoreError::NotFound) => {
                            responses.push(reply("Change", &sid, status::NOT_FOUND))
                        }
                        Err(e) => return Err(e),
                    }
                }
                "Delete" => {
                    let Some(item) = item_of(coll, &sid) else {
                        continue;
                    };
                    let trash = reader
                        .collections_of(principal)?
                        .into_iter()
                        .find(|c| c.props.get("special-use").map(String::as_str) == Some("\\Trash"))
                        .map(|c| c.id)
                        .filter(|t| *t != coll && deletes_as_moves);
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
                }
                "Fetch" => {
                    let found = item_of(coll, &sid).and_then(|i| reader.item(coll, i).ok());
                    match found {
                        Some(it) => {
                            let raw = reader.content(&it)?;
                            responses.push(
                                Element::new(page::AIRSYNC, "Fetch")
                                    .with_text("ServerId", sid.clone())
                                    .with_text("Status", status::SUCCESS)
                                    .with(email::application_data(&it, &raw, &pref)),
                            );
                        }
                        None => responses.push(reply("Fetch", &sid, status::NOT_FOUND)),
                    }
                }
                "Add" => {
                    // Mail is not made on the device (drafts come later): refused, kept nowhere.
                    let client = cmd.child_value("ClientId").unwrap_or_default();
                    responses.push(
                        Element::new(page::AIRSYNC, "Add")
                            .with_text("ClientId", client)
                            .with_text("Status", status::CONVERSION_ERROR),
                    );
                }
                _ => {}
            }
        }
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let since = filter_since(
        options
            .and_then(|o| o.child_value("FilterType"))
            .as_deref()
            .map(str::trim),
        now,
    );
    let mut commands = Vec::new();
    let mut acked = state.acked_modseq;
    let mut more = false;
    if get_changes {
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
            if !known && since.is_some_and(|s| it.date < s) {
                continue;
            }
            let raw = reader.content(it)?;
            let verb = if known { "Change" } else { "Add" };
            commands.push(
                Element::new(page::AIRSYNC, verb)
                    .with_text("ServerId", server_id(coll, it.id))
                    .with(email::application_data(it, &raw, &pref)),
            );
            state.known.insert(it.id);
            sent += 1;
        }
        if !more {
            acked = changes.modseq;
        }
    }
    let next = presented + 1;
    let mut out = Element::new(page::AIRSYNC, "Collection")
        .with_text("SyncKey", next.to_string())
        .with_text("CollectionId", id_text.clone())
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
    state.acked_modseq = acked;
    state.last_key = presented;
    state.sync_key = next;
    state.last_response =
        crate::wbxml::encode(&out).map_err(|e| StoreError::Invalid(e.to_string()))?;
    save(state).await?;
    Ok(out)
}

fn reply(verb: &'static str, server_id: &str, status: &str) -> Element {
    Element::new(page::AIRSYNC, verb)
        .with_text("ServerId", server_id)
        .with_text("Status", status)
}
