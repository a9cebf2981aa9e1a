//! Server-alerted sync (OMA DS 1.2, sync types 206 to 210) for the devices that ask for
//! it. A device whose sync URL carries `push` (`push=<port>` for another port than WAP's
//! 2948) is registered at the end of each session: the address it synced from, how it
//! names the server, and each datastore it synced (kept with the device, `Push*` keys).
//! When one of those collections changes by another hand than the device's, the device
//! gets a notification (san.rs) by WAP push over UDP at that address, once the changes
//! have settled for `SETTLE`: two-way (206), or one-way or refresh from the server (209,
//! 210) for a datastore the device syncs so. A URL without `push` ends the registration.
//!
//! The notification's digest is made with the user's SyncML MD5 credential (the device's
//! own name and password; server authentication is not used, so the nonce is empty).

use crate::SyncMl;
use crate::modes::Mode;
use crate::san::{self, Notice, Sync};
use bureau_core::shutdown::Shutdown;
use bureau_store::{Actor, CollectionId, PrincipalId, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

const ADDRESS: &str = "Push";
const SERVER: &str = "PushServer";
/// One per datastore: `PushDb <collection>` = `<code> <the device's URI for it>`.
const DB: &str = "PushDb ";
/// How long changes settle before the devices are told (a batch of writes, one notice).
const SETTLE: Duration = Duration::from_secs(2);

/// The code a device is alerted with for a datastore it syncs in `mode`.
fn alert_code(mode: Mode) -> u16 {
    match mode {
        Mode::OneWayFromServer => 209,
        Mode::RefreshFromServer => 210,
        _ => 206,
    }
}

/// Registers (or, `to` None, forgets) a device for pushes, with the datastores of the
/// session that ends: (collection, mode, the device's URI for it).
pub fn register<'a>(
    info: &mut BTreeMap<String, String>,
    to: Option<SocketAddr>,
    server_id: &str,
    dbs: impl Iterator<Item = (CollectionId, Mode, &'a str)>,
) {
    let Some(to) = to else {
        info.retain(|k, _| k != ADDRESS && k != SERVER && !k.starts_with(DB));
        return;
    };
    info.insert(ADDRESS.into(), to.to_string());
    info.insert(SERVER.into(), server_id.chars().take(255).collect());
    for (coll, mode, uri) in dbs {
        info.insert(format!("{DB}{coll}"), format!("{} {uri}", alert_code(mode)));
    }
}

/// A registered device: where it is, how it knows the server, its datastores.
struct Registered<'a> {
    to: SocketAddr,
    server: &'a str,
    dbs: Vec<(CollectionId, Sync)>,
}

/// A registered device's address and datastores.
fn registered(info: &BTreeMap<String, String>) -> Option<Registered<'_>> {
    let to = info.get(ADDRESS)?.parse().ok()?;
    let server = info.get(SERVER).map_or("", String::as_str);
    let dbs = info
        .iter()
        .filter_map(|(k, v)| {
            let coll = k.strip_prefix(DB)?.parse().ok()?;
            let (code, uri) = v.split_once(' ')?;
            let code = code.parse().ok()?;
            Some((
                coll,
                Sync {
                    code,
                    uri: uri.to_string(),
                },
            ))
        })
        .collect();
    Some(Registered { to, server, dbs })
}

