//! One IMAP connection. The state is an enum owning its data; `command` decides which
//! commands each state accepts, in one place.

use crate::ext::{AppendMsg, Ext, ListExt};
use crate::fetch::{Binary, header_end, partial};
use crate::mailbox::{self, Mbox};
use crate::pattern::{MAX_PATTERN, Pattern};
use crate::uidmap::UidMap;
use crate::{Ctx, wire};
use base64::Engine;
use bureau_core::AuthError;
use bureau_core::net::Stream;
use bureau_core::shutdown::Shutdown;
use bureau_directory::User;
use bureau_store::{Access, Actor, CollectionId, CollectionKind, Item, NewItem, StoreError};
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::{
    DecodeMessageError, FragmentInfo, Fragmentizer, LiteralAnnouncement,
};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::command::{FetchModifier, SelectParameter, StoreModifier};
use imap_codec::imap_types::core::{Charset, LiteralMode, Vec1};
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use imap_codec::imap_types::status::StatusDataItemName;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest command, literals included (an APPENDed message; APPENDLIMIT).
const MAX_COMMAND: u32 = 64 << 20;
const SEEN: &str = "\\Seen";
const UNAUTH_TIMEOUT: Duration = Duration::from_secs(60);
const AUTH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const MAX_BAD: u32 = 20;

/// A message that matched a search.
pub(crate) struct Hit {
    pub seq: u32,
    pub item: Item,
    /// The message, when the caller asked for it.
    pub content: Vec<u8>,
}

/// The selected mailbox as this session knows it.
struct Selected {
    coll: CollectionId,
    read_only: bool,
    /// The user's access; below read-write only \Seen may change, and it is the user's own.
    access: Access,
    /// \Seen is the user's own, not the owner's flag (a mailbox shared with the user).
    private_seen: bool,
    /// UIDs by message sequence number (index + 1), ascending.
    uids: UidMap,
    /// The collection's modseq this view reflects.
    modseq: u64,
    /// Messages changed after `modseq` whose flags this session has already told (by UID,
    /// at the modseq told), so that catching up with the change log does not repeat them.
    told: HashMap<u32, u64>,
}

impl Selected {
    /// The sequence number of a UID in this view.
    fn seq(&self, uid: u64) -> Option<usize> {
        self.uids.seq(u32::try_from(uid).ok()?)
    }

    /// Notes that the client was told `uid`'s flags as of `modseq`.
    fn told(&mut self, uid: u64, modseq: u64) {
        if modseq > self.modseq {
            self.told.insert(uid as u32, modseq);
        }
    }
}

enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Selected),
    Logout,
}

pub(crate) struct Session {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    stream: Option<Stream>,
    shutdown: Shutdown,
    state: State,
    out: Vec<u8>,
    bad: u32,
    /// CONDSTORE (RFC 7162) is in use: flag changes carry MODSEQ.
    condstore: bool,
    /// QRESYNC is enabled: expunges are told as VANISHED.
    qresync: bool,
    /// IMAP4rev2 is enabled (RFC 9051): UTF-8 mailbox names, ESEARCH answers, no \Recent.
    rev2: bool,
}

fn mailbox_name(m: &Mailbox) -> String {
    match m {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.inner().as_ref()).into_owned(),
    }
}

