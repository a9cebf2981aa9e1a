//! The UIDs of a selected mailbox by message sequence number, kept as runs of consecutive
//! UIDs: a mailbox of 10,000 messages with a few gaps costs a few runs, not 40 KB, in each
//! session that has it selected (and in each IDLE connection holding it open).

/// Ascending UIDs; sequence numbers count from 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UidMap {
    /// (first UID, how many consecutive UIDs), ascending and never adjacent.
    runs: Vec<(u32, u32)>,
    /// How many messages come before each run.
    before: Vec<u32>,
}

impl UidMap {
    pub(crate) fn len(&self) -> usize {
        match (self.runs.last(), self.before.last()) {
            (Some((_, n)), Some(b)) => (b + n) as usize,
            _ => 0,
        }
    }

    pub(crate) fn last(&self) -> Option<u32> {
        self.runs.last().map(|(first, n)| first + n - 1)
    }

    /// The UID of message `seq`.
    pub(crate) fn uid(&self, seq: usize) -> Option<u32> {
        let i = u32::try_from(seq.checked_sub(1)?).ok()?;
        let run = self.before.partition_point(|b| *b <= i).checked_sub(1)?;
        let (first, n) = self.runs[run];
        let off = i - self.before[run];
        (off < n).then_some(first + off)
    }

    /// The sequence number of `uid`, if it is in the map.
    pub(crate) fn seq(&self, uid: u32) -> Option<usize> {
        let run = self
            .runs
            .partition_point(|(f, _)| *f <= uid)
            .checked_sub(1)?;
        let (first, n) = self.runs[run];
        (uid - first < n).then(|| (self.before[run] + uid - first) as usize + 1)
    }

    /// Adds a UID above every UID in the map (a new message); others are ignored.
    pub(crate) fn push(&mut self, uid: u32) {
        match self.runs.last_mut() {
            Some((first, n)) if *first + *n == uid => *n += 1,
            Some((first, n)) if *first + *n > uid => {}
            _ => {
                self.before.push(self.len() as u32);
                self.runs.push((uid, 1));
            }
        }
    }

    /// From runs of consecutive UIDs (first, how many), ascending, as the store keeps them.
    pub(crate) fn from_runs(runs: impl IntoIterator<Item = (u32, u32)>) -> UidMap {
        let mut m = UidMap::default();
        for (first, n) in runs.into_iter().filter(|(_, n)| *n > 0) {
            match m.runs.last_mut() {
                Some((f, k)) if *f + *k == first => *k += n,
                _ => {
                    m.before.push(m.len() as u32);
                    m.runs.push((first, n));
                }
            }
        }
        m
    }

    /// The UIDs above `uid`, ascending, without walking those below.
    pub(crate) fn above(&self, uid: u32) -> impl Iterator<Item = u32> + '_ {
        let from = self.runs.partition_point(|(f, n)| f + n - 1 <= uid);
        self.runs[from..]
            .iter()
            .flat_map(move |(first, n)| (*first).max(uid.saturating_add(1))..*first + *n)
    }

    /// The sequence numbers of the UIDs from `a` to `b`, ascending: the cost of the runs
    /// they fall in, not of the mailbox.
    pub(crate) fn seqs_between(&self, a: u32, b: u32) -> impl Iterator<Item = usize> + '_ {
        let from = self.runs.partition_point(|(f, n)| f + n - 1 < a);
        self.runs[from..]
            .iter()
            .zip(&self.before[from..])
            .take_while(move |((f, _), _)| *f <= b)
            .flat_map(move |(&(f, n), &before)| {
                (f.max(a)..=(f + n - 1).min(b)).map(move |u| (before + u - f) as usize + 1)
            })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.runs.iter().flat_map(|(first, n)| *first..*first + *n)
    }

    /// Takes these UIDs out (those not in the map are ignored), splitting the runs that
    /// hold them: the cost of the runs and the UIDs, not of the mailbox.
    pub(crate) fn remove(&mut self, uids: &[u32]) {
        let mut gone = uids.to_vec();
        gone.sort_unstable();
        gone.dedup();
        let mut out = UidMap::default();
        let mut g = gone.iter().peekable();
        for &(first, n) in &self.runs {
            let mut from = first;
            let end = first + n;
            while g.next_if(|u| **u < first).is_some() {}
            while let Some(&u) = g.next_if(|u| **u < end) {
                out.extend_run(from, u - from);
                from = u + 1;
            }
            out.extend_run(from, end - from);
        }
        *self = out;
    }

    fn extend_run(&mut self, first: u32, n: u32) {
        if n > 0 {
            self.before.push(self.len() as u32);
            self.runs.push((first, n));
        }
    }
}

