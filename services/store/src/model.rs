//! The values the store keeps. Records are MessagePack maps (field names kept), so a field
//! added later with `#[serde(default)]` reads older records without a migration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type PrincipalId = u64;
pub type CollectionId = u64;
pub type ItemId = u64;
pub type ModSeq = u64;

/// Who is asking. `System` is the daemon itself (local delivery, the admin API, the
/// directory); a `Principal` is a logged-in user and is subject to rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    System,
    Principal(PrincipalId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrincipalKind {
    User,
    Group,
    Resource,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: PrincipalId,
    pub kind: PrincipalKind,
    /// Unique across the box (the login or group name).
    pub name: String,
    /// Members, for a group.
    #[serde(default)]
    pub members: Vec<PrincipalId>,
    /// Bytes this principal's collections may hold; `None` is unlimited.
    #[serde(default)]
    pub quota: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollectionKind {
    Mailbox,
    Calendar,
    AddressBook,
    TaskList,
    Notes,
    /// CalDAV scheduling messages (RFC 6638) waiting for a user's client.
    ScheduleInbox,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    pub id: CollectionId,
    pub owner: PrincipalId,
    pub kind: CollectionKind,
    /// Unique per owner: a mailbox path ("INBOX", "Archive/2026") or a DAV collection name.
    pub name: String,
    /// Highest modseq given to an item of this collection (the change log's head).
    pub modseq: ModSeq,
    /// Changes at or below this modseq have been pruned from the log: a sync from an older
    /// point must start over.
    #[serde(default)]
    pub log_floor: ModSeq,
    /// Next item id; ids are never reused within a collection (IMAP UIDs).
    pub next_item: ItemId,
    /// Changes when ids may have been reused (IMAP UIDVALIDITY).
    pub validity: u32,
    #[serde(default)]
    pub props: BTreeMap<String, String>,
    /// A mailbox's keywords (flags not starting with `\\`) ever set on one of its items, in
    /// the order of first use: the flags IMAP says are defined in it.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// A content-addressed blob: BLAKE3 of the bytes, and their length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    pub hash: [u8; 32],
    pub size: u64,
}

impl BlobRef {
    pub fn hex(&self) -> String {
        hex::encode(self.hash)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub collection: CollectionId,
    /// The modseq of the last change to this item.
    pub modseq: ModSeq,
    /// Resource name, unique within the collection (a DAV href's last segment).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub blob: Option<BlobRef>,
    /// IMAP flags and keywords, sorted, without duplicates.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Internal date, seconds since the Unix epoch.
    pub date: i64,
    /// Small protocol metadata (content type, iCalendar UID, ...).
    #[serde(default)]
    pub props: BTreeMap<String, String>,
}

/// The item and collection properties more than one crate reads, defined once with their
/// formats (issue 20: no crate parses another's string). Read them with the accessors on
/// `Item` and `Collection`; write them with these keys.
pub mod prop {
    /// An iCalendar or vCard object's UID (indexed by the store: `items_with_uid`).
    pub const UID: &str = "uid";
    /// A calendar object's main component: VEVENT, VTODO or VJOURNAL.
    pub const COMPONENT: &str = "component";
    /// A calendar object's organizer, a lower-case address.
    pub const ORGANIZER: &str = "organizer";
    /// A scheduling object's Schedule-Tag (RFC 6638), an opaque quoted string.
    pub const SCHEDULE_TAG: &str = "schedule-tag";
    /// When a calendar object's instances start and end: "<first start> <last end>" in Unix
    /// seconds, the end i64::MAX for an open-ended series. Write it with `span_value`.
    pub const SPAN: &str = "span";
    /// A collection's name as people see it (DAV's displayname, an ActiveSync folder's
    /// DisplayName); the collection's own name when absent.
    pub const DISPLAY_NAME: &str = "displayname";
    /// A mailbox's special use (RFC 6154), such as \\Drafts.
    pub const SPECIAL_USE: &str = "special-use";
    /// A calendar collection's components, space-separated ("VEVENT VTODO"), when MKCALENDAR
    /// asked for a set its kind does not stand for (RFC 4791 5.2.3).
    pub const COMPONENTS: &str = "components";

    /// The value of `SPAN`.
    pub fn span_value(from: i64, to: i64) -> String {
        format!("{from} {to}")
    }
}

impl Item {
    pub fn uid(&self) -> Option<&str> {
        self.props.get(prop::UID).map(String::as_str)
    }

    pub fn component(&self) -> Option<&str> {
        self.props.get(prop::COMPONENT).map(String::as_str)
    }

    /// When the object's instances start and end (see `prop::SPAN`).
    pub fn span(&self) -> Option<(i64, i64)> {
        let (a, b) = self.props.get(prop::SPAN)?.split_once(' ')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }
}

impl Collection {
    pub fn special_use(&self) -> Option<&str> {
        self.props.get(prop::SPECIAL_USE).map(String::as_str)
    }

    /// The name people see (`prop::DISPLAY_NAME`), if one is set.
    pub fn display_name(&self) -> Option<&str> {
        self.props.get(prop::DISPLAY_NAME).map(String::as_str)
    }
}

/// Prefix of the item props that hold a principal's private \\Seen ("seen/<principal>").
pub const PRIVATE_SEEN: &str = "seen/";

impl Item {
    pub fn size(&self) -> u64 {
        self.blob.map_or(0, |b| b.size)
    }

    /// Whether `p` has marked this item seen for itself (see `Writer::set_private_seen`).
    pub fn seen_by(&self, p: PrincipalId) -> bool {
        self.props.contains_key(&format!("{PRIVATE_SEEN}{p}"))
    }
}

/// What a writer asks to create.
#[derive(Clone, Debug, Default)]
pub struct NewItem {
    pub name: Option<String>,
    pub blob: Option<BlobRef>,
    pub flags: Vec<String>,
    pub date: Option<i64>,
    pub props: BTreeMap<String, String>,
    /// Store even if it takes the owner past its quota (system writes only: mail whose
    /// recipient was accepted before the quota filled).
    pub past_quota: bool,
}

/// Rights another principal holds on a collection. The owner holds all of them implicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Right {
    Read = 1,
    ReadWrite = 2,
    /// Read-write, and may act for the owner (send invitations, answer on its behalf).
    Delegate = 3,
}

impl Right {
    /// The access this right gives.
    pub fn access(self) -> Access {
        match self {
            Right::Read => Access::Read,
            Right::ReadWrite => Access::ReadWrite,
            Right::Delegate => Access::Delegate,
        }
    }

    pub fn from_u8(v: u8) -> Option<Right> {
        match v {
            1 => Some(Right::Read),
            2 => Some(Right::ReadWrite),
            3 => Some(Right::Delegate),
            _ => None,
        }
    }
}

/// The access an actor has to one collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    ReadWrite,
    Delegate,
    Owner,
}

/// One entry of the change bus, published after the commit that made it durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub owner: PrincipalId,
    pub collection: CollectionId,
    pub modseq: ModSeq,
}

