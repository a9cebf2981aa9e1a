//! Incoming mail's SPF, DKIM and DMARC, checked with mail-auth and recorded in an
//! Authentication-Results header (RFC 8601). Also the DNS resolver the queue uses.

use bureau_core::config::SmtpConfig;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults, MessageAuthenticator};
use std::net::IpAddr;
use std::time::Duration;

/// Why no DNS resolver could be made: mail is then neither checked nor sent.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error("reading /etc/resolv.conf: {0}")]
    SystemConf(String),
    #[error("making the DNS resolver: {0}")]
    Build(String),
}

/// The resolver configuration: the configured servers, else the system's.
pub(crate) fn resolver_config(
    cfg: &SmtpConfig,
) -> Result<(ResolverConfig, ResolverOpts), ResolverError> {
    let (config, mut opts) = if cfg.dns_servers.is_empty() {
        mail_auth::hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| ResolverError::SystemConf(e.to_string()))?
    } else {
        let servers = cfg
            .dns_servers
            .iter()
            .map(|sa| {
                let mut udp = ConnectionConfig::udp();
                udp.port = sa.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = sa.port();
                NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
            })
            .collect();
        (
            ResolverConfig::from_name_servers(servers),
            ResolverOpts::default(),
        )
    };
    opts.timeout = Duration::from_secs(cfg.dns_timeout_secs.max(1));
    opts.attempts = 2;
    Ok((config, opts))
}

pub(crate) fn resolver(cfg: &SmtpConfig) -> Result<TokioResolver, ResolverError> {
    let (config, opts) = resolver_config(cfg)?;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .with_tls_config(plain_dns_tls()?)
        .build()
        .map_err(|e| ResolverError::Build(e.to_string()))
}

/// The TLS settings the resolver is given for DNS over TLS, which no server of ours speaks
/// (they are asked over UDP and TCP): no trusted roots. Left to itself, the resolver loads
/// and parses the system's every CA certificate each time one is made — at each outbound
/// delivery, and most of the daemon's start on a slow CPU (issue 23).
fn plain_dns_tls() -> Result<tokio_rustls::rustls::ClientConfig, ResolverError> {
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
    Ok(
        ClientConfig::builder_with_provider(std::sync::Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ResolverError::Build(e.to_string()))?
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    )
}

pub(crate) struct Verifier {
    auth: MessageAuthenticator,
    timeout: Duration,
}

impl Verifier {
    pub(crate) fn new(cfg: &SmtpConfig) -> Result<Verifier, ResolverError> {
        Ok(Verifier {
            auth: MessageAuthenticator(resolver(cfg)?),
            timeout: Duration::from_secs(cfg.dns_timeout_secs.max(1) * 3),
        })
    }

    /// The Authentication-Results header for a message received from `ip`.
    pub(crate) async fn results(
        &self,
        hostname: &str,
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
        msg: &[u8],
    ) -> String {
        let work = async {
            let Some(am) = AuthenticatedMessage::parse(msg) else {
                return format!(
                    "Authentication-Results: {hostname}; none (unparsable message)\r\n"
                );
            };
            let dkim = self.auth.verify_dkim(&am).await;
            let spf_params = if mail_from.is_empty() {
                SpfParameters::verify_ehlo(ip, helo, hostname)
            } else {
                SpfParameters::verify_mail_from(ip, helo, hostname, mail_from)
            };
            let spf = self.auth.verify_spf(spf_params).await;
            let from_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
            let dmarc = self
                .auth
                .verify_dmarc(DmarcParameters::new(&am, &dkim, from_domain, &spf))
                .await;
            let header_from = am.from.first().map(String::as_str).unwrap_or("");
            AuthenticationResults::new(hostname)
                .with_dkim_results(&dkim, header_from)
                .with_spf_mailfrom_result(&spf, ip, mail_from, helo)
                .with_dmarc_result(&dmarc)
                .to_header()
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(h) => h,
            Err(_) => format!("Authentication-Results: {hostname}; none (DNS timed out)\r\n"),
        }
    }
}

/// Removes Authentication-Results headers that claim to be ours (RFC 8601 5): only we may
/// say what we checked.
pub(crate) fn strip_forged_results(msg: &[u8], hostname: &str) -> Vec<u8> {
    without_headers(msg, |line| {
        line.split(|b| *b == b':')
            .next()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"authentication-results"))
            && String::from_utf8_lossy(
                &line[line.iter().position(|b| *b == b':').map_or(0, |p| p + 1)..],
            )
            .trim()
            .split(';')
            .next()
            .is_some_and(|id| id.trim().eq_ignore_ascii_case(hostname))
    })
}

/// The message without the header fields (folded lines included) whose first line `drop`
/// picks; the body untouched.
pub fn without_headers(msg: &[u8], drop: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(msg.len(), |p| p + 2);
    let (head, body) = msg.split_at(end);
    let mut out = Vec::with_capacity(msg.len());
    let mut skipping = false;
    for line in head.split_inclusive(|b| *b == b'\n') {
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            skipping = drop(line);
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn forged_results_for_our_name_are_removed() {
        let m = b"Authentication-Results: box.example.com; dkim=pass\r\n\theader.d=bank.example\r\nAuthentication-Results: other.example; spf=fail\r\nSubject: x\r\n\r\nAuthentication-Results: box.example.com; body stays\r\n";
        let out = super::strip_forged_results(m, "box.example.com");
        assert_eq!(
            out,
            b"Authentication-Results: other.example; spf=fail\r\nSubject: x\r\n\r\nAuthentication-Results: box.example.com; body stays\r\n".to_vec()
        );
    }
}
