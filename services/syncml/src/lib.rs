//! SyncML (OMA DS 1.1 and 1.2) over HTTPS: `POST /syncml` (also `/syncml/`,
//! `/syncml/index.html` and `/sync`), in XML or WBXML, answered in the encoding the client
//! used. One more view of the one store: what a device changes is what CardDAV, ActiveSync
//! and IMAP see, and the other way round.
//!
//! Layers: [`codec`] (bytes to a tree and back, sans I/O), [`message`] (the header, the
//! reply and its Statuses), `signin` (credentials and the domain's rules), `session` (the
//! protocol), `modes` (which sync a datastore gets), `datastore` (the store behind each
//! datastore name), `merge` and `formats` (a device's objects into stored ones), `devinf`
//! (what the server says of itself, and what a device holds), `devlog` (a device's
//! detailed session log, switched on by an administrator).
//!
//! A message without valid credentials and outside a session gets a 401, 403 or 407
//! Status with a Chal. The reply's RespURI carries the session (`?s=`, 128 random bits):
//! later messages go there and need no credentials. A replayed message (the same MsgID
//! again) gets the reply it got. A session idle for `SESSION_IDLE` is forgotten; its
//! datastores then sync slowly next time, as their anchors were not saved.

mod backup;
pub mod codec;
mod datastore;
mod devinf;
pub mod devlog;
mod files;
mod filestore;
mod formats;
mod itemformat;
mod kept;
mod kind;
mod mail;
mod merge;
pub mod message;
mod modes;
mod push;
mod san;
mod session;
mod sif;
mod signin;
mod vcal10;

use bureau_core::Auth;
use bureau_groupware::schedule::Scheduler;
use bureau_store::{Store, StoreError};
use bytes::Bytes;
use codec::Encoding;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use message::{Header, Reply};
use session::Session;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type Resp = Response<Full<Bytes>>;

/// The largest message the server accepts and writes (its MaxMsgSize).
pub const MAX_MESSAGE: usize = 1 << 20;
/// The largest object the server takes, in parts over several messages (its MaxObjSize).
pub const MAX_OBJECT: usize = 2 << 20;
/// A session left idle this long is forgotten.
pub const SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// At most this many sessions at once (each holds a device's pending changes).
const MAX_SESSIONS: usize = 256;
const MAX_DEPTH: usize = 32;

pub struct Services {
    pub store: Store,
    pub auth: Auth,
    /// Where events and tasks are written and scheduled, as CalDAV's are.
    pub sched: Scheduler,
    /// The users' home folders, where `backup` writes (backup.rs); None: nowhere.
    pub homes: Option<bureau_core::homes::Homes>,
    /// The box's name and HTTPS port: the RespURI's base.
    pub hostname: String,
    pub https_port: u16,
}

#[derive(Clone)]
pub struct SyncMl {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    auth: Auth,
    sched: Scheduler,
    homes: Option<bureau_core::homes::Homes>,
    /// The nonce each device was last given for MD5 sign-in (by device id).
    nonces: Mutex<HashMap<String, Vec<u8>>>,
    /// Devices asked once for the sign-in their domain takes, after offering the other.
    asked: Mutex<std::collections::HashSet<String>>,
    base_url: String,
    sessions: Mutex<HashMap<String, (Instant, Option<Session>)>>,
    /// When the kept sessions were last swept.
    swept: Mutex<Option<Instant>>,
}

impl SyncMl {
    pub fn new(s: Services) -> SyncMl {
        let base_url = match s.https_port {
            443 => format!("https://{}/syncml", s.hostname),
            p => format!("https://{}:{p}/syncml", s.hostname),
        };
        SyncMl {
            inner: Arc::new(Inner {
                store: s.store,
                auth: s.auth,
                sched: s.sched,
                homes: s.homes,
                nonces: Mutex::new(HashMap::new()),
                asked: Mutex::new(Default::default()),
                base_url,
                sessions: Mutex::new(HashMap::new()),
                swept: Mutex::new(None),
            }),
        }
    }

    /// Whether a path is SyncML's.
    pub fn serves(path: &str) -> bool {
        matches!(
            path.to_ascii_lowercase().as_str(),
            "/syncml" | "/syncml/" | "/syncml/index.html" | "/sync"
        )
    }

