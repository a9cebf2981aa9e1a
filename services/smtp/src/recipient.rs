//! Who an address is: a local user (or several, for a group), another domain's, or nobody.

use bureau_directory::{Directory, DirectoryError, Target, User};

#[derive(Debug)]
pub(crate) enum Resolved {
    /// Our domain: these users get it.
    Local(Vec<User>),
    /// Our domain, but the mailbox is disabled.
    Disabled,
    /// Our domain, no such address.
    Unknown,
    /// Not one of our domains.
    Foreign,
}

/// Splits `local@domain`, lowercased; `None` if that is not its shape.
pub(crate) fn split(address: &str) -> Option<(String, String)> {
    let a = address.trim().to_lowercase();
    let (local, domain) = a.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some((local.to_string(), domain.to_string()))
}

/// The address without its sub-address tag: `user+tag@d` is `user@d`.
pub(crate) fn base_address(local: &str, domain: &str) -> String {
    let base = local.split_once('+').map_or(local, |(b, _)| b);
    format!("{base}@{domain}")
}

pub(crate) fn resolve(dir: &Directory, address: &str) -> Result<Resolved, DirectoryError> {
    let Some((local, domain)) = split(address) else {
        return Ok(Resolved::Unknown);
    };
    let Some(dom) = dir.domain(&domain)? else {
        return Ok(Resolved::Foreign);
    };
    // Quoted local parts and anything else that is not a plain dot-atom never name a mailbox.
    if local.starts_with('"') {
        return Ok(Resolved::Unknown);
    }
    let base = base_address(&local, &domain);
    let target = match dir.resolve(&base)? {
        Some(t) => t,
        None if local == "postmaster" || local == "abuse" => {
            // RFC 5321 4.5.1: postmaster must exist. Without an address of its own it
            // reaches the administrators.
            let admins: Vec<User> = dir
                .users()?
                .into_iter()
                .filter(|u| u.admin && u.enabled)
                .collect();
            return Ok(if admins.is_empty() {
                Resolved::Unknown
            } else {
                Resolved::Local(admins)
            });
        }
        None => match dom
            .catch_all
            .as_deref()
            .map(|u| dir.user(u))
            .transpose()?
            .flatten()
        {
            Some(u) => Target::User(u),
            None => return Ok(Resolved::Unknown),
        },
    };
    Ok(match target {
        Target::User(u) if u.enabled => Resolved::Local(vec![u]),
        Target::User(_) => Resolved::Disabled,
        Target::Group(g) => {
            let mut members = Vec::new();
            for m in &g.members {
                if let Some(u) = dir.user(m)?
                    && u.enabled
                {
                    members.push(u);
                }
            }
            if members.is_empty() {
                Resolved::Disabled
            } else {
                Resolved::Local(members)
            }
        }
    })
}

/// Whether `address` (with or without a +tag) is one of the user's own.
pub(crate) fn owns(user: &User, address: &str) -> bool {
    let Some((local, domain)) = split(address) else {
        return false;
    };
    let base = base_address(&local, &domain);
    user.address == base || user.aliases.contains(&base)
}

/// Who a submitted message says wrote and sent it: every From: and Sender: address must be
/// the user's own (RFC 5322 3.6.2; Sender: is the one who actually sent it).
pub(crate) enum Author {
    /// The first From: address, lower-cased.
    Own(String),
    NoFrom,
    /// The field and the address that is not the user's.
    NotYours(&'static str, String),
}

/// The addresses of a header field, lower-cased.
pub(crate) fn addrs(a: Option<&mail_parser::Address>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(str::to_lowercase)
            .collect()
    })
    .unwrap_or_default()
}

pub(crate) fn author(user: &User, m: Option<&mail_parser::Message>) -> Author {
    let froms = addrs(m.and_then(|m| m.from()));
    let Some(first) = froms.first().cloned() else {
        return Author::NoFrom;
    };
    let senders = addrs(m.and_then(|m| m.sender()));
    for (field, list) in [("From", &froms), ("Sender", &senders)] {
        if let Some(bad) = list.iter().find(|a| !owns(user, a)) {
            log::info!("smtp: {} tried to send with {field}: {bad}", user.uid);
            return Author::NotYours(field, bad.clone());
        }
    }
    Author::Own(first)
}
