//! Content-addressed blob files: `blobs/<first byte hex>/<hash hex>`, written as
//! `.tmp-<pid>-<n>` in the same directory and renamed.
//!
//! Blobs of at most `INLINE_MAX` bytes are not files: they live in redb's `BLOB_DATA` table,
//! keyed by the same hash, and become durable with the commit that first refers to them (a
//! file per small message costs an inode allocation each, which dominated write time).
//!
//! A blob is staged by its writer (temporary file, rename into place, no fsync), and made
//! durable by the group commit with one `syncfs` for the whole batch before the metadata
//! that refers to it commits. A blob file is trusted only while `BLOB_REFS` counts it: a
//! file left by a crash before its commit is rewritten when staged again and removed by the
//! orphan sweep.
//!
//! A blob whose count falls to zero is deleted after the commit, unless a writer has staged
//! the same content meanwhile (the in-flight set), so a concurrent re-use never loses it.

use crate::model::BlobRef;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Largest blob kept inside the database rather than as a file.
pub const INLINE_MAX: u64 = 32 * 1024;

pub(crate) struct BlobDir {
    root: PathBuf,
    dir: File,
    inflight: Mutex<HashMap<[u8; 32], u32>>,
    tmp_counter: AtomicU64,
    /// Backups running: while any is, no file is removed (the orphan sweep at the next
    /// start removes what was freed meanwhile).
    holds: std::sync::atomic::AtomicUsize,
}

/// Keeps a blob directory from removing files while it lives (see `BlobDir::hold`).
pub(crate) struct Hold<'a>(&'a BlobDir);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.0.holds.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A blob written for a pending write. Holding it keeps the file from being collected;
/// `written` says the batch that uses it must sync the file system first.
pub struct StagedBlob {
    pub(crate) blob: BlobRef,
    pub(crate) written: bool,
    /// The bytes of a blob kept in the database.
    pub(crate) inline: Option<Vec<u8>>,
    /// What `Store::stage` derived from the bytes, saved with the blob.
    pub(crate) derived: Vec<(&'static str, Vec<u8>)>,
    /// The directory whose in-flight set pins this blob's file.
    dir: Option<Arc<BlobDir>>,
}

impl StagedBlob {
    pub fn blob_ref(&self) -> BlobRef {
        self.blob
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        let Some(dir) = &self.dir else { return };
        let mut set = dir.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = set.get_mut(&self.blob.hash) {
            *n -= 1;
            if *n == 0 {
                set.remove(&self.blob.hash);
            }
        }
    }
}

impl BlobDir {
    pub(crate) fn open(root: &Path) -> io::Result<BlobDir> {
        crate::modes::private_dir(root)?;
        let dir = File::open(root)?;
        Ok(BlobDir {
            root: root.to_path_buf(),
            dir,
            inflight: Mutex::new(HashMap::new()),
            tmp_counter: AtomicU64::new(0),
            holds: Default::default(),
        })
    }

    /// Removes nothing until the hold is dropped.
    pub(crate) fn hold(&self) -> Hold<'_> {
        self.holds.fetch_add(1, Ordering::SeqCst);
        Hold(self)
    }

    fn held(&self) -> bool {
        self.holds.load(Ordering::SeqCst) > 0
    }

    pub(crate) fn path(&self, hash: &[u8; 32]) -> PathBuf {
        let hex = hex::encode(hash);
        self.root.join(&hex[..2]).join(hex)
    }

    /// Marks the hash as in flight. Call before deciding whether the file must be written.
    pub(crate) fn pin(self: &Arc<Self>, blob: BlobRef) -> StagedBlob {
        let mut set = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        *set.entry(blob.hash).or_insert(0) += 1;
        StagedBlob {
            blob,
            written: false,
            inline: None,
            derived: Vec::new(),
            dir: Some(self.clone()),
        }
    }

    /// A blob kept in the database: nothing to pin or write.
    pub(crate) fn inline(blob: BlobRef, data: &[u8]) -> StagedBlob {
        StagedBlob {
            blob,
            written: false,
            inline: Some(data.to_vec()),
            derived: Vec::new(),
            dir: None,
        }
    }

    /// Writes the file (temporary name, then rename). Not yet durable.
    pub(crate) fn write(&self, hash: &[u8; 32], data: &[u8]) -> io::Result<()> {
        let path = self.path(hash);
        let parent = path.parent().expect("blob path has a parent");
        if !parent.exists() {
            crate::modes::private_dir(parent)?;
        }
        // The temporary file sits beside its final name: creations spread over the shard
        // directories, and the rename stays within one directory.
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".tmp-{}-{n}", std::process::id()));
        let mut f = crate::modes::private_file(&tmp)?;
        f.write_all(data)?;
        drop(f);
        fs::rename(&tmp, &path)
    }

    /// Makes every staged file and rename durable: one flush of the file system for the batch.
    pub(crate) fn sync(&self) -> io::Result<()> {
        nix::unistd::syncfs(&self.dir).map_err(io::Error::from)
    }

    pub(crate) fn read(&self, blob: &BlobRef) -> io::Result<Vec<u8>> {
        fs::read(self.path(&blob.hash))
    }

    /// Removes files whose count fell to zero, unless staged again meanwhile.
    pub(crate) fn collect(&self, freed: &[[u8; 32]]) {
        let set = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if self.held() {
            return;
        }
        for hash in freed {
            if !set.contains_key(hash) {
                let _ = fs::remove_file(self.path(hash));
            }
        }
    }

    /// Removes candidates that are not pinned and that `still_free` (asked while new pins are
    /// held off) confirms no committed item refers to.
    pub(crate) fn collect_if(
        &self,
        candidates: &[[u8; 32]],
        still_free: impl FnOnce(&[[u8; 32]]) -> Vec<[u8; 32]>,
    ) {
        let set = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if self.held() {
            return;
        }
        let unpinned: Vec<[u8; 32]> = candidates
            .iter()
            .filter(|h| !set.contains_key(*h))
            .copied()
            .collect();
        for hash in still_free(&unpinned) {
            let _ = fs::remove_file(self.path(&hash));
        }
    }

    /// Every blob file on disk, for the orphan sweep. Temporary files of an earlier process
    /// (left by a crash before their rename; never referenced) are removed on the way.
    pub(crate) fn list(&self) -> io::Result<Vec<[u8; 32]>> {
        let mine = format!(".tmp-{}-", std::process::id());
        let mut out = Vec::new();
        for shard in fs::read_dir(&self.root)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for f in fs::read_dir(shard.path())? {
                let f = f?;
                let name = f.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".tmp-") {
                    if !name.starts_with(&mine) {
                        let _ = fs::remove_file(f.path());
                    }
                    continue;
                }
                let mut hash = [0u8; 32];
                if hex::decode_to_slice(name.as_bytes(), &mut hash).is_ok() {
                    out.push(hash);
                }
            }
        }
        Ok(out)
    }
}
