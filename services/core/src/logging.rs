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

/// Bureau's records in the system journal (its units, `bureau` and `bureau-helper`): on
/// the appliance, whose journal is kept in memory, everything since the box booted, across
/// the daemon's restarts. Filtered as `recent` is, the last `limit`, oldest first.
pub async fn journal(
    level: LevelFilter,
    service: Option<&str>,
    limit: usize,
) -> Result<Vec<LogEntry>, crate::helper::CommandError> {
    let priority = match level {
        LevelFilter::Off | LevelFilter::Error => "3",
        LevelFilter::Warn => "4",
        LevelFilter::Info => "6",
        LevelFilter::Debug | LevelFilter::Trace => "7",
    };
    let text = crate::helper::command(
        "journalctl",
        &[
            "--unit=bureau",
            "--unit=bureau-helper",
            "--output=json",
            "--no-pager",
            "--priority",
            priority,
            "--lines=20000",
        ],
        std::time::Duration::from_secs(30),
    )
    .await?;
    Ok(parse_journal(&text, service, limit))
}

/// journalctl's JSON lines as log entries.
fn parse_journal(text: &str, service: Option<&str>, limit: usize) -> Vec<LogEntry> {
    let field = |v: &serde_json::Value, k: &str| -> Option<String> {
        match v.get(k)? {
            serde_json::Value::String(s) => Some(s.clone()),
            // A field that is not UTF-8 comes as its bytes.
            serde_json::Value::Array(b) => Some(
                String::from_utf8_lossy(
                    &b.iter()
                        .filter_map(|x| x.as_u64().map(|x| x as u8))
                        .collect::<Vec<u8>>(),
                )
                .into_owned(),
            ),
            _ => None,
        }
    };
    let mut out: Vec<LogEntry> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let message = field(&v, "MESSAGE")?;
            let level = match field(&v, "PRIORITY")?.as_str() {
                "0" | "1" | "2" | "3" => log::Level::Error,
                "4" => log::Level::Warn,
                "5" | "6" => log::Level::Info,
                _ => log::Level::Debug,
            };
            let service = field(&v, "TARGET")
                .map(|t| service_of(&t))
                .or_else(|| field(&v, "SYSLOG_IDENTIFIER"))
                .unwrap_or_default();
            let time = field(&v, "__REALTIME_TIMESTAMP")
                .and_then(|t| t.parse::<i64>().ok())
                .map_or(0, |us| us / 1_000_000);
            Some(LogEntry {
                seq: 0,
                time,
                level: level.to_string(),
                service,
                message,
            })
        })
        .filter(|e| service.is_none_or(|s| e.service == s))
        .collect();
    let skip = out.len().saturating_sub(limit);
    out.drain(..skip);
    for (i, e) in out.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    out
}

/// The service a record's target names: `bureau_smtp::queue` is smtp.
fn service_of(target: &str) -> String {
    target
        .split("::")
        .next()
        .unwrap_or_default()
        .trim_start_matches("bureau_")
        .to_string()
}

/// What a library says once per connection about a client's harmless habit: rustls warns
/// "Illegal SNI extension: ignoring IP address presented as hostname" whenever a client
/// names the box by its IP address in SNI (RFC 6066 3 forbids it, many clients do it);
/// 51,717 such lines were seen in 24 minutes of a load test. The connection goes on as if
/// no name was sent. Other SNI complaints (a malformed name) are still logged.
fn is_noise(message: &str) -> bool {
    message.starts_with("Illegal SNI extension: ignoring IP address")
}

/// Sends each record to the journal or stderr, and keeps it for the console.
struct Tee(Box<dyn Log>);

impl Log for Tee {
    fn enabled(&self, m: &Metadata) -> bool {
        self.0.enabled(m)
    }
    fn log(&self, r: &Record) {
        if r.target().starts_with("rustls") && is_noise(&r.args().to_string()) {
            return;
        }
        self.0.log(r);
        let service = service_of(r.target());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_address_as_sni_is_not_logged() {
        assert!(is_noise(
            "Illegal SNI extension: ignoring IP address presented as hostname ([49, 50, 55])"
        ));
        assert!(!is_noise("Illegal SNI hostname received \"a b\""));
        assert!(!is_noise("TLS alert received"));
    }

    #[test]
    fn journal_records() {
        let text = r#"{"MESSAGE":"queue: delivered","PRIORITY":"6","TARGET":"bureau_smtp::queue","__REALTIME_TIMESTAMP":"1796107112178000"}
{"MESSAGE":"admin: restarting","PRIORITY":"4","TARGET":"bureau_admin","__REALTIME_TIMESTAMP":"1796107113000000"}
{"MESSAGE":[104,105,255],"PRIORITY":"3","SYSLOG_IDENTIFIER":"bureau","__REALTIME_TIMESTAMP":"1796107114000000"}
not json
"#;
        let all = parse_journal(text, None, 10);
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].seq, all[0].time), (1, 1796107112));
        assert_eq!(
            (all[0].level.as_str(), all[0].service.as_str()),
            ("INFO", "smtp")
        );
        assert_eq!(
            (all[1].level.as_str(), all[1].service.as_str()),
            ("WARN", "admin")
        );
        assert_eq!(all[2].message, "hi\u{fffd}");
        let last = parse_journal(text, None, 1);
        assert_eq!(
            (last.len(), last[0].seq, last[0].service.as_str()),
            (1, 1, "bureau")
        );
        assert_eq!(parse_journal(text, Some("smtp"), 10).len(), 1);
    }
}
