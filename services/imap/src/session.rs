//! One IMAP connection. The state is an enum owning its data; `command` decides which
//! commands each state accepts, in one place.

use crate::args::{list_pattern, mailbox_bytes, message_bytes};
use crate::ext::{AppendMsg, ListExt};
use crate::mailbox::{self, Mbox};
use crate::response::{Code, Item as FetchItem, Kind, Response};
use crate::state;
use crate::uidmap::UidMap;
use crate::{Ctx, wire};
use base64::Engine;
use bureau_core::net::Stream;
use bureau_core::shutdown::Shutdown;
use bureau_directory::User;
use bureau_store::{Access, Actor, CollectionId, Item, StoreError};
use imap_codec::CommandCodec;
use imap_codec::fragmentizer::{
    DecodeMessageError, FragmentInfo, Fragmentizer, LiteralAnnouncement,
};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::LiteralMode;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const SEEN: &str = "\\Seen";
const UNAUTH_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A message that matched a search.
pub(crate) struct Hit {
    pub seq: u32,
    pub item: Item,
    /// The message, when the caller asked for it.
    pub content: Vec<u8>,
}

/// The selected mailbox as this session knows it.
pub(crate) struct Selected {
    pub(crate) coll: CollectionId,
    pub(crate) read_only: bool,
    /// The user's access; below read-write only \Seen may change, and it is the user's own.
    pub(crate) access: Access,
    /// \Seen is the user's own, not the owner's flag (a mailbox shared with the user).
    pub(crate) private_seen: bool,
    /// UIDs by message sequence number (index + 1), ascending.
    pub(crate) uids: UidMap,
    /// The collection's modseq this view reflects.
    pub(crate) modseq: u64,
    /// Messages changed after `modseq` whose flags this session has already told (by UID,
    /// at the modseq told), so that catching up with the change log does not repeat them.
    pub(crate) told: HashMap<u32, u64>,
    /// The keywords the client was told in FLAGS (RFC 9051 7.3.5): one set or used later is
    /// announced again before a FETCH shows it.
    pub(crate) keywords: Vec<String>,
    /// UIDs recent in this session (\\Recent, IMAP4rev1 only), ascending.
    pub(crate) recent: Vec<u32>,
}

const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

impl Selected {
    /// A message's flags as this session shows them: with \\Recent if it is recent here.
    pub(crate) fn flag_list(&self, uid: u64, flags: &[String]) -> String {
        let mut l = flags.join(" ");
        if u32::try_from(uid).is_ok_and(|u| self.recent.binary_search(&u).is_ok()) {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str("\\Recent");
        }
        l
    }

    /// FLAGS and PERMANENTFLAGS as this session may use them.
    pub(crate) fn flag_lines(&self, out: &mut Vec<u8>) {
        let mut all = SYSTEM_FLAGS.to_string();
        for k in &self.keywords {
            all.push(' ');
            all.push_str(k);
        }
        let permanent = if self.read_only {
            String::new()
        } else if self.access >= Access::ReadWrite {
            format!("{all} \\*")
        } else {
            "\\Seen".into()
        };
        Response::Flags(&all).encode(out);
        let code = Code::PermanentFlags(&permanent);
        Response::untagged(Kind::Ok, Some(code), "flags permitted").encode(out);
    }

    /// Takes in the keywords among `flags`; whether any was new.
    pub(crate) fn learn_keywords<'a>(
        &mut self,
        flags: impl IntoIterator<Item = &'a String>,
    ) -> bool {
        let mut new = false;
        for f in flags {
            if !f.starts_with('\\') && !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
                self.keywords.push(f.clone());
                new = true;
            }
        }
        new
    }

    /// The sequence number of a UID in this view.
    pub(crate) fn seq(&self, uid: u64) -> Option<usize> {
        self.uids.seq(u32::try_from(uid).ok()?)
    }

    /// Notes that the client was told `uid`'s flags as of `modseq`.
    pub(crate) fn told(&mut self, uid: u64, modseq: u64) {
        if modseq > self.modseq {
            self.told.insert(uid as u32, modseq);
        }
    }
}

pub(crate) enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Selected),
    Logout,
}

