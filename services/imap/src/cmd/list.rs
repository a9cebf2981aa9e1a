//! LIST (RFC 9051 6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819), LSUB, STATUS.

use crate::ext::ListExt;
use crate::mailbox::{self, Mbox};
use crate::pattern::Pattern;
use crate::response::{Code, Response};
use crate::session::*;
use bureau_store::{Item, StoreError};
use imap_codec::imap_types::status::StatusDataItemName;

impl Session {
    /// LIST, plain or extended (RFC 5258, 5819, 6154): the mailboxes matching any pattern,
    /// with the shared namespace's levels as \\Noselect parents, and their STATUS when asked.
    pub(crate) fn list(&mut self, tag: &str, l: &ListExt) {
        let opt = |v: &[String], o: &str| v.iter().any(|x| x == o);
        let (sel_sub, sel_special, recursive) = match selection(l) {
            Ok(s) => s,
            Err(why) => return self.bad_cmd(tag, &why.to_string()),
        };
        // An empty pattern asks for the hierarchy delimiter (RFC 9051 6.3.9).
        if let [p] = l.patterns.as_slice()
            && p.is_empty()
        {
            self.send(Response::List {
                lsub: false,
                attrs: &["\\Noselect"],
                name: "",
                childinfo: &[],
            });
            return self.ok(tag, "LIST completed");
        }
        let (boxes, subs) = match self.reader().and_then(|r| {
            let p = self.principal();
            Ok((mailbox::visible(&r, p)?, mailbox::subscriptions(&r, p)?))
        }) {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
        let (names, ghosts) = listed_names(&boxes, &subs, sel_sub, recursive);
        let subscribed =
            |n: &str, m: Option<&Mbox>| m.is_some_and(Mbox::private_seen) || subs.contains(n);
        let special = |m: &Mbox| m.coll.special_use().map(String::from);
        let mut patterns = Vec::new();
        for p in &l.patterns {
            let full = [l.reference.as_slice(), p].concat();
            if full.len() > bureau_core::limits::get().imap_pattern_bytes {
                return self.no(tag, Code::Limit, "pattern too long");
            }
            patterns.push(Pattern::new(&self.pattern_in(&full)));
        }
        let mut out = Vec::new();
        for (name, mb) in &names {
            if !patterns.iter().any(|p| p.matches(name.as_bytes())) {
                continue;
            }
            let prefix = format!("{name}/");
            let below: Vec<(&String, Option<&Mbox>)> = names
                .iter()
                .filter(|(n, _)| n.starts_with(&prefix))
                .map(|(n, m)| (n, *m))
                .collect();
            let is_sub = subscribed(name, *mb);
            let mut childinfo = Vec::new();
            // CHILDINFO tells of matching children the patterns do not list themselves
            // (RFC 5258 3.5).
            let unlisted = |n: &str| !patterns.iter().any(|p| p.matches(n.as_bytes()));
            if sel_sub && !is_sub {
                if !(recursive && below.iter().any(|(n, m)| subscribed(n, *m) && unlisted(n))) {
                    continue;
                }
                childinfo.push("SUBSCRIBED");
            }
            if sel_special && mb.and_then(special).is_none() {
                if !(recursive
                    && below
                        .iter()
                        .any(|(n, m)| m.and_then(special).is_some() && unlisted(n)))
                {
                    continue;
                }
                childinfo.push("SPECIAL-USE");
            }
            let mut attrs = Vec::new();
            if ghosts.contains(name) {
                attrs.push("\\NonExistent".to_string());
            } else if mb.is_none() {
                attrs.push("\\Noselect".to_string());
            }
            let children = below.iter().any(|(n, _)| !ghosts.contains(*n));
            attrs.push(
                if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                }
                .into(),
            );
            if let Some(s) = mb.and_then(special) {
                attrs.push(s);
            }
            if is_sub && (sel_sub || opt(&l.ret, "SUBSCRIBED")) {
                attrs.push("\\Subscribed".into());
            }
            let attrs: Vec<&str> = attrs.iter().map(String::as_str).collect();
            let name = &self.to_wire(name);
            Response::List {
                lsub: false,
                attrs: &attrs,
                name,
                childinfo: &childinfo,
            }
            .encode(&mut out);
            // LIST-STATUS (RFC 5819): an error answers NO alone, with none of the lines.
            if let (Some(items), Some(m)) = (&l.status, mb) {
                match self.status_of(m, items) {
                    Ok(items) => Response::MailboxStatus {
                        name,
                        items: &items,
                    }
                    .encode(&mut out),
                    Err(e) => return self.store_no(tag, e),
                }
            }
        }
        self.out.extend_from_slice(&out);
        self.ok(tag, "LIST completed");
    }

