//! `bureau proxy`, `bureau samba` and `bureau service`: the LAN's services (Squid, Samba and
//! LDAP service accounts) through the admin API.

use super::*;

pub(super) async fn run_proxy(out: &Out<'_>, cmd: &ProxyCmd) -> Result<(), CliError> {
    use bureau_daemons::proxy::{Action, GroupRule, ProxySettings, Summary};
    match cmd {
        ProxyCmd::Status => {
            let s: ProxySettings = out
                .call(Method::GET, "/api/v1/proxy", NONE)
                .await?
                .ok_or(CliError::Empty)?;
            let sum: Summary = out
                .call(Method::GET, "/api/v1/proxy/summary", NONE)
                .await?
                .ok_or(CliError::Empty)?;
            #[derive(Serialize)]
            struct Both<'a> {
                settings: &'a ProxySettings,
                summary: &'a Summary,
            }
            let both = Both {
                settings: &s,
                summary: &sum,
            };
            out.print(&both, |b| {
                let list = |v: &[(String, u64)]| {
                    v.iter()
                        .map(|(k, n)| format!("{k} ({n})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "networks: {}\nsign-in: {}\nblocked: {}\nrules: {}\nrequests: {}, refused: {}\ntop users: {}\ntop sites: {}\ntop refused: {}",
                    b.settings.networks.join(" "),
                    if b.settings.authenticate { "yes" } else { "no" },
                    b.settings.blocked.join(" "),
                    b.settings.rules.len(),
                    b.summary.requests,
                    b.summary.denied,
                    list(&b.summary.top_users),
                    list(&b.summary.top_domains),
                    list(&b.summary.top_denied_domains),
                )
            });
        }
        ProxyCmd::Apply {
            networks,
            blocked,
            rules,
            no_auth,
        } => {
            let mut parsed = Vec::new();
            for r in rules {
                let mut parts = r.splitn(3, ':');
                let (Some(group), Some(action), Some(domains)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(BadValue {
                        value: format!("--rule {r:?}"),
                        expected: "GROUP:allow|deny:DOMAIN,DOMAIN",
                    }
                    .into());
                };
                let action = match action {
                    "allow" => Action::Allow,
                    "deny" => Action::Deny,
                    _ => {
                        return Err(BadValue {
                            value: format!("--rule {r:?}"),
                            expected: "the action is allow or deny",
                        }
                        .into());
                    }
                };
                parsed.push(GroupRule {
                    group: group.to_string(),
                    action,
                    domains: domains.split(',').map(str::to_string).collect(),
                });
            }
            let s = ProxySettings {
                networks: if networks.is_empty() {
                    vec!["lan".into()]
                } else {
                    networks.clone()
                },
                authenticate: !no_auth,
                blocked: blocked.clone(),
                rules: parsed,
            };
            let done: ProxyApplied = out
                .call(Method::PUT, "/api/v1/proxy", Some(&s))
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&done, |d| format!("{}: {}", d.config, d.note));
        }
    }
    Ok(())
}

