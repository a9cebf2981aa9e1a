//! The outbound queue, persisted in the store: each entry is an item of the system
//! principal `_queue`'s `outbound` collection; its blob is the message, its `entry` property
//! the envelope with each recipient's state.
//!
//! Invariants:
//! - An entry is written in the same store write that acknowledges the message (with any
//!   local delivery), and removed in the same write that files its bounce: a crash at any
//!   point neither loses a message nor loses a bounce.
//! - Delivery is at least once: a crash after the remote 250 and before the entry's update
//!   sends that recipient again (as every MTA does).
//! - A bounce is never bounced: a message from the null sender that fails is dropped, logged.

use crate::dsn::{self, Failure};
use crate::recipient::{self, Resolved};
use bureau_core::config::{RelayConfig, SmtpConfig};
use bureau_core::shutdown::Shutdown;
use bureau_directory::Directory;
use bureau_store::{Actor, CollectionId, Content, Item, NewItem, Store, StoreError, Writer, now};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const QUEUE_PRINCIPAL: &str = "_queue";
const QUEUE_COLLECTION: &str = "outbound";
const ENTRY: &str = "entry";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RcptState {
    Pending,
    Delivered,
    Failed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueueRcpt {
    pub address: String,
    pub state: RcptState,
    #[serde(default)]
    pub error: Option<String>,
    /// NOTIFY=NEVER (RFC 3461): no bounce for this recipient.
    #[serde(default)]
    pub notify_never: bool,
    /// ORCPT, returned in the report.
    #[serde(default)]
    pub orcpt: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The id given to the client with its 250.
    pub id: String,
    /// Reverse path; empty for a bounce.
    pub from: String,
    pub rcpts: Vec<QueueRcpt>,
    pub created: i64,
    pub attempts: u32,
    pub next_attempt: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// ENVID, returned in the report.
    #[serde(default)]
    pub env_id: Option<String>,
    /// RET=FULL: a bounce returns the whole message, not only its headers.
    #[serde(default)]
    pub ret_full: bool,
}

/// An entry with its store item id and size, for listing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub item: u64,
    pub size: u64,
    #[serde(flatten)]
    pub entry: QueueEntry,
}

impl QueueEntry {
    pub fn new(id: &str, from: &str, rcpts: &[String]) -> QueueEntry {
        QueueEntry {
            id: id.to_string(),
            from: from.to_string(),
            rcpts: rcpts
                .iter()
                .map(|r| QueueRcpt {
                    address: r.clone(),
                    state: RcptState::Pending,
                    error: None,
                    notify_never: false,
                    orcpt: None,
                })
                .collect(),
            created: now(),
            attempts: 0,
            next_attempt: now(),
            last_error: None,
            env_id: None,
            ret_full: false,
        }
    }
}

/// Why a delivery did not happen.
enum Fail {
    /// Give up on this recipient: (enhanced status, diagnostic).
    Permanent(String, String),
    /// Try again later.
    Transient(String),
}

struct Inner {
    store: Store,
    dir: Directory,
    cfg: SmtpConfig,
    hostname: String,
    coll: CollectionId,
    wake: Notify,
}

