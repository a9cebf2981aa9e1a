//! LDAP-lite: Bureau's directory for the LAN's address books, file server and proxy, on 389
//! (StartTLS) and 636 (TLS). Read-only: people, groups and the company address book under
//! `dc=<domain>` (see `tree`); simple bind by DN, uid or address through core's
//! authentication (and its brute-force guard); searches with every filter type, the three
//! scopes, attribute selection, size limits and paged results (RFC 2696); Who am I?
//! (RFC 4532) and Password Modify (RFC 3062).
//!
//! Messages are decoded and encoded by ldap3_proto (BER via ldap3_lber), bounded in size;
//! this crate holds the session logic only.

mod filter;
mod session;
mod tree;

use bureau_core::Auth;
use bureau_core::config::LdapConfig;
use bureau_core::net::{ConnLimiter, Listener, accept_loop};
use bureau_core::shutdown::Shutdown;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Port 389: plain until StartTLS.
    Plain,
    /// Port 636: TLS from the first byte.
    Tls,
}

pub(crate) struct Ctx {
    pub cfg: LdapConfig,
    pub auth: Auth,
    pub tls: TlsAcceptor,
    pub limiter: ConnLimiter,
    /// The tree as last built, with what it was built from: the directory's change count
    /// and the company address book's modseq (issue 24: it was built for every search).
    tree: std::sync::Mutex<Option<CachedTree>>,
}

/// A tree with what it was built from: the directory's change count and the company
/// address book's modseq.
type CachedTree = ((u64, u64), Arc<tree::Tree>);

impl Ctx {
    /// The tree as the directory stands now: the one last built if nothing changed since.
    pub(crate) fn tree(&self) -> Result<Arc<tree::Tree>, bureau_directory::DirectoryError> {
        let dir = self.auth.directory();
        let key = (*dir.changes().borrow(), dir.company_book_modseq()?);
        let mut cached = self.tree.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, t)) = cached.as_ref()
            && *k == key
        {
            return Ok(t.clone());
        }
        let t = Arc::new(tree::Tree::new(tree::build(dir)?));
        *cached = Some((key, t.clone()));
        Ok(t)
    }
}

#[derive(Clone)]
pub struct Ldap {
    ctx: Arc<Ctx>,
}

impl Ldap {
    pub fn new(cfg: LdapConfig, auth: Auth, tls: TlsAcceptor) -> Ldap {
        Ldap {
            ctx: Arc::new(Ctx {
                limiter: ConnLimiter::new(cfg.max_connections_per_ip),
                cfg,
                auth,
                tls,
                tree: Default::default(),
            }),
        }
    }

    pub async fn serve(self, listener: TcpListener, mode: Mode, shutdown: Shutdown) {
        let l = Listener {
            listener,
            limiter: self.ctx.limiter.clone(),
            implicit_tls: (mode == Mode::Tls).then(|| self.ctx.tls.clone()),
            // A Notice of Disconnection would need a BER encoder here; closing says enough.
            too_many: b"",
            name: "ldap",
        };
        let ctx = self.ctx;
        accept_loop(l, shutdown, move |stream, peer, shutdown| {
            let ctx = ctx.clone();
            async move { session::run(ctx, stream, peer, shutdown).await }
        })
        .await
    }
}
