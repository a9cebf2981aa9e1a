//! The office's file server: Samba's shares and accounts from Bureau's directory.
//!
//! - The administrator's settings (workgroup, home shares, a public share, a share per
//!   chosen group) live in the store and are checked field by field.
//! - The daemon turns them and the directory into a `SambaPlan` (shares with their members,
//!   accounts with their NT hashes) and sends it whole to the privileged helper at each
//!   change of the directory, so a user made, disabled, deleted or given a new password is
//!   the same in Samba at once, with no second password.
//! - The helper (`apply`, root) checks the plan again, renders smb.conf itself, has
//!   `testparm` check it, and only then makes the Unix accounts Samba needs (nologin, no
//!   home, marked "Bureau account"), imports the NT hashes into Samba's user database,
//!   makes the shares' folders, installs the configuration and tells smbd to reload.
//!
//! Choices: every file on the shares belongs to one system account (`files_user`): access is
//! Samba's (`valid users`), so no Unix group has to mirror a Bureau group. Share folders are
//! named by Bureau (`groups/<share>`, `homes/<user>`, `public`), never by a path the
//! administrator types. Folders of deleted users and shares are kept, as a file server's
//! data should be. A Unix account of the same name not made by Bureau (a system account)
//! is never touched: that user is left out of Samba and the report says why.

use crate::{Invalid, invalid};
use bureau_core::config::SambaConfig;
use bureau_core::helper::{
    self, CommandError, HelperError, Request, SambaPlan, SambaReport, SambaShare, SambaUser,
};
use bureau_directory::Directory;
use bureau_store::{Store, StoreError};
use bureau_words::said;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const KEY: &str = "samba";
/// The GECOS field of the Unix accounts the helper makes, and the only ones it changes.
const MARK: &str = "Bureau account";
/// Share names Samba keeps for itself or Bureau uses.
const RESERVED: &[&str] = &["global", "homes", "printers", "print$", "ipc$", "public"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SambaSettings {
    /// Bureau keeps Samba in step with the directory (set by the first apply).
    pub enabled: bool,
    /// The Windows workgroup the server shows in.
    pub workgroup: String,
    /// A home share per user, only theirs.
    pub homes: bool,
    /// A share named "public" every user may read and write.
    pub public: bool,
    pub shares: Vec<ShareSetting>,
}

impl Default for SambaSettings {
    fn default() -> Self {
        SambaSettings {
            enabled: false,
            workgroup: "OFFICE".into(),
            homes: true,
            public: false,
            shares: Vec::new(),
        }
    }
}

/// A share its group's members read and write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSetting {
    pub name: String,
    pub group: String,
    #[serde(default)]
    pub comment: String,
}

pub fn load(store: &Store) -> Result<SambaSettings, StoreError> {
    crate::load_settings(store, KEY)
}

pub async fn save(store: &Store, s: &SambaSettings) -> Result<(), StoreError> {
    crate::save_settings(store, KEY, s).await
}

/// A share's name: what a user types after `\\box\`. No path, no space, nothing Samba
/// would read as syntax.
fn share_name(field: &str, n: &str) -> Result<String, Invalid> {
    let ok = bureau_directory::validate::name("name", n).map_err(|_| {
        invalid(
            field,
            said("err_a_share_name_is_1_to").with("n", format!("{:?}", n)),
        )
    })?;
    if RESERVED.contains(&ok.as_str()) {
        return Err(invalid(
            field,
            said("err_is_a_name_samba_keeps").with("ok", format!("{:?}", ok)),
        ));
    }
    Ok(ok)
}

fn workgroup(w: &str) -> Result<String, Invalid> {
    let w = w.trim().to_ascii_uppercase();
    if w.is_empty()
        || w.len() > 15
        || !w
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid("workgroup", said("err_1_to_15_letters_digits_or")));
    }
    Ok(w)
}

/// A comment on one line, without anything Samba reads as syntax.
fn comment(c: &str) -> String {
    c.chars()
        .filter(|c| !c.is_control() && !"%\\".contains(*c))
        .take(200)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Checks the settings against the directory's groups and users (field names are the API's).
