//! `GET /api/v1/health`: what needs an administrator's eye, each check with a state ("ok",
//! "warn", "bad", "unknown") and a sentence: the box's name and each mail domain's records
//! in DNS, the certificate's
//! expiry, the last backup's age, the data partition's space and the whole box's memory,
//! the mail queue's oldest message, and on the appliance the system helper, the update
//! slots and the failed units. The dashboard shows them first. Titles and sentences are
//! said in the request's language (words.rs).

use crate::*;
use bureau_words::Words;

/// One check.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    pub id: &'static str,
    pub state: &'static str,
    pub title: String,
    pub detail: String,
}

const DAY: i64 = 86_400;

/// A check of `id`, titled by the catalogue's `health_<id>`.
fn check(w: Words, id: &'static str, state: &'static str, detail: String) -> Check {
    Check {
        id,
        state,
        title: w.say(&format!("health_{}", id.replace('-', "_")), &[]),
        detail,
    }
}

/// "3 days", "1 day", "5 hours".
fn age(w: Words, secs: i64) -> String {
    let (n, unit) = if secs >= DAY {
        (secs / DAY, "day")
    } else if secs >= 3600 {
        (secs / 3600, "hour")
    } else {
        ((secs / 60).max(0), "minute")
    };
    let key = format!("age_{unit}{}", if n == 1 { "" } else { "s" });
    w.say(&key, &[("n", &n)])
}

impl AdminApi {
    pub(crate) async fn health(&self, w: Words) -> Vec<Check> {
        let now = bureau_store::now();
        let mut out = vec![self.dns_check(w).await];
        out.extend(self.mail_dns_check(w).await);
        out.push(self.certificate_check(w, now));
        out.push(
            match bureau_core::system::last_backup(&self.info.system_dir) {
                None => check(w, "backup", "warn", w.say("health_backup_none", &[])),
                Some(at) if now - at > 7 * DAY => check(
                    w,
                    "backup",
                    "warn",
                    w.say("health_backup_old", &[("age", &age(w, now - at))]),
                ),
                Some(at) => check(
                    w,
                    "backup",
                    "ok",
                    w.say("health_backup_ok", &[("age", &age(w, now - at))]),
                ),
            },
        );
        out.push(disk_check(w, &self.info.data_dir));
        out.push(memory_check(w));
        out.push(self.queue_check(w, now));
        out.extend(self.appliance_checks(w).await);
        out
    }

    async fn dns_check(&self, w: Words) -> Check {
        let name = &self.info.hostname;
        let Some(q) = &self.queue else {
            return check(w, "dns", "unknown", w.say("health_dns_not_asked", &[]));
        };
        use bureau_smtp::dnscheck::Published;
        let (state, key) = match q.box_resolves().await {
            Published::Yes => ("ok", "health_dns_ok"),
            Published::Unknown => ("unknown", "health_dns_unknown"),
            _ => ("bad", "health_dns_missing"),
        };
        check(w, "dns", state, w.say(key, &[("name", name)]))
    }

    /// Each domain's mail records (MX, SPF, DKIM, DMARC, autoconfiguration), as the domain's
    /// DNS page checks them: one line per domain that lacks some.
    async fn mail_dns_check(&self, w: Words) -> Option<Check> {
        use bureau_smtp::dnscheck::Published;
        self.queue.as_ref()?;
        let domains = self.dir().domains().ok()?;
        if domains.is_empty() {
            return None;
        }
        let (mut lacking, mut unknown) = (Vec::new(), 0);
        for d in &domains {
            let Ok(mut records) = self.dns_records(&d.name) else {
                continue;
            };
            self.check_published(&mut records).await;
            let answers: Vec<_> = records.iter().filter_map(|r| r.published).collect();
            unknown += answers.iter().filter(|p| **p == Published::Unknown).count();
            let missing = answers
                .iter()
                .filter(|p| matches!(p, Published::No | Published::Different))
                .count();
            if missing > 0 {
                let (name, total) = (&d.name, records.len());
                let vars: [(&str, &dyn std::fmt::Display); 3] =
                    [("name", name), ("missing", &missing), ("total", &total)];
                lacking.push(w.say("health_mail_dns_domain", &vars));
            }
        }
        Some(if !lacking.is_empty() {
            let list = lacking.join(", ");
            let detail = w.say("health_mail_dns_lacking", &[("list", &list)]);
            check(w, "mail-dns", "warn", detail)
        } else if unknown > 0 {
            check(
                w,
                "mail-dns",
                "unknown",
                w.say("health_mail_dns_unknown", &[]),
            )
        } else {
            check(w, "mail-dns", "ok", w.say("health_mail_dns_ok", &[]))
        })
    }