/// The mailbox names a command carries.
fn mailbox_args<'a>(body: &'a CommandBody) -> Vec<&'a Mailbox<'a>> {
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

fn imap_flag(f: &Flag) -> String {
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
        }
    }

    fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    fn line(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> bool {
        let Some(s) = self.stream.as_mut() else {
            return false;
        };
        let ok = s.write_all(&self.out).await.is_ok() && s.flush().await.is_ok();
        self.out.clear();
        // A large answer (a whole mailbox's envelopes) is not kept for the idle hours after.
        self.out.shrink_to(64 * 1024);
        ok
    }

    fn capabilities(&self) -> String {
        let mut c = format!(
            "IMAP4rev1 IMAP4rev2 SASL-IR UNSELECT LITERAL+ IDLE UIDPLUS MOVE NAMESPACE ID ENABLE CHILDREN \
             CONDSTORE QRESYNC ESEARCH SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES \
             LIST-EXTENDED LIST-STATUS SPECIAL-USE MULTIAPPEND APPENDLIMIT={MAX_COMMAND} \
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
        let greeting = format!(
            "* OK [CAPABILITY {}] {} Bureau IMAP ready",
            self.capabilities(),
            self.ctx.hostname
        );
        self.line(&greeting);
        if !self.flush().await {
            return;
        }
        let mut frag = Fragmentizer::new(MAX_COMMAND);
        // One TLS record at most; every idle connection holds it.
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            // Take every complete command already received.
            match frag.progress() {
                Some(FragmentInfo::Line {
                    announcement: Some(LiteralAnnouncement { mode, length }),
                    ..
                }) => {
                    if length > MAX_COMMAND {
                        self.line("* BYE literal too large");
                        self.flush().await;
                        return;
                    }
                    if mode == LiteralMode::Sync {
                        self.line("+ Ready for literal data");
                        if !self.flush().await {
                            return;
                        }
                    }
                    continue;
                }
                Some(_) if frag.is_message_complete() => {
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
                                    DecodeMessageError::MessageTooLong { .. } => "command too long",
                                    _ => "syntax error",
                                };
                                self.bad += 1;
                                self.line(&format!("{tag} BAD {why}"));
                                if self.bad > MAX_BAD {
                                    self.line("* BYE too many errors");
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
                    self.line("* BYE server shutting down");
                    self.flush().await;
                    return;
                }
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => frag.enqueue_bytes(&buf[..n]),
                Err(_) => {
                    self.line("* BYE autologout; idle too long");
                    self.flush().await;
                    return;
                }
            }
        }
    }

    fn ok(&mut self, tag: &str, text: &str) {
        self.line(&format!("{tag} OK {text}"));
    }
    fn no(&mut self, tag: &str, text: &str) {
        self.line(&format!("{tag} NO {text}"));
    }
    fn bad_cmd(&mut self, tag: &str, text: &str) {
        self.bad += 1;
        self.line(&format!("{tag} BAD {text}"));
    }

    fn store_no(&mut self, tag: &str, e: StoreError) {
        match e {
            StoreError::NotFound => self.no(tag, "[NONEXISTENT] no such mailbox"),
            StoreError::Forbidden => self.no(tag, "[NOPERM] not allowed"),
            StoreError::Exists(_) => self.no(tag, "[ALREADYEXISTS] mailbox exists"),
            StoreError::OverQuota => self.no(tag, "[OVERQUOTA] quota exceeded"),
            StoreError::DiskFull(_) => self.no(tag, "[LIMIT] disk full, try later"),
            e if e.is_internal() => {
                log::error!("imap: store failure: {e}");
                self.no(tag, "[SERVERBUG] internal error")
            }
            e => self.no(tag, &format!("[CANNOT] {e}")),
        }
    }

    /// A mailbox name as the store keeps it (UTF-8) from the client's form: modified UTF-7
    /// (RFC 3501 5.1.3) unless IMAP4rev2 is enabled. None: not valid modified UTF-7.
    fn name_in(&self, name: &str) -> Option<String> {
        if self.rev2 {
            Some(name.to_string())
        } else {
            wire::mutf7_decode(name)
        }
    }

    /// A command's mailbox argument, already checked by `name_in`.
    fn name_arg(&self, m: &Mailbox) -> String {
        let raw = mailbox_name(m);
        self.name_in(&raw).unwrap_or(raw)
    }

    /// A LIST or LSUB pattern in the store's form (left as sent if it does not decode).
    fn pattern_in(&self, pattern: &[u8]) -> Vec<u8> {
        let raw = String::from_utf8_lossy(pattern);
        self.name_in(&raw)
            .map_or_else(|| pattern.to_vec(), String::into_bytes)
    }

    /// A mailbox name in the client's form.
    fn to_wire(&self, name: &str) -> String {
        if self.rev2 {
            name.to_string()
        } else {
            wire::mutf7_encode(name)
        }
    }

    fn user(&self) -> Option<&User> {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => Some(u),
            _ => None,
        }
    }

    /// Handles one command; false ends the connection.
    async fn command(
        &mut self,
        cmd: Command<'static>,
        frag: &mut Fragmentizer,
        buf: &mut [u8],
    ) -> bool {
        let tag = cmd.tag.inner().to_string();
        let authed = self.user().is_some();
        if mailbox_args(&cmd.body)
            .iter()
            .any(|m| self.name_in(&mailbox_name(m)).is_none())
        {
            self.bad_cmd(&tag, "mailbox name is not valid modified UTF-7");
            return true;
        }
        match cmd.body {
            CommandBody::Capability => {
                let c = format!("* CAPABILITY {}", self.capabilities());
                self.line(&c);
                self.ok(&tag, "CAPABILITY completed");
            }
            CommandBody::Noop => {
                self.updates(true);
                self.ok(&tag, "NOOP completed");
            }
            CommandBody::Logout => {
                self.line("* BYE logging out");
                self.ok(&tag, "LOGOUT completed");
                self.state = State::Logout;
            }
            CommandBody::StartTLS => {
                if self.is_tls() {
                    self.bad_cmd(&tag, "TLS already active");
                } else {
                    self.ok(&tag, "begin TLS negotiation now");
                    if !self.flush().await {
                        return false;
                    }
                    // Anything pipelined after STARTTLS arrived in the clear: dropped.
                    *frag = Fragmentizer::new(MAX_COMMAND);
                    let Some(plain) = self.stream.take() else {
                        return false;
                    };
                    match tokio::time::timeout(
                        Duration::from_secs(30),
                        plain.into_tls(&self.ctx.tls),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => self.stream = Some(tls),
                        _ => return false,
                    }
                }
            }
            CommandBody::Login { username, password } if !authed => {
                let login = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pw = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                self.login(&tag, &login, &pw).await;
            }
            CommandBody::Authenticate {
                mechanism: AuthMechanism::Plain,
                initial_response,
            } if !authed => {
                let data = match initial_response {
                    Some(r) => r.declassify().to_vec(),
                    None => {
                        self.line("+ ");
                        if !self.flush().await {
                            return false;
                        }
                        match self.read_line(frag, buf).await {
                            Some(l) => match base64::engine::general_purpose::STANDARD
                                .decode(l.trim_ascii())
                            {
                                Ok(d) => d,
                                Err(_) => {
                                    self.bad_cmd(&tag, "invalid base64");
                                    return true;
                                }
                            },
                            None => return false,
                        }
                    }
                };
                let parts: Vec<&[u8]> = data.split(|b| *b == 0).collect();
                if parts.len() != 3 || (!parts[0].is_empty() && parts[0] != parts[1]) {
                    self.no(&tag, "[AUTHENTICATIONFAILED] malformed PLAIN response");
                } else {
                    let (l, p) = (
                        String::from_utf8_lossy(parts[1]).into_owned(),
                        String::from_utf8_lossy(parts[2]).into_owned(),
                    );
                    self.login(&tag, &l, &p).await;
                }
            }
            CommandBody::Authenticate { .. } if !authed => {
                self.no(&tag, "[CANNOT] mechanism not supported")
            }
            CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                self.bad_cmd(&tag, "already authenticated")
            }
            _ if !authed => self.bad_cmd(&tag, "command not allowed before authentication"),
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(&tag, &self.name_arg(&mailbox), false, &parameters),
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(&tag, &self.name_arg(&mailbox), true, &parameters),
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
                self.list(&tag, &l)
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&tag, &self.name_arg(&mailbox), &item_names),
            CommandBody::Create { mailbox } => {
                let name = self.name_arg(&mailbox).trim_end_matches('/').to_string();
                if mailbox::is_shared(&name) {
                    self.no(
                        &tag,
                        "[NOPERM] mailboxes cannot be created in the shared namespace",
                    );
                    return true;
                }
                let p = self.principal();
                let r = self
                    .db()
                    .write(Actor::Principal(p), vec![], move |w| {
                        w.create_collection(p, CollectionKind::Mailbox, &name)
                    })
                    .await;
                match r {
                    Ok(_) => self.ok(&tag, "CREATE completed"),
                    Err(e) => self.store_no(&tag, e),
                }
            }
            CommandBody::Delete { mailbox } => {
                let name = self.name_arg(&mailbox);
                if name.eq_ignore_ascii_case("INBOX") {
                    self.no(&tag, "[CANNOT] INBOX cannot be deleted");
                } else {
                    self.delete(&tag, &name).await;
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
                self.append(&tag, &self.name_arg(&mailbox), vec![msg]).await;
            }
            CommandBody::Namespace => {
                self.line(&format!(
                    "* NAMESPACE ((\"\" \"/\")) ((\"{}/\" \"/\")) NIL",
                    mailbox::SHARED
                ));
                self.ok(&tag, "NAMESPACE completed");
            }
            CommandBody::Id { .. } => {
                let v = env!("CARGO_PKG_VERSION");
                self.line(&format!("* ID (\"name\" \"Bureau\" \"version\" \"{v}\")"));
                self.ok(&tag, "ID completed");
            }
            CommandBody::Enable { capabilities } => {
                let mut enabled = Vec::new();
                for c in capabilities.as_ref() {
                    let c = c.to_string().to_ascii_uppercase();
                    match c.as_str() {
                        "CONDSTORE" => self.condstore = true,
                        // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
                        "QRESYNC" => (self.condstore, self.qresync) = (true, true),
                        "IMAP4REV2" => {
                            self.rev2 = true;
                            enabled.push("IMAP4rev2".into());
                            continue;
                        }
                        _ => continue,
                    }
                    enabled.push(c);
                }
                self.line(format!("* ENABLED {}", enabled.join(" ")).trim_end());
                self.ok(&tag, "ENABLE completed");
            }
            CommandBody::GetQuotaRoot { mailbox } => {
                self.quota_root(&tag, &self.name_arg(&mailbox))
            }
            CommandBody::GetQuota { root } => {
                let root = String::from_utf8_lossy(root.as_ref()).into_owned();
                if root.is_empty() {
                    self.quota(&tag)
                } else {
                    self.no(&tag, "[NONEXISTENT] no such quota root")
                }
            }
            CommandBody::SetQuota { .. } => {
                self.no(&tag, "[NOPERM] quotas are set by the administrator")
            }
            CommandBody::Subscribe { mailbox } => {
                self.subscribe(&tag, &self.name_arg(&mailbox), true).await
            }
            CommandBody::Unsubscribe { mailbox } => {
                self.subscribe(&tag, &self.name_arg(&mailbox), false).await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.lsub(&tag, &list_pattern(&reference, &mailbox_wildcard)),
            CommandBody::Rename { from, to } => {
                self.rename(&tag, &self.name_arg(&from), &self.name_arg(&to))
                    .await
            }
            CommandBody::Idle => {
                if !self.idle(&tag, frag, buf).await {
                    return false;
                }
            }
            _ if !matches!(self.state, State::Selected(..)) => {
                self.bad_cmd(&tag, "no mailbox selected")
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                self.fetch(&tag, &sequence_set, &macro_or_item_names, uid, &modifiers)
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
                    &tag,
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
                if let Some(key) = self.criteria(&tag, charset.as_ref(), criteria) {
                    self.search(&tag, &key, uid, None);
                }
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                if let Some(key) = self.criteria(&tag, Some(&charset), search_criteria) {
                    self.sort(&tag, sort_criteria.as_ref(), &key, uid);
                }
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                if let Some(key) = self.criteria(&tag, Some(&charset), search_criteria) {
                    self.thread(&tag, &algorithm, &key, uid);
                }
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(&tag, &sequence_set, &self.name_arg(&mailbox), uid, false)
                    .await
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(&tag, &sequence_set, &self.name_arg(&mailbox), uid, true)
                    .await
            }
            CommandBody::ExpungeUid { sequence_set } => {
                let uids: Vec<u32> = self
                    .resolve(&sequence_set, true)
                    .into_iter()
                    .filter_map(|seq| match &self.state {
                        State::Selected(_, s) => s.uids.uid(seq),
                        _ => None,
                    })
                    .collect();
                match self.expunge(Some(uids)).await {
                    Ok(()) => self.ok(&tag, "UID EXPUNGE completed"),
                    Err(e) => self.store_no(&tag, e),
                }
            }
            CommandBody::Expunge => match self.expunge(None).await {
                Ok(()) => self.ok(&tag, "EXPUNGE completed"),
                Err(e) => self.store_no(&tag, e),
            },
            CommandBody::Close => {
                // RFC 3501 6.4.2: removed without untagged EXPUNGE responses.
                let _ = self.remove_deleted(None).await;
                self.deselect();
                self.ok(&tag, "CLOSE completed");
            }
            CommandBody::Unselect => {
                self.deselect();
                self.ok(&tag, "UNSELECT completed");
            }
            CommandBody::Check => {
                self.updates(true);
                self.ok(&tag, "CHECK completed");
            }
            _ => self.bad_cmd(&tag, "command not supported yet"),
        }
        true
    }

    fn deselect(&mut self) {
        if matches!(self.state, State::Selected(..))
            && let State::Selected(u, _) = std::mem::replace(&mut self.state, State::Logout)
        {
            self.state = State::Authenticated(u);
        }
    }

    /// One raw line from the client (AUTHENTICATE continuation, IDLE's DONE).
    async fn read_line(&mut self, frag: &mut Fragmentizer, buf: &mut [u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(info) = frag.progress() {
                if frag.is_message_complete() {
                    let mut l = frag.message_bytes().to_vec();
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
                Ok(Ok(n)) if n > 0 => frag.enqueue_bytes(&buf[..n]),
                _ => return None,
            }
        }
    }

    async fn login(&mut self, tag: &str, login: &str, password: &str) {
        if !self.is_tls() {
            return self.no(tag, "[PRIVACYREQUIRED] issue STARTTLS first");
        }
        match self
            .ctx
            .auth
            .login(self.peer.ip().to_canonical(), login, password, "imap")
            .await
        {
            Ok(user) => {
                self.state = State::Authenticated(user);
                let c = self.capabilities();
                self.ok(tag, &format!("[CAPABILITY {c}] logged in"));
            }
            Err(AuthError::Refused) => self.no(
                tag,
                "[UNAVAILABLE] too many failed logins from your address",
            ),
            Err(AuthError::Internal(_)) => self.no(tag, "[UNAVAILABLE] authentication unavailable"),
            Err(_) => self.no(tag, "[AUTHENTICATIONFAILED] invalid credentials"),
        }
    }

    fn principal(&self) -> u64 {
        self.user().map_or(0, |u| u.principal)
    }

    fn reader(&self) -> Result<bureau_store::Reader, StoreError> {
        self.db().reader(Actor::Principal(self.principal()))
    }

    /// The mailbox the user names, own or shared with it.
    fn find_mailbox(&self, name: &str) -> Result<Mbox, StoreError> {
        mailbox::find(&self.reader()?, self.principal(), name)
    }

    fn db(&self) -> &bureau_store::Store {
        self.ctx.auth.directory().store()
    }

    /// An item as this user sees it: on a mailbox someone else owns, \Seen is the user's own.
    fn viewed(&self, item: Item, private_seen: bool) -> Item {
        view(item, private_seen.then(|| self.principal()))
    }

    /// A mailbox by name, with its messages as the user sees them.
    fn mailbox_items(&self, name: &str) -> Result<(Mbox, Vec<Item>), StoreError> {
        let r = self.reader()?;
        let m = mailbox::find(&r, self.principal(), name)?;
        let items = r.items(m.coll.id)?;
        let private = m.private_seen();
        let items = items.into_iter().map(|i| self.viewed(i, private)).collect();
        Ok((m, items))
    }

    fn select(&mut self, tag: &str, name: &str, read_only: bool, params: &[SelectParameter]) {
        let qresync = params.iter().find_map(|p| match p {
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                ..
            } => Some((
                uid_validity.get(),
                mod_sequence_value.get(),
                known_uids.clone(),
            )),
            SelectParameter::CondStore => None,
        });
        if qresync.is_some() && !self.qresync {
            return self.bad_cmd(tag, "QRESYNC is not enabled");
        }
        if !params.is_empty() {
            self.condstore = true;
        }
        if matches!(self.state, State::Selected(..)) && self.qresync {
            self.line("* OK [CLOSED] previous mailbox closed");
        }
        self.deselect();
        let (m, items) = match self.mailbox_items(name) {
            Ok(x) => x,
            Err(e) => return self.store_no(tag, e),
        };
        let coll = &m.coll;
        let unseen = items.iter().position(|i| !has(&i.flags, SEEN));
        self.line("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
        let permanent = if read_only {
            ""
        } else if m.access >= Access::ReadWrite {
            "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*"
        } else {
            "\\Seen"
        };
        self.line(&format!(
            "* OK [PERMANENTFLAGS ({permanent})] flags permitted"
        ));
        self.line(&format!("* {} EXISTS", items.len()));
        if self.rev2 {
            // RFC 9051 6.3.2: the mailbox's name as LIST gives it; no \Recent, no UNSEEN.
            let mut l = b"* LIST () \"/\" ".to_vec();
            wire::string(&mut l, m.name.as_bytes());
            l.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&l);
        } else {
            self.line("* 0 RECENT");
            if let Some(u) = unseen {
                self.line(&format!("* OK [UNSEEN {}] first unseen", u + 1));
            }
        }
        self.line(&format!("* OK [UIDVALIDITY {}] UIDs valid", coll.validity));
        self.line(&format!(
            "* OK [UIDNEXT {}] predicted next UID",
            coll.next_item
        ));
        self.line(&format!(
            "* OK [HIGHESTMODSEQ {}] highest modseq",
            coll.modseq
        ));
        // QRESYNC (RFC 7162 3.2.5): what changed since the client's last state.
        if let Some((validity, since, known)) = qresync
            && validity == coll.validity
        {
            let r = self.reader();
            let present = items.iter().map(|i| i.id as u32);
            let line = vanished_earlier(r.as_ref().ok(), coll, since, present, known.as_ref());
            if let Some(l) = line {
                self.line(&l);
            }
            for (i, item) in items.iter().enumerate() {
                if item.modseq > since {
                    self.line(&format!(
                        "* {} FETCH (UID {} FLAGS ({}) MODSEQ ({}))",
                        i + 1,
                        item.id,
                        item.flags.join(" "),
                        item.modseq
                    ));
                }
            }
        }
        let user = match std::mem::replace(&mut self.state, State::Logout) {
            State::Authenticated(u) => u,
            other => {
                self.state = other;
                return self.no(tag, "[SERVERBUG] state");
            }
        };
        self.state = State::Selected(
            user,
            Selected {
                coll: coll.id,
                read_only,
                access: m.access,
                private_seen: m.private_seen(),
                uids: items.iter().map(|i| i.id as u32).collect(),
                modseq: coll.modseq,
                told: HashMap::new(),
            },
        );
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.ok(
            tag,
            &format!(
                "[{mode}] {} completed",
                if read_only { "EXAMINE" } else { "SELECT" }
            ),
        );
    }

    /// LIST, plain or extended (RFC 5258, 5819, 6154): the mailboxes matching any pattern,
    /// with the shared namespace's levels as \\Noselect parents, and their STATUS when asked.
    fn list(&mut self, tag: &str, l: &ListExt) {
        if let [p] = l.patterns.as_slice()
            && p.is_empty()
        {
            self.line("* LIST (\\Noselect) \"/\" \"\"");
            return self.ok(tag, "LIST completed");
        }
        let opt = |v: &[String], o: &str| v.iter().any(|x| x == o);
        if let Some(o) = l.select.iter().find(|o| {
            !["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"].contains(&o.as_str())
        }) {
            return self.bad_cmd(tag, &format!("unknown selection option {o}"));
        }
        let (sel_sub, sel_special) = (opt(&l.select, "SUBSCRIBED"), opt(&l.select, "SPECIAL-USE"));
        let recursive = opt(&l.select, "RECURSIVEMATCH");
        if recursive && !sel_sub && !sel_special {
            return self.bad_cmd(tag, "RECURSIVEMATCH needs another selection option");
        }
        let boxes = match self
            .reader()
            .and_then(|r| mailbox::visible(&r, self.principal()))
        {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
        // Every name, with the shared namespace's levels that hold no mailbox of their own.
        let mut names: std::collections::BTreeMap<String, Option<&Mbox>> =
            boxes.iter().map(|m| (m.name.clone(), Some(m))).collect();
        for m in boxes.iter().filter(|m| m.private_seen()) {
            let mut parts: Vec<&str> = m.name.split('/').collect();
            while parts.len() > 1 {
                parts.pop();
                names.entry(parts.join("/")).or_insert(None);
            }
        }
        let special = |m: &Mbox| m.coll.props.get("special-use").cloned();
        let mut patterns = Vec::new();
        for p in &l.patterns {
            let full = [l.reference.as_slice(), p].concat();
            if full.len() > MAX_PATTERN {
                return self.no(tag, "[LIMIT] pattern too long");
            }
            patterns.push(Pattern::new(&self.pattern_in(&full)));
        }
        let mut out = Vec::new();
        for (name, mb) in &names {
            if !patterns.iter().any(|p| p.matches(name.as_bytes())) {
                continue;
            }
            let prefix = format!("{name}/");
            let below: Vec<&Mbox> = names
                .iter()
                .filter(|(n, _)| n.starts_with(&prefix))
                .filter_map(|(_, m)| *m)
                .collect();
            let is_sub = mb.is_some_and(Mbox::subscribed);
            let mut childinfo = Vec::new();
            if sel_sub && !is_sub {
                if !(recursive && below.iter().any(|m| m.subscribed())) {
                    continue;
                }
                childinfo.push("\"SUBSCRIBED\"");
            }
            if sel_special && mb.and_then(special).is_none() {
                if !(recursive && below.iter().any(|m| special(m).is_some())) {
                    continue;
                }
                childinfo.push("\"SPECIAL-USE\"");
            }
            let mut attrs = Vec::new();
            if mb.is_none() {
                attrs.push("\\Noselect".to_string());
            }
            let children = names.keys().any(|n| n.starts_with(&prefix));
            attrs.push(
                if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                }
                .into(),
            );
            if let Some(s) = mb.and_then(special) {
                attrs.push(s);
            }
            if is_sub && (sel_sub || opt(&l.ret, "SUBSCRIBED")) {
                attrs.push("\\Subscribed".into());
            }
            out.extend_from_slice(format!("* LIST ({}) \"/\" ", attrs.join(" ")).as_bytes());
            wire::string(&mut out, self.to_wire(name).as_bytes());
            if !childinfo.is_empty() {
                out.extend_from_slice(
                    format!(" (\"CHILDINFO\" ({}))", childinfo.join(" ")).as_bytes(),
                );
            }
            out.extend_from_slice(b"\r\n");
            if let (Some(items), Some(m)) = (&l.status, mb) {
                match self.status_line(m, items) {
                    Ok(line) => out.extend_from_slice(&line),
                    Err(e) => return self.store_no(tag, e),
                }
            }
        }
        self.out.extend_from_slice(&out);
        self.ok(tag, "LIST completed");
    }

    /// `* STATUS name (...)` for the named items (RFC 9051 6.3.11, RFC 7162 HIGHESTMODSEQ).
    fn status_line(&self, m: &Mbox, items: &[String]) -> Result<Vec<u8>, StoreError> {
        let r = self.reader()?;
        let msgs = r.items(m.coll.id)?;
        let private = m.private_seen().then(|| self.principal());
        let count = |f: &dyn Fn(&Item) -> bool| msgs.iter().filter(|i| f(i)).count();
        let mut parts = Vec::new();
        for i in items {
            let v = match i.as_str() {
                "MESSAGES" => msgs.len() as u64,
                "UIDNEXT" => m.coll.next_item,
                "UIDVALIDITY" => u64::from(m.coll.validity),
                "UNSEEN" => count(&|i| match private {
                    Some(p) => !i.seen_by(p),
                    None => !has(&i.flags, SEEN),
                }) as u64,
                "DELETED" => count(&|i| has(&i.flags, "\\Deleted")) as u64,
                "SIZE" => msgs.iter().map(Item::size).sum(),
                "RECENT" => 0,
                "HIGHESTMODSEQ" => m.coll.modseq,
                _ => continue,
            };
            parts.push(format!("{i} {v}"));
        }
        let mut line = b"* STATUS ".to_vec();
        wire::string(&mut line, self.to_wire(&m.name).as_bytes());
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        Ok(line)
    }

    fn status(&mut self, tag: &str, name: &str, items: &[StatusDataItemName]) {
        let items: Vec<String> = items
            .iter()
            .map(|i| {
                match i {
                    StatusDataItemName::Messages => "MESSAGES",
                    StatusDataItemName::Recent => "RECENT",
                    StatusDataItemName::UidNext => "UIDNEXT",
                    StatusDataItemName::UidValidity => "UIDVALIDITY",
                    StatusDataItemName::Unseen => "UNSEEN",
                    StatusDataItemName::Deleted => "DELETED",
                    StatusDataItemName::DeletedStorage => "DELETED-STORAGE",
                    StatusDataItemName::HighestModSeq => "HIGHESTMODSEQ",
                    StatusDataItemName::Size => "SIZE",
                }
                .to_string()
            })
            .collect();
        if items.iter().any(|i| i == "HIGHESTMODSEQ") {
            self.condstore = true;
        }
        let line = self
            .find_mailbox(name)
            .and_then(|m| self.status_line(&m, &items));
        match line {
            Ok(l) => {
                self.out.extend_from_slice(&l);
                self.ok(tag, "STATUS completed")
            }
            Err(e) => self.store_no(tag, e),
        }
    }

    async fn delete(&mut self, tag: &str, name: &str) {
        let c = match self.find_mailbox(name) {
            Ok(m) => m.coll,
            Err(e) => return self.store_no(tag, e),
        };
        if let State::Selected(_, s) = &self.state
            && s.coll == c.id
        {
            self.deselect();
        }
        let p = self.principal();
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                w.delete_collection(c.id)
            })
            .await;
        match r {
            Ok(()) => self.ok(tag, "DELETE completed"),
            Err(e) => self.store_no(tag, e),
        }
    }

    /// APPEND of one message or several (MULTIAPPEND, RFC 3502): all of them or none.
    async fn append(&mut self, tag: &str, name: &str, msgs: Vec<AppendMsg>) {
        let m = match self.find_mailbox(name) {
            Ok(m) => m,
            Err(StoreError::NotFound) if !mailbox::is_shared(name) => {
                return self.no(tag, "[TRYCREATE] no such mailbox");
            }
            Err(e) => return self.store_no(tag, e),
        };
        let store = self.db().clone();
        let s2 = store.clone();
        let staged = tokio::task::spawn_blocking(move || {
            msgs.into_iter()
                .map(|msg| Ok((s2.stage_blob(&msg.data)?, msg.flags, msg.date)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await;
        let staged = match staged {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return self.store_no(tag, e),
            Err(_) => return self.no(tag, "[SERVERBUG] internal error"),
        };
        let items: Vec<_> = staged
            .iter()
            .map(|(b, f, d)| (b.blob_ref(), f.clone(), *d))
            .collect();
        let blobs = staged.into_iter().map(|s| s.0).collect();
        let (coll, private) = (m.coll.id, m.private_seen());
        let r = store
            .write(Actor::Principal(self.principal()), blobs, move |w| {
                let mut ids = Vec::new();
                for (blob, mut flags, date) in items.iter().cloned() {
                    // On a shared mailbox \Seen is the appender's own.
                    let seen = private && has(&flags, SEEN);
                    if private {
                        flags.retain(|f| !f.eq_ignore_ascii_case(SEEN));
                    }
                    let item = w.put_item(
                        coll,
                        NewItem {
                            blob: Some(blob),
                            flags,
                            date,
                            ..Default::default()
                        },
                    )?;
                    if seen {
                        w.set_private_seen(coll, item.id, true)?;
                    }
                    ids.push(item.id as u32);
                }
                Ok::<_, StoreError>(ids)
            })
            .await;
        match r {
            Ok(ids) => {
                self.updates(true);
                let code = format!("[APPENDUID {} {}]", m.coll.validity, uid_set(&ids));
                self.ok(tag, &format!("{code} APPEND completed"));
            }
            Err(e) => self.store_no(tag, e),
        }
    }

    async fn subscribe(&mut self, tag: &str, name: &str, on: bool) {
        let c = match self.find_mailbox(name) {
            // Mailboxes shared with the user are always subscribed (their owner's list is
            // not the user's to change).
            Ok(m) if m.private_seen() => {
                return if on {
                    self.ok(tag, "SUBSCRIBE completed")
                } else {
                    self.no(tag, "[CANNOT] shared mailboxes stay subscribed")
                };
            }
            Ok(m) => m.coll,
            Err(e) => return self.store_no(tag, e),
        };
        let p = self.principal();
        // Mailboxes are subscribed unless marked otherwise (new users see all of theirs).
        let value = (!on).then(|| "1".to_string());
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                w.set_collection_props(c.id, &[(mailbox::UNSUBSCRIBED.into(), value.clone())])
            })
            .await;
        match r {
            Ok(_) => self.ok(
                tag,
                if on {
                    "SUBSCRIBE completed"
                } else {
                    "UNSUBSCRIBE completed"
                },
            ),
            Err(e) => self.store_no(tag, e),
        }
    }

    fn lsub(&mut self, tag: &str, full: &[u8]) {
        if full.len() > MAX_PATTERN {
            return self.no(tag, "[LIMIT] pattern too long");
        }
        let full = Pattern::new(&self.pattern_in(full));
        let boxes = match self
            .reader()
            .and_then(|r| mailbox::visible(&r, self.principal()))
        {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
        for c in boxes.iter().filter(|m| m.subscribed()) {
            if full.matches(c.name.as_bytes()) {
                let mut line = b"* LSUB () \"/\" ".to_vec();
                wire::string(&mut line, self.to_wire(&c.name).as_bytes());
                self.out.extend_from_slice(&line);
                self.out.extend_from_slice(b"\r\n");
            }
        }
        self.ok(tag, "LSUB completed");
    }

    /// Renames a mailbox and the ones below it. INBOX cannot be renamed (yet: RFC 9051
    /// wants its messages moved into the new mailbox).
    async fn rename(&mut self, tag: &str, from: &str, to: &str) {
        let to = to.trim_end_matches('/').to_string();
        if from.eq_ignore_ascii_case("INBOX") {
            return self.rename_inbox(tag, &to).await;
        }
        if mailbox::is_shared(from) || mailbox::is_shared(&to) {
            return self.no(tag, "[NOPERM] only the owner may rename a mailbox");
        }
        let boxes = match self
            .reader()
            .and_then(|r| r.collections_of(self.principal()))
        {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
        let boxes: Vec<_> = boxes
            .into_iter()
            .filter(|c| c.kind == CollectionKind::Mailbox)
            .collect();
        let Some(top) = boxes.iter().find(|c| c.name == from) else {
            return self.no(tag, "[NONEXISTENT] no such mailbox");
        };
        let prefix = format!("{from}/");
        let mut moves: Vec<(u64, String)> = vec![(top.id, to.clone())];
        for c in &boxes {
            if let Some(rest) = c.name.strip_prefix(&prefix) {
                moves.push((c.id, format!("{to}/{rest}")));
            }
        }
        let p = self.principal();
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                moves
                    .iter()
                    .try_for_each(|(id, name)| w.rename_collection(*id, name).map(|_| ()))
            })
            .await;
        match r {
            Ok(()) => self.ok(tag, "RENAME completed"),
            Err(e) => self.store_no(tag, e),
        }
    }

    /// RENAME INBOX (RFC 3501 6.3.5): its messages move to a new mailbox of that name and
    /// INBOX stays, empty; mailboxes below INBOX are not touched.
    async fn rename_inbox(&mut self, tag: &str, to: &str) {
        if mailbox::is_shared(to) {
            return self.no(
                tag,
                "[NOPERM] mailboxes cannot be created in the shared namespace",
            );
        }
        let (p, to) = (self.principal(), to.to_string());
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                let inbox = w.collection_by_name(p, "INBOX")?;
                let new = w.create_collection(p, CollectionKind::Mailbox, &to)?;
                for id in w.item_ids(inbox.id)? {
                    w.copy_item(inbox.id, id, new.id)?;
                    w.delete_item(inbox.id, id)?;
                }
                Ok::<_, StoreError>(())
            })
            .await;
        match r {
            Ok(()) => {
                self.updates(true);
                self.ok(tag, "RENAME completed")
            }
            Err(e) => self.store_no(tag, e),
        }
    }

    /// The search key of SEARCH, SORT and THREAD (all of `keys`), or a NO with BADCHARSET
    /// for a charset other than UTF-8 and US-ASCII.
    fn criteria<'a>(
        &mut self,
        tag: &str,
        charset: Option<&Charset>,
        keys: Vec1<SearchKey<'a>>,
    ) -> Option<SearchKey<'a>> {
        let name = match charset {
            None => "UTF-8",
            Some(Charset::Atom(a)) => a.as_ref(),
            Some(Charset::Quoted(q)) => q.as_ref(),
        };
        if name.eq_ignore_ascii_case("UTF-8") || name.eq_ignore_ascii_case("US-ASCII") {
            Some(SearchKey::And(keys))
        } else {
            self.no(tag, "[BADCHARSET (UTF-8 US-ASCII)] charset not supported");
            None
        }
    }

    /// The selected mailbox's messages that match `key`: sequence number, item (as the user
    /// sees it) and, when `with_content`, the message itself.
    fn matching(&self, key: &SearchKey, with_content: bool) -> Result<Vec<Hit>, StoreError> {
        let State::Selected(_, s) = &self.state else {
            return Ok(Vec::new());
        };
        let reader = self.reader()?;
        let need = with_content || crate::search::needs_content(key);
        let max_uid = s.uids.last().unwrap_or(0);
        let mut hits = Vec::new();
        for (i, u) in s.uids.iter().enumerate() {
            let item = match reader.item(s.coll, u64::from(u)) {
                Ok(item) => self.viewed(item, s.private_seen),
                Err(StoreError::NotFound) => continue, // expunged meanwhile; told later
                Err(e) => return Err(e),
            };
            let content = if need {
                reader.content(&item)?
            } else {
                Vec::new()
            };
            let c = crate::search::Candidate {
                seq: i as u32 + 1,
                uid: u,
                item: &item,
                content: &content,
                max_seq: s.uids.len() as u32,
                max_uid,
            };
            if crate::search::matches(key, &c) {
                hits.push(Hit {
                    seq: i as u32 + 1,
                    item,
                    content,
                });
            }
        }
        Ok(hits)
    }

    /// SEARCH, and with `ret` (RETURN options) ESEARCH (RFC 4731); MODSEQ (RFC 7162 3.1.5).
    fn search(&mut self, tag: &str, key: &SearchKey, uid: bool, ret: Option<Vec<String>>) {
        if let Some(bad) = ret
            .iter()
            .flatten()
            .find(|o| !["MIN", "MAX", "ALL", "COUNT"].contains(&o.as_str()))
        {
            return self.bad_cmd(tag, &format!("unknown RETURN option {bad}"));
        }
        let hits = match self.matching(key, false) {
            Ok(h) => h,
            Err(e) => return self.store_no(tag, e),
        };
        // IMAP4rev2 answers every SEARCH with ESEARCH, ALL by default (RFC 9051 6.4.4).
        let ret = if self.rev2 {
            Some(ret.unwrap_or_default())
        } else {
            ret
        };
        let modseq = crate::search::uses_modseq(key);
        self.condstore |= modseq;
        let nums: Vec<u32> = hits
            .iter()
            .map(|h| if uid { h.item.id as u32 } else { h.seq })
            .collect();
        let highest = hits.iter().map(|h| h.item.modseq).max().filter(|_| modseq);
        let line = match ret {
            None => {
                let mut l = String::from("* SEARCH");
                for n in &nums {
                    l.push_str(&format!(" {n}"));
                }
                if let Some(h) = highest {
                    l.push_str(&format!(" (MODSEQ {h})"));
                }
                l
            }
            Some(opts) => {
                let all = opts.is_empty();
                let want = |o: &str| all && o == "ALL" || opts.iter().any(|x| x == o);
                let mut l = format!("* ESEARCH (TAG \"{tag}\")");
                if uid {
                    l.push_str(" UID");
                }
                if let (Some(min), Some(max)) = (nums.iter().min(), nums.iter().max()) {
                    if want("MIN") {
                        l.push_str(&format!(" MIN {min}"));
                    }
                    if want("MAX") {
                        l.push_str(&format!(" MAX {max}"));
                    }
                    if want("ALL") {
                        l.push_str(&format!(" ALL {}", uid_set(&nums)));
                    }
                }
                if want("COUNT") {
                    l.push_str(&format!(" COUNT {}", nums.len()));
                }
                if let Some(h) = highest {
                    l.push_str(&format!(" MODSEQ {h}"));
                }
                l
            }
        };
        self.line(&line);
        self.ok(
            tag,
            &format!("{}SEARCH completed", if uid { "UID " } else { "" }),
        );
    }

    /// SORT (RFC 5256).
    fn sort(&mut self, tag: &str, criteria: &[SortCriterion], key: &SearchKey, uid: bool) {
        let hits = match self.matching(key, true) {
            Ok(h) => h,
            Err(e) => return self.store_no(tag, e),
        };
        let order = crate::thread::sort(&hits, criteria);
        let mut l = String::from("* SORT");
        for i in order {
            let h = &hits[i];
            l.push_str(&format!(" {}", if uid { h.item.id as u32 } else { h.seq }));
        }
        self.line(&l);
        self.ok(
            tag,
            &format!("{}SORT completed", if uid { "UID " } else { "" }),
        );
    }

    /// THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES.
    fn thread(&mut self, tag: &str, algorithm: &ThreadingAlgorithm, key: &SearchKey, uid: bool) {
        let references = match algorithm {
            ThreadingAlgorithm::OrderedSubject => false,
            ThreadingAlgorithm::References => true,
            ThreadingAlgorithm::Other(_) => {
                return self.bad_cmd(tag, "unknown threading algorithm");
            }
        };
        let hits = match self.matching(key, true) {
            Ok(h) => h,
            Err(e) => return self.store_no(tag, e),
        };
        let number = |i: usize| {
            if uid {
                hits[i].item.id as u32
            } else {
                hits[i].seq
            }
        };
        let threads = crate::thread::thread(&hits, references);
        let mut l = String::from("* THREAD ");
        for t in &threads {
            crate::thread::format(&mut l, t, &number, true);
        }
        self.line(l.trim_end());
        self.ok(
            tag,
            &format!("{}THREAD completed", if uid { "UID " } else { "" }),
        );
    }

    /// COPY and MOVE (RFC 6851), answering with COPYUID (RFC 4315).
    async fn copy(&mut self, tag: &str, set: &SequenceSet, dest: &str, uid: bool, moving: bool) {
        let (coll, read_only, uids) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only, s.uids.clone()),
            _ => return,
        };
        if moving && read_only {
            return self.no(tag, "[READ-ONLY] mailbox is read-only");
        }
        let target = match self.find_mailbox(dest) {
            Ok(m) => m.coll,
            Err(StoreError::NotFound) if !mailbox::is_shared(dest) => {
                return self.no(tag, "[TRYCREATE] no such mailbox");
            }
            Err(e) => return self.store_no(tag, e),
        };
        let seqs = self.resolve(set, uid);
        let ids: Vec<u64> = seqs
            .iter()
            .filter_map(|s| uids.uid(*s))
            .map(u64::from)
            .collect();
        let p = self.principal();
        let (src, dst) = (coll, target.id);
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                let mut pairs = Vec::new();
                for id in &ids {
                    let new = w.copy_item(src, *id, dst)?;
                    if moving {
                        w.delete_item(src, *id)?;
                    }
                    pairs.push((*id, new.id));
                }
                Ok::<_, StoreError>(pairs)
            })
            .await;
        let pairs = match r {
            Ok(p) => p,
            Err(e) => return self.store_no(tag, e),
        };
        let fmt = |v: Vec<u64>| v.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let code = if pairs.is_empty() {
            String::new()
        } else {
            format!(
                "[COPYUID {} {} {}] ",
                target.validity,
                fmt(pairs.iter().map(|p| p.0).collect()),
                fmt(pairs.iter().map(|p| p.1).collect())
            )
        };
        if moving {
            // RFC 6851 4.3: COPYUID in an untagged OK, then the expunges.
            if !code.is_empty() {
                self.line(&format!("* OK {}moved", code));
            }
            self.updates(true);
            self.ok(tag, "MOVE completed");
        } else {
            self.ok(tag, &format!("{code}COPY completed"));
        }
    }

    /// Commands of the extensions imap-codec does not parse (see ext.rs).
    async fn ext_command(&mut self, tag: &str, ext: Ext) {
        if self.user().is_none() {
            return self.bad_cmd(tag, "command not allowed before authentication");
        }
        let name = match &ext {
            Ext::MyRights(n)
            | Ext::GetAcl(n)
            | Ext::ListRights(n, _)
            | Ext::SetAcl(n, ..)
            | Ext::DeleteAcl(n, _)
            | Ext::Append { mailbox: n, .. } => match self.name_in(n) {
                Some(n) => n,
                None => return self.bad_cmd(tag, "mailbox name is not valid modified UTF-7"),
            },
            Ext::Search { .. } | Ext::List(_) => String::new(),
        };
        match ext {
            Ext::Search { ret, command } => {
                if !matches!(self.state, State::Selected(..)) {
                    return self.bad_cmd(tag, "no mailbox selected");
                }
                match CommandCodec::default().decode(&command) {
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
                }
            }
            Ext::List(l) => self.list(tag, &l),
            Ext::Append { messages, .. } => self.append(tag, &name, messages).await,
            Ext::MyRights(_) => match self.find_mailbox(&name) {
                Ok(m) => {
                    let mut l = b"* MYRIGHTS ".to_vec();
                    wire::astring(&mut l, self.to_wire(&m.name).as_bytes());
                    l.extend_from_slice(format!(" {}\r\n", mailbox::rights(m.access)).as_bytes());
                    self.out.extend_from_slice(&l);
                    self.ok(tag, "MYRIGHTS completed")
                }
                Err(e) => self.store_no(tag, e),
            },
            Ext::GetAcl(_) => self.get_acl(tag, &name),
            Ext::ListRights(_, who) => match self.find_mailbox(&name) {
                Ok(m) if m.access == Access::Owner => {
                    let mut l = b"* LISTRIGHTS ".to_vec();
                    wire::astring(&mut l, self.to_wire(&m.name).as_bytes());
                    l.push(b' ');
                    wire::astring(&mut l, who.as_bytes());
                    let owner = self.user().is_some_and(|u| u.uid == who);
                    l.extend_from_slice(if owner {
                        b" lrswipkxtecda\r\n".as_slice()
                    } else {
                        // Rights come in the store's levels: "lrs", then the write rights.
                        b" \"\" lrs wiptecd\r\n".as_slice()
                    });
                    self.out.extend_from_slice(&l);
                    self.ok(tag, "LISTRIGHTS completed")
                }
                Ok(_) => self.no(tag, "[NOPERM] only the owner administers this mailbox"),
                Err(e) => self.store_no(tag, e),
            },
            Ext::SetAcl(_, who, rights) => self.set_acl(tag, &name, &who, Some(&rights)).await,
            Ext::DeleteAcl(_, who) => self.set_acl(tag, &name, &who, None).await,
        }
    }

    /// GETACL (RFC 4314 3.3): the owner's rights and each grant's.
    fn get_acl(&mut self, tag: &str, name: &str) {
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
                let mut l = b"* ACL ".to_vec();
                wire::astring(&mut l, self.to_wire(&name).as_bytes());
                for (who, rights) in entries {
                    l.push(b' ');
                    wire::astring(&mut l, who.as_bytes());
                    l.extend_from_slice(format!(" {rights}").as_bytes());
                }
                l.extend_from_slice(b"\r\n");
                self.out.extend_from_slice(&l);
                self.ok(tag, "GETACL completed")
            }
            // Grants are the owner's to read: a sharee is told it may not.
            Err(StoreError::Forbidden) => {
                self.no(tag, "[NOPERM] only the owner administers this mailbox")
            }
            Err(e) => self.store_no(tag, e),
        }
    }

    /// SETACL and DELETEACL (RFC 4314 3.1, 3.2): `rights` with an optional leading + or -
    /// that adds to or takes from the current ones; `None` removes the grant.
    async fn set_acl(&mut self, tag: &str, name: &str, who: &str, rights: Option<&str>) {
        if who.starts_with('-') {
            return self.no(tag, "[CANNOT] negative rights are not supported");
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
                return self.no(tag, "[NOPERM] only the owner administers this mailbox");
            }
            Err(StoreError::NotFound) => {
                return self.no(tag, "[NONEXISTENT] no such mailbox, user or group");
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
            Err(why) => return self.no(tag, &format!("[NOPERM] {why}")),
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
            Err(StoreError::Forbidden) => {
                self.no(tag, "[NOPERM] only the owner administers this mailbox")
            }
            Err(e) => self.store_no(tag, e),
        }
    }

    /// GETQUOTAROOT (RFC 9208): the user's own mailboxes share its quota, root "".
    fn quota_root(&mut self, tag: &str, name: &str) {
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

    fn quota(&mut self, tag: &str) {
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
    fn quota_line(&self) -> Result<Option<String>, StoreError> {
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

    /// Sequence numbers (1-based) a set names, in order.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
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
                for (i, u) in s.uids.iter().enumerate() {
                    if u >= a && u <= b {
                        out.push(i + 1);
                    }
                }
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

    async fn fetch(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        what: &MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) {
        let mut changed_since = None;
        let mut vanished = false;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(v) => changed_since = Some(v.get()),
                FetchModifier::Vanished => vanished = true,
            }
        }
        if vanished && !(uid && self.qresync && changed_since.is_some()) {
            return self.bad_cmd(tag, "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC");
        }
        let mut names: Vec<MessageDataItemName> = match what {
            MacroOrMessageDataItemNames::Macro(m) => match m {
                Macro::Fast => vec![
                    MessageDataItemName::Flags,
                    MessageDataItemName::InternalDate,
                    MessageDataItemName::Rfc822Size,
                ],
                Macro::All => vec![
                    MessageDataItemName::Flags,
                    MessageDataItemName::InternalDate,
                    MessageDataItemName::Rfc822Size,
                    MessageDataItemName::Envelope,
                ],
                _ => vec![
                    MessageDataItemName::Flags,
                    MessageDataItemName::InternalDate,
                    MessageDataItemName::Rfc822Size,
                    MessageDataItemName::Envelope,
                    MessageDataItemName::Body,
                ],
            },
            MacroOrMessageDataItemNames::MessageDataItemNames(n) => n.clone(),
        };
        if uid && !names.iter().any(|n| matches!(n, MessageDataItemName::Uid)) {
            names.insert(0, MessageDataItemName::Uid);
        }
        let wants_modseq = names
            .iter()
            .any(|n| matches!(n, MessageDataItemName::ModSeq));
        if changed_since.is_some() && !wants_modseq {
            names.push(MessageDataItemName::ModSeq);
        }
        self.condstore |= changed_since.is_some() || wants_modseq;
        let seqs = self.resolve(set, uid);
        let (coll, read_only, private, uids) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only, s.private_seen, s.uids.clone()),
            _ => return,
        };
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        let reader = match store.reader(actor) {
            Ok(r) => r,
            Err(e) => return self.store_no(tag, e),
        };
        // QRESYNC's VANISHED (EARLIER): UIDs of the set expunged since CHANGEDSINCE.
        if vanished
            && let Some(since) = changed_since
            && let Ok(c) = reader.collection(coll)
            && let Some(l) = vanished_earlier(Some(&reader), &c, since, uids.iter(), Some(set))
        {
            self.line(&l);
        }
        // Fetching a body without PEEK sets \Seen (RFC 9051 6.4.5).
        let sets_seen = !read_only
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Binary { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        for seq in seqs {
            let Some(id) = uids.uid(seq).map(u64::from) else {
                continue;
            };
            let mut item = match reader.item(coll, id) {
                Ok(i) => self.viewed(i, private),
                Err(StoreError::NotFound) => continue, // expunged meanwhile; told later
                Err(e) => return self.store_no(tag, e),
            };
            if changed_since.is_some_and(|m| item.modseq <= m) {
                continue;
            }
            if sets_seen && !has(&item.flags, SEEN) {
                let r = store
                    .write(actor, vec![], move |w| {
                        if private {
                            w.set_private_seen(coll, id, true)
                        } else {
                            w.update_item(coll, id, None, |it| it.flags.push(SEEN.into()))
                        }
                    })
                    .await;
                if let Ok(updated) = r {
                    item = self.viewed(updated, private);
                }
                if !names
                    .iter()
                    .any(|n| matches!(n, MessageDataItemName::Flags))
                {
                    names.push(MessageDataItemName::Flags);
                }
            }
            let content = if names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { .. }
                        | MessageDataItemName::Binary { .. }
                        | MessageDataItemName::BinarySize { .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Header
                        | MessageDataItemName::Rfc822Text
                        | MessageDataItemName::Envelope
                        | MessageDataItemName::BodyStructure
                        | MessageDataItemName::Body
                )
            }) {
                match reader.content(&item) {
                    Ok(c) => c,
                    Err(e) => return self.store_no(tag, e),
                }
            } else {
                Vec::new()
            };
            let parsed = if names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::Envelope
                        | MessageDataItemName::BodyStructure
                        | MessageDataItemName::Body
                )
            }) {
                bureau_core::mime::parse(&content)
            } else {
                None
            };
            let mut parts: Vec<Vec<u8>> = Vec::new();
            for n in &names {
                let mut p = Vec::new();
                match n {
                    MessageDataItemName::Uid => p.extend_from_slice(format!("UID {id}").as_bytes()),
                    MessageDataItemName::ModSeq => {
                        p.extend_from_slice(format!("MODSEQ ({})", item.modseq).as_bytes())
                    }
                    MessageDataItemName::Flags => {
                        p.extend_from_slice(format!("FLAGS ({})", item.flags.join(" ")).as_bytes())
                    }
                    MessageDataItemName::Rfc822Size => {
                        p.extend_from_slice(format!("RFC822.SIZE {}", item.size()).as_bytes())
                    }
                    MessageDataItemName::InternalDate => p.extend_from_slice(
                        format!("INTERNALDATE \"{}\"", wire::internal_date(item.date)).as_bytes(),
                    ),
                    MessageDataItemName::Envelope => {
                        p.extend_from_slice(b"ENVELOPE ");
                        match &parsed {
                            Some(m) => crate::envelope::envelope(&mut p, m),
                            None => {
                                p.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")
                            }
                        }
                    }
                    MessageDataItemName::BodyStructure | MessageDataItemName::Body => {
                        let ext = matches!(n, MessageDataItemName::BodyStructure);
                        p.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
                        match &parsed {
                            Some(m) => crate::envelope::body_structure(&mut p, m, 0, ext),
                            None => p.extend_from_slice(
                                format!(
                                    "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" {} 0)",
                                    content.len()
                                )
                                .as_bytes(),
                            ),
                        }
                    }
                    MessageDataItemName::Rfc822 => {
                        p.extend_from_slice(b"RFC822 ");
                        wire::literal(&mut p, &content);
                    }
                    MessageDataItemName::Rfc822Header => {
                        p.extend_from_slice(b"RFC822.HEADER ");
                        wire::literal(&mut p, &content[..header_end(&content)]);
                    }
                    MessageDataItemName::Rfc822Text => {
                        p.extend_from_slice(b"RFC822.TEXT ");
                        wire::literal(&mut p, &content[header_end(&content)..]);
                    }
                    MessageDataItemName::BodyExt {
                        section,
                        partial: part,
                        ..
                    } => {
                        let (label, data) = crate::fetch::section(section.as_ref(), &content);
                        match part {
                            Some((origin, len)) => {
                                p.extend_from_slice(format!("BODY[{label}]<{origin}> ").as_bytes());
                                wire::literal(&mut p, partial(&data, *origin, len.get()));
                            }
                            None => {
                                p.extend_from_slice(format!("BODY[{label}] ").as_bytes());
                                wire::literal(&mut p, &data);
                            }
                        }
                    }
                    MessageDataItemName::Binary {
                        section,
                        partial: part,
                        ..
                    } => {
                        let data = match binary(&content, section) {
                            Ok(d) => d,
                            Err(why) => return self.no(tag, why),
                        };
                        let label = section_label(section);
                        match part {
                            Some((origin, len)) => {
                                p.extend_from_slice(
                                    format!("BINARY[{label}]<{origin}> ").as_bytes(),
                                );
                                wire::literal8(&mut p, partial(&data, *origin, len.get()));
                            }
                            None => {
                                p.extend_from_slice(format!("BINARY[{label}] ").as_bytes());
                                wire::literal8(&mut p, &data);
                            }
                        }
                    }
                    MessageDataItemName::BinarySize { section } => {
                        let size = match binary(&content, section) {
                            Ok(d) => d.len(),
                            Err(why) => return self.no(tag, why),
                        };
                        p.extend_from_slice(
                            format!("BINARY.SIZE[{}] {size}", section_label(section)).as_bytes(),
                        );
                    }
                }
                parts.push(p);
            }
            let flags_told = names
                .iter()
                .any(|n| matches!(n, MessageDataItemName::Flags));
            self.out
                .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
            self.out.extend_from_slice(&parts.join(&b' '));
            self.out.extend_from_slice(b")\r\n");
            if let State::Selected(_, s) = &mut self.state
                && flags_told
            {
                s.told(item.id, item.modseq);
            }
        }
        self.ok(
            tag,
            &format!("{}FETCH completed", if uid { "UID " } else { "" }),
        );
    }

    /// STORE, with UNCHANGEDSINCE (RFC 7162 3.1.3). On a mailbox shared with the user,
    /// \\Seen is the user's own and the other flags need the write right.
    #[allow(clippy::too_many_arguments)]
    async fn store(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        kind: StoreType,
        resp: StoreResponse,
        flags: Vec<String>,
        uid: bool,
        unchanged_since: Option<u64>,
    ) {
        let (coll, read_only, access, private, uids) = match &self.state {
            State::Selected(_, s) => (
                s.coll,
                s.read_only,
                s.access,
                s.private_seen,
                s.uids.clone(),
            ),
            _ => return,
        };
        if read_only {
            return self.no(tag, "[READ-ONLY] mailbox is read-only");
        }
        let seen = has(&flags, SEEN);
        let others: Vec<String> = flags
            .iter()
            .filter(|f| !(private && f.eq_ignore_ascii_case(SEEN)))
            .cloned()
            .collect();
        let may_write = access >= Access::ReadWrite;
        if !may_write && !others.is_empty() {
            return self.no(tag, "[NOPERM] you may only change \\Seen in this mailbox");
        }
        self.condstore |= unchanged_since.is_some();
        let seqs = self.resolve(set, uid);
        let ids: Vec<u64> = seqs
            .iter()
            .filter_map(|s| uids.uid(*s))
            .map(u64::from)
            .collect();
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        let result = store
            .write(actor, vec![], move |w| {
                let (mut done, mut modified) = (Vec::new(), Vec::new());
                for id in &ids {
                    let mut item = match w.item(coll, *id) {
                        Ok(i) => i,
                        Err(StoreError::NotFound) => continue,
                        Err(e) => return Err(e),
                    };
                    if unchanged_since.is_some_and(|m| item.modseq > m) {
                        modified.push(*id);
                        continue;
                    }
                    if private {
                        let mark = match kind {
                            StoreType::Replace => Some(seen),
                            StoreType::Add => seen.then_some(true),
                            StoreType::Remove => seen.then_some(false),
                        };
                        if let Some(on) = mark {
                            item = w.set_private_seen(coll, *id, on)?;
                        }
                    }
                    if !others.is_empty() || (kind == StoreType::Replace && may_write) {
                        item = w.update_item(coll, *id, None, |it| {
                            // The owner's \\Seen stays when a sharee replaces the flags.
                            let keep = private && has(&it.flags, SEEN);
                            match kind {
                                StoreType::Replace => it.flags = others.clone(),
                                StoreType::Add => it.flags.extend(others.iter().cloned()),
                                StoreType::Remove => it.flags.retain(|f| !has(&others, f)),
                            }
                            if keep && !has(&it.flags, SEEN) {
                                it.flags.push(SEEN.into());
                            }
                        })?;
                    }
                    done.push(item);
                }
                Ok((done, modified))
            })
            .await;
        let (items, modified) = match result {
            Ok(r) => r,
            Err(e) => return self.store_no(tag, e),
        };
        let condstore = self.condstore;
        for item in items {
            let item = self.viewed(item, private);
            let Some(seq) = u32::try_from(item.id).ok().and_then(|u| uids.seq(u)) else {
                continue;
            };
            if let State::Selected(_, s) = &mut self.state {
                s.told(item.id, item.modseq);
            }
            // With CONDSTORE the new modseq is told even for .SILENT (RFC 7162 3.1.3).
            if resp == StoreResponse::Answer || condstore {
                let mut parts = Vec::new();
                if uid || self.qresync {
                    parts.push(format!("UID {}", item.id));
                }
                if resp == StoreResponse::Answer {
                    parts.push(format!("FLAGS ({})", item.flags.join(" ")));
                }
                if condstore {
                    parts.push(format!("MODSEQ ({})", item.modseq));
                }
                self.line(&format!("* {seq} FETCH ({})", parts.join(" ")));
            }
        }
        let verb = if uid { "UID STORE" } else { "STORE" };
        if modified.is_empty() {
            self.ok(tag, &format!("{verb} completed"));
        } else {
            let nums: Vec<u32> = modified
                .iter()
                .filter_map(|id| {
                    let seq = uids.seq(u32::try_from(*id).ok()?)? as u32;
                    Some(if uid { *id as u32 } else { seq })
                })
                .collect();
            self.ok(
                tag,
                &format!(
                    "[MODIFIED {}] {verb}: some messages changed meanwhile",
                    uid_set(&nums)
                ),
            );
        }
    }

    /// Removes the messages marked \\Deleted (all, or those UIDs), telling the client.
    async fn expunge(&mut self, only: Option<Vec<u32>>) -> Result<(), StoreError> {
        self.remove_deleted(only).await?;
        // The change log tells this session as it tells every other.
        self.updates(true);
        Ok(())
    }

    /// Removes the selected mailbox's \Deleted messages (only those UIDs, if given).
    async fn remove_deleted(&mut self, only: Option<Vec<u32>>) -> Result<(), StoreError> {
        let (coll, read_only, access) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only, s.access),
            _ => return Ok(()),
        };
        if read_only {
            return Ok(());
        }
        if access < Access::ReadWrite {
            return Err(StoreError::Forbidden);
        }
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        // Current flags from the store, not from this session's view.
        let reader = store.reader(actor)?;
        let doomed: Vec<u64> = reader
            .items(coll)?
            .into_iter()
            .filter(|i| has(&i.flags, "\\Deleted"))
            .filter(|i| only.as_ref().is_none_or(|o| o.contains(&(i.id as u32))))
            .map(|i| i.id)
            .collect();
        store
            .write(actor, vec![], move |w| {
                doomed.iter().try_for_each(|id| w.delete_item(coll, *id))
            })
            .await?;
        Ok(())
    }

    /// Tells the client what changed in the selected mailbox since it last heard: new
    /// messages, flag changes, and (when `expunges` is allowed) removals, as EXPUNGE or,
    /// with QRESYNC, VANISHED.
    fn updates(&mut self, expunges: bool) {
        let Ok(r) = self.reader() else {
            return;
        };
        let (condstore, qresync, me) = (self.condstore, self.qresync, self.principal());
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
        let mut lines = Vec::new();
        if expunges {
            let deleted: HashSet<u64> = ch.deleted.iter().copied().collect();
            let mut gone = Vec::new();
            let mut seqs = Vec::new();
            for (i, u) in s.uids.iter().enumerate() {
                if deleted.contains(&u64::from(u)) {
                    seqs.push(i + 1);
                    gone.push(u);
                }
            }
            if !qresync {
                // Highest first, so that each number is still right when the client reads it.
                lines.extend(seqs.iter().rev().map(|n| format!("* {n} EXPUNGE")));
            }
            s.uids.retain(|u| !deleted.contains(&u64::from(u)));
            if qresync && !gone.is_empty() {
                lines.push(format!("* VANISHED {}", uid_set(&gone)));
            }
        }
        let mut added = false;
        for item in ch.changed {
            let item = view(item, s.private_seen.then_some(me));
            let uid = item.id as u32;
            match s.seq(item.id) {
                Some(_) if s.told.get(&uid) == Some(&item.modseq) => {}
                Some(seq) => {
                    s.told.insert(uid, item.modseq);
                    let mut parts = Vec::new();
                    if qresync {
                        parts.push(format!("UID {uid}"));
                    }
                    parts.push(format!("FLAGS ({})", item.flags.join(" ")));
                    if condstore {
                        parts.push(format!("MODSEQ ({})", item.modseq));
                    }
                    lines.push(format!("* {seq} FETCH ({})", parts.join(" ")));
                }
                None if s.uids.last().is_none_or(|l| l < uid) => {
                    s.uids.push(uid);
                    added = true;
                }
                None => {}
            }
        }
        if added {
            lines.push(format!("* {} EXISTS", s.uids.len()));
        }
        if expunges || ch.deleted.is_empty() {
            s.modseq = ch.modseq;
            s.told.retain(|_, m| *m > ch.modseq);
        }
        for l in lines {
            self.line(&l);
        }
    }

    /// IDLE (RFC 2177): updates pushed from the change bus until the client says DONE.
    async fn idle(&mut self, tag: &str, frag: &mut Fragmentizer, buf: &mut [u8]) -> bool {
        let mut bus = self.db().subscribe();
        self.line("+ idling");
        self.updates(true);
        if !self.flush().await {
            return false;
        }
        let coll = match &self.state {
            State::Selected(_, s) => Some(s.coll),
            _ => None,
        };
        loop {
            if frag.progress().is_some() {
                if frag.is_message_complete() {
                    let line = frag.message_bytes().trim_ascii().to_vec();
                    if line.eq_ignore_ascii_case(b"DONE") {
                        self.ok(tag, "IDLE terminated");
                    } else {
                        self.bad_cmd(tag, "expected DONE");
                    }
                    return true;
                }
                continue;
            }
            let Some(stream) = self.stream.as_mut() else {
                return false;
            };
            tokio::select! {
                r = tokio::time::timeout(AUTH_TIMEOUT, stream.read(buf)) => match r {
                    Ok(Ok(n)) if n > 0 => frag.enqueue_bytes(&buf[..n]),
                    _ => return false,
                },
                change = bus.recv() => {
                    let relevant = match change {
                        Ok(c) => Some(c.collection) == coll,
                        Err(_) => true,
                    };
                    if relevant {
                        self.updates(true);
                        if !self.flush().await {
                            return false;
                        }
                    }
                }
                _ = self.shutdown.signalled() => {
                    self.line("* BYE server shutting down");
                    self.flush().await;
                    return false;
                }
            }
        }
    }
}

