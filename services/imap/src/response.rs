//! Writing IMAP responses (RFC 9051 7 and the extensions' own), the counterpart of
//! imap-codec's command parser: commands say what to answer as a `Response`, and only this
//! module turns it into bytes. Sans-I/O: `encode` appends to a buffer the session sends.
//!
//! imap-types has a response model, but it lacks ESEARCH, ACL, MYRIGHTS, LISTRIGHTS and
//! LIST-EXTENDED's CHILDINFO, and FETCH there takes envelopes and body structures as
//! values: Bureau keeps them encoded at delivery (envelope.rs), and re-parsing them into
//! types for each FETCH would undo that cache.

use crate::thread::Thread;
use crate::wire;
use std::borrow::Cow;

/// A status response's condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Ok,
    No,
    Bad,
    Bye,
}

/// A response code (RFC 9051 7.1, RFC 5530, RFC 4315, RFC 7162, RFC 3516, RFC 7889).
#[derive(Debug)]
pub(crate) enum Code<'a> {
    AlreadyExists,
    AppendUid {
        validity: u32,
        uids: &'a [u32],
    },
    AuthenticationFailed,
    /// The charsets SEARCH takes.
    BadCharset(&'a [&'a str]),
    Cannot,
    Capability(&'a str),
    Closed,
    /// Source and destination UIDs, pair by pair.
    CopyUid {
        validity: u32,
        from: &'a [u32],
        to: &'a [u32],
    },
    ExpungeIssued,
    HighestModSeq(u64),
    Limit,
    Modified(&'a [u32]),
    NonExistent,
    NoPerm,
    OverQuota,
    Parse,
    /// The flags, space-separated, `\*` included when new keywords may be made.
    PermanentFlags(&'a str),
    PrivacyRequired,
    ReadOnly,
    ReadWrite,
    ServerBug,
    TooBig,
    TryCreate,
    UidNext(u64),
    UidValidity(u32),
    Unavailable,
    UnknownCte,
    Unseen(usize),
}

/// One FETCH data item (RFC 9051 7.5.2).
#[derive(Debug)]
pub(crate) enum Item<'a> {
    Uid(u64),
    /// The flags, space-separated.
    Flags(String),
    ModSeq(u64),
    Size(u64),
    InternalDate(i64),
    /// ENVELOPE, BODY and BODYSTRUCTURE as `envelope::Summary` keeps them, already encoded.
    Envelope(&'a [u8]),
    Body(&'a [u8]),
    BodyStructure(&'a [u8]),
    Rfc822(&'a [u8]),
    Rfc822Header(&'a [u8]),
    Rfc822Text(&'a [u8]),
    /// BODY[label]<origin>.
    Section {
        label: String,
        origin: Option<u32>,
        data: Vec<u8>,
    },
    /// BINARY[label]<origin> (RFC 3516): decoded content, as a literal8 if it holds NUL.
    Binary {
        label: String,
        origin: Option<u32>,
        data: Vec<u8>,
    },
    BinarySize {
        label: String,
        size: usize,
    },
}

/// One response line (with its literals).
pub(crate) enum Response<'a> {
    /// A status response: tagged, or untagged when `tag` is None.
    Status {
        tag: Option<&'a str>,
        kind: Kind,
        code: Option<Code<'a>>,
        text: &'a str,
    },
    /// A command continuation request: `+ text`.
    Continue(&'a str),
    Capability(&'a str),
    Enabled(&'a [&'a str]),
    /// The server's ID parameters (RFC 2971).
    Id(&'a [(&'a str, &'a str)]),
    /// The personal, other users' and shared namespaces (RFC 2342), each one prefix with
    /// "/" as its delimiter, or none.
    Namespace([Option<&'a str>; 3]),
    /// `* FLAGS`: space-separated.
    Flags(&'a str),
    Exists(usize),
    Recent(usize),
    Expunge(usize),
    /// RFC 7162 3.2.10.
    Vanished {
        earlier: bool,
        uids: &'a [u32],
    },
    Fetch {
        seq: usize,
        items: &'a [Item<'a>],
    },
    /// LIST or LSUB, with LIST-EXTENDED's CHILDINFO (RFC 5258); `name` in the client's form.
    List {
        lsub: bool,
        attrs: &'a [&'a str],
        name: &'a str,
        childinfo: &'a [&'a str],
    },
    /// `* STATUS name (item value ...)`.
    MailboxStatus {
        name: &'a str,
        items: &'a [(&'a str, u64)],
    },
    /// SEARCH, with the highest MODSEQ of the matches when the criteria used one.
    Search {
        nums: &'a [u32],
        modseq: Option<u64>,
    },
    /// ESEARCH (RFC 4731, RFC 9051 7.3.4): each return item when present.
    ESearch {
        tag: &'a str,
        uid: bool,
        min: Option<u32>,
        max: Option<u32>,
        all: Option<&'a [u32]>,
        count: Option<usize>,
        modseq: Option<u64>,
    },
    Sort(&'a [u32]),
    /// THREAD (RFC 5256), `number` giving each message's sequence number or UID.
    Thread {
        threads: &'a [Thread],
        number: &'a dyn Fn(usize) -> u32,
    },
    /// RFC 4314: the rights of each identifier.
    Acl {
        mailbox: &'a str,
        entries: &'a [(String, &'a str)],
    },
    MyRights {
        mailbox: &'a str,
        rights: &'a str,
    },
    ListRights {
        mailbox: &'a str,
        who: &'a str,
        required: &'a str,
        optional: &'a [&'a str],
    },
    /// RFC 9208, STORAGE in KiB.
    Quota {
        root: &'a str,
        used: u64,
        limit: u64,
    },
    QuotaRoot {
        mailbox: &'a str,
        roots: &'a [&'a str],
    },
}

impl Response<'_> {
    /// An untagged status response.
    pub(crate) fn untagged<'a>(kind: Kind, code: Option<Code<'a>>, text: &'a str) -> Response<'a> {
        Response::Status {
            tag: None,
            kind,
            code,
            text,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Status {
                tag,
                kind,
                code,
                text,
            } => status_line(out, *tag, *kind, code.as_ref(), text),
            Response::Continue(text) => put(out, format!("+ {text}")),
            Response::Capability(c) => put(out, format!("* CAPABILITY {c}")),
            Response::Enabled(caps) => {
                put(out, "* ENABLED");
                for c in *caps {
                    out.push(b' ');
                    out.extend_from_slice(c.as_bytes());
                }
            }
            Response::Id(params) => id_line(out, params),
            Response::Namespace(spaces) => namespace_line(out, spaces),
            Response::Flags(flags) => put(out, format!("* FLAGS ({flags})")),
            Response::Exists(n) => put(out, format!("* {n} EXISTS")),
            Response::Recent(n) => put(out, format!("* {n} RECENT")),
            Response::Expunge(n) => put(out, format!("* {n} EXPUNGE")),
            Response::Vanished { earlier, uids } => {
                let earlier = if *earlier { " (EARLIER)" } else { "" };
                put(out, format!("* VANISHED{earlier} {}", uid_set(uids)));
            }
            Response::Fetch { seq, items } => {
                put(out, format!("* {seq} FETCH ("));
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    item.encode(out);
                }
                out.push(b')');
            }
            Response::List {
                lsub,
                attrs,
                name,
                childinfo,
            } => list_line(out, *lsub, attrs, name, childinfo),
            Response::MailboxStatus { name, items } => {
                put(out, "* STATUS ");
                wire::string(out, name.as_bytes());
                let items: Vec<String> = items.iter().map(|(k, v)| format!("{k} {v}")).collect();
                out.extend_from_slice(format!(" ({})", items.join(" ")).as_bytes());
            }
            Response::Search { nums, modseq } => {
                put(out, "* SEARCH");
                for n in *nums {
                    put(out, format!(" {n}"));
                }
                if let Some(m) = modseq {
                    put(out, format!(" (MODSEQ {m})"));
                }
            }
            Response::ESearch {
                tag,
                uid,
                min,
                max,
                all,
                count,
                modseq,
            } => {
                put(out, "* ESEARCH (TAG ");
                wire::string(out, tag.as_bytes());
                out.push(b')');
                if *uid {
                    put(out, " UID");
                }
                if let Some(n) = min {
                    put(out, format!(" MIN {n}"));
                }
                if let Some(n) = max {
                    put(out, format!(" MAX {n}"));
                }
                if let Some(set) = all {
                    put(out, format!(" ALL {}", uid_set(set)));
                }
                if let Some(n) = count {
                    put(out, format!(" COUNT {n}"));
                }
                if let Some(m) = modseq {
                    put(out, format!(" MODSEQ {m}"));
                }
            }
            Response::Sort(nums) => {
                put(out, "* SORT");
                for n in *nums {
                    put(out, format!(" {n}"));
                }
            }
            Response::Thread { threads, number } => {
                let mut l = String::from("* THREAD");
                if !threads.is_empty() {
                    l.push(' ');
                }
                for t in *threads {
                    thread(&mut l, t, number, true);
                }
                put(out, &l);
            }
            Response::Acl { mailbox, entries } => {
                put(out, "* ACL ");
                wire::astring(out, mailbox.as_bytes());
                for (who, rights) in *entries {
                    out.push(b' ');
                    wire::astring(out, who.as_bytes());
                    out.push(b' ');
                    wire::astring(out, rights.as_bytes());
                }
            }
            Response::MyRights { mailbox, rights } => {
                put(out, "* MYRIGHTS ");
                wire::astring(out, mailbox.as_bytes());
                out.push(b' ');
                wire::astring(out, rights.as_bytes());
            }
            Response::ListRights {
                mailbox,
                who,
                required,
                optional,
            } => list_rights_line(out, mailbox, who, required, optional),
            Response::Quota { root, used, limit } => {
                put(out, "* QUOTA ");
                wire::string(out, root.as_bytes());
                out.extend_from_slice(format!(" (STORAGE {used} {limit})").as_bytes());
            }
            Response::QuotaRoot { mailbox, roots } => {
                put(out, "* QUOTAROOT ");
                wire::string(out, mailbox.as_bytes());
                for r in *roots {
                    out.push(b' ');
                    wire::string(out, r.as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A status response's line: tagged, or untagged when `tag` is None.
fn status_line(out: &mut Vec<u8>, tag: Option<&str>, kind: Kind, code: Option<&Code>, text: &str) {
    put(out, tag.unwrap_or("*"));
    put(
        out,
        match kind {
            Kind::Ok => " OK ",
            Kind::No => " NO ",
            Kind::Bad => " BAD ",
            Kind::Bye => " BYE ",
        },
    );
    if let Some(c) = code {
        put(out, "[");
        c.encode(out);
        out.extend_from_slice(b"] ");
    }
    out.extend_from_slice(text.as_bytes());
}

/// ID (RFC 2971): the server's name and version.
fn id_line(out: &mut Vec<u8>, params: &[(&str, &str)]) {
    put(out, "* ID (");
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        wire::string(out, k.as_bytes());
        out.push(b' ');
        wire::string(out, v.as_bytes());
    }
    out.push(b')');
}

/// NAMESPACE (RFC 2342): personal, other users' and shared, each a prefix or NIL.
fn namespace_line(out: &mut Vec<u8>, spaces: &[Option<&str>; 3]) {
    put(out, "* NAMESPACE");
    for space in spaces {
        match space {
            Some(prefix) => {
                out.extend_from_slice(b" ((");
                wire::string(out, prefix.as_bytes());
                out.extend_from_slice(b" \"/\"))");
            }
            None => out.extend_from_slice(b" NIL"),
        }
    }
}

/// LIST or LSUB: one mailbox, its attributes, and CHILDINFO (RFC 5258) when there is any.
fn list_line(out: &mut Vec<u8>, lsub: bool, attrs: &[&str], name: &str, childinfo: &[&str]) {
    let verb = if lsub { "LSUB" } else { "LIST" };
    put(out, format!("* {verb} ({}) \"/\" ", attrs.join(" ")));
    wire::string(out, name.as_bytes());
    if !childinfo.is_empty() {
        out.extend_from_slice(b" (\"CHILDINFO\" (");
        for (i, c) in childinfo.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            wire::string(out, c.as_bytes());
        }
        out.extend_from_slice(b"))");
    }
}

/// LISTRIGHTS (RFC 4314): the rights always granted, then those that may be.
fn list_rights_line(
    out: &mut Vec<u8>,
    mailbox: &str,
    who: &str,
    required: &str,
    optional: &[&str],
) {
    put(out, "* LISTRIGHTS ");
    wire::astring(out, mailbox.as_bytes());
    out.push(b' ');
    wire::astring(out, who.as_bytes());
    out.push(b' ');
    wire::astring(out, required.as_bytes());
    for o in optional {
        out.push(b' ');
        out.extend_from_slice(o.as_bytes());
    }
}

impl Code<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        let s: Cow<str> = match self {
            Code::AlreadyExists => "ALREADYEXISTS".into(),
            Code::AppendUid { validity, uids } => {
                format!("APPENDUID {validity} {}", uid_set(uids)).into()
            }
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED".into(),
            Code::BadCharset(sets) => format!("BADCHARSET ({})", sets.join(" ")).into(),
            Code::Cannot => "CANNOT".into(),
            Code::Capability(c) => format!("CAPABILITY {c}").into(),
            Code::Closed => "CLOSED".into(),
            Code::CopyUid { validity, from, to } => {
                format!("COPYUID {validity} {} {}", in_order(from), in_order(to)).into()
            }
            Code::ExpungeIssued => "EXPUNGEISSUED".into(),
            Code::HighestModSeq(m) => format!("HIGHESTMODSEQ {m}").into(),
            Code::Limit => "LIMIT".into(),
            Code::Modified(set) => format!("MODIFIED {}", uid_set(set)).into(),
            Code::NonExistent => "NONEXISTENT".into(),
            Code::NoPerm => "NOPERM".into(),
            Code::OverQuota => "OVERQUOTA".into(),
            Code::Parse => "PARSE".into(),
            Code::PermanentFlags(f) => format!("PERMANENTFLAGS ({f})").into(),
            Code::PrivacyRequired => "PRIVACYREQUIRED".into(),
            Code::ReadOnly => "READ-ONLY".into(),
            Code::ReadWrite => "READ-WRITE".into(),
            Code::ServerBug => "SERVERBUG".into(),
            Code::TooBig => "TOOBIG".into(),
            Code::TryCreate => "TRYCREATE".into(),
            Code::UidNext(n) => format!("UIDNEXT {n}").into(),
            Code::UidValidity(v) => format!("UIDVALIDITY {v}").into(),
            Code::Unavailable => "UNAVAILABLE".into(),
            Code::UnknownCte => "UNKNOWN-CTE".into(),
            Code::Unseen(n) => format!("UNSEEN {n}").into(),
        };
        out.extend_from_slice(s.as_bytes());
    }
}

impl Item<'_> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Item::Uid(u) => put(out, format!("UID {u}")),
            Item::Flags(f) => put(out, format!("FLAGS ({f})")),
            Item::ModSeq(m) => put(out, format!("MODSEQ ({m})")),
            Item::Size(n) => put(out, format!("RFC822.SIZE {n}")),
            Item::InternalDate(ts) => put(
                out,
                format!("INTERNALDATE \"{}\"", wire::internal_date(*ts)),
            ),
            Item::Envelope(e) => {
                put(out, "ENVELOPE ");
                out.extend_from_slice(e);
            }
            Item::Body(b) => {
                put(out, "BODY ");
                out.extend_from_slice(b);
            }
            Item::BodyStructure(b) => {
                put(out, "BODYSTRUCTURE ");
                out.extend_from_slice(b);
            }
            Item::Rfc822(d) => {
                put(out, "RFC822 ");
                wire::literal(out, d);
            }
            Item::Rfc822Header(d) => {
                put(out, "RFC822.HEADER ");
                wire::literal(out, d);
            }
            Item::Rfc822Text(d) => {
                put(out, "RFC822.TEXT ");
                wire::literal(out, d);
            }
            Item::Section {
                label,
                origin,
                data,
            } => {
                put(out, format!("BODY[{label}]{} ", origin_label(*origin)));
                wire::literal(out, data);
            }
            Item::Binary {
                label,
                origin,
                data,
            } => {
                put(out, format!("BINARY[{label}]{} ", origin_label(*origin)));
                wire::literal8(out, data);
            }
            Item::BinarySize { label, size } => put(out, format!("BINARY.SIZE[{label}] {size}")),
        }
    }
}

