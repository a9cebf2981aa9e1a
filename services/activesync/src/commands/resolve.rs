//! ResolveRecipients (MS-ASCMD 2.2.1.15): each address or name the device asks about,
//! resolved against the company directory (the GAL), with the free/busy of users here
//! when asked. Nobody here holds certificates, so a certificate request is answered
//! "none found".

use crate::classes::calendar::parse_time;
use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_directory::{Target, User};
use bureau_store::StoreError;

/// Most names one request may ask about, and suggestions given for an ambiguous one.
const MAX_TO: usize = 100;
const DEFAULT_AMBIGUOUS: usize = 20;
/// Free/busy is told in half hours, for at most six weeks.
const SLOT: i64 = 30 * 60;
const MAX_SLOTS: i64 = 42 * 48;

mod status {
    pub const SUCCESS: &str = "1";
    pub const AMBIGUOUS: &str = "2";
    pub const UNRESOLVED: &str = "4";
    pub const PROTOCOL_ERROR: &str = "5";
    /// Certificates: none found (MS-ASCMD 2.2.3.177.14).
    pub const NO_CERTIFICATE: &str = "7";
    /// Availability: no free/busy for this recipient (a group, someone elsewhere).
    pub const NO_FREE_BUSY: &str = "163";
}

fn rr(name: &'static str) -> Element {
    Element::new(page::RESOLVE_RECIPIENTS, name)
}

/// Half hours from `from`: 0 free, 1 tentative, 2 busy (MS-ASCMD 2.2.3.102).
fn merged(busy: &[(i64, i64)], tentative: &[(i64, i64)], from: i64, to: i64) -> String {
    let slots = ((to - from + SLOT - 1) / SLOT).clamp(0, MAX_SLOTS);
    (0..slots)
        .map(|i| {
            let (a, b) = (from + i * SLOT, from + (i + 1) * SLOT);
            let hit = |ps: &[(i64, i64)]| ps.iter().any(|(s, e)| *s < b && *e > a);
            if hit(busy) {
                '2'
            } else if hit(tentative) {
                '1'
            } else {
                '0'
            }
        })
        .collect()
}

pub async fn resolve_recipients(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let top = |s: &str| rr("ResolveRecipients").with(rr("Status").text(s));
    let Some(doc) = doc.filter(|d| d.name == "ResolveRecipients") else {
        return Ok(document(&top(status::PROTOCOL_ERROR)));
    };
    let asked: Vec<String> = doc.children_named("To").map(|t| t.value()).collect();
    if asked.is_empty() || asked.len() > MAX_TO {
        return Ok(document(&top(status::PROTOCOL_ERROR)));
    }
    let options = doc.child("Options");
    let max_ambiguous = options
        .and_then(|o| o.child_value("MaxAmbiguousRecipients"))
        .and_then(|m| m.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_AMBIGUOUS)
        .min(DEFAULT_AMBIGUOUS);
    let certificates = options
        .and_then(|o| o.child_value("CertificateRetrieval"))
        .is_some_and(|c| c.trim() != "1");
    let window = options.and_then(|o| o.child("Availability")).and_then(|a| {
        let from = parse_time(&a.child_value("StartTime")?)?
            .and_utc()
            .timestamp();
        let to = parse_time(&a.child_value("EndTime")?)?
            .and_utc()
            .timestamp();
        (to > from).then_some((from, to))
    });
    let dir = eas.auth.directory();
    let users = dir
        .calendar_users()
        .map_err(|e| StoreError::Io(e.to_string()))?;
    let mut out = top(status::SUCCESS);
    for to in asked {
        let q = to.trim().to_lowercase();
        let addr = q
            .rsplit_once('<')
            .map(|(_, a)| a.trim_end_matches('>').trim().to_string())
            .unwrap_or_else(|| q.clone());
        // An address resolves to its user or group; anything else is looked for by name.
        let (found, name_of_group): (Vec<User>, Option<(String, String)>) = match dir
            .resolve(&addr)
            .map_err(|e| StoreError::Io(e.to_string()))?
        {
            Some(Target::User(u)) if u.enabled => (vec![u], None),
            Some(Target::Group(g)) => (Vec::new(), Some((g.display_name, addr.clone()))),
            _ if !q.is_empty() && !q.contains('@') => (
                users
                    .iter()
                    .filter(|u| u.enabled)
                    .filter(|u| {
                        let n = u.display_name.to_lowercase();
                        n.starts_with(&q)
                            || n.split_whitespace().any(|w| w.starts_with(&q))
                            || u.uid.starts_with(&q)
                    })
                    .cloned()
                    .collect(),
                None,
            ),
            _ => (Vec::new(), None),
        };
        let count = found.len() + usize::from(name_of_group.is_some());
        let code = match count {
            0 => status::UNRESOLVED,
            1 => status::SUCCESS,
            _ => status::AMBIGUOUS,
        };
        let mut resp = rr("Response")
            .with(rr("To").text(to.clone()))
            .with(rr("Status").text(code))
            .with(rr("RecipientCount").text(count.min(max_ambiguous).to_string()));
        let recipient = |name: &str, address: &str, busy: Option<String>| {
            let mut r = rr("Recipient")
                .with(rr("Type").text("1"))
                .with(rr("DisplayName").text(name))
                .with(rr("EmailAddress").text(address));
            if window.is_some() {
                r = r.with(match busy {
                    Some(m) => rr("Availability")
                        .with(rr("Status").text(status::SUCCESS))
                        .with(rr("MergedFreeBusy").text(m)),
                    None => rr("Availability").with(rr("Status").text(status::NO_FREE_BUSY)),
                });
            }
            if certificates {
                r = r.with(
                    rr("Certificates")
                        .with(rr("Status").text(status::NO_CERTIFICATE))
                        .with(rr("CertificateCount").text("0")),
                );
            }
            r
        };
        for u in found.iter().take(max_ambiguous) {
            // A room's or equipment's time is shown to those who may book it (as CalDAV's
            // outbox does).
            let shown = u.resource.is_none() || dir.may_book(u, &cx.user).unwrap_or(false);
            let busy = match window {
                Some((from, to)) if shown => {
                    let (b, t) = eas.sched().free_busy(u.principal, from, to)?;
                    Some(merged(&b, &t, from, to))
                }
                _ => None,
            };
            resp = resp.with(recipient(&u.display_name, &u.address, busy));
        }
        if let Some((name, address)) = &name_of_group {
            resp = resp.with(recipient(name, address, None));
        }
        out = out.with(resp);
    }
    Ok(document(&out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn half_hours_of_a_day() {
        let day = 1_796_083_200; // 2026-12-01T00:00:00Z
        let busy = [(day + 9 * 3600, day + 10 * 3600)];
        let tentative = [(day + 10 * 3600 + 900, day + 10 * 3600 + 1800)];
        let m = super::merged(&busy, &tentative, day + 8 * 3600, day + 12 * 3600);
        assert_eq!(m, "00221000");
    }
}