pub(crate) struct Session {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) peer: SocketAddr,
    pub(crate) stream: Option<Stream>,
    pub(crate) shutdown: Shutdown,
    pub(crate) state: State,
    pub(crate) out: Vec<u8>,
    pub(crate) bad: u32,
    /// CONDSTORE (RFC 7162) is in use: flag changes carry MODSEQ.
    pub(crate) condstore: bool,
    /// QRESYNC is enabled: expunges are told as VANISHED.
    pub(crate) qresync: bool,
    /// IMAP4rev2 is enabled (RFC 9051): UTF-8 mailbox names, ESEARCH answers, no \Recent.
    pub(crate) rev2: bool,
    /// Bytes received and not yet part of a whole command: a client that pipelined another
    /// command is not sent EXPUNGE before it (RFC 9051 5.5, 7.5.1), since that command's
    /// sequence numbers were meant for the view it had.
    pub(crate) unread: usize,
}

pub(crate) fn mailbox_name(m: &Mailbox) -> String {
    match m {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.inner().as_ref()).into_owned(),
    }
}

/// The mailbox names a command carries.
pub(crate) fn mailbox_args<'a>(body: &'a CommandBody) -> Vec<&'a Mailbox<'a>> {
    match body {
        CommandBody::Select { mailbox, .. }
        | CommandBody::Examine { mailbox, .. }
        | CommandBody::Status { mailbox, .. }
        | CommandBody::Create { mailbox }
        | CommandBody::Delete { mailbox }
        | CommandBody::Append { mailbox, .. }
        | CommandBody::GetQuotaRoot { mailbox }
        | CommandBody::Subscribe { mailbox }
        | CommandBody::Unsubscribe { mailbox }
        | CommandBody::Copy { mailbox, .. }
        | CommandBody::Move { mailbox, .. } => vec![mailbox],
        CommandBody::Rename { from, to } => vec![from, to],
        _ => Vec::new(),
    }
}

pub(crate) fn imap_flag(f: &Flag) -> String {
    f.to_string()
}

