//! The admin commands: each is one or two calls to the admin API, printed for people or
//! as JSON.

mod services;

use crate::Cmd;
use crate::error::{self, BadValue, CliError};
use bureau_admin::api::*;
use bureau_admin::client::Client;
use clap::Subcommand;
use hyper::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use services::{run_proxy, run_samba, run_service};
use std::io::{BufRead, IsTerminal};

#[derive(Subcommand)]
pub enum BackupCmd {
    /// Write an archive of the whole store (users, mail, calendars, contacts, settings).
    Create {
        /// The .tar.gz to write.
        file: std::path::PathBuf,
    },
    /// Restore an archive into the configured data directory, which must hold no store;
    /// run it with the daemon stopped, then start the daemon.
    Restore { file: std::path::PathBuf },
}

#[derive(Subcommand)]
pub enum UpdateCmd {
    /// Install a signed update bundle into the other system slot, then reboot into it.
    Apply {
        /// The .raucb bundle.
        bundle: std::path::PathBuf,
        /// Install only; the new slot starts at the next reboot.
        #[arg(long)]
        no_reboot: bool,
    },
    /// The release running, the slot booted, and both slots' state.
    Status,
}

#[derive(Subcommand)]
pub enum DomainCmd {
    /// Add a mail domain.
    Add {
        name: String,
    },
    List,
    /// Delete a domain no address uses.
    Del {
        name: String,
    },
    /// The DNS records to publish for a domain (MX, SPF, DKIM, DMARC), zone-file style.
    Dns {
        name: String,
    },
    /// Deliver mail for unknown addresses of a domain to a user, or stop ("none").
    CatchAll {
        name: String,
        uid: String,
    },
    /// Whether a domain's users may sync over SyncML, and the sign-in it takes.
    Syncml {
        name: String,
        /// "on" or "off".
        #[arg(long)]
        service: Option<OnOff>,
        /// The sign-in devices must use: any, basic or md5.
        #[arg(long)]
        auth: Option<String>,
    },
}

/// A switch on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user; the password is asked for, or read from standard input.
    Add {
        /// Primary address, e.g. alice@example.com.
        address: String,
        /// Login name (default: the address's local part).
        #[arg(long)]
        uid: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Quota, e.g. 500M or 2G.
        #[arg(long)]
        quota: Option<String>,
        /// Further addresses.
        #[arg(long = "alias")]
        aliases: Vec<String>,
        /// May use the admin console.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    Show {
        uid: String,
    },
    /// Set a user's password.
    Passwd {
        uid: String,
        #[arg(long)]
        password_stdin: bool,
    },
    Disable {
        uid: String,
    },
    /// Turn a user's two-factor sign-in off (a lost phone): the password alone signs in.
    TwoFactorOff {
        uid: String,
    },
    Enable {
        uid: String,
    },
    /// Change a user's display name, quota, telephone or aliases.
    Set {
        uid: String,
        #[arg(long)]
        name: Option<String>,
        /// Work telephone number ("" removes it).
        #[arg(long)]
        phone: Option<String>,
        /// Quota (500M, 2G), or "none".
        #[arg(long)]
        quota: Option<String>,
        /// May sync over SyncML: "on" or "off".
        #[arg(long)]
        syncml: Option<OnOff>,
        #[arg(long = "add-alias")]
        add_aliases: Vec<String>,
        #[arg(long = "remove-alias")]
        remove_aliases: Vec<String>,
    },
    /// Delete a user with all its mail, calendars and contacts.
    Del {
        uid: String,
    },
}

/// The outbound mail queue.
#[derive(Subcommand)]
pub enum QueueCmd {
    /// Messages waiting, with each recipient's state.
    List,
    /// Try a message again now.
    Retry { id: String },
    /// Remove a message without notifying its sender.
    Delete { id: String },
}

