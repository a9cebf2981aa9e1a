//! The directory as an LDAP tree, built from Bureau's records at each search (an office's
//! few thousand entries take milliseconds):
//!
//! ```text
//! dc=example,dc=com                       dcObject, organization (one naming context per domain)
//!   ou=people    uid=<uid>,ou=people,...  inetOrgPerson: uid, cn, sn, givenName, displayName,
//!                                         mail (primary, then aliases), memberOf
//!   ou=groups    cn=<name>,ou=groups,...  groupOfNames: cn, description, mail, member
//!   ou=contacts  cn=<name>,ou=contacts,.. inetOrgPerson: the company address book's cards
//!                                         that are not users (shared office contacts)
//!   ou=resources uid=<uid>,ou=resources,. inetOrgPerson: rooms and equipment, with
//!                                         employeeType (room, equipment), roomNumber
//!                                         (location) and description (capacity)
//! ```
//!
//! A user is under its primary address's domain; a group under its address's domain, or the
//! first domain when it has none. Password attributes do not exist here at all.

use bureau_directory::{Directory, Group, User};

/// One entry: its DN (normalized) and attributes (names as schema spells them).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub dn: String,
    pub attrs: Vec<(&'static str, Vec<String>)>,
}

impl Entry {
    fn new(dn: String) -> Entry {
        Entry {
            dn,
            attrs: Vec::new(),
        }
    }
    fn add(&mut self, name: &'static str, values: Vec<String>) {
        if !values.is_empty() {
            self.attrs.push((name, values));
        }
    }
    /// The values of an attribute, named in any case.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

pub use bureau_directory::ldap_suffix as suffix;

/// A DN in the form entries are kept: lower-case, no spaces around separators; None if it
/// is not a DN.
pub fn normalize(dn: &str) -> Option<String> {
    if dn.trim().is_empty() {
        return Some(String::new());
    }
    // Split on the commas that are not escaped.
    let mut rdns = vec![String::new()];
    let mut escaped = false;
    for c in dn.chars() {
        match c {
            ',' if !escaped => rdns.push(String::new()),
            c => {
                rdns.last_mut().expect("one at least").push(c);
                escaped = c == '\\' && !escaped;
                continue;
            }
        }
        escaped = false;
    }
    let mut out = Vec::new();
    for rdn in &rdns {
        let (k, v) = rdn.split_once('=')?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return None;
        }
        out.push(format!("{}={}", k.to_ascii_lowercase(), v.to_lowercase()));
    }
    Some(out.join(","))
}

