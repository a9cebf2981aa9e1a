//! APPEND and MULTIAPPEND (RFC 9051 6.3.12, RFC 3502).

use crate::ext::AppendMsg;
use crate::mailbox::{self};
use crate::response::Code;
use crate::session::*;
use bureau_store::{Actor, NewItem, StoreError};

impl Session {
    /// APPEND of one message or several (MULTIAPPEND, RFC 3502): all of them or none.
    pub(crate) async fn append(&mut self, tag: &str, name: &str, msgs: Vec<AppendMsg>) {
        let m = match self.find_mailbox(name) {
            Ok(m) => m,
            Err(StoreError::NotFound) if !mailbox::is_shared(name) => {
                return self.no(tag, Code::TryCreate, "no such mailbox");
            }
            Err(e) => return self.store_no(tag, e),
        };
        let store = self.db().clone();
        let mut staged = Vec::with_capacity(msgs.len());
        for msg in msgs {
            match store.stage(msg.data, bureau_store::Content::Message).await {
                Ok(s) => staged.push((s, msg.flags, msg.date)),
                Err(e) => return self.store_no(tag, e),
            }
        }
        let items: Vec<_> = staged
            .iter()
            .map(|(b, f, d)| (b.blob_ref(), f.clone(), *d))
            .collect();
        let blobs = staged.into_iter().map(|s| s.0).collect();
        let (coll, private) = (m.coll.id, m.private_seen());
        let r = store
            .write(Actor::Principal(self.principal()), blobs, move |w| {
                let mut ids = Vec::new();
                for (blob, mut flags, date) in items.iter().cloned() {
                    // On a shared mailbox \Seen is the appender's own.
                    let seen = private && has(&flags, SEEN);
                    if private {
                        flags.retain(|f| !f.eq_ignore_ascii_case(SEEN));
                    }
                    let item = w.put_item(
                        coll,
                        NewItem {
                            blob: Some(blob),
                            flags,
                            date,
                            ..Default::default()
                        },
                    )?;
                    if seen {
                        w.set_private_seen(coll, item.id, true)?;
                    }
                    ids.push(item.id as u32);
                }
                Ok::<_, StoreError>(ids)
            })
            .await;
        match r {
            Ok(ids) => {
                self.updates(true);
                let code = Code::AppendUid {
                    validity: m.coll.validity,
                    uids: &ids,
                };
                self.ok_code(tag, code, "APPEND completed");
            }
            Err(e) => self.store_no(tag, e),
        }
    }
}
