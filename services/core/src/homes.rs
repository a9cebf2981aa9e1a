//! Files Bureau writes into a user's home folder on the office's file server
//! (`<shares_dir>/homes/<uid>`, which the helper makes for Samba's `[homes]`): each a new
//! file (never one written over), made as Samba's own are (mode 0660, the files account's
//! group, which the daemon's account is a member of on the appliance), synced to disk.

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

impl Homes {
    /// A user's home folder; made if missing (where the daemon may).
    fn home(&self, uid: &str) -> std::io::Result<PathBuf> {
        if !plain_name(uid) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{uid:?} is not a folder's name"),
            ));
        }
        let home = self.dir.join(uid);
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
        if !plain_name(name) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{name:?} is not a file's name"),
            ));
        }
        let path = self.home(uid)?.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o660)
            .open(&path)?;
        give_group(&path, &self.group);
        // Whatever the daemon's umask: Samba's account reads and writes it by its group.
        f.set_permissions(std::fs::Permissions::from_mode(0o660))?;
        f.write_all(data)?;
        f.sync_all()?;
        Ok(path)
    }
}

/// Writes a file in a folder in place of any of that name: through a temporary file renamed
/// over it (never seen half-written), with the rights and group `write_new` gives.
pub fn replace(folder: &Path, name: &str, data: &[u8], group: &str) -> std::io::Result<PathBuf> {
    if !plain_name(name) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file's name"),
        ));
    }
    std::fs::create_dir_all(folder)?;
    let path = folder.join(name);
    let tmp = folder.join(format!(".{name}.bureau-tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o660)
        .open(&tmp)?;
    give_group(&tmp, group);
    f.set_permissions(std::fs::Permissions::from_mode(0o660))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
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
        for bad in ["../x", "a/b", "..", ""] {
            assert!(homes.write_new("alice", bad, b"x").is_err(), "{bad}");
            assert!(homes.write_new(bad, "x", b"x").is_err(), "{bad}");
        }
    }
}