/// Escapes a value for use in a DN (RFC 4514 2.4).
pub fn escape(v: &str) -> String {
    let mut out = String::new();
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == v.chars().count() - 1 => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

pub fn user_dn(u: &User) -> String {
    let domain = u.address.rsplit_once('@').map_or("", |(_, d)| d);
    format!("uid={},ou=people,{}", escape(&u.uid), suffix(domain)).to_lowercase()
}

fn group_dn(g: &Group, first_domain: &str) -> String {
    let domain = g
        .address
        .as_deref()
        .and_then(|a| a.rsplit_once('@'))
        .map_or(first_domain, |(_, d)| d);
    format!("cn={},ou=groups,{}", escape(&g.name), suffix(domain)).to_lowercase()
}

/// Given name and surname from a display name: the first word, the rest.
fn names(display: &str, fallback: &str) -> (Option<String>, String) {
    let words: Vec<&str> = display.split_whitespace().collect();
    match words.as_slice() {
        [] => (None, fallback.to_string()),
        [one] => (None, one.to_string()),
        [first, rest @ ..] => (Some(first.to_string()), rest.join(" ")),
    }
}

fn person_classes() -> Vec<String> {
    ["top", "person", "organizationalPerson", "inetOrgPerson"]
        .map(String::from)
        .to_vec()
}

/// The whole tree, in DN order from the top.
pub fn build(dir: &Directory) -> Result<Vec<Entry>, bureau_directory::DirectoryError> {
    let domains: Vec<String> = dir.domains()?.into_iter().map(|d| d.name).collect();
    let users = dir.users()?;
    let groups = dir.groups()?;
    let first = domains.first().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for d in &domains {
        let base = suffix(d);
        let mut top = Entry::new(base.clone());
        top.add(
            "objectClass",
            vec!["top".into(), "dcObject".into(), "organization".into()],
        );
        top.add("dc", vec![d.split('.').next().unwrap_or(d).to_string()]);
        top.add("o", vec![d.clone()]);
        out.push(top);
        for ou in ["people", "groups", "contacts", "resources"] {
            let mut e = Entry::new(format!("ou={ou},{base}"));
            e.add(
                "objectClass",
                vec!["top".into(), "organizationalUnit".into()],
            );
            e.add("ou", vec![ou.into()]);
            out.push(e);
        }
    }
    for u in users.iter().filter(|u| u.enabled) {
        let mut e = Entry::new(user_dn(u));
        let (given, sn) = names(&u.display_name, &u.uid);
        e.add("objectClass", person_classes());
        e.add("uid", vec![u.uid.clone()]);
        e.add("cn", vec![u.display_name.clone()]);
        e.add("displayName", vec![u.display_name.clone()]);
        e.add("sn", vec![sn]);
        e.add("givenName", given.into_iter().collect());
        e.add(
            "mail",
            std::iter::once(&u.address)
                .chain(&u.aliases)
                .cloned()
                .collect(),
        );
        e.add("telephoneNumber", u.phone.iter().cloned().collect());
        e.add(
            "memberOf",
            groups
                .iter()
                .filter(|g| g.members.contains(&u.uid))
                .map(|g| group_dn(g, &first))
                .collect(),
        );
        out.push(e);
    }
    // Rooms and equipment, as address books list people, so that they can be invited.
    for r in dir.resources()?.iter().filter(|r| r.enabled) {
        let Some(res) = &r.resource else { continue };
        let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
        let mut e = Entry::new(
            format!("uid={},ou=resources,{}", escape(&r.uid), suffix(domain)).to_lowercase(),
        );
        e.add("objectClass", person_classes());
        e.add("uid", vec![r.uid.clone()]);
        e.add("cn", vec![r.display_name.clone()]);
        e.add("displayName", vec![r.display_name.clone()]);
        e.add("sn", vec![r.display_name.clone()]);
        e.add("mail", vec![r.address.clone()]);
        let kind = match res.kind {
            bureau_directory::ResourceKind::Room => "room",
            bureau_directory::ResourceKind::Equipment => "equipment",
        };
        e.add("employeeType", vec![kind.into()]);
        e.add("roomNumber", res.location.iter().cloned().collect());
        e.add(
            "description",
            res.capacity
                .iter()
                .map(|n| format!("{kind} for {n}"))
                .collect(),
        );
        out.push(e);
    }
    let by_uid: std::collections::HashMap<&str, &User> =
        users.iter().map(|u| (u.uid.as_str(), u)).collect();
    for g in &groups {
        let mut e = Entry::new(group_dn(g, &first));
        e.add("objectClass", vec!["top".into(), "groupOfNames".into()]);
        e.add("cn", vec![g.name.clone()]);
        e.add("description", vec![g.display_name.clone()]);
        e.add("mail", g.address.iter().cloned().collect());
        e.add(
            "member",
            g.members
                .iter()
                .filter_map(|m| by_uid.get(m.as_str()))
                .map(|u| user_dn(u))
                .collect(),
        );
        out.push(e);
    }
    for (i, card) in dir.company_contacts()?.into_iter().enumerate() {
        for d in &domains {
            let name = if card.name.is_empty() {
                format!("contact {i}")
            } else {
                card.name.clone()
            };
            let mut e = Entry::new(
                format!("cn={},ou=contacts,{}", escape(&name), suffix(d)).to_lowercase(),
            );
            let (given, sn) = names(&name, &name);
            e.add("objectClass", person_classes());
            e.add("cn", vec![name.clone()]);
            e.add("displayName", vec![name]);
            e.add("sn", vec![sn]);
            e.add("givenName", given.into_iter().collect());
            e.add("mail", card.emails.clone());
            e.add("telephoneNumber", card.phones.clone());
            e.add("o", card.org.iter().cloned().collect());
            out.push(e);
        }
    }
    Ok(out)
}

/// The tree with what answers a search without a scan: entries by DN, and by the value
/// of the attributes clients look people up by (uid, mail, cn), folded.
pub struct Tree {
    pub entries: Vec<Entry>,
    by_dn: std::collections::HashMap<String, usize>,
    by_value: std::collections::HashMap<(&'static str, String), Vec<usize>>,
}

/// The attributes indexed by value.
const INDEXED: [&str; 3] = ["uid", "mail", "cn"];

impl Tree {
    pub fn new(entries: Vec<Entry>) -> Tree {
        let mut by_dn = std::collections::HashMap::with_capacity(entries.len());
        let mut by_value: std::collections::HashMap<(&'static str, String), Vec<usize>> =
            std::collections::HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_dn.insert(e.dn.clone(), i);
            for attr in INDEXED {
                for v in e.get(attr).unwrap_or_default() {
                    by_value.entry((attr, fold(v))).or_default().push(i);
                }
            }
        }
        Tree {
            entries,
            by_dn,
            by_value,
        }
    }

    pub fn get(&self, dn: &str) -> Option<&Entry> {
        self.by_dn.get(dn).map(|i| &self.entries[*i])
    }

    /// The entries that may match `f`, in tree order: from the index when `f` is (or is an
    /// AND holding) an equality on an indexed attribute; else all of them. The filter is
    /// still to be checked on each.
    pub fn candidates(&self, f: &ldap3_proto::proto::LdapFilter) -> Vec<&Entry> {
        match self.indexed(f) {
            Some(mut hits) => {
                hits.sort_unstable();
                hits.dedup();
                hits.into_iter().map(|i| &self.entries[i]).collect()
            }
            None => self.entries.iter().collect(),
        }
    }

    fn indexed(&self, f: &ldap3_proto::proto::LdapFilter) -> Option<Vec<usize>> {
        use ldap3_proto::proto::LdapFilter as F;
        match f {
            F::Equality(a, v) => {
                let attr = INDEXED.into_iter().find(|x| x.eq_ignore_ascii_case(a))?;
                Some(
                    self.by_value
                        .get(&(attr, fold(v)))
                        .cloned()
                        .unwrap_or_default(),
                )
            }
            F::And(fs) => fs.iter().find_map(|f| self.indexed(f)),
            _ => None,
        }
    }
}

/// A value as equality and substring matches compare it (case-insensitive).
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_normalize_and_escape() {
        assert_eq!(
            normalize(" UID=Alice , ou=People,DC=example,dc=COM").unwrap(),
            "uid=alice,ou=people,dc=example,dc=com"
        );
        assert!(normalize("not a dn").is_none());
        assert_eq!(normalize("").unwrap(), "");
        assert_eq!(escape("Smith, John"), "Smith\\, John");
        assert_eq!(
            normalize("cn=Smith\\, John,ou=contacts,dc=x").unwrap(),
            "cn=smith\\, john,ou=contacts,dc=x"
        );
        assert_eq!(suffix("mail.example.org"), "dc=mail,dc=example,dc=org");
        assert_eq!(
            names("Alice van Dijk", "x"),
            (Some("Alice".into()), "van Dijk".into())
        );
    }

    #[test]
    fn equality_on_indexed_attributes_is_looked_up() {
        use ldap3_proto::proto::LdapFilter as F;
        let entry = |dn: &str, uid: &str, mail: &str| {
            let mut e = Entry::new(dn.into());
            e.add("uid", vec![uid.into()]);
            e.add("mail", vec![mail.into()]);
            e
        };
        let t = Tree::new(vec![
            entry("uid=ann,ou=people,dc=x", "ann", "Ann@x.org"),
            entry("uid=bob,ou=people,dc=x", "bob", "bob@x.org"),
        ]);
        let dns = |f: &F| {
            t.candidates(f)
                .iter()
                .map(|e| e.dn.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            dns(&F::Equality("MAIL".into(), "ann@X.org".into())),
            ["uid=ann,ou=people,dc=x"]
        );
        let both = F::And(vec![
            F::Present("objectClass".into()),
            F::Equality("uid".into(), "bob".into()),
        ]);
        assert_eq!(dns(&both), ["uid=bob,ou=people,dc=x"]);
        assert!(dns(&F::Equality("uid".into(), "carol".into())).is_empty());
        // Anything else is checked entry by entry.
        assert_eq!(dns(&F::Present("uid".into())).len(), 2);
        assert!(t.get("uid=bob,ou=people,dc=x").is_some());
    }
}
