//! Writing small secret files (keys, passwords) so that they are never seen half-written
//! or with looser rights: a temporary file beside the target, created with the mode it will
//! keep, synced, then renamed over the target.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `data` to `path` with `mode`. The temporary file is always a new one: whatever was
/// left under its name (a link, say) is removed, never written through.
pub fn write_secret(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
