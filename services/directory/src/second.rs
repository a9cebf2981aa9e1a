//! Two-factor sign-in to the console (TOTP, RFC 6238: the six digits of an authenticator
//! app) and application passwords for clients that can do nothing better.
//!
//! Once a user's two-factor sign-in is on, the account password alone opens nothing:
//! the console asks for the code too, and mail, calendar, contacts, ActiveSync, LDAP and
//! SyncML (basic) clients need an application password. Samba (the NT hash) and SyncML's
//! MD5 sign-in verify digests of the account password kept beside it, so they keep taking
//! the account password (docs/SECURITY.md).
//!
//! Application passwords are made by the box (80 random bits, shown once) and kept as
//! SHA-256 digests: with that much entropy a slow hash adds nothing, and every request of
//! a DAV or ActiveSync client checks them.

use crate::{Directory, DirectoryError, Result, dec, get, put, random};
use bureau_store::Actor;
use bureau_words::said;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

const NS_TOTP: &str = "totp";
const NS_APP: &str = "app-password";
/// Application passwords a user may hold.
const MAX_APP_PASSWORDS: usize = 20;
const STEP: u64 = 30;
/// What an otpauth URI's label and issuer keep unencoded.
const LABEL: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'_');

#[derive(Serialize, Deserialize)]
struct Totp {
    secret: Vec<u8>,
    /// Off until the user typed a first code from the app.
    confirmed: bool,
    /// The last time step a code was accepted for: a code is good once.
    last_step: u64,
}

/// What an authenticator app is given: the secret in base32 and as an `otpauth://` URI
/// (the QR code's content).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TotpEnrolment {
    pub secret: String,
    pub uri: String,
}

/// An application password as listed: never the password itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppPassword {
    pub id: String,
    pub name: String,
    pub created: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredApp {
    info: AppPassword,
    sha256: Vec<u8>,
}

fn totp(secret: &[u8]) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP, secret.to_vec())
}

fn now() -> u64 {
    bureau_store::now().max(0) as u64
}

/// The time step `code` is good for (the current one, or one either side for a clock
/// that drifts), if any.
fn step_of(secret: &[u8], code: &str, at: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret);
    let here = at / STEP;
    [here.saturating_sub(1), here, here + 1]
        .into_iter()
        .find(|s| bool::from(t.generate(s * STEP).as_bytes().ct_eq(code.as_bytes())))
}

/// What is kept of an application password: the digest of its letters, whatever the
/// dashes and case it is typed with.
fn digest(password: &str) -> Vec<u8> {
    let norm: String = password
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .flat_map(char::to_lowercase)
        .collect();
    ring::digest::digest(&ring::digest::SHA256, norm.as_bytes())
        .as_ref()
        .to_vec()
}

/// 16 letters and digits from a 32-symbol alphabet (80 bits), in four groups.
fn make_app_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let bytes = random::<16>();
    let letters: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect();
    letters
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn wrong_code() -> DirectoryError {
    crate::validate::invalid("code", said("err_that_is_not_the_code_the"))
}

impl Directory {
    fn read_totp(&self, uid: &str) -> Result<Option<Totp>> {
        let r = self.store().reader(Actor::System)?;
        r.kv_get(NS_TOTP, uid)?.map(|b| dec(&b)).transpose()
    }

    /// Whether the user signs in to the console with a code too.
    pub fn totp_enabled(&self, uid: &str) -> Result<bool> {
        Ok(self.read_totp(uid)?.is_some_and(|t| t.confirmed))
    }

    /// A new secret for the user's authenticator app, on once a code from it is confirmed.
    /// Refused while two-factor sign-in is on (turn it off first).
    pub async fn totp_begin(&self, uid: &str, issuer: &str) -> Result<TotpEnrolment> {
        let user = self
            .user(uid)?
            .ok_or_else(|| DirectoryError::NotFound(said("err_nf_user").with("uid", uid)))?;
        let secret = random::<20>().to_vec();
        let base32 = totp(&secret).get_secret_base32();
        let label = |s: &str| utf8_percent_encode(s, LABEL).to_string();
        let enrolment = TotpEnrolment {
            uri: format!(
                "otpauth://totp/{}:{}?secret={base32}&issuer={}&algorithm=SHA1&digits=6&period={STEP}",
                label(issuer),
                label(&user.address),
                label(issuer)
            ),
            secret: base32,
        };
        let uid = user.uid.clone();
        self.write(move |w| {
            if get::<Totp>(w, NS_TOTP, &uid)?.is_some_and(|t| t.confirmed) {
                return Err(DirectoryError::InUse(said(
                    "err_two_factor_sign_in_is_already",
                )));
            }
            put(
                w,
                NS_TOTP,
                &uid,
                &Totp {
                    secret: secret.clone(),
                    confirmed: false,
                    last_step: 0,
                },
            )
        })
        .await?;
        Ok(enrolment)
    }

    /// Turns two-factor sign-in on with a first code from the app.
    pub async fn totp_confirm(&self, uid: &str, code: &str) -> Result<()> {
        let uid = uid.to_string();
        let code = code.to_string();
        self.write(move |w| {
            let mut t: Totp = get(w, NS_TOTP, &uid)?.ok_or_else(|| {
                crate::validate::invalid("code", said("err_start_again_no_authenticator_app_is"))
            })?;
            let step = step_of(&t.secret, &code, now()).ok_or_else(wrong_code)?;
            t.confirmed = true;
            t.last_step = step;
            put(w, NS_TOTP, &uid, &t)
        })
        .await
    }

