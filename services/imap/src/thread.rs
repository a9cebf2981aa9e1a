//! SORT and THREAD (RFC 5256) over the messages a search found: base subjects, sort keys
//! and the two threading algorithms, ORDEREDSUBJECT and REFERENCES.

use crate::session::Hit;
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use mail_parser::{Message, MessageParser};
use std::cmp::Ordering;
use std::collections::HashMap;

/// The base subject (RFC 5256 2.1) and whether anything marked it a reply or forward.
pub(crate) fn base_subject(s: &str) -> (String, bool) {
    let mut s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut reply = false;
    loop {
        let before = s.clone();
        // (2) trailing "(fwd)" in any case, and white space.
        loop {
            let t = s.trim_end();
            match t.len().checked_sub(5) {
                Some(at) if t.is_char_boundary(at) && t[at..].eq_ignore_ascii_case("(fwd)") => {
                    s = t[..at].to_string();
                }
                _ => {
                    s = t.to_string();
                    break;
                }
            }
        }
        // (3) leading blobs and "re:", "fw:", "fwd:" (each with optional blobs).
        loop {
            let t = s.trim_start();
            if let Some(rest) = strip_leader(t) {
                reply = true;
                s = rest.to_string();
                continue;
            }
            if let Some(rest) = strip_blob(t)
                && !rest.trim().is_empty()
            {
                s = rest.to_string();
                continue;
            }
            break;
        }
        // (6) "[fwd: ...]", whatever whitespace the steps before left around it.
        s = s.trim().to_string();
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].trim().to_string();
            reply = true;
        }
        if s == before {
            return (s.trim().to_string(), reply);
        }
    }
}

fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    if rest[..end].contains('[') {
        return None;
    }
    Some(rest[end + 1..].trim_start())
}

fn strip_leader(s: &str) -> Option<&str> {
    let lower = s.to_ascii_lowercase();
    let n = ["re", "fwd", "fw"]
        .iter()
        .find(|p| lower.starts_with(*p))?
        .len();
    let mut rest = s[n..].trim_start();
    while let Some(r) = strip_blob(rest) {
        rest = r;
    }
    rest.strip_prefix(':')
}

/// What SORT and THREAD read from a message's header.
struct Info<'a> {
    hit: &'a Hit,
    msg: Option<Message<'a>>,
}

impl Info<'_> {
    fn date(&self) -> i64 {
        self.msg
            .as_ref()
            .and_then(|m| m.date())
            .map_or(self.hit.item.date, |d| d.to_timestamp())
    }
    fn subject(&self) -> (String, bool) {
        base_subject(self.msg.as_ref().and_then(|m| m.subject()).unwrap_or(""))
    }
    /// (display name or address, local part) of the first address of a field.
    fn address(&self, field: &str) -> (String, String) {
        let a = self.msg.as_ref().and_then(|m| match field {
            "from" => m.from(),
            "to" => m.to(),
            _ => m.cc(),
        });
        // The first address as ENVELOPE gives it (RFC 5256 3): a group's first entry is its
        // start marker, whose mailbox is the group's name.
        if let Some(mail_parser::Address::Group(groups)) = a
            && let Some(name) = groups.first().and_then(|g| g.name.as_deref())
        {
            return (name.to_ascii_uppercase(), name.to_ascii_uppercase());
        }
        let Some(a) = a.and_then(|a| a.first()) else {
            return Default::default();
        };
        let addr = a.address().unwrap_or("");
        // Compared with i;ascii-casemap (RFC 5256 2.1, RFC 4790 9.2): ASCII folded to upper
        // case, which orders "_" after letters unlike lower case.
        let mailbox = addr.split('@').next().unwrap_or("").to_ascii_uppercase();
        let display = a.name().filter(|n| !n.is_empty()).unwrap_or(addr);
        (display.to_ascii_uppercase(), mailbox)
    }
}

fn infos(hits: &[Hit]) -> Vec<Info<'_>> {
    hits.iter()
        .map(|hit| Info {
            hit,
            msg: MessageParser::default().parse_headers(&hit.content),
        })
        .collect()
}

