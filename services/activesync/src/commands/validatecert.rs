//! ValidateCert (MS-ASCMD 2.2.1.22): a device asks whether S/MIME certificates (a
//! recipient's, before encrypting to them, or a signer's) can be trusted. Each is checked
//! by rustls-webpki for a path to a trusted authority (the system's, and those of
//! `[activesync] trust_anchors`) through the intermediates the device sends
//! (CertificateChain), its validity now, its signatures, and the e-mail protection key
//! purpose. Revocation lists are not fetched (the box may have no way out): CheckCRL is
//! not acted on.

use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use base64::Engine;
use bureau_store::StoreError;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::OnceLock;
use webpki::{EndEntityCert, Error, KeyUsage};

/// id-kp-emailProtection (1.3.6.1.5.5.7.3.4), as DER content octets.
const EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];
/// Most certificates one request may carry, of each kind.
const MAX_CERTS: usize = 32;

/// ValidateCert status codes (MS-ASCMD 2.2.3.177.18).
mod status {
    pub const SUCCESS: &str = "1";
    pub const PROTOCOL_ERROR: &str = "2";
    pub const BAD_SIGNATURE: &str = "3";
    pub const UNTRUSTED: &str = "4";
    pub const BAD_CHAIN: &str = "5";
    pub const NOT_FOR_EMAIL: &str = "6";
    pub const EXPIRED: &str = "7";
    pub const REVOKED: &str = "13";
}

/// The authorities trusted: the system's, then the configured file's. Read once.
fn anchors(extra: Option<&std::path::Path>) -> &'static [CertificateDer<'static>] {
    static ANCHORS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ANCHORS.get_or_init(|| {
        let mut all = rustls_native_certs::load_native_certs().certs;
        if let Some(path) = extra {
            match CertificateDer::pem_file_iter(path) {
                Ok(certs) => all.extend(certs.flatten()),
                Err(e) => log::warn!("activesync: trust anchors {}: {e}", path.display()),
            }
        }
        all
    })
}

fn verdict(e: &Error) -> &'static str {
    match e {
        Error::UnknownIssuer => status::UNTRUSTED,
        Error::CertExpired { .. } | Error::CertNotValidYet { .. } | Error::InvalidCertValidity => {
            status::EXPIRED
        }
        Error::RequiredEkuNotFoundContext(_) => status::NOT_FOR_EMAIL,
        Error::InvalidSignatureForPublicKey
        | Error::UnsupportedSignatureAlgorithmContext(_)
        | Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => status::BAD_SIGNATURE,
        Error::CertRevoked => status::REVOKED,
        Error::BadDer | Error::BadDerTime | Error::TrailingData(_) => status::PROTOCOL_ERROR,
        _ => status::BAD_CHAIN,
    }
}

/// One certificate's status, given the intermediates and the trusted authorities.
fn check(
    cert: &[u8],
    chain: &[CertificateDer<'_>],
    trusted: &[CertificateDer<'_>],
) -> &'static str {
    let der = CertificateDer::from(cert);
    let Ok(ee) = EndEntityCert::try_from(&der) else {
        return status::PROTOCOL_ERROR;
    };
    let anchors: Vec<_> = trusted
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    match ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        chain,
        UnixTime::now(),
        KeyUsage::required(EMAIL_PROTECTION),
        None,
        None,
    ) {
        Ok(_) => status::SUCCESS,
        Err(e) => verdict(&e),
    }
}

pub async fn validate_cert(
    eas: &ActiveSync,
    _cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let root = |s: &str| Element::new(page::VALIDATE_CERT, "ValidateCert").with_text("Status", s);
    let Some(doc) = doc.filter(|d| d.name == "ValidateCert") else {
        return Ok(document(&root(status::PROTOCOL_ERROR)));
    };
    let decode = |e: &Element| {
        base64::engine::general_purpose::STANDARD
            .decode(e.value().split_whitespace().collect::<String>())
            .ok()
    };
    let list = |name: &str| -> Vec<&Element> {
        doc.child(name)
            .map(|c| c.children_named("Certificate").collect())
            .unwrap_or_default()
    };
    let (certs, chain) = (list("Certificates"), list("CertificateChain"));
    if certs.is_empty() || certs.len() > MAX_CERTS || chain.len() > MAX_CERTS {
        return Ok(document(&root(status::PROTOCOL_ERROR)));
    }
    let chain: Vec<CertificateDer<'static>> = chain
        .iter()
        .filter_map(|c| decode(c))
        .map(CertificateDer::from)
        .collect();
    let extra = eas.limits().trust_anchors.clone();
    let trusted = anchors(extra.as_deref());
    let mut out = root(status::SUCCESS);
    for c in certs {
        let s = match decode(c) {
            Some(der) => check(&der, &chain, trusted),
            None => status::PROTOCOL_ERROR,
        };
        out = out.with(Element::new(page::VALIDATE_CERT, "Certificate").with_text("Status", s));
    }
    Ok(document(&out))
}
