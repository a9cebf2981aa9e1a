//! The privileged helper's protocol. `bureau serve` runs unprivileged; the few things only
//! root may do go to `bureau helper` (root) as one of these requests, one JSON line each way,
//! on a unix socket that only root and the daemon's account can open.

use bureau_words::{Said, said};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Longest request line the helper reads (a Samba plan lists every account).
pub const MAX_REQUEST: usize = 4 << 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Install a RAUC bundle (a file in the data directory's `updates/`) to the other slot.
    InstallUpdate { bundle: PathBuf },
    /// The slots, as `rauc status --output-format=json` tells them.
    SlotStatus,
    /// Reboot the box (after answering).
    Reboot,
    /// Shut the box down (after answering); it stays off until its power button is pressed.
    PowerOff,
    /// Render Squid's configuration from this plan (checked again here), have Squid check
    /// it, and only then install it and the LDAP secret in the proxy's folder, root's.
    /// Answers the configuration's path. Squid reads it at the next `ReloadProxy`.
    ApplyProxy { plan: ProxyPlan },
    /// Make Squid read its configuration (`systemctl reload-or-restart squid`).
    ReloadProxy,
    /// Bring Samba in line with this plan: its configuration, the accounts and their NT
    /// hashes, the shares' folders. Answers a `SambaReport` as JSON.
    ApplySamba { plan: SambaPlan },
    /// Whether smbd runs, and who is connected (`smbstatus --json`).
    SambaStatus,
    /// Give the running system this name (the boot gives it from the data partition).
    SetHostname { name: String },
    /// Mount the disk labelled `BUREAU-BACKUP` (a USB disk), if it is not yet, and answer
    /// the folder on it the daemon writes backups into.
    MountBackupDisk,
    /// Mount the office's SMB share backups go to, if it is not yet, and answer the folder
    /// on it the daemon writes backups into. With a login: mount with it (in place of the
    /// share mounted before), and only once that worked keep it, root's alone, for the
    /// mounts to come; an empty password stands for the one kept.
    MountBackupShare { login: Option<ShareLogin> },
    /// Mount the office's NFS export backups go to (NFS 4.1), unless it is mounted, and
    /// answer where (the daemon makes its own folder in it: a server that squashes root
    /// lets only the daemon's account write there).
    MountBackupExport { export: NfsExport },
}

/// The daemon's folder on a backup disk, share or export.
pub const BACKUP_FOLDER: &str = "bureau-backups";

/// The office's NFS export backups go to.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NfsExport {
    /// The file server's host name or address.
    pub server: String,
    /// The export's path on it, as `/backups`.
    pub path: String,
}

impl NfsExport {
    /// The first field that cannot be given to the kernel's NFS client, and why.
    pub fn check(&self) -> Result<(), (&'static str, Said)> {
        if !host_or_address(&self.server) {
            return Err(("server", said("err_share_server")));
        }
        let p = &self.path;
        if !p.starts_with('/')
            || p.len() > 255
            || p.chars().any(|c| c.is_control() || c == ',')
            || p.split('/').any(|part| part == "..")
        {
            return Err(("path", said("err_export_path")));
        }
        Ok(())
    }

    /// What mount(2) is given as the source: `server:/path` (`[address]:/path` for IPv6).
    pub fn source(&self) -> String {
        match self.server.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(a)) => format!("[{a}]:{}", self.path),
            _ => format!("{}:{}", self.server, self.path),
        }
    }

    /// The kernel's mount options, the server at `addr`: NFS 4.1 over TCP, soft: a server
    /// gone fails a call within a minute (15 s, three tries), as a disk unplugged would, and
    /// the backup's check catches anything half-written.
    pub fn mount_options(addr: std::net::IpAddr) -> String {
        format!("vers=4.1,proto=tcp,addr={addr},soft,timeo=150,retrans=3")
    }
}

/// An address, or a host name (one label, as a NAS is often called, or more).
fn host_or_address(server: &str) -> bool {
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    server.parse::<std::net::IpAddr>().is_ok()
        || (server.len() <= 253 && server.split('.').all(label))
}

/// The office's SMB share backups go to, as the administrator gave it.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShareLogin {
    /// The file server's host name or address.
    pub server: String,
    /// The share's name on it.
    pub share: String,
    pub user: String,
    /// The account's domain or workgroup; empty: the server's own.
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub password: String,
}

