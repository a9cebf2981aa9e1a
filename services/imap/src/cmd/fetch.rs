//! FETCH (RFC 9051 6.4.5): flags, envelope, body structure, sections, BINARY (RFC 3516).

use crate::cmd::select::vanished_earlier;
use crate::envelope::{SUMMARY, Summary};
use crate::fetch::{Binary, header_end, partial};
use crate::response::{Code, Item as FetchItem, Response};
use crate::session::*;
use bureau_store::{Actor, StoreError};
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::sequence::SequenceSet;

impl Session {
    pub(crate) async fn fetch(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        what: &MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) {
        let changed_since = modifiers.iter().find_map(|m| match m {
            FetchModifier::ChangedSince(v) => Some(v.get()),
            FetchModifier::Vanished => None,
        });
        let vanished = modifiers.contains(&FetchModifier::Vanished);
        if vanished && !(uid && self.qresync && changed_since.is_some()) {
            return self.bad_cmd(tag, "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC");
        }
        let mut names = item_names(what, uid);
        let wants_modseq = names
            .iter()
            .any(|n| matches!(n, MessageDataItemName::ModSeq));
        if changed_since.is_some() && !wants_modseq {
            names.push(MessageDataItemName::ModSeq);
        }
        if changed_since.is_some() || wants_modseq {
            self.enable_condstore();
        }
        let seqs = self.resolve(set, uid);
        let (coll, read_only, private, uids) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only, s.private_seen, s.uids.clone()),
            _ => return,
        };
        // Fetching a body without PEEK sets \Seen (RFC 9051 6.4.5).
        let sets_seen = !read_only && names.iter().any(sets_seen);
        // Once CONDSTORE is on, flags go with their modseq, as Dovecot sends them: a client
        // told the flags of a change must be told its modseq too (imaptest's checkpoints
        // found sessions with current flags and a stale modseq).
        let flags_asked = sets_seen || asks_flags(&names);
        if self.condstore
            && flags_asked
            && !names
                .iter()
                .any(|n| matches!(n, MessageDataItemName::ModSeq))
        {
            names.push(MessageDataItemName::ModSeq);
        }
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        let reader = match store.reader(actor) {
            Ok(r) => r,
            Err(e) => return self.store_no(tag, e),
        };
        // QRESYNC's VANISHED (EARLIER): UIDs of the set expunged since CHANGEDSINCE.
        if vanished
            && let Some(since) = changed_since
            && let Ok(c) = reader.collection(coll)
        {
            let gone = vanished_earlier(Some(&reader), &c, since, uids.iter(), Some(set));
            if !gone.is_empty() {
                let (earlier, uids) = (true, &gone);
                self.send(Response::Vanished { earlier, uids });
            }
        }
        let summarized = names.iter().any(summarized);
        let needs_content = names.iter().any(needs_content);
        // Summaries made here for messages stored without one (before the cache existed),
        // saved after the answer for the next FETCH.
        let mut made: Vec<(u64, Vec<u8>)> = Vec::new();
        for seq in seqs {
            let Some(id) = uids.uid(seq).map(u64::from) else {
                continue;
            };
            let mut item = match reader.item(coll, id) {
                Ok(i) => self.viewed(i, private),
                Err(StoreError::NotFound) => continue, // expunged meanwhile; told later
                Err(e) => return self.store_no(tag, e),
            };
            if changed_since.is_some_and(|m| item.modseq <= m) {
                continue;
            }
            if sets_seen && !has(&item.flags, SEEN) {
                let r = store
                    .write(actor, vec![], move |w| {
                        if private {
                            w.set_private_seen(coll, id, true)
                        } else {
                            w.update_item(coll, id, None, |it| it.flags.push(SEEN.into()))
                        }
                    })
                    .await;
                if let Ok(updated) = r {
                    item = self.viewed(updated, private);
                }
                if !asks_flags(&names) {
                    names.push(MessageDataItemName::Flags);
                }
            }
            let mut summary = if summarized {
                match reader.derived(&item, SUMMARY) {
                    Ok(s) => s.as_deref().and_then(Summary::decode),
                    Err(e) => return self.store_no(tag, e),
                }
            } else {
                None
            };
            let content = if needs_content || (summarized && summary.is_none()) {
                match reader.content(&item) {
                    Ok(c) => c,
                    Err(e) => return self.store_no(tag, e),
                }
            } else {
                Vec::new()
            };
            if summarized && summary.is_none() {
                let s = Summary::of(&content);
                made.push((id, s.encode()));
                summary = Some(s);
            }
            if asks_flags(&names) {
                self.announce_keywords(&item.flags);
            }
            let mut items: Vec<FetchItem> = Vec::new();
            for n in &names {
                match self.fetch_item(n, id, &item, summary.as_ref(), &content) {
                    Ok(i) => items.push(i),
                    Err((code, why)) => return self.no(tag, code, why),
                }
            }
            let flags_told = asks_flags(&names);
            self.send(Response::Fetch { seq, items: &items });
            if let State::Selected(_, s) = &mut self.state
                && flags_told
            {
                s.told(item.id, item.modseq);
            }
        }
        save_summaries(store, actor, coll, made);
        self.ok(
            tag,
            &format!("{}FETCH completed", if uid { "UID " } else { "" }),
        );
    }

    /// One item of a message's FETCH response, or why it cannot be given.
    fn fetch_item<'a>(
        &self,
        n: &MessageDataItemName,
        id: u64,
        item: &bureau_store::Item,
        summary: Option<&'a Summary>,
        content: &'a [u8],
    ) -> Result<FetchItem<'a>, (Code<'static>, &'static str)> {
        let encoded = |f: fn(&Summary) -> &Vec<u8>| summary.map_or(&[][..], |s| &f(s)[..]);
        Ok(match n {
            MessageDataItemName::Uid => FetchItem::Uid(id),
            MessageDataItemName::ModSeq => FetchItem::ModSeq(item.modseq),
            MessageDataItemName::Flags => FetchItem::Flags(self.flags_shown(item)),
            MessageDataItemName::Rfc822Size => FetchItem::Size(item.size()),
            MessageDataItemName::InternalDate => FetchItem::InternalDate(item.date),
            MessageDataItemName::Envelope => FetchItem::Envelope(encoded(|s| &s.envelope)),
            MessageDataItemName::Body => FetchItem::Body(encoded(|s| &s.body)),
            MessageDataItemName::BodyStructure => {
                FetchItem::BodyStructure(encoded(|s| &s.bodystructure))
            }
            MessageDataItemName::Rfc822 => FetchItem::Rfc822(content),
            MessageDataItemName::Rfc822Header => {
                FetchItem::Rfc822Header(&content[..header_end(content)])
            }
            MessageDataItemName::Rfc822Text => {
                FetchItem::Rfc822Text(&content[header_end(content)..])
            }
            MessageDataItemName::BodyExt {
                section,
                partial: part,
                ..
            } => {
                let (label, data) = crate::fetch::section(section.as_ref(), content);
                let (origin, data) = match part {
                    Some((origin, len)) => {
                        (Some(*origin), partial(&data, *origin, len.get()).to_vec())
                    }
                    None => (None, data),
                };
                FetchItem::Section {
                    label,
                    origin,
                    data,
                }
            }
            MessageDataItemName::Binary {
                section,
                partial: part,
                ..
            } => {
                let data = binary(content, section)?;
                let (origin, data) = match part {
                    Some((origin, len)) => {
                        (Some(*origin), partial(&data, *origin, len.get()).to_vec())
                    }
                    None => (None, data),
                };
                FetchItem::Binary {
                    label: section_label(section),
                    origin,
                    data,
                }
            }
            MessageDataItemName::BinarySize { section } => FetchItem::BinarySize {
                label: section_label(section),
                size: binary(content, section)?.len(),
            },
        })
    }
}

