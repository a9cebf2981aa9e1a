//! Mutations, each checking the actor's rights before it changes anything.
//!
//! Every method validates first and writes last, so an error leaves the transaction as it
//! was; a method that fails after writing marks the writer dirty and the group commit rolls
//! the batch back and replays the others.

use crate::access::{access_of, own_or_system, require};
use crate::blob::{INLINE_MAX, StagedBlob};
use crate::model::*;
use crate::tables::*;
use crate::{Result, StoreError, now};
use redb::{ReadableTable, WriteTransaction};

pub struct Writer<'t> {
    tx: &'t WriteTransaction,
    actor: Actor,
    /// The blobs staged for this write: the only ones it may refer to for the first time.
    staged: &'t [StagedBlob],
    changes: Vec<Change>,
    freed: Vec<[u8; 32]>,
    dirty: bool,
}

/// What a write did, for the group commit.
pub(crate) struct Outcome {
    pub changes: Vec<Change>,
    /// Blob files no longer referred to once committed.
    pub freed: Vec<[u8; 32]>,
    /// Whether it changed the transaction.
    pub dirty: bool,
}

impl<'t> Writer<'t> {
    pub(crate) fn new(tx: &'t WriteTransaction, actor: Actor, staged: &'t [StagedBlob]) -> Self {
        Writer {
            tx,
            actor,
            staged,
            changes: Vec::new(),
            freed: Vec::new(),
            dirty: false,
        }
    }

    pub(crate) fn outcome(self) -> Outcome {
        Outcome {
            changes: self.changes,
            freed: self.freed,
            dirty: self.dirty,
        }
    }

    pub fn actor(&self) -> Actor {
        self.actor
    }

    fn system_only(&self) -> Result<()> {
        match self.actor {
            Actor::System => Ok(()),
            Actor::Principal(_) => Err(StoreError::Forbidden),
        }
    }

    fn next_id(&mut self, key: &str) -> Result<u64> {
        let mut meta = self.tx.open_table(META)?;
        let next = meta.get(key)?.map_or(1, |v| v.value());
        self.dirty = true;
        meta.insert(key, next + 1)?;
        Ok(next)
    }

    // ---- principals (the directory's business: system only) ----

    pub fn create_principal(
        &mut self,
        kind: PrincipalKind,
        name: &str,
        quota: Option<u64>,
    ) -> Result<Principal> {
        self.system_only()?;
        if self.tx.open_table(PRINCIPAL_NAMES)?.get(name)?.is_some() {
            return Err(StoreError::Exists(name.to_string()));
        }
        let id = self.next_id("next_principal")?;
        let p = Principal {
            id,
            kind,
            name: name.to_string(),
            members: Vec::new(),
            quota,
        };
        self.tx
            .open_table(PRINCIPALS)?
            .insert(id, enc(&p)?.as_slice())?;
        self.tx.open_table(PRINCIPAL_NAMES)?.insert(name, id)?;
        Ok(p)
    }

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

    pub fn set_quota(&mut self, id: PrincipalId, quota: Option<u64>) -> Result<()> {
        self.system_only()?;
        let mut p = self.principal(id)?;
        p.quota = quota;
        self.dirty = true;
        self.tx
            .open_table(PRINCIPALS)?
            .insert(id, enc(&p)?.as_slice())?;
        Ok(())
    }

    /// Replaces a group's members.
    pub fn set_members(&mut self, group: PrincipalId, members: &[PrincipalId]) -> Result<()> {
        self.system_only()?;
        let mut g = self.principal(group)?;
        if g.kind != PrincipalKind::Group {
            return Err(StoreError::Invalid(format!("{} is not a group", g.name)));
        }
        for m in members {
            self.principal(*m)?;
        }
        let mut member_of = self.tx.open_table(MEMBER_OF)?;
        self.dirty = true;
        for old in &g.members {
            member_of.remove((*old, group))?;
        }
        let mut members = members.to_vec();
        members.sort_unstable();
        members.dedup();
        for m in &members {
            member_of.insert((*m, group), ())?;
        }
        g.members = members;
        self.tx
            .open_table(PRINCIPALS)?
            .insert(group, enc(&g)?.as_slice())?;
        Ok(())
    }

