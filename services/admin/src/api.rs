//! The admin API's types, shared by the server, the CLI and (as JSON) the console.
//! Paths: see `docs/admin-api.md`.

use serde::{Deserialize, Serialize};

pub use bureau_dav::check::Broken;
pub use bureau_directory::{
    BookingPolicy, Domain, Group, NewGroup, NewResource, NewUser, Resource, ResourceKind,
    SyncMlAuth, SyncMlPolicy, User, UserChanges,
};
pub use bureau_smtp::{QueueEntry, QueuedMessage, RcptState};

/// Every error body: a message for people (English), the form field it concerns, if any,
/// and the message's key in the catalogues with its values, for the console to say it in
/// its language (bureau_words).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub args: std::collections::BTreeMap<String, String>,
}

impl ApiError {
    /// A sentence of the catalogues, about `field` if one.
    pub fn said(s: bureau_words::Said, field: Option<&str>) -> ApiError {
        ApiError {
            error: s.to_string(),
            field: field.map(str::to_string),
            key: Some(s.key),
            args: s.args,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewDomain {
    pub name: String,
}

/// Changes to a domain.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DomainChanges {
    /// The uid that receives mail for unknown addresses; `null` turns catch-all off.
    #[serde(default)]
    pub catch_all: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PasswordChange {
    pub password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Members {
    pub members: Vec<String>,
}

/// A user with what it uses.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: User,
    pub usage_bytes: u64,
    pub groups: Vec<String>,
    /// Whether the console asks this user for an authenticator app's code.
    pub two_factor: bool,
    pub app_passwords: Vec<bureau_directory::second::AppPassword>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
    /// The authenticator app's code, for a user with two-factor sign-in on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Session {
    pub uid: String,
    pub admin: bool,
    /// Send back in `X-CSRF-Token` with every change.
    pub csrf: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceStatus {
    pub name: String,
    pub listen: Vec<String>,
    pub up: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub hostname: String,
    pub uptime_secs: u64,
    pub services: Vec<ServiceStatus>,
    pub domains: usize,
    pub users: usize,
    pub groups: usize,
    pub data_dir: String,
    pub schema_version: u64,
    /// Connections and requests being served now.
    #[serde(default)]
    pub connections: usize,
    /// The daemon's resident memory.
    #[serde(default)]
    pub memory_bytes: u64,
    /// The data directory's file system.
    #[serde(default)]
    pub disk: Option<DiskSpace>,
    /// Messages in the outbound queue.
    #[serde(default)]
    pub queued: usize,
    /// The latest warnings and errors logged.
    #[serde(default)]
    pub problems: Vec<bureau_core::logging::LogEntry>,
    /// Sessions ended by an internal error (a bug) since the start; the service went on.
    #[serde(default)]
    pub internal_errors: u64,
    /// The previous run was killed or crashed: when it had started (seconds since 1970).
    #[serde(default)]
    pub unclean_stop: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DiskSpace {
    pub total_bytes: u64,
    pub free_bytes: u64,
}

impl DiskSpace {
    /// The space of the filesystem holding `path` (free: what an unprivileged user may use).
    pub fn of(path: &str) -> Option<DiskSpace> {
        let st = nix::sys::statvfs::statvfs(path).ok()?;
        Some(DiskSpace {
            total_bytes: st.blocks() * st.fragment_size(),
            free_bytes: st.blocks_available() * st.fragment_size(),
        })
    }
}

/// A user's collection, as the admin sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CollectionInfo {
    pub id: u64,
    pub kind: String,
    pub name: String,
    pub items: usize,
    pub modseq: u64,
}

/// A grant on a collection: to a user or a group (by name), "read", "read-write" or
/// "delegate".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    pub with: String,
    pub access: String,
}

/// The body of PUT .../shares/{with}.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewShare {
    pub access: String,
}

/// What POST .../import stored from a whole .ics or .vcf, and what it refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportReport {
    pub stored: usize,
    pub refused: Vec<String>,
}

/// An item's metadata, without its content.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ItemInfo {
    pub id: u64,
    pub size: u64,
    pub date: i64,
    pub modseq: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub flags: Vec<String>,
}

/// A DNS record an administrator should publish for a domain.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    /// What the record is for, in the catalogues' words.
    pub purpose: bureau_words::Said,
    /// Asked with `?check=1`: yes, different, no or unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<bureau_smtp::dnscheck::Published>,
}

