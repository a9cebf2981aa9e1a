//! Mail commands beside Sync: SendMail, SmartReply and SmartForward (through the SMTP
//! side's queue, saved to Sent), MoveItems and GetItemEstimate.

use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document, version_number};
use bureau_store::{Actor, CollectionId, NewItem, StoreError, SyncState};
use bytes::Bytes;
use hyper::{Response, StatusCode};

/// The empty answer of a command that succeeded without saying more.
fn ok_empty() -> Resp {
    Response::builder()
        .status(StatusCode::OK)
        .body(http_body_util::Full::new(Bytes::new()))
        .expect("static headers")
}

/// Common status codes (MS-ASCMD 2.2.2).
mod status {
    pub const INVALID_MIME: &str = "107";
    pub const ITEM_NOT_FOUND: &str = "150";
    pub const SERVER_ERROR: &str = "110";
    pub const RECIPIENT_UNRESOLVED: &str = "116";
    pub const NO_RECIPIENT: &str = "119";
    pub const SUBMISSION_FAILED: &str = "120";
}

/// The three ways a device sends mail (MS-ASCMD 2.2.1.17, 2.2.1.18, 2.2.1.19).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Compose {
    Send,
    /// SmartReply: the original's text follows the device's.
    Reply,
    /// SmartForward: the original's text follows, its attachments are attached.
    Forward,
}

impl Compose {
    fn command(self) -> &'static str {
        match self {
            Compose::Send => "SendMail",
            Compose::Reply => "SmartReply",
            Compose::Forward => "SmartForward",
        }
    }
}

