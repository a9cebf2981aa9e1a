//! Clean shutdown: a signal every listener and connection watches, and a count of work in
//! flight that the daemon waits for before closing the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

struct Inflight {
    count: AtomicUsize,
    idle: Notify,
}

/// Held by the daemon: fires the signal, then waits for the work in flight.
pub struct Trigger {
    tx: watch::Sender<bool>,
    inflight: Arc<Inflight>,
}

/// Held by listeners and connections.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    inflight: Arc<Inflight>,
}

/// Counts one piece of work in flight while it lives.
pub struct Busy(Arc<Inflight>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    let inflight = Arc::new(Inflight {
        count: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    (
        Trigger {
            tx,
            inflight: inflight.clone(),
        },
        Shutdown { rx, inflight },
    )
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.tx.send(true);
    }

    /// Waits until nothing is in flight, or the timeout; true if drained.
    pub async fn drained(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.inflight.idle.notified();
                if self.inflight.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

impl Shutdown {
    pub fn is_signalled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown is signalled.
    pub async fn signalled(&mut self) {
        let _ = self.rx.wait_for(|s| *s).await;
    }

    /// Work in flight now: connections being served and requests being answered.
    pub fn in_flight(&self) -> usize {
        self.inflight.count.load(Ordering::Acquire)
    }

    pub fn busy(&self) -> Busy {
        self.inflight.count.fetch_add(1, Ordering::AcqRel);
        Busy(self.inflight.clone())
    }
}
