//! The one authentication entry point of every protocol, behind one brute-force guard.
//!
//! The guard counts failures per client address and per login, across protocols:
//! - each attempt after a failure waits `base * 2^(failures-1)` (capped), where failures is
//!   the larger of the address's and the login's count; so does the failure's answer;
//! - an address reaching `ip_max_failures` is refused outright for `lockout_secs`, without
//!   a password check; other addresses are not affected;
//! - a login is never locked (that would let anyone lock a colleague out); it only slows down;
//! - failures older than `window_secs` are forgotten; a success clears the login's count.
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

/// Entries kept at most per map; the oldest are dropped beyond.
const MAX_ENTRIES: usize = 100_000;

pub struct Guard {
    cfg: AuthConfig,
    ips: Mutex<HashMap<IpAddr, Count>>,
    logins: Mutex<HashMap<String, Count>>,
}

impl Guard {
    pub fn new(cfg: AuthConfig) -> Guard {
        Guard {
            cfg,
            ips: Mutex::new(HashMap::new()),
            logins: Mutex::new(HashMap::new()),
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.cfg.window_secs)
    }

    fn current<K: std::hash::Hash + Eq>(&self, map: &HashMap<K, Count>, k: &K) -> Count {
        match map.get(k) {
            Some(c) if c.last.is_some_and(|l| l.elapsed() < self.window()) => *c,
            Some(c) if c.locked_until.is_some_and(|u| u > Instant::now()) => *c,
            _ => Count::default(),
        }
    }

    /// Whether the address is locked out now.
    pub fn is_locked(&self, ip: IpAddr) -> bool {
        if self.cfg.trusted.contains(&ip) {
            return false;
        }
        let ips = self.ips.lock().unwrap_or_else(|e| e.into_inner());
        self.current(&ips, &ip)
            .locked_until
            .is_some_and(|u| u > Instant::now())
    }

    /// The delay owed before this attempt is checked.
    pub fn delay(&self, ip: IpAddr, login: &str) -> Duration {
        let ipf = {
            let ips = self.ips.lock().unwrap_or_else(|e| e.into_inner());
            self.current(&ips, &ip).failures
        };
        let lf = {
            let logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
            self.current(&logins, &login.to_string()).failures
        };
        let f = ipf.max(lf);
        if f == 0 {
            return Duration::ZERO;
        }
        let ms = self
            .cfg
            .base_delay_ms
            .saturating_mul(1u64 << (f - 1).min(20))
            .min(self.cfg.max_delay_ms);
        Duration::from_millis(ms)
    }

    pub fn record_failure(&self, ip: IpAddr, login: &str) {
        let now = Instant::now();
        {
            let mut ips = self.ips.lock().unwrap_or_else(|e| e.into_inner());
            let mut c = self.current(&ips, &ip);
            c.failures += 1;
            c.last = Some(now);
            if c.failures >= self.cfg.ip_max_failures && !self.cfg.trusted.contains(&ip) {
                c.locked_until = Some(now + Duration::from_secs(self.cfg.lockout_secs));
                log::warn!(
                    "auth: {ip} locked out for {} s after {} failures",
                    self.cfg.lockout_secs,
                    c.failures
                );
            }
            Self::bound(&mut ips);
            ips.insert(ip, c);
        }
        let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        let key = login.to_string();
        let mut c = self.current(&logins, &key);
        c.failures += 1;
        c.last = Some(now);
        Self::bound(&mut logins);
        logins.insert(key, c);
    }

    pub fn record_success(&self, login: &str) {
        let mut logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        logins.remove(login);
    }

    /// Keeps a map within `MAX_ENTRIES` by dropping the stalest half.
    fn bound<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Count>) {
        if map.len() < MAX_ENTRIES {
            return;
        }
        let now = Instant::now();
        map.retain(|_, c| c.locked_until.is_some_and(|u| u > now));
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
        self.guarded(ip, login, password, protocol, |dir, l, p| {
            Ok(match dir.verify(&l, &p)? {
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
        if self.guard.is_locked(ip) {
            log::info!("auth: {protocol} login {login:?} from {ip} refused: address locked out");
            return Err(AuthError::Refused);
        }
        let delay = self.guard.delay(ip, &login);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
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
                self.guard.record_success(&login);
                log::info!("auth: {protocol} login {who:?} from {ip} ok");
                Ok(v)
            }
            Outcome::Disabled => {
                self.guard.record_failure(ip, &login);
                log::info!("auth: {protocol} login {login:?} from {ip} refused: disabled");
                Err(AuthError::Disabled)
            }
            Outcome::Bad => {
                self.guard.record_failure(ip, &login);
                log::info!("auth: {protocol} login {login:?} from {ip} failed");
                // The failure's answer waits too, so that guessing in parallel gains nothing.
                let delay = self.guard.delay(ip, &login);
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
            ip_max_failures: 4,
            lockout_secs: 60,
            window_secs: 60,
            trusted: vec![],
        }
    }

    #[test]
    fn delays_grow_and_an_address_locks_alone() {
        let g = Guard::new(cfg());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(g.delay(a, "x"), Duration::ZERO);
        let mut last = Duration::ZERO;
        for _ in 0..3 {
            g.record_failure(a, "x");
            let d = g.delay(a, "x");
            assert!(d > last);
            last = d;
            assert!(!g.is_locked(a));
        }
        g.record_failure(a, "x");
        assert!(g.is_locked(a));
        assert!(!g.is_locked(b));
        // The login slows down from any address, but is not locked.
        assert!(g.delay(b, "x") > Duration::ZERO);
        assert_eq!(g.delay(b, "y"), Duration::ZERO);
        g.record_success("x");
        assert_eq!(g.delay(b, "x"), Duration::ZERO);
        g.record_failure(a, "x");
        assert_eq!(g.delay(a, "y"), Duration::from_millis(1000), "capped");
    }

    #[test]
    fn trusted_addresses_are_never_locked() {
        let mut c = cfg();
        let t: IpAddr = "192.0.2.1".parse().unwrap();
        c.trusted = vec![t];
        let g = Guard::new(c);
        for _ in 0..10 {
            g.record_failure(t, "x");
        }
        assert!(!g.is_locked(t));
    }
}
