//! Sessions on one mailbox agree under concurrent load: each client's view, built only from
//! what the server told it, ends as the others' (issue 18, as imaptest's checker sees it).

mod common;

use common::*;

/// One message as a client was told it: UID, flags, MODSEQ.
type Told = (Option<u32>, Option<Vec<String>>, Option<u64>);

/// What a client knows of the selected mailbox, built only from what the server told it
/// (EXISTS, EXPUNGE, FETCH), as imaptest's checker does.
#[derive(Default, Debug)]
struct View {
    /// By sequence number: the UID, the flags and the MODSEQ, each once told.
    msgs: Vec<Told>,
}

impl View {
    fn apply(&mut self, lines: &[String]) {
        for l in lines {
            let w: Vec<&str> = l.split(' ').collect();
            if w.len() < 3 || w[0] != "*" {
                continue;
            }
            let Ok(n) = w[1].parse::<usize>() else {
                continue;
            };
            match w[2] {
                "EXISTS" => self.msgs.resize(n.max(self.msgs.len()), (None, None, None)),
                "EXPUNGE" => {
                    self.msgs.remove(n - 1);
                }
                "FETCH" => {
                    let m = &mut self.msgs[n - 1];
                    if let Some(uid) = field(l, "UID ") {
                        m.0 = Some(uid.parse().unwrap());
                    }
                    if let Some(i) = l.find("FLAGS (") {
                        let rest = &l[i + 7..];
                        let flags = &rest[..rest.find(')').unwrap()];
                        let mut f: Vec<String> =
                            flags.split_whitespace().map(str::to_string).collect();
                        f.sort();
                        m.1 = Some(f);
                    }
                    if let Some(ms) = field(l, "MODSEQ (") {
                        m.2 = Some(ms.parse().unwrap());
                    }
                }
                _ => {}
            }
        }
    }
}

/// Issue 18: sessions sharing a mailbox disagreed under load (one lacked UIDs another had;
/// concurrent EXPUNGE answered NO [NONEXISTENT]). N sessions on one mailbox do random
/// APPEND, STORE, EXPUNGE and MOVE; after a NOOP each, what every session was told agrees
/// with the store and with every other session.
#[tokio::test]
async fn concurrent_sessions_converge() {
    for seed in [0x9e37_79b9_7f4a_7c15u64, 17, 4242, 0xdead_beef] {
        converge(seed, 400).await;
    }
}

async fn converge(mut seed: u64, ops: usize) {
    let s = server().await;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut first = Client::login(&s, "alice").await;
    for i in 0..6 {
        first
            .append(
                "INBOX",
                &msg(&format!("seed {i}"), "Mon, 7 Dec 2026 10:00:00 +0100"),
            )
            .await;
    }
    let mut sessions = vec![first];
    for _ in 0..3 {
        sessions.push(Client::login(&s, "alice").await);
    }
    let mut views: Vec<View> = Vec::new();
    for c in sessions.iter_mut() {
        let mut v = View::default();
        c.cmd("ENABLE CONDSTORE").await;
        v.apply(&c.cmd("SELECT INBOX").await);
        v.apply(&c.cmd("FETCH 1:* (UID FLAGS MODSEQ)").await);
        views.push(v);
    }
    let mut next = 0;
    for _ in 0..ops {
        let k = rand(sessions.len() as u64) as usize;
        let (c, v) = (&mut sessions[k], &mut views[k]);
        let count = v.msgs.len() as u64;
        let mut what = String::new();
        let r = match rand(6) {
            0 => {
                next += 1;
                let m = msg(&format!("m{next}"), "Tue, 8 Dec 2026 09:00:00 +0000");
                c.cmd(&format!("APPEND INBOX {{{}+}}\r\n{m}", m.len()))
                    .await
            }
            1 | 2 if count > 0 => {
                let flag = ["\\Seen", "\\Flagged", "\\Deleted", "$Work", "$Home"][rand(5) as usize];
                let op = ["+FLAGS", "-FLAGS"][rand(2) as usize];
                what = format!("STORE {} {op} ({flag})", rand(count) + 1);
                c.cmd(&what).await
            }
            3 => c.cmd("EXPUNGE").await,
            4 if count > 0 => {
                what = format!("MOVE {} Archive", rand(count) + 1);
                c.cmd(&what).await
            }
            _ => c.cmd("NOOP").await,
        };
        let tagged = r.last().unwrap();
        // A message another session expunged meanwhile: OK, or NO [EXPUNGEISSUED] (RFC 9051
        // 7.1), never a missing mailbox.
        assert!(
            tagged.starts_with("t OK") || tagged.starts_with("t NO [EXPUNGEISSUED]"),
            "session {k}: {what}: {r:?}"
        );
        v.apply(&r);
    }
    let mut fetched: Vec<Vec<Told>> = Vec::new();
    for (c, v) in sessions.iter_mut().zip(views.iter_mut()) {
        v.apply(&c.cmd("NOOP").await);
        let all = c.cmd("FETCH 1:* (UID FLAGS MODSEQ)").await;
        let mut truth = View::default();
        truth.msgs.resize(v.msgs.len(), (None, None, None));
        truth.apply(&all);
        // Every message the session was told of, in order, with the flags it was told.
        for (i, (told, store)) in v.msgs.iter().zip(&truth.msgs).enumerate() {
            if let Some(uid) = told.0 {
                assert_eq!(Some(uid), store.0, "seq {}: {v:?}", i + 1);
            }
            if let Some(f) = &told.1 {
                assert_eq!(Some(f), store.1.as_ref(), "uid {:?} flags", store.0);
            }
            if let Some(m) = told.2 {
                assert_eq!(Some(m), store.2, "uid {:?} modseq", store.0);
            }
        }
        fetched.push(truth.msgs);
    }
    // \Recent is each session's own; a message is recent in one session at most.
    let mut recent = std::collections::HashSet::new();
    for f in fetched.iter_mut() {
        for m in f.iter_mut() {
            if let Some(flags) = &mut m.1
                && let Some(i) = flags.iter().position(|x| x == "\\Recent")
            {
                flags.remove(i);
                assert!(recent.insert(m.0), "{:?} recent in two sessions", m.0);
            }
        }
    }
    for f in &fetched[1..] {
        assert_eq!(f, &fetched[0], "sessions disagree");
    }
    let mut fresh = Client::login(&s, "alice").await;
    let r = fresh.cmd("SELECT INBOX").await;
    assert!(
        r.iter()
            .any(|l| l == &format!("* {} EXISTS", fetched[0].len())),
        "{r:?}"
    );
}