pub fn check(s: &SambaSettings, groups: &[String], users: &[String]) -> Result<(), Invalid> {
    workgroup(&s.workgroup)?;
    let mut seen = BTreeSet::new();
    for (i, sh) in s.shares.iter().enumerate() {
        let name = share_name(&format!("shares[{i}].name"), &sh.name)?;
        if !seen.insert(name.clone()) {
            return Err(invalid(
                format!("shares[{i}].name"),
                said("err_two_shares_are_named").with("name", format!("{:?}", name)),
            ));
        }
        if s.homes && users.contains(&name) {
            return Err(invalid(
                format!("shares[{i}].name"),
                said("err_is_a_users_home_share").with("name", format!("{:?}", name)),
            ));
        }
        if !groups.contains(&sh.group) {
            return Err(invalid(
                format!("shares[{i}].group"),
                said("err_there_is_no_group").with("group", format!("{:?}", sh.group)),
            ));
        }
    }
    Ok(())
}

/// What Samba should serve now: the settings (checked) and the directory's enabled users.
pub fn plan(
    s: &SambaSettings,
    dir: &Directory,
) -> Result<SambaPlan, bureau_directory::DirectoryError> {
    let mut users = Vec::new();
    for u in dir.users()? {
        // A user whose password was never set here has no NT hash: Samba cannot know them.
        if let Some(h) = dir.nt_hash_of(&u.uid)? {
            users.push(SambaUser {
                name: u.uid,
                nt_hash: hex::encode_upper(h),
                enabled: u.enabled,
            });
        }
    }
    let enabled: BTreeSet<&str> = users
        .iter()
        .filter(|u| u.enabled)
        .map(|u| u.name.as_str())
        .collect();
    let groups = dir.groups()?;
    let shares = s
        .shares
        .iter()
        .map(|sh| {
            let members = groups
                .iter()
                .find(|g| g.name == sh.group)
                .map(|g| {
                    g.members
                        .iter()
                        .filter(|m| enabled.contains(m.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            SambaShare {
                name: sh.name.to_ascii_lowercase(),
                comment: if sh.comment.trim().is_empty() {
                    format!("The {} group's files", sh.group)
                } else {
                    comment(&sh.comment)
                },
                members,
            }
        })
        .collect();
    Ok(SambaPlan {
        workgroup: s.workgroup.trim().to_ascii_uppercase(),
        homes: s.homes,
        public: s.public,
        shares,
        users,
    })
}

/// Why the helper did not bring Samba in line with a plan. Nothing is changed on a
/// refused plan or configuration; a failure after them leaves what was done so far, and
/// the next push makes it whole.
#[derive(Debug, thiserror::Error)]
pub enum SambaError {
    /// The plan breaks a rule (the helper trusts nothing the daemon sends).
    #[error("{0}")]
    Plan(String),
    /// Bureau's Samba configuration (`samba.*`) cannot be used.
    #[error("{0}")]
    Config(String),
    /// testparm refuses the smb.conf made from the plan.
    #[error("Samba refuses the configuration: {0}")]
    Refused(Box<SambaError>),
    /// One of Samba's or the system's programs ended in failure: what it said.
    #[error("{program}: {reason}")]
    Failed { program: String, reason: String },
    /// One of them could not be run.
    #[error(transparent)]
    Command(CommandError),
    /// A file or folder.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Something other than a folder where a folder is to be: root follows no link.
    #[error("{}: not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// The system's accounts cannot be read, or one was not made.
    #[error("looking up {name}: {reason}")]
    Account { name: String, reason: String },
}

/// The helper's own check of a plan: it trusts nothing the daemon sends.
pub fn check_plan(p: &SambaPlan) -> Result<(), SambaError> {
    let say = |e: Invalid| SambaError::Plan(format!("{}: {}", e.field, e.message));
    workgroup(&p.workgroup).map_err(say)?;
    let mut names = BTreeSet::new();
    for u in &p.users {
        let ok = bureau_directory::validate::name("user", &u.name)
            .map_err(|e| SambaError::Plan(e.to_string()))?;
        if ok != u.name || !names.insert(u.name.as_str()) {
            return Err(SambaError::Plan(format!(
                "user {:?}: not a valid or unique name",
                u.name
            )));
        }
        if u.nt_hash.len() != 32 || !u.nt_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SambaError::Plan(format!(
                "user {:?}: the NT hash is not 32 hex digits",
                u.name
            )));
        }
    }
    let mut shares = BTreeSet::new();
    for s in &p.shares {
        let ok = share_name("share", &s.name).map_err(say)?;
        if ok != s.name || !shares.insert(s.name.as_str()) {
            return Err(SambaError::Plan(format!(
                "share {:?}: not a valid or unique name",
                s.name
            )));
        }
        if comment(&s.comment) != s.comment {
            return Err(SambaError::Plan(format!(
                "share {:?}: the comment holds syntax",
                s.name
            )));
        }
        if let Some(m) = s.members.iter().find(|m| !names.contains(m.as_str())) {
            return Err(SambaError::Plan(format!(
                "share {:?}: {m:?} is not an account",
                s.name
            )));
        }
    }
    Ok(())
}

/// Where smbd listens, from the configuration: none for Samba's default.
fn listen(cfg: &SambaConfig) -> Result<Option<std::net::SocketAddr>, SambaError> {
    if cfg.listen.trim().is_empty() {
        return Ok(None);
    }
    cfg.listen.trim().parse().map(Some).map_err(|_| {
        SambaError::Config(format!(
            "samba.listen: {:?} is not address:port",
            cfg.listen
        ))
    })
}

/// Samba's private directory (the user database), where the helper also puts the file of
/// hashes it imports.
fn private_dir(cfg: &SambaConfig) -> PathBuf {
    match &cfg.state_dir {
        Some(s) => s.join("private"),
        None => PathBuf::from("/var/lib/samba/private"),
    }
}

/// smb.conf for a checked plan. `left_out` are accounts the helper could not give to Samba.
pub fn render(
    p: &SambaPlan,
    cfg: &SambaConfig,
    shares_dir: &Path,
    left_out: &BTreeSet<String>,
) -> Result<String, SambaError> {
    let files = &cfg.files_user;
    let mut c = format!(
        "# Made by Bureau from its directory and Samba settings; changes here are overwritten.\n\
         [global]\n\
         \tworkgroup = {}\n\
         \tserver string = Bureau file server\n\
         \tserver role = standalone server\n\
         \tsecurity = user\n\
         \tpassdb backend = tdbsam\n\
         \tmap to guest = never\n\
         \tinvalid users = root\n\
         \tdisable netbios = yes\n\
         \tserver min protocol = SMB2_10\n\
         \tload printers = no\n\
         \tprinting = bsd\n\
         \tprintcap name = /dev/null\n\
         \tdisable spoolss = yes\n\
         \tunix password sync = no\n\
         \tobey pam restrictions = no\n\
         \tmax log size = 1000\n",
        p.workgroup
    );
    if let Some(state) = &cfg.state_dir {
        let s = state.display();
        for (key, sub) in [
            ("private dir", "private"),
            ("lock directory", "lock"),
            ("state directory", "state"),
            ("cache directory", "cache"),
            ("pid directory", "pid"),
            ("ncalrpc dir", "ncalrpc"),
        ] {
            c.push_str(&format!("\t{key} = {s}/{sub}\n"));
        }
        c.push_str(&format!("\tlog file = {s}/log.%m\n"));
    }
    if let Some(addr) = listen(cfg)? {
        c.push_str(&format!(
            "\tinterfaces = {}\n\tbind interfaces only = yes\n\tsmb ports = {}\n",
            addr.ip(),
            addr.port()
        ));
    }
    let share = |c: &mut String, name: &str, comment: &str, path: &str, extra: &str| {
        c.push_str(&format!(
            "\n[{name}]\n\tcomment = {comment}\n\tpath = {}/{path}\n\tread only = no\n\
             \tforce user = {files}\n\tforce group = {files}\n\
             \tcreate mask = 0660\n\tdirectory mask = 0770\n{extra}",
            shares_dir.display()
        ));
    };
    if p.homes {
        share(
            &mut c,
            "homes",
            "Home folder",
            "homes/%S",
            "\tvalid users = %S\n\tbrowseable = no\n",
        );
    }
    for s in &p.shares {
        let members: Vec<&str> = s
            .members
            .iter()
            .filter(|m| !left_out.contains(*m))
            .map(String::as_str)
            .collect();
        // An empty `valid users` would let everyone in.
        let who = if members.is_empty() {
            "\tavailable = no\n".to_string()
        } else {
            format!("\tvalid users = {}\n", members.join(" "))
        };
        share(
            &mut c,
            &s.name,
            &s.comment,
            &format!("groups/{}", s.name),
            &who,
        );
    }
    if p.public {
        share(&mut c, "public", "Everyone's files", "public", "");
    }
    Ok(c)
}

/// An account in Samba's user database (`pdbedit -L -w`): name → (NT hash, disabled).
pub fn parse_passdb(text: &str) -> BTreeMap<String, (String, bool)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 5 {
                return None;
            }
            Some((
                f[0].to_string(),
                (f[3].to_ascii_uppercase(), f[4].contains('D')),
            ))
        })
        .collect()
}

