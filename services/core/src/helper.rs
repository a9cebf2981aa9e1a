//! The privileged helper's protocol. `bureau serve` runs unprivileged; the few things only
//! root may do go to `bureau helper` (root) as one of these requests, one JSON line each way,
//! on a unix socket that only root and the daemon's account can open.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Longest request line the helper reads.
pub const MAX_REQUEST: usize = 4096;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Install a RAUC bundle (a file in the data directory's `updates/`) to the other slot.
    InstallUpdate { bundle: PathBuf },
    /// The slots, as `rauc status --output-format=json` tells them.
    SlotStatus,
    /// Reboot the box (after answering).
    Reboot,
    /// Make Squid read the configuration Bureau wrote (`systemctl reload squid`).
    ReloadProxy,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    /// What the command said (on failure, why).
    pub output: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// No helper to ask (not on the appliance, or it is down).
    #[error("the system helper is unavailable: {0}")]
    Unavailable(String),
    /// The helper ran the request and it failed: the reason.
    #[error("{0}")]
    Failed(String),
}

/// Sends one request and waits for its answer, at most `timeout`.
pub async fn call(socket: &Path, req: &Request, timeout: Duration) -> Result<String, HelperError> {
    let down = |e: &dyn std::fmt::Display| HelperError::Unavailable(e.to_string());
    let exchange = async {
        let mut s = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| HelperError::Unavailable(format!("{}: {e}", socket.display())))?;
        let mut line = serde_json::to_vec(req).map_err(|e| down(&e))?;
        line.push(b'\n');
        s.write_all(&line).await.map_err(|e| down(&e))?;
        let mut answer = String::new();
        BufReader::new(s)
            .read_line(&mut answer)
            .await
            .map_err(|e| down(&e))?;
        let reply: Reply = serde_json::from_str(&answer).map_err(|e| down(&e))?;
        if reply.ok {
            Ok(reply.output)
        } else {
            Err(HelperError::Failed(reply.output))
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HelperError::Unavailable("no answer in time".into()))?
}
