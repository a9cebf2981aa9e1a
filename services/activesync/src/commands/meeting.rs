//! MeetingResponse (MS-ASCMD 2.2.1.11): the user accepts, tentatively accepts or declines
//! an invitation, named either by the event in a calendar (invitations from users here
//! arrive there through CalDAV scheduling) or by the invitation mail in a mail folder
//! (from elsewhere, iMIP). The answer is the user's PARTSTAT on the event, written as
//! CalDAV writes it, so the same scheduling tells the organizer: the organizer's copy here,
//! or a REPLY by mail. A declined event leaves the calendar, and an answered invitation
//! mail goes to Deleted Items, as Exchange does.

use crate::classes::calendar;
use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_store::{Actor, Collection, CollectionKind, StoreError};

/// MeetingResponse status codes (MS-ASCMD 2.2.3.177.8).
mod status {
    pub const SUCCESS: &str = "1";
    pub const INVALID_REQUEST: &str = "2";
    pub const MAILBOX_ERROR: &str = "3";
    pub const SERVER_ERROR: &str = "4";
}

pub async fn meeting_response(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let Some(doc) = doc.filter(|d| d.name == "MeetingResponse") else {
        return Ok(crate::text(
            hyper::StatusCode::BAD_REQUEST,
            "MeetingResponse expected",
        ));
    };
    let view = eas.view(cx);
    let mut out = Element::new(page::MEETING_RESPONSE, "MeetingResponse");
    for req in doc.children_named("Request") {
        let request_id = req.child_value("RequestId").unwrap_or_default();
        let result = |s: &str| {
            Element::new(page::MEETING_RESPONSE, "Result")
                .with_text("RequestId", request_id.clone())
                .with_text("Status", s)
        };
        let answered = respond(eas, cx, &view, req, &request_id).await;
        out = out.with(match answered {
            Ok(Some(calendar_id)) => result(status::SUCCESS).with_text("CalendarId", calendar_id),
            Ok(None) => result(status::SUCCESS),
            Err(StoreError::NotFound) | Err(StoreError::Invalid(_)) => {
                result(status::INVALID_REQUEST)
            }
            Err(StoreError::Forbidden) | Err(StoreError::Exists(_)) => {
                result(status::MAILBOX_ERROR)
            }
            Err(StoreError::Corrupt(why)) => {
                log::warn!("activesync: meeting response {request_id} not made: {why}");
                result(status::SERVER_ERROR)
            }
            Err(e) => return Err(e),
        });
    }
    Ok(document(&out))
}

/// One answer; gives the event's ServerId unless it was declined.
async fn respond(
    eas: &ActiveSync,
    cx: &Context,
    view: &calendar::View,
    req: &Element,
    request_id: &str,
) -> Result<Option<String>, StoreError> {
    let invalid = |why: &str| StoreError::Invalid(why.to_string());
    let partstat = match req.child_value("UserResponse").as_deref().map(str::trim) {
        Some("1") => "ACCEPTED",
        Some("2") => "TENTATIVE",
        Some("3") => "DECLINED",
        _ => return Err(invalid("UserResponse must be 1, 2 or 3")),
    };
    let instance = req
        .child_value("InstanceId")
        .and_then(|t| calendar::parse_time(&t));
    let principal = cx.user.principal;
    let r = eas.store().reader(Actor::Principal(principal))?;
    let folder = req.child_value("CollectionId").unwrap_or_default();
    let coll = crate::own_collection(&r, principal, &folder)?.ok_or(StoreError::NotFound)?;
    let (_, item) = crate::parse_server_id(request_id.trim())
        .filter(|(c, _)| *c == coll.id)
        .ok_or(StoreError::NotFound)?;
    let it = r.item(coll.id, item)?;
    let content = r.content(&it)?;
    // The event to answer on: this calendar item, or the one the mail invites to (the copy
    // already in a calendar, else a new one in the default calendar).
    let (cal, name, expect, text): (Collection, String, Option<u64>, String) = match coll.kind {
        CollectionKind::Calendar => (
            coll.clone(),
            it.name.clone().ok_or(StoreError::NotFound)?,
            Some(it.modseq),
            String::from_utf8_lossy(&content).into_owned(),
        ),
        CollectionKind::Mailbox => {
            let text = calendar::invitation_of(&content).ok_or_else(|| invalid("no invitation"))?;
            let uid = calendar::uid_of(&text).ok_or_else(|| invalid("no UID"))?;
            let calendars: Vec<Collection> = r
                .collections_of(principal)?
                .into_iter()
                .filter(|c| c.kind == CollectionKind::Calendar)
                .collect();
            let mut existing = None;
            for c in &calendars {
                if let Some(i) = r.items_with_uid(c.id, &uid)?.into_iter().next() {
                    let stored = String::from_utf8_lossy(&r.content(&i)?).into_owned();
                    existing = Some((
                        c.clone(),
                        i.name.clone().unwrap_or_default(),
                        Some(i.modseq),
                        stored,
                    ));
                    break;
                }
            }
            match existing {
                Some(e) => e,
                None => {
                    let c = calendars
                        .iter()
                        .find(|c| c.name == "calendar")
                        .or(calendars.first())
                        .ok_or(StoreError::NotFound)?;
                    (c.clone(), calendar::object_name(&uid), None, text)
                }
            }
        }
        _ => return Err(invalid("not a calendar or mail folder")),
    };
    let answered = calendar::respond(
        &text,
        partstat,
        instance,
        view,
        chrono::Utc::now().naive_utc(),
    )?;
    let saved = eas
        .sched()
        .put_object(&cx.user, &cal, &name, expect, answered)
        .await?;
    if coll.kind == CollectionKind::Mailbox {
        // Answered: the invitation mail goes to Deleted Items, as Exchange does.
        let trash = crate::special_mailbox(&r, principal, "\\Trash")?.filter(|t| *t != coll.id);
        let from = coll.id;
        eas.store()
            .write(Actor::Principal(principal), vec![], move |w| {
                if let Some(t) = trash {
                    w.copy_item(from, item, t)?;
                }
                w.delete_item(from, item)
            })
            .await?;
    }
    if partstat == "DECLINED" && instance.is_none() {
        eas.sched().delete_object(&cx.user, &cal, saved.id).await?;
        return Ok(None);
    }
    Ok(Some(crate::server_id(cal.id, saved.id)))
}
