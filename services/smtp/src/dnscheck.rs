//! Whether the records a domain should publish are in DNS (the console's setup page).

use crate::verify;
use bureau_core::config::SmtpConfig;
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::proto::rr::{RData, RecordType};
use std::time::Duration;

/// What DNS says of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Published {
    /// There, as it should be.
    Yes,
    /// A record of that kind is there, with another value.
    Different,
    /// Not there.
    No,
    /// DNS could not be asked.
    Unknown,
}

/// Checks records given as (name, type, value), as `bureau domain dns` prints them, all
/// asked at once: a box that cannot reach DNS waits one timeout, not one per record.
pub async fn check(cfg: &SmtpConfig, records: &[(String, String, String)]) -> Vec<Published> {
    let Ok(resolver) = verify::resolver(cfg) else {
        return vec![Published::Unknown; records.len()];
    };
    let timeout = Duration::from_secs(cfg.dns_timeout_secs.max(1));
    let mut asked = tokio::task::JoinSet::new();
    for (i, (name, kind, value)) in records.iter().enumerate() {
        let (resolver, name, kind, value) =
            (resolver.clone(), name.clone(), kind.clone(), value.clone());
        asked.spawn(async move { (i, one(&resolver, timeout, &name, &kind, &value).await) });
    }
    let mut out = vec![Published::Unknown; records.len()];
    while let Some(done) = asked.join_next().await {
        if let Ok((i, p)) = done {
            out[i] = p;
        }
    }
    out
}

async fn one(
    resolver: &TokioResolver,
    timeout: Duration,
    name: &str,
    kind: &str,
    value: &str,
) -> Published {
    let rtype = match kind {
        "MX" => RecordType::MX,
        "TXT" => RecordType::TXT,
        "CNAME" => RecordType::CNAME,
        "SRV" => RecordType::SRV,
        _ => return Published::Unknown,
    };
    let found = match tokio::time::timeout(timeout, resolver.lookup(name, rtype)).await {
        Err(_) => return Published::Unknown,
        Ok(Ok(l)) => l
            .answers()
            .iter()
            .map(|r| r.data.clone())
            .collect::<Vec<_>>(),
        Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => Vec::new(),
        Ok(Err(_)) => return Published::Unknown,
    };
    compare(kind, value, &found)
}

/// Whether a name has an address in DNS (an A or AAAA record): asked of DNS itself, not of
/// the system's resolver, which knows the box's own name from /etc/hosts.
pub async fn resolves(cfg: &SmtpConfig, name: &str) -> Published {
    let Ok(resolver) = verify::resolver(cfg) else {
        return Published::Unknown;
    };
    let timeout = Duration::from_secs(cfg.dns_timeout_secs.max(1));
    let mut answer = Published::No;
    for rtype in [RecordType::A, RecordType::AAAA] {
        match tokio::time::timeout(timeout, resolver.lookup(name, rtype)).await {
            Ok(Ok(l)) if !l.answers().is_empty() => return Published::Yes,
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => {}
            _ => answer = Published::Unknown,
        }
    }
    answer
}

fn host(n: &str) -> String {
    n.trim_end_matches('.').to_ascii_lowercase()
}

/// Compares what DNS holds with the record wanted.
fn compare(kind: &str, want: &str, found: &[RData]) -> Published {
    let want_words: Vec<&str> = want.split_whitespace().collect();
    let mut same_kind = false;
    for d in found {
        let hit = match (kind, d) {
            ("MX", RData::MX(m)) => {
                same_kind = true;
                want_words
                    .last()
                    .is_some_and(|h| host(h) == host(&m.exchange.to_ascii()))
            }
            ("TXT", RData::TXT(t)) => {
                let text: String = t
                    .txt_data
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                // Of the TXT records at a name, the one of the same protocol counts.
                let tag = want
                    .split(';')
                    .next()
                    .unwrap_or(want)
                    .split_whitespace()
                    .next()
                    .unwrap_or("");
                if text.starts_with(tag) {
                    same_kind = true;
                }
                text == want
            }
            ("CNAME", RData::CNAME(c)) => {
                same_kind = true;
                host(&c.0.to_ascii()) == host(want)
            }
            ("SRV", RData::SRV(s)) => {
                same_kind = true;
                // "priority weight port target": the port and target matter.
                want_words.len() == 4
                    && want_words[2] == s.port.to_string()
                    && host(want_words[3]) == host(&s.target.to_ascii())
            }
            _ => false,
        };
        if hit {
            return Published::Yes;
        }
    }
    if same_kind {
        Published::Different
    } else {
        Published::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::hickory_resolver::proto::rr::Name;
    use mail_auth::hickory_resolver::proto::rr::rdata::{MX, TXT};

    #[test]
    fn records_compare_by_what_matters() {
        let mx = RData::MX(MX::new(20, Name::from_ascii("BOX.example.com.").unwrap()));
        assert_eq!(compare("MX", "10 box.example.com.", &[mx]), Published::Yes);
        let spf = RData::TXT(TXT::new(vec!["v=spf1 a -all".into()]));
        let other = RData::TXT(TXT::new(vec!["google-site-verification=x".into()]));
        assert_eq!(
            compare("TXT", "v=spf1 mx ~all", std::slice::from_ref(&other)),
            Published::No
        );
        assert_eq!(
            compare("TXT", "v=spf1 mx ~all", &[other, spf]),
            Published::Different
        );
        let split = RData::TXT(TXT::new(vec!["v=DKIM1; k=rsa; p=AB".into(), "CD".into()]));
        assert_eq!(
            compare("TXT", "v=DKIM1; k=rsa; p=ABCD", &[split]),
            Published::Yes
        );
        assert_eq!(compare("CNAME", "box.example.com.", &[]), Published::No);
    }
}
