//! The office's web proxy: Squid's configuration from the administrator's settings and
//! Bureau's accounts, and a summary of its access log.
//!
//! - Settings (networks allowed, whether users sign in, blocked domains, per-group rules)
//!   live in the store; a change is checked field by field, rendered, and checked by
//!   `squid -k parse` before the running configuration is replaced, so a configuration
//!   Squid rejects is never installed.
//! - Users sign in to the proxy with their Bureau address (or uid) and password: Squid's
//!   `basic_ldap_auth` binds to Bureau's LDAP over TLS as the service account `squid`, finds
//!   the person, and checks the password by binding as them.
//! - Per-group rules list the group's members' names (uid, address, aliases) in a
//!   `proxy_auth` ACL, so Squid needs no group lookup; applying again picks up new members.

use crate::{Invalid, invalid};
use bureau_core::helper::CommandError;
use bureau_core::net::Networks;
use bureau_directory::Directory;
use bureau_store::{Store, StoreError};
use bureau_words::said;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const KEY: &str = "proxy";
/// The service account the proxy binds to LDAP with.
pub const ACCOUNT: &str = "squid";

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

/// What the rendered configuration needs besides the settings.
pub struct Env {
    pub http_port: String,
    pub access_log: PathBuf,
    pub state_dir: PathBuf,
    /// e.g. ldaps://127.0.0.1:636
    pub ldap_url: String,
    pub bind_dn: String,
    pub secret_file: PathBuf,
}

/// The directory's view the rules need: each group's members' login names.
pub struct Accounts {
    /// (group, every name its members sign in with)
    pub groups: Vec<(String, Vec<String>)>,
    /// The naming contexts' people branches, e.g. ou=people,dc=example,dc=com.
    pub people_bases: Vec<String>,
}

impl Accounts {
    pub fn of(dir: &Directory) -> Result<Accounts, bureau_directory::DirectoryError> {
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
        Ok(Accounts {
            groups,
            people_bases,
        })
    }
}

/// Checks the settings field by field (the field names are the API's).
pub fn check(s: &ProxySettings, accounts: &Accounts) -> Result<(), Invalid> {
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

/// Squid's configuration. The settings must have passed `check`.
///
/// `shutdown_lifetime`: Squid stops only after it, clients or none (30 s by default, which
/// every reboot of a box with the proxy on waited; issue 23). Three seconds lets a page being
/// sent finish.
pub fn render(s: &ProxySettings, accounts: &Accounts, env: &Env) -> String {
    let state = env.state_dir.display();
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
            env.bind_dn,
            env.secret_file.display(),
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

    fn accounts() -> Accounts {
        Accounts {
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
            state_dir: "/var/lib/bureau/proxy".into(),
            ldap_url: "ldaps://127.0.0.1:636".into(),
            bind_dn: "cn=squid,ou=services,dc=example,dc=com".into(),
            secret_file: "/etc/squid/bureau-ldap.secret".into(),
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
        let c = render(&ok, &accounts(), &env());
        assert!(
            c.contains("acl blocked dstdomain .facebook.com .tiktok.com\nhttp_access deny blocked")
        );
        assert!(c.contains("acl rule0_who proxy_auth carl carl@example.com"));
        assert!(c.contains("http_access deny office rule0_who rule0_sites"));
        assert!(c.contains(
            "-D cn=squid,ou=services,dc=example,dc=com -W /etc/squid/bureau-ldap.secret"
        ));
        assert!(c.ends_with("http_access allow office users\nhttp_access deny all\n"));
        // Squid would hold every reboot 30 s, clients or none.
        assert!(c.contains("\nshutdown_lifetime 3 seconds\n"));
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
