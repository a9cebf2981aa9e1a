//! Transcript tests: client lines in, server lines out, against a real IMAP server in this
//! process (a store in a temporary directory, the directory with users, the listener on a
//! loopback port over TLS). Each test reads as the RFC's examples do: `C:` what the client
//! sends, then the lines the server must answer, `*` in an expected line matching any run of
//! characters. This is the layer between the codec's unit tests and tests/ with real clients.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test]
async fn capability_noop_logout_in_any_state() {
    let s = server().await;
    let mut c = Client::connect(&s).await;
    c.expect_some("CAPABILITY", &["* CAPABILITY IMAP4rev1 *", "t OK *"])
        .await;
    c.expect("NOOP", &["t OK NOOP completed"]).await;
    c.expect("LOGOUT", &["* BYE *", "t OK LOGOUT completed"])
        .await;
}

/// RFC 2971 3.1: ID is valid in every state (it was BAD before login).
#[tokio::test]
async fn id_before_login() {
    let s = server().await;
    let mut c = Client::connect(&s).await;
    c.expect(
        "ID (\"name\" \"test\")",
        &["* ID (\"name\" \"Bureau\" *)", "t OK ID completed"],
    )
    .await;
}

/// The state table: each command in a state that does not allow it is BAD, and says why.
#[tokio::test]
async fn the_state_table() {
    let s = server().await;
    let mut c = Client::connect(&s).await;
    c.expect(
        "SELECT INBOX",
        &["t BAD command not allowed before authentication"],
    )
    .await;
    c.expect(
        "FETCH 1 FLAGS",
        &["t BAD command not allowed before authentication"],
    )
    .await;
    c.expect(
        "GETACL INBOX",
        &["t BAD command not allowed before authentication"],
    )
    .await;
    c.expect(&format!("LOGIN alice \"{PW}\""), &["t OK *"])
        .await;
    c.expect(
        &format!("LOGIN alice \"{PW}\""),
        &["t BAD already authenticated"],
    )
    .await;
    c.expect("FETCH 1 FLAGS", &["t BAD no mailbox selected"])
        .await;
    c.expect(
        "UID SEARCH RETURN (MIN) ALL",
        &["t BAD no mailbox selected"],
    )
    .await;
    c.expect("EXPUNGE", &["t BAD no mailbox selected"]).await;
    c.expect_some("SELECT INBOX", &["* 0 EXISTS", "t OK [READ-WRITE] *"])
        .await;
    c.expect("FETCH 1:* FLAGS", &["t OK *"]).await;
    c.expect("STARTTLS", &["t BAD already authenticated"]).await;
}

/// Issue 17, defects 2 and 3, at the command layer: hostile patterns answer at once.
#[tokio::test]
async fn list_patterns() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    c.expect("CREATE Archive/2026", &["t OK CREATE completed"])
        .await;
    c.expect(
        "LIST \"\" %",
        &[
            "* LIST (\\HasChildren \\Archive) \"/\" \"Archive\"",
            "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
            "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LIST (\\HasNoChildren \\Junk) \"/\" \"Junk\"",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"",
            "t OK LIST completed",
        ],
    )
    .await;
    c.expect(
        "LIST \"\" Archive/%",
        &[
            "* LIST (\\HasNoChildren) \"/\" \"Archive/2026\"",
            "t OK LIST completed",
        ],
    )
    .await;
    c.expect(
        &format!("LIST \"\" \"{}\"", "*%".repeat(600)),
        &["t NO [LIMIT] pattern too long"],
    )
    .await;
    c.expect(
        &format!("LIST \"\" \"{}b\"", "*a".repeat(100)),
        &["t OK LIST completed"],
    )
    .await;
}

