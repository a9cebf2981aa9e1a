//! What line protocols (SMTP, IMAP, LDAP) share: a stream that can turn into TLS in place
//! (STARTTLS), and a limit of simultaneous connections per client address.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Performs the TLS handshake over a plain stream (STARTTLS, or implicit TLS at accept).
    pub async fn into_tls(self, acceptor: &TlsAcceptor) -> io::Result<Stream> {
        match self {
            Stream::Plain(tcp) => Ok(Stream::Tls(Box::new(acceptor.accept(tcp).await?))),
            tls => Ok(tls),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Counts connections per address; a slot is held while its `Slot` lives.
#[derive(Clone)]
pub struct ConnLimiter {
    max: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

pub struct Slot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl ConnLimiter {
    pub fn new(max: usize) -> ConnLimiter {
        ConnLimiter {
            max: max.max(1),
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for one more connection from `ip`, or `None` if it has too many.
    pub fn acquire(&self, ip: IpAddr) -> Option<Slot> {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            ip,
            counts: self.counts.clone(),
        })
    }
}

/// What a line-protocol listener needs besides its handler.
pub struct Listener {
    pub listener: tokio::net::TcpListener,
    pub limiter: ConnLimiter,
    /// TLS from the first byte (ports 465, 993, 636); `None` for plain-then-STARTTLS ports.
    pub implicit_tls: Option<TlsAcceptor>,
    /// Said (then the connection closes) to an address over its connection limit.
    pub too_many: &'static [u8],
    /// For log lines.
    pub name: &'static str,
}

/// Accepts connections until shutdown; each runs `handle` with its stream, after its
/// address got a slot and, for implicit TLS, its handshake finished (30 s at most). Each
/// connection counts as work in flight for the shutdown.
pub async fn accept_loop<F, Fut>(l: Listener, mut shutdown: crate::shutdown::Shutdown, handle: F)
where
    F: Fn(Stream, std::net::SocketAddr, crate::shutdown::Shutdown) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use tokio::io::AsyncWriteExt;
    loop {
        let (tcp, peer) = tokio::select! {
            r = l.listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    log::warn!("{}: accept: {e}", l.name);
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.signalled() => return,
        };
        let (limiter, tls, too_many, handle, shutdown) = (
            l.limiter.clone(),
            l.implicit_tls.clone(),
            l.too_many,
            handle.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            let _busy = shutdown.busy();
            let Some(_slot) = limiter.acquire(peer.ip().to_canonical()) else {
                let mut tcp = tcp;
                let _ = tcp.write_all(too_many).await;
                return;
            };
            let _ = tcp.set_nodelay(true);
            let stream = match &tls {
                Some(acceptor) => {
                    let hs = Stream::Plain(tcp).into_tls(acceptor);
                    match tokio::time::timeout(std::time::Duration::from_secs(30), hs).await {
                        Ok(Ok(s)) => s,
                        _ => return,
                    }
                }
                None => Stream::Plain(tcp),
            };
            handle(stream, peer, shutdown).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address() {
        let l = ConnLimiter::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = l.acquire(a).unwrap();
        let _s2 = l.acquire(a).unwrap();
        assert!(l.acquire(a).is_none());
        assert!(l.acquire(b).is_some());
        drop(s1);
        assert!(l.acquire(a).is_some());
    }
}
