//! Local delivery: the message is stored once and filed into each recipient's INBOX in one
//! store write, durable before the client hears 250.

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

/// Stores `message` once and files it into the INBOX of each principal.
pub(crate) async fn deliver_local(
    store: &Store,
    message: Vec<u8>,
    mut principals: Vec<PrincipalId>,
) -> Result<(), StoreError> {
    principals.sort_unstable();
    principals.dedup();
    let s = store.clone();
    let staged = tokio::task::spawn_blocking(move || s.stage_blob(&message))
        .await
        .map_err(|e| StoreError::Io(e.to_string()))??;
    let blob = staged.blob_ref();
    store
        .write(Actor::System, vec![staged], move |w| {
            for p in &principals {
                let inbox = w.collection_by_name(*p, "INBOX")?;
                w.put_item(
                    inbox.id,
                    NewItem {
                        blob: Some(blob),
                        // The recipient was accepted when it had room: never refuse now.
                        past_quota: true,
                        ..Default::default()
                    },
                )?;
            }
            Ok(())
        })
        .await
}
