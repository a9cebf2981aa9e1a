//! Calendar objects written for a protocol that does not schedule itself (ActiveSync) the
//! way a CalDAV PUT or DELETE writes them: the text checked and indexed by the same code, a UID kept unique in
//! its collection, a new Schedule-Tag for a scheduling object, and scheduling run after the
//! write is durable, so a phone's invitation or cancellation reaches attendees as one from
//! a CalDAV client does.

use super::{Scheduler, new_schedule_tag};
use bureau_directory::User;
use bureau_store::prop::{COMPONENT, COMPONENTS, SCHEDULE_TAG};
use bureau_store::{Actor, Collection, CollectionKind, Item, ItemId, NewItem, StoreError};

/// The iCalendar components a calendar, task or notes collection holds.
pub fn components(c: &Collection) -> Vec<&str> {
    if let Some(set) = c.props.get(COMPONENTS) {
        return set.split_whitespace().collect();
    }
    match c.kind {
        CollectionKind::TaskList => vec!["VTODO"],
        CollectionKind::Notes => vec!["VJOURNAL"],
        _ => vec!["VEVENT", "VTODO", "VJOURNAL"],
    }
}

/// Writes an object's new text as `name` in `coll`: created when `expect` is None, else
/// replacing the object if it is still at modseq `expect`.
pub async fn write_object(
    store: &bureau_store::Store,
    actor: Actor,
    coll: u64,
    name: &str,
    expect: Option<u64>,
    staged: bureau_store::StagedBlob,
    props: std::collections::BTreeMap<String, String>,
) -> Result<Item, StoreError> {
    let blob = staged.blob_ref();
    let name = name.to_string();
    store
        .write(actor, vec![staged], move |w| match expect {
            None => w.put_item(
                coll,
                NewItem {
                    name: Some(name.clone()),
                    blob: Some(blob),
                    props: props.clone(),
                    ..Default::default()
                },
            ),
            Some(m) => {
                let item = w.item_by_name(coll, &name)?;
                w.update_item(coll, item.id, Some(m), |it| {
                    it.blob = Some(blob);
                    it.props = props.clone();
                })
            }
        })
        .await
}

impl Scheduler {
    /// Writes an iCalendar object as `name` in one of the owner's calendar, task or notes
    /// collections: created when `expect` is None (the name must be free), else replacing
    /// the object if it is still at modseq `expect`.
    pub async fn put_object(
        &self,
        owner: &User,
        coll: &Collection,
        name: &str,
        expect: Option<u64>,
        text: String,
    ) -> Result<Item, StoreError> {
        if !matches!(
            coll.kind,
            CollectionKind::Calendar | CollectionKind::TaskList | CollectionKind::Notes
        ) || coll.owner != owner.principal
        {
            return Err(StoreError::Forbidden);
        }
        let mut props = crate::object::check(crate::object::ObjectKind::Calendar, text.as_bytes())
            .map_err(|_| StoreError::Invalid("not a valid iCalendar object".into()))?;
        if let Some(comp) = props.get(COMPONENT)
            && !components(coll).contains(&comp.as_str())
        {
            return Err(StoreError::Invalid(format!(
                "a {comp} does not belong in this collection"
            )));
        }
        let actor = Actor::Principal(owner.principal);
        let r = self.store.reader(actor)?;
        if let Some(uid) = props.get(bureau_store::prop::UID)
            && r.items_with_uid(coll.id, uid)?
                .iter()
                .any(|i| i.name.as_deref().is_some_and(|n| n != name))
        {
            return Err(StoreError::Exists(format!("an object with UID {uid}")));
        }
        if props.contains_key(bureau_store::prop::ORGANIZER) {
            props.insert(SCHEDULE_TAG.into(), new_schedule_tag());
        }
        let old = match expect {
            Some(_) => Some(r.content(&r.item_by_name(coll.id, name)?)?),
            None => None,
        };
        let staged = self
            .store
            .stage(text.as_bytes().to_vec(), bureau_store::Content::Data)
            .await?;
        let item = write_object(&self.store, actor, coll.id, name, expect, staged, props).await?;
        self.schedule(&owner.uid, old.as_deref(), Some(text.as_bytes()))
            .await;
        Ok(item)
    }

    /// A user's busy and tentative periods between two times (Unix seconds), from every
    /// calendar of theirs, as free/busy requests see them.
    pub fn free_busy(
        &self,
        principal: u64,
        from: i64,
        to: i64,
    ) -> Result<crate::busy::Busy, StoreError> {
        let r = self.store.reader(Actor::System)?;
        self.busy_of(&r, principal, from, to)
    }

    /// Deletes one of the owner's calendar objects; attendees hear of it as from CalDAV.
    pub async fn delete_object(
        &self,
        owner: &User,
        coll: &Collection,
        item: ItemId,
    ) -> Result<(), StoreError> {
        if coll.owner != owner.principal {
            return Err(StoreError::Forbidden);
        }
        let actor = Actor::Principal(owner.principal);
        let r = self.store.reader(actor)?;
        let old = r.content(&r.item(coll.id, item)?)?;
        let id = coll.id;
        self.store
            .write(actor, vec![], move |w| w.delete_item(id, item))
            .await?;
        if coll.kind != CollectionKind::ScheduleInbox {
            self.schedule(&owner.uid, Some(&old), None).await;
        }
        Ok(())
    }
}
