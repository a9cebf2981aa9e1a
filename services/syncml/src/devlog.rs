//! A device's detailed session log, for an administrator finding out why a phone syncs
//! slowly or wrongly (IceWarp's "detailed log for performance analysis"): switched on per
//! device in the console, it records each message of the device's sessions with when it
//! came, how long the server took to answer, the sizes both ways and what each side said
//! (commands, datastores, item counts, statuses). It holds no item data and no
//! credentials. Kept in the store (namespace `syncml-log`, by principal and device),
//! at most `MAX_ENTRIES`, the oldest dropped first.

use bureau_store::{Actor, Store, StoreError};
use bureau_wbxml::Element;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

const NS: &str = "syncml-log";
/// Entries kept per device (a few hundred bytes each).
pub const MAX_ENTRIES: usize = 500;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeviceLog {
    /// Whether the device's messages are recorded.
    pub on: bool,
    pub entries: VecDeque<Entry>,
}

/// One message of the device and the server's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// When it came (Unix milliseconds).
    pub at_ms: i64,
    pub session: String,
    pub msg_id: String,
    /// How long the server took to answer it.
    pub took_ms: u64,
    pub bytes_in: usize,
    pub bytes_out: usize,
    /// "xml" or "wbxml".
    pub encoding: String,
    /// What the device's message said, and the server's answer.
    pub received: String,
    pub sent: String,
}

fn key(principal: u64, device: &str) -> String {
    format!("{principal}/{device}")
}

/// A device's log (empty and off when it has none). `device` is the device's id as the
/// store keeps it (`syncml:<DevID>`).
pub fn read(store: &Store, principal: u64, device: &str) -> Result<DeviceLog, StoreError> {
    let bytes = store
        .reader(Actor::System)?
        .kv_get(NS, &key(principal, device))?;
    Ok(bytes
        .and_then(|b| rmp_serde::from_slice(&b).ok())
        .unwrap_or_default())
}

async fn change(
    store: &Store,
    principal: u64,
    device: &str,
    f: impl Fn(&mut DeviceLog) + Send + Sync + 'static,
) -> Result<DeviceLog, StoreError> {
    let k = key(principal, device);
    store
        .write(Actor::System, vec![], move |w| {
            let mut log: DeviceLog = w
                .kv_get(NS, &k)?
                .and_then(|b| rmp_serde::from_slice(&b).ok())
                .unwrap_or_default();
            f(&mut log);
            let bytes = rmp_serde::to_vec_named(&log)
                .map_err(|e| StoreError::Invalid(format!("a device log: {e}")))?;
            w.kv_put(NS, &k, &bytes)?;
            Ok::<_, StoreError>(log)
        })
        .await
}

/// Switches a device's log on or off (what it holds stays).
pub async fn switch(
    store: &Store,
    principal: u64,
    device: &str,
    on: bool,
) -> Result<DeviceLog, StoreError> {
    change(store, principal, device, move |l| l.on = on).await
}

/// Empties a device's log (it stays on or off).
pub async fn clear(store: &Store, principal: u64, device: &str) -> Result<DeviceLog, StoreError> {
    change(store, principal, device, |l| l.entries.clear()).await
}

/// Adds an entry, if the device's log is on.
pub(crate) async fn append(
    store: &Store,
    principal: u64,
    device: &str,
    entry: Entry,
) -> Result<(), StoreError> {
    change(store, principal, device, move |l| {
        if l.on {
            l.entries.push_back(entry.clone());
            while l.entries.len() > MAX_ENTRIES {
                l.entries.pop_front();
            }
        }
    })
    .await
    .map(drop)
}

/// What a message says, in a line: its commands in order, an Alert with its code and
/// datastore, a Sync with its datastore and how many items of each kind, Statuses counted
/// by code ("Status 200×4 201×2"), Final.
pub(crate) fn summary(root: &Element) -> String {
    let Some(body) = root.child("SyncBody") else {
        return String::new();
    };
    let mut parts: Vec<String> = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let target = |c: &Element| {
        crate::message::text_at(c, &["Target", "LocURI"])
            .or_else(|| crate::message::text_at(c, &["Item", "Target", "LocURI"]))
            .unwrap_or_default()
    };
    for c in body.elements() {
        match c.name {
            "Status" => {
                *statuses
                    .entry(c.child_value("Data").unwrap_or_default())
                    .or_default() += 1;
            }
            "Alert" => parts.push(format!(
                "Alert {} {}",
                c.child_value("Data").unwrap_or_default(),
                target(c)
            )),
            "Sync" => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for i in c.elements() {
                    if matches!(i.name, "Add" | "Replace" | "Delete") {
                        *counts.entry(i.name).or_default() += i.children_named("Item").count();
                    }
                }
                let items: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
                let items = if items.is_empty() {
                    "no change".to_string()
                } else {
                    items.join(", ")
                };
                parts.push(format!("Sync {} ({items})", target(c)));
            }
            "Map" => parts.push(format!(
                "Map {} ({} ids)",
                target(c),
                c.children_named("MapItem").count()
            )),
            "Final" => {}
            other => parts.push(format!("{other} {}", target(c)).trim_end().to_string()),
        }
    }
    if !statuses.is_empty() {
        let codes: Vec<String> = statuses.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        parts.insert(0, format!("Status {}", codes.join(" ")));
    }
    if body.child("Final").is_some() {
        parts.push("Final".into());
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_in_a_line() {
        let xml = br#"<SyncML><SyncHdr/><SyncBody>
            <Status><CmdID>1</CmdID><Data>200</Data></Status>
            <Status><CmdID>2</CmdID><Data>201</Data></Status>
            <Status><CmdID>3</CmdID><Data>201</Data></Status>
            <Alert><CmdID>4</CmdID><Data>200</Data><Item><Target><LocURI>contacts</LocURI></Target></Item></Alert>
            <Sync><CmdID>5</CmdID><Target><LocURI>contacts</LocURI></Target>
              <Add><CmdID>6</CmdID><Item><Data>secret card</Data></Item><Item><Data>x</Data></Item></Add>
              <Delete><CmdID>7</CmdID><Item/></Delete></Sync>
            <Final/></SyncBody></SyncML>"#;
        let root = crate::codec::decode(xml, crate::codec::Encoding::Xml, 32).unwrap();
        let s = summary(&root);
        assert_eq!(
            s,
            "Status 200×1 201×2 · Alert 200 contacts · Sync contacts (2 Add, 1 Delete) · Final"
        );
        assert!(!s.contains("secret"));
    }
}