/// LIST and LSUB match the reference and the wildcard as one pattern.
fn list_pattern(reference: &Mailbox, wildcard: &ListMailbox) -> Vec<u8> {
    let mut p = mailbox_bytes(reference);
    p.extend_from_slice(match wildcard {
        ListMailbox::Token(t) => t.as_ref(),
        ListMailbox::String(s) => s.as_ref(),
    });
    p
}

fn mailbox_bytes(m: &Mailbox) -> Vec<u8> {
    match m {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(o) => o.inner().as_ref().to_vec(),
    }
}

fn has(flags: &[String], f: &str) -> bool {
    flags.iter().any(|x| x.eq_ignore_ascii_case(f))
}

/// An item's flags as `private_seen_of` sees them: its own \Seen in place of the owner's.
fn view(mut item: Item, private_seen_of: Option<u64>) -> Item {
    if let Some(p) = private_seen_of {
        item.flags.retain(|f| !f.eq_ignore_ascii_case(SEEN));
        if item.seen_by(p) {
            item.flags.push(SEEN.into());
            item.flags.sort();
        }
    }
    item
}

/// QRESYNC's `* VANISHED (EARLIER)` line: the UIDs of `coll` expunged after `since`, within
/// `within` when given; once the change log no longer reaches back that far (or cannot be
/// read), every UID below UIDNEXT that is not `present`. `None` when there are none.
fn vanished_earlier(
    r: Option<&bureau_store::Reader>,
    coll: &bureau_store::Collection,
    since: u64,
    present: impl Iterator<Item = u32>,
    within: Option<&SequenceSet>,
) -> Option<String> {
    let largest = coll.next_item.saturating_sub(1) as u32;
    let gone: Vec<u32> = match r.map(|r| r.changes_since(coll.id, since)) {
        Some(Ok(ch)) => ch.deleted.iter().map(|u| *u as u32).collect(),
        _ => {
            let present: HashSet<u32> = present.collect();
            (1..=largest).filter(|u| !present.contains(u)).collect()
        }
    };
    let gone: Vec<u32> = gone
        .into_iter()
        .filter(|u| within.is_none_or(|w| crate::search::in_set(w, *u, largest)))
        .collect();
    (!gone.is_empty()).then(|| format!("* VANISHED (EARLIER) {}", uid_set(&gone)))
}

/// UIDs as a sequence set with ranges ("1:3,7"), in ascending order.
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}:{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(",")
}

fn message_bytes(m: &imap_codec::imap_types::extensions::binary::LiteralOrLiteral8) -> Vec<u8> {
    use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
    match m {
        LiteralOrLiteral8::Literal(l) => l.data().to_vec(),
        LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
    }
}

/// The decoded content of BINARY[section] (empty for a part that does not exist), or why
/// it cannot be given.
fn binary(content: &[u8], section: &[std::num::NonZeroU32]) -> Result<Vec<u8>, &'static str> {
    let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
    match crate::fetch::binary(content, &path) {
        Some(Binary::Data(d)) => Ok(d),
        None => Ok(Vec::new()),
        Some(Binary::UnknownCte) => Err("[UNKNOWN-CTE] cannot decode this part"),
        Some(Binary::Undecodable) => Err("[PARSE] the part's transfer encoding is damaged"),
    }
}

/// "1.2" for BINARY[1.2].
fn section_label(section: &[std::num::NonZeroU32]) -> String {
    let parts: Vec<String> = section.iter().map(|n| n.to_string()).collect();
    parts.join(".")
}
