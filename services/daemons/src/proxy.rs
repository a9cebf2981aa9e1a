//! The office's web proxy: Squid's configuration from the administrator's settings and
//! Bureau's accounts, and a summary of its access log.
//!
//! - Settings (networks allowed, whether users sign in, blocked domains, per-group rules)
//!   live in the store and are checked field by field by the daemon.
//! - Squid starts as root and reads its configuration, so the daemon never writes it: it
//!   sends the settings, the directory's view they need and a fresh LDAP secret as a
//!   `ProxyPlan` to the privileged helper, which checks every field again (`check_plan`),
//!   renders the configuration itself, has `squid -k parse` check it, and only then
//!   installs it and the secret in the proxy's folder, root's (`install`). A configuration
//!   Squid refuses changes nothing.
//! - Users sign in to the proxy with their Bureau address (or uid) and password: Squid's
//!   `basic_ldap_auth` binds to Bureau's LDAP over TLS as the service account `squid`, finds
//!   the person, and checks the password by binding as them.
//! - Per-group rules list the group's members' names (uid, address, aliases) in a
//!   `proxy_auth` ACL, so Squid needs no group lookup; applying again picks up new members.

use crate::{Invalid, invalid};
use bureau_core::files::write_secret;
use bureau_core::helper::CommandError;
pub use bureau_core::helper::{Action, GroupRule, ProxyAccounts, ProxyPlan, ProxySettings};
use bureau_core::net::Networks;
use bureau_directory::Directory;
use bureau_store::{Store, StoreError};
use bureau_words::{Said, said};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const KEY: &str = "proxy";
/// The service account the proxy binds to LDAP with.
pub const ACCOUNT: &str = "squid";
/// Squid's configuration and the LDAP secret, in the proxy's folder.
pub const CONFIG: &str = "squid.conf";
const SECRET: &str = "ldap.secret";

/// A domain as the administrator typed it ("example.com", ".example.com", "*.example.com"),
/// checked; Squid's form (".example.com": the domain and its subdomains).
fn domain(field: &str, d: &str) -> Result<String, Invalid> {
    let bare = d.trim().trim_start_matches("*.").trim_start_matches('.');
    let checked = bureau_directory::validate::domain(bare).map_err(|_| {
        invalid(
            field,
            said("err_is_not_a_domain_name").with("d", format!("{:?}", d)),
        )
    })?;
    Ok(format!(".{checked}"))
}

/// The CIDR blocks "lan" and the others stand for, as Squid wants them.
fn squid_networks(list: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in list {
        if n.eq_ignore_ascii_case("lan") {
            out.extend(bureau_core::net::LAN.iter().map(|s| s.to_string()));
        } else {
            out.push(n.trim().to_string());
        }
    }
    out
}

/// What the configuration needs besides the plan: the helper's own configuration's, never
/// the daemon's word.
pub struct Env {
    pub http_port: String,
    pub access_log: PathBuf,
    /// The proxy's folder: the configuration, the LDAP secret, Squid's pid and cache log.
    pub dir: PathBuf,
    /// e.g. ldaps://127.0.0.1:636
    pub ldap_url: String,
}

/// The directory's view the rules need: each group's enabled members' login names, and
/// where people are.
pub fn accounts(dir: &Directory) -> Result<ProxyAccounts, bureau_directory::DirectoryError> {
    let users = dir.users()?;
    let groups = dir
        .groups()?
        .into_iter()
        .map(|g| {
            let names = users
                .iter()
                .filter(|u| u.enabled && g.members.contains(&u.uid))
                .flat_map(|u| {
                    std::iter::once(u.uid.clone())
                        .chain(std::iter::once(u.address.clone()))
                        .chain(u.aliases.iter().cloned())
                })
                .collect();
            (g.name, names)
        })
        .collect();
    let people_bases = dir
        .domains()?
        .iter()
        .map(|d| format!("ou=people,{}", bureau_directory::ldap_suffix(&d.name)))
        .collect();
    Ok(ProxyAccounts {
        groups,
        people_bases,
    })
}