impl SyncMl {
    /// Follows the store's changes and alerts the registered devices, until shutdown.
    pub async fn push(self, mut sd: Shutdown) {
        let mut bus = self.inner.store.subscribe();
        loop {
            let mut changed: BTreeSet<(PrincipalId, CollectionId)> = BTreeSet::new();
            tokio::select! {
                _ = sd.signalled() => return,
                c = bus.recv() => match c {
                    Ok(c) => { changed.insert((c.owner, c.collection)); }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        log::warn!("syncml: push: {n} changes missed");
                        continue;
                    }
                    Err(_) => return,
                },
            }
            let until = tokio::time::Instant::now() + SETTLE;
            while let Ok(c) = tokio::time::timeout_at(until, bus.recv()).await {
                if let Ok(c) = c {
                    changed.insert((c.owner, c.collection));
                }
            }
            let owners: BTreeSet<PrincipalId> = changed.iter().map(|(o, _)| *o).collect();
            for owner in owners {
                if let Err(e) = self.alert(owner, &changed).await {
                    log::warn!("syncml: push to the devices of principal {owner}: {e}");
                }
            }
        }
    }

    /// Alerts an owner's registered devices of the changes they have not synced.
    async fn alert(
        &self,
        owner: PrincipalId,
        changed: &BTreeSet<(PrincipalId, CollectionId)>,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let r = store.reader(Actor::System)?;
        let mut credential = None;
        for device in r.devices(owner)? {
            let Some(Registered { to, server, dbs }) = registered(&device.info) else {
                continue;
            };
            let mut syncs = Vec::new();
            for (coll, sync) in dbs {
                // (A datastore synced as folders is named once, whichever folders changed.)
                let named = syncs.iter().any(|s: &Sync| s.uri == sync.uri);
                if !named
                    && changed.contains(&(owner, coll))
                    && unsynced(store, owner, &device.id, coll)?
                {
                    syncs.push(sync);
                }
            }
            if syncs.is_empty() {
                continue;
            }
            if credential.is_none() {
                let uid = r.principal(owner)?.name;
                credential = self
                    .inner
                    .auth
                    .directory()
                    .syncml_credential(&uid)
                    .map_err(|e| StoreError::Io(e.to_string()))?
                    .or(Some(String::new()));
            }
            let notice = Notice {
                server_id: server.to_string(),
                session_id: rand::random(),
                syncs,
            };
            let package = san::package(&notice, credential.as_deref().unwrap_or(""), b"");
            let pdu = san::wap_push(rand::random(), &package);
            match send(to, &pdu).await {
                Ok(()) => log::info!("syncml: alerted {} at {to}", device.id),
                Err(e) => log::info!("syncml: alerting {} at {to}: {e}", device.id),
            }
        }
        Ok(())
    }
}

/// Whether a collection holds changes a device has not been sent and did not make.
fn unsynced(
    store: &Store,
    owner: PrincipalId,
    device: &str,
    coll: CollectionId,
) -> Result<bool, StoreError> {
    let r = store.reader(Actor::System)?;
    let Some(state) = r.sync_state(owner, device, coll)? else {
        return Ok(false);
    };
    match r.changes_since(coll, state.acked_modseq) {
        Ok(c) => Ok(!c.deleted.is_empty()
            || c.changed
                .iter()
                .any(|i| state.own_changes.get(&i.id) != Some(&i.modseq))),
        Err(StoreError::TooOld) => Ok(true),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn send(to: SocketAddr, pdu: &[u8]) -> std::io::Result<()> {
    let bind: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let socket = tokio::net::UdpSocket::bind(bind).await?;
    socket.send_to(pdu, to).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_registered_then_forgotten() {
        let mut info = BTreeMap::from([("Man".to_string(), "Nokia".to_string())]);
        let to: SocketAddr = "192.0.2.7:2948".parse().unwrap();
        register(
            &mut info,
            Some(to),
            "https://box/syncml",
            [(4, Mode::TwoWay, "contacts")].into_iter(),
        );
        register(
            &mut info,
            Some(to),
            "https://box/syncml",
            [(5, Mode::OneWayFromServer, "cal")].into_iter(),
        );
        let Registered {
            to: at,
            server,
            dbs,
        } = registered(&info).unwrap();
        assert_eq!((at, server), (to, "https://box/syncml"));
        let codes: Vec<(u64, u16, &str)> = dbs
            .iter()
            .map(|(c, s)| (*c, s.code, s.uri.as_str()))
            .collect();
        assert_eq!(codes, [(4, 206, "contacts"), (5, 209, "cal")]);
        register(&mut info, None, "", std::iter::empty());
        assert!(registered(&info).is_none());
        assert_eq!(info.len(), 1);
    }
}
