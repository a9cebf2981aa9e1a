//! EXPUNGE and UID EXPUNGE (RFC 9051 6.4.3, UIDPLUS).

use crate::session::*;
use bureau_store::{Access, Actor, StoreError};

impl Session {
    /// Removes the messages marked \\Deleted (all, or those UIDs), telling the client.
    pub(crate) async fn expunge(&mut self, only: Option<Vec<u32>>) -> Result<(), StoreError> {
        self.remove_deleted(only).await?;
        // The change log tells this session as it tells every other.
        self.updates(true);
        Ok(())
    }

    /// Removes the selected mailbox's \Deleted messages (only those UIDs, if given).
    pub(crate) async fn remove_deleted(
        &mut self,
        only: Option<Vec<u32>>,
    ) -> Result<(), StoreError> {
        let (coll, read_only, access) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only, s.access),
            _ => return Ok(()),
        };
        if read_only {
            return Ok(());
        }
        if access < Access::ReadWrite {
            return Err(StoreError::Forbidden);
        }
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        // Current flags from the store, not from this session's view.
        let reader = store.reader(actor)?;
        // UID EXPUNGE reads the messages it names, EXPUNGE the \Deleted ones, not the
        // mailbox (issue 24).
        let ids: Vec<u64> = match &only {
            Some(uids) => uids.iter().map(|u| u64::from(*u)).collect(),
            None => reader.deleted(coll)?,
        };
        let mut candidates = Vec::with_capacity(ids.len());
        for id in ids {
            match reader.item(coll, id) {
                Ok(i) => candidates.push(i),
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let doomed: Vec<u64> = candidates
            .into_iter()
            .filter(|i| has(&i.flags, "\\Deleted"))
            .map(|i| i.id)
            .collect();
        // Another session may have expunged some meanwhile: what is gone is done, not an
        // error (issue 18: concurrent EXPUNGE answered NO [NONEXISTENT]).
        store
            .write(actor, vec![], move |w| {
                doomed.iter().try_for_each(|id| match w.item(coll, *id) {
                    Err(StoreError::NotFound) => Ok(()),
                    _ => w.delete_item(coll, *id),
                })
            })
            .await?;
        Ok(())
    }
}