    /// Deletes a principal with every collection it owns, its grants and memberships.
    pub fn delete_principal(&mut self, id: PrincipalId) -> Result<()> {
        self.system_only()?;
        let p = self.principal(id)?;
        let owned: Vec<u64> = {
            let names = self.tx.open_table(COLLECTION_NAMES)?;
            names
                .range((id, "")..)?
                .map(|e| e.map(|(k, v)| (k.value().0, v.value())))
                .take_while(|r| r.as_ref().map_or(true, |(o, _)| *o == id))
                .map(|r| r.map(|(_, c)| c))
                .collect::<std::result::Result<_, _>>()?
        };
        for c in owned {
            self.delete_collection(c)?;
        }
        if p.kind == PrincipalKind::Group {
            self.set_members(id, &[])?;
        }
        self.dirty = true;
        // Memberships of this principal in groups.
        let groups: Vec<u64> = self
            .tx
            .open_table(MEMBER_OF)?
            .range((id, 0)..=(id, u64::MAX))?
            .map(|e| e.map(|(k, _)| k.value().1))
            .collect::<std::result::Result<_, _>>()?;
        for g in groups {
            let mut group = self.principal(g)?;
            group.members.retain(|m| *m != id);
            self.tx
                .open_table(PRINCIPALS)?
                .insert(g, enc(&group)?.as_slice())?;
            self.tx.open_table(MEMBER_OF)?.remove((id, g))?;
        }
        // Grants to this principal.
        let granted: Vec<u64> = self
            .tx
            .open_table(GRANTS_BY_GRANTEE)?
            .range((id, 0)..=(id, u64::MAX))?
            .map(|e| e.map(|(k, _)| k.value().1))
            .collect::<std::result::Result<_, _>>()?;
        for c in granted {
            self.tx.open_table(GRANTS)?.remove((c, id))?;
            self.tx.open_table(GRANTS_BY_GRANTEE)?.remove((id, c))?;
        }
        let devices: Vec<String> = self
            .tx
            .open_table(DEVICES)?
            .range((id, "")..)?
            .map(|e| e.map(|(k, _)| (k.value().0, k.value().1.to_string())))
            .take_while(|r| r.as_ref().map_or(true, |(o, _)| *o == id))
            .map(|r| r.map(|(_, d)| d))
            .collect::<std::result::Result<_, _>>()?;
        for d in devices {
            self.delete_device(id, &d)?;
        }
        self.tx.open_table(USAGE)?.remove(id)?;
        self.tx
            .open_table(PRINCIPAL_NAMES)?
            .remove(p.name.as_str())?;
        self.tx.open_table(PRINCIPALS)?.remove(id)?;
        Ok(())
    }

    // ---- collections ----

    fn collection_with(&self, id: CollectionId, need: Access) -> Result<Collection> {
        let coll: Collection = {
            let t = self.tx.open_table(COLLECTIONS)?;
            let v = t.get(id)?.ok_or(StoreError::NotFound)?;
            dec(v.value())?
        };
        let have = access_of(
            &self.tx.open_table(GRANTS)?,
            &self.tx.open_table(MEMBER_OF)?,
            self.actor,
            &coll,
        )?;
        require(have, need)?;
        Ok(coll)
    }

    fn put_collection(&mut self, c: &Collection) -> Result<()> {
        self.dirty = true;
        self.tx
            .open_table(COLLECTIONS)?
            .insert(c.id, enc(c)?.as_slice())?;
        Ok(())
    }

    pub fn create_collection(
        &mut self,
        owner: PrincipalId,
        kind: CollectionKind,
        name: &str,
    ) -> Result<Collection> {
        if let Actor::Principal(p) = self.actor
            && p != owner
        {
            return Err(StoreError::Forbidden);
        }
        valid_name(name)?;
        self.principal(owner)?;
        if self
            .tx
            .open_table(COLLECTION_NAMES)?
            .get((owner, name))?
            .is_some()
        {
            return Err(StoreError::Exists(name.to_string()));
        }
        let id = self.next_id("next_collection")?;
        let c = Collection {
            id,
            owner,
            kind,
            name: name.to_string(),
            // 1, not 0: "changes since 0" is everything, and a mailbox's highest modseq is
            // positive even before its first item (IMAP HIGHESTMODSEQ, RFC 7162).
            modseq: 1,
            log_floor: 0,
            next_item: 1,
            // Distinct across re-creations of the same name.
            validity: (id as u32) ^ (now() as u32 & 0x7fff_0000),
            props: Default::default(),
            keywords: Vec::new(),
        };
        self.put_collection(&c)?;
        self.tx
            .open_table(COLLECTION_NAMES)?
            .insert((owner, name), id)?;
        Ok(c)
    }

    /// A collection by owner and name, if the actor may read it.
    pub fn collection_by_name(&self, owner: PrincipalId, name: &str) -> Result<Collection> {
        let id = self
            .tx
            .open_table(COLLECTION_NAMES)?
            .get((owner, name))?
            .ok_or(StoreError::NotFound)?
            .value();
        self.collection_with(id, Access::Read)
    }

