//! One SMTP connection: greeting, EHLO, optional STARTTLS and AUTH, then transactions.
//!
//! The state is what the fields hold: `helo` (after EHLO/HELO), `user` (after AUTH),
//! `envelope` (after MAIL, with recipients after RCPT). Which commands each state allows is
//! decided in `command`, one place.
//!
//! Never write to the socket while a store write is pending on this session's behalf: the
//! reply waits for the commit.

use crate::data::DataReader;
use crate::deliver::{Accepted, commit, new_id, received};
use crate::queue::QueueEntry;
use crate::recipient::{self, Resolved};
use crate::{Ctx, Mode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bureau_core::AuthError;
use bureau_core::net::Stream;
use bureau_core::shutdown::Shutdown;
use bureau_directory::User;
use smtp_proto::request::receiver::{BdatReceiver, RequestReceiver};
use smtp_proto::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest AUTH response line.
const MAX_AUTH_LINE: usize = 12 * 1024;

struct Rcpt {
    address: String,
    /// NOTIFY=NEVER, and ORCPT (RFC 3461), kept for the queue's report.
    notify_never: bool,
    orcpt: Option<String>,
    /// Local principals this recipient delivers to (one user, or a group's members).
    local: Vec<u64>,
}

struct Envelope {
    from: String,
    env_id: Option<String>,
    ret_full: bool,
    rcpts: Vec<Rcpt>,
}

enum Phase {
    Command,
    Data(DataReader),
    Bdat(BdatReceiver),
    /// Waiting for an AUTH continuation line: mechanism, and the LOGIN user once given.
    Auth(u64, Option<String>),
}

/// What the reading loop does after a command.
enum Next {
    Continue,
    StartTls,
    Quit,
}

pub(crate) struct Session {
    ctx: Arc<Ctx>,
    mode: Mode,
    peer: SocketAddr,
    stream: Option<Stream>,
    shutdown: Shutdown,
    out: Vec<u8>,
    helo: Option<String>,
    esmtp: bool,
    user: Option<User>,
    envelope: Option<Envelope>,
    msg: Vec<u8>,
    msg_too_big: bool,
    /// A BDAT sequence already failed: its chunks are read and dropped until LAST.
    bdat_failed: bool,
    /// The BDAT chunk being read was refused: drop it.
    discard_chunk: bool,
    line: Vec<u8>,
    bad_commands: u32,
    auth_failures: u32,
}

impl Session {
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        mode: Mode,
        peer: SocketAddr,
        stream: Stream,
        shutdown: Shutdown,
    ) -> Session {
        Session {
            ctx,
            mode,
            peer,
            stream: Some(stream),
            shutdown,
            out: Vec::with_capacity(512),
            helo: None,
            esmtp: false,
            user: None,
            envelope: None,
            msg: Vec::new(),
            msg_too_big: false,
            bdat_failed: false,
            discard_chunk: false,
            line: Vec::new(),
            bad_commands: 0,
            auth_failures: 0,
        }
    }

    fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(Stream::is_tls)
    }

    fn reply(&mut self, code: u16, enhanced: &str, text: &str) {
        let line = if enhanced.is_empty() {
            format!("{code} {text}\r\n")
        } else {
            format!("{code} {enhanced} {text}\r\n")
        };
        self.out.extend_from_slice(line.as_bytes());
    }

    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let Some(s) = self.stream.as_mut() else {
            return false;
        };
        let ok = s.write_all(&self.out).await.is_ok() && s.flush().await.is_ok();
        self.out.clear();
        ok
    }

    pub(crate) async fn run(mut self) {
        let greeting = format!("{} ESMTP Bureau", self.ctx.hostname);
        self.reply(220, "", &greeting);
        if !self.flush().await {
            return;
        }
        let mut receiver = RequestReceiver::default();
        let mut phase = Phase::Command;
        let mut buf = vec![0u8; 32 * 1024];
        let cmd_timeout = Duration::from_secs(self.ctx.cfg.command_timeout_secs);
        let data_timeout = Duration::from_secs(self.ctx.cfg.data_timeout_secs);
        'conn: loop {
            let idle = matches!(phase, Phase::Command) && self.envelope.is_none();
            let timeout = if matches!(phase, Phase::Command | Phase::Auth(..)) {
                cmd_timeout
            } else {
                data_timeout
            };
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            let read = tokio::select! {
                r = tokio::time::timeout(timeout, stream.read(&mut buf)) => r,
                _ = self.shutdown.signalled(), if idle => {
                    self.reply(421, "4.3.2", "Service shutting down, try again later");
                    self.flush().await;
                    return;
                }
            };
            let n = match read {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => n,
                Err(_) => {
                    self.reply(421, "4.4.2", "Timeout, closing connection");
                    self.flush().await;
                    return;
                }
            };
            let mut bytes = buf[..n].iter();
            loop {
                match &mut phase {
                    Phase::Command => match receiver.ingest(&mut bytes) {
                        Ok(req) => {
                            let req = req.into_owned();
                            match self.command(req, &mut phase).await {
                                Next::Continue => {}
                                Next::Quit => {
                                    self.flush().await;
                                    return;
                                }
                                Next::StartTls => {
                                    if !self.flush().await {
                                        return;
                                    }
                                    // Anything pipelined after STARTTLS came in the clear: drop it.
                                    receiver = RequestReceiver::default();
                                    let Some(plain) = self.stream.take() else {
                                        return;
                                    };
                                    let hs = plain.into_tls(&self.ctx.tls);
                                    match tokio::time::timeout(Duration::from_secs(30), hs).await {
                                        Ok(Ok(tls)) => self.stream = Some(tls),
                                        _ => return,
                                    }
                                    // RFC 3207 4.2: forget what the client said before.
                                    self.helo = None;
                                    self.esmtp = false;
                                    self.envelope = None;
                                    continue 'conn;
                                }
                            }
                        }
                        Err(Error::NeedsMoreData { .. }) => break,
                        Err(e) => {
                            if !self.syntax_error(e) {
                                self.flush().await;
                                return;
                            }
                        }
                    },
                    Phase::Data(rx) => {
                        let rest = bytes.as_slice();
                        let (n, done) = rx.ingest(rest, &mut self.msg);
                        bytes = rest[n..].iter();
                        self.bound_message();
                        if !done {
                            break;
                        }
                        phase = Phase::Command;
                        self.end_of_message().await;
                    }
                    Phase::Bdat(rx) => {
                        let done = rx.ingest(&mut bytes, &mut self.msg);
                        self.bound_message();
                        if !done {
                            break;
                        }
                        let last = rx.is_last;
                        phase = Phase::Command;
                        if self.discard_chunk {
                            self.discard_chunk = false;
                            self.msg.clear();
                        } else if last {
                            self.end_of_message().await;
                        } else {
                            let n = self.msg.len();
                            self.reply(250, "2.0.0", &format!("{n} bytes received"));
                        }
                    }
                    Phase::Auth(mech, login_user) => {
                        let (mech, login_user) = (*mech, login_user.take());
                        match self.read_line(&mut bytes) {
                            LineRead::Partial => {
                                phase = Phase::Auth(mech, login_user);
                                break;
                            }
                            LineRead::TooLong => {
                                phase = Phase::Command;
                                self.reply(500, "5.5.6", "Authentication exchange line too long");
                            }
                            LineRead::Line(line) => {
                                phase = self.auth_step(mech, login_user, &line).await;
                            }
                        }
                    }
                }
                if bytes.as_slice().is_empty() {
                    break;
                }
            }
            if !self.flush().await {
                return;
            }
            let limits = bureau_core::limits::get();
            if self.bad_commands > limits.smtp_bad_commands
                || self.auth_failures >= limits.smtp_auth_failures
            {
                self.reply(421, "4.7.0", "Too many errors, closing connection");
                self.flush().await;
                return;
            }
        }
    }

    /// Returns false when the connection should end.
    fn syntax_error(&mut self, e: Error) -> bool {
        self.bad_commands += 1;
        match e {
            Error::UnknownCommand => self.reply(500, "5.5.1", "Command unrecognized"),
            Error::InvalidSenderAddress => self.reply(501, "5.1.7", "Bad sender address syntax"),
            Error::InvalidRecipientAddress => {
                self.reply(501, "5.1.3", "Bad recipient address syntax")
            }
            Error::SyntaxError { syntax } => self.reply(501, "5.5.4", &format!("Syntax: {syntax}")),
            Error::InvalidParameter { param } => {
                self.reply(501, "5.5.4", &format!("Invalid parameter {param}"))
            }
            Error::UnsupportedParameter { param } => {
                let p: String = param
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect();
                self.reply(504, "5.5.4", &format!("Unsupported parameter {p}"))
            }
            Error::ResponseTooLong => self.reply(500, "5.5.2", "Line too long"),
            Error::NeedsMoreData { .. } | Error::InvalidResponse { .. } => {
                self.reply(500, "5.5.2", "Syntax error")
            }
        }
        self.bad_commands <= bureau_core::limits::get().smtp_bad_commands
    }

    /// Keeps an oversized message from growing without bound: past the limit the bytes are
    /// dropped and the message will be refused at its end.
    fn bound_message(&mut self) {
        if self.msg.len() > self.ctx.cfg.max_message_bytes {
            self.msg_too_big = true;
            self.msg.clear();
        }
    }

    fn read_line(&mut self, bytes: &mut std::slice::Iter<'_, u8>) -> LineRead {
        let rest = bytes.as_slice();
        match rest.iter().position(|b| *b == b'\n') {
            Some(pos) => {
                self.line.extend_from_slice(&rest[..pos]);
                *bytes = rest[pos + 1..].iter();
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > MAX_AUTH_LINE {
                    return LineRead::TooLong;
                }
                LineRead::Line(line)
            }
            None => {
                self.line.extend_from_slice(rest);
                *bytes = [].iter();
                if self.line.len() > MAX_AUTH_LINE {
                    self.line.clear();
                    return LineRead::TooLong;
                }
                LineRead::Partial
            }
        }
    }

    fn can_auth(&self) -> bool {
        self.mode.is_submission() && self.is_tls()
    }

    fn ehlo(&mut self, host: String, esmtp: bool) {
        self.helo = Some(host);
        self.esmtp = esmtp;
        self.envelope = None;
        if !esmtp {
            let text = format!("{} Hello", self.ctx.hostname);
            self.reply(250, "", &text);
            return;
        }
        let mut e = EhloResponse::new(self.ctx.hostname.as_str());
        e.capabilities = EXT_PIPELINING
            | EXT_8BIT_MIME
            | EXT_SMTP_UTF8
            | EXT_SIZE
            | EXT_ENHANCED_STATUS_CODES
            | EXT_CHUNKING
            | EXT_DSN;
        e.size = self.ctx.cfg.max_message_bytes;
        if !self.is_tls() {
            e.capabilities |= EXT_START_TLS;
        }
        if self.can_auth() && self.user.is_none() {
            e.capabilities |= EXT_AUTH;
            e.auth_mechanisms = AUTH_PLAIN | AUTH_LOGIN;
        }
        let _ = e.write(&mut self.out);
    }

    async fn command(&mut self, req: Request<String>, phase: &mut Phase) -> Next {
        match req {
            Request::Ehlo { host } => self.ehlo(host, true),
            Request::Helo { host } => self.ehlo(host, false),
            Request::StartTls => {
                if self.is_tls() {
                    self.reply(503, "5.5.1", "TLS already active");
                } else {
                    self.reply(220, "2.0.0", "Ready to start TLS");
                    return Next::StartTls;
                }
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                *phase = self.auth_start(mechanism, initial_response).await;
            }
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => {
                if self.ready_for_data() {
                    self.reply(354, "", "Start mail input; end with <CRLF>.<CRLF>");
                    self.msg.clear();
                    self.msg_too_big = false;
                    self.msg_too_big = false;
                    *phase = Phase::Data(DataReader::new());
                }
            }
            Request::Bdat {
                chunk_size,
                is_last,
            } => {
                // A refused chunk is still read (it is on its way), then dropped; so is the
                // rest of its sequence, up to LAST.
                let refused_before = self.bdat_failed;
                if refused_before {
                    self.reply(503, "5.5.1", "BDAT sequence already refused");
                }
                let ok = !refused_before && self.ready_for_data();
                self.discard_chunk = !ok;
                self.bdat_failed = !ok && !is_last;
                if ok && self.msg.len().saturating_add(chunk_size) > self.ctx.cfg.max_message_bytes
                {
                    self.msg_too_big = true;
                }
                *phase = Phase::Bdat(BdatReceiver::new(chunk_size, is_last));
            }
            Request::Rset => {
                self.envelope = None;
                self.msg.clear();
                self.bdat_failed = false;
                self.reply(250, "2.0.0", "Ok");
            }
            Request::Noop { .. } => self.reply(250, "2.0.0", "Ok"),
            Request::Vrfy { .. } => self.reply(252, "2.1.5", "Cannot verify; send mail and see"),
            Request::Expn { .. } => self.reply(502, "5.5.1", "EXPN not available"),
            Request::Help { .. } => self.reply(214, "2.0.0", "See RFC 5321"),
            Request::Quit => {
                self.reply(221, "2.0.0", "Bye");
                return Next::Quit;
            }
            Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.bad_commands += 1;
                self.reply(502, "5.5.1", "Command not implemented");
            }
        }
        Next::Continue
    }

    fn ready_for_data(&mut self) -> bool {
        match &self.envelope {
            None => {
                self.bad_commands += 1;
                self.reply(503, "5.5.1", "MAIL first");
                false
            }
            Some(e) if e.rcpts.is_empty() => {
                self.reply(554, "5.5.1", "No valid recipients");
                false
            }
            Some(_) => true,
        }
    }

    fn mail(&mut self, from: MailFrom<String>) {
        if self.helo.is_none() {
            self.bad_commands += 1;
            return self.reply(503, "5.5.1", "EHLO first");
        }
        if self.envelope.is_some() {
            self.bad_commands += 1;
            return self.reply(503, "5.5.1", "Nested MAIL command");
        }
        if self.mode.is_submission() {
            if !self.is_tls() {
                return self.reply(530, "5.7.0", "Must issue a STARTTLS command first");
            }
            let Some(user) = &self.user else {
                return self.reply(530, "5.7.0", "Authentication required");
            };
            if !recipient::owns(user, &from.address) {
                return self.reply(553, "5.7.1", "Sender address is not one of yours");
            }
        } else if !self.ctx.take_message_slot(self.peer.ip().to_canonical()) {
            return self.reply(
                451,
                "4.7.1",
                "Too many messages from your address; slow down",
            );
        }
        if from.size > self.ctx.cfg.max_message_bytes {
            return self.reply(552, "5.3.4", "Message size exceeds fixed limit");
        }
        if from.address.len() > 320 {
            return self.reply(501, "5.1.7", "Sender address too long");
        }
        self.envelope = Some(Envelope {
            from: from.address.to_lowercase(),
            env_id: from.env_id.clone(),
            ret_full: from.flags & MAIL_RET_FULL != 0,
            rcpts: Vec::new(),
        });
        self.reply(250, "2.1.0", "Ok");
    }

    fn rcpt(&mut self, to: RcptTo<String>) {
        let Some(envelope) = &self.envelope else {
            self.bad_commands += 1;
            return self.reply(503, "5.5.1", "MAIL first");
        };
        if envelope.rcpts.len() >= self.ctx.cfg.max_recipients {
            return self.reply(452, "4.5.3", "Too many recipients");
        }
        let address = to.address.to_lowercase();
        let resolved = match recipient::resolve(self.ctx.auth.directory(), &address) {
            Ok(r) => r,
            Err(e) => {
                log::error!("smtp: resolving a recipient: {e}");
                return self.reply(451, "4.3.0", "Temporary failure, try again later");
            }
        };
        let local = match resolved {
            Resolved::Local(users) => users,
            Resolved::Unknown => return self.reply(550, "5.1.1", "No such user here"),
            Resolved::Disabled => return self.reply(550, "5.2.1", "Mailbox disabled"),
            Resolved::Foreign if self.user.is_some() => {
                // Our authenticated user writing to another domain: the outbound queue.
                let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
                if bureau_directory::validate::domain(domain).is_err() {
                    return self.reply(550, "5.1.2", "Bad destination domain");
                }
                Vec::new()
            }
            Resolved::Foreign => return self.reply(554, "5.7.1", "Relay access denied"),
        };
        // A room or equipment takes mail from outside only when it may be booked from there.
        if self.user.is_none()
            && local
                .iter()
                .any(|u| u.resource.as_ref().is_some_and(|r| !r.external))
        {
            return self.reply(
                550,
                "5.7.1",
                "This resource is booked from this office only",
            );
        }
        // Quota: refuse now rather than accept and fail later (RFC 5321 4.5.3.1.10).
        let store = self.ctx.auth.directory().store();
        for u in &local {
            if let Some(q) = u.quota {
                let used = store
                    .reader(bureau_store::Actor::System)
                    .and_then(|r| r.usage(u.principal))
                    .unwrap_or(0);
                if used >= q {
                    return self.reply(452, "4.2.2", "Mailbox full");
                }
            }
        }
        let envelope = self.envelope.as_mut().expect("checked above");
        if !envelope.rcpts.iter().any(|r| r.address == address) {
            envelope.rcpts.push(Rcpt {
                address,
                notify_never: to.flags & RCPT_NOTIFY_NEVER != 0,
                orcpt: to.orcpt.clone(),
                local: local.iter().map(|u| u.principal).collect(),
            });
        }
        self.reply(250, "2.1.5", "Ok");
    }

    async fn auth_start(&mut self, mechanism: u64, initial: String) -> Phase {
        if !self.mode.is_submission() {
            self.reply(
                502,
                "5.5.1",
                "AUTH not available on this port; use submission (587)",
            );
            return Phase::Command;
        }
        if !self.is_tls() {
            self.reply(538, "5.7.11", "Encryption required: issue STARTTLS first");
            return Phase::Command;
        }
        if self.user.is_some() {
            self.reply(503, "5.5.1", "Already authenticated");
            return Phase::Command;
        }
        if self.envelope.is_some() {
            self.reply(503, "5.5.1", "AUTH not allowed during a mail transaction");
            return Phase::Command;
        }
        match mechanism {
            AUTH_PLAIN if initial.is_empty() => {
                self.reply(334, "", "");
                Phase::Auth(AUTH_PLAIN, None)
            }
            AUTH_PLAIN => self.auth_step(AUTH_PLAIN, None, initial.as_bytes()).await,
            AUTH_LOGIN if initial.is_empty() => {
                self.reply(334, "", "VXNlcm5hbWU6");
                Phase::Auth(AUTH_LOGIN, None)
            }
            AUTH_LOGIN => self.auth_step(AUTH_LOGIN, None, initial.as_bytes()).await,
            _ => {
                self.reply(504, "5.5.4", "Mechanism not supported");
                Phase::Command
            }
        }
    }

    async fn auth_step(&mut self, mech: u64, login_user: Option<String>, line: &[u8]) -> Phase {
        if line == b"*" {
            self.reply(501, "5.0.0", "Authentication cancelled");
            return Phase::Command;
        }
        let decoded = if line == b"=" {
            Some(Vec::new())
        } else {
            B64.decode(line).ok()
        };
        let Some(decoded) = decoded else {
            self.reply(501, "5.5.2", "Invalid base64");
            return Phase::Command;
        };
        let (login, password) = match (mech, login_user) {
            (AUTH_PLAIN, _) => {
                // authzid NUL authcid NUL password (RFC 4616)
                let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                if parts.len() != 3 {
                    self.reply(501, "5.5.2", "Malformed PLAIN response");
                    return Phase::Command;
                }
                let (authz, authc, pw) = (parts[0], parts[1], parts[2]);
                if !authz.is_empty() && authz != authc {
                    self.auth_failures += 1;
                    self.reply(535, "5.7.8", "Authorization identity must be your own");
                    return Phase::Command;
                }
                (
                    String::from_utf8_lossy(authc).into_owned(),
                    String::from_utf8_lossy(pw).into_owned(),
                )
            }
            (_, None) => {
                self.reply(334, "", "UGFzc3dvcmQ6");
                return Phase::Auth(
                    AUTH_LOGIN,
                    Some(String::from_utf8_lossy(&decoded).into_owned()),
                );
            }
            (_, Some(user)) => (user, String::from_utf8_lossy(&decoded).into_owned()),
        };
        let ip = self.peer.ip().to_canonical();
        match self.ctx.auth.login(ip, &login, &password, "smtp").await {
            Ok(user) => {
                self.user = Some(user);
                self.reply(235, "2.7.0", "Authentication successful");
            }
            Err(AuthError::Refused) => {
                self.auth_failures = bureau_core::limits::get().smtp_auth_failures;
                self.reply(
                    454,
                    "4.7.0",
                    "Too many failed logins from your address; try later",
                );
            }
            Err(AuthError::Internal(_)) => {
                self.reply(454, "4.7.0", "Temporary authentication failure")
            }
            Err(_) => {
                self.auth_failures += 1;
                self.reply(535, "5.7.8", "Authentication credentials invalid");
            }
        }
        Phase::Command
    }

    /// On submission, the domain of the From: address, which must be the user's own as
    /// every Sender: must (else the refusal is sent, and Err); from outside, None.
    fn author_domain(&mut self, msg: &[u8]) -> Result<Option<String>, ()> {
        let Some(user) = &self.user else {
            return Ok(None);
        };
        let parsed = mail_parser::MessageParser::default().parse_headers(msg);
        match recipient::author(user, parsed.as_ref()) {
            recipient::Author::Own(from) => Ok(recipient::split(&from).map(|(_, d)| d)),
            recipient::Author::NoFrom => {
                self.reply(550, "5.6.0", "The message has no From: header");
                Err(())
            }
            recipient::Author::NotYours(field, _) => {
                let why = format!("{field}: address is not one of yours");
                self.reply(550, "5.7.1", &why);
                Err(())
            }
        }
    }

    /// The copy for the outbound queue and its entry: signed once, here, for the From:
    /// domain (DMARC alignment), with each recipient's DSN wishes.
    fn for_queue(
        &self,
        envelope: &Envelope,
        id: &str,
        remote: &[String],
        from_domain: Option<&str>,
        trace: &str,
        msg: &[u8],
    ) -> (Vec<u8>, QueueEntry) {
        let sig = from_domain
            .and_then(|d| crate::dkim::signature(self.ctx.auth.directory(), d, msg))
            .unwrap_or_default();
        let mut m = Vec::with_capacity(msg.len() + trace.len() + sig.len());
        m.extend_from_slice(sig.as_bytes());
        m.extend_from_slice(trace.as_bytes());
        m.extend_from_slice(msg);
        let mut entry = QueueEntry::new(id, &envelope.from, remote);
        entry.env_id = envelope.env_id.clone();
        entry.ret_full = envelope.ret_full;
        for qr in &mut entry.rcpts {
            if let Some(r) = envelope.rcpts.iter().find(|r| r.address == qr.address) {
                qr.notify_never = r.notify_never;
                qr.orcpt = r.orcpt.clone();
            }
        }
        (m, entry)
    }

    /// The message is complete: check it, add the trace headers, deliver, answer.
    async fn end_of_message(&mut self) {
        let Some(envelope) = self.envelope.take() else {
            self.reply(503, "5.5.1", "MAIL first");
            return;
        };
        let msg = std::mem::take(&mut self.msg);
        if self.msg_too_big {
            self.msg_too_big = false;
            return self.reply(552, "5.3.4", "Message size exceeds fixed limit");
        }
        if let Some(pos) = bare_line_ending(&msg) {
            log::info!(
                "smtp: refused a message from {} with a bare CR or LF at byte {pos}",
                self.peer.ip()
            );
            return self.reply(
                550,
                "5.5.2",
                "Message contains a bare CR or LF; lines must end with CRLF",
            );
        }
        let header_len = msg
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(msg.len());
        if header_len > self.ctx.cfg.max_header_bytes {
            return self.reply(552, "5.3.4", "Header section too large");
        }
        let Ok(from_domain) = self.author_domain(&msg) else {
            return;
        };
        // Mail from outside: say what SPF, DKIM and DMARC found, and drop any claim in our name.
        let mut auth_results = String::new();
        if self.user.is_none()
            && let Some(v) = &self.ctx.verifier
        {
            let helo = self.helo.as_deref().unwrap_or("");
            auth_results = v
                .results(
                    &self.ctx.hostname,
                    self.peer.ip().to_canonical(),
                    helo,
                    &envelope.from,
                    &msg,
                )
                .await;
        }
        let msg = if self.user.is_none() {
            crate::verify::strip_forged_results(&msg, &self.ctx.hostname)
        } else {
            msg
        };
        let id = new_id();
        let single = (envelope.rcpts.len() == 1).then(|| envelope.rcpts[0].address.as_str());
        let trace = received(
            self.helo.as_deref().unwrap_or("unknown"),
            self.peer.ip().to_canonical(),
            &self.ctx.hostname,
            self.is_tls(),
            self.user.is_some(),
            &id,
            single,
        );
        let principals: Vec<u64> = envelope
            .rcpts
            .iter()
            .flat_map(|r| r.local.iter().copied())
            .collect();
        // Calendar mail from outside, told once it is filed.
        let arrival = match &self.ctx.arrivals {
            Some(a) if self.user.is_none() && !principals.is_empty() && has_calendar(&msg) => {
                let from = mail_parser::MessageParser::default()
                    .parse_headers(&msg)
                    .and_then(|m| m.from()?.first()?.address().map(str::to_lowercase));
                from.map(|f| (a.clone(), principals.clone(), f, msg.clone()))
            }
            _ => None,
        };
        let dmarc_failed = auth_results.contains("dmarc=fail");
        let remote: Vec<String> = envelope
            .rcpts
            .iter()
            .filter(|r| r.local.is_empty())
            .map(|r| r.address.clone())
            .collect();
        let filed = principals.clone();
        let msg_for_oof = if filed.is_empty() {
            Vec::new()
        } else {
            msg.clone()
        };
        let local = (!principals.is_empty()).then(|| {
            // Return-Path is added at final delivery (RFC 5321 4.4).
            let mut m = Vec::with_capacity(msg.len() + trace.len() + 64);
            m.extend_from_slice(format!("Return-Path: <{}>\r\n", envelope.from).as_bytes());
            m.extend_from_slice(trace.as_bytes());
            m.extend_from_slice(auth_results.as_bytes());
            m.extend_from_slice(&msg);
            (m, principals)
        });
        let remote = (!remote.is_empty()).then(|| {
            self.for_queue(
                &envelope,
                &id,
                &remote,
                from_domain.as_deref(),
                &trace,
                &msg,
            )
        });
        let store = self.ctx.auth.directory().store().clone();
        match commit(&store, &self.ctx.queue, Accepted { local, remote }).await {
            Ok(()) => {
                log::info!(
                    "smtp: {id} from <{}> to {} recipient(s) delivered ({} bytes)",
                    envelope.from,
                    envelope.rcpts.len(),
                    msg.len()
                );
                self.reply(250, "2.0.0", &format!("Ok: queued as {id}"));
                if let Some((a, principals, from, msg)) = arrival {
                    a.arrived(&principals, &from, dmarc_failed, &msg);
                }
                if !filed.is_empty() {
                    let (queue, sender) = (self.ctx.queue.clone(), envelope.from.clone());
                    tokio::spawn(
                        async move { queue.auto_reply(&filed, &sender, &msg_for_oof).await },
                    );
                }
            }
            Err(bureau_store::StoreError::DiskFull(e)) => {
                log::warn!("smtp: {id} refused, disk full: {e}");
                self.reply(452, "4.3.1", "Insufficient system storage, try again later");
            }
            Err(e) => {
                log::error!("smtp: {id} delivery failed: {e}");
                self.reply(451, "4.3.0", "Local delivery failed, try again later");
            }
        }
    }
}

enum LineRead {
    Line(Vec<u8>),
    Partial,
    TooLong,
}

/// Whether a message may carry a calendar part (a cheap look before anyone parses it).
fn has_calendar(msg: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"text/calendar";
    msg.windows(NEEDLE.len())
        .any(|w| w.eq_ignore_ascii_case(NEEDLE))
}

/// Position of the first LF not preceded by CR, or CR not followed by LF.
fn bare_line_ending(msg: &[u8]) -> Option<usize> {
    let mut prev = 0u8;
    for (i, &b) in msg.iter().enumerate() {
        if (b == b'\n' && prev != b'\r') || (prev == b'\r' && b != b'\n') {
            return Some(i);
        }
        prev = b;
    }
    (prev == b'\r').then(|| msg.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::bare_line_ending;

    #[test]
    fn finds_bare_line_endings() {
        assert_eq!(bare_line_ending(b"a\r\nb\r\n"), None);
        assert_eq!(bare_line_ending(b"a\nb\r\n"), Some(1));
        assert_eq!(bare_line_ending(b"a\r\nb\rc\r\n"), Some(5));
        assert_eq!(bare_line_ending(b"a\r"), Some(1));
        assert_eq!(bare_line_ending(b""), None);
    }
}
