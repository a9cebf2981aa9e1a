//! The admin API: JSON over HTTP, served on the daemon's unix socket for the CLI (the
//! socket's file permissions are the authentication) and on HTTPS for the console (a session
//! cookie from a password login, and a CSRF token on every change).
//!
//! Rights: the socket acts as the system. On HTTPS, administrators may do everything; any
//! signed-in user may read its own record and change its own password; the rest is 403.

pub mod api;
pub mod client;
mod collections;
mod domains;
mod factors;
mod groups;
mod health;
mod schedule;
mod services;
pub mod setup;
mod system;
mod users;

use api::*;
use bureau_core::{Auth, AuthError, helper};
use bureau_directory::{Directory, DirectoryError};
use bureau_store::{Actor, Right, StoreError};
use bureau_words::{Said, said};
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

/// A console session. What the user may do is read from the directory at each request,
/// not kept here: a demoted or disabled account loses its powers at once.
struct SessionData {
    uid: String,
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
    /// The ports clients use (the device-setup page, the profile).
    pub ports: bureau_dav::autoconfig::Ports,
}

/// The appliance's release, written into its root filesystem by the image builder.
const RELEASE_FILE: &str = "/etc/bureau/release";

/// What the admin API runs: every service it answers for.
pub struct Services {
    pub auth: Auth,
    pub info: Arc<DaemonInfo>,
    pub session_minutes: u64,
    pub certs: Arc<bureau_core::tls::CertStore>,
    /// Certificates from an ACME authority for the box's name.
    pub acme: Arc<bureau_core::acme::Acme>,
    /// Squid's access log, for the console's summary.
    pub proxy_log: PathBuf,
    pub samba: Arc<bureau_daemons::samba::Keeper>,
    /// The mail queue; `None` when mail is turned off in the configuration.
    pub queue: Option<bureau_smtp::Queue>,
}

#[derive(Clone)]
pub struct AdminApi {
    auth: Auth,
    queue: Option<bureau_smtp::Queue>,
    certs: Arc<bureau_core::tls::CertStore>,
    acme: Arc<bureau_core::acme::Acme>,
    proxy_log: Arc<PathBuf>,
    samba: Arc<bureau_daemons::samba::Keeper>,
    info: Arc<DaemonInfo>,
    sessions: Arc<Mutex<HashMap<String, SessionData>>>,
    session_ttl: Duration,
    /// One first-boot setup at a time.
    setup_lock: Arc<tokio::sync::Mutex<()>>,
}

pub type Resp = Response<Full<Bytes>>;

/// An API failure: status and body.
struct Fail(StatusCode, ApiError);

fn fail(status: StatusCode, msg: Said) -> Fail {
    Fail(status, ApiError::said(msg, None))
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
    let io = |e: std::io::Error| {
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            said("err_plain").with("error", e),
        )
    };
    let mut f = tokio::fs::File::create(path).await.map_err(io)?;
    let mut body = req.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| fail(StatusCode::BAD_REQUEST, said("err_upload").with("e", &e)))?;
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
            said("err_over_mib")
                .with("what", what)
                .with("max20", max >> 20),
        ));
    }
    if n == 0 {
        return Err(fail(StatusCode::BAD_REQUEST, said("err_empty_upload")));
    }
    f.sync_all().await.map_err(io)
}

