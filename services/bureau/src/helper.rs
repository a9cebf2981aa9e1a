//! `bureau helper`: the privileged helper, run as root by systemd on the appliance. It serves
//! the typed requests of `bureau_core::helper` on a unix socket that only root and the
//! daemon's account may open, and does nothing else: no shell, no paths outside the data
//! directory's `updates/`, no Samba or Squid configuration but the one it renders itself
//! from a checked plan.

use crate::serve::StartError;
use bureau_core::Config;
use bureau_core::helper::{
    CommandError, MAX_REQUEST, NfsExport, Reply, Request, ShareLogin, command,
};
use bureau_daemons::proxy::ProxyError;
use bureau_daemons::samba::SambaError;
use bureau_words::{Said, said};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::process::Command;
use tokio::sync::Mutex;

/// Longest a bundle installation may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Why the helper refused or failed a request: the reply's output, to the daemon.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error(transparent)]
    Samba(#[from] SambaError),
    #[error(transparent)]
    Proxy(ProxyError),
    #[error("the report: {0}")]
    Report(#[from] serde_json::Error),
    #[error("{0:?} is not a host name")]
    HostName(String),
    #[error("no service runs Squid here (proxy.service is empty)")]
    NoProxyService,
    #[error("an update is already being installed")]
    Busy,
    #[error("no disk labelled {} is plugged in", bureau_core::helper::BACKUP_LABEL)]
    NoBackupDisk,
    /// Said to the daemon as a catalogue sentence (JSON), for the console to say.
    #[error("{0}")]
    Said(Said),
    #[error("{}: only bundles in {} are installed", bundle.display(), dir.display())]
    Outside { bundle: PathBuf, dir: PathBuf },
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn file(path: &Path) -> impl FnOnce(std::io::Error) -> Refusal + '_ {
    move |source| Refusal::File {
        path: path.to_path_buf(),
        source,
    }
}

struct Helper {
    updates: PathBuf,
    /// The daemon's account, the only one besides root that may call.
    daemon_uid: Option<u32>,
    /// One installation at a time.
    busy: Mutex<()>,
    samba: bureau_core::config::SambaConfig,
    shares_dir: PathBuf,
    /// The folder of Samba's configuration, when it is Samba's alone (made root's).
    samba_dir: Option<PathBuf>,
    /// One Samba change at a time, in the order they came.
    samba_turn: Mutex<()>,
    /// Root's own folder on the data partition (the share's login).
    secrets: PathBuf,
    /// One mount of the share at a time.
    share_turn: Mutex<()>,
    proxy: bureau_core::config::ProxyConfig,
    proxy_dir: PathBuf,
    proxy_ldap_url: String,
    /// One proxy configuration at a time.
    proxy_turn: Mutex<()>,
}

pub async fn run(cfg: Config) -> Result<(), StartError> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(StartError::NotRoot);
    }
    let socket = cfg.admin.helper_socket.clone();
    let account = |what| move |source| StartError::Account { what, source };
    let user = nix::unistd::User::from_name(&cfg.server.user)
        .map_err(account("looking up server.user"))?;
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |source| StartError::Io { what, source }
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(io(&socket))?;
    // rw for root and the daemon's group only.
    if let Some(u) = &user {
        nix::unistd::chown(&socket, None, Some(u.gid))
            .map_err(account("giving the socket to the daemon's group"))?;
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
        .map_err(io(&socket))?;
    let helper = std::sync::Arc::new(Helper {
        updates: cfg.updates_dir(),
        daemon_uid: user.map(|u| u.uid.as_raw()),
        busy: Mutex::new(()),
        samba: cfg.samba.clone(),
        shares_dir: cfg.shares_dir(),
        samba_dir: cfg.samba_own_dir(),
        samba_turn: Mutex::new(()),
        secrets: cfg.helper_dir(),
        share_turn: Mutex::new(()),
        proxy: cfg.proxy.clone(),
        proxy_dir: cfg.proxy_dir(),
        proxy_ldap_url: cfg.proxy_ldap_url(),
        proxy_turn: Mutex::new(()),
    });
    log::info!("helper: serving {}", socket.display());
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    loop {
        let (stream, _) = listener.accept().await.map_err(io(&socket))?;
        let helper = helper.clone();
        tokio::spawn(async move { helper.serve(stream).await });
    }
}