/// The items FETCH asked for, macros expanded; UID first for UID FETCH (RFC 9051 6.4.9).
fn item_names<'a>(
    what: &MacroOrMessageDataItemNames<'a>,
    uid: bool,
) -> Vec<MessageDataItemName<'a>> {
    let mut names: Vec<MessageDataItemName> = match what {
        MacroOrMessageDataItemNames::Macro(m) => match m {
            Macro::Fast => vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
            ],
            Macro::All => vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
                MessageDataItemName::Envelope,
            ],
            _ => vec![
                MessageDataItemName::Flags,
                MessageDataItemName::InternalDate,
                MessageDataItemName::Rfc822Size,
                MessageDataItemName::Envelope,
                MessageDataItemName::Body,
            ],
        },
        MacroOrMessageDataItemNames::MessageDataItemNames(n) => n.clone(),
    };
    if uid && !names.iter().any(|n| matches!(n, MessageDataItemName::Uid)) {
        names.insert(0, MessageDataItemName::Uid);
    }
    names
}

/// Whether FLAGS is among the items.
fn asks_flags(names: &[MessageDataItemName]) -> bool {
    names
        .iter()
        .any(|n| matches!(n, MessageDataItemName::Flags))
}

/// Whether an item sets \\Seen: a body fetched without PEEK.
fn sets_seen(n: &MessageDataItemName) -> bool {
    matches!(
        n,
        MessageDataItemName::BodyExt { peek: false, .. }
            | MessageDataItemName::Binary { peek: false, .. }
            | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Text
    )
}