    pub fn rename_collection(&mut self, id: CollectionId, name: &str) -> Result<Collection> {
        let mut c = self.collection_with(id, Access::Owner)?;
        valid_name(name)?;
        if self
            .tx
            .open_table(COLLECTION_NAMES)?
            .get((c.owner, name))?
            .is_some()
        {
            return Err(StoreError::Exists(name.to_string()));
        }
        self.dirty = true;
        self.tx
            .open_table(COLLECTION_NAMES)?
            .remove((c.owner, c.name.as_str()))?;
        self.tx
            .open_table(COLLECTION_NAMES)?
            .insert((c.owner, name), id)?;
        c.name = name.to_string();
        self.put_collection(&c)?;
        Ok(c)
    }

    /// Sets the name people see (`prop::DISPLAY_NAME`); needs write access.
    pub fn set_display_name(&mut self, id: CollectionId, name: &str) -> Result<Collection> {
        self.set_collection_props(
            id,
            &[(
                crate::prop::DISPLAY_NAME.to_string(),
                Some(name.to_string()),
            )],
        )
    }

    /// Sets (Some) or removes (None) collection properties; needs write access.
    pub fn set_collection_props(
        &mut self,
        id: CollectionId,
        props: &[(String, Option<String>)],
    ) -> Result<Collection> {
        let mut c = self.collection_with(id, Access::ReadWrite)?;
        for (k, v) in props {
            match v {
                Some(v) => c.props.insert(k.clone(), v.clone()),
                None => c.props.remove(k),
            };
        }
        self.put_collection(&c)?;
        Ok(c)
    }

    pub fn delete_collection(&mut self, id: CollectionId) -> Result<()> {
        let c = self.collection_with(id, Access::Owner)?;
        let items: Vec<Item> = {
            let t = self.tx.open_table(ITEMS)?;
            t.range((id, 0)..=(id, u64::MAX))?
                .map(|e| {
                    e.map_err(StoreError::from)
                        .and_then(|(_, v)| dec(v.value()))
                })
                .collect::<Result<_>>()?
        };
        self.dirty = true;
        let mut freed = 0;
        for item in &items {
            if let Some(b) = item.blob {
                self.unref_blob(&b)?;
                freed += b.size;
            }
            if let Some(n) = &item.name {
                self.tx.open_table(ITEM_NAMES)?.remove((id, n.as_str()))?;
            }
            self.tx.open_table(ITEMS)?.remove((id, item.id))?;
        }
        for item in &items {
            self.unindex(item)?;
        }
        crate::terms::drop_collection(self.tx, id)?;
        self.tx
            .open_table(ID_RUNS)?
            .extract_from_if((id, 0)..=(id, u64::MAX), |_, _| true)?
            .for_each(drop);
        self.add_usage(c.owner, -(freed as i128))?;
        self.tx
            .open_table(CHANGELOG)?
            .extract_from_if((id, 0)..=(id, u64::MAX), |_, _| true)?
            .for_each(drop);
        self.tx
            .open_table(TOMBSTONE_NAMES)?
            .extract_from_if((id, 0)..=(id, u64::MAX), |_, _| true)?
            .for_each(drop);
        let grantees: Vec<u64> = self
            .tx
            .open_table(GRANTS)?
            .range((id, 0)..=(id, u64::MAX))?
            .map(|e| e.map(|(k, _)| k.value().1))
            .collect::<std::result::Result<_, _>>()?;
        for g in grantees {
            self.tx.open_table(GRANTS)?.remove((id, g))?;
            self.tx.open_table(GRANTS_BY_GRANTEE)?.remove((g, id))?;
        }
        self.tx
            .open_table(COLLECTION_NAMES)?
            .remove((c.owner, c.name.as_str()))?;
        self.tx.open_table(COLLECTIONS)?.remove(id)?;
        self.changes.push(Change {
            owner: c.owner,
            collection: id,
            modseq: c.modseq + 1,
        });
        Ok(())
    }

    /// Grants (Some) or revokes (None) a right on a collection. Owner only.
    pub fn grant(
        &mut self,
        id: CollectionId,
        grantee: PrincipalId,
        right: Option<Right>,
    ) -> Result<()> {
        let c = self.collection_with(id, Access::Owner)?;
        let who = self.principal(grantee)?;
        // A group's own collection is granted to the group: that is what its members get.
        if grantee == c.owner && who.kind != PrincipalKind::Group {
            return Err(StoreError::Invalid(
                "the owner already has every right".into(),
            ));
        }
        self.dirty = true;
        match right {
            Some(r) => {
                self.tx.open_table(GRANTS)?.insert((id, grantee), r as u8)?;
                self.tx
                    .open_table(GRANTS_BY_GRANTEE)?
                    .insert((grantee, id), r as u8)?;
            }
            None => {
                self.tx.open_table(GRANTS)?.remove((id, grantee))?;
                self.tx
                    .open_table(GRANTS_BY_GRANTEE)?
                    .remove((grantee, id))?;
            }
        }
        Ok(())
    }

