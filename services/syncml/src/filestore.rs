//! The Files datastore's side of datastore.rs (which calls these, and makes their answers
//! its own): a device's file objects written into the user's home folder, and the folder's
//! changes read for it (files.rs keeps the manifest).

/// What a device's Add or Replace of a file comes to.
pub enum Prepared {
    Done(u16),
    Put(Put),
}

/// A file to write, `replaces` the name it had.
pub struct Put {
    pub name: String,
    pub data: Vec<u8>,
    pub replaces: Option<String>,
}

/// A change of the folder the device is sent.
pub enum Sent {
    Add(ItemId, usize),
    Replace(String, ItemId, usize),
    Delete(String),
}

use crate::files::{self, Folder, Manifest};
use crate::message::status;
use crate::modes::Sends;
use bureau_store::{ItemId, ModSeq, Store, StoreError, SyncState};
use std::collections::{BTreeMap, BTreeSet};

/// A device's Add or Replace of a file: written (under its new name, if it renamed it),
/// or matched with the same file in a slow sync. `stores`: the sync stores the device's
/// changes.
pub fn prepare(
    (store, folder): (&Store, &Folder),
    (state, matched): (&mut SyncState, &mut BTreeSet<ItemId>),
    stores: bool,
    (luid, data): (&str, &str),
    known: Option<ItemId>,
) -> Result<Prepared, StoreError> {
    let Some((name, data)) = files::from_object(data) else {
        log::info!("syncml: a device's file refused: not a file object with a plain name");
        return Ok(Prepared::Done(status::BAD_REQUEST));
    };
    let m = folder.manifest(store)?;
    let found = known
        .and_then(|id| Some((id, m.name_of(id)?.to_string())))
        .or_else(|| Some((m.id_of(&name)?, name.clone())));
    if let Some((id, old)) = &found {
        let same = *old == name
            && bureau_core::homes::read_plain(&folder.home.join(old)).is_ok_and(|d| d == data);
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
        name,
        data,
    }))
}

/// Writes a file: its id, version, and whether it is new.
pub async fn write(
    store: &Store,
    folder: &Folder,
    put: &Put,
) -> Result<(ItemId, u64, bool), StoreError> {
    let stat = bureau_core::homes::replace(&folder.home, &put.name, &put.data, &folder.group)
        .and_then(|p| files::stat(&p))
        .map_err(io)?;
    if let Some(old) = put.replaces.as_ref().filter(|o| **o != put.name) {
        let _ = std::fs::remove_file(folder.home.join(old));
        folder.record(store, old, None).await?;
    }
    let (id, v) = folder.record(store, &put.name, Some(stat)).await?;
    Ok((id, v, put.replaces.is_none()))
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(format!("the user's home folder: {e}"))
}

/// Removes a file the device deleted.
pub async fn remove(store: &Store, folder: &Folder, id: ItemId) -> Result<(), StoreError> {
    let m = folder.manifest(store)?;
    let name = m.name_of(id).ok_or(StoreError::NotFound)?.to_string();
    match std::fs::remove_file(folder.home.join(&name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    folder.record(store, &name, None).await?;
    Ok(())
}

/// A file as the device gets it; None if it is gone.
pub fn outgoing(files: Option<&(Folder, Manifest)>, id: ItemId) -> Option<String> {
    let (folder, m) = files?;
    let name = m.name_of(id)?;
    let path = folder.home.join(name);
    let data = bureau_core::homes::read_plain(&path).ok()?;
    let (_, mtime) = files::stat(&path).ok()?;
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
                m.ids()
                    .into_iter()
                    .filter(|id| !matched.contains(id))
                    .map(sent),
            );
        }
        Sends::Changes => {
            let (changed, gone) = m.since(state.acked_modseq);
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

/// A refresh from the device: the files it did not send go.
pub async fn drop_unmatched(
    store: &Store,
    folder: &Folder,
    matched: &BTreeSet<ItemId>,
) -> Result<(), StoreError> {
    let m = folder.manifest(store)?;
    for id in m.ids().into_iter().filter(|id| !matched.contains(id)) {
        if let Some(name) = m.name_of(id) {
            let _ = std::fs::remove_file(folder.home.join(name));
            folder.record(store, name, None).await?;
        }
    }
    Ok(())
}