impl std::fmt::Debug for ShareLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareLogin")
            .field("server", &self.server)
            .field("share", &self.share)
            .field("user", &self.user)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ShareLogin {
    /// The first field that cannot be given to the kernel's SMB client, and why.
    pub fn check(&self) -> Result<(), (&'static str, Said)> {
        if !host_or_address(&self.server) {
            return Err(("server", said("err_share_server")));
        }
        // A share's name is one folder: no separators, nothing the mount options would
        // read as their own.
        let plain = |s: &str, most: usize, also: &str| {
            !s.is_empty()
                && s.chars().count() <= most
                && !s
                    .chars()
                    .any(|c| c.is_control() || "/\\,=\"".contains(c) || also.contains(c))
        };
        if !plain(&self.share, 80, "") {
            return Err(("share", said("err_share_name")));
        }
        if !plain(&self.user, 64, "@") {
            return Err(("user", said("err_share_user")));
        }
        if !self.domain.is_empty() && !plain(&self.domain, 64, " @") {
            return Err(("domain", said("err_share_domain")));
        }
        if self.password.len() > 256 || self.password.chars().any(char::is_control) {
            return Err(("password", said("err_share_password")));
        }
        Ok(())
    }

    /// The kernel's mount options for this login, the server at `addr`: the files the
    /// daemon's (`uid`, `gid`), for it alone. A comma in the password is doubled, as the
    /// SMB client reads it.
    pub fn mount_options(&self, addr: std::net::IpAddr, uid: u32, gid: u32) -> String {
        let mut o = format!(
            "ip={addr},username={},password={},uid={uid},gid={gid},forceuid,forcegid,\
             file_mode=0600,dir_mode=0700",
            self.user,
            self.password.replace(',', ",,")
        );
        if !self.domain.is_empty() {
            o.push_str(",domain=");
            o.push_str(&self.domain);
        }
        o
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
}

/// "Members of this group may (not) reach these domains."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRule {
    pub group: String,
    pub action: Action,
    pub domains: Vec<String>,
}

/// The web proxy's settings, as the administrator gives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxySettings {
    /// Who may use the proxy: CIDR blocks, addresses, or "lan".
    pub networks: Vec<String>,
    /// Users sign in with their Bureau address and password.
    pub authenticate: bool,
    /// Domains (and their subdomains) nobody reaches.
    pub blocked: Vec<String>,
    /// Checked in order, after the blocked domains.
    pub rules: Vec<GroupRule>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            networks: vec!["lan".into()],
            authenticate: true,
            blocked: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// The directory's view the proxy's rules need.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyAccounts {
    /// (group, every name its enabled members sign in with: uid, address, aliases)
    pub groups: Vec<(String, Vec<String>)>,
    /// The naming contexts' people branches, e.g. ou=people,dc=example,dc=com.
    pub people_bases: Vec<String>,
}

/// Everything Squid's configuration is made of, sent whole: the helper checks every field
/// again and renders the configuration itself (Squid starts as root and reads it), so no
/// text the daemon wrote reaches Squid.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyPlan {
    pub settings: ProxySettings,
    pub accounts: ProxyAccounts,
    /// The service account Squid's sign-in helper binds to LDAP as.
    pub bind_dn: String,
    /// Its password, made by the box (base64url), for the helper's 0640 file.
    pub secret: String,
}

impl std::fmt::Debug for ProxyPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyPlan")
            .field("settings", &self.settings)
            .field("accounts", &self.accounts)
            .field("bind_dn", &self.bind_dn)
            .finish_non_exhaustive()
    }
}

/// The file system label of the disk backups go to (`mkfs.ext4 -L BUREAU-BACKUP`,
/// `mkfs.vfat -n BUREAU-BACKUP`).
pub const BACKUP_LABEL: &str = "BUREAU-BACKUP";

/// Everything Samba should serve, sent whole: the helper renders the configuration itself
/// from these checked fields (never from text the daemon wrote), so nothing else reaches it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SambaPlan {
    pub workgroup: String,
    /// A home share per user (`\\box\<user>`).
    pub homes: bool,
    /// A share every user may read and write.
    pub public: bool,
    pub shares: Vec<SambaShare>,
    pub users: Vec<SambaUser>,
}

/// A share read and written by its members.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SambaShare {
    pub name: String,
    pub comment: String,
    /// Accounts that may use it (enabled users only).
    pub members: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SambaUser {
    pub name: String,
    /// The NT hash, 32 hex digits: the password itself never leaves the directory.
    pub nt_hash: String,
    pub enabled: bool,
}

impl std::fmt::Debug for SambaUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SambaUser")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// What an `ApplySamba` did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SambaReport {
    /// The configuration file installed.
    pub config: String,
    /// Accounts Samba now knows from Bureau.
    pub users: usize,
    pub added: Vec<String>,
    /// Password or enabled state brought in line.
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Accounts left out, and why (a system account of the same name, say).
    pub skipped: Vec<(String, String)>,
    /// smbd read the new configuration (false: it is not running; it reads it on start).
    pub reloaded: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    /// What the command said (on failure, why).
    pub output: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// No helper to ask (not on the appliance, or it is down), in words for an
    /// administrator; the technical reason (its socket, the system's error) goes to the log.
    #[error("{0}")]
    Unavailable(String),
    /// The helper ran the request and it failed: the reason.
    #[error("{0}")]
    Failed(String),
}

/// What an administrator is told when there is no helper to ask.
pub const NOT_RUNNING: &str =
    "the box's system helper is not running (it runs on the appliance, as root)";

