//! ItemOperations (MS-ASCMD 2.2.1.10): Fetch of a whole item (by CollectionId and ServerId,
//! with the body the device prefers) or of an attachment (by FileReference, in base64), and
//! EmptyFolderContents. Only the user's own folders are reached.

use crate::formats::body::BodyPreference;
use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_store::{Actor, Collection, CollectionKind, StoreError};

/// ItemOperations status codes (MS-ASCMD 2.2.3.177.7).
mod status {
    pub const SUCCESS: &str = "1";
    pub const PROTOCOL_ERROR: &str = "2";
    pub const STORE_UNKNOWN: &str = "9";
    pub const BAD_RANGE: &str = "10";
    pub const NOT_FOUND: &str = "15";
}

pub async fn item_operations(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let root =
        |s: &str| Element::new(page::ITEM_OPERATIONS, "ItemOperations").with_text("Status", s);
    let Some(doc) = doc.filter(|d| d.name == "ItemOperations") else {
        return Ok(document(&root(status::PROTOCOL_ERROR)));
    };
    let principal = cx.user.principal;
    let view = eas.view(cx);
    let mut response = Element::new(page::ITEM_OPERATIONS, "Response");
    for op in doc.elements() {
        response = response.with(match op.name {
            "Fetch" => fetch(eas, principal, &view, op)?,
            "EmptyFolderContents" => empty(eas, principal, op).await?,
            other => Element::new(page::ITEM_OPERATIONS, other)
                .with_text("Status", status::PROTOCOL_ERROR),
        });
    }
    Ok(document(&root(status::SUCCESS).with(response)))
}

/// The user's own collection of this id, if it is one.
fn own(eas: &ActiveSync, principal: u64, id: &str) -> Result<Option<Collection>, StoreError> {
    crate::own_collection(
        &eas.store().reader(Actor::Principal(principal))?,
        principal,
        id,
    )
}

