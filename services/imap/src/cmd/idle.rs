//! IDLE (RFC 2177): waits on the store's change bus, never polls.

use crate::response::{Kind, Response};
use crate::session::*;
use imap_codec::fragmentizer::Fragmentizer;
use tokio::io::AsyncReadExt;

impl Session {
    /// IDLE (RFC 2177): updates pushed from the change bus until the client says DONE.
    pub(crate) async fn idle(
        &mut self,
        tag: &str,
        frag: &mut Fragmentizer,
        buf: &mut [u8],
    ) -> bool {
        let mut bus = self.db().subscribe();
        self.send(Response::Continue("idling"));
        self.updates(true);
        if !self.flush().await {
            return false;
        }
        let coll = match &self.state {
            State::Selected(_, s) => Some(s.coll),
            _ => None,
        };
        loop {
            if frag.progress().is_some() {
                if frag.is_message_complete() {
                    self.unread = self.unread.saturating_sub(frag.message_bytes().len());
                    let line = frag.message_bytes().trim_ascii().to_vec();
                    if line.eq_ignore_ascii_case(b"DONE") {
                        self.ok(tag, "IDLE terminated");
                    } else {
                        self.bad_cmd(tag, "expected DONE");
                    }
                    return true;
                }
                continue;
            }
            let Some(stream) = self.stream.as_mut() else {
                return false;
            };
            tokio::select! {
                r = tokio::time::timeout(AUTH_TIMEOUT, stream.read(buf)) => match r {
                    Ok(Ok(n)) if n > 0 => {
                        self.unread += n;
                        frag.enqueue_bytes(&buf[..n]);
                    }
                    _ => return false,
                },
                change = bus.recv() => {
                    let relevant = match change {
                        Ok(c) => Some(c.collection) == coll,
                        Err(_) => true,
                    };
                    if relevant {
                        self.updates(true);
                        if !self.flush().await {
                            return false;
                        }
                    }
                }
                _ = self.shutdown.signalled() => {
                    self.untagged(Kind::Bye, None, "server shutting down");
                    self.flush().await;
                    return false;
                }
            }
        }
    }
}