/// Indexes into `hits` in SORT order; ties keep the search's (sequence) order.
pub(crate) fn sort(hits: &[Hit], criteria: &[SortCriterion]) -> Vec<usize> {
    let info = infos(hits);
    let mut order: Vec<usize> = (0..hits.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&info[a], &info[b]);
        for c in criteria {
            let o = match c.key {
                SortKey::Arrival => x.hit.item.date.cmp(&y.hit.item.date),
                SortKey::Date => x.date().cmp(&y.date()),
                SortKey::Size => x.hit.item.size().cmp(&y.hit.item.size()),
                SortKey::Subject => x
                    .subject()
                    .0
                    .to_ascii_uppercase()
                    .cmp(&y.subject().0.to_ascii_uppercase()),
                SortKey::From => x.address("from").1.cmp(&y.address("from").1),
                SortKey::To => x.address("to").1.cmp(&y.address("to").1),
                SortKey::Cc => x.address("cc").1.cmp(&y.address("cc").1),
                SortKey::DisplayFrom => x.address("from").0.cmp(&y.address("from").0),
                SortKey::DisplayTo => x.address("to").0.cmp(&y.address("to").0),
            };
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.cmp(&b)
    });
    order
}

/// Threads nest at most this deep (see `build`).
const MAX_DEPTH: usize = 200;

/// A thread: a message (or a placeholder for one that is missing) and its replies.
#[derive(Debug, PartialEq)]
pub(crate) struct Thread {
    pub msg: Option<usize>,
    pub children: Vec<Thread>,
}

/// Threads of `hits` (indexes into it), by REFERENCES or by ORDEREDSUBJECT.
pub(crate) fn thread(hits: &[Hit], references: bool) -> Vec<Thread> {
    let info = infos(hits);
    let date = |i: usize| (info[i].date(), i);
    if !references {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, inf) in info.iter().enumerate() {
            let s = inf.subject().0.to_lowercase();
            match groups.iter_mut().find(|g| g.0 == s) {
                Some(g) => g.1.push(i),
                None => groups.push((s, vec![i])),
            }
        }
        let mut threads: Vec<Thread> = groups
            .into_iter()
            .map(|(_, mut v)| {
                v.sort_by_key(|i| date(*i));
                Thread {
                    msg: Some(v[0]),
                    children: v[1..]
                        .iter()
                        .map(|i| Thread {
                            msg: Some(*i),
                            children: Vec::new(),
                        })
                        .collect(),
                }
            })
            .collect();
        threads.sort_by_key(|t| t.msg.map(date));
        return threads;
    }
    references_threads(&info)
}

/// The REFERENCES algorithm (RFC 5256 3): link messages by Message-ID, References and
/// In-Reply-To, drop placeholders that hold nothing, gather roots by base subject, sort.
fn references_threads(info: &[Info]) -> Vec<Thread> {
    let nodes = linked(info);
    let mut gathered = gather_by_subject(roots(&nodes), info);
    sort_tree(&mut gathered, &|t| earliest(t, info));
    gathered
}

/// A message, or a placeholder for one only referred to, in the tree of references.
struct Node {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

/// The node of a Message-ID, made on first mention.
fn node_for(by_id: &mut HashMap<String, usize>, id: &str, nodes: &mut Vec<Node>) -> usize {
    *by_id.entry(id.to_string()).or_insert_with(|| {
        nodes.push(Node {
            msg: None,
            parent: None,
            children: Vec::new(),
        });
        nodes.len() - 1
    })
}

/// Whether `a` is `of` or above it.
fn ancestor(nodes: &[Node], a: usize, of: usize) -> bool {
    let mut cur = Some(of);
    while let Some(c) = cur {
        if c == a {
            return true;
        }
        cur = nodes[c].parent;
    }
    false
}

/// Makes `child` a child of `parent`, taking it from its former parent.
fn link(nodes: &mut [Node], parent: usize, child: usize) {
    if let Some(old) = nodes[child].parent {
        nodes[old].children.retain(|c| *c != child);
    }
    nodes[child].parent = Some(parent);
    nodes[parent].children.push(child);
}

/// Every message and every Message-ID it refers to as nodes, each linked to its parent
/// (RFC 5256 3, steps 1 and 2).
fn linked(info: &[Info]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for (i, inf) in info.iter().enumerate() {
        let m = inf.msg.as_ref();
        let mut id = m
            .and_then(|m| m.message_id())
            .unwrap_or_default()
            .to_string();
        // A missing or repeated Message-ID: this message gets one of its own.
        if id.is_empty() || by_id.get(&id).is_some_and(|n| nodes[*n].msg.is_some()) {
            id = format!("\0bureau-{i}");
        }
        let me = node_for(&mut by_id, &id, &mut nodes);
        nodes[me].msg = Some(i);
        let mut refs: Vec<String> = m
            .and_then(|m| m.references().as_text_list().map(|l| l.to_vec()))
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.into_owned())
            .collect();
        if refs.is_empty()
            && let Some(r) = m
                .and_then(|m| m.in_reply_to().as_text_list())
                .and_then(|l| l.first())
        {
            refs.push(r.to_string());
        }
        let refs: Vec<usize> = refs
            .iter()
            .map(|r| node_for(&mut by_id, r, &mut nodes))
            .collect();
        for w in refs.windows(2) {
            let (p, c) = (w[0], w[1]);
            if nodes[c].parent.is_none() && !ancestor(&nodes, c, p) {
                link(&mut nodes, p, c);
            }
        }
        match refs.last() {
            Some(&p) if !ancestor(&nodes, me, p) => link(&mut nodes, p, me),
            _ => {
                if let Some(old) = nodes[me].parent.take() {
                    nodes[old].children.retain(|c| *c != me);
                }
            }
        }
    }
    nodes
}

