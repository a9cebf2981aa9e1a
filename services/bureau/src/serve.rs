//! `bureau serve`: open the store, bind every listener, drop privileges, serve until
//! SIGTERM, then finish what is in flight and close the store.

use crate::web::{self, Web};
use bureau_admin::api::ServiceStatus;
use bureau_admin::{AdminApi, DaemonInfo};
use bureau_core::config::{Config, ports};
use bureau_core::tls::CertStore;
use bureau_core::{Auth, shutdown};
use bureau_directory::{Directory, DirectoryOptions};
use bureau_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UnixListener};

/// A failure to start, said as one line to the administrator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port that cannot be bound (in use, or not this account's to bind).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A file, folder, socket or signal of the daemon's own.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// Taking the daemon's account: looking it up, becoming it.
    #[error("{what}: {source}")]
    Account {
        what: &'static str,
        source: nix::Error,
    },
    /// A key of the configuration that cannot be used as it is.
    #[error("key `{key}`: {why}")]
    Config { key: &'static str, why: String },
    #[error(transparent)]
    Store(#[from] bureau_store::StoreError),
    #[error(transparent)]
    Directory(#[from] bureau_directory::DirectoryError),
    #[error(transparent)]
    Tls(#[from] bureau_core::tls::TlsError),
    #[error("the setup token: {0}")]
    SetupToken(#[from] bureau_admin::setup::TokenError),
    /// The privileged helper started by another account.
    #[error("the helper runs as root")]
    NotRoot,
}

/// A file or socket's error, said with what it is.
fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StartError {
    move |source| StartError::Io {
        what: what.to_string(),
        source,
    }
}

fn bind_all(cfg: &Config, port: u16) -> Result<Vec<std::net::TcpListener>, StartError> {
    cfg.server
        .bind
        .iter()
        .map(|ip| {
            let addr = SocketAddr::new(*ip, cfg.port(port));
            let l = std::net::TcpListener::bind(addr)
                .map_err(|source| StartError::Listen { addr, source })?;
            l.set_nonblocking(true).map_err(io(addr))?;
            Ok(l)
        })
        .collect()
}

fn listen_names(ls: &[std::net::TcpListener]) -> Vec<String> {
    ls.iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect()
}

/// The account to run as, when started as root.
fn target_user(cfg: &Config) -> Result<Option<nix::unistd::User>, StartError> {
    if !nix::unistd::Uid::effective().is_root() || cfg.server.user.is_empty() {
        return Ok(None);
    }
    match nix::unistd::User::from_name(&cfg.server.user) {
        Ok(Some(u)) => Ok(Some(u)),
        Ok(None) => Err(StartError::Config {
            key: "server.user",
            why: format!(
                "no account named '{}' (create it, or set server.user = \"\" to stay root)",
                cfg.server.user
            ),
        }),
        Err(source) => Err(StartError::Account {
            what: "looking up server.user",
            source,
        }),
    }
}

/// Gives what is in the data directory (two levels deep: files below are created by the
/// daemon itself, already as its user) to the account the daemon runs as; but not what is
/// root's: the file shares (root's and Samba's), Samba's configuration and state and Squid's
/// (smbd and Squid, root, read them) and the helper's own folder (the share's login).
///
/// The directory itself stays root's, lent to the daemon's group and sticky (01771): the
/// daemon makes and removes its own entries there but cannot move root's folders aside and
/// put its own in their place (a daemon taken over would otherwise hand smbd or Squid, which
/// start as root, a configuration of its making).
fn chown_data(dir: &Path, user: &nix::unistd::User, roots: &[PathBuf]) -> Result<(), StartError> {
    fn walk(
        p: &Path,
        depth: u32,
        user: &nix::unistd::User,
        roots: &[PathBuf],
    ) -> std::io::Result<()> {
        if roots.iter().any(|r| r == p) {
            return Ok(());
        }
        // A link (the time zone's) is given, not what it leads to.
        std::os::unix::fs::lchown(p, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
        if depth > 0 && std::fs::symlink_metadata(p)?.is_dir() {
            for e in std::fs::read_dir(p)? {
                walk(&e?.path(), depth - 1, user, roots)?;
            }
        }
        Ok(())
    }
    let lend = || -> std::io::Result<()> {
        std::os::unix::fs::lchown(dir, Some(0), Some(user.gid.as_raw()))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o1771))?;
        for e in std::fs::read_dir(dir)? {
            walk(&e?.path(), 1, user, roots)?;
        }
        Ok(())
    };
    lend().map_err(io(format_args!(
        "giving {} to {}",
        dir.display(),
        user.name
    )))
}

/// While root starts the daemon, the data directory is not sticky: root opens the daemon's
/// files there (the store, the run marker, the certificates) to create them if missing, and
/// the kernel refuses root such an open of another account's file in a sticky folder its
/// group may write (`fs.protected_regular = 2`, Debian's setting). [`chown_data`] makes it
/// sticky again before the daemon runs as its account; nothing else writes there meanwhile
/// (systemd stopped every process of the daemon's before starting it again). Only when root
/// starts the daemon to run as its account (`dropping`).
fn unlend_data(dir: &Path, dropping: bool) -> Result<(), StartError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !dropping {
        return Ok(());
    }
    let m = std::fs::symlink_metadata(dir).map_err(io(dir.display()))?;
    if m.uid() == 0 && m.mode() & 0o1000 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(m.mode() & 0o777))
            .map_err(io(dir.display()))?;
    }
    Ok(())
}

