//! redb table definitions and the record encoding. Only this crate opens them.

use crate::{Result, StoreError};
use redb::TableDefinition;
use serde::{Serialize, de::DeserializeOwned};

/// "schema_version", "next_principal", "next_collection".
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const PRINCIPALS: TableDefinition<u64, &[u8]> = TableDefinition::new("principals");
pub(crate) const PRINCIPAL_NAMES: TableDefinition<&str, u64> =
    TableDefinition::new("principal_names");
/// (member, group)
pub(crate) const MEMBER_OF: TableDefinition<(u64, u64), ()> = TableDefinition::new("member_of");
pub(crate) const COLLECTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("collections");
/// (owner, name) -> collection
pub(crate) const COLLECTION_NAMES: TableDefinition<(u64, &str), u64> =
    TableDefinition::new("collection_names");
/// (collection, item)
pub(crate) const ITEMS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("items");
/// (collection, name) -> item
pub(crate) const ITEM_NAMES: TableDefinition<(u64, &str), u64> = TableDefinition::new("item_names");
/// (mailbox, item) for each message of a mailbox without the owner's \\Seen: a mailbox's
/// first unseen message and unseen count without reading every record.
pub(crate) const UNSEEN: TableDefinition<(u64, u64), ()> = TableDefinition::new("unseen");
/// (mailbox, item) for each message flagged \\Deleted: EXPUNGE without reading every record.
pub(crate) const DELETED: TableDefinition<(u64, u64), ()> = TableDefinition::new("deleted");
/// (collection, UID, item) for each item with a `uid` prop (an iCalendar or vCard UID):
/// CalDAV's one-UID-per-collection rule and scheduling's "where is this UID" without
/// reading every record.
pub(crate) const UIDS: TableDefinition<(u64, &str, u64), ()> = TableDefinition::new("uids");
/// (collection, first item) -> how many consecutive item ids from it are live: a
/// collection's ids as runs, so that IMAP's SELECT reads a few runs, not every key.
pub(crate) const ID_RUNS: TableDefinition<(u64, u64), u64> = TableDefinition::new("id_runs");
/// (collection, unit of item ids, term) -> the posting of the unit's items that hold the
/// term (`terms.rs`): a mailbox's substring searches without reading every message.
pub(crate) const TERMS: TableDefinition<(u64, u32, u32), &[u8]> = TableDefinition::new("terms");
/// collection -> where its postings are: the ids kept in larger units of `TERMS`, and the
/// range being moved up (`terms::Levels`).
pub(crate) const TERM_LEVELS: TableDefinition<u64, &[u8]> = TableDefinition::new("term_levels");
/// (collection, item) -> state (`terms::state`), for each message not in `TERMS`: a
/// candidate for every search until a batch posts it.
pub(crate) const UNINDEXED: TableDefinition<(u64, u64), u8> = TableDefinition::new("unindexed");
/// (collection, item) -> the terms of a message gone (or whose blob changed) since it was
/// posted: for the next batch to take out of `TERMS`.
pub(crate) const UNPOST: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("unpost");
/// (collection, modseq) -> (item, deleted). One entry per live item (its last change) and one
/// per tombstone: the change log.
pub(crate) const CHANGELOG: TableDefinition<(u64, u64), (u64, bool)> =
    TableDefinition::new("changelog");
/// (collection, item) -> the name a deleted item had, so that a sync can name it (DAV).
pub(crate) const TOMBSTONE_NAMES: TableDefinition<(u64, u64), &str> =
    TableDefinition::new("tombstone_names");
/// (collection, grantee) -> Right
pub(crate) const GRANTS: TableDefinition<(u64, u64), u8> = TableDefinition::new("grants");
/// (grantee, collection) -> Right, to list what is shared with someone.
pub(crate) const GRANTS_BY_GRANTEE: TableDefinition<(u64, u64), u8> =
    TableDefinition::new("grants_by_grantee");
/// blob hash -> number of items referring to it. A blob with a count is durable on disk.
pub(crate) const BLOB_REFS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("blob_refs");
/// blob hash -> bytes, for blobs of at most `INLINE_MAX` bytes.
pub(crate) const BLOB_DATA: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blob_data");
/// (blob hash, field) -> what a protocol derived from the blob's bytes (IMAP's ENVELOPE and
/// BODYSTRUCTURE): kept while the blob is, dropped with it. A cache: losing it costs time.
pub(crate) const BLOB_DERIVED: TableDefinition<(&[u8; 32], &str), &[u8]> =
    TableDefinition::new("blob_derived");
/// principal -> bytes held by the collections it owns
pub(crate) const USAGE: TableDefinition<u64, u64> = TableDefinition::new("usage");
/// (namespace, key) -> record, for the directory and other services' own records.
pub(crate) const KV: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");
/// (principal, device id) -> Device
pub(crate) const DEVICES: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("devices");
/// (principal, device id, collection) -> SyncState
pub(crate) const SYNC_STATES: TableDefinition<(u64, &str, u64), &[u8]> =
    TableDefinition::new("sync_states");

pub(crate) fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(v).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

pub(crate) fn dec<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

/// Creates every table, so that read transactions never meet a missing one.
pub(crate) fn create_all(tx: &redb::WriteTransaction) -> Result<()> {
    tx.open_table(META)?;
    tx.open_table(PRINCIPALS)?;
    tx.open_table(PRINCIPAL_NAMES)?;
    tx.open_table(MEMBER_OF)?;
    tx.open_table(COLLECTIONS)?;
    tx.open_table(COLLECTION_NAMES)?;
    tx.open_table(TOMBSTONE_NAMES)?;
    tx.open_table(ITEMS)?;
    tx.open_table(ITEM_NAMES)?;
    tx.open_table(UNSEEN)?;
    tx.open_table(DELETED)?;
    tx.open_table(UIDS)?;
    tx.open_table(ID_RUNS)?;
    tx.open_table(TERMS)?;
    tx.open_table(TERM_LEVELS)?;
    tx.open_table(UNINDEXED)?;
    tx.open_table(UNPOST)?;
    tx.open_table(CHANGELOG)?;
    tx.open_table(GRANTS)?;
    tx.open_table(GRANTS_BY_GRANTEE)?;
    tx.open_table(BLOB_REFS)?;
    tx.open_table(BLOB_DATA)?;
    tx.open_table(BLOB_DERIVED)?;
    tx.open_table(USAGE)?;
    tx.open_table(KV)?;
    tx.open_table(DEVICES)?;
    tx.open_table(SYNC_STATES)?;
    Ok(())
}
