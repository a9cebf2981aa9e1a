//! Certificates from an ACME certificate authority (RFC 8555; Let's Encrypt unless another
//! directory is given) for the box's name: HTTP-01 challenges answered by the port-80
//! listener (`Acme::challenge`), the certificate and key installed in the certificate store
//! and served on every TLS port at once, and renewed by themselves: checked at start and
//! twice a day, renewed 30 days before the end, or when the box's name is not on it.
//!
//! The settings, the ACME account's credentials (its private key) and the last outcome are
//! kept in `<data_dir>/tls/acme.json`, mode 0600. `tls.acme_ca_file` names a root for the
//! ACME server's own HTTPS (a private CA, or a test server such as pebble); without it the
//! system's roots are used.

use crate::tls::{CertInfo, CertStore};
use instant_acme::{
    Account, AccountCredentials, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// A certificate is renewed this long before it ends.
const RENEW_BEFORE: i64 = 30 * 86_400;
/// How often renewal is considered.
const CHECK_EVERY: Duration = Duration::from_secs(12 * 3600);

/// What the administrator chose.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeSettings {
    pub enabled: bool,
    /// The account's contact address (the CA writes before certificates end).
    pub email: String,
    /// The CA's ACME directory URL; empty: Let's Encrypt.
    #[serde(default)]
    pub directory: String,
}

impl AcmeSettings {
    fn directory_url(&self) -> &str {
        if self.directory.trim().is_empty() {
            LETS_ENCRYPT
        } else {
            self.directory.trim()
        }
    }
}

/// The settings and what happened last, as the console shows them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AcmeStatus {
    pub settings: AcmeSettings,
    /// When a certificate was last obtained (Unix seconds), if ever.
    pub last_issued: Option<i64>,
    /// The last attempt's failure, in words; None after a success.
    /// Why the last attempt failed, in the catalogues' words.
    #[serde(default, deserialize_with = "bureau_words::said_or_text")]
    pub last_error: Option<bureau_words::Said>,
    pub last_attempt: Option<i64>,
}

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    #[serde(flatten)]
    status: AcmeStatus,
    /// The account (instant-acme's credentials, with its private key), by the directory
    /// it is on.
    account: Option<(String, serde_json::Value)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("{field}: {why}")]
    Field {
        field: &'static str,
        why: bureau_words::Said,
    },
    #[error("the certificate authority refused: {0}")]
    Refused(String),
    #[error("the certificate authority could not be reached: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Local(String),
}

impl AcmeError {
    /// In the catalogues' words (the authority's own reason kept as it is).
    pub fn said(&self) -> bureau_words::Said {
        use bureau_words::said;
        match self {
            AcmeError::Field { why, .. } => why.clone(),
            AcmeError::Refused(why) => said("err_acme_refused").with("why", why),
            AcmeError::Unreachable(why) => said("err_acme_unreachable").with("why", why),
            AcmeError::Local(why) => said("err_plain").with("error", why),
        }
    }
}

