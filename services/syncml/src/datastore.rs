//! The datastores a device names (Target LocURI) and the store's collections behind them:
//! a device's change made into a stored object, and the server's changes read for it.
//!
//! Contacts are vCards, as CardDAV keeps them: a device's card is checked by the rules every
//! write of a contact follows (a card without a UID gets one), and the server's cards go
//! out as they are stored.

use crate::message::{alert, status};
use bureau_groupware::object::{self, ObjectKind};
use bureau_store::{
    Actor, Collection, CollectionId, CollectionKind, ItemId, ModSeq, NewItem, Reader, Store,
    StoreError, SyncState,
};
use std::collections::BTreeSet;

/// What the server still has to send to a datastore.
#[derive(Clone, Debug)]
pub enum Out {
    Add { id: ItemId, data: String },
    Replace { luid: String, data: String },
    Delete { luid: String },
}

impl Out {
    pub fn size(&self) -> usize {
        300 + match self {
            Out::Add { data, .. } | Out::Replace { data, .. } => data.len(),
            Out::Delete { .. } => 0,
        }
    }
}

/// What a datastore holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Contacts,
}

impl Kind {
    /// The names devices use for it (compared without case, "./" and a trailing "/").
    fn of_name(name: &str) -> Option<Kind> {
        match name {
            "contacts" | "contact" | "card" | "scard" | "addressbook" => Some(Kind::Contacts),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Contacts => "text/vcard",
        }
    }

    fn collection(self) -> CollectionKind {
        match self {
            Kind::Contacts => CollectionKind::AddressBook,
        }
    }

    fn accepts(self, content_type: &str) -> bool {
        match self {
            Kind::Contacts => matches!(
                content_type.to_ascii_lowercase().as_str(),
                "text/vcard" | "text/x-vcard" | "text/directory"
            ),
        }
    }
}

/// The user's collection a datastore name stands for: the default one of its kind (named
/// so by the directory), else the first.
pub fn resolve(
    r: &Reader,
    principal: u64,
    uri: &str,
) -> Result<Option<(Kind, Collection)>, StoreError> {
    let name = uri
        .trim()
        .trim_start_matches("./")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let Some(kind) = Kind::of_name(&name) else {
        return Ok(None);
    };
    let mut of_kind: Vec<Collection> = r
        .collections_of(principal)?
        .into_iter()
        .filter(|c| c.kind == kind.collection())
        .collect();
    of_kind.sort_by_key(|c| (c.name != "contacts", c.id));
    Ok(of_kind.into_iter().next().map(|c| (kind, c)))
}

/// A datastore as a device's changes are made to it.
pub struct Target<'a> {
    pub coll: CollectionId,
    pub kind: Kind,
    pub mode: u16,
    pub state: &'a mut SyncState,
    pub matched: &'a mut BTreeSet<ItemId>,
}

/// A datastore as its server changes are read.
pub struct View<'a> {
    pub coll: CollectionId,
    pub mode: u16,
    pub state: &'a SyncState,
    pub matched: &'a BTreeSet<ItemId>,
}

/// A card fit to store: checked, with a UID if it had none.
fn card(data: &str) -> Result<String, object::Invalid> {
    let mut text = data.replace("\r\n", "\n").replace('\n', "\r\n");
    if !text.ends_with("\r\n") {
        text.push_str("\r\n");
    }
    let has_uid = text.lines().any(|l| {
        l.split([':', ';'])
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case("UID"))
    });
    if !has_uid && let Some(end) = text.to_ascii_uppercase().rfind("END:VCARD") {
        let uid = format!("UID:urn:uuid:{:032x}\r\n", rand::random::<u128>());
        text.insert_str(end, &uid);
    }
    object::check(ObjectKind::Contact, text.as_bytes()).map(|_| text)
}

