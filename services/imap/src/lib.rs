//! IMAP: mail clients read and organise the mailboxes the store holds.
//!
//! Commands are parsed by imap-codec (its Fragmentizer splits lines and literals and bounds
//! their size before parsing); `session.rs` holds the state and the commands; responses are
//! written by `wire.rs`.
//!
//! Invariants:
//! - UIDs are store item ids and UIDVALIDITY the collection's validity: both come from the
//!   store, never from session memory, so every session and protocol agrees.
//! - A session's message sequence numbers change only when it is told (EXISTS/EXPUNGE at a
//!   point where the protocol allows it), from the store's change log.
//! - LOGIN and AUTHENTICATE are refused on port 143 before STARTTLS (LOGINDISABLED).

mod envelope;
mod fetch;
mod search;
mod session;
mod wire;

use bureau_core::Auth;
use bureau_core::net::{ConnLimiter, Stream};
use bureau_core::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;
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
        Imap {
            ctx: Arc::new(Ctx {
                hostname,
                auth,
                tls,
                limiter: ConnLimiter::new(max_connections_per_ip),
            }),
        }
    }

    pub async fn serve(self, listener: TcpListener, mode: Mode, mut shutdown: Shutdown) {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        log::warn!("imap: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.signalled() => return,
            };
            let ctx = self.ctx.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let _busy = shutdown.busy();
                let Some(_slot) = ctx.limiter.acquire(peer.ip().to_canonical()) else {
                    use tokio::io::AsyncWriteExt;
                    let mut tcp = tcp;
                    let _ = tcp
                        .write_all(b"* BYE Too many connections from your address\r\n")
                        .await;
                    return;
                };
                let stream = match mode {
                    Mode::Tls => match tokio::time::timeout(
                        Duration::from_secs(30),
                        Stream::Plain(tcp).into_tls(&ctx.tls),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        _ => return,
                    },
                    Mode::Plain => Stream::Plain(tcp),
                };
                session::Session::new(ctx, peer, stream, shutdown)
                    .run()
                    .await;
            });
        }
    }
}