/// SendMail, SmartReply and SmartForward: the MIME message comes in WBXML (14.0 and later)
/// or as the body itself (12.x, with SaveInSent, ItemId and CollectionId in the query
/// string). It goes through the SMTP side's submission rules and, when asked, into Sent.
pub async fn compose(
    eas: &ActiveSync,
    cx: &Context,
    how: Compose,
    doc: Option<Element>,
    raw: Bytes,
) -> Result<Resp, StoreError> {
    let modern = version_number(&cx.req.version) >= 140;
    let fail = |code: &str| {
        if modern {
            document(&Element::new(page::COMPOSE_MAIL, how.command()).with_text("Status", code))
        } else {
            crate::text(
                StatusCode::BAD_REQUEST,
                &format!("{} status {code}", how.command()),
            )
        }
    };
    let mut client_id = None;
    let (mime, save, source, replace) = if modern {
        let Some(d) = doc.filter(|d| d.name == how.command()) else {
            return Ok(fail(status::INVALID_MIME));
        };
        let Some(m) = d.child("Mime") else {
            return Ok(fail(status::INVALID_MIME));
        };
        // A retried request (same ClientId) was sent the first time: not again.
        client_id = d
            .child_value("ClientId")
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty() && c.len() <= 64 && !c.contains(','));
        if let Some(c) = &client_id
            && sent_ids(cx).any(|s| s == c)
        {
            log::info!(
                "activesync: {} {} {c} again: already sent",
                cx.user.uid,
                how.command()
            );
            return Ok(ok_empty());
        }
        let bytes = m
            .children
            .iter()
            .flat_map(|n| match n {
                crate::formats::wbxml::Node::Opaque(b) => b.clone(),
                crate::formats::wbxml::Node::Text(t) => t.as_bytes().to_vec(),
                crate::formats::wbxml::Node::Element(_) => Vec::new(),
            })
            .collect::<Vec<u8>>();
        // The original by FolderId and ItemId, or by a search result's LongId.
        let source = d.child("Source").and_then(|s| {
            if let Some(long) = s.child_value("LongId") {
                let (c, _) = crate::parse_server_id(long.trim())?;
                return Some((c.to_string(), long));
            }
            Some((s.child_value("FolderId")?, s.child_value("ItemId")?))
        });
        (
            bytes,
            d.child("SaveInSentItems").is_some(),
            source,
            d.child("ReplaceMime").is_some(),
        )
    } else {
        let source = cx.req.collection_id.clone().zip(cx.req.item_id.clone());
        (raw.to_vec(), cx.req.save_in_sent, source, false)
    };
    let mut mime = mime;
    let mut original = None;
    if how != Compose::Send {
        let Some((folder, item)) = source else {
            return Ok(fail(status::ITEM_NOT_FOUND));
        };
        let r = eas.store().reader(Actor::Principal(cx.user.principal))?;
        let found = crate::own_collection(&r, cx.user.principal, &folder)?
            .filter(|c| c.kind == bureau_store::CollectionKind::Mailbox)
            .and_then(|c| {
                crate::parse_server_id(item.trim())
                    .filter(|(coll, _)| *coll == c.id)
                    .and_then(|(coll, i)| r.item(coll, i).ok())
            });
        let Some(it) = found else {
            return Ok(fail(status::ITEM_NOT_FOUND));
        };
        if !replace {
            let old = r.content(&it)?;
            match smart_message(&mime, &old, how) {
                Some(m) => mime = m,
                None => return Ok(fail(status::INVALID_MIME)),
            }
        }
        original = Some(it);
    }
    let Some(queue) = eas.queue.as_ref() else {
        return Ok(fail(status::SERVER_ERROR));
    };
    match queue.send_as(&cx.user, &mime, "activesync", cx.ip).await {
        Ok(_) => {}
        Err(e) => {
            log::info!("activesync: {} {} refused: {e}", cx.user.uid, how.command());
            use bureau_smtp::SendError as S;
            return Ok(fail(match e {
                S::NoFrom => status::INVALID_MIME,
                S::NoRecipient => status::NO_RECIPIENT,
                S::Unknown(_) | S::BadAddress(_) => status::RECIPIENT_UNRESOLVED,
                S::NotYours(_) => status::SUBMISSION_FAILED,
                S::Directory(_) | S::Store(_) => status::SERVER_ERROR,
            }));
        }
    }
    if let Some(it) = original {
        // What IMAP clients show as answered or forwarded.
        let flag = if how == Compose::Reply {
            "\\Answered"
        } else {
            "$Forwarded"
        };
        let (coll, id) = (it.collection, it.id);
        eas.store()
            .write(Actor::Principal(cx.user.principal), vec![], move |w| {
                w.update_item(coll, id, None, |it| {
                    if !it.flags.iter().any(|f| f == flag) {
                        it.flags.push(flag.to_string());
                    }
                })
                .map(|_| ())
            })
            .await
            .or_else(|e| match e {
                StoreError::NotFound => Ok(()),
                e => Err(e),
            })?;
    }
    if save {
        save_in_sent(eas, cx.user.principal, mime).await?;
    }
    if let Some(c) = client_id {
        let mut ids: Vec<&str> = sent_ids(cx).collect();
        ids.push(&c);
        let keep = ids.len().saturating_sub(SENT_IDS_KEPT);
        let mut d = cx.device.clone();
        d.info.insert(SENT_IDS.into(), ids[keep..].join(","));
        eas.save_device(cx.user.principal, &d).await?;
    }
    Ok(ok_empty())
}

/// Where a device's last ClientIds of sent mail are kept, and how many.
const SENT_IDS: &str = "sent_client_ids";
const SENT_IDS_KEPT: usize = 32;

fn sent_ids(cx: &Context) -> impl Iterator<Item = &str> {
    cx.device
        .info
        .get(SENT_IDS)
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
}

