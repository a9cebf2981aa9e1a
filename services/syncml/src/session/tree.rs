//! SyncML 1.2 hierarchical sync (OMA DS Protocol 1.2, hierarchical synchronization; the
//! folder object of OMA DS Folder Object 1.2): a datastore a device syncs as folders, each
//! folder one of the user's collections of the datastore's kind (for `Mail`, every
//! mailbox; for `Calendar`, every calendar).
//!
//! A device says it syncs a datastore so in its DevInf (`SupportHierarchicalSync`). Then
//! the one Alert of the datastore stands for one [`Db`] per collection, all under the
//! datastore's name, each with its own change log, ids and state; their GUIDs are
//! `<collection>:<item>` and a folder's its collection's id. Folders go to the device first
//! (a parent before its children), as folder objects; items name their folder as
//! `TargetParent` (the device's id, once it mapped it) or `SourceParent` (its GUID). What
//! the device sends is routed by the parent it names, or by the id it already has. A
//! device's folder makes, renames or deletes a collection (never INBOX nor the kind's
//! default collection); `Move` takes an item to another folder.

use super::{Db, Session, device_key};
use crate::datastore::Kind;
use crate::message::{self, Reply, el, status, text, text_at};
use crate::modes::Mode;
use bureau_core::homes::Homes;
use bureau_groupware::schedule::Scheduler;
use bureau_store::{
    Actor, Collection, CollectionId, CollectionKind, FolderSeen, ItemId, Store, StoreError,
    SyncState,
};
use bureau_wbxml::Element;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use crate::files::{FOLDER_TYPE, read_folder};

/// A datastore synced as folders.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Tree {
    pub server_uri: String,
    pub client_uri: String,
    pub kind: Kind,
    pub mode: Mode,
    /// Where what names no folder goes: the collection the datastore's name stands for
    /// alone (INBOX, the default calendar).
    pub root: CollectionId,
    pub got_sync: bool,
    pub sent_sync: bool,
    /// The server's folder changes, once the client's are all in.
    pub outgoing: Option<VecDeque<FolderOut>>,
    /// Collections the device deleted, or told deleted: their states go when the session
    /// ends.
    pub gone: Vec<CollectionId>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) enum FolderOut {
    Add(CollectionId),
    Replace(CollectionId),
    Delete(String),
}

/// What a GUID of a datastore of folders names.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Guid {
    Folder(CollectionId),
    Item(CollectionId, ItemId),
}

pub(super) fn item_guid(coll: CollectionId, id: ItemId) -> String {
    format!("{coll}:{id}")
}

pub(super) fn guid(s: &str) -> Option<Guid> {
    match s.split_once(':') {
        Some((c, i)) => Some(Guid::Item(c.parse().ok()?, i.parse().ok()?)),
        None => Some(Guid::Folder(s.parse().ok()?)),
    }
}

/// A collection's folder object: its name within its parent and, for a mailbox of a use
/// the object names, its role.
fn folder_object(leaf: &str, c: &Collection) -> String {
    let special = c
        .props
        .get(bureau_store::prop::SPECIAL_USE)
        .map(String::as_str);
    let role = match (c.kind, c.name.as_str(), special) {
        (CollectionKind::Mailbox, crate::kind::INBOX, _) => Some("inbox"),
        (CollectionKind::Mailbox, _, Some("\\Sent")) => Some("sent"),
        (CollectionKind::Mailbox, _, Some("\\Drafts")) => Some("draft"),
        (CollectionKind::Mailbox, _, Some("\\Trash")) => Some("trash"),
        _ => None,
    };
    crate::files::folder_object(leaf, role)
}

/// A mailbox's parent's name and its own name within it ("Work/2026": "Work", "2026").
fn split(kind: Kind, name: &str) -> (Option<&str>, &str) {
    match name.rsplit_once('/') {
        Some((parent, leaf)) if kind == Kind::Mail => (Some(parent), leaf),
        _ => (None, name),
    }
}

/// The collections a datastore of folders holds.
pub(super) fn members(mine: &[Collection], kind: Kind) -> Vec<Collection> {
    let mut of_kind: Vec<Collection> = crate::datastore::of_kind(mine, kind).cloned().collect();
    // A parent before its children.
    of_kind.sort_by(|a, b| a.name.cmp(&b.name));
    of_kind
}

