//! \\Recent (RFC 3501 2.3.2): a message is recent in exactly one session, the first
//! read-write one to be told of it. IMAP4rev2 dropped the flag; IMAP4rev1 clients (and
//! imaptest) still count on it.
//!
//! Per mailbox the daemon keeps the highest UID some session has claimed; a session that
//! selects the mailbox read-write, or is told of new messages, claims those above it. The
//! boundary lives in memory: after a restart the messages already there are not recent
//! (the first session to select a mailbox starts the count), which errs on the side of
//! calling fewer messages new.

use bureau_store::CollectionId;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct Recent {
    claimed: Mutex<HashMap<CollectionId, u32>>,
}

impl Recent {
    /// At a read-write SELECT: the UIDs (ascending) this session takes as recent. The first
    /// session to select a mailbox since the start takes none, and starts the count.
    pub(crate) fn select(&self, coll: CollectionId, uids: &[u32]) -> Vec<u32> {
        let top = uids.last().copied().unwrap_or(0);
        let mut m = self
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match m.get_mut(&coll) {
            Some(b) => {
                let mine: Vec<u32> = uids.iter().copied().filter(|u| *u > *b).collect();
                *b = (*b).max(top);
                mine
            }
            None => {
                m.insert(coll, top);
                Vec::new()
            }
        }
    }

    /// New messages a read-write session was told of: those it is the first to see.
    pub(crate) fn arrived(&self, coll: CollectionId, uids: &[u32]) -> Vec<u32> {
        let mut m = self
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let b = m.entry(coll).or_insert(0);
        let mine: Vec<u32> = uids.iter().copied().filter(|u| *u > *b).collect();
        if let Some(top) = mine.iter().max() {
            *b = *top;
        }
        mine
    }

    /// How many of these UIDs no session has claimed yet (STATUS RECENT).
    pub(crate) fn unclaimed(&self, coll: CollectionId, uids: impl Iterator<Item = u32>) -> usize {
        let m = self
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match m.get(&coll) {
            Some(b) => uids.filter(|u| u > b).count(),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_message_is_recent_once() {
        let r = super::Recent::default();
        assert_eq!(r.select(1, &[1, 2]), Vec::<u32>::new());
        assert_eq!(r.arrived(1, &[3, 4]), vec![3, 4]);
        assert_eq!(r.arrived(1, &[3, 4]), Vec::<u32>::new());
        assert_eq!(r.unclaimed(1, [4, 5, 6].into_iter()), 2);
        assert_eq!(r.select(1, &[1, 2, 3, 4, 5, 6]), vec![5, 6]);
        assert_eq!(r.select(1, &[1, 2, 3, 4, 5, 6]), Vec::<u32>::new());
    }
}
