//! The term index of mailboxes: which messages hold which trigrams in which field, so that
//! a substring search (IMAP SEARCH SUBJECT, TEXT…) reads the few messages that can match
//! instead of every one.
//!
//! What a message's fields are is the protocol's to say: its deriver (`Store::set_deriver`)
//! gives each message a [`TERMS`] field made with [`Terms`]. The store keeps the postings in
//! the same write as the message, and answers [`crate::Reader::term_candidates`]: a superset
//! of the messages whose field holds a needle (every trigram of the needle is in the field's
//! trigrams), which the protocol then checks. Trigrams are of the lowercased UTF-8 bytes
//! and never span two texts of a field, so a text that holds the needle, in any case, has
//! all its trigrams.
//!
//! Postings are kept per block of 1,024 item ids: (collection, block, term) -> the ids'
//! offsets, as a sorted list while short and as a bitmap once long. Keyed block first, so
//! that a batch's terms fall in few blocks' pages, whatever the size of the mailbox.
//! `TERM_BLOCKS` keeps, for each (collection, term), a bitmap of the blocks that hold it: a
//! search reads one bitmap per term of its needle, then the postings of the blocks where
//! they all are, not every block.
//!
//! A message's write only lists it (`UNINDEXED`, pending) or, when it goes, keeps its terms
//! for removal (`UNPOST`); `Writer::post_terms` posts a batch, each (block, term) once. Until
//! then a listed message is a candidate for every search, so the index is never behind what
//! a search must find. A message without terms
//! (stored before the index, or without a deriver) waits in `UNINDEXED` until
//! `Store::index_pending` derives its terms; one with too many terms to post stays there
//! for good.

use crate::Result;
use crate::model::{CollectionId, ItemId};
use crate::tables::{TERM_BLOCKS, TERMS, UNINDEXED, UNPOST};
use redb::{ReadableTable, WriteTransaction};
use std::collections::BTreeMap;

/// The derived field that holds a message's terms.
pub const TERMS_FIELD: &str = "terms";

/// A message's field, as its protocol numbers them (1..=255).
pub type Field = u8;

const BLOCK_BITS: u32 = 10;
const BLOCK: usize = 1 << BLOCK_BITS;
const BITMAP_BYTES: usize = BLOCK / 8;
/// Longest posting list kept as a list (2 bytes an entry, shorter than the bitmap).
const LIST_MAX: usize = BITMAP_BYTES / 2 - 1;

/// More distinct terms than this and a message is not indexed: it stays a candidate for
/// every search (a huge text of noise would cost more to post than to read).
const MAX_TERMS: usize = 100_000;

/// A message's terms: (field, trigram) pairs, each once. Kept to at most a few times
/// `MAX_TERMS` while they are gathered, whatever the size of the texts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Terms {
    terms: Vec<u32>,
    too_many: bool,
}

fn term(field: Field, g: &[u8]) -> u32 {
    u32::from(field) << 24 | u32::from(g[0]) << 16 | u32::from(g[1]) << 8 | u32::from(g[2])
}

/// A text as its trigrams are taken, and as a search should compare it: each character
/// lowercased on its own (so a whole string's lowercasing keeps a match a match), final
/// sigma as sigma; bytes that are not UTF-8 as U+FFFD.
pub fn fold(text: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(text)
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect::<String>()
        .into_bytes()
}

/// The terms of `needle` in `field`; `None` when the index cannot narrow a search for it
/// (too short to have a trigram, or not UTF-8).
pub(crate) fn needle_terms(field: Field, needle: &[u8]) -> Option<Vec<u32>> {
    std::str::from_utf8(needle).ok()?;
    let folded = fold(needle);
    if folded.len() < 3 {
        return None;
    }
    let mut v: Vec<u32> = folded.windows(3).map(|g| term(field, g)).collect();
    v.sort_unstable();
    v.dedup();
    Some(v)
}

impl Terms {
    /// Adds the trigrams of one text of `field` (a header's value, a body part…).
    pub fn add(&mut self, field: Field, text: &[u8]) {
        for g in fold(text).windows(3) {
            if self.too_many {
                return;
            }
            self.terms.push(term(field, g));
            if self.terms.len() >= 4 * MAX_TERMS {
                self.terms.sort_unstable();
                self.terms.dedup();
                if self.terms.len() > MAX_TERMS {
                    self.too_many = true;
                    self.terms = Vec::new();
                }
            }
        }
    }

