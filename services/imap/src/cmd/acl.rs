//! GETACL and SETACL/DELETEACL (RFC 4314) over the store's grants.

use crate::mailbox::{self};
use crate::response::{Code, Response};
use crate::session::*;
use bureau_store::{Access, Actor, StoreError};

/// Why a sharee is refused ACL commands.
pub(crate) const OWNER_ONLY: &str = "only the owner administers this mailbox";

impl Session {
    /// GETACL (RFC 4314 3.3): the owner's rights and each grant's.
    pub(crate) fn get_acl(&mut self, tag: &str, name: &str) {
        let acl = self.reader().and_then(|r| {
            let m = mailbox::find(&r, self.principal(), name)?;
            let mut entries = vec![(
                r.principal(m.coll.owner)?.name,
                mailbox::rights(Access::Owner),
            )];
            for (who, right) in r.grants(m.coll.id)? {
                entries.push((r.principal(who)?.name, mailbox::rights(right.access())));
            }
            Ok((m.name, entries))
        });
        match acl {
            Ok((name, entries)) => {
                let mailbox = &self.to_wire(&name);
                let entries = &entries;
                self.send(Response::Acl { mailbox, entries });
                self.ok(tag, "GETACL completed")
            }
            // Grants are the owner's to read: a sharee is told it may not.
            Err(StoreError::Forbidden) => self.no(tag, Code::NoPerm, OWNER_ONLY),
            Err(e) => self.store_no(tag, e),
        }
    }

    /// SETACL and DELETEACL (RFC 4314 3.1, 3.2): `rights` with an optional leading + or -
    /// that adds to or takes from the current ones; `None` removes the grant.
    pub(crate) async fn set_acl(&mut self, tag: &str, name: &str, who: &str, rights: Option<&str>) {
        if who.starts_with('-') {
            return self.no(tag, Code::Cannot, "negative rights are not supported");
        }
        if let Some(r) = rights
            && r.trim_start_matches(['+', '-'])
                .chars()
                .any(|c| !mailbox::ALL_RIGHTS.contains(c))
        {
            return self.bad_cmd(tag, "unknown right");
        }
        let target = self.reader().and_then(|r| {
            let m = mailbox::find(&r, self.principal(), name)?;
            let grantee = r.principal_by_name(who)?;
            let current = r
                .grants(m.coll.id)?
                .into_iter()
                .find(|g| g.0 == grantee.id)
                .map_or("", |g| mailbox::rights(g.1.access()));
            Ok((m.coll.id, grantee.id, current.to_string()))
        });
        let (coll, grantee, current) = match target {
            Ok(t) => t,
            Err(StoreError::Forbidden) => {
                return self.no(tag, Code::NoPerm, OWNER_ONLY);
            }
            Err(StoreError::NotFound) => {
                return self.no(tag, Code::NonExistent, "no such mailbox, user or group");
            }
            Err(e) => return self.store_no(tag, e),
        };
        let wanted: String = match rights {
            None => String::new(),
            Some(r) if r.starts_with('+') => format!("{current}{}", &r[1..]),
            Some(r) if r.starts_with('-') => {
                current.chars().filter(|c| !r[1..].contains(*c)).collect()
            }
            Some(r) => r.to_string(),
        };
        let right = match mailbox::right_for(&wanted) {
            Ok(r) => r,
            Err(why) => return self.no(tag, Code::NoPerm, &why.to_string()),
        };
        let r = self
            .db()
            .write(Actor::Principal(self.principal()), vec![], move |w| {
                w.grant(coll, grantee, right)
            })
            .await;
        match r {
            Ok(()) => self.ok(
                tag,
                if rights.is_some() {
                    "SETACL completed"
                } else {
                    "DELETEACL completed"
                },
            ),
            Err(StoreError::Forbidden) => self.no(tag, Code::NoPerm, OWNER_ONLY),
            Err(e) => self.store_no(tag, e),
        }
    }
}
