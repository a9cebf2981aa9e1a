//! The Files datastore (also `briefcase`): the user's home folder on the office's file
//! server (`<shares_dir>/homes/<uid>`, what Samba's `[homes]` share shows), its files as
//! OMA DS file objects (`application/vnd.omads-file+xml`: `name`, `modified`, `size`,
//! `cttype`, `body` in base64). A device that syncs it as folders (SyncML 1.2 hierarchical
//! sync) gets the folders in it too, as folder objects (`application/vnd.omads-folder+xml`),
//! and what they hold, each naming its folder; to another, the files at its top only.
//!
//! A folder has no change log, so one is kept beside it: a manifest per user (the store's
//! `syncml-files` records) gives each file an id and a version, and a scan at each session
//! gives a file whose size or time changed (or a new one) the next version and a removed
//! one a tombstone. Versions play the modseqs' part in the device's sync state, so a sync
//! sends what changed since the device's last, and not what the device itself wrote.
//! Files over the largest object (`MAX_OBJECT`), dot files and links are left out; the
//! folder is walked without passing a link (`bureau_core::beneath`).

use bureau_core::homes::Homes;
use bureau_store::{
    Actor, Collection, CollectionId, CollectionKind, ItemId, PrincipalId, Store, StoreError,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The id the Files datastore is kept under in a device's sync state: one the store never
/// gives a collection.
pub const COLLECTION: CollectionId = u64::MAX - 1;
pub const CONTENT_TYPE: &str = "application/vnd.omads-file+xml";
pub const FOLDER_TYPE: &str = "application/vnd.omads-folder+xml";
const NS: &str = "syncml-files";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    id: ItemId,
    size: u64,
    /// Modification time, nanoseconds since the epoch (a folder's: 0, its contents are
    /// their own entries).
    mtime: i128,
    version: u64,
    #[serde(default)]
    dir: bool,
}

/// A user's files as last seen, with their versions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// The highest version given.
    pub counter: u64,
    next_id: ItemId,
    /// By path under the home folder ("a.txt", "docs/b.txt").
    files: BTreeMap<String, Entry>,
    /// The paths by id, made at the first look-up (a slow sync looks each item up).
    #[serde(skip)]
    by_id: OnceLock<HashMap<ItemId, String>>,
    /// Removed files' ids, with the version their removal got.
    gone: BTreeMap<ItemId, u64>,
}

/// What a folder holds: path -> (is a folder, size, mtime).
type Seen = BTreeMap<String, (bool, u64, i128)>;

fn seen(home: &Path) -> Seen {
    bureau_core::beneath::walk(home)
        .into_iter()
        .filter(|f| f.dir || f.size <= crate::MAX_OBJECT as u64)
        .map(|f| (f.path, (f.dir, f.size, if f.dir { 0 } else { f.mtime })))
        .collect()
}

/// A path's folder ("" at the top) and its own name.
pub fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// A path in a folder.
pub fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