/// An attachment by its FileReference (`collection:item:part`) in the user's own mail:
/// its content type and bytes.
pub fn attachment(
    eas: &ActiveSync,
    principal: u64,
    reference: &str,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    let mut parts = reference.trim().splitn(3, ':');
    let (Some(c), Some(i), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (Some(coll), Ok(item), Ok(part)) = (own(eas, principal, c)?, i.parse(), p.parse::<u32>())
    else {
        return Ok(None);
    };
    let r = eas.store().reader(Actor::Principal(principal))?;
    let Ok(it) = r.item(coll.id, item) else {
        return Ok(None);
    };
    let raw = r.content(&it)?;
    let Some(m) = bureau_core::mime::parse(&raw) else {
        return Ok(None);
    };
    Ok(m.attachments
        .contains(&part)
        .then(|| m.part(part))
        .flatten()
        .map(|p| {
            (
                crate::classes::email::content_type(p),
                p.contents().to_vec(),
            )
        }))
}

/// GetAttachment (12.x; later versions use ItemOperations): the attachment's bytes as
/// the answer's body.
pub fn get_attachment(eas: &ActiveSync, cx: &Context) -> Result<Resp, StoreError> {
    let reference = cx.req.attachment_name.clone().unwrap_or_default();
    Ok(match attachment(eas, cx.user.principal, &reference)? {
        Some((ctype, bytes)) => {
            let ctype = if ctype.bytes().all(|b| b.is_ascii_graphic()) {
                ctype
            } else {
                "application/octet-stream".into()
            };
            crate::reply(hyper::StatusCode::OK, &ctype, bytes)
        }
        None => crate::text(hyper::StatusCode::NOT_FOUND, "no such attachment"),
    })
}

/// A byte range the device asks for ("0-1023"), inclusive, within `len` bytes.
fn byte_range(op: &Element, len: usize) -> Option<Result<(usize, usize), ()>> {
    let r = op.child("Options")?.child_value("Range")?;
    let parsed = r.trim().split_once('-').and_then(|(a, b)| {
        let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
        (a <= b && a < len.max(1)).then_some((a, b.min(len.saturating_sub(1))))
    });
    Some(parsed.ok_or(()))
}

fn fetch(
    eas: &ActiveSync,
    principal: u64,
    view: &crate::classes::calendar::View,
    op: &Element,
) -> Result<Element, StoreError> {
    let answer = |s: &str| Element::new(page::ITEM_OPERATIONS, "Fetch").with_text("Status", s);
    let store = op.child_value("Store").unwrap_or_default();
    if !store.eq_ignore_ascii_case("Mailbox") {
        return Ok(answer(status::STORE_UNKNOWN));
    }
    let r = eas.store().reader(Actor::Principal(principal))?;
    if let Some(reference) = op.child_value("FileReference") {
        let Some((content_type, contents)) = attachment(eas, principal, &reference)? else {
            return Ok(answer(status::NOT_FOUND));
        };
        use base64::Engine;
        let mut props = Element::new(page::ITEM_OPERATIONS, "Properties")
            .with(Element::new(page::AIRSYNCBASE, "ContentType").text(content_type));
        let data = match byte_range(op, contents.len()) {
            None => &contents[..],
            Some(Ok((a, b))) => {
                props = props
                    .with_text("Range", format!("{a}-{b}"))
                    .with_text("Total", contents.len().to_string());
                let end = (b + 1).min(contents.len());
                &contents[a.min(end)..end]
            }
            Some(Err(())) => return Ok(answer(status::BAD_RANGE)),
        };
        return Ok(answer(status::SUCCESS)
            .with(Element::new(page::AIRSYNCBASE, "FileReference").text(reference.clone()))
            .with(props.with_text(
                "Data",
                base64::engine::general_purpose::STANDARD.encode(data),
            )));
    }
    // A LongId (from a search) is a ServerId and names its folder.
    let long = op.child_value("LongId");
    let server_id = long
        .clone()
        .or_else(|| op.child_value("ServerId"))
        .unwrap_or_default();
    let coll_id = match &long {
        Some(l) => l.split(':').next().unwrap_or_default().trim().to_string(),
        None => op.child_value("CollectionId").unwrap_or_default(),
    };
    let found = own(eas, principal, &coll_id)?.and_then(|c| {
        let (sc, si) = server_id.trim().split_once(':')?;
        (sc == c.id.to_string()).then_some(())?;
        Some((c, si.parse::<u64>().ok()?))
    });
    let Some((coll, item)) = found else {
        return Ok(answer(status::NOT_FOUND));
    };
    let Ok(it) = r.item(coll.id, item) else {
        return Ok(answer(status::NOT_FOUND));
    };
    let raw = r.content(&it)?;
    let pref = BodyPreference::from_options(op.child("Options"));
    let (class, data) = match coll.kind {
        CollectionKind::AddressBook => (
            "Contacts",
            crate::classes::contacts::application_data(&String::from_utf8_lossy(&raw)),
        ),
        CollectionKind::Mailbox => (
            "Email",
            crate::classes::email::application_data(&it, &raw, &pref, view),
        ),
        kind => {
            let text = String::from_utf8_lossy(&raw);
            let data = match kind {
                CollectionKind::Calendar => {
                    crate::classes::calendar::event_data(&text, view, &pref)
                }
                CollectionKind::TaskList => crate::classes::tasks::task_data(&text, view, &pref),
                CollectionKind::Notes => crate::classes::notes::note_data(&text, view, &pref),
                _ => None,
            };
            let class = match kind {
                CollectionKind::Calendar => "Calendar",
                CollectionKind::TaskList => "Tasks",
                _ => "Notes",
            };
            match data {
                Some(d) => (class, d),
                None => return Ok(answer(status::NOT_FOUND)),
            }
        }
    };
    let mut props = Element::new(page::ITEM_OPERATIONS, "Properties");
    props.children = data.children;
    Ok(answer(status::SUCCESS)
        .with(Element::new(page::AIRSYNC, "CollectionId").text(coll_id))
        .with(Element::new(page::AIRSYNC, "ServerId").text(server_id))
        .with(Element::new(page::AIRSYNC, "Class").text(class))
        .with(props))
}

async fn empty(eas: &ActiveSync, principal: u64, op: &Element) -> Result<Element, StoreError> {
    let coll_id = op.child_value("CollectionId").unwrap_or_default();
    let answer = |s: &str| {
        Element::new(page::ITEM_OPERATIONS, "EmptyFolderContents")
            .with_text("Status", s)
            .with(Element::new(page::AIRSYNC, "CollectionId").text(coll_id.clone()))
    };
    let Some(coll) = own(eas, principal, &coll_id)? else {
        return Ok(answer(status::NOT_FOUND));
    };
    let id = coll.id;
    eas.store()
        .write(Actor::Principal(principal), vec![], move |w| {
            for item in w.item_ids(id)? {
                w.delete_item(id, item)?;
            }
            Ok::<_, StoreError>(())
        })
        .await?;
    log::info!("activesync: folder {id} emptied");
    Ok(answer(status::SUCCESS))
}