/// Issue 17, defect 5: control characters in a mailbox name are refused; NUL in a body is
/// sent as 0x80 in a normal literal.
#[tokio::test]
async fn control_characters_and_nul() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    c.expect("CREATE \"&AAA-\"", &["t NO [CANNOT] *control characters*"])
        .await;
    c.append("INBOX", "Subject: nul\r\n\r\na\0b\r\n").await;
    c.expect_some("SELECT INBOX", &["* 1 EXISTS"]).await;
    let r = c.cmd("FETCH 1 BODY[TEXT]").await;
    assert!(r[0].contains("a\u{fffd}b") && !r[0].contains('\0'), "{r:?}");
}

/// Issue 18: MULTIAPPEND (RFC 3502) was advertised, but every APPEND of several messages got
/// BAD. Each message has its own flags (RFC 3502 6); to a synchronizing literal the server
/// answers `+`.
#[tokio::test]
async fn multiappend() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    let (a, b) = (
        msg("one", "Mon, 7 Dec 2026 10:00:00 +0100"),
        msg("two", "Mon, 7 Dec 2026 11:00:00 +0100"),
    );
    c.send(
        format!(
            "m1 APPEND INBOX (\\Seen) {{{}+}}\r\n{a} {{{}+}}\r\n{b}\r\n",
            a.len(),
            b.len()
        )
        .as_bytes(),
    )
    .await;
    let r = c.until("m1").await;
    assert!(r.last().unwrap().starts_with("t OK [APPENDUID "), "{r:?}");
    c.send(format!("m2 APPEND INBOX {{{}}}\r\n", a.len()).as_bytes())
        .await;
    assert!(c.line().await.starts_with("+ "));
    c.send(format!("{a} (\\Flagged) {{{}}}\r\n", b.len()).as_bytes())
        .await;
    assert!(c.line().await.starts_with("+ "));
    c.send(format!("{b}\r\n").as_bytes()).await;
    let r = c.until("m2").await;
    assert!(r.last().unwrap().starts_with("t OK [APPENDUID "), "{r:?}");
    c.expect_some("SELECT INBOX", &["* 4 EXISTS"]).await;
    c.expect(
        "FETCH 1:4 (FLAGS)",
        &[
            "* 1 FETCH (FLAGS (\\Seen \\Recent))",
            "* 2 FETCH (FLAGS (\\Recent))",
            "* 3 FETCH (FLAGS (\\Recent))",
            "* 4 FETCH (FLAGS (\\Flagged \\Recent))",
            "t OK FETCH completed",
        ],
    )
    .await;
}

/// Issue 18: new keywords were never announced in FLAGS and PERMANENTFLAGS (RFC 9051
/// 7.3.5): every session is told before it sees one, whoever set it.
#[tokio::test]
async fn new_keywords_are_announced() {
    let s = server().await;
    let mut a = Client::login(&s, "alice").await;
    let mut b = Client::login(&s, "alice").await;
    a.append("INBOX", &msg("k", "Mon, 7 Dec 2026 10:00:00 +0100"))
        .await;
    a.expect_some(
        "SELECT INBOX",
        &["* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"],
    )
    .await;
    b.cmd("SELECT INBOX").await;
    b.expect(
        "STORE 1 +FLAGS ($Work)",
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] *",
            "* 1 FETCH (FLAGS ($Work))",
            "t OK STORE completed",
        ],
    )
    .await;
    // (a selected first: the message is recent there.)
    a.expect(
        "NOOP",
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] *",
            "* 1 FETCH (FLAGS ($Work \\Recent))",
            "t OK NOOP completed",
        ],
    )
    .await;
    // Told once: the same keyword again is not announced again; a new SELECT lists it.
    b.expect(
        "STORE 1 +FLAGS ($work)",
        &["* 1 FETCH (FLAGS ($Work))", "t OK STORE completed"],
    )
    .await;
    let mut c = Client::login(&s, "alice").await;
    c.expect_some(
        "EXAMINE INBOX",
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
            "* OK [PERMANENTFLAGS ()] *",
        ],
    )
    .await;
}

