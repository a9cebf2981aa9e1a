//! SEARCH keys (RFC 9051 6.4.4) evaluated against a message: flags, sizes, internal and
//! sent dates, header fields, body and text (substring, case-insensitive, as
//! `bureau_core::mailsearch` reads a message), and what the term index can narrow them to.

use bureau_core::mailsearch::*;
use bureau_store::Item;
use bureau_store::terms::{Field, Narrow};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mail_parser::MessageParser;

/// A message as SEARCH sees it.
pub(crate) struct Candidate<'a> {
    pub seq: u32,
    pub uid: u32,
    pub item: &'a Item,
    /// The content, when a key needs it (else empty).
    pub content: &'a [u8],
    /// Largest sequence number and UID of the mailbox (for `*`).
    pub max_seq: u32,
    pub max_uid: u32,
    /// \Recent in this session.
    pub recent: bool,
}

/// Whether any key looks into the message's content.
pub(crate) fn needs_content(key: &SearchKey) -> bool {
    use SearchKey::*;
    match key {
        And(keys) => keys.as_ref().iter().any(needs_content),
        Not(k) => needs_content(k),
        Or(a, b) => needs_content(a) || needs_content(b),
        Bcc(_) | Body(_) | Cc(_) | From(_) | Header(..) | Subject(_) | Text(_) | To(_)
        | SentBefore(_) | SentOn(_) | SentSince(_) => true,
        _ => false,
    }
}

/// Whether a MODSEQ key is among the keys (the answer then carries the highest modseq).
pub(crate) fn uses_modseq(key: &SearchKey) -> bool {
    use SearchKey::*;
    match key {
        And(keys) => keys.as_ref().iter().any(uses_modseq),
        Not(k) => uses_modseq(k),
        Or(a, b) => uses_modseq(a) || uses_modseq(b),
        ModSequence { .. } => true,
        _ => false,
    }
}
pub(crate) fn in_set(set: &SequenceSet, v: u32, largest: u32) -> bool {
    let val = |x: &SeqOrUid| match x {
        SeqOrUid::Asterisk => largest,
        SeqOrUid::Value(n) => n.get(),
    };
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(x) => val(x) == v,
        Sequence::Range(a, b) => {
            let (a, b) = (val(a), val(b));
            a.min(b) <= v && v <= a.max(b)
        }
    })
}

/// The narrowing a key allows, if any (NOT and keys the index does not hold allow none).
pub(crate) fn narrowing(key: &SearchKey) -> Option<Narrow> {
    use SearchKey::*;
    let term = |f: Field, v: &[u8]| Some(Narrow::Term(f, v.to_vec()));
    match key {
        And(keys) => {
            let all: Vec<Narrow> = keys.as_ref().iter().filter_map(narrowing).collect();
            (!all.is_empty()).then_some(Narrow::And(all))
        }
        // Thunderbird's quick filter asks OR FROM x OR SUBJECT x BODY x.
        Or(a, b) => Some(Narrow::Or(vec![narrowing(a)?, narrowing(b)?])),
        Subject(v) => term(SUBJECT, v.as_ref()),
        From(v) => term(FROM, v.as_ref()),
        To(v) => term(TO, v.as_ref()),
        Cc(v) => term(CC, v.as_ref()),
        Bcc(v) => term(BCC, v.as_ref()),
        Body(v) => term(BODY, v.as_ref()),
        Text(v) => Some(Narrow::Or(
            TEXT.iter()
                .map(|f| Narrow::Term(*f, v.as_ref().to_vec()))
                .collect(),
        )),
        Header(name, v) => {
            let name = String::from_utf8_lossy(name.as_ref()).to_ascii_lowercase();
            match name.as_str() {
                "subject" => term(SUBJECT, v.as_ref()),
                n => ADDRESS_FIELDS
                    .iter()
                    .find(|(a, _)| *a == n)
                    .and_then(|(_, f)| term(*f, v.as_ref())),
            }
        }
        _ => None,
    }
}

fn day(ts: i64) -> i64 {
    ts.div_euclid(86_400)
}

fn date_day(d: &imap_codec::imap_types::datetime::NaiveDate) -> i64 {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    d.as_ref().signed_duration_since(epoch).num_days()
}

/// The Date: header's day as it is written, in the sender's own time zone (RFC 9051
/// 6.4.4: SENTON and its kin disregard time and time zone), if it parses.
fn sent_day(content: &[u8]) -> Option<i64> {
    let m = MessageParser::default().parse_headers(content)?;
    let d = m.date()?;
    let date =
        chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some(date.signed_duration_since(epoch).num_days())
}

