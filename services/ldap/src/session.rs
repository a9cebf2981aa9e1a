//! One LDAP connection: binds, searches, the extended operations, StartTLS.

use crate::tree::{self, Entry};
use crate::{Ctx, filter};
use bureau_core::auth::AuthError;
use bureau_core::net::Stream;
use bureau_core::shutdown::Shutdown;
use bureau_directory::User;
use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::codec::Framed;

const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
const OID_PAGED: &str = "1.2.840.113556.1.4.319";
const OID_NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";
/// A connection that has not bound is closed after this; a bound one after `IDLE`.
const UNBOUND_IDLE: Duration = Duration::from_secs(60);
const IDLE: Duration = Duration::from_secs(30 * 60);

/// Who the connection is bound as.
enum Bound {
    None,
    Anonymous,
    User(Box<User>),
    /// A service account (read-only), by the DN it bound with.
    Service(String),
}

struct Session {
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    tls: bool,
    bound: Bound,
    errors: u32,
}

fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_string(),
        referral: Vec::new(),
    }
}

fn msg(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg {
        msgid,
        op,
        ctrl: Vec::new(),
    }
}

/// What one request asks the connection to do after its answers are sent.
enum After {
    Continue,
    StartTls,
    Close,
}

pub(crate) async fn run(ctx: Arc<Ctx>, stream: Stream, peer: SocketAddr, mut shutdown: Shutdown) {
    let tls = stream.is_tls();
    let mut s = Session {
        ctx,
        peer,
        tls,
        bound: Bound::None,
        errors: 0,
    };
    let codec = || LdapCodec::new(Some(bureau_core::limits::get().ldap_message_bytes), None);
    let mut framed = Framed::new(stream, codec());
    loop {
        let idle = match s.bound {
            Bound::User(_) | Bound::Service(_) => IDLE,
            _ => UNBOUND_IDLE,
        };
        let next = tokio::select! {
            r = tokio::time::timeout(idle, framed.next()) => r,
            _ = shutdown.signalled() => return,
        };
        let request = match next {
            Err(_) | Ok(None) => return,
            Ok(Some(Err(e))) => {
                // RFC 4511 4.4.1: a Notice of Disconnection, then the connection closes.
                log::debug!("ldap: {} sent what is not LDAP: {e}", s.peer);
                let notice = LdapExtendedResponse {
                    res: result(
                        LdapResultCode::ProtocolError,
                        "malformed or oversized message",
                    ),
                    name: Some(OID_NOTICE_OF_DISCONNECTION.into()),
                    value: None,
                };
                let _ = framed.send(msg(0, LdapOp::ExtendedResponse(notice))).await;
                return;
            }
            Ok(Some(Ok(m))) => m,
        };
        let (answers, after) = s.handle(request).await;
        for a in answers {
            if framed.send(a).await.is_err() {
                return;
            }
        }
        match after {
            After::Continue => {}
            After::Close => return,
            After::StartTls => {
                let parts = framed.into_parts();
                // Anything sent before the handshake is discarded (no command injection).
                let stream = match parts.io.into_tls(&s.ctx.tls).await {
                    Ok(t) => t,
                    Err(e) => {
                        log::debug!("ldap: StartTLS with {}: {e}", s.peer);
                        return;
                    }
                };
                s.tls = true;
                framed = Framed::new(stream, codec());
            }
        }
        if s.errors >= bureau_core::limits::get().ldap_errors {
            return;
        }
    }
}

impl Session {
    async fn handle(&mut self, m: LdapMsg) -> (Vec<LdapMsg>, After) {
        let id = m.msgid;
        match m.op {
            LdapOp::BindRequest(b) => {
                let res = self.bind(b).await;
                let op = LdapOp::BindResponse(LdapBindResponse {
                    res,
                    saslcreds: None,
                });
                (vec![msg(id, op)], After::Continue)
            }
            LdapOp::UnbindRequest => (vec![], After::Close),
            LdapOp::SearchRequest(r) => (self.search(id, &r, &m.ctrl), After::Continue),
            LdapOp::CompareRequest(c) => {
                let res = self.compare(&c);
                (vec![msg(id, LdapOp::CompareResult(res))], After::Continue)
            }
            LdapOp::AbandonRequest(_) => (vec![], After::Continue),
            LdapOp::ExtendedRequest(x) => self.extended(id, x).await,
            LdapOp::AddRequest(_) => (
                vec![msg(id, LdapOp::AddResponse(read_only()))],
                After::Continue,
            ),
            LdapOp::DelRequest(_) => (
                vec![msg(id, LdapOp::DelResponse(read_only()))],
                After::Continue,
            ),
            LdapOp::ModifyRequest(_) => (
                vec![msg(id, LdapOp::ModifyResponse(read_only()))],
                After::Continue,
            ),
            LdapOp::ModifyDNRequest(_) => (
                vec![msg(id, LdapOp::ModifyDNResponse(read_only()))],
                After::Continue,
            ),
            // A response sent to a server: the client does not speak LDAP (RFC 4511 4.1.1).
            _ => {
                self.errors += 1;
                (vec![], After::Close)
            }
        }
    }

