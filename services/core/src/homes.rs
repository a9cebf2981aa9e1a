//! Files Bureau writes into a user's home folder on the office's file server
//! (`<shares_dir>/homes/<uid>`, which the helper makes for Samba's `[homes]`): a new file
//! (never one written over), or one replaced whole; made as Samba's own are (mode 0660, the
//! files account's group, which the daemon's account is a member of on the appliance),
//! synced to disk.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The users' home folders.
#[derive(Clone, Debug)]
pub struct Homes {
    /// `<shares_dir>/homes`.
    pub dir: PathBuf,
    /// The group the files get (Samba's files account, `samba.files_user`).
    pub group: String,
}

/// Whether a name is one file's name in a folder, nothing more.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
}

fn checked(name: &str) -> std::io::Result<&str> {
    if plain_name(name) {
        Ok(name)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file's name"),
        ))
    }
}

/// Writes `data` to a file made at `path`, which must not exist yet (so a link a share's
/// user left there is never followed), as Samba's own are: 0660 whatever the daemon's
/// umask, the group's, synced.
fn write_file(path: &Path, data: &[u8], group: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o660)
        .open(path)?;
    give_group(path, group);
    f.set_permissions(std::fs::Permissions::from_mode(0o660))?;
    f.write_all(data)?;
    f.sync_all()
}

impl Homes {
    /// A user's home folder; made if missing (where the daemon may).
    fn home(&self, uid: &str) -> std::io::Result<PathBuf> {
        let home = self.dir.join(checked(uid)?);
        if !home.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o770)
                .create(&home)?;
            give_group(&home, &self.group);
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o770))?;
        }
        Ok(home)
    }

    /// The names of the files in a user's home folder (none if it does not exist).
    pub fn names(&self, uid: &str) -> std::io::Result<Vec<String>> {
        let home = self.dir.join(uid);
        if !plain_name(uid) || !home.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for e in std::fs::read_dir(home)? {
            out.push(e?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    /// Writes a new file into a user's home folder; `AlreadyExists` if the name is taken.
    pub fn write_new(&self, uid: &str, name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
        let path = self.home(uid)?.join(checked(name)?);
        write_file(&path, data, &self.group)?;
        Ok(path)
    }
}

/// Writes a file in a folder in place of any of that name: through a temporary file renamed
/// over it (never seen half-written), with the rights and group `write_new` gives.
pub fn replace(folder: &Path, name: &str, data: &[u8], group: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let path = folder.join(checked(name)?);
    let tmp = folder.join(format!(".{name}.bureau-tmp"));
    // One left by a crash, or put there: removed (a link itself, not what it leads to).
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    write_file(&tmp, data, group)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A file's contents, if it is a file and not a link: the folders are the share's users',
/// who may leave a link to something only the daemon may read.
pub fn read_plain(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// The file to the group, when there is one of that name (else it keeps the daemon's).
fn give_group(path: &Path, group: &str) {
    if let Ok(Some(g)) = nix::unistd::Group::from_name(group)
        && let Err(e) = nix::unistd::chown(path, None, Some(g.gid))
    {
        log::warn!("{}: giving it to group {group}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_new_and_never_over_another() {
        let dir = tempfile::tempdir().unwrap();
        let homes = Homes {
            dir: dir.path().join("homes"),
            group: "no-such-group-here".into(),
        };
        assert!(homes.names("alice").unwrap().is_empty());
        let p = homes.write_new("alice", "a.vcf", b"BEGIN:VCARD").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"BEGIN:VCARD");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o660
        );
        let again = homes.write_new("alice", "a.vcf", b"other").unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(homes.names("alice").unwrap(), ["a.vcf"]);
        // A link is never followed, to read or to write through.
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"daemon only").unwrap();
        let home = dir.path().join("homes").join("alice");
        std::os::unix::fs::symlink(&secret, home.join("link")).unwrap();
        assert!(read_plain(&home.join("link")).is_err());
        std::os::unix::fs::symlink(&secret, home.join(".b.txt.bureau-tmp")).unwrap();
        replace(&home, "b.txt", b"mine", "none").unwrap();
        assert_eq!(std::fs::read(&secret).unwrap(), b"daemon only");
        assert_eq!(read_plain(&home.join("b.txt")).unwrap(), b"mine");
        for bad in ["../x", "a/b", "..", ""] {
            assert!(homes.write_new("alice", bad, b"x").is_err(), "{bad}");
            assert!(homes.write_new(bad, "x", b"x").is_err(), "{bad}");
        }
    }
}
