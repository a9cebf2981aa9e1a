//! STORE (RFC 9051 6.4.6), with UNCHANGEDSINCE (RFC 7162).

use crate::response::{Code, Item as FetchItem, Response};
use crate::session::*;
use bureau_store::{Access, Actor, StoreError};
use imap_codec::imap_types::flag::{StoreResponse, StoreType};
use imap_codec::imap_types::sequence::SequenceSet;

impl Session {
    /// STORE, with UNCHANGEDSINCE (RFC 7162 3.1.3). On a mailbox shared with the user,
    /// \\Seen is the user's own and the other flags need the write right.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        kind: StoreType,
        resp: StoreResponse,
        flags: Vec<String>,
        uid: bool,
        unchanged_since: Option<u64>,
    ) {
        let (coll, read_only, access, private, uids) = match &self.state {
            State::Selected(_, s) => (
                s.coll,
                s.read_only,
                s.access,
                s.private_seen,
                s.uids.clone(),
            ),
            _ => return,
        };
        if read_only {
            return self.no(tag, Code::ReadOnly, "mailbox is read-only");
        }
        let seen = has(&flags, SEEN);
        let others: Vec<String> = flags
            .iter()
            .filter(|f| !(private && f.eq_ignore_ascii_case(SEEN)))
            .cloned()
            .collect();
        let may_write = access >= Access::ReadWrite;
        if !may_write && !others.is_empty() {
            return self.no(
                tag,
                Code::NoPerm,
                "you may only change \\Seen in this mailbox",
            );
        }
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let ids: Vec<u64> = self
            .resolve_uids(set, uid)
            .into_iter()
            .map(u64::from)
            .collect();
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        let result = store
            .write(actor, vec![], move |w| {
                let (mut done, mut modified) = (Vec::new(), Vec::new());
                for id in &ids {
                    let mut item = match w.item(coll, *id) {
                        Ok(i) => i,
                        Err(StoreError::NotFound) => continue,
                        Err(e) => return Err(e),
                    };
                    if unchanged_since.is_some_and(|m| item.modseq > m) {
                        modified.push(*id);
                        continue;
                    }
                    if private {
                        let mark = match kind {
                            StoreType::Replace => Some(seen),
                            StoreType::Add => seen.then_some(true),
                            StoreType::Remove => seen.then_some(false),
                        };
                        if let Some(on) = mark {
                            item = w.set_private_seen(coll, *id, on)?;
                        }
                    }
                    if !others.is_empty() || (kind == StoreType::Replace && may_write) {
                        item = w.update_item(coll, *id, None, |it| {
                            // The owner's \\Seen stays when a sharee replaces the flags.
                            let keep = private && has(&it.flags, SEEN);
                            // Flags are case-insensitive (RFC 9051 2.3.2): one of each.
                            if kind == StoreType::Replace {
                                it.flags.clear();
                            }
                            match kind {
                                StoreType::Replace | StoreType::Add => {
                                    for f in &others {
                                        if !has(&it.flags, f) {
                                            it.flags.push(f.clone());
                                        }
                                    }
                                }
                                StoreType::Remove => it.flags.retain(|f| !has(&others, f)),
                            }
                            if keep && !has(&it.flags, SEEN) {
                                it.flags.push(SEEN.into());
                            }
                        })?;
                    }
                    done.push(item);
                }
                Ok((done, modified))
            })
            .await;
        let (items, modified) = match result {
            Ok(r) => r,
            Err(e) => return self.store_no(tag, e),
        };
        let condstore = self.condstore;
        for item in items {
            let item = self.viewed(item, private);
            let Some(seq) = u32::try_from(item.id).ok().and_then(|u| uids.seq(u)) else {
                continue;
            };
            if let State::Selected(_, s) = &mut self.state {
                s.told(item.id, item.modseq);
            }
            self.announce_keywords(&item.flags);
            // With CONDSTORE the new modseq is told even for .SILENT (RFC 7162 3.1.3).
            if resp == StoreResponse::Answer || condstore {
                let mut items = Vec::new();
                if uid || self.qresync {
                    items.push(FetchItem::Uid(item.id));
                }
                if resp == StoreResponse::Answer {
                    items.push(FetchItem::Flags(self.flags_shown(&item)));
                }
                if condstore {
                    items.push(FetchItem::ModSeq(item.modseq));
                }
                self.send(Response::Fetch { seq, items: &items });
            }
        }
        let verb = if uid { "UID STORE" } else { "STORE" };
        if modified.is_empty() {
            self.ok(tag, &format!("{verb} completed"));
        } else {
            let nums: Vec<u32> = modified
                .iter()
                .filter_map(|id| {
                    let seq = uids.seq(u32::try_from(*id).ok()?)? as u32;
                    Some(if uid { *id as u32 } else { seq })
                })
                .collect();
            let text = format!("{verb}: some messages changed meanwhile");
            self.ok_code(tag, Code::Modified(&nums), &text);
        }
    }
}
