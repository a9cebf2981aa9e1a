//! Rooms and equipment answer their invitations (RFC 6638 scheduling, with the resource as
//! attendee; see bureau_directory::resource). When a REQUEST reaches a resource, its copy
//! is already in the resource's calendar (`deliver_here`); then, by its policy:
//! - an organizer who may not book it (not among its bookers; from elsewhere, when it is
//!   not open to outside bookings) is declined;
//! - auto-accept accepts; accept-if-free accepts unless an instance overlaps a booking it
//!   holds (other than this event's own), and declines otherwise;
//! - manager leaves the answer to its manager, who is told by mail and answers by setting
//!   the resource's PARTSTAT in the resource's calendar (shared with it read-write): that
//!   write schedules as the resource, so the organizer gets its REPLY as from anyone.
//!
//! An answer is written to the resource's copy (a declined one is removed, so it holds no
//! time) and sent to the organizer as a REPLY: into the store for an organizer here, by mail
//! for one elsewhere.

use super::{ScheduleError, Scheduler, is_main, reply_of, uid};
use crate::busy::{busy_periods, expand_until};
use bureau_directory::{BookingPolicy, User};
use bureau_store::prop::SCHEDULE_TAG;
use bureau_store::{Actor, CollectionKind, StoreError};
use calcard::icalendar::{
    ICalendar, ICalendarMethod, ICalendarParameter, ICalendarParameterName as PN,
    ICalendarParameterValue as PV, ICalendarParticipationStatus as PS, ICalendarProperty as P,
};

/// How far from its first instance a recurring booking is checked for conflicts.
const HORIZON: i64 = 2 * 366 * 86400;

impl Scheduler {
    /// Answers `msg`, a REQUEST from `org` just filed for `room`; `allowed`: whether the
    /// organizer may book it.
    pub(crate) async fn book(
        &self,
        room: &User,
        org: &str,
        allowed: bool,
        msg: &ICalendar,
    ) -> Result<(), ScheduleError> {
        let Some(res) = &room.resource else {
            return Ok(());
        };
        let accept = match res.policy {
            _ if !allowed => false,
            BookingPolicy::AutoAccept => true,
            BookingPolicy::AcceptIfFree => !self.conflicts(room, msg)?,
            BookingPolicy::Manager => return self.tell_manager(room, org, msg).await,
        };
        log::info!(
            "dav: {} {} a booking by {org}",
            room.uid,
            if accept { "accepts" } else { "declines" }
        );
        let mut answered = msg.clone();
        set_partstat(
            &mut answered,
            &room.address,
            if accept { PS::Accepted } else { PS::Declined },
        );
        self.keep_answer(room, &answered, accept).await?;
        let reply = reply_of(&answered, &room.address, false);
        Box::pin(self.send(room, org, ICalendarMethod::Reply, &reply)).await
    }