impl From<instant_acme::Error> for AcmeError {
    fn from(e: instant_acme::Error) -> Self {
        match e {
            instant_acme::Error::Api(p) => AcmeError::Refused(
                p.detail
                    .or(p.r#type)
                    .unwrap_or_else(|| "no reason given".into()),
            ),
            other => AcmeError::Unreachable(other.to_string()),
        }
    }
}

pub struct Acme {
    file: PathBuf,
    ca_file: Option<PathBuf>,
    hostname: String,
    certs: Arc<CertStore>,
    /// HTTP-01 tokens and their key authorizations, while an order is open.
    challenges: Mutex<HashMap<String, String>>,
    /// One order at a time.
    busy: tokio::sync::Mutex<()>,
}

/// Whether the served certificate needs an ACME one: not from ACME, the box's name not on
/// it, or ending within `RENEW_BEFORE`.
pub fn due(info: &CertInfo, hostname: &str, now: i64) -> bool {
    info.source != "acme"
        || !info.names.iter().any(|n| n.eq_ignore_ascii_case(hostname))
        || info.not_after - now < RENEW_BEFORE
}

impl Acme {
    pub fn new(certs: Arc<CertStore>, hostname: &str, ca_file: Option<PathBuf>) -> Arc<Acme> {
        Arc::new(Acme {
            file: certs.dir().join("acme.json"),
            ca_file,
            hostname: hostname.to_string(),
            certs,
            challenges: Mutex::new(HashMap::new()),
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// The key authorization for an HTTP-01 token being validated.
    pub fn challenge(&self, token: &str) -> Option<String> {
        self.challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    fn load(&self) -> Saved {
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, s: &Saved) -> Result<(), AcmeError> {
        let bytes = serde_json::to_vec(s).map_err(|e| AcmeError::Local(e.to_string()))?;
        crate::files::write_secret(&self.file, &bytes, 0o600)
            .map_err(|e| AcmeError::Local(format!("{}: {e}", self.file.display())))
    }

    pub fn status(&self) -> AcmeStatus {
        self.load().status
    }

    /// Saves the settings; when enabled, obtains a certificate now. The settings stay
    /// saved when that fails (the status says why, and renewal tries again).
    pub async fn configure(&self, settings: AcmeSettings) -> Result<AcmeStatus, AcmeError> {
        if settings.enabled && !valid_email(&settings.email) {
            return Err(AcmeError::Field {
                field: "email",
                why: bureau_words::said("err_acme_email"),
            });
        }
        let url = settings.directory_url();
        if !url.starts_with("https://") {
            return Err(AcmeError::Field {
                field: "directory",
                why: bureau_words::said("err_acme_https"),
            });
        }
        let mut saved = self.load();
        saved.status.settings = settings.clone();
        self.save(&saved)?;
        if settings.enabled {
            self.issue().await?;
        }
        Ok(self.status())
    }

    /// Obtains a certificate for the box's name and serves it; the outcome is kept.
    pub async fn issue(&self) -> Result<CertInfo, AcmeError> {
        let _one = self.busy.lock().await;
        let mut saved = self.load();
        if !saved.status.settings.enabled {
            return Err(AcmeError::Local(
                "certificates from a certificate authority are not switched on".into(),
            ));
        }
        let outcome = self.order(&mut saved).await;
        self.challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let now = bureau_store::now();
        saved.status.last_attempt = Some(now);
        match &outcome {
            Ok(_) => {
                saved.status.last_issued = Some(now);
                saved.status.last_error = None;
                log::info!("acme: a certificate for {} is served", self.hostname);
            }
            Err(e) => {
                saved.status.last_error = Some(e.said());
                log::warn!("acme: no certificate for {}: {e}", self.hostname);
            }
        }
        self.save(&saved)?;
        outcome
    }

    async fn order(&self, saved: &mut Saved) -> Result<CertInfo, AcmeError> {
        let settings = saved.status.settings.clone();
        let url = settings.directory_url().to_string();
        let builder = || match &self.ca_file {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        };
        let known = saved.account.as_ref().filter(|(on, _)| *on == url);
        let account = match known
            .and_then(|(_, v)| serde_json::from_value::<AccountCredentials>(v.clone()).ok())
        {
            Some(creds) => builder()?.from_credentials(creds).await?,
            None => {
                let contact = format!("mailto:{}", settings.email.trim());
                let (account, creds) = builder()?
                    .create(
                        &NewAccount {
                            contact: &[&contact],
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        url.clone(),
                        None,
                    )
                    .await?;
                let creds =
                    serde_json::to_value(&creds).map_err(|e| AcmeError::Local(e.to_string()))?;
                saved.account = Some((url.clone(), creds));
                self.save(saved)?;
                account
            }
        };
        let ids = [Identifier::Dns(self.hostname.clone())];
        let mut order = account.new_order(&NewOrder::new(&ids)).await?;
        let mut authz = order.authorizations();
        while let Some(a) = authz.next().await {
            let mut a = a?;
            if a.status == instant_acme::AuthorizationStatus::Valid {
                continue;
            }
            let mut ch = a.challenge(ChallengeType::Http01).ok_or_else(|| {
                AcmeError::Refused("it offers no HTTP-01 challenge for the box's name".into())
            })?;
            self.challenges
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    ch.token.clone(),
                    ch.key_authorization().as_str().to_string(),
                );
            ch.set_ready().await?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(90));
        match order.poll_ready(&retries).await? {
            OrderStatus::Ready => {}
            status => {
                return Err(AcmeError::Refused(format!(
                    "the box's name was not validated ({status:?}): is {} on port 80 reachable \
                     from the Internet under that name?",
                    self.hostname
                )));
            }
        }
        let key = order.finalize().await?;
        let chain = order.poll_certificate(&retries).await?;
        self.certs
            .install_from(chain.as_bytes(), key.as_bytes(), "acme")
            .map_err(|e| AcmeError::Local(e.to_string()))
    }

    /// Renews when due, at start and every `CHECK_EVERY`, while switched on.
    pub fn renew_in_background(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_EVERY);
            loop {
                tick.tick().await;
                if me.load().status.settings.enabled
                    && due(&me.certs.info(), &me.hostname, bureau_store::now())
                {
                    let _ = me.issue().await;
                }
            }
        });
    }
}

fn valid_email(e: &str) -> bool {
    let e = e.trim();
    e.len() <= 254
        && e.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !e.contains(char::is_whitespace)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_due_when_not_acmes_not_for_the_name_or_ending() {
        let now = 1_800_000_000;
        let info = |source: &str, name: &str, days: i64| CertInfo {
            source: source.into(),
            names: vec![name.into()],
            not_after: now + days * 86_400,
            ..Default::default()
        };
        assert!(!due(
            &info("acme", "box.example.com", 60),
            "box.example.com",
            now
        ));
        assert!(due(
            &info("acme", "box.example.com", 29),
            "box.example.com",
            now
        ));
        assert!(due(
            &info("acme", "old.example.com", 60),
            "box.example.com",
            now
        ));
        assert!(due(
            &info("self-signed", "box.example.com", 300),
            "box.example.com",
            now
        ));
        assert!(valid_email("it@example.com") && !valid_email("it") && !valid_email("a b@c.d"));
    }
}