/// What in the data directory stays root's (see [`chown_data`]).
fn roots_own(cfg: &Config) -> Vec<PathBuf> {
    [
        cfg.shares_dir(),
        cfg.helper_dir(),
        cfg.samba.config.clone(),
        cfg.proxy_dir(),
    ]
    .into_iter()
    .chain(cfg.samba_own_dir())
    .chain(cfg.samba.state_dir.clone())
    .collect()
}

/// Becomes the account, with its groups (the image's `bureau` is in `systemd-journal`, to
/// read its own records).
fn drop_privileges(user: &nix::unistd::User) -> Result<(), StartError> {
    use nix::unistd::{initgroups, setgid, setuid};
    let account = |what| move |source| StartError::Account { what, source };
    // A name from the system's own account database holds no NUL.
    let name = std::ffi::CString::new(user.name.as_str()).map_err(|_| StartError::Config {
        key: "server.user",
        why: "the name holds a NUL".into(),
    })?;
    initgroups(&name, user.gid).map_err(account("initgroups"))?;
    setgid(user.gid).map_err(account("setgid"))?;
    setuid(user.uid).map_err(account("setuid"))?;
    Ok(())
}

/// How the daemon ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// Asked to stop (SIGTERM, ^C).
    Stopped,
    /// Asked to start again (a restore waits in the data directory).
    Restart,
}

/// A restore the console checked and left for this start replaces the store before it is
/// opened; the store it replaces is kept in `replaced-<time>/`.
fn restore_pending(data: &Path) -> Result<(), StartError> {
    let pending = data.join(bureau_store::backup::PENDING);
    if !pending.exists() {
        return Ok(());
    }
    let secs = bureau_store::now();
    let aside = data.join(format!("replaced-{secs}"));
    bureau_store::backup::swap_in(&pending, data, &aside)?;
    log::warn!(
        "restored the uploaded backup; the store it replaced is kept in {}",
        aside.display()
    );
    Ok(())
}

