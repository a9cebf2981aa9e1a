//! The one authentication entry point of every protocol, behind one brute-force guard.
//!
//! The guard counts failures per account, not per string typed: `alice`, `ALICE`,
//! `alice@example.com`, an alias and `EXAMPLE\alice` (once a protocol strips the domain) or an
//! LDAP DN are all the account `alice`. Unknown logins count under their lower-cased form.
//! It counts per source address and per (source, account) pair too. The policy
//! (docs/SECURITY.md):
//! - each attempt after a failure waits `base * 2^(n-1)` (capped at `max_delay_ms`), where n
//!   is the pair's failures; so does the failure's answer;
//! - a pair reaching `source_max_failures` is refused for `lockout_secs`: the guesser's
//!   address loses that account, the account's owner elsewhere does not, and a colleague's
//!   typos behind the office's NAT lock out nobody else;
//! - an address failing on `source_max_accounts` different accounts (password spraying) is
//!   refused outright for `lockout_secs`, for every account;
//! - an account with `account_slow_after` failures from addresses it never signed in from is
//!   guessed in turn: such attempts are spaced `max_delay_ms` apart whatever their number
//!   and source, so spreading guesses over many addresses gains nothing. Addresses the
//!   account signed in from lately skip that queue, so its owner is not slowed;
//! - failures older than `window_secs` are forgotten; a success clears the pair's count.
//!
//! Passwords are never logged; logins and addresses are.

use crate::config::AuthConfig;
use bureau_directory::service::ServiceAccount;
use bureau_directory::{Directory, DirectoryError, User, Verified};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong login or password (the client is not told which).
    #[error("invalid credentials")]
    BadCredentials,
    #[error("account disabled")]
    Disabled,
    /// Too many failures from this address: refused for a while.
    #[error("too many failed logins from this address; try again later")]
    Refused,
    #[error("authentication unavailable: {0}")]
    Internal(String),
}

#[derive(Default, Clone, Copy)]
struct Count {
    failures: u32,
    last: Option<Instant>,
    locked_until: Option<Instant>,
}

/// An address's failures, and the accounts they were against.
#[derive(Default, Clone)]
struct Source {
    count: Count,
    accounts: Vec<String>,
}

/// An account's failures from all addresses, where it signed in from, and when the next
/// guess from elsewhere may be checked.
#[derive(Default, Clone)]
struct Account {
    count: Count,
    known: Vec<(IpAddr, Instant)>,
    next_slot: Option<Instant>,
}

impl Account {
    /// Whether the account signed in from `ip` lately.
    fn knows(&self, ip: IpAddr) -> bool {
        self.known
            .iter()
            .any(|(k, at)| *k == ip && at.elapsed() < KNOWN_FOR)
    }
}

/// Entries kept at most per map; the oldest are dropped beyond.
const MAX_ENTRIES: usize = 100_000;
/// Addresses remembered per account as its own.
const MAX_KNOWN: usize = 16;
/// How long a sign-in makes an address the account's own.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Default)]
struct Maps {
    pairs: HashMap<(IpAddr, String), Count>,
    sources: HashMap<IpAddr, Source>,
    accounts: HashMap<String, Account>,
}

pub struct Guard {
    cfg: AuthConfig,
    maps: Mutex<Maps>,
}

impl Guard {
    pub fn new(cfg: AuthConfig) -> Guard {
        Guard {
            cfg,
            maps: Mutex::new(Maps::default()),
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.cfg.window_secs)
    }

    /// A count as it stands now: forgotten once its window has passed, unless locked.
    fn current(&self, c: Option<&Count>) -> Count {
        match c {
            Some(c) if c.last.is_some_and(|l| l.elapsed() < self.window()) => *c,
            Some(c) if c.locked_until.is_some_and(|u| u > Instant::now()) => *c,
            _ => Count::default(),
        }
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.cfg.trusted.contains(&ip)
    }

    /// Whether `ip` may not try `account` now (the pair, or the whole address, is locked).
    pub fn is_locked(&self, ip: IpAddr, account: &str) -> bool {
        if self.trusted(ip) {
            return false;
        }
        let m = self.maps();
        let now = Instant::now();
        let locked = |c: Count| c.locked_until.is_some_and(|u| u > now);
        locked(self.current(m.sources.get(&ip).map(|s| &s.count)))
            || locked(self.current(m.pairs.get(&(ip, account.to_string()))))
    }