fn put(out: &mut Vec<u8>, s: impl AsRef<str>) {
    out.extend_from_slice(s.as_ref().as_bytes());
}

/// `<origin>` of a partial fetch.
fn origin_label(origin: Option<u32>) -> String {
    origin.map_or_else(String::new, |o| format!("<{o}>"))
}

/// Numbers as a sequence set with ranges ("1:3,7"), ascending.
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}:{}", v[i], v[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// Numbers in their own order (COPYUID pairs source and destination by position).
fn in_order(nums: &[u32]) -> String {
    let v: Vec<String> = nums.iter().map(u32::to_string).collect();
    v.join(",")
}

/// One thread as RFC 5256 writes it: a parenthesized list, a message's only child chained
/// on, several children each in their own parentheses.
fn thread(out: &mut String, t: &Thread, number: &dyn Fn(usize) -> u32, root: bool) {
    if root {
        out.push('(');
    }
    if let Some(m) = t.msg {
        out.push_str(&number(m).to_string());
    }
    match (t.msg, t.children.as_slice()) {
        (_, []) => {}
        (Some(_), [only]) => {
            out.push(' ');
            thread(out, only, number, false);
        }
        (msg, children) => {
            if msg.is_some() {
                out.push(' ');
            }
            for c in children {
                out.push('(');
                thread(out, c, number, false);
                out.push(')');
            }
        }
    }
    if root {
        out.push(')');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(r: Response) -> String {
        let mut out = Vec::new();
        r.encode(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn status_responses_and_codes() {
        let r = Response::Status {
            tag: Some("a1"),
            kind: Kind::No,
            code: Some(Code::NoPerm),
            text: "not yours",
        };
        assert_eq!(line(r), "a1 NO [NOPERM] not yours\r\n");
        let r = Response::untagged(Kind::Ok, Some(Code::UidNext(42)), "predicted");
        assert_eq!(line(r), "* OK [UIDNEXT 42] predicted\r\n");
        let r = Response::untagged(Kind::Bye, None, "logging out");
        assert_eq!(line(r), "* BYE logging out\r\n");
        let code = Code::CopyUid {
            validity: 7,
            from: &[9, 3],
            to: &[20, 21],
        };
        let r = Response::untagged(Kind::Ok, Some(code), "moved");
        assert_eq!(line(r), "* OK [COPYUID 7 9,3 20,21] moved\r\n");
        let code = Code::AppendUid {
            validity: 7,
            uids: &[4, 5, 6, 9],
        };
        let r = Response::untagged(Kind::Ok, Some(code), "done");
        assert_eq!(line(r), "* OK [APPENDUID 7 4:6,9] done\r\n");
    }

    #[test]
    fn fetch_items() {
        let items = [
            Item::Uid(5),
            Item::Flags("\\Seen $Work".into()),
            Item::ModSeq(12),
            Item::Section {
                label: "1".into(),
                origin: Some(0),
                data: b"ab\0".to_vec(),
            },
            Item::Binary {
                label: "1".into(),
                origin: None,
                data: b"a\0".to_vec(),
            },
        ];
        let r = Response::Fetch {
            seq: 2,
            items: &items,
        };
        assert_eq!(
            line(r),
            "* 2 FETCH (UID 5 FLAGS (\\Seen $Work) MODSEQ (12) BODY[1]<0> {3}\r\nab\u{fffd} \
             BINARY[1] ~{2}\r\na\0)\r\n"
        );
    }

    #[test]
    fn names_are_quoted_or_literal() {
        let r = Response::List {
            lsub: false,
            attrs: &["\\HasNoChildren"],
            name: "a \"b\"",
            childinfo: &["SUBSCRIBED"],
        };
        assert_eq!(
            line(r),
            "* LIST (\\HasNoChildren) \"/\" \"a \\\"b\\\"\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
        );
        let r = Response::MailboxStatus {
            name: "Sent",
            items: &[("MESSAGES", 3), ("UIDNEXT", 9)],
        };
        assert_eq!(line(r), "* STATUS \"Sent\" (MESSAGES 3 UIDNEXT 9)\r\n");
        let r = Response::ListRights {
            mailbox: "Team",
            who: "bob",
            required: "",
            optional: &["lrs", "wi"],
        };
        assert_eq!(line(r), "* LISTRIGHTS Team bob \"\" lrs wi\r\n");
        let r = Response::Namespace([Some(""), Some("Shared/"), None]);
        assert_eq!(
            line(r),
            "* NAMESPACE ((\"\" \"/\")) ((\"Shared/\" \"/\")) NIL\r\n"
        );
    }

    #[test]
    fn searches_and_threads() {
        let r = Response::ESearch {
            tag: "t",
            uid: true,
            min: Some(2),
            max: Some(9),
            all: Some(&[2, 3, 4, 9]),
            count: Some(4),
            modseq: Some(30),
        };
        assert_eq!(
            line(r),
            "* ESEARCH (TAG \"t\") UID MIN 2 MAX 9 ALL 2:4,9 COUNT 4 MODSEQ 30\r\n"
        );
        let r = Response::Search {
            nums: &[],
            modseq: None,
        };
        assert_eq!(line(r), "* SEARCH\r\n");
        let leaf = |m| Thread {
            msg: Some(m),
            children: vec![],
        };
        let threads = [
            Thread {
                msg: Some(0),
                children: vec![leaf(1), leaf(2)],
            },
            Thread {
                msg: Some(3),
                children: vec![leaf(4)],
            },
        ];
        let number = |i: usize| i as u32 + 1;
        let r = Response::Thread {
            threads: &threads,
            number: &number,
        };
        assert_eq!(line(r), "* THREAD (1 (2)(3))(4 5)\r\n");
        let r = Response::Thread {
            threads: &[],
            number: &number,
        };
        assert_eq!(line(r), "* THREAD\r\n");
    }
}