    // ---- items ----

    fn add_usage(&mut self, owner: PrincipalId, delta: i128) -> Result<()> {
        let mut t = self.tx.open_table(USAGE)?;
        let cur = t.get(owner)?.map_or(0, |v| v.value()) as i128;
        t.insert(owner, (cur + delta).max(0) as u64)?;
        Ok(())
    }

    fn check_quota(&self, owner: PrincipalId, extra: u64) -> Result<()> {
        if extra == 0 {
            return Ok(());
        }
        let p = self.principal(owner)?;
        if let Some(q) = p.quota {
            let used = self
                .tx
                .open_table(USAGE)?
                .get(owner)?
                .map_or(0, |v| v.value());
            if used.saturating_add(extra) > q {
                return Err(StoreError::OverQuota);
            }
        }
        Ok(())
    }

    fn ref_blob(&mut self, b: &BlobRef) -> Result<()> {
        let mut t = self.tx.open_table(BLOB_REFS)?;
        let n = t.get(&b.hash)?.map_or(0, |v| v.value());
        let staged = self.staged.iter().find(|s| s.blob == *b);
        if n == 0 {
            // First use: the blob must come with this write.
            let staged = staged
                .ok_or_else(|| StoreError::Invalid("blob was not staged for this write".into()))?;
            if let Some(data) = &staged.inline {
                self.tx
                    .open_table(BLOB_DATA)?
                    .insert(&b.hash, data.as_slice())?;
            }
        }
        if let Some(s) = staged
            && !s.derived.is_empty()
        {
            let mut d = self.tx.open_table(BLOB_DERIVED)?;
            for (field, bytes) in &s.derived {
                d.insert((&b.hash, *field), bytes.as_slice())?;
            }
        }
        t.insert(&b.hash, n + 1)?;
        Ok(())
    }

    /// Keeps `bytes` as the `field` derived from an item's content, for an item the actor may
    /// read (a reader that derived it on a miss saves it for the next).
    pub fn set_derived(
        &mut self,
        coll: CollectionId,
        id: ItemId,
        field: &str,
        bytes: &[u8],
    ) -> Result<()> {
        // `item` checks the actor may read the collection.
        let Some(b) = self.item(coll, id)?.blob else {
            return Ok(());
        };
        self.dirty = true;
        self.tx
            .open_table(BLOB_DERIVED)?
            .insert((&b.hash, field), bytes)?;
        Ok(())
    }

    fn unref_blob(&mut self, b: &BlobRef) -> Result<()> {
        let mut t = self.tx.open_table(BLOB_REFS)?;
        let n = t.get(&b.hash)?.map_or(0, |v| v.value());
        if n <= 1 {
            t.remove(&b.hash)?;
            let mut d = self.tx.open_table(BLOB_DERIVED)?;
            let fields: Vec<String> = d
                .range((&b.hash, "")..)?
                .map_while(|e| {
                    let (k, _) = e.ok()?;
                    let (h, f) = k.value();
                    (h == &b.hash).then(|| f.to_string())
                })
                .collect();
            for f in fields {
                d.remove((&b.hash, f.as_str()))?;
            }
            if b.size <= INLINE_MAX {
                self.tx.open_table(BLOB_DATA)?.remove(&b.hash)?;
            } else {
                self.freed.push(b.hash);
            }
        } else {
            t.insert(&b.hash, n - 1)?;
        }
        Ok(())
    }

    /// Gives the collection its next modseq and records the item's change in the log,
    /// dropping the item's previous log entry.
    fn log_change(
        &mut self,
        c: &mut Collection,
        item: ItemId,
        previous: Option<ModSeq>,
        deleted: bool,
    ) -> Result<ModSeq> {
        c.modseq += 1;
        let mut log = self.tx.open_table(CHANGELOG)?;
        if let Some(prev) = previous {
            log.remove((c.id, prev))?;
        }
        log.insert((c.id, c.modseq), (item, deleted))?;
        self.changes.push(Change {
            owner: c.owner,
            collection: c.id,
            modseq: c.modseq,
        });
        Ok(c.modseq)
    }

    fn check_name(&self, coll: CollectionId, name: &Option<String>) -> Result<()> {
        if let Some(n) = name {
            if n.is_empty() || n.len() > 512 {
                return Err(StoreError::Invalid("item name length".into()));
            }
            if self
                .tx
                .open_table(ITEM_NAMES)?
                .get((coll, n.as_str()))?
                .is_some()
            {
                return Err(StoreError::Exists(n.clone()));
            }
        }
        Ok(())
    }

