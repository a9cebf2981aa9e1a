//! COPY and MOVE (RFC 9051 6.4.7, RFC 6851), with COPYUID (UIDPLUS).

use crate::mailbox::{self};
use crate::response::{Code, Kind};
use crate::session::*;
use bureau_store::{Actor, StoreError};
use imap_codec::imap_types::sequence::SequenceSet;

impl Session {
    /// COPY and MOVE (RFC 6851), answering with COPYUID (RFC 4315).
    pub(crate) async fn copy(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        dest: &str,
        uid: bool,
        moving: bool,
    ) {
        let (coll, read_only) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only),
            _ => return,
        };
        if moving && read_only {
            return self.no(tag, Code::ReadOnly, "mailbox is read-only");
        }
        let target = match self.find_mailbox(dest) {
            Ok(m) => m.coll,
            Err(StoreError::NotFound) if !mailbox::is_shared(dest) => {
                return self.no(tag, Code::TryCreate, "no such mailbox");
            }
            Err(e) => return self.store_no(tag, e),
        };
        let ids: Vec<u64> = self
            .resolve_uids(set, uid)
            .into_iter()
            .map(u64::from)
            .collect();
        let p = self.principal();
        let (src, dst) = (coll, target.id);
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                let mut pairs = Vec::new();
                // Another session expunged some meanwhile: nothing is copied (RFC 9051 6.4.7
                // asks for all or nothing), and the client is told why.
                if ids
                    .iter()
                    .any(|id| matches!(w.item(src, *id), Err(StoreError::NotFound)))
                {
                    return Ok(None);
                }
                for id in &ids {
                    let new = w.copy_item(src, *id, dst)?;
                    if moving {
                        w.delete_item(src, *id)?;
                    }
                    pairs.push((*id, new.id));
                }
                Ok::<_, StoreError>(Some(pairs))
            })
            .await;
        let pairs = match r {
            Ok(Some(p)) => p,
            Ok(None) => {
                return self.no(
                    tag,
                    Code::ExpungeIssued,
                    "some of the messages were expunged meanwhile",
                );
            }
            Err(e) => return self.store_no(tag, e),
        };
        let (from, to): (Vec<u32>, Vec<u32>) =
            pairs.iter().map(|(a, b)| (*a as u32, *b as u32)).unzip();
        let code = (!pairs.is_empty()).then_some(Code::CopyUid {
            validity: target.validity,
            from: &from,
            to: &to,
        });
        if moving {
            // RFC 6851 4.3: COPYUID in an untagged OK, then the expunges.
            if code.is_some() {
                self.untagged(Kind::Ok, code, "moved");
            }
            self.updates(true);
            self.ok(tag, "MOVE completed");
        } else {
            match code {
                Some(code) => self.ok_code(tag, code, "COPY completed"),
                None => self.ok(tag, "COPY completed"),
            }
        }
    }
}