/// Issue 18: a mailbox name that is not valid modified UTF-7 is NO (the name cannot be
/// used), not BAD (the command is well-formed).
#[tokio::test]
async fn bad_mailbox_names_are_no() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    c.expect(
        "CREATE \"&Jjo\"",
        &["t NO [CANNOT] mailbox name is not valid modified UTF-7"],
    )
    .await;
    c.expect(
        "SELECT \"a&b\"",
        &["t NO [CANNOT] mailbox name is not valid modified UTF-7"],
    )
    .await;
    c.expect(
        "GETACL \"&Jjo\"",
        &["t NO [CANNOT] mailbox name is not valid modified UTF-7"],
    )
    .await;
    c.expect("CREATE \"&Jjo-\"", &["t OK CREATE completed"])
        .await;
}

/// Issue 18: the first CONDSTORE-enabling command with a mailbox selected is told the
/// HIGHESTMODSEQ (RFC 7162 3.1), once.
#[tokio::test]
async fn first_modseq_fetch_tells_highestmodseq() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    c.append("INBOX", &msg("m", "Mon, 7 Dec 2026 10:00:00 +0100"))
        .await;
    c.cmd("SELECT INBOX").await;
    let r = c
        .expect_some(
            "FETCH 1 (MODSEQ)",
            &["* OK [HIGHESTMODSEQ *] *", "* 1 FETCH (MODSEQ (*))"],
        )
        .await;
    assert!(r[0].starts_with("* OK [HIGHESTMODSEQ"), "{r:?}");
    c.expect(
        "FETCH 1 (MODSEQ)",
        &["* 1 FETCH (MODSEQ (*))", "t OK FETCH completed"],
    )
    .await;
}

/// With CONDSTORE on, a FETCH that tells flags tells their modseq: a session told the flags
/// of another session's change, and not its modseq, kept a stale modseq for good (the change
/// counts as told), which imaptest's checkpoints found.
#[tokio::test]
async fn condstore_flags_come_with_their_modseq() {
    let s = server().await;
    let mut a = Client::login(&s, "alice").await;
    let mut b = Client::login(&s, "alice").await;
    a.append("INBOX", &msg("m", "Mon, 7 Dec 2026 10:00:00 +0100"))
        .await;
    a.cmd("SELECT INBOX (CONDSTORE)").await;
    b.cmd("SELECT INBOX").await;
    b.cmd("STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    let r = a
        .expect_some(
            "FETCH 1 (FLAGS)",
            &["* 1 FETCH (FLAGS (\\Flagged*) MODSEQ (*))"],
        )
        .await;
    assert!(r.last().unwrap().starts_with("t OK"), "{r:?}");
    // Without CONDSTORE, flags alone.
    b.expect(
        "FETCH 1 (FLAGS)",
        &["* 1 FETCH (FLAGS (\\Flagged))", "t OK FETCH completed"],
    )
    .await;
}

/// Issue 18: ESEARCH with only MIN or MAX gives the MODSEQ of the message returned (RFC
/// 7162 3.1.5), not the highest of every match.
#[tokio::test]
async fn esearch_min_max_modseq() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    for i in 0..3 {
        c.append(
            "INBOX",
            &msg(&format!("m{i}"), "Mon, 7 Dec 2026 10:00:00 +0100"),
        )
        .await;
    }
    c.cmd("ENABLE CONDSTORE").await;
    c.cmd("SELECT INBOX").await;
    c.cmd("STORE 1 +FLAGS (\\Flagged)").await;
    c.cmd("STORE 3 +FLAGS (\\Flagged)").await;
    c.cmd("STORE 1 +FLAGS (\\Seen)").await;
    let ms = |r: &[String], n: u32| -> u64 {
        let l = r
            .iter()
            .find(|l| l.starts_with(&format!("* {n} FETCH")))
            .unwrap();
        field(l, "MODSEQ (").unwrap().parse().unwrap()
    };
    let all = c.cmd("FETCH 1:3 (MODSEQ)").await;
    let (m1, m3) = (ms(&all, 1), ms(&all, 3));
    assert!(m1 > m3);
    c.expect(
        "SEARCH RETURN (MAX) MODSEQ 1",
        &[
            &format!("* ESEARCH (TAG \"t*\") MAX 3 MODSEQ {m3}"),
            "t OK SEARCH completed",
        ],
    )
    .await;
    c.expect(
        "SEARCH RETURN (MIN) MODSEQ 1",
        &[
            &format!("* ESEARCH (TAG \"t*\") MIN 1 MODSEQ {m1}"),
            "t OK SEARCH completed",
        ],
    )
    .await;
}

