//! Files and folders inside a user's home folder, reached so that no link is ever passed:
//! the share's users write there and may leave a link to something only the daemon may
//! read or write (its store, say). A folder is opened with `openat2` (RESOLVE_BENEATH,
//! RESOLVE_NO_SYMLINKS: no link anywhere on the way, nothing outside the home folder),
//! and everything in it is done relative to that open folder, never by path again, the
//! last name never followed either (O_NOFOLLOW, O_EXCL, `renameat2` NOREPLACE). Made as
//! Samba's own are: files 0660, folders 0770, the files account's group.

use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, fchown, unlinkat};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// How deep a folder is walked and most entries listed.
pub const MAX_DEPTH: usize = 8;
pub const MAX_ENTRIES: usize = 10_000;

/// What a walk finds: a path under the folder ("a/b.txt"), whether it is a folder, its size
/// and modification time (nanoseconds since the epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    pub dir: bool,
    pub size: u64,
    pub mtime: i128,
}

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from(e)
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string())
}

/// Whether a path is plain names joined by "/", none a dot name (hidden, or a way up).
pub fn plain_path(path: &str) -> bool {
    path.len() <= 1024
        && path
            .split('/')
            .all(|c| crate::homes::plain_name(c) && !c.starts_with('.'))
}

/// A folder under `home` ("" is `home` itself), open for the calls below.
pub fn open_dir(home: &Path, path: &str) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let root: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(home)?
        .into();
    if path.is_empty() {
        return Ok(root);
    }
    if !plain_path(path) {
        return Err(invalid("not a folder's path"));
    }
    let how = OpenHow::new()
        .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    openat2(&root, path, how).map_err(io)
}

fn name_ok(name: &str) -> std::io::Result<&str> {
    if plain_path(name) && !name.contains('/') {
        Ok(name)
    } else {
        Err(invalid("not a plain name"))
    }
}

/// A file or folder in `dir`, not followed if a link: (is a folder, size, mtime); an error
/// for a link or anything else.
pub fn stat_at(dir: &OwnedFd, name: &str) -> std::io::Result<(bool, u64, i128)> {
    let st = fstatat(dir, name_ok(name)?, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let mtime = st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128;
    match kind {
        SFlag::S_IFDIR => Ok((true, 0, mtime)),
        SFlag::S_IFREG => Ok((false, st.st_size as u64, mtime)),
        _ => Err(invalid("neither a file nor a folder")),
    }
}

/// A file's contents (not a link's target).
pub fn read_at(dir: &OwnedFd, name: &str) -> std::io::Result<Vec<u8>> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir, name_ok(name)?, flags, Mode::empty()).map_err(io)?;
    let mut out = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut out)?;
    Ok(out)
}

/// The fd to the files account's group, 0660 or 0770 whatever the daemon's umask.
fn own(fd: impl AsFd, group: &str, mode: u32) -> std::io::Result<()> {
    if let Ok(Some(g)) = nix::unistd::Group::from_name(group)
        && let Err(e) = fchown(&fd, None, Some(g.gid))
    {
        log::warn!("a home folder's file: giving it to group {group}: {e}");
    }
    fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(io)
}

/// Writes a file in `dir` in place of any of that name, through a temporary file made new
/// (never one a link stands for) and renamed over it; its size and time.
pub fn replace_at(
    dir: &OwnedFd,
    name: &str,
    data: &[u8],
    group: &str,
) -> std::io::Result<(u64, i128)> {
    let name = name_ok(name)?;
    let tmp = format!(".{name}.bureau-tmp");
    // One left by a crash, or put there: removed (a link itself, not what it leads to).
    match unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir) {
        Err(nix::Error::ENOENT) | Ok(()) => {}
        Err(e) => return Err(io(e)),
    }
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
    let fd = openat(
        dir,
        tmp.as_str(),
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o660),
    )
    .map_err(io)?;
    own(&fd, group, 0o660)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data)?;
    f.sync_all()?;
    nix::fcntl::renameat(dir, tmp.as_str(), dir, name).map_err(io)?;
    let (_, size, mtime) = stat_at(dir, name)?;
    Ok((size, mtime))
}

/// Makes a folder in `dir`; its time.
pub fn mkdir_at(dir: &OwnedFd, name: &str, group: &str) -> std::io::Result<i128> {
    let name = name_ok(name)?;
    mkdirat(dir, name, Mode::from_bits_truncate(0o770)).map_err(io)?;
    own(subdir(dir, name)?, group, 0o770)?;
    Ok(stat_at(dir, name)?.2)
}

/// Renames or moves a file or folder from one folder to another; never over one there.
pub fn rename_at(from: &OwnedFd, name: &str, to: &OwnedFd, new: &str) -> std::io::Result<()> {
    use nix::fcntl::{RenameFlags, renameat2};
    let flags = RenameFlags::RENAME_NOREPLACE;
    renameat2(from, name_ok(name)?, to, name_ok(new)?, flags).map_err(io)
}

