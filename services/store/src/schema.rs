//! Schema version and migrations. A migration runs at start, after a snapshot of the file;
//! a database newer than this binary is refused, never opened for writing.

use crate::model::{Collection, CollectionKind, Item};
use crate::tables::{
    BLOB_DERIVED, COLLECTIONS, DELETED, ITEMS, META, UNINDEXED, create_all, dec, enc,
};
use crate::{Result, StoreError, now};
use redb::{Builder, Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::path::Path;

pub const SCHEMA_VERSION: u64 = MIGRATIONS.len() as u64 + 1;

pub(crate) type Migration = fn(&WriteTransaction) -> Result<()>;

/// `MIGRATIONS[i]` takes a database from version `i + 1` to `i + 2`.
const MIGRATIONS: &[Migration] = &[
    modseq_starts_at_one,
    tombstone_names,
    blob_derived,
    mailbox_index,
    uid_index,
    id_runs,
    term_and_deleted_index,
    term_levels,
    terms_again,
];

/// 9 -> 10: messages' terms are derived again, because what the deriver makes of a
/// message changed (the header and the text parts became two fields, so that IMAP's BODY
/// no longer reads the header's terms). Every posting and every kept set of terms goes;
/// every message waits for its terms again, a candidate for every search meanwhile, until
/// `Store::index_pending` derives them in the background.
fn terms_again(tx: &WriteTransaction) -> Result<()> {
    use crate::tables::{TERM_LEVELS, TERMS, UNPOST};
    tx.delete_table(TERMS)?;
    tx.delete_table(TERM_LEVELS)?;
    tx.delete_table(UNPOST)?;
    tx.open_table(BLOB_DERIVED)?
        .retain(|(_, field), _| field != crate::terms::TERMS_FIELD)?;
    let mut unindexed = tx.open_table(UNINDEXED)?;
    let items = tx.open_table(ITEMS)?;
    for coll in mailboxes(tx)? {
        for e in items.range((coll, 0)..=(coll, u64::MAX))? {
            unindexed.insert(e?.0.value(), crate::terms::state::WAITING)?;
        }
    }
    Ok(())
}

/// 8 -> 9: postings move up into larger units of ids (`terms.rs`), and the bitmap of the
/// small units that held each term goes. The postings kept so far are small units' (their
/// keys do not change); each mailbox's first whole range starts moving up, and the indexer
/// moves the rest, a batch at a time.
fn term_levels(tx: &WriteTransaction) -> Result<()> {
    const TERM_BLOCKS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("term_blocks");
    tx.delete_table(TERM_BLOCKS)?;
    for coll in mailboxes(tx)? {
        crate::terms::advance(tx, coll)?;
    }
    Ok(())
}

fn mailboxes(tx: &WriteTransaction) -> Result<Vec<u64>> {
    let t = tx.open_table(COLLECTIONS)?;
    let mut out = Vec::new();
    for e in t.iter()? {
        let c: Collection = dec(e?.1.value())?;
        if c.kind == CollectionKind::Mailbox {
            out.push(c.id);
        }
    }
    Ok(out)
}

/// 7 -> 8: the term index and the \\Deleted index. Every message stored so far is listed as
/// unindexed, a candidate for every search until `Store::index_pending` derives its terms;
/// its flags go through the mailbox index again, which now keeps `deleted`.
fn term_and_deleted_index(tx: &WriteTransaction) -> Result<()> {
    let mailboxes = mailboxes(tx)?;
    let mut unindexed = tx.open_table(UNINDEXED)?;
    let items = tx.open_table(ITEMS)?;
    let mut deleted = tx.open_table(DELETED)?;
    for coll in mailboxes {
        for e in items.range((coll, 0)..=(coll, u64::MAX))? {
            let (k, v) = e?;
            unindexed.insert(k.value(), crate::terms::state::WAITING)?;
            let item: Item = dec(v.value())?;
            if item
                .flags
                .iter()
                .any(|f| f.eq_ignore_ascii_case("\\Deleted"))
            {
                deleted.insert(k.value(), ())?;
            }
        }
    }
    Ok(())
}

/// 6 -> 7: every collection's item ids as runs, from the items' keys.
fn id_runs(tx: &WriteTransaction) -> Result<()> {
    let keys: Vec<(u64, u64)> = {
        let t = tx.open_table(ITEMS)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            out.push(e?.0.value());
        }
        out
    };
    // Ascending by collection, then id: each id extends its collection's last run.
    for (coll, id) in keys {
        crate::write::add_to_runs(tx, coll, id)?;
    }
    Ok(())
}