    /// Writes an item's record and keeps its mailbox's index (unseen messages, keywords in
    /// `c`, which the caller saves) in step.
    fn save_item(&mut self, c: &mut Collection, item: &Item) -> Result<()> {
        self.tx
            .open_table(ITEMS)?
            .insert((item.collection, item.id), enc(item)?.as_slice())?;
        index_uid(self.tx, item)?;
        index_message(self.tx, c, item)
    }

    /// Drops what the indexes hold for an item's record (before it changes or goes).
    fn unindex(&mut self, item: &Item) -> Result<()> {
        if let Some(uid) = item.props.get(crate::prop::UID) {
            self.tx
                .open_table(UIDS)?
                .remove((item.collection, uid.as_str(), item.id))?;
        }
        self.tx
            .open_table(UNSEEN)?
            .remove((item.collection, item.id))?;
        self.tx
            .open_table(DELETED)?
            .remove((item.collection, item.id))?;
        Ok(())
    }

    /// Adds (`add`) or takes a message of a mailbox in or out of the term index, with its
    /// blob's terms (while the blob is still referred to).
    fn index_terms(&mut self, c: &Collection, item: &Item, add: bool) -> Result<()> {
        let (CollectionKind::Mailbox, Some(b)) = (c.kind, item.blob) else {
            return Ok(());
        };
        let terms = self
            .tx
            .open_table(BLOB_DERIVED)?
            .get((&b.hash, crate::terms::TERMS_FIELD))?
            .map(|v| v.value().to_vec());
        if add {
            crate::terms::index(self.tx, c.id, item.id, terms.as_deref())
        } else {
            crate::terms::unindex(self.tx, c.id, item.id, terms.as_deref())
        }
    }

    /// Gives a message waiting for its terms (`Reader::unindexed`) the fields its deriver
    /// made from its content now; it is then pending, or unindexable when the deriver gave
    /// no terms (system only).
    pub fn set_derived_all(
        &mut self,
        coll: CollectionId,
        id: ItemId,
        derived: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        use crate::terms::{TERMS_FIELD, state};
        self.system_only()?;
        let item = self.item(coll, id)?;
        let waiting = self
            .tx
            .open_table(UNINDEXED)?
            .get((coll, id))?
            .map(|v| v.value());
        let (Some(b), Some(state::WAITING)) = (item.blob, waiting) else {
            return Ok(());
        };
        self.dirty = true;
        let mut d = self.tx.open_table(BLOB_DERIVED)?;
        for (field, bytes) in derived {
            d.insert((&b.hash, *field), bytes.as_slice())?;
        }
        let now = match derived.iter().find(|(f, _)| *f == TERMS_FIELD) {
            Some((_, t)) if !t.is_empty() => state::PENDING,
            _ => state::UNINDEXABLE,
        };
        self.tx.open_table(UNINDEXED)?.insert((coll, id), now)?;
        Ok(())
    }

    /// Posts the term index's pending work, at most `limit` messages in and `limit` out:
    /// each (unit, term) read and written once for the whole batch (system only). Returns
    /// how many messages it took.
    pub fn post_terms(&mut self, limit: usize) -> Result<usize> {
        use crate::terms::{Batch, TERMS_FIELD, state};
        self.system_only()?;
        let gone: Vec<((u64, u64), Vec<u8>)> = {
            let t = self.tx.open_table(UNPOST)?;
            let mut out = Vec::new();
            for e in t.iter()?.take(limit) {
                let (k, v) = e?;
                out.push((k.value(), v.value().to_vec()));
            }
            out
        };
        let pending: Vec<(u64, u64)> = {
            let t = self.tx.open_table(UNINDEXED)?;
            let mut out = Vec::new();
            for e in t.iter()? {
                let (k, v) = e?;
                if v.value() == state::PENDING {
                    out.push(k.value());
                    if out.len() == limit {
                        break;
                    }
                }
            }
            out
        };
        if gone.is_empty() && pending.is_empty() {
            return Ok(0);
        }
        self.dirty = true;
        let mut batch = Batch::default();
        for ((coll, id), terms) in &gone {
            batch.add(self.tx, *coll, *id, terms, false)?;
            self.tx.open_table(UNPOST)?.remove((*coll, *id))?;
        }
        for &(coll, id) in &pending {
            self.tx.open_table(UNINDEXED)?.remove((coll, id))?;
            let blob = match self.tx.open_table(ITEMS)?.get((coll, id))? {
                Some(v) => dec::<Item>(v.value())?.blob,
                None => None,
            };
            let Some(b) = blob else { continue };
            let terms = self
                .tx
                .open_table(BLOB_DERIVED)?
                .get((&b.hash, TERMS_FIELD))?
                .map(|v| v.value().to_vec());
            match terms {
                Some(t) if !t.is_empty() => batch.add(self.tx, coll, id, &t, true)?,
                _ => {
                    self.tx
                        .open_table(UNINDEXED)?
                        .insert((coll, id), state::UNINDEXABLE)?;
                }
            }
        }
        batch.apply(self.tx)?;
        Ok(gone.len() + pending.len())
    }