    fn certificate_check(&self, w: Words, now: i64) -> Check {
        let c = self.certs.info();
        let left = c.not_after - now;
        let until = chrono::DateTime::from_timestamp(c.not_after, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let left_words = age(w, left);
        let (state, key) = if left < 0 {
            ("bad", "health_certificate_expired")
        } else if c.source == "self-signed" {
            ("warn", "health_certificate_self_signed")
        } else if left < 21 * DAY {
            ("warn", "health_certificate_ends_soon")
        } else {
            ("ok", "health_certificate_ok")
        };
        let detail = w.say(key, &[("until", &until), ("left", &left_words)]);
        check(w, "certificate", state, detail)
    }

    fn queue_check(&self, w: Words, now: i64) -> Check {
        let oldest = self
            .queue
            .as_ref()
            .and_then(|q| q.list().ok())
            .and_then(|l| l.iter().map(|m| m.entry.created).min());
        match oldest {
            None => check(w, "queue", "ok", w.say("health_queue_empty", &[])),
            Some(at) => {
                let state = match now - at {
                    a if a > DAY => "bad",
                    a if a > 3600 => "warn",
                    _ => "ok",
                };
                let waited = age(w, now - at);
                check(
                    w,
                    "queue",
                    state,
                    w.say("health_queue_oldest", &[("age", &waited)]),
                )
            }
        }
    }

    /// The helper, the slots and the units, on the appliance only.
    async fn appliance_checks(&self, w: Words) -> Vec<Check> {
        if std::fs::metadata(RELEASE_FILE).is_err() {
            let detail = w.say("health_helper_not_appliance", &[]);
            return vec![check(w, "helper", "unknown", detail)];
        }
        let sys = self.system().await;
        let mut out = vec![match &sys.helper_error {
            None => check(w, "helper", "ok", w.say("health_helper_ok", &[])),
            Some(e) => check(w, "helper", "bad", format!("{e}.")),
        }];
        let bad: Vec<String> = sys
            .slot_summary
            .iter()
            .filter(|s| s.status == "bad")
            .map(|s| {
                let version = s.version.as_deref().unwrap_or("?");
                w.say(
                    "health_slot",
                    &[("name", &s.bootname), ("version", &version)],
                )
            })
            .collect();
        let trial = sys
            .slot_summary
            .iter()
            .any(|s| s.state == "booted" && s.status == "pending");
        let slots = bad.join(", ");
        out.push(if !bad.is_empty() {
            check(
                w,
                "update",
                "warn",
                w.say("health_update_failed", &[("slots", &slots)]),
            )
        } else if trial {
            check(w, "update", "warn", w.say("health_update_trial", &[]))
        } else {
            check(w, "update", "ok", w.say("health_update_ok", &[]))
        });
        if let Some(units) = sys.failed_units {
            let list = units.join(", ");
            out.push(if units.is_empty() {
                check(w, "units", "ok", w.say("health_units_ok", &[]))
            } else {
                check(
                    w,
                    "units",
                    "bad",
                    w.say("health_units_failed", &[("units", &list)]),
                )
            });
        }
        out
    }
}

fn disk_check(w: Words, data_dir: &str) -> Check {
    let Some(DiskSpace {
        total_bytes: total,
        free_bytes: free,
    }) = DiskSpace::of(data_dir)
    else {
        return check(w, "disk", "unknown", w.say("health_disk_unknown", &[]));
    };
    let pct = (free * 100).checked_div(total).unwrap_or(100);
    let state = match pct {
        0..10 => "bad",
        10..20 => "warn",
        _ => "ok",
    };
    let (free, total) = (bytes(w, free), bytes(w, total));
    let vars: [(&str, &dyn std::fmt::Display); 3] =
        [("free", &free), ("total", &total), ("pct", &pct)];
    check(w, "disk", state, w.say("health_disk_free", &vars))
}

/// The whole box's memory (/proc/meminfo), not only the daemon's.
fn memory_check(w: Words) -> Check {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    let (Some(total), Some(avail)) = (kib("MemTotal:"), kib("MemAvailable:")) else {
        return check(w, "memory", "unknown", w.say("health_memory_unknown", &[]));
    };
    let pct = avail * 100 / total.max(1);
    let state = if pct < 10 { "warn" } else { "ok" };
    let (free, total) = (bytes(w, avail * 1024), bytes(w, total * 1024));
    let vars: [(&str, &dyn std::fmt::Display); 3] =
        [("free", &free), ("total", &total), ("pct", &pct)];
    check(w, "memory", state, w.say("health_memory_free", &vars))
}

/// A size in the language's units ("1.5 MB", "1,5 Mo").
fn bytes(w: Words, n: u64) -> String {
    let units = ["unit_b", "unit_kb", "unit_mb", "unit_gb", "unit_tb"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let number = format!("{v:.1}");
    let number = if w.say("decimal_mark", &[]) == "," {
        number.replace('.', ",")
    } else {
        number
    };
    format!("{number} {}", w.say(units[i], &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_in_words() {
        let w = Words::english();
        assert_eq!(age(w, 90), "1 minute");
        assert_eq!(age(w, 3 * 3600 + 5), "3 hours");
        assert_eq!(age(w, 8 * DAY), "8 days");
        assert_eq!(bytes(w, 1_500_000), "1.5 MB");
        let m = memory_check(w);
        assert!(
            m.detail.contains("in the whole box") && m.title == "Memory",
            "{m:?}"
        );
        let fr = Words::of(Some("fr"));
        assert_eq!(age(fr, 8 * DAY), "8 jours");
        assert_eq!(bytes(fr, 1_500_000), "1,5 Mo");
        assert_eq!(memory_check(fr).title, "Mémoire");
    }
}
