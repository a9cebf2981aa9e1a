//! FolderSync: the user's folders (mailboxes, calendars, address books, task lists, notes)
//! as the device's hierarchy, then only what changed since the key it presents.
//!
//! The hierarchy's state is the device's sync state of collection 0 (collection ids start
//! at 1): its `sync_key`, and in `last_response` the folder list the device was last given.
//! SyncKey 0 gives the whole hierarchy again under a new key, and touches no folder's own
//! sync state (Gmail for Android sends it on a manual refresh).

use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_store::{Actor, Collection, CollectionKind, StoreError, SyncState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The hierarchy's place in the sync-state table.
const HIERARCHY: u64 = 0;

/// FolderSync status codes (MS-ASCMD 2.2.3.177.5).
mod status {
    pub const SUCCESS: &str = "1";
    pub const INVALID_SYNC_KEY: &str = "9";
    pub const BAD_REQUEST: &str = "10";
}

/// Folder types (MS-ASCMD 2.2.3.186.3).
mod kind {
    pub const USER_GENERIC: u8 = 1;
    pub const TASKS: u8 = 7;
    pub const INBOX: u8 = 2;
    pub const DRAFTS: u8 = 3;
    pub const DELETED: u8 = 4;
    pub const SENT: u8 = 5;
    pub const CALENDAR: u8 = 8;
    pub const CONTACTS: u8 = 9;
    pub const NOTES: u8 = 10;
    pub const USER_MAIL: u8 = 12;
    pub const USER_CALENDAR: u8 = 13;
    pub const USER_CONTACTS: u8 = 14;
    pub const USER_TASKS: u8 = 15;
    pub const USER_NOTES: u8 = 17;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub id: String,
    pub parent: String,
    pub name: String,
    pub kind: u8,
}

/// A collection as a folder; None for what devices do not see (the schedule inbox).
fn folder(c: &Collection, by_name: &BTreeMap<&str, u64>) -> Option<Folder> {
    let special = c.special_use();
    let (kind, name, parent) = match c.kind {
        CollectionKind::Mailbox => {
            let (parent, leaf) = match c.name.rsplit_once('/') {
                Some((p, l)) => (by_name.get(p).map(|id| id.to_string()), l),
                None => (None, c.name.as_str()),
            };
            let kind = match (c.name.as_str(), special) {
                ("INBOX", _) => kind::INBOX,
                (_, Some("\\Drafts")) => kind::DRAFTS,
                (_, Some("\\Trash")) => kind::DELETED,
                (_, Some("\\Sent")) => kind::SENT,
                _ => kind::USER_MAIL,
            };
            let name = if c.name == "INBOX" { "Inbox" } else { leaf };
            (kind, name.to_string(), parent)
        }
        CollectionKind::ScheduleInbox => return None,
        other => {
            let (default, user, default_name) = match other {
                CollectionKind::Calendar => (kind::CALENDAR, kind::USER_CALENDAR, "calendar"),
                CollectionKind::AddressBook => (kind::CONTACTS, kind::USER_CONTACTS, "contacts"),
                CollectionKind::TaskList => (kind::TASKS, kind::USER_TASKS, "tasks"),
                CollectionKind::Notes => (kind::NOTES, kind::USER_NOTES, "notes"),
                _ => (kind::USER_GENERIC, kind::USER_GENERIC, ""),
            };
            let name = c.display_name().unwrap_or(&c.name).to_string();
            let kind = if c.name == default_name {
                default
            } else {
                user
            };
            (kind, name, None)
        }
    };
    Some(Folder {
        id: c.id.to_string(),
        parent: parent.unwrap_or_else(|| "0".into()),
        name,
        kind,
    })
}

/// The user's folders now, in the store's order.
pub fn hierarchy(eas: &ActiveSync, principal: u64) -> Result<Vec<Folder>, StoreError> {
    let colls = eas
        .store()
        .reader(Actor::Principal(principal))?
        .collections_of(principal)?;
    let by_name: BTreeMap<&str, u64> = colls
        .iter()
        .filter(|c| c.kind == CollectionKind::Mailbox)
        .map(|c| (c.name.as_str(), c.id))
        .collect();
    Ok(colls.iter().filter_map(|c| folder(c, &by_name)).collect())
}

fn entry(verb: &'static str, f: &Folder) -> Element {
    Element::new(page::FOLDER_HIERARCHY, verb)
        .with_text("ServerId", f.id.clone())
        .with_text("ParentId", f.parent.clone())
        .with_text("DisplayName", f.name.clone())
        .with_text("Type", f.kind.to_string())
}

pub async fn folder_sync(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let answer =
        |s: &str| Element::new(page::FOLDER_HIERARCHY, "FolderSync").with_text("Status", s);
    let Some(key) = doc
        .filter(|d| d.name == "FolderSync")
        .and_then(|d| d.child_value("SyncKey"))
        .and_then(|k| k.trim().parse::<u64>().ok())
    else {
        return Ok(document(&answer(status::BAD_REQUEST)));
    };
    let principal = cx.user.principal;
    let device = cx.device.id.clone();
    let mut state = eas
        .store()
        .reader(Actor::Principal(principal))?
        .sync_state(principal, &device, HIERARCHY)?
        .unwrap_or_default();
    let known: Vec<Folder> = if key == 0 {
        Vec::new()
    } else if key == state.sync_key {
        serde_json::from_slice(&state.last_response).unwrap_or_default()
    } else {
        return Ok(document(&answer(status::INVALID_SYNC_KEY)));
    };
    let now = hierarchy(eas, principal)?;
    let before: BTreeMap<&str, &Folder> = known.iter().map(|f| (f.id.as_str(), f)).collect();
    let after: BTreeMap<&str, &Folder> = now.iter().map(|f| (f.id.as_str(), f)).collect();
    let mut changes = Vec::new();
    for f in &now {
        match before.get(f.id.as_str()) {
            None => changes.push(entry("Add", f)),
            Some(old) if *old != f => changes.push(entry("Update", f)),
            Some(_) => {}
        }
    }
    for f in &known {
        if !after.contains_key(f.id.as_str()) {
            changes.push(
                Element::new(page::FOLDER_HIERARCHY, "Delete").with_text("ServerId", f.id.clone()),
            );
        }
    }
    let new_key = if changes.is_empty() && key != 0 {
        key
    } else {
        let next = state.sync_key + 1;
        state = SyncState {
            sync_key: next,
            last_key: key,
            last_response: serde_json::to_vec(&now)
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
            ..state
        };
        let saved = state.clone();
        eas.store()
            .write(Actor::Principal(principal), vec![], move |w| {
                w.put_sync_state(principal, &device, HIERARCHY, &saved)
            })
            .await?;
        next
    };
    let mut list = Element::new(page::FOLDER_HIERARCHY, "Changes")
        .with_text("Count", changes.len().to_string());
    for c in changes {
        list = list.with(c);
    }
    Ok(document(
        &answer(status::SUCCESS)
            .with_text("SyncKey", new_key.to_string())
            .with(list),
    ))
}

/// FolderCreate, FolderUpdate and FolderDelete (MS-ASCMD 2.2.1.3, 2.2.1.5, 2.2.1.4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Create,
    Update,
    Delete,
}

