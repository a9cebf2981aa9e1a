//! Accepting a message: stored once, filed into each local recipient's INBOX and queued for
//! the others, in one store write, durable before the client hears 250.

use crate::queue::{Queue, QueueEntry};
use bureau_store::{Actor, Content, NewItem, PrincipalId, Store, StoreError};

/// The trace line (RFC 5321 4.4) with the protocol keyword of RFC 3848.
pub(crate) fn received(
    helo: &str,
    ip: std::net::IpAddr,
    hostname: &str,
    tls: bool,
    authenticated: bool,
    id: &str,
    for_rcpt: Option<&str>,
) -> String {
    let proto = match (tls, authenticated) {
        (false, false) => "ESMTP",
        (true, false) => "ESMTPS",
        (false, true) => "ESMTPA",
        (true, true) => "ESMTPSA",
    };
    // The client's name is its own claim: keep it to what a header may carry.
    let helo: String = helo
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '(' && *c != ')')
        .take(255)
        .collect();
    let date = mail_parser::DateTime::from_timestamp(bureau_store::now()).to_rfc822();
    let for_part = for_rcpt
        .map(|r| format!("\r\n\tfor <{r}>"))
        .unwrap_or_default();
    format!(
        "Received: from {helo} ([{ip}])\r\n\tby {hostname} (Bureau) with {proto} id {id}{for_part};\r\n\t{date}\r\n"
    )
}

/// What one accepted message becomes: a copy for local mailboxes, and a queue entry for
/// the other domains' recipients.
pub(crate) struct Accepted {
    pub local: Option<(Vec<u8>, Vec<PrincipalId>)>,
    pub remote: Option<(Vec<u8>, QueueEntry)>,
}

/// Stores the message: into each local INBOX and the outbound queue, in one durable write.
pub(crate) async fn commit(
    store: &Store,
    queue: &Queue,
    accepted: Accepted,
) -> Result<(), StoreError> {
    // A message for a mailbox gets its summaries and terms (Content::Message); the queue's
    // copy is only sent on, so it is staged as data.
    let stage = |data: Vec<u8>, mailbox: bool| {
        store.stage(
            data,
            if mailbox {
                Content::Message
            } else {
                Content::Data
            },
        )
    };
    let mut staged = Vec::new();
    let local = match accepted.local {
        Some((msg, mut principals)) => {
            principals.sort_unstable();
            principals.dedup();
            let s = stage(msg, true).await?;
            let blob = s.blob_ref();
            staged.push(s);
            Some((blob, principals))
        }
        None => None,
    };
    let remote = match accepted.remote {
        Some((msg, entry)) => {
            let s = stage(msg, false).await?;
            let blob = s.blob_ref();
            staged.push(s);
            Some((blob, entry))
        }
        None => None,
    };
    let qcoll = queue.collection();
    let queued = remote.is_some();
    store
        .write(Actor::System, staged, move |w| {
            if let Some((blob, principals)) = &local {
                for p in principals {
                    let inbox = w.collection_by_name(*p, "INBOX")?;
                    w.put_item(
                        inbox.id,
                        NewItem {
                            blob: Some(*blob),
                            // The recipient was accepted when it had room: never refuse now.
                            past_quota: true,
                            ..Default::default()
                        },
                    )?;
                }
            }
            if let Some((blob, entry)) = &remote {
                Queue::enqueue(w, qcoll, *blob, entry)?;
            }
            Ok::<_, StoreError>(())
        })
        .await?;
    if queued {
        queue.wake();
    }
    Ok(())
}

