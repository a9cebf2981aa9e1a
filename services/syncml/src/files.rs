//! The Files datastore (also `briefcase`): the files at the top of the user's home folder
//! on the office's file server (`<shares_dir>/homes/<uid>`, what Samba's `[homes]` share
//! shows), as OMA DS file objects (`application/vnd.omads-file+xml`: `name`, `modified`,
//! `size`, `cttype`, `body` in base64).
//!
//! A folder has no change log, so one is kept beside it: a manifest per user (the store's
//! `syncml-files` records) gives each file an id and a version, and a scan at each session
//! gives a file whose size or time changed (or a new one) the next version and a removed
//! one a tombstone. Versions play the modseqs' part in the device's sync state, so a sync
//! sends what changed since the device's last, and not what the device itself wrote.
//! Files over the largest object (`MAX_OBJECT`), dot files and folders are left out.

use bureau_core::homes::Homes;
use bureau_store::{
    Actor, Collection, CollectionId, CollectionKind, ItemId, PrincipalId, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The id the Files datastore is kept under in a device's sync state: one the store never
/// gives a collection.
pub const COLLECTION: CollectionId = u64::MAX - 1;
pub const CONTENT_TYPE: &str = "application/vnd.omads-file+xml";
const NS: &str = "syncml-files";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    id: ItemId,
    size: u64,
    /// Modification time, nanoseconds since the epoch.
    mtime: i128,
    version: u64,
}

/// A user's files as last seen, with their versions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// The highest version given.
    pub counter: u64,
    next_id: ItemId,
    files: BTreeMap<String, Entry>,
    /// Removed files' ids, with the version their removal got.
    gone: BTreeMap<ItemId, u64>,
}

/// What a folder holds: name -> (size, mtime).
type Seen = BTreeMap<String, (u64, i128)>;

fn seen(home: &Path) -> Seen {
    let mut out = Seen::new();
    for e in std::fs::read_dir(home).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(meta) = e.metadata() else { continue };
        if name.starts_with('.') || !meta.is_file() || meta.len() > crate::MAX_OBJECT as u64 {
            continue;
        }
        out.insert(name, size_and_time(&meta));
    }
    out
}

impl Manifest {
    fn bump(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Brought up to what the folder holds now.
    fn update(&mut self, now: &Seen) {
        let gone: Vec<String> = self
            .files
            .keys()
            .filter(|n| !now.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            let e = self.files.remove(&name).expect("listed");
            let v = self.bump();
            self.gone.insert(e.id, v);
        }
        for (name, &(size, mtime)) in now {
            self.set(name, size, mtime);
        }
    }

    /// A file's entry, a new version if it changed; its id and version.
    fn set(&mut self, name: &str, size: u64, mtime: i128) -> (ItemId, u64) {
        if let Some(e) = self.files.get(name)
            && (e.size, e.mtime) == (size, mtime)
        {
            return (e.id, e.version);
        }
        let version = self.bump();
        let id = match self.files.get(name) {
            Some(e) => e.id,
            None => {
                self.next_id += 1;
                self.next_id
            }
        };
        self.files.insert(
            name.to_string(),
            Entry {
                id,
                size,
                mtime,
                version,
            },
        );
        (id, version)
    }

    pub fn name_of(&self, id: ItemId) -> Option<&str> {
        self.files
            .iter()
            .find(|(_, e)| e.id == id)
            .map(|(n, _)| n.as_str())
    }

    pub fn id_of(&self, name: &str) -> Option<ItemId> {
        self.files.get(name).map(|e| e.id)
    }

    /// The files changed after `since` (id, version), and the ids removed after it.
    pub fn since(&self, since: u64) -> (Vec<(ItemId, u64)>, Vec<ItemId>) {
        let changed = self
            .files
            .values()
            .filter(|e| e.version > since)
            .map(|e| (e.id, e.version))
            .collect();
        let gone = self
            .gone
            .iter()
            .filter(|(_, v)| **v > since)
            .map(|(id, _)| *id)
            .collect();
        (changed, gone)
    }

    pub fn size_of(&self, id: ItemId) -> u64 {
        self.files
            .values()
            .find(|e| e.id == id)
            .map_or(0, |e| e.size)
    }

    /// Every file's id.
    pub fn ids(&self) -> Vec<ItemId> {
        self.files.values().map(|e| e.id).collect()
    }

    /// The datastore as a collection (never stored) whose modseq is the last version.
    pub fn collection(&self, owner: PrincipalId) -> Collection {
        Collection {
            id: COLLECTION,
            owner,
            kind: CollectionKind::Notes,
            name: "files".into(),
            modseq: self.counter,
            log_floor: 0,
            next_item: self.next_id + 1,
            validity: 0,
            props: Default::default(),
            keywords: Vec::new(),
        }
    }
}

/// A user's home folder and manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Folder {
    pub home: PathBuf,
    pub uid: String,
    /// The group its files get (Samba's files account).
    pub group: String,
}

impl Folder {
    pub fn of(homes: &Homes, uid: &str) -> Folder {
        Folder {
            home: homes.dir.join(uid),
            uid: uid.to_string(),
            group: homes.group.clone(),
        }
    }

