//! Writing small secret files (keys, passwords) so that they are never seen half-written
//! or with looser rights: a temporary file beside the target, created with the mode (and
//! group) it will keep, synced, then renamed over the target.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `data` to `path` with `mode`, owned by `group` when one is named. A group that
/// cannot be set (no such group, or the process may not give it) is logged, and the file
/// keeps the process's group.
pub fn write_secret(
    path: &Path,
    data: &[u8],
    mode: u32,
    group: Option<&str>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    if let Some(name) = group {
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => {
                if let Err(e) = nix::unistd::chown(&tmp, None, Some(g.gid)) {
                    log::warn!("{}: giving it to group {name}: {e}", path.display());
                }
            }
            _ => log::warn!("{}: there is no group {name}", path.display()),
        }
    }
    std::fs::rename(&tmp, path)
}
