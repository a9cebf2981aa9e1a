//! The daemon's configuration: one TOML file, every key defaulted and documented here.
//! An error names the file, the line and the key.

use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub directory: DirectoryConfig,
    pub store: StoreConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub smtp: SmtpConfig,
    pub imap: ImapConfig,
    pub ldap: LdapConfig,
    pub proxy: ProxyConfig,
    pub samba: SambaConfig,
    pub activesync: ActiveSyncConfig,
    pub limits: LimitsConfig,
}

/// Bounds on what clients send, for every parser Bureau runs. The defaults are far above
/// what any mail client, phone or calendar app sends; past them a request gets its
/// protocol's refusal (see docs/SECURITY.md). Sizes and counts may be raised or lowered;
/// nesting depths only lowered, since walkers of those trees recurse and their defaults
/// are what was tested on the daemon's worker stacks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// `Content-Type` fields a message may hold to be parsed into parts (bounds nesting).
    pub mime_content_types: usize,
    /// Parts a message may have to be described part by part.
    pub mime_parts: usize,
    /// Depth at which BODYSTRUCTURE shows a nested part as a leaf.
    pub bodystructure_depth: usize,
    /// An IMAP command with its literals (also APPENDLIMIT), bytes.
    pub imap_command_bytes: u32,
    /// An IMAP LIST/LSUB reference plus pattern, bytes.
    pub imap_pattern_bytes: usize,
    /// Bad IMAP commands before the session is ended.
    pub imap_bad_commands: u32,
    /// Bad SMTP commands, and failed AUTHs, before the session is ended.
    pub smtp_bad_commands: u32,
    pub smtp_auth_failures: u32,
    /// A DAV request's XML body: bytes, element depth, element count.
    pub dav_xml_bytes: usize,
    pub dav_xml_depth: usize,
    pub dav_xml_elements: usize,
    /// One calendar or contact object, bytes (DAV PUT, advertised as max-resource-size).
    pub object_bytes: usize,
    /// Components nested in a calendar or contact object (DAV and ActiveSync).
    pub component_depth: usize,
    /// An ActiveSync request body, bytes, and its WBXML depth.
    pub activesync_body_bytes: usize,
    pub wbxml_depth: usize,
    /// One LDAP message, bytes; protocol errors before the session is ended.
    pub ldap_message_bytes: usize,
    pub ldap_errors: u32,
    /// An admin API request body, and an import file, bytes.
    pub admin_body_bytes: usize,
    pub admin_import_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            mime_content_types: 1_000,
            mime_parts: 10_000,
            bodystructure_depth: 100,
            imap_command_bytes: 64 << 20,
            imap_pattern_bytes: 1024,
            imap_bad_commands: 20,
            smtp_bad_commands: 20,
            smtp_auth_failures: 3,
            dav_xml_bytes: 1 << 20,
            dav_xml_depth: 32,
            dav_xml_elements: 20_000,
            object_bytes: 10 << 20,
            component_depth: 16,
            activesync_body_bytes: 32 << 20,
            wbxml_depth: 64,
            ldap_message_bytes: 64 << 10,
            ldap_errors: 20,
            admin_body_bytes: 1 << 20,
            admin_import_bytes: 256 << 20,
        }
    }
}

impl LimitsConfig {
    /// The nesting bounds with their keys and ceilings (their defaults).
    fn depths(&self) -> [(&'static str, usize, usize); 5] {
        let d = LimitsConfig::default();
        [
            (
                "limits.mime_content_types",
                self.mime_content_types,
                d.mime_content_types,
            ),
            (
                "limits.bodystructure_depth",
                self.bodystructure_depth,
                d.bodystructure_depth,
            ),
            ("limits.dav_xml_depth", self.dav_xml_depth, d.dav_xml_depth),
            (
                "limits.component_depth",
                self.component_depth,
                d.component_depth,
            ),
            ("limits.wbxml_depth", self.wbxml_depth, d.wbxml_depth),
        ]
    }
}

/// Exchange ActiveSync (phones, Outlook) at /Microsoft-Server-ActiveSync on HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActiveSyncConfig {
    /// The shortest and longest Ping (push) a device may ask to be held, seconds; a device
    /// asking for less or more is told the limit (Ping status 5).
    pub min_heartbeat_secs: u64,
    pub max_heartbeat_secs: u64,
    /// Most folders one Ping may watch.
    pub max_ping_folders: usize,
    /// PEM certificates of the office's own certificate authorities, trusted by
    /// ValidateCert beside the system's (S/MIME certificates an office issues itself).
    pub trust_anchors: Option<PathBuf>,
}

