//! Control of the office's other daemons from Bureau's accounts: the web proxy (Squid,
//! `proxy`) and the file server (Samba, `samba`). The daemon checks the settings and sends
//! them as a plan; the privileged helper checks the plan again and renders the
//! configuration here, has `squid -k parse` or `testparm` check it, and only then installs
//! it (both daemons start as root and read it).

pub mod proxy;
pub mod samba;

/// A setting refused: the field to fix and why.
#[derive(Debug, PartialEq)]
pub struct Invalid {
    pub field: String,
    pub message: bureau_words::Said,
}

pub(crate) fn invalid(field: impl Into<String>, message: bureau_words::Said) -> Invalid {
    Invalid {
        field: field.into(),
        message,
    }
}

const SETTINGS: &str = "settings";

/// Settings kept in the store as JSON; the defaults until first saved.
pub(crate) fn load_settings<T: serde::de::DeserializeOwned + Default>(
    store: &bureau_store::Store,
    key: &str,
) -> Result<T, bureau_store::StoreError> {
    let r = store.reader(bureau_store::Actor::System)?;
    Ok(r.kv_get(SETTINGS, key)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

pub(crate) async fn save_settings<T: serde::Serialize>(
    store: &bureau_store::Store,
    key: &'static str,
    s: &T,
) -> Result<(), bureau_store::StoreError> {
    let data =
        serde_json::to_vec(s).map_err(|e| bureau_store::StoreError::Invalid(e.to_string()))?;
    store
        .write(bureau_store::Actor::System, vec![], move |w| {
            w.kv_put(SETTINGS, key, &data)
        })
        .await
}
