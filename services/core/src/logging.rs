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

/// One record kept for the console's log page.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// Increasing from 1 since the daemon started.
    pub seq: u64,
    /// Seconds since the epoch.
    pub time: i64,
    pub level: String,
    /// The service (crate) that logged it: smtp, imap, dav, store, directory, core, ...
    pub service: String,
    pub message: String,
}

/// Records kept in memory (the journal keeps the rest).
const KEPT: usize = 5000;

struct Recent {
    next: u64,
    entries: std::collections::VecDeque<LogEntry>,
}

static RECENT: std::sync::Mutex<Recent> = std::sync::Mutex::new(Recent {
    next: 1,
    entries: std::collections::VecDeque::new(),
});

/// The last records after `after` (a seq), at `level` or more severe, of one service if
/// given, at most `limit`, oldest first.
pub fn recent(
    after: u64,
    level: LevelFilter,
    service: Option<&str>,
    limit: usize,
) -> Vec<LogEntry> {
    let r = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<LogEntry> = r
        .entries
        .iter()
        .rev()
        .filter(|e| e.seq > after)
        .filter(|e| e.level.parse::<log::Level>().is_ok_and(|l| l <= level))
        .filter(|e| service.is_none_or(|s| e.service == s))
        .take(limit)
        .cloned()
        .collect();
    out.reverse();
    out
}

/// Sends each record to the journal or stderr, and keeps it for the console.
struct Tee(Box<dyn Log>);

impl Log for Tee {
    fn enabled(&self, m: &Metadata) -> bool {
        self.0.enabled(m)
    }
    fn log(&self, r: &Record) {
        self.0.log(r);
        let service = r
            .target()
            .split("::")
            .next()
            .unwrap_or_default()
            .trim_start_matches("bureau_")
            .to_string();
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        let seq = recent.next;
        recent.next += 1;
        if recent.entries.len() >= KEPT {
            recent.entries.pop_front();
        }
        recent.entries.push_back(LogEntry {
            seq,
            time,
            level: r.level().to_string(),
            service,
            message: r.args().to_string(),
        });
    }
    fn flush(&self) {
        self.0.flush()
    }
}

/// Installs the logger once; later calls only change the level.
pub fn init(level: &str) {
    let filter = level.parse().unwrap_or(LevelFilter::Info);
    let inner: Box<dyn Log> = if systemd_journal_logger::connected_to_journal()
        && let Ok(j) = systemd_journal_logger::JournalLog::new()
    {
        Box::new(j)
    } else {
        Box::new(Stderr)
    };
    let _ = log::set_boxed_logger(Box::new(Tee(inner)));
    log::set_max_level(filter);
}