fn build(nodes: &[Node], n: usize, depth: usize) -> Vec<Thread> {
    if depth >= MAX_DEPTH {
        // Deeper than any real conversation: the rest hangs flat from here, so that a
        // crafted chain of replies cannot exhaust the stack.
        let mut flat = Vec::new();
        let mut todo = vec![n];
        while let Some(x) = todo.pop() {
            flat.extend(nodes[x].msg.map(|m| Thread {
                msg: Some(m),
                children: Vec::new(),
            }));
            todo.extend(nodes[x].children.iter().rev());
        }
        return flat;
    }
    let children: Vec<Thread> = nodes[n]
        .children
        .iter()
        .flat_map(|c| build(nodes, *c, depth + 1))
        .collect();
    match nodes[n].msg {
        Some(m) => vec![Thread {
            msg: Some(m),
            children,
        }],
        // A placeholder gives its children to its parent (the root decides below).
        None => children,
    }
}

/// The threads under the roots, placeholders without messages dropped and one with a single
/// child replaced by it (RFC 5256 3, step 4).
fn roots(nodes: &[Node]) -> Vec<Thread> {
    let mut roots: Vec<Thread> = Vec::new();
    for n in (0..nodes.len()).filter(|n| nodes[*n].parent.is_none()) {
        let children: Vec<Thread> = nodes[n]
            .children
            .iter()
            .flat_map(|c| build(nodes, *c, 1))
            .collect();
        match (nodes[n].msg, children.len()) {
            (Some(m), _) => roots.push(Thread {
                msg: Some(m),
                children,
            }),
            (None, 0) => {}
            (None, 1) => roots.extend(children),
            (None, _) => roots.push(Thread {
                msg: None,
                children,
            }),
        }
    }
    roots
}

/// Roots with one base subject gathered (RFC 5256 3, step 5).
fn gather_by_subject(roots: Vec<Thread>, info: &[Info]) -> Vec<Thread> {
    let first = |t: &Thread| t.msg.or_else(|| t.children.first().and_then(|c| c.msg));
    let mut gathered: Vec<Thread> = Vec::new();
    let mut by_subject: HashMap<String, usize> = HashMap::new();
    for t in roots {
        let Some(m) = first(&t) else { continue };
        let (subject, reply) = info[m].subject();
        let subject = subject.to_lowercase();
        let Some(&at) = by_subject.get(&subject).filter(|_| !subject.is_empty()) else {
            by_subject.insert(subject, gathered.len());
            gathered.push(t);
            continue;
        };
        let other = &mut gathered[at];
        let other_reply = other.msg.is_some_and(|o| info[o].subject().1);
        match (other.msg, t.msg) {
            (None, None) => other.children.extend(t.children),
            (None, Some(_)) => other.children.push(t),
            (Some(_), None) => {
                let old = std::mem::replace(other, t);
                other.children.push(old);
            }
            (Some(_), Some(_)) if reply && !other_reply => other.children.push(t),
            (Some(_), Some(_)) => {
                let old = std::mem::replace(
                    other,
                    Thread {
                        msg: None,
                        children: Vec::new(),
                    },
                );
                other.children = vec![old, t];
            }
        }
    }
    gathered
}