impl Helper {
    async fn serve(&self, stream: UnixStream) {
        let uid = stream.peer_cred().map(|c| c.uid()).ok();
        let (r, mut w) = stream.into_split();
        let mut line = String::new();
        // After answering: `systemctl reboot` or `poweroff`.
        let mut then = None;
        let reply = if uid != Some(0) && uid != self.daemon_uid {
            Reply {
                ok: false,
                output: "not allowed".into(),
            }
        } else {
            match BufReader::new(r.take(MAX_REQUEST as u64))
                .read_line(&mut line)
                .await
            {
                Err(e) => Reply {
                    ok: false,
                    output: e.to_string(),
                },
                Ok(_) => match serde_json::from_str::<Request>(&line) {
                    Err(e) => Reply {
                        ok: false,
                        output: format!("bad request: {e}"),
                    },
                    Ok(req) => {
                        then = match req {
                            Request::Reboot => Some("reboot"),
                            Request::PowerOff => Some("poweroff"),
                            _ => None,
                        };
                        self.handle(&req).await
                    }
                },
            }
        };
        if !reply.ok {
            log::warn!("helper: refused or failed: {}", reply.output);
        }
        if let Ok(mut b) = serde_json::to_vec(&reply) {
            b.push(b'\n');
            let _ = w.write_all(&b).await;
            let _ = w.shutdown().await;
        }
        if reply.ok
            && let Some(verb) = then
        {
            // Answered first; then the box goes down.
            log::info!("helper: systemctl {verb}");
            let _ = Command::new("systemctl").arg(verb).status().await;
        }
    }

    async fn handle(&self, req: &Request) -> Reply {
        let result: Result<String, Refusal> = match req {
            Request::InstallUpdate { bundle } => self.install(bundle).await,
            Request::SlotStatus => command(
                "rauc",
                &["status", "--detailed", "--output-format=json"],
                Duration::from_secs(30),
            )
            .await
            .map_err(Refusal::from),
            Request::Reboot => Ok("rebooting".into()),
            Request::PowerOff => Ok("shutting down".into()),
            Request::ApplyProxy { plan } => {
                let _turn = self.proxy_turn.lock().await;
                let env = bureau_daemons::proxy::Env {
                    http_port: self.proxy.http_port.clone(),
                    access_log: self.proxy.access_log.clone(),
                    dir: self.proxy_dir.clone(),
                    ldap_url: self.proxy_ldap_url.clone(),
                };
                let done = bureau_daemons::proxy::install(
                    plan,
                    &env,
                    &self.proxy.squid,
                    &self.proxy.group,
                )
                .await;
                match done {
                    Ok(config) => {
                        log::info!("helper: web proxy configuration installed");
                        Ok(config.display().to_string())
                    }
                    Err(ProxyError::Refused(why)) => Err(Refusal::Said(why)),
                    Err(e) => Err(Refusal::Proxy(e)),
                }
            }
            Request::ReloadProxy if self.proxy.service.is_empty() => Err(Refusal::NoProxyService),
            Request::ReloadProxy => command(
                "systemctl",
                &["reload-or-restart", &self.proxy.service],
                Duration::from_secs(60),
            )
            .await
            .map_err(Refusal::from),
            Request::ApplySamba { plan } => {
                let _turn = self.samba_turn.lock().await;
                let mut done = bureau_daemons::samba::apply(
                    plan,
                    &self.samba,
                    &self.shares_dir,
                    self.samba_dir.as_deref(),
                )
                .await;
                // smbd not running yet (the appliance before its first configuration): its
                // unit is started, and reads the configuration as it starts.
                if let Ok(r) = &mut done
                    && !r.reloaded
                    && !self.samba.service.is_empty()
                {
                    r.reloaded = command(
                        "systemctl",
                        &["restart", &self.samba.service],
                        Duration::from_secs(60),
                    )
                    .await
                    .is_ok();
                }
                match &done {
                    Ok(r) => log::info!(
                        "helper: Samba in step: {} account(s), {} added, {} changed, {} removed",
                        r.users,
                        r.added.len(),
                        r.changed.len(),
                        r.removed.len()
                    ),
                    Err(e) => log::warn!("helper: Samba not changed: {e}"),
                }
                done.map_err(Refusal::from)
                    .and_then(|r| Ok(serde_json::to_string(&r)?))
            }
            Request::SambaStatus => Ok(bureau_daemons::samba::status(&self.samba).await),
            Request::MountBackupDisk => self.mount_backup_disk().await,
            Request::MountBackupShare { login } => self.mount_backup_share(login.as_ref()).await,
            Request::MountBackupExport { export } => self.mount_backup_export(export).await,
            Request::SetHostname { name } => match bureau_directory::validate::domain(name) {
                Ok(n) if n == *name => command("hostname", &[name], Duration::from_secs(10))
                    .await
                    .map_err(Refusal::from),
                _ => Err(Refusal::HostName(name.clone())),
            },
        };
        match result {
            Ok(output) => Reply { ok: true, output },
            Err(Refusal::Said(why)) => Reply {
                ok: false,
                output: serde_json::to_string(&why).unwrap_or_default(),
            },
            Err(why) => Reply {
                ok: false,
                output: why.to_string(),
            },
        }
    }

