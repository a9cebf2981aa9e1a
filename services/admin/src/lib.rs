//! The admin API: JSON over HTTP, served on the daemon's unix socket for the CLI (the
//! socket's file permissions are the authentication) and on HTTPS for the console (a session
//! cookie from a password login, and a CSRF token on every change).
//!
//! Rights: the socket acts as the system. On HTTPS, administrators may do everything; any
//! signed-in user may read its own record and change its own password; the rest is 403.

pub mod api;
pub mod client;
pub mod setup;

use api::*;
use bureau_core::{Auth, AuthError, helper};
use bureau_directory::{Directory, DirectoryError};
use bureau_store::{Actor, Right, StoreError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COOKIE_NAME: &str = "bureau_session";

/// Who is calling.
#[derive(Clone, Copy, Debug)]
pub enum Caller {
    /// The unix socket: the local administrator.
    Socket,
    /// HTTPS from this address.
    Web(IpAddr),
}

struct SessionData {
    uid: String,
    admin: bool,
    csrf: String,
    expires: Instant,
}

/// What the daemon tells the status page about itself.
pub struct DaemonInfo {
    pub hostname: String,
    pub data_dir: String,
    pub started: Instant,
    pub services: Mutex<Vec<ServiceStatus>>,
    /// The first-boot setup token's file.
    pub setup_token: PathBuf,
    /// Where uploaded update bundles wait for the helper.
    pub updates_dir: PathBuf,
    pub helper_socket: PathBuf,
    pub max_update_bytes: u64,
    /// Connections and requests in flight, for the dashboard.
    pub inflight: Option<bureau_core::shutdown::Shutdown>,
    /// Largest backup accepted for a restore, bytes.
    pub max_restore_bytes: u64,
    /// Told when the daemon should stop and start again (a restore waits for the start).
    pub restart: Arc<tokio::sync::Notify>,
    /// The configuration file sets the hostname: the console may not change it.
    pub hostname_fixed: bool,
    /// Where the console's hostname and time zone are kept (`bureau_core::system`).
    pub system_dir: PathBuf,
    /// The previous run did not stop cleanly: when it had started (seconds since 1970).
    pub unclean_stop: Option<u64>,
}

/// Where the web proxy's generated files go and what they point at.
pub struct ProxySetup {
    pub cfg: bureau_core::config::ProxyConfig,
    pub state_dir: PathBuf,
    /// Bureau's LDAP as Squid's helper reaches it, e.g. ldaps://127.0.0.1:636.
    pub ldap_url: String,
}

/// The appliance's release, written into its root filesystem by the image builder.
const RELEASE_FILE: &str = "/etc/bureau/release";

#[derive(Clone)]
pub struct AdminApi {
    auth: Auth,
    queue: Option<bureau_smtp::Queue>,
    certs: Option<Arc<bureau_core::tls::CertStore>>,
    proxy: Option<Arc<ProxySetup>>,
    samba: Option<Arc<bureau_sysctl::samba::Keeper>>,
    info: Arc<DaemonInfo>,
    sessions: Arc<Mutex<HashMap<String, SessionData>>>,
    session_ttl: Duration,
    /// One first-boot setup at a time.
    setup_lock: Arc<tokio::sync::Mutex<()>>,
}

pub type Resp = Response<Full<Bytes>>;

/// An API failure: status and body.
struct Fail(StatusCode, ApiError);

fn fail(status: StatusCode, msg: impl Into<String>) -> Fail {
    Fail(
        status,
        ApiError {
            error: msg.into(),
            field: None,
        },
    )
}

/// Writes a request's body to `path` (synced), at most `max` bytes of it.
async fn receive(
    req: Request<Incoming>,
    path: &std::path::Path,
    max: u64,
    what: &str,
) -> Result<(), Fail> {
    use tokio::io::AsyncWriteExt;
    /// Read and dropped past the limit, so that a client still sending hears the 413.
    const DRAIN: u64 = 16 << 20;
    let io = |e: std::io::Error| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut f = tokio::fs::File::create(path).await.map_err(io)?;
    let mut body = req.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| fail(StatusCode::BAD_REQUEST, format!("upload: {e}")))?;
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
            if n <= max {
                f.write_all(&data).await.map_err(io)?;
            } else if n > max + DRAIN {
                break;
            }
        }
    }
    if n > max {
        return Err(fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} over {} MiB", max >> 20),
        ));
    }
    if n == 0 {
        return Err(fail(StatusCode::BAD_REQUEST, "empty upload"));
    }
    f.sync_all().await.map_err(io)
}