    pub(crate) fn lsub(&mut self, tag: &str, full: &[u8]) {
        if full.len() > bureau_core::limits::get().imap_pattern_bytes {
            return self.no(tag, Code::Limit, "pattern too long");
        }
        let full = Pattern::new(&self.pattern_in(full));
        let boxes = match self
            .reader()
            .and_then(|r| mailbox::visible(&r, self.principal()))
        {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
        let subs = match self
            .reader()
            .and_then(|r| mailbox::subscriptions(&r, self.principal()))
        {
            Ok(s) => s,
            Err(e) => return self.store_no(tag, e),
        };
        let exists: std::collections::HashSet<&str> =
            boxes.iter().map(|m| m.name.as_str()).collect();
        // Subscribed names, then (RFC 3501 6.3.9) the levels above them that `%` stops at,
        // as \Noselect when not subscribed themselves.
        let mut lines: std::collections::BTreeMap<String, &str> = std::collections::BTreeMap::new();
        let shared = boxes.iter().filter(|m| m.private_seen()).map(|m| &m.name);
        for s in subs.iter().chain(shared) {
            if full.matches(s.as_bytes()) {
                let attrs = if exists.contains(s.as_str()) {
                    ""
                } else {
                    "\\Noselect"
                };
                lines.insert(s.clone(), attrs);
                continue;
            }
            let mut parts: Vec<&str> = s.split('/').collect();
            while parts.len() > 1 {
                parts.pop();
                let up = parts.join("/");
                if full.matches(up.as_bytes()) {
                    lines.entry(up).or_insert("\\Noselect");
                    break;
                }
            }
        }
        for (name, attrs) in lines {
            let attrs = if attrs.is_empty() { &[][..] } else { &[attrs] };
            self.send(Response::List {
                lsub: true,
                attrs,
                name: &self.to_wire(&name),
                childinfo: &[],
            });
        }
        self.ok(tag, "LSUB completed");
    }

    /// The values of the STATUS items asked (RFC 9051 6.3.11, RFC 7162 HIGHESTMODSEQ) that
    /// Bureau keeps.
    fn status_of<'a>(
        &self,
        m: &Mbox,
        items: &'a [String],
    ) -> Result<Vec<(&'a str, u64)>, StoreError> {
        let r = self.reader()?;
        let private = m.private_seen().then(|| self.principal());
        // The mailbox's index answers but for SIZE and a shared mailbox's UNSEEN.
        let records = items
            .iter()
            .any(|i| i == "SIZE" || (i == "UNSEEN" && private.is_some()));
        let msgs = if records {
            r.items(m.coll.id)?
        } else {
            Vec::new()
        };
        let ids: crate::uidmap::UidMap = if records {
            msgs.iter().map(|i| i.id as u32).collect()
        } else {
            crate::uidmap::UidMap::from_runs(
                r.id_runs(m.coll.id)?
                    .into_iter()
                    .map(|(first, n)| (first as u32, n as u32)),
            )
        };
        let count = |f: &dyn Fn(&Item) -> bool| msgs.iter().filter(|i| f(i)).count() as u64;
        let mut parts = Vec::new();
        for i in items {
            let v = match i.as_str() {
                "MESSAGES" => ids.len() as u64,
                "UIDNEXT" => m.coll.next_item,
                "UIDVALIDITY" => u64::from(m.coll.validity),
                "UNSEEN" => match private {
                    Some(p) => count(&|i| !i.seen_by(p)),
                    None => r.unseen(m.coll.id)?.len() as u64,
                },
                "DELETED" => r.deleted(m.coll.id)?.len() as u64,
                "SIZE" => msgs.iter().map(Item::size).sum(),
                "RECENT" => self.ctx.recent.unclaimed(&m.coll, &ids) as u64,
                "HIGHESTMODSEQ" => m.coll.modseq,
                _ => continue,
            };
            parts.push((i.as_str(), v));
        }
        Ok(parts)
    }

