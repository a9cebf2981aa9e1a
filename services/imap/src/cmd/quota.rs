//! GETQUOTA and GETQUOTAROOT (RFC 9208).

use crate::response::{Code, Response};
use crate::session::*;
use bureau_store::{Access, StoreError};

impl Session {
    /// GETQUOTAROOT (RFC 9208): the user's own mailboxes share its quota, root "".
    pub(crate) fn quota_root(&mut self, tag: &str, name: &str) {
        let m = match self.find_mailbox(name) {
            Ok(m) => m,
            Err(e) => return self.store_no(tag, e),
        };
        let quota = self
            .quota_now()
            .ok()
            .flatten()
            .filter(|_| m.access == Access::Owner);
        let mailbox = &self.to_wire(&m.name);
        let roots = if quota.is_some() { &[""][..] } else { &[] };
        self.send(Response::QuotaRoot { mailbox, roots });
        if let Some(q) = quota {
            self.send(q);
        }
        self.ok(tag, "GETQUOTAROOT completed");
    }

    pub(crate) fn quota(&mut self, tag: &str) {
        match self.quota_now() {
            Ok(Some(q)) => {
                self.send(q);
                self.ok(tag, "GETQUOTA completed")
            }
            Ok(None) => self.no(tag, Code::NonExistent, "no quota: storage is unlimited"),
            Err(e) => self.store_no(tag, e),
        }
    }

    /// `* QUOTA "" (STORAGE used limit)` in KiB, if the user has a quota.
    fn quota_now(&self) -> Result<Option<Response<'static>>, StoreError> {
        let r = self.reader()?;
        let p = self.principal();
        let Some(limit) = r.principal(p)?.quota else {
            return Ok(None);
        };
        let used = r.usage(p)?;
        Ok(Some(Response::Quota {
            root: "",
            used: used.div_ceil(1024),
            limit: limit / 1024,
        }))
    }
}