/// Sends one request and waits for its answer, at most `timeout`.
pub async fn call(socket: &Path, req: &Request, timeout: Duration) -> Result<String, HelperError> {
    let down = |e: &dyn std::fmt::Display| {
        log::warn!("helper: {}: {e}", socket.display());
        HelperError::Unavailable("the box's system helper did not answer as it should".into())
    };
    let exchange = async {
        let mut s = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
            log::warn!("helper: {}: {e}", socket.display());
            HelperError::Unavailable(NOT_RUNNING.into())
        })?;
        let mut line = serde_json::to_vec(req).map_err(|e| down(&e))?;
        line.push(b'\n');
        s.write_all(&line).await.map_err(|e| down(&e))?;
        let mut answer = String::new();
        BufReader::new(s)
            .read_line(&mut answer)
            .await
            .map_err(|e| down(&e))?;
        let reply: Reply = serde_json::from_str(&answer).map_err(|e| down(&e))?;
        if reply.ok {
            Ok(reply.output)
        } else {
            Err(HelperError::Failed(reply.output))
        }
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        HelperError::Unavailable("the box's system helper did not answer in time".into())
    })?
}

/// Why a program run by [`command`] did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// It could not be started (not installed, not executable).
    #[error("{program}: {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    /// It ran past its time and was killed.
    #[error("{program} took longer than {secs} s")]
    TimedOut { program: String, secs: u64 },
    /// It ended in failure: what it said of why.
    #[error("{0}")]
    Failed(String),
}

/// Runs a program (never a shell), returning what it printed; its error output on failure.
pub async fn command(
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<String, CommandError> {
    let run = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| CommandError::TimedOut {
            program: program.into(),
            secs: timeout.as_secs(),
        })?
        .map_err(|source| CommandError::Start {
            program: program.into(),
            source,
        })?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        // rauc states its reason on a "LastError:" line; otherwise the last line says most.
        let said = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
        let reason = said
            .lines()
            .find_map(|l| l.trim().strip_prefix("LastError:"))
            .or_else(|| said.lines().rev().find(|l| !l.trim().is_empty()))
            .map(|l| l.trim().to_string());
        Err(CommandError::Failed(reason.unwrap_or_else(|| {
            format!("{program} failed ({})", out.status)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> ShareLogin {
        ShareLogin {
            server: "files.office.example".into(),
            share: "Backups 2026".into(),
            user: "office".into(),
            domain: String::new(),
            password: "a,b c=d".into(),
        }
    }

    #[test]
    fn a_share_login_is_checked_field_by_field() {
        assert!(login().check().is_ok());
        let field = |f: fn(&mut ShareLogin)| {
            let mut l = login();
            f(&mut l);
            l.check().map_err(|(field, _)| field)
        };
        assert!(field(|l| l.server = "10.0.2.100".into()).is_ok());
        assert_eq!(
            field(|l| l.server = "files,ip=1.2.3.4".into()),
            Err("server")
        );
        assert_eq!(field(|l| l.server = String::new()), Err("server"));
        assert!(field(|l| l.server = "nas".into()).is_ok());
        assert_eq!(field(|l| l.server = "nas.".into()), Err("server"));
        assert_eq!(field(|l| l.share = "a/b".into()), Err("share"));
        assert_eq!(field(|l| l.share = "a,uid=0".into()), Err("share"));
        assert_eq!(field(|l| l.share = String::new()), Err("share"));
        assert_eq!(field(|l| l.user = "bob,uid=0".into()), Err("user"));
        assert_eq!(field(|l| l.domain = "A=B".into()), Err("domain"));
        assert!(field(|l| l.domain = "OFFICE".into()).is_ok());
        assert_eq!(field(|l| l.password = "new\nline".into()), Err("password"));
        assert_eq!(field(|l| l.password = "x".repeat(257)), Err("password"));
        assert!(!format!("{:?}", login()).contains("a,b"));
    }

    #[test]
    fn an_nfs_export_is_checked_and_named_as_mount_wants_it() {
        let e = |server: &str, path: &str| NfsExport {
            server: server.into(),
            path: path.into(),
        };
        assert!(e("nas", "/volume1/backups").check().is_ok());
        assert_eq!(e("nas", "/b").source(), "nas:/b");
        assert_eq!(e("fd00::2", "/b").source(), "[fd00::2]:/b");
        for (server, path, field) in [
            ("nas,addr=1.2.3.4", "/b", "server"),
            ("nas", "backups", "path"),
            ("nas", "/b,vers=3", "path"),
            ("nas", "/a/../etc", "path"),
            ("nas", "/a\nb", "path"),
        ] {
            assert_eq!(e(server, path).check().map_err(|(f, _)| f), Err(field));
        }
    }

    #[test]
    fn a_comma_in_the_password_stays_in_the_password() {
        let o = login().mount_options("10.0.2.100".parse().unwrap(), 101, 102);
        assert_eq!(
            o,
            "ip=10.0.2.100,username=office,password=a,,b c=d,uid=101,gid=102,forceuid,\
             forcegid,file_mode=0600,dir_mode=0700"
        );
    }
}