/// Issue 18: SORT compares with i;ascii-casemap, which folds to upper case ("_" sorts after
/// letters), and reduces `Re: [FWD: c]` to its base subject (RFC 5256 2.1).
#[tokio::test]
async fn sort_by_base_subject() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    for subject in ["a_b", "aab", "Re: [FWD: c]", "b"] {
        c.append("INBOX", &msg(subject, "Mon, 7 Dec 2026 10:00:00 +0100"))
            .await;
    }
    c.cmd("SELECT INBOX").await;
    c.expect(
        "SORT (SUBJECT) UTF-8 ALL",
        &["* SORT 2 1 4 3", "t OK SORT completed"],
    )
    .await;
}

/// Issue 18: \Recent was never set. A new message is recent in exactly one session, the
/// first read-write one told of it (RFC 3501 2.3.2); SEARCH RECENT, NEW and OLD follow it.
#[tokio::test]
async fn recent_in_exactly_one_session() {
    let s = server().await;
    let mut a = Client::login(&s, "alice").await;
    let mut b = Client::login(&s, "alice").await;
    let mut other = Client::login(&s, "alice").await;
    a.expect_some("SELECT INBOX", &["* 0 RECENT"]).await;
    b.expect_some("SELECT INBOX", &["* 0 RECENT"]).await;
    other
        .append("INBOX", &msg("new", "Mon, 7 Dec 2026 10:00:00 +0100"))
        .await;
    other
        .expect(
            "STATUS INBOX (RECENT)",
            &["* STATUS \"INBOX\" (RECENT 1)", "t OK *"],
        )
        .await;
    a.expect("NOOP", &["* 1 EXISTS", "* 1 RECENT", "t OK NOOP completed"])
        .await;
    b.expect("NOOP", &["* 1 EXISTS", "t OK NOOP completed"])
        .await;
    a.expect(
        "FETCH 1 FLAGS",
        &["* 1 FETCH (FLAGS (\\Recent))", "t OK FETCH completed"],
    )
    .await;
    b.expect(
        "FETCH 1 FLAGS",
        &["* 1 FETCH (FLAGS ())", "t OK FETCH completed"],
    )
    .await;
    a.expect("SEARCH NEW", &["* SEARCH 1", "t OK SEARCH completed"])
        .await;
    a.expect("SEARCH OLD", &["* SEARCH", "t OK SEARCH completed"])
        .await;
    b.expect("SEARCH RECENT", &["* SEARCH", "t OK SEARCH completed"])
        .await;
    other
        .expect(
            "STATUS INBOX (RECENT)",
            &["* STATUS \"INBOX\" (RECENT 0)", "t OK *"],
        )
        .await;
    // A later read-write SELECT does not take it again.
    other.expect_some("SELECT INBOX", &["* 0 RECENT"]).await;
    // Expunged elsewhere, it leaves this session's count: told with the EXPUNGE (imaptest's
    // checkpoint summed stale counts to more recent messages than the mailbox held).
    other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    other.cmd("EXPUNGE").await;
    a.expect(
        "NOOP",
        &["* 1 EXPUNGE", "* 0 RECENT", "t OK NOOP completed"],
    )
    .await;
    b.expect("NOOP", &["* 1 EXPUNGE", "t OK NOOP completed"])
        .await;
}