/// The helper could not be asked (503), or refused or failed (422, with its reason).
fn helper_fail(e: helper::HelperError) -> Fail {
    match e {
        helper::HelperError::Unavailable(_) => fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        helper::HelperError::Failed(_) => fail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

/// A query parameter's value, as sent (the values here are plain words and numbers).
fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A 400 naming the field to fix.
fn field_fail(field: &str, msg: impl Into<String>) -> Fail {
    Fail(
        StatusCode::BAD_REQUEST,
        ApiError {
            error: msg.into(),
            field: Some(field.into()),
        },
    )
}

impl From<DirectoryError> for Fail {
    fn from(e: DirectoryError) -> Fail {
        let field = e.field().map(str::to_string);
        let status = match &e {
            DirectoryError::Invalid { .. } => StatusCode::BAD_REQUEST,
            DirectoryError::Exists { .. } | DirectoryError::InUse(_) => StatusCode::CONFLICT,
            DirectoryError::NotFound(_) => StatusCode::NOT_FOUND,
            DirectoryError::Store(s) => return s_fail(s),
        };
        Fail(
            status,
            ApiError {
                error: e.to_string(),
                field,
            },
        )
    }
}

fn s_fail(e: &StoreError) -> Fail {
    let status = match e {
        StoreError::NotFound => StatusCode::NOT_FOUND,
        StoreError::Forbidden => StatusCode::FORBIDDEN,
        StoreError::Exists(_) | StoreError::Conflict(_) => StatusCode::CONFLICT,
        StoreError::Invalid(_) | StoreError::OverQuota => StatusCode::BAD_REQUEST,
        StoreError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        _ => {
            log::error!("admin: store failure: {e}");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    fail(status, e.to_string())
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        s_fail(&e)
    }
}

fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header("Cache-Control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn no_content() -> Resp {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

/// Decodes %XX escapes in a path segment (collection names may hold spaces or slashes).
fn percent_decode(s: &str) -> Result<String, Fail> {
    bureau_core::url::decode(s).ok_or_else(|| {
        fail(
            StatusCode::BAD_REQUEST,
            "the address is badly percent-encoded",
        )
    })
}

fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn cookie_value(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
}

async fn body<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, Fail> {
    let max = bureau_core::limits::get().admin_body_bytes;
    let bytes = Limited::new(req.into_body(), max)
        .collect()
        .await
        .map_err(|_| {
            fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {max} bytes"),
            )
        })?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| fail(StatusCode::BAD_REQUEST, format!("JSON: {e}")))
}

/// Who the request acts as, after the session check.
struct Who {
    /// The signed-in uid, `None` for the socket.
    uid: Option<String>,
    admin: bool,
}

impl AdminApi {
    pub fn new(auth: Auth, info: Arc<DaemonInfo>, session_minutes: u64) -> AdminApi {
        AdminApi {
            auth,
            queue: None,
            certs: None,
            proxy: None,
            samba: None,
            info,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            session_ttl: Duration::from_secs(session_minutes.max(1) * 60),
            setup_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Serves the mail queue's endpoints.
    pub fn with_queue(mut self, queue: bureau_smtp::Queue) -> AdminApi {
        self.queue = Some(queue);
        self
    }

    /// Serves the web proxy's endpoints.
    pub fn with_proxy(mut self, proxy: ProxySetup) -> AdminApi {
        self.proxy = Some(Arc::new(proxy));
        self
    }

    /// Serves the file server's endpoints.
    pub fn with_samba(mut self, samba: Arc<bureau_sysctl::samba::Keeper>) -> AdminApi {
        self.samba = Some(samba);
        self
    }

    /// Serves the certificate's endpoints.
    pub fn with_certs(mut self, certs: Arc<bureau_core::tls::CertStore>) -> AdminApi {
        self.certs = Some(certs);
        self
    }

    fn certs(&self) -> Result<&bureau_core::tls::CertStore, Fail> {
        self.certs
            .as_deref()
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, "no certificate store"))
    }

    fn queue(&self) -> Result<&bureau_smtp::Queue, Fail> {
        self.queue
            .as_ref()
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, "mail is not enabled"))
    }

    fn dir(&self) -> &Directory {
        self.auth.directory()
    }

    pub fn info(&self) -> &DaemonInfo {
        &self.info
    }

    /// The directory's store (for the backup download, which streams outside `handle`).
    pub fn store(&self) -> &bureau_store::Store {
        self.dir().store()
    }

    /// The JSON error answer for a caller who is not an administrator; None for one who is.
    pub fn refuse_unless_admin(&self, req: &Request<Incoming>, caller: Caller) -> Option<Resp> {
        match self.who(req, caller) {
            Ok(w) if w.admin => None,
            Ok(_) => Some(json(
                StatusCode::FORBIDDEN,
                &fail(StatusCode::FORBIDDEN, "administrators only").1,
            )),
            Err(Fail(status, body)) => Some(json(status, &body)),
        }
    }

    /// Answers one request; never fails (errors are JSON bodies).
    pub async fn handle(&self, req: Request<Incoming>, caller: Caller) -> Resp {
        // Changes are logged (who, what, the answer): the console's log page is the audit trail.
        let change = (req.method() != Method::GET && req.method() != Method::HEAD).then(|| {
            let who = match caller {
                Caller::Socket => "the local administrator".to_string(),
                Caller::Web(ip) => match self.who(&req, caller) {
                    Ok(w) => format!("{} from {ip}", w.uid.unwrap_or_default()),
                    Err(_) => format!("{ip}"),
                },
            };
            (who, req.method().clone(), req.uri().path().to_string())
        });
        let resp = match self.route(req, caller).await {
            Ok(r) => r,
            Err(Fail(status, body)) => json(status, &body),
        };
        if let Some((who, method, path)) = change
            && path != "/api/v1/session"
        {
            log::info!(
                "admin: {who}: {method} {path} -> {}",
                resp.status().as_u16()
            );
        }
        resp
    }

    fn who(&self, req: &Request<Incoming>, caller: Caller) -> Result<Who, Fail> {
        if let Caller::Socket = caller {
            return Ok(Who {
                uid: None,
                admin: true,
            });
        }
        let token =
            cookie_value(req).ok_or_else(|| fail(StatusCode::UNAUTHORIZED, "sign in first"))?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        let s = sessions
            .get(&token)
            .ok_or_else(|| fail(StatusCode::UNAUTHORIZED, "session expired; sign in again"))?;
        // Every change carries the session's CSRF token.
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let sent = req
                .headers()
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            if sent != Some(s.csrf.as_str()) {
                return Err(fail(StatusCode::FORBIDDEN, "missing or wrong CSRF token"));
            }
        }
        Ok(Who {
            uid: Some(s.uid.clone()),
            admin: s.admin,
        })
    }

    async fn route(&self, req: Request<Incoming>, caller: Caller) -> Result<Resp, Fail> {
        let path = req.uri().path().to_string();
        let Some(rest) = path.strip_prefix("/api/v1/") else {
            return Err(fail(StatusCode::NOT_FOUND, "no such endpoint"));
        };
        let seg: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let method = req.method().clone();

        // First-boot setup: the token is the credential.
        if seg == ["setup"] {
            return match method {
                Method::GET => Ok(json(
                    StatusCode::OK,
                    &SetupState {
                        pending: setup::read(&self.info.setup_token).is_some()
                            && !setup::has_admin(self.dir())?,
                        hostname: self.info.hostname.clone(),
                        hostname_fixed: self.info.hostname_fixed,
                        timezone: bureau_core::system::timezone(&self.info.system_dir),
                    },
                )),
                Method::POST => self.setup(req, caller).await,
                _ => Err(fail(StatusCode::METHOD_NOT_ALLOWED, "GET or POST")),
            };
        }
        // Signing in and out needs no session.
        if seg == ["session"] {
            return match (method, caller) {
                (Method::POST, Caller::Web(ip)) => self.sign_in(req, ip).await,
                (Method::GET, _) => {
                    let who = self.who(&req, caller)?;
                    self.session_info(&req, who)
                }
                (Method::DELETE, _) => {
                    self.who(&req, caller)?;
                    if let Some(t) = cookie_value(&req) {
                        self.sessions
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&t);
                    }
                    let mut r = no_content();
                    r.headers_mut().insert(
                        SET_COOKIE,
                        format!(
                            "{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
                        )
                        .parse()
                        .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, "cookie"))?,
                    );
                    Ok(r)
                }
                _ => Err(fail(StatusCode::METHOD_NOT_ALLOWED, "use POST to sign in")),
            };
        }

        let who = self.who(&req, caller)?;
        let admin_only = || {
            if who.admin {
                Ok(())
            } else {
                Err(fail(StatusCode::FORBIDDEN, "administrators only"))
            }
        };
        let seg = seg.as_slice();
        match (&method, seg) {
            (&Method::GET, ["status"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.status()?))
            }
            (&Method::GET, ["check"]) => {
                admin_only()?;
                let dir = self.dir().clone();
                let broken = tokio::task::spawn_blocking(move || {
                    bureau_dav::check::broken_objects(dir.store(), &dir)
                })
                .await
                .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                .map_err(Fail::from)?;
                Ok(json(StatusCode::OK, &broken))
            }
            // ---- service accounts (LDAP binds for LAN applications) ----
            (&Method::GET, ["services"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.dir().service_accounts()?))
            }
            (&Method::POST, ["services"]) => {
                admin_only()?;
                let new: NewServiceAccount = body(req).await?;
                let made = self
                    .dir()
                    .add_service_account(&new.name, new.description.as_deref().unwrap_or(""))
                    .await?;
                Ok(json(StatusCode::CREATED, &self.service_credentials(made)?))
            }
            (&Method::POST, ["services", name, "password"]) => {
                admin_only()?;
                let reset = self.dir().reset_service_account(name).await?;
                Ok(json(StatusCode::OK, &self.service_credentials(reset)?))
            }
            (&Method::DELETE, ["services", name]) => {
                admin_only()?;
                self.dir().delete_service_account(name).await?;
                Ok(no_content())
            }
            // ---- the web proxy ----
            (&Method::GET, ["proxy"]) => {
                admin_only()?;
                Ok(json(
                    StatusCode::OK,
                    &bureau_sysctl::proxy::load(self.dir().store()).map_err(Fail::from)?,
                ))
            }
            (&Method::PUT, ["proxy"]) => {
                admin_only()?;
                let s: bureau_sysctl::proxy::ProxySettings = body(req).await?;
                Ok(json(StatusCode::OK, &self.apply_proxy(s).await?))
            }
            (&Method::GET, ["proxy", "summary"]) => {
                admin_only()?;
                let setup = self.proxy_setup()?;
                let log = match tokio::fs::read(&setup.cfg.access_log).await {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => return Err(fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                };
                let dir = self.dir();
                let person = |name: &str| match dir.user_by_login(name) {
                    Ok(Some(u)) => u.uid,
                    _ => name.to_string(),
                };
                Ok(json(
                    StatusCode::OK,
                    &bureau_sysctl::proxy::summarize(&log, 10, person),
                ))
            }
            // ---- the file server ----
            (&Method::GET, ["samba"]) => {
                admin_only()?;
                let keeper = self.samba()?;
                Ok(json(
                    StatusCode::OK,
                    &SambaState {
                        settings: bureau_sysctl::samba::load(self.dir().store())
                            .map_err(Fail::from)?,
                        last: keeper.last(),
                    },
                ))
            }
            (&Method::PUT, ["samba"]) => {
                admin_only()?;
                let keeper = self.samba()?;
                let s: bureau_sysctl::samba::SambaSettings = body(req).await?;
                keeper
                    .check(&s)
                    .map_err(|e| field_fail(&e.field, e.message))?;
                match keeper.apply(s).await {
                    Ok((settings, report)) => {
                        log::info!("admin: file server settings applied");
                        Ok(json(StatusCode::OK, &SambaApplied { settings, report }))
                    }
                    Err(e) => Err(helper_fail(e)),
                }
            }
            (&Method::GET, ["samba", "status"]) => {
                admin_only()?;
                self.samba()?;
                let out = helper::call(
                    &self.info.helper_socket,
                    &helper::Request::SambaStatus,
                    Duration::from_secs(30),
                )
                .await
                .map_err(helper_fail)?;
                let status: serde_json::Value = serde_json::from_str(&out)
                    .map_err(|e| fail(StatusCode::BAD_GATEWAY, e.to_string()))?;
                Ok(json(StatusCode::OK, &status))
            }
            // ---- the TLS certificate ----
            (&Method::GET, ["certificate"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.certs()?.info()))
            }
            (&Method::PUT, ["certificate"]) => {
                admin_only()?;
                let up: NewCertificate = body(req).await?;
                match self
                    .certs()?
                    .install(up.cert_pem.as_bytes(), up.key_pem.as_bytes())
                {
                    Ok(info) => Ok(json(StatusCode::OK, &info)),
                    Err(e) => {
                        let msg = e.to_string();
                        let field = if msg.contains("key") {
                            "key_pem"
                        } else {
                            "cert_pem"
                        };
                        Err(field_fail(field, msg.trim_start_matches("TLS setup: ")))
                    }
                }
            }
            (&Method::DELETE, ["certificate"]) => {
                admin_only()?;
                self.certs()?
                    .remove_uploaded()
                    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                Ok(no_content())
            }
            (&Method::GET, ["logs"]) => {
                admin_only()?;
                let q = |k: &str| query_param(&req, k);
                let after = q("after").and_then(|v| v.parse().ok()).unwrap_or(0);
                let level = match q("level").as_deref() {
                    None | Some("") => log::LevelFilter::Info,
                    Some(l) => l
                        .parse()
                        .map_err(|_| field_fail("level", "level is error, warn, info or debug"))?,
                };
                let limit = q("limit")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(500usize)
                    .min(5000);
                let service = q("service").filter(|s| !s.is_empty());
                let entries = if q("source").as_deref() == Some("journal") {
                    bureau_core::logging::journal(level, service.as_deref(), limit)
                        .await
                        .map_err(|e| {
                            fail(
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("the system journal cannot be read: {e}"),
                            )
                        })?
                } else {
                    bureau_core::logging::recent(after, level, service.as_deref(), limit)
                };
                Ok(json(StatusCode::OK, &entries))
            }
            // ---- domains ----
            (&Method::GET, ["domains"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.dir().domains()?))
            }
            (&Method::POST, ["domains"]) => {
                admin_only()?;
                let nd: NewDomain = body(req).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &self.dir().add_domain(&nd.name).await?,
                ))
            }
            (&Method::PATCH, ["domains", name]) => {
                admin_only()?;
                let ch: DomainChanges = body(req).await?;
                Ok(json(
                    StatusCode::OK,
                    &self
                        .dir()
                        .set_catch_all(name, ch.catch_all.as_deref())
                        .await?,
                ))
            }
            (&Method::GET, ["domains", name, "dns"]) => {
                admin_only()?;
                let mut records = self.dns_records(name)?;
                // ?check=1: whether each is published yet, asked of DNS.
                if query_param(&req, "check").as_deref() == Some("1")
                    && let Some(q) = &self.queue
                {
                    let wanted: Vec<(String, String, String)> = records
                        .iter()
                        .map(|r| (r.name.clone(), r.kind.clone(), r.value.clone()))
                        .collect();
                    for (r, p) in records.iter_mut().zip(q.check_dns(&wanted).await) {
                        r.published = Some(p);
                    }
                }
                Ok(json(StatusCode::OK, &records))
            }
            (&Method::DELETE, ["domains", name]) => {
                admin_only()?;
                self.dir().delete_domain(name).await?;
                Ok(no_content())
            }
            // ---- users ----
            (&Method::GET, ["users"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.dir().users()?))
            }
            (&Method::POST, ["users"]) => {
                admin_only()?;
                let nu: NewUser = body(req).await?;
                Ok(json(StatusCode::CREATED, &self.dir().add_user(nu).await?))
            }
            (&Method::GET, ["users", uid]) => {
                if !who.admin && who.uid.as_deref() != Some(*uid) {
                    return Err(fail(StatusCode::FORBIDDEN, "administrators only"));
                }
                Ok(json(StatusCode::OK, &self.user_detail(uid)?))
            }
            (&Method::GET, ["users", uid, "setup-qr.svg"]) => {
                if !who.admin && who.uid.as_deref() != Some(*uid) {
                    return Err(fail(StatusCode::FORBIDDEN, "administrators only"));
                }
                // The user's own console page, at the name the browser used for the box.
                let host = req
                    .headers()
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| {
                        !h.is_empty()
                            && h.len() < 256
                            && h.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
                    })
                    .unwrap_or(&self.info.hostname)
                    .to_string();
                let url = format!("https://{host}/admin/#/me");
                let code = qrcode::QrCode::new(url.as_bytes())
                    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                let svg = code
                    .render::<qrcode::render::svg::Color>()
                    .min_dimensions(200, 200)
                    .build();
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "image/svg+xml")
                    .header("cache-control", "no-store")
                    .body(Full::new(Bytes::from(svg)))
                    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
            }
            (&Method::PATCH, ["users", uid]) => {
                admin_only()?;
                let ch: UserChanges = body(req).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.dir().update_user(uid, ch).await?,
                ))
            }
            (&Method::PUT, ["users", uid, "password"]) => {
                if !who.admin && who.uid.as_deref() != Some(*uid) {
                    return Err(fail(StatusCode::FORBIDDEN, "administrators only"));
                }
                let pc: PasswordChange = body(req).await?;
                self.dir().set_password(uid, &pc.password).await?;
                Ok(no_content())
            }
            (&Method::DELETE, ["users", uid]) => {
                admin_only()?;
                if who.uid.as_deref() == Some(*uid) {
                    return Err(fail(
                        StatusCode::CONFLICT,
                        "you cannot delete your own account",
                    ));
                }
                self.dir().delete_user(uid).await?;
                Ok(no_content())
            }
            // ---- a user's phones and other sync devices ----
            (&Method::GET, ["users", uid, "devices"]) => {
                admin_only()?;
                let p = self.principal_of(uid)?;
                let r = self.dir().store().reader(bureau_store::Actor::System)?;
                Ok(json(StatusCode::OK, &r.devices(p)?))
            }
            (&Method::POST, ["users", uid, "devices", id, "wipe"]) => {
                admin_only()?;
                let p = self.principal_of(uid)?;
                let store = self.dir().store();
                let mut d = store
                    .reader(bureau_store::Actor::System)?
                    .device(p, id)?
                    .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("no device {id}")))?;
                // Asked to provision again, the device is told to wipe itself.
                d.wipe_requested = true;
                d.policy_key = 0;
                store
                    .write(bureau_store::Actor::System, vec![], move |w| {
                        w.put_device(p, &d)
                    })
                    .await?;
                log::warn!("admin: remote wipe of {uid}'s device {id} requested");
                Ok(no_content())
            }
            (&Method::DELETE, ["users", uid, "devices", id]) => {
                admin_only()?;
                let p = self.principal_of(uid)?;
                let store = self.dir().store();
                if store
                    .reader(bureau_store::Actor::System)?
                    .device(p, id)?
                    .is_none()
                {
                    return Err(fail(StatusCode::NOT_FOUND, format!("no device {id}")));
                }
                let id = id.to_string();
                store
                    .write(bureau_store::Actor::System, vec![], move |w| {
                        w.delete_device(p, &id)
                    })
                    .await?;
                Ok(no_content())
            }
            // ---- a user's collections (support and export) ----
            (&Method::GET, ["users", uid, "collections"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.collections(uid)?))
            }
            (&Method::GET, ["users", uid, "collections", name, "items"]) => {
                admin_only()?;
                Ok(json(
                    StatusCode::OK,
                    &self.items(uid, &percent_decode(name)?)?,
                ))
            }
            (&Method::GET, ["users", uid, "collections", name, "items", id]) => {
                admin_only()?;
                let id: u64 = id
                    .parse()
                    .map_err(|_| fail(StatusCode::NOT_FOUND, "no such item"))?;
                let body = self.item_content(uid, &percent_decode(name)?, id)?;
                log::info!("admin: item {id} of {uid}'s {name} read");
                Ok(Response::builder()
                    .status(StatusCode::OK)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_default())
            }
            // ---- a whole .ics or .vcf into a calendar or address book ----
            (&Method::POST, ["users", uid, "collections", name, "import"]) => {
                admin_only()?;
                let p = self.principal_of(uid)?;
                let name = percent_decode(name)?;
                let max = bureau_core::limits::get().admin_import_bytes;
                let data = Limited::new(req.into_body(), max)
                    .collect()
                    .await
                    .map_err(|_| {
                        fail(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("file over {max} bytes"),
                        )
                    })?
                    .to_bytes();
                let done = bureau_dav::import(self.dir().store(), p, &name, &data)
                    .await
                    .map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
                log::info!(
                    "admin: imported {} objects into {uid}'s {name}",
                    done.stored
                );
                Ok(json(
                    StatusCode::OK,
                    &ImportReport {
                        stored: done.stored,
                        refused: done.refused,
                    },
                ))
            }
            // ---- sharing a collection with users and groups ----
            (&Method::GET, ["users", uid, "collections", name, "shares"]) => {
                admin_only()?;
                Ok(json(
                    StatusCode::OK,
                    &self.shares(uid, &percent_decode(name)?)?,
                ))
            }
            (&Method::PUT, ["users", uid, "collections", name, "shares", with]) => {
                admin_only()?;
                let (uid, name, with) = (uid.to_string(), percent_decode(name)?, with.to_string());
                let ns: NewShare = body(req).await?;
                let right = match ns.access.as_str() {
                    "read" => Right::Read,
                    "read-write" => Right::ReadWrite,
                    "delegate" => Right::Delegate,
                    other => {
                        return Err(fail(
                            StatusCode::BAD_REQUEST,
                            format!("access {other:?}: read, read-write or delegate"),
                        ));
                    }
                };
                self.share(&uid, &name, &with, Some(right)).await?;
                Ok(no_content())
            }
            (&Method::DELETE, ["users", uid, "collections", name, "shares", with]) => {
                admin_only()?;
                let (uid, name, with) = (uid.to_string(), percent_decode(name)?, with.to_string());
                self.share(&uid, &name, &with, None).await?;
                Ok(no_content())
            }
            // ---- mail queue ----
            (&Method::GET, ["queue"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.queue()?.list()?))
            }
            (&Method::POST, ["queue", id, "retry"]) => {
                admin_only()?;
                self.queue()?.retry(id).await?;
                Ok(no_content())
            }
            (&Method::DELETE, ["queue", id]) => {
                admin_only()?;
                self.queue()?.delete(id).await?;
                Ok(no_content())
            }
            // ---- rooms and equipment ----
            (&Method::GET, ["resources"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.dir().resources()?))
            }
            (&Method::POST, ["resources"]) => {
                admin_only()?;
                let nr: NewResource = body(req).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &self.dir().add_resource(nr).await?,
                ))
            }
            (&Method::DELETE, ["resources", uid]) => {
                admin_only()?;
                self.dir().delete_resource(uid).await?;
                Ok(no_content())
            }
            // ---- groups ----
            (&Method::GET, ["groups"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.dir().groups()?))
            }
            (&Method::POST, ["groups"]) => {
                admin_only()?;
                let ng: NewGroup = body(req).await?;
                Ok(json(StatusCode::CREATED, &self.dir().add_group(ng).await?))
            }
            (&Method::GET, ["groups", name]) => {
                admin_only()?;
                let g = self.dir().group(name)?.ok_or_else(|| {
                    fail(StatusCode::NOT_FOUND, format!("group {name} not found"))
                })?;
                Ok(json(StatusCode::OK, &g))
            }
            (&Method::PUT, ["groups", name, "members"]) => {
                admin_only()?;
                let m: Members = body(req).await?;
                Ok(json(
                    StatusCode::OK,
                    &self.dir().set_group_members(name, m.members).await?,
                ))
            }
            (&Method::GET, ["groups", name, "collections"]) => {
                admin_only()?;
                Ok(json(
                    StatusCode::OK,
                    &self.collections_of(self.group_principal(name)?)?,
                ))
            }
            (&Method::POST, ["groups", name, "collections"]) => {
                admin_only()?;
                let name = name.to_string();
                let new: NewGroupCollection = body(req).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &self.add_group_collection(&name, new).await?,
                ))
            }
            (&Method::DELETE, ["groups", name, "collections", coll]) => {
                admin_only()?;
                let p = self.group_principal(name)?;
                let coll = percent_decode(coll)?;
                self.dir()
                    .store()
                    .write(Actor::System, vec![], move |w| {
                        let c = w.collection_by_name(p, &coll)?;
                        w.delete_collection(c.id)
                    })
                    .await
                    .map_err(Fail::from)?;
                Ok(no_content())
            }
            (&Method::DELETE, ["groups", name]) => {
                admin_only()?;
                self.dir().delete_group(name).await?;
                Ok(no_content())
            }
            // ---- the appliance: release, slots, updates ----
            (&Method::GET, ["system"]) => {
                admin_only()?;
                Ok(json(StatusCode::OK, &self.system().await))
            }
            (&Method::PUT, ["system", "settings"]) => {
                admin_only()?;
                let s: SystemSettings = body(req).await?;
                let (name, tz) = self.system_change(&s.hostname, &s.timezone)?;
                let restarting = self.apply_system(name, tz).await?;
                Ok(json(StatusCode::OK, &SystemChanged { restarting }))
            }
            (&Method::PUT, ["system", "update"]) => {
                admin_only()?;
                self.update(req).await
            }
            (&Method::POST, ["backup"]) => {
                admin_only()?;
                self.restore(req).await
            }
            (&Method::POST, ["system", "reboot"]) => {
                admin_only()?;
                helper::call(
                    &self.info.helper_socket,
                    &helper::Request::Reboot,
                    Duration::from_secs(10),
                )
                .await
                .map_err(|e| fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
                Ok(json(
                    StatusCode::ACCEPTED,
                    &Message {
                        message: "rebooting".into(),
                    },
                ))
            }
            _ => Err(fail(StatusCode::NOT_FOUND, "no such endpoint")),
        }
    }

    async fn sign_in(&self, req: Request<Incoming>, ip: IpAddr) -> Result<Resp, Fail> {
        let lr: LoginRequest = body(req).await?;
        let user = match self
            .auth
            .login(ip, &lr.login, &lr.password, "console")
            .await
        {
            Ok(u) => u,
            Err(AuthError::Refused) => {
                return Err(fail(
                    StatusCode::TOO_MANY_REQUESTS,
                    AuthError::Refused.to_string(),
                ));
            }
            Err(AuthError::Internal(_)) => {
                return Err(fail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "authentication unavailable",
                ));
            }
            Err(_) => {
                return Err(Fail(
                    StatusCode::UNAUTHORIZED,
                    ApiError {
                        error: "wrong login or password".into(),
                        field: Some("password".into()),
                    },
                ));
            }
        };
        self.open_session(user, StatusCode::OK)
    }

    /// A new console session for this user: its cookie and CSRF token.
    fn open_session(&self, user: bureau_directory::User, status: StatusCode) -> Result<Resp, Fail> {
        let token = random_token();
        let session = Session {
            uid: user.uid.clone(),
            admin: user.admin,
            csrf: random_token(),
        };
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                token.clone(),
                SessionData {
                    uid: user.uid,
                    admin: user.admin,
                    csrf: session.csrf.clone(),
                    expires: Instant::now() + self.session_ttl,
                },
            );
        let mut r = json(status, &session);
        let cookie = format!(
            "{COOKIE_NAME}={token}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            self.session_ttl.as_secs()
        );
        r.headers_mut().insert(
            SET_COOKIE,
            cookie
                .parse()
                .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, "cookie"))?,
        );
        Ok(r)
    }

    /// `POST /api/v1/setup`: the setup token creates the first administrator (and its mail
    /// domain, if new). On HTTPS the answer also signs the new administrator in.
    async fn setup(&self, req: Request<Incoming>, caller: Caller) -> Result<Resp, Fail> {
        const GUARD_KEY: &str = "(setup token)";
        let guard = self.auth.guard();
        if let Caller::Web(ip) = caller {
            if guard.is_locked(ip, GUARD_KEY) {
                return Err(fail(
                    StatusCode::TOO_MANY_REQUESTS,
                    AuthError::Refused.to_string(),
                ));
            }
            tokio::time::sleep(guard.delay(ip, GUARD_KEY)).await;
        }
        let sr: SetupRequest = body(req).await?;
        let _one = self.setup_lock.lock().await;
        // An administrator made another way (the CLI) ends setup even before the follower
        // has removed the token.
        if setup::has_admin(self.dir())? {
            setup::done(&self.info.setup_token)
                .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        }
        let Some(expected) = setup::read(&self.info.setup_token) else {
            return Err(fail(
                StatusCode::CONFLICT,
                "this box is already set up: sign in as its administrator",
            ));
        };
        if !setup::matches(&expected, &sr.token) {
            if let Caller::Web(ip) = caller {
                guard.record_failure(ip, GUARD_KEY);
                log::warn!("admin: wrong setup token from {ip}");
            }
            return Err(Fail(
                StatusCode::FORBIDDEN,
                ApiError {
                    error: "wrong setup token (it is shown on the box's screen)".into(),
                    field: Some("token".into()),
                },
            ));
        }
        let (new_name, timezone) = self.system_change(&sr.hostname, &sr.timezone)?;
        let dir = self.dir();
        let domain = sr
            .address
            .rsplit_once('@')
            .map(|(_, d)| d.to_lowercase())
            .ok_or_else(|| {
                Fail(
                    StatusCode::BAD_REQUEST,
                    ApiError {
                        error: "the address needs a domain: name@example.org".into(),
                        field: Some("address".into()),
                    },
                )
            })?;
        let new_domain = dir.domain(&domain)?.is_none();
        if new_domain {
            dir.add_domain(&domain).await?;
        }
        let added = dir
            .add_user(bureau_directory::NewUser {
                address: sr.address,
                display_name: sr.display_name,
                password: sr.password,
                admin: true,
                ..Default::default()
            })
            .await;
        let user = match added {
            Ok(u) => u,
            Err(e) => {
                // Bad input changes nothing: the domain made for it goes too.
                if new_domain && let Err(de) = dir.delete_domain(&domain).await {
                    log::error!("admin: setup could not remove {domain} again: {de}");
                }
                return Err(e.into());
            }
        };
        setup::done(&self.info.setup_token)
            .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        log::info!("admin: setup done; {} is the first administrator", user.uid);
        self.apply_system(new_name, timezone).await?;
        match caller {
            Caller::Web(_) => self.open_session(user, StatusCode::CREATED),
            Caller::Socket => Ok(json(StatusCode::CREATED, &user)),
        }
    }

    /// Checks a change of the box's name and time zone: (the new name if it is one, the
    /// time zone). Bad input is told on its field.
    fn system_change(
        &self,
        hostname: &Option<String>,
        timezone: &Option<String>,
    ) -> Result<(Option<String>, Option<String>), Fail> {
        let bad = |field: &str, msg: &str| {
            Fail(
                StatusCode::BAD_REQUEST,
                ApiError {
                    error: msg.into(),
                    field: Some(field.into()),
                },
            )
        };
        let name = match hostname.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
            None => None,
            Some(h) => {
                let h = bureau_directory::validate::domain(h)
                    .ok()
                    .filter(|h| h.contains('.'))
                    .ok_or_else(|| bad("hostname", "a full name, such as mail.example.com"))?;
                if h == self.info.hostname {
                    None
                } else if self.info.hostname_fixed {
                    return Err(bad(
                        "hostname",
                        "the configuration file sets it (server.hostname): change it there",
                    ));
                } else {
                    Some(h)
                }
            }
        };
        let tz = match timezone.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) if bureau_core::system::valid_timezone(t) => Some(t.to_string()),
            Some(_) => {
                return Err(bad(
                    "timezone",
                    "not a time zone of the zone database, such as Europe/Paris",
                ));
            }
        };
        Ok((name, tz))
    }

    /// Records the time zone (the appliance's /etc/localtime follows it at once) and the new
    /// name: the system takes it through the helper, the self-signed certificate is made
    /// again for it, and the daemon restarts under it. True when it restarts.
    async fn apply_system(&self, name: Option<String>, tz: Option<String>) -> Result<bool, Fail> {
        let dir = &self.info.system_dir;
        let io = |e: std::io::Error| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        if let Some(tz) = tz {
            bureau_core::system::set_timezone(dir, &tz).map_err(io)?;
            log::info!("admin: the time zone is {tz}");
        }
        let Some(name) = name else {
            return Ok(false);
        };
        bureau_core::system::set_hostname(dir, &name).map_err(io)?;
        if let Err(e) = helper::call(
            &self.info.helper_socket,
            &helper::Request::SetHostname { name: name.clone() },
            Duration::from_secs(10),
        )
        .await
        {
            log::warn!("admin: the system keeps its name until the next boot: {e}");
        }
        let tls = PathBuf::from(&self.info.data_dir).join("tls");
        for f in ["self-signed.crt", "self-signed.key"] {
            let _ = std::fs::remove_file(tls.join(f));
        }
        log::warn!("admin: the box is now {name}; restarting under it");
        self.restart_soon();
        Ok(true)
    }

    /// Has the daemon stop and start again once the current answer is out.
    fn restart_soon(&self) {
        let restart = self.info.restart.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            restart.notify_one();
        });
    }

    /// `GET /api/v1/system`: the release, the booted slot, and the slots as RAUC sees them.
    async fn system(&self) -> SystemInfo {
        let booted_slot = std::fs::read_to_string("/proc/cmdline").ok().and_then(|c| {
            c.split_whitespace()
                .find_map(|a| a.strip_prefix("rauc.slot="))
                .map(str::to_string)
        });
        let (slots, helper_error) = match helper::call(
            &self.info.helper_socket,
            &helper::Request::SlotStatus,
            Duration::from_secs(30),
        )
        .await
        {
            Ok(out) => (serde_json::from_str(&out).ok(), None),
            Err(e) => (None, Some(e.to_string())),
        };
        SystemInfo {
            release: std::fs::read_to_string(RELEASE_FILE)
                .ok()
                .map(|s| s.trim().to_string()),
            booted_slot,
            slots,
            helper_error,
            hostname: self.info.hostname.clone(),
            timezone: bureau_core::system::timezone(&self.info.system_dir),
            system_timezone: bureau_core::system::system_timezone(),
        }
    }

    /// `POST /api/v1/backup`: the body is a backup archive. It is unpacked and checked whole
    /// (every blob's hash, the schema) beside the store; only then is it left for the next
    /// start, which puts it in place of the store (kept aside, not deleted), and the daemon
    /// restarts. A damaged archive changes nothing.
    async fn restore(&self, req: Request<Incoming>) -> Result<Resp, Fail> {
        let data = PathBuf::from(&self.info.data_dir);
        let upload = data.join(format!("restore-upload-{}.tar.gz", &random_token()[..16]));
        let staging = data.join("restore-staging");
        let received = receive(req, &upload, self.info.max_restore_bytes, "backup").await;
        let staged = match received {
            Ok(()) => {
                let (upload, staging) = (upload.clone(), staging.clone());
                tokio::task::spawn_blocking(move || {
                    let f = std::fs::File::open(&upload)?;
                    bureau_store::backup::stage(std::io::BufReader::new(f), &staging)
                })
                .await
                .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
                .map(|r| r.map_err(|e| fail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())))
            }
            Err(f) => Err(f),
        };
        let _ = tokio::fs::remove_file(&upload).await;
        let info = staged??;
        let pending = data.join(bureau_store::backup::PENDING);
        let _ = tokio::fs::remove_dir_all(&pending).await;
        tokio::fs::rename(&staging, &pending)
            .await
            .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        log::warn!(
            "admin: a backup taken at {} is restored at the restart that follows",
            info.created
        );
        // Answered first, then the daemon stops and starts with it.
        self.restart_soon();
        Ok(json(StatusCode::ACCEPTED, &info))
    }

    /// `PUT /api/v1/system/update`: the body is a RAUC bundle. It is saved in the updates
    /// directory, installed by the helper into the other slot (RAUC checks its signature), then
    /// removed. The box boots the new slot at the next reboot (`POST /api/v1/system/reboot`).
    async fn update(&self, req: Request<Incoming>) -> Result<Resp, Fail> {
        let dir = &self.info.updates_dir;
        let io = |e: std::io::Error| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let path = dir.join(format!("upload-{}.raucb", &random_token()[..16]));
        let received = receive(req, &path, self.info.max_update_bytes, "bundle").await;
        let installed = match received {
            Ok(()) => Ok(helper::call(
                &self.info.helper_socket,
                &helper::Request::InstallUpdate {
                    bundle: path.clone(),
                },
                Duration::from_secs(31 * 60),
            )
            .await),
            Err(f) => Err(f),
        };
        let _ = tokio::fs::remove_file(&path).await;
        match installed? {
            Ok(_) => Ok(json(
                StatusCode::OK,
                &Message {
                    message: "installed; reboot to start it".into(),
                },
            )),
            Err(e) => Err(helper_fail(e)),
        }
    }

    fn session_info(&self, req: &Request<Incoming>, who: Who) -> Result<Resp, Fail> {
        let csrf = cookie_value(req)
            .and_then(|t| {
                let s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                s.get(&t).map(|s| s.csrf.clone())
            })
            .unwrap_or_default();
        Ok(json(
            StatusCode::OK,
            &Session {
                uid: who.uid.unwrap_or_default(),
                admin: who.admin,
                csrf,
            },
        ))
    }

    /// What to publish in DNS for a domain: MX, SPF, DKIM and DMARC.
    fn dns_records(&self, name: &str) -> Result<Vec<DnsRecord>, Fail> {
        let d = self
            .dir()
            .domain(name)?
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("domain {name} not found")))?;
        let host = &self.info.hostname;
        let rec = |name: String, kind: &str, value: String, purpose: &str| DnsRecord {
            name,
            kind: kind.into(),
            value,
            purpose: purpose.into(),
            published: None,
        };
        let mut out = vec![
            rec(
                format!("{}.", d.name),
                "MX",
                format!("10 {host}."),
                "mail for the domain comes to this box",
            ),
            rec(
                format!("{}.", d.name),
                "TXT",
                "v=spf1 mx ~all".into(),
                "SPF: the MX hosts may send the domain's mail",
            ),
        ];
        if let (Some(sel), Some(key)) = (&d.dkim_selector, &d.dkim_public_key) {
            out.push(rec(
                format!("{sel}._domainkey.{}.", d.name),
                "TXT",
                format!("v=DKIM1; k=rsa; p={key}"),
                "DKIM: the key outgoing mail is signed with",
            ));
        }
        out.push(rec(
            format!("_dmarc.{}.", d.name),
            "TXT",
            format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{}", d.name),
            "DMARC: what receivers do with mail that fails SPF and DKIM",
        ));
        out.push(rec(
            format!("autoconfig.{}.", d.name),
            "CNAME",
            format!("{host}."),
            "Thunderbird finds the mail, calendar and contacts settings by itself",
        ));
        for (service, port, what) in [
            ("_imaps._tcp", 993, "mail clients find IMAP (RFC 6186)"),
            (
                "_submissions._tcp",
                465,
                "mail clients find submission (RFC 8314)",
            ),
            (
                "_submission._tcp",
                587,
                "mail clients find submission with STARTTLS",
            ),
            ("_caldavs._tcp", 443, "calendar apps find CalDAV (RFC 6764)"),
            (
                "_carddavs._tcp",
                443,
                "contact apps find CardDAV (RFC 6764)",
            ),
        ] {
            out.push(rec(
                format!("{service}.{}.", d.name),
                "SRV",
                format!("0 1 {port} {host}."),
                what,
            ));
        }
        Ok(out)
    }

    fn principal_of(&self, uid: &str) -> Result<u64, Fail> {
        Ok(self
            .dir()
            .user(uid)?
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("user {uid} not found")))?
            .principal)
    }

    fn collections(&self, uid: &str) -> Result<Vec<CollectionInfo>, Fail> {
        self.collections_of(self.principal_of(uid)?)
    }

    fn samba(&self) -> Result<&bureau_sysctl::samba::Keeper, Fail> {
        self.samba.as_deref().ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                "the file server is not configured here",
            )
        })
    }

    fn proxy_setup(&self) -> Result<&ProxySetup, Fail> {
        self.proxy.as_deref().ok_or_else(|| {
            fail(
                StatusCode::NOT_FOUND,
                "the web proxy is not configured here",
            )
        })
    }

    /// Checks the settings, renders Squid's configuration, has Squid check it, and only then
    /// puts it (with the LDAP account's new secret) in place and asks for a reload. A
    /// configuration Squid refuses changes nothing.
    async fn apply_proxy(
        &self,
        s: bureau_sysctl::proxy::ProxySettings,
    ) -> Result<ProxyApplied, Fail> {
        use bureau_sysctl::proxy;
        let setup = self.proxy_setup()?;
        let accounts = proxy::Accounts::of(self.dir())
            .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        proxy::check(&s, &accounts).map_err(|e| field_fail(&e.field, e.message))?;
        let env = proxy::Env {
            http_port: setup.cfg.http_port.clone(),
            access_log: setup.cfg.access_log.clone(),
            state_dir: setup.state_dir.clone(),
            ldap_url: setup.ldap_url.clone(),
            bind_dn: self.service_dn(proxy::ACCOUNT)?,
            secret_file: setup.state_dir.join("ldap.secret"),
        };
        let text = proxy::render(&s, &accounts, &env);
        let io = |e: std::io::Error| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        tokio::fs::create_dir_all(&setup.state_dir)
            .await
            .map_err(io)?;
        let candidate = setup.state_dir.join("squid.conf.new");
        tokio::fs::write(&candidate, &text).await.map_err(io)?;
        if let Err(why) = proxy::squid_accepts(&setup.cfg.squid, &candidate).await {
            let _ = tokio::fs::remove_file(&candidate).await;
            return Err(Fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                ApiError {
                    error: format!("Squid refuses the configuration: {why}"),
                    field: None,
                },
            ));
        }
        // The LDAP account Squid binds with: a fresh password at each apply.
        let password = match self.dir().reset_service_account(proxy::ACCOUNT).await {
            Ok((_, p)) => p,
            Err(bureau_directory::DirectoryError::NotFound(_)) => {
                self.dir()
                    .add_service_account(proxy::ACCOUNT, "The web proxy's sign-in (Squid)")
                    .await?
                    .1
            }
            Err(e) => return Err(e.into()),
        };
        // Readable by Squid's helpers through their group, by no one else.
        bureau_core::files::write_secret(
            &setup.state_dir.join("ldap.secret"),
            password.as_bytes(),
            0o640,
            Some(&setup.cfg.group),
        )
        .map_err(io)?;
        tokio::fs::rename(&candidate, setup.state_dir.join("squid.conf"))
            .await
            .map_err(io)?;
        bureau_sysctl::proxy::save(self.dir().store(), &s)
            .await
            .map_err(Fail::from)?;
        let reloaded = helper::call(
            &self.info.helper_socket,
            &helper::Request::ReloadProxy,
            Duration::from_secs(70),
        )
        .await;
        log::info!("admin: web proxy configuration applied");
        Ok(ProxyApplied {
            settings: s,
            config: setup.state_dir.join("squid.conf").display().to_string(),
            reloaded: reloaded.is_ok(),
            note: match reloaded {
                Ok(_) => "Squid reloaded".into(),
                Err(e) => format!("written; Squid not reloaded: {e}"),
            },
        })
    }

    /// What a made or reset service account's answer tells, once.
    fn service_credentials(
        &self,
        (account, password): (bureau_directory::service::ServiceAccount, String),
    ) -> Result<NewServiceCredentials, Fail> {
        Ok(NewServiceCredentials {
            bind_dn: self.service_dn(&account.name)?,
            account,
            password,
        })
    }

    /// The DN a service account binds with (under the first domain; any domain works).
    fn service_dn(&self, name: &str) -> Result<String, Fail> {
        let first = self
            .dir()
            .domains()?
            .into_iter()
            .next()
            .map(|d| d.name)
            .unwrap_or_default();
        Ok(format!(
            "cn={name},ou=services,{}",
            bureau_directory::ldap_suffix(&first)
        ))
    }

    fn group_principal(&self, name: &str) -> Result<u64, Fail> {
        Ok(self
            .dir()
            .group(name)?
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("group {name} not found")))?
            .principal)
    }

    /// A mailbox, calendar or address book owned by a group, which its members may read
    /// and write (IMAP shows it as Shared/<group>/<name>; DAV lists it in their homes).
    async fn add_group_collection(
        &self,
        group: &str,
        new: NewGroupCollection,
    ) -> Result<CollectionInfo, Fail> {
        let p = self.group_principal(group)?;
        let name = new.name.trim().to_string();
        let ok = (1..=64).contains(&name.chars().count())
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
        if !ok || name.eq_ignore_ascii_case("INBOX") {
            return Err(field_fail(
                "name",
                "1 to 64 letters, digits, spaces, '-', '_' or '.' (not INBOX)",
            ));
        }
        let kind = match new.kind.as_str() {
            "mailbox" => bureau_store::CollectionKind::Mailbox,
            "calendar" => bureau_store::CollectionKind::Calendar,
            "addressbook" => bureau_store::CollectionKind::AddressBook,
            _ => return Err(field_fail("kind", "mailbox, calendar or addressbook")),
        };
        let c = self
            .dir()
            .store()
            .write(Actor::System, vec![], move |w| {
                let c = w.create_collection(p, kind, &name)?;
                if kind != bureau_store::CollectionKind::Mailbox {
                    w.set_collection_props(c.id, &[("displayname".into(), Some(name.clone()))])?;
                }
                w.grant(c.id, p, Some(Right::ReadWrite))?;
                Ok::<_, bureau_store::StoreError>(c)
            })
            .await
            .map_err(|e| match e {
                bureau_store::StoreError::Exists(_) => Fail(
                    StatusCode::CONFLICT,
                    ApiError {
                        error: format!("{group} already has a {} of that name", new.kind),
                        field: Some("name".into()),
                    },
                ),
                e => Fail::from(e),
            })?;
        Ok(CollectionInfo {
            id: c.id,
            kind: format!("{:?}", c.kind).to_lowercase(),
            name: c.name,
            items: 0,
            modseq: c.modseq,
        })
    }

    fn collections_of(&self, p: u64) -> Result<Vec<CollectionInfo>, Fail> {
        let r = self.dir().store().reader(Actor::System)?;
        let mut out = Vec::new();
        for c in r.collections_of(p)? {
            out.push(CollectionInfo {
                items: r.items(c.id)?.len(),
                id: c.id,
                kind: format!("{:?}", c.kind).to_lowercase(),
                name: c.name,
                modseq: c.modseq,
            });
        }
        Ok(out)
    }

    fn items(&self, uid: &str, name: &str) -> Result<Vec<ItemInfo>, Fail> {
        let p = self.principal_of(uid)?;
        let r = self.dir().store().reader(Actor::System)?;
        let c = r.collection_by_name(p, name)?;
        Ok(r.items(c.id)?
            .into_iter()
            .map(|i| ItemInfo {
                id: i.id,
                size: i.size(),
                date: i.date,
                modseq: i.modseq,
                name: i.name,
                flags: i.flags,
            })
            .collect())
    }

    fn shares(&self, uid: &str, name: &str) -> Result<Vec<ShareInfo>, Fail> {
        let p = self.principal_of(uid)?;
        let r = self.dir().store().reader(Actor::System)?;
        let c = r.collection_by_name(p, name)?;
        let mut out = Vec::new();
        for (who, right) in r.grants(c.id)? {
            out.push(ShareInfo {
                with: r.principal(who)?.name,
                access: match right {
                    Right::Read => "read",
                    Right::ReadWrite => "read-write",
                    Right::Delegate => "delegate",
                }
                .into(),
            });
        }
        Ok(out)
    }

    /// Grants (Some) or revokes (None) `with`'s right on `uid`'s collection `name`.
    async fn share(
        &self,
        uid: &str,
        name: &str,
        with: &str,
        right: Option<Right>,
    ) -> Result<(), Fail> {
        let p = self.principal_of(uid)?;
        let (name, grantee) = (name.to_string(), with.to_string());
        self.dir()
            .store()
            .write(Actor::System, vec![], move |w| {
                let c = w.collection_by_name(p, &name)?;
                let who = w.principal_by_name(&grantee)?;
                w.grant(c.id, who.id, right)
            })
            .await?;
        log::info!("admin: {uid}'s collection shared: {with} now has {right:?}");
        Ok(())
    }

    fn item_content(&self, uid: &str, name: &str, id: u64) -> Result<Vec<u8>, Fail> {
        let p = self.principal_of(uid)?;
        let r = self.dir().store().reader(Actor::System)?;
        let c = r.collection_by_name(p, name)?;
        let item = r.item(c.id, id)?;
        Ok(r.content(&item)?)
    }

    fn user_detail(&self, uid: &str) -> Result<UserDetail, Fail> {
        let user = self
            .dir()
            .user(uid)?
            .ok_or_else(|| fail(StatusCode::NOT_FOUND, format!("user {uid} not found")))?;
        let r = self.dir().store().reader(Actor::System)?;
        let usage_bytes = r.usage(user.principal)?;
        let groups = self
            .dir()
            .groups()?
            .into_iter()
            .filter(|g| g.members.contains(&user.uid))
            .map(|g| g.name)
            .collect();
        Ok(UserDetail {
            user,
            usage_bytes,
            groups,
        })
    }

    fn status(&self) -> Result<Status, Fail> {
        let d = self.dir();
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: self.info.hostname.clone(),
            uptime_secs: self.info.started.elapsed().as_secs(),
            services: self
                .info
                .services
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            domains: d.domains()?.len(),
            users: d.users()?.len(),
            groups: d.groups()?.len(),
            data_dir: self.info.data_dir.clone(),
            schema_version: bureau_store::SCHEMA_VERSION,
            connections: self.info.inflight.as_ref().map_or(0, |s| s.in_flight()),
            memory_bytes: resident_bytes(),
            disk: nix::sys::statvfs::statvfs(self.info.data_dir.as_str())
                .ok()
                .map(|st| DiskSpace {
                    total_bytes: st.blocks() * st.fragment_size(),
                    free_bytes: st.blocks_available() * st.fragment_size(),
                }),
            queued: self
                .queue
                .as_ref()
                .and_then(|q| q.list().ok())
                .map_or(0, |l| l.len()),
            problems: bureau_core::logging::recent(0, log::LevelFilter::Warn, None, 10),
            internal_errors: bureau_core::fence::panics(),
            unclean_stop: self.info.unclean_stop,
        })
    }
}

/// The daemon's resident memory, from /proc (0 where there is none).
fn resident_bytes() -> u64 {
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