/// A line of the smbpasswd format pdbedit imports: hashes never appear on a command line.
fn smbpasswd_line(u: &SambaUser, uid: u32, now: u64) -> String {
    let flags = if u.enabled {
        "[UX         ]"
    } else {
        "[DUX        ]"
    };
    format!(
        "{}:{uid}:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:{}:{flags}:LCT-{:08X}:\n",
        u.name,
        u.nt_hash.to_ascii_uppercase(),
        now
    )
}

/// The Unix accounts the helper made (marked in GECOS), from the password file.
fn marked_accounts(passwd: &str) -> BTreeSet<String> {
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 5 && f[4] == MARK).then(|| f[0].to_string())
        })
        .collect()
}

// ---- the daemon's side ----

/// The last time the daemon brought Samba in line, and how it went.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// Unix time, seconds.
    pub at: i64,
    pub report: Option<SambaReport>,
    pub error: Option<String>,
}

/// Keeps Samba in step with the directory, through the helper, while it is enabled.
pub struct Keeper {
    dir: Directory,
    helper_socket: PathBuf,
    /// One plan at a time, so an older one never lands after a newer one.
    turn: tokio::sync::Mutex<()>,
    last: std::sync::Mutex<Option<Outcome>>,
}

impl Keeper {
    pub fn new(dir: Directory, helper_socket: PathBuf) -> Keeper {
        Keeper {
            dir,
            helper_socket,
            turn: tokio::sync::Mutex::new(()),
            last: std::sync::Mutex::new(None),
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.dir
    }

    pub fn last(&self) -> Option<Outcome> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The settings' field errors, against the directory as it is.
    pub fn check(&self, s: &SambaSettings) -> Result<(), Invalid> {
        let e = |e: bureau_directory::DirectoryError| {
            invalid("directory", said("err_plain").with("error", e))
        };
        let groups: Vec<String> = self
            .dir
            .groups()
            .map_err(e)?
            .into_iter()
            .map(|g| g.name)
            .collect();
        let users: Vec<String> = self
            .dir
            .users()
            .map_err(e)?
            .into_iter()
            .map(|u| u.uid)
            .collect();
        check(s, &groups, &users)
    }

    async fn push(&self, s: &SambaSettings) -> Result<SambaReport, HelperError> {
        let plan = plan(s, &self.dir).map_err(|e| HelperError::Failed(e.to_string()))?;
        let out = helper::call(
            &self.helper_socket,
            &Request::ApplySamba { plan },
            std::time::Duration::from_secs(300),
        )
        .await;
        let done = out.and_then(|o| {
            serde_json::from_str::<SambaReport>(&o)
                .map_err(|e| HelperError::Failed(format!("the helper's report: {e}")))
        });
        let at = bureau_store::now();
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Outcome {
            at,
            report: done.as_ref().ok().cloned(),
            error: done.as_ref().err().map(|e| e.to_string()),
        });
        done
    }