/// The helper could not be asked (503), or refused or failed (422, with its reason).
fn helper_fail(e: helper::HelperError) -> Fail {
    match e {
        helper::HelperError::Unavailable(_) => fail(
            StatusCode::SERVICE_UNAVAILABLE,
            said("err_helper_unavailable").with("error", e),
        ),
        helper::HelperError::Failed(_) => fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            said("err_helper_failed").with("error", e),
        ),
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
fn field_fail(field: &str, msg: Said) -> Fail {
    field_fail_as(StatusCode::BAD_REQUEST, field, msg)
}

/// A failure about a field, of another status.
fn field_fail_as(status: StatusCode, field: &str, msg: Said) -> Fail {
    Fail(status, ApiError::said(msg, Some(field)))
}

impl From<DirectoryError> for Fail {
    fn from(e: DirectoryError) -> Fail {
        let (status, said) = match &e {
            DirectoryError::Invalid { message, .. } => (StatusCode::BAD_REQUEST, message.clone()),
            DirectoryError::Exists { value, .. } => (
                StatusCode::CONFLICT,
                said("err_already_exists").with("value", value),
            ),
            DirectoryError::InUse(s) => (StatusCode::CONFLICT, s.clone()),
            DirectoryError::LastAdmin(uid) => (
                StatusCode::CONFLICT,
                said("err_last_admin").with("uid", uid),
            ),
            DirectoryError::NotFound(s) => (StatusCode::NOT_FOUND, s.clone()),
            DirectoryError::Store(s) => return s_fail(s),
        };
        // The English says the field ("password: too short"), for the CLI.
        let mut body = ApiError::said(said, e.field());
        body.error = e.to_string();
        Fail(status, body)
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
    let said = match e {
        StoreError::NotFound => said("err_store_not_found"),
        StoreError::Forbidden => said("err_store_forbidden"),
        StoreError::Exists(what) => said("err_store_exists").with("what", what),
        StoreError::OverQuota => said("err_store_over_quota"),
        StoreError::Invalid(why) => said("err_store_invalid").with("why", why),
        StoreError::DiskFull(_) => said("err_store_disk_full"),
        e => said("err_plain").with("error", e),
    };
    fail(status, said)
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        s_fail(&e)
    }
}

fn admin_only(who: &Who) -> Result<(), Fail> {
    if who.admin {
        Ok(())
    } else {
        Err(fail(StatusCode::FORBIDDEN, said("err_administrators_only")))
    }
}

/// An administrator, or the user `uid` itself.
fn own_or_admin(who: &Who, uid: &str) -> Result<(), Fail> {
    if who.admin || who.uid.as_deref() == Some(uid) {
        Ok(())
    } else {
        Err(fail(StatusCode::FORBIDDEN, said("err_administrators_only")))
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

/// Decodes %XX escapes in a path segment.
fn percent_decode(s: &str) -> Result<String, Fail> {
    bureau_core::url::decode(s).ok_or_else(|| {
        fail(
            StatusCode::BAD_REQUEST,
            said("err_the_address_is_badly_percent_encoded"),
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
                said("err_body_over_bytes").with("max", max),
            )
        })?
        .to_bytes();
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let (field, why) = unreadable(&field, e.inner());
        let mut body = ApiError::said(why, field.as_deref());
        if let Some(f) = &field {
            body.error = format!("{f}: {}", body.error);
        }
        Fail(StatusCode::BAD_REQUEST, body)
    })
}

/// Why a request body could not be read, in words, and the field it is about (the
/// console puts the message beside it): serde's "invalid value: integer `-5`, expected
/// u64" becomes "quota: a whole number of 0 or more".
fn unreadable(path: &str, e: &serde_json::Error) -> (Option<String>, Said) {
    use serde_json::error::Category;
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    if let Some(missing) = text
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        return (Some(missing.to_string()), said("err_field_needed"));
    }
    let field = Some(path.to_string()).filter(|p| !p.is_empty() && p != ".");
    let why = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            return (None, said("err_not_json"));
        }
        Category::Data => {
            let expected = text.rsplit("expected ").next().unwrap_or("");
            match expected.trim() {
                "u64" | "u32" | "u16" | "u8" | "usize" => said("err_expected_count"),
                "i64" | "i32" => said("err_expected_number"),
                "a boolean" => said("err_expected_boolean"),
                "a string" => said("err_expected_text"),
                "a sequence" => said("err_expected_list"),
                e if e.starts_with("one of") => said("err_expected_one_of").with("values", &e[6..]),
                _ => said("err_expected_other"),
            }
        }
    };
    (field, why)
}

/// Who the request acts as, after the session check.
struct Who {
    /// The signed-in uid, `None` for the socket.
    uid: Option<String>,
    admin: bool,
}