/// The sync states of a datastore's folders: each member's, where it was a folder of this
/// datastore (another datastore's state, or none, is a new one); and whether the anchors
/// agree (every folder the device held saw the anchor `last`).
pub(super) fn states(
    saved: &[(CollectionId, SyncState)],
    members: &[Collection],
    datastore: &str,
    last: &str,
) -> (Vec<SyncState>, bool) {
    let of_tree = |s: &SyncState| s.folder.as_ref().is_some_and(|f| f.datastore == datastore);
    let held: Vec<&SyncState> = saved
        .iter()
        .map(|(_, s)| s)
        .filter(|s| of_tree(s))
        .collect();
    let agree = !held.is_empty()
        && held
            .iter()
            .all(|s| !s.anchor_last.is_empty() && s.anchor_last == last);
    let states = members
        .iter()
        .map(|c| {
            saved
                .iter()
                .find(|(id, s)| *id == c.id && of_tree(s))
                .map(|(_, s)| s.clone())
                .unwrap_or_default()
        })
        .collect();
    (states, agree)
}

impl Session {
    fn tree_dbs(&self, t: usize) -> impl Iterator<Item = &Db> {
        let uri = &self.trees[t].server_uri;
        self.dbs
            .iter()
            .filter(move |d| d.tree && &d.server_uri == uri)
    }

    /// The folder the device knows by `luid`.
    fn folder_of_device(&self, t: usize, luid: &str) -> Option<&Db> {
        self.tree_dbs(t)
            .find(|d| d.state.folder.as_ref().is_some_and(|f| f.luid == luid))
    }

    fn tree_db_mut(&mut self, coll: CollectionId) -> Option<&mut Db> {
        self.dbs.iter_mut().find(|d| d.tree && d.coll.id == coll)
    }

    /// The folder an item or folder names as its parent: None when it names none; 404 when
    /// the device's folder or the GUID is none of this datastore's.
    fn parent_of(&self, t: usize, item: &Element) -> Result<Option<CollectionId>, u16> {
        if let Some(luid) = text_at(item, &["SourceParent", "LocURI"]) {
            return match self.folder_of_device(t, &luid) {
                Some(d) => Ok(Some(d.coll.id)),
                None => Err(status::NOT_FOUND),
            };
        }
        if let Some(g) = text_at(item, &["TargetParent", "LocURI"]) {
            return match guid(&g) {
                Some(Guid::Folder(c)) if self.tree_dbs(t).any(|d| d.coll.id == c) => Ok(Some(c)),
                _ => Err(status::NOT_FOUND),
            };
        }
        Ok(None)
    }

    /// The folder a device's item goes to: the one holding it, else the one it names.
    fn route(&self, t: usize, verb: &str, luid: &str, item: &Element) -> Result<CollectionId, u16> {
        if let Some(d) = self.tree_dbs(t).find(|d| d.state.id_map.contains_key(luid)) {
            return Ok(d.coll.id);
        }
        let named = text_at(item, &["Target", "LocURI"]).and_then(|g| guid(&g));
        if let Some(Guid::Item(c, _)) = named
            && self.tree_dbs(t).any(|d| d.coll.id == c)
        {
            return Ok(c);
        }
        if verb == "Delete" {
            // Answered "not deleted" (211) by the root's datastore.
            return Ok(self.trees[t].root);
        }
        Ok(self.parent_of(t, item)?.unwrap_or(self.trees[t].root))
    }

