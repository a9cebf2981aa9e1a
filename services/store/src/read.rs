//! Reads from one consistent snapshot, with the actor's rights checked on every call.

use crate::access::{access_of, own_or_system, require};
use crate::blob::{BlobDir, INLINE_MAX};
use crate::model::*;
use crate::tables::*;
use crate::{Result, StoreError};
use redb::{ReadTransaction, ReadableTable};
use std::sync::{Arc, Mutex};

pub struct Reader {
    tx: ReadTransaction,
    actor: Actor,
    blobs: Arc<BlobDir>,
    /// The last collection whose access was checked, with the answer: the snapshot does
    /// not change, and a FETCH of 1,000 messages checks one collection 2,000 times.
    checked: Mutex<Option<(CollectionId, Option<Access>)>>,
}

fn collect<T>(it: impl Iterator<Item = Result<T>>) -> Result<Vec<T>> {
    it.collect()
}

impl Reader {
    pub(crate) fn new(tx: ReadTransaction, actor: Actor, blobs: Arc<BlobDir>) -> Reader {
        Reader {
            tx,
            actor,
            blobs,
            checked: Mutex::new(None),
        }
    }

    pub fn actor(&self) -> Actor {
        self.actor
    }

    // ---- principals ----

    pub fn principal(&self, id: PrincipalId) -> Result<Principal> {
        let t = self.tx.open_table(PRINCIPALS)?;
        let v = t.get(id)?.ok_or(StoreError::NotFound)?;
        dec(v.value())
    }

    pub fn principal_by_name(&self, name: &str) -> Result<Principal> {
        let id = self
            .tx
            .open_table(PRINCIPAL_NAMES)?
            .get(name)?
            .ok_or(StoreError::NotFound)?
            .value();
        self.principal(id)
    }

    /// The groups `p` is a member of.
    pub fn groups_of(&self, p: PrincipalId) -> Result<Vec<PrincipalId>> {
        let t = self.tx.open_table(MEMBER_OF)?;
        collect(
            t.range((p, 0)..=(p, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value().1).map_err(Into::into)),
        )
    }

    /// Bytes held by the collections `p` owns.
    pub fn usage(&self, p: PrincipalId) -> Result<u64> {
        Ok(self.tx.open_table(USAGE)?.get(p)?.map_or(0, |v| v.value()))
    }

    // ---- collections ----

    fn load_collection(&self, id: CollectionId) -> Result<Collection> {
        let t = self.tx.open_table(COLLECTIONS)?;
        let v = t.get(id)?.ok_or(StoreError::NotFound)?;
        dec(v.value())
    }

    /// The actor's access to a collection, `None` if it has none (or it does not exist).
    pub fn access(&self, id: CollectionId) -> Result<Option<Access>> {
        let c = match self.load_collection(id) {
            Err(StoreError::NotFound) => return Ok(None),
            r => r?,
        };
        self.access_to(&c)
    }

    /// The actor's access to a loaded collection.
    fn access_to(&self, c: &Collection) -> Result<Option<Access>> {
        access_of(
            &self.tx.open_table(GRANTS)?,
            &self.tx.open_table(MEMBER_OF)?,
            self.actor,
            c,
        )
    }

    /// A collection, if the actor has at least `need` on it.
    fn collection_with(&self, id: CollectionId, need: Access) -> Result<Collection> {
        let c = self.load_collection(id)?;
        require(self.access_to(&c)?, need)?;
        Ok(c)
    }

    /// Whether the actor may read a collection's items.
    fn readable(&self, id: CollectionId) -> Result<()> {
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        let access = match *checked {
            Some((c, a)) if c == id => a,
            _ => {
                let a = match self.load_collection(id) {
                    Err(StoreError::NotFound) => None,
                    c => self.access_to(&c?)?,
                };
                *checked = Some((id, a));
                a
            }
        };
        require(access, Access::Read).map(drop)
    }

