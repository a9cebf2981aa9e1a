//! Sessions kept in the store between messages (namespace `syncml-session`, by token), so
//! that a device goes on at its RespURI after the daemon restarts. A session is written
//! after each message it answered and removed when it ends whole or fails; one idle longer
//! than `SESSION_IDLE` is not taken up again, and is swept.

use crate::SESSION_IDLE;
use crate::session::Session;
use bureau_store::{Actor, Store, StoreError};
use serde::{Deserialize, Serialize};

const NS: &str = "syncml-session";

#[derive(Deserialize)]
struct Kept {
    /// When it was written (Unix seconds).
    at: i64,
    session: Session,
}

/// `Kept` as written, borrowing the session.
#[derive(Serialize)]
struct KeptRef<'a> {
    at: i64,
    session: &'a Session,
}

/// Whether a token is one the server makes (32 hex digits), before it is looked up.
fn well_formed(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn fresh(at: i64) -> bool {
    bureau_store::now() - at < SESSION_IDLE.as_secs() as i64
}

pub async fn save(store: &Store, s: &Session) -> Result<(), StoreError> {
    let kept = rmp_serde::to_vec_named(&KeptRef {
        at: bureau_store::now(),
        session: s,
    })
    .map_err(|e| StoreError::Invalid(format!("a SyncML session: {e}")))?;
    let token = s.token.clone();
    store
        .write(Actor::System, vec![], move |w| w.kv_put(NS, &token, &kept))
        .await
}

/// A kept session, if the token names one not idle too long.
pub fn load(store: &Store, token: &str) -> Result<Option<Session>, StoreError> {
    if !well_formed(token) {
        return Ok(None);
    }
    let Some(bytes) = store.reader(Actor::System)?.kv_get(NS, token)? else {
        return Ok(None);
    };
    match rmp_serde::from_slice::<Kept>(&bytes) {
        Ok(k) if fresh(k.at) => Ok(Some(k.session)),
        Ok(_) => Ok(None),
        Err(e) => {
            log::warn!("syncml: a kept session does not read back: {e}");
            Ok(None)
        }
    }
}

pub async fn forget(store: &Store, token: &str) -> Result<(), StoreError> {
    let token = token.to_string();
    store
        .write(Actor::System, vec![], move |w| {
            w.kv_delete(NS, &token).map(|_| ())
        })
        .await
}

/// Removes the sessions idle too long (the devices that never came back).
pub async fn sweep(store: &Store) -> Result<(), StoreError> {
    let stale: Vec<String> = store
        .reader(Actor::System)?
        .kv_list(NS)?
        .into_iter()
        .filter(|(_, v)| rmp_serde::from_slice::<Kept>(v).map_or(true, |k| !fresh(k.at)))
        .map(|(k, _)| k)
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    store
        .write(Actor::System, vec![], move |w| {
            for k in &stale {
                w.kv_delete(NS, k)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
}