pub(super) async fn run_samba(out: &Out<'_>, cmd: &SambaCmd) -> Result<(), CliError> {
    use bureau_daemons::samba::{SambaSettings, ShareSetting};
    match cmd {
        SambaCmd::Status => {
            let state: SambaState = out
                .call(Method::GET, "/api/v1/samba", NONE)
                .await?
                .ok_or(CliError::Empty)?;
            // smbd's side needs the helper; without it the rest is still worth showing.
            let daemon: serde_json::Value =
                match out.call(Method::GET, "/api/v1/samba/status", NONE).await {
                    Ok(v) => v.unwrap_or_default(),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                };
            let both = serde_json::json!({ "state": state, "smbd": daemon });
            out.print(&both, |_| {
                let s = &state.settings;
                let shares: Vec<String> = s
                    .shares
                    .iter()
                    .map(|sh| format!("{} (group {})", sh.name, sh.group))
                    .collect();
                let last = match &state.last {
                    None => "not since the daemon started".to_string(),
                    Some(o) => match (&o.report, &o.error) {
                        (Some(r), _) => {
                            let mut t = format!(
                                "ok: {} account(s); added {}, changed {}, removed {}",
                                r.users,
                                r.added.len(),
                                r.changed.len(),
                                r.removed.len()
                            );
                            for (who, why) in &r.skipped {
                                t.push_str(&format!("\n  left out {who}: {why}"));
                            }
                            t
                        }
                        (None, e) => format!("failed: {}", e.clone().unwrap_or_default()),
                    },
                };
                let smbd = match daemon.get("running").and_then(|r| r.as_bool()) {
                    Some(true) => format!(
                        "running, {} session(s)",
                        daemon["sessions"].as_array().map_or(0, |a| a.len())
                    ),
                    Some(false) => "not running".into(),
                    None => daemon["error"].as_str().unwrap_or("unknown").to_string(),
                };
                format!(
                    "enabled: {}\nworkgroup: {}\nhome shares: {}\npublic share: {}\nshares: {}\nlast sync: {last}\nsmbd: {smbd}",
                    if s.enabled { "yes" } else { "no" },
                    s.workgroup,
                    if s.homes { "yes" } else { "no" },
                    if s.public { "yes" } else { "no" },
                    if shares.is_empty() { "none".into() } else { shares.join(", ") },
                )
            });
        }
        SambaCmd::Apply {
            workgroup,
            shares,
            no_homes,
            public,
        } => {
            let mut parsed = Vec::new();
            for sh in shares {
                let Some((name, group)) = sh.split_once(':') else {
                    return Err(BadValue {
                        value: format!("--share {sh:?}"),
                        expected: "NAME:GROUP",
                    }
                    .into());
                };
                parsed.push(ShareSetting {
                    name: name.to_string(),
                    group: group.to_string(),
                    comment: String::new(),
                });
            }
            let s = SambaSettings {
                enabled: true,
                workgroup: workgroup.clone(),
                homes: !no_homes,
                public: *public,
                shares: parsed,
            };
            let done: SambaApplied = out
                .call(Method::PUT, "/api/v1/samba", Some(&s))
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&done, |d| {
                let r = &d.report;
                let mut t = format!(
                    "{}: {} account(s) in Samba; added {}, changed {}, removed {}; {}",
                    r.config,
                    r.users,
                    r.added.len(),
                    r.changed.len(),
                    r.removed.len(),
                    if r.reloaded {
                        "smbd reloaded"
                    } else {
                        "smbd not running (it reads it on start)"
                    }
                );
                for (who, why) in &r.skipped {
                    t.push_str(&format!("\nleft out {who}: {why}"));
                }
                t
            });
        }
    }
    Ok(())
}

pub(super) async fn run_service(out: &Out<'_>, cmd: &ServiceCmd) -> Result<(), CliError> {
    let show = |c: &NewServiceCredentials| {
        format!(
            "bind DN:  {}\npassword: {}\n(the password is not shown again)",
            c.bind_dn, c.password
        )
    };
    match cmd {
        ServiceCmd::Add { name, description } => {
            let c: NewServiceCredentials = out
                .call(
                    Method::POST,
                    "/api/v1/services",
                    Some(&NewServiceAccount {
                        name: name.clone(),
                        description: description.clone(),
                    }),
                )
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&c, show);
        }
        ServiceCmd::Reset { name } => {
            let c: NewServiceCredentials = out
                .call(
                    Method::POST,
                    &format!("/api/v1/services/{name}/password"),
                    NONE,
                )
                .await?
                .ok_or(CliError::Empty)?;
            out.print(&c, show);
        }
        ServiceCmd::List => {
            let list: Vec<bureau_directory::service::ServiceAccount> = out
                .call(Method::GET, "/api/v1/services", NONE)
                .await?
                .unwrap_or_default();
            out.print(&list, |l| {
                l.iter()
                    .map(|a| format!("{}\t{}", a.name, a.description))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ServiceCmd::Del { name } => {
            out.call::<()>(Method::DELETE, &format!("/api/v1/services/{name}"), NONE)
                .await?;
            out.done(&format!("deleted service account {name}"));
        }
    }
    Ok(())
}