    async fn install(&self, bundle: &Path) -> Result<String, Refusal> {
        let path = confine(&self.updates, bundle)?;
        let _one = self.busy.try_lock().map_err(|_| Refusal::Busy)?;
        // Root's alone from here: the daemon cannot change it under RAUC's feet. Through the
        // file opened without following a link: the daemon, whose folder it is, may have put
        // one in its place since `confine` looked.
        {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
                .open(&path)
                .map_err(file(&path))?;
            if !f.metadata().map_err(file(&path))?.is_file() {
                return Err(Refusal::Outside {
                    bundle: bundle.to_path_buf(),
                    dir: self.updates.clone(),
                });
            }
            std::os::unix::fs::fchown(&f, Some(0), Some(0)).map_err(file(&path))?;
            f.set_permissions(std::fs::Permissions::from_mode(0o400))
                .map_err(file(&path))?;
        }
        log::info!("helper: installing {}", path.display());
        let out = command(
            "rauc",
            &["install", &path.to_string_lossy()],
            INSTALL_TIMEOUT,
        )
        .await;
        match &out {
            Ok(_) => log::info!("helper: installed {}", path.display()),
            Err(e) => log::warn!("helper: {} refused: {e}", path.display()),
        }
        Ok(out?)
    }
}

/// Where the backup disk is mounted.
const BACKUP_MOUNT: &str = "/run/bureau-backup";

impl Helper {
    /// Mounts the backup disk (nosuid, nodev, noexec) unless it is, and makes the daemon's
    /// folder on it: `bureau-backups`, the daemon's own (on vfat, which has no owners, the
    /// whole disk is mounted as the daemon's).
    async fn mount_backup_disk(&self) -> Result<String, Refusal> {
        let dev = Path::new("/dev/disk/by-label").join(bureau_core::helper::BACKUP_LABEL);
        if !dev.exists() {
            return Err(Refusal::NoBackupDisk);
        }
        let dir = Path::new(BACKUP_MOUNT);
        let (uid, gid) = self.daemon_ids();
        if !mounted(BACKUP_MOUNT) {
            std::fs::create_dir_all(dir).map_err(file(dir))?;
            let (dev, to) = (dev.to_string_lossy(), dir.to_string_lossy());
            let owned = format!("nosuid,nodev,noexec,uid={uid},gid={gid},umask=077");
            let wait = Duration::from_secs(60);
            // vfat takes an owner at mount; ext4 and others refuse the option, and keep
            // their own owners.
            if command("mount", &["-o", &owned, &dev, &to], wait)
                .await
                .is_err()
            {
                command("mount", &["-o", "nosuid,nodev,noexec", &dev, &to], wait).await?;
            }
            log::info!("helper: the backup disk is mounted on {BACKUP_MOUNT}");
        }
        backups_folder(dir, uid, gid)
    }

    /// The daemon's user and group ids (root's without a daemon account).
    fn daemon_ids(&self) -> (u32, u32) {
        self.daemon_uid
            .and_then(|u| nix::unistd::User::from_uid(u.into()).ok().flatten())
            .map_or((0, 0), |u| (u.uid.as_raw(), u.gid.as_raw()))
    }

