//! The Files datastore's side of datastore.rs (which calls these, and makes their answers
//! its own): a device's file and folder objects written into the user's home folder, and
//! the folder's changes read for it (files.rs keeps the manifest). Everything in the home
//! folder is reached through `bureau_core::beneath`, never through a link a share's user
//! left.

/// What a device's Add, Replace or Move comes to.
pub enum Prepared {
    Done(u16),
    Put(Put),
}

/// A file or folder to write at `path`; `replaces` the path it had (a rename or move);
/// `data` None for a folder, or for a Move (the contents stay).
pub struct Put {
    pub path: String,
    pub data: Option<Vec<u8>>,
    pub dir: bool,
    pub replaces: Option<String>,
}

/// A change of the folder the device is sent.
pub enum Sent {
    Add(ItemId, usize),
    Replace(String, ItemId, usize),
    Delete(String),
}

/// The folder a device's item names as its own: the device's id for it, or its GUID.
pub enum Parent {
    Device(String),
    Server(String),
}

use crate::files::{self, Folder, Manifest, join, split};
use crate::message::status;
use crate::modes::Sends;
use bureau_core::beneath;
use bureau_store::{ItemId, ModSeq, Store, StoreError, SyncState};
use std::collections::{BTreeMap, BTreeSet};

/// The folder a device's item goes in: "" the top; Err, its status when the folder it
/// names is none the device synced.
fn parent_path(m: &Manifest, state: &SyncState, parent: Option<&Parent>) -> Result<String, u16> {
    let id = match parent {
        None => return Ok(String::new()),
        Some(Parent::Device(luid)) => state.id_map.get(luid).copied(),
        Some(Parent::Server(guid)) => guid.parse().ok(),
    };
    match id.and_then(|id| m.path_of(id)) {
        Some((path, true)) => Ok(path.to_string()),
        _ => Err(status::NOT_FOUND),
    }
}

/// A device's Add or Replace of a file or folder: written (under its new name or folder,
/// if it renamed or moved it), or matched with the same one in a slow sync. `stores`: the
/// sync stores the device's changes.
pub fn prepare(
    (store, folder): (&Store, &Folder),
    (state, matched): (&mut SyncState, &mut BTreeSet<ItemId>),
    stores: bool,
    (luid, content_type, data, parent): (&str, Option<&str>, &str, Option<&Parent>),
    known: Option<ItemId>,
) -> Result<Prepared, StoreError> {
    let dir = folder.nested && files::is_folder(content_type, data);
    let object = if dir {
        files::read_folder(data).map(|name| (name, None))
    } else {
        files::from_object(data).map(|(name, data)| (name, Some(data)))
    };
    let Some((name, data)) = object else {
        log::info!(
            "syncml: a device's file refused: not a file or folder object with a plain name"
        );
        return Ok(Prepared::Done(status::BAD_REQUEST));
    };
    let m = folder.manifest(store)?;
    let held = known
        .and_then(|id| m.path_of(id))
        .map(|(p, _)| split(p).0.to_string());
    let under = match (parent.filter(|_| folder.nested), held) {
        // What names no folder stays in its own, or (new) goes at the top.
        (None, held) => held.unwrap_or_default(),
        (parent, _) => match parent_path(&m, state, parent) {
            Ok(p) => p,
            Err(code) => return Ok(Prepared::Done(code)),
        },
    };
    let path = join(&under, &name);
    let found = known
        .and_then(|id| Some((id, m.path_of(id)?.0.to_string())))
        .or_else(|| Some((m.id_of(&path)?, path.clone())));
    if let Some((id, old)) = &found {
        let same = *old == path && (dir || read(&folder.home, old).is_ok_and(|d| Some(d) == data));
        if !stores || same {
            matched.insert(*id);
            state.id_map.insert(luid.to_string(), *id);
            return Ok(Prepared::Done(status::OK));
        }
    } else if !stores {
        return Ok(Prepared::Done(status::OK));
    }
    Ok(Prepared::Put(Put {
        replaces: found.map(|(_, old)| old),
        path,
        data,
        dir,
    }))
}

/// A device's Move of a file or folder it holds to another folder.
pub fn prepare_move(
    (store, folder): (&Store, &Folder),
    state: &SyncState,
    parent: Option<&Parent>,
    known: Option<ItemId>,
) -> Result<Prepared, StoreError> {
    let m = folder.manifest(store)?;
    let Some((old, dir)) = known.and_then(|id| m.path_of(id)) else {
        return Ok(Prepared::Done(status::NOT_FOUND));
    };
    let under = match parent_path(&m, state, parent) {
        Ok(p) => p,
        Err(code) => return Ok(Prepared::Done(code)),
    };
    let path = join(&under, split(old).1);
    if path == old {
        return Ok(Prepared::Done(status::OK));
    }
    if under.starts_with(&format!("{old}/")) || under == old {
        // Into itself.
        return Ok(Prepared::Done(status::NOT_ALLOWED));
    }
    Ok(Prepared::Put(Put {
        replaces: Some(old.to_string()),
        path,
        data: None,
        dir,
    }))
}