impl Edit {
    fn command(self) -> &'static str {
        match self {
            Edit::Create => "FolderCreate",
            Edit::Update => "FolderUpdate",
            Edit::Delete => "FolderDelete",
        }
    }
}

/// Status codes shared by the three (MS-ASCMD 2.2.3.177.2 to .4).
mod edit_status {
    pub const EXISTS: &str = "2";
    pub const SPECIAL: &str = "3";
    pub const NOT_FOUND: &str = "4";
    pub const NO_PARENT: &str = "5";
    pub const SERVER_ERROR: &str = "6";
    pub const BAD_REQUEST: &str = "10";
}

/// A folder the user may not rename or delete: INBOX, a special-use mailbox, the default
/// calendar, address book, task list and notes.
fn is_special(c: &Collection) -> bool {
    match c.kind {
        CollectionKind::Mailbox => c.name == "INBOX" || c.special_use().is_some(),
        CollectionKind::Calendar => c.name == "calendar",
        CollectionKind::AddressBook => c.name == "contacts",
        CollectionKind::TaskList => c.name == "tasks",
        CollectionKind::Notes => c.name == "notes",
        CollectionKind::ScheduleInbox => true,
    }
}

/// A display name a device may give: one mailbox level, printable, bounded.
fn good_name(n: &str) -> bool {
    let n = n.trim();
    !n.is_empty() && n.len() <= 255 && !n.contains('/') && !n.chars().any(char::is_control)
}

