//! Calendar objects written for another protocol (ActiveSync) the way a CalDAV PUT or
//! DELETE writes them: the text checked and indexed by the same code, a UID kept unique in
//! its collection, a new Schedule-Tag for a scheduling object, and scheduling run after the
//! write is durable, so a phone's invitation or cancellation reaches attendees as one from
//! a CalDAV client does.

use crate::{Dav, Kind, SCHEDULE_TAG, components, new_schedule_tag, object_props};
use bureau_directory::User;
use bureau_store::{Actor, Collection, CollectionKind, Item, ItemId, StoreError};

impl Dav {
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
        let mut props = object_props(Kind::Calendar, text.as_bytes())
            .map_err(|_| StoreError::Invalid("not a valid iCalendar object".into()))?;
        if let Some(comp) = props.get(bureau_store::prop::COMPONENT)
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
        if props.contains_key("organizer") {
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
        let item = self
            .write_object(actor, coll.id, name, expect, staged, props)
            .await?;
        self.schedule(&owner.uid, old.as_deref(), Some(text.as_bytes()))
            .await;
        Ok(item)
    }

    /// A user's busy and tentative periods between two times (Unix seconds), from every
    /// calendar of theirs, as free/busy requests see them.
    pub fn free_busy(&self, principal: u64, from: i64, to: i64) -> Result<crate::Busy, StoreError> {
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