impl Manifest {
    fn bump(&mut self) -> u64 {
        // Every change goes through here: the index by id is made again when next asked.
        self.by_id = OnceLock::new();
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
            self.remove(&name);
        }
        for (name, &(dir, size, mtime)) in now {
            self.set(name, dir, size, mtime);
        }
    }

    /// An entry removed, with a tombstone; its id and the tombstone's version.
    fn remove(&mut self, path: &str) -> Option<(ItemId, u64)> {
        let e = self.files.remove(path)?;
        let v = self.bump();
        self.gone.insert(e.id, v);
        Some((e.id, v))
    }

    /// A folder removed with what it held, or a file.
    fn remove_tree(&mut self, path: &str) -> Option<(ItemId, u64)> {
        let inside = format!("{path}/");
        let held: Vec<String> = self
            .files
            .keys()
            .filter(|p| p.starts_with(&inside))
            .cloned()
            .collect();
        for p in held {
            self.remove(&p);
        }
        self.remove(path)
    }

    /// A file or folder renamed or moved (with what it holds): the same ids, new versions.
    fn rename(&mut self, from: &str, to: &str) {
        let inside = format!("{from}/");
        let moving: Vec<String> = self
            .files
            .keys()
            .filter(|p| *p == from || p.starts_with(&inside))
            .cloned()
            .collect();
        for p in moving {
            let mut e = self.files.remove(&p).expect("listed");
            e.version = self.bump();
            self.files.insert(format!("{to}{}", &p[from.len()..]), e);
        }
    }

    /// An entry, a new version if it changed; its id and version.
    fn set(&mut self, name: &str, dir: bool, size: u64, mtime: i128) -> (ItemId, u64) {
        if let Some(e) = self.files.get(name)
            && (e.dir, e.size, e.mtime) == (dir, size, mtime)
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
                dir,
            },
        );
        (id, version)
    }

    /// An entry's path, and whether it is a folder.
    pub fn path_of(&self, id: ItemId) -> Option<(&str, bool)> {
        let by_id = self
            .by_id
            .get_or_init(|| self.files.iter().map(|(p, e)| (e.id, p.clone())).collect());
        let path = by_id.get(&id)?;
        Some((path.as_str(), self.files.get(path)?.dir))
    }

    pub fn id_of(&self, path: &str) -> Option<ItemId> {
        self.files.get(path).map(|e| e.id)
    }

    /// The entries a device gets, by path (a folder before what it holds): every one to a
    /// device that syncs in folders, else the files at the top.
    fn shown(&self, nested: bool) -> impl Iterator<Item = &Entry> {
        self.files
            .iter()
            .filter(move |(p, e)| nested || (!e.dir && !p.contains('/')))
            .map(|(_, e)| e)
    }

    /// The entries changed after `since` (id, version), and the ids removed after it.
    pub fn since(&self, since: u64, nested: bool) -> (Vec<(ItemId, u64)>, Vec<ItemId>) {
        let changed = self
            .shown(nested)
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
        self.path_of(id)
            .and_then(|(p, _)| self.files.get(p))
            .map_or(0, |e| e.size)
    }

    /// Every entry's id a device gets, a folder before what it holds.
    pub fn ids(&self, nested: bool) -> Vec<ItemId> {
        self.shown(nested).map(|e| e.id).collect()
    }

    /// The folder an entry is in, if it is not at the top.
    pub fn parent_of(&self, id: ItemId) -> Option<ItemId> {
        let (path, _) = self.path_of(id)?;
        self.id_of(split(path).0)
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
    /// The device syncs it as folders (its DevInf's SupportHierarchicalSync).
    #[serde(default)]
    pub nested: bool,
    /// The manifest as this session last read or wrote it: read once, not per item (the
    /// Alert's scan brings it up to date with the folder).
    #[serde(skip)]
    cache: Arc<Mutex<Option<Arc<Manifest>>>>,
}

impl Folder {
    pub fn of(homes: &Homes, uid: &str) -> Folder {
        Folder {
            home: homes.dir.join(uid),
            uid: uid.to_string(),
            group: homes.group.clone(),
            nested: false,
            cache: Arc::default(),
        }
    }

    pub fn manifest(&self, store: &Store) -> Result<Arc<Manifest>, StoreError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = &*cache {
            return Ok(m.clone());
        }
        let r = store.reader(Actor::System)?;
        let m: Manifest = r
            .kv_get(NS, &self.uid)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(cache.insert(Arc::new(m)).clone())
    }

    /// Looks at the folder and records what changed; the manifest after.
    pub async fn scan(&self, store: &Store) -> Result<Arc<Manifest>, StoreError> {
        let home = self.home.clone();
        let now = tokio::task::spawn_blocking(move || seen(&home))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?;
        Ok(self.change(store, move |m| m.update(&now)).await?.0)
    }

    /// Records a change the device made (`Some`: the file or folder written, with its
    /// size and time; `None`: removed, with what it held); its id and version.
    pub async fn record(
        &self,
        store: &Store,
        path: &str,
        after: Option<(bool, u64, i128)>,
    ) -> Result<(ItemId, u64), StoreError> {
        let path = path.to_string();
        let (_, out) = self
            .change(store, move |m| match after {
                Some((dir, size, mtime)) => m.set(&path, dir, size, mtime),
                None => m.remove_tree(&path).unwrap_or((0, m.counter)),
            })
            .await?;
        Ok(out)
    }

    /// Records a rename or move the device made (the same ids).
    pub async fn record_rename(
        &self,
        store: &Store,
        from: &str,
        to: &str,
    ) -> Result<(), StoreError> {
        let (from, to) = (from.to_string(), to.to_string());
        self.change(store, move |m| m.rename(&from, &to)).await?;
        Ok(())
    }

    /// An edit made to the manifest as read in the write, so that two sessions of one user
    /// do not undo each other's; the manifest after, and what the edit gave.
    async fn change<R: Send + 'static>(
        &self,
        store: &Store,
        edit: impl Fn(&mut Manifest) -> R + Send + Sync + 'static,
    ) -> Result<(Arc<Manifest>, R), StoreError> {
        let uid = self.uid.clone();
        let (m, out) = store
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
            .await?;
        let m = Arc::new(m);
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.clone());
        Ok((m, out))
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

