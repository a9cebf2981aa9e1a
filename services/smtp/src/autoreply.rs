//! Out-of-office replies (RFC 3834). A user's settings (on, off, or on between two times;
//! a text for senders of the office's own domains, one for senders in the user's address
//! books, one for everyone else) are kept in the store; ActiveSync's Settings reads and
//! writes them. Once a message is filed in a user's INBOX, a reply goes back when:
//! - the settings are on now and have a text for this kind of sender;
//! - the message names the user in To: or Cc: (not a Bcc, not a list);
//! - it is not itself automatic (Auto-Submitted other than "no", Precedence bulk, list or
//!   junk, a List-Id or List-Unsubscribe, X-Auto-Response-Suppress, a null or daemon
//!   sender);
//! - that sender was not answered in the last seven days under the same settings.
//!
//! The reply carries Auto-Submitted: auto-replied, In-Reply-To and References, and goes
//! through the same submission path as the user's own mail (DKIM-signed for others).

use crate::{Queue, SendError};
use bureau_directory::User;
use bureau_store::{Actor, CollectionKind, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Where settings live, by user id.
const NS: &str = "out-of-office";
/// When each sender was last answered, by "uid\nsender".
const SENT_NS: &str = "out-of-office-sent";
/// A sender hears at most once in this long (RFC 3834 3.1.1 suggests seven days).
const ONCE_PER: i64 = 7 * 86_400;
/// Longest reply text kept.
pub const MAX_TEXT: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    #[default]
    Off,
    On,
    /// On from `start` until `end`.
    Scheduled,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfOffice {
    pub state: State,
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// The reply to senders of the office's own domains; None: no reply to them.
    pub internal: Option<String>,
    /// To senders found in the user's address books.
    pub external_known: Option<String>,
    /// To everyone else.
    pub external_unknown: Option<String>,
    /// When these settings were saved: a sender answered before hears again after.
    #[serde(default)]
    pub since: i64,
}

impl OutOfOffice {
    pub fn load(store: &Store, uid: &str) -> Result<OutOfOffice, StoreError> {
        let r = store.reader(Actor::System)?;
        Ok(r.kv_get(NS, uid)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    /// Saves the settings (texts cut to `MAX_TEXT`), durable when this returns.
    pub async fn save(mut self, store: &Store, uid: &str) -> Result<(), StoreError> {
        for t in [
            &mut self.internal,
            &mut self.external_known,
            &mut self.external_unknown,
        ]
        .into_iter()
        .flatten()
        {
            if t.len() > MAX_TEXT {
                let mut end = MAX_TEXT;
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                t.truncate(end);
            }
        }
        self.since = bureau_store::now();
        let bytes = serde_json::to_vec(&self).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let uid = uid.to_string();
        store
            .write(Actor::System, vec![], move |w| w.kv_put(NS, &uid, &bytes))
            .await
    }

    pub fn active(&self, now: i64) -> bool {
        match self.state {
            State::Off => false,
            State::On => true,
            State::Scheduled => {
                self.start.is_none_or(|s| now >= s) && self.end.is_none_or(|e| now < e)
            }
        }
    }
}

/// Whether a message asks not to be answered automatically (RFC 3834 2, and what list and
/// Exchange software mark).
fn automatic(m: &mail_parser::Message) -> bool {
    let header = |name: &str| {
        m.headers()
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .and_then(|h| h.value().as_text().map(|t| t.trim().to_ascii_lowercase()))
    };
    let has = |name: &str| {
        m.headers()
            .iter()
            .any(|h| h.name().eq_ignore_ascii_case(name))
    };
    header("Auto-Submitted").is_some_and(|v| v != "no")
        || header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "list" | "junk"))
        || has("List-Id")
        || has("List-Unsubscribe")
        || header("X-Auto-Response-Suppress")
            .is_some_and(|v| v.contains("oof") || v.contains("all"))
}

fn daemon(sender: &str) -> bool {
    let local = sender.split('@').next().unwrap_or("").to_ascii_lowercase();
    sender.is_empty()
        || matches!(
            local.as_str(),
            "mailer-daemon" | "postmaster" | "noreply" | "no-reply"
        )
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.starts_with("bounce")
}

impl Queue {
    /// Sends the out-of-office replies a filed message calls for (see the module's
    /// comment). Failures are logged: the message itself is filed already.
    pub async fn auto_reply(&self, principals: &[u64], sender: &str, msg: &[u8]) {
        if daemon(sender) || principals.is_empty() {
            return;
        }
        // Every delivery comes here: most of the time nobody is away, and one look at the
        // settings says so.
        let now = bureau_store::now();
        let away: Vec<(String, OutOfOffice)> = match self
            .directory()
            .store()
            .reader(Actor::System)
            .and_then(|r| r.kv_list(NS))
        {
            Ok(all) => all
                .into_iter()
                .filter_map(|(uid, b)| Some((uid, serde_json::from_slice::<OutOfOffice>(&b).ok()?)))
                .filter(|(_, o)| o.active(now))
                .collect(),
            Err(e) => return log::warn!("smtp: out-of-office: {e}"),
        };
        if away.is_empty() {
            return;
        }
        let Some(m) = mail_parser::MessageParser::default().parse_headers(msg) else {
            return;
        };
        if automatic(&m) {
            return;
        }
        let users = match self.directory().users() {
            Ok(u) => u,
            Err(e) => return log::warn!("smtp: out-of-office: {e}"),
        };
        for p in principals {
            let Some(user) = users.iter().find(|u| u.principal == *p && u.enabled) else {
                continue;
            };
            let Some((_, oof)) = away.iter().find(|(uid, _)| *uid == user.uid) else {
                continue;
            };
            if let Err(e) = self.reply_for(user, oof, now, sender, &m).await {
                log::warn!("smtp: out-of-office reply for {}: {e}", user.uid);
            }
        }
    }

    /// The reply, if this sender calls for one, from a user whose settings are on now.
    async fn reply_for(
        &self,
        user: &User,
        oof: &OutOfOffice,
        now: i64,
        sender: &str,
        m: &mail_parser::Message<'_>,
    ) -> Result<(), SendError> {
        let store = self.directory().store().clone();
        let sender = sender.to_ascii_lowercase();
        if crate::recipient::owns(user, &sender) {
            return Ok(());
        }
        // Named in To: or Cc:.
        let named = [m.to(), m.cc()].into_iter().flatten().any(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .any(|x| crate::recipient::owns(user, &x.to_ascii_lowercase()))
        });
        if !named {
            return Ok(());
        }
        let domain = sender.rsplit_once('@').map_or("", |(_, d)| d);
        let internal = matches!(self.directory().domain(domain), Ok(Some(_)));
        let text = if internal {
            oof.internal.as_ref()
        } else if known(&store, user, &sender)? {
            oof.external_known.as_ref()
        } else {
            oof.external_unknown.as_ref()
        };
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(());
        };
        let key = format!("{}\n{sender}", user.uid);
        let last = store
            .reader(Actor::System)
            .and_then(|r| r.kv_get(SENT_NS, &key))?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<i64>().ok());
        if last.is_some_and(|t| t >= oof.since && now - t < ONCE_PER) {
            return Ok(());
        }
        use mail_builder::MessageBuilder;
        use mail_builder::headers::raw::Raw;
        let subject = format!("Automatic reply: {}", m.subject().unwrap_or_default());
        let mut b = MessageBuilder::new()
            .from((user.display_name.as_str(), user.address.as_str()))
            .to(sender.as_str())
            .subject(subject)
            .header("Auto-Submitted", Raw::new("auto-replied"))
            .header("X-Auto-Response-Suppress", Raw::new("All"))
            .text_body(text.as_str());
        if let Some(id) = m.message_id() {
            b = b
                .header("In-Reply-To", Raw::new(format!("<{id}>")))
                .header("References", Raw::new(format!("<{id}>")));
        }
        // Written to memory: an error would be the builder's, not the input's.
        let reply = b
            .write_to_vec()
            .map_err(|e| StoreError::Io(format!("composing the reply: {e}")))?;
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        // Not send_as: an automatic reply calls for no other.
        self.file_and_queue(user, &reply, "out-of-office", ip)
            .await?;
        let stamp = now.to_string().into_bytes();
        let mine = format!("{}\n", user.uid);
        store
            .write(Actor::System, vec![], move |w| {
                // Senders answered over a week ago would be answered again anyway: forgotten.
                for k in w
                    .kv_keys(SENT_NS)?
                    .into_iter()
                    .filter(|k| k.starts_with(&mine))
                {
                    let old = w
                        .kv_get(SENT_NS, &k)?
                        .and_then(|b| String::from_utf8(b).ok())
                        .and_then(|s| s.parse::<i64>().ok())
                        .is_none_or(|t| now - t >= ONCE_PER);
                    if old {
                        w.kv_delete(SENT_NS, &k)?;
                    }
                }
                w.kv_put(SENT_NS, &key, &stamp)
            })
            .await?;
        log::info!("smtp: out-of-office reply from {} to <{sender}>", user.uid);
        Ok(())
    }
}

