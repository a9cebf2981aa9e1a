//! The commands ext.rs parses: ACL (RFC 4314), SEARCH RETURN, LIST-EXTENDED, MULTIAPPEND.

use crate::ext::Ext;
use crate::mailbox::{self};
use crate::response::{Code, Response};
use crate::session::*;
use bureau_store::Access;
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::{Command, CommandBody};

impl Session {
    /// Commands of the extensions imap-codec does not parse (see ext.rs).
    pub(crate) async fn ext_command(&mut self, tag: &str, ext: Ext) {
        if let Some(why) = crate::state::refusal(crate::state::valid_ext(&ext), self.phase()) {
            return self.bad_cmd(tag, why);
        }
        let name = match &ext {
            Ext::MyRights(n)
            | Ext::GetAcl(n)
            | Ext::ListRights(n, _)
            | Ext::SetAcl(n, ..)
            | Ext::DeleteAcl(n, _)
            | Ext::Append { mailbox: n, .. } => match self.name_in(n) {
                Some(n) => n,
                None => {
                    return self.no(
                        tag,
                        Code::Cannot,
                        "mailbox name is not valid modified UTF-7",
                    );
                }
            },
            Ext::Search { .. } | Ext::List(_) => String::new(),
        };
        match ext {
            Ext::Search { ret, command } => match CommandCodec::default().decode(&command) {
                Ok((
                    _,
                    Command {
                        body:
                            CommandBody::Search {
                                charset,
                                criteria,
                                uid,
                            },
                        ..
                    },
                )) => {
                    if let Some(key) = self.criteria(tag, charset.as_ref(), criteria) {
                        self.search(tag, &key, uid, Some(ret))
                    }
                }
                _ => self.bad_cmd(tag, "syntax error"),
            },
            Ext::List(l) => self.list(tag, &l),
            Ext::Append { messages, .. } => self.append(tag, &name, messages).await,
            Ext::MyRights(_) => match self.find_mailbox(&name) {
                Ok(m) => {
                    let mailbox = &self.to_wire(&m.name);
                    let rights = mailbox::rights(m.access);
                    self.send(Response::MyRights { mailbox, rights });
                    self.ok(tag, "MYRIGHTS completed")
                }
                Err(e) => self.store_no(tag, e),
            },
            Ext::GetAcl(_) => self.get_acl(tag, &name),
            Ext::ListRights(_, who) => match self.find_mailbox(&name) {
                Ok(m) if m.access == Access::Owner => {
                    let mailbox = &self.to_wire(&m.name);
                    let owner = self.user().is_some_and(|u| u.uid == who);
                    // The owner holds every right; others get the store's levels: "lrs",
                    // then the write rights.
                    let (required, optional) = if owner {
                        (mailbox::ALL_RIGHTS, &[][..])
                    } else {
                        ("", &["lrs", "wiptecd"][..])
                    };
                    let who = &who;
                    self.send(Response::ListRights {
                        mailbox,
                        who,
                        required,
                        optional,
                    });
                    self.ok(tag, "LISTRIGHTS completed")
                }
                Ok(_) => self.no(tag, Code::NoPerm, crate::cmd::acl::OWNER_ONLY),
                Err(e) => self.store_no(tag, e),
            },
            Ext::SetAcl(_, who, rights) => self.set_acl(tag, &name, &who, Some(&rights)).await,
            Ext::DeleteAcl(_, who) => self.set_acl(tag, &name, &who, None).await,
        }
    }
}
