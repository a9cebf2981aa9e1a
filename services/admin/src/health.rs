//! `GET /api/v1/health`: what needs an administrator's eye, each check with a state ("ok",
//! "warn", "bad", "unknown") and a sentence: the box's name and each mail domain's records
//! in DNS, the certificate's
//! expiry, the last backup's age, the data partition's space and the whole box's memory,
//! the mail queue's oldest message, and on the appliance the system helper, the update
//! slots and the failed units. The dashboard shows them first.

use crate::*;

/// One check.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    pub id: &'static str,
    pub state: &'static str,
    pub title: &'static str,
    pub detail: String,
}

const DAY: i64 = 86_400;

fn check(id: &'static str, title: &'static str, state: &'static str, detail: String) -> Check {
    Check {
        id,
        state,
        title,
        detail,
    }
}

/// "3 days", "1 day", "5 hours".
fn age(secs: i64) -> String {
    let (n, unit) = if secs >= DAY {
        (secs / DAY, "day")
    } else if secs >= 3600 {
        (secs / 3600, "hour")
    } else {
        ((secs / 60).max(0), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

impl AdminApi {
    pub(crate) async fn health(&self) -> Vec<Check> {
        let now = bureau_store::now();
        let mut out = vec![self.dns_check().await];
        out.extend(self.mail_dns_check().await);
        out.push(self.certificate_check(now));
        out.push(
            match bureau_core::system::last_backup(&self.info.system_dir) {
                None => check(
                    "backup",
                    "Backups",
                    "warn",
                    "No backup has been taken yet: download one on the Backups page.".into(),
                ),
                Some(at) if now - at > 7 * DAY => check(
                    "backup",
                    "Backups",
                    "warn",
                    format!("The last backup is {} old.", age(now - at)),
                ),
                Some(at) => check(
                    "backup",
                    "Backups",
                    "ok",
                    format!("The last backup was taken {} ago.", age(now - at)),
                ),
            },
        );
        out.push(disk_check(&self.info.data_dir));
        out.push(memory_check());
        out.push(self.queue_check(now));
        out.extend(self.appliance_checks().await);
        out
    }

    async fn dns_check(&self) -> Check {
        let name = &self.info.hostname;
        let Some(q) = &self.queue else {
            return check(
                "dns",
                "The box's name",
                "unknown",
                "DNS was not asked.".into(),
            );
        };
        use bureau_smtp::dnscheck::Published;
        match q.box_resolves().await {
            Published::Yes => check(
                "dns",
                "The box's name",
                "ok",
                format!("{name} has an address in DNS."),
            ),
            Published::Unknown => check(
                "dns",
                "The box's name",
                "unknown",
                format!("DNS could not be asked about {name}."),
            ),
            _ => check(
                "dns",
                "The box's name",
                "bad",
                format!(
                    "{name} has no A or AAAA record in DNS: phones and mail clients outside the box cannot find it. Publish one at your DNS provider."
                ),
            ),
        }
    }

    /// Each domain's mail records (MX, SPF, DKIM, DMARC, autoconfiguration), as the domain's
    /// DNS page checks them: one line per domain that lacks some.
    async fn mail_dns_check(&self) -> Option<Check> {
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
                lacking.push(format!(
                    "{} ({missing} of {} records)",
                    d.name,
                    records.len()
                ));
            }
        }
        let title = "Mail domains in DNS";
        Some(if !lacking.is_empty() {
            check(
                "mail-dns",
                title,
                "warn",
                format!(
                    "Not published as the Domains page shows, or different: {}. Mail from the office may be taken for spam until they are.",
                    lacking.join(", ")
                ),
            )
        } else if unknown > 0 {
            check(
                "mail-dns",
                title,
                "unknown",
                "DNS could not be asked about the mail domains.".into(),
            )
        } else {
            check(
                "mail-dns",
                title,
                "ok",
                "Every mail domain's records are published.".into(),
            )
        })
    }

    fn certificate_check(&self, now: i64) -> Check {
        let c = self.certs.info();
        let left = c.not_after - now;
        let until = chrono::DateTime::from_timestamp(c.not_after, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let (state, detail) = if left < 0 {
            (
                "bad",
                format!("The certificate expired on {until}: clients refuse the box."),
            )
        } else if c.source == "self-signed" {
            (
                "warn",
                "The box serves a certificate it made itself: every client asks once whether to trust it. Upload one for the box's name.".into(),
            )
        } else if left < 21 * DAY {
            (
                "warn",
                format!("The certificate expires on {until}, in {}.", age(left)),
            )
        } else {
            ("ok", format!("The certificate is valid until {until}."))
        };
        check("certificate", "Certificate", state, detail)
    }

    fn queue_check(&self, now: i64) -> Check {
        let oldest = self
            .queue
            .as_ref()
            .and_then(|q| q.list().ok())
            .and_then(|l| l.iter().map(|m| m.entry.created).min());
        match oldest {
            None => check(
                "queue",
                "Mail queue",
                "ok",
                "No mail is waiting to go out.".into(),
            ),
            Some(at) => {
                let state = match now - at {
                    a if a > DAY => "bad",
                    a if a > 3600 => "warn",
                    _ => "ok",
                };
                check(
                    "queue",
                    "Mail queue",
                    state,
                    format!(
                        "The oldest message waiting to go out has waited {}.",
                        age(now - at)
                    ),
                )
            }
        }
    }

    /// The helper, the slots and the units, on the appliance only.
    async fn appliance_checks(&self) -> Vec<Check> {
        if std::fs::metadata(RELEASE_FILE).is_err() {
            return vec![check(
                "helper",
                "System helper",
                "unknown",
                "Not running from the appliance image: no helper, slots or system units to check."
                    .into(),
            )];
        }
        let sys = self.system().await;
        let mut out = vec![match &sys.helper_error {
            None => check(
                "helper",
                "System helper",
                "ok",
                "The system helper answers.".into(),
            ),
            Some(e) => check("helper", "System helper", "bad", format!("{e}.")),
        }];
        let bad: Vec<String> = sys
            .slot_summary
            .iter()
            .filter(|s| s.status == "bad")
            .map(|s| {
                format!(
                    "slot {} ({})",
                    s.bootname,
                    s.version.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let trial = sys
            .slot_summary
            .iter()
            .any(|s| s.state == "booted" && s.status == "pending");
        out.push(if !bad.is_empty() {
            check(
                "update",
                "Updates",
                "warn",
                format!("An update failed and was rolled back: {}.", bad.join(", ")),
            )
        } else if trial {
            check(
                "update",
                "Updates",
                "warn",
                "The running system is on trial until its health check passes.".into(),
            )
        } else {
            check(
                "update",
                "Updates",
                "ok",
                "The running system is confirmed.".into(),
            )
        });
        if let Some(units) = sys.failed_units {
            out.push(if units.is_empty() {
                check(
                    "units",
                    "System units",
                    "ok",
                    "Every system unit runs.".into(),
                )
            } else {
                check(
                    "units",
                    "System units",
                    "bad",
                    format!("Failed: {}. The logs say why.", units.join(", ")),
                )
            });
        }
        out
    }
}

fn disk_check(data_dir: &str) -> Check {
    let Some(DiskSpace {
        total_bytes: total,
        free_bytes: free,
    }) = DiskSpace::of(data_dir)
    else {
        return check(
            "disk",
            "Disk",
            "unknown",
            "The data partition's space is unknown.".into(),
        );
    };
    let pct = (free * 100).checked_div(total).unwrap_or(100);
    let state = match pct {
        0..10 => "bad",
        10..20 => "warn",
        _ => "ok",
    };
    check(
        "disk",
        "Disk",
        state,
        format!(
            "{} free of {} on the data partition ({pct}%).",
            bytes(free),
            bytes(total)
        ),
    )
}

/// The whole box's memory (/proc/meminfo), not only the daemon's.
fn memory_check() -> Check {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    let (Some(total), Some(avail)) = (kib("MemTotal:"), kib("MemAvailable:")) else {
        return check(
            "memory",
            "Memory",
            "unknown",
            "The box's memory is unknown.".into(),
        );
    };
    let pct = avail * 100 / total.max(1);
    let state = if pct < 10 { "warn" } else { "ok" };
    check(
        "memory",
        "Memory",
        state,
        format!(
            "{} available of {} in the whole box ({pct}%).",
            bytes(avail * 1024),
            bytes(total * 1024)
        ),
    )
}

fn bytes(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_in_words() {
        assert_eq!(age(90), "1 minute");
        assert_eq!(age(3 * 3600 + 5), "3 hours");
        assert_eq!(age(8 * DAY), "8 days");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        let m = memory_check();
        assert!(m.detail.contains("in the whole box"), "{m:?}");
    }
}