impl Default for ActiveSyncConfig {
    fn default() -> Self {
        ActiveSyncConfig {
            min_heartbeat_secs: 60,
            max_heartbeat_secs: 3540,
            max_ping_folders: 300,
            trust_anchors: None,
        }
    }
}

/// The office's web proxy (Squid), configured from Bureau (`bureau proxy`, the console).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Where Squid listens: "port" or "address:port".
    pub http_port: String,
    /// Squid's access log, for the summary (and where the generated configuration puts it).
    pub access_log: PathBuf,
    /// Squid's binary, used to check a configuration before it is installed.
    pub squid: PathBuf,
    /// Squid's folder (its configuration, the LDAP secret, pid, cache log), root's: the
    /// helper writes the configuration. Default `<data_dir>/proxy`.
    pub state_dir: Option<PathBuf>,
    /// The group Squid's helpers run as, which may read the LDAP secret (mode 0640).
    pub group: String,
    /// The systemd unit the helper reloads (or starts) after a new configuration; empty:
    /// none, Squid is someone else's to run.
    pub service: String,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            http_port: "3128".into(),
            access_log: PathBuf::from("/var/log/squid/access.log"),
            squid: PathBuf::from("/usr/sbin/squid"),
            state_dir: None,
            group: "proxy".into(),
            service: "squid".into(),
        }
    }
}

/// The office's file server (Samba), configured from Bureau (`bureau samba`, the console).
/// The daemon sends the shares and accounts to the privileged helper, which writes Samba's
/// configuration and keeps its user database in step; the daemon never writes either.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SambaConfig {
    /// Samba's configuration file, written whole by the helper.
    pub config: PathBuf,
    /// Where the shares' folders are made (`homes/<user>`, `groups/<share>`, `public`).
    /// Default `<data_dir>/shares`.
    pub shares_dir: Option<PathBuf>,
    /// Samba's own files (user database, locks, pid, logs) under this directory. Unset:
    /// Samba's defaults (/var/lib/samba, /run/samba, /var/log/samba).
    pub state_dir: Option<PathBuf>,
    /// Where smbd listens: empty for every interface on port 445, or "address:port".
    pub listen: String,
    /// The system account that owns every file on the shares (made by the helper).
    pub files_user: String,
    /// A systemd unit the helper starts when smbd is not running to take a new
    /// configuration (the appliance: "smbd"); empty: none, smbd is someone else's to run.
    pub service: String,
}

impl Default for SambaConfig {
    fn default() -> Self {
        SambaConfig {
            config: PathBuf::from("/etc/samba/smb.conf"),
            shares_dir: None,
            state_dir: None,
            listen: String::new(),
            files_user: "bureau-files".into(),
            service: String::new(),
        }
    }
}

/// LDAP on 389 (StartTLS) and 636 (TLS): the directory, read-only, for the LAN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    pub enabled: bool,
    /// Let clients search without binding (only the root DSE is open otherwise).
    pub allow_anonymous: bool,
    /// Refuse passwords over a connection that is not encrypted (StartTLS first on 389).
    pub require_tls: bool,
    /// Most entries one search returns without the paged-results control.
    pub size_limit: usize,
    pub max_connections_per_ip: usize,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            enabled: true,
            allow_anonymous: false,
            require_tls: true,
            size_limit: 1000,
            max_connections_per_ip: 50,
        }
    }
}

/// IMAP on 143 (STARTTLS) and 993 (TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapConfig {
    pub enabled: bool,
    /// Simultaneous connections from one address (phones and desktops keep several open).
    pub max_connections_per_ip: usize,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            enabled: true,
            max_connections_per_ip: 50,
        }
    }
}

