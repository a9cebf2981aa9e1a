//! The one store every protocol shares: redb for metadata, content-addressed files for
//! bodies, a per-collection change log, and a change bus.
//!
//! Invariants:
//! - Every item write raises its collection's modseq and stamps the item; a deletion leaves a
//!   tombstone. `Reader::changes_since` answers from that log alone.
//! - A write is acknowledged (its future resolves `Ok`) only after the redb commit with
//!   fsync, and after every blob it uses was made durable (one `syncfs` per batch).
//! - One writer thread applies writes in batches (group commit); concurrent writers share
//!   the cost of a commit.
//! - Rights are checked by `Reader` and `Writer` themselves; no caller reaches the tables.
//! - Changes are published on the bus after their commit, never before.

mod access;
pub mod backup;
mod blob;
mod model;
mod modes;
mod read;
mod schema;
mod tables;
pub mod terms;
mod write;

pub use blob::{INLINE_MAX, StagedBlob};
pub use model::*;
pub use read::Reader;
pub use schema::SCHEMA_VERSION;
pub use write::Writer;

use blob::BlobDir;
use redb::{Database, Durability, ReadableDatabase};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{broadcast, mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("permission denied")]
    Forbidden,
    #[error("already exists: {0}")]
    Exists(String),
    #[error("quota exceeded")]
    OverQuota,
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("changed meanwhile (now at modseq {0})")]
    Conflict(ModSeq),
    #[error("sync state is older than the change log; start over")]
    TooOld,
    #[error("disk full: the write was refused ({0})")]
    DiskFull(String),
    #[error("storage failure: {0}")]
    Io(String),
    #[error("corrupted record: {0}")]
    Corrupt(String),
    #[error(
        "the database at {path} has schema version {found}, newer than this bureau supports \
         ({supported}); refusing to open it (run a newer bureau, or restore a snapshot)"
    )]
    NewerSchema {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("the store is closed")]
    Closed,
    /// A backup archive refused, and why, in the catalogues' words.
    #[error("{0}")]
    BadBackup(bureau_words::Said),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// True for errors that are our failure rather than the client's.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            StoreError::DiskFull(_)
                | StoreError::Io(_)
                | StoreError::Corrupt(_)
                | StoreError::NewerSchema { .. }
                | StoreError::Closed
        )
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            StoreError::DiskFull(e.to_string())
        } else {
            StoreError::Io(e.to_string())
        }
    }
}

impl From<redb::StorageError> for StoreError {
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Io(io) => io.into(),
            redb::StorageError::Corrupted(s) => StoreError::Corrupt(s),
            other => StoreError::Io(other.to_string()),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                match e.into() {
                    redb::Error::Io(io) => io.into(),
                    redb::Error::Corrupted(s) => StoreError::Corrupt(s),
                    other => StoreError::Io(other.to_string()),
                }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// fsync on commit (off only for throwaway benchmarks).
    pub durable: bool,
    /// redb page cache, bytes.
    pub cache_bytes: usize,
    /// Largest number of writes committed together.
    pub max_batch: usize,
    /// Free space kept in reserve: below it, writes that bring new content are refused (the
    /// disk full error) before the database is touched; writes without new content (deletes,
    /// flags) go on until a quarter of it, so that users can still make room.
    pub min_free_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durable: true,
            cache_bytes: 16 << 20,
            max_batch: 1024,
            min_free_bytes: 64 << 20,
        }
    }
}

/// A write waiting for the writer thread: run (possibly again, after a rolled-back batch),
/// then told how its batch ended.
trait Job: Send {
    fn needs_sync(&self) -> bool;
    /// Whether it brings new content (staged blobs).
    fn adds_data(&self) -> bool;
    /// Runs the write in `tx`; what it did, and false if it failed (its error is kept for
    /// `finish`).
    fn run(&mut self, tx: &redb::WriteTransaction) -> (bool, write::Outcome);
    /// `Ok` once the batch committed (or the job failed on its own), else the commit's error.
    fn finish(self: Box<Self>, outcome: Result<()>);
}