/// Issue 18: subscriptions are a list of names of their own (RFC 9051 6.3.3, 6.3.4, 6.3.7):
/// CREATE does not subscribe, DELETE does not unsubscribe; LIST-EXTENDED shows a subscribed
/// name with no mailbox as \NonExistent and parents of subscribed children with CHILDINFO;
/// LSUB shows such parents as \Noselect; unknown LIST options are BAD.
#[tokio::test]
async fn subscriptions_are_names() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    c.expect("CREATE Projects", &["t OK CREATE completed"])
        .await;
    c.expect("CREATE Projects/2026", &["t OK CREATE completed"])
        .await;
    c.expect("LSUB \"\" Projects*", &["t OK LSUB completed"])
        .await;
    c.expect("SUBSCRIBE Projects/2026", &["t OK SUBSCRIBE completed"])
        .await;
    c.expect(
        "LSUB \"\" %",
        &[
            "* LSUB () \"/\" \"Archive\"",
            "* LSUB () \"/\" \"Drafts\"",
            "* LSUB () \"/\" \"INBOX\"",
            "* LSUB () \"/\" \"Junk\"",
            "* LSUB (\\Noselect) \"/\" \"Projects\"",
            "* LSUB () \"/\" \"Sent\"",
            "* LSUB () \"/\" \"Trash\"",
            "t OK LSUB completed",
        ],
    )
    .await;
    c.expect(
        "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" Projects",
        &[
            "* LIST (\\HasChildren) \"/\" \"Projects\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "t OK LIST completed",
        ],
    )
    .await;
    c.expect("DELETE Projects/2026", &["t OK DELETE completed"])
        .await;
    c.expect(
        "LIST (SUBSCRIBED) \"\" Projects/*",
        &[
            "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"Projects/2026\"",
            "t OK LIST completed",
        ],
    )
    .await;
    c.expect("LIST \"\" Projects/*", &["t OK LIST completed"])
        .await;
    c.expect("UNSUBSCRIBE Projects/2026", &["t OK UNSUBSCRIBE completed"])
        .await;
    c.expect("LIST (SUBSCRIBED) \"\" Projects*", &["t OK LIST completed"])
        .await;
    c.expect(
        "LIST (BOGUS) \"\" *",
        &["t BAD unknown selection option BOGUS"],
    )
    .await;
    c.expect(
        "LIST \"\" * RETURN (BOGUS)",
        &["t BAD unknown return option BOGUS"],
    )
    .await;
}

/// EXAMINE counts the recent messages without taking them; the first SELECT takes them
/// (imaptest's select test).
#[tokio::test]
async fn examine_counts_recent_select_takes_them() {
    let s = server().await;
    let mut a = Client::login(&s, "alice").await;
    for i in 0..2 {
        a.append(
            "INBOX",
            &msg(&format!("m{i}"), "Mon, 7 Dec 2026 10:00:00 +0100"),
        )
        .await;
    }
    a.expect_some("EXAMINE INBOX", &["* 2 EXISTS", "* 2 RECENT"])
        .await;
    a.expect_some("SELECT INBOX", &["* 2 RECENT"]).await;
    let mut b = Client::login(&s, "alice").await;
    b.expect_some("SELECT INBOX", &["* 0 RECENT"]).await;
    b.expect_some("EXAMINE INBOX", &["* 0 RECENT"]).await;
}

/// RFC 3501 6.3.3: CREATE makes the superior names a name needs.
#[tokio::test]
async fn create_makes_superiors() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    c.expect("CREATE a/b/c", &["t OK CREATE completed"]).await;
    c.expect(
        "LIST \"\" a",
        &["* LIST (\\HasChildren) \"/\" \"a\"", "t OK LIST completed"],
    )
    .await;
    c.expect(
        "LIST \"\" a/*",
        &[
            "* LIST (\\HasChildren) \"/\" \"a/b\"",
            "* LIST (\\HasNoChildren) \"/\" \"a/b/c\"",
            "t OK LIST completed",
        ],
    )
    .await;
    c.expect("CREATE a/b", &["t NO [ALREADYEXISTS] mailbox exists"])
        .await;
}

