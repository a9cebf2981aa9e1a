//! IMAP: mail clients read and organise the mailboxes the store holds.
//!
//! Commands are parsed by imap-codec (its Fragmentizer splits lines and literals and bounds
//! their size before parsing), and by `ext.rs` for what imap-codec lacks; `session.rs` holds
//! the connection loop, the state and the dispatcher; `state.rs` the table of which state
//! allows which command; `cmd/` one file per command family; responses are written by
//! `wire.rs`.
//!
//! Invariants:
//! - UIDs are store item ids and UIDVALIDITY the collection's validity: both come from the
//!   store, never from session memory, so every session and protocol agrees.
//! - A session's message sequence numbers change only when it is told (EXISTS/EXPUNGE at a
//!   point where the protocol allows it), from the store's change log.
//! - LOGIN and AUTHENTICATE are refused on port 143 before STARTTLS (LOGINDISABLED).

mod args;
mod cmd;
mod envelope;
mod ext;
mod fetch;
mod mailbox;
mod pattern;
mod recent;
mod response;
mod search;
mod session;
mod state;
mod thread;
mod uidmap;
mod wire;

use bureau_core::Auth;
use bureau_core::net::{ConnLimiter, Listener, accept_loop};
use bureau_core::shutdown::Shutdown;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Port 143: plain until STARTTLS; no login before it.
    Plain,
    /// Port 993: TLS from the first byte.
    Tls,
}

pub(crate) struct Ctx {
    pub hostname: String,
    pub auth: Auth,
    pub tls: TlsAcceptor,
    pub limiter: ConnLimiter,
    pub recent: recent::Recent,
}

#[derive(Clone)]
pub struct Imap {
    ctx: Arc<Ctx>,
}

impl Imap {
    pub fn new(
        hostname: String,
        auth: Auth,
        tls: TlsAcceptor,
        max_connections_per_ip: usize,
    ) -> Imap {
        // Every message stored from now on, by any protocol, gets its FETCH summary.
        auth.directory().store().set_deriver(envelope::derive);
        Imap {
            ctx: Arc::new(Ctx {
                hostname,
                auth,
                tls,
                limiter: ConnLimiter::new(max_connections_per_ip),
                recent: Default::default(),
            }),
        }
    }

    /// Keeps the store's term index posted, on tokio's blocking pool: at start (messages
    /// stored before the index, or while IMAP was off, get their summary and terms), then
    /// after each burst of writes (a fifth of a second gathers it), until shutdown.
    pub async fn index_terms(self, mut shutdown: Shutdown) {
        let store = self.ctx.auth.directory().store().clone();
        let mut changes = store.subscribe();
        loop {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.index_pending()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => log::warn!("imap: term index: {e}"),
                Err(e) => log::warn!("imap: term index: {e}"),
            }
            tokio::select! {
                r = changes.recv() => {
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                }
                _ = shutdown.signalled() => return,
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            while !matches!(
                changes.try_recv(),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty
                    | tokio::sync::broadcast::error::TryRecvError::Closed)
            ) {}
        }
    }

    pub async fn serve(self, listener: TcpListener, mode: Mode, shutdown: Shutdown) {
        let l = Listener {
            listener,
            limiter: self.ctx.limiter.clone(),
            implicit_tls: (mode == Mode::Tls).then(|| self.ctx.tls.clone()),
            too_many: b"* BYE Too many connections from your address\r\n",
            name: "imap",
        };
        let ctx = self.ctx;
        accept_loop(l, shutdown, move |stream, peer, shutdown| {
            let ctx = ctx.clone();
            async move {
                session::Session::new(ctx, peer, stream, shutdown)
                    .run()
                    .await
            }
        })
        .await
    }
}
