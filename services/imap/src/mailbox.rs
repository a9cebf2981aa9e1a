//! Mailbox names and rights. A user's own mailboxes are named by their store names
//! ("INBOX", "Archive/2026"); mailboxes others share with the user appear in the "Other
//! Users" namespace (RFC 2342) as "Shared/<owner>/<name>". The store decides who sees what:
//! a mailbox without a grant is "not found" here exactly as one that does not exist.

use bureau_store::{
    Access, Collection, CollectionKind, PrincipalId, Reader, Right, StoreError, Writer,
};
use std::collections::BTreeSet;

/// The collection prop that marked an own mailbox unsubscribed, in releases before the
/// subscription list; read once, when a user's list is first made.
const UNSUBSCRIBED: &str = "unsubscribed";

/// The INBOX prop holding the user's subscriptions, one name a line. Subscriptions are a
/// list of names (RFC 9051 6.3.7, 6.3.8): CREATE does not add to it, DELETE does not take
/// from it, a name may be subscribed with no mailbox behind it. Mailboxes shared with the
/// user are always subscribed and not listed.
const SUBSCRIPTIONS: &str = "imap-subscriptions";

/// The shared namespace's prefix (without its delimiter).
pub(crate) const SHARED: &str = "Shared";

/// A mailbox as one user sees it.
#[derive(Clone, Debug)]
pub(crate) struct Mbox {
    /// The name this user knows it by.
    pub name: String,
    pub coll: Collection,
    pub access: Access,
}

impl Mbox {
    /// Whether \Seen is this user's own (a mailbox someone else owns), not the owner's flag.
    pub fn private_seen(&self) -> bool {
        self.access != Access::Owner
    }
}

/// The user's subscriptions. Until the list is first changed it is every own mailbox not
/// marked unsubscribed (a new user sees all of its own).
pub(crate) fn subscriptions(r: &Reader, p: PrincipalId) -> Result<BTreeSet<String>, StoreError> {
    let inbox = r.collection_by_name(p, "INBOX")?;
    if let Some(list) = inbox.props.get(SUBSCRIPTIONS) {
        return Ok(parse_list(list));
    }
    Ok(r.collections_of(p)?
        .into_iter()
        .filter(|c| c.kind == CollectionKind::Mailbox && !c.props.contains_key(UNSUBSCRIBED))
        .map(|c| c.name)
        .collect())
}

fn parse_list(s: &str) -> BTreeSet<String> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Changes the subscriptions inside a write. `before` is the list as read before the write
/// began, used only while no list is stored yet.
pub(crate) fn change_subscriptions(
    w: &mut Writer,
    p: PrincipalId,
    before: &BTreeSet<String>,
    change: impl FnOnce(&mut BTreeSet<String>),
) -> Result<(), StoreError> {
    let inbox = w.collection_by_name(p, "INBOX")?;
    let mut list = match inbox.props.get(SUBSCRIPTIONS) {
        Some(l) => parse_list(l),
        None => before.clone(),
    };
    change(&mut list);
    let text = list.into_iter().collect::<Vec<_>>().join("\n");
    w.set_collection_props(inbox.id, &[(SUBSCRIPTIONS.into(), Some(text))])?;
    Ok(())
}

/// Every mailbox the user may see: its own, then those shared with it.
pub(crate) fn visible(r: &Reader, p: PrincipalId) -> Result<Vec<Mbox>, StoreError> {
    let mut out: Vec<Mbox> = r
        .collections_of(p)?
        .into_iter()
        .filter(|c| c.kind == CollectionKind::Mailbox)
        .map(|c| Mbox {
            name: c.name.clone(),
            coll: c,
            access: Access::Owner,
        })
        .collect();
    let mut shared = Vec::new();
    for (c, access) in r.shared_with_me()? {
        if c.kind != CollectionKind::Mailbox {
            continue;
        }
        let owner = r.principal(c.owner)?.name;
        shared.push(Mbox {
            name: format!("{SHARED}/{owner}/{}", c.name),
            coll: c,
            access,
        });
    }
    shared.sort_by(|a, b| a.name.cmp(&b.name));
    out.extend(shared);
    Ok(out)
}