    /// The terms as the derived field keeps them: ascending, each as its distance from the
    /// one before in LEB128 (about a byte and a half a term, not four); empty when there
    /// are too many to index.
    pub fn encode(mut self) -> Vec<u8> {
        self.terms.sort_unstable();
        self.terms.dedup();
        if self.too_many || self.terms.len() > MAX_TERMS {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(self.terms.len() * 2);
        let mut prev = 0u32;
        for t in self.terms {
            let mut d = t - prev;
            prev = t;
            while d >= 0x80 {
                out.push(d as u8 | 0x80);
                d >>= 7;
            }
            out.push(d as u8);
        }
        out
    }

    /// The terms of `encode`'s bytes; what follows a damaged number is dropped (a cache:
    /// the index then misses terms only of a message whose derived data is damaged).
    fn decode(b: &[u8]) -> Vec<u32> {
        let mut out = Vec::with_capacity(b.len());
        let (mut prev, mut d, mut shift) = (0u32, 0u32, 0u32);
        for &byte in b {
            if shift > 28 {
                break;
            }
            d |= u32::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                prev = prev.wrapping_add(d);
                out.push(prev);
                (d, shift) = (0, 0);
            } else {
                shift += 7;
            }
        }
        out
    }
}

fn block(id: ItemId) -> (u32, u16) {
    ((id >> BLOCK_BITS) as u32, (id as usize % BLOCK) as u16)
}

/// The offsets a posting holds.
fn offsets(p: &[u8]) -> Vec<u16> {
    if p.len() == BITMAP_BYTES {
        (0..BLOCK)
            .filter(|i| p[i / 8] & (1 << (i % 8)) != 0)
            .map(|i| i as u16)
            .collect()
    } else {
        p.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    }
}

fn posting(offs: &[u16]) -> Vec<u8> {
    if offs.len() <= LIST_MAX {
        offs.iter().flat_map(|o| o.to_le_bytes()).collect()
    } else {
        let mut p = vec![0u8; BITMAP_BYTES];
        for o in offs {
            p[*o as usize / 8] |= 1 << (o % 8);
        }
        p
    }
}

/// What `UNINDEXED` says of a message not in the postings.
pub(crate) mod state {
    /// No terms yet: its content must go through the deriver (stored before the index, or
    /// while no deriver was set).
    pub const WAITING: u8 = 0;
    /// Its terms are known (the blob's derived field): to be posted by the next batch.
    pub const PENDING: u8 = 1;
    /// Too many terms to post: a candidate for every search, for good.
    pub const UNINDEXABLE: u8 = 2;
}

/// Lists a new message of a mailbox for the next batch (`Writer::post_terms`): pending
/// with its blob's terms, waiting when it has none yet, unindexable when they were too
/// many. A write posts nothing itself: a message's few hundred terms cost the writer
/// thread more than the rest of its write, and a batch posts each (block, term) once for
/// all the messages it takes.
pub(crate) fn index(
    tx: &WriteTransaction,
    coll: CollectionId,
    id: ItemId,
    terms: Option<&[u8]>,
) -> Result<()> {
    let s = match terms {
        None => state::WAITING,
        Some([]) => state::UNINDEXABLE,
        Some(_) => state::PENDING,
    };
    tx.open_table(UNINDEXED)?.insert((coll, id), s)?;
    Ok(())
}

/// Takes a message out of the index (before it goes or changes its blob): out of
/// `UNINDEXED` if it is still there, else its terms are kept in `UNPOST` for the next
/// batch to take out of the postings.
pub(crate) fn unindex(
    tx: &WriteTransaction,
    coll: CollectionId,
    id: ItemId,
    terms: Option<&[u8]>,
) -> Result<()> {
    if tx.open_table(UNINDEXED)?.remove((coll, id))?.is_none()
        && let Some(t) = terms.filter(|t| !t.is_empty())
    {
        tx.open_table(UNPOST)?.insert((coll, id), t)?;
    }
    Ok(())
}

/// A posting's key: (collection, block, term).
type Key = (CollectionId, u32, u32);

/// A batch's postings, grouped: for each key, offsets to add and to take out.
#[derive(Default)]
pub(crate) struct Batch(BTreeMap<Key, (Vec<u16>, Vec<u16>)>);

impl Batch {
    pub(crate) fn add(&mut self, coll: CollectionId, id: ItemId, terms: &[u8], add: bool) {
        let (blk, off) = block(id);
        for term in Terms::decode(terms) {
            let e = self.0.entry((coll, blk, term)).or_default();
            if add { &mut e.0 } else { &mut e.1 }.push(off);
        }
    }