    pub fn collection(&self, id: CollectionId) -> Result<Collection> {
        self.collection_with(id, Access::Read)
    }

    pub fn collection_by_name(&self, owner: PrincipalId, name: &str) -> Result<Collection> {
        let id = self
            .tx
            .open_table(COLLECTION_NAMES)?
            .get((owner, name))?
            .ok_or(StoreError::NotFound)?
            .value();
        self.collection(id)
    }

    /// Collections `owner` owns that the actor may read, by name.
    pub fn collections_of(&self, owner: PrincipalId) -> Result<Vec<Collection>> {
        let ids: Vec<u64> = {
            let t = self.tx.open_table(COLLECTION_NAMES)?;
            let mut out = Vec::new();
            for e in t.range((owner, "")..)? {
                let (k, v) = e?;
                if k.value().0 != owner {
                    break;
                }
                out.push(v.value());
            }
            out
        };
        let mut out = Vec::new();
        for id in ids {
            match self.collection(id) {
                Ok(c) => out.push(c),
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Collections of others shared with the actor, directly or through its groups.
    pub fn shared_with_me(&self) -> Result<Vec<(Collection, Access)>> {
        let Actor::Principal(p) = self.actor else {
            return Ok(Vec::new());
        };
        let mut grantees = self.groups_of(p)?;
        grantees.push(p);
        let t = self.tx.open_table(GRANTS_BY_GRANTEE)?;
        let mut ids = Vec::new();
        for g in grantees {
            for e in t.range((g, 0)..=(g, u64::MAX))? {
                ids.push(e?.0.value().1);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::new();
        for id in ids {
            let c = self.load_collection(id)?;
            if c.owner == p {
                continue;
            }
            if let Some(a) = self.access(id)? {
                out.push((c, a));
            }
        }
        Ok(out)
    }

    /// Grants on a collection; the owner (or the system) may list them.
    pub fn grants(&self, id: CollectionId) -> Result<Vec<(PrincipalId, Right)>> {
        self.collection_with(id, Access::Owner)?;
        let t = self.tx.open_table(GRANTS)?;
        collect(t.range((id, 0)..=(id, u64::MAX))?.filter_map(|e| match e {
            Ok((k, v)) => Right::from_u8(v.value()).map(|r| Ok((k.value().1, r))),
            Err(e) => Some(Err(e.into())),
        }))
    }

    // ---- items ----

    /// Every item of a collection, by id.
    pub fn items(&self, coll: CollectionId) -> Result<Vec<Item>> {
        self.readable(coll)?;
        let t = self.tx.open_table(ITEMS)?;
        collect(t.range((coll, 0)..=(coll, u64::MAX))?.map(|e| {
            e.map_err(StoreError::from)
                .and_then(|(_, v)| dec(v.value()))
        }))
    }

    /// The ids of a collection's items, in order, without reading their records.
    pub fn item_ids(&self, coll: CollectionId) -> Result<Vec<ItemId>> {
        self.readable(coll)?;
        let t = self.tx.open_table(ITEMS)?;
        collect(
            t.range((coll, 0)..=(coll, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value().1).map_err(StoreError::from)),
        )
    }

    /// A collection's item ids as runs (first id, how many consecutive ids), ascending:
    /// its ids without reading every key.
    pub fn id_runs(&self, coll: CollectionId) -> Result<Vec<(ItemId, u64)>> {
        self.readable(coll)?;
        let t = self.tx.open_table(ID_RUNS)?;
        collect(t.range((coll, 0)..=(coll, u64::MAX))?.map(|e| {
            e.map(|(k, v)| (k.value().1, v.value()))
                .map_err(StoreError::from)
        }))
    }

    /// A mailbox's first message the owner has not seen (no `\\Seen`).
    pub fn first_unseen(&self, coll: CollectionId) -> Result<Option<ItemId>> {
        self.readable(coll)?;
        let t = self.tx.open_table(UNSEEN)?;
        t.range((coll, 0)..=(coll, u64::MAX))?
            .next()
            .transpose()
            .map(|e| e.map(|(k, _)| k.value().1))
            .map_err(StoreError::from)
    }

    /// A mailbox's messages the owner has not seen (no `\\Seen`), in order.
    pub fn unseen(&self, coll: CollectionId) -> Result<Vec<ItemId>> {
        self.listed(UNSEEN, coll)
    }

    /// The items a (collection, item) list of the mailbox index holds for `coll`, in order.
    fn listed(
        &self,
        list: redb::TableDefinition<(u64, u64), ()>,
        coll: CollectionId,
    ) -> Result<Vec<ItemId>> {
        self.readable(coll)?;
        let t = self.tx.open_table(list)?;
        collect(
            t.range((coll, 0)..=(coll, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value().1).map_err(StoreError::from)),
        )
    }

    /// The messages of a mailbox that may match a search the term index can narrow (a
    /// superset, ascending, for the caller to check), or `None` when it cannot (`terms.rs`).
    pub fn term_candidates(
        &self,
        coll: CollectionId,
        search: &crate::terms::Narrow,
    ) -> Result<Option<Vec<ItemId>>> {
        self.readable(coll)?;
        search.candidates(&self.tx, coll)
    }

    /// A mailbox's messages flagged \\Deleted, in order.
    pub fn deleted(&self, coll: CollectionId) -> Result<Vec<ItemId>> {
        self.listed(DELETED, coll)
    }

    /// Messages waiting for their terms, as (mailbox, item) (system only).
    pub fn unindexed(&self) -> Result<Vec<(CollectionId, ItemId)>> {
        if self.actor != Actor::System {
            return Err(StoreError::Forbidden);
        }
        let mut out = Vec::new();
        for e in self.tx.open_table(UNINDEXED)?.iter()? {
            let (k, s) = e?;
            if s.value() == crate::terms::state::WAITING {
                out.push(k.value());
            }
        }
        Ok(out)
    }

    /// The items of a collection whose `uid` prop is `uid` (one, but for objects stored
    /// before the one-UID rule was checked).
    pub fn items_with_uid(&self, coll: CollectionId, uid: &str) -> Result<Vec<Item>> {
        self.readable(coll)?;
        let ids: Vec<ItemId> = {
            let t = self.tx.open_table(UIDS)?;
            collect(
                t.range((coll, uid, 0)..=(coll, uid, u64::MAX))?
                    .map(|e| e.map(|(k, _)| k.value().2).map_err(StoreError::from)),
            )?
        };
        ids.into_iter().map(|id| self.item(coll, id)).collect()
    }

    pub fn item(&self, coll: CollectionId, id: ItemId) -> Result<Item> {
        self.readable(coll)?;
        let t = self.tx.open_table(ITEMS)?;
        let v = t.get((coll, id))?.ok_or(StoreError::NotFound)?;
        dec(v.value())
    }

    pub fn item_by_name(&self, coll: CollectionId, name: &str) -> Result<Item> {
        self.readable(coll)?;
        let id = self
            .tx
            .open_table(ITEM_NAMES)?
            .get((coll, name))?
            .ok_or(StoreError::NotFound)?
            .value();
        self.item(coll, id)
    }

    /// The item's content.
    pub fn content(&self, item: &Item) -> Result<Vec<u8>> {
        self.readable(item.collection)?;
        match &item.blob {
            None => Ok(Vec::new()),
            Some(b) if b.size <= INLINE_MAX => Ok(self
                .tx
                .open_table(BLOB_DATA)?
                .get(&b.hash)?
                .ok_or_else(|| StoreError::Corrupt(format!("blob {} missing", b.hex())))?
                .value()
                .to_vec()),
            Some(b) => self.blobs.read(b).map_err(StoreError::from),
        }
    }

    /// What was derived from the item's content under `field` (`Store::stage`,
    /// `Writer::set_derived`), if it was.
    pub fn derived(&self, item: &Item, field: &str) -> Result<Option<Vec<u8>>> {
        self.readable(item.collection)?;
        let Some(b) = &item.blob else {
            return Ok(None);
        };
        let t = self.tx.open_table(BLOB_DERIVED)?;
        Ok(t.get((&b.hash, field))?.map(|v| v.value().to_vec()))
    }

    /// Items changed and deleted after `since`, from the change log.
    pub fn changes_since(&self, coll: CollectionId, since: ModSeq) -> Result<Changes> {
        let c = self.collection(coll)?;
        if since < c.log_floor {
            return Err(StoreError::TooOld);
        }
        let log = self.tx.open_table(CHANGELOG)?;
        let items = self.tx.open_table(ITEMS)?;
        let names = self.tx.open_table(TOMBSTONE_NAMES)?;
        let mut out = Changes {
            modseq: c.modseq,
            ..Default::default()
        };
        for e in log.range((coll, since.saturating_add(1))..=(coll, u64::MAX))? {
            let (_, v) = e?;
            let (id, deleted) = v.value();
            if deleted {
                out.deleted.push(id);
                if let Some(n) = names.get((coll, id))? {
                    out.deleted_names.insert(id, n.value().to_string());
                }
            } else {
                let v = items
                    .get((coll, id))?
                    .ok_or_else(|| StoreError::Corrupt(format!("log names missing item {id}")))?;
                out.changed.push(dec(v.value())?);
            }
        }
        Ok(out)
    }

    // ---- records of other services (system only) ----

    pub fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>> {
        if self.actor != Actor::System {
            return Err(StoreError::Forbidden);
        }
        Ok(self
            .tx
            .open_table(KV)?
            .get((ns, key))?
            .map(|v| v.value().to_vec()))
    }

    /// Every (key, value) of a namespace, by key.
    pub fn kv_list(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>> {
        if self.actor != Actor::System {
            return Err(StoreError::Forbidden);
        }
        let t = self.tx.open_table(KV)?;
        let mut out = Vec::new();
        for e in t.range((ns, "")..)? {
            let (k, v) = e?;
            let (n, key) = k.value();
            if n != ns {
                break;
            }
            out.push((key.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    // ---- devices and sync state ----

    pub fn devices(&self, principal: PrincipalId) -> Result<Vec<Device>> {
        own_or_system(self.actor, principal)?;
        let t = self.tx.open_table(DEVICES)?;
        let mut out = Vec::new();
        for e in t.range((principal, "")..)? {
            let (k, v) = e?;
            if k.value().0 != principal {
                break;
            }
            out.push(dec(v.value())?);
        }
        Ok(out)
    }

    pub fn device(&self, principal: PrincipalId, id: &str) -> Result<Option<Device>> {
        own_or_system(self.actor, principal)?;
        let t = self.tx.open_table(DEVICES)?;
        t.get((principal, id))?.map(|v| dec(v.value())).transpose()
    }

    pub fn sync_state(
        &self,
        principal: PrincipalId,
        device: &str,
        coll: CollectionId,
    ) -> Result<Option<SyncState>> {
        own_or_system(self.actor, principal)?;
        let t = self.tx.open_table(SYNC_STATES)?;
        t.get((principal, device, coll))?
            .map(|v| dec(v.value()))
            .transpose()
    }

    /// Every sync state a device has, by collection (those of collections since deleted
    /// too).
    pub fn sync_states(
        &self,
        principal: PrincipalId,
        device: &str,
    ) -> Result<Vec<(CollectionId, SyncState)>> {
        own_or_system(self.actor, principal)?;
        let t = self.tx.open_table(SYNC_STATES)?;
        t.range((principal, device, 0)..=(principal, device, u64::MAX))?
            .map(|e| {
                let (k, v) = e?;
                Ok((k.value().2, dec(v.value())?))
            })
            .collect()
    }
}