impl Session {
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        peer: SocketAddr,
        stream: Stream,
        shutdown: Shutdown,
    ) -> Session {
        Session {
            ctx,
            peer,
            stream: Some(stream),
            shutdown,
            state: State::NotAuthenticated,
            out: Vec::new(),
            bad: 0,
            condstore: false,
            qresync: false,
            rev2: false,
            unread: 0,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    /// Queues a response; `flush` sends what is queued.
    pub(crate) fn send(&mut self, r: Response) {
        r.encode(&mut self.out);
    }

    /// An untagged OK, NO, BAD or BYE.
    pub(crate) fn untagged(&mut self, kind: Kind, code: Option<Code>, text: &str) {
        self.send(Response::untagged(kind, code, text));
    }

    pub(crate) async fn flush(&mut self) -> bool {
        let Some(s) = self.stream.as_mut() else {
            return false;
        };
        let ok = s.write_all(&self.out).await.is_ok() && s.flush().await.is_ok();
        self.out.clear();
        // A large answer (a whole mailbox's envelopes) is not kept for the idle hours after.
        self.out.shrink_to(64 * 1024);
        ok
    }

    pub(crate) fn capabilities(&self) -> String {
        let append_limit = bureau_core::limits::get().imap_command_bytes;
        let mut c = format!(
            "IMAP4rev1 IMAP4rev2 SASL-IR UNSELECT LITERAL+ IDLE UIDPLUS MOVE NAMESPACE ID ENABLE CHILDREN \
             CONDSTORE QRESYNC ESEARCH SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES \
             LIST-EXTENDED LIST-STATUS SPECIAL-USE MULTIAPPEND APPENDLIMIT={append_limit} \
             ACL RIGHTS=texk QUOTA QUOTA=RES-STORAGE BINARY STATUS=SIZE"
        );
        if self.is_tls() {
            c.push_str(" AUTH=PLAIN");
        } else {
            c.push_str(" STARTTLS LOGINDISABLED");
        }
        c
    }

    pub(crate) async fn run(mut self) {
        let caps = self.capabilities();
        let text = format!("{} Bureau IMAP ready", self.ctx.hostname);
        self.untagged(Kind::Ok, Some(Code::Capability(&caps)), &text);
        if !self.flush().await {
            return;
        }
        let mut frag = Fragmentizer::new(bureau_core::limits::get().imap_command_bytes);
        // Every idle connection holds it: small (TLS records already sit decrypted in
        // rustls's buffer; a large literal is read in more calls).
        let mut buf = vec![0u8; 4 * 1024];
        loop {
            // Take every complete command already received.
            match frag.progress() {
                Some(FragmentInfo::Line {
                    announcement: Some(LiteralAnnouncement { mode, length }),
                    ..
                }) => {
                    let max = bureau_core::limits::get().imap_command_bytes;
                    if length > max {
                        // A synchronizing literal is refused before it is sent (RFC 7889
                        // TOOBIG); one already on its way cannot be, so the session ends.
                        if mode == LiteralMode::NonSync {
                            self.untagged(Kind::Bye, None, "literal too large");
                            self.flush().await;
                            return;
                        }
                        let tag = frag
                            .decode_tag()
                            .map(|t| t.inner().to_string())
                            .unwrap_or_else(|| "*".into());
                        self.no(&tag, Code::TooBig, &format!("literal over {max} bytes"));
                        if !self.flush().await {
                            return;
                        }
                        frag = Fragmentizer::new(max);
                        self.unread = 0;
                        continue;
                    }
                    if mode == LiteralMode::Sync {
                        self.send(Response::Continue("Ready for literal data"));
                        if !self.flush().await {
                            return;
                        }
                    }
                    continue;
                }
                Some(_) if frag.is_message_complete() => {
                    self.unread = self.unread.saturating_sub(frag.message_bytes().len());
                    let parsed = frag
                        .decode_message(&CommandCodec::default())
                        .map(|c| c.into_static());
                    match parsed {
                        Ok(cmd) => {
                            if !self.command(cmd, &mut frag, &mut buf).await {
                                self.flush().await;
                                return;
                            }
                        }
                        Err(e) => match crate::ext::parse(frag.message_bytes()) {
                            Some((tag, ext)) => self.ext_command(&tag, ext).await,
                            None => {
                                let tag = frag
                                    .decode_tag()
                                    .map(|t| t.inner().to_string())
                                    .unwrap_or_else(|| "*".into());
                                let why = match e {
                                    DecodeMessageError::MessageTooLong { .. } => {
                                        // Its bytes were dropped, not counted out.
                                        self.unread = 0;
                                        "command too long"
                                    }
                                    _ => "syntax error",
                                };
                                self.bad_cmd(&tag, why);
                                if self.bad > bureau_core::limits::get().imap_bad_commands {
                                    self.untagged(Kind::Bye, None, "too many errors");
                                    self.flush().await;
                                    return;
                                }
                            }
                        },
                    }
                    if !self.flush().await || matches!(self.state, State::Logout) {
                        return;
                    }
                    continue;
                }
                Some(_) => continue,
                None => {}
            }
            let timeout = if matches!(self.state, State::NotAuthenticated) {
                UNAUTH_TIMEOUT
            } else {
                AUTH_TIMEOUT
            };
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            let read = tokio::select! {
                r = tokio::time::timeout(timeout, stream.read(&mut buf)) => r,
                _ = self.shutdown.signalled() => {
                    self.untagged(Kind::Bye, None, "server shutting down");
                    self.flush().await;
                    return;
                }
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => {
                    self.unread += n;
                    frag.enqueue_bytes(&buf[..n]);
                }
                Err(_) => {
                    self.untagged(Kind::Bye, None, "autologout; idle too long");
                    self.flush().await;
                    return;
                }
            }
        }
    }

    fn tagged(&mut self, tag: &str, kind: Kind, code: Option<Code>, text: &str) {
        self.send(Response::Status {
            tag: Some(tag),
            kind,
            code,
            text,
        });
    }
    pub(crate) fn ok(&mut self, tag: &str, text: &str) {
        self.tagged(tag, Kind::Ok, None, text);
    }
    pub(crate) fn ok_code(&mut self, tag: &str, code: Code, text: &str) {
        self.tagged(tag, Kind::Ok, Some(code), text);
    }
    /// Every NO says why in a response code (RFC 5530) as well as in words.
    pub(crate) fn no(&mut self, tag: &str, code: Code, text: &str) {
        self.tagged(tag, Kind::No, Some(code), text);
    }
    pub(crate) fn bad_cmd(&mut self, tag: &str, text: &str) {
        self.bad += 1;
        self.tagged(tag, Kind::Bad, None, text);
    }

    pub(crate) fn store_no(&mut self, tag: &str, e: StoreError) {
        match e {
            StoreError::NotFound => self.no(tag, Code::NonExistent, "no such mailbox"),
            StoreError::Forbidden => self.no(tag, Code::NoPerm, "not allowed"),
            StoreError::Exists(_) => self.no(tag, Code::AlreadyExists, "mailbox exists"),
            StoreError::OverQuota => self.no(tag, Code::OverQuota, "quota exceeded"),
            StoreError::DiskFull(_) => self.no(tag, Code::Limit, "disk full, try later"),
            e if e.is_internal() => {
                log::error!("imap: store failure: {e}");
                self.no(tag, Code::ServerBug, "internal error")
            }
            e => self.no(tag, Code::Cannot, &e.to_string()),
        }
    }

    /// A mailbox name as the store keeps it (UTF-8) from the client's form: modified UTF-7
    /// (RFC 3501 5.1.3) unless IMAP4rev2 is enabled. None: not valid modified UTF-7.
    pub(crate) fn name_in(&self, name: &str) -> Option<String> {
        if self.rev2 {
            Some(name.to_string())
        } else {
            wire::mutf7_decode(name)
        }
    }

    /// A command's mailbox argument, already checked by `name_in`.
    pub(crate) fn name_arg(&self, m: &Mailbox) -> String {
        let raw = mailbox_name(m);
        self.name_in(&raw).unwrap_or(raw)
    }

    /// A LIST or LSUB pattern in the store's form (left as sent if it does not decode).
    pub(crate) fn pattern_in(&self, pattern: &[u8]) -> Vec<u8> {
        let raw = String::from_utf8_lossy(pattern);
        self.name_in(&raw)
            .map_or_else(|| pattern.to_vec(), String::into_bytes)
    }

    /// A mailbox name in the client's form.
    pub(crate) fn to_wire(&self, name: &str) -> String {
        if self.rev2 {
            name.to_string()
        } else {
            wire::mutf7_encode(name)
        }
    }

    /// The state as the command table knows it.
    /// A CONDSTORE-enabling command (RFC 7162 3.1): the first one in a session with a mailbox
    /// selected is answered with the mailbox's HIGHESTMODSEQ as the session knows it.
    pub(crate) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let State::Selected(_, s) = &self.state {
            let code = Code::HighestModSeq(s.modseq);
            self.untagged(Kind::Ok, Some(code), "CONDSTORE enabled");
        }
    }

    /// Announces keywords among `flags` the client was not told yet, before it sees them.
    pub(crate) fn announce_keywords(&mut self, flags: &[String]) {
        let State::Selected(_, s) = &mut self.state else {
            return;
        };
        if s.learn_keywords(flags) {
            s.flag_lines(&mut self.out);
        }
    }

    pub(crate) fn phase(&self) -> state::Phase {
        match &self.state {
            State::NotAuthenticated | State::Logout => state::Phase::NotAuthenticated,
            State::Authenticated(_) => state::Phase::Authenticated,
            State::Selected(..) => state::Phase::Selected,
        }
    }

    pub(crate) fn user(&self) -> Option<&User> {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => Some(u),
            _ => None,
        }
    }

    /// Handles one command; false ends the connection.
    pub(crate) async fn command(
        &mut self,
        cmd: Command<'static>,
        frag: &mut Fragmentizer,
        buf: &mut [u8],
    ) -> bool {
        let tag = cmd.tag.inner().to_string();
        if let Some(why) = state::refusal(state::valid(&cmd.body), self.phase()) {
            self.bad_cmd(&tag, why);
            return true;
        }
        if mailbox_args(&cmd.body)
            .iter()
            .any(|m| self.name_in(&mailbox_name(m)).is_none())
        {
            self.no(
                &tag,
                Code::Cannot,
                "mailbox name is not valid modified UTF-7",
            );
            return true;
        }
        match cmd.body {
            CommandBody::Capability => {
                let c = self.capabilities();
                self.send(Response::Capability(&c));
                self.ok(&tag, "CAPABILITY completed");
            }
            CommandBody::Noop => {
                self.updates(true);
                self.ok(&tag, "NOOP completed");
            }
            CommandBody::Logout => {
                self.untagged(Kind::Bye, None, "logging out");
                self.ok(&tag, "LOGOUT completed");
                self.state = State::Logout;
            }
            CommandBody::StartTLS => return self.starttls(&tag, frag).await,
            CommandBody::Login { username, password } => {
                let login = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pw = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                self.login(&tag, &login, &pw).await;
            }
            CommandBody::Authenticate {
                mechanism: AuthMechanism::Plain,
                initial_response,
            } => {
                return self
                    .authenticate_plain(&tag, initial_response, frag, buf)
                    .await;
            }
            CommandBody::Authenticate { .. } => {
                self.no(&tag, Code::Cannot, "mechanism not supported")
            }
            CommandBody::Idle => {
                if !self.idle(&tag, frag, buf).await {
                    return false;
                }
            }
            CommandBody::Enable { capabilities } => self.enable(&tag, capabilities.as_ref()),
            body => self.mailbox_command(&tag, body).await,
        }
        true
    }

    /// The commands about mailboxes, and the rest to `message_command`.
    async fn mailbox_command(&mut self, tag: &str, body: CommandBody<'static>) {
        match body {
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(tag, &self.name_arg(&mailbox), false, &parameters),
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(tag, &self.name_arg(&mailbox), true, &parameters),
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let l = ListExt {
                    reference: mailbox_bytes(&reference),
                    patterns: vec![match &mailbox_wildcard {
                        ListMailbox::Token(t) => t.as_ref().to_vec(),
                        ListMailbox::String(s) => s.as_ref().to_vec(),
                    }],
                    ..Default::default()
                };
                self.list(tag, &l)
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(tag, &self.name_arg(&mailbox), &item_names),
            CommandBody::Create { mailbox } => {
                let name = self.name_arg(&mailbox).trim_end_matches('/').to_string();
                self.create(tag, name).await;
            }
            CommandBody::Delete { mailbox } => {
                let name = self.name_arg(&mailbox);
                if name.eq_ignore_ascii_case("INBOX") {
                    self.no(tag, Code::Cannot, "INBOX cannot be deleted");
                } else {
                    self.delete(tag, &name).await;
                }
            }
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let msg = AppendMsg {
                    flags: flags.iter().map(imap_flag).collect(),
                    date: date.map(|d| d.as_ref().timestamp()),
                    data: message_bytes(&message),
                };
                self.append(tag, &self.name_arg(&mailbox), vec![msg]).await;
            }
            CommandBody::Namespace => {
                let shared = format!("{}/", mailbox::SHARED);
                self.send(Response::Namespace([Some(""), Some(&shared), None]));
                self.ok(tag, "NAMESPACE completed");
            }
            CommandBody::Id { .. } => {
                let v = env!("CARGO_PKG_VERSION");
                self.send(Response::Id(&[("name", "Bureau"), ("version", v)]));
                self.ok(tag, "ID completed");
            }
            CommandBody::GetQuotaRoot { mailbox } => self.quota_root(tag, &self.name_arg(&mailbox)),
            CommandBody::GetQuota { root } => {
                let root = String::from_utf8_lossy(root.as_ref()).into_owned();
                if root.is_empty() {
                    self.quota(tag)
                } else {
                    self.no(tag, Code::NonExistent, "no such quota root")
                }
            }
            CommandBody::SetQuota { .. } => {
                self.no(tag, Code::NoPerm, "quotas are set by the administrator")
            }
            CommandBody::Subscribe { mailbox } => {
                self.subscribe(tag, &self.name_arg(&mailbox), true).await
            }
            CommandBody::Unsubscribe { mailbox } => {
                self.subscribe(tag, &self.name_arg(&mailbox), false).await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.lsub(tag, &list_pattern(&reference, &mailbox_wildcard)),
            CommandBody::Rename { from, to } => {
                self.rename(tag, &self.name_arg(&from), &self.name_arg(&to))
                    .await
            }
            body => self.message_command(tag, body).await,
        }
    }

    /// The commands about the selected mailbox's messages.
    async fn message_command(&mut self, tag: &str, body: CommandBody<'static>) {
        match body {
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(tag, &sequence_set, &macro_or_item_names, uid, &modifiers)
                    .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let unchanged_since = modifiers
                    .iter()
                    .map(|StoreModifier::UnchangedSince(v)| *v)
                    .next();
                self.store(
                    tag,
                    &sequence_set,
                    kind,
                    response,
                    flags.iter().map(imap_flag).collect(),
                    uid,
                    unchanged_since,
                )
                .await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                if let Some(key) = self.criteria(tag, charset.as_ref(), criteria) {
                    self.search(tag, &key, uid, None);
                }
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                if let Some(key) = self.criteria(tag, Some(&charset), search_criteria) {
                    self.sort(tag, sort_criteria.as_ref(), &key, uid);
                }
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                if let Some(key) = self.criteria(tag, Some(&charset), search_criteria) {
                    self.thread(tag, &algorithm, &key, uid);
                }
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(tag, &sequence_set, &self.name_arg(&mailbox), uid, false)
                    .await
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(tag, &sequence_set, &self.name_arg(&mailbox), uid, true)
                    .await
            }
            CommandBody::ExpungeUid { sequence_set } => {
                let uids = self.resolve_uids(&sequence_set, true);
                match self.expunge(Some(uids)).await {
                    Ok(()) => self.ok(tag, "UID EXPUNGE completed"),
                    Err(e) => self.store_no(tag, e),
                }
            }
            CommandBody::Expunge => match self.expunge(None).await {
                Ok(()) => self.ok(tag, "EXPUNGE completed"),
                Err(e) => self.store_no(tag, e),
            },
            CommandBody::Close => {
                // RFC 3501 6.4.2: removed without untagged EXPUNGE responses.
                let _ = self.remove_deleted(None).await;
                self.deselect();
                self.ok(tag, "CLOSE completed");
            }
            CommandBody::Unselect => {
                self.deselect();
                self.ok(tag, "UNSELECT completed");
            }
            CommandBody::Check => {
                self.updates(true);
                self.ok(tag, "CHECK completed");
            }
            _ => self.bad_cmd(tag, "command not supported"),
        }
    }

    /// STARTTLS: OK, then the handshake on the same connection; false ends it.
    async fn starttls(&mut self, tag: &str, frag: &mut Fragmentizer) -> bool {
        if self.is_tls() {
            self.bad_cmd(tag, "TLS already active");
            return true;
        }
        self.ok(tag, "begin TLS negotiation now");
        if !self.flush().await {
            return false;
        }
        // Anything pipelined after STARTTLS arrived in the clear: dropped.
        *frag = Fragmentizer::new(bureau_core::limits::get().imap_command_bytes);
        let Some(plain) = self.stream.take() else {
            return false;
        };
        match tokio::time::timeout(Duration::from_secs(30), plain.into_tls(&self.ctx.tls)).await {
            Ok(Ok(tls)) => {
                self.stream = Some(tls);
                true
            }
            _ => false,
        }
    }

    /// AUTHENTICATE PLAIN (RFC 4616), its response given at once or after a continuation;
    /// false ends the connection.
    async fn authenticate_plain(
        &mut self,
        tag: &str,
        initial_response: Option<
            imap_codec::imap_types::secret::Secret<std::borrow::Cow<'static, [u8]>>,
        >,
        frag: &mut Fragmentizer,
        buf: &mut [u8],
    ) -> bool {
        let data = match initial_response {
            Some(r) => r.declassify().to_vec(),
            None => {
                self.send(Response::Continue(""));
                if !self.flush().await {
                    return false;
                }
                let Some(l) = self.read_line(frag, buf).await else {
                    return false;
                };
                match base64::engine::general_purpose::STANDARD.decode(l.trim_ascii()) {
                    Ok(d) => d,
                    Err(_) => {
                        self.bad_cmd(tag, "invalid base64");
                        return true;
                    }
                }
            }
        };
        let parts: Vec<&[u8]> = data.split(|b| *b == 0).collect();
        if parts.len() != 3 || (!parts[0].is_empty() && parts[0] != parts[1]) {
            self.no(tag, Code::AuthenticationFailed, "malformed PLAIN response");
        } else {
            let (l, p) = (
                String::from_utf8_lossy(parts[1]).into_owned(),
                String::from_utf8_lossy(parts[2]).into_owned(),
            );
            self.login(tag, &l, &p).await;
        }
        true
    }

    /// ENABLE (RFC 5161): CONDSTORE, QRESYNC (which implies it, RFC 7162 3.2.3) and
    /// IMAP4rev2; others are left off.
    fn enable(
        &mut self,
        tag: &str,
        capabilities: &[imap_codec::imap_types::extensions::enable::CapabilityEnable],
    ) {
        let mut enabled = Vec::new();
        for c in capabilities {
            let name = match c.to_string().to_ascii_uppercase().as_str() {
                "CONDSTORE" => {
                    self.condstore = true;
                    "CONDSTORE"
                }
                "QRESYNC" => {
                    (self.condstore, self.qresync) = (true, true);
                    "QRESYNC"
                }
                "IMAP4REV2" => {
                    self.rev2 = true;
                    "IMAP4rev2"
                }
                _ => continue,
            };
            enabled.push(name);
        }
        self.send(Response::Enabled(&enabled));
        self.ok(tag, "ENABLE completed");
    }

    /// One raw line from the client (AUTHENTICATE continuation, IDLE's DONE).
    pub(crate) async fn read_line(
        &mut self,
        frag: &mut Fragmentizer,
        buf: &mut [u8],
    ) -> Option<Vec<u8>> {
        loop {
            if let Some(info) = frag.progress() {
                if frag.is_message_complete() {
                    let mut l = frag.message_bytes().to_vec();
                    self.unread = self.unread.saturating_sub(l.len());
                    while l.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        l.pop();
                    }
                    return Some(l);
                }
                let _ = info;
                continue;
            }
            let stream = self.stream.as_mut()?;
            match tokio::time::timeout(AUTH_TIMEOUT, stream.read(buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    self.unread += n;
                    frag.enqueue_bytes(&buf[..n]);
                }
                _ => return None,
            }
        }
    }

    pub(crate) fn principal(&self) -> u64 {
        self.user().map_or(0, |u| u.principal)
    }

    pub(crate) fn reader(&self) -> Result<bureau_store::Reader, StoreError> {
        self.db().reader(Actor::Principal(self.principal()))
    }

    /// The mailbox the user names, own or shared with it.
    pub(crate) fn find_mailbox(&self, name: &str) -> Result<Mbox, StoreError> {
        mailbox::find(&self.reader()?, self.principal(), name)
    }

    pub(crate) fn db(&self) -> &bureau_store::Store {
        self.ctx.auth.directory().store()
    }

    /// An item as this user sees it: on a mailbox someone else owns, \Seen is the user's own.
    pub(crate) fn viewed(&self, item: Item, private_seen: bool) -> Item {
        view(item, private_seen.then(|| self.principal()))
    }

    /// A mailbox by name, with its messages as the user sees them.
    /// A mailbox with its UIDs and the sequence index of its first unseen message, from its
    /// index (a shared mailbox's per-user \Seen from its records).
    /// A mailbox's UIDs and the sequence number index of its first unseen message, from
    /// the store's id runs and unseen index (issue 24: not from every record).
    pub(crate) fn mailbox_index(
        &self,
        name: &str,
    ) -> Result<(Mbox, UidMap, Option<usize>), StoreError> {
        let r = self.reader()?;
        let m = mailbox::find(&r, self.principal(), name)?;
        if m.private_seen() {
            let items = r.items(m.coll.id)?;
            let items: Vec<Item> = items.into_iter().map(|i| self.viewed(i, true)).collect();
            let unseen = items.iter().position(|i| !has(&i.flags, SEEN));
            let uids = items.iter().map(|i| i.id as u32).collect();
            return Ok((m, uids, unseen));
        }
        let uids = UidMap::from_runs(
            r.id_runs(m.coll.id)?
                .into_iter()
                .map(|(first, n)| (first as u32, n as u32)),
        );
        let unseen = r
            .first_unseen(m.coll.id)?
            .and_then(|u| uids.seq(u as u32))
            .map(|seq| seq - 1);
        Ok((m, uids, unseen))
    }

    pub(crate) fn mailbox_items(&self, name: &str) -> Result<(Mbox, Vec<Item>), StoreError> {
        let r = self.reader()?;
        let m = mailbox::find(&r, self.principal(), name)?;
        let items = r.items(m.coll.id)?;
        let private = m.private_seen();
        let items = items.into_iter().map(|i| self.viewed(i, private)).collect();
        Ok((m, items))
    }

    /// A message's flags as this session shows them (with \\Recent where it is recent here).
    pub(crate) fn flags_shown(&self, item: &Item) -> String {
        match &self.state {
            State::Selected(_, s) => s.flag_list(item.id, &item.flags),
            _ => item.flags.join(" "),
        }
    }

    /// The UIDs a sequence or UID set names in this view.
    pub(crate) fn resolve_uids(&self, set: &SequenceSet, uid: bool) -> Vec<u32> {
        let State::Selected(_, s) = &self.state else {
            return Vec::new();
        };
        self.resolve(set, uid)
            .into_iter()
            .filter_map(|seq| s.uids.uid(seq))
            .collect()
    }

    /// Sequence numbers (1-based) a set names, in order.
    pub(crate) fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let State::Selected(_, s) = &self.state else {
            return Vec::new();
        };
        let n = s.uids.len();
        if n == 0 {
            return Vec::new();
        }
        let max_uid = s.uids.last().unwrap_or(0);
        let val = |v: &SeqOrUid, largest: u32| match v {
            SeqOrUid::Asterisk => largest,
            SeqOrUid::Value(x) => x.get(),
        };
        let mut out = Vec::new();
        for seq in set.0.as_ref() {
            let (a, b) = match seq {
                Sequence::Single(x) => {
                    let v = val(x, if uid { max_uid } else { n as u32 });
                    (v, v)
                }
                Sequence::Range(x, y) => {
                    let largest = if uid { max_uid } else { n as u32 };
                    let (x, y) = (val(x, largest), val(y, largest));
                    (x.min(y), x.max(y))
                }
            };
            if uid {
                out.extend(s.uids.seqs_between(a, b));
            } else {
                for i in a..=b.min(n as u32) {
                    out.push(i as usize);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Tells the client what changed in the selected mailbox since it last heard: new
    /// messages, flag changes, and (when `expunges` is allowed) removals, as EXPUNGE or,
    /// with QRESYNC, VANISHED.
    pub(crate) fn updates(&mut self, expunges: bool) {
        // EXPUNGE waits while the client has pipelined another command.
        let expunges = expunges && self.unread == 0;
        let Ok(r) = self.reader() else {
            return;
        };
        let (condstore, qresync, me) = (self.condstore, self.qresync, self.principal());
        let (rev2, ctx) = (self.rev2, self.ctx.clone());
        let r_store = ctx.auth.directory().store();
        let State::Selected(_, s) = &mut self.state else {
            return;
        };
        let Ok(ch) = r.changes_since(s.coll, s.modseq) else {
            return;
        };
        if ch.changed.is_empty() && ch.deleted.is_empty() {
            s.modseq = ch.modseq;
            return;
        }
        let out = &mut self.out;
        let recent_before = s.recent.len();
        if expunges {
            // The expunged UIDs this session knows, found by their runs, not by walking
            // the mailbox (issue 24).
            let mut gone: Vec<u32> = ch
                .deleted
                .iter()
                .filter_map(|d| u32::try_from(*d).ok())
                .filter(|u| s.uids.seq(*u).is_some())
                .collect();
            gone.sort_unstable();
            let seqs: Vec<usize> = gone.iter().filter_map(|u| s.uids.seq(*u)).collect();
            if !qresync {
                // Highest first, so that each number is still right when the client reads it.
                for n in seqs.iter().rev() {
                    Response::Expunge(*n).encode(out);
                }
            }
            s.uids.remove(&gone);
            s.recent.retain(|u| gone.binary_search(u).is_err());
            if qresync && !gone.is_empty() {
                let uids = &gone;
                Response::Vanished {
                    earlier: false,
                    uids,
                }
                .encode(out);
            }
        }
        if s.learn_keywords(ch.changed.iter().flat_map(|i| &i.flags)) {
            s.flag_lines(out);
        }
        let known_top = s.uids.last().unwrap_or(0);
        let mut added = false;
        // By UID: the change log is in modseq order, and a message added before another but
        // changed after it must still take its place (issue 18: sessions lacked UIDs).
        let mut changed = ch.changed;
        changed.sort_by_key(|i| i.id);
        for item in changed {
            let item = view(item, s.private_seen.then_some(me));
            let uid = item.id as u32;
            match s.seq(item.id) {
                Some(_) if s.told.get(&uid) == Some(&item.modseq) => {}
                Some(seq) => {
                    s.told.insert(uid, item.modseq);
                    let mut items = Vec::new();
                    if qresync {
                        items.push(FetchItem::Uid(item.id));
                    }
                    items.push(FetchItem::Flags(s.flag_list(item.id, &item.flags)));
                    if condstore {
                        items.push(FetchItem::ModSeq(item.modseq));
                    }
                    Response::Fetch { seq, items: &items }.encode(out);
                }
                None if s.uids.last().is_none_or(|l| l < uid) => {
                    s.uids.push(uid);
                    added = true;
                }
                None => {}
            }
        }
        if added {
            Response::Exists(s.uids.len()).encode(out);
            if !rev2 && !s.read_only && s.access >= Access::ReadWrite {
                let new: UidMap = s.uids.above(known_top).collect();
                let mine = match r.collection(s.coll) {
                    Ok(c) => ctx.recent.claim(r_store, &c, &new),
                    Err(_) => Vec::new(),
                };
                s.recent.extend(mine);
            }
        }
        // The count changes with the messages this session claims and with its recent
        // messages expunged (RFC 3501 7.3.2; Dovecot tells both).
        if !rev2 && s.recent.len() != recent_before {
            Response::Recent(s.recent.len()).encode(out);
        }
        if expunges || ch.deleted.is_empty() {
            s.modseq = ch.modseq;
            s.told.retain(|_, m| *m > ch.modseq);
        }
    }
}

pub(crate) fn has(flags: &[String], f: &str) -> bool {
    flags.iter().any(|x| x.eq_ignore_ascii_case(f))
}

/// An item's flags as `private_seen_of` sees them: its own \Seen in place of the owner's.
pub(crate) fn view(mut item: Item, private_seen_of: Option<u64>) -> Item {
    if let Some(p) = private_seen_of {
        item.flags.retain(|f| !f.eq_ignore_ascii_case(SEEN));
        if item.seen_by(p) {
            item.flags.push(SEEN.into());
            item.flags.sort();
        }
    }
    item
}