/// Checks the settings field by field (the field names are the API's).
pub fn check(s: &ProxySettings, accounts: &ProxyAccounts) -> Result<(), Invalid> {
    if s.networks.is_empty() {
        return Err(invalid("networks", said("err_at_least_one_network_or_lan")));
    }
    Networks::parse(&s.networks)
        .map_err(|m| invalid("networks", said("err_bad_network").with("network", &m.0)))?;
    for d in &s.blocked {
        domain("blocked", d)?;
    }
    for (i, r) in s.rules.iter().enumerate() {
        let field = format!("rules[{i}]");
        if !accounts.groups.iter().any(|(g, _)| *g == r.group) {
            return Err(invalid(
                &field,
                said("err_there_is_no_group").with("group", format!("{:?}", r.group)),
            ));
        }
        if r.domains.is_empty() {
            return Err(invalid(&field, said("err_a_rule_needs_at_least_one")));
        }
        for d in &r.domains {
            domain(&field, d)?;
        }
    }
    if !s.rules.is_empty() && !s.authenticate {
        return Err(invalid(
            "authenticate",
            said("err_group_rules_need_users_to_sign"),
        ));
    }
    Ok(())
}

/// Squid's configuration. The plan must have passed `check_plan`.
///
/// `shutdown_lifetime`: Squid stops only after it, clients or none (30 s by default, which
/// every reboot of a box with the proxy on waited; issue 23). Three seconds lets a page being
/// sent finish.
pub fn render(p: &ProxyPlan, env: &Env) -> String {
    let (s, accounts) = (&p.settings, &p.accounts);
    let state = env.dir.display();
    let mut c = format!(
        "# Made by Bureau from its proxy settings; changes here are overwritten.\n\
         http_port {}\n\
         shutdown_lifetime 3 seconds\n\
         pid_filename {state}/squid.pid\n\
         cache_log {state}/cache.log\n\
         access_log stdio:{} squid\n\
         coredump_dir {state}\n\
         cache deny all\n\
         visible_hostname bureau-proxy\n\
         forwarded_for delete\n\
         via off\n\n",
        env.http_port,
        env.access_log.display()
    );
    c.push_str(&format!(
        "acl office src {}\n",
        squid_networks(&s.networks).join(" ")
    ));
    c.push_str(
        "acl SSL_ports port 443\nacl Safe_ports port 80 443 21 70 210 280 488 591 777 1025-65535\n",
    );
    c.push_str("acl CONNECT method CONNECT\n");
    c.push_str("http_access deny !Safe_ports\nhttp_access deny CONNECT !SSL_ports\n");
    if !s.blocked.is_empty() {
        let ds: Vec<String> = s
            .blocked
            .iter()
            .filter_map(|d| domain("blocked", d).ok())
            .collect();
        c.push_str(&format!(
            "acl blocked dstdomain {}\nhttp_access deny blocked\n",
            ds.join(" ")
        ));
    }
    if s.authenticate {
        // Every people branch: basic_ldap_auth takes one base, so search from the top
        // when there are several domains.
        let base = match accounts.people_bases.as_slice() {
            [one] => one.clone(),
            _ => String::new(),
        };
        c.push_str(&format!(
            "auth_param basic program /usr/lib/squid/basic_ldap_auth -v 3 -b \"{base}\" \
             -f \"(&(objectClass=inetOrgPerson)(|(uid=%s)(mail=%s)))\" -D {} -W {} -H {}\n\
             auth_param basic children 5\n\
             auth_param basic realm Bureau web proxy: your address and password\n\
             auth_param basic credentialsttl 1 hour\n\
             acl users proxy_auth REQUIRED\n",
            p.bind_dn,
            env.dir.join(SECRET).display(),
            env.ldap_url
        ));
        for (i, r) in s.rules.iter().enumerate() {
            let names = accounts
                .groups
                .iter()
                .find(|(g, _)| *g == r.group)
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            if names.is_empty() {
                continue;
            }
            let ds: Vec<String> = r
                .domains
                .iter()
                .filter_map(|d| domain("rules", d).ok())
                .collect();
            let verb = match r.action {
                Action::Allow => "allow",
                Action::Deny => "deny",
            };
            c.push_str(&format!(
                "acl rule{i}_who proxy_auth {}\nacl rule{i}_sites dstdomain {}\nhttp_access {verb} office rule{i}_who rule{i}_sites\n",
                names.join(" "),
                ds.join(" ")
            ));
        }
        c.push_str("http_access allow office users\n");
    } else {
        c.push_str("http_access allow office\n");
    }
    c.push_str("http_access deny all\n");
    c
}

