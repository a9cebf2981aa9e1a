//! One IMAP connection. The state is an enum owning its data; `command` decides which
//! commands each state accepts, in one place.

use crate::fetch::{header_end, partial};
use crate::{Ctx, wire};
use base64::Engine;
use bureau_core::AuthError;
use bureau_core::net::Stream;
use bureau_core::shutdown::Shutdown;
use bureau_directory::User;
use bureau_store::{Actor, CollectionId, CollectionKind, Item, NewItem, StoreError};
use imap_codec::CommandCodec;
use imap_codec::fragmentizer::{
    DecodeMessageError, FragmentInfo, Fragmentizer, LiteralAnnouncement,
};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::LiteralMode;
use imap_codec::imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use imap_codec::imap_types::status::StatusDataItemName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest command, literals included (an APPENDed message).
const MAX_COMMAND: u32 = 64 << 20;
const UNAUTH_TIMEOUT: Duration = Duration::from_secs(60);
const AUTH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const MAX_BAD: u32 = 20;

/// The selected mailbox as this session knows it.
struct Selected {
    coll: CollectionId,
    read_only: bool,
    /// UIDs by message sequence number (index + 1).
    uids: Vec<u32>,
    /// Flags last reported, by UID order.
    flags: Vec<Vec<String>>,
    /// The collection's modseq this view reflects.
    modseq: u64,
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
}

fn mailbox_name(m: &Mailbox) -> String {
    match m {
        Mailbox::Inbox => "INBOX".into(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.inner().as_ref()).into_owned(),
    }
}

fn imap_flag(f: &Flag) -> String {
    f.to_string()
}

