//! DKIM signing of mail leaving for other domains, with the key made with the domain.

use bureau_directory::Directory;
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};

/// The headers a signature covers (RFC 6376 5.4.1's recommendations).
const SIGNED: [&str; 12] = [
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// The DKIM-Signature header for `msg`, signed for `domain`; `None` if the domain has no
/// key (the message then goes unsigned, as before the key existed).
pub(crate) fn signature(dir: &Directory, domain: &str, msg: &[u8]) -> Option<String> {
    let (selector, der) = match dir.dkim_key(domain) {
        Ok(Some(k)) => k,
        Ok(None) => return None,
        Err(e) => {
            log::error!("dkim: reading the key of {domain}: {e}");
            return None;
        }
    };
    let key =
        match RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))) {
            Ok(k) => k,
            Err(e) => {
                log::error!("dkim: the key of {domain} is unusable: {e}");
                return None;
            }
        };
    match DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED)
        .sign(msg)
    {
        Ok(sig) => Some(sig.to_header()),
        Err(e) => {
            log::error!("dkim: signing for {domain}: {e}");
            None
        }
    }
}