/// Mail in (MX on 25), submission (587 STARTTLS, 465 TLS), and the outbound queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub enabled: bool,
    /// Largest message accepted, bytes (announced with SIZE).
    pub max_message_bytes: usize,
    /// Largest header section, bytes.
    pub max_header_bytes: usize,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Simultaneous connections from one address.
    pub max_connections_per_ip: usize,
    /// Messages accepted per minute from one unauthenticated address on port 25.
    pub max_messages_per_minute_per_ip: u32,
    /// Seconds to wait for a command, and for each block of message data.
    pub command_timeout_secs: u64,
    pub data_timeout_secs: u64,
    /// Check SPF, DKIM and DMARC of incoming mail and add Authentication-Results.
    pub verify_inbound: bool,
    /// Seconds a DNS lookup may take.
    pub dns_timeout_secs: u64,
    /// DNS servers ("ip:port") for MX lookups and SPF/DKIM/DMARC checks; empty: the
    /// system's (/etc/resolv.conf).
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Outbound: send everything through this relay (the provider's smarthost) instead of
    /// looking up MX records.
    pub relay: Option<RelayConfig>,
    /// Outbound: domain -> "host:port" sent to directly, before MX lookup (a transport map).
    pub routes: std::collections::BTreeMap<String, String>,
    /// Outbound: how long a message is retried before it bounces, hours.
    pub queue_lifetime_hours: u64,
    /// Outbound: first retry after this many seconds; each later one waits twice as long,
    /// up to `retry_max_secs`.
    pub retry_first_secs: u64,
    pub retry_max_secs: u64,
    /// Outbound: refuse to send over an unencrypted connection when the peer offers no
    /// STARTTLS (off: opportunistic TLS, as most MTAs do).
    pub require_tls: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    pub host: String,
    #[serde(default = "default_relay_port")]
    pub port: u16,
    /// "starttls" (default), "tls" (implicit, usually port 465) or "none".
    #[serde(default = "default_relay_tls")]
    pub tls: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

fn default_relay_port() -> u16 {
    587
}

fn default_relay_tls() -> String {
    "starttls".into()
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            enabled: true,
            max_message_bytes: 50 << 20,
            max_header_bytes: 256 << 10,
            max_recipients: 500,
            max_connections_per_ip: 20,
            max_messages_per_minute_per_ip: 120,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            verify_inbound: true,
            dns_timeout_secs: 5,
            dns_servers: Vec::new(),
            relay: None,
            routes: Default::default(),
            queue_lifetime_hours: 120,
            retry_first_secs: 300,
            retry_max_secs: 4 * 3600,
            require_tls: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The box's name, in certificates and greetings. Unset: the name chosen in the console
    /// (`<data_dir>/system/hostname`, which the appliance also gives the system at boot),
    /// else the system's hostname. Set here, the console cannot change it.
    pub hostname: Option<String>,
    /// Where the store, certificates and snapshots live.
    pub data_dir: PathBuf,
    /// The account to run as once the ports are bound, when started as root.
    pub user: String,
    /// Addresses to listen on.
    pub bind: Vec<IpAddr>,
    /// Added to every standard port (10000 in development: 25 becomes 10025).
    pub port_offset: u16,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain supplied by the administrator. Empty: a self-signed certificate
    /// for the hostname is made on first start. Replacing the files takes effect without a
    /// restart.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
    /// A PEM root for the ACME server's own HTTPS, when it is not publicly trusted (a
    /// private CA, or a test server such as pebble). Unset: the system's roots.
    pub acme_ca_file: Option<PathBuf>,
}

/// The brute-force guard shared by every login path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Delay before answering the attempt after a first failure; doubles with each failure.
    pub base_delay_ms: u64,
    /// Ceiling of that delay.
    pub max_delay_ms: u64,
    /// Failures from one address against one account before that address may not try that
    /// account for `lockout_secs` (`ip_max_failures` is its former name).
    #[serde(alias = "ip_max_failures")]
    pub source_max_failures: u32,
    /// Accounts failed from one address before the whole address is refused (spraying).
    pub source_max_accounts: u32,
    /// Failures of one account from addresses it never signed in from before such attempts
    /// are taken one at a time, `max_delay_ms` apart.
    pub account_slow_after: u32,
    pub lockout_secs: u64,
    /// Failures older than this are forgotten.
    pub window_secs: u64,
    /// Addresses never locked out (the administrator's own network, say).
    pub trusted: Vec<IpAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    pub min_password_len: usize,
    /// argon2id cost for new password hashes: memory in KiB, passes.
    pub argon2_memory_kib: u32,
    pub argon2_passes: u32,
    /// RSA key size of the DKIM key made for each new domain.
    pub dkim_bits: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// fsync before acknowledging a write. Turn off only for throwaway benchmarks.
    pub fsync: bool,
    /// redb page cache, MiB.
    pub cache_mb: usize,
    /// Free disk kept in reserve, MiB: below it new mail and uploads are refused (a
    /// temporary error) so that deletions still work.
    pub min_free_mb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Unix socket of the admin API for the CLI. Default: `<data_dir>/admin.sock`.
    pub socket: Option<PathBuf>,
    /// Serve the console (/admin) and the admin API on HTTPS to these networks only: CIDR
    /// blocks, addresses, or "lan" for the private ranges. Empty means everyone. (The CLI's
    /// socket is not affected.)
    pub console_networks: Vec<String>,
    /// Lifetime of a console session, minutes.
    pub session_minutes: u64,
    /// Unix socket of the privileged helper (updates, reboot), on the appliance.
    pub helper_socket: PathBuf,
    /// Largest update bundle accepted, MiB.
    pub max_update_mb: u64,
    /// Largest backup archive accepted for a restore from the console, MiB.
    pub max_restore_mb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// error, warn, info, debug or trace.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: None,
            data_dir: PathBuf::from("/var/lib/bureau"),
            user: "bureau".into(),
            bind: vec![IpAddr::from([0, 0, 0, 0])],
            port_offset: 0,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            base_delay_ms: 250,
            max_delay_ms: 5_000,
            source_max_failures: 10,
            source_max_accounts: 5,
            account_slow_after: 10,
            lockout_secs: 900,
            window_secs: 900,
            trusted: Vec::new(),
        }
    }
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        let d = bureau_directory::DirectoryOptions::default();
        DirectoryConfig {
            min_password_len: d.min_password_len,
            argon2_memory_kib: d.argon2_m_kib,
            argon2_passes: d.argon2_t,
            dkim_bits: d.dkim_bits,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            fsync: true,
            cache_mb: 16,
            min_free_mb: 64,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            socket: None,
            console_networks: Vec::new(),
            session_minutes: 480,
            helper_socket: PathBuf::from("/run/bureau/helper.sock"),
            max_update_mb: 1024,
            max_restore_mb: 64 * 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// The system's hostname, made fully qualified (`.local`) if it is a bare name.
fn system_hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let h = if h.contains('.') {
        h
    } else {
        format!("{h}.local")
    };
    match bureau_directory::validate::domain(&h) {
        Ok(h) => h,
        Err(_) => "bureau.local".into(),
    }
}