struct OpJob<T, E, F> {
    actor: Actor,
    op: F,
    staged: Vec<StagedBlob>,
    result: Option<std::result::Result<T, E>>,
    reply: oneshot::Sender<std::result::Result<T, E>>,
}

impl<T, E, F> OpJob<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: Fn(&mut Writer) -> std::result::Result<T, E> + Send + 'static,
{
    /// The job for the writer, and where its outcome will arrive.
    #[allow(clippy::type_complexity)]
    fn boxed(
        actor: Actor,
        staged: Vec<StagedBlob>,
        op: F,
    ) -> (Box<dyn Job>, oneshot::Receiver<std::result::Result<T, E>>) {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(OpJob {
            actor,
            op,
            staged,
            result: None,
            reply,
        });
        (job, rx)
    }
}

impl<T, E, F> Job for OpJob<T, E, F>
where
    T: Send,
    E: From<StoreError> + Send,
    F: Fn(&mut Writer) -> std::result::Result<T, E> + Send,
{
    fn needs_sync(&self) -> bool {
        self.staged.iter().any(|s| s.written)
    }
    fn adds_data(&self) -> bool {
        !self.staged.is_empty()
    }
    fn run(&mut self, tx: &redb::WriteTransaction) -> (bool, write::Outcome) {
        let mut w = Writer::new(tx, self.actor, &self.staged);
        let r = (self.op)(&mut w);
        let outcome = w.outcome();
        let ok = r.is_ok();
        self.result = Some(r);
        (ok, outcome)
    }
    fn finish(self: Box<Self>, outcome: Result<()>) {
        let this = *self;
        let reply = match outcome {
            Ok(()) => this.result.unwrap_or(Err(StoreError::Closed.into())),
            Err(e) => Err(e.into()),
        };
        let _ = this.reply.send(reply);
        // `staged` drops here, after the commit: the blobs may now be collected if unused.
    }
}

enum Msg {
    Job(Box<dyn Job>),
    Stop(oneshot::Sender<()>),
}

struct Inner {
    db: Arc<Database>,
    blobs: Arc<BlobDir>,
    /// Taken on drop, so that the writer drains its queue and ends.
    jobs: Option<mpsc::Sender<Msg>>,
    bus: broadcast::Sender<Change>,
    path: PathBuf,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop_sweep: Arc<AtomicBool>,
    deriver: std::sync::OnceLock<Deriver>,
}