    /// Mounts the office's SMB share on [`SHARE_MOUNT`] with the login given (then kept), or
    /// the one kept, unless it is mounted and no login is given; answers the daemon's folder
    /// on it, `bureau-backups`.
    async fn mount_backup_share(&self, given: Option<&ShareLogin>) -> Result<String, Refusal> {
        let _one = self.share_turn.lock().await;
        let dir = Path::new(SHARE_MOUNT);
        let (uid, gid) = self.daemon_ids();
        let login = match given {
            Some(l) => {
                let mut l = l.clone();
                if l.password.is_empty() {
                    l.password = self.kept_login()?.map(|k| k.password).unwrap_or_default();
                }
                l.check().map_err(|(_, why)| Refusal::Said(why))?;
                Some(l)
            }
            None if mounted(SHARE_MOUNT) => None,
            None => Some(
                self.kept_login()?
                    .ok_or(Refusal::Said(said("err_share_none_kept")))?,
            ),
        };
        if let Some(login) = login {
            if mounted(SHARE_MOUNT) {
                // The share mounted before gives way to the one given.
                nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH)
                    .map_err(|e| file(dir)(e.into()))?;
            }
            std::fs::create_dir_all(dir).map_err(file(dir))?;
            mount_share(&login, dir, uid, gid).await?;
            log::info!(
                "helper: //{}/{} mounted on {SHARE_MOUNT} as {}",
                login.server,
                login.share,
                login.user
            );
            if given.is_some() {
                self.keep_login(&login)?;
            }
        }
        backups_folder(dir, uid, gid)
    }

    /// Mounts the office's NFS export on [`EXPORT_MOUNT`] unless it is mounted there (another
    /// export mounted there gives way); answers where.
    async fn mount_backup_export(&self, export: &NfsExport) -> Result<String, Refusal> {
        let _one = self.share_turn.lock().await;
        export.check().map_err(|(_, why)| Refusal::Said(why))?;
        let dir = Path::new(EXPORT_MOUNT);
        let source = export.source();
        match mounted_from(EXPORT_MOUNT) {
            Some(from) if from == source.replace(' ', "\\040") => {
                return Ok(EXPORT_MOUNT.into());
            }
            Some(_) => nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| file(dir)(e.into()))?,
            None => {}
        }
        std::fs::create_dir_all(dir).map_err(file(dir))?;
        let (server, path) = (&export.server, &export.path);
        let done = kernel_mount(server, 2049, dir, "nfs4", |addr| {
            (source.clone(), NfsExport::mount_options(addr))
        })
        .await;
        use nix::errno::Errno;
        let why = match done {
            Ok(()) => {
                log::info!("helper: {source} mounted on {EXPORT_MOUNT}");
                return Ok(EXPORT_MOUNT.into());
            }
            Err(
                None
                | Some(
                    Errno::EHOSTUNREACH
                    | Errno::ENETUNREACH
                    | Errno::ECONNREFUSED
                    | Errno::ETIMEDOUT,
                ),
            ) => said("err_export_no_server").with("server", server),
            Err(Some(Errno::ENOENT)) => said("err_export_no_such")
                .with("path", path)
                .with("server", server),
            Err(Some(Errno::EACCES | Errno::EPERM)) => {
                said("err_export_refused").with("server", server)
            }
            Err(Some(Errno::ENODEV)) => said("err_export_no_nfs_client"),
            Err(Some(e)) => said("err_share_mount_failed")
                .with("server", server)
                .with("error", e.desc()),
        };
        Err(Refusal::Said(why))
    }

    /// The share's login kept by [`Self::keep_login`]: read only from root's own folder and
    /// file (never through a link the daemon could have left).
    fn kept_login(&self) -> Result<Option<ShareLogin>, Refusal> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let path = self.secrets.join(SHARE_LOGIN);
        let dir = std::fs::symlink_metadata(&self.secrets);
        if dir
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            return Ok(None);
        }
        let dir = dir.map_err(file(&self.secrets))?;
        if !dir.is_dir() || dir.uid() != 0 {
            return Err(Refusal::Said(
                said("err_share_login_not_roots").with("path", self.secrets.display()),
            ));
        }
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
        {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other.map_err(file(&path))?,
        };
        if f.metadata().map_err(file(&path))?.uid() != 0 {
            return Err(Refusal::Said(
                said("err_share_login_not_roots").with("path", path.display()),
            ));
        }
        serde_json::from_reader(std::io::Read::take(std::io::BufReader::new(f), 64 << 10))
            .map(Some)
            .map_err(Refusal::from)
    }

    /// Keeps the login in root's own folder, readable by root alone.
    fn keep_login(&self, login: &ShareLogin) -> Result<(), Refusal> {
        let dir = &self.secrets;
        if std::fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(dir).map_err(file(dir))?;
        }
        std::fs::create_dir_all(dir).map_err(file(dir))?;
        std::os::unix::fs::lchown(dir, Some(0), Some(0)).map_err(file(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(file(dir))?;
        let path = dir.join(SHARE_LOGIN);
        let bytes = serde_json::to_vec(login)?;
        bureau_core::files::write_secret(&path, &bytes, 0o600).map_err(file(&path))
    }
}