/// The remaining commands, each with its plain case and an edge the RFC names.
#[tokio::test]
async fn every_other_command() {
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    c.expect(
        "NAMESPACE",
        &[
            "* NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL",
            "t OK NAMESPACE completed",
        ],
    )
    .await;
    c.expect(
        "ENABLE CONDSTORE",
        &["* ENABLED CONDSTORE", "t OK ENABLE completed"],
    )
    .await;
    c.expect("ENABLE X-UNKNOWN", &["* ENABLED", "t OK ENABLE completed"])
        .await;
    c.append("INBOX", &msg("one", "Mon, 7 Dec 2026 10:00:00 +0100"))
        .await;
    c.append("INBOX", &msg("Re: one", "Mon, 7 Dec 2026 11:00:00 +0100"))
        .await;
    c.expect(
        "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)",
        &[
            "* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 2 UIDNEXT *)",
            "t OK *",
        ],
    )
    .await;
    c.expect("STATUS Nowhere (MESSAGES)", &["t NO [NONEXISTENT] *"])
        .await;
    c.expect_some("GETQUOTAROOT INBOX", &["* QUOTAROOT \"INBOX\"*", "t OK *"])
        .await;
    c.expect("SETQUOTA \"\" (STORAGE 10)", &["t NO [NOPERM] *"])
        .await;
    c.cmd("SELECT INBOX").await;
    c.expect(
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
        &["* THREAD (1 2)", "t OK THREAD completed"],
    )
    .await;
    c.expect_some(
        "FETCH 1 (BINARY.SIZE[1])",
        &["* 1 FETCH (BINARY.SIZE[1] 6)"],
    )
    .await;
    c.expect("CREATE Kept", &["t OK CREATE completed"]).await;
    c.expect("COPY 1 Kept", &["t OK [COPYUID * * *] COPY completed"])
        .await;
    c.expect("COPY 1 Nowhere", &["t NO [TRYCREATE] no such mailbox"])
        .await;
    c.expect("RENAME Kept Kept2", &["t OK RENAME completed"])
        .await;
    c.expect("RENAME Kept Kept3", &["t NO [NONEXISTENT] no such mailbox"])
        .await;
    c.expect_some(
        "MYRIGHTS INBOX",
        &["* MYRIGHTS INBOX *", "t OK MYRIGHTS completed"],
    )
    .await;
    c.expect("SETACL INBOX bob lrs", &["t OK *"]).await;
    c.expect_some("GETACL INBOX", &["* ACL INBOX *bob lrs*", "t OK *"])
        .await;
    c.expect(
        "STORE 2 +FLAGS.SILENT (\\Deleted)",
        &["* 2 FETCH (MODSEQ (*))", "t OK STORE completed"],
    )
    .await;
    c.expect("CLOSE", &["t OK CLOSE completed"]).await;
    c.expect("FETCH 1 FLAGS", &["t BAD no mailbox selected"])
        .await;
    c.expect_some("SELECT INBOX", &["* 1 EXISTS"]).await;
    c.expect("UNSELECT", &["t OK UNSELECT completed"]).await;
    c.expect("CHECK", &["t BAD no mailbox selected"]).await;
    // IDLE: told of a new message at once, ended by DONE.
    c.cmd("SELECT INBOX").await;
    c.send(b"i1 IDLE\r\n").await;
    assert!(c.line().await.starts_with("+ "));
    let mut other = Client::login(&s, "alice").await;
    other
        .append("INBOX", &msg("two", "Mon, 7 Dec 2026 12:00:00 +0100"))
        .await;
    assert_eq!(c.line().await, "* 2 EXISTS");
    c.send(b"DONE\r\n").await;
    let r = c.until("i1").await;
    assert!(r.last().unwrap().starts_with("t OK"), "{r:?}");
    c.expect("DELETE Kept2", &["t OK DELETE completed"]).await;
    c.expect("DELETE INBOX", &["t NO [CANNOT] *"]).await;
}