/// What a protocol derives from a message's bytes to keep beside it: named fields, each
/// a function of the bytes alone (so shared by every item of one blob).
pub type Deriver = fn(&[u8]) -> Vec<(&'static str, Vec<u8>)>;

impl Inner {
    fn jobs(&self) -> Result<&mpsc::Sender<Msg>> {
        self.jobs.as_ref().ok_or(StoreError::Closed)
    }
}

/// The last handle gone: finish queued writes and close the database, so that it can be
/// opened again at once.
impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_sweep.store(true, Ordering::Relaxed);
        self.jobs.take();
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

/// What a staged blob holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// A mail message: staged with what the deriver makes of it.
    Message,
    /// Anything else: calendar and contact objects, the outbound queue's copies.
    Data,
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (or creates) the store in `dir`: `dir/bureau.redb`, `dir/blobs/`,
    /// `dir/snapshots/`. Migrates an older schema after a snapshot; refuses a newer one.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(dir)?;
        modes::repair(dir)?;
        let path = dir.join("bureau.redb");
        if !path.exists() {
            modes::private_file(&path)?;
        }
        let db = schema::open_and_migrate(&path, &dir.join("snapshots"), opts.cache_bytes)?;
        let db = Arc::new(db);
        let blobs = Arc::new(BlobDir::open(&dir.join("blobs"))?);
        let (jobs, rx) = mpsc::channel(8192);
        let (bus, _) = broadcast::channel(4096);
        let writer = {
            let (db, blobs, bus) = (db.clone(), blobs.clone(), bus.clone());
            let opts = opts.clone();
            let root = dir.to_path_buf();
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || writer_loop(db, blobs, root, rx, bus, opts))?
        };
        let stop_sweep = Arc::new(AtomicBool::new(false));
        let sweeper = {
            let (db, blobs, stop) = (db.clone(), blobs.clone(), stop_sweep.clone());
            std::thread::Builder::new()
                .name("store-sweep".into())
                .spawn(move || {
                    if let Err(e) = sweep_orphans(&db, &blobs, &stop) {
                        log::warn!("blob sweep: {e}");
                    }
                })?
        };
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                blobs,
                jobs: Some(jobs),
                bus,
                path: dir.to_path_buf(),
                threads: vec![writer, sweeper],
                stop_sweep,
                deriver: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.path
    }

    /// Writes a backup of the whole store (see `backup`) to `out`, from a snapshot taken
    /// now; writers go on meanwhile. Blocking: call from a blocking thread.
    pub fn backup(&self, out: impl std::io::Write) -> Result<backup::BackupInfo> {
        let _hold = self.inner.blobs.hold();
        let snapshot = self.inner.db.begin_read()?;
        backup::write(&snapshot, &self.inner.blobs, &self.inner.path, out)
    }

    /// A consistent read snapshot, with the actor's rights.
    pub fn reader(&self, actor: Actor) -> Result<Reader> {
        Ok(Reader::new(
            self.inner.db.begin_read()?,
            actor,
            self.inner.blobs.clone(),
        ))
    }

    /// Prepares `data` as a blob for a coming `write`, off the runtime's worker threads:
    /// the one way async code stages a blob. A small one is kept in memory and stored with
    /// the commit; a large one is written as a file now (not yet durable) and made durable
    /// before the commit. A mail message gets what the deriver makes of it, saved with the
    /// blob when the write that uses it commits (at delivery, so readers find it ready).
    pub async fn stage(&self, data: Vec<u8>, content: Content) -> Result<StagedBlob> {
        if content == Content::Data && data.len() as u64 <= INLINE_MAX {
            // Nothing to write or derive: no need for a blocking thread.
            return self.stage_blocking(&data, content);
        }
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.stage_blocking(&data, content))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
    }

    /// `stage` for callers outside an async runtime (blocking file I/O and deriving).
    pub fn stage_blocking(&self, data: &[u8], content: Content) -> Result<StagedBlob> {
        let mut staged = self.stage_bytes(data)?;
        if content == Content::Message
            && let Some(d) = self.inner.deriver.get()
        {
            staged.derived = d(data);
        }
        Ok(staged)
    }

    fn stage_bytes(&self, data: &[u8]) -> Result<StagedBlob> {
        let blob = BlobRef {
            hash: *blake3::hash(data).as_bytes(),
            size: data.len() as u64,
        };
        if blob.size <= INLINE_MAX {
            return Ok(blob::BlobDir::inline(blob, data));
        }
        let mut staged = self.inner.blobs.pin(blob);
        let known = {
            let tx = self.inner.db.begin_read()?;
            let refs = tx.open_table(tables::BLOB_REFS)?;
            refs.get(&blob.hash)?.is_some()
        };
        if !known {
            self.inner.blobs.write(&blob.hash, data)?;
            staged.written = true;
        }
        Ok(staged)
    }

    /// Sets what staging derives from every mail message (once; IMAP's summaries and the
    /// message's terms).
    pub fn set_deriver(&self, d: Deriver) {
        let _ = self.inner.deriver.set(d);
    }

    /// Brings the term index up to date: each message waiting for its terms (stored before
    /// the index, or while no deriver was set) goes through the deriver, then every pending
    /// message is posted and every removal applied, in batches, and whole ranges of ids
    /// move up into larger units. Returns how many messages it took. Blocking: call from a blocking context, after `set_deriver`.
    pub fn index_pending(&self) -> Result<usize> {
        if let Some(derive) = self.inner.deriver.get().copied() {
            let waiting = self.reader(Actor::System)?.unindexed()?;
            for batch in waiting.chunks(64) {
                let reader = self.reader(Actor::System)?;
                let mut done = Vec::new();
                for &(coll, id) in batch {
                    let item = match reader.item(coll, id) {
                        Ok(item) => item,
                        Err(StoreError::NotFound) => continue,
                        Err(e) => return Err(e),
                    };
                    done.push((coll, id, derive(&reader.content(&item)?)));
                }
                self.write_blocking(Actor::System, Vec::new(), move |w| {
                    for (coll, id, derived) in &done {
                        match w.set_derived_all(*coll, *id, derived) {
                            Ok(()) | Err(StoreError::NotFound) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok::<_, StoreError>(())
                })?;
            }
        }
        let mut total = 0;
        while terms::work(&self.inner.db.begin_read()?)? {
            // Posting first; a move (background work that only makes searches cheaper)
            // when nothing is left to post, in writes of their own, small enough that
            // other writes wait little for one.
            let posted = self.write_blocking(Actor::System, Vec::new(), |w| w.post_terms(1024))?;
            total += posted;
            if posted > 0 {
                continue;
            }
            let moving = terms::merging(
                &self
                    .inner
                    .db
                    .begin_read()?
                    .open_table(tables::TERM_LEVELS)?,
            )?;
            if moving.is_none()
                || self.write_blocking(Actor::System, Vec::new(), |w| w.merge_terms(1024))? == 0
            {
                break;
            }
        }
        Ok(total)
    }

    /// Runs `op` in the next group commit and resolves once it is durable. `op` may run more
    /// than once (when another write of its batch fails half-way the batch is replayed), so
    /// it must not have side effects outside the writer.
    pub async fn write<T, E, F>(
        &self,
        actor: Actor,
        staged: Vec<StagedBlob>,
        op: F,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut Writer) -> std::result::Result<T, E> + Send + 'static,
    {
        let (job, rx) = OpJob::boxed(actor, staged, op);
        self.inner
            .jobs()?
            .send(Msg::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// `write` for callers outside an async runtime.
    pub fn write_blocking<T, E, F>(
        &self,
        actor: Actor,
        staged: Vec<StagedBlob>,
        op: F,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: Fn(&mut Writer) -> std::result::Result<T, E> + Send + 'static,
    {
        let (job, rx) = OpJob::boxed(actor, staged, op);
        self.inner
            .jobs()?
            .blocking_send(Msg::Job(job))
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Changes, published after each commit.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.bus.subscribe()
    }

    /// Finishes every queued write, then stops the writer. Later writes fail with `Closed`.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        let Ok(jobs) = self.inner.jobs() else { return };
        if jobs.send(Msg::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Removes blob files no item refers to (left by a crash before their commit).
fn sweep_orphans(db: &Database, blobs: &BlobDir, stop: &AtomicBool) -> Result<()> {
    let candidates = blobs.list()?;
    // Stagers pin before writing and unpin after their commit: a file not pinned now and
    // not counted in a snapshot taken now is unreferenced for good.
    for chunk in candidates.chunks(1024) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let unreferenced = |hashes: &[[u8; 32]]| -> Result<Vec<[u8; 32]>> {
            let tx = db.begin_read()?;
            let refs = tx.open_table(tables::BLOB_REFS)?;
            let mut free = Vec::new();
            for h in hashes {
                if refs.get(h)?.is_none() {
                    free.push(*h);
                }
            }
            Ok(free)
        };
        let orphans = unreferenced(chunk)?;
        blobs.collect_if(&orphans, |unpinned| {
            unreferenced(unpinned).unwrap_or_default()
        });
    }
    Ok(())
}

/// Refuses, before the database is touched, the jobs the free space cannot take.
fn refuse_when_full(root: &Path, min_free: u64, batch: Vec<Box<dyn Job>>) -> Vec<Box<dyn Job>> {
    if min_free == 0 {
        return batch;
    }
    let free = match nix::sys::statvfs::statvfs(root) {
        Ok(st) => st.blocks_available() * st.fragment_size(),
        Err(_) => return batch,
    };
    if free >= min_free {
        return batch;
    }
    let mut keep = Vec::new();
    for job in batch {
        if free < min_free / 4 || job.adds_data() {
            job.finish(Err(StoreError::DiskFull(format!(
                "{} KiB free, below the {} KiB reserve",
                free >> 10,
                min_free >> 10
            ))));
        } else {
            keep.push(job);
        }
    }
    keep
}

fn writer_loop(
    db: Arc<Database>,
    blobs: Arc<BlobDir>,
    root: PathBuf,
    mut rx: mpsc::Receiver<Msg>,
    bus: broadcast::Sender<Change>,
    opts: StoreOptions,
) {
    let (max_batch, durable) = (opts.max_batch.max(1), opts.durable);
    let mut stop: Option<oneshot::Sender<()>> = None;
    while stop.is_none() {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut batch: Vec<Box<dyn Job>> = Vec::new();
        match first {
            Msg::Job(j) => batch.push(j),
            Msg::Stop(s) => stop = Some(s),
        }
        while batch.len() < max_batch && stop.is_none() {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Stop(s)) => stop = Some(s),
                Err(_) => break,
            }
        }
        let batch = refuse_when_full(&root, opts.min_free_bytes, batch);
        if batch.is_empty() {
            continue;
        }
        if durable
            && batch.iter().any(|j| j.needs_sync())
            && let Err(e) = blobs.sync()
        {
            let e = StoreError::from(e);
            log::error!("store: syncing blobs failed: {e}");
            for j in batch {
                j.finish(Err(StoreError::Io(e.to_string())));
            }
            continue;
        }
        commit_batch(&db, &blobs, &bus, batch, durable);
    }
    rx.close();
    if let Some(s) = stop {
        let _ = s.send(());
    }
}

/// Applies a batch in one transaction. A job that fails without writing is simply left
/// out; one that fails after writing forces a rollback and a replay of the others.
fn commit_batch(
    db: &Database,
    blobs: &BlobDir,
    bus: &broadcast::Sender<Change>,
    mut batch: Vec<Box<dyn Job>>,
    durable: bool,
) {
    loop {
        let mut tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(e) => {
                let e = StoreError::from(e);
                log::error!("store: cannot begin a write: {e}");
                for j in batch {
                    j.finish(Err(StoreError::Io(e.to_string())));
                }
                return;
            }
        };
        if !durable {
            let _ = tx.set_durability(Durability::None);
        }
        let mut ok: Vec<Box<dyn Job>> = Vec::new();
        let mut changes = Vec::new();
        let mut freed = Vec::new();
        let mut rollback = false;
        for mut job in batch.drain(..) {
            let (succeeded, mut out) = job.run(&tx);
            if succeeded {
                changes.append(&mut out.changes);
                freed.append(&mut out.freed);
                ok.push(job);
            } else {
                rollback |= out.dirty;
                // Told now: its own error, whatever becomes of the batch.
                job.finish(Ok(()));
            }
        }
        if rollback {
            drop(tx);
            batch = ok;
            if batch.is_empty() {
                return;
            }
            continue;
        }
        match tx.commit() {
            Ok(()) => {
                blobs.collect(&freed);
                // Published before the writers hear back: whoever is told "saved" can
                // count on every subscriber having been sent the change.
                for c in changes {
                    let _ = bus.send(c);
                }
                for j in ok {
                    j.finish(Ok(()));
                }
            }
            Err(e) => {
                let e = StoreError::from(e);
                log::error!("store: commit failed: {e}");
                for j in ok {
                    j.finish(Err(match &e {
                        StoreError::DiskFull(s) => StoreError::DiskFull(s.clone()),
                        other => StoreError::Io(other.to_string()),
                    }));
                }
            }
        }
        return;
    }
}
