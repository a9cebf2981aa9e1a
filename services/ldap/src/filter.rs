//! Search filters (RFC 4511 4.5.1.7) evaluated on an entry. Every attribute here is
//! case-insensitive text (caseIgnoreMatch, caseIgnoreSubstringsMatch, caseIgnoreOrderingMatch
//! in the standard schema for uid, cn, mail, objectClass and the rest); an entry without the
//! attribute does not match an assertion on it (so `(!(a=x))` matches it, as OpenLDAP does for
//! attributes its schema knows).

use crate::tree::{Entry, fold};
use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};

fn values<'a>(e: &'a Entry, attr: &str) -> &'a [String] {
    e.get(attr).unwrap_or_default()
}

fn substring(v: &str, f: &LdapSubstringFilter) -> bool {
    let v = fold(v);
    let mut rest = v.as_str();
    if let Some(i) = &f.initial {
        let i = fold(i);
        match rest.strip_prefix(i.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for a in &f.any {
        let a = fold(a);
        match rest.find(a.as_str()) {
            Some(at) => rest = &rest[at + a.len()..],
            None => return false,
        }
    }
    match &f.final_ {
        Some(fin) => rest.ends_with(fold(fin).as_str()),
        None => true,
    }
}

/// Values of the DN's RDNs named `attr` (for extensible matches with dnAttributes).
fn dn_values(dn: &str, attr: &str) -> Vec<String> {
    dn.split(',')
        .filter_map(|rdn| rdn.split_once('='))
        .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.to_string())
        .collect()
}

pub fn matches(f: &LdapFilter, e: &Entry) -> bool {
    match f {
        LdapFilter::And(fs) => fs.iter().all(|f| matches(f, e)),
        LdapFilter::Or(fs) => fs.iter().any(|f| matches(f, e)),
        LdapFilter::Not(f) => !matches(f, e),
        LdapFilter::Present(a) => a.eq_ignore_ascii_case("objectClass") || e.get(a).is_some(),
        LdapFilter::Equality(a, v) => {
            let v = fold(v);
            values(e, a).iter().any(|x| fold(x) == v)
        }
        LdapFilter::Approx(a, v) => {
            let squash = |s: &str| fold(s).split_whitespace().collect::<String>();
            let v = squash(v);
            values(e, a).iter().any(|x| squash(x) == v)
        }
        LdapFilter::Substring(a, s) => values(e, a).iter().any(|x| substring(x, s)),
        LdapFilter::GreaterOrEqual(a, v) => {
            let v = fold(v);
            values(e, a).iter().any(|x| fold(x) >= v)
        }
        LdapFilter::LessOrEqual(a, v) => {
            let v = fold(v);
            values(e, a).iter().any(|x| fold(x) <= v)
        }
        LdapFilter::Extensible(m) => {
            // Only the equality-like rules of our attributes' syntax (or none named).
            let known = m.matching_rule.as_deref().is_none_or(|r| {
                matches!(
                    r.to_ascii_lowercase().as_str(),
                    "caseignorematch" | "2.5.13.2" | "caseexactmatch" | "2.5.13.5"
                )
            });
            if !known {
                return false;
            }
            let exact = m
                .matching_rule
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case("caseExactMatch") || r == "2.5.13.5");
            let eq = |x: &str| {
                if exact {
                    x == m.match_value
                } else {
                    fold(x) == fold(&m.match_value)
                }
            };
            match &m.type_ {
                Some(a) => {
                    values(e, a).iter().any(|x| eq(x))
                        || (m.dn_attributes && dn_values(&e.dn, a).iter().any(|x| eq(x)))
                }
                None => {
                    e.attrs.iter().any(|(_, vs)| vs.iter().any(|x| eq(x)))
                        || (m.dn_attributes
                            && e.dn
                                .split(',')
                                .filter_map(|r| r.split_once('='))
                                .any(|(_, v)| eq(v)))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::parse_ldap_filter_str;

    fn alice() -> Entry {
        Entry {
            dn: "uid=alice,ou=people,dc=example,dc=com".into(),
            attrs: vec![
                ("objectClass", vec!["top".into(), "inetOrgPerson".into()]),
                ("uid", vec!["alice".into()]),
                ("cn", vec!["Alice Martin".into()]),
                (
                    "mail",
                    vec!["alice@example.com".into(), "a.martin@example.com".into()],
                ),
            ],
        }
    }

    fn hit(f: &str) -> bool {
        matches(&parse_ldap_filter_str(f).unwrap(), &alice())
    }

    #[test]
    fn every_filter_type() {
        assert!(
            hit("(|(mail=ali*)(cn=ali*))"),
            "Thunderbird's prefix search"
        );
        assert!(hit("(mail=A.MARTIN@example.com)"));
        assert!(hit("(cn=*mar*)"));
        assert!(hit("(cn=a*ce*tin)"));
        assert!(!hit("(cn=*x*)"));
        assert!(hit("(&(objectClass=inetorgperson)(uid=alice))"));
        assert!(hit("(!(uid=bob))"));
        assert!(!hit("(telephoneNumber=*)"));
        assert!(hit("(objectClass=*)"));
        assert!(hit("(uid>=a)") && hit("(uid<=b)") && !hit("(uid>=b)"));
        assert!(hit("(cn~=alicemartin)"));
        assert!(hit("(uid:caseExactMatch:=alice)") && !hit("(uid:caseExactMatch:=Alice)"));
        assert!(hit("(ou:dn:=people)"));
        assert!(
            !hit("(uid:1.2.3.4:=alice)"),
            "an unknown matching rule matches nothing"
        );
    }
}
