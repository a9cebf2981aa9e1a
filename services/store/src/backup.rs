//! Backups: the whole store as one .tar.gz, taken from a read snapshot while the box runs,
//! and restored into an empty data directory.
//!
//! The archive holds `bureau-backup.json` (what it is), `bureau.redb` (every table of the
//! snapshot copied into a fresh database: compact, and consistent without stopping writers),
//! `blobs/<xx>/<hash>` for each blob file the snapshot refers to, and `settings/<path>` for
//! each of the box's own settings kept as files beside the store ([`SETTINGS`]). While a backup runs the
//! blob directory removes nothing (a freed file is left for the next start's orphan sweep),
//! so every file the snapshot names is still there to be read. A restore checks every blob
//! against its hash and the database's schema before anything is moved into place.

use crate::blob::BlobDir;
use crate::tables::{self, *};
use crate::{Result, StoreError};
use bureau_words::said;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;

const MANIFEST: &str = "bureau-backup.json";
const DB: &str = "bureau.redb";

/// What a backup holds, as written in its manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupInfo {
    pub format: u32,
    pub schema_version: u64,
    pub created: i64,
    pub blobs: u64,
    pub blob_bytes: u64,
}

fn copy<K: redb::Key + 'static, V: redb::Value + 'static>(
    src: &ReadTransaction,
    dst: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<()> {
    let from = src.open_table(def)?;
    let mut to = dst.open_table(def)?;
    for entry in from.iter()? {
        let (k, v) = entry?;
        to.insert(k.value(), v.value())?;
    }
    Ok(())
}

/// Copies every table (the list `tables::create_all` makes), then checks that none is missed.
fn copy_all(src: &ReadTransaction, dst: &WriteTransaction) -> Result<()> {
    copy(src, dst, META)?;
    copy(src, dst, PRINCIPALS)?;
    copy(src, dst, PRINCIPAL_NAMES)?;
    copy(src, dst, MEMBER_OF)?;
    copy(src, dst, COLLECTIONS)?;
    copy(src, dst, COLLECTION_NAMES)?;
    copy(src, dst, TOMBSTONE_NAMES)?;
    copy(src, dst, ITEMS)?;
    copy(src, dst, ITEM_NAMES)?;
    copy(src, dst, UNSEEN)?;
    copy(src, dst, DELETED)?;
    copy(src, dst, UIDS)?;
    copy(src, dst, ID_RUNS)?;
    copy(src, dst, TERMS)?;
    copy(src, dst, TERM_LEVELS)?;
    copy(src, dst, UNINDEXED)?;
    copy(src, dst, UNPOST)?;
    copy(src, dst, CHANGELOG)?;
    copy(src, dst, GRANTS)?;
    copy(src, dst, GRANTS_BY_GRANTEE)?;
    copy(src, dst, BLOB_REFS)?;
    copy(src, dst, BLOB_DATA)?;
    copy(src, dst, BLOB_DERIVED)?;
    copy(src, dst, USAGE)?;
    copy(src, dst, KV)?;
    copy(src, dst, DEVICES)?;
    copy(src, dst, SYNC_STATES)?;
    let names = |it: Box<dyn Iterator<Item = redb::UntypedTableHandle>>| {
        let mut v: Vec<String> = it.map(|t| t.name().to_string()).collect();
        v.sort();
        v
    };
    let (a, b) = (
        names(Box::new(src.list_tables()?)),
        names(Box::new(dst.list_tables()?)),
    );
    if a != b {
        return Err(StoreError::Corrupt(format!(
            "backup: tables {a:?} copied as {b:?}"
        )));
    }
    Ok(())
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// Writes the archive of `snapshot` to `out`. `tmp` is a directory for the database copy.
pub(crate) fn write(
    snapshot: &ReadTransaction,
    blobs: &BlobDir,
    data: &Path,
    out: impl Write,
) -> Result<BackupInfo> {
    let tmp = &data.join("tmp");
    let schema_version = snapshot
        .open_table(META)?
        .get("schema_version")?
        .map(|v| v.value())
        .unwrap_or(0);
    // The database: every table into a fresh file.
    std::fs::create_dir_all(tmp)?;
    let copy_path = tmp.join(format!("backup-{}.redb", std::process::id()));
    let _ = std::fs::remove_file(&copy_path);
    let result = (|| {
        {
            let db = Database::create(&copy_path)?;
            let tx = db.begin_write()?;
            copy_all(snapshot, &tx)?;
            tx.commit()?;
        }
        // The blob files the snapshot refers to (small ones are inside the database).
        let refs = snapshot.open_table(BLOB_REFS)?;
        let inline = snapshot.open_table(BLOB_DATA)?;
        let mut files = Vec::new();
        for entry in refs.iter()? {
            let (hash, _) = entry?;
            let hash = *hash.value();
            if inline.get(&hash)?.is_none() {
                files.push(hash);
            }
        }
        let mut blob_bytes = 0;
        for hash in &files {
            blob_bytes += std::fs::metadata(blobs.path(hash))
                .map_err(|e| io(format!("blob {}: {e}", hex::encode(hash))))?
                .len();
        }
        let info = BackupInfo {
            format: 1,
            schema_version,
            created: crate::now(),
            blobs: files.len() as u64,
            blob_bytes,
        };
        let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut append = |name: &str, data: &mut dyn Read, len: u64| -> Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(len);
            h.set_mode(0o600);
            h.set_mtime(info.created.max(0) as u64);
            h.set_cksum();
            tar.append_data(&mut h, name, data).map_err(io)
        };
        // The manifest first, so a reader knows what follows.
        let manifest = serde_json::to_vec_pretty(&info).map_err(io)?;
        append(MANIFEST, &mut manifest.as_slice(), manifest.len() as u64)?;
        let mut f = std::fs::File::open(&copy_path)?;
        let len = f.metadata()?.len();
        append(DB, &mut f, len)?;
        for hash in &files {
            let path = blobs.path(hash);
            let mut f = std::fs::File::open(&path)
                .map_err(|e| io(format!("blob {}: {e}", hex::encode(hash))))?;
            let len = f.metadata()?.len();
            let hex = hex::encode(hash);
            append(&format!("blobs/{}/{hex}", &hex[..2]), &mut f, len)?;
        }
        for rel in SETTINGS {
            if let Ok(mut f) = std::fs::File::open(data.join(rel)) {
                let len = f.metadata()?.len().min(SETTING_MAX);
                append(
                    &format!("settings/{rel}"),
                    &mut Read::by_ref(&mut f).take(len),
                    len,
                )?;
            }
        }
        tar.into_inner()
            .map_err(io)?
            .finish()
            .map_err(io)?
            .flush()?;
        Ok(info)
    })();
    let _ = std::fs::remove_file(&copy_path);
    result
}

/// The box's settings that live as files in the data directory, beside the store: the
/// console's certificate and key, the box's name and time zone. A backup holds those that
/// exist; a restore puts back those it holds (and only those: what it lacks is the box's
/// default). Each is small.
pub const SETTINGS: [&str; 4] = [
    "tls/custom.crt",
    "tls/custom.key",
    "system/hostname",
    "system/timezone",
];
const SETTING_MAX: u64 = 1 << 20;

/// The time zone's link the appliance's /etc/localtime follows, made again from the
/// restored name (a link is not kept in the archive).
fn link_localtime(dir: &Path) -> std::io::Result<()> {
    let Ok(tz) = std::fs::read_to_string(dir.join("system/timezone")) else {
        return Ok(());
    };
    let tz = tz.trim();
    let safe = !tz.is_empty()
        && !tz.starts_with('/')
        && !tz.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
    if !safe {
        return Ok(());
    }
    let tmp = dir.join("system/localtime.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("/usr/share/zoneinfo").join(tz), &tmp)?;
    std::fs::rename(&tmp, dir.join("system/localtime"))
}

fn bad(s: bureau_words::Said) -> StoreError {
    StoreError::BadBackup(s)
}

/// Where the console leaves a checked restore for the next start (`swap_in`).
pub const PENDING: &str = "restore-pending";

/// Restores an archive into `dir`, which must not hold a store yet. Everything is checked
/// (each blob's hash, the database's schema) in a staging directory before it is moved in.
pub fn restore(archive: impl Read, dir: &Path) -> Result<BackupInfo> {
    if dir.join(DB).exists() {
        return Err(bad(
            said("err_backup_already_holds_a_store_restore_into").with("dir", dir.display())
        ));
    }
    std::fs::create_dir_all(dir)?;
    let staging = dir.join(format!(".restore-{}", std::process::id()));
    let result = stage(archive, &staging).and_then(|info| {
        install(&staging, dir)?;
        Ok(info)
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Unpacks and checks an archive into `staging` (made afresh): every blob against its hash,
/// the database's schema, every blob the database refers to present. Nothing else is touched.
///
/// What is wrong with an archive is said in words: a file that is no gzip archive is "not a
/// Bureau backup", one whose reading fails midway "damaged or cut short".
pub fn stage(archive: impl Read, staging: &Path) -> Result<BackupInfo> {
    let _ = std::fs::remove_dir_all(staging);
    std::fs::create_dir_all(staging.join("blobs"))?;
    let mut archive = std::io::BufReader::new(archive);
    if !std::io::BufRead::fill_buf(&mut archive)?.starts_with(&[0x1f, 0x8b]) {
        let _ = std::fs::remove_dir_all(staging);
        return Err(bad(said("err_backup_not_an_archive")));
    }
    let broken = std::rc::Rc::new(std::cell::Cell::new(false));
    let watched = Watched {
        inner: flate2::read::GzDecoder::new(archive),
        broken: broken.clone(),
    };
    let result = (|| {
        let mut tar = tar::Archive::new(watched);
        let mut info: Option<BackupInfo> = None;
        let mut seen_db = false;
        for entry in tar.entries().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
            if name == MANIFEST {
                let mut buf = Vec::new();
                entry.by_ref().take(1 << 20).read_to_end(&mut buf)?;
                info = Some(serde_json::from_slice(&buf).map_err(|e| {
                    log::info!("backup: the manifest does not read: {e}");
                    bad(said("err_backup_not_bureau"))
                })?);
            } else if name == DB {
                let mut f = std::fs::File::create(staging.join(DB))?;
                std::io::copy(&mut entry, &mut f)?;
                f.sync_all()?;
                seen_db = true;
            } else if let Some(hex) = name
                .strip_prefix("blobs/")
                .and_then(|r| r.split_once('/'))
                .map(|(_, h)| h.to_string())
            {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&hex, &mut hash)
                    .map_err(|_| bad(said("err_backup_unexpected_file").with("name", &name)))?;
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                if *blake3::hash(&data).as_bytes() != hash {
                    return Err(bad(
                        said("err_backup_blob_does_not_match_its_hash").with("hex", &hex)
                    ));
                }
                let shard = staging.join("blobs").join(&hex[..2]);
                std::fs::create_dir_all(&shard)?;
                let mut f = std::fs::File::create(shard.join(&hex))?;
                f.write_all(&data)?;
                f.sync_all()?;
            } else if let Some(rel) = name
                .strip_prefix("settings/")
                .filter(|rel| SETTINGS.contains(rel))
            {
                let path = staging.join("settings").join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut data = Vec::new();
                entry.by_ref().take(SETTING_MAX).read_to_end(&mut data)?;
                let mut f = crate::modes::private_file(&path)?;
                f.write_all(&data)?;
                f.sync_all()?;
            } else {
                return Err(bad(
                    said("err_backup_unexpected_file_in_the_archive").with("name", &name)
                ));
            }
        }
        let info = info.ok_or_else(|| bad(said("err_backup_not_a_bureau_backup_no_manifest")))?;
        if !seen_db {
            return Err(bad(said("err_backup_the_archive_has_no_database")));
        }
        if info.schema_version > crate::schema::SCHEMA_VERSION {
            return Err(bad(said("err_backup_the_backups_schema_is_newer_than")
                .with("schema_version", info.schema_version)
                .with("supported", crate::schema::SCHEMA_VERSION)));
        }
        // Every blob the database refers to must have come with it.
        {
            let db = Database::open(staging.join(DB))?;
            let tx = db.begin_read()?;
            let refs = tx.open_table(tables::BLOB_REFS)?;
            let inline = tx.open_table(tables::BLOB_DATA)?;
            for entry in refs.iter()? {
                let (hash, _) = entry?;
                let hash = *hash.value();
                let hex = hex::encode(hash);
                if inline.get(&hash)?.is_none()
                    && !staging.join("blobs").join(&hex[..2]).join(&hex).exists()
                {
                    return Err(bad(
                        said("err_backup_blob_is_missing_from_the_archive").with("hex", &hex)
                    ));
                }
            }
        }
        for f in [
            staging.join(DB),
            staging.join("blobs"),
            staging.to_path_buf(),
        ] {
            std::fs::File::open(&f)?.sync_all()?;
        }
        Ok(info)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(staging);
    }
    match result {
        Err(e) if broken.get() => {
            log::info!("backup: an archive does not read: {e}");
            Err(bad(said("err_backup_damaged")))
        }
        other => other,
    }
}

/// The decompressed archive, remembering whether reading it failed (gzip or tar data that
/// stops or does not decode), as opposed to writing the staged copy.
struct Watched<R> {
    inner: R,
    broken: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.broken.set(true))
    }
}

/// Moves a staged store into `dir`, which must not hold one, with the settings it holds.
fn install(staging: &Path, dir: &Path) -> Result<()> {
    for rel in SETTINGS {
        let from = staging.join("settings").join(rel);
        if from.exists() {
            let to = dir.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::rename(&from, &to)?;
        }
    }
    link_localtime(dir)?;
    std::fs::rename(staging.join("blobs"), dir.join("blobs")).or_else(
        |_| -> std::io::Result<()> {
            // blobs/ exists already (empty store directory made earlier): move shard by shard.
            for shard in std::fs::read_dir(staging.join("blobs"))? {
                let shard = shard?;
                std::fs::rename(shard.path(), dir.join("blobs").join(shard.file_name()))?;
            }
            Ok(())
        },
    )?;
    std::fs::rename(staging.join(DB), dir.join(DB))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Replaces the store in `dir` with the one staged in `pending` (before the store is
/// opened). The replaced database and blobs are kept in `aside`, never deleted.
pub fn swap_in(pending: &Path, dir: &Path, aside: &Path) -> Result<()> {
    std::fs::create_dir_all(aside)?;
    for name in [DB, "blobs"].into_iter().chain(SETTINGS) {
        if let Some(parent) = aside.join(name).parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::rename(dir.join(name), aside.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    std::fs::File::open(aside)?.sync_all()?;
    install(pending, dir)?;
    std::fs::remove_dir_all(pending)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
