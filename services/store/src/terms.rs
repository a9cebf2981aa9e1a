//! The term index of mailboxes: which messages hold which trigrams in which field, so that
//! a substring search (IMAP SEARCH SUBJECT, TEXT…) reads the few messages that can match
//! instead of every one.
//!
//! What a message's fields are is the protocol's to say: its deriver (`Store::set_deriver`)
//! gives each message a [`TERMS_FIELD`] made with [`Terms`]. The store posts its terms
//! (below), and answers [`crate::Reader::term_candidates`]: a superset
//! of the messages whose field holds a needle (every trigram of the needle is in the field's
//! trigrams), which the protocol then checks. Trigrams are of the lowercased UTF-8 bytes
//! and never span two texts of a field, so a text that holds the needle, in any case, has
//! all its trigrams.
//!
//! Postings are kept per unit of ids: (collection, unit, term) -> the offsets of the
//! unit's items that hold the term, as a sorted list while short and as a bitmap once long.
//! New messages are posted in small units (1,024 ids), keyed unit first, so that a batch's
//! terms fall in few pages whatever the size of the mailbox. Once a range of ids is whole
//! (a later id is posted: ids only grow) it moves up, a batch of postings at a time, into
//! a middle unit (8 small ones), and 8 middle units into a top unit (65,536 ids), so a
//! search reads a few units per term of its needle, not one per 1,024 messages.
//! `TERM_LEVELS` says, per mailbox, which ids are in which level and what is moving.
//!
//! A message's write only lists it (`UNINDEXED`, pending) or, when it goes, keeps its terms
//! for removal (`UNPOST`); `Writer::post_terms` posts a batch, each (unit, term) once. Until
//! then a listed message is a candidate for every search, so the index is never behind what
//! a search must find. A message without terms
//! (stored before the index, or without a deriver) waits in `UNINDEXED` until
//! `Store::index_pending` derives its terms; one with too many terms to post stays there
//! for good.

use crate::Result;
use crate::model::{CollectionId, ItemId};
use crate::tables::{TERM_LEVELS, TERMS, UNINDEXED, UNPOST};
use redb::{ReadableTable, WriteTransaction};
use std::collections::BTreeMap;

/// The derived field that holds a message's terms.
pub const TERMS_FIELD: &str = "terms";

/// A message's field, as its protocol numbers them (1..=255).
pub type Field = u8;

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

/// Postings are kept in units of ids of three sizes: small (1,024 ids), middle (8 small,
/// 8,192 ids) and top (8 middle, 65,536 ids). Offsets in a unit fit a u16.
const L0_BITS: u32 = if cfg!(test) { 3 } else { 10 };
const FAN_BITS: u32 = 3;
const TOP: u32 = 2;
/// A unit's number takes the low 28 bits of its key, its level the bits above.
const UNIT_MASK: u32 = (1 << 28) - 1;
/// Ids from here on are not indexed (their small unit's number would not fit its key).
const MAX_ID: ItemId = 1 << (28 + L0_BITS);

fn unit_bits(level: u32) -> u32 {
    L0_BITS + FAN_BITS * level
}

fn unit_size(level: u32) -> u64 {
    1 << unit_bits(level)
}

fn unit_key(level: u32, unit: u64) -> u32 {
    level << 28 | unit as u32
}

fn bitmap_bytes(level: u32) -> usize {
    (unit_size(level) / 8).max(1) as usize
}

/// The offsets a posting of a unit of `level` holds: a bitmap, or a sorted list of u16s
/// while that is shorter.
fn offsets(p: &[u8], level: u32) -> Vec<u16> {
    if p.len() == bitmap_bytes(level) {
        (0..unit_size(level) as usize)
            .filter(|i| p[i / 8] & (1 << (i % 8)) != 0)
            .map(|i| i as u16)
            .collect()
    } else {
        p.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    }
}

fn posting(offs: &[u16], level: u32) -> Vec<u8> {
    if offs.len() * 2 < bitmap_bytes(level) {
        offs.iter().flat_map(|o| o.to_le_bytes()).collect()
    } else {
        let mut p = vec![0u8; bitmap_bytes(level)];
        for o in offs {
            p[*o as usize / 8] |= 1 << (o % 8);
        }
        p
    }
}

