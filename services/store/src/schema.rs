//! Schema version and migrations. A migration runs at start, after a snapshot of the file;
//! a database newer than this binary is refused, never opened for writing.

use crate::tables::{META, create_all};
use crate::{Result, StoreError, now};
use redb::{Builder, Database, ReadableDatabase, WriteTransaction};
use std::path::Path;

pub const SCHEMA_VERSION: u64 = 1;

pub(crate) type Migration = fn(&WriteTransaction) -> Result<()>;

/// `MIGRATIONS[i]` takes a database from version `i + 1` to `i + 2`.
const MIGRATIONS: &[Migration] = &[];

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
            std::fs::create_dir_all(snapshots)?;
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
}