/// A folder of the user's by the id the device gave.
fn find<'a>(colls: &'a [Collection], id: &str) -> Option<&'a Collection> {
    let id = id.trim().parse::<u64>().ok()?;
    colls.iter().find(|c| c.id == id)
}

/// A mailbox's path for `name` under a parent folder ("0" is the top).
fn path_under(colls: &[Collection], parent: &str, name: &str) -> Result<String, &'static str> {
    if parent.trim() == "0" {
        return Ok(name.to_string());
    }
    match find(colls, parent) {
        Some(p) if p.kind == CollectionKind::Mailbox => Ok(format!("{}/{name}", p.name)),
        _ => Err(edit_status::NO_PARENT),
    }
}

/// FolderCreate: the new folder's id, or the status that refuses it.
async fn create_folder(
    eas: &ActiveSync,
    principal: u64,
    doc: &Element,
    colls: &[Collection],
    name: &str,
    parent: &str,
) -> Result<Result<u64, &'static str>, StoreError> {
    if !good_name(name) {
        return Ok(Err(edit_status::BAD_REQUEST));
    }
    let kind = match doc.child_value("Type").as_deref().map(str::trim) {
        Some("1" | "12") => CollectionKind::Mailbox,
        Some("13") => CollectionKind::Calendar,
        Some("14") => CollectionKind::AddressBook,
        Some("15") => CollectionKind::TaskList,
        Some("17") => CollectionKind::Notes,
        _ => return Ok(Err(edit_status::BAD_REQUEST)),
    };
    let (store_name, display) = if kind == CollectionKind::Mailbox {
        match path_under(colls, parent, name) {
            Ok(p) => (p, None),
            Err(s) => return Ok(Err(s)),
        }
    } else {
        if colls
            .iter()
            .any(|c| c.kind == kind && c.display_name().map(|d| d.trim()) == Some(name))
        {
            return Ok(Err(edit_status::EXISTS));
        }
        (
            format!("{:016x}", rand::random::<u64>()),
            Some(name.to_string()),
        )
    };
    let made = eas
        .store()
        .write(Actor::Principal(principal), vec![], move |w| {
            let c = w.create_collection(principal, kind, &store_name)?;
            if let Some(d) = &display {
                w.set_display_name(c.id, d)?;
            }
            Ok::<_, StoreError>(c.id)
        })
        .await;
    match made {
        Ok(id) => Ok(Ok(id)),
        Err(StoreError::Exists(_)) => Ok(Err(edit_status::EXISTS)),
        Err(StoreError::Invalid(_)) => Ok(Err(edit_status::BAD_REQUEST)),
        Err(e) => Err(e),
    }
}

