//! The HTTPS listener every web service shares (admin API and CalDAV/CardDAV now; console,
//! ActiveSync and autoconfiguration as they come), the plain HTTP one that redirects to it, and the admin
//! API on the unix socket.

use crate::backup::Streamed;
use crate::reply::plain;
use bureau_admin::{AdminApi, Caller, Resp};
use bureau_core::shutdown::Shutdown;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The one endpoint whose answer is streamed rather than built whole.
const BACKUP: &str = "/api/v1/backup";

fn boxed(r: Resp) -> Streamed {
    use http_body_util::BodyExt;
    r.map(|b| b.map_err(|e| match e {}).boxed())
}

#[derive(Clone)]
pub struct Web {
    pub admin: AdminApi,
    pub dav: bureau_dav::Dav,
    pub activesync: bureau_activesync::ActiveSync,
    pub syncml: bureau_syncml::SyncMl,
    /// Who may reach the console and the admin API (`admin.console_networks`).
    pub console_networks: bureau_core::net::Networks,
}

impl Web {
    async fn dispatch(&self, req: Request<Incoming>, ip: IpAddr) -> Streamed {
        let path = req.uri().path();
        let console = path.starts_with("/api/") || crate::console::serves(path);
        if console && !self.console_networks.allows(ip) {
            return boxed(plain(
                StatusCode::FORBIDDEN,
                "The console is not offered to your network.\n",
            ));
        }
        if path == BACKUP && req.method() == hyper::Method::GET {
            return crate::backup::download(&self.admin, &req, Caller::Web(ip));
        }
        boxed(self.answer(req, ip).await)
    }

    async fn answer(&self, req: Request<Incoming>, ip: IpAddr) -> Resp {
        let path = req.uri().path();
        if path.starts_with("/api/") {
            return self.admin.handle(req, Caller::Web(ip)).await;
        }
        if bureau_dav::Dav::serves(path) {
            return self.dav.handle(req, ip).await;
        }
        if bureau_activesync::ActiveSync::serves(path) {
            return self.activesync.handle(req, ip).await;
        }
        if bureau_syncml::SyncMl::serves(path) {
            return self.syncml.handle(req, ip).await;
        }
        if crate::console::serves(path) {
            let tag = req
                .headers()
                .get("if-none-match")
                .and_then(|v| v.to_str().ok());
            return crate::console::handle(path, tag);
        }
        plain(StatusCode::NOT_FOUND, "not found\n")
    }
}

/// Serves HTTP/1.1 on one connection until it ends or shutdown is signalled.
async fn serve_conn<S, F, Fut, B>(io: S, mut shutdown: Shutdown, handler: F)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _busy = shutdown.busy();
    let svc = service_fn(move |req| {
        let fut = handler(req);
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.signalled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

pub async fn run_https(listener: TcpListener, tls: TlsAcceptor, web: Web, mut shutdown: Shutdown) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    log::warn!("https: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.signalled() => return,
        };
        let (tls, web, shutdown) = (tls.clone(), web.clone(), shutdown.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    log::debug!("https: TLS handshake with {peer}: {e}");
                    return;
                }
                Err(_) => return,
            };
            let ip = peer.ip().to_canonical();
            let conn = serve_conn(stream, shutdown, move |req| {
                let web = web.clone();
                async move { web.dispatch(req, ip).await }
            });
            bureau_core::fence::fenced(format!("https {peer}"), conn).await;
        });
    }
}

/// Port 80: everything moves to HTTPS.
/// Port 80: ACME's HTTP-01 challenges (RFC 8555 8.3) answered, everything else sent to
/// HTTPS.
pub async fn run_http_redirect(
    listener: TcpListener,
    https_port: u16,
    acme: std::sync::Arc<bureau_core::acme::Acme>,
    mut shutdown: Shutdown,
) {
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = shutdown.signalled() => return,
        };
        let shutdown = shutdown.clone();
        let acme = acme.clone();
        tokio::spawn(serve_conn(tcp, shutdown, move |req: Request<Incoming>| {
            let acme = acme.clone();
            async move {
                if let Some(token) = req
                    .uri()
                    .path()
                    .strip_prefix("/.well-known/acme-challenge/")
                {
                    return match acme.challenge(token) {
                        Some(answer) => Response::builder()
                            .header("content-type", "application/octet-stream")
                            .body(Full::new(Bytes::from(answer)))
                            .unwrap_or_default(),
                        None => plain(StatusCode::NOT_FOUND, "no such challenge\n"),
                    };
                }
                let host = req
                    .headers()
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .map(|h| h.rsplit_once(':').map_or(h, |(n, _)| n).to_string())
                    .filter(|h| {
                        !h.is_empty()
                            && h.chars()
                                .all(|c| c.is_ascii_alphanumeric() || ".-[]".contains(c))
                    });
                let Some(host) = host else {
                    return plain(StatusCode::BAD_REQUEST, "Host header required\n");
                };
                let port = if https_port == 443 {
                    String::new()
                } else {
                    format!(":{https_port}")
                };
                let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
                Response::builder()
                    .status(StatusCode::MOVED_PERMANENTLY)
                    .header("location", format!("https://{host}{port}{pq}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_default()
            }
        }));
    }
}

pub async fn run_admin_socket(listener: UnixListener, admin: AdminApi, mut shutdown: Shutdown) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = shutdown.signalled() => return,
        };
        let (admin, shutdown) = (admin.clone(), shutdown.clone());
        let conn = serve_conn(stream, shutdown, move |req| {
            let admin = admin.clone();
            async move {
                if req.uri().path() == BACKUP && req.method() == hyper::Method::GET {
                    return crate::backup::download(&admin, &req, Caller::Socket);
                }
                boxed(admin.handle(req, Caller::Socket).await)
            }
        });
        tokio::spawn(bureau_core::fence::fenced("admin socket", conn));
    }
}
