//! LIST and LSUB mailbox patterns (RFC 9051 6.3.9): `*` matches anything, `%` anything but
//! the hierarchy delimiter "/". Matching simulates the pattern as a set of positions, so it
//! costs O(pattern × name) whatever the wildcards (a backtracking matcher is exponential in
//! the number of `*`), and it neither recurses nor allocates per character.

/// A pattern ready to match, with runs of wildcards folded (`*%*` is `*`, `%%` is `%`).
pub(crate) struct Pattern(Vec<u8>);

impl Pattern {
    pub(crate) fn new(raw: &[u8]) -> Pattern {
        let mut p: Vec<u8> = Vec::with_capacity(raw.len());
        for &c in raw {
            match (p.last_mut(), c) {
                (Some(last @ (b'*' | b'%')), b'*' | b'%') => {
                    if c == b'*' {
                        *last = b'*';
                    }
                }
                _ => p.push(c),
            }
        }
        Pattern(p)
    }

    /// Whether `name` matches; ASCII case is folded, as for INBOX.
    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        let p = &self.0;
        let mut live = vec![false; p.len() + 1];
        let mut next = vec![false; p.len() + 1];
        live[0] = true;
        close(p, &mut live);
        for &c in name {
            next.iter_mut().for_each(|s| *s = false);
            let mut any = false;
            for (i, &pc) in p.iter().enumerate() {
                if !live[i] {
                    continue;
                }
                let (stay, advance) = match pc {
                    b'*' => (true, false),
                    b'%' => (c != b'/', false),
                    _ => (false, pc.eq_ignore_ascii_case(&c)),
                };
                next[i] |= stay;
                next[i + 1] |= advance;
                any |= stay | advance;
            }
            if !any {
                return false;
            }
            close(p, &mut next);
            std::mem::swap(&mut live, &mut next);
        }
        live[p.len()]
    }
}

/// Adds the positions reached by letting wildcards match nothing.
fn close(p: &[u8], set: &mut [bool]) {
    for i in 0..p.len() {
        if set[i] && matches!(p[i], b'*' | b'%') {
            set[i + 1] = true;
        }
    }
}

/// The backtracking matcher the linear one is checked against (tests only: exponential).
#[cfg(test)]
fn slow(p: &[u8], n: &[u8]) -> bool {
    match p.split_first() {
        None => n.is_empty(),
        Some((b'*', r)) => (0..=n.len()).any(|i| slow(r, &n[i..])),
        Some((b'%', r)) => (0..=n.len())
            .take_while(|i| *i == 0 || n[i - 1] != b'/')
            .any(|i| slow(r, &n[i..])),
        Some((c, r)) => n.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && slow(r, &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::{Pattern, slow};

    fn m(p: &[u8], n: &[u8]) -> bool {
        Pattern::new(p).matches(n)
    }

    #[test]
    fn list_patterns() {
        assert!(m(b"*", b"Archive/2026"));
        assert!(m(b"%", b"INBOX") && !m(b"%", b"Archive/2026"));
        assert!(m(b"Archive/%", b"Archive/2026"));
        assert!(m(b"inbox", b"INBOX"));
        assert!(!m(b"Sent", b"Sent/old"));
        assert!(m(b"", b"") && !m(b"", b"a"));
        assert!(m(b"%/%", b"a/b") && !m(b"%/%", b"a/b/c"));
        assert!(m(b"*/c", b"a/b/c") && m(b"A*%", b"a/b"));
        assert!(m(b"a%b", b"axxb") && !m(b"a%b", b"ax/b"));
    }

    /// Defect 2 and 3 of issue 17: a long run of wildcards overflowed the recursive
    /// matcher's stack, and `*a` repeated made it exponential.
    #[test]
    fn hostile_patterns_are_linear() {
        let stars = b"*%".repeat(20_000);
        assert!(m(&stars, b"anything/at/all"));
        let name = b"a".repeat(40);
        let mut p = b"*a".repeat(30);
        p.extend_from_slice(b"*ab");
        assert!(!m(&p, &name));
        let mut p = b"*a".repeat(30);
        p.push(b'*');
        assert!(m(&p, &name));
    }

    /// Every pattern agrees with a plain backtracking matcher on small inputs.
    #[test]
    fn agrees_with_backtracking() {
        let alphabet = [b'a', b'/', b'*', b'%'];
        let names: Vec<Vec<u8>> = (0..200u32)
            .map(|k| {
                (0..(k % 6))
                    .map(|j| [b'a', b'/', b'b'][((k >> j) % 3) as usize])
                    .collect()
            })
            .collect();
        for k in 0..4u32.pow(5) {
            let len = (k % 6) as usize;
            let p: Vec<u8> = (0..len)
                .map(|j| alphabet[((k >> (2 * j)) & 3) as usize])
                .collect();
            for n in &names {
                assert_eq!(
                    m(&p, n),
                    slow(&p, n),
                    "{:?} {:?}",
                    String::from_utf8_lossy(&p),
                    String::from_utf8_lossy(n)
                );
            }
        }
    }
}

/// Property test: the linear matcher agrees with a backtracking one on random input.
#[cfg(test)]
mod fuzz {
    use super::{Pattern, slow};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn agrees(p in "[ab/*%]{0,8}", n in "[abAB/]{0,10}") {
            prop_assert_eq!(Pattern::new(p.as_bytes()).matches(n.as_bytes()), slow(p.as_bytes(), n.as_bytes()));
        }
    }
}