    pub fn manifest(&self, store: &Store) -> Result<Manifest, StoreError> {
        let r = store.reader(Actor::System)?;
        Ok(r.kv_get(NS, &self.uid)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    /// Looks at the folder and records what changed; the manifest after.
    pub async fn scan(&self, store: &Store) -> Result<Manifest, StoreError> {
        let home = self.home.clone();
        let now = tokio::task::spawn_blocking(move || seen(&home))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(self.change(store, move |m| m.update(&now)).await?.0)
    }

    /// Records a change the device made (`Some`: the file written, with its size and
    /// time; `None`: removed); the file's id and version.
    pub async fn record(
        &self,
        store: &Store,
        name: &str,
        after: Option<(u64, i128)>,
    ) -> Result<(ItemId, u64), StoreError> {
        let name = name.to_string();
        let (_, out) = self
            .change(store, move |m| match after {
                Some((size, mtime)) => m.set(&name, size, mtime),
                None => match m.files.remove(&name) {
                    Some(e) => {
                        let v = m.bump();
                        m.gone.insert(e.id, v);
                        (e.id, v)
                    }
                    None => (0, m.counter),
                },
            })
            .await?;
        Ok(out)
    }

    /// An edit made to the manifest as read in the write, so that two sessions of one user
    /// do not undo each other's; the manifest after, and what the edit gave.
    async fn change<R: Send + 'static>(
        &self,
        store: &Store,
        edit: impl Fn(&mut Manifest) -> R + Send + Sync + 'static,
    ) -> Result<(Manifest, R), StoreError> {
        let uid = self.uid.clone();
        store
            .write(Actor::System, vec![], move |w| {
                let mut m: Manifest = w
                    .kv_get(NS, &uid)?
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                let out = edit(&mut m);
                let bytes = serde_json::to_vec(&m).map_err(|e| StoreError::Io(e.to_string()))?;
                w.kv_put(NS, &uid, &bytes)?;
                Ok::<_, StoreError>((m, out))
            })
            .await
    }
}

/// A file as the device gets it.
pub fn to_object(name: &str, data: &[u8], mtime: i128) -> String {
    use base64::Engine;
    let modified = chrono::DateTime::from_timestamp((mtime / 1_000_000_000) as i64, 0)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ");
    format!(
        "<File><name>{}</name><modified>{modified}</modified><size>{}</size>\
         <cttype>{}</cttype><body enc=\"base64\">{}</body></File>",
        quick_xml::escape::escape(name),
        data.len(),
        content_type(name),
        base64::engine::general_purpose::STANDARD.encode(data)
    )
}

/// A device's file object: its name (checked: one file's name) and its contents.
pub fn from_object(xml: &str) -> Option<(String, Vec<u8>)> {
    let (root, fields) = crate::sif::fields(xml)?;
    if !root.eq_ignore_ascii_case("file") {
        return None;
    }
    let get = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    };
    let name = get("name")?.trim().to_string();
    if !bureau_core::homes::plain_name(&name) || name.starts_with('.') {
        return None;
    }
    let body = get("body").unwrap_or("");
    // Bodies are base64 (as this server sends them, and as binary files need); one that
    // is not is taken as it is.
    let data = crate::itemformat::base64(body).unwrap_or_else(|| body.as_bytes().to_vec());
    Some((name, data))
}

/// A file's content type by its extension.
fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("txt") => "text/plain",
        Some("pdf") => "application/pdf",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("vcf") => "text/vcard",
        Some("ics") => "text/calendar",
        Some("doc") => "application/msword",
        Some("xls") => "application/vnd.ms-excel",
        Some("odt") => "application/vnd.oasis.opendocument.text",
        _ => "application/octet-stream",
    }
}

/// A file's size and modification time as the manifest keeps them.
pub fn stat(path: &Path) -> std::io::Result<(u64, i128)> {
    std::fs::metadata(path).map(|m| size_and_time(&m))
}

fn size_and_time(meta: &std::fs::Metadata) -> (u64, i128) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    (meta.len(), mtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_versions_changes_and_removals() {
        let mut m = Manifest::default();
        let seen = |v: &[(&str, u64, i128)]| -> Seen {
            v.iter()
                .map(|(n, s, t)| (n.to_string(), (*s, *t)))
                .collect()
        };
        m.update(&seen(&[("a.txt", 3, 1), ("b.pdf", 9, 1)]));
        assert_eq!(m.counter, 2);
        let a = m.id_of("a.txt").unwrap();
        m.update(&seen(&[("a.txt", 3, 1), ("b.pdf", 9, 1)]));
        assert_eq!(m.counter, 2, "nothing changed, nothing versioned");
        m.update(&seen(&[("a.txt", 4, 2)]));
        let (changed, gone) = m.since(2);
        assert_eq!(changed, [(a, 4)]);
        assert_eq!(gone.len(), 1);
        assert_eq!(m.name_of(a), Some("a.txt"));
    }

    #[test]
    fn a_file_object_goes_both_ways_and_bad_names_are_refused() {
        let xml = to_object(
            "Q4 plan & budget.txt",
            b"plan\x00\xff",
            1_796_000_000_000_000_000,
        );
        assert!(
            xml.contains("<name>Q4 plan &amp; budget.txt</name>")
                && xml.contains("<cttype>text/plain"),
            "{xml}"
        );
        assert_eq!(
            from_object(&xml),
            Some(("Q4 plan & budget.txt".into(), b"plan\x00\xff".to_vec()))
        );
        for bad in ["../etc/passwd", ".hidden", "a/b", ""] {
            assert_eq!(
                from_object(&format!("<File><name>{bad}</name><body>eA==</body></File>")),
                None,
                "{bad}"
            );
        }
        assert_eq!(from_object("<Email><name>x</name></Email>"), None);
    }
}
