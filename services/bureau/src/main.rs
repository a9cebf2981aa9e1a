//! The one binary: `bureau serve` runs the daemon; every other command talks to the running
//! daemon through the admin API on its unix socket.

mod backup;
mod bootenv;
mod cli;
mod console;
mod error;
mod helper;
mod reply;
mod serve;
mod web;

use bureau_core::Config;
use clap::{Parser, Subcommand};
use error::CliError;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bureau",
    version,
    about = "Bureau: mail, calendars, contacts and sync for a small office"
)]
struct Cli {
    /// The daemon's admin socket (default: from the configuration, else ./bureau-data/admin.sock
    /// if present, else /var/lib/bureau/admin.sock).
    #[arg(long, global = true, env = "BUREAU_SOCKET")]
    socket: Option<PathBuf>,
    /// Configuration file (default: /etc/bureau/bureau.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon.
    Serve {
        /// Development profile: 127.0.0.1, ports + 10000, data in ./bureau-data.
        #[arg(long)]
        dev: bool,
    },
    /// The daemon's state.
    Status {
        /// Wait up to this many seconds for the daemon to answer with every service up
        /// (exit status 1 if it does not): the appliance's health check.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Lists stored calendar objects and cards that break the rules every write follows
    /// (exit status 1 if there are any); queries skip them.
    Check,
    /// Mail domains.
    #[command(subcommand)]
    Domain(cli::DomainCmd),
    /// Users.
    #[command(subcommand)]
    User(cli::UserCmd),
    /// Groups.
    #[command(subcommand)]
    Group(cli::GroupCmd),
    /// Rooms and equipment, booked by inviting them to a meeting.
    #[command(subcommand)]
    Resource(cli::ResourceCmd),
    /// The outbound mail queue.
    #[command(subcommand)]
    Queue(cli::QueueCmd),
    /// Service accounts: read-only LDAP binds for applications on the LAN.
    #[command(subcommand)]
    Service(cli::ServiceCmd),
    /// The office's web proxy (Squid).
    #[command(subcommand)]
    Proxy(cli::ProxyCmd),
    /// The office's file server (Samba): shares, and accounts kept in step.
    #[command(subcommand)]
    Samba(cli::SambaCmd),
    /// A user's mailboxes, calendars and address books.
    #[command(subcommand)]
    Mailbox(cli::MailboxCmd),
    /// The appliance's system: update bundles, slots, reboot.
    #[command(subcommand)]
    Update(cli::UpdateCmd),
    /// Backups: `create FILE` asks the running daemon for an archive of the whole store;
    /// `restore FILE` puts one into the configured, empty data directory (daemon stopped).
    #[command(subcommand)]
    Backup(cli::BackupCmd),
    /// Print the first-boot setup token (until the first administrator exists).
    SetupToken,
    /// The appliance's privileged helper (run by systemd as root).
    #[command(hide = true)]
    Helper,
    /// RAUC's bootloader backend on the appliance: get-primary, set-primary SLOT,
    /// get-state SLOT, set-state SLOT good|bad.
    #[command(hide = true)]
    Bootenv {
        /// The GRUB environment block.
        #[arg(long, default_value = "/efi/EFI/bureau/grubenv")]
        file: PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

const DEFAULT_CONFIG: &str = "/etc/bureau/bureau.toml";

fn load_config(path: &Option<PathBuf>, dev: bool) -> Result<Config, CliError> {
    let base = if dev {
        Config::dev()
    } else {
        Config::default()
    };
    let path = match path {
        Some(p) => p.clone(),
        None if !dev && std::path::Path::new(DEFAULT_CONFIG).exists() => DEFAULT_CONFIG.into(),
        None => return Ok(base),
    };
    let mut cfg = Config::load(&path)?;
    if dev {
        // The file's keys, on the development profile's addresses and data.
        let d = Config::dev();
        cfg.server.bind = d.server.bind;
        cfg.server.port_offset = d.server.port_offset;
        if cfg.server.data_dir == Config::default().server.data_dir {
            cfg.server.data_dir = d.server.data_dir;
        }
    }
    Ok(cfg)
}

fn socket_path(cli: &Cli) -> Result<PathBuf, CliError> {
    if let Some(s) = &cli.socket {
        return Ok(s.clone());
    }
    if cli.config.is_some() || std::path::Path::new(DEFAULT_CONFIG).exists() {
        return Ok(load_config(&cli.config, false)?.admin_socket());
    }
    let dev = PathBuf::from("bureau-data/admin.sock");
    if dev.exists() {
        return Ok(dev);
    }
    Ok(Config::default().admin_socket())
}

/// glibc raises its mmap threshold after freeing a large block, after which every argon2
/// hash (19 MiB) comes from arenas that are never given back: the daemon grew by ~20 MB per
/// password change. A fixed threshold keeps large blocks in mmap, returned on free; fewer
/// arenas keep small allocations from spreading.
fn tune_malloc() {
    use nix::libc::{M_ARENA_MAX, M_MMAP_THRESHOLD, mallopt};
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        mallopt(M_ARENA_MAX, 2);
    }
}

/// Starts the daemon again. Under systemd, an exit status it restarts on (the unit has
/// `Restart=on-failure`), so that the start is root's again and binds its ports; otherwise
/// the same program with the same arguments in this process.
fn restart() -> ExitCode {
    if std::env::var_os("INVOCATION_ID").is_some() {
        eprintln!("bureau: restarting (systemd starts it again)");
        return ExitCode::from(75);
    }
    use std::os::unix::process::CommandExt;
    let err = std::env::current_exe()
        .map(|exe| {
            std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .exec()
        })
        .unwrap_or_else(|e| e);
    eprintln!("error: restarting: {err}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(bureau_core::fence::WORKER_STACK_BYTES)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `serve` ended asking to start again.
    let mut again = false;
    let result = match &cli.cmd {
        Cmd::Serve { dev } => load_config(&cli.config, *dev).and_then(|cfg| {
            bureau_core::logging::init(&cfg.log.level);
            bureau_core::fence::install_hook();
            bureau_core::limits::install(&cfg.limits);
            again = runtime.block_on(serve::serve(cfg))? == serve::Ended::Restart;
            Ok(())
        }),
        Cmd::Helper => load_config(&cli.config, false).and_then(|cfg| {
            bureau_core::logging::init(&cfg.log.level);
            Ok(runtime.block_on(helper::run(cfg))?)
        }),
        Cmd::Bootenv { file, args } => {
            bootenv::run(file, args)
                .map(|out| {
                    if !out.is_empty() {
                        println!("{out}");
                    }
                })
                .map_err(CliError::from)
        }
        Cmd::Backup(cli::BackupCmd::Restore { file }) => {
            load_config(&cli.config, false).and_then(|cfg| {
                let f = std::fs::File::open(file).map_err(error::file(file))?;
                let info = bureau_store::backup::restore(std::io::BufReader::new(f), &cfg.server.data_dir)?;
                println!(
                    "restored into {}: {} blob files ({} bytes), schema {}, taken at {}",
                    cfg.server.data_dir.display(),
                    info.blobs,
                    info.blob_bytes,
                    info.schema_version,
                    info.created
                );
                Ok(())
            })
        }
        Cmd::SetupToken => load_config(&cli.config, false).and_then(|cfg| {
            match bureau_admin::setup::read(&cfg.setup_token_path()) {
                Some(t) => {
                    println!("{t}");
                    Ok(())
                }
                None => Err(CliError::Found(format!(
                    "no setup token in {}: an administrator exists (or bureau serve has not run yet)",
                    cfg.setup_token_path().display()
                ))),
            }
        }),
        cmd => socket_path(&cli).and_then(|sock| {
            let client = bureau_admin::client::Client::new(&sock);
            runtime.block_on(cli::run(&client, cmd, cli.json))
        }),
    };
    match result {
        Ok(()) if again => {
            drop(runtime);
            restart()
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