/// The store in the data directory, and the directory over it.
fn open_data(cfg: &Config, data: &Path) -> Result<(Store, Directory), StartError> {
    let store = Store::open(
        data,
        StoreOptions {
            durable: cfg.store.fsync,
            cache_bytes: cfg.store.cache_mb << 20,
            min_free_bytes: cfg.store.min_free_mb << 20,
            ..Default::default()
        },
    )?;
    let directory = Directory::new(
        store.clone(),
        DirectoryOptions {
            min_password_len: cfg.directory.min_password_len,
            argon2_m_kib: cfg.directory.argon2_memory_kib,
            argon2_t: cfg.directory.argon2_passes,
            dkim_bits: cfg.directory.dkim_bits,
            ..Default::default()
        },
    )?;
    Ok((store, directory))
}

/// Every listener a service of this configuration needs, bound before privileges drop.
struct Listeners {
    https: Vec<std::net::TcpListener>,
    http: Vec<std::net::TcpListener>,
    smtp: Vec<(&'static str, bureau_smtp::Mode, Vec<std::net::TcpListener>)>,
    imap: Vec<(&'static str, bureau_imap::Mode, Vec<std::net::TcpListener>)>,
    ldap: Vec<(&'static str, bureau_ldap::Mode, Vec<std::net::TcpListener>)>,
}

impl Listeners {
    fn bind(cfg: &Config) -> Result<Listeners, StartError> {
        let https = bind_all(cfg, ports::HTTPS)?;
        let http = bind_all(cfg, ports::HTTP)?;
        let smtp_listeners = if cfg.smtp.enabled {
            vec![
                ("smtp", bureau_smtp::Mode::Mx, bind_all(cfg, ports::SMTP)?),
                (
                    "submission",
                    bureau_smtp::Mode::Submission,
                    bind_all(cfg, ports::SUBMISSION)?,
                ),
                (
                    "submissions",
                    bureau_smtp::Mode::Submissions,
                    bind_all(cfg, ports::SUBMISSIONS)?,
                ),
            ]
        } else {
            Vec::new()
        };
        let imap_listeners = if cfg.imap.enabled {
            vec![
                (
                    "imap",
                    bureau_imap::Mode::Plain,
                    bind_all(cfg, ports::IMAP)?,
                ),
                (
                    "imaps",
                    bureau_imap::Mode::Tls,
                    bind_all(cfg, ports::IMAPS)?,
                ),
            ]
        } else {
            Vec::new()
        };
        let ldap_listeners = if cfg.ldap.enabled {
            vec![
                (
                    "ldap",
                    bureau_ldap::Mode::Plain,
                    bind_all(cfg, ports::LDAP)?,
                ),
                (
                    "ldaps",
                    bureau_ldap::Mode::Tls,
                    bind_all(cfg, ports::LDAPS)?,
                ),
            ]
        } else {
            Vec::new()
        };
        Ok(Listeners {
            https,
            http,
            smtp: smtp_listeners,
            imap: imap_listeners,
            ldap: ldap_listeners,
        })
    }

    /// Each service and where it listens, as the admin API shows them.
    fn statuses(&self) -> Vec<ServiceStatus> {
        let mut services = vec![
            ServiceStatus {
                name: "https".into(),
                listen: listen_names(&self.https),
                up: true,
            },
            ServiceStatus {
                name: "http".into(),
                listen: listen_names(&self.http),
                up: true,
            },
        ];
        let names = self
            .smtp
            .iter()
            .map(|(n, _, ls)| (n, ls))
            .chain(self.imap.iter().map(|(n, _, ls)| (n, ls)))
            .chain(self.ldap.iter().map(|(n, _, ls)| (n, ls)));
        for (name, ls) in names {
            services.push(ServiceStatus {
                name: name.to_string(),
                listen: listen_names(ls),
                up: true,
            });
        }
        services
    }
}

/// The ports clients are told (the device-setup page, autoconfiguration, the profile).
fn client_ports(cfg: &Config) -> bureau_dav::autoconfig::Ports {
    bureau_dav::autoconfig::Ports {
        imaps: cfg.port(ports::IMAPS),
        imap: cfg.port(ports::IMAP),
        submissions: cfg.port(ports::SUBMISSIONS),
        submission: cfg.port(ports::SUBMISSION),
        https: cfg.port(ports::HTTPS),
    }
}

/// The admin socket, bound afresh, for the daemon's group (0660).
fn admin_socket(
    cfg: &Config,
) -> Result<(std::os::unix::net::UnixListener, std::path::PathBuf), StartError> {
    let sock_path = cfg.admin_socket();
    let _ = std::fs::remove_file(&sock_path);
    if let Some(parent) = sock_path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent.display()))?;
    }
    let what = format!("admin socket {}", sock_path.display());
    let sock = std::os::unix::net::UnixListener::bind(&sock_path).map_err(io(&what))?;
    sock.set_nonblocking(true).map_err(io(&what))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o660))
            .map_err(io(&what))?;
    }
    Ok((sock, sock_path))
}