/// The office's web proxy (Squid).
#[derive(Subcommand)]
pub enum ProxyCmd {
    /// The settings, and what the access log says (top users and sites, refusals).
    Status,
    /// Replace the settings, have Squid check the configuration, install it and reload.
    Apply {
        /// Networks that may use the proxy (CIDR, address or "lan"); repeat. Default: lan.
        #[arg(long = "network")]
        networks: Vec<String>,
        /// A domain nobody reaches (with its subdomains); repeat.
        #[arg(long = "block")]
        blocked: Vec<String>,
        /// A group's rule: "GROUP:allow|deny:DOMAIN,DOMAIN"; repeat (checked in order).
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Let the office's networks use the proxy without signing in.
        #[arg(long)]
        no_auth: bool,
    },
}

/// The office's file server (Samba).
#[derive(Subcommand)]
pub enum SambaCmd {
    /// The settings, the last time Samba was brought in line, smbd and who is connected.
    Status,
    /// Replace the settings and bring Samba in line (through the system helper); from then
    /// on, every change of the directory reaches Samba by itself.
    Apply {
        /// The Windows workgroup. Default: OFFICE.
        #[arg(long, default_value = "OFFICE")]
        workgroup: String,
        /// A share for a group's members: "NAME:GROUP"; repeat.
        #[arg(long = "share")]
        shares: Vec<String>,
        /// No home share per user.
        #[arg(long)]
        no_homes: bool,
        /// A share named "public" every user may read and write.
        #[arg(long)]
        public: bool,
    },
}

/// Service accounts: read-only LDAP binds for applications on the LAN.
#[derive(Subcommand)]
pub enum ServiceCmd {
    /// Make an account; its password is printed once.
    Add {
        name: String,
        /// What uses it (shown in the console).
        #[arg(long)]
        description: Option<String>,
    },
    List,
    /// Give an account a new password (printed once); the old one stops working.
    Reset {
        name: String,
    },
    Del {
        name: String,
    },
}

/// A user's mailboxes, calendars and address books, for support and export.
#[derive(Subcommand)]
pub enum MailboxCmd {
    /// The user's collections.
    List { uid: String },
    /// The items of one collection.
    Items { uid: String, name: String },
    /// One item's content, as stored (an RFC 5322 message, an iCalendar, a vCard).
    Get { uid: String, name: String, id: u64 },
    /// Shares a collection (mailbox, calendar, address book) with a user or a group.
    Share {
        uid: String,
        name: String,
        /// The user or group it is shared with.
        #[arg(long)]
        with: String,
        /// read, read-write or delegate.
        #[arg(long, default_value = "read")]
        access: String,
    },
    /// Stops sharing a collection with a user or a group.
    Unshare {
        uid: String,
        name: String,
        #[arg(long)]
        with: String,
    },
    /// Who a collection is shared with.
    Shares { uid: String, name: String },
    /// Imports a whole .ics into a calendar or a .vcf into an address book (objects with
    /// a UID already there are replaced).
    Import {
        uid: String,
        name: String,
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum GroupCmd {
    Add {
        name: String,
        /// An address that reaches every member.
        #[arg(long)]
        address: Option<String>,
        /// Display name.
        #[arg(long = "display-name")]
        display_name: Option<String>,
        #[arg(long = "member")]
        members: Vec<String>,
    },
    List,
    /// Show a group's members, or set them.
    Members {
        name: String,
        /// The full new member list.
        #[arg(long = "set", num_args = 0..)]
        set: Option<Vec<String>>,
    },
    Del {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum ResourceCmd {
    /// Adds a room or a piece of equipment.
    Add {
        address: String,
        /// room or equipment.
        #[arg(long, default_value = "room", value_parser = parse_resource_kind)]
        kind: ResourceKind,
        /// Display name.
        #[arg(long = "display-name")]
        display_name: Option<String>,
        #[arg(long)]
        capacity: Option<u32>,
        #[arg(long)]
        location: Option<String>,
        /// auto-accept, accept-if-free (the default) or manager.
        #[arg(long, default_value = "accept-if-free", value_parser = parse_policy)]
        policy: BookingPolicy,
        /// The user who approves bookings (policy manager).
        #[arg(long)]
        manager: Option<String>,
        /// A user or group who may book it (repeat); none: everyone.
        #[arg(long = "booker")]
        bookers: Vec<String>,
        /// Organizers elsewhere may book it by mail.
        #[arg(long)]
        external: bool,
    },
    List,
    Del {
        uid: String,
    },
}

fn parse_resource_kind(s: &str) -> Result<ResourceKind, BadValue> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase())).map_err(|_| {
        BadValue {
            value: s.into(),
            expected: "room or equipment",
        }
    })
}

fn parse_policy(s: &str) -> Result<BookingPolicy, BadValue> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase())).map_err(|_| {
        BadValue {
            value: s.into(),
            expected: "auto-accept, accept-if-free or manager",
        }
    })
}