/// Removes a folder if it is empty; false if it is not (or is no folder).
pub fn rmdir_at(dir: &OwnedFd, name: &str) -> std::io::Result<bool> {
    match unlinkat(dir, name_ok(name)?, UnlinkatFlags::RemoveDir) {
        Ok(()) => Ok(true),
        Err(nix::Error::ENOTEMPTY | nix::Error::EEXIST | nix::Error::ENOTDIR) => Ok(false),
        Err(e) => Err(io(e)),
    }
}

/// Removes a file, or a folder with what it holds (links in it removed, never followed).
pub fn remove_at(dir: &OwnedFd, name: &str) -> std::io::Result<()> {
    remove_in(dir, name_ok(name)?, 0)
}

fn remove_in(dir: &OwnedFd, name: &str, depth: usize) -> std::io::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Err(nix::Error::EISDIR) => {}
        other => return other.map_err(io),
    }
    if depth > MAX_DEPTH {
        return Err(invalid("folders too deep to remove"));
    }
    let sub = subdir(dir, name)?;
    for entry in names(&sub)? {
        remove_in(&sub, &entry, depth + 1)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(io)
}

/// A folder in `dir`, opened; an error if `name` is a link or no folder.
fn subdir(dir: &OwnedFd, name: &str) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::empty()).map_err(io)
}

/// The names in a folder (but "." and "..").
fn names(dir: &OwnedFd) -> std::io::Result<Vec<String>> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let mut d = nix::dir::Dir::openat(dir, ".", flags, Mode::empty()).map_err(io)?;
    let mut out = Vec::new();
    for e in d.iter() {
        let name = e.map_err(io)?.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            out.push(name);
        }
    }
    Ok(out)
}

/// The files and folders under `home`, a folder before what it holds, by path; dot names,
/// links and anything but files and folders left out, as is what lies past `MAX_DEPTH` or
/// `MAX_ENTRIES`. A missing home folder holds nothing.
pub fn walk(home: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    if let Ok(root) = open_dir(home, "") {
        walk_in(&root, "", 0, &mut out);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn walk_in(dir: &OwnedFd, prefix: &str, depth: usize, out: &mut Vec<Found>) {
    let Ok(mut names) = names(dir) else { return };
    names.sort();
    for name in names {
        if out.len() >= MAX_ENTRIES {
            return;
        }
        if name.starts_with('.') || !crate::homes::plain_name(&name) {
            continue;
        }
        let Ok((is_dir, size, mtime)) = stat_at(dir, &name) else {
            continue;
        };
        let path = format!("{prefix}{name}");
        if is_dir && depth < MAX_DEPTH {
            let sub = subdir(dir, &name);
            out.push(Found {
                path: path.clone(),
                dir: true,
                size,
                mtime,
            });
            if let Ok(sub) = sub {
                walk_in(&sub, &format!("{path}/"), depth + 1, out);
            }
        } else if !is_dir {
            out.push(Found {
                path,
                dir: false,
                size,
                mtime,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_reached_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("alice");
        let secret = dir.path().join("daemon");
        std::fs::create_dir_all(home.join("docs/old")).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        std::fs::write(secret.join("store"), b"daemon only").unwrap();
        std::os::unix::fs::symlink(&secret, home.join("docs/link")).unwrap();
        std::os::unix::fs::symlink(secret.join("store"), home.join("docs/file-link")).unwrap();
        std::fs::write(home.join("docs/a.txt"), b"a").unwrap();
        std::fs::write(home.join(".hidden"), b"h").unwrap();

        let found: Vec<(String, bool)> = walk(&home).into_iter().map(|f| (f.path, f.dir)).collect();
        let want = [("docs", true), ("docs/a.txt", false), ("docs/old", true)];
        assert_eq!(found, want.map(|(p, d)| (p.to_string(), d)));

        // Through a linked folder, or to a linked file: refused, the target untouched.
        assert!(open_dir(&home, "docs/link").is_err());
        assert!(open_dir(&home, "../daemon").is_err());
        let docs = open_dir(&home, "docs").unwrap();
        assert!(read_at(&docs, "file-link").is_err());
        assert!(replace_at(&docs, "link/store", b"x", "none").is_err());
        replace_at(&docs, "file-link", b"mine", "none").unwrap();
        assert_eq!(std::fs::read(secret.join("store")).unwrap(), b"daemon only");
        assert_eq!(read_at(&docs, "file-link").unwrap(), b"mine");
        // A folder removed with what it holds, a link in it removed, not followed.
        std::os::unix::fs::symlink(&secret, home.join("docs/old/link")).unwrap();
        mkdir_at(&docs, "new", "none").unwrap();
        rename_at(
            &docs,
            "a.txt",
            &open_dir(&home, "docs/new").unwrap(),
            "b.txt",
        )
        .unwrap();
        assert!(
            rename_at(&docs, "new", &docs, "old").is_err(),
            "never over one there"
        );
        remove_at(&docs, "old").unwrap();
        remove_at(&docs, "new").unwrap();
        assert!(secret.join("store").exists());
        let left: Vec<String> = walk(&home).into_iter().map(|f| f.path).collect();
        assert_eq!(left, ["docs", "docs/file-link"]);
        for bad in ["", ".", "..", "a/b", ".x"] {
            assert!(stat_at(&docs, bad).is_err(), "{bad}");
        }
    }
}