/// What the mail and directory services start with.
struct Base<'a> {
    cfg: &'a Config,
    hostname: &'a str,
    auth: &'a Auth,
    certs: &'a Arc<CertStore>,
    acme: &'a Arc<bureau_core::acme::Acme>,
    sd: &'a shutdown::Shutdown,
}

impl Base<'_> {
    /// The admin API: the console's and the CLI's, with the certificates, the proxy, the
    /// queue and Samba it runs.
    fn admin(&self, info: DaemonInfo, queue: Option<&bureau_smtp::Queue>) -> AdminApi {
        // Samba follows the directory (once the administrator has turned it on).
        let samba = Arc::new(bureau_daemons::samba::Keeper::new(
            self.auth.directory().clone(),
            self.cfg.admin.helper_socket.clone(),
        ));
        tokio::spawn(samba.clone().follow());
        AdminApi::new(bureau_admin::Services {
            auth: self.auth.clone(),
            info: Arc::new(info),
            session_minutes: self.cfg.admin.session_minutes,
            certs: self.certs.clone(),
            acme: self.acme.clone(),
            proxy_log: self.cfg.proxy.access_log.clone(),
            samba,
            queue: queue.cloned(),
        })
    }

    /// What HTTPS serves: the admin API, DAV, ActiveSync and SyncML.
    fn web(
        &self,
        store: &Store,
        queue: Option<&bureau_smtp::Queue>,
        sched: &bureau_groupware::schedule::Scheduler,
        admin: AdminApi,
    ) -> Result<Web, StartError> {
        let dav = bureau_dav::Dav::new(
            store.clone(),
            self.auth.clone(),
            self.hostname,
            sched.clone(),
        )
        .with_ports(client_ports(self.cfg));
        // Objects stored before today's rules: told once at start; queries skip them.
        let checking = dav.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = checking.check_stored() {
                log::warn!("dav: checking stored objects: {e}");
            }
        });
        let activesync = bureau_activesync::ActiveSync::new(bureau_activesync::Services {
            store: store.clone(),
            auth: self.auth.clone(),
            sched: sched.clone(),
            queue: queue.cloned(),
            limits: self.cfg.activesync.clone(),
            shutdown: self.sd.clone(),
            hostname: self.hostname.to_string(),
            https_port: self.cfg.port(ports::HTTPS),
            system_dir: self.cfg.system_dir(),
        });
        let syncml = bureau_syncml::SyncMl::new(bureau_syncml::Services {
            store: store.clone(),
            auth: self.auth.clone(),
            sched: sched.clone(),
            homes: Some(bureau_core::homes::Homes {
                dir: self.cfg.shares_dir().join("homes"),
                group: self.cfg.samba.files_user.clone(),
            }),
            hostname: self.hostname.to_string(),
            https_port: self.cfg.port(ports::HTTPS),
        });
        tokio::spawn(syncml.clone().push(self.sd.clone()));
        let web = Web {
            admin,
            dav: dav.clone(),
            activesync,
            syncml,
            console_networks: bureau_core::net::Networks::parse(&self.cfg.admin.console_networks)
                .map_err(|e| StartError::Config {
                key: "admin.console_networks",
                why: e.to_string(),
            })?,
        };
        Ok(web)
    }

    /// SMTP on its listeners: mail from outside and submission, into the store and the
    /// queue; calendar mail from outside told to the scheduler.
    fn smtp(
        &self,
        queue: &bureau_smtp::Queue,
        sched: bureau_groupware::schedule::Scheduler,
        listeners: Vec<(&str, bureau_smtp::Mode, Vec<std::net::TcpListener>)>,
    ) -> Result<(), StartError> {
        if listeners.is_empty() {
            return Ok(());
        }
        let smtp = bureau_smtp::Smtp::new(
            self.cfg.smtp.clone(),
            self.hostname.to_string(),
            self.auth.clone(),
            self.certs.acceptor(&[])?,
            queue.clone(),
            Some(Arc::new(sched)),
        );
        for (_, mode, ls) in listeners {
            for l in ls {
                let l = TcpListener::from_std(l).map_err(io("a listener"))?;
                tokio::spawn(smtp.clone().serve(l, mode, self.sd.clone()));
            }
        }
        Ok(())
    }

    /// IMAP on its listeners, and the term indexer its searches read.
    fn imap(
        &self,
        listeners: Vec<(&str, bureau_imap::Mode, Vec<std::net::TcpListener>)>,
    ) -> Result<(), StartError> {
        if listeners.is_empty() {
            return Ok(());
        }
        let imap = bureau_imap::Imap::new(
            self.hostname.to_string(),
            self.auth.clone(),
            self.certs.acceptor(&[])?,
            self.cfg.imap.max_connections_per_ip,
        );
        tokio::spawn(imap.clone().index_terms(self.sd.clone()));
        for (_, mode, ls) in listeners {
            for l in ls {
                let l = TcpListener::from_std(l).map_err(io("a listener"))?;
                tokio::spawn(imap.clone().serve(l, mode, self.sd.clone()));
            }
        }
        Ok(())
    }

    /// LDAP on its listeners.
    fn ldap(
        &self,
        listeners: Vec<(&str, bureau_ldap::Mode, Vec<std::net::TcpListener>)>,
    ) -> Result<(), StartError> {
        if listeners.is_empty() {
            return Ok(());
        }
        let ldap = bureau_ldap::Ldap::new(
            self.cfg.ldap.clone(),
            self.auth.clone(),
            self.certs.acceptor(&[])?,
        );
        for (_, mode, ls) in listeners {
            for l in ls {
                let l = TcpListener::from_std(l).map_err(io("a listener"))?;
                tokio::spawn(ldap.clone().serve(l, mode, self.sd.clone()));
            }
        }
        Ok(())
    }
}