/// Whether an item is read from the message's summary.
fn summarized(n: &MessageDataItemName) -> bool {
    matches!(
        n,
        MessageDataItemName::Envelope
            | MessageDataItemName::BodyStructure
            | MessageDataItemName::Body
    )
}

/// Whether an item is read from the message itself.
fn needs_content(n: &MessageDataItemName) -> bool {
    matches!(
        n,
        MessageDataItemName::BodyExt { .. }
            | MessageDataItemName::Binary { .. }
            | MessageDataItemName::BinarySize { .. }
            | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Header
            | MessageDataItemName::Rfc822Text
    )
}

/// Saves summaries FETCH made for messages stored without one, after the answer, for the
/// next FETCH.
fn save_summaries(store: bureau_store::Store, actor: Actor, coll: u64, made: Vec<(u64, Vec<u8>)>) {
    if made.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let fill = store.write(actor, vec![], move |w| {
            for (id, bytes) in &made {
                match w.set_derived(coll, *id, SUMMARY, bytes) {
                    Err(StoreError::NotFound) => {} // expunged meanwhile
                    r => r?,
                }
            }
            Ok::<_, StoreError>(())
        });
        if let Err(e) = fill.await {
            log::debug!("imap: summaries not saved: {e}");
        }
    });
}

/// The decoded content of BINARY[section] (empty for a part that does not exist), or why
/// it cannot be given.
pub(crate) fn binary(
    content: &[u8],
    section: &[std::num::NonZeroU32],
) -> Result<Vec<u8>, (Code<'static>, &'static str)> {
    let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
    match crate::fetch::binary(content, &path) {
        Some(Binary::Data(d)) => Ok(d),
        None => Ok(Vec::new()),
        Some(Binary::UnknownCte) => Err((Code::UnknownCte, "cannot decode this part")),
        Some(Binary::Undecodable) => Err((Code::Parse, "the part's transfer encoding is damaged")),
    }
}

/// "1.2" for BINARY[1.2].
pub(crate) fn section_label(section: &[std::num::NonZeroU32]) -> String {
    let parts: Vec<String> = section.iter().map(|n| n.to_string()).collect();
    parts.join(".")
}
