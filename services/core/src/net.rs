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
        let name = l.name;
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
            crate::fence::fenced(format!("{name} {peer}"), handle(stream, peer, shutdown)).await;
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

/// What "lan" stands for: loopback, RFC 1918, link-local, RFC 6598 shared space, IPv6
/// unique local and link-local.
pub const LAN: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

/// An entry of a list of networks that is none.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network (10.0.0.0/8, 2001:db8::/32, an address or \"lan\")")]
pub struct BadNetwork(pub String);

/// Networks a service is offered to (`admin.console_networks`): CIDR blocks, or "lan" for
/// the private ranges (loopback, RFC 1918, link-local, RFC 6598 shared space, IPv6 unique
/// local). Empty: everyone.
#[derive(Clone, Debug, Default)]
pub struct Networks(Vec<ipnet::IpNet>);

impl Networks {
    pub fn parse(list: &[String]) -> Result<Networks, BadNetwork> {
        let mut nets = Vec::new();
        for s in list {
            if s.eq_ignore_ascii_case("lan") {
                nets.extend(
                    LAN.iter()
                        .map(|n| n.parse::<ipnet::IpNet>().expect("valid")),
                );
                continue;
            }
            let net = s
                .parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| BadNetwork(s.clone()))?;
            nets.push(net);
        }
        Ok(Networks(nets))
    }

    /// Whether `ip` may be served.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.is_empty() || self.0.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod networks_tests {
    use super::*;

    #[test]
    fn lan_and_cidr_blocks() {
        let lan = Networks::parse(&["lan".into()]).unwrap();
        for ip in [
            "192.168.1.20",
            "10.1.2.3",
            "127.0.0.1",
            "::1",
            "fd00::5",
            "::ffff:192.168.1.9",
        ] {
            assert!(lan.allows(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2001:db8::1", "172.32.0.1"] {
            assert!(!lan.allows(ip.parse().unwrap()), "{ip}");
        }
        let some = Networks::parse(&["203.0.113.0/24".into(), "198.51.100.7".into()]).unwrap();
        assert!(some.allows("203.0.113.200".parse().unwrap()));
        assert!(some.allows("198.51.100.7".parse().unwrap()));
        assert!(!some.allows("198.51.100.8".parse().unwrap()));
        assert!(
            Networks::parse(&[])
                .unwrap()
                .allows("8.8.8.8".parse().unwrap())
        );
        assert!(Networks::parse(&["10.0.0.0/33".into()]).is_err());
    }
}
