//! Exchange ActiveSync on the HTTPS listener, at /Microsoft-Server-ActiveSync. Three rooms:
//!
//! - `formats`: what every command travels in: the request line (`request`: the query
//!   string, plain or packed in base64, and the headers that matter), WBXML (`wbxml`, over
//!   the wbxml crate's codec and code pages) and the body and date forms (`body`).
//! - `classes`: stored objects as the data classes show them, and a device's changes made
//!   into them: `email` (MS-ASEMAIL), `calendar` (MS-ASCAL), `contacts` (MS-ASCNTC),
//!   `tasks` (MS-ASTASK) and `notes` (MS-ASNOTE). Events, tasks and notes are written and
//!   scheduled through the groupware crate's `Scheduler`, as CalDAV's are.
//! - `commands`: one module per command: `provision` (the device's policy and key, which
//!   every other command needs), `folders` (FolderSync and FolderCreate/Update/Delete),
//!   `sync`, `ping` (push, held until the store's change bus tells of news), `mail`
//!   (SendMail, SmartReply, SmartForward, MoveItems, GetItemEstimate), `itemops`
//!   (ItemOperations, GetAttachment), `meeting` (MeetingResponse), `resolve`
//!   (ResolveRecipients), `settings`, `search` and `find`, `validatecert`, and
//!   `autodiscover` (POX and v2 JSON, so an address and a password are enough).
//!
//! `formats::request::COMMANDS` lists, once, each command with its name, its number in a
//! packed query string and its answer's root element: OPTIONS announces them and the
//! dispatch answers them; any other command is a bad request (400) and not announced, so
//! devices do not try it.

pub mod classes;
pub mod commands;
pub mod formats;

use bureau_core::auth::{Auth, AuthError};
use bureau_directory::User;
use bureau_groupware::schedule::Scheduler;
use bureau_store::{Actor, Device, Store};
use bytes::Bytes;
use classes::calendar;
use commands::*;
use formats::request::{self, EasRequest};
use formats::wbxml;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::net::IpAddr;

pub type Resp = Response<Full<Bytes>>;

pub const PATH: &str = "/Microsoft-Server-ActiveSync";
const WBXML_TYPE: &str = "application/vnd.ms-sync.wbxml";

#[derive(Clone)]
pub struct ActiveSync {
    store: Store,
    auth: Auth,
    limits: bureau_core::config::ActiveSyncConfig,
    /// Ends held Pings when the daemon stops.
    shutdown: bureau_core::shutdown::Shutdown,
    /// Where SendMail hands messages.
    queue: Option<bureau_smtp::Queue>,
    /// This server's ActiveSync URL, as Autodiscover tells it.
    url: String,
    /// Where calendar, task and note objects are written and scheduled, as CalDAV's are.
    sched: Scheduler,
    /// The box's settings directory, for its time zone.
    system_dir: std::path::PathBuf,
}

/// What ActiveSync runs on.
pub struct Services {
    pub store: Store,
    pub auth: Auth,
    /// Where calendar, task and note objects are written and scheduled.
    pub sched: Scheduler,
    /// Where SendMail hands messages; `None` when mail is turned off in the configuration
    /// (sending then answers the command's server-error status).
    pub queue: Option<bureau_smtp::Queue>,
    pub limits: bureau_core::config::ActiveSyncConfig,
    pub shutdown: bureau_core::shutdown::Shutdown,
    /// The box's name and HTTPS port, for Autodiscover's answer.
    pub hostname: String,
    pub https_port: u16,
    /// The box's settings directory (`<data>/system`), for its time zone.
    pub system_dir: std::path::PathBuf,
}

/// One request, its device and its user, as the commands see them.
pub struct Context {
    pub req: EasRequest,
    pub user: User,
    pub device: Device,
    pub ip: IpAddr,
}

pub(crate) fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("ms-server-activesync", "16.1")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers")
}