/// The mailbox a user names. INBOX is case-insensitive (RFC 9051 5.1).
pub(crate) fn find(r: &Reader, p: PrincipalId, name: &str) -> Result<Mbox, StoreError> {
    if let Some(rest) = name.strip_prefix(SHARED).and_then(|n| n.strip_prefix('/')) {
        let (owner, mailbox) = rest.split_once('/').ok_or(StoreError::NotFound)?;
        let owner = r.principal_by_name(owner)?;
        let coll = r.collection_by_name(owner.id, mailbox)?;
        let access = r.access(coll.id)?.ok_or(StoreError::NotFound)?;
        return mbox(name.to_string(), coll, access);
    }
    let name = if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    };
    let coll = r.collection_by_name(p, name)?;
    mbox(name.to_string(), coll, Access::Owner)
}

fn mbox(name: String, coll: Collection, access: Access) -> Result<Mbox, StoreError> {
    if coll.kind != CollectionKind::Mailbox {
        return Err(StoreError::NotFound);
    }
    Ok(Mbox { name, coll, access })
}

/// Whether a name lies in the shared namespace (where users cannot create mailboxes).
pub(crate) fn is_shared(name: &str) -> bool {
    name.eq_ignore_ascii_case(SHARED)
        || name
            .get(..SHARED.len() + 1)
            .is_some_and(|p| p.eq_ignore_ascii_case("Shared/"))
}

/// Every right of RFC 4314, with the obsolete c and d.
pub(crate) const ALL_RIGHTS: &str = "lrswipkxtecda";

/// RFC 4314 rights for a level of access. The store's levels are cumulative, so the
/// rights come in these sets: lookup-read-seen, then write-insert-delete-expunge (with the
/// obsolete c and d that RFC 4314 2.1.1 asks servers to keep reporting), then the owner's
/// create, delete-mailbox and administer.
pub(crate) fn rights(access: Access) -> &'static str {
    match access {
        Access::Read => "lrs",
        Access::ReadWrite | Access::Delegate => "lrswipted",
        Access::Owner => ALL_RIGHTS,
    }
}

/// Why rights cannot be granted (a NO [NOPERM]).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadRights {
    #[error("unknown right {0:?}")]
    Unknown(char),
    #[error("only the owner may create, delete or administer")]
    OwnersOnly,
}

/// The grant that holds the rights a client asks for: `None` for none at all. Rights
/// beyond read widen to read-write, since the store keeps levels, not single rights (the
/// answer to LISTRIGHTS says so).
pub(crate) fn right_for(rights: &str) -> Result<Option<Right>, BadRights> {
    if let Some(bad) = rights.chars().find(|c| !ALL_RIGHTS.contains(*c)) {
        return Err(BadRights::Unknown(bad));
    }
    if rights.chars().any(|c| "kxa".contains(c)) {
        return Err(BadRights::OwnersOnly);
    }
    Ok(if rights.chars().any(|c| "wiptecd".contains(c)) {
        Some(Right::ReadWrite)
    } else if rights.is_empty() {
        None
    } else {
        Some(Right::Read)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_map_to_store_levels() {
        assert_eq!(right_for("lrs"), Ok(Some(Right::Read)));
        assert_eq!(right_for("l"), Ok(Some(Right::Read)));
        assert_eq!(right_for("lrswited"), Ok(Some(Right::ReadWrite)));
        assert_eq!(right_for(""), Ok(None));
        assert_eq!(right_for("lrsa"), Err(BadRights::OwnersOnly));
        assert_eq!(right_for("lrz"), Err(BadRights::Unknown('z')));
        assert!(is_shared("shared/bob/INBOX") && is_shared("Shared") && !is_shared("Sharedx"));
    }
}