/// Parses 500M, 2G, 1024 (bytes), "none".
pub fn parse_size(s: &str) -> Result<Option<u64>, BadValue> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        Some('T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .map(Some)
        .ok_or_else(|| BadValue {
            value: format!("quota '{s}'"),
            expected: "use a size such as 500M or 2G, or none",
        })
}

fn read_password(from_stdin: bool) -> Result<String, CliError> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(CliError::Password)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let p1 = rpassword::prompt_password("Password: ").map_err(CliError::Password)?;
    let p2 = rpassword::prompt_password("Again: ").map_err(CliError::Password)?;
    if p1 != p2 {
        return Err(CliError::PasswordsDiffer);
    }
    Ok(p1)
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1}K", b as f64 / 1024.0),
        b => format!("{b}B"),
    }
}

struct Out<'a> {
    client: &'a Client,
    json: bool,
}

impl Out<'_> {
    async fn call<T: DeserializeOwned + Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Option<T>, CliError> {
        Ok(self.client.call(method, path, body).await?)
    }

    fn print<T: Serialize>(&self, v: &T, text: impl FnOnce(&T) -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            let t = text(v);
            if !t.is_empty() {
                println!("{t}");
            }
        }
    }

    fn done(&self, text: &str) {
        if self.json {
            println!("{{}}");
        } else {
            println!("{text}");
        }
    }
}

const NONE: Option<&()> = None;

fn user_line(u: &User) -> String {
    format!(
        "{:<16} {:<32} {:<24} {}{}",
        u.uid,
        u.address,
        u.display_name,
        if u.enabled { "enabled" } else { "disabled" },
        if u.admin { ", admin" } else { "" }
    )
}

