//! DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE (CREATE is in the dispatcher).

use crate::mailbox::{self};
use crate::session::*;
use bureau_store::{Actor, CollectionKind, StoreError};

impl Session {
    pub(crate) async fn delete(&mut self, tag: &str, name: &str) {
        let c = match self.find_mailbox(name) {
            Ok(m) => m.coll,
            Err(e) => return self.store_no(tag, e),
        };
        if let State::Selected(_, s) = &self.state
            && s.coll == c.id
        {
            self.deselect();
        }
        let p = self.principal();
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                w.delete_collection(c.id)
            })
            .await;
        match r {
            Ok(()) => self.ok(tag, "DELETE completed"),
            Err(e) => self.store_no(tag, e),
        }
    }

    pub(crate) async fn subscribe(&mut self, tag: &str, name: &str, on: bool) {
        let c = match self.find_mailbox(name) {
            // Mailboxes shared with the user are always subscribed (their owner's list is
            // not the user's to change).
            Ok(m) if m.private_seen() => {
                return if on {
                    self.ok(tag, "SUBSCRIBE completed")
                } else {
                    self.no(tag, "[CANNOT] shared mailboxes stay subscribed")
                };
            }
            Ok(m) => m.coll,
            Err(e) => return self.store_no(tag, e),
        };
        let p = self.principal();
        // Mailboxes are subscribed unless marked otherwise (new users see all of theirs).
        let value = (!on).then(|| "1".to_string());
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                w.set_collection_props(c.id, &[(mailbox::UNSUBSCRIBED.into(), value.clone())])
            })
            .await;
        match r {
            Ok(_) => self.ok(
                tag,
                if on {
                    "SUBSCRIBE completed"
                } else {
                    "UNSUBSCRIBE completed"
                },
            ),
            Err(e) => self.store_no(tag, e),
        }
    }

    /// Renames a mailbox and the ones below it. INBOX cannot be renamed (yet: RFC 9051
    /// wants its messages moved into the new mailbox).
    pub(crate) async fn rename(&mut self, tag: &str, from: &str, to: &str) {
        let to = to.trim_end_matches('/').to_string();
        if from.eq_ignore_ascii_case("INBOX") {
            return self.rename_inbox(tag, &to).await;
        }
        if mailbox::is_shared(from) || mailbox::is_shared(&to) {
            return self.no(tag, "[NOPERM] only the owner may rename a mailbox");
        }
        let boxes = match self
            .reader()
            .and_then(|r| r.collections_of(self.principal()))
        {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
        let boxes: Vec<_> = boxes
            .into_iter()
            .filter(|c| c.kind == CollectionKind::Mailbox)
            .collect();
        let Some(top) = boxes.iter().find(|c| c.name == from) else {
            return self.no(tag, "[NONEXISTENT] no such mailbox");
        };
        let prefix = format!("{from}/");
        let mut moves: Vec<(u64, String)> = vec![(top.id, to.clone())];
        for c in &boxes {
            if let Some(rest) = c.name.strip_prefix(&prefix) {
                moves.push((c.id, format!("{to}/{rest}")));
            }
        }
        let p = self.principal();
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                moves
                    .iter()
                    .try_for_each(|(id, name)| w.rename_collection(*id, name).map(|_| ()))
            })
            .await;
        match r {
            Ok(()) => self.ok(tag, "RENAME completed"),
            Err(e) => self.store_no(tag, e),
        }
    }

    /// RENAME INBOX (RFC 3501 6.3.5): its messages move to a new mailbox of that name and
    /// INBOX stays, empty; mailboxes below INBOX are not touched.
    pub(crate) async fn rename_inbox(&mut self, tag: &str, to: &str) {
        if mailbox::is_shared(to) {
            return self.no(
                tag,
                "[NOPERM] mailboxes cannot be created in the shared namespace",
            );
        }
        let (p, to) = (self.principal(), to.to_string());
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                let inbox = w.collection_by_name(p, "INBOX")?;
                let new = w.create_collection(p, CollectionKind::Mailbox, &to)?;
                for id in w.item_ids(inbox.id)? {
                    w.copy_item(inbox.id, id, new.id)?;
                    w.delete_item(inbox.id, id)?;
                }
                Ok::<_, StoreError>(())
            })
            .await;
        match r {
            Ok(()) => {
                self.updates(true);
                self.ok(tag, "RENAME completed")
            }
            Err(e) => self.store_no(tag, e),
        }
    }
}