    /// Moves up to `limit` postings of a mailbox's whole range of ids into a larger unit
    /// (`terms.rs`), so that a search reads few units whatever the size of the mailbox
    /// (system only). Returns how many it moved, at least 1 when a move was under way, 0
    /// when none was.
    pub fn merge_terms(&mut self, limit: usize) -> Result<usize> {
        self.system_only()?;
        let Some(coll) = crate::terms::merging(&self.tx.open_table(TERM_LEVELS)?)? else {
            return Ok(0);
        };
        self.dirty = true;
        crate::terms::merge(self.tx, coll, limit)
    }

    /// Adds an item. Its blob must be staged for this write or already stored.
    pub fn put_item(&mut self, coll: CollectionId, new: NewItem) -> Result<Item> {
        let mut c = self.collection_with(coll, Access::ReadWrite)?;
        self.check_name(coll, &new.name)?;
        let size = new.blob.map_or(0, |b| b.size);
        // Mail accepted by SMTP (quota checked when the recipient was accepted) is never
        // refused afterwards: only the system may pass the quota.
        if !(new.past_quota && self.actor == Actor::System) {
            self.check_quota(c.owner, size)?;
        }
        self.dirty = true;
        let id = c.next_item;
        c.next_item += 1;
        let modseq = self.log_change(&mut c, id, None, false)?;
        let mut flags = new.flags;
        flags.sort();
        flags.dedup();
        let item = Item {
            id,
            collection: coll,
            modseq,
            name: new.name,
            blob: new.blob,
            flags,
            date: new.date.unwrap_or_else(now),
            props: new.props,
        };
        if let Some(b) = &item.blob {
            self.ref_blob(b)?;
        }
        if let Some(n) = &item.name {
            self.tx
                .open_table(ITEM_NAMES)?
                .insert((coll, n.as_str()), id)?;
        }
        self.add_usage(c.owner, size as i128)?;
        self.save_item(&mut c, &item)?;
        add_to_runs(self.tx, coll, id)?;
        self.index_terms(&c, &item, true)?;
        self.put_collection(&c)?;
        Ok(item)
    }

    pub fn item(&self, coll: CollectionId, id: ItemId) -> Result<Item> {
        self.collection_with(coll, Access::Read)?;
        let t = self.tx.open_table(ITEMS)?;
        let v = t.get((coll, id))?.ok_or(StoreError::NotFound)?;
        dec(v.value())
    }

    /// The ids of a collection's items, ascending.
    pub fn item_ids(&self, coll: CollectionId) -> Result<Vec<ItemId>> {
        self.collection_with(coll, Access::Read)?;
        self.tx
            .open_table(ITEMS)?
            .range((coll, 0)..=(coll, u64::MAX))?
            .map(|e| e.map(|(k, _)| k.value().1).map_err(StoreError::from))
            .collect()
    }

    /// The items of a collection whose `uid` prop is `uid`.
    pub fn items_with_uid(&self, coll: CollectionId, uid: &str) -> Result<Vec<Item>> {
        self.collection_with(coll, Access::Read)?;
        let ids: Vec<ItemId> = self
            .tx
            .open_table(UIDS)?
            .range((coll, uid, 0)..=(coll, uid, u64::MAX))?
            .map(|e| e.map(|(k, _)| k.value().2).map_err(StoreError::from))
            .collect::<Result<_>>()?;
        ids.into_iter().map(|id| self.item(coll, id)).collect()
    }

    pub fn item_by_name(&self, coll: CollectionId, name: &str) -> Result<Item> {
        self.collection_with(coll, Access::Read)?;
        let id = self
            .tx
            .open_table(ITEM_NAMES)?
            .get((coll, name))?
            .ok_or(StoreError::NotFound)?
            .value();
        self.item(coll, id)
    }

    /// Changes an item in place: `edit` may change its blob, flags, date and props (not its
    /// id, collection or name). `expect` is the modseq the caller last saw, if it cares.
    pub fn update_item(
        &mut self,
        coll: CollectionId,
        id: ItemId,
        expect: Option<ModSeq>,
        edit: impl FnOnce(&mut Item),
    ) -> Result<Item> {
        let mut c = self.collection_with(coll, Access::ReadWrite)?;
        let old = self.item(coll, id)?;
        if let Some(m) = expect
            && m != old.modseq
        {
            return Err(StoreError::Conflict(old.modseq));
        }
        let mut item = old.clone();
        edit(&mut item);
        item.id = old.id;
        item.collection = old.collection;
        item.name = old.name.clone();
        item.flags.sort();
        item.flags.dedup();
        let (old_size, new_size) = (old.size(), item.size());
        if new_size > old_size {
            self.check_quota(c.owner, new_size - old_size)?;
        }
        self.dirty = true;
        if item.blob != old.blob {
            self.index_terms(&c, &old, false)?;
            if let Some(b) = &item.blob {
                self.ref_blob(b)?;
            }
            if let Some(b) = &old.blob {
                self.unref_blob(b)?;
            }
            self.index_terms(&c, &item, true)?;
        }
        self.add_usage(c.owner, new_size as i128 - old_size as i128)?;
        item.modseq = self.log_change(&mut c, id, Some(old.modseq), false)?;
        self.unindex(&old)?;
        self.save_item(&mut c, &item)?;
        self.put_collection(&c)?;
        Ok(item)
    }