pub async fn run(client: &Client, cmd: &Cmd, json: bool) -> Result<(), CliError> {
    let out = Out { client, json };
    match cmd {
        Cmd::Serve { .. } | Cmd::Helper | Cmd::SetupToken | Cmd::Bootenv { .. } => {
            unreachable!("handled in main")
        }
        Cmd::Check => {
            let broken: Vec<Broken> = out
                .call(Method::GET, "/api/v1/check", NONE)
                .await?
                .unwrap_or_default();
            out.print(&broken, |b| {
                if b.is_empty() {
                    return "every calendar object and card is sound".to_string();
                }
                b.iter()
                    .map(|x| format!("{}/{}/{}: {}", x.owner, x.collection, x.name, x.why))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            if !broken.is_empty() {
                return Err(CliError::Found(format!(
                    "{} broken object(s)",
                    broken.len()
                )));
            }
        }
        Cmd::Status { wait } => {
            let s = status(client, *wait).await?;
            out.print(&s, |s| {
                let mut t = format!(
                    "bureau {} on {}, up {} s\ndata: {} (schema {})\n{} domain(s), {} user(s), {} group(s)\n",
                    s.version, s.hostname, s.uptime_secs, s.data_dir, s.schema_version, s.domains, s.users, s.groups
                );
                for svc in &s.services {
                    t += &format!(
                        "  {:<12} {:<5} {}\n",
                        svc.name,
                        if svc.up { "up" } else { "DOWN" },
                        svc.listen.join(", ")
                    );
                }
                t.trim_end().to_string()
            });
        }
        Cmd::Domain(d) => run_domain(&out, d).await?,
        Cmd::User(u) => run_user(&out, u).await?,
        Cmd::Mailbox(m) => run_mailbox(&out, m).await?,
        Cmd::Queue(q) => run_queue(&out, q).await?,
        Cmd::Group(g) => run_group(&out, g).await?,
        Cmd::Resource(r) => run_resource(&out, r).await?,
        Cmd::Update(u) => run_update(&out, u).await?,
        Cmd::Service(s) => run_service(&out, s).await?,
        Cmd::Proxy(p) => run_proxy(&out, p).await?,
        Cmd::Samba(s) => run_samba(&out, s).await?,
        Cmd::Backup(BackupCmd::Create { file }) => {
            // Written beside its name, renamed when whole: a failed download leaves nothing.
            let tmp = file.with_extension("partial");
            let mut f = std::fs::File::create(&tmp).map_err(error::file(&tmp))?;
            let written = out.client.download("/api/v1/backup", &mut f).await;
            let done = written.map_err(CliError::from).and_then(|n| {
                f.sync_all().map_err(error::file(&tmp))?;
                std::fs::rename(&tmp, file).map_err(error::file(file))?;
                Ok(n)
            });
            match done {
                Ok(n) => out.done(&format!("wrote {} ({n} bytes)", file.display())),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            }
        }
        Cmd::Backup(BackupCmd::Restore { .. }) => unreachable!("restored without the daemon"),
    }
    Ok(())
}

async fn run_domain(out: &Out<'_>, cmd: &DomainCmd) -> Result<(), CliError> {
    match cmd {
        DomainCmd::Add { name } => {
            let d: Domain = out
                .call(
                    Method::POST,
                    "/api/v1/domains",
                    Some(&NewDomain { name: name.clone() }),
                )
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&d, |d| format!("added domain {}", d.name));
        }
        DomainCmd::List => {
            let ds: Vec<Domain> = out
                .call(Method::GET, "/api/v1/domains", NONE)
                .await?
                .unwrap_or_default();
            out.print(&ds, |ds| {
                ds.iter()
                    .map(|d| d.name.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DomainCmd::CatchAll { name, uid } => {
            let ch = DomainChanges {
                catch_all: (uid != "none").then(|| uid.clone()),
            };
            let d: Domain = out
                .call(Method::PATCH, &format!("/api/v1/domains/{name}"), Some(&ch))
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&d, |d| match &d.catch_all {
                Some(u) => format!("unknown addresses of {} now reach {u}", d.name),
                None => format!("{} has no catch-all", d.name),
            });
        }
        DomainCmd::Syncml {
            name,
            service,
            auth,
        } => {
            let ds: Vec<Domain> = out
                .call(Method::GET, "/api/v1/domains", NONE)
                .await?
                .unwrap_or_default();
            let Some(d) = ds.into_iter().find(|d| d.name.eq_ignore_ascii_case(name)) else {
                return Err(CliError::Argument(BadValue {
                    value: name.clone(),
                    expected: "one of the box's domains",
                }));
            };
            let mut policy = d.syncml;
            if let Some(s) = service {
                policy.enabled = *s == OnOff::On;
            }
            if let Some(a) = auth {
                policy.auth = match a.to_ascii_lowercase().as_str() {
                    "any" => SyncMlAuth::Any,
                    "basic" => SyncMlAuth::Basic,
                    "md5" => SyncMlAuth::Md5,
                    _ => {
                        return Err(CliError::Argument(BadValue {
                            value: a.clone(),
                            expected: "any, basic or md5",
                        }));
                    }
                };
            }
            let d: Domain = out
                .call(
                    Method::PUT,
                    &format!("/api/v1/domains/{name}/syncml"),
                    Some(&policy),
                )
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&d, |d| {
                let auth = match d.syncml.auth {
                    SyncMlAuth::Any => "basic or MD5 sign-in",
                    SyncMlAuth::Basic => "basic sign-in only",
                    SyncMlAuth::Md5 => "MD5 sign-in only",
                };
                match d.syncml.enabled {
                    true => format!("SyncML is on for {}, {auth}", d.name),
                    false => format!("SyncML is off for {}", d.name),
                }
            });
        }
        DomainCmd::Dns { name } => {
            let rs: Vec<DnsRecord> = out
                .call(Method::GET, &format!("/api/v1/domains/{name}/dns"), NONE)
                .await?
                .unwrap_or_default();
            out.print(&rs, |rs| {
                rs.iter()
                    .map(|r| {
                        // TXT values are quoted, and split in 255-byte strings (RFC 1035 3.3.14).
                        let value = if r.kind == "TXT" {
                            r.value
                                .as_bytes()
                                .chunks(255)
                                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                                .collect::<Vec<_>>()
                                .join(" ")
                        } else {
                            r.value.clone()
                        };
                        format!("; {}\n{}\tIN\t{}\t{}", r.purpose, r.name, r.kind, value)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DomainCmd::Del { name } => {
            out.call::<()>(Method::DELETE, &format!("/api/v1/domains/{name}"), NONE)
                .await?;
            out.done(&format!("deleted domain {name}"));
        }
    }
    Ok(())
}

async fn run_user(out: &Out<'_>, cmd: &UserCmd) -> Result<(), CliError> {
    match cmd {
        UserCmd::Add {
            address,
            uid,
            name,
            quota,
            aliases,
            admin,
            password_stdin,
        } => {
            let quota = quota.as_deref().map(parse_size).transpose()?.flatten();
            let password = read_password(*password_stdin)?;
            let nu = NewUser {
                address: address.clone(),
                uid: uid.clone(),
                display_name: name.clone(),
                password,
                quota,
                admin: *admin,
                aliases: aliases.clone(),
                phone: None,
            };
            let u: User = out
                .call(Method::POST, "/api/v1/users", Some(&nu))
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&u, |u| format!("added user {} <{}>", u.uid, u.address));
        }
        UserCmd::List => {
            let us: Vec<User> = out
                .call(Method::GET, "/api/v1/users", NONE)
                .await?
                .unwrap_or_default();
            out.print(&us, |us| {
                us.iter().map(user_line).collect::<Vec<_>>().join("\n")
            });
        }
        UserCmd::Show { uid } => {
            let d: UserDetail = out
                .call(Method::GET, &format!("/api/v1/users/{uid}"), NONE)
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&d, |d| {
                let u = &d.user;
                format!(
                    "uid:      {}\naddress:  {}\nname:     {}\naliases:  {}\ngroups:   {}\nquota:    {}\nused:     {}\nstate:    {}{}",
                    u.uid,
                    u.address,
                    u.display_name,
                    u.aliases.join(", "),
                    d.groups.join(", "),
                    u.quota.map_or("none".into(), human),
                    human(d.usage_bytes),
                    if u.enabled { "enabled" } else { "disabled" },
                    if u.admin { ", admin" } else { "" }
                )
            });
        }
        UserCmd::Passwd {
            uid,
            password_stdin,
        } => {
            let password = read_password(*password_stdin)?;
            out.call::<()>(
                Method::PUT,
                &format!("/api/v1/users/{uid}/password"),
                Some(&PasswordChange { password }),
            )
            .await?;
            out.done(&format!("password of {uid} changed"));
        }
        UserCmd::Disable { uid } | UserCmd::Enable { uid } => {
            let enabled = matches!(cmd, UserCmd::Enable { .. });
            let ch = UserChanges {
                enabled: Some(enabled),
                ..Default::default()
            };
            let u: User = out
                .call(Method::PATCH, &format!("/api/v1/users/{uid}"), Some(&ch))
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&u, |u| {
                format!(
                    "{} {}",
                    u.uid,
                    if u.enabled { "enabled" } else { "disabled" }
                )
            });
        }
        UserCmd::Set {
            uid,
            name,
            phone,
            quota,
            syncml,
            add_aliases,
            remove_aliases,
        } => {
            let ch = UserChanges {
                display_name: name.clone(),
                phone: phone.clone(),
                syncml: syncml.map(|s| s == OnOff::On),
                quota: quota.as_deref().map(parse_size).transpose()?,
                add_aliases: add_aliases.clone(),
                remove_aliases: remove_aliases.clone(),
                ..Default::default()
            };
            let u: User = out
                .call(Method::PATCH, &format!("/api/v1/users/{uid}"), Some(&ch))
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&u, user_line);
        }
        UserCmd::TwoFactorOff { uid } => {
            out.call::<()>(Method::DELETE, &format!("/api/v1/users/{uid}/totp"), NONE)
                .await?;
            out.done(&format!("two-factor sign-in of {uid} is off"));
        }
        UserCmd::Del { uid } => {
            out.call::<()>(Method::DELETE, &format!("/api/v1/users/{uid}"), NONE)
                .await?;
            out.done(&format!("deleted user {uid}"));
        }
    }
    Ok(())
}

/// Encodes a collection name for a URL path segment.
fn segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn run_mailbox(out: &Out<'_>, cmd: &MailboxCmd) -> Result<(), CliError> {
    match cmd {
        MailboxCmd::List { uid } => {
            let cs: Vec<CollectionInfo> = out
                .call(
                    Method::GET,
                    &format!("/api/v1/users/{uid}/collections"),
                    NONE,
                )
                .await?
                .unwrap_or_default();
            out.print(&cs, |cs| {
                cs.iter()
                    .map(|c| format!("{:<24} {:<12} {:>7} items", c.name, c.kind, c.items))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        MailboxCmd::Items { uid, name } => {
            let path = format!("/api/v1/users/{uid}/collections/{}/items", segment(name));
            let items: Vec<ItemInfo> = out
                .call(Method::GET, &path, NONE)
                .await?
                .unwrap_or_default();
            out.print(&items, |is| {
                is.iter()
                    .map(|i| {
                        format!(
                            "{:>8} {:>10} {} {}",
                            i.id,
                            human(i.size),
                            i.date,
                            i.flags.join(" ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        MailboxCmd::Share {
            uid,
            name,
            with,
            access,
        } => {
            let path = format!(
                "/api/v1/users/{uid}/collections/{}/shares/{}",
                segment(name),
                segment(with)
            );
            out.call::<()>(
                Method::PUT,
                &path,
                Some(&NewShare {
                    access: access.clone(),
                }),
            )
            .await?;
            out.done(&format!("{uid}'s {name} is shared with {with} ({access})"));
        }
        MailboxCmd::Unshare { uid, name, with } => {
            let path = format!(
                "/api/v1/users/{uid}/collections/{}/shares/{}",
                segment(name),
                segment(with)
            );
            out.call::<()>(Method::DELETE, &path, NONE).await?;
            out.done(&format!("{uid}'s {name} is no longer shared with {with}"));
        }
        MailboxCmd::Shares { uid, name } => {
            let path = format!("/api/v1/users/{uid}/collections/{}/shares", segment(name));
            let shares: Vec<ShareInfo> = out
                .call(Method::GET, &path, NONE)
                .await?
                .unwrap_or_default();
            out.print(&shares, |ss| {
                ss.iter()
                    .map(|s| format!("{:<24} {}", s.with, s.access))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        MailboxCmd::Import { uid, name, file } => {
            let data = std::fs::read(file).map_err(error::file(file))?;
            let path = format!("/api/v1/users/{uid}/collections/{}/import", segment(name));
            let body = out.client.upload(Method::POST, &path, data).await?;
            let report: ImportReport = serde_json::from_slice(&body)?;
            out.print(&report, |r| {
                let mut t = format!("{} objects stored in {uid}'s {name}", r.stored);
                for why in &r.refused {
                    t.push_str(&format!("\nrefused: {why}"));
                }
                t
            });
        }
        MailboxCmd::Get { uid, name, id } => {
            let path = format!(
                "/api/v1/users/{uid}/collections/{}/items/{id}",
                segment(name)
            );
            let data = out.client.raw(Method::GET, &path, NONE).await?;
            use std::io::Write;
            std::io::stdout()
                .write_all(&data)
                .map_err(error::file(std::path::Path::new("standard output")))?;
        }
    }
    Ok(())
}

async fn run_queue(out: &Out<'_>, cmd: &QueueCmd) -> Result<(), CliError> {
    match cmd {
        QueueCmd::List => {
            let q: Vec<QueuedMessage> = out
                .call(Method::GET, "/api/v1/queue", NONE)
                .await?
                .unwrap_or_default();
            out.print(&q, |q| {
                if q.is_empty() {
                    return "the queue is empty".into();
                }
                let mut t = String::new();
                for m in q {
                    let e = &m.entry;
                    t += &format!(
                        "{}  {}  from <{}>  {} attempt(s), next in {} s\n",
                        e.id,
                        human(m.size),
                        e.from,
                        e.attempts,
                        (e.next_attempt - bureau_store::now()).max(0)
                    );
                    for r in &e.rcpts {
                        t += &format!(
                            "    {:<9} <{}> {}\n",
                            format!("{:?}", r.state).to_lowercase(),
                            r.address,
                            r.error.as_deref().unwrap_or("")
                        );
                    }
                }
                t.trim_end().to_string()
            });
        }
        QueueCmd::Retry { id } => {
            out.call::<()>(Method::POST, &format!("/api/v1/queue/{id}/retry"), NONE)
                .await?;
            out.done(&format!("{id} will be tried now"));
        }
        QueueCmd::Delete { id } => {
            out.call::<()>(Method::DELETE, &format!("/api/v1/queue/{id}"), NONE)
                .await?;
            out.done(&format!("{id} deleted"));
        }
    }
    Ok(())
}

async fn run_group(out: &Out<'_>, cmd: &GroupCmd) -> Result<(), CliError> {
    let group_line = |g: &Group| {
        format!(
            "{:<16} {:<32} {}",
            g.name,
            g.address.clone().unwrap_or_default(),
            g.members.join(", ")
        )
    };
    match cmd {
        GroupCmd::Add {
            name,
            address,
            display_name,
            members,
        } => {
            let ng = NewGroup {
                name: name.clone(),
                display_name: display_name.clone(),
                address: address.clone(),
                members: members.clone(),
            };
            let g: Group = out
                .call(Method::POST, "/api/v1/groups", Some(&ng))
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&g, |g| format!("added group {}", g.name));
        }
        GroupCmd::List => {
            let gs: Vec<Group> = out
                .call(Method::GET, "/api/v1/groups", NONE)
                .await?
                .unwrap_or_default();
            out.print(&gs, |gs| {
                gs.iter().map(group_line).collect::<Vec<_>>().join("\n")
            });
        }
        GroupCmd::Members { name, set } => {
            let g: Group = match set {
                Some(members) => out
                    .call(
                        Method::PUT,
                        &format!("/api/v1/groups/{name}/members"),
                        Some(&Members {
                            members: members.clone(),
                        }),
                    )
                    .await?
                    .ok_or(CliError::Empty)?,
                None => out
                    .call(Method::GET, &format!("/api/v1/groups/{name}"), NONE)
                    .await?
                    .ok_or(CliError::Empty)?,
            };
            out.print(&g, |g| g.members.join("\n"));
        }
        GroupCmd::Del { name } => {
            out.call::<()>(Method::DELETE, &format!("/api/v1/groups/{name}"), NONE)
                .await?;
            out.done(&format!("deleted group {name}"));
        }
    }
    Ok(())
}

async fn run_resource(out: &Out<'_>, cmd: &ResourceCmd) -> Result<(), CliError> {
    match cmd {
        ResourceCmd::Add {
            address,
            kind,
            display_name,
            capacity,
            location,
            policy,
            manager,
            bookers,
            external,
        } => {
            let nr = NewResource {
                address: address.clone(),
                uid: None,
                display_name: display_name.clone(),
                settings: Resource {
                    kind: *kind,
                    capacity: *capacity,
                    location: location.clone(),
                    policy: *policy,
                    manager: manager.clone(),
                    bookers: bookers.clone(),
                    external: *external,
                },
            };
            let r: User = out
                .call(Method::POST, "/api/v1/resources", Some(&nr))
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&r, |r| format!("added resource {} <{}>", r.uid, r.address));
        }
        ResourceCmd::List => {
            let rs: Vec<User> = out
                .call(Method::GET, "/api/v1/resources", NONE)
                .await?
                .unwrap_or_default();
            out.print(&rs, |rs| {
                rs.iter()
                    .map(|r| {
                        let res = r.resource.as_ref();
                        format!(
                            "{:<16} {:<32} {:<10} {}",
                            r.uid,
                            r.address,
                            res.map_or("", |x| match x.kind {
                                ResourceKind::Room => "room",
                                ResourceKind::Equipment => "equipment",
                            }),
                            r.display_name
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ResourceCmd::Del { uid } => {
            out.call::<()>(Method::DELETE, &format!("/api/v1/resources/{uid}"), NONE)
                .await?;
            out.done(&format!("deleted resource {uid}"));
        }
    }
    Ok(())
}

/// The daemon's status; with `wait`, retried until the daemon answers with every service up.
async fn status(client: &Client, wait: Option<u64>) -> Result<Status, CliError> {
    let Some(secs) = wait else {
        return client
            .call(Method::GET, "/api/v1/status", NONE)
            .await?
            .ok_or(CliError::Empty);
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let why = match client
            .call::<Status>(Method::GET, "/api/v1/status", NONE)
            .await
        {
            Ok(Some(s)) => {
                let down: Vec<&str> = s
                    .services
                    .iter()
                    .filter(|svc| !svc.up)
                    .map(|svc| svc.name.as_str())
                    .collect();
                if down.is_empty() {
                    return Ok(s);
                }
                format!("down: {}", down.join(", "))
            }
            Ok(None) => CliError::Empty.to_string(),
            Err(e) => e.to_string(),
        };
        if std::time::Instant::now() >= deadline {
            return Err(CliError::Found(format!(
                "not healthy after {secs} s: {why}"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn run_update(out: &Out<'_>, cmd: &UpdateCmd) -> Result<(), CliError> {
    match cmd {
        UpdateCmd::Apply { bundle, no_reboot } => {
            let data = std::fs::read(bundle).map_err(error::file(bundle))?;
            eprintln!(
                "installing {} ({} MiB) into the other slot...",
                bundle.display(),
                data.len() >> 20
            );
            out.client
                .upload(Method::PUT, "/api/v1/system/update", data)
                .await?;
            if *no_reboot {
                println!("installed; the new system starts at the next reboot");
            } else {
                out.client
                    .raw(Method::POST, "/api/v1/system/reboot", NONE)
                    .await?;
                println!("installed; rebooting into it");
            }
        }
        UpdateCmd::Status => {
            let s: SystemInfo = out
                .call(Method::GET, "/api/v1/system", NONE)
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&s, |s| {
                let mut t = format!(
                    "release {}, booted from slot {}",
                    s.release.as_deref().unwrap_or("(not an image)"),
                    s.booted_slot.as_deref().unwrap_or("?")
                );
                if let Some(e) = &s.helper_error {
                    t += &format!("\nslots unknown: {e}");
                } else if let Some(slots) = &s.slots {
                    t += &format!(
                        "\n{}",
                        serde_json::to_string_pretty(slots).unwrap_or_default()
                    );
                }
                t
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500M").unwrap(), Some(500 << 20));
        assert_eq!(parse_size("2g").unwrap(), Some(2 << 30));
        assert_eq!(parse_size("1024").unwrap(), Some(1024));
        assert_eq!(parse_size("none").unwrap(), None);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
