//! Sign-in: the SyncHdr's Cred, `syncml:auth-basic` or `syncml:auth-md5`, under the shared
//! brute-force guard, and the domain's SyncML rules (IceWarp's): the service on or off for
//! the domain and the user, and the sign-in the domain takes. A device offering the other
//! kind is asked once for the domain's (407 with its Chal), then refused (401).

use crate::itemformat::{DesKey, des_key};
use crate::message::{Header, el, metinf, status};
use crate::{MAX_SESSIONS, SyncMl};
use bureau_core::auth::AuthError;
use bureau_directory::{SyncMlAuth, User};
use bureau_wbxml::Element;
use std::net::IpAddr;

pub const BASIC: &str = "syncml:auth-basic";
pub const MD5: &str = "syncml:auth-md5";

/// A sign-in kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Basic,
    Md5,
}

/// Why a message may not go on: its SyncHdr's Status, and the sign-in to ask for.
pub struct Refused {
    pub code: u16,
    pub ask: Option<Kind>,
}

impl SyncMl {
    /// The user a message's credentials name, or why not.
    /// With a basic sign-in, the user's Funambol DES key (itemformat.rs) too.
    pub(crate) async fn sign_in(
        &self,
        h: &Header,
        ip: IpAddr,
    ) -> Result<(User, Option<DesKey>), Refused> {
        let refuse = |code, ask| Refused {
            code,
            ask: Some(ask),
        };
        let Some(cred) = &h.cred else {
            return Err(refuse(status::MISSING_CREDENTIALS, Kind::Md5));
        };
        let offered = if cred.kind.eq_ignore_ascii_case(MD5) {
            Kind::Md5
        } else if cred.kind.eq_ignore_ascii_case(BASIC) {
            Kind::Basic
        } else {
            return Err(refuse(status::INVALID_CREDENTIALS, Kind::Md5));
        };
        // The user's name: the basic credentials', else the Source's LocName.
        let basic = match offered {
            Kind::Basic => decode_basic(&cred.data),
            Kind::Md5 => None,
        };
        let login = match (offered, &basic) {
            (Kind::Basic, Some((login, _))) => login.clone(),
            (Kind::Md5, _) => h.source_name.clone().unwrap_or_default(),
            (Kind::Basic, None) => String::new(),
        };
        let dir = self.inner.auth.directory();
        let policy = dir
            .user_by_login(&login)
            .ok()
            .flatten()
            .and_then(|u| {
                let domain = u.address.rsplit_once('@')?.1.to_string();
                dir.domain(&domain).ok().flatten()
            })
            .map(|d| d.syncml)
            .unwrap_or_default();
        let wanted = match policy.auth {
            SyncMlAuth::Any => None,
            SyncMlAuth::Basic => Some(Kind::Basic),
            SyncMlAuth::Md5 => Some(Kind::Md5),
        };
        if let Some(w) = wanted
            && w != offered
        {
            // Asked once for the domain's kind; offered the other again, refused.
            let mut asked = self.inner.asked.lock().unwrap_or_else(|e| e.into_inner());
            if asked.remove(&h.source) {
                self.inner.auth.guard().record_failure(ip, &login);
                return Err(refuse(status::INVALID_CREDENTIALS, w));
            }
            if asked.len() >= 4 * MAX_SESSIONS {
                asked.clear();
            }
            asked.insert(h.source.clone());
            return Err(refuse(status::MISSING_CREDENTIALS, w));
        }
        let des = basic.as_ref().map(|(_, password)| des_key(password));
        let done = match (offered, basic) {
            (Kind::Md5, _) => {
                let nonce = self.nonce_of(&h.source);
                self.inner
                    .auth
                    .login_syncml_md5(ip, &login, &cred.data, nonce)
                    .await
            }
            (Kind::Basic, Some((login, password))) => {
                self.inner.auth.login(ip, &login, &password, "syncml").await
            }
            (Kind::Basic, None) => Err(AuthError::BadCredentials),
        };
        let user = match done {
            Ok(u) => u,
            Err(AuthError::Internal(e)) => {
                log::error!("syncml: sign-in: {e}");
                return Err(Refused {
                    code: status::FAILED,
                    ask: None,
                });
            }
            Err(_) => return Err(refuse(status::INVALID_CREDENTIALS, offered)),
        };
        self.inner
            .asked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&h.source);
        if !policy.enabled || !user.syncml {
            log::info!("syncml: {} may not sync over SyncML", user.uid);
            return Err(Refused {
                code: status::FORBIDDEN,
                ask: None,
            });
        }
        Ok((user, des))
    }

    fn nonce_of(&self, device: &str) -> Vec<u8> {
        self.inner
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(device)
            .cloned()
            .unwrap_or_default()
    }

    /// After a sign-in, the challenge for the next one: MD5 with a fresh nonce for a device
    /// that signed in so; none for basic.
    pub(crate) fn next_challenge(&self, h: &Header) -> Option<Element> {
        let md5 = h
            .cred
            .as_ref()
            .is_some_and(|c| c.kind.eq_ignore_ascii_case(MD5));
        md5.then(|| self.challenge(h, Kind::Md5))
    }

    /// A Chal asking for a kind of sign-in; for MD5, with a fresh nonce kept for the device.
    pub(crate) fn challenge(&self, h: &Header, kind: Kind) -> Element {
        let mut meta = el("Meta")
            .with(metinf(
                "Type",
                match kind {
                    Kind::Basic => BASIC,
                    Kind::Md5 => MD5,
                },
            ))
            .with(metinf("Format", "b64"));
        if kind == Kind::Md5 {
            use base64::Engine;
            let nonce: [u8; 16] = rand::random();
            meta = meta.with(metinf(
                "NextNonce",
                base64::engine::general_purpose::STANDARD.encode(nonce),
            ));
            let mut nonces = self.inner.nonces.lock().unwrap_or_else(|e| e.into_inner());
            if nonces.len() >= 4 * MAX_SESSIONS && !nonces.contains_key(&h.source) {
                nonces.clear();
            }
            nonces.insert(h.source.clone(), nonce.to_vec());
        }
        el("Chal").with(meta)
    }
}

/// The login and password of basic credentials (base64 of "login:password").
fn decode_basic(data: &str) -> Option<(String, String)> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())?;
    let (login, password) = decoded.split_once(':')?;
    Some((login.to_string(), password.to_string()))
}