/// Sets in `bits` the offsets of posting `p` (of a unit of `level`), moved by `at`.
fn or_posting(bits: &mut [u64], at: usize, p: &[u8], level: u32) {
    let mut set = |o: usize| bits[(at + o) / 64] |= 1 << ((at + o) % 64);
    if p.len() == bitmap_bytes(level) && at.is_multiple_of(64) && p.len().is_multiple_of(8) {
        // A bitmap's bytes are its bits in order: a word at a time.
        for (w, chunk) in bits[at / 64..].iter_mut().zip(p.chunks_exact(8)) {
            *w |= u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        }
    } else if p.len() == bitmap_bytes(level) {
        for (i, byte) in p.iter().enumerate() {
            let mut b = *byte;
            while b != 0 {
                set(i * 8 + b.trailing_zeros() as usize);
                b &= b - 1;
            }
        }
    } else {
        for c in p.chunks_exact(2) {
            set(usize::from(u16::from_le_bytes([c[0], c[1]])));
        }
    }
}

/// How many offsets posting `p` (of a unit of `level`) holds; unless `exact`, a bitmap
/// counts as full.
fn posting_len(p: &[u8], level: u32, exact: bool) -> usize {
    if p.len() == bitmap_bytes(level) {
        if exact {
            p.iter().map(|b| b.count_ones() as usize).sum()
        } else {
            unit_size(level) as usize
        }
    } else {
        p.len() / 2
    }
}

/// Whether posting `p` (of a unit of `level`) holds offset `o`.
fn posting_has(p: &[u8], level: u32, o: usize) -> bool {
    if o as u64 >= unit_size(level) {
        false
    } else if p.len() == bitmap_bytes(level) {
        p[o / 8] & (1 << (o % 8)) != 0
    } else {
        let at = |i: usize| usize::from(u16::from_le_bytes([p[2 * i], p[2 * i + 1]]));
        let (mut lo, mut hi) = (0, p.len() / 2);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match at(mid).cmp(&o) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }
}

/// Where a mailbox's postings are. Ids below `w[2]` are in top units, those below `w[1]`
/// in middle units, the rest in small units. A range of ids moves up a level once it is
/// whole (no new id can fall in it): `merging` names the level whose last range,
/// `w[merging]` minus a unit, is still being moved into it, a batch at a time, so a
/// posting of that range is in the unit above or in one of the units below.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Levels {
    w: [u64; TOP as usize + 1],
    merging: u32,
}

impl Levels {
    fn read(t: &impl ReadableTable<u64, &'static [u8]>, coll: CollectionId) -> Result<Levels> {
        Ok(t.get(coll)?
            .map(|v| Levels::decode(v.value()))
            .unwrap_or_default())
    }

    fn decode(v: &[u8]) -> Levels {
        let mut l = Levels::default();
        for (i, w) in l.w.iter_mut().enumerate().skip(1) {
            let at = (i - 1) * 8;
            *w = v
                .get(at..at + 8)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        }
        let m = u32::from(v.get(TOP as usize * 8).copied().unwrap_or(0));
        // A damaged record names no move rather than one out of range.
        if m <= TOP && l.w[m as usize] >= unit_size(m) {
            l.merging = m;
        }
        l
    }

    fn write(&self, tx: &WriteTransaction, coll: CollectionId) -> Result<()> {
        let mut v: Vec<u8> = self.w[1..].iter().flat_map(|w| w.to_le_bytes()).collect();
        v.push(self.merging as u8);
        tx.open_table(TERM_LEVELS)?.insert(coll, v.as_slice())?;
        Ok(())
    }

    /// The level whose unit holds an id's new postings.
    fn owner(&self, id: ItemId) -> u32 {
        (1..=TOP)
            .rev()
            .find(|&l| id < self.w[l as usize])
            .unwrap_or(0)
    }

    /// The unit being filled from the level below, as (level, its first id).
    fn draining(&self) -> Option<(u32, u64)> {
        (self.merging != 0).then(|| {
            (
                self.merging,
                self.w[self.merging as usize] - unit_size(self.merging),
            )
        })
    }