/// A file's contents by its path, not through a link.
fn read(home: &std::path::Path, path: &str) -> std::io::Result<Vec<u8>> {
    let (under, name) = split(path);
    beneath::read_at(&beneath::open_dir(home, under)?, name)
}

/// Writes a file or folder: its id, version, and whether it is new.
pub async fn write(
    store: &Store,
    folder: &Folder,
    put: &Put,
) -> Result<(ItemId, u64, bool), StoreError> {
    let (under, name) = split(&put.path);
    let home = &folder.home;
    let at = beneath::open_dir(home, under).map_err(io)?;
    if let Some(old) = put.replaces.as_ref().filter(|o| **o != put.path) {
        let (old_under, old_name) = split(old);
        let from = beneath::open_dir(home, old_under).map_err(io)?;
        beneath::rename_at(&from, old_name, &at, name).map_err(io)?;
        folder.record_rename(store, old, &put.path).await?;
    }
    let stat = match (&put.data, put.dir) {
        (Some(data), false) => {
            let (size, mtime) = beneath::replace_at(&at, name, data, &folder.group).map_err(io)?;
            (false, size, mtime)
        }
        // A folder, kept as it is if there (a folder's time is not its version).
        (_, true) => {
            if beneath::stat_at(&at, name).is_err() {
                beneath::mkdir_at(&at, name, &folder.group).map_err(io)?;
            }
            (true, 0, 0)
        }
        (None, false) => {
            let (_, size, mtime) = beneath::stat_at(&at, name).map_err(io)?;
            (false, size, mtime)
        }
    };
    let (id, v) = folder.record(store, &put.path, Some(stat)).await?;
    Ok((id, v, put.replaces.is_none()))
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(format!("the user's home folder: {e}"))
}

/// Removes a file, or a folder with what it holds, the device deleted.
pub async fn remove(store: &Store, folder: &Folder, id: ItemId) -> Result<(), StoreError> {
    let m = folder.manifest(store)?;
    let (path, _) = m.path_of(id).ok_or(StoreError::NotFound)?;
    let (under, name) = split(path);
    match beneath::open_dir(&folder.home, under).and_then(|d| beneath::remove_at(&d, name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    folder.record(store, path, None).await?;
    Ok(())
}

/// A file or folder as the device gets it; None if it is gone.
pub fn outgoing(files: Option<&(Folder, std::sync::Arc<Manifest>)>, id: ItemId) -> Option<String> {
    let (folder, m) = files?;
    let (path, dir) = m.path_of(id)?;
    let (under, name) = split(path);
    if dir {
        return Some(files::folder_object(name, None));
    }
    let at = beneath::open_dir(&folder.home, under).ok()?;
    let data = beneath::read_at(&at, name).ok()?;
    let (_, _, mtime) = beneath::stat_at(&at, name).ok()?;
    Some(files::to_object(name, &data, mtime))
}

/// The folder's changes for the device, and the version they were read at.
pub fn changes_for(
    store: &Store,
    folder: &Folder,
    sends: Sends,
    (state, matched): (&SyncState, &BTreeSet<ItemId>),
) -> Result<(Vec<Sent>, ModSeq), StoreError> {
    let m = folder.manifest(store)?;
    let luid_of: BTreeMap<ItemId, &String> = state.id_map.iter().map(|(l, id)| (*id, l)).collect();
    let sent = |id: ItemId| {
        let size = m.size_of(id) as usize;
        match luid_of.get(&id) {
            Some(l) => Sent::Replace((*l).clone(), id, size),
            None => Sent::Add(id, size),
        }
    };
    let mut out = Vec::new();
    match sends {
        Sends::Nothing => {}
        Sends::Everything => {
            out.extend(
                m.ids(folder.nested)
                    .into_iter()
                    .filter(|id| !matched.contains(id))
                    .map(sent),
            );
        }
        Sends::Changes => {
            let (changed, gone) = m.since(state.acked_modseq, folder.nested);
            for (id, version) in changed {
                if state.own_changes.get(&id) != Some(&version) {
                    out.push(sent(id));
                }
            }
            for id in gone {
                if let Some(l) = luid_of.get(&id) {
                    out.push(Sent::Delete((*l).clone()));
                }
            }
        }
    }
    Ok((out, m.counter))
}

/// A refresh from the device: the files it did not send go, and the folders it did not
/// send once nothing is left in them.
pub async fn drop_unmatched(
    store: &Store,
    folder: &Folder,
    matched: &BTreeSet<ItemId>,
) -> Result<(), StoreError> {
    let m = folder.manifest(store)?;
    let mut unmatched: Vec<(String, bool)> = m
        .ids(folder.nested)
        .into_iter()
        .filter(|id| !matched.contains(id))
        .filter_map(|id| m.path_of(id).map(|(p, d)| (p.to_string(), d)))
        .collect();
    // What a folder holds before the folder.
    unmatched.reverse();
    for (path, dir) in unmatched {
        let (under, name) = split(&path);
        let Ok(at) = beneath::open_dir(&folder.home, under) else {
            continue;
        };
        let removed = if dir {
            beneath::rmdir_at(&at, name).unwrap_or(false)
        } else {
            beneath::remove_at(&at, name).is_ok()
        };
        if removed {
            folder.record(store, &path, None).await?;
        }
    }
    Ok(())
}