    /// The client's changes to a datastore of folders: folders and moves at once, the
    /// items then by folder.
    pub(super) async fn sync_tree<'e>(
        &mut self,
        cx: (&Store, &Scheduler, Option<&Homes>),
        t: usize,
        items: &[(&'e Element, &'e Element)],
        msg: &str,
        r: &mut Reply,
    ) -> Result<(), StoreError> {
        self.trees[t].got_sync = true;
        let uri = self.trees[t].server_uri.clone();
        for d in self
            .dbs
            .iter_mut()
            .filter(|d| d.tree && d.server_uri == uri)
        {
            d.got_sync = true;
        }
        let mut groups: Vec<(CollectionId, Vec<(&Element, &Element)>)> = Vec::new();
        for &(c, item) in items {
            let luid = text_at(item, &["Source", "LocURI"])
                .or_else(|| text_at(item, &["Target", "LocURI"]))
                .unwrap_or_default();
            let ct = message::meta(item, "Type").or_else(|| message::meta(c, "Type"));
            let is_folder = ct.is_some_and(|ct| ct.eq_ignore_ascii_case(FOLDER_TYPE))
                || (c.name == "Move" && self.folder_of_device(t, &luid).is_some());
            // A folder, a move or a refusal is answered now; an item goes with its folder's.
            let routed = if luid.is_empty() || luid.len() > 256 {
                Err(status::BAD_REQUEST)
            } else if (is_folder || c.name == "Move") && !self.trees[t].mode.takes_changes() {
                Err(status::NOT_ALLOWED)
            } else if is_folder {
                Err(self.folder_change(cx.0, t, c.name, &luid, item).await?)
            } else if c.name == "Move" {
                Err(self.move_item(cx.0, t, &luid, item).await?)
            } else {
                self.route(t, c.name, &luid, item)
            };
            match routed {
                Ok(coll) => match groups.iter_mut().find(|(g, _)| *g == coll) {
                    Some((_, g)) => g.push((c, item)),
                    None => groups.push((coll, vec![(c, item)])),
                },
                Err(code) => super::answer_item(r, msg, (c, item), code),
            }
        }
        for (coll, items) in groups {
            self.take_items(cx, coll, &items, msg, r).await?;
        }
        Ok(())
    }

    /// A device's folder: added (a collection made, or one of that name taken as it),
    /// renamed, moved (a mailbox: renamed under its new parent), or deleted.
    async fn folder_change(
        &mut self,
        store: &Store,
        t: usize,
        verb: &str,
        luid: &str,
        item: &Element,
    ) -> Result<u16, StoreError> {
        let (kind, root) = (self.trees[t].kind, self.trees[t].root);
        let datastore = crate::devinf::datastore_name(&self.trees[t].server_uri);
        let known = self
            .folder_of_device(t, luid)
            .map(|d| (d.coll.id, d.coll.name.clone()));
        let actor = Actor::Principal(self.user.principal);
        if verb == "Delete" {
            let Some((coll, _)) = known else {
                return Ok(status::NOT_DELETED);
            };
            if coll == root {
                return Ok(status::NOT_ALLOWED);
            }
            store
                .write(actor, vec![], move |w| w.delete_collection(coll))
                .await?;
            self.dbs.retain(|d| !(d.tree && d.coll.id == coll));
            self.trees[t].gone.push(coll);
            return Ok(status::OK);
        }
        // A Move keeps the folder's name and changes its parent.
        let leaf = match (verb, &known) {
            ("Move", Some((_, old))) => split(kind, old).1.to_string(),
            ("Move", None) => return Ok(status::NOT_FOUND),
            ("Add" | "Replace", _) => {
                match item.child_value("Data").and_then(|d| read_folder(&d)) {
                    Some(leaf) => leaf,
                    None => return Ok(status::BAD_REQUEST),
                }
            }
            _ => return Ok(status::NOT_SUPPORTED),
        };
        let named = match self.parent_of(t, item) {
            Ok(p) => p,
            Err(code) => return Ok(code),
        };
        // A folder that names no parent stays in its own (a rename), or, new, goes at the top.
        let parent = match named {
            Some(c) => self
                .tree_dbs(t)
                .find(|d| d.coll.id == c)
                .map(|d| d.coll.name.clone()),
            None => known
                .as_ref()
                .and_then(|(_, old)| split(kind, old).0.map(str::to_string)),
        };
        let name = match (kind, parent) {
            (Kind::Mail, Some(p)) => format!("{p}/{leaf}"),
            (Kind::Mail, None) if leaf.eq_ignore_ascii_case(crate::kind::INBOX) => {
                crate::kind::INBOX.to_string()
            }
            (_, None) => leaf,
            // Calendars and address books hold no folders.
            (_, Some(_)) => return Ok(status::NOT_SUPPORTED),
        };
        let seen = |name: &str| FolderSeen {
            luid: luid.to_string(),
            datastore: datastore.clone(),
            name: name.to_string(),
        };
        if let Some((coll, old)) = known {
            if old == name {
                return Ok(status::OK);
            }
            // Not INBOX nor the datastore's own, nor into itself.
            if coll == root || name.starts_with(&format!("{old}/")) {
                return Ok(status::NOT_ALLOWED);
            }
            return self.rename(store, t, coll, &old, seen(&name)).await;
        }
        // A folder the server has by that name (a slow sync's match) is taken as it.
        let same = self
            .tree_dbs(t)
            .find(|d| d.coll.name == name)
            .map(|d| d.coll.id);
        if let Some(coll) = same {
            self.tree_db_mut(coll).expect("found above").state.folder = Some(seen(&name));
            return Ok(status::OK);
        }
        let (owner, made_as, to) = (self.user.principal, kind.collections().0[0], name.clone());
        let made = store
            .write(actor, vec![], move |w| {
                w.create_collection(owner, made_as, &to)
            })
            .await;
        let c = match made {
            Ok(c) => c,
            Err(StoreError::Exists(_)) => return Ok(status::ALREADY_EXISTS),
            Err(StoreError::Invalid(_)) => return Ok(status::BAD_REQUEST),
            Err(e) => return Err(e),
        };
        // As the datastore's other folders: anchors, formats, filter.
        let tree = &self.trees[t];
        let mut db = Db::new(&tree.server_uri, &tree.client_uri, kind, c, tree.mode);
        if let Some(r) = self.tree_dbs(t).find(|d| d.coll.id == root) {
            (db.client_next, db.server_next) = (r.client_next.clone(), r.server_next.clone());
            (db.wire, db.filter, db.des) = (r.wire, r.filter.clone(), r.des);
        }
        db.state.folder = Some(seen(&name));
        (db.tree, db.got_sync) = (true, true);
        self.dbs.push(db);
        Ok(status::ADDED)
    }

    /// A folder renamed at the device's word, with the mailboxes inside it (as IMAP's
    /// RENAME): the device has them under it already.
    async fn rename(
        &mut self,
        store: &Store,
        t: usize,
        coll: CollectionId,
        old: &str,
        seen: FolderSeen,
    ) -> Result<u16, StoreError> {
        let inside = format!("{old}/");
        let mut renames = vec![(coll, seen.name.clone())];
        for d in self.tree_dbs(t) {
            if let Some(rest) = d.coll.name.strip_prefix(&inside) {
                renames.push((d.coll.id, format!("{}/{rest}", seen.name)));
            }
        }
        let renamed = store
            .write(Actor::Principal(self.user.principal), vec![], move |w| {
                renames
                    .iter()
                    .map(|(c, to)| w.rename_collection(*c, to))
                    .collect::<Result<Vec<Collection>, StoreError>>()
            })
            .await;
        let renamed = match renamed {
            Ok(r) => r,
            Err(StoreError::Exists(_)) => return Ok(status::ALREADY_EXISTS),
            Err(e) => return Err(e),
        };
        for c in renamed {
            let Some(d) = self.tree_db_mut(c.id) else {
                continue;
            };
            if let Some(f) = d.state.folder.as_mut().filter(|f| f.name == d.coll.name) {
                f.name = c.name.clone();
            }
            d.coll = c;
        }
        self.tree_db_mut(coll).expect("renamed").state.folder = Some(seen);
        Ok(status::OK)
    }

    /// A device's `Move` of an item to another folder: the item is moved in the store (a
    /// new id there, as IMAP's MOVE gives), and the device's id follows it.
    async fn move_item(
        &mut self,
        store: &Store,
        t: usize,
        luid: &str,
        item: &Element,
    ) -> Result<u16, StoreError> {
        let Some(from) = self
            .tree_dbs(t)
            .find(|d| d.state.id_map.contains_key(luid))
            .map(|d| (d.coll.id, d.state.id_map[luid]))
        else {
            return Ok(status::NOT_FOUND);
        };
        let to = match self.parent_of(t, item) {
            Ok(p) => p.unwrap_or(self.trees[t].root),
            Err(code) => return Ok(code),
        };
        if to == from.0 {
            return Ok(status::OK);
        }
        let ((coll, id), actor) = (from, Actor::Principal(self.user.principal));
        let moved = store
            .write(actor, vec![], move |w| {
                let copy = w.copy_item(coll, id, to)?;
                w.delete_item(coll, id)?;
                Ok::<_, StoreError>(copy)
            })
            .await?;
        self.tree_db_mut(coll)
            .expect("found above")
            .state
            .id_map
            .remove(luid);
        let state = &mut self.tree_db_mut(to).expect("a member").state;
        state.id_map.insert(luid.to_string(), moved.id);
        state.own_changes.insert(moved.id, moved.modseq);
        Ok(status::OK)
    }

    /// A device's id for a folder or an item of a datastore of folders.
    pub(super) fn map_tree(&mut self, t: usize, guid_text: &str, luid: &str) {
        let datastore = crate::devinf::datastore_name(&self.trees[t].server_uri);
        let uri = self.trees[t].server_uri.clone();
        let of =
            |c: CollectionId| move |d: &&mut Db| d.tree && d.server_uri == uri && d.coll.id == c;
        match guid(guid_text) {
            Some(Guid::Folder(c)) => {
                if let Some(d) = self.dbs.iter_mut().find(of(c)) {
                    let name = d.coll.name.clone();
                    d.state.folder = Some(FolderSeen {
                        luid: luid.to_string(),
                        datastore,
                        name,
                    });
                }
            }
            Some(Guid::Item(c, id)) => {
                if let Some(d) = self.dbs.iter_mut().find(of(c)) {
                    d.state.id_map.insert(luid.to_string(), id);
                }
            }
            None => {}
        }
    }

    /// The server's folder changes for each datastore of folders the device synced: the
    /// folders it does not hold, those renamed, and those deleted since.
    pub(super) fn folder_changes(&mut self, store: &Store) -> Result<(), StoreError> {
        let p = self.user.principal;
        let saved = store
            .reader(Actor::Principal(p))?
            .sync_states(p, &device_key(&self.device))?;
        for t in 0..self.trees.len() {
            let tree = &self.trees[t];
            if !tree.got_sync || tree.outgoing.is_some() {
                continue;
            }
            let mut out = VecDeque::new();
            if tree.mode.sends() != crate::modes::Sends::Nothing {
                let datastore = crate::devinf::datastore_name(&tree.server_uri);
                let mut members: Vec<&Db> = self.tree_dbs(t).collect();
                members.sort_by(|a, b| a.coll.name.cmp(&b.coll.name));
                for d in &members {
                    match &d.state.folder {
                        None => out.push_back(FolderOut::Add(d.coll.id)),
                        Some(f) if f.name != d.coll.name => {
                            out.push_back(FolderOut::Replace(d.coll.id))
                        }
                        Some(_) => {}
                    }
                }
                // (Not those the device itself deleted.)
                let gone = saved.iter().filter(|(c, s)| {
                    s.folder.as_ref().is_some_and(|f| f.datastore == datastore)
                        && !members.iter().any(|d| d.coll.id == *c)
                        && !tree.gone.contains(c)
                });
                let mut gone_ids = Vec::new();
                for (c, s) in gone {
                    out.push_back(FolderOut::Delete(s.folder.clone().expect("filtered").luid));
                    gone_ids.push(*c);
                }
                self.trees[t].gone.extend(gone_ids);
            }
            self.trees[t].outgoing = Some(out);
        }
        Ok(())
    }

    /// The folder changes still to go, each tree's in a Sync of its own ahead of its
    /// items (a folder before what it holds), as many as the message has room for.
    pub(super) fn send_folders(&mut self, r: &mut Reply, budget: &mut usize) {
        for t in 0..self.trees.len() {
            let tree = &self.trees[t];
            let Some(out) = &tree.outgoing else { continue };
            if tree.sent_sync && out.is_empty() {
                continue;
            }
            let mut sync = el("Sync")
                .with(el("Target").with(text("LocURI", tree.client_uri.clone())))
                .with(el("Source").with(text("LocURI", tree.server_uri.clone())));
            let mut commands = Vec::new();
            let mut out = self.trees[t].outgoing.take().expect("read above");
            while let Some(f) = out.front() {
                if *budget < 600 && !commands.is_empty() {
                    break;
                }
                *budget = budget.saturating_sub(600);
                // (A folder the device deleted meanwhile has nothing to go.)
                commands.extend(self.folder_command(t, f));
                if let FolderOut::Replace(c) = out.pop_front().expect("peeked") {
                    // The device has the new name once it has this.
                    let datastore = crate::devinf::datastore_name(&self.trees[t].server_uri);
                    if let Some(d) = self.tree_db_mut(c) {
                        let name = d.coll.name.clone();
                        if let Some(f) = d.state.folder.as_mut() {
                            (f.name, f.datastore) = (name, datastore);
                        }
                    }
                }
            }
            for c in commands {
                sync = sync.with(c);
            }
            self.trees[t].outgoing = Some(out);
            self.trees[t].sent_sync = true;
            r.push(sync);
        }
    }

    /// A folder change as its command.
    fn folder_command(&self, t: usize, f: &FolderOut) -> Option<Element> {
        let kind = self.trees[t].kind;
        let meta = || el("Meta").with(message::metinf("Type", FOLDER_TYPE));
        let db = |c: CollectionId| self.tree_dbs(t).find(|d| d.coll.id == c);
        match f {
            FolderOut::Add(c) | FolderOut::Replace(c) => {
                let d = db(*c)?;
                let (parent, leaf) = split(kind, &d.coll.name);
                let parent = parent.and_then(|p| self.tree_dbs(t).find(|d| d.coll.name == p));
                // Without its parent, a mailbox goes by its whole name.
                let leaf = if parent.is_some() { leaf } else { &d.coll.name };
                let data = text("Data", folder_object(leaf, &d.coll));
                let mut item = el("Item");
                let verb = if let FolderOut::Replace(_) = f {
                    let luid = d.state.folder.as_ref().map_or("", |f| &f.luid);
                    item = item.with(el("Target").with(text("LocURI", luid)));
                    "Replace"
                } else {
                    item = item.with(el("Source").with(text("LocURI", c.to_string())));
                    "Add"
                };
                if let Some(p) = parent {
                    item = item.with(parent_ref(p));
                }
                Some(el(verb).with(meta()).with(item.with(data)))
            }
            FolderOut::Delete(luid) => Some(
                el("Delete").with(el("Item").with(el("Target").with(text("LocURI", luid.clone())))),
            ),
        }
    }

    /// Whether a tree's folder changes are still to go.
    pub(super) fn folders_to_send(&self) -> bool {
        self.trees.iter().any(|t| {
            t.outgoing
                .as_ref()
                .is_some_and(|o| !t.sent_sync || !o.is_empty())
        })
    }
}