    /// The units of a level that hold part of what `draining` is filling.
    fn sources(&self, level: u32, first: u64) -> Option<std::ops::Range<u64>> {
        let (l, start) = self.draining()?;
        (l == level && start == first).then(|| {
            let b = unit_bits(level - 1);
            start >> b..(start + unit_size(level)) >> b
        })
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
/// thread more than the rest of its write, and a batch posts each (unit, term) once for
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

/// A posting's key: (collection, unit key, term).
type Key = (CollectionId, u32, u32);

/// Adds and takes out offsets of one posting, read and written once.
fn update(
    t: &mut redb::Table<Key, &'static [u8]>,
    key: Key,
    adds: &[u16],
    removes: &[u16],
) -> Result<()> {
    let level = key.1 >> 28;
    let mut offs = t
        .get(key)?
        .map(|v| offsets(v.value(), level))
        .unwrap_or_default();
    offs.retain(|o| !removes.contains(o));
    offs.extend(adds);
    offs.sort_unstable();
    offs.dedup();
    if offs.is_empty() {
        t.remove(key)?;
    } else {
        t.insert(key, posting(&offs, level).as_slice())?;
    }
    Ok(())
}

/// A batch's postings, grouped: for each key, offsets to add and to take out.
#[derive(Default)]
pub(crate) struct Batch {
    postings: BTreeMap<Key, (Vec<u16>, Vec<u16>)>,
    levels: BTreeMap<CollectionId, Levels>,
}

impl Batch {
    pub(crate) fn add(
        &mut self,
        tx: &WriteTransaction,
        coll: CollectionId,
        id: ItemId,
        terms: &[u8],
        add: bool,
    ) -> Result<()> {
        let l = match self.levels.get(&coll) {
            Some(l) => *l,
            None => {
                let l = Levels::read(&tx.open_table(TERM_LEVELS)?, coll)?;
                *self.levels.entry(coll).or_insert(l)
            }
        };
        // A new posting goes to its owner's unit; one to take out may also still be in
        // the unit below, when its range is being moved up.
        let owner = l.owner(id);
        let mut homes = vec![owner];
        if !add
            && let Some((level, start)) = l.draining()
            && (start..start + unit_size(level)).contains(&id)
        {
            homes.push(level - 1);
        }
        if id >= MAX_ID {
            if add {
                let mut t = tx.open_table(UNINDEXED)?;
                t.insert((coll, id), state::UNINDEXABLE)?;
            }
            return Ok(());
        }
        let terms = Terms::decode(terms);
        for level in homes {
            let (unit, off) = (id >> unit_bits(level), id & (unit_size(level) - 1));
            for term in &terms {
                let e = self
                    .postings
                    .entry((coll, unit_key(level, unit), *term))
                    .or_default();
                if add { &mut e.0 } else { &mut e.1 }.push(off as u16);
            }
        }
        Ok(())
    }

    /// Applies the batch, each posting read and written once, then starts moving up any
    /// range the batch made whole.
    pub(crate) fn apply(self, tx: &WriteTransaction) -> Result<()> {
        {
            let mut t = tx.open_table(TERMS)?;
            for (key, (adds, removes)) in self.postings {
                update(&mut t, key, &adds, &removes)?;
            }
        }
        for coll in self.levels.into_keys() {
            advance(tx, coll)?;
        }
        Ok(())
    }
}

/// Starts moving a whole range of a mailbox's postings a level up, when none is moving:
/// the middle units of a top unit's range once they are all below `w[1]`, or the small
/// units of a middle unit's range once a posting lies past it (ids only grow, so no new
/// message falls in it).
pub(crate) fn advance(tx: &WriteTransaction, coll: CollectionId) -> Result<()> {
    let mut l = Levels::read(&tx.open_table(TERM_LEVELS)?, coll)?;
    if l.merging != 0 {
        return Ok(());
    }
    let mut up = (2..=TOP)
        .rev()
        .find(|&level| l.w[level as usize - 1] >= l.w[level as usize] + unit_size(level));
    if up.is_none() {
        let past = (l.w[1] + unit_size(1)) >> L0_BITS;
        let t = tx.open_table(TERMS)?;
        let mut beyond = t.range((coll, unit_key(0, past), 0)..=(coll, UNIT_MASK, u32::MAX))?;
        if past <= u64::from(UNIT_MASK) && beyond.next().transpose()?.is_some() {
            up = Some(1);
        }
    }
    if let Some(level) = up {
        l.w[level as usize] += unit_size(level);
        l.merging = level;
        l.write(tx, coll)?;
    }
    Ok(())
}

/// The mailbox whose postings are being moved up, if any.
pub(crate) fn merging(t: &impl ReadableTable<u64, &'static [u8]>) -> Result<Option<CollectionId>> {
    for e in t.iter()? {
        let (k, v) = e?;
        if Levels::decode(v.value()).merging != 0 {
            return Ok(Some(k.value()));
        }
    }
    Ok(None)
}

/// Moves about `limit` postings of `coll`'s moving range into the unit above; when none is
/// left the move is done and the next one may start. Returns how many it moved, at least
/// 1 when a move was under way (its end is a step too), 0 when none was.
pub(crate) fn merge(tx: &WriteTransaction, coll: CollectionId, limit: usize) -> Result<usize> {
    let mut l = Levels::read(&tx.open_table(TERM_LEVELS)?, coll)?;
    let Some((level, start)) = l.draining() else {
        return Ok(0);
    };
    let units = l
        .sources(level, start)
        .expect("the draining unit has sources");
    let src = level - 1;
    let target = unit_key(level, start >> unit_bits(level));
    let mut t = tx.open_table(TERMS)?;
    // Each source unit's first postings, by term; up to the lowest term where one unit's
    // read stopped, every source's postings of a term are read, and go up together: each
    // posting above is written once per move, not once per unit below.
    let per_unit = (limit >> FAN_BITS).max(1);
    let mut read: Vec<(u32, u32, Vec<u8>)> = Vec::new();
    let mut cut = u32::MAX;
    let mut done = true;
    for unit in units {
        let uk = unit_key(src, unit);
        let before = read.len();
        for e in t
            .range((coll, uk, 0)..=(coll, uk, u32::MAX))?
            .take(per_unit)
        {
            let (k, v) = e?;
            read.push((uk, k.value().2, v.value().to_vec()));
        }
        if read.len() - before == per_unit {
            done = false;
            cut = cut.min(read.last().map_or(u32::MAX, |r| r.1));
        }
    }
    read.retain(|r| r.1 <= cut);
    let mut adds: BTreeMap<u32, Vec<u16>> = BTreeMap::new();
    for (uk, term, p) in &read {
        let at = (u64::from(uk & UNIT_MASK) << unit_bits(src)) - start;
        adds.entry(*term).or_default().extend(
            offsets(p, src)
                .into_iter()
                .map(|o| (at + u64::from(o)) as u16),
        );
        t.remove((coll, *uk, *term))?;
    }
    for (term, offs) in adds {
        update(&mut t, (coll, target, term), &offs, &[])?;
    }
    drop(t);
    if done {
        l.merging = 0;
        l.write(tx, coll)?;
        advance(tx, coll)?;
    }
    Ok(read.len().max(1))
}

/// Whether a batch has anything to post, take out or move up.
pub(crate) fn work(tx: &redb::ReadTransaction) -> Result<bool> {
    if tx.open_table(UNPOST)?.first()?.is_some() || merging(&tx.open_table(TERM_LEVELS)?)?.is_some()
    {
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
    tx.open_table(TERM_LEVELS)?.remove(coll)?;
    tx.open_table(UNINDEXED)?
        .extract_from_if((coll, 0)..=(coll, u64::MAX), |_, _| true)?
        .for_each(drop);
    Ok(())
}

/// Candidates this few are kept as offsets in their unit, and each later term looks them up
/// in its postings instead of reading the postings whole.
const FEW: usize = if cfg!(test) { 4 } else { 64 };

/// A unit's candidates while the needle's terms are read.
enum Found {
    /// A bit per id of the unit, and more than `FEW` of them (a bound: counting stops
    /// there).
    Bits(Vec<u64>, usize),
    /// The offsets of a few, ascending.
    Few(Vec<usize>),
}

impl Found {
    fn of(bits: Vec<u64>) -> Found {
        // Zero words cost nothing, and counting stops once the candidates are not few.
        let mut n = 0;
        for w in bits.iter().filter(|w| **w != 0) {
            n += w.count_ones() as usize;
            if n > FEW {
                return Found::Bits(bits, n);
            }
        }
        Found::Few(ones(&bits).collect())
    }

    /// How many candidates are left, or a bound over `FEW` when they are not few.
    fn len(&self) -> usize {
        match self {
            Found::Bits(_, n) => *n,
            Found::Few(few) => few.len(),
        }
    }
}

/// The offsets of the bits set, ascending.
fn ones(bits: &[u64]) -> impl Iterator<Item = usize> + '_ {
    bits.iter().enumerate().flat_map(|(i, w)| {
        let mut w = *w;
        std::iter::from_fn(move || {
            (w != 0).then(|| {
                let o = i * 64 + w.trailing_zeros() as usize;
                w &= w - 1;
                o
            })
        })
    })
}

/// The items of `coll` that may hold `needle` in `field` (ascending), or `None` when the
/// index cannot narrow the search (a needle under three bytes, or not UTF-8): in each unit,
/// the postings of the needle's terms intersected. The first unit read (the newest) reads
/// every term and ranks them; the others read them rarest first, and leave the common
/// ones unread once two or fewer candidates are left, so a unit may give two messages
/// that do not hold every term. A unit's candidates are a bitmap while many, and once few,
/// each is looked up in the later terms' postings.
pub(crate) fn candidates(
    tx: &redb::ReadTransaction,
    coll: CollectionId,
    field: Field,
    needle: &[u8],
) -> Result<Option<Vec<ItemId>>> {
    let Some(mut wanted) = needle_terms(field, needle) else {
        return Ok(None);
    };
    let l = Levels::read(&tx.open_table(TERM_LEVELS)?, coll)?;
    let terms = tx.open_table(TERMS)?;
    // The units that hold postings: top, middle, then small ones up to the last posted.
    let mut units: Vec<(u32, u64)> = Vec::new();
    for level in (1..=TOP).rev() {
        let from = l.w.get(level as usize + 1).copied().unwrap_or(0);
        let b = unit_bits(level);
        units.extend((from >> b..l.w[level as usize] >> b).map(|u| (level, u)));
    }
    let first = l.w[1] >> L0_BITS;
    if first <= u64::from(UNIT_MASK)
        && let Some(e) = terms
            .range((coll, unit_key(0, first), 0)..=(coll, UNIT_MASK, u32::MAX))?
            .next_back()
    {
        let last = u64::from(e?.0.value().1);
        units.extend((first..=last).map(|u| (0, u)));
    }
    let mut ids = Vec::new();
    // Once ranked: whether each term (rarest first) is common, in at least half as many
    // messages of the ranking unit as the most common term of the needle.
    let mut common: Option<Vec<bool>> = None;
    // Small units first: the first ranks the terms cheaply, so the large ones read the
    // rarest first.
    for (level, unit) in units.into_iter().rev() {
        let start = unit << unit_bits(level);
        let sources = l.sources(level, start);
        let mut found: Option<Found> = None;
        let mut counts = Vec::with_capacity(wanted.len());
        for (i, term) in wanted.iter().enumerate() {
            // The unit that ranks the terms reads them all; the others stop at no
            // candidate left, or at two or fewer when only common terms are left to
            // read: their postings are the largest and would hardly narrow further (the
            // caller checks what is left).
            if let Some(c) = &common
                && let Some(f) = &found
                && (f.len() == 0 || (f.len() <= 2 && c[i]))
            {
                break;
            }
            // The term's postings in this unit: (offset of its first id, level, posting).
            let mut postings = Vec::new();
            if let Some(p) = terms.get((coll, unit_key(level, unit), *term))? {
                postings.push((0, level, p));
            }
            for su in sources.clone().into_iter().flatten() {
                if let Some(p) = terms.get((coll, unit_key(level - 1, su), *term))? {
                    let at = ((su << unit_bits(level - 1)) - start) as usize;
                    postings.push((at, level - 1, p));
                }
            }
            // The ranking unit counts each term's messages; the others need only know
            // whether they are few.
            let exact = common.is_none();
            let size: usize = postings
                .iter()
                .map(|(_, l, p)| posting_len(p.value(), *l, exact))
                .sum();
            if common.is_none() {
                counts.push(size);
            }
            found = Some(match found {
                // Few candidates: each looked up in the postings.
                Some(Found::Few(few)) => Found::Few(
                    few.into_iter()
                        .filter(|o| {
                            postings.iter().any(|(at, l, p)| {
                                o.checked_sub(*at)
                                    .is_some_and(|o| posting_has(p.value(), *l, o))
                            })
                        })
                        .collect(),
                ),
                None if size <= FEW => {
                    let mut few: Vec<usize> = postings
                        .iter()
                        .flat_map(|(at, l, p)| {
                            offsets(p.value(), *l)
                                .into_iter()
                                .map(move |o| at + o as usize)
                        })
                        .collect();
                    few.sort_unstable();
                    few.dedup();
                    Found::Few(few)
                }
                prev => {
                    let mut bits = vec![0u64; (unit_size(level) as usize).div_ceil(64)];
                    for (at, l, p) in &postings {
                        or_posting(&mut bits, *at, p.value(), *l);
                    }
                    if let Some(Found::Bits(prev, _)) = prev {
                        bits.iter_mut().zip(&prev).for_each(|(a, b)| *a &= b);
                    }
                    Found::of(bits)
                }
            });
        }
        if common.is_none() {
            let mut by: Vec<(usize, u32)> = counts.into_iter().zip(wanted).collect();
            by.sort_unstable();
            let most = by.last().map_or(0, |(n, _)| *n);
            common = Some(by.iter().map(|(n, _)| *n * 2 >= most).collect());
            wanted = by.into_iter().map(|(_, t)| t).collect();
        }
        match found {
            None => {}
            Some(Found::Few(few)) => ids.extend(few.into_iter().map(|o| start + o as u64)),
            Some(Found::Bits(bits, _)) => ids.extend(ones(&bits).map(|o| start + o as u64)),
        }
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

/// What the term index can narrow a search to: a needle in a field, or their AND and OR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Narrow {
    Term(Field, Vec<u8>),
    /// Candidates of every part that narrows (a part that cannot is left to the check).
    And(Vec<Narrow>),
    /// Candidates of any part; cannot narrow if one part cannot.
    Or(Vec<Narrow>),
}

impl Narrow {
    /// The items of `coll` that may match (ascending), or `None` when the index cannot
    /// narrow the search.
    pub(crate) fn candidates(
        &self,
        tx: &redb::ReadTransaction,
        coll: CollectionId,
    ) -> Result<Option<Vec<ItemId>>> {
        Ok(match self {
            Narrow::Term(f, needle) => candidates(tx, coll, *f, needle)?,
            Narrow::And(all) => {
                let mut out: Option<Vec<ItemId>> = None;
                for n in all {
                    if let Some(ids) = n.candidates(tx, coll)? {
                        out = Some(match out {
                            None => ids,
                            Some(prev) => intersect(&prev, &ids),
                        });
                    }
                }
                out
            }
            Narrow::Or(any) => {
                let mut out = Vec::new();
                for n in any {
                    match n.candidates(tx, coll)? {
                        Some(ids) => out.extend(ids),
                        None => return Ok(None),
                    }
                }
                out.sort_unstable();
                out.dedup();
                Some(out)
            }
        })
    }
}

/// The ids in both ascending lists.
fn intersect(a: &[ItemId], b: &[ItemId]) -> Vec<ItemId> {
    a.iter()
        .copied()
        .filter(|x| b.binary_search(x).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    #[test]
    fn postings_read_back_as_list_and_as_bitmap() {
        for level in 0..=TOP {
            let size = unit_size(level) as usize;
            let list_max = bitmap_bytes(level).div_ceil(2) - 1;
            for n in [1, list_max, list_max + 1, size / 2, size] {
                let n = n.max(1);
                let offs: Vec<u16> = (0..n).map(|i| (i * size / n) as u16).collect();
                let p = posting(&offs, level);
                assert_eq!(offsets(&p, level), offs, "{n} offsets at level {level}");
                // Moved by a whole word and by part of one (bitmaps OR a word at a time
                // when they can).
                for at in [64, 8] {
                    let mut bits = vec![0u64; (size + at).div_ceil(64)];
                    or_posting(&mut bits, at, &p, level);
                    let set: Vec<usize> = (0..bits.len() * 64)
                        .filter(|i| bits[i / 64] & (1 << (i % 64)) != 0)
                        .collect();
                    let want: Vec<usize> = offs.iter().map(|o| usize::from(*o) + at).collect();
                    assert_eq!(set, want, "{n} offsets at level {level}, at {at}, as bits");
                }
            }
        }
    }

    /// What a step of `the_postings_follow_every_move` does.
    #[derive(Debug, Clone)]
    enum Step {
        /// New messages, listed for the next batch.
        Add(u8),
        /// A posted message goes, taken out by the next batch.
        Remove(u16),
        /// A batch posts what is listed and takes out what went.
        Batch,
        /// A move up, at most so many postings.
        Merge(u8),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (1u8..40).prop_map(Step::Add),
            2 => any::<u16>().prop_map(Step::Remove),
            2 => Just(Step::Batch),
            3 => (1u8..30).prop_map(Step::Merge),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        /// With small units (8, 64 and 512 ids under test), messages come and go while
        /// their ranges move up a level a few postings at a time: every search finds the
        /// posted messages that hold all of its terms (exactly those, for a needle of one
        /// term), whichever unit holds their postings at that moment.
        #[test]
        fn the_postings_follow_every_move(
            steps in proptest::collection::vec(step(), 1..120),
            words in proptest::collection::vec(0u8..12, 2000),
        ) {
            let db = redb::Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .unwrap();
            let tx = db.begin_write().unwrap();
            crate::tables::create_all(&tx).unwrap();
            tx.commit().unwrap();
            let coll = 7;
            let text = |id: u64| {
                let w = |k: u64| words[(id * 3 + k) as usize % words.len()];
                format!("q{:02} q{:02} q{:02}", w(0), w(1), w(2))
            };
            let terms_of = |id: u64| {
                let mut t = Terms::default();
                t.add(1, text(id).as_bytes());
                t.encode()
            };
            let needles: Vec<String> = (0..12)
                .map(|w| format!("q{w:02}"))
                .chain(["q01 q02".into(), "2 q0".into()])
                .collect();
            let (mut next, mut listed, mut going) = (1u64, Vec::new(), Vec::new());
            let mut posted: Vec<u64> = Vec::new();
            for s in steps {
                let tx = db.begin_write().unwrap();
                match s {
                    Step::Add(n) => {
                        listed.extend(next..next + u64::from(n));
                        next += u64::from(n);
                    }
                    Step::Remove(i) if !posted.is_empty() => {
                        going.push(posted.remove(usize::from(i) % posted.len()));
                    }
                    Step::Remove(_) => {}
                    Step::Batch => {
                        let mut b = Batch::default();
                        for id in going.drain(..) {
                            b.add(&tx, coll, id, &terms_of(id), false).unwrap();
                        }
                        for id in listed.drain(..) {
                            b.add(&tx, coll, id, &terms_of(id), true).unwrap();
                            posted.push(id);
                        }
                        b.apply(&tx).unwrap();
                        posted.sort_unstable();
                    }
                    Step::Merge(n) => {
                        merge(&tx, coll, usize::from(n)).unwrap();
                    }
                }
                tx.commit().unwrap();
                // Postings are still there for messages whose removal is not posted.
                let mut held = posted.clone();
                held.extend(&going);
                held.sort_unstable();
                let r = db.begin_read().unwrap();
                for needle in &needles {
                    let want_terms = needle_terms(1, needle.as_bytes()).unwrap();
                    let want: Vec<u64> = held
                        .iter()
                        .copied()
                        .filter(|id| {
                            let t = Terms::decode(&terms_of(*id));
                            want_terms.iter().all(|w| t.contains(w))
                        })
                        .collect();
                    let got = candidates(&r, coll, 1, needle.as_bytes()).unwrap().unwrap();
                    if want_terms.len() == 1 {
                        proptest::prop_assert_eq!(&got, &want, "{:?} after {:?}", needle, s);
                    } else {
                        // A unit may stop reading at one candidate left: a superset of
                        // what matches, within what is posted.
                        proptest::prop_assert!(
                            want.iter().all(|w| got.contains(w))
                                && got.iter().all(|g| held.contains(g)),
                            "{:?} after {:?}: {:?} for {:?}", needle, s, got, want
                        );
                    }
                }
            }
            // Moves run to their end: then nothing is left below a level's mark.
            loop {
                let tx = db.begin_write().unwrap();
                let n = merge(&tx, coll, 50).unwrap();
                tx.commit().unwrap();
                if n == 0 {
                    break;
                }
            }
            let r = db.begin_read().unwrap();
            let l = Levels::read(&r.open_table(TERM_LEVELS).unwrap(), coll).unwrap();
            proptest::prop_assert_eq!(l.merging, 0);
            let t = r.open_table(TERMS).unwrap();
            for e in t.iter().unwrap() {
                let (_, uk, _) = e.unwrap().0.value();
                let (level, unit) = (uk >> 28, u64::from(uk & UNIT_MASK));
                proptest::prop_assert_eq!(l.owner(unit << unit_bits(level)), level);
            }
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
