//! Logging to the journal under systemd, to stderr otherwise. Never log a secret: callers
//! pass logins and addresses, not passwords, tokens or keys.

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }
    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let _ = writeln!(
            std::io::stderr().lock(),
            "{h:02}:{m:02}:{s:02} {:5} {}",
            r.level(),
            r.args()
        );
    }
    fn flush(&self) {}
}

/// Installs the logger once; later calls only change the level.
pub fn init(level: &str) {
    let filter = level.parse().unwrap_or(LevelFilter::Info);
    let installed = if systemd_journal_logger::connected_to_journal() {
        systemd_journal_logger::JournalLog::new()
            .map(|j| log::set_boxed_logger(Box::new(j)).is_ok())
            .unwrap_or(false)
    } else {
        false
    };
    if !installed {
        let _ = log::set_logger(&Stderr);
    }
    log::set_max_level(filter);
}
