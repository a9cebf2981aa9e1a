//! The box's own settings made in the console: its name and its time zone. They are files
//! in `<data_dir>/system/`, which the appliance's boot reads too: `bureau-firstboot` gives
//! the system the name in `hostname`, and the image's /etc/localtime points at `localtime`
//! here, a link into /usr/share/zoneinfo.

use std::path::{Path, PathBuf};

pub const HOSTNAME: &str = "hostname";
const TIMEZONE: &str = "timezone";
const LOCALTIME: &str = "localtime";
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// An IANA time zone name ("Europe/Paris", "UTC"), as the zone database knows it.
pub fn valid_timezone(tz: &str) -> bool {
    tz.parse::<chrono_tz::Tz>().is_ok()
}

/// The time zone chosen in the console; UTC until one is.
pub fn timezone(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(TIMEZONE))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| valid_timezone(t))
        .unwrap_or_else(|| "UTC".into())
}

/// Writes a small file whole or not at all.
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    crate::files::write_secret(path, text.as_bytes(), 0o644)
}

pub fn set_hostname(dir: &Path, name: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write(&dir.join(HOSTNAME), &format!("{name}\n"))
}

/// Records the time zone and points `localtime` at its zone file. The name must have
/// passed `valid_timezone` (so it is no path of its own).
pub fn set_timezone(dir: &Path, tz: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let link = dir.join(LOCALTIME);
    let tmp = dir.join("localtime.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(PathBuf::from(ZONEINFO).join(tz), &tmp)?;
    std::fs::rename(&tmp, &link)?;
    write(&dir.join(TIMEZONE), &format!("{tz}\n"))
}

const LAST_BACKUP: &str = "last-backup";

/// Records that a whole backup was taken (Unix seconds), for the health view.
pub fn record_backup(dir: &Path, at: i64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write(&dir.join(LAST_BACKUP), &format!("{at}\n"))
}

/// When the last whole backup was taken, if one was.
pub fn last_backup(dir: &Path) -> Option<i64> {
    std::fs::read_to_string(dir.join(LAST_BACKUP))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The time zone the system runs in: where /etc/localtime leads in the zone database.
pub fn system_timezone() -> Option<String> {
    let real = std::fs::canonicalize("/etc/localtime").ok()?;
    let name = real
        .strip_prefix(ZONEINFO)
        .ok()?
        .to_string_lossy()
        .into_owned();
    Some(name.trim_start_matches("posix/").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_zones_are_kept_in_files() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("system");
        assert_eq!(timezone(&dir), "UTC");
        assert!(valid_timezone("Europe/Paris") && valid_timezone("UTC"));
        assert!(!valid_timezone("../../etc/passwd") && !valid_timezone("Mars/Olympus"));
        set_timezone(&dir, "Europe/Paris").unwrap();
        set_timezone(&dir, "America/New_York").unwrap();
        assert_eq!(timezone(&dir), "America/New_York");
        assert_eq!(
            std::fs::read_link(dir.join(LOCALTIME)).unwrap(),
            PathBuf::from("/usr/share/zoneinfo/America/New_York")
        );
        set_hostname(&dir, "mail.example.com").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(HOSTNAME)).unwrap(),
            "mail.example.com\n"
        );
    }
}