fn sort_tree(t: &mut [Thread], key: &dyn Fn(&Thread) -> (i64, usize)) {
    for c in t.iter_mut() {
        sort_tree(&mut c.children, key);
    }
    t.sort_by_key(|c| key(c));
}
fn earliest(t: &Thread, info: &[Info]) -> (i64, usize) {
    match t.msg {
        Some(m) => (info[m].date(), m),
        None => t
            .children
            .iter()
            .map(|c| earliest(c, info))
            .min()
            .unwrap_or((0, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bureau_store::Item;

    fn hit(seq: u32, headers: &str) -> Hit {
        Hit {
            seq,
            item: Item {
                id: u64::from(seq),
                collection: 1,
                modseq: 1,
                name: None,
                blob: None,
                flags: Vec::new(),
                date: i64::from(seq),
                props: Default::default(),
            },
            content: format!("{headers}\r\n\r\nbody\r\n").into_bytes(),
        }
    }

    #[test]
    fn base_subjects() {
        assert_eq!(
            base_subject("Re: [list] Fwd: Hello  world (fwd)"),
            ("Hello world".into(), true)
        );
        assert_eq!(base_subject("[fwd: Plan]"), ("Plan".into(), true));
        // Issue 18: a leader before the [fwd: ...] left it whole.
        assert_eq!(base_subject("Re: [FWD: c]"), ("c".into(), true));
        assert_eq!(base_subject("re: [fwd: re: c] (fwd)"), ("c".into(), true));
        assert_eq!(
            base_subject("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)"),
            ("b".into(), true)
        );
        assert_eq!(base_subject("Plan"), ("Plan".into(), false));
        assert_eq!(base_subject("RE [x]: re: Plan"), ("Plan".into(), true));
        assert_eq!(
            base_subject("[only a blob]"),
            ("[only a blob]".into(), false)
        );
    }

    #[test]
    fn references_threads_and_format() {
        let hits = vec![
            hit(
                1,
                "Message-ID: <a@x>\r\nSubject: Plan\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000",
            ),
            hit(
                2,
                "Message-ID: <b@x>\r\nSubject: Re: Plan\r\nIn-Reply-To: <a@x>\r\nDate: Mon, 2 Nov 2026 11:00:00 +0000",
            ),
            hit(
                3,
                "Message-ID: <c@x>\r\nSubject: Other\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000",
            ),
            hit(
                4,
                "Message-ID: <d@x>\r\nSubject: Re: Plan\r\nReferences: <a@x> <b@x>\r\nDate: Mon, 2 Nov 2026 12:00:00 +0000",
            ),
            hit(
                5,
                "Message-ID: <e@x>\r\nSubject: Re: Plan\r\nReferences: <a@x>\r\nDate: Mon, 2 Nov 2026 13:00:00 +0000",
            ),
            // Its parent is not in the mailbox: the subject gathers it to the Plan thread.
            hit(
                6,
                "Message-ID: <f@x>\r\nSubject: Re: Plan\r\nReferences: <missing@x>\r\nDate: Mon, 2 Nov 2026 14:00:00 +0000",
            ),
        ];
        let written = |references| {
            let mut out = Vec::new();
            let threads = thread(&hits, references);
            let number = |i: usize| hits[i].seq;
            crate::response::Response::Thread {
                threads: &threads,
                number: &number,
            }
            .encode(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(written(true), "* THREAD (3)(1 (2 4)(5)(6))\r\n");
        assert_eq!(written(false), "* THREAD (3)(1 (2)(4)(5)(6))\r\n");
    }

    #[test]
    fn a_long_chain_of_replies_is_bounded() {
        let hits: Vec<Hit> = (1..=3000u32)
            .map(|i| {
                let parent = if i > 1 {
                    format!("\r\nIn-Reply-To: <{}@x>", i - 1)
                } else {
                    String::new()
                };
                hit(i, &format!("Message-ID: <{i}@x>\r\nSubject: chain{parent}"))
            })
            .collect();
        let threads = thread(&hits, true);
        assert_eq!(threads.len(), 1);
        fn depth(t: &Thread) -> usize {
            1 + t.children.iter().map(depth).max().unwrap_or(0)
        }
        fn count(t: &Thread) -> usize {
            1 + t.children.iter().map(count).sum::<usize>()
        }
        assert!(depth(&threads[0]) <= MAX_DEPTH + 1);
        assert_eq!(count(&threads[0]), 3000, "no message lost");
    }

    #[test]
    fn sort_by_subject_then_reverse_date() {
        use imap_codec::imap_types::extensions::sort::SortCriterion;
        let hits = vec![
            hit(1, "Subject: b\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000"),
            hit(2, "Subject: Re: a\r\nDate: Mon, 2 Nov 2026 09:00:00 +0000"),
            hit(3, "Subject: a\r\nDate: Mon, 2 Nov 2026 11:00:00 +0000"),
        ];
        let crit = [
            SortCriterion {
                reverse: false,
                key: SortKey::Subject,
            },
            SortCriterion {
                reverse: true,
                key: SortKey::Date,
            },
        ];
        assert_eq!(sort(&hits, &crit), vec![2, 1, 0]);
    }
}
