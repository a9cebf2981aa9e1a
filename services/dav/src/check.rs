//! Stored objects that break the rules every write now follows (issue 19): a store written
//! before those rules may hold some. Queries skip what they cannot read; this finds them,
//! for the log at start and for `bureau check`, so an administrator can mend or remove them.

use crate::{Kind, check_object};
use bureau_directory::Directory;
use bureau_store::{Actor, CollectionKind, Store, StoreError};
use serde::{Deserialize, Serialize};

/// One object that would be refused if it were written today.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broken {
    /// The owner's name (a user, resource or group), the collection's and the object's.
    pub owner: String,
    pub collection: String,
    pub name: String,
    /// What is wrong, as a PUT of it would be told.
    pub why: String,
    /// The collection, item and modseq.
    #[serde(skip)]
    pub key: (u64, u64, u64),
}

/// Every calendar object and card of every user, resource, group and of the company
/// address book that breaks the rules.
pub fn broken_objects(store: &Store, dir: &Directory) -> Result<Vec<Broken>, StoreError> {
    let io = |e: bureau_directory::DirectoryError| StoreError::Io(e.to_string());
    let r = store.reader(Actor::System)?;
    let mut owners: Vec<(String, u64)> = dir
        .calendar_users()
        .map_err(io)?
        .into_iter()
        .map(|u| (u.uid, u.principal))
        .collect();
    owners.extend(
        dir.groups()
            .map_err(io)?
            .into_iter()
            .map(|g| (g.name, g.principal)),
    );
    if let Ok(p) = r.principal_by_name(bureau_directory::company::OWNER) {
        owners.push((p.name, p.id));
    }
    let mut out = Vec::new();
    for (owner, principal) in owners {
        for c in r.collections_of(principal)? {
            let kind = match c.kind {
                CollectionKind::Calendar | CollectionKind::TaskList | CollectionKind::Notes => {
                    Kind::Calendar
                }
                CollectionKind::AddressBook => Kind::Contacts,
                _ => continue,
            };
            for item in r.items(c.id)? {
                let Some(name) = item.name.clone() else {
                    continue;
                };
                if let Err(e) = check_object(kind, &r.content(&item)?) {
                    out.push(Broken {
                        owner: owner.clone(),
                        collection: c.name.clone(),
                        name,
                        why: e.why,
                        key: (c.id, item.id, item.modseq),
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bureau_core::Auth;
    use bureau_core::config::AuthConfig;
    use bureau_directory::{DirectoryOptions, NewUser};
    use bureau_store::{NewItem, StoreOptions};

    const SOUND: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:ok\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261210T100000Z\r\nSUMMARY:fine\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    // Cut off: its END lines never came.
    const CUT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:cut\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261210T100000Z\r\nSUMMARY:cut off\r\n";
    const NO_UID: &str = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Nobody\r\nEND:VCARD\r\n";

    #[tokio::test]
    async fn broken_stored_objects_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), StoreOptions::default()).unwrap();
        let dir = Directory::new(
            store.clone(),
            DirectoryOptions {
                argon2_m_kib: 256,
                argon2_t: 1,
                ..Default::default()
            },
        )
        .unwrap();
        dir.add_domain("example.com").await.unwrap();
        let alice = dir
            .add_user(NewUser {
                address: "alice@example.com".into(),
                password: "correct horse".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        // Written as a store of an older release may hold them: past today's checks.
        let r = store.reader(Actor::System).unwrap();
        let cal = r
            .collection_by_name(alice.principal, "calendar")
            .unwrap()
            .id;
        let book = r
            .collection_by_name(alice.principal, "contacts")
            .unwrap()
            .id;
        drop(r);
        for (coll, kind, name, text) in [
            (cal, Kind::Calendar, "ok.ics", SOUND),
            (cal, Kind::Calendar, "cut.ics", CUT),
            (book, Kind::Contacts, "nobody.vcf", NO_UID),
        ] {
            let staged = store
                .stage_blocking(text.as_bytes(), bureau_store::Content::Data)
                .unwrap();
            let blob = staged.blob_ref();
            // Indexed as an older release did: a broken one by what could be read of it.
            let props = check_object(kind, text.as_bytes()).unwrap_or_else(|_| {
                [
                    ("uid".to_string(), "cut".to_string()),
                    ("component".into(), "VEVENT".into()),
                ]
                .into_iter()
                .collect()
            });
            store
                .write(Actor::System, vec![staged], move |w| {
                    w.put_item(
                        coll,
                        NewItem {
                            name: Some(name.into()),
                            blob: Some(blob),
                            props: props.clone(),
                            ..Default::default()
                        },
                    )
                })
                .await
                .unwrap();
        }
        let sched = bureau_groupware::schedule::Scheduler::new(
            store.clone(),
            dir.clone(),
            None,
            Default::default(),
        );
        let dav = crate::Dav::new(
            store.clone(),
            Auth::new(dir.clone(), AuthConfig::default()),
            "box.example.com",
            sched,
        );
        let mut found: Vec<(String, String)> = dav
            .check_stored()
            .unwrap()
            .into_iter()
            .map(|b| (format!("{}/{}/{}", b.owner, b.collection, b.name), b.why))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                (
                    "alice/calendar/cut.ics".into(),
                    "BEGIN:VEVENT is never closed".into()
                ),
                (
                    "alice/contacts/nobody.vcf".into(),
                    "a vCard needs a UID (RFC 6352 5.1)".into()
                ),
            ]
        );
        // A query leaves the broken event out; the sound one is answered.
        let user = dir.user("alice").unwrap().unwrap();
        let ctx = crate::Ctx {
            dav: &dav,
            user: &user,
        };
        let query = r#"<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="20261201T000000Z" end="20261231T000000Z"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;
        let target =
            crate::Target::Collection(crate::Kind::Calendar, "alice".into(), "calendar".into());
        let resp = crate::report::report(&ctx, &target, query.as_bytes());
        use http_body_util::BodyExt;
        let text = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&text);
        assert!(
            text.contains("ok.ics") && !text.contains("cut.ics"),
            "{text}"
        );
    }
}