/// Why a message one of our users handed over outside SMTP (ActiveSync's SendMail) was not
/// sent. Nothing was stored or queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the message has no From: address")]
    NoFrom,
    #[error("{0} is not one of the sender's addresses")]
    NotYours(String),
    #[error("the message has no recipient")]
    NoRecipient,
    #[error("<{0}>: no such recipient here")]
    Unknown(String),
    #[error("<{0}>: not an address")]
    BadAddress(String),
    #[error("the recipients cannot be looked up now: {0}")]
    Directory(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The message without its Bcc: header (its recipients are told in the envelope only).
fn without_bcc(msg: &[u8]) -> Vec<u8> {
    crate::verify::without_headers(msg, |line| {
        line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:")
    })
}

impl Queue {
    /// Sends a message one of our users wrote on a device (ActiveSync SendMail): every
    /// From: address must be theirs; To, Cc and Bcc are the recipients; local ones get it
    /// in their INBOX, others through the queue (DKIM-signed), durable when this returns.
    /// Gives the queue id.
    pub async fn send_as(
        &self,
        user: &bureau_directory::User,
        msg: &[u8],
        via: &str,
        ip: std::net::IpAddr,
    ) -> Result<String, SendError> {
        let (id, filed) = self.file_and_queue(user, msg, via, ip).await?;
        if !filed.is_empty() {
            // Local recipients away from the office answer (autoreply.rs).
            let (queue, msg) = (self.clone(), msg.to_vec());
            let sender = user.address.clone();
            tokio::spawn(async move { queue.auto_reply(&filed, &sender, &msg).await });
        }
        Ok(id)
    }

    /// What `send_as` does before any automatic reply: gives the queue id and the local
    /// recipients the message was filed for.
    pub(crate) async fn file_and_queue(
        &self,
        user: &bureau_directory::User,
        msg: &[u8],
        via: &str,
        ip: std::net::IpAddr,
    ) -> Result<(String, Vec<u64>), SendError> {
        let parsed = mail_parser::MessageParser::default()
            .parse_headers(msg)
            .ok_or(SendError::NoFrom)?;
        let from = match crate::recipient::author(user, Some(&parsed)) {
            crate::recipient::Author::Own(f) => f,
            crate::recipient::Author::NoFrom => return Err(SendError::NoFrom),
            crate::recipient::Author::NotYours(_, bad) => return Err(SendError::NotYours(bad)),
        };
        use crate::recipient::addrs;
        let mut rcpts = addrs(parsed.to());
        rcpts.extend(addrs(parsed.cc()));
        rcpts.extend(addrs(parsed.bcc()));
        rcpts.sort();
        rcpts.dedup();
        if rcpts.is_empty() {
            return Err(SendError::NoRecipient);
        }
        let mut principals = Vec::new();
        let mut remote = Vec::new();
        for r in &rcpts {
            match crate::recipient::resolve(self.directory(), r)
                .map_err(|e| SendError::Directory(e.to_string()))?
            {
                crate::recipient::Resolved::Local(users) => {
                    principals.extend(users.iter().map(|u| u.principal))
                }
                crate::recipient::Resolved::Foreign => {
                    let domain = r.rsplit_once('@').map_or("", |(_, d)| d);
                    if bureau_directory::validate::domain(domain).is_err() {
                        return Err(SendError::BadAddress(r.clone()));
                    }
                    remote.push(r.clone());
                }
                _ => return Err(SendError::Unknown(r.clone())),
            }
        }
        let msg = without_bcc(msg);
        let id = new_id();
        let trace = received(via, ip, self.hostname(), true, true, &id, None);
        let local = (!principals.is_empty()).then(|| {
            let mut m = format!("Return-Path: <{from}>\r\n{trace}").into_bytes();
            m.extend_from_slice(&msg);
            (m, principals)
        });
        let remote = (!remote.is_empty()).then(|| {
            let domain = crate::recipient::split(&from).map(|(_, d)| d);
            let sig = domain
                .as_deref()
                .and_then(|d| crate::dkim::signature(self.directory(), d, &msg))
                .unwrap_or_default();
            let mut m = format!("{sig}{trace}").into_bytes();
            m.extend_from_slice(&msg);
            (m, QueueEntry::new(&id, &from, &remote))
        });
        let store = self.directory().store().clone();
        let filed = local.as_ref().map(|(_, p)| p.clone()).unwrap_or_default();
        commit(&store, self, Accepted { local, remote }).await?;
        log::info!(
            "smtp: {id} from <{from}> to {} recipient(s) sent by {} over {via}",
            rcpts.len(),
            user.uid
        );
        Ok((id, filed))
    }

    /// Sends a message the box writes itself (a calendar invitation or reply, RFC 6047; a
    /// booking request to a room's manager): filed at once for recipients here, queued,
    /// DKIM-signed for `from`'s domain, for the others; durable when this returns. Gives the
    /// message's id.
    pub async fn submit(
        &self,
        from: &str,
        rcpts: &[String],
        msg: &[u8],
    ) -> Result<String, StoreError> {
        let id = new_id();
        let mut principals = Vec::new();
        let mut others = Vec::new();
        for r in rcpts {
            match crate::recipient::resolve(self.directory(), r) {
                Ok(crate::recipient::Resolved::Local(users)) => {
                    principals.extend(users.iter().map(|u| u.principal))
                }
                _ => others.push(r.clone()),
            }
        }
        let local = (!principals.is_empty()).then(|| {
            let mut m = format!("Return-Path: <{from}>\r\n").into_bytes();
            m.extend_from_slice(msg);
            (m, principals)
        });
        let remote = (!others.is_empty()).then(|| {
            let domain = crate::recipient::split(from).map(|(_, d)| d);
            let sig = domain
                .as_deref()
                .and_then(|d| crate::dkim::signature(self.directory(), d, msg))
                .unwrap_or_default();
            let mut m = Vec::with_capacity(sig.len() + msg.len());
            m.extend_from_slice(sig.as_bytes());
            m.extend_from_slice(msg);
            (m, QueueEntry::new(&id, from, &others))
        });
        let store = self.directory().store().clone();
        commit(&store, self, Accepted { local, remote }).await?;
        log::info!(
            "smtp: {id} from <{from}> written by the box for {} recipient(s)",
            rcpts.len()
        );
        Ok(id)
    }
}

/// A new message id: 16 hex digits.
pub(crate) fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode_upper(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bcc_is_not_told_to_the_recipients() {
        let m = b"From: a@x\r\nBcc: secret@y,\r\n\tother@z\r\nTo: b@x\r\n\r\nBcc: stays in the body\r\n";
        assert_eq!(
            super::without_bcc(m),
            b"From: a@x\r\nTo: b@x\r\n\r\nBcc: stays in the body\r\n".to_vec()
        );
    }
}