/// The text of a card for comparing, as devices rewrite what they store: unfolded, sorted
/// lines, names upper-cased, without the lines that only say how it was kept (VERSION,
/// REV, PRODID, UID, X- extensions) and without empty ones ("TITLE:", "ADR:;;;;;;").
fn comparable(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for l in text.split('\n') {
        let l = l.trim_end_matches('\r');
        if let Some(rest) = l.strip_prefix([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push_str(rest);
            }
            continue;
        }
        lines.push(l.to_string());
    }
    let mut keep: Vec<String> = lines
        .into_iter()
        .filter_map(|l| {
            let (head, value) = l.split_once(':')?;
            let name = head
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_uppercase();
            let empty = value.chars().all(|c| c == ';' || c.is_whitespace());
            let meta = matches!(name.as_str(), "VERSION" | "REV" | "PRODID" | "UID");
            (!empty && !meta && !name.starts_with("X-"))
                .then(|| format!("{}:{}", head.to_ascii_uppercase(), value.trim()))
        })
        .collect();
    keep.sort();
    keep
}

/// Makes a device's Add, Replace or Delete; the item's status.
pub async fn apply(
    store: &Store,
    principal: u64,
    t: Target<'_>,
    verb: &str,
    luid: &str,
    content_type: Option<&str>,
    data: &str,
) -> Result<u16, StoreError> {
    if luid.is_empty() || luid.len() > 256 {
        return Ok(status::BAD_REQUEST);
    }
    let actor = Actor::Principal(principal);
    let coll = t.coll;
    let known = t.state.id_map.get(luid).copied();
    if verb == "Delete" {
        let Some(id) = known else {
            return Ok(status::NOT_DELETED);
        };
        let done = store
            .write(actor, vec![], move |w| w.delete_item(coll, id))
            .await;
        t.state.id_map.remove(luid);
        return match done {
            Ok(()) => Ok(status::OK),
            Err(StoreError::NotFound) => Ok(status::NOT_DELETED),
            Err(e) => Err(e),
        };
    }
    if content_type.is_some_and(|c| !t.kind.accepts(c)) {
        return Ok(status::UNSUPPORTED_TYPE);
    }
    let text = match card(data) {
        Ok(t) => t,
        Err(why) => {
            log::info!("syncml: a device's card refused: {why}");
            return Ok(status::BAD_REQUEST);
        }
    };
    let props = object::check(ObjectKind::Contact, text.as_bytes())
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let r = store.reader(actor)?;
    // The stored item this change is to: the device's id for it, else (a slow or refresh
    // sync, or an Add of what is already here) the same UID or the same card.
    let existing = match known.and_then(|id| r.item(coll, id).ok()) {
        Some(item) => Some(item),
        None if verb == "Replace" || t.mode != alert::TWO_WAY => {
            let uid = props
                .get(bureau_store::prop::UID)
                .cloned()
                .unwrap_or_default();
            let mut found = r
                .items_with_uid(coll, &uid)?
                .into_iter()
                .find(|i| !t.matched.contains(&i.id));
            if found.is_none() && matches!(t.mode, alert::SLOW | alert::REFRESH_FROM_CLIENT) {
                let want = comparable(&text);
                for i in r.items(coll)? {
                    if !t.matched.contains(&i.id)
                        && comparable(&String::from_utf8_lossy(&r.content(&i)?)) == want
                    {
                        found = Some(i);
                        break;
                    }
                }
            }
            found
        }
        None => None,
    };
    drop(r);
    let staged = store
        .stage(text.into_bytes(), bureau_store::Content::Data)
        .await?;
    let blob = staged.blob_ref();
    let (id, modseq, code) = match existing {
        Some(item) => {
            let id = item.id;
            let done = store
                .write(actor, vec![staged], move |w| {
                    w.update_item(coll, id, None, |it| {
                        it.blob = Some(blob);
                        it.props.extend(props.clone());
                    })
                })
                .await?;
            (id, done.modseq, status::OK)
        }
        None => {
            let name = format!("{:032x}.vcf", rand::random::<u128>());
            let done = store
                .write(actor, vec![staged], move |w| {
                    w.put_item(
                        coll,
                        NewItem {
                            name: Some(name.clone()),
                            blob: Some(blob),
                            props: props.clone(),
                            ..Default::default()
                        },
                    )
                })
                .await?;
            (done.id, done.modseq, status::ADDED)
        }
    };
    t.state.id_map.insert(luid.to_string(), id);
    t.state.own_changes.insert(id, modseq);
    t.matched.insert(id);
    Ok(code)
}