/// The line of `table.key = ...` in the text, for errors whose span is the whole table.
fn locate(text: &str, path: &str) -> Option<usize> {
    let (table, key) = path.rsplit_once('.').unwrap_or(("", path));
    let mut in_table = table.is_empty();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            in_table = l.trim_matches(|c| c == '[' || c == ']').trim() == table;
            continue;
        }
        if in_table
            && let Some((k, _)) = l.split_once('=')
            && k.trim().trim_matches('"') == key
        {
            return Some(n + 1);
        }
    }
    None
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Read { file: String, message: String },
    #[error("{file}{}: key `{key}`: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
    Key {
        file: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
}

/// The standard ports, before `port_offset`.
pub mod ports {
    pub const SMTP: u16 = 25;
    pub const SUBMISSION: u16 = 587;
    pub const SUBMISSIONS: u16 = 465;
    pub const IMAP: u16 = 143;
    pub const IMAPS: u16 = 993;
    pub const HTTP: u16 = 80;
    pub const HTTPS: u16 = 443;
    pub const LDAP: u16 = 389;
    pub const LDAPS: u16 = 636;
}

impl Config {
    /// Reads a file; a missing file is an error (use `Config::default()` for none).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let line_of = |span: Option<std::ops::Range<usize>>| {
            span.map_or(1, |s| {
                text[..s.start.min(text.len())].lines().count().max(1)
            })
        };
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            line: line_of(e.span()),
            message: e.message().trim().to_string(),
        })?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = locate(text, &key).unwrap_or_else(|| line_of(inner.span()));
            let line = Some(line);
            ConfigError::Key {
                file: file.to_string(),
                line,
                key,
                message: inner.message().trim().to_string(),
            }
        })?;
        cfg.check(text, file)?;
        Ok(cfg)
    }

    /// Rules serde cannot express.
    fn check(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Key {
            file: file.to_string(),
            line: locate(text, key),
            key: key.to_string(),
            message,
        };
        if let Some(h) = &self.server.hostname
            && bureau_directory::validate::domain(h).is_err()
        {
            return Err(bad(
                "server.hostname",
                format!("'{h}' is not a fully qualified name"),
            ));
        }
        if self.server.bind.is_empty() {
            return Err(bad("server.bind", "at least one address".into()));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(bad("tls", "set both cert and key, or neither".into()));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.level.as_str()) {
            return Err(bad(
                "log.level",
                format!(
                    "'{}': use error, warn, info, debug or trace",
                    self.log.level
                ),
            ));
        }
        if self.auth.source_max_failures == 0 {
            return Err(bad("auth.source_max_failures", "must be at least 1".into()));
        }
        if self.auth.source_max_accounts < 2 {
            return Err(bad(
                "auth.source_max_accounts",
                "must be at least 2 (one account is source_max_failures)".into(),
            ));
        }
        if let Some(r) = &self.smtp.relay
            && !["starttls", "tls", "none"].contains(&r.tls.as_str())
        {
            return Err(bad(
                "smtp.relay.tls",
                format!("'{}': use starttls, tls or none", r.tls),
            ));
        }
        for (dom, target) in &self.smtp.routes {
            let ok = target
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !ok {
                return Err(bad(
                    &format!("smtp.routes.{dom}"),
                    format!("'{target}': use host:port"),
                ));
            }
        }
        // ring signs with 2048-bit keys at least (and receivers distrust smaller ones).
        if !(2048..=4096).contains(&self.directory.dkim_bits) {
            return Err(bad("directory.dkim_bits", "between 2048 and 4096".into()));
        }
        for (key, value, ceiling) in self.limits.depths() {
            if !(1..=ceiling).contains(&value) {
                return Err(bad(
                    key,
                    format!("between 1 and {ceiling} (a depth may only be lowered)"),
                ));
            }
        }
        let l = &self.limits;
        let sizes = [
            ("limits.mime_parts", l.mime_parts),
            ("limits.imap_command_bytes", l.imap_command_bytes as usize),
            ("limits.imap_pattern_bytes", l.imap_pattern_bytes),
            ("limits.dav_xml_bytes", l.dav_xml_bytes),
            ("limits.dav_xml_elements", l.dav_xml_elements),
            ("limits.object_bytes", l.object_bytes),
            ("limits.activesync_body_bytes", l.activesync_body_bytes),
            ("limits.ldap_message_bytes", l.ldap_message_bytes),
            ("limits.admin_body_bytes", l.admin_body_bytes),
            ("limits.admin_import_bytes", l.admin_import_bytes),
        ];
        for (key, value) in sizes {
            if value == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if self.directory.min_password_len < 6 {
            return Err(bad(
                "directory.min_password_len",
                "must be at least 6".into(),
            ));
        }
        Ok(())
    }

    /// The development profile: loopback, ports + 10000, data in ./bureau-data.
    pub fn dev() -> Config {
        let mut c = Config::default();
        c.server.bind = vec![IpAddr::from([127, 0, 0, 1])];
        c.server.port_offset = 10_000;
        c.server.data_dir = PathBuf::from("bureau-data");
        // Development runs as whoever starts it, with data beside them.
        c.server.user = String::new();
        c
    }

    pub fn port(&self, standard: u16) -> u16 {
        standard.saturating_add(self.server.port_offset)
    }

    /// The one-time token that lets the first administrator be created (console setup).
    pub fn setup_token_path(&self) -> PathBuf {
        self.server.data_dir.join("setup-token")
    }

    /// The folder of Samba's configuration file when it is Samba's alone (not the data
    /// directory, nor one holding it or the shares): root's, as smbd (root) reads it.
    pub fn samba_own_dir(&self) -> Option<PathBuf> {
        let dir = self.samba.config.parent()?;
        let data = &self.server.data_dir;
        (!data.starts_with(dir) && !self.shares_dir().starts_with(dir)).then(|| dir.to_path_buf())
    }

    /// The privileged helper's own folder (root's alone: the backup share's login).
    pub fn helper_dir(&self) -> PathBuf {
        self.server.data_dir.join("helper")
    }

    /// Where update bundles are received before the helper installs them.
    pub fn updates_dir(&self) -> PathBuf {
        self.server.data_dir.join("updates")
    }

    /// The box's settings the console makes (hostname, time zone), in files the appliance's
    /// boot reads too.
    pub fn system_dir(&self) -> PathBuf {
        self.server.data_dir.join("system")
    }

    /// The box's name: `server.hostname` if set, else the console's choice, else the system's.
    pub fn hostname(&self) -> String {
        if let Some(h) = &self.server.hostname {
            return h.clone();
        }
        std::fs::read_to_string(self.system_dir().join(crate::system::HOSTNAME))
            .ok()
            .and_then(|h| bureau_directory::validate::domain(h.trim()).ok())
            .unwrap_or_else(system_hostname)
    }

    pub fn shares_dir(&self) -> PathBuf {
        self.samba
            .shares_dir
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("shares"))
    }

    /// Squid's folder: its configuration and LDAP secret (the helper's, root's) and its own
    /// files (pid, cache log).
    pub fn proxy_dir(&self) -> PathBuf {
        self.proxy
            .state_dir
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("proxy"))
    }

    /// Bureau's LDAP as Squid's sign-in helper reaches it.
    pub fn proxy_ldap_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.port(ports::LDAPS))
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.admin
            .socket
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("admin.sock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("[server]\nhostname = \"mail.example.com\"\n", "t.toml").unwrap();
        assert_eq!(c.hostname(), "mail.example.com");
        assert_eq!(c.auth.source_max_failures, 10);
        assert!(c.store.fsync);
        assert_eq!(c.port(ports::IMAPS), 993);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = Config::parse(
            "[server]\nhostname = \"a.example\"\n\n[auth]\nlockout_secs = \"soon\"\n",
            "bureau.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("bureau.toml:5: key `auth.lockout_secs`:"),
            "{e}"
        );

        let e = Config::parse("[store]\nfsynk = true\n", "b.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("b.toml:2:") && e.contains("fsynk"), "{e}");

        let e = Config::parse("[server\nx=1", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:1:"), "{e}");

        let e = Config::parse("[log]\nlevel = \"loud\"\n", "d.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `log.level`"), "{e}");
    }

    #[test]
    fn limits_may_be_set_but_depths_only_lowered() {
        let c = Config::parse(
            "[limits]\nimap_pattern_bytes = 4096\nwbxml_depth = 20\n",
            "l.toml",
        )
        .unwrap();
        assert_eq!(c.limits.imap_pattern_bytes, 4096);
        assert_eq!(c.limits.wbxml_depth, 20);
        assert_eq!(c.limits.mime_parts, 10_000);
        for bad in [
            "wbxml_depth = 65",
            "component_depth = 0",
            "object_bytes = 0",
        ] {
            let e = Config::parse(&format!("[limits]\n{bad}\n"), "l.toml")
                .unwrap_err()
                .to_string();
            let key = bad.split(' ').next().unwrap();
            assert!(
                e.starts_with(&format!("l.toml:2: key `limits.{key}`")),
                "{e}"
            );
        }
    }
}