    async fn bind(&mut self, b: LdapBindRequest) -> LdapResult {
        self.bound = Bound::None;
        if b.version != 3 {
            self.errors += 1;
            return result(LdapResultCode::ProtocolError, "LDAPv3 only");
        }
        let password = match b.cred {
            LdapBindCred::Simple(p) => p,
            _ => {
                return result(
                    LdapResultCode::AuthMethodNotSupported,
                    "simple bind only (over TLS)",
                );
            }
        };
        if b.dn.is_empty() && password.is_empty() {
            // Anonymous: clients bind so before reading the root DSE; what it may search is
            // decided there (nothing but the root DSE unless `allow_anonymous`).
            self.bound = Bound::Anonymous;
            return result(LdapResultCode::Success, "");
        }
        if password.is_empty() {
            // RFC 4513 5.1.2: an unauthenticated bind is not a login.
            return result(
                LdapResultCode::UnwillingToPerform,
                "unauthenticated bind (a name without a password) is refused",
            );
        }
        if self.ctx.cfg.require_tls && !self.tls {
            return result(
                LdapResultCode::ConfidentialityRequired,
                "use StartTLS (or port 636) before sending a password",
            );
        }
        let ip = self.peer.ip().to_canonical();
        let outcome = match (service_of(&b.dn), login_of(&b.dn)) {
            (Some((name, dn)), _) => self
                .ctx
                .auth
                .login_service(ip, &name, &password, "ldap")
                .await
                .map(|_| Bound::Service(dn)),
            (None, Some(login)) => self
                .ctx
                .auth
                .login(ip, &login, &password, "ldap")
                .await
                .map(|u| Bound::User(Box::new(u))),
            (None, None) => {
                return result(LdapResultCode::InvalidCredentials, "invalid credentials");
            }
        };
        match outcome {
            Ok(bound) => {
                self.bound = bound;
                result(LdapResultCode::Success, "")
            }
            Err(AuthError::Internal(_)) => {
                result(LdapResultCode::Unavailable, "the directory is unavailable")
            }
            Err(AuthError::Refused) => result(
                LdapResultCode::InvalidCredentials,
                "too many failures from your address; try again later",
            ),
            Err(_) => result(LdapResultCode::InvalidCredentials, "invalid credentials"),
        }
    }

    fn may_read(&self) -> bool {
        match self.bound {
            Bound::User(_) | Bound::Service(_) => true,
            Bound::Anonymous | Bound::None => self.ctx.cfg.allow_anonymous,
        }
    }

