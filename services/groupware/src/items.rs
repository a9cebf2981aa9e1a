//! A collection's item records, kept between requests.

use bureau_store::{Item, Reader, StoreError};

/// The records of recently read collections, by collection, at the modseq they reflect:
/// a PROPFIND or a query on a large calendar does not decode every item again, and a
/// changed one is brought up to date from the change log. At most `CACHED_COLLECTIONS`.
#[derive(Default)]
pub struct ItemsCache {
    map: std::sync::Mutex<std::collections::HashMap<u64, (u64, Items)>>,
}

/// A collection's items, ascending by id, shared.
pub type Items = std::sync::Arc<Vec<Item>>;

const CACHED_COLLECTIONS: usize = 64;

impl ItemsCache {
    /// The collection's items, ascending by id, as `r` sees them.
    pub fn items(&self, r: &Reader, coll: u64) -> Result<Items, StoreError> {
        let head = r.collection(coll)?.modseq;
        let old = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&coll)
            .cloned();
        let fresh = match old {
            Some((m, v)) if m == head => return Ok(v),
            Some((m, v)) if m < head => match r.changes_since(coll, m) {
                Ok(ch) => {
                    let mut items = (*v).clone();
                    let gone: std::collections::HashSet<u64> = ch.deleted.into_iter().collect();
                    items.retain(|i| !gone.contains(&i.id));
                    for i in ch.changed {
                        match items.binary_search_by_key(&i.id, |x| x.id) {
                            Ok(at) => items[at] = i,
                            Err(at) => items.insert(at, i),
                        }
                    }
                    items
                }
                Err(StoreError::TooOld) => r.items(coll)?,
                Err(e) => return Err(e),
            },
            _ => r.items(coll)?,
        };
        let fresh = std::sync::Arc::new(fresh);
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= CACHED_COLLECTIONS && !map.contains_key(&coll) {
            map.clear();
        }
        map.insert(coll, (head, fresh.clone()));
        Ok(fresh)
    }
}