/// `GET /api/v1/setup`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupState {
    /// True until the first administrator exists.
    pub pending: bool,
    /// The box's name now, and whether the configuration file fixes it.
    pub hostname: String,
    pub hostname_fixed: bool,
    pub timezone: String,
    /// The fewest characters a password may have (the console says the rules up front).
    pub password_min_len: usize,
}

/// A root slot as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotView {
    /// "A" or "B".
    pub bootname: String,
    /// "booted" (running now) or "inactive".
    pub state: String,
    /// "good" (confirmed by the health check), "pending" (running on trial until the health
    /// check passes, or installed and not yet booted), "bad" (failed; not booted again), or
    /// "empty" (nothing installed yet).
    pub status: String,
    /// The version of the bundle installed in it, and when (RFC 3339), when RAUC recorded it.
    pub version: Option<String>,
    pub installed: Option<String>,
}

/// `POST /api/v1/setup`: the first administrator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupRequest {
    /// The token shown on the box's screen and serial line.
    pub token: String,
    /// The administrator's mail address; its domain is added if new.
    pub address: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The box's name (a new one restarts the daemon under it).
    #[serde(default)]
    pub hostname: Option<String>,
    /// An IANA time zone, e.g. Europe/Paris.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// `PUT /api/v1/system/settings`: the box's name and time zone; absent ones stay.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SystemSettings {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
}

/// What `PUT /api/v1/system/settings` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SystemChanged {
    /// The daemon restarts under its new name (sign in again).
    pub restarting: bool,
}

/// A plain answer for people.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

/// `GET /api/v1/system`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SystemInfo {
    /// The image's release (absent when not running from an image).
    pub release: Option<String>,
    /// The root slot booted (A or B).
    pub booted_slot: Option<String>,
    /// `rauc status --detailed` as JSON, when the helper answers.
    pub slots: Option<serde_json::Value>,
    /// Each root slot in words, from `slots` (empty when the helper does not answer).
    pub slot_summary: Vec<SlotView>,
    /// Why the slots are unknown.
    pub helper_error: Option<String>,
    /// The name Bureau serves under, and the time zone chosen in the console.
    pub hostname: String,
    pub timezone: String,
    /// The time zone the system runs in (/etc/localtime), when it tells.
    pub system_timezone: Option<String>,
    /// On the appliance, the systemd units that failed (none on a clean boot); absent
    /// elsewhere (a development machine's units are not the box's).
    pub failed_units: Option<Vec<String>>,
    /// On the appliance, how long the last boot took (`systemd-analyze time`, absent until
    /// the boot has finished) and the critical chain of units up to bureau.service.
    pub boot_time: Option<String>,
    pub critical_chain: Option<Vec<String>>,
}

/// `PUT /api/v1/certificate`: a PEM chain (the server's certificate first) and its key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

/// `POST /api/v1/groups/{name}/collections`: kind "mailbox", "calendar" or "addressbook".
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewGroupCollection {
    pub kind: String,
    pub name: String,
}

/// `POST /api/v1/services`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewServiceAccount {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A service account's credentials, shown once (creation and reset).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewServiceCredentials {
    pub account: bureau_directory::service::ServiceAccount,
    pub password: String,
    /// What to bind with, e.g. cn=wiki,ou=services,dc=example,dc=com.
    pub bind_dn: String,
}

/// What `PUT /api/v1/proxy` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProxyApplied {
    pub settings: bureau_daemons::proxy::ProxySettings,
    /// The configuration file written.
    pub config: String,
    pub reloaded: bool,
    /// What came of the reload, in the catalogues' words.
    pub note: bureau_words::Said,
}

/// `GET /api/v1/samba`: the file server's settings and the last time Samba was brought in
/// line with the directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SambaState {
    pub settings: bureau_daemons::samba::SambaSettings,
    pub last: Option<bureau_daemons::samba::Outcome>,
}

/// What `PUT /api/v1/samba` did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SambaApplied {
    pub settings: bureau_daemons::samba::SambaSettings,
    pub report: bureau_core::helper::SambaReport,
}

/// What a user's devices need to be set up: the box's name, the user's address, the web
/// address and the ports clients use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceSetup {
    pub hostname: String,
    pub address: String,
    /// e.g. https://box.example.com
    pub web: String,
    pub ports: bureau_dav::autoconfig::Ports,
}
