//! `bureau helper`: the privileged helper, run as root by systemd on the appliance. It serves
//! the typed requests of `bureau_core::helper` on a unix socket that only root and the
//! daemon's account may open, and does nothing else: no shell, no paths outside the data
//! directory's `updates/`, no Samba configuration but the one it renders itself from a
//! checked plan.

use crate::serve::StartError;
use bureau_core::Config;
use bureau_core::helper::{CommandError, MAX_REQUEST, Reply, Request, command};
use bureau_daemons::samba::SambaError;
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
    #[error("the report: {0}")]
    Report(#[from] serde_json::Error),
    #[error("{0:?} is not a host name")]
    HostName(String),
    #[error("an update is already being installed")]
    Busy,
    #[error("no disk labelled {} is plugged in", bureau_core::helper::BACKUP_LABEL)]
    NoBackupDisk,
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
    /// One Samba change at a time, in the order they came.
    samba_turn: Mutex<()>,
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
        samba_turn: Mutex::new(()),
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
        let mut reboot = false;
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
                        reboot = req == Request::Reboot;
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
        if reply.ok && reboot {
            // Answered first; then the box goes down.
            log::info!("helper: rebooting");
            let _ = Command::new("systemctl").arg("reboot").status().await;
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
            Request::ReloadProxy => command(
                "systemctl",
                &["reload-or-restart", "squid"],
                Duration::from_secs(60),
            )
            .await
            .map_err(Refusal::from),
            Request::ApplySamba { plan } => {
                let _turn = self.samba_turn.lock().await;
                let mut done =
                    bureau_daemons::samba::apply(plan, &self.samba, &self.shares_dir).await;
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
            Request::SetHostname { name } => match bureau_directory::validate::domain(name) {
                Ok(n) if n == *name => command("hostname", &[name], Duration::from_secs(10))
                    .await
                    .map_err(Refusal::from),
                _ => Err(Refusal::HostName(name.clone())),
            },
        };
        match result {
            Ok(output) => Reply { ok: true, output },
            Err(why) => Reply {
                ok: false,
                output: why.to_string(),
            },
        }
    }

    async fn install(&self, bundle: &Path) -> Result<String, Refusal> {
        let path = confine(&self.updates, bundle)?;
        let _one = self.busy.try_lock().map_err(|_| Refusal::Busy)?;
        // Root's alone from here: the daemon cannot change it under RAUC's feet.
        std::os::unix::fs::chown(&path, Some(0), Some(0)).map_err(file(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))
            .map_err(file(&path))?;
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
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mounted = mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(BACKUP_MOUNT));
        let dir = Path::new(BACKUP_MOUNT);
        let (uid, gid) = self
            .daemon_uid
            .and_then(|u| nix::unistd::User::from_uid(u.into()).ok().flatten())
            .map_or((0, 0), |u| (u.uid.as_raw(), u.gid.as_raw()));
        if !mounted {
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
        let folder = dir.join("bureau-backups");
        std::fs::create_dir_all(&folder).map_err(file(&folder))?;
        // Refused on vfat, where the mount made everything the daemon's already.
        let _ = std::os::unix::fs::chown(&folder, Some(uid), Some(gid));
        let _ = std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700));
        Ok(folder.to_string_lossy().into_owned())
    }
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
