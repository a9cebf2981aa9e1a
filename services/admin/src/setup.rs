//! First-boot setup. Until an administrator exists, the daemon keeps a one-time setup token
//! in `<data_dir>/setup-token` (mode 0600). The appliance shows it on its screen and serial
//! line; whoever has it may create the first administrator (the console's setup wizard, or
//! `POST /api/v1/setup`). The token is deleted once used, or once an administrator exists.

use bureau_directory::Directory;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A new token: 128 random bits, in four dash-separated groups to copy from a screen.
fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let h = hex::encode(b);
    format!("{}-{}-{}-{}", &h[..8], &h[8..16], &h[16..24], &h[24..])
}

/// Lower case, dashes and spaces ignored: as a person types it.
fn normalize(t: &str) -> String {
    t.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Compares in time that does not depend on where the strings differ.
pub fn matches(expected: &str, given: &str) -> bool {
    let (a, b) = (normalize(expected), normalize(given));
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn has_admin(dir: &Directory) -> Result<bool, bureau_directory::DirectoryError> {
    Ok(dir.users()?.iter().any(|u| u.admin && u.enabled))
}

/// The pending token, if setup is not done.
pub fn read(path: &Path) -> Option<String> {
    let t = std::fs::read_to_string(path).ok()?;
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Why the setup token could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Directory(#[from] bureau_directory::DirectoryError),
    #[error("{}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// At start: makes the token if there is no administrator (keeping one already made), and
/// removes it if there is one.
pub fn prepare(dir: &Directory, path: &Path) -> Result<(), TokenError> {
    if has_admin(dir)? {
        return done(path);
    }
    if read(path).is_some() {
        return Ok(());
    }
    let tmp = path.with_extension("new");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        writeln!(f, "{}", new_token())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(file_error(path))?;
    log::info!(
        "no administrator yet: the setup token is in {} (`bureau setup-token` shows it)",
        path.display()
    );
    Ok(())
}

/// Removes the token as soon as an administrator exists, however made (the console's
/// setup, the CLI, the API): a token left behind would make a second one.
pub async fn retire_when_done(dir: Directory, path: std::path::PathBuf) {
    let mut changes = dir.changes();
    loop {
        if path.exists() && has_admin(&dir).unwrap_or(false) {
            match done(&path) {
                Ok(()) => log::info!("an administrator exists: the setup token is gone"),
                Err(e) => log::error!("removing the setup token: {e}"),
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// Setup is done: the token goes.
pub fn done(path: &Path) -> Result<(), TokenError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file_error(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_as_typed() {
        let t = new_token();
        assert_eq!(t.len(), 35);
        assert!(matches(&t, &t));
        assert!(matches(&t, &t.to_uppercase().replace('-', " ")));
        assert!(!matches(&t, &new_token()));
        assert!(!matches(&t, ""));
        assert!(!matches(&t, &t[..34]));
    }
}