/// A folder object (OMA DS Folder Object 1.2): its name and, if it has one, its role.
pub fn folder_object(name: &str, role: Option<&str>) -> String {
    let role = role.map_or(String::new(), |r| format!("<role>{r}</role>"));
    format!(
        "<Folder><name>{}</name>{role}</Folder>",
        quick_xml::escape::escape(name)
    )
}

/// Whether a device's item is a folder object, by its type or its look.
pub fn is_folder(content_type: Option<&str>, data: &str) -> bool {
    content_type.map_or_else(
        || data.trim_start().starts_with("<Folder"),
        |ct| ct.eq_ignore_ascii_case(FOLDER_TYPE),
    )
}

/// A device's folder object: the folder's name (one plain name, not a dot name).
pub fn read_folder(xml: &str) -> Option<String> {
    let (root, fields) = crate::sif::fields(xml)?;
    if !root.eq_ignore_ascii_case("folder") {
        return None;
    }
    let name = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("name"))?
        .1
        .trim();
    let plain = bureau_core::homes::plain_name(name) && name.len() <= 200;
    (plain && !name.starts_with('.') && !name.chars().any(char::is_control))
        .then(|| name.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_versions_changes_and_removals() {
        let mut m = Manifest::default();
        let seen = |v: &[(&str, u64, i128)]| -> Seen {
            v.iter()
                .map(|(n, s, t)| (n.to_string(), (*s == 0, *s, *t)))
                .collect()
        };
        m.update(&seen(&[("a.txt", 3, 1), ("b.pdf", 9, 1)]));
        assert_eq!(m.counter, 2);
        let a = m.id_of("a.txt").unwrap();
        m.update(&seen(&[("a.txt", 3, 1), ("b.pdf", 9, 1)]));
        assert_eq!(m.counter, 2, "nothing changed, nothing versioned");
        m.update(&seen(&[("a.txt", 4, 2)]));
        let (changed, gone) = m.since(2, false);
        assert_eq!(changed, [(a, 4)]);
        assert_eq!(gone.len(), 1);
        assert_eq!(m.path_of(a), Some(("a.txt", false)));
    }

    #[test]
    fn folders_hold_their_files_through_renames_and_removals() {
        let mut m = Manifest::default();
        let seen = |v: &[(&str, bool)]| -> Seen {
            v.iter().map(|(p, d)| (p.to_string(), (*d, 1, 1))).collect()
        };
        m.update(&seen(&[
            ("docs", true),
            ("docs/a.txt", false),
            ("top.txt", false),
        ]));
        let (docs, a) = (m.id_of("docs").unwrap(), m.id_of("docs/a.txt").unwrap());
        // A device that does not sync in folders sees the top's files only.
        assert_eq!(m.ids(false), [m.id_of("top.txt").unwrap()]);
        assert_eq!(m.ids(true)[..2], [docs, a], "a folder before what it holds");
        assert_eq!(m.parent_of(a), Some(docs));
        m.rename("docs", "papers");
        assert_eq!(
            (m.id_of("papers"), m.id_of("papers/a.txt")),
            (Some(docs), Some(a))
        );
        let at = m.counter;
        m.remove_tree("papers");
        assert_eq!(m.ids(true).len(), 1);
        assert_eq!(
            m.since(at, true).1.len(),
            2,
            "the folder and its file are gone"
        );
        assert_eq!(split("a/b/c.txt"), ("a/b", "c.txt"));
        assert_eq!(join("", "c.txt"), "c.txt");
        assert_eq!(
            read_folder(&folder_object("R&D", None)).as_deref(),
            Some("R&D")
        );
        assert_eq!(read_folder("<Folder><name>..</name></Folder>"), None);
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