    pub async fn handle(&self, req: Request<Incoming>, ip: IpAddr) -> Resp {
        let started = Instant::now();
        if req.method() != Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "SyncML messages are POSTed");
        }
        let Some(encoding) = req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Encoding::of_content_type)
        else {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "application/vnd.syncml+xml or application/vnd.syncml+wbxml",
            );
        };
        // Where the next message goes: the address this one came to (a device on the LAN
        // may know the box by its address only), else the box's name.
        let base_url = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .map(|h| format!("https://{h}/syncml"))
            .unwrap_or_else(|| self.inner.base_url.clone());
        let query = req.uri().query().unwrap_or("");
        let token = query
            .split(['&', '#'])
            .find_map(|p| p.strip_prefix("s="))
            .map(str::to_string);
        let url = modes::UrlOptions::of_query(query);
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_MESSAGE as u64) {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "the message is too large");
        }
        let body = match Limited::new(req.into_body(), MAX_MESSAGE).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "the message is too large"),
        };
        let root = match codec::decode(&body, encoding, MAX_DEPTH) {
            Ok(r) => r,
            Err(e) => return bad_request(ip, &e.to_string()),
        };
        let h = match Header::of(&root) {
            Ok(h) => h,
            Err(e) => return bad_request(ip, &e.to_string()),
        };
        let came = Came {
            started,
            bytes: body.len(),
            ip,
        };
        match self
            .answer(&root, &h, encoding, (token, url), &base_url, came)
            .await
        {
            Ok(bytes) => Response::builder()
                .status(StatusCode::OK)
                .header(hyper::header::CONTENT_TYPE, encoding.content_type())
                .body(Full::new(Bytes::from(bytes)))
                .unwrap_or_default(),
            Err(e) => {
                log::error!("syncml: {e}");
                plain(StatusCode::SERVICE_UNAVAILABLE, "try again later")
            }
        }
    }

    /// The session a message belongs to, taken out of the table while it is answered:
    /// None if the table has no such session, Some(None) if it is being answered.
    fn take(&self, token: &str) -> Option<Option<Session>> {
        let mut t = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        t.retain(|_, (at, _)| now.duration_since(*at) < SESSION_IDLE);
        t.get_mut(token).map(|(at, s)| {
            *at = now;
            s.take()
        })
    }

    /// The session a message's token names: in memory, else kept in the store (the daemon
    /// restarted since, or let it go from memory).
    async fn find(&self, token: Option<&str>) -> Result<Option<Session>, StoreError> {
        let Some(token) = token else {
            return Ok(None);
        };
        match self.take(token) {
            Some(s) => Ok(s),
            None => {
                let mut s = kept::load(&self.inner.store, token)?;
                if let Some(s) = &mut s {
                    s.resumed();
                }
                Ok(s)
            }
        }
    }

    /// Sweeps the kept sessions idle too long, at most once per `SESSION_IDLE`.
    async fn sweep_now_and_then(&self) {
        {
            let mut last = self.inner.swept.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < SESSION_IDLE) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = kept::sweep(&self.inner.store).await {
            log::warn!("syncml: sweeping old sessions: {e}");
        }
    }

    fn put_back(&self, s: Session) {
        let mut t = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if t.len() >= MAX_SESSIONS && !t.contains_key(&s.token) {
            // The longest idle goes.
            if let Some(oldest) = t
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            {
                t.remove(&oldest);
            }
        }
        t.insert(s.token.clone(), (Instant::now(), Some(s)));
    }

    async fn answer(
        &self,
        root: &bureau_wbxml::Element,
        h: &Header,
        encoding: Encoding,
        (token, url): (Option<String>, modes::UrlOptions),
        base_url: &str,
        came: Came,
    ) -> Result<Vec<u8>, Failure> {
        let mut session = self.find(token.as_deref()).await?;
        // A message of another session, or of another device, under this token: not its.
        if session
            .as_ref()
            .is_some_and(|s| s.session_id != h.session_id || s.device != h.source)
            && let Some(s) = session.take()
        {
            self.put_back(s);
        }
        if let Some(s) = &session
            && let Some(last) = &s.last
            && last.msg_id == h.msg_id
        {
            // The same message again (the reply was lost): the same reply.
            let reply = last.reply.clone();
            self.put_back(session.take().expect("checked"));
            return Ok(reply);
        }
        let mut signed_in = None;
        if session.is_none() {
            match self.sign_in(h, came.ip).await {
                Ok((user, des)) => {
                    self.sweep_now_and_then().await;
                    let token = format!("{:032x}", rand::random::<u128>());
                    let key = session::device_key(&h.source);
                    let log = devlog::read(&self.inner.store, user.principal, &key)?.on;
                    let mut s = Session::new(token, user, h, encoding, url);
                    s.log = log;
                    s.des = des;
                    s.peer = Some(came.ip);
                    session = Some(s);
                    // An MD5 device gets the nonce of its next sign-in with the 212.
                    signed_in = Some(self.next_challenge(h));
                }
                Err(refused) => {
                    let chal = refused.ask.map(|kind| self.challenge(h, kind));
                    return encode(refusal(h, refused.code, chal), encoding, h);
                }
            }
        }
        let mut s = session.expect("made above");
        let resp_uri = format!("{base_url}?s={}", s.token);
        // On a failure the session is dropped, here and in the store: the device syncs
        // again from its anchors.
        let store = &self.inner.store;
        let answered = match s
            .answer(
                (store, &self.inner.sched, self.inner.homes.as_ref()),
                root,
                h,
                &resp_uri,
                signed_in,
            )
            .await
        {
            Ok(reply) => {
                let sent = s.log.then(|| devlog::summary(&reply));
                encode(reply, encoding, h).map(|bytes| (bytes, sent))
            }
            Err(e) => Err(e.into()),
        };
        let (reply, sent) = match answered {
            Ok(r) => r,
            Err(e) => {
                kept::forget(store, &s.token).await?;
                return Err(e);
            }
        };
        s.last = Some(session::Last {
            msg_id: h.msg_id.clone(),
            reply: reply.clone(),
        });
        let (principal, device) = (s.user.principal, session::device_key(&s.device));
        if s.done {
            kept::forget(store, &s.token).await?;
        } else {
            kept::save(store, &s).await?;
            self.put_back(s);
        }
        if let Some(sent) = sent {
            let took = came.started.elapsed();
            let entry = devlog::Entry {
                at_ms: chrono::Utc::now().timestamp_millis() - took.as_millis() as i64,
                session: h.session_id.clone(),
                msg_id: h.msg_id.clone(),
                took_ms: took.as_millis() as u64,
                bytes_in: came.bytes,
                bytes_out: reply.len(),
                encoding: encoding.name().into(),
                received: devlog::summary(root),
                sent,
            };
            if let Err(e) = devlog::append(store, principal, &device, entry).await {
                log::warn!("syncml: a device's log: {e}");
            }
        }
        Ok(reply)
    }
}