    /// Applies the batch: each posting read and written once; a term's block list changes
    /// only where a block gains its first posting of the term or loses its last.
    pub(crate) fn apply(self, tx: &WriteTransaction) -> Result<()> {
        let mut t = tx.open_table(TERMS)?;
        // (collection, term) -> (block, now holds the term), where that changed.
        let mut flips: BTreeMap<(CollectionId, u32), Vec<(u32, bool)>> = BTreeMap::new();
        for ((coll, blk, term), (adds, removes)) in self.0 {
            let before = t.get((coll, blk, term))?.map(|v| offsets(v.value()));
            let had = before.is_some();
            let mut offs = before.unwrap_or_default();
            offs.retain(|o| !removes.contains(o));
            offs.extend(adds);
            offs.sort_unstable();
            offs.dedup();
            if offs.is_empty() {
                t.remove((coll, blk, term))?;
            } else {
                t.insert((coll, blk, term), posting(&offs).as_slice())?;
            }
            if had == offs.is_empty() {
                flips.entry((coll, term)).or_default().push((blk, !had));
            }
        }
        let mut tb = tx.open_table(TERM_BLOCKS)?;
        for (key, changes) in flips {
            let mut bits = tb.get(key)?.map(|v| v.value().to_vec()).unwrap_or_default();
            for (blk, on) in changes {
                let (byte, bit) = (blk as usize / 8, 1u8 << (blk % 8));
                if bits.len() <= byte {
                    bits.resize(byte + 1, 0);
                }
                if on {
                    bits[byte] |= bit;
                } else {
                    bits[byte] &= !bit;
                }
            }
            while bits.last() == Some(&0) {
                bits.pop();
            }
            if bits.is_empty() {
                tb.remove(key)?;
            } else {
                tb.insert(key, bits.as_slice())?;
            }
        }
        Ok(())
    }
}