/// Whether an address is in one of the user's address books.
fn known(store: &Store, user: &User, address: &str) -> Result<bool, StoreError> {
    let r = store.reader(Actor::System)?;
    for c in r.collections_of(user.principal)? {
        if c.kind != CollectionKind::AddressBook {
            continue;
        }
        for it in r.items(c.id)? {
            let card = String::from_utf8_lossy(&r.content(&it)?).to_ascii_lowercase();
            if card.lines().any(|l| {
                l.split_once(':')
                    .is_some_and(|(k, v)| k.contains("email") && v.trim() == address)
            }) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_mail_is_not_answered() {
        let parse = |h: &str| {
            let text = format!("{h}From: a@x.example\r\nSubject: s\r\n\r\nbody\r\n");
            automatic(
                &mail_parser::MessageParser::default()
                    .parse(text.as_bytes())
                    .unwrap(),
            )
        };
        assert!(!parse(""));
        assert!(!parse("Auto-Submitted: no\r\n"));
        assert!(parse("Auto-Submitted: auto-replied\r\n"));
        assert!(parse("Precedence: bulk\r\n"));
        assert!(parse("List-Id: <news.x.example>\r\n"));
        assert!(parse("X-Auto-Response-Suppress: OOF\r\n"));
        assert!(daemon("") && daemon("MAILER-DAEMON@x.example") && daemon("list-request@x"));
        assert!(!daemon("carol@x.example"));
        let mut o = OutOfOffice {
            state: State::Scheduled,
            start: Some(100),
            end: Some(200),
            ..Default::default()
        };
        assert!(!o.active(99) && o.active(100) && !o.active(200));
        o.state = State::Off;
        assert!(!o.active(150));
    }
}