/// Asks Squid whether it takes a configuration file: its complaint if not.
pub async fn squid_accepts(squid: &Path, file: &Path) -> Result<(), CommandError> {
    let out = tokio::process::Command::new(squid)
        .arg("-k")
        .arg("parse")
        .arg("-f")
        .arg(file)
        .output()
        .await
        .map_err(|source| CommandError::Start {
            program: squid.display().to_string(),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let reason: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("FATAL") || l.contains("WARNING"))
        .collect();
    Err(CommandError::Failed(if reason.is_empty() {
        text.trim().chars().take(500).collect()
    } else {
        reason.join("\n")
    }))
}

/// Why the helper did not install a plan. Nothing is changed by a refused plan or
/// configuration.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The plan breaks a rule (the helper trusts nothing the daemon sends).
    #[error("{0}")]
    Plan(String),
    /// `squid -k parse` refuses the configuration made from the plan, in its words.
    #[error("{0}")]
    Refused(Said),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Something other than a folder where the proxy's folder is to be: root follows no link.
    #[error("{}: not a folder", .0.display())]
    NotAFolder(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProxyError + '_ {
    move |source| ProxyError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// The helper's own check of a plan: the settings as the daemon checks them, and every
/// name, DN and the secret in a form that cannot break out of its place in the
/// configuration (a space, quote or line break would add Squid directives of the sender's).
pub fn check_plan(p: &ProxyPlan) -> Result<(), ProxyError> {
    check(&p.settings, &p.accounts)
        .map_err(|e| ProxyError::Plan(format!("{}: {}", e.field, e.message)))?;
    // Not starting with '-' either: Squid reads a leading one as an ACL's flag.
    let plain = |s: &str, extra: &str| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.len() <= 320
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(c))
    };
    for (group, names) in &p.accounts.groups {
        if let Some(bad) = std::iter::once(group)
            .chain(names)
            .find(|n| !plain(n, "@+"))
        {
            return Err(ProxyError::Plan(format!(
                "group {group:?}: {bad:?} is not a sign-in name"
            )));
        }
    }
    if let Some(bad) = std::iter::once(&p.bind_dn)
        .chain(&p.accounts.people_bases)
        .find(|dn| !plain(dn, "=,"))
    {
        return Err(ProxyError::Plan(format!("{bad:?} is not a DN of Bureau's")));
    }
    // The secret goes into a file of its own, never the configuration: base64url.
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !(16..=256).contains(&p.secret.len()) || !p.secret.chars().all(base64url) {
        return Err(ProxyError::Plan(
            "the LDAP secret is not one the box makes".into(),
        ));
    }
    Ok(())
}

/// The helper's side (root): checks the plan, renders Squid's configuration, has Squid check
/// it, and only then installs it and the LDAP secret (mode 0640, group `group`, for Squid's
/// sign-in helper) in `env.dir`, made root's. What it finds there that Squid did not make
/// (a link, a file of another account's, left by a release whose daemon wrote here) is
/// removed first: Squid, as root, would open it. Answers the configuration's path.
pub async fn install(
    p: &ProxyPlan,
    env: &Env,
    squid: &Path,
    group: &str,
) -> Result<PathBuf, ProxyError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    check_plan(p)?;
    let dir = &env.dir;
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(ProxyError::NotAFolder(dir.clone())),
        Err(_) => std::fs::create_dir_all(dir).map_err(io(dir))?,
    }
    std::os::unix::fs::lchown(dir, Some(0), Some(0)).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io(dir))?;
    let squids = nix::unistd::User::from_name(group)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = e.map_err(io(dir))?.path();
        let m = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if !m.is_file() || !(m.uid() == 0 || Some(m.uid()) == squids) {
            if m.is_dir() {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
            } else {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
            log::warn!("proxy: removed {}: Squid did not make it", path.display());
        }
    }
    // New files only (what was there is root's or Squid's now, never followed).
    let candidate = dir.join("squid.conf.new");
    write_secret(&candidate, render(p, env).as_bytes(), 0o644).map_err(io(&candidate))?;
    if let Err(why) = squid_accepts(squid, &candidate).await {
        let _ = std::fs::remove_file(&candidate);
        return Err(ProxyError::Refused(
            said("err_squid_refuses").with("why", why),
        ));
    }
    let secret = dir.join(SECRET);
    write_secret(&secret, p.secret.as_bytes(), 0o640).map_err(io(&secret))?;
    if let Some(g) = nix::unistd::Group::from_name(group).ok().flatten() {
        nix::unistd::chown(&secret, None, Some(g.gid))
            .map_err(|e| io(&secret)(std::io::Error::from(e)))?;
    } else {
        log::warn!(
            "proxy: there is no group {group}: Squid's sign-in helper cannot read the secret"
        );
    }
    let config = dir.join(CONFIG);
    std::fs::rename(&candidate, &config).map_err(io(dir))?;
    Ok(config)
}