/// 5 -> 6: the UID index, built from every item's record.
fn uid_index(tx: &WriteTransaction) -> Result<()> {
    let items: Vec<Item> = {
        let t = tx.open_table(ITEMS)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            let item: Item = dec(e?.1.value())?;
            if item.props.contains_key(crate::prop::UID) {
                out.push(item);
            }
        }
        out
    };
    for item in &items {
        crate::write::index_uid(tx, item)?;
    }
    Ok(())
}

/// 4 -> 5: every mailbox's index (unseen messages, keywords), built from its records.
fn mailbox_index(tx: &WriteTransaction) -> Result<()> {
    let collections: Vec<Collection> = {
        let t = tx.open_table(COLLECTIONS)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            let c: Collection = dec(e?.1.value())?;
            if c.kind == CollectionKind::Mailbox {
                out.push(c);
            }
        }
        out
    };
    for mut c in collections {
        let items: Vec<Item> = {
            let t = tx.open_table(ITEMS)?;
            let mut out = Vec::new();
            for e in t.range((c.id, 0)..=(c.id, u64::MAX))? {
                out.push(dec(e?.1.value())?);
            }
            out
        };
        for item in &items {
            crate::write::index_message(tx, &mut c, item)?;
        }
        tx.open_table(COLLECTIONS)?
            .insert(c.id, enc(&c)?.as_slice())?;
    }
    Ok(())
}

/// 3 -> 4: what protocols derive from a message, kept beside its blob (made by
/// `create_all` after the migrations); messages stored before it get theirs when first read.
fn blob_derived(_: &WriteTransaction) -> Result<()> {
    Ok(())
}

/// 2 -> 3: the table of deleted items' names (made by `create_all` after the migrations);
/// items deleted before it have no name to tell.
fn tombstone_names(_: &WriteTransaction) -> Result<()> {
    Ok(())
}

/// 1 -> 2: collections start at modseq 1, so that a highest modseq is never 0 (an empty
/// mailbox's IMAP HIGHESTMODSEQ must be positive and grow with its first change).
fn modseq_starts_at_one(tx: &WriteTransaction) -> Result<()> {
    let mut t = tx.open_table(COLLECTIONS)?;
    let mut zero = Vec::new();
    for e in t.iter()? {
        let (k, v) = e?;
        let c: Collection = dec(v.value())?;
        if c.modseq == 0 {
            zero.push((k.value(), c));
        }
    }
    for (id, mut c) in zero {
        c.modseq = 1;
        t.insert(id, enc(&c)?.as_slice())?;
    }
    Ok(())
}

pub(crate) fn open_and_migrate(path: &Path, snapshots: &Path, cache: usize) -> Result<Database> {
    open_with(path, snapshots, cache, MIGRATIONS)
}

fn open_db(path: &Path, cache: usize) -> Result<Database> {
    Builder::new()
        .set_cache_size(cache)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Io(format!(
                "{} is already open (is another bureau running?)",
                path.display()
            )),
            redb::DatabaseError::UpgradeRequired(v) => StoreError::Io(format!(
                "{} uses redb file format {v}, which this bureau cannot read",
                path.display()
            )),
            other => other.into(),
        })
}