    /// The delay owed before this attempt is checked: the pair's backoff, and for an address
    /// the account does not know while it is being guessed, its turn in the account's queue.
    pub fn delay(&self, ip: IpAddr, account: &str) -> Duration {
        let mut m = self.maps();
        let pair = self
            .current(m.pairs.get(&(ip, account.to_string())))
            .failures;
        let own = self.backoff(pair);
        let now = Instant::now();
        let slow_after = self.cfg.account_slow_after;
        let spacing = Duration::from_millis(self.cfg.max_delay_ms);
        let Some(a) = m.accounts.get_mut(account) else {
            return own;
        };
        let guessed = self.current(Some(&a.count)).failures >= slow_after;
        if !guessed || a.knows(ip) || self.trusted(ip) {
            return own;
        }
        let slot = a.next_slot.filter(|s| *s > now).unwrap_or(now);
        a.next_slot = Some(slot + spacing);
        own.max(slot - now)
    }

    /// An attempt's turn: refused while `ip` is locked out of `account`, else after the
    /// delay it owes (`is_locked`, then `delay`).
    pub async fn wait_turn(&self, ip: IpAddr, account: &str) -> Result<(), AuthError> {
        if self.is_locked(ip, account) {
            return Err(AuthError::Refused);
        }
        let delay = self.delay(ip, account);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    /// How long a lockout lasts, seconds (for Retry-After).
    pub fn lockout_secs(&self) -> u64 {
        self.cfg.lockout_secs
    }

    fn pair_failures(&self, ip: IpAddr, account: &str) -> u32 {
        self.current(self.maps().pairs.get(&(ip, account.to_string())))
            .failures
    }

    fn backoff(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let ms = self
            .cfg
            .base_delay_ms
            .saturating_mul(1u64 << (failures - 1).min(20))
            .min(self.cfg.max_delay_ms);
        Duration::from_millis(ms)
    }

    pub fn record_failure(&self, ip: IpAddr, account: &str) {
        let now = Instant::now();
        let lock_for = Duration::from_secs(self.cfg.lockout_secs);
        let trusted = self.trusted(ip);
        let mut guard = self.maps();
        let m = &mut *guard;
        Self::bound(&mut m.pairs, |c| c.locked_until);
        Self::bound(&mut m.sources, |s| s.count.locked_until);
        Self::bound(&mut m.accounts, |a| a.count.locked_until.or(a.next_slot));

        let key = (ip, account.to_string());
        let mut pair = self.current(m.pairs.get(&key));
        pair.failures += 1;
        pair.last = Some(now);
        if pair.failures >= self.cfg.source_max_failures && !trusted && pair.locked_until.is_none()
        {
            pair.locked_until = Some(now + lock_for);
            log::warn!(
                "auth: {ip} locked out of {account:?} for {} s after {} failures",
                self.cfg.lockout_secs,
                pair.failures
            );
        }
        m.pairs.insert(key, pair);

        let src = m.sources.entry(ip).or_default();
        src.count = self.current(Some(&src.count));
        if src.count.failures == 0 {
            src.accounts.clear();
        }
        src.count.failures += 1;
        src.count.last = Some(now);
        if !src.accounts.iter().any(|a| a == account) {
            src.accounts.push(account.to_string());
        }
        if src.accounts.len() >= self.cfg.source_max_accounts as usize
            && !trusted
            && src.count.locked_until.is_none()
        {
            src.count.locked_until = Some(now + lock_for);
            log::warn!(
                "auth: {ip} locked out for {} s after failures on {} accounts",
                self.cfg.lockout_secs,
                src.accounts.len()
            );
        }

        let acc = m.accounts.entry(account.to_string()).or_default();
        if !acc.knows(ip) {
            acc.count = self.current(Some(&acc.count));
            acc.count.failures += 1;
            acc.count.last = Some(now);
        }
    }

    /// A sign-in: the pair's count is cleared and the address becomes the account's own.
    pub fn record_success(&self, ip: IpAddr, account: &str) {
        let mut m = self.maps();
        m.pairs.remove(&(ip, account.to_string()));
        let acc = m.accounts.entry(account.to_string()).or_default();
        acc.known
            .retain(|(k, at)| *k != ip && at.elapsed() < KNOWN_FOR);
        if acc.known.len() >= MAX_KNOWN {
            acc.known.remove(0);
        }
        acc.known.push((ip, Instant::now()));
    }

    /// Keeps a map within `MAX_ENTRIES`: past it, only what is still locked stays.
    fn bound<K: std::hash::Hash + Eq, V>(
        map: &mut HashMap<K, V>,
        until: impl Fn(&V) -> Option<Instant>,
    ) {
        if map.len() < MAX_ENTRIES {
            return;
        }
        let now = Instant::now();
        map.retain(|_, v| until(v).is_some_and(|u| u > now));
        if map.len() >= MAX_ENTRIES / 2 {
            map.clear();
        }
    }
}

/// How a protocol authenticates a user: `Auth::login`.
/// Login and password of an `Authorization: Basic ...` header's value.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, b64) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (l, p) = text.split_once(':')?;
    Some((l.to_string(), p.to_string()))
}

