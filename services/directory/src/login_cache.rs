//! Remembers recent successful logins, so that a client that logs in again and again (a
//! phone polling, a mail client opening five connections) does not cost an argon2id hash
//! each time; Dovecot's auth cache does the same.
//!
//! An entry holds, per user, an HMAC-SHA256 under a key made at start and never stored, over
//! the user's stored PHC string and the password that matched it. A later login is taken
//! from the cache only when the same password is given for the same stored hash, so a
//! password change (a new PHC string, a new salt) invalidates the entry by itself. Failed
//! logins are never cached: every wrong password still costs a full hash, and the brute-force
//! guard still counts it. Whether the user is enabled is read afresh every time.

use ring::hmac;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a successful login is remembered.
const TTL: Duration = Duration::from_secs(3600);
/// Users remembered at once; past it, expired entries go, and if none has, all do.
const MAX_ENTRIES: usize = 10_000;

pub(crate) struct LoginCache {
    key: hmac::Key,
    entries: Mutex<HashMap<String, (hmac::Tag, Instant)>>,
}

impl LoginCache {
    pub(crate) fn new() -> LoginCache {
        let rng = ring::rand::SystemRandom::new();
        LoginCache {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system randomness"),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn message(phc: &str, password: &str) -> Vec<u8> {
        let mut m = Vec::with_capacity(phc.len() + 1 + password.len());
        m.extend_from_slice(phc.as_bytes());
        m.push(0);
        m.extend_from_slice(password.as_bytes());
        m
    }

    /// Whether `password` matched `phc` for `uid` within the last hour.
    pub(crate) fn hit(&self, uid: &str, phc: &str, password: &str) -> bool {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some((tag, at)) = entries.get(uid) else {
            return false;
        };
        at.elapsed() < TTL
            && hmac::verify(&self.key, &Self::message(phc, password), tag.as_ref()).is_ok()
    }

    /// Records that `password` matched `phc` for `uid`.
    pub(crate) fn remember(&self, uid: &str, phc: &str, password: &str) {
        let tag = hmac::sign(&self.key, &Self::message(phc, password));
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(uid) {
            entries.retain(|_, (_, at)| at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(uid.to_string(), (tag, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_password_for_the_same_hash_hits() {
        let c = LoginCache::new();
        assert!(!c.hit("alice", "$argon2id$a", "secret"));
        c.remember("alice", "$argon2id$a", "secret");
        assert!(c.hit("alice", "$argon2id$a", "secret"));
        assert!(!c.hit("alice", "$argon2id$a", "Secret"));
        assert!(
            !c.hit("alice", "$argon2id$b", "secret"),
            "a new hash invalidates"
        );
        assert!(!c.hit("bob", "$argon2id$a", "secret"));
        // The separator keeps hash and password apart.
        assert!(!c.hit("alice", "$argon2id$", "asecret"));
    }

    #[test]
    fn bounded() {
        let c = LoginCache::new();
        for i in 0..MAX_ENTRIES + 5 {
            c.remember(&format!("u{i}"), "h", "p");
        }
        assert!(
            c.entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len()
                <= MAX_ENTRIES
        );
        assert!(c.hit(&format!("u{}", MAX_ENTRIES + 4), "h", "p"));
    }
}