    pub(crate) fn status(&mut self, tag: &str, name: &str, items: &[StatusDataItemName]) {
        let items: Vec<String> = items
            .iter()
            .map(|i| {
                match i {
                    StatusDataItemName::Messages => "MESSAGES",
                    StatusDataItemName::Recent => "RECENT",
                    StatusDataItemName::UidNext => "UIDNEXT",
                    StatusDataItemName::UidValidity => "UIDVALIDITY",
                    StatusDataItemName::Unseen => "UNSEEN",
                    StatusDataItemName::Deleted => "DELETED",
                    StatusDataItemName::DeletedStorage => "DELETED-STORAGE",
                    StatusDataItemName::HighestModSeq => "HIGHESTMODSEQ",
                    StatusDataItemName::Size => "SIZE",
                }
                .to_string()
            })
            .collect();
        if items.iter().any(|i| i == "HIGHESTMODSEQ") {
            self.enable_condstore();
        }
        let status = self
            .find_mailbox(name)
            .and_then(|m| Ok((self.to_wire(&m.name), self.status_of(&m, &items)?)));
        match status {
            Ok((name, items)) => {
                self.send(Response::MailboxStatus {
                    name: &name,
                    items: &items,
                });
                self.ok(tag, "STATUS completed")
            }
            Err(e) => self.store_no(tag, e),
        }
    }
}
/// Why LIST's options are refused (a BAD, RFC 5258 6).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
enum BadOptions {
    #[error("unknown selection option {0}")]
    Selection(String),
    #[error("RECURSIVEMATCH needs another selection option")]
    LoneRecursiveMatch,
    #[error("unknown return option {0}")]
    Return(String),
}

/// LIST's selection options (RFC 5258 3.1): SUBSCRIBED, SPECIAL-USE and RECURSIVEMATCH, once
/// the selection and return options are known ones.
fn selection(l: &ListExt) -> Result<(bool, bool, bool), BadOptions> {
    let opt = |o: &str| l.select.iter().any(|x| x == o);
    if let Some(o) = l
        .select
        .iter()
        .find(|o| !["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"].contains(&o.as_str()))
    {
        return Err(BadOptions::Selection(o.clone()));
    }
    let (sub, special, recursive) = (opt("SUBSCRIBED"), opt("SPECIAL-USE"), opt("RECURSIVEMATCH"));
    if recursive && !sub && !special {
        return Err(BadOptions::LoneRecursiveMatch);
    }
    // RFC 5258 6: an unknown return option is a syntax error.
    if let Some(o) = l
        .ret
        .iter()
        .find(|o| !["SUBSCRIBED", "CHILDREN", "SPECIAL-USE"].contains(&o.as_str()))
    {
        return Err(BadOptions::Return(o.clone()));
    }
    Ok((sub, special, recursive))
}

/// The names LIST may list, each with its mailbox if it has one, and those of them that
/// are subscribed ghosts.
fn listed_names<'a>(
    boxes: &'a [Mbox],
    subs: &std::collections::BTreeSet<String>,
    sel_sub: bool,
    recursive: bool,
) -> (
    std::collections::BTreeMap<String, Option<&'a Mbox>>,
    std::collections::HashSet<String>,
) {
    // Every name, with the shared namespace's levels that hold no mailbox of their own.
    let mut names: std::collections::BTreeMap<String, Option<&Mbox>> =
        boxes.iter().map(|m| (m.name.clone(), Some(m))).collect();
    for m in boxes.iter().filter(|m| m.private_seen()) {
        let mut parts: Vec<&str> = m.name.split('/').collect();
        while parts.len() > 1 {
            parts.pop();
            names.entry(parts.join("/")).or_insert(None);
        }
    }
    // Subscribed names with no mailbox behind them (and, for RECURSIVEMATCH, the levels
    // above subscribed names): listed as \NonExistent (RFC 5258 3.4, 3.5).
    let mut ghosts = std::collections::HashSet::new();
    if sel_sub {
        for s in subs {
            let mut parts: Vec<&str> = s.split('/').collect();
            loop {
                let n = parts.join("/");
                if !names.contains_key(&n) {
                    names.insert(n.clone(), None);
                    ghosts.insert(n);
                }
                parts.pop();
                if !recursive || parts.is_empty() {
                    break;
                }
            }
        }
    }
    (names, ghosts)
}
