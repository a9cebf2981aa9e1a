//! TLS for every listener: one certificate store, reloaded without a restart.
//!
//! Which certificate is served, first found wins:
//! 1. the files named by `tls.cert` / `tls.key` in the configuration;
//! 2. `<data_dir>/tls/custom.crt` and `custom.key` (what the console uploads);
//! 3. `<data_dir>/tls/self-signed.crt` and `.key`, made for the hostname on first start.
//!
//! `refresh` re-reads them when a file changed; `watch` calls it every few seconds. A broken
//! replacement is logged and the certificate in use stays.

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("making a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS setup: {0}")]
    Setup(String),
    /// An uploaded certificate or key refused: the field to fix, and why.
    #[error("{field}: {why}")]
    Refused {
        field: &'static str,
        why: bureau_words::Said,
    },
}

fn file_err(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

type Stamp = (PathBuf, Option<SystemTime>, Option<SystemTime>);

/// Who installed `custom.crt` ("uploaded", "acme").
const SOURCE: &str = "custom.source";

/// The certificate served, as the console shows it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CertInfo {
    /// "configured" (files named in the configuration), "uploaded" or "self-signed".
    pub source: String,
    pub subject: String,
    pub issuer: String,
    /// Its DNS names.
    pub names: Vec<String>,
    /// Validity, seconds since the epoch.
    pub not_before: i64,
    pub not_after: i64,
}

#[derive(Debug)]
pub struct CertStore {
    configured: Option<(PathBuf, PathBuf)>,
    dir: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    stamp: Mutex<Stamp>,
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl CertStore {
    /// Loads the certificate to serve, making the self-signed one if there is none.
    pub fn open(
        configured: Option<(PathBuf, PathBuf)>,
        data_dir: &Path,
        hostname: &str,
    ) -> Result<Arc<CertStore>, TlsError> {
        let dir = data_dir.join("tls");
        std::fs::create_dir_all(&dir).map_err(|e| file_err(&dir, e))?;
        let (crt, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
        if !crt.exists() || !key.exists() {
            make_self_signed(hostname, &crt, &key)?;
            log::info!("tls: made a self-signed certificate for {hostname}");
        }
        let provider = provider();
        let (crt, key) = Self::choose(&configured, &dir);
        let ck = load(&crt, &key, &provider)?;
        Ok(Arc::new(CertStore {
            stamp: Mutex::new((crt.clone(), mtime(&crt), mtime(&key))),
            configured,
            dir,
            provider,
            current: ArcSwap::from_pointee(ck),
        }))
    }

    fn choose(configured: &Option<(PathBuf, PathBuf)>, dir: &Path) -> (PathBuf, PathBuf) {
        if let Some((c, k)) = configured {
            return (c.clone(), k.clone());
        }
        let (c, k) = (dir.join("custom.crt"), dir.join("custom.key"));
        if c.exists() && k.exists() {
            return (c, k);
        }
        (dir.join("self-signed.crt"), dir.join("self-signed.key"))
    }

    /// Re-reads the certificate if its files changed. True if a new one is now served.
    pub fn refresh(&self) -> bool {
        let (crt, key) = Self::choose(&self.configured, &self.dir);
        let now = (crt.clone(), mtime(&crt), mtime(&key));
        let mut stamp = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if *stamp == now {
            return false;
        }
        match load(&crt, &key, &self.provider) {
            Ok(ck) => {
                self.current.store(Arc::new(ck));
                *stamp = now;
                log::info!("tls: now serving {}", crt.display());
                true
            }
            Err(e) => {
                // Keep the old one; try again when the files change again.
                *stamp = now;
                log::error!("tls: keeping the current certificate: {e}");
                false
            }
        }
    }

    /// The end-entity certificate served now (DER).
    pub fn current_cert(&self) -> Vec<u8> {
        self.current
            .load()
            .cert
            .first()
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    /// Where the certificates Bureau makes and is given are kept (`<data_dir>/tls`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What is served now, for the console.
    pub fn info(&self) -> CertInfo {
        let (crt, _) = Self::choose(&self.configured, &self.dir);
        let source = if self.configured.is_some() {
            "configured".to_string()
        } else if crt.ends_with("custom.crt") {
            // Who installed it: "acme", else an upload.
            std::fs::read_to_string(self.dir.join(SOURCE))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "uploaded".into())
        } else {
            "self-signed".to_string()
        };
        let der = self.current_cert();
        let mut info = CertInfo {
            source,
            ..Default::default()
        };
        if let Ok((_, c)) = x509_parser::parse_x509_certificate(&der) {
            info.subject = c.subject().to_string();
            info.issuer = c.issuer().to_string();
            info.not_before = c.validity().not_before.timestamp();
            info.not_after = c.validity().not_after.timestamp();
            if let Ok(Some(san)) = c.subject_alternative_name() {
                info.names = san
                    .value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                        _ => None,
                    })
                    .collect();
            }
        }
        info
    }

    /// Installs an uploaded certificate (PEM chain and key, checked first: parsable, the key
    /// fits, not expired) in place of the self-signed one, served at once. Refused when the
    /// configuration names the files itself.
    pub fn install(&self, crt: &[u8], key: &[u8]) -> Result<CertInfo, TlsError> {
        self.install_from(crt, key, "uploaded")
    }