/// The answer to "what changed since modseq N".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Items created or changed after N, in modseq order.
    pub changed: Vec<Item>,
    /// Items deleted after N (that existed at N or were created after it).
    pub deleted: Vec<ItemId>,
    /// The names the deleted items had, for those that had one.
    pub deleted_names: BTreeMap<ItemId, String>,
    /// The collection's modseq at the time of reading.
    pub modseq: ModSeq,
}

/// A device as ActiveSync or SyncML knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub info: BTreeMap<String, String>,
    #[serde(default)]
    pub policy_key: u32,
    #[serde(default)]
    pub wipe_requested: bool,
    #[serde(default)]
    pub last_seen: i64,
}

/// Per device and collection sync state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// The modseq the device acknowledged.
    pub acked_modseq: ModSeq,
    /// The key the device presents next (ActiveSync SyncKey counter).
    #[serde(default)]
    pub sync_key: u64,
    /// The previous request's key and the response given to it, replayed on a retry.
    #[serde(default)]
    pub last_key: u64,
    #[serde(default)]
    pub last_response: Vec<u8>,
    /// Client id to server item id (SyncML LUID map, ActiveSync ClientId).
    #[serde(default)]
    pub id_map: BTreeMap<String, ItemId>,
    /// The items the device holds (ActiveSync: a change is a Change for these, an Add for
    /// others; a deletion is told only for these).
    #[serde(default)]
    pub known: std::collections::BTreeSet<ItemId>,
    /// Items the device itself changed, at the modseq its change gave them: not sent back
    /// to it unless changed again since.
    #[serde(default)]
    pub own_changes: BTreeMap<ItemId, ModSeq>,
    /// SyncML anchors.
    #[serde(default)]
    pub anchor_last: String,
    #[serde(default)]
    pub anchor_next: String,
    /// ActiveSync: the fields a device said it supports (Supported, on its first Sync of
    /// the folder); the others are "ghosted" and a change without them keeps them.
    #[serde(default)]
    pub supported: Option<Vec<String>>,
    /// SyncML hierarchical sync: this collection as a folder the device holds.
    #[serde(default)]
    pub folder: Option<FolderSeen>,
}

/// A collection as a folder a device holds (SyncML 1.2 hierarchical sync).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderSeen {
    /// The device's id for the folder.
    pub luid: String,
    /// The datastore it is a folder of, as the server names it.
    pub datastore: String,
    /// The collection's name when the device last had it.
    pub name: String,
}