    fn search(&mut self, id: i32, r: &LdapSearchRequest, ctrl: &[LdapControl]) -> Vec<LdapMsg> {
        let done = |res: LdapResult| vec![msg(id, LdapOp::SearchResultDone(res))];
        // The root DSE is open to all, so clients can find the naming contexts and StartTLS.
        if r.base.is_empty() && r.scope == LdapSearchScope::Base {
            let mut out = Vec::new();
            let dse = self.root_dse();
            if filter::matches(&r.filter, &dse) {
                out.push(msg(id, LdapOp::SearchResultEntry(select(&dse, r))));
            }
            out.extend(done(result(LdapResultCode::Success, "")));
            return out;
        }
        if !self.may_read() {
            return done(result(
                LdapResultCode::InsufficentAccessRights,
                "bind first: anonymous searches are disabled",
            ));
        }
        let Some(base) = tree::normalize(&r.base) else {
            return done(result(
                LdapResultCode::InvalidDNSyntax,
                "the base is not a DN",
            ));
        };
        let started = Instant::now();
        let tree = match self.ctx.tree() {
            Ok(t) => t,
            Err(e) => {
                log::error!("ldap: reading the directory: {e}");
                return done(result(
                    LdapResultCode::Unavailable,
                    "the directory is unavailable",
                ));
            }
        };
        if !base.is_empty() && tree.get(&base).is_none() {
            let mut res = result(LdapResultCode::NoSuchObject, "no such entry");
            res.matcheddn = tree
                .entries
                .iter()
                .filter(|e| base.ends_with(&format!(",{}", e.dn)))
                .max_by_key(|e| e.dn.len())
                .map(|e| e.dn.clone())
                .unwrap_or_default();
            return done(res);
        }
        let in_scope = |e: &Entry| {
            let below = base.is_empty() || e.dn.ends_with(&format!(",{base}"));
            match r.scope {
                LdapSearchScope::Base => e.dn == base,
                LdapSearchScope::OneLevel => {
                    below && e.dn.split_once(',').map_or("", |(_, p)| p) == base
                        || (base.is_empty() && !e.dn.contains(','))
                }
                LdapSearchScope::Subtree => e.dn == base || below,
                LdapSearchScope::Children => below && e.dn != base,
            }
        };
        let found: Vec<&Entry> = tree
            .candidates(&r.filter)
            .into_iter()
            .filter(|e| in_scope(e) && filter::matches(&r.filter, e))
            .collect();
        let time_up =
            r.timelimit > 0 && started.elapsed() > Duration::from_secs(r.timelimit as u64);
        if time_up {
            return done(result(
                LdapResultCode::TimeLimitExceeded,
                "time limit exceeded",
            ));
        }
        // Paged results (RFC 2696): the cookie is where the next page starts, with a check
        // that it belongs to the same search.
        let paged = ctrl.iter().find_map(|c| match c {
            LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
            _ => None,
        });
        let key = search_key(r);
        let (from, count, next) = match &paged {
            Some((size, cookie)) => {
                let from = if cookie.is_empty() {
                    0
                } else {
                    match parse_cookie(cookie, key) {
                        Some(f) => f,
                        None => {
                            self.errors += 1;
                            return done(result(
                                LdapResultCode::UnwillingToPerform,
                                "this paging cookie belongs to another search",
                            ));
                        }
                    }
                };
                if *size <= 0 {
                    // Size 0 abandons the paged search.
                    let mut m = done(result(LdapResultCode::Success, ""));
                    m[0].ctrl = vec![paged_control(found.len(), Vec::new())];
                    return m;
                }
                let count = (*size as usize).min(self.ctx.cfg.size_limit.max(1));
                let end = (from + count).min(found.len());
                let next = if end < found.len() {
                    make_cookie(end, key)
                } else {
                    Vec::new()
                };
                (from, end.saturating_sub(from), Some(next))
            }
            None => {
                let limit = match r.sizelimit {
                    n if n > 0 => (n as usize).min(self.ctx.cfg.size_limit),
                    _ => self.ctx.cfg.size_limit,
                };
                (0, found.len().min(limit), None)
            }
        };
        let mut out: Vec<LdapMsg> = found
            .iter()
            .skip(from)
            .take(count)
            .map(|e| msg(id, LdapOp::SearchResultEntry(select(e, r))))
            .collect();
        let res = if next.is_none() && found.len() > count {
            result(LdapResultCode::SizeLimitExceeded, "size limit exceeded")
        } else {
            result(LdapResultCode::Success, "")
        };
        let mut d = msg(id, LdapOp::SearchResultDone(res));
        if let Some(cookie) = next {
            d.ctrl = vec![paged_control(found.len(), cookie)];
        }
        out.push(d);
        out
    }

    fn root_dse(&self) -> Entry {
        let contexts = self
            .ctx
            .auth
            .directory()
            .domains()
            .map(|ds| ds.iter().map(|d| tree::suffix(&d.name)).collect())
            .unwrap_or_default();
        Entry {
            dn: String::new(),
            attrs: vec![
                ("objectClass", vec!["top".into()]),
                ("namingContexts", contexts),
                ("supportedLDAPVersion", vec!["3".into()]),
                (
                    "supportedExtension",
                    vec![
                        OID_STARTTLS.into(),
                        OID_WHOAMI.into(),
                        OID_PASSWORD_MODIFY.into(),
                    ],
                ),
                ("supportedControl", vec![OID_PAGED.into()]),
                // RFC 3673: "+" asks for every operational attribute.
                ("supportedFeatures", vec!["1.3.6.1.4.1.4203.1.5.1".into()]),
                ("supportedSASLMechanisms", vec![]),
                ("vendorName", vec!["Bureau".into()]),
                ("vendorVersion", vec![env!("CARGO_PKG_VERSION").into()]),
            ],
        }
    }

