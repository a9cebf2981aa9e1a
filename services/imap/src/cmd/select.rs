//! SELECT and EXAMINE (RFC 9051 6.3.2), with CONDSTORE/QRESYNC parameters (RFC 7162).

use crate::response::{Code, Item as FetchItem, Kind, Response};
use crate::session::*;
use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::sequence::SequenceSet;
use std::collections::{HashMap, HashSet};

impl Session {
    pub(crate) fn select(
        &mut self,
        tag: &str,
        name: &str,
        read_only: bool,
        params: &[SelectParameter],
    ) {
        let qresync = params.iter().find_map(|p| match p {
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => Some((
                uid_validity.get(),
                mod_sequence_value.get(),
                known_uids.clone(),
            )),
            SelectParameter::CondStore => None,
        });
        if qresync.is_some() && !self.qresync {
            return self.bad_cmd(tag, "QRESYNC is not enabled");
        }
        if !params.is_empty() {
            self.condstore = true;
        }
        if matches!(self.state, State::Selected(..)) && self.qresync {
            self.untagged(Kind::Ok, Some(Code::Closed), "previous mailbox closed");
        }
        self.deselect();
        let (m, uids, unseen) = match self.mailbox_index(name) {
            Ok(x) => x,
            Err(e) => return self.store_no(tag, e),
        };
        let coll = &m.coll;
        let mut sel = Selected {
            coll: coll.id,
            read_only,
            access: m.access,
            private_seen: m.private_seen(),
            uids: uids.clone(),
            modseq: coll.modseq,
            told: HashMap::new(),
            keywords: Vec::new(),
            recent: Vec::new(),
        };
        // \Recent: a read-write IMAP4rev1 session takes the messages no session saw yet;
        // EXAMINE only counts them.
        let mut recent = 0;
        if !self.rev2 {
            if read_only || m.access < bureau_store::Access::ReadWrite {
                recent = self.ctx.recent.unclaimed(coll, &uids);
            } else {
                sel.recent = self.ctx.recent.claim(self.db(), coll, &uids);
                recent = sel.recent.len();
            }
        }
        // FLAGS names every keyword defined in the mailbox (RFC 9051 7.3.5).
        sel.learn_keywords(coll.keywords.iter());
        sel.flag_lines(&mut self.out);
        self.send(Response::Exists(uids.len()));
        if self.rev2 {
            // RFC 9051 6.3.2: the mailbox's name as LIST gives it; no \Recent, no UNSEEN.
            self.send(Response::List {
                lsub: false,
                attrs: &[],
                name: &m.name,
                childinfo: &[],
            });
        } else {
            self.send(Response::Recent(recent));
            if let Some(u) = unseen {
                self.untagged(Kind::Ok, Some(Code::Unseen(u + 1)), "first unseen");
            }
        }
        let code = Code::UidValidity(coll.validity);
        self.untagged(Kind::Ok, Some(code), "UIDs valid");
        let code = Code::UidNext(coll.next_item);
        self.untagged(Kind::Ok, Some(code), "predicted next UID");
        let code = Code::HighestModSeq(coll.modseq);
        self.untagged(Kind::Ok, Some(code), "highest modseq");
        // QRESYNC (RFC 7162 3.2.5): what changed since the client's last state.
        if let Some((validity, since, known)) = qresync
            && validity == coll.validity
        {
            let r = self.reader();
            let present = uids.iter();
            let gone = vanished_earlier(r.as_ref().ok(), coll, since, present, known.as_ref());
            if !gone.is_empty() {
                let uids = &gone;
                self.send(Response::Vanished {
                    earlier: true,
                    uids,
                });
            }
            // The messages changed since: from the change log, or all once it no longer
            // reaches back that far.
            let changed = match r.as_ref().map(|r| r.changes_since(coll.id, since)) {
                Ok(Ok(ch)) => ch.changed,
                _ => match self.mailbox_items(name) {
                    Ok((_, items)) => items,
                    Err(e) => return self.store_no(tag, e),
                },
            };
            let private = sel.private_seen;
            let mut changed: Vec<_> = changed
                .into_iter()
                .filter(|i| i.modseq > since)
                .filter_map(|i| Some((uids.seq(u32::try_from(i.id).ok()?)? - 1, i)))
                .map(|(at, i)| (at, self.viewed(i, private)))
                .collect();
            changed.sort_by_key(|(at, _)| *at);
            for (at, item) in changed {
                let items = [
                    FetchItem::Uid(item.id),
                    FetchItem::Flags(sel.flag_list(item.id, &item.flags)),
                    FetchItem::ModSeq(item.modseq),
                ];
                self.send(Response::Fetch {
                    seq: at + 1,
                    items: &items,
                });
            }
        }
        let user = match std::mem::replace(&mut self.state, State::Logout) {
            State::Authenticated(u) => u,
            other => {
                self.state = other;
                return self.no(tag, Code::ServerBug, "state");
            }
        };
        self.state = State::Selected(user, sel);
        if read_only {
            self.ok_code(tag, Code::ReadOnly, "EXAMINE completed");
        } else {
            self.ok_code(tag, Code::ReadWrite, "SELECT completed");
        }
    }

    pub(crate) fn deselect(&mut self) {
        if matches!(self.state, State::Selected(..))
            && let State::Selected(u, _) = std::mem::replace(&mut self.state, State::Logout)
        {
            self.state = State::Authenticated(u);
        }
    }
}

/// What QRESYNC's `* VANISHED (EARLIER)` tells: the UIDs of `coll` expunged after `since`,
/// within `within` when given; once the change log no longer reaches back that far (or
/// cannot be read), every UID below UIDNEXT that is not `present`.
pub(crate) fn vanished_earlier(
    r: Option<&bureau_store::Reader>,
    coll: &bureau_store::Collection,
    since: u64,
    present: impl Iterator<Item = u32>,
    within: Option<&SequenceSet>,
) -> Vec<u32> {
    let largest = coll.next_item.saturating_sub(1) as u32;
    let gone: Vec<u32> = match r.map(|r| r.changes_since(coll.id, since)) {
        Some(Ok(ch)) => ch.deleted.iter().map(|u| *u as u32).collect(),
        _ => {
            let present: HashSet<u32> = present.collect();
            (1..=largest).filter(|u| !present.contains(u)).collect()
        }
    };
    gone.into_iter()
        .filter(|u| within.is_none_or(|w| crate::search::in_set(w, *u, largest)))
        .collect()
}