pub async fn serve(cfg: Config) -> Result<Ended, StartError> {
    let started = Instant::now();
    let data = cfg.server.data_dir.clone();
    let user = target_user(&cfg)?;
    std::fs::create_dir_all(&data).map_err(io(data.display()))?;
    unlend_data(&data, user.is_some())?;
    restore_pending(&data)?;
    // Removed when this function returns; found at the next start if the daemon died.
    let (_running, died) = bureau_core::fence::RunMarker::set(&data).map_err(io(data.display()))?;
    if let Some(at) = died {
        log::error!(
            "the daemon that started at {at} (seconds since 1970) did not stop cleanly: it was killed or crashed"
        );
    }
    let hostname = cfg.hostname();

    let (store, directory) = open_data(&cfg, &data)?;
    if let Err(e) = directory.sync_company_book().await {
        log::warn!("directory: company address book not brought in line: {e}");
    }
    let queue = if cfg.smtp.enabled {
        Some(bureau_smtp::Queue::open(directory.clone(), cfg.smtp.clone(), hostname.clone()).await?)
    } else {
        None
    };
    // Before the data directory is given to the daemon's account, so the token is its too.
    bureau_admin::setup::prepare(&directory, &cfg.setup_token_path())?;
    tokio::spawn(bureau_admin::setup::retire_when_done(
        directory.clone(),
        cfg.setup_token_path(),
    ));
    let auth = Auth::new(directory, cfg.auth.clone());
    let certs = CertStore::open(
        cfg.tls.cert.clone().zip(cfg.tls.key.clone()),
        &data,
        &hostname,
    )?;
    let acme = bureau_core::acme::Acme::new(certs.clone(), &hostname, cfg.tls.acme_ca_file.clone());

    let listeners = Listeners::bind(&cfg)?;
    let (sock, sock_path) = admin_socket(&cfg)?;

    if let Some(u) = &user {
        chown_data(&data, u, &roots_own(&cfg))?;
        nix::unistd::chown(&sock_path, Some(u.uid), Some(u.gid)).map_err(|source| {
            StartError::Account {
                what: "giving the admin socket to the daemon's account",
                source,
            }
        })?;
        drop_privileges(u)?;
        log::info!("running as {}", u.name);
    }

    let services = listeners.statuses();
    let (trigger, sd) = shutdown::channel();
    let restart = Arc::new(tokio::sync::Notify::new());
    let base = Base {
        cfg: &cfg,
        hostname: &hostname,
        auth: &auth,
        certs: &certs,
        acme: &acme,
        sd: &sd,
    };
    let info = DaemonInfo {
        hostname: hostname.clone(),
        data_dir: data.display().to_string(),
        started,
        services: Mutex::new(services),
        setup_token: cfg.setup_token_path(),
        updates_dir: cfg.updates_dir(),
        helper_socket: cfg.admin.helper_socket.clone(),
        max_update_bytes: cfg.admin.max_update_mb << 20,
        inflight: Some(sd.clone()),
        max_restore_bytes: cfg.admin.max_restore_mb << 20,
        restart: restart.clone(),
        hostname_fixed: cfg.server.hostname.is_some(),
        unclean_stop: died,
        system_dir: cfg.system_dir(),
        ports: client_ports(&cfg),
    };
    let admin = base.admin(info, queue.as_ref());
    admin.schedule_backups();
    admin.retake_proxy(&cfg.proxy_dir().join(bureau_daemons::proxy::CONFIG));
    certs.watch(Duration::from_secs(5));
    acme.renew_in_background();
    let acceptor = certs.acceptor(&[b"http/1.1"])?;
    // Scheduling, for every protocol that writes calendars (and for replies by mail).
    let sched = bureau_groupware::schedule::Scheduler::new(
        store.clone(),
        auth.directory().clone(),
        queue.clone(),
        Default::default(),
    );
    let web = base.web(&store, queue.as_ref(), &sched, admin.clone())?;
    let https_port = cfg.port(ports::HTTPS);
    for l in listeners.https {
        let l = TcpListener::from_std(l).map_err(io("a listener"))?;
        tokio::spawn(web::run_https(l, acceptor.clone(), web.clone(), sd.clone()));
    }
    for l in listeners.http {
        let l = TcpListener::from_std(l).map_err(io("a listener"))?;
        tokio::spawn(web::run_http_redirect(
            l,
            https_port,
            acme.clone(),
            sd.clone(),
        ));
    }
    if let Some(queue) = &queue {
        tokio::spawn(queue.clone().run(sd.clone()));
        base.smtp(queue, sched, listeners.smtp)?;
    }
    base.imap(listeners.imap)?;
    base.ldap(listeners.ldap)?;
    let sock = UnixListener::from_std(sock).map_err(io("admin socket"))?;
    tokio::spawn(web::run_admin_socket(sock, admin, sd.clone()));

    log::info!(
        "bureau {} serving {} (data in {}, admin socket {}), ready in {} ms",
        env!("CARGO_PKG_VERSION"),
        hostname,
        data.display(),
        sock_path.display(),
        started.elapsed().as_millis()
    );
    // Tests and supervisors wait for this line on stdout.
    println!("bureau: ready");
    // And systemd (Type=notify), when it started us.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(io("SIGTERM"))?;
    let ended = tokio::select! {
        _ = term.recv() => Ended::Stopped,
        _ = tokio::signal::ctrl_c() => Ended::Stopped,
        _ = restart.notified() => Ended::Restart,
    };
    log::info!("shutting down: finishing work in flight");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    trigger.fire();
    if !trigger.drained(Duration::from_secs(10)).await {
        log::warn!("shutdown: some connections did not finish within 10 s");
    }
    store.shutdown().await;
    let _ = std::fs::remove_file(&sock_path);
    log::info!("stopped");
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// The daemon takes what is in its data directory at start, but never what root keeps
    /// there: the helper's folder (the share's login), Samba's configuration and state and
    /// Squid's folder (smbd and Squid start as root with them); and it cannot move root's
    /// folders aside to put its own in their place. Run as root (as CI runs), where the
    /// difference shows.
    #[test]
    fn the_daemon_takes_its_data_but_not_roots() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: only root can give files away");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let data = d.path();
        let cfg = Config::parse(
            &format!(
                "[server]\ndata_dir = \"{0}\"\n[samba]\nconfig = \"{0}/samba/smb.conf\"\n\
                 state_dir = \"{0}/samba/state\"\n",
                data.display()
            ),
            "test",
        )
        .unwrap();
        for dir in ["system", "helper", "samba/state", "shares", "proxy"] {
            std::fs::create_dir_all(data.join(dir)).unwrap();
        }
        for f in [
            "system/hostname",
            "helper/backup-share.json",
            "samba/smb.conf",
        ] {
            std::fs::write(data.join(f), b"x").unwrap();
        }
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        chown_data(data, &nobody, &roots_own(&cfg)).unwrap();
        // The next start, as root: the folder is not sticky while root opens the daemon's
        // files (Debian's fs.protected_regular = 2 refuses that in a sticky folder).
        unlend_data(data, true).unwrap();
        assert_eq!(std::fs::metadata(data).unwrap().mode() & 0o7777, 0o771);
        chown_data(data, &nobody, &roots_own(&cfg)).unwrap();
        let owner = |p: &str| std::fs::symlink_metadata(data.join(p)).unwrap().uid();
        let theirs = nobody.uid.as_raw();
        assert_eq!(["system", "system/hostname"].map(owner), [theirs; 2]);
        let top = std::fs::metadata(data).unwrap();
        assert_eq!((top.uid(), top.gid()), (0, nobody.gid.as_raw()));
        assert_eq!(top.mode() & 0o7777, 0o1771);
        // As the daemon's account: its own entries come and go; root's stay put.
        let as_daemon = |args: &[&str]| {
            std::process::Command::new("setpriv")
                .args(["--reuid", &theirs.to_string(), "--regid"])
                .arg(nobody.gid.as_raw().to_string())
                .arg("--clear-groups")
                .args(args)
                .current_dir(data)
                .status()
                .unwrap()
                .success()
        };
        assert!(as_daemon(&["touch", "new"]));
        assert!(as_daemon(&["mv", "system", "system.old"]));
        for root in ["samba", "proxy", "helper", "shares"] {
            assert!(!as_daemon(&["mv", root, "aside"]), "{root} was moved");
            assert!(!as_daemon(&["rm", "-rf", root]), "{root} was removed");
        }
        for root in [
            "",
            "proxy",
            "helper",
            "helper/backup-share.json",
            "samba",
            "samba/smb.conf",
            "samba/state",
            "shares",
        ] {
            assert_eq!(owner(root), 0, "{root}");
        }
    }
}