/// How a server's item or folder names its folder: the device's id once it mapped it, else
/// the folder's GUID.
pub(super) fn parent_ref(folder: &Db) -> Element {
    match &folder.state.folder {
        Some(f) => el("TargetParent").with(text("LocURI", f.luid.clone())),
        None => el("SourceParent").with(text("LocURI", folder.coll.id.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_and_folder_objects_read_back() {
        assert_eq!(guid("12"), Some(Guid::Folder(12)));
        assert_eq!(guid(&item_guid(12, 7)), Some(Guid::Item(12, 7)));
        assert_eq!(guid("x:1"), None);
        assert_eq!(guid(""), None);
        let mut sent = collection(2, "Sent");
        sent.props
            .insert(bureau_store::prop::SPECIAL_USE.into(), "\\Sent".into());
        let f = folder_object("Sent", &sent);
        assert_eq!(f, "<Folder><name>Sent</name><role>sent</role></Folder>");
        assert_eq!(read_folder(&f).as_deref(), Some("Sent"));
        let odd = folder_object("R&D <2026>", &collection(3, "Work/R&D <2026>"));
        assert_eq!(read_folder(&odd).as_deref(), Some("R&D <2026>"));
        assert!(!odd.contains("<role>"));
        for bad in [
            "<Folder><name>a/b</name></Folder>",
            "<Folder><name> </name></Folder>",
            "<File><name>a</name></File>",
            "<Folder><created>20260101T000000Z</created></Folder>",
        ] {
            assert_eq!(read_folder(bad), None, "{bad}");
        }
        assert_eq!(split(Kind::Mail, "Work/2026"), (Some("Work"), "2026"));
        assert_eq!(split(Kind::Events, "Work/2026"), (None, "Work/2026"));
    }

    fn collection(id: CollectionId, name: &str) -> Collection {
        Collection {
            id,
            owner: 1,
            kind: CollectionKind::Mailbox,
            name: name.into(),
            modseq: 1,
            log_floor: 0,
            next_item: 1,
            validity: 1,
            props: Default::default(),
            keywords: vec![],
        }
    }

    #[test]
    fn the_anchors_agree_only_over_the_folders_the_device_held() {
        let c = collection;
        let held = |ds: &str, anchor: &str| SyncState {
            anchor_last: anchor.into(),
            folder: Some(FolderSeen {
                luid: "f".into(),
                datastore: ds.into(),
                name: "x".into(),
            }),
            ..Default::default()
        };
        let members = [c(1, "INBOX"), c(2, "Sent"), c(3, "New")];
        let saved = vec![
            (1, held("mail", "a1")),
            (2, held("mail", "a1")),
            // Another datastore's state of the same collection is not this one's.
            (
                3,
                SyncState {
                    anchor_last: "a1".into(),
                    ..Default::default()
                },
            ),
            // A folder since deleted counts.
            (9, held("mail", "a1")),
        ];
        let (kept, agree) = states(&saved, &members, "mail", "a1");
        assert!(agree);
        assert!(kept[0].folder.is_some() && kept[2] == SyncState::default());
        assert!(!states(&saved, &members, "mail", "a0").1);
        assert!(!states(&saved, &members, "calendar", "a1").1);
        assert!(!states(&[], &members, "mail", "").1);
    }
}