/// FolderUpdate and FolderDelete: done, or the status that refuses it. A mailbox's
/// sub-mailboxes go with it.
async fn change_folder(
    eas: &ActiveSync,
    principal: u64,
    how: Edit,
    doc: &Element,
    colls: &[Collection],
    name: &str,
    parent: &str,
) -> Result<Result<(), &'static str>, StoreError> {
    let Some(c) = doc.child_value("ServerId").and_then(|id| find(colls, &id)) else {
        return Ok(Err(edit_status::NOT_FOUND));
    };
    if is_special(c) {
        return Ok(Err(edit_status::SPECIAL));
    }
    let prefix = format!("{}/", c.name);
    let below: Vec<(u64, String)> = colls
        .iter()
        .filter(|x| x.kind == CollectionKind::Mailbox && c.kind == CollectionKind::Mailbox)
        .filter_map(|x| Some((x.id, x.name.strip_prefix(&prefix)?.to_string())))
        .collect();
    let id = c.id;
    let actor = Actor::Principal(principal);
    let done = if how == Edit::Delete {
        eas.store()
            .write(actor, vec![], move |w| {
                for (sub, _) in &below {
                    w.delete_collection(*sub)?;
                }
                w.delete_collection(id)
            })
            .await
    } else if !good_name(name) {
        return Ok(Err(edit_status::BAD_REQUEST));
    } else if c.kind == CollectionKind::Mailbox {
        let to = match path_under(colls, parent, name) {
            Ok(p) => p,
            Err(s) => return Ok(Err(s)),
        };
        if to.starts_with(&prefix) {
            return Ok(Err(edit_status::NO_PARENT));
        }
        eas.store()
            .write(actor, vec![], move |w| {
                w.rename_collection(id, &to)?;
                for (sub, rest) in &below {
                    w.rename_collection(*sub, &format!("{to}/{rest}"))?;
                }
                Ok(())
            })
            .await
    } else {
        let n = name.to_string();
        eas.store()
            .write(actor, vec![], move |w| {
                w.set_display_name(id, &n).map(|_| ())
            })
            .await
    };
    match done {
        Ok(()) => Ok(Ok(())),
        Err(StoreError::Exists(_)) => Ok(Err(edit_status::EXISTS)),
        Err(StoreError::NotFound) => Ok(Err(edit_status::NOT_FOUND)),
        Err(StoreError::Forbidden) | Err(StoreError::Invalid(_)) => {
            Ok(Err(edit_status::SERVER_ERROR))
        }
        Err(e) => Err(e),
    }
}

pub async fn folder_edit(
    eas: &ActiveSync,
    cx: &Context,
    how: Edit,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let answer =
        |s: &str| Element::new(page::FOLDER_HIERARCHY, how.command()).with_text("Status", s);
    let Some(doc) = doc.filter(|d| d.name == how.command()) else {
        return Ok(document(&answer(edit_status::BAD_REQUEST)));
    };
    let Some(key) = doc
        .child_value("SyncKey")
        .and_then(|k| k.trim().parse::<u64>().ok())
    else {
        return Ok(document(&answer(edit_status::BAD_REQUEST)));
    };
    let principal = cx.user.principal;
    let device = cx.device.id.clone();
    let r = eas.store().reader(Actor::Principal(principal))?;
    let state = r
        .sync_state(principal, &device, HIERARCHY)?
        .unwrap_or_default();
    if key == 0 || key != state.sync_key {
        return Ok(document(&answer(status::INVALID_SYNC_KEY)));
    }
    let colls = r.collections_of(principal)?;
    let name = doc.child_value("DisplayName").unwrap_or_default();
    let name = name.trim().to_string();
    let parent = doc.child_value("ParentId").unwrap_or_else(|| "0".into());
    let done = match how {
        Edit::Create => create_folder(eas, principal, &doc, &colls, &name, &parent)
            .await?
            .map(|id| Some(id.to_string())),
        Edit::Update | Edit::Delete => {
            change_folder(eas, principal, how, &doc, &colls, &name, &parent)
                .await?
                .map(|()| None)
        }
    };
    let server_id = match done {
        Ok(id) => id,
        Err(refused) => return Ok(document(&answer(refused))),
    };
    // The device made this change itself: its hierarchy moves to a new key that already
    // holds it, so the next FolderSync does not tell it back.
    let now = hierarchy(eas, principal)?;
    let next = state.sync_key + 1;
    let saved = SyncState {
        sync_key: next,
        last_key: key,
        last_response: serde_json::to_vec(&now).map_err(|e| StoreError::Invalid(e.to_string()))?,
        ..state
    };
    eas.store()
        .write(Actor::Principal(principal), vec![], move |w| {
            w.put_sync_state(principal, &device, HIERARCHY, &saved)
        })
        .await?;
    let mut out = answer(status::SUCCESS).with_text("SyncKey", next.to_string());
    if let Some(id) = server_id {
        out = out.with_text("ServerId", id);
    }
    Ok(document(&out))
}