/// The device's message with the original after it: its headers as the device wrote
/// them, its text then a header block and the original's text (HTML too when either has
/// HTML), its attachments, and on a forward the original's attachments.
fn smart_message(new: &[u8], old: &[u8], how: Compose) -> Option<Vec<u8>> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::raw::Raw;
    use mail_parser::MimeHeaders;
    let n = bureau_core::mime::parse(new)?;
    let o = bureau_core::mime::parse(old)?;
    let mut b = MessageBuilder::new();
    for h in n.headers() {
        let name = h.name();
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("content-") || lower == "mime-version" {
            continue;
        }
        let value =
            std::str::from_utf8(new.get(h.offset_start() as usize..h.offset_end() as usize)?)
                .ok()?
                .trim();
        let name = match lower.as_str() {
            "date" => "Date".to_string(),
            "message-id" => "Message-ID".to_string(),
            _ => name.to_string(),
        };
        b = b.header(name, Raw::new(value.to_string()));
    }
    let has_ref = |h: &str| n.headers().iter().any(|x| x.name().eq_ignore_ascii_case(h));
    if how == Compose::Reply
        && let Some(id) = o.message_id()
    {
        if !has_ref("In-Reply-To") {
            b = b.header("In-Reply-To", Raw::new(format!("<{id}>")));
        }
        if !has_ref("References") {
            b = b.header("References", Raw::new(format!("<{id}>")));
        }
    }
    let list = |a: Option<&mail_parser::Address>| {
        a.map(|a| {
            a.iter()
                .map(|x| match (x.name(), x.address()) {
                    (Some(n), Some(a)) => format!("{n} <{a}>"),
                    (_, Some(a)) => a.to_string(),
                    (Some(n), None) => n.to_string(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    let mut head = vec![
        ("From", list(o.from())),
        ("Sent", o.date().map(|d| d.to_rfc822()).unwrap_or_default()),
        ("To", list(o.to())),
    ];
    if o.cc().is_some() {
        head.push(("Cc", list(o.cc())));
    }
    head.push(("Subject", o.subject().unwrap_or_default().to_string()));
    let new_text = n.body_text(0).unwrap_or_default();
    let old_text = o.body_text(0).unwrap_or_default();
    let mut text = format!(
        "{}\r\n\r\n-----Original Message-----\r\n",
        new_text.trim_end()
    );
    for (k, v) in &head {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(&old_text);
    b = b.text_body(text);
    let has_html = |m: &mail_parser::Message| !m.html_body.is_empty() && m.html_body != m.text_body;
    if has_html(&n) || has_html(&o) {
        let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
        let mut html = n.body_html(0).unwrap_or_default().into_owned();
        html.push_str("<hr><div>");
        for (k, v) in &head {
            html.push_str(&format!("<b>{k}:</b> {}<br>", esc(v)));
        }
        html.push_str("</div><br>");
        html.push_str(&o.body_html(0).unwrap_or_default());
        b = b.html_body(html);
    }
    let mut sources = vec![&n];
    if how == Compose::Forward {
        sources.push(&o);
    }
    for m in sources {
        for a in m.attachments() {
            let ctype = a
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
                .unwrap_or_else(|| "application/octet-stream".into());
            let name = a.attachment_name().unwrap_or("attachment").to_string();
            b = b.attachment(ctype, name, a.contents().to_vec());
        }
    }
    b.write_to_vec().ok()
}

/// Files a sent message, read, in the user's Sent mailbox.
pub(crate) async fn save_in_sent(
    eas: &ActiveSync,
    principal: u64,
    mime: Vec<u8>,
) -> Result<(), StoreError> {
    let r = eas.store().reader(Actor::Principal(principal))?;
    let Some(sent) = crate::special_mailbox(&r, principal, "\\Sent")? else {
        return Ok(());
    };
    let staged = eas.stage(mime, true).await?;
    let blob = staged.blob_ref();
    eas.store()
        .write(Actor::Principal(principal), vec![staged], move |w| {
            w.put_item(
                sent,
                NewItem {
                    blob: Some(blob),
                    flags: vec!["\\Seen".into()],
                    ..Default::default()
                },
            )
            .map(|_| ())
        })
        .await
}

/// MoveItems: each move copies the message to the folder and removes it from the other, in
/// one write; the device's states of both folders learn it, so neither is echoed back.
pub async fn move_items(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let Some(doc) = doc.filter(|d| d.name == "MoveItems") else {
        return Ok(crate::text(StatusCode::BAD_REQUEST, "MoveItems expected"));
    };
    let principal = cx.user.principal;
    let device = cx.device.id.clone();
    let mut out = Element::new(page::MOVE, "MoveItems");
    for mv in doc.children_named("Move") {
        let src_id = mv.child_value("SrcMsgId").unwrap_or_default();
        let src_fld = mv.child_value("SrcFldId").unwrap_or_default();
        let dst_fld = mv.child_value("DstFldId").unwrap_or_default();
        let response = |code: &str| {
            Element::new(page::MOVE, "Response")
                .with_text("SrcMsgId", src_id.clone())
                .with_text("Status", code)
        };
        // Move status codes (MS-ASCMD 2.2.3.177.9): 1 bad source, 2 bad destination,
        // 3 success, 4 same folder, 5 failed.
        let Some((coll, item)) =
            crate::parse_server_id(src_id.trim()).filter(|(c, _)| src_fld.trim() == c.to_string())
        else {
            out = out.with(response("1"));
            continue;
        };
        let Ok(dst) = dst_fld.trim().parse::<CollectionId>() else {
            out = out.with(response("2"));
            continue;
        };
        if dst == coll {
            out = out.with(response("4"));
            continue;
        }
        let r = eas.store().reader(Actor::Principal(principal))?;
        let kinds = (r.collection(coll), r.collection(dst));
        let (Ok(from), Ok(to)) = kinds else {
            out = out.with(response(if r.collection(coll).is_err() {
                "1"
            } else {
                "2"
            }));
            continue;
        };
        if from.owner != principal || r.item(coll, item).is_err() {
            out = out.with(response("1"));
            continue;
        }
        if to.owner != principal || to.kind != from.kind {
            out = out.with(response("2"));
            continue;
        }
        let states = (
            r.sync_state(principal, &device, coll)?,
            r.sync_state(principal, &device, dst)?,
        );
        let dev = device.clone();
        let moved = eas
            .store()
            .write(Actor::Principal(principal), vec![], move |w| {
                let new = w.copy_item(coll, item, dst)?;
                w.delete_item(coll, item)?;
                if let Some(mut s) = states.0.clone() {
                    s.known.remove(&item);
                    w.put_sync_state(principal, &dev, coll, &s)?;
                }
                if let Some(mut s) = states.1.clone() {
                    s.known.insert(new.id);
                    s.own_changes.insert(new.id, new.modseq);
                    w.put_sync_state(principal, &dev, dst, &s)?;
                }
                Ok::<_, StoreError>(new.id)
            })
            .await;
        match moved {
            Ok(new) => {
                out = out.with(response("3").with_text("DstMsgId", crate::server_id(dst, new)));
            }
            Err(StoreError::NotFound) => out = out.with(response("1")),
            Err(e) => return Err(e),
        }
    }
    Ok(document(&out))
}

/// GetItemEstimate: how many changes a Sync of each folder would bring.
pub async fn get_item_estimate(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let Some(colls) = doc
        .filter(|d| d.name == "GetItemEstimate")
        .and_then(|d| d.child("Collections").cloned())
    else {
        return Ok(crate::text(
            StatusCode::BAD_REQUEST,
            "GetItemEstimate expected",
        ));
    };
    let principal = cx.user.principal;
    let r = eas.store().reader(Actor::Principal(principal))?;
    let mut out = Element::new(page::GET_ITEM_ESTIMATE, "GetItemEstimate");
    for c in colls.children_named("Collection") {
        let id_text = c.child_value("CollectionId").unwrap_or_default();
        let key = c.child_value("SyncKey").unwrap_or_default();
        // Status (MS-ASCMD 2.2.3.177.6): 1 success, 2 bad collection, 4 bad sync key.
        let response = |code: &str| {
            Element::new(page::GET_ITEM_ESTIMATE, "Response").with_text("Status", code)
        };
        let Some(coll) = crate::own_collection(&r, principal, &id_text)? else {
            out = out.with(response("2"));
            continue;
        };
        let state: SyncState = r
            .sync_state(principal, &cx.device.id, coll.id)?
            .unwrap_or_default();
        if key.trim().parse::<u64>().ok() != Some(state.sync_key) || state.sync_key == 0 {
            out = out.with(response("4"));
            continue;
        }
        let estimate = match r.changes_since(coll.id, state.acked_modseq) {
            Ok(ch) => {
                ch.changed
                    .iter()
                    .filter(|i| state.own_changes.get(&i.id) != Some(&i.modseq))
                    .count()
                    + ch.deleted
                        .iter()
                        .filter(|d| state.known.contains(d))
                        .count()
            }
            Err(StoreError::TooOld) => {
                out = out.with(response("4"));
                continue;
            }
            Err(e) => return Err(e),
        };
        out = out.with(
            response("1").with(
                Element::new(page::GET_ITEM_ESTIMATE, "Collection")
                    .with_text("CollectionId", id_text.clone())
                    .with_text("Estimate", estimate.to_string()),
            ),
        );
    }
    Ok(document(&out))
}