/// `*` and `%` patterns of LIST (RFC 9051 6.3.9), with "/" as the delimiter.
fn list_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| list_match(rest, &name[i..])),
        Some((b'%', rest)) => (0..=name.len())
            .take_while(|i| *i == 0 || name[i - 1] != b'/')
            .any(|i| list_match(rest, &name[i..])),
        Some((c, rest)) => {
            name.first().is_some_and(|n| n.eq_ignore_ascii_case(c)) && list_match(rest, &name[1..])
        }
    }
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
        ok
    }

    fn capabilities(&self) -> String {
        let mut c = String::from(
            "IMAP4rev1 SASL-IR UNSELECT LITERAL+ IDLE UIDPLUS MOVE NAMESPACE ID ENABLE",
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
        let mut buf = vec![0u8; 64 * 1024];
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
                        Err(e) => {
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
            CommandBody::Select { mailbox, .. } => {
                self.select(&tag, &mailbox_name(&mailbox), false)
            }
            CommandBody::Examine { mailbox, .. } => {
                self.select(&tag, &mailbox_name(&mailbox), true)
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let only_delimiter = match &mailbox_wildcard {
                    ListMailbox::Token(t) => t.as_ref().is_empty(),
                    ListMailbox::String(s) => s.as_ref().is_empty(),
                };
                self.list(
                    &tag,
                    &list_pattern(&reference, &mailbox_wildcard),
                    only_delimiter,
                )
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&tag, &mailbox_name(&mailbox), &item_names),
            CommandBody::Create { mailbox } => {
                let name = mailbox_name(&mailbox).trim_end_matches('/').to_string();
                let p = self.user().map(|u| u.principal).unwrap_or(0);
                let r = self
                    .ctx
                    .auth
                    .directory()
                    .store()
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
                let name = mailbox_name(&mailbox);
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
                let name = mailbox_name(&mailbox);
                let data = message_bytes(&message);
                let date = date.map(|d| d.as_ref().timestamp());
                self.append(
                    &tag,
                    &name,
                    flags.iter().map(imap_flag).collect(),
                    date,
                    data,
                )
                .await;
            }
            CommandBody::Namespace => {
                self.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                self.ok(&tag, "NAMESPACE completed");
            }
            CommandBody::Id { .. } => {
                let v = env!("CARGO_PKG_VERSION");
                self.line(&format!("* ID (\"name\" \"Bureau\" \"version\" \"{v}\")"));
                self.ok(&tag, "ID completed");
            }
            CommandBody::Enable { .. } => {
                // Nothing this server can enable yet (CONDSTORE, QRESYNC and UTF8 to come).
                self.line("* ENABLED");
                self.ok(&tag, "ENABLE completed");
            }
            CommandBody::Subscribe { mailbox } => {
                self.subscribe(&tag, &mailbox_name(&mailbox), true).await
            }
            CommandBody::Unsubscribe { mailbox } => {
                self.subscribe(&tag, &mailbox_name(&mailbox), false).await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.lsub(&tag, &list_pattern(&reference, &mailbox_wildcard)),
            CommandBody::Rename { from, to } => {
                self.rename(&tag, &mailbox_name(&from), &mailbox_name(&to))
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
                ..
            } => {
                self.fetch(&tag, &sequence_set, &macro_or_item_names, uid)
                    .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } => {
                self.store(
                    &tag,
                    &sequence_set,
                    kind,
                    response,
                    flags.iter().map(imap_flag).collect(),
                    uid,
                )
                .await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                let ok_charset = charset.as_ref().is_none_or(|c| {
                    let c = match c {
                        imap_codec::imap_types::core::Charset::Atom(a) => a.as_ref().to_string(),
                        imap_codec::imap_types::core::Charset::Quoted(q) => q.as_ref().to_string(),
                    };
                    c.eq_ignore_ascii_case("UTF-8") || c.eq_ignore_ascii_case("US-ASCII")
                });
                if ok_charset {
                    let key = imap_codec::imap_types::search::SearchKey::And(criteria);
                    self.search(&tag, &key, uid);
                } else {
                    self.no(&tag, "[BADCHARSET (UTF-8 US-ASCII)] charset not supported");
                }
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(&tag, &sequence_set, &mailbox_name(&mailbox), uid, false)
                    .await
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(&tag, &sequence_set, &mailbox_name(&mailbox), uid, true)
                    .await
            }
            CommandBody::ExpungeUid { sequence_set } => {
                let uids: Vec<u32> = self
                    .resolve(&sequence_set, true)
                    .into_iter()
                    .filter_map(|seq| match &self.state {
                        State::Selected(_, s) => s.uids.get(seq - 1).copied(),
                        _ => None,
                    })
                    .collect();
                if self.expunge(Some(uids)).await.is_ok() {
                    self.ok(&tag, "UID EXPUNGE completed");
                } else {
                    self.no(&tag, "[CANNOT] EXPUNGE failed");
                }
            }
            CommandBody::Expunge => {
                if self.expunge(None).await.is_ok() {
                    self.ok(&tag, "EXPUNGE completed");
                } else {
                    self.no(&tag, "[CANNOT] EXPUNGE failed");
                }
            }
            CommandBody::Close => {
                let _ = self.expunge(None).await;
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

    fn mailboxes(&self) -> Result<Vec<bureau_store::Collection>, StoreError> {
        let p = self.principal();
        let r = self.db().reader(Actor::Principal(p))?;
        Ok(r.collections_of(p)?
            .into_iter()
            .filter(|c| c.kind == CollectionKind::Mailbox)
            .collect())
    }

    fn find_mailbox(&self, name: &str) -> Result<bureau_store::Collection, StoreError> {
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            name
        };
        let p = self.principal();
        let r = self.db().reader(Actor::Principal(p))?;
        let c = r.collection_by_name(p, name)?;
        if c.kind != CollectionKind::Mailbox {
            return Err(StoreError::NotFound);
        }
        Ok(c)
    }

    fn db(&self) -> &bureau_store::Store {
        self.ctx.auth.directory().store()
    }

    /// A mailbox of the user's by name, with its messages.
    fn mailbox_items(
        &self,
        name: &str,
    ) -> Result<(bureau_store::Collection, Vec<Item>), StoreError> {
        let c = self.find_mailbox(name)?;
        let items = self
            .db()
            .reader(Actor::Principal(self.principal()))?
            .items(c.id)?;
        Ok((c, items))
    }

    fn select(&mut self, tag: &str, name: &str, read_only: bool) {
        self.deselect();
        let (coll, items) = match self.mailbox_items(name) {
            Ok(x) => x,
            Err(e) => return self.store_no(tag, e),
        };
        let unseen = items
            .iter()
            .position(|i| !i.flags.iter().any(|f| f == "\\Seen"));
        self.line("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
        self.line("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags permitted");
        self.line(&format!("* {} EXISTS", items.len()));
        self.line("* 0 RECENT");
        if let Some(u) = unseen {
            self.line(&format!("* OK [UNSEEN {}] first unseen", u + 1));
        }
        self.line(&format!("* OK [UIDVALIDITY {}] UIDs valid", coll.validity));
        self.line(&format!(
            "* OK [UIDNEXT {}] predicted next UID",
            coll.next_item
        ));
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
                uids: items.iter().map(|i| i.id as u32).collect(),
                flags: items.iter().map(|i| i.flags.clone()).collect(),
                modseq: coll.modseq,
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

    /// LIST of `full` (reference and wildcard); an empty wildcard asks for the delimiter.
    fn list(&mut self, tag: &str, full: &[u8], only_delimiter: bool) {
        if only_delimiter {
            self.line("* LIST (\\Noselect) \"/\" \"\"");
            return self.ok(tag, "LIST completed");
        }
        let boxes = match self.mailboxes() {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
        let names: Vec<String> = boxes.iter().map(|c| c.name.clone()).collect();
        for c in &boxes {
            if !list_match(full, c.name.as_bytes()) {
                continue;
            }
            let children = names.iter().any(|n| n.starts_with(&format!("{}/", c.name)));
            let mut attrs = vec![
                if children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                }
                .to_string(),
            ];
            if let Some(s) = c.props.get("special-use") {
                attrs.push(s.clone());
            }
            let mut line = format!("* LIST ({}) \"/\" ", attrs.join(" ")).into_bytes();
            wire::string(&mut line, c.name.as_bytes());
            self.out.extend_from_slice(&line);
            self.out.extend_from_slice(b"\r\n");
        }
        self.ok(tag, "LIST completed");
    }

    fn status(&mut self, tag: &str, name: &str, items: &[StatusDataItemName]) {
        let (c, msgs) = match self.mailbox_items(name) {
            Ok(x) => x,
            Err(e) => return self.store_no(tag, e),
        };
        let mut parts = Vec::new();
        for i in items {
            match i {
                StatusDataItemName::Messages => parts.push(format!("MESSAGES {}", msgs.len())),
                StatusDataItemName::UidNext => parts.push(format!("UIDNEXT {}", c.next_item)),
                StatusDataItemName::UidValidity => {
                    parts.push(format!("UIDVALIDITY {}", c.validity))
                }
                StatusDataItemName::Unseen => {
                    let n = msgs
                        .iter()
                        .filter(|m| !m.flags.iter().any(|f| f == "\\Seen"))
                        .count();
                    parts.push(format!("UNSEEN {n}"))
                }
                StatusDataItemName::Recent => parts.push("RECENT 0".into()),
                _ => {}
            }
        }
        let mut line = b"* STATUS ".to_vec();
        wire::string(&mut line, c.name.as_bytes());
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.out.extend_from_slice(&line);
        self.ok(tag, "STATUS completed");
    }

    async fn delete(&mut self, tag: &str, name: &str) {
        let c = match self.find_mailbox(name) {
            Ok(c) => c,
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

    async fn append(
        &mut self,
        tag: &str,
        name: &str,
        flags: Vec<String>,
        date: Option<i64>,
        data: Vec<u8>,
    ) {
        let c = match self.find_mailbox(name) {
            Ok(c) => c,
            Err(StoreError::NotFound) => return self.no(tag, "[TRYCREATE] no such mailbox"),
            Err(e) => return self.store_no(tag, e),
        };
        let store = self.db().clone();
        let s2 = store.clone();
        let staged = match tokio::task::spawn_blocking(move || s2.stage_blob(&data)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return self.store_no(tag, e),
            Err(_) => return self.no(tag, "[SERVERBUG] internal error"),
        };
        let blob = staged.blob_ref();
        let p = self.principal();
        let r = store
            .write(Actor::Principal(p), vec![staged], move |w| {
                w.put_item(
                    c.id,
                    NewItem {
                        blob: Some(blob),
                        flags: flags.clone(),
                        date,
                        ..Default::default()
                    },
                )
            })
            .await;
        match r {
            Ok(item) => {
                self.updates(true);
                self.ok(
                    tag,
                    &format!("[APPENDUID {} {}] APPEND completed", c.validity, item.id),
                );
            }
            Err(e) => self.store_no(tag, e),
        }
    }

    async fn subscribe(&mut self, tag: &str, name: &str, on: bool) {
        let c = match self.find_mailbox(name) {
            Ok(c) => c,
            Err(e) => return self.store_no(tag, e),
        };
        let p = self.principal();
        // Mailboxes are subscribed unless marked otherwise (new users see all of theirs).
        let value = (!on).then(|| "1".to_string());
        let r = self
            .db()
            .write(Actor::Principal(p), vec![], move |w| {
                w.set_collection_props(c.id, &[("unsubscribed".into(), value.clone())])
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
        let boxes = match self.mailboxes() {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
        for c in boxes
            .iter()
            .filter(|c| !c.props.contains_key("unsubscribed"))
        {
            if list_match(full, c.name.as_bytes()) {
                let mut line = b"* LSUB () \"/\" ".to_vec();
                wire::string(&mut line, c.name.as_bytes());
                self.out.extend_from_slice(&line);
                self.out.extend_from_slice(b"\r\n");
            }
        }
        self.ok(tag, "LSUB completed");
    }

    /// Renames a mailbox and the ones below it. INBOX cannot be renamed (yet: RFC 9051
    /// wants its messages moved into the new mailbox).
    async fn rename(&mut self, tag: &str, from: &str, to: &str) {
        if from.eq_ignore_ascii_case("INBOX") {
            return self.no(tag, "[CANNOT] renaming INBOX is not supported");
        }
        let to = to.trim_end_matches('/').to_string();
        let boxes = match self.mailboxes() {
            Ok(b) => b,
            Err(e) => return self.store_no(tag, e),
        };
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

    fn search(&mut self, tag: &str, key: &imap_codec::imap_types::search::SearchKey, uid: bool) {
        let (coll, uids) = match &self.state {
            State::Selected(_, s) => (s.coll, s.uids.clone()),
            _ => return,
        };
        let reader = match self.db().reader(Actor::Principal(self.principal())) {
            Ok(r) => r,
            Err(e) => return self.store_no(tag, e),
        };
        let need = crate::search::needs_content(key);
        let max_uid = uids.last().copied().unwrap_or(0);
        let mut hits = Vec::new();
        for (i, u) in uids.iter().enumerate() {
            let Ok(item) = reader.item(coll, u64::from(*u)) else {
                continue;
            };
            let content = if need {
                reader.content(&item).unwrap_or_default()
            } else {
                Vec::new()
            };
            let c = crate::search::Candidate {
                seq: i as u32 + 1,
                uid: *u,
                item: &item,
                content: &content,
                max_seq: uids.len() as u32,
                max_uid,
            };
            if crate::search::matches(key, &c) {
                hits.push(if uid { *u } else { i as u32 + 1 });
            }
        }
        let list: Vec<String> = hits.iter().map(u32::to_string).collect();
        let line = if list.is_empty() {
            "* SEARCH".to_string()
        } else {
            format!("* SEARCH {}", list.join(" "))
        };
        self.line(&line);
        self.ok(
            tag,
            &format!("{}SEARCH completed", if uid { "UID " } else { "" }),
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
            Ok(c) => c,
            Err(StoreError::NotFound) => return self.no(tag, "[TRYCREATE] no such mailbox"),
            Err(e) => return self.store_no(tag, e),
        };
        let seqs = self.resolve(set, uid);
        let ids: Vec<u64> = seqs.iter().map(|s| u64::from(uids[s - 1])).collect();
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
            for seq in seqs.iter().rev() {
                self.line(&format!("* {seq} EXPUNGE"));
                if let State::Selected(_, s) = &mut self.state {
                    s.uids.remove(seq - 1);
                    s.flags.remove(seq - 1);
                }
            }
            self.ok(tag, "MOVE completed");
        } else {
            self.ok(tag, &format!("{code}COPY completed"));
        }
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
        let max_uid = *s.uids.last().unwrap_or(&0);
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
                    if *u >= a && *u <= b {
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
    ) {
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
        if names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }
            )
        }) {
            return self.no(tag, "[CANNOT] BINARY is not supported yet");
        }
        let seqs = self.resolve(set, uid);
        let (coll, read_only, uids) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only, s.uids.clone()),
            _ => return,
        };
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        let reader = match store.reader(actor) {
            Ok(r) => r,
            Err(e) => return self.store_no(tag, e),
        };
        // Fetching a body without PEEK sets \Seen (RFC 9051 6.4.5).
        let sets_seen = !read_only
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        for seq in seqs {
            let id = uids[seq - 1] as u64;
            let mut item = match reader.item(coll, id) {
                Ok(i) => i,
                Err(StoreError::NotFound) => continue, // expunged meanwhile; told later
                Err(e) => return self.store_no(tag, e),
            };
            if sets_seen && !item.flags.iter().any(|f| f == "\\Seen") {
                if let Ok(updated) = store
                    .write(actor, vec![], move |w| {
                        w.update_item(coll, id, None, |it| it.flags.push("\\Seen".into()))
                    })
                    .await
                {
                    item = updated;
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
                mail_parser::MessageParser::default().parse(&content)
            } else {
                None
            };
            let mut parts: Vec<Vec<u8>> = Vec::new();
            for n in &names {
                let mut p = Vec::new();
                match n {
                    MessageDataItemName::Uid => p.extend_from_slice(format!("UID {id}").as_bytes()),
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
                    _ => {}
                }
                parts.push(p);
            }
            self.out
                .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
            self.out.extend_from_slice(&parts.join(&b' '));
            self.out.extend_from_slice(b")\r\n");
            if let State::Selected(_, s) = &mut self.state {
                s.flags[seq - 1] = item.flags.clone();
            }
        }
        self.ok(
            tag,
            &format!("{}FETCH completed", if uid { "UID " } else { "" }),
        );
    }

    async fn store(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        kind: StoreType,
        resp: StoreResponse,
        flags: Vec<String>,
        uid: bool,
    ) {
        let (coll, read_only, uids) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only, s.uids.clone()),
            _ => return,
        };
        if read_only {
            return self.no(tag, "[READ-ONLY] mailbox is read-only");
        }
        let seqs = self.resolve(set, uid);
        let ids: Vec<u64> = seqs.iter().map(|s| uids[s - 1] as u64).collect();
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        let result = store
            .write(actor, vec![], move |w| {
                let mut out = Vec::new();
                for id in &ids {
                    let edit = |it: &mut Item| match kind {
                        StoreType::Replace => it.flags = flags.clone(),
                        StoreType::Add => it.flags.extend(flags.iter().cloned()),
                        StoreType::Remove => it.flags.retain(|f| !flags.contains(f)),
                    };
                    match w.update_item(coll, *id, None, edit) {
                        Ok(i) => out.push(i),
                        Err(StoreError::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            })
            .await;
        let items = match result {
            Ok(i) => i,
            Err(e) => return self.store_no(tag, e),
        };
        for item in items {
            let Some(seq) = uids
                .iter()
                .position(|u| *u as u64 == item.id)
                .map(|p| p + 1)
            else {
                continue;
            };
            if let State::Selected(_, s) = &mut self.state {
                s.flags[seq - 1] = item.flags.clone();
            }
            if resp == StoreResponse::Answer {
                let uid_part = if uid {
                    format!("UID {} ", item.id)
                } else {
                    String::new()
                };
                self.line(&format!(
                    "* {seq} FETCH ({uid_part}FLAGS ({}))",
                    item.flags.join(" ")
                ));
            }
        }
        self.ok(
            tag,
            &format!("{}STORE completed", if uid { "UID " } else { "" }),
        );
    }

    /// Removes the messages marked \Deleted (all, or those UIDs), telling the client.
    async fn expunge(&mut self, only: Option<Vec<u32>>) -> Result<(), StoreError> {
        let (coll, read_only, uids) = match &self.state {
            State::Selected(_, s) => (s.coll, s.read_only, s.uids.clone()),
            _ => return Ok(()),
        };
        if read_only {
            return Ok(());
        }
        let store = self.db().clone();
        let actor = Actor::Principal(self.principal());
        // Current flags from the store, not from this session's view.
        let reader = store.reader(actor)?;
        let doomed: Vec<u64> = reader
            .items(coll)?
            .into_iter()
            .filter(|i| i.flags.iter().any(|f| f == "\\Deleted"))
            .filter(|i| only.as_ref().is_none_or(|o| o.contains(&(i.id as u32))))
            .map(|i| i.id)
            .collect();
        let d2 = doomed.clone();
        store
            .write(actor, vec![], move |w| {
                d2.iter().try_for_each(|id| w.delete_item(coll, *id))
            })
            .await?;
        // Highest sequence numbers first, so each number is right when sent.
        for (i, u) in uids.iter().enumerate().rev() {
            if doomed.contains(&(*u as u64)) {
                self.line(&format!("* {} EXPUNGE", i + 1));
                if let State::Selected(_, s) = &mut self.state {
                    s.uids.remove(i);
                    s.flags.remove(i);
                }
            }
        }
        self.updates(true);
        Ok(())
    }

    /// Tells the client what changed in the selected mailbox since it last heard: new
    /// messages, flag changes, and (when `expunges` is allowed) removals.
    fn updates(&mut self, expunges: bool) {
        let p = self.principal();
        let r = match self.db().reader(Actor::Principal(p)) {
            Ok(r) => r,
            Err(_) => return,
        };
        let State::Selected(_, s) = &mut self.state else {
            return;
        };
        let Ok(ch) = r.changes_since(s.coll, s.modseq) else {
            return;
        };
        if ch.changed.is_empty() && ch.deleted.is_empty() {
            return;
        }
        let mut lines = Vec::new();
        if expunges {
            for (i, u) in s.uids.clone().iter().enumerate().rev() {
                if ch.deleted.contains(&(*u as u64)) {
                    lines.push(format!("* {} EXPUNGE", i + 1));
                    s.uids.remove(i);
                    s.flags.remove(i);
                }
            }
        }
        let mut added = false;
        for item in &ch.changed {
            let uid = item.id as u32;
            match s.uids.iter().position(|u| *u == uid) {
                Some(i) if s.flags[i] != item.flags => {
                    s.flags[i] = item.flags.clone();
                    lines.push(format!(
                        "* {} FETCH (FLAGS ({}))",
                        i + 1,
                        item.flags.join(" ")
                    ));
                }
                Some(_) => {}
                None if s.uids.last().is_none_or(|l| *l < uid) => {
                    s.uids.push(uid);
                    s.flags.push(item.flags.clone());
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
    let mut p = match reference {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(o) => o.inner().as_ref().to_vec(),
    };
    p.extend_from_slice(match wildcard {
        ListMailbox::Token(t) => t.as_ref(),
        ListMailbox::String(s) => s.as_ref(),
    });
    p
}

fn message_bytes(m: &imap_codec::imap_types::extensions::binary::LiteralOrLiteral8) -> Vec<u8> {
    use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
    match m {
        LiteralOrLiteral8::Literal(l) => l.data().to_vec(),
        LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_patterns() {
        use super::list_match as m;
        assert!(m(b"*", b"Archive/2026"));
        assert!(m(b"%", b"INBOX") && !m(b"%", b"Archive/2026"));
        assert!(m(b"Archive/%", b"Archive/2026"));
        assert!(m(b"inbox", b"INBOX"));
        assert!(!m(b"Sent", b"Sent/old"));
    }
}