impl FromIterator<u32> for UidMap {
    fn from_iter<I: IntoIterator<Item = u32>>(uids: I) -> UidMap {
        let mut m = UidMap::default();
        for u in uids {
            m.push(u);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_answer_like_a_list() {
        let list: Vec<u32> = [1, 2, 3, 7, 8, 10, 20, 21, 22, 23].to_vec();
        let mut m: UidMap = list.iter().copied().collect();
        assert_eq!(m.runs.len(), 4);
        assert_eq!(m.len(), list.len());
        assert_eq!(m.last(), Some(23));
        assert_eq!(m.iter().collect::<Vec<_>>(), list);
        for (i, u) in list.iter().enumerate() {
            assert_eq!(m.uid(i + 1), Some(*u));
            assert_eq!(m.seq(*u), Some(i + 1));
        }
        for (a, b) in [
            (0, 0),
            (1, 1),
            (2, 9),
            (4, 6),
            (8, 20),
            (0, u32::MAX),
            (24, 99),
        ] {
            let want: Vec<usize> = list
                .iter()
                .enumerate()
                .filter(|(_, u)| (a..=b).contains(*u))
                .map(|(i, _)| i + 1)
                .collect();
            assert_eq!(m.seqs_between(a, b).collect::<Vec<_>>(), want, "{a}:{b}");
        }
        for absent in [0, 4, 9, 11, 19, 24, u32::MAX] {
            assert_eq!(m.seq(absent), None, "{absent}");
        }
        assert_eq!(m.uid(0), None);
        assert_eq!(m.uid(11), None);

        m.remove(&[21, 8, 99, 0]);
        assert_eq!(m.iter().collect::<Vec<_>>(), [1, 2, 3, 7, 10, 20, 22, 23]);
        assert_eq!(m.runs.len(), 5);
        assert_eq!(m.seq(22), Some(7));
        assert_eq!(m.uid(5), Some(10));

        m.push(24);
        m.push(5); // below the top: not a new message
        assert_eq!(m.len(), 9);
        assert_eq!(m.uid(9), Some(24));
        assert_eq!(m.runs.last(), Some(&(22, 3)));

        let empty = UidMap::default();
        assert_eq!(
            (empty.len(), empty.last(), empty.uid(1), empty.seq(1)),
            (0, None, None, None)
        );
    }

    proptest::proptest! {
        /// Removing UIDs leaves what filtering the list would, with the same sequence
        /// numbers.
        #[test]
        fn removal_is_filtering(
            list in proptest::collection::btree_set(1u32..200, 0..80),
            gone in proptest::collection::vec(0u32..210, 0..40),
        ) {
            let mut m: UidMap = list.iter().copied().collect();
            m.remove(&gone);
            let want: Vec<u32> = list.iter().copied().filter(|u| !gone.contains(u)).collect();
            proptest::prop_assert_eq!(m.iter().collect::<Vec<_>>(), want.clone());
            proptest::prop_assert_eq!(m.len(), want.len());
            for (i, u) in want.iter().enumerate() {
                proptest::prop_assert_eq!(m.seq(*u), Some(i + 1));
            }
        }
    }

    #[test]
    fn runs_from_the_store_and_uids_above() {
        let m = UidMap::from_runs([(1, 3), (4, 2), (10, 1), (12, 0), (20, 3)]);
        assert_eq!(m.runs, [(1, 5), (10, 1), (20, 3)]);
        assert_eq!(m.seq(21), Some(8));
        assert_eq!(m.above(2).collect::<Vec<_>>(), [3, 4, 5, 10, 20, 21, 22]);
        assert_eq!(m.above(10).collect::<Vec<_>>(), [20, 21, 22]);
        assert_eq!(m.above(0).count(), 9);
        assert_eq!(m.above(22).count(), 0);
    }

    #[test]
    fn a_large_contiguous_mailbox_is_one_run() {
        let m: UidMap = (1..=10_000).collect();
        assert_eq!(m.runs.len(), 1);
        assert_eq!(m.uid(10_000), Some(10_000));
    }
}