    /// Whether an instance of `msg` (within the horizon) overlaps a booking the resource
    /// holds for another event.
    fn conflicts(&self, room: &User, msg: &ICalendar) -> Result<bool, StoreError> {
        let Some(own) = uid(msg) else {
            return Ok(false);
        };
        // From the event's first instance (not from today: a booking is judged the same
        // whenever it is made), as far as the horizon.
        let first = expand_until(msg, i64::MIN)
            .0
            .iter()
            .map(|((start, _), _)| *start)
            .min();
        let Some(first) = first else {
            return Ok(false);
        };
        let until = first.saturating_add(HORIZON);
        let wanted: Vec<(i64, i64)> = expand_until(msg, until)
            .0
            .into_iter()
            .map(|(span, _)| span)
            .filter(|(s, _)| *s < until)
            .collect();
        let (Some(from), Some(to)) = (
            wanted.iter().map(|w| w.0).min(),
            wanted.iter().map(|w| w.1).max(),
        ) else {
            return Ok(false);
        };
        let r = self.store.reader(Actor::System)?;
        for c in r.collections_of(room.principal)? {
            if c.kind != CollectionKind::Calendar {
                continue;
            }
            let items = self.items.items(&r, c.id)?;
            let others: Vec<_> = items
                .iter()
                .filter(|i| i.uid() != Some(own.as_str()))
                .cloned()
                .collect();
            let (busy, tentative) = busy_periods(&r, &others, from, to)?;
            let overlaps = |p: &(i64, i64)| wanted.iter().any(|w| w.0 < p.1 && p.0 < w.1);
            if busy.iter().chain(&tentative).any(overlaps) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The resource's copy takes the answer, or goes when it is declined.
    async fn keep_answer(
        &self,
        room: &User,
        answered: &ICalendar,
        accept: bool,
    ) -> Result<(), StoreError> {
        let uid = uid(answered).ok_or_else(|| StoreError::Invalid("no UID".into()))?;
        let r = self.store.reader(Actor::System)?;
        let Some(item) = self.find(&r, room.principal, &uid)? else {
            return Ok(());
        };
        let (coll, id) = (item.collection, item.id);
        if !accept {
            return self
                .store
                .write(Actor::System, vec![], move |w| w.delete_item(coll, id))
                .await;
        }
        let text = super::with_method(answered, None).to_string();
        let props = super::props_of(&text)?;
        let staged = self
            .store
            .stage(text.into_bytes(), bureau_store::Content::Data)
            .await?;
        let blob = staged.blob_ref();
        self.store
            .write(Actor::System, vec![staged], move |w| {
                w.update_item(coll, id, None, |it| {
                    let tag = it.props.get(SCHEDULE_TAG).cloned();
                    it.blob = Some(blob);
                    it.props = props.clone();
                    if let Some(t) = tag {
                        it.props.insert(SCHEDULE_TAG.into(), t);
                    }
                })
                .map(drop)
            })
            .await
    }

    /// Tells the manager a booking waits for it: a plain mail, since the answer is given in
    /// the resource's calendar, not to an invitation of the manager's own.
    async fn tell_manager(
        &self,
        room: &User,
        org: &str,
        msg: &ICalendar,
    ) -> Result<(), ScheduleError> {
        let manager = room
            .resource
            .as_ref()
            .and_then(|r| r.manager.as_deref())
            .and_then(|m| self.directory().user(m).ok().flatten());
        let (Some(manager), Some(queue)) = (manager, &self.queue) else {
            log::warn!(
                "scheduling: a booking of {} waits for a manager it does not have",
                room.uid
            );
            return Ok(());
        };
        let summary = super::summary(msg);
        let text = format!(
            "{org} asks to book {} for \"{summary}\".\r\n\r\nAccept or decline it in the calendar \
             \"{}\", shared with you: set {}'s answer on the event.\r\n",
            room.display_name, room.display_name, room.address
        );
        let mail = mail_builder::MessageBuilder::new()
            .from((room.display_name.as_str(), room.address.as_str()))
            .to((manager.display_name.as_str(), manager.address.as_str()))
            .subject(format!(
                "Booking request: {} for {summary}",
                room.display_name
            ))
            .text_body(text)
            .write_to_vec()?;
        queue
            .submit(&room.address, std::slice::from_ref(&manager.address), &mail)
            .await?;
        Ok(())
    }
}

/// Sets `who`'s PARTSTAT in every component that lists it.
fn set_partstat(cal: &mut ICalendar, who: &str, answer: PS) {
    for c in cal.components.iter_mut().filter(|c| is_main(c)) {
        for e in c.entries.iter_mut().filter(|e| e.name == P::Attendee) {
            if super::address(e).as_deref() == Some(who) {
                e.params.retain(|p| p.name != PN::Partstat);
                e.params
                    .push(ICalendarParameter::partstat(PV::Partstat(answer.clone())));
            }
        }
    }
}