#[derive(Clone)]
pub struct Auth {
    directory: Directory,
    guard: Arc<Guard>,
}

impl Auth {
    pub fn new(directory: Directory, cfg: AuthConfig) -> Auth {
        Auth {
            directory,
            guard: Arc::new(Guard::new(cfg)),
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Checks `login`/`password` for a client at `ip`, speaking `protocol`.
    pub async fn login(
        &self,
        ip: IpAddr,
        login: &str,
        password: &str,
        protocol: &str,
    ) -> Result<User, AuthError> {
        // The console and a password change take the account password only; clients
        // take an application password too, and the account password only while the
        // user's two-factor sign-in is off.
        let client = !matches!(protocol, "console" | "password-change");
        self.guarded(ip, login, password, protocol, move |dir, l, p| {
            let verified = if client {
                dir.verify_client(&l, &p)?
            } else {
                dir.verify(&l, &p)?
            };
            Ok(match verified {
                Verified::Ok(u) => Outcome::Ok(u.uid.clone(), u),
                Verified::Disabled => Outcome::Disabled,
                Verified::BadCredentials => Outcome::Bad,
            })
        })
        .await
    }

    /// A SyncML MD5 sign-in (`syncml:auth-md5`): the device's response for the nonce it was
    /// given, under the same guard as a password.
    pub async fn login_syncml_md5(
        &self,
        ip: IpAddr,
        login: &str,
        response: &str,
        nonce: Vec<u8>,
    ) -> Result<User, AuthError> {
        self.guarded(ip, login, response, "syncml", move |dir, l, r| {
            Ok(match dir.verify_syncml_md5(&l, &r, &nonce)? {
                Verified::Ok(u) => Outcome::Ok(u.uid.clone(), u),
                Verified::Disabled => Outcome::Disabled,
                Verified::BadCredentials => Outcome::Bad,
            })
        })
        .await
    }

    /// A service account's bind (LDAP), under the same guard as people's logins.
    pub async fn login_service(
        &self,
        ip: IpAddr,
        name: &str,
        password: &str,
        protocol: &str,
    ) -> Result<ServiceAccount, AuthError> {
        self.guarded(ip, name, password, protocol, |dir, l, p| {
            Ok(match dir.verify_service_account(&l, &p)? {
                Some(a) => Outcome::Ok(format!("service {}", a.name), a),
                None => Outcome::Bad,
            })
        })
        .await
    }

    /// The account a login names, for counting: a user's uid whatever form was typed, a
    /// service account's name, else the login itself.
    fn account_of(&self, login: &str) -> String {
        match self.directory.user_by_login(login) {
            Ok(Some(u)) => u.uid,
            _ => login.to_string(),
        }
    }

    /// The brute-force guard around a password check (`check` runs on a blocking thread).
    async fn guarded<T: Send + 'static>(
        &self,
        ip: IpAddr,
        login: &str,
        password: &str,
        protocol: &str,
        check: impl FnOnce(Directory, String, String) -> Result<Outcome<T>, DirectoryError>
        + Send
        + 'static,
    ) -> Result<T, AuthError> {
        let login = login.trim().to_lowercase();
        if login.is_empty() || login.len() > 320 || password.len() > 1024 {
            self.guard.record_failure(ip, &login);
            return Err(AuthError::BadCredentials);
        }
        let account = self.account_of(&login);
        if let Err(e) = self.guard.wait_turn(ip, &account).await {
            log::info!("auth: {protocol} login {login:?} from {ip} refused: address locked out");
            return Err(e);
        }
        let dir = self.directory.clone();
        let (l, p) = (login.clone(), password.to_string());
        let verified = tokio::task::spawn_blocking(move || check(dir, l, p))
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?
            .map_err(|e| {
                log::error!("auth: directory failure checking {login:?}: {e}");
                AuthError::Internal(e.to_string())
            })?;
        match verified {
            Outcome::Ok(who, v) => {
                self.guard.record_success(ip, &account);
                // HTTP protocols sign in on every request (DAV, ActiveSync): one line each
                // would bury the log (issue 19), so theirs are debug; sessions' are info.
                if matches!(protocol, "dav" | "activesync") {
                    log::debug!("auth: {protocol} login {who:?} from {ip} ok");
                } else {
                    log::info!("auth: {protocol} login {who:?} from {ip} ok");
                }
                Ok(v)
            }
            Outcome::Disabled => {
                self.guard.record_failure(ip, &account);
                log::info!("auth: {protocol} login {login:?} from {ip} refused: disabled");
                Err(AuthError::Disabled)
            }
            Outcome::Bad => {
                self.guard.record_failure(ip, &account);
                log::info!("auth: {protocol} login {login:?} from {ip} failed");
                // The failure's answer waits too, so that guessing in parallel gains nothing.
                let delay = self.guard.backoff(self.guard.pair_failures(ip, &account));
                tokio::time::sleep(delay).await;
                Err(AuthError::BadCredentials)
            }
        }
    }
}

/// What a password check found: the identity (and its name for the log), or why not.
enum Outcome<T> {
    Ok(String, T),
    Disabled,
    Bad,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AuthConfig {
        AuthConfig {
            base_delay_ms: 100,
            max_delay_ms: 1000,
            source_max_failures: 4,
            source_max_accounts: 3,
            account_slow_after: 5,
            lockout_secs: 60,
            window_secs: 60,
            trusted: vec![],
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn delays_grow_and_a_pair_locks_alone() {
        let g = Guard::new(cfg());
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert_eq!(g.delay(a, "x"), Duration::ZERO);
        let mut last = Duration::ZERO;
        for _ in 0..3 {
            g.record_failure(a, "x");
            let d = g.delay(a, "x");
            assert!(d > last);
            last = d;
            assert!(!g.is_locked(a, "x"));
        }
        g.record_failure(a, "x");
        assert!(g.is_locked(a, "x"));
        // The owner elsewhere, and the address's other accounts, go on.
        assert!(!g.is_locked(b, "x"));
        assert!(!g.is_locked(a, "y"));
        assert_eq!(g.delay(a, "y"), Duration::ZERO);
        assert_eq!(g.delay(b, "x"), Duration::ZERO);
        g.record_success(a, "x");
        assert_eq!(g.delay(a, "x"), Duration::ZERO);
    }

    /// Issue 17, defect 7: one colleague's typos behind the office's NAT locked every
    /// account of that address out.
    #[test]
    fn a_colleague_behind_the_same_address_is_not_locked_out() {
        let g = Guard::new(cfg());
        let office = ip("192.0.2.10");
        for _ in 0..10 {
            g.record_failure(office, "typist");
        }
        assert!(g.is_locked(office, "typist"));
        assert!(!g.is_locked(office, "colleague"));
    }

    #[test]
    fn spraying_many_accounts_locks_the_address() {
        let g = Guard::new(cfg());
        let a = ip("10.0.0.9");
        g.record_failure(a, "u1");
        g.record_failure(a, "u2");
        assert!(!g.is_locked(a, "u4"));
        g.record_failure(a, "u3");
        assert!(g.is_locked(a, "u4"));
        assert!(!g.is_locked(ip("10.0.0.8"), "u4"));
    }

    /// Guesses from many addresses against one account are taken in turn, while the
    /// owner's own address is not slowed.
    #[test]
    fn distributed_guessing_is_spaced_and_the_owner_is_not() {
        let g = Guard::new(cfg());
        let home = ip("192.0.2.1");
        g.record_success(home, "boss");
        for i in 0..5 {
            g.record_failure(ip(&format!("198.51.100.{i}")), "boss");
        }
        let fresh: Vec<Duration> = (10..14)
            .map(|i| g.delay(ip(&format!("198.51.100.{i}")), "boss"))
            .collect();
        assert_eq!(fresh[0], Duration::ZERO);
        assert!(fresh[1] >= Duration::from_millis(900), "{fresh:?}");
        assert!(fresh[3] >= Duration::from_millis(2900), "{fresh:?}");
        assert_eq!(g.delay(home, "boss"), Duration::ZERO);
    }

    #[test]
    fn trusted_addresses_are_never_locked() {
        let mut c = cfg();
        let t = ip("192.0.2.1");
        c.trusted = vec![t];
        let g = Guard::new(c);
        for i in 0..10 {
            g.record_failure(t, &format!("x{}", i % 4));
        }
        assert!(!g.is_locked(t, "x0"));
    }
}