/// RFC 9051 5.5 and 7.5.1: no EXPUNGE while the client has pipelined a command that uses
/// sequence numbers: it comes with the first command answered with nothing behind it.
#[tokio::test]
async fn no_expunge_before_a_pipelined_command() {
    let s = server().await;
    let mut a = Client::login(&s, "alice").await;
    let mut b = Client::login(&s, "alice").await;
    for i in 0..3 {
        a.append(
            "INBOX",
            &msg(&format!("m{i}"), "Mon, 7 Dec 2026 10:00:00 +0100"),
        )
        .await;
    }
    a.cmd("SELECT INBOX").await;
    b.cmd("SELECT INBOX").await;
    b.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    b.cmd("EXPUNGE").await;
    // NOOP and FETCH pipelined in one write: the NOOP may not expunge message 1 under the
    // FETCH's feet.
    a.send(b"p1 NOOP\r\np2 FETCH 3 (UID)\r\n").await;
    let first = a.until("p1").await;
    assert!(!first.iter().any(|l| l.ends_with("EXPUNGE")), "{first:?}");
    let second = a.until("p2").await;
    assert!(
        second.iter().any(|l| l.starts_with("* 3 FETCH (UID 3)")),
        "{second:?}"
    );
    // (Its recent messages lose the expunged one.)
    a.expect(
        "NOOP",
        &["* 1 EXPUNGE", "* 2 RECENT", "t OK NOOP completed"],
    )
    .await;
}

/// ENVELOPE, BODY and BODYSTRUCTURE come from the summary kept beside the message: made at
/// APPEND; made by the first FETCH (and kept) for a message stored without one.
#[tokio::test]
async fn summaries_made_at_delivery_or_first_fetch() {
    use bureau_store::Actor;
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    c.append("INBOX", &msg("appended", "Mon, 7 Dec 2026 10:00:00 +0100"))
        .await;
    let inbox = {
        let r = s.store.reader(Actor::System).unwrap();
        let alice = r.principal_by_name("alice").unwrap().id;
        r.collection_by_name(alice, "INBOX").unwrap().id
    };
    let summary_of = |n: usize| {
        let r = s.store.reader(Actor::System).unwrap();
        let items = r.items(inbox).unwrap();
        r.derived(&items[n], "imap.summary").unwrap()
    };
    assert!(summary_of(0).is_some(), "made at APPEND");
    // As a release without summaries stored it.
    let raw = msg("stored bare", "Tue, 8 Dec 2026 10:00:00 +0100");
    store_bare(&s, raw.as_bytes()).await;
    assert!(summary_of(1).is_none());
    c.cmd("SELECT INBOX").await;
    let want = [
        "* 1 FETCH (ENVELOPE (\"Mon, 7 Dec 2026 10:00:00 +0100\" \"appended\" *) BODY (\"TEXT\" \"PLAIN\" *))",
        "* 2 FETCH (ENVELOPE (\"Tue, 8 Dec 2026 10:00:00 +0100\" \"stored bare\" *) BODY (\"TEXT\" \"PLAIN\" *))",
        "t OK FETCH completed",
    ];
    c.expect("FETCH 1:2 (ENVELOPE BODY)", &want).await;
    for _ in 0..100 {
        if summary_of(1).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(summary_of(1).is_some(), "kept after the first FETCH");
    c.expect("FETCH 1:2 (ENVELOPE BODY)", &want).await;
    c.expect_some(
        "FETCH 2 (BODYSTRUCTURE)",
        &["* 2 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" *) NIL NIL \"7BIT\" * NIL NIL NIL NIL))"],
    )
    .await;
}