/// Where the office's SMB share is mounted, the file its login is kept in, and where its
/// NFS export is mounted.
const SHARE_MOUNT: &str = "/run/bureau-share";
const SHARE_LOGIN: &str = "backup-share.json";
const EXPORT_MOUNT: &str = "/run/bureau-export";

/// What is mounted on `at`, as /proc/mounts names it (a space as `\040`).
fn mounted_from(at: &str) -> Option<String> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let mut f = l.split(' ');
            let source = f.next()?;
            (f.next()? == at).then(|| source.to_string())
        })
}

/// Whether something is mounted on `at`.
fn mounted(at: &str) -> bool {
    mounted_from(at).is_some()
}

/// Mounts the share with the kernel's SMB client (nosuid, nodev, noexec; every file the
/// daemon's).
async fn mount_share(login: &ShareLogin, dir: &Path, uid: u32, gid: u32) -> Result<(), Refusal> {
    let (server, share) = (&login.server, &login.share);
    let errno = match kernel_mount(server, 445, dir, "cifs", |addr| {
        (
            format!("//{server}/{share}"),
            login.mount_options(addr, uid, gid),
        )
    })
    .await
    {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    use nix::errno::Errno;
    Err(Refusal::Said(match errno {
        None
        | Some(Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::ECONNREFUSED | Errno::ETIMEDOUT) => {
            said("err_share_no_server").with("server", server)
        }
        Some(Errno::EACCES | Errno::EPERM | Errno::EKEYREJECTED) => {
            said("err_share_refused_login").with("user", &login.user)
        }
        Some(Errno::ENOENT | Errno::ENXIO) => said("err_share_no_such_share")
            .with("share", share)
            .with("server", server),
        Some(Errno::ENODEV) => said("err_share_no_smb_client"),
        Some(e) => said("err_share_mount_failed")
            .with("server", server)
            .with("error", e.desc()),
    }))
}

/// Mounts a file server's share on `dir` (nosuid, nodev, noexec) with the kernel's client
/// of `fstype`, `made` giving the source and the options for the server's address, found
/// here (the kernel asks no resolver of its own). `None`: the server could not be found
/// or did not answer in time.
async fn kernel_mount(
    server: &str,
    port: u16,
    dir: &Path,
    fstype: &'static str,
    made: impl FnOnce(std::net::IpAddr) -> (String, String),
) -> Result<(), Option<nix::errno::Errno>> {
    let addr = match server.parse::<std::net::IpAddr>() {
        Ok(a) => a,
        Err(_) => tokio::time::timeout(
            Duration::from_secs(15),
            tokio::net::lookup_host((server, port)),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(|mut found| found.next())
        .ok_or(None)?
        .ip(),
    };
    let (source, options) = made(addr);
    let target = dir.to_path_buf();
    let flags = nix::mount::MsFlags::MS_NOSUID
        | nix::mount::MsFlags::MS_NODEV
        | nix::mount::MsFlags::MS_NOEXEC;
    let done = tokio::task::spawn_blocking(move || {
        nix::mount::mount(
            Some(source.as_str()),
            &target,
            Some(fstype),
            flags,
            Some(options.as_str()),
        )
    });
    match tokio::time::timeout(Duration::from_secs(90), done).await {
        Ok(Ok(done)) => done.map_err(Some),
        _ => Err(None),
    }
}

/// The daemon's folder in a mounted backup disk or share, `bureau-backups`: made, and the
/// daemon's alone (where the file system has owners).
///
/// The disk or the file server decides what is there: root follows no link it holds (a
/// `bureau-backups` leading to /etc had root give /etc to the daemon). The folder is given
/// through itself, opened without following a link; a link or a file in its place is refused.
fn backups_folder(dir: &Path, uid: u32, gid: u32) -> Result<String, Refusal> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = dir.join(bureau_core::helper::BACKUP_FOLDER);
    match std::fs::create_dir(&folder) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(file(&folder)(e));
        }
        _ => {}
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_DIRECTORY)
        .open(&folder)
        .map_err(|_| {
            Refusal::Said(said("err_backup_folder_not_a_folder").with("path", folder.display()))
        })?;
    // Refused on vfat and SMB, where the mount made everything the daemon's already.
    let _ = std::os::unix::fs::fchown(&f, Some(uid), Some(gid));
    let _ = f.set_permissions(std::fs::Permissions::from_mode(0o700));
    Ok(folder.to_string_lossy().into_owned())
}