/// A message as it came: when, its size, from where.
struct Came {
    started: Instant,
    bytes: usize,
    ip: IpAddr,
}

/// The answer to a message that may not go on: its SyncHdr's Status, with the challenge.
fn refusal(h: &Header, code: u16, chal: Option<bureau_wbxml::Element>) -> bureau_wbxml::Element {
    let mut r = Reply::to(h, 1, None, MAX_MESSAGE);
    r.status(
        &h.msg_id,
        "0",
        "SyncHdr",
        Some(&h.target),
        Some(&h.source),
        code,
        chal.into_iter().collect(),
    );
    r.final_ = true;
    r.into_element()
}

/// Why a message got no SyncML answer (a 503: the device tries again later).
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server's own reply could not be written.
    #[error("writing the reply: {0}")]
    Encode(#[from] codec::BadMessage),
}

fn encode(e: bureau_wbxml::Element, encoding: Encoding, h: &Header) -> Result<Vec<u8>, Failure> {
    Ok(codec::encode(&e, encoding, h.version)?)
}

fn bad_request(ip: IpAddr, why: &str) -> Resp {
    log::info!("syncml: a message from {ip} refused: {why}");
    plain(StatusCode::BAD_REQUEST, why)
}

fn plain(status: StatusCode, msg: &str) -> Resp {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(format!("{msg}\n"))))
        .unwrap_or_default()
}
