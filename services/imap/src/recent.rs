//! \\Recent (RFC 3501 2.3.2): a message is recent in exactly one session, the first
//! read-write one to be told of it. IMAP4rev2 dropped the flag; IMAP4rev1 clients (and
//! imaptest) still count on it; EXAMINE and STATUS report how many no session took yet.
//!
//! Per mailbox the daemon keeps the highest UID some session has claimed, in memory and in
//! the collection's `imap-recent` prop (written after the claim, off the session's path), so
//! that after a restart what was claimed stays claimed. A mailbox never selected has every
//! message recent, as in Dovecot.

use crate::uidmap::UidMap;
use bureau_store::{Actor, Collection, CollectionId, Store};
use std::collections::HashMap;
use std::sync::Mutex;

/// The collection prop that keeps the boundary across restarts.
const PROP: &str = "imap-recent";

#[derive(Default)]
pub(crate) struct Recent {
    claimed: Mutex<HashMap<CollectionId, u32>>,
}

impl Recent {
    fn boundary(&self, coll: &Collection) -> u32 {
        let m = self
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let kept = coll
            .props
            .get(PROP)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        m.get(&coll.id).copied().unwrap_or(0).max(kept)
    }

    /// Claims the UIDs above the boundary among `uids`: this session's recent ones. The new
    /// boundary is kept in memory at once and in the store soon after.
    pub(crate) fn claim(&self, store: &Store, coll: &Collection, uids: &UidMap) -> Vec<u32> {
        let kept = coll
            .props
            .get(PROP)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0u32);
        let mine: Vec<u32> = {
            let mut m = self
                .claimed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let b = m.entry(coll.id).or_insert(0);
            *b = (*b).max(kept);
            let mine: Vec<u32> = uids.above(*b).collect();
            if let Some(top) = mine.last() {
                *b = *top;
            }
            mine
        };
        if let Some(top) = mine.last().copied() {
            let (store, id) = (store.clone(), coll.id);
            tokio::spawn(async move {
                let r = store
                    .write(Actor::System, vec![], move |w| {
                        w.set_collection_props(id, &[(PROP.into(), Some(top.to_string()))])
                    })
                    .await;
                if let Err(e) = r {
                    log::debug!("imap: keeping the \\Recent boundary of {id}: {e}");
                }
            });
        }
        mine
    }

    /// How many of these UIDs no session has claimed yet (EXAMINE, STATUS RECENT).
    pub(crate) fn unclaimed(&self, coll: &Collection, uids: &UidMap) -> usize {
        uids.above(self.boundary(coll)).count()
    }
}
