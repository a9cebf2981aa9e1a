//! SELECT and EXAMINE (RFC 9051 6.3.2), with CONDSTORE/QRESYNC parameters (RFC 7162).

use crate::session::*;
use crate::wire;
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
            self.line("* OK [CLOSED] previous mailbox closed");
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
            uids: uids.iter().copied().collect(),
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
                recent = self.ctx.recent.unclaimed(coll, uids.iter().copied());
            } else {
                sel.recent = self.ctx.recent.claim(self.db(), coll, &uids);
                recent = sel.recent.len();
            }
        }
        // FLAGS names every keyword defined in the mailbox (RFC 9051 7.3.5).
        sel.keyword_lines(coll.keywords.iter());
        for l in sel.flag_lines() {
            self.line(&l);
        }
        self.line(&format!("* {} EXISTS", uids.len()));
        if self.rev2 {
            // RFC 9051 6.3.2: the mailbox's name as LIST gives it; no \Recent, no UNSEEN.
            let mut l = b"* LIST () \"/\" ".to_vec();
            wire::string(&mut l, m.name.as_bytes());
            l.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&l);
        } else {
            self.line(&format!("* {recent} RECENT"));
            if let Some(u) = unseen {
                self.line(&format!("* OK [UNSEEN {}] first unseen", u + 1));
            }
        }
        self.line(&format!("* OK [UIDVALIDITY {}] UIDs valid", coll.validity));
        self.line(&format!(
            "* OK [UIDNEXT {}] predicted next UID",
            coll.next_item
        ));
        self.line(&format!(
            "* OK [HIGHESTMODSEQ {}] highest modseq",
            coll.modseq
        ));
        // QRESYNC (RFC 7162 3.2.5): what changed since the client's last state.
        if let Some((validity, since, known)) = qresync
            && validity == coll.validity
        {
            let r = self.reader();
            let present = uids.iter().copied();
            let line = vanished_earlier(r.as_ref().ok(), coll, since, present, known.as_ref());
            if let Some(l) = line {
                self.line(&l);
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
                .filter_map(|i| Some((uids.binary_search(&(i.id as u32)).ok()?, i)))
                .map(|(at, i)| (at, self.viewed(i, private)))
                .collect();
            changed.sort_by_key(|(at, _)| *at);
            for (at, item) in changed {
                self.line(&format!(
                    "* {} FETCH (UID {} FLAGS ({}) MODSEQ ({}))",
                    at + 1,
                    item.id,
                    sel.flag_list(item.id, &item.flags),
                    item.modseq
                ));
            }
        }
        let user = match std::mem::replace(&mut self.state, State::Logout) {
            State::Authenticated(u) => u,
            other => {
                self.state = other;
                return self.no(tag, "[SERVERBUG] state");
            }
        };
        self.state = State::Selected(user, sel);
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.ok(
            tag,
            &format!(
                "[{mode}] {} completed",
                if read_only { "EXAMINE" } else { "SELECT" }
            ),
        );
    }

    pub(crate) fn deselect(&mut self) {
        if matches!(self.state, State::Selected(..))
            && let State::Selected(u, _) = std::mem::replace(&mut self.state, State::Logout)
        {
            self.state = State::Authenticated(u);
        }
    }
}

/// QRESYNC's `* VANISHED (EARLIER)` line: the UIDs of `coll` expunged after `since`, within
/// `within` when given; once the change log no longer reaches back that far (or cannot be
/// read), every UID below UIDNEXT that is not `present`. `None` when there are none.
pub(crate) fn vanished_earlier(
    r: Option<&bureau_store::Reader>,
    coll: &bureau_store::Collection,
    since: u64,
    present: impl Iterator<Item = u32>,
    within: Option<&SequenceSet>,
) -> Option<String> {
    let largest = coll.next_item.saturating_sub(1) as u32;
    let gone: Vec<u32> = match r.map(|r| r.changes_since(coll.id, since)) {
        Some(Ok(ch)) => ch.deleted.iter().map(|u| *u as u32).collect(),
        _ => {
            let present: HashSet<u32> = present.collect();
            (1..=largest).filter(|u| !present.contains(u)).collect()
        }
    };
    let gone: Vec<u32> = gone
        .into_iter()
        .filter(|u| within.is_none_or(|w| crate::search::in_set(w, *u, largest)))
        .collect();
    (!gone.is_empty()).then(|| format!("* VANISHED (EARLIER) {}", uid_set(&gone)))
}