    fn compare(&mut self, c: &LdapCompareRequest) -> LdapResult {
        if !self.may_read() {
            return result(LdapResultCode::InsufficentAccessRights, "bind first");
        }
        let Some(dn) = tree::normalize(&c.dn) else {
            return result(LdapResultCode::InvalidDNSyntax, "not a DN");
        };
        let Ok(tree) = self.ctx.tree() else {
            return result(LdapResultCode::Unavailable, "the directory is unavailable");
        };
        let Some(e) = tree.get(&dn) else {
            return result(LdapResultCode::NoSuchObject, "no such entry");
        };
        let value = String::from_utf8_lossy(&c.val).to_lowercase();
        match e.get(&c.atype) {
            None => result(LdapResultCode::NoSuchAttribute, "no such attribute"),
            Some(vs) if vs.iter().any(|v| v.to_lowercase() == value) => {
                result(LdapResultCode::CompareTrue, "")
            }
            Some(_) => result(LdapResultCode::CompareFalse, ""),
        }
    }

    async fn extended(&mut self, id: i32, x: LdapExtendedRequest) -> (Vec<LdapMsg>, After) {
        let answer = |res: LdapResult, name: Option<&str>, value: Option<Vec<u8>>| {
            msg(
                id,
                LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res,
                    name: name.map(str::to_string),
                    value,
                }),
            )
        };
        match x.name.as_str() {
            OID_STARTTLS => {
                if self.tls {
                    return (
                        vec![answer(
                            result(LdapResultCode::OperationsError, "TLS is already on"),
                            Some(OID_STARTTLS),
                            None,
                        )],
                        After::Continue,
                    );
                }
                (
                    vec![answer(
                        result(LdapResultCode::Success, ""),
                        Some(OID_STARTTLS),
                        None,
                    )],
                    After::StartTls,
                )
            }
            OID_WHOAMI => {
                let who = match &self.bound {
                    Bound::User(u) => format!("dn:{}", tree::user_dn(u)),
                    Bound::Service(dn) => format!("dn:{dn}"),
                    _ => String::new(),
                };
                (
                    vec![answer(
                        result(LdapResultCode::Success, ""),
                        None,
                        Some(who.into_bytes()),
                    )],
                    After::Continue,
                )
            }
            OID_PASSWORD_MODIFY => {
                let res = match LdapPasswordModifyRequest::try_from(&x) {
                    Ok(req) => self.password_modify(req).await,
                    Err(_) => result(LdapResultCode::ProtocolError, "malformed request"),
                };
                (vec![answer(res, None, None)], After::Continue)
            }
            other => {
                self.errors += 1;
                (
                    vec![answer(
                        result(
                            LdapResultCode::ProtocolError,
                            &format!("unsupported extended operation {other}"),
                        ),
                        None,
                        None,
                    )],
                    After::Continue,
                )
            }
        }
    }

    /// RFC 3062: a user changes its own password (giving the old one); an administrator
    /// may set anyone's. The server makes no passwords up.
    async fn password_modify(&mut self, req: LdapPasswordModifyRequest) -> LdapResult {
        let Bound::User(me) = &self.bound else {
            return result(LdapResultCode::InsufficentAccessRights, "bind first");
        };
        if !self.tls {
            return result(
                LdapResultCode::ConfidentialityRequired,
                "use TLS to change a password",
            );
        }
        let Some(new) = req.new_password.filter(|p| !p.is_empty()) else {
            return result(
                LdapResultCode::UnwillingToPerform,
                "give the new password; the server does not make one up",
            );
        };
        let target = match req.user_identity.as_deref().filter(|s| !s.is_empty()) {
            None => me.uid.clone(),
            Some(who) => match login_of(who.trim_start_matches("dn:")) {
                Some(l) => match self.ctx.auth.directory().user_by_login(&l) {
                    Ok(Some(u)) => u.uid,
                    _ => return result(LdapResultCode::NoSuchObject, "no such user"),
                },
                None => return result(LdapResultCode::NoSuchObject, "no such user"),
            },
        };
        let ip = self.peer.ip().to_canonical();
        if target == me.uid {
            // Its own: the old password proves it is the person, not a borrowed session.
            let old = req.old_password.unwrap_or_default();
            if self
                .ctx
                .auth
                .login(ip, &me.uid, &old, "password-change")
                .await
                .is_err()
            {
                return result(
                    LdapResultCode::InvalidCredentials,
                    "the old password is wrong",
                );
            }
        } else if !me.admin {
            return result(
                LdapResultCode::InsufficentAccessRights,
                "only administrators change other people's passwords",
            );
        }
        match self.ctx.auth.directory().set_password(&target, &new).await {
            Ok(()) => {
                log::info!("ldap: {} changed the password of {target}", me.uid);
                result(LdapResultCode::Success, "")
            }
            Err(e @ bureau_directory::DirectoryError::Invalid { .. }) => {
                result(LdapResultCode::ConstraintViolation, &e.to_string())
            }
            Err(e) => {
                log::error!("ldap: setting a password: {e}");
                result(LdapResultCode::Unavailable, "the directory is unavailable")
            }
        }
    }
}