    /// Sets or clears the actor's own \\Seen on an item of a collection someone else owns
    /// (per-user \\Seen on shared mailboxes, the "s" right of RFC 4314): read access is
    /// enough, and the owner's flags are untouched. The item gets a new modseq.
    pub fn set_private_seen(&mut self, coll: CollectionId, id: ItemId, seen: bool) -> Result<Item> {
        let Actor::Principal(p) = self.actor else {
            return Err(StoreError::Invalid(
                "private state needs a principal".into(),
            ));
        };
        let mut c = self.collection_with(coll, Access::Read)?;
        let old = self.item(coll, id)?;
        if old.seen_by(p) == seen {
            return Ok(old);
        }
        let mut item = old.clone();
        let key = format!("{PRIVATE_SEEN}{p}");
        if seen {
            item.props.insert(key, "1".into());
        } else {
            item.props.remove(&key);
        }
        self.dirty = true;
        item.modseq = self.log_change(&mut c, id, Some(old.modseq), false)?;
        self.save_item(&mut c, &item)?;
        self.put_collection(&c)?;
        Ok(item)
    }

    /// Deletes an item, leaving a tombstone in the change log.
    pub fn delete_item(&mut self, coll: CollectionId, id: ItemId) -> Result<()> {
        let mut c = self.collection_with(coll, Access::ReadWrite)?;
        let old = self.item(coll, id)?;
        self.dirty = true;
        self.index_terms(&c, &old, false)?;
        if let Some(b) = &old.blob {
            self.unref_blob(b)?;
        }
        if let Some(n) = &old.name {
            self.tx.open_table(ITEM_NAMES)?.remove((coll, n.as_str()))?;
            self.tx
                .open_table(TOMBSTONE_NAMES)?
                .insert((coll, id), n.as_str())?;
        }
        self.add_usage(c.owner, -(old.size() as i128))?;
        self.log_change(&mut c, id, Some(old.modseq), true)?;
        self.tx.open_table(ITEMS)?.remove((coll, id))?;
        remove_from_runs(self.tx, coll, id)?;
        self.unindex(&old)?;
        self.put_collection(&c)?;
        Ok(())
    }

    /// Copies an item into another collection (the blob is shared, not copied).
    /// Private state (per-user \\Seen) does not travel with the copy.
    pub fn copy_item(&mut self, from: CollectionId, id: ItemId, to: CollectionId) -> Result<Item> {
        let mut src = self.item(from, id)?;
        src.props.retain(|k, _| !k.starts_with(PRIVATE_SEEN));
        self.put_item(
            to,
            NewItem {
                name: src.name,
                blob: src.blob,
                flags: src.flags,
                date: Some(src.date),
                props: src.props,
                past_quota: false,
            },
        )
    }

    // ---- records of other services (system only) ----

    pub fn kv_put(&mut self, ns: &str, key: &str, value: &[u8]) -> Result<()> {
        self.system_only()?;
        self.dirty = true;
        self.tx.open_table(KV)?.insert((ns, key), value)?;
        Ok(())
    }

