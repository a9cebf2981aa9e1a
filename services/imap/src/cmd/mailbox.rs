//! CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE. Subscriptions are a list of names of
//! their own (mailbox.rs): CREATE does not subscribe, DELETE does not unsubscribe (RFC 9051
//! 6.3.3, 6.3.4, 6.3.7); RENAME carries the subscriptions of what it renames along.

use crate::mailbox::{self};
use crate::response::Code;
use crate::session::*;
use bureau_store::{Actor, CollectionKind, StoreError};
use std::collections::BTreeSet;

impl Session {
    /// The subscriptions as they stand, for a write that keeps them as they are; on a
    /// store failure the command is answered NO here.
    fn subscriptions_now(&mut self, tag: &str) -> Option<BTreeSet<String>> {
        match self
            .reader()
            .and_then(|r| mailbox::subscriptions(&r, self.principal()))
        {
            Ok(s) => Some(s),
            Err(e) => {
                self.store_no(tag, e);
                None
            }
        }
    }

    pub(crate) async fn create(&mut self, tag: &str, name: String) {
        if mailbox::is_shared(&name) {
            return self.no(
                tag,
                Code::NoPerm,
                "mailboxes cannot be created in the shared namespace",
            );
        }
        let Some(before) = self.subscriptions_now(tag) else {
            return;
        };
        let p = self.principal();
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                // The list is kept as it was before: the new mailbox is not subscribed.
                mailbox::change_subscriptions(w, p, &before, |_| {})?;
                // Superior names are made too (RFC 3501 6.3.3), so that "a/b" has its "a".
                let mut up = String::new();
                for level in name
                    .split('/')
                    .collect::<Vec<_>>()
                    .split_last()
                    .map_or(&[][..], |(_, l)| l)
                {
                    if !up.is_empty() {
                        up.push('/');
                    }
                    up.push_str(level);
                    match w.collection_by_name(p, &up) {
                        Err(StoreError::NotFound) => {
                            w.create_collection(p, CollectionKind::Mailbox, &up)?;
                        }
                        Err(e) => return Err(e),
                        Ok(_) => {}
                    }
                }
                w.create_collection(p, CollectionKind::Mailbox, &name)
            })
            .await;
        match r {
            Ok(_) => self.ok(tag, "CREATE completed"),
            Err(e) => self.store_no(tag, e),
        }
    }

    pub(crate) async fn delete(&mut self, tag: &str, name: &str) {
        let c = match self.find_mailbox(name) {
            Ok(m) => m.coll,
            Err(e) => return self.store_no(tag, e),
        };
        let Some(before) = self.subscriptions_now(tag) else {
            return;
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
                // Its subscription stays (RFC 9051 6.3.4).
                if c.owner == p {
                    mailbox::change_subscriptions(w, p, &before, |_| {})?;
                }
                w.delete_collection(c.id)
            })
            .await;
        match r {
            Ok(()) => self.ok(tag, "DELETE completed"),
            Err(e) => self.store_no(tag, e),
        }
    }

    pub(crate) async fn subscribe(&mut self, tag: &str, name: &str, on: bool) {
        let done = if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        };
        // Mailboxes shared with the user are always subscribed (their owner's list is not
        // the user's to change).
        if mailbox::is_shared(name) {
            return match self.find_mailbox(name) {
                Ok(_) if on => self.ok(tag, done),
                Ok(_) => self.no(tag, Code::Cannot, "shared mailboxes stay subscribed"),
                Err(e) => self.store_no(tag, e),
            };
        }
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else {
            name.to_string()
        };
        let Some(before) = self.subscriptions_now(tag) else {
            return;
        };
        let p = self.principal();
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                mailbox::change_subscriptions(w, p, &before, |list| {
                    if on {
                        list.insert(name.clone());
                    } else {
                        list.remove(&name);
                    }
                })
            })
            .await;
        match r {
            Ok(()) => self.ok(tag, done),
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
            return self.no(tag, Code::NoPerm, "only the owner may rename a mailbox");
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
            return self.no(tag, Code::NonExistent, "no such mailbox");
        };
        let prefix = format!("{from}/");
        let mut moves: Vec<(u64, String)> = vec![(top.id, to.clone())];
        for c in &boxes {
            if let Some(rest) = c.name.strip_prefix(&prefix) {
                moves.push((c.id, format!("{to}/{rest}")));
            }
        }
        let Some(before) = self.subscriptions_now(tag) else {
            return;
        };
        let from = from.to_string();
        let p = self.principal();
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                moves
                    .iter()
                    .try_for_each(|(id, name)| w.rename_collection(*id, name).map(|_| ()))?;
                mailbox::change_subscriptions(w, p, &before, |list| {
                    let renamed: Vec<String> = list
                        .iter()
                        .filter(|n| **n == from || n.starts_with(&prefix))
                        .cloned()
                        .collect();
                    for n in renamed {
                        list.remove(&n);
                        list.insert(format!("{to}{}", &n[from.len()..]));
                    }
                })
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
                Code::NoPerm,
                "mailboxes cannot be created in the shared namespace",
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
