//! Ping (MS-ASCMD 2.2.1.13): the device's push. The request is held until one of the
//! folders it watches has something the device has not been told (woken by the store's
//! change bus), or its heartbeat runs out, or the daemon stops.
//!
//! A folder has news when its modseq is past what the device acknowledged in its Sync
//! state. The bus is subscribed to before looking, so a change between the look and the
//! wait is not missed. An empty Ping repeats the device's last one (kept with the device).

use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_store::{Actor, CollectionKind, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// Ping status codes (MS-ASCMD 2.2.3.177.11).
mod status {
    pub const EXPIRED: &str = "1";
    pub const CHANGES: &str = "2";
    pub const MISSING_PARAMETERS: &str = "3";
    pub const PROTOCOL_ERROR: &str = "4";
    pub const HEARTBEAT_OUT_OF_BOUNDS: &str = "5";
    pub const TOO_MANY_FOLDERS: &str = "6";
    pub const FOLDER_SYNC_REQUIRED: &str = "7";
}

/// The last Ping's parameters, kept with the device for an empty Ping.
const LAST_PING: &str = "last_ping";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Params {
    heartbeat: u64,
    folders: Vec<String>,
}

pub async fn ping(
    eas: &ActiveSync,
    cx: &mut Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let root = |s: &str| Element::new(page::PING, "Ping").with_text("Status", s);
    let cached: Option<Params> = cx
        .device
        .info
        .get(LAST_PING)
        .and_then(|p| serde_json::from_str(p).ok());
    let mut p = cached.clone().unwrap_or_default();
    match &doc {
        Some(d) if d.name == "Ping" => {
            if let Some(h) = d.child_value("HeartbeatInterval") {
                match h.trim().parse() {
                    Ok(h) => p.heartbeat = h,
                    Err(_) => return Ok(document(&root(status::PROTOCOL_ERROR))),
                }
            }
            if let Some(fs) = d.child("Folders") {
                p.folders = fs
                    .children_named("Folder")
                    .filter_map(|f| f.child_value("Id"))
                    .collect();
            }
        }
        Some(_) => return Ok(document(&root(status::PROTOCOL_ERROR))),
        None => {}
    }
    if p.folders.is_empty() || p.heartbeat == 0 {
        return Ok(document(&root(status::MISSING_PARAMETERS)));
    }
    let limits = eas.limits();
    if p.heartbeat < limits.min_heartbeat_secs || p.heartbeat > limits.max_heartbeat_secs {
        let bound = p
            .heartbeat
            .clamp(limits.min_heartbeat_secs, limits.max_heartbeat_secs);
        return Ok(document(
            &root(status::HEARTBEAT_OUT_OF_BOUNDS)
                .with_text("HeartbeatInterval", bound.to_string()),
        ));
    }
    if p.folders.len() > limits.max_ping_folders {
        return Ok(document(
            &root(status::TOO_MANY_FOLDERS)
                .with_text("MaxFolders", limits.max_ping_folders.to_string()),
        ));
    }
    let principal = cx.user.principal;
    // Listening before looking: nothing that lands in between is missed.
    let mut bus = eas.store().subscribe();
    let mut watched = BTreeSet::new();
    {
        let r = eas.store().reader(Actor::Principal(principal))?;
        for f in &p.folders {
            match crate::own_collection(&r, principal, f)? {
                Some(c) if c.kind != CollectionKind::ScheduleInbox => {
                    watched.insert(c.id);
                }
                _ => return Ok(document(&root(status::FOLDER_SYNC_REQUIRED))),
            }
        }
    }
    if cached.as_ref() != Some(&p) {
        cx.device.info.insert(
            LAST_PING.into(),
            serde_json::to_string(&p).unwrap_or_default(),
        );
        eas.save_device(principal, &cx.device).await?;
    }
    let news = |eas: &ActiveSync| -> Result<Vec<u64>, StoreError> {
        let r = eas.store().reader(Actor::Principal(principal))?;
        let mut out = Vec::new();
        for id in &watched {
            let head = r.collection(*id)?.modseq;
            let told = r
                .sync_state(principal, &cx.device.id, *id)?
                .map_or(0, |s| s.acked_modseq);
            if head > told {
                out.push(*id);
            }
        }
        Ok(out)
    };
    let answer = |ids: Vec<u64>| {
        let mut folders = Element::new(page::PING, "Folders");
        for id in ids {
            folders = folders.with_text("Folder", id.to_string());
        }
        document(&root(status::CHANGES).with(folders))
    };
    let pending = news(eas)?;
    if !pending.is_empty() {
        return Ok(answer(pending));
    }
    let deadline = tokio::time::sleep(Duration::from_secs(p.heartbeat));
    tokio::pin!(deadline);
    let mut shutdown = eas.shutdown.clone();
    loop {
        tokio::select! {
            _ = &mut deadline => return Ok(document(&root(status::EXPIRED))),
            _ = shutdown.signalled() => return Ok(document(&root(status::EXPIRED))),
            change = bus.recv() => {
                let relevant = match change {
                    Ok(c) => watched.contains(&c.collection),
                    // Too many changes at once to follow: look again.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        return Ok(document(&root(status::EXPIRED)));
                    }
                };
                if relevant {
                    let ids = news(eas)?;
                    if !ids.is_empty() {
                        return Ok(answer(ids));
                    }
                }
            }
        }
    }
}