    /// Checks a sign-in's code: right for now, and not used before. A user without
    /// two-factor sign-in has no code to check (false).
    pub async fn totp_check(&self, uid: &str, code: &str) -> Result<bool> {
        let uid = uid.to_string();
        let code = code.to_string();
        self.write(move |w| {
            let Some(mut t) = get::<Totp>(w, NS_TOTP, &uid)?.filter(|t| t.confirmed) else {
                return Ok(false);
            };
            match step_of(&t.secret, &code, now()) {
                Some(step) if step > t.last_step => {
                    t.last_step = step;
                    put(w, NS_TOTP, &uid, &t)?;
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
        .await
    }

    /// Turns two-factor sign-in off (the user, or an administrator for a lost phone).
    pub async fn totp_disable(&self, uid: &str) -> Result<()> {
        let uid = uid.to_string();
        self.write(move |w| {
            w.kv_delete(NS_TOTP, &uid)?;
            Ok(())
        })
        .await
    }

    fn stored_apps(&self, uid: &str) -> Result<Vec<StoredApp>> {
        let r = self.store().reader(Actor::System)?;
        Ok(r.kv_get(NS_APP, uid)?
            .map(|b| dec(&b))
            .transpose()?
            .unwrap_or_default())
    }

    pub fn app_passwords(&self, uid: &str) -> Result<Vec<AppPassword>> {
        Ok(self.stored_apps(uid)?.into_iter().map(|s| s.info).collect())
    }

    /// A new application password named `name`: given once, with its entry.
    pub async fn add_app_password(&self, uid: &str, name: &str) -> Result<(AppPassword, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(crate::validate::invalid(
                "name",
                said("err_name_it_after_the_client_that"),
            ));
        }
        if self.user(uid)?.is_none_or(|u| u.resource.is_some()) {
            return Err(DirectoryError::NotFound(
                said("err_nf_user").with("uid", uid),
            ));
        }
        let password = make_app_password();
        let info = AppPassword {
            id: hex::encode(random::<6>()),
            name: name.to_string(),
            created: bureau_store::now(),
        };
        let stored = StoredApp {
            info: info.clone(),
            sha256: digest(&password),
        };
        let uid = uid.to_string();
        self.write(move |w| {
            let mut all: Vec<StoredApp> = get(w, NS_APP, &uid)?.unwrap_or_default();
            if all.len() >= MAX_APP_PASSWORDS {
                return Err(DirectoryError::InUse(
                    said("err_application_passwords_at_most_revoke_one")
                        .with("max", MAX_APP_PASSWORDS),
                ));
            }
            all.push(StoredApp {
                info: stored.info.clone(),
                sha256: stored.sha256.clone(),
            });
            put(w, NS_APP, &uid, &all)
        })
        .await?;
        Ok((info, password))
    }

    /// Revokes one: the clients using it are refused from their next request.
    pub async fn delete_app_password(&self, uid: &str, id: &str) -> Result<()> {
        let (uid, id) = (uid.to_string(), id.to_string());
        self.write(move |w| {
            let mut all: Vec<StoredApp> = get(w, NS_APP, &uid)?.unwrap_or_default();
            let before = all.len();
            all.retain(|s| s.info.id != id);
            if all.len() == before {
                return Err(DirectoryError::NotFound(
                    said("err_nf_application_password").with("id", &id),
                ));
            }
            put(w, NS_APP, &uid, &all)
        })
        .await
    }

    /// Drops a deleted user's factors.
    pub(crate) fn forget_factors(w: &mut bureau_store::Writer, uid: &str) -> Result<()> {
        w.kv_delete(NS_TOTP, uid)?;
        w.kv_delete(NS_APP, uid)?;
        Ok(())
    }

    /// A client's sign-in (every protocol but the console): an application password, or
    /// the account password unless two-factor sign-in is on. CPU-heavy: call from a
    /// blocking context.
    pub fn verify_client(&self, login: &str, password: &str) -> Result<crate::Verified> {
        use crate::Verified;
        let user = self.user_by_login(login)?;
        if let Some(u) = &user {
            let d = digest(password);
            let hit = self
                .stored_apps(&u.uid)?
                .iter()
                .fold(false, |hit, s| hit | bool::from(s.sha256.ct_eq(&d)));
            if hit {
                return Ok(if u.enabled {
                    Verified::Ok(u.clone())
                } else {
                    Verified::Disabled
                });
            }
        }
        Ok(match self.verify_user(user, password)? {
            Verified::Ok(u) if self.totp_enabled(&u.uid)? => {
                log::info!(
                    "directory: {} gave the account password to a client, but has two-factor sign-in on: an application password is needed",
                    u.uid
                );
                Verified::BadCredentials
            }
            v => v,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_rfc_6238s_sha1_vectors() {
        // RFC 6238, appendix B: the 20-byte ASCII secret, eight digits there; the last six here.
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
        ] {
            assert_eq!(totp(secret).generate(t), code);
            assert_eq!(step_of(secret, code, t), Some(t / STEP));
            // A step either side still passes (a clock that drifts); two away does not.
            assert_eq!(step_of(secret, code, t + STEP), Some(t / STEP));
            assert_eq!(step_of(secret, code, t + 2 * STEP + 1), None);
        }
        assert_eq!(step_of(secret, "28708", 59), None);
        assert_eq!(step_of(secret, "28708x", 59), None);
    }

    #[test]
    fn app_passwords_are_typed_any_way() {
        let p = make_app_password();
        assert_eq!(p.len(), 19);
        assert_eq!(digest(&p), digest(&p.to_uppercase().replace('-', " ")));
        assert_ne!(digest(&p), digest(&make_app_password()));
    }
}