pub fn load(store: &Store) -> Result<ProxySettings, StoreError> {
    crate::load_settings(store, KEY)
}

pub async fn save(store: &Store, s: &ProxySettings) -> Result<(), StoreError> {
    crate::save_settings(store, KEY, s).await
}

/// What the access log says: who used the proxy most, which sites, what was refused.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub requests: u64,
    pub denied: u64,
    pub top_users: Vec<(String, u64)>,
    pub top_domains: Vec<(String, u64)>,
    pub top_denied_domains: Vec<(String, u64)>,
}

/// Reads Squid's native access log (`time elapsed client code/status bytes method URL
/// user hierarchy type`); lines it cannot read are skipped. `person` turns the name a user
/// signed in with (uid, address, alias) into one name per person.
pub fn summarize(log: &str, top: usize, person: impl Fn(&str) -> String) -> Summary {
    use std::collections::HashMap;
    let mut users: HashMap<String, u64> = HashMap::new();
    let mut domains: HashMap<String, u64> = HashMap::new();
    let mut denied_domains: HashMap<String, u64> = HashMap::new();
    let mut s = Summary::default();
    for line in log.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (code, url, user) = (f[3], f[6], f[7]);
        let host = url
            .split_once("://")
            .map_or(url, |(_, r)| r)
            .split(['/', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        s.requests += 1;
        if code.starts_with("TCP_DENIED") {
            // A 407 is the sign-in prompt, not a refusal.
            if !code.ends_with("/407") {
                s.denied += 1;
                *denied_domains.entry(host).or_default() += 1;
            }
            continue;
        }
        if user != "-" {
            *users.entry(person(user)).or_default() += 1;
        }
        *domains.entry(host).or_default() += 1;
    }
    let rank = |m: HashMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(top);
        v
    };
    s.top_users = rank(users);
    s.top_domains = rank(domains);
    s.top_denied_domains = rank(denied_domains);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> ProxyAccounts {
        ProxyAccounts {
            groups: vec![(
                "interns".into(),
                vec!["carl".into(), "carl@example.com".into()],
            )],
            people_bases: vec!["ou=people,dc=example,dc=com".into()],
        }
    }

    fn env() -> Env {
        Env {
            http_port: "3128".into(),
            access_log: "/var/log/squid/access.log".into(),
            dir: "/var/lib/bureau/proxy".into(),
            ldap_url: "ldaps://127.0.0.1:636".into(),
        }
    }

    fn plan(settings: ProxySettings) -> ProxyPlan {
        ProxyPlan {
            settings,
            accounts: accounts(),
            bind_dn: "cn=squid,ou=services,dc=example,dc=com".into(),
            secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQ".into(),
        }
    }

    #[test]
    fn settings_are_checked_field_by_field() {
        let ok = ProxySettings {
            blocked: vec!["facebook.com".into(), "*.tiktok.com".into()],
            rules: vec![GroupRule {
                group: "interns".into(),
                action: Action::Deny,
                domains: vec!["youtube.com".into()],
            }],
            ..Default::default()
        };
        assert_eq!(check(&ok, &accounts()), Ok(()));
        let bad = |s: ProxySettings| check(&s, &accounts()).unwrap_err().field;
        assert_eq!(
            bad(ProxySettings {
                blocked: vec!["not a domain/../x".into()],
                ..Default::default()
            }),
            "blocked"
        );
        assert_eq!(
            bad(ProxySettings {
                networks: vec!["10.0.0.0/99".into()],
                ..Default::default()
            }),
            "networks"
        );
        assert_eq!(
            bad(ProxySettings {
                rules: vec![GroupRule {
                    group: "nobody".into(),
                    action: Action::Allow,
                    domains: vec!["x.com".into()],
                }],
                ..Default::default()
            }),
            "rules[0]"
        );
        let c = render(&plan(ok), &env());
        assert!(
            c.contains("acl blocked dstdomain .facebook.com .tiktok.com\nhttp_access deny blocked")
        );
        assert!(c.contains("acl rule0_who proxy_auth carl carl@example.com"));
        assert!(c.contains("http_access deny office rule0_who rule0_sites"));
        assert!(c.contains(
            "-D cn=squid,ou=services,dc=example,dc=com -W /var/lib/bureau/proxy/ldap.secret"
        ));
        assert!(c.ends_with("http_access allow office users\nhttp_access deny all\n"));
        // Squid would hold every reboot 30 s, clients or none.
        assert!(c.contains("\nshutdown_lifetime 3 seconds\n"));
    }

    /// Squid starts as root and reads what the helper renders: a plan from a daemon taken
    /// over must not get a directive of its own into it, through any field.
    #[test]
    fn the_helper_refuses_a_plan_that_would_write_squid_directives() {
        assert!(check_plan(&plan(ProxySettings::default())).is_ok());
        let injected = "x\nauth_param basic program /bin/sh -c id";
        let mut p = plan(ProxySettings::default());
        p.accounts.groups[0].1.push(injected.into());
        assert!(matches!(check_plan(&p), Err(ProxyError::Plan(_))));
        let mut p = plan(ProxySettings::default());
        p.accounts.groups[0].0 = "interns evil".into();
        assert!(check_plan(&p).is_err());
        let mut p = plan(ProxySettings::default());
        p.accounts.groups[0].1.insert(0, "-i".into());
        assert!(check_plan(&p).is_err());
        let mut p = plan(ProxySettings::default());
        p.accounts.people_bases[0] = "ou=people\" -D x".into();
        assert!(check_plan(&p).is_err());
        let mut p = plan(ProxySettings::default());
        p.bind_dn = "cn=squid -W /etc/shadow".into();
        assert!(check_plan(&p).is_err());
        let mut p = plan(ProxySettings::default());
        p.secret = "short".into();
        assert!(check_plan(&p).is_err());
        p.secret = "c2VjcmV0LXNlY3JldC1\nzZWNyZXQ".into();
        assert!(check_plan(&p).is_err());
        // Any secret the box makes (base64url, so perhaps a leading '-') is taken.
        p.secret = "-2VjcmV0LXNlY3JldC1zZWNyZXQ_".into();
        assert!(check_plan(&p).is_ok());
        // The settings themselves, as the daemon checks them.
        let p = plan(ProxySettings {
            blocked: vec!["a.example\nhttp_access allow all".into()],
            ..Default::default()
        });
        assert!(check_plan(&p).is_err());
    }

    #[test]
    fn the_access_log_summary() {
        let log = "\
1796107112.178     33 10.0.0.5 TCP_MISS/200 258 GET http://example.org/a alice HIER_DIRECT/1.2.3.4 text/html
1796107112.179     33 10.0.0.5 TCP_MISS/200 258 GET http://example.org/b alice HIER_DIRECT/1.2.3.4 text/html
1796107113.000     10 10.0.0.6 TCP_TUNNEL/200 100 CONNECT www.example.net:443 bob HIER_DIRECT/1.2.3.5 -
1796107115.459   3274 10.0.0.6 TCP_DENIED/407 3488 GET http://example.org/ - HIER_NONE/- text/html
1796107115.469      0 10.0.0.6 TCP_DENIED/403 3423 GET http://www.blocked.example/ bob HIER_NONE/- text/html
garbage
";
        let s = summarize(log, 10, |u| u.to_string());
        assert_eq!((s.requests, s.denied), (5, 1));
        assert_eq!(s.top_users, vec![("alice".into(), 2), ("bob".into(), 1)]);
        assert_eq!(s.top_domains[0], ("example.org".into(), 2));
        assert_eq!(
            s.top_denied_domains,
            vec![("www.blocked.example".into(), 1)]
        );
    }
}