    /// Applies new settings (checked by the caller): saved, and Samba following them from
    /// now on, only once the helper has applied them.
    pub async fn apply(
        &self,
        mut s: SambaSettings,
    ) -> Result<(SambaSettings, SambaReport), HelperError> {
        let _turn = self.turn.lock().await;
        s.enabled = true;
        let report = self.push(&s).await?;
        save(self.dir.store(), &s)
            .await
            .map_err(|e| HelperError::Failed(e.to_string()))?;
        Ok((s, report))
    }

    /// Sends the plan for the saved settings, if Samba is enabled.
    async fn resync(&self) {
        let _turn = self.turn.lock().await;
        match load(self.dir.store()) {
            Ok(s) if s.enabled => {
                if let Err(e) = self.push(&s).await {
                    log::warn!("samba: not brought in line with the directory: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => log::warn!("samba: settings unreadable: {e}"),
        }
    }

    /// At start, then after every change of the directory (a burst of changes is sent as
    /// one plan), until the directory goes away.
    pub async fn follow(self: std::sync::Arc<Self>) {
        let mut changes = self.dir.changes();
        loop {
            self.resync().await;
            if changes.changed().await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            changes.borrow_and_update();
        }
    }
}

// ---- the helper's side (root) ----

/// Runs one of Samba's or the system's programs (never a shell); its complaint on failure.
async fn run(program: &str, args: &[&str]) -> Result<String, SambaError> {
    helper::command(program, args, std::time::Duration::from_secs(120))
        .await
        .map_err(|e| match e {
            CommandError::Failed(reason) => SambaError::Failed {
                program: program.into(),
                reason,
            },
            e => SambaError::Command(e),
        })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SambaError + '_ {
    move |source| SambaError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// A folder that exists with this owner and mode (an existing one keeps its mode). A
/// symbolic link in its place is refused: root follows no link it did not make.
fn folder(path: &Path, owner: Option<(u32, u32)>, mode: u32) -> Result<(), SambaError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(SambaError::NotAFolder(path.to_path_buf())),
        Err(_) => {
            std::fs::create_dir(path).map_err(io(path))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(io(path))?;
        }
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io(path))?;
    }
    Ok(())
}

fn account(name: &str) -> Result<Option<nix::unistd::User>, SambaError> {
    nix::unistd::User::from_name(name).map_err(|e| SambaError::Account {
        name: name.into(),
        reason: e.to_string(),
    })
}

/// An account that was just made.
fn made(name: &str) -> Result<nix::unistd::User, SambaError> {
    account(name)?.ok_or_else(|| SambaError::Account {
        name: name.into(),
        reason: "it was not made".into(),
    })
}

/// The owner of every file on the shares: its system account, made on first use.
async fn files_owner(cfg: &SambaConfig) -> Result<nix::unistd::User, SambaError> {
    if let Some(u) = account(&cfg.files_user)? {
        return Ok(u);
    }
    run(
        "useradd",
        &[
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "Bureau shared files",
            &cfg.files_user,
        ],
    )
    .await?;
    made(&cfg.files_user)
}

/// Imports password hashes (smbpasswd lines) into Samba's database, through a file only
/// root reads, removed afterwards.
async fn import_hashes(private: &Path, conf: &str, import: &str) -> Result<(), SambaError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file = private.join("bureau-import.smbpasswd");
    let _ = std::fs::remove_file(&file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .map_err(io(&file))?;
    f.write_all(import.as_bytes()).map_err(io(&file))?;
    drop(f);
    let source = format!("smbpasswd:{}", file.display());
    let done = run("pdbedit", &["-s", conf, "-i", &source, "-e", "tdbsam"]).await;
    let _ = std::fs::remove_file(&file);
    done.map(drop)
}

/// Brings Samba in line with the plan (the helper, as root). A plan or configuration that
/// is refused changes nothing.
pub async fn apply(
    p: &SambaPlan,
    cfg: &SambaConfig,
    shares_dir: &Path,
    own_dir: Option<&Path>,
) -> Result<SambaReport, SambaError> {
    check_plan(p)?;
    let mut report = SambaReport {
        config: cfg.config.display().to_string(),
        ..Default::default()
    };
    // Accounts Samba cannot have: a Unix account of the same name that Bureau did not make.
    let mut left_out = BTreeSet::new();
    for u in &p.users {
        if let Some(found) = account(&u.name)?
            && found.gecos.to_str().unwrap_or("") != MARK
        {
            left_out.insert(u.name.clone());
            report.skipped.push((
                u.name.clone(),
                "a system account of that name exists".into(),
            ));
        }
    }
    let text = render(p, cfg, shares_dir, &left_out)?;
    // Root's: smbd, as root, reads them (a box whose daemon was given them before gets
    // them back); the configuration's folder only when it is Samba's own (`own_dir`).
    let root = Some((0, 0));
    if let Some(dir) = cfg.config.parent() {
        folder(dir, root.filter(|_| own_dir == Some(dir)), 0o755)?;
    }
    if let Some(state) = &cfg.state_dir {
        folder(state, root, 0o755)?;
        for sub in ["lock", "state", "cache", "pid", "ncalrpc"] {
            folder(&state.join(sub), root, 0o755)?;
        }
    }
    let private = private_dir(cfg);
    folder(&private, None, 0o700)?;
    let candidate = PathBuf::from(format!("{}.bureau-new", cfg.config.display()));
    std::fs::write(&candidate, &text).map_err(io(&candidate))?;
    let conf = candidate.to_string_lossy().to_string();
    if let Err(why) = run("testparm", &["-s", "--suppress-prompt", &conf]).await {
        let _ = std::fs::remove_file(&candidate);
        return Err(SambaError::Refused(Box::new(why)));
    }

    let files = files_owner(cfg).await?;
    let owner = Some((files.uid.as_raw(), files.gid.as_raw()));
    for sub in ["", "homes", "groups"] {
        folder(&shares_dir.join(sub), None, 0o755)?;
    }
    for s in &p.shares {
        folder(&shares_dir.join("groups").join(&s.name), owner, 0o770)?;
    }
    if p.public {
        folder(&shares_dir.join("public"), owner, 0o770)?;
    }

    // Accounts: the Unix side first (Samba needs it), then the hashes in one import.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let marked = marked_accounts(&passwd);
    let known = parse_passdb(&run("pdbedit", &["-s", &conf, "-L", "-w"]).await?);
    let now = bureau_store::now().max(0) as u64;
    let mut import = String::new();
    for u in p.users.iter().filter(|u| !left_out.contains(&u.name)) {
        if !marked.contains(&u.name) {
            run(
                "useradd",
                &[
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--no-user-group",
                    "--gid",
                    &files.gid.as_raw().to_string(),
                    "--comment",
                    MARK,
                    &u.name,
                ],
            )
            .await?;
        }
        let unix = made(&u.name)?;
        if p.homes {
            folder(&shares_dir.join("homes").join(&u.name), owner, 0o770)?;
        }
        match known.get(&u.name) {
            None => report.added.push(u.name.clone()),
            Some((hash, disabled))
                if *hash == u.nt_hash.to_ascii_uppercase() && *disabled != u.enabled =>
            {
                continue;
            }
            Some(_) => report.changed.push(u.name.clone()),
        }
        import.push_str(&smbpasswd_line(u, unix.uid.as_raw(), now));
    }
    if !import.is_empty() {
        import_hashes(&private, &conf, &import).await?;
    }
    let wanted: BTreeSet<&str> = p.users.iter().map(|u| u.name.as_str()).collect();
    for gone in marked.iter().filter(|m| !wanted.contains(m.as_str())) {
        if known.contains_key(gone) {
            run("pdbedit", &["-s", &conf, "-x", "-u", gone]).await?;
        }
        run("userdel", &[gone]).await?;
        report.removed.push(gone.clone());
    }
    report.users = p.users.len() - left_out.len();

    std::fs::rename(&candidate, &cfg.config).map_err(io(&cfg.config))?;
    let config = cfg.config.to_string_lossy().to_string();
    report.reloaded = run("smbcontrol", &["-s", &config, "smbd", "reload-config"])
        .await
        .is_ok();
    Ok(report)
}

/// Whether smbd answers, and its sessions (`smbstatus --json`), as one JSON object.
pub async fn status(cfg: &SambaConfig) -> String {
    let config = cfg.config.to_string_lossy().to_string();
    let running = run("smbcontrol", &["-s", &config, "smbd", "ping"])
        .await
        .is_ok();
    let sessions: Vec<serde_json::Value> = if running {
        run("smbstatus", &["-s", &config, "--json", "-b"])
            .await
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("sessions").and_then(|s| s.as_object()).cloned())
            .map(|m| {
                m.values()
                    .map(|s| {
                        serde_json::json!({
                            "user": s.get("username"),
                            "client": s.get("remote_machine"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    serde_json::json!({ "running": running, "sessions": sessions }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SambaPlan {
        SambaPlan {
            workgroup: "OFFICE".into(),
            homes: true,
            public: true,
            shares: vec![SambaShare {
                name: "sales".into(),
                comment: "The sales group's files".into(),
                members: vec!["alice".into(), "bob".into()],
            }],
            users: ["alice", "bob", "carl"]
                .iter()
                .map(|n| SambaUser {
                    name: n.to_string(),
                    nt_hash: "8846F7EAEE8FB117AD06BDD830B7586C".into(),
                    enabled: *n != "carl",
                })
                .collect(),
        }
    }

    #[test]
    fn settings_are_checked_field_by_field() {
        let groups = vec!["sales".to_string()];
        let users = vec!["alice".to_string()];
        let ok = SambaSettings {
            shares: vec![ShareSetting {
                name: "sales".into(),
                group: "sales".into(),
                comment: String::new(),
            }],
            ..Default::default()
        };
        assert_eq!(check(&ok, &groups, &users), Ok(()));
        let field = |name: &str, group: &str| {
            let s = SambaSettings {
                shares: vec![ShareSetting {
                    name: name.into(),
                    group: group.into(),
                    comment: String::new(),
                }],
                ..Default::default()
            };
            check(&s, &groups, &users).unwrap_err().field
        };
        assert_eq!(field("../etc", "sales"), "shares[0].name");
        assert_eq!(field("a/b", "sales"), "shares[0].name");
        assert_eq!(field("with space", "sales"), "shares[0].name");
        assert_eq!(field("homes", "sales"), "shares[0].name");
        assert_eq!(field("alice", "sales"), "shares[0].name");
        assert_eq!(field("docs", "nobody"), "shares[0].group");
        let bad = SambaSettings {
            workgroup: "A WORKGROUP NAME TOO LONG".into(),
            ..Default::default()
        };
        assert_eq!(check(&bad, &groups, &users).unwrap_err().field, "workgroup");
    }

    #[test]
    fn the_helper_checks_the_plan_again() {
        assert!(check_plan(&plan()).is_ok());
        let refused = |p: &SambaPlan| matches!(check_plan(p), Err(SambaError::Plan(_)));
        let mut p = plan();
        p.shares[0].name = "../../etc".into();
        assert!(refused(&p));
        let mut p = plan();
        p.shares[0].comment = "x\n\troot preexec = /bin/sh".into();
        assert!(refused(&p));
        let mut p = plan();
        p.users[0].nt_hash = "00".into();
        assert!(refused(&p));
        let mut p = plan();
        p.shares[0].members.push("mallory".into());
        assert!(refused(&p));
        let mut p = plan();
        p.users[0].name = "Root Beer".into();
        assert!(refused(&p));
        // The hash never shows in a debug print.
        assert!(!format!("{:?}", plan()).contains("8846F7"));
    }

    #[test]
    fn rendering() {
        let cfg = SambaConfig {
            state_dir: Some("/srv/samba-state".into()),
            listen: "127.0.0.1:10445".into(),
            ..Default::default()
        };
        let left_out = BTreeSet::from(["bob".to_string()]);
        let c = render(&plan(), &cfg, Path::new("/srv/shares"), &left_out).unwrap();
        assert!(c.contains("\tworkgroup = OFFICE\n"));
        assert!(c.contains("\tprivate dir = /srv/samba-state/private\n"));
        assert!(c.contains(
            "\tinterfaces = 127.0.0.1\n\tbind interfaces only = yes\n\tsmb ports = 10445\n"
        ));
        assert!(c.contains("[homes]\n\tcomment = Home folder\n\tpath = /srv/shares/homes/%S\n"));
        assert!(c.contains(
            "[sales]\n\tcomment = The sales group's files\n\tpath = /srv/shares/groups/sales\n"
        ));
        assert!(c.contains("\tvalid users = alice\n"));
        assert!(c.contains("\tforce user = bureau-files\n"));
        assert!(c.contains("[public]\n"));
        let mut p = plan();
        p.shares[0].members.clear();
        let c = render(&p, &cfg, Path::new("/srv/shares"), &BTreeSet::new()).unwrap();
        assert!(c.contains("\tavailable = no\n"));
    }

    #[test]
    fn samba_accounts_and_the_import_format() {
        let known = parse_passdb(
            "alice:1001:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:8846f7eaee8fb117ad06bdd830b7586c:[U          ]:LCT-6B0E9BA5:\n\
             bob:1002:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:0CB6948805F797BF2A82807973B89537:[DU         ]:LCT-6B0E9BA5:\n",
        );
        assert_eq!(
            known["alice"],
            ("8846F7EAEE8FB117AD06BDD830B7586C".to_string(), false)
        );
        assert!(known["bob"].1);
        let p = plan();
        assert_eq!(
            smbpasswd_line(&p.users[2], 1003, 0x6B0E9BA5),
            "carl:1003:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:8846F7EAEE8FB117AD06BDD830B7586C:[DUX        ]:LCT-6B0E9BA5:\n"
        );
        let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:999:Bureau account:/nonexistent:/usr/sbin/nologin\nmail:x:8:8:mail:/var/mail:/usr/sbin/nologin\n";
        assert_eq!(
            marked_accounts(passwd),
            BTreeSet::from(["alice".to_string()])
        );
    }
}
