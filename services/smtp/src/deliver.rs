//! Accepting a message: stored once, filed into each local recipient's INBOX and queued for
//! the others, in one store write, durable before the client hears 250.

use crate::queue::{Queue, QueueEntry};
use bureau_store::{Actor, NewItem, PrincipalId, Store, StoreError};

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
    let stage = |data: Vec<u8>| {
        let s = store.clone();
        async move {
            tokio::task::spawn_blocking(move || s.stage_blob(&data))
                .await
                .map_err(|e| StoreError::Io(e.to_string()))?
        }
    };
    let mut staged = Vec::new();
    let local = match accepted.local {
        Some((msg, mut principals)) => {
            principals.sort_unstable();
            principals.dedup();
            let s = stage(msg).await?;
            let blob = s.blob_ref();
            staged.push(s);
            Some((blob, principals))
        }
        None => None,
    };
    let remote = match accepted.remote {
        Some((msg, entry)) => {
            let s = stage(msg).await?;
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

impl Queue {
    /// Queues a message the box writes itself for one of its users (a calendar invitation
    /// or reply, RFC 6047) to other domains' recipients: DKIM-signed for `from`'s domain,
    /// durable when this returns. Gives the queue id.
    pub async fn submit(
        &self,
        from: &str,
        rcpts: &[String],
        msg: &[u8],
    ) -> Result<String, StoreError> {
        let id = crate::session::new_id();
        let domain = crate::recipient::split(from).map(|(_, d)| d);
        let sig = domain
            .as_deref()
            .and_then(|d| crate::dkim::signature(self.directory(), d, msg))
            .unwrap_or_default();
        let mut m = Vec::with_capacity(sig.len() + msg.len());
        m.extend_from_slice(sig.as_bytes());
        m.extend_from_slice(msg);
        let entry = QueueEntry::new(&id, from, rcpts);
        let store = self.directory().store().clone();
        commit(
            &store,
            self,
            Accepted {
                local: None,
                remote: Some((m, entry)),
            },
        )
        .await?;
        log::info!(
            "smtp: {id} from <{from}> queued by the box for {} recipient(s)",
            rcpts.len()
        );
        Ok(id)
    }
}