fn text(status: StatusCode, why: &str) -> Resp {
    reply(
        status,
        "text/plain; charset=utf-8",
        format!("{why}\n").into_bytes(),
    )
}

/// A command's answer in WBXML.
pub fn document(root: &wbxml::Element) -> Resp {
    match wbxml::encode(root) {
        Ok(b) => reply(StatusCode::OK, WBXML_TYPE, b),
        Err(e) => {
            log::error!("activesync: answer not encodable: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "answer not encodable")
        }
    }
}

/// The user's own collection a device names by its id (a folder's ServerId), if it is one:
/// anything else (not a number, someone else's, gone) is None; a storage failure is an error.
pub fn own_collection(
    r: &bureau_store::Reader,
    principal: u64,
    id: &str,
) -> Result<Option<bureau_store::Collection>, bureau_store::StoreError> {
    use bureau_store::StoreError;
    let Ok(id) = id.trim().parse::<u64>() else {
        return Ok(None);
    };
    match r.collection(id) {
        Ok(c) if c.owner == principal => Ok(Some(c)),
        Ok(_) | Err(StoreError::NotFound) | Err(StoreError::Forbidden) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The user's mailbox of this special use ("\\Sent", "\\Trash"), if there is one.
pub fn special_mailbox(
    r: &bureau_store::Reader,
    principal: u64,
    special_use: &str,
) -> Result<Option<u64>, bureau_store::StoreError> {
    Ok(r.collections_of(principal)?
        .into_iter()
        .find(|c| c.special_use() == Some(special_use))
        .map(|c| c.id))
}

/// An item's ServerId: `collection:item`.
pub fn server_id(coll: u64, item: bureau_store::ItemId) -> String {
    format!("{coll}:{item}")
}

/// The collection and item a ServerId names.
pub fn parse_server_id(s: &str) -> Option<(u64, bureau_store::ItemId)> {
    let (c, i) = s.split_once(':')?;
    Some((c.parse().ok()?, i.parse().ok()?))
}

/// Where a device's own time zone is kept among its details (base64, as it sent it).
pub const DEVICE_TIMEZONE: &str = "timezone";

/// The version as a number to compare (16.1 → 161).
pub fn version_number(v: &str) -> u32 {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    a.parse::<u32>().unwrap_or(0) * 10 + b.parse::<u32>().unwrap_or(0)
}

impl ActiveSync {
    pub fn new(s: Services) -> ActiveSync {
        let url = match s.https_port {
            443 => format!("https://{}{PATH}", s.hostname),
            p => format!("https://{}:{p}{PATH}", s.hostname),
        };
        ActiveSync {
            store: s.store,
            auth: s.auth,
            limits: s.limits,
            shutdown: s.shutdown,
            queue: s.queue,
            url,
            sched: s.sched,
            system_dir: s.system_dir,
        }
    }

    /// Writes calendar, task and note objects, and schedules them.
    pub fn sched(&self) -> &Scheduler {
        &self.sched
    }

    /// How calendar items are read and written for this request: the user's addresses, the
    /// device's zone (the one it last sent with a new event, else the box's).
    pub fn view(&self, cx: &Context) -> calendar::View {
        let home = bureau_core::system::timezone(&self.system_dir)
            .parse::<chrono_tz::Tz>()
            .ok()
            .unwrap_or(chrono_tz::UTC);
        let device = cx
            .device
            .info
            .get(DEVICE_TIMEZONE)
            .and_then(|t| bureau_groupware::tzi::Tzi::from_base64(t))
            .unwrap_or_else(|| {
                use chrono::Datelike;
                bureau_groupware::tzi::Tzi::of_zone(home, chrono::Utc::now().year())
            });
        let mut me = vec![cx.user.address.to_ascii_lowercase()];
        me.extend(cx.user.aliases.iter().map(|a| a.to_ascii_lowercase()));
        calendar::View {
            version: version_number(&cx.req.version),
            me,
            device,
            home,
        }
    }

    pub fn limits(&self) -> &bureau_core::config::ActiveSyncConfig {
        &self.limits
    }

    pub fn serves(path: &str) -> bool {
        path.eq_ignore_ascii_case(PATH) || autodiscover::serves(path)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn handle(&self, req: Request<Incoming>, ip: IpAddr) -> Resp {
        let path = req.uri().path().to_ascii_lowercase();
        if path.starts_with(autodiscover::JSON) {
            // Public, as DNS is: where ActiveSync is, before any password.
            return autodiscover::json(req.uri().query().unwrap_or(""), &self.url);
        }
        let user = match self.authenticate(&req, ip).await {
            Ok(u) => u,
            Err(r) => return r,
        };
        if path == autodiscover::POX {
            if req.method() != Method::POST {
                return text(StatusCode::METHOD_NOT_ALLOWED, "POST");
            }
            return match Limited::new(req.into_body(), 64 << 10).collect().await {
                Ok(b) => autodiscover::pox(&b.to_bytes(), &self.url, &user.display_name),
                Err(_) => text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
            };
        }
        match *req.method() {
            Method::OPTIONS => Response::builder()
                .status(StatusCode::OK)
                .header("ms-server-activesync", "16.1")
                .header("ms-asprotocolversions", request::VERSIONS.join(","))
                .header(
                    "ms-asprotocolcommands",
                    request::COMMANDS
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(","),
                )
                .header("allow", "OPTIONS,POST")
                .header("public", "OPTIONS,POST")
                .body(Full::new(Bytes::new()))
                .expect("static headers"),
            Method::POST => self.post(req, user, ip).await,
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "OPTIONS or POST"),
        }
    }

    async fn authenticate(&self, req: &Request<Incoming>, ip: IpAddr) -> Result<User, Resp> {
        let unauthorized = || {
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(
                    "www-authenticate",
                    "Basic realm=\"Bureau\", charset=\"UTF-8\"",
                )
                .body(Full::new(Bytes::new()))
                .expect("static headers")
        };
        let Some((login, password)) = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bureau_core::auth::basic_credentials)
        else {
            return Err(unauthorized());
        };
        // Outlook and phones may send DOMAIN\user.
        let login = login.rsplit('\\').next().unwrap_or(&login).to_string();
        match self.auth.login(ip, &login, &password, "activesync").await {
            Ok(u) => Ok(u),
            Err(AuthError::BadCredentials) => Err(unauthorized()),
            Err(AuthError::Disabled) => Err(text(StatusCode::FORBIDDEN, "account disabled")),
            Err(AuthError::Refused) => {
                let mut r = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed sign-ins from this address; try again later",
                );
                if let Ok(v) = hyper::header::HeaderValue::from_str(
                    &self.auth.guard().lockout_secs().to_string(),
                ) {
                    r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
                }
                Err(r)
            }
            Err(e) => {
                log::error!("activesync: sign-in: {e}");
                Err(text(StatusCode::SERVICE_UNAVAILABLE, "try again later"))
            }
        }
    }

    async fn post(&self, req: Request<Incoming>, user: User, ip: IpAddr) -> Resp {
        use request::Command::*;
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let parsed = request::parse(
            req.uri().query().unwrap_or(""),
            header("ms-asprotocolversion").as_deref(),
            header("x-ms-policykey").as_deref(),
        );
        let mut eas = match parsed {
            Ok(r) => r,
            Err(why) => return text(StatusCode::BAD_REQUEST, &why.to_string()),
        };
        if eas.version.is_empty() {
            eas.version = "12.1".into();
        }
        if !request::VERSIONS.contains(&eas.version.as_str()) {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("protocol version {} is not served", eas.version),
            );
        }
        let body = match Limited::new(
            req.into_body(),
            bureau_core::limits::get().activesync_body_bytes,
        )
        .collect()
        .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        };
        // Before 14.0, mail to send comes as MIME itself, not in WBXML.
        let mime_body = matches!(eas.cmd, SendMail | SmartReply | SmartForward)
            && version_number(&eas.version) < 140;
        let doc = if body.is_empty() || mime_body {
            None
        } else {
            match wbxml::decode(&body) {
                Ok(d) => Some(d),
                Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        };
        let device = match self.device(&user, &eas).await {
            Ok(d) => d,
            Err(e) => {
                log::error!("activesync: device {}: {e}", eas.device_id);
                return text(StatusCode::SERVICE_UNAVAILABLE, "try again later");
            }
        };
        let mut cx = Context {
            req: eas,
            user,
            device,
            ip,
        };
        if cx.req.cmd != Provision
            && let Some(refused) = provision::refuse_unprovisioned(&cx)
        {
            return refused;
        }
        let answer = match cx.req.cmd {
            Provision => provision::provision(self, &mut cx, doc).await,
            FolderSync => folders::folder_sync(self, &cx, doc).await,
            FolderCreate => folders::folder_edit(self, &cx, folders::Edit::Create, doc).await,
            FolderUpdate => folders::folder_edit(self, &cx, folders::Edit::Update, doc).await,
            FolderDelete => folders::folder_edit(self, &cx, folders::Edit::Delete, doc).await,
            Sync => sync::sync(self, &cx, doc).await,
            Ping => ping::ping(self, &mut cx, doc).await,
            SendMail => mail::compose(self, &cx, mail::Compose::Send, doc, body).await,
            SmartReply => mail::compose(self, &cx, mail::Compose::Reply, doc, body).await,
            SmartForward => mail::compose(self, &cx, mail::Compose::Forward, doc, body).await,
            MoveItems => mail::move_items(self, &cx, doc).await,
            MeetingResponse => meeting::meeting_response(self, &cx, doc).await,
            GetItemEstimate => mail::get_item_estimate(self, &cx, doc).await,
            Settings => settings::settings(self, &mut cx, doc).await,
            Search => search::search(self, &cx, doc).await,
            ResolveRecipients => resolve::resolve_recipients(self, &cx, doc).await,
            Find => find::find(self, &cx, doc).await,
            GetAttachment => itemops::get_attachment(self, &cx),
            ValidateCert => validatecert::validate_cert(self, &cx, doc).await,
            ItemOperations => itemops::item_operations(self, &cx, doc).await,
        };
        answer.unwrap_or_else(|e| {
            log::error!("activesync: {} for {}: {e}", cx.req.cmd, cx.user.uid);
            text(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        })
    }

    /// The device making the request, recorded (first seen, last seen, protocol, type).
    async fn device(
        &self,
        user: &User,
        req: &EasRequest,
    ) -> Result<Device, bureau_store::StoreError> {
        let principal = user.principal;
        let known = self
            .store
            .reader(Actor::Principal(principal))?
            .device(principal, &req.device_id)?;
        let mut d = known.unwrap_or_else(|| Device {
            id: req.device_id.clone(),
            ..Default::default()
        });
        d.protocol = format!("activesync {}", req.version);
        if !req.device_type.is_empty() {
            d.info.insert("type".into(), req.device_type.clone());
        }
        d.last_seen = bureau_store::now();
        self.save_device(principal, &d).await?;
        Ok(d)
    }

    /// Stages data as a blob for a write, off the async threads; a mail message with what
    /// the store derives from messages.
    pub async fn stage(
        &self,
        data: Vec<u8>,
        message: bool,
    ) -> Result<bureau_store::StagedBlob, bureau_store::StoreError> {
        let content = if message {
            bureau_store::Content::Message
        } else {
            bureau_store::Content::Data
        };
        self.store.stage(data, content).await
    }

    pub async fn save_device(
        &self,
        principal: u64,
        d: &Device,
    ) -> Result<(), bureau_store::StoreError> {
        let d = d.clone();
        self.store
            .write(Actor::Principal(principal), vec![], move |w| {
                w.put_device(principal, &d)
            })
            .await
    }
}