#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl Queue {
    /// Opens the queue, creating its collection on first use.
    pub async fn open(
        dir: Directory,
        cfg: SmtpConfig,
        hostname: String,
    ) -> Result<Queue, StoreError> {
        let store = dir.store().clone();
        let existing = {
            let r = store.reader(Actor::System)?;
            match r.principal_by_name(QUEUE_PRINCIPAL) {
                Ok(p) => Some(r.collection_by_name(p.id, QUEUE_COLLECTION)?.id),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e),
            }
        };
        let coll = match existing {
            Some(c) => c,
            None => {
                store
                    .write(Actor::System, vec![], |w| {
                        let p = w.create_principal(
                            bureau_store::PrincipalKind::Resource,
                            QUEUE_PRINCIPAL,
                            None,
                        )?;
                        Ok::<_, StoreError>(
                            w.create_collection(
                                p.id,
                                bureau_store::CollectionKind::Mailbox,
                                QUEUE_COLLECTION,
                            )?
                            .id,
                        )
                    })
                    .await?
            }
        };
        Ok(Queue {
            inner: Arc::new(Inner {
                store,
                dir,
                cfg,
                hostname,
                coll,
                wake: Notify::new(),
            }),
        })
    }

    pub(crate) fn collection(&self) -> CollectionId {
        self.inner.coll
    }

    /// Whether records are published, asked of the resolver mail uses.
    pub async fn check_dns(
        &self,
        records: &[(String, String, String)],
    ) -> Vec<crate::dnscheck::Published> {
        crate::dnscheck::check(&self.inner.cfg, records).await
    }

    /// Whether the box's own name has an address in DNS.
    pub async fn box_resolves(&self) -> crate::dnscheck::Published {
        crate::dnscheck::resolves(&self.inner.cfg, &self.inner.hostname).await
    }

    pub(crate) fn hostname(&self) -> &str {
        &self.inner.hostname
    }

    pub(crate) fn directory(&self) -> &Directory {
        &self.inner.dir
    }

    /// Adds an entry inside a store write (the caller's, so that it is atomic with the rest).
    pub(crate) fn enqueue(
        w: &mut Writer,
        coll: CollectionId,
        blob: bureau_store::BlobRef,
        entry: &QueueEntry,
    ) -> Result<(), StoreError> {
        let mut props = BTreeMap::new();
        props.insert(
            ENTRY.to_string(),
            serde_json::to_string(entry).map_err(|e| StoreError::Invalid(e.to_string()))?,
        );
        w.put_item(
            coll,
            NewItem {
                blob: Some(blob),
                props,
                past_quota: true,
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Asks the worker to look at the queue now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub fn list(&self) -> Result<Vec<QueuedMessage>, StoreError> {
        let r = self.inner.store.reader(Actor::System)?;
        Ok(r.items(self.inner.coll)?
            .into_iter()
            .filter_map(|i| {
                let entry = entry_of(&i)?;
                Some(QueuedMessage {
                    item: i.id,
                    size: i.size(),
                    entry,
                })
            })
            .collect())
    }

    fn find(&self, id: &str) -> Result<Item, StoreError> {
        let r = self.inner.store.reader(Actor::System)?;
        r.items(self.inner.coll)?
            .into_iter()
            .find(|i| entry_of(i).is_some_and(|e| e.id == id))
            .ok_or(StoreError::NotFound)
    }

    /// Makes an entry due now.
    pub async fn retry(&self, id: &str) -> Result<(), StoreError> {
        let item = self.find(id)?;
        let coll = self.inner.coll;
        let mut entry = entry_of(&item).ok_or(StoreError::NotFound)?;
        entry.next_attempt = now();
        self.save_entry(coll, item.id, &entry).await?;
        self.wake();
        Ok(())
    }

    /// Writes an entry's new state over its item's.
    async fn save_entry(
        &self,
        coll: CollectionId,
        id: u64,
        entry: &QueueEntry,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(entry).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.inner
            .store
            .write(Actor::System, vec![], move |w| {
                w.update_item(coll, id, None, |it| {
                    it.props.insert(ENTRY.into(), json.clone());
                })
            })
            .await?;
        Ok(())
    }

    /// Removes an entry without a bounce (the administrator's decision).
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let item = self.find(id)?;
        let coll = self.inner.coll;
        self.inner
            .store
            .write(Actor::System, vec![], move |w| w.delete_item(coll, item.id))
            .await?;
        log::info!("queue: {id} deleted by the administrator");
        Ok(())
    }

    /// Delivers due entries until shutdown.
    pub async fn run(self, mut shutdown: Shutdown) {
        loop {
            let next = match self.process_due(&shutdown).await {
                Ok(n) => n,
                Err(e) => {
                    log::error!("queue: {e}");
                    Some(now() + 30)
                }
            };
            let wait = next.map_or(3600, |t| (t - now()).clamp(0, 3600)) as u64;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
                _ = self.inner.wake.notified() => {}
                _ = shutdown.signalled() => return,
            }
        }
    }

    /// Attempts every due entry; returns when the next one is due.
    async fn process_due(&self, shutdown: &Shutdown) -> Result<Option<i64>, StoreError> {
        let items = self
            .inner
            .store
            .reader(Actor::System)?
            .items(self.inner.coll)?;
        let mut next: Option<i64> = None;
        for item in items {
            if shutdown.is_signalled() {
                break;
            }
            let Some(entry) = entry_of(&item) else {
                continue;
            };
            if entry.next_attempt > now() {
                next = Some(next.map_or(entry.next_attempt, |n| n.min(entry.next_attempt)));
                continue;
            }
            let _busy = shutdown.busy();
            if let Some(t) = self.attempt(item, entry).await? {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        Ok(next)
    }

    /// One attempt at an entry; the time of the next one if it stays queued.
    async fn attempt(&self, item: Item, mut entry: QueueEntry) -> Result<Option<i64>, StoreError> {
        let msg = self.inner.store.reader(Actor::System)?.content(&item)?;
        let mut by_domain: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, r) in entry.rcpts.iter().enumerate() {
            if r.state == RcptState::Pending {
                let domain = r
                    .address
                    .rsplit_once('@')
                    .map_or("", |(_, d)| d)
                    .to_string();
                by_domain.entry(domain).or_default().push(i);
            }
        }
        for (domain, idx) in by_domain {
            for i in idx {
                let rcpt = entry.rcpts[i].address.clone();
                match self.deliver_one(&domain, &entry.from, &rcpt, &msg).await {
                    Ok(()) => {
                        log::info!("queue: {} to <{rcpt}> delivered", entry.id);
                        entry.rcpts[i].state = RcptState::Delivered;
                    }
                    Err(Fail::Permanent(status, diag)) => {
                        log::info!("queue: {} to <{rcpt}> failed: {diag}", entry.id);
                        entry.rcpts[i].state = RcptState::Failed;
                        entry.rcpts[i].error = Some(format!("{status} {diag}"));
                    }
                    Err(Fail::Transient(e)) => {
                        log::info!("queue: {} to <{rcpt}> deferred: {e}", entry.id);
                        entry.rcpts[i].error = Some(e.clone());
                        entry.last_error = Some(e);
                    }
                }
            }
        }
        entry.attempts += 1;
        let expired = now() - entry.created > self.inner.cfg.queue_lifetime_hours as i64 * 3600;
        if expired {
            for r in entry
                .rcpts
                .iter_mut()
                .filter(|r| r.state == RcptState::Pending)
            {
                r.state = RcptState::Failed;
                let last = r.error.take().unwrap_or_default();
                r.error = Some(format!(
                    "4.4.7 gave up after {} hours: {last}",
                    self.inner.cfg.queue_lifetime_hours
                ));
            }
        }
        let pending = entry.rcpts.iter().any(|r| r.state == RcptState::Pending);
        if pending {
            let backoff = self
                .inner
                .cfg
                .retry_first_secs
                .saturating_mul(1u64 << entry.attempts.saturating_sub(1).min(20))
                .min(self.inner.cfg.retry_max_secs.max(1));
            entry.next_attempt = now() + backoff as i64;
            self.save_entry(self.inner.coll, item.id, &entry).await?;
            return Ok(Some(entry.next_attempt));
        }
        self.finish(item, &entry, &msg).await?;
        Ok(None)
    }

    /// Removes a finished entry, filing a bounce for its failed recipients in the same write.
    async fn finish(&self, item: Item, entry: &QueueEntry, msg: &[u8]) -> Result<(), StoreError> {
        // Recipients the sender asked not to hear about (NOTIFY=NEVER) are not reported.
        let failed: Vec<&QueueRcpt> = entry
            .rcpts
            .iter()
            .filter(|r| r.state == RcptState::Failed && !r.notify_never)
            .collect();
        let coll = self.inner.coll;
        if failed.is_empty() || entry.from.is_empty() {
            if !failed.is_empty() {
                log::warn!(
                    "queue: {} from the null sender failed; not bounced",
                    entry.id
                );
            }
            return self
                .inner
                .store
                .write(Actor::System, vec![], move |w| w.delete_item(coll, item.id))
                .await;
        }
        let failures: Vec<Failure> = failed
            .iter()
            .map(|r| {
                let e = r.error.as_deref().unwrap_or("5.0.0 failed");
                let (status, diag) = e.split_once(' ').unwrap_or(("5.0.0", e));
                Failure {
                    recipient: &r.address,
                    original: r.orcpt.as_deref(),
                    status,
                    diagnostic: diag,
                }
            })
            .collect();
        let report = dsn::Report {
            hostname: &self.inner.hostname,
            to: &entry.from,
            id: &entry.id,
            env_id: entry.env_id.as_deref(),
            full: entry.ret_full,
        };
        let bounce = dsn::bounce(&report, msg, &failures);
        let local = match recipient::resolve(&self.inner.dir, &entry.from) {
            Ok(Resolved::Local(users)) => {
                users.into_iter().map(|u| u.principal).collect::<Vec<_>>()
            }
            _ => Vec::new(),
        };
        let mut stored = b"Return-Path: <>\r\n".to_vec();
        stored.extend_from_slice(&bounce);
        let s = self.inner.store.clone();
        let to_stage = if local.is_empty() { bounce } else { stored };
        let content = if local.is_empty() {
            Content::Data
        } else {
            Content::Message
        };
        let staged = s.stage(to_stage, content).await?;
        let blob = staged.blob_ref();
        let remote_entry = QueueEntry::new(
            &format!("{}-DSN", entry.id),
            "",
            std::slice::from_ref(&entry.from),
        );
        let queued_again = local.is_empty();
        self.inner
            .store
            .write(Actor::System, vec![staged], move |w| {
                w.delete_item(coll, item.id)?;
                if local.is_empty() {
                    Queue::enqueue(w, coll, blob, &remote_entry)
                } else {
                    for p in &local {
                        let inbox = w.collection_by_name(*p, "INBOX")?;
                        w.put_item(
                            inbox.id,
                            NewItem {
                                blob: Some(blob),
                                past_quota: true,
                                ..Default::default()
                            },
                        )?;
                    }
                    Ok(())
                }
            })
            .await?;
        log::info!("queue: {} bounced to <{}>", entry.id, entry.from);
        if queued_again {
            self.wake();
        }
        Ok(())
    }

    /// Tries each server for `domain` in turn.
    async fn deliver_one(
        &self,
        domain: &str,
        from: &str,
        rcpt: &str,
        msg: &[u8],
    ) -> Result<(), Fail> {
        let envelope = lettre::address::Envelope::new(
            if from.is_empty() {
                None
            } else {
                Some(
                    from.parse()
                        .map_err(|e| Fail::Permanent("5.1.7".into(), format!("sender: {e}")))?,
                )
            },
            vec![
                rcpt.parse()
                    .map_err(|e| Fail::Permanent("5.1.3".into(), format!("recipient: {e}")))?,
            ],
        )
        .map_err(|e| Fail::Permanent("5.1.3".into(), e.to_string()))?;
        let servers = match &self.inner.cfg.relay {
            Some(relay) => vec![Server::Relay(relay.clone())],
            None => {
                // One resolver for the MX records and the hosts' addresses alike, so that
                // the configured DNS servers answer both.
                let resolver = crate::verify::resolver(&self.inner.cfg)
                    .map_err(|e| Fail::Transient(format!("DNS: {e}")))?;
                let mut servers = Vec::new();
                for (host, port) in self.hosts_for(&resolver, domain).await? {
                    for ip in self.addresses(&resolver, &host).await {
                        servers.push(Server::Direct(host.clone(), ip, port));
                    }
                }
                if servers.is_empty() {
                    return Err(Fail::Transient(format!(
                        "no address for the mail hosts of {domain}"
                    )));
                }
                servers
            }
        };
        // lettre ends the data with CRLF "." CRLF itself: give it the message without its
        // final CRLF so that the remote side receives it byte for byte.
        let msg = msg.strip_suffix(b"\r\n").unwrap_or(msg);
        let mut last = String::from("no server");
        for server in servers {
            let transport = self.transport(&server)?;
            match transport.send_raw(&envelope, msg).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_permanent() => {
                    let status = e
                        .status()
                        .map(|c| format!("{}.0.0", u16::from(c) / 100))
                        .unwrap_or_else(|| "5.0.0".into());
                    return Err(Fail::Permanent(status, e.to_string()));
                }
                Err(e) => last = format!("{}: {e}", server.name()),
            }
        }
        Err(Fail::Transient(last))
    }

    /// A host's addresses (it may be an address itself), at most four.
    async fn addresses(
        &self,
        resolver: &mail_auth::hickory_resolver::TokioResolver,
        host: &str,
    ) -> Vec<std::net::IpAddr> {
        if let Ok(ip) = host.trim_matches(|c| c == '[' || c == ']').parse() {
            return vec![ip];
        }
        let lookup = tokio::time::timeout(
            Duration::from_secs(self.inner.cfg.dns_timeout_secs),
            resolver.lookup_ip(format!("{host}.")),
        )
        .await;
        match lookup {
            Ok(Ok(ips)) => ips.iter().take(4).collect(),
            _ => Vec::new(),
        }
    }

    /// Where mail for `domain` goes: the routes table, else its MX hosts, else the domain.
    async fn hosts_for(
        &self,
        resolver: &mail_auth::hickory_resolver::TokioResolver,
        domain: &str,
    ) -> Result<Vec<(String, u16)>, Fail> {
        if let Some(target) = self.inner.cfg.routes.get(domain)
            && let Some((h, p)) = target.rsplit_once(':')
            && let Ok(port) = p.parse()
        {
            return Ok(vec![(h.to_string(), port)]);
        }
        if domain.starts_with('[') || domain.is_empty() {
            return Err(Fail::Permanent(
                "5.1.2".into(),
                format!("cannot route to {domain}"),
            ));
        }
        let lookup = tokio::time::timeout(
            Duration::from_secs(self.inner.cfg.dns_timeout_secs),
            resolver.mx_lookup(format!("{domain}.")),
        )
        .await
        .map_err(|_| Fail::Transient(format!("DNS lookup of {domain} timed out")))?;
        match lookup {
            Ok(l) => {
                let mut mx: Vec<(u16, String)> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        mail_auth::hickory_resolver::proto::rr::RData::MX(m) => {
                            Some((m.preference, m.exchange.to_ascii()))
                        }
                        _ => None,
                    })
                    .collect();
                mx.sort();
                // RFC 7505: a null MX says the domain takes no mail.
                if mx.len() == 1 && mx[0].1 == "." {
                    return Err(Fail::Permanent(
                        "5.1.10".into(),
                        format!("{domain} accepts no mail (null MX)"),
                    ));
                }
                Ok(mx
                    .into_iter()
                    .map(|(_, h)| (h.trim_end_matches('.').to_string(), 25))
                    .collect())
            }
            Err(e) if e.is_nx_domain() => Err(Fail::Permanent(
                "5.1.2".into(),
                format!("domain {domain} does not exist"),
            )),
            // RFC 5321 5.1: no MX records, the domain itself is the host.
            Err(e) if e.is_no_records_found() => Ok(vec![(domain.to_string(), 25)]),
            Err(e) => Err(Fail::Transient(format!("DNS: {e}"))),
        }
    }

    fn transport(&self, server: &Server) -> Result<AsyncSmtpTransport<Tokio1Executor>, Fail> {
        let tls_err =
            |e: lettre::transport::smtp::Error| Fail::Transient(format!("TLS setup: {e}"));
        let hello = ClientId::Domain(self.inner.hostname.clone());
        let t = match server {
            Server::Direct(host, ip, port) => {
                // Opportunistic TLS without certificate checks, as MTAs do between each
                // other; `require_tls` refuses a cleartext session.
                let params = TlsParameters::builder(host.clone())
                    .dangerous_accept_invalid_certs(true)
                    .build_rustls()
                    .map_err(tls_err)?;
                let tls = if self.inner.cfg.require_tls {
                    Tls::Required(params)
                } else {
                    Tls::Opportunistic(params)
                };
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip.to_string())
                    .port(*port)
                    .tls(tls)
                    .hello_name(hello)
                    .timeout(Some(Duration::from_secs(60)))
                    .build()
            }
            Server::Relay(r) => {
                let params = || TlsParameters::new(r.host.clone()).map_err(tls_err);
                let tls = match r.tls.as_str() {
                    "tls" => Tls::Wrapper(params()?),
                    "none" => Tls::None,
                    _ => Tls::Required(params()?),
                };
                let mut b =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(r.host.as_str())
                        .port(r.port)
                        .tls(tls)
                        .hello_name(hello)
                        .timeout(Some(Duration::from_secs(60)));
                if let (Some(u), Some(p)) = (&r.username, &r.password) {
                    b = b.credentials(Credentials::new(u.clone(), p.clone()));
                }
                b.build()
            }
        };
        Ok(t)
    }
}

enum Server {
    /// A host by name (for TLS), the address to connect to, the port.
    Direct(String, std::net::IpAddr, u16),
    Relay(RelayConfig),
}

impl Server {
    fn name(&self) -> String {
        match self {
            Server::Direct(h, ip, p) => format!("{h} [{ip}]:{p}"),
            Server::Relay(r) => format!("relay {}:{}", r.host, r.port),
        }
    }
}

fn entry_of(item: &Item) -> Option<QueueEntry> {
    serde_json::from_str(item.props.get(ENTRY)?).ok()
}
