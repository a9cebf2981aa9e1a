//! File modes of the store, whatever the process's umask: the database holds password and
//! NT hashes and the blobs hold everyone's mail, so no other local account may read them.
//!
//! - the data directory: 0711 at most. Others may pass through it (Squid's and Samba's
//!   folders can live in it, with modes of their own) but not list it. Where root keeps it
//!   for the daemon (the daemon's start as root makes it so: root's, the daemon's group
//!   may write, sticky, so that the daemon cannot move root's folders in it), 01771;
//! - `bureau.redb`, snapshots and blob files: 0600; `blobs/`, its shards and `snapshots/`:
//!   0700. New files are created so; [`repair`] narrows what an older release or a copy
//!   left wider, at every start, and logs what it changed.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(crate) const FILE: u32 = 0o600;
pub(crate) const DIR: u32 = 0o700;
const DATA_DIR: u32 = 0o711;
/// The data directory root keeps, lent to the daemon's group; the sticky bit leaves each
/// entry to its owner.
const LENT_DATA_DIR: u32 = 0o1771;

/// Creates `path` (and missing parents) as a private directory.
pub(crate) fn private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(DIR).create(path)
}

/// Creates (or truncates) a private file.
pub(crate) fn private_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE)
        .open(path)
}

/// Narrows `path` to `max` if it is wider; whether it changed anything.
fn narrow(path: &Path, max: u32) -> io::Result<bool> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(false);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & !max == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode & max))?;
    Ok(true)
}

/// Narrows the store's modes under `data_dir`; returns how many entries it changed.
/// A new store's directory (a fresh box's data partition, 0755 from mke2fs) is narrowed
/// without counting: nothing was ever kept in it, so there is nothing to warn about.
pub(crate) fn repair(data_dir: &Path) -> io::Result<usize> {
    let db = data_dir.join("bureau.redb");
    let existed = db.exists();
    let top = fs::symlink_metadata(data_dir)?;
    // Root's and lent (sticky), or root's while root starts the daemon (group-writable, the
    // sticky bit off until the daemon runs: see the bureau crate's serve.rs).
    let lent = top.uid() == 0 && top.permissions().mode() & 0o1020 != 0;
    let max = if lent { LENT_DATA_DIR } else { DATA_DIR };
    let mut changed = usize::from(narrow(data_dir, max)? && existed);
    if existed {
        changed += usize::from(narrow(&db, FILE)?);
    }
    for dir in ["blobs", "snapshots"] {
        let root = data_dir.join(dir);
        if !root.exists() {
            continue;
        }
        // Files made before are only wider if their directory was: once the tree is
        // private, the walk is skipped.
        if fs::symlink_metadata(&root)?.permissions().mode() & 0o077 == 0 {
            continue;
        }
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d)? {
                let e = e?;
                let t = e.file_type()?;
                if t.is_dir() {
                    changed += usize::from(narrow(&e.path(), DIR)?);
                    stack.push(e.path());
                } else if t.is_file() {
                    changed += usize::from(narrow(&e.path(), FILE)?);
                }
            }
        }
        changed += usize::from(narrow(&root, DIR)?);
    }
    if changed > 0 {
        log::warn!(
            "store: narrowed the modes of {changed} files and folders in {} (they were readable by other accounts)",
            data_dir.display()
        );
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// Defect 8 of issue 17: with a 022 umask the store was world-readable.
    #[test]
    fn wide_modes_are_narrowed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("data");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("bureau.redb"), b"x").unwrap();
        fs::set_permissions(root.join("bureau.redb"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::create_dir_all(root.join("blobs/ab")).unwrap();
        fs::set_permissions(root.join("blobs"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(root.join("blobs/ab"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("blobs/ab/abcd"), b"mail").unwrap();
        fs::set_permissions(
            root.join("blobs/ab/abcd"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!(repair(&root).unwrap(), 5);
        assert_eq!(mode(&root), 0o711);
        assert_eq!(mode(&root.join("bureau.redb")), 0o600);
        assert_eq!(mode(&root.join("blobs")), 0o700);
        assert_eq!(mode(&root.join("blobs/ab")), 0o700);
        assert_eq!(mode(&root.join("blobs/ab/abcd")), 0o600);
        assert_eq!(repair(&root).unwrap(), 0);
    }

    /// A fresh box's data partition (0755, no store yet) is made private at the first
    /// start without the warning meant for data an older release left readable.
    #[test]
    fn a_new_stores_folder_is_narrowed_without_a_warning() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("data");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(repair(&root).unwrap(), 0);
        assert_eq!(mode(&root), 0o711);
    }

    /// The data directory root lends the daemon (root's, group-writable, sticky) keeps its
    /// mode; the same mode on a folder another account owns is narrowed. Run as root (as
    /// CI runs), where the difference shows.
    #[test]
    fn a_data_directory_root_lends_keeps_its_mode() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: only root can give folders away");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("data");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o1771)).unwrap();
        assert_eq!(repair(&root).unwrap(), 0);
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o7777,
            0o1771
        );
        // As root starts the daemon (not sticky for the while): kept, and no warning.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o771)).unwrap();
        fs::write(root.join("bureau.redb"), b"x").unwrap();
        fs::set_permissions(root.join("bureau.redb"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(repair(&root).unwrap(), 0);
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o7777,
            0o771
        );
        fs::set_permissions(&root, fs::Permissions::from_mode(0o1771)).unwrap();
        std::os::unix::fs::chown(&root, Some(65534), None).unwrap();
        repair(&root).unwrap();
        assert_eq!(
            fs::metadata(&root).unwrap().permissions().mode() & 0o7777,
            0o711
        );
    }
}