/// A refresh from the client: the stored items it did not send go (the device's set is
/// the datastore's now).
pub async fn drop_unmatched(
    store: &Store,
    principal: u64,
    coll: CollectionId,
    matched: &BTreeSet<ItemId>,
) -> Result<(), StoreError> {
    let actor = Actor::Principal(principal);
    let gone: Vec<ItemId> = store
        .reader(actor)?
        .item_ids(coll)?
        .into_iter()
        .filter(|id| !matched.contains(id))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    store
        .write(actor, vec![], move |w| {
            for id in &gone {
                w.delete_item(coll, *id)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
}

/// The server's changes for a datastore, in the session's sync type, and the collection's
/// modseq they were read at.
pub fn changes_for(
    store: &Store,
    principal: u64,
    v: View<'_>,
) -> Result<(Vec<Out>, ModSeq), StoreError> {
    let r = store.reader(Actor::Principal(principal))?;
    let luid_of: std::collections::BTreeMap<ItemId, &String> =
        v.state.id_map.iter().map(|(l, id)| (*id, l)).collect();
    let text = |i: &bureau_store::Item| -> Result<String, StoreError> {
        Ok(String::from_utf8_lossy(&r.content(i)?).into_owned())
    };
    let mut out = Vec::new();
    let at = r.collection(v.coll)?.modseq;
    match v.mode {
        alert::ONE_WAY_FROM_CLIENT | alert::REFRESH_FROM_CLIENT => {}
        alert::SLOW | alert::REFRESH_FROM_SERVER => {
            // Everything the device did not just send or match.
            for i in r.items(v.coll)? {
                if !v.matched.contains(&i.id) {
                    out.push(Out::Add {
                        id: i.id,
                        data: text(&i)?,
                    });
                }
            }
        }
        _ => {
            let changes = match r.changes_since(v.coll, v.state.acked_modseq) {
                Ok(c) => c,
                // The log no longer reaches back: everything, as in a slow sync.
                Err(StoreError::TooOld) => {
                    for i in r.items(v.coll)? {
                        out.push(match luid_of.get(&i.id) {
                            Some(l) => Out::Replace {
                                luid: (*l).clone(),
                                data: text(&i)?,
                            },
                            None => Out::Add {
                                id: i.id,
                                data: text(&i)?,
                            },
                        });
                    }
                    return Ok((out, at));
                }
                Err(e) => return Err(e),
            };
            for i in changes.changed {
                if v.state.own_changes.get(&i.id) == Some(&i.modseq) {
                    continue;
                }
                out.push(match luid_of.get(&i.id) {
                    Some(l) => Out::Replace {
                        luid: (*l).clone(),
                        data: text(&i)?,
                    },
                    None => Out::Add {
                        id: i.id,
                        data: text(&i)?,
                    },
                });
            }
            for id in changes.deleted {
                if let Some(l) = luid_of.get(&id) {
                    out.push(Out::Delete { luid: (*l).clone() });
                }
            }
        }
    }
    Ok((out, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_devices_card_gets_a_uid_and_compares_by_its_content() {
        let c = card("BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nN:;Ann;;;\nEND:VCARD").unwrap();
        assert!(
            c.contains("\r\nUID:urn:uuid:") && c.ends_with("END:VCARD\r\n"),
            "{c}"
        );
        assert!(card("BEGIN:VCARD\nVERSION:3.0\nFN:Ann\n").is_err());
        let a = "BEGIN:VCARD\r\nVERSION:3.0\r\nREV:1\r\nFN:Ann\r\nTEL:1\r\nEND:VCARD\r\n";
        let b = "BEGIN:VCARD\r\nVERSION:3.0\r\nTEL:1\r\nFN:Ann\r\nREV:2\r\nEND:VCARD\r\n";
        assert_eq!(comparable(a), comparable(b));
        // As a device writes it back: version, empty fields, extensions.
        let c = "BEGIN:VCARD\r\nVERSION:4.0\r\nfn:Ann\r\nTITLE:\r\nADR:;;;;;;\r\nX-A:1\r\nTEL:1\r\nEND:VCARD\r\n";
        assert_eq!(comparable(a), comparable(c));
        assert_ne!(comparable(a), comparable(&a.replace("TEL:1", "TEL:2")));
        for name in ["Contacts", "./contacts", "card", "ADDRESSBOOK"] {
            let n = name.trim_start_matches("./").to_ascii_lowercase();
            assert_eq!(Kind::of_name(&n), Some(Kind::Contacts), "{name}");
        }
    }
}