fn read_only() -> LdapResult {
    result(
        LdapResultCode::UnwillingToPerform,
        "the directory is read-only here: change it in Bureau's console",
    )
}

/// A service account's bind DN (`cn=<name>,ou=services,<suffix>`): its name and DN.
fn service_of(dn: &str) -> Option<(String, String)> {
    let n = tree::normalize(dn)?;
    let (first, rest) = n.split_once(',')?;
    let name = first.strip_prefix("cn=")?;
    rest.starts_with("ou=services,")
        .then(|| (name.replace('\\', ""), n.clone()))
}

/// The login a bind name gives: a people DN's uid, or a uid or address as it is.
fn login_of(dn: &str) -> Option<String> {
    let dn = dn.trim();
    if !dn.contains('=') {
        return Some(dn.to_lowercase());
    }
    let n = tree::normalize(dn)?;
    let (first, rest) = n.split_once(',')?;
    let uid = first.strip_prefix("uid=")?;
    rest.starts_with("ou=people,")
        .then(|| uid.replace('\\', ""))
}

/// The entry with the attributes asked for: all user attributes for none or "*", the
/// operational ones too for "+", none for "1.1" alone.
fn select(e: &Entry, r: &LdapSearchRequest) -> LdapSearchResultEntry {
    let wanted: Vec<String> = r.attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
    let all = wanted.is_empty() || wanted.iter().any(|a| a == "*");
    let mut attributes: Vec<LdapPartialAttribute> = e
        .attrs
        .iter()
        .filter(|(n, _)| all || wanted.iter().any(|w| w.eq_ignore_ascii_case(n)))
        .map(|(n, vs)| LdapPartialAttribute {
            atype: n.to_string(),
            vals: if r.typesonly {
                Vec::new()
            } else {
                vs.iter().map(|v| v.clone().into_bytes()).collect()
            },
        })
        .collect();
    if wanted.iter().any(|a| a == "+" || a == "entrydn") && !e.dn.is_empty() {
        attributes.push(LdapPartialAttribute {
            atype: "entryDN".into(),
            vals: vec![e.dn.clone().into_bytes()],
        });
    }
    LdapSearchResultEntry {
        dn: e.dn.clone(),
        attributes,
    }
}

/// A fingerprint of a search, so that a paging cookie is only taken for the same one.
fn search_key(r: &LdapSearchRequest) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        r.base.to_lowercase(),
        r.scope.clone() as i64,
        &r.filter,
        &r.attrs,
    )
        .hash(&mut h);
    h.finish()
}

fn make_cookie(offset: usize, key: u64) -> Vec<u8> {
    format!("{offset}:{key:x}").into_bytes()
}

fn parse_cookie(c: &[u8], key: u64) -> Option<usize> {
    let s = std::str::from_utf8(c).ok()?;
    let (offset, k) = s.split_once(':')?;
    (u64::from_str_radix(k, 16).ok()? == key).then_some(())?;
    offset.parse().ok()
}

fn paged_control(total: usize, cookie: Vec<u8>) -> LdapControl {
    LdapControl::SimplePagedResults {
        size: total as i64,
        cookie,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_names() {
        assert_eq!(
            login_of("uid=Alice,ou=people,dc=example,dc=com").as_deref(),
            Some("alice")
        );
        assert_eq!(
            login_of("alice@example.com").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(login_of("cn=x,ou=groups,dc=example,dc=com"), None);
        assert_eq!(
            service_of("cn=Wiki,ou=services,dc=example,dc=com"),
            Some((
                "wiki".into(),
                "cn=wiki,ou=services,dc=example,dc=com".into()
            ))
        );
        assert_eq!(service_of("uid=wiki,ou=people,dc=example,dc=com"), None);
    }

    #[test]
    fn cookies_belong_to_their_search() {
        let c = make_cookie(200, 42);
        assert_eq!(parse_cookie(&c, 42), Some(200));
        assert_eq!(parse_cookie(&c, 43), None);
        assert_eq!(parse_cookie(b"junk", 42), None);
    }
}