/// Whether a batch has anything to post or take out.
pub(crate) fn work(tx: &redb::ReadTransaction) -> Result<bool> {
    if tx.open_table(UNPOST)?.first()?.is_some() {
        return Ok(true);
    }
    for e in tx.open_table(UNINDEXED)?.iter()? {
        if e?.1.value() == state::PENDING {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Drops a collection's postings and lists.
pub(crate) fn drop_collection(tx: &WriteTransaction, coll: CollectionId) -> Result<()> {
    tx.open_table(UNPOST)?
        .extract_from_if((coll, 0)..=(coll, u64::MAX), |_, _| true)?
        .for_each(drop);
    tx.open_table(TERMS)?
        .extract_from_if((coll, 0, 0)..=(coll, u32::MAX, u32::MAX), |_, _| true)?
        .for_each(drop);
    tx.open_table(TERM_BLOCKS)?
        .extract_from_if((coll, 0)..=(coll, u32::MAX), |_, _| true)?
        .for_each(drop);
    tx.open_table(UNINDEXED)?
        .extract_from_if((coll, 0)..=(coll, u64::MAX), |_, _| true)?
        .for_each(drop);
    Ok(())
}

/// The items of `coll` that may hold `needle` in `field` (ascending), or `None` when the
/// index cannot narrow the search (a needle under three bytes, or not UTF-8): in each
/// block that holds all of the needle's terms, their postings intersected.
pub(crate) fn candidates(
    tx: &redb::ReadTransaction,
    coll: CollectionId,
    field: Field,
    needle: &[u8],
) -> Result<Option<Vec<ItemId>>> {
    let Some(wanted) = needle_terms(field, needle) else {
        return Ok(None);
    };
    // The blocks that hold every one of the needle's terms.
    let tb = tx.open_table(TERM_BLOCKS)?;
    let mut blocks: Option<Vec<u8>> = None;
    for term in &wanted {
        let bits = tb
            .get((coll, *term))?
            .map(|v| v.value().to_vec())
            .unwrap_or_default();
        blocks = Some(match blocks {
            None => bits,
            Some(prev) => prev.iter().zip(&bits).map(|(a, b)| a & b).collect(),
        });
    }
    let blocks = blocks.unwrap_or_default();
    let terms = tx.open_table(TERMS)?;
    let mut ids = Vec::new();
    for blk in (0..blocks.len() * 8).filter(|b| blocks[b / 8] & (1 << (b % 8)) != 0) {
        let blk = blk as u32;
        let mut found: Option<Vec<u16>> = None;
        for term in &wanted {
            let offs = match terms.get((coll, blk, *term))? {
                Some(v) => offsets(v.value()),
                None => Vec::new(),
            };
            let now = match found {
                None => offs,
                Some(prev) => prev
                    .into_iter()
                    .filter(|o| offs.binary_search(o).is_ok())
                    .collect(),
            };
            let empty = now.is_empty();
            found = Some(now);
            if empty {
                break;
            }
        }
        let base = u64::from(blk) << BLOCK_BITS;
        ids.extend(
            found
                .unwrap_or_default()
                .into_iter()
                .map(|o| base + u64::from(o)),
        );
    }
    for e in tx
        .open_table(UNINDEXED)?
        .range((coll, 0)..=(coll, u64::MAX))?
    {
        ids.push(e?.0.value().1);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// The ids in both ascending lists.
pub fn intersect(a: &[ItemId], b: &[ItemId]) -> Vec<ItemId> {
    a.iter()
        .copied()
        .filter(|x| b.binary_search(x).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_read_back_as_list_and_as_bitmap() {
        for n in [1usize, LIST_MAX, LIST_MAX + 1, 500, BLOCK] {
            let offs: Vec<u16> = (0..n).map(|i| (i * BLOCK / n) as u16).collect();
            assert_eq!(offsets(&posting(&offs)), offs, "{n} offsets");
        }
    }

    #[test]
    fn terms_read_back_from_their_encoding() {
        let mut t = Terms::default();
        t.add(1, b"abcd");
        t.add(255, "\u{10FFFF}zz".as_bytes());
        let mut want = t.terms.clone();
        want.sort_unstable();
        want.dedup();
        let bytes = t.encode();
        assert!(bytes.len() < want.len() * 4);
        assert_eq!(Terms::decode(&bytes), want);
        assert_eq!(
            Terms::decode(&[0xFF; 9]),
            Vec::<u32>::new(),
            "an overlong number"
        );
    }

    /// A huge text of noise is not indexed, and is not held whole as terms meanwhile.
    #[test]
    fn too_many_terms_leave_a_message_unindexed() {
        let mut x: u32 = 1;
        let noise: String = (0..1_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                char::from_u32(0x100 + x % 0xD000).unwrap()
            })
            .collect();
        let noise = noise.as_bytes();
        let mut t = Terms::default();
        t.add(6, noise);
        assert!(t.too_many);
        assert_eq!(t.terms.capacity(), 0, "the gathered terms let go");
        t.add(1, b"after");
        assert!(t.encode().is_empty());
        let mut small = Terms::default();
        small.add(6, &noise[..30_000]);
        assert!(!small.encode().is_empty());
    }

    #[test]
    fn terms_fold_case_as_characters_do() {
        let mut t = Terms::default();
        t.add(1, "ΟΔΥΣΣΕΥΣ in KÖLN".as_bytes());
        let got = Terms::decode(&t.encode());
        for needle in ["οδυσσευς", "ΣΣΕΥΣ", "köln", "Köln"] {
            let want = needle_terms(1, needle.as_bytes()).unwrap();
            assert!(want.iter().all(|w| got.contains(w)), "{needle}");
        }
        assert_eq!(needle_terms(1, b"k\xc3"), None, "not UTF-8");
    }

    #[test]
    fn terms_fold_ascii_case_and_keep_fields_apart() {
        let mut t = Terms::default();
        t.add(1, b"Hello");
        t.add(2, b"HEL");
        let got = Terms::decode(&t.encode());
        assert_eq!(got.len(), 4);
        let want = needle_terms(1, b"hEL").unwrap();
        assert!(want.iter().all(|w| got.contains(w)));
        assert!(needle_terms(1, b"he").is_none());
        assert_ne!(needle_terms(1, b"hel"), needle_terms(2, b"hel"));
    }

    proptest::proptest! {
        /// The index's promise: a text that holds a needle, case ignored as a search
        /// ignores it (character by character, or as a whole string's lowercasing, which
        /// treats a final sigma apart), has every one of the needle's terms.
        #[test]
        fn a_text_holding_a_needle_has_its_terms(
            text in "[a-zA-Z0-9 äÄöÖßσςΣİ\\x{1F600}]{0,60}",
            from in 0usize..60,
            len in 0usize..20,
            upper in proptest::bool::ANY,
        ) {
            let chars: Vec<char> = text.chars().collect();
            let from = from.min(chars.len());
            let part: String = chars[from..(from + len).min(chars.len())].iter().collect();
            let needle = if upper { part.to_uppercase() } else { part.to_lowercase() };
            let by_char = |s: &str| String::from_utf8(fold(s.as_bytes())).unwrap();
            let holds = by_char(&text).contains(&by_char(&needle))
                || text.to_lowercase().contains(&needle.to_lowercase());
            let mut t = Terms::default();
            t.add(3, text.as_bytes());
            let got = Terms::decode(&t.encode());
            if let (true, Some(want)) = (holds, needle_terms(3, needle.as_bytes())) {
                for w in want {
                    proptest::prop_assert!(got.contains(&w), "{needle:?} in {text:?}");
                }
            }
        }
    }
}