/// The bundle's real path, if it is a regular file directly inside `dir` (no symlink or `..`
/// leads elsewhere).
fn confine(dir: &Path, bundle: &Path) -> Result<PathBuf, Refusal> {
    let dir = dir.canonicalize().map_err(file(dir))?;
    let real = bundle.canonicalize().map_err(file(bundle))?;
    let meta = std::fs::symlink_metadata(&real).map_err(file(&real))?;
    if real.parent() != Some(dir.as_path()) || !meta.is_file() {
        return Err(Refusal::Outside {
            bundle: bundle.to_path_buf(),
            dir,
        });
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backup disk or file server holding a link named `bureau-backups` (to /etc, say):
    /// refused, and what it leads to keeps its owner and mode. Run as root (as CI runs).
    #[test]
    fn the_backup_folder_is_never_a_link_the_disk_holds() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("etc");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        let disk = d.path().join("disk");
        std::fs::create_dir(&disk).unwrap();
        std::os::unix::fs::symlink(&target, disk.join(bureau_core::helper::BACKUP_FOLDER)).unwrap();
        let before = std::fs::metadata(&target).unwrap();
        assert!(matches!(
            backups_folder(&disk, 65534, 65534),
            Err(Refusal::Said(s)) if s.key == "err_backup_folder_not_a_folder"
        ));
        let after = std::fs::metadata(&target).unwrap();
        assert_eq!((after.uid(), after.mode()), (before.uid(), before.mode()));
        // A folder of its own is made, and given.
        let fresh = d.path().join("fresh");
        std::fs::create_dir(&fresh).unwrap();
        let made = PathBuf::from(backups_folder(&fresh, 65534, 65534).unwrap());
        let m = std::fs::symlink_metadata(&made).unwrap();
        assert!(m.is_dir() && m.mode() & 0o777 == 0o700);
        if nix::unistd::Uid::effective().is_root() {
            assert_eq!(m.uid(), 65534);
        }
    }

    #[test]
    fn bundles_only_from_the_updates_directory() {
        let d = tempfile::tempdir().unwrap();
        let updates = d.path().join("updates");
        std::fs::create_dir(&updates).unwrap();
        let ok = updates.join("a.raucb");
        std::fs::write(&ok, b"x").unwrap();
        assert_eq!(confine(&updates, &ok).unwrap(), ok.canonicalize().unwrap());
        let outside = d.path().join("b.raucb");
        std::fs::write(&outside, b"x").unwrap();
        assert!(confine(&updates, &outside).is_err());
        assert!(confine(&updates, &updates.join("../b.raucb")).is_err());
        let link = updates.join("c.raucb");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert!(confine(&updates, &link).is_err());
        std::fs::create_dir(updates.join("sub")).unwrap();
        assert!(confine(&updates, &updates.join("sub")).is_err());
        assert!(confine(&updates, &updates.join("missing")).is_err());
    }
}