    pub fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.system_only()?;
        Ok(self
            .tx
            .open_table(KV)?
            .get((ns, key))?
            .map(|v| v.value().to_vec()))
    }

    /// The keys of a namespace, in order.
    pub fn kv_keys(&self, ns: &str) -> Result<Vec<String>> {
        self.system_only()?;
        let t = self.tx.open_table(KV)?;
        let mut out = Vec::new();
        for e in t.range((ns, "")..)? {
            let (k, _) = e?;
            let (n, key) = k.value();
            if n != ns {
                break;
            }
            out.push(key.to_string());
        }
        Ok(out)
    }

    pub fn kv_delete(&mut self, ns: &str, key: &str) -> Result<bool> {
        self.system_only()?;
        self.dirty = true;
        Ok(self.tx.open_table(KV)?.remove((ns, key))?.is_some())
    }

    // ---- devices and sync state ----

    pub fn put_device(&mut self, principal: PrincipalId, device: &Device) -> Result<()> {
        own_or_system(self.actor, principal)?;
        self.dirty = true;
        self.tx
            .open_table(DEVICES)?
            .insert((principal, device.id.as_str()), enc(device)?.as_slice())?;
        Ok(())
    }

    pub fn delete_sync_state(
        &mut self,
        principal: PrincipalId,
        device: &str,
        coll: CollectionId,
    ) -> Result<()> {
        own_or_system(self.actor, principal)?;
        self.dirty = true;
        self.tx
            .open_table(SYNC_STATES)?
            .remove((principal, device, coll))?;
        Ok(())
    }

    pub fn delete_device(&mut self, principal: PrincipalId, device: &str) -> Result<()> {
        own_or_system(self.actor, principal)?;
        self.dirty = true;
        self.tx.open_table(DEVICES)?.remove((principal, device))?;
        self.tx
            .open_table(SYNC_STATES)?
            .extract_from_if(
                (principal, device, 0)..=(principal, device, u64::MAX),
                |_, _| true,
            )?
            .for_each(drop);
        Ok(())
    }

    pub fn put_sync_state(
        &mut self,
        principal: PrincipalId,
        device: &str,
        coll: CollectionId,
        state: &SyncState,
    ) -> Result<()> {
        own_or_system(self.actor, principal)?;
        self.dirty = true;
        self.tx
            .open_table(SYNC_STATES)?
            .insert((principal, device, coll), enc(state)?.as_slice())?;
        Ok(())
    }
}

/// A collection's name: 1 to 1,024 bytes, no control character (a NUL or an escape in a
/// folder name cannot be carried by every protocol: WBXML strings end at NUL, XML forbids
/// C0 controls). Every protocol creates and renames through here, so none can store one.
fn valid_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 1024 {
        return Err(StoreError::Invalid("collection name length".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a collection name may not hold control characters".into(),
        ));
    }
    Ok(())
}

/// Keeps a mailbox's index in step with one of its messages: in `UNSEEN` unless the owner
/// has seen it, in `DELETED` when flagged \\Deleted, and its keywords in `c.keywords`.
/// Other collections have no index.
pub(crate) fn index_message(tx: &WriteTransaction, c: &mut Collection, item: &Item) -> Result<()> {
    if c.kind != CollectionKind::Mailbox {
        return Ok(());
    }
    let has = |flag: &str| item.flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
    let mut unseen = tx.open_table(UNSEEN)?;
    if has("\\Seen") {
        unseen.remove((c.id, item.id))?;
    } else {
        unseen.insert((c.id, item.id), ())?;
    }
    let mut deleted = tx.open_table(DELETED)?;
    if has("\\Deleted") {
        deleted.insert((c.id, item.id), ())?;
    } else {
        deleted.remove((c.id, item.id))?;
    }
    for f in &item.flags {
        if !f.starts_with('\\') && !c.keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
            c.keywords.push(f.clone());
        }
    }
    Ok(())
}

/// Adds `id`, above every id of `coll` so far, to its runs: the last run grows, or a new
/// one starts.
pub(crate) fn add_to_runs(tx: &WriteTransaction, coll: CollectionId, id: ItemId) -> Result<()> {
    let mut t = tx.open_table(ID_RUNS)?;
    let last = t
        .range((coll, 0)..=(coll, u64::MAX))?
        .next_back()
        .transpose()?
        .map(|(k, v)| (k.value().1, v.value()));
    match last {
        Some((first, n)) if first + n == id => t.insert((coll, first), n + 1)?,
        _ => t.insert((coll, id), 1)?,
    };
    Ok(())
}

/// Takes `id` out of the run holding it, which splits in two around it.
fn remove_from_runs(tx: &WriteTransaction, coll: CollectionId, id: ItemId) -> Result<()> {
    let mut t = tx.open_table(ID_RUNS)?;
    let run = t
        .range((coll, 0)..=(coll, id))?
        .next_back()
        .transpose()?
        .map(|(k, v)| (k.value().1, v.value()));
    let Some((first, n)) = run.filter(|(first, n)| id < first + n) else {
        return Ok(());
    };
    t.remove((coll, first))?;
    if id > first {
        t.insert((coll, first), id - first)?;
    }
    if id + 1 < first + n {
        t.insert((coll, id + 1), first + n - id - 1)?;
    }
    Ok(())
}

/// Keeps the UID index in step with an item's record (its entry added; the caller removed
/// the previous record's).
pub(crate) fn index_uid(tx: &WriteTransaction, item: &Item) -> Result<()> {
    if let Some(uid) = item.props.get(crate::prop::UID) {
        tx.open_table(UIDS)?
            .insert((item.collection, uid.as_str(), item.id), ())?;
    }
    Ok(())
}
