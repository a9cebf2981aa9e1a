//! What is about calendars, contacts, tasks and notes rather than about a wire protocol,
//! shared by the protocols that carry them (DAV and ActiveSync; SyncML next):
//!
//! - `object`: what a calendar or contact object must be to be stored (the same rules for
//!   every protocol) and the props it is indexed by, its recurrence span among them.
//! - `contentline`: the lossless content-line editor for iCalendar and vCard text: a
//!   device's change replaces the lines it stands for, every other line stays byte for byte.
//! - `tzi`: time zones as Windows describes them (TIME_ZONE_INFORMATION and its rules),
//!   matched to and from the zone database.
//! - `when`: DTSTART-like values (date, UTC, zoned, floating) and the object's zones.
//! - `busy`: recurrence instances, busy periods and VFREEBUSY.
//! - `items`: a collection's item records, kept between requests.
//! - `schedule`: implicit scheduling (iTIP between users here, iMIP by mail), resource
//!   bookings, and calendar objects written for protocols that do not schedule themselves.

pub mod busy;
pub mod contentline;
pub mod items;
pub mod object;
pub mod schedule;
pub mod tzi;
pub mod when;