    /// As `install`, saying who gave it ("uploaded", "acme"), which `info` tells.
    pub fn install_from(&self, crt: &[u8], key: &[u8], source: &str) -> Result<CertInfo, TlsError> {
        use bureau_words::said;
        let refused = |why| TlsError::Refused {
            field: "cert_pem",
            why,
        };
        if self.configured.is_some() {
            return Err(refused(said("err_tls_configured")));
        }
        check_pem(crt, key)?;
        let first = CertificateDer::pem_slice_iter(crt)
            .next()
            .and_then(|c| c.ok())
            .ok_or_else(|| refused(said("err_tls_no_certificate")))?;
        if let Ok((_, c)) = x509_parser::parse_x509_certificate(&first) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if c.validity().not_after.timestamp() < now {
                return Err(refused(said("err_tls_expired")));
            }
        }
        write_private(&self.dir.join("custom.key"), key)?;
        write_private(&self.dir.join("custom.crt"), crt)?;
        write_private(&self.dir.join(SOURCE), source.as_bytes())?;
        self.refresh();
        Ok(self.info())
    }

    /// Goes back to the self-signed certificate.
    pub fn remove_uploaded(&self) -> Result<(), TlsError> {
        for f in ["custom.crt", "custom.key", SOURCE] {
            let p = self.dir.join(f);
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| file_err(&p, e))?;
            }
        }
        self.refresh();
        Ok(())
    }

    /// Refreshes every few seconds, for as long as the runtime runs.
    pub fn watch(self: &Arc<Self>, every: std::time::Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                me.refresh();
            }
        });
    }

    /// A server configuration for `alpn` protocols, serving this store's certificate.
    pub fn server_config(
        self: &Arc<Self>,
        alpn: &[&[u8]],
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(cfg))
    }

    pub fn acceptor(
        self: &Arc<Self>,
        alpn: &[&[u8]],
    ) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        Ok(tokio_rustls::TlsAcceptor::from(self.server_config(alpn)?))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Reads and checks a PEM chain and its key.
pub fn load(crt: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(crt)
        .map_err(|e| file_err(crt, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(crt, e))?;
    if chain.is_empty() {
        return Err(file_err(crt, "no certificate in the file"));
    }
    let k = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
    CertifiedKey::from_der(chain, k, provider)
        .map_err(|e| file_err(key, format!("does not fit the certificate: {e}")))
}

/// Checks a PEM chain and key given as text (from the console) without installing them.
pub fn check_pem(crt: &[u8], key: &[u8]) -> Result<(), TlsError> {
    use bureau_words::said;
    let cert = |why| TlsError::Refused {
        field: "cert_pem",
        why,
    };
    let private = |why| TlsError::Refused {
        field: "key_pem",
        why,
    };
    // In words for an administrator, naming the field to fix; the library's reason is logged.
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(crt)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            log::info!("tls: an uploaded certificate does not read: {e}");
            cert(said("err_tls_not_pem_certificate"))
        })?;
    if chain.is_empty() {
        return Err(cert(said("err_tls_no_certificate")));
    }
    let k = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        log::info!("tls: an uploaded key does not read: {e}");
        private(said("err_tls_not_pem_key"))
    })?;
    CertifiedKey::from_der(chain, k, &provider())
        .map(|_| ())
        .map_err(|e| {
            log::info!("tls: an uploaded key does not fit its certificate: {e}");
            private(said("err_tls_key_mismatch"))
        })
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), TlsError> {
    crate::files::write_secret(path, data, 0o600).map_err(|e| file_err(path, e))
}

/// Makes a self-signed certificate for `hostname` (and localhost).
pub fn make_self_signed(hostname: &str, crt: &Path, key: &Path) -> Result<(), TlsError> {
    let names = vec![hostname.to_string(), "localhost".to_string()];
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(key, ck.signing_key.serialize_pem().as_bytes())?;
    write_private(crt, ck.cert.pem().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_then_custom_then_broken_replacement() {
        let d = tempfile::tempdir().unwrap();
        let store = CertStore::open(None, d.path(), "box.example.com").unwrap();
        let first = store.current_cert();
        assert!(!first.is_empty());
        assert!(!store.refresh(), "nothing changed");

        // The console drops a custom certificate: served without a restart.
        let tls = d.path().join("tls");
        make_self_signed(
            "mail.example.com",
            &tls.join("custom.crt"),
            &tls.join("custom.key"),
        )
        .unwrap();
        assert!(store.refresh());
        let second = store.current_cert();
        assert_ne!(first, second);

        // A broken replacement: logged, the working one stays.
        std::fs::write(tls.join("custom.key"), b"not a key").unwrap();
        assert!(!store.refresh());
        assert_eq!(store.current_cert(), second);

        // Reopening with the same data keeps the self-signed certificate (not made anew).
        std::fs::remove_file(tls.join("custom.crt")).unwrap();
        let again = CertStore::open(None, d.path(), "box.example.com").unwrap();
        assert_eq!(again.current_cert(), first);
    }

    #[test]
    fn check_pem_refuses_a_mismatched_key() {
        let d = tempfile::tempdir().unwrap();
        let (c1, k1, c2, k2) = (
            d.path().join("1.crt"),
            d.path().join("1.key"),
            d.path().join("2.crt"),
            d.path().join("2.key"),
        );
        make_self_signed("a.example", &c1, &k1).unwrap();
        make_self_signed("b.example", &c2, &k2).unwrap();
        let r = |p: &Path| std::fs::read(p).unwrap();
        assert!(check_pem(&r(&c1), &r(&k1)).is_ok());
        assert!(check_pem(&r(&c1), &r(&k2)).is_err());
        assert!(check_pem(b"junk", &r(&k1)).is_err());
    }
}
