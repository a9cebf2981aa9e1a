//! The server's package 4: its changes to each datastore, as many as fit in a message,
//! items too large for one in parts.

use super::{Db, Session, tree};
use crate::datastore::{self, Out};
use crate::itemformat;
use crate::message::{Reply, el, metinf, text};
use bureau_store::{Actor, CollectionId, ItemId, Store, StoreError};
use bureau_wbxml::Element;
use std::collections::BTreeMap;

impl Session {
    /// The server's changes, as many as fit in this message. An item too large for a
    /// message goes in parts (the first with the whole Size, all but the last with
    /// MoreData) to a client that takes objects that large; to one that takes none split,
    /// whole.
    pub(super) fn send_changes(&mut self, store: &Store, r: &mut Reply) -> Result<(), StoreError> {
        let reader = store.reader(Actor::Principal(self.user.principal))?;
        let mut budget = self.max_msg.saturating_sub(2_000 + 200 * r.commands()) * 9 / 10;
        self.send_folders(r, &mut budget);
        let max_obj = self.max_obj;
        for db in &mut self.dbs {
            let content_type = db.content_type();
            // SIF goes base64-encoded, as Funambol's clients take it; to a device that
            // sent DES, in DES.
            let enc = match self.des {
                Some(key) if db.des => itemformat::Out::DesB64(key),
                _ if db.wire == datastore::Wire::Sif => itemformat::Out::B64,
                _ => itemformat::Out::Plain,
            };
            let format = enc.format();
            // The Files datastore's manifest, read once per message.
            let files = match &db.folder {
                Some(f) if db.outgoing.is_some() => Some((f.clone(), f.manifest(store)?)),
                _ => None,
            };
            let place = Place::of(db);
            let Some(out) = db.outgoing.as_mut() else {
                continue;
            };
            // A folder with nothing to send needs no Sync of its own: its datastore's went.
            if out.is_empty() && (db.sent_sync || db.tree) && db.chunk.is_none() {
                db.sent_sync = true;
                continue;
            }
            db.sent_sync = true;
            let mut sync = el("Sync")
                .with(el("Target").with(text("LocURI", db.client_uri.clone())))
                .with(el("Source").with(text("LocURI", db.server_uri.clone())));
            let mut first = true;
            loop {
                // The next part of an item in parts, else the next item.
                let (o, data, from) = match db.chunk.take() {
                    Some(c) => c,
                    None => match out.front() {
                        Some(next) if first || next.size() <= budget => {
                            let o = out.pop_front().expect("peeked");
                            let data = match o.item() {
                                Some(id) => {
                                    match datastore::outgoing(
                                        &reader,
                                        db.coll.id,
                                        db.kind,
                                        id,
                                        db.wire,
                                        &db.filter,
                                        files.as_ref(),
                                    )? {
                                        Some(d) => enc.encode(d),
                                        // Deleted since: its Delete comes next time.
                                        None => continue,
                                    }
                                }
                                None => String::new(),
                            };
                            (o, data, 0)
                        }
                        _ => break,
                    },
                };
                first = false;
                let (at, folder) = place.of_item(&o, files.as_ref());
                let content_type = if folder {
                    crate::files::FOLDER_TYPE
                } else {
                    content_type
                };
                let (len, size) = (data.len(), data.len() + 300);
                let whole = |o: &Out, data: &str| {
                    item_command(o, data, (content_type, format), None, at.clone())
                };
                if from == 0 && size <= budget {
                    budget -= size;
                    sync = sync.with(whole(&o, &data));
                    continue;
                }
                match max_obj {
                    Some(max) if len <= max => {}
                    // The client cannot take it: whole, if it takes nothing split.
                    None => {
                        budget = budget.saturating_sub(size);
                        sync = sync.with(whole(&o, &data));
                        continue;
                    }
                    Some(max) => {
                        log::info!("syncml: an item of {len} bytes is over the device's {max}");
                        continue;
                    }
                }
                let end = char_floor(&data, from + budget.saturating_sub(400).max(1_000));
                sync = sync.with(item_command(
                    &o,
                    &data,
                    (content_type, format),
                    Some(from..end),
                    at.clone(),
                ));
                budget = 0;
                if end < len {
                    db.chunk = Some((o, data, end));
                }
                break;
            }
            r.push(sync);
            if budget == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// How a datastore's items name themselves and their folders to the device.
enum Place {
    Flat,
    /// A collection synced as a folder of its datastore (tree.rs).
    Tree(CollectionId, Element),
    /// Files synced as folders: the device's ids, by item.
    Files(BTreeMap<ItemId, String>),
}

impl Place {
    fn of(db: &Db) -> Place {
        if db.tree {
            Place::Tree(db.coll.id, tree::parent_ref(db))
        } else if db.folder.as_ref().is_some_and(|f| f.nested) {
            Place::Files(
                db.state
                    .id_map
                    .iter()
                    .map(|(l, id)| (*id, l.clone()))
                    .collect(),
            )
        } else {
            Place::Flat
        }
    }

    /// An item's GUID and the folder it names, if not as a flat datastore's; and whether
    /// it is a folder itself.
    fn of_item(
        &self,
        o: &Out,
        files: Option<&(crate::files::Folder, std::sync::Arc<crate::files::Manifest>)>,
    ) -> (Option<(String, Option<Element>)>, bool) {
        let Some(id) = o.item() else {
            return (None, false);
        };
        match (self, files) {
            (Place::Flat, _) | (Place::Files(_), None) => (None, false),
            (Place::Tree(coll, parent), _) => (
                Some((tree::item_guid(*coll, id), Some(parent.clone()))),
                false,
            ),
            (Place::Files(luids), Some((_, m))) => {
                let parent = m.parent_of(id).map(|p| match luids.get(&p) {
                    Some(luid) => el("TargetParent").with(text("LocURI", luid.clone())),
                    None => el("SourceParent").with(text("LocURI", p.to_string())),
                });
                let dir = m.path_of(id).is_some_and(|(_, dir)| dir);
                (Some((id.to_string(), parent)), dir)
            }
        }
    }
}

/// A server change as its command; `part`, the bytes of its data this message carries
/// when it goes in parts.
fn item_command(
    o: &Out,
    data: &str,
    (content_type, format): (&str, Option<&str>),
    part: Option<std::ops::Range<usize>>,
    at: Option<(String, Option<Element>)>,
) -> Element {
    let meta = || {
        let m = el("Meta").with(metinf("Type", content_type));
        match format {
            Some(f) => m.with(metinf("Format", f)),
            None => m,
        }
    };
    let typed = |name: &'static str, data: &str, loc: Vec<Element>| {
        let mut item = el("Item");
        for e in loc {
            item = item.with(e);
        }
        let data = match &part {
            Some(range) => {
                if range.start == 0 {
                    item = item.with(el("Meta").with(metinf("Size", data.len().to_string())));
                }
                item = item.with(text("Data", &data[range.clone()]));
                if range.end < data.len() {
                    item = item.with(el("MoreData"));
                }
                return el(name).with(meta()).with(item);
            }
            None => data,
        };
        el(name).with(meta()).with(item.with(text("Data", data)))
    };
    match o {
        // In a datastore of folders, an item's GUID may name its collection, and it names
        // its folder.
        Out::Add { id, .. } => {
            let (guid, parent) = at.unwrap_or_else(|| (id.to_string(), None));
            let source = el("Source").with(text("LocURI", guid));
            typed(
                "Add",
                data,
                [Some(source), parent].into_iter().flatten().collect(),
            )
        }
        Out::Replace { luid, .. } => {
            let target = el("Target").with(text("LocURI", luid.clone()));
            let parent = at.and_then(|(_, p)| p);
            typed(
                "Replace",
                data,
                [Some(target), parent].into_iter().flatten().collect(),
            )
        }
        Out::Delete { luid } => {
            el("Delete").with(el("Item").with(el("Target").with(text("LocURI", luid.clone()))))
        }
    }
}

/// The largest char boundary of `s` at or before `at`.
fn char_floor(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}