/// Issue 24: header and text searches are served from the term index; BODY and TEXT look
/// into decoded text parts (a base64 body was searched as its base64); a message stored
/// without terms is still found, and found the same way once it has them.
#[tokio::test]
async fn searches_decode_bodies_and_use_the_term_index() {
    use bureau_store::Actor;
    let s = server().await;
    let mut c = Client::login(&s, "alice").await;
    let encoded = "From: =?utf-8?q?J=C3=B6rg?= <joerg@x.example>\r\nSubject: =?utf-8?q?Monthly_f=C3=BCr_K=C3=B6ln?=\r\n\
                   MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
                   Content-Transfer-Encoding: base64\r\n\r\nVGhlIElOVk9JQ0UgZm9yIE5vdmVtYmVyIGlzIGF0dGFjaGVkLg0K\r\n";
    c.append("INBOX", encoded).await;
    c.append(
        "INBOX",
        "From: Bob <bob@example.com>\r\nSubject: Lunch\r\n\r\nlunch tomorrow\r\n",
    )
    .await;
    // As a release without the term index stored it.
    let raw = "From: c@example.com\r\nSubject: Reminder\r\n\r\nplease pay the invoice\r\n";
    store_bare(&s, raw.as_bytes()).await;
    c.cmd("SELECT INBOX").await;
    let searches = [
        ("SEARCH BODY invoice", "* SEARCH 1 3"),
        ("SEARCH TEXT november", "* SEARCH 1"),
        ("SEARCH TEXT x.example", "* SEARCH 1"),
        ("SEARCH BODY x.example", "* SEARCH"),
        ("SEARCH SUBJECT lunch", "* SEARCH 2"),
        ("SEARCH SUBJECT lu", "* SEARCH 2"),
        ("SEARCH HEADER Subject MONTH", "* SEARCH 1"),
        ("SEARCH SUBJECT \"monthly f\"", "* SEARCH 1"),
        ("SEARCH CHARSET UTF-8 SUBJECT {5+}\r\nköln", "* SEARCH 1"),
        ("SEARCH FROM {5+}\r\nJÖRG", "* SEARCH 1"),
        ("SEARCH FROM {5+}\r\nJörg", "* SEARCH 1"),
        ("SEARCH FROM joerg", "* SEARCH 1"),
        ("SEARCH FROM bob SUBJECT lunch", "* SEARCH 2"),
        ("SEARCH FROM bob SUBJECT monthly", "* SEARCH"),
        ("SEARCH OR SUBJECT lunch BODY invoice", "* SEARCH 1 2 3"),
        (
            "SEARCH OR FROM bob OR SUBJECT monthly BODY november",
            "* SEARCH 1 2",
        ),
        ("SEARCH OR SUBJECT lunch SEEN", "* SEARCH 2"),
        ("SEARCH OR SUBJECT lunch UNSEEN", "* SEARCH 1 2 3"),
        ("SEARCH OR SUBJECT lu BODY invoice", "* SEARCH 1 2 3"),
        ("SEARCH NOT SUBJECT lunch", "* SEARCH 1 3"),
        ("SEARCH 2:3 BODY invoice", "* SEARCH 3"),
        ("UID SEARCH BODY tomorrow", "* SEARCH 2"),
    ];
    for (cmd, want) in searches {
        c.expect(cmd, &[want, "t OK *SEARCH completed"]).await;
    }
    let store = s.store.clone();
    let n = tokio::task::spawn_blocking(move || store.index_pending())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 3, "the bare message derived, and all three posted");
    assert!(
        s.store
            .reader(Actor::System)
            .unwrap()
            .unindexed()
            .unwrap()
            .is_empty()
    );
    for (cmd, want) in searches {
        c.expect(cmd, &[want, "t OK *SEARCH completed"]).await;
    }
    c.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    c.cmd("EXPUNGE").await;
    c.expect(
        "SEARCH BODY invoice",
        &["* SEARCH 2", "t OK SEARCH completed"],
    )
    .await;
}

/// Stores a message in alice's INBOX as a release without summaries or terms did (staged
/// as data, so no deriver runs).
async fn store_bare(s: &Server, raw: &[u8]) {
    use bureau_store::{Actor, NewItem};
    let r = s.store.reader(Actor::System).unwrap();
    let alice = r.principal_by_name("alice").unwrap().id;
    let inbox = r.collection_by_name(alice, "INBOX").unwrap().id;
    drop(r);
    let staged = s
        .store
        .stage(raw.to_vec(), bureau_store::Content::Data)
        .await
        .unwrap();
    let blob = staged.blob_ref();
    s.store
        .write(Actor::Principal(alice), vec![staged], move |w| {
            w.put_item(
                inbox,
                NewItem {
                    blob: Some(blob),
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
}