impl AdminApi {
    pub fn new(s: Services) -> AdminApi {
        AdminApi {
            auth: s.auth,
            queue: s.queue,
            certs: s.certs,
            acme: s.acme,
            proxy_log: Arc::new(s.proxy_log),
            samba: s.samba,
            info: s.info,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            session_ttl: Duration::from_secs(s.session_minutes.max(1) * 60),
            setup_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
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
                &fail(StatusCode::FORBIDDEN, said("err_administrators_only")).1,
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
        let token = cookie_value(req)
            .ok_or_else(|| fail(StatusCode::UNAUTHORIZED, said("err_sign_in_first")))?;
        let uid = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            sessions.retain(|_, s| s.expires > now);
            let s = sessions.get(&token).ok_or_else(|| {
                fail(
                    StatusCode::UNAUTHORIZED,
                    said("err_session_expired_sign_in_again"),
                )
            })?;
            // Every change carries the session's CSRF token.
            if req.method() != Method::GET && req.method() != Method::HEAD {
                let sent = req
                    .headers()
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok());
                if sent != Some(s.csrf.as_str()) {
                    return Err(fail(
                        StatusCode::FORBIDDEN,
                        said("err_missing_or_wrong_csrf_token"),
                    ));
                }
            }
            s.uid.clone()
        };
        // The account as it is now: disabled or deleted ends the session.
        match self.dir().user(&uid)? {
            Some(u) if u.enabled => Ok(Who {
                uid: Some(uid),
                admin: u.admin,
            }),
            _ => {
                self.sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&token);
                Err(fail(
                    StatusCode::UNAUTHORIZED,
                    said("err_this_account_is_disabled_sign_in"),
                ))
            }
        }
    }

    async fn route(&self, req: Request<Incoming>, caller: Caller) -> Result<Resp, Fail> {
        let path = req.uri().path().to_string();
        let Some(rest) = path.strip_prefix("/api/v1/") else {
            return Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint")));
        };
        // Each segment decoded once, here (a SyncML device's id holds ':', a collection's
        // name spaces or '/').
        let decoded: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect::<Result<_, _>>()?;
        let seg: Vec<&str> = decoded.iter().map(String::as_str).collect();
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
                        password_min_len: self.dir().min_password_len(),
                    },
                )),
                Method::POST => self.setup(req, caller).await,
                _ => Err(fail(
                    StatusCode::METHOD_NOT_ALLOWED,
                    said("err_get_or_post"),
                )),
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
                        .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, said("err_cookie")))?,
                    );
                    Ok(r)
                }
                _ => Err(fail(
                    StatusCode::METHOD_NOT_ALLOWED,
                    said("err_use_post_to_sign_in"),
                )),
            };
        }

        let who = self.who(&req, caller)?;
        let seg = seg.as_slice();
        match seg.first().copied() {
            Some("status" | "check" | "logs" | "certificate" | "system" | "backup" | "health") => {
                self.system_routes(&method, seg, req, &who).await
            }
            Some("services" | "proxy" | "samba") => {
                self.services_routes(&method, seg, req, &who).await
            }
            Some("domains" | "queue") => self.domains_routes(&method, seg, req, &who).await,
            Some("users") => self.users_routes(&method, seg, req, &who).await,
            Some("resources" | "groups") => self.groups_routes(&method, seg, req, &who).await,
            _ => Err(fail(StatusCode::NOT_FOUND, said("err_no_such_endpoint"))),
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
                    said("err_too_many_attempts"),
                ));
            }
            Err(AuthError::Internal(_)) => {
                return Err(fail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    said("err_authentication_unavailable"),
                ));
            }
            Err(_) => {
                let wrong = said("err_wrong_login_or_password");
                return Err(field_fail_as(StatusCode::UNAUTHORIZED, "password", wrong));
            }
        };
        self.second_factor(&user, lr.code.as_deref(), ip).await?;
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
                .map_err(|_| fail(StatusCode::INTERNAL_SERVER_ERROR, said("err_cookie")))?,
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
                    said("err_too_many_attempts"),
                ));
            }
            tokio::time::sleep(guard.delay(ip, GUARD_KEY)).await;
        }
        let sr: SetupRequest = body(req).await?;
        let _one = self.setup_lock.lock().await;
        // An administrator made another way (the CLI) ends setup even before the follower
        // has removed the token.
        if setup::has_admin(self.dir())? {
            setup::done(&self.info.setup_token).map_err(|e| {
                fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    said("err_plain").with("error", e),
                )
            })?;
        }
        let Some(expected) = setup::read(&self.info.setup_token) else {
            return Err(fail(
                StatusCode::CONFLICT,
                said("err_this_box_is_already_set_up"),
            ));
        };
        if !setup::matches(&expected, &sr.token) {
            if let Caller::Web(ip) = caller {
                guard.record_failure(ip, GUARD_KEY);
                log::warn!("admin: wrong setup token from {ip}");
            }
            let wrong = said("err_wrong_setup_token");
            return Err(field_fail_as(StatusCode::FORBIDDEN, "token", wrong));
        }
        let (new_name, timezone) = self.system_change(&sr.hostname, &sr.timezone)?;
        let dir = self.dir();
        let domain = sr
            .address
            .rsplit_once('@')
            .map(|(_, d)| d.to_lowercase())
            .ok_or_else(|| field_fail("address", said("err_the_address_needs_a_domain")))?;
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
        setup::done(&self.info.setup_token).map_err(|e| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                said("err_plain").with("error", e),
            )
        })?;
        log::info!("admin: setup done; {} is the first administrator", user.uid);
        self.apply_system(new_name, timezone).await?;
        match caller {
            Caller::Web(_) => self.open_session(user, StatusCode::CREATED),
            Caller::Socket => Ok(json(StatusCode::CREATED, &user)),
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
}

/// The daemon's resident memory, from /proc (0 where there is none).
fn resident_bytes() -> u64 {
    let pages: u64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
