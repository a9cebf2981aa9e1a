//! SMTP: the MX that takes the Internet's mail for our domains (port 25), submission for our
//! users (587 with STARTTLS, 465 with implicit TLS), local delivery into the store, and the
//! outbound queue.
//!
//! Invariants:
//! - Never relay for an unauthenticated client: on port 25 a recipient must resolve, after
//!   removing a +tag, to a user, alias, group or catch-all of one of our domains. Anything
//!   else (other domains, %-hacks, bang paths, quoted local parts, IP literals) is refused.
//! - "250" after DATA means the message is durable: in every local recipient's INBOX and/or
//!   in the outbound queue, committed with fsync. Nothing accepted is dropped afterwards.
//! - Commands are parsed by smtp-proto (sans-I/O); this crate holds the session logic.
//! - After STARTTLS, bytes pipelined before the handshake are discarded.
//! - Message data must use CRLF: a bare LF or CR anywhere refuses the message (the
//!   SMTP-smuggling class, CVE-2023-51764).

pub mod autoreply;
mod data;
mod deliver;
mod dkim;
pub mod dnscheck;
mod dsn;
mod queue;
mod recipient;
mod session;
mod verify;
pub use verify::without_headers;

pub use deliver::SendError;
pub use queue::{Queue, QueueEntry, QueuedMessage, RcptState};

/// Told of mail from outside that carries a calendar part (iMIP, RFC 6047), once it is
/// filed in local INBOXes: a reply to an invitation updates the organizer's event.
pub trait Arrivals: Send + Sync {
    /// `principals`: the local recipients; `from`: the message's From: address;
    /// `dmarc_failed`: DMARC checked and failed for that address.
    fn arrived(&self, principals: &[u64], from: &str, dmarc_failed: bool, msg: &[u8]);
}

use bureau_core::Auth;
use bureau_core::config::SmtpConfig;
use bureau_core::net::{ConnLimiter, Listener, accept_loop};
use bureau_core::shutdown::Shutdown;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Which service a listener offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Port 25: mail for our domains from anyone; no authentication, no relaying.
    Mx,
    /// Port 587: our users, after STARTTLS and AUTH.
    Submission,
    /// Port 465: our users, TLS from the first byte.
    Submissions,
}

impl Mode {
    fn is_submission(self) -> bool {
        self != Mode::Mx
    }
}

pub(crate) struct Ctx {
    pub cfg: SmtpConfig,
    pub hostname: String,
    pub auth: Auth,
    pub tls: TlsAcceptor,
    pub queue: Queue,
    /// SPF/DKIM/DMARC checks of mail from outside, if enabled.
    pub verifier: Option<verify::Verifier>,
    pub limiter: ConnLimiter,
    /// Messages per minute per unauthenticated address: (window start, count).
    pub rates: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Who hears of calendar mail from outside; `None`: it is only stored.
    pub arrivals: Option<Arc<dyn Arrivals>>,
}

impl Ctx {
    /// Counts one more message from `ip`; false if it is over its rate.
    fn take_message_slot(&self, ip: IpAddr) -> bool {
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if rates.len() > 100_000 {
            rates.retain(|_, (t, _)| t.elapsed() < Duration::from_secs(60));
        }
        let e = rates.entry(ip).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= Duration::from_secs(60) {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
        e.1 <= self.cfg.max_messages_per_minute_per_ip
    }
}

/// The SMTP service; cheap to clone.
#[derive(Clone)]
pub struct Smtp {
    ctx: Arc<Ctx>,
}

impl Smtp {
    pub fn new(
        cfg: SmtpConfig,
        hostname: String,
        auth: Auth,
        tls: TlsAcceptor,
        queue: Queue,
        arrivals: Option<Arc<dyn Arrivals>>,
    ) -> Smtp {
        let verifier = if cfg.verify_inbound {
            match verify::Verifier::new(&cfg) {
                Ok(v) => Some(v),
                Err(e) => {
                    log::warn!("smtp: no SPF/DKIM/DMARC checks: {e}");
                    None
                }
            }
        } else {
            None
        };
        Smtp {
            ctx: Arc::new(Ctx {
                verifier,
                limiter: ConnLimiter::new(cfg.max_connections_per_ip),
                cfg,
                hostname,
                auth,
                tls,
                queue,
                rates: Mutex::new(HashMap::new()),
                arrivals,
            }),
        }
    }

    /// Accepts connections on `listener` until shutdown.
    pub async fn serve(self, listener: TcpListener, mode: Mode, shutdown: Shutdown) {
        let l = Listener {
            listener,
            limiter: self.ctx.limiter.clone(),
            implicit_tls: (mode == Mode::Submissions).then(|| self.ctx.tls.clone()),
            too_many: b"421 4.7.0 Too many connections from your address\r\n",
            name: "smtp",
        };
        let ctx = self.ctx;
        accept_loop(l, shutdown, move |stream, peer, shutdown| {
            let ctx = ctx.clone();
            async move {
                session::Session::new(ctx, mode, peer, stream, shutdown)
                    .run()
                    .await
            }
        })
        .await
    }
}
