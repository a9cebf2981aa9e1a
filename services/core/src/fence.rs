//! One bug costs one session, never the daemon.
//!
//! Every service runs in one process, so a panic that ended it would stop mail, calendars,
//! phones, LDAP and the console at once. The release build unwinds (`panic = "unwind"`);
//! each connection's future runs inside [`fenced`], which catches a panic, logs it with the
//! connection's context and ends that connection only. The hook counts every panic (also
//! those of blocking tasks), and the count is on the dashboard.
//!
//! What unwinding cannot catch is a stack overflow: that is why every recursive parser and
//! walker is bounded in depth or iterative (docs/SECURITY.md), and the runtime's worker
//! stacks are sized here, not left to a default.
//!
//! A daemon that died anyway (killed, out of memory) is told at the next start by the run
//! marker, a file that exists while the daemon runs and is removed when it stops cleanly.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// The stack of each runtime worker and blocking thread. Parsers are bounded far below
/// what this holds; the margin is for library code we do not control.
pub const WORKER_STACK_BYTES: usize = 8 << 20;

static PANICS: AtomicU64 = AtomicU64::new(0);

/// Panics since the daemon started.
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// Counts and logs every panic with where it happened; the default hook would only print
/// it to standard error.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        let what = panic_text(info.payload());
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        log::error!(
            "internal error (a bug) in thread {} at {at}: {what}",
            thread.name().unwrap_or("?")
        );
    }));
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic")
}

/// Runs `fut`; a panic inside it ends it, logged as `what` (a service and a peer), and is
/// returned as `None`.
pub async fn fenced<F: Future>(what: impl std::fmt::Display, fut: F) -> Option<F::Output> {
    let r = CatchUnwind(Box::pin(fut)).await;
    if r.is_none() {
        log::error!("{what}: session ended by an internal error; the service goes on");
    }
    r
}

struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Some(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }
}

/// The run marker in the data directory.
pub struct RunMarker(std::path::PathBuf);

impl RunMarker {
    /// Sets the marker; returns it and, when the last run did not stop cleanly, the time
    /// (seconds since the epoch) that run started.
    pub fn set(data_dir: &std::path::Path) -> std::io::Result<(RunMarker, Option<u64>)> {
        let path = data_dir.join("running");
        let previous = std::fs::read_to_string(&path)
            .ok()
            .map(|s| s.trim().parse().unwrap_or(0));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        crate::files::write_secret(&path, now.to_string().as_bytes(), 0o600)?;
        Ok((RunMarker(path), previous))
    }
}

impl Drop for RunMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_panic_ends_only_its_future() {
        super::install_hook();
        let before = super::panics();
        let r = super::fenced("test", async {
            let v: Vec<u8> = Vec::new();
            #[allow(clippy::indexing_slicing)]
            v[1]
        })
        .await;
        assert!(r.is_none());
        assert!(super::panics() > before);
        assert_eq!(super::fenced("test", async { 7 }).await, Some(7));
    }

    #[test]
    fn the_marker_tells_an_unclean_stop() {
        let d = tempfile::tempdir().unwrap();
        let (m, prev) = super::RunMarker::set(d.path()).unwrap();
        assert_eq!(prev, None);
        drop(m);
        let (m, prev) = super::RunMarker::set(d.path()).unwrap();
        assert_eq!(prev, None);
        std::mem::forget(m);
        let (_m, prev) = super::RunMarker::set(d.path()).unwrap();
        assert!(prev.is_some());
    }
}