fn read_version(db: &impl ReadableDatabase) -> Result<Option<u64>> {
    let tx = db.begin_read()?;
    match tx.open_table(META) {
        Ok(t) => Ok(t.get("schema_version")?.map(|v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_version(tx: &WriteTransaction, v: u64) -> Result<()> {
    tx.open_table(META)?.insert("schema_version", v)?;
    Ok(())
}

pub(crate) fn open_with(
    path: &Path,
    snapshots: &Path,
    cache: usize,
    migrations: &[Migration],
) -> Result<Database> {
    let target = migrations.len() as u64 + 1;
    // Look without writing first: a newer database must be left exactly as it is. (One that
    // needs crash recovery cannot be opened read-only; redb's recovery then runs first.)
    if path.exists()
        && let Ok(ro) = Builder::new().open_read_only(path)
        && let Some(v) = read_version(&ro)?
        && v > target
    {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: v,
            supported: target,
        });
    }
    let db = open_db(path, cache)?;
    match read_version(&db)? {
        None => {
            let tx = db.begin_write()?;
            create_all(&tx)?;
            write_version(&tx, target)?;
            tx.commit()?;
            Ok(db)
        }
        Some(v) if v == target => Ok(db),
        Some(v) if v > target => Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: v,
            supported: target,
        }),
        Some(v) => {
            drop(db);
            crate::modes::private_dir(snapshots)?;
            let snap = snapshots.join(format!("bureau-v{v}-{}.redb", now()));
            std::fs::copy(path, &snap)?;
            std::fs::File::open(&snap)?.sync_all()?;
            log::info!(
                "store: migrating schema {v} -> {target}; snapshot at {}",
                snap.display()
            );
            let db = open_db(path, cache)?;
            let tx = db.begin_write()?;
            for m in &migrations[(v as usize - 1)..] {
                m(&tx)?;
            }
            create_all(&tx)?;
            write_version(&tx, target)?;
            tx.commit()?;
            Ok(db)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::KV;

    fn add_marker(tx: &WriteTransaction) -> Result<()> {
        tx.open_table(KV)?
            .insert(("test", "migrated"), b"yes".as_slice())?;
        Ok(())
    }

    #[test]
    fn migrates_after_snapshot_and_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let snaps = dir.path().join("snaps");
        drop(open_with(&path, &snaps, 1 << 20, &[]).unwrap());

        let db = open_with(&path, &snaps, 1 << 20, &[add_marker]).unwrap();
        assert_eq!(read_version(&db).unwrap(), Some(2));
        let tx = db.begin_read().unwrap();
        let kv = tx.open_table(KV).unwrap();
        assert_eq!(
            kv.get(("test", "migrated")).unwrap().unwrap().value(),
            b"yes"
        );
        drop((kv, tx, db));
        let snapshots: Vec<_> = std::fs::read_dir(&snaps).unwrap().collect();
        assert_eq!(snapshots.len(), 1, "one snapshot taken before migrating");

        // Version 2 on disk, a binary that knows only version 1: refused.
        match open_with(&path, &snaps, 1 << 20, &[]) {
            Err(StoreError::NewerSchema {
                found: 2,
                supported: 1,
                ..
            }) => {}
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a newer schema was opened"),
        }
    }

    #[test]
    fn version_one_collections_start_at_modseq_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let snaps = dir.path().join("snaps");
        let c = |id, modseq| Collection {
            id,
            owner: 1,
            kind: crate::model::CollectionKind::Mailbox,
            name: format!("c{id}"),
            modseq,
            log_floor: 0,
            next_item: 1,
            validity: 1,
            props: Default::default(),
            keywords: Vec::new(),
        };
        let db = open_with(&path, &snaps, 1 << 20, &[]).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(COLLECTIONS).unwrap();
            t.insert(1, enc(&c(1, 0)).unwrap().as_slice()).unwrap();
            t.insert(2, enc(&c(2, 7)).unwrap().as_slice()).unwrap();
        }
        tx.commit().unwrap();
        drop(db);
        let db = open_and_migrate(&path, &snaps, 1 << 20).unwrap();
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(COLLECTIONS).unwrap();
        let get = |id| dec::<Collection>(t.get(id).unwrap().unwrap().value()).unwrap();
        assert_eq!((get(1).modseq, get(2).modseq), (1, 7));
    }

    /// A collection's record as an older release wrote it.
    fn old_collection(id: u64, kind: CollectionKind) -> Collection {
        Collection {
            id,
            owner: 1,
            kind,
            name: format!("c{id}"),
            modseq: 3,
            log_floor: 0,
            next_item: 3,
            validity: 1,
            props: Default::default(),
            keywords: Vec::new(),
        }
    }

    /// An item's record as an older release wrote it.
    fn old_item(collection: u64, id: u64) -> Item {
        Item {
            id,
            collection,
            modseq: id + 1,
            name: Some(format!("{id}.eml")),
            blob: None,
            flags: Vec::new(),
            date: 0,
            props: Default::default(),
        }
    }

    #[test]
    fn version_four_mailboxes_get_their_index() {
        use crate::tables::UNSEEN;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let snaps = dir.path().join("snaps");
        let db = open_with(&path, &snaps, 1 << 20, &MIGRATIONS[..3]).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut cols = tx.open_table(COLLECTIONS).unwrap();
            let mut items = tx.open_table(ITEMS).unwrap();
            for (id, kind) in [(1, CollectionKind::Mailbox), (2, CollectionKind::Calendar)] {
                cols.insert(id, enc(&old_collection(id, kind)).unwrap().as_slice())
                    .unwrap();
                for (n, flags) in [(1, vec!["\\Seen", "$Work"]), (2, vec!["\\Flagged"])] {
                    let item = Item {
                        flags: flags.into_iter().map(String::from).collect(),
                        ..old_item(id, n)
                    };
                    items
                        .insert((id, n), enc(&item).unwrap().as_slice())
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
        drop(db);
        let db = open_and_migrate(&path, &snaps, 1 << 20).unwrap();
        let tx = db.begin_read().unwrap();
        let unseen: Vec<(u64, u64)> = tx
            .open_table(UNSEEN)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        assert_eq!(unseen, [(1, 2)], "the mailbox's unseen message only");
        let t = tx.open_table(COLLECTIONS).unwrap();
        let get = |id| dec::<Collection>(t.get(id).unwrap().unwrap().value()).unwrap();
        assert_eq!(get(1).keywords, ["$Work"]);
        assert!(get(2).keywords.is_empty());
    }

    #[test]
    fn version_five_items_get_their_uid_index() {
        use crate::tables::UIDS;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let snaps = dir.path().join("snaps");
        let db = open_with(&path, &snaps, 1 << 20, &MIGRATIONS[..4]).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut items = tx.open_table(ITEMS).unwrap();
            for (n, uid) in [(1, Some("a@x")), (2, None)] {
                let item = Item {
                    props: uid
                        .map(|u| [(crate::prop::UID.to_string(), u.to_string())].into())
                        .unwrap_or_default(),
                    ..old_item(7, n)
                };
                items
                    .insert((7, n), enc(&item).unwrap().as_slice())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        drop(db);
        let db = open_and_migrate(&path, &snaps, 1 << 20).unwrap();
        let tx = db.begin_read().unwrap();
        let uids: Vec<(u64, String, u64)> = tx
            .open_table(UIDS)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| {
                let (k, _) = e.unwrap();
                let (c, u, i) = k.value();
                (c, u.to_string(), i)
            })
            .collect();
        assert_eq!(uids, [(7, "a@x".to_string(), 1)]);
    }

    #[test]
    fn version_six_collections_get_their_id_runs() {
        use crate::tables::ID_RUNS;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let snaps = dir.path().join("snaps");
        let db = open_with(&path, &snaps, 1 << 20, &MIGRATIONS[..5]).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut items = tx.open_table(ITEMS).unwrap();
            for (c, n) in [(7, 1), (7, 2), (7, 3), (7, 5), (8, 4)] {
                items
                    .insert((c, n), enc(&old_item(c, n)).unwrap().as_slice())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
        drop(db);
        let db = open_and_migrate(&path, &snaps, 1 << 20).unwrap();
        let tx = db.begin_read().unwrap();
        let runs: Vec<((u64, u64), u64)> = tx
            .open_table(ID_RUNS)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value())
            })
            .collect();
        assert_eq!(runs, [((7, 1), 3), ((7, 5), 1), ((8, 4), 1)]);
    }

    #[test]
    fn version_seven_messages_wait_for_their_terms_and_deleted_ones_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let snaps = dir.path().join("snaps");
        let db = open_with(&path, &snaps, 1 << 20, &MIGRATIONS[..6]).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut cols = tx.open_table(COLLECTIONS).unwrap();
            let mut items = tx.open_table(ITEMS).unwrap();
            for (id, kind) in [(1, CollectionKind::Mailbox), (2, CollectionKind::Calendar)] {
                cols.insert(id, enc(&old_collection(id, kind)).unwrap().as_slice())
                    .unwrap();
                for n in [1, 2] {
                    let item = Item {
                        flags: vec![if n == 1 { "\\Deleted" } else { "\\Seen" }.into()],
                        ..old_item(id, n)
                    };
                    items
                        .insert((id, n), enc(&item).unwrap().as_slice())
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
        drop(db);
        let db = open_and_migrate(&path, &snaps, 1 << 20).unwrap();
        let tx = db.begin_read().unwrap();
        let pending: Vec<(u64, u64)> = tx
            .open_table(UNINDEXED)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        assert_eq!(pending, [(1, 1), (1, 2)], "the mailbox's messages only");
        let deleted: Vec<(u64, u64)> = tx
            .open_table(DELETED)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        assert_eq!(deleted, [(1, 1)], "the mailbox's \\Deleted message only");
    }

    /// A version-8 mailbox's postings are all in small units: the bitmap of blocks goes,
    /// the first whole range starts moving up, and a search finds the same messages while
    /// and after the indexer moves them.
    #[test]
    fn version_eight_postings_move_up() {
        use crate::terms::{candidates, merge};
        use redb::TableHandle;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let snaps = dir.path().join("snaps");
        let db = open_with(&path, &snaps, 1 << 20, &MIGRATIONS[..7]).unwrap();
        // Every message of mailbox 1 holds "abc" in field 1; small units of 8 ids under
        // test, so 200 messages fill three middle ranges of 64.
        let term = 1 << 24 | u32::from_be_bytes([0, b'a', b'b', b'c']);
        let ids: Vec<u64> = (1..=200).collect();
        let tx = db.begin_write().unwrap();
        {
            let old: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("term_blocks");
            tx.open_table(old)
                .unwrap()
                .insert((1, term), [0xFFu8; 4].as_slice())
                .unwrap();
            tx.open_table(COLLECTIONS)
                .unwrap()
                .insert(
                    1,
                    enc(&old_collection(1, CollectionKind::Mailbox))
                        .unwrap()
                        .as_slice(),
                )
                .unwrap();
            let mut t = tx.open_table(crate::tables::TERMS).unwrap();
            for unit in 0..=200 / 8 {
                let offs: Vec<u16> = ids
                    .iter()
                    .filter(|id| *id / 8 == unit)
                    .map(|id| (*id % 8) as u16)
                    .collect();
                let p: u8 = offs.iter().map(|o| 1u8 << o).sum();
                t.insert((1, unit as u32, term), [p].as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
        drop(db);
        let db = open_with(&path, &snaps, 1 << 20, &MIGRATIONS[..8]).unwrap();
        let tx = db.begin_read().unwrap();
        assert!(
            tx.list_tables().unwrap().all(|t| t.name() != "term_blocks"),
            "the bitmap of blocks is gone"
        );
        assert!(crate::terms::work(&tx).unwrap(), "a range is moving up");
        let found = |db: &Database| {
            candidates(&db.begin_read().unwrap(), 1, 1, b"ABC")
                .unwrap()
                .unwrap()
        };
        assert_eq!(found(&db), ids);
        let mut steps = 0;
        while crate::terms::work(&db.begin_read().unwrap()).unwrap() {
            let tx = db.begin_write().unwrap();
            merge(&tx, 1, 5).unwrap();
            tx.commit().unwrap();
            assert_eq!(found(&db), ids, "after {steps} steps");
            steps += 1;
        }
        assert!(steps > 4, "moved a few postings at a time");
    }

    /// A version-9 store's terms were made when BODY read the header's: every posting, list
    /// of removals and kept set of terms goes (other derived fields stay), and each message
    /// of a mailbox waits for its terms again.
    #[test]
    fn version_nine_messages_are_derived_again() {
        use crate::tables::{TERM_LEVELS, TERMS, UNPOST};
        use crate::terms::{TERMS_FIELD, state};
        use redb::ReadableTableMetadata;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let snaps = dir.path().join("snaps");
        let db = open_with(&path, &snaps, 1 << 20, &MIGRATIONS[..8]).unwrap();
        let hash = [7u8; 32];
        let tx = db.begin_write().unwrap();
        {
            let mut cols = tx.open_table(COLLECTIONS).unwrap();
            let mut items = tx.open_table(ITEMS).unwrap();
            for (id, kind) in [(1, CollectionKind::Mailbox), (2, CollectionKind::Calendar)] {
                cols.insert(id, enc(&old_collection(id, kind)).unwrap().as_slice())
                    .unwrap();
                for n in [1, 2] {
                    items
                        .insert((id, n), enc(&old_item(id, n)).unwrap().as_slice())
                        .unwrap();
                }
            }
            let mut d = tx.open_table(BLOB_DERIVED).unwrap();
            d.insert((&hash, TERMS_FIELD), [1u8, 2].as_slice()).unwrap();
            d.insert((&hash, "summary"), [3u8].as_slice()).unwrap();
            tx.open_table(TERMS)
                .unwrap()
                .insert((1, 0, 1 << 24), [1u8].as_slice())
                .unwrap();
            tx.open_table(TERM_LEVELS)
                .unwrap()
                .insert(1, [0u8].as_slice())
                .unwrap();
            tx.open_table(UNPOST)
                .unwrap()
                .insert((1, 9), [1u8].as_slice())
                .unwrap();
            tx.open_table(UNINDEXED)
                .unwrap()
                .insert((1, 2), state::PENDING)
                .unwrap();
        }
        tx.commit().unwrap();
        drop(db);
        let db = open_and_migrate(&path, &snaps, 1 << 20).unwrap();
        let tx = db.begin_read().unwrap();
        assert!(tx.open_table(TERMS).unwrap().is_empty().unwrap());
        assert!(tx.open_table(TERM_LEVELS).unwrap().is_empty().unwrap());
        assert!(tx.open_table(UNPOST).unwrap().is_empty().unwrap());
        let derived: Vec<String> = tx
            .open_table(BLOB_DERIVED)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value().1.to_string())
            .collect();
        assert_eq!(derived, ["summary"], "the terms go, the summary stays");
        let waiting: Vec<((u64, u64), u8)> = tx
            .open_table(UNINDEXED)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| e.map(|(k, v)| (k.value(), v.value())).unwrap())
            .collect();
        assert_eq!(
            waiting,
            [((1, 1), state::WAITING), ((1, 2), state::WAITING)],
            "the mailbox's messages, all waiting for the deriver"
        );
    }
}
