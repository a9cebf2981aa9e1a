//! GETQUOTA and GETQUOTAROOT (RFC 9208).

use crate::session::*;
use crate::wire;
use bureau_store::{Access, StoreError};

impl Session {
    /// GETQUOTAROOT (RFC 9208): the user's own mailboxes share its quota, root "".
    pub(crate) fn quota_root(&mut self, tag: &str, name: &str) {
        let m = match self.find_mailbox(name) {
            Ok(m) => m,
            Err(e) => return self.store_no(tag, e),
        };
        let mut l = b"* QUOTAROOT ".to_vec();
        wire::string(&mut l, self.to_wire(&m.name).as_bytes());
        let limited = self.quota_line().ok().flatten();
        if m.access == Access::Owner && limited.is_some() {
            l.extend_from_slice(b" \"\"");
        }
        l.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&l);
        if m.access == Access::Owner
            && let Some(q) = limited
        {
            self.line(&q);
        }
        self.ok(tag, "GETQUOTAROOT completed");
    }

    pub(crate) fn quota(&mut self, tag: &str) {
        match self.quota_line() {
            Ok(Some(q)) => {
                self.line(&q);
                self.ok(tag, "GETQUOTA completed")
            }
            Ok(None) => self.no(tag, "[NONEXISTENT] no quota: storage is unlimited"),
            Err(e) => self.store_no(tag, e),
        }
    }

    /// `* QUOTA "" (STORAGE used limit)` in KiB, if the user has a quota.
    pub(crate) fn quota_line(&self) -> Result<Option<String>, StoreError> {
        let r = self.reader()?;
        let p = self.principal();
        let Some(limit) = r.principal(p)?.quota else {
            return Ok(None);
        };
        let used = r.usage(p)?;
        Ok(Some(format!(
            "* QUOTA \"\" (STORAGE {} {})",
            used.div_ceil(1024),
            limit / 1024
        )))
    }
}