pub(crate) fn matches(key: &SearchKey, c: &Candidate) -> bool {
    use SearchKey::*;
    let flag = |f: &str| c.item.flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    let field = |name: &[u8], v: &[u8]| header(c.content, name).is_some_and(|h| contains(&h, v));
    match key {
        And(keys) => keys.as_ref().iter().all(|k| matches(k, c)),
        Or(a, b) => matches(a, c) || matches(b, c),
        Not(k) => !matches(k, c),
        All => true,
        SequenceSet(s) => in_set(s, c.seq, c.max_seq),
        Uid(s) => in_set(s, c.uid, c.max_uid),
        Answered => flag("\\Answered"),
        Unanswered => !flag("\\Answered"),
        Deleted => flag("\\Deleted"),
        Undeleted => !flag("\\Deleted"),
        Draft => flag("\\Draft"),
        Undraft => !flag("\\Draft"),
        Flagged => flag("\\Flagged"),
        Unflagged => !flag("\\Flagged"),
        Seen => flag("\\Seen"),
        Unseen => !flag("\\Seen"),
        Keyword(k) => flag(k.as_ref()),
        Unkeyword(k) => !flag(k.as_ref()),
        // RFC 3501 6.4.4: NEW is RECENT UNSEEN.
        Recent => c.recent,
        New => c.recent && !flag("\\Seen"),
        Old => !c.recent,
        Larger(n) => c.item.size() > u64::from(*n),
        Smaller(n) => c.item.size() < u64::from(*n),
        Before(d) => day(c.item.date) < date_day(d),
        On(d) => day(c.item.date) == date_day(d),
        Since(d) => day(c.item.date) >= date_day(d),
        SentBefore(d) => sent_day(c.content).is_some_and(|s| s < date_day(d)),
        SentOn(d) => sent_day(c.content).is_some_and(|s| s == date_day(d)),
        SentSince(d) => sent_day(c.content).is_some_and(|s| s >= date_day(d)),
        Header(name, value) => {
            field(name.as_ref(), value.as_ref())
                || name.as_ref().eq_ignore_ascii_case(b"subject")
                    && subject_has(c.content, value.as_ref())
        }
        From(v) => field(b"from", v.as_ref()) || address_has(c.content, "from", v.as_ref()),
        To(v) => field(b"to", v.as_ref()) || address_has(c.content, "to", v.as_ref()),
        Cc(v) => field(b"cc", v.as_ref()) || address_has(c.content, "cc", v.as_ref()),
        Bcc(v) => field(b"bcc", v.as_ref()) || address_has(c.content, "bcc", v.as_ref()),
        Subject(v) => field(b"subject", v.as_ref()) || subject_has(c.content, v.as_ref()),
        Body(v) => body_has(c.content, v.as_ref()),
        Text(v) => {
            contains(
                &c.content[..crate::fetch::header_end(c.content)],
                v.as_ref(),
            ) || body_has(c.content, v.as_ref())
        }
        // Per-flag modseqs are not kept: the item's modseq answers for all of its flags.
        ModSequence { modseq, .. } => c.item.modseq >= *modseq,
    }
}

#[cfg(test)]
mod tests {
    /// Issue 18: SENTON compared the UTC day, not the Date: header's own.
    #[test]
    fn the_sent_day_is_the_headers_own() {
        let late = b"Date: Mon, 7 Dec 2026 23:30:00 -0500\r\n\r\n";
        let early = b"Date: Tue, 8 Dec 2026 00:30:00 +0200\r\n\r\n";
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let dec7 = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let days = dec7.signed_duration_since(epoch).num_days();
        assert_eq!(super::sent_day(late), Some(days));
        assert_eq!(super::sent_day(early), Some(days + 1));
    }

    use super::*;

    /// Issue 24: BODY read TEXT's terms, so a word of the header alone (an address, a
    /// Message-ID's hex) made every message holding it a candidate that only reading it
    /// ruled out. BODY's candidates are the messages whose text parts may hold the needle;
    /// TEXT's, those whose header or text parts may.
    #[test]
    fn body_narrows_to_the_text_parts_and_text_to_both() {
        use bureau_store::{
            Actor, CollectionKind, Content, NewItem, PrincipalKind, Store, StoreOptions,
        };
        use imap_codec::imap_types::core::AString;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.set_deriver(crate::envelope::derive);
        let a = store
            .write_blocking(Actor::System, vec![], |w| {
                w.create_principal(PrincipalKind::User, "a", None)
            })
            .unwrap()
            .id;
        let inbox = store
            .write_blocking(Actor::Principal(a), vec![], move |w| {
                w.create_collection(a, CollectionKind::Mailbox, "INBOX")
            })
            .unwrap()
            .id;
        let mut ids = Vec::new();
        for raw in [
            "From: joerg@x.example\r\nSubject: Lunch\r\n\r\nlunch tomorrow\r\n",
            "From: bob@y.example\r\nSubject: Report\r\n\r\nwrite to joerg@x.example\r\n",
        ] {
            let staged = store
                .stage_blocking(raw.as_bytes(), Content::Message)
                .unwrap();
            let blob = staged.blob_ref();
            let item = store
                .write_blocking(Actor::Principal(a), vec![staged], move |w| {
                    w.put_item(
                        inbox,
                        NewItem {
                            blob: Some(blob),
                            ..Default::default()
                        },
                    )
                })
                .unwrap();
            ids.push(item.id);
        }
        store.index_pending().unwrap();
        let r = store.reader(Actor::Principal(a)).unwrap();
        let needle = || AString::try_from("x.example").unwrap();
        let found = |key: SearchKey| r.term_candidates(inbox, &narrowing(&key).unwrap()).unwrap();
        assert_eq!(found(SearchKey::Body(needle())), Some(vec![ids[1]]));
        assert_eq!(found(SearchKey::Text(needle())), Some(ids.clone()));
        assert_eq!(
            found(SearchKey::Body(AString::try_from("lunch").unwrap())),
            Some(vec![ids[0]])
        );
    }
}
