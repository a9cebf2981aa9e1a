//! SEARCH and ESEARCH (RFC 9051 6.4.4, RFC 4731), SORT and THREAD (RFC 5256).

use crate::response::{Code, Response};
use crate::session::*;
use bureau_store::StoreError;
use imap_codec::imap_types::core::{Charset, Vec1};
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::search::SearchKey;

impl Session {
    /// The search key of SEARCH, SORT and THREAD (all of `keys`), or a NO with BADCHARSET
    /// for a charset other than UTF-8 and US-ASCII.
    pub(crate) fn criteria<'a>(
        &mut self,
        tag: &str,
        charset: Option<&Charset>,
        keys: Vec1<SearchKey<'a>>,
    ) -> Option<SearchKey<'a>> {
        let name = match charset {
            None => "UTF-8",
            Some(Charset::Atom(a)) => a.as_ref(),
            Some(Charset::Quoted(q)) => q.as_ref(),
        };
        if name.eq_ignore_ascii_case("UTF-8") || name.eq_ignore_ascii_case("US-ASCII") {
            Some(SearchKey::And(keys))
        } else {
            let code = Code::BadCharset(&["UTF-8", "US-ASCII"]);
            self.no(tag, code, "charset not supported");
            None
        }
    }

    /// The selected mailbox's messages that match `key`: sequence number, item (as the user
    /// sees it) and, when `with_content`, the message itself.
    pub(crate) fn matching(
        &self,
        key: &SearchKey,
        with_content: bool,
    ) -> Result<Vec<Hit>, StoreError> {
        let State::Selected(_, s) = &self.state else {
            return Ok(Vec::new());
        };
        let reader = self.reader()?;
        let need = with_content || crate::search::needs_content(key);
        let max_uid = s.uids.last().unwrap_or(0);
        // The term index's candidates, when it can narrow the search; else every message.
        let narrowed = match crate::search::narrowing(key) {
            Some(n) => reader.term_candidates(s.coll, &n)?,
            None => None,
        };
        let messages: Box<dyn Iterator<Item = (usize, u32)>> = match narrowed {
            None => Box::new(s.uids.iter().enumerate()),
            Some(ids) => Box::new(ids.into_iter().filter_map(|id| {
                let u = u32::try_from(id).ok()?;
                Some((s.uids.seq(u)? - 1, u))
            })),
        };
        let mut hits = Vec::new();
        for (i, u) in messages {
            let item = match reader.item(s.coll, u64::from(u)) {
                Ok(item) => self.viewed(item, s.private_seen),
                Err(StoreError::NotFound) => continue, // expunged meanwhile; told later
                Err(e) => return Err(e),
            };
            let content = if need {
                reader.content(&item)?
            } else {
                Vec::new()
            };
            let c = crate::search::Candidate {
                seq: i as u32 + 1,
                uid: u,
                item: &item,
                content: &content,
                max_seq: s.uids.len() as u32,
                max_uid,
                recent: s.recent.binary_search(&u).is_ok(),
            };
            if crate::search::matches(key, &c) {
                hits.push(Hit {
                    seq: i as u32 + 1,
                    item,
                    content,
                });
            }
        }
        Ok(hits)
    }

    /// SEARCH, and with `ret` (RETURN options) ESEARCH (RFC 4731); MODSEQ (RFC 7162 3.1.5).
    pub(crate) fn search(
        &mut self,
        tag: &str,
        key: &SearchKey,
        uid: bool,
        ret: Option<Vec<String>>,
    ) {
        if let Some(bad) = ret
            .iter()
            .flatten()
            .find(|o| !["MIN", "MAX", "ALL", "COUNT"].contains(&o.as_str()))
        {
            return self.bad_cmd(tag, &format!("unknown RETURN option {bad}"));
        }
        let hits = match self.matching(key, false) {
            Ok(h) => h,
            Err(e) => return self.store_no(tag, e),
        };
        // IMAP4rev2 answers every SEARCH with ESEARCH, ALL by default (RFC 9051 6.4.4).
        let ret = if self.rev2 {
            Some(ret.unwrap_or_default())
        } else {
            ret
        };
        let modseq = crate::search::uses_modseq(key);
        if modseq {
            self.enable_condstore();
        }
        let nums: Vec<u32> = hits
            .iter()
            .map(|h| if uid { h.item.id as u32 } else { h.seq })
            .collect();
        let highest = hits.iter().map(|h| h.item.modseq).max().filter(|_| modseq);
        match ret {
            None => self.send(Response::Search {
                nums: &nums,
                modseq: highest,
            }),
            Some(opts) => {
                let all = opts.is_empty();
                let want = |o: &str| all && o == "ALL" || opts.iter().any(|x| x == o);
                let found = !nums.is_empty();
                // RFC 7162 3.1.5: with only MIN and/or MAX asked, MODSEQ is the highest of
                // the messages returned, not of every match.
                let only_ends = !all && opts.iter().all(|o| o == "MIN" || o == "MAX");
                let highest = if only_ends {
                    let at = |n: Option<&u32>| {
                        let n = *n?;
                        hits.iter()
                            .find(|h| (if uid { h.item.id as u32 } else { h.seq }) == n)
                            .map(|h| h.item.modseq)
                    };
                    let ends = [
                        want("MIN").then(|| at(nums.iter().min())).flatten(),
                        want("MAX").then(|| at(nums.iter().max())).flatten(),
                    ];
                    ends.into_iter().flatten().max().filter(|_| modseq)
                } else {
                    highest
                };
                self.send(Response::ESearch {
                    tag,
                    uid,
                    min: nums.iter().min().copied().filter(|_| want("MIN")),
                    max: nums.iter().max().copied().filter(|_| want("MAX")),
                    all: Some(&nums[..]).filter(|_| found && want("ALL")),
                    count: want("COUNT").then_some(nums.len()),
                    modseq: highest,
                });
            }
        }
        self.ok(
            tag,
            &format!("{}SEARCH completed", if uid { "UID " } else { "" }),
        );
    }

    /// SORT (RFC 5256).
    pub(crate) fn sort(
        &mut self,
        tag: &str,
        criteria: &[SortCriterion],
        key: &SearchKey,
        uid: bool,
    ) {
        let hits = match self.matching(key, true) {
            Ok(h) => h,
            Err(e) => return self.store_no(tag, e),
        };
        let order = crate::thread::sort(&hits, criteria);
        let nums: Vec<u32> = order
            .into_iter()
            .map(|i| {
                if uid {
                    hits[i].item.id as u32
                } else {
                    hits[i].seq
                }
            })
            .collect();
        self.send(Response::Sort(&nums));
        self.ok(
            tag,
            &format!("{}SORT completed", if uid { "UID " } else { "" }),
        );
    }

    /// THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES.
    pub(crate) fn thread(
        &mut self,
        tag: &str,
        algorithm: &ThreadingAlgorithm,
        key: &SearchKey,
        uid: bool,
    ) {
        let references = match algorithm {
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::Other(_) => {
                return self.bad_cmd(tag, "unknown threading algorithm");
            }
        };
        let hits = match self.matching(key, true) {
            Ok(h) => h,
            Err(e) => return self.store_no(tag, e),
        };
        let number = |i: usize| {
            if uid {
                hits[i].item.id as u32
            } else {
                hits[i].seq
            }
        };
        let threads = crate::thread::thread(&hits, references);
        self.send(Response::Thread {
            threads: &threads,
            number: &number,
        });
        self.ok(
            tag,
            &format!("{}THREAD completed", if uid { "UID " } else { "" }),
        );
    }
}
