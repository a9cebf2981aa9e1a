//! The grammar of the commands imap-codec 2.0.0-alpha.10 does not parse: ACL (RFC 4314),
//! SEARCH RETURN (ESEARCH, RFC 4731), LIST with selection and return options (LIST-EXTENDED
//! RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154) and APPEND of several messages
//! (MULTIAPPEND, RFC 3502). The session tries imap-codec first and this only when it
//! fails; a SEARCH is handed back to imap-codec once its RETURN options are taken off.
//! Input is one whole command as the Fragmentizer collected it, literals inline.

/// A command of the extensions above.
#[derive(Debug, PartialEq)]
pub(crate) enum Ext {
    GetAcl(String),
    SetAcl(String, String, String),
    DeleteAcl(String, String),
    ListRights(String, String),
    MyRights(String),
    /// SEARCH RETURN (options): the options, and the command without them for imap-codec.
    Search {
        ret: Vec<String>,
        command: Vec<u8>,
    },
    List(ListExt),
    Append {
        mailbox: String,
        messages: Vec<AppendMsg>,
    },
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct ListExt {
    /// Selection options, upper case (SUBSCRIBED, RECURSIVEMATCH, SPECIAL-USE, REMOTE).
    pub select: Vec<String>,
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    /// Return options, upper case, except STATUS whose items are in `status`.
    pub ret: Vec<String>,
    pub status: Option<Vec<String>>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct AppendMsg {
    pub flags: Vec<String>,
    pub date: Option<i64>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Atom(String),
    /// A quoted string.
    Str(Vec<u8>),
    /// A literal: only a literal may carry an APPENDed message (RFC 9051 9, `append`).
    Lit(Vec<u8>),
    Open,
    Close,
}

/// Splits a command into tokens; `None` if it is not well-formed.
fn tokens(mut s: &[u8]) -> Option<Vec<(usize, Tok)>> {
    let whole = s.len();
    let mut out = Vec::new();
    loop {
        while let Some((b' ', rest)) = s.split_first() {
            s = rest;
        }
        let at = whole - s.len();
        match s.first()? {
            b'\r' | b'\n' => return (s == b"\r\n" || s == b"\n").then_some(out),
            b'(' => {
                out.push((at, Tok::Open));
                s = &s[1..];
            }
            b')' => {
                out.push((at, Tok::Close));
                s = &s[1..];
            }
            b'"' => {
                let mut v = Vec::new();
                let mut i = 1;
                loop {
                    match *s.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            v.push(*s.get(i + 1)?);
                            i += 2;
                        }
                        b'\r' | b'\n' => return None,
                        b => {
                            v.push(b);
                            i += 1;
                        }
                    }
                }
                out.push((at, Tok::Str(v)));
                s = &s[i + 1..];
            }
            // A literal8 (RFC 3516, MULTIAPPEND of binary content): the same bytes follow.
            b'~' if s.get(1) == Some(&b'{') => s = &s[1..],
            b'{' => {
                let close = s.iter().position(|b| *b == b'}')?;
                let spec = std::str::from_utf8(&s[1..close]).ok()?;
                let n: usize = spec.trim_end_matches(['+', '-']).parse().ok()?;
                let rest = s[close + 1..].strip_prefix(b"\r\n")?;
                out.push((at, Tok::Lit(rest.get(..n)?.to_vec())));
                s = &rest[n..];
            }
            _ => {
                let n = s
                    .iter()
                    .position(|b| b" (){\"\r\n".contains(b))
                    .unwrap_or(s.len());
                out.push((at, Tok::Atom(String::from_utf8(s[..n].to_vec()).ok()?)));
                s = &s[n..];
            }
        }
    }
}

struct P {
    toks: Vec<(usize, Tok)>,
    i: usize,
}

impl P {
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i)?.1.clone();
        self.i += 1;
        Some(t)
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.1)
    }
    fn done(&self) -> bool {
        self.i == self.toks.len()
    }
    /// An astring (atom, quoted or literal) as bytes.
    fn astring(&mut self) -> Option<Vec<u8>> {
        match self.next()? {
            Tok::Atom(a) => Some(a.into_bytes()),
            Tok::Str(s) | Tok::Lit(s) => Some(s),
            _ => None,
        }
    }
    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.astring()?).ok()
    }
    /// "(" atoms ")", upper-cased; nested lists only where `nested` allows (STATUS items).
    fn atoms(&mut self) -> Option<Vec<String>> {
        if self.next()? != Tok::Open {
            return None;
        }
        let mut v = Vec::new();
        loop {
            match self.next()? {
                Tok::Close => return Some(v),
                Tok::Atom(a) => v.push(a.to_ascii_uppercase()),
                _ => return None,
            }
        }
    }
}

/// Parses one command of the extensions this module knows: the tag and the command.
pub(crate) fn parse(msg: &[u8]) -> Option<(String, Ext)> {
    let toks = tokens(msg)?;
    let mut p = P { toks, i: 0 };
    let Tok::Atom(tag) = p.next()? else {
        return None;
    };
    let Tok::Atom(name) = p.next()? else {
        return None;
    };
    let mut name = name.to_ascii_uppercase();
    let uid = name == "UID";
    if uid {
        let Tok::Atom(n) = p.next()? else {
            return None;
        };
        name = n.to_ascii_uppercase();
    }
    let ext = match name.as_str() {
        "GETACL" if !uid => Ext::GetAcl(p.text()?),
        "MYRIGHTS" if !uid => Ext::MyRights(p.text()?),
        "SETACL" if !uid => Ext::SetAcl(p.text()?, p.text()?, p.text()?),
        "DELETEACL" if !uid => Ext::DeleteAcl(p.text()?, p.text()?),
        "LISTRIGHTS" if !uid => Ext::ListRights(p.text()?, p.text()?),
        "SEARCH" => {
            let start = p.toks.get(p.i)?.0;
            if !matches!(p.next()?, Tok::Atom(a) if a.eq_ignore_ascii_case("RETURN")) {
                return None;
            }
            let ret = p.atoms()?;
            let rest = p.toks.get(p.i)?.0;
            let mut command = msg[..start].to_vec();
            command.extend_from_slice(&msg[rest..]);
            return Some((tag, Ext::Search { ret, command }));
        }
        "LIST" if !uid => Ext::List(list(&mut p)?),
        "APPEND" if !uid => append(&mut p)?,
        _ => return None,
    };
    p.done().then_some((tag, ext))
}

fn list(p: &mut P) -> Option<ListExt> {
    let mut l = ListExt::default();
    if p.peek() == Some(&Tok::Open) {
        l.select = p.atoms()?;
    }
    l.reference = p.astring()?;
    if p.peek() == Some(&Tok::Open) {
        p.next();
        while p.peek() != Some(&Tok::Close) {
            l.patterns.push(p.astring()?);
        }
        p.next();
    } else {
        l.patterns.push(p.astring()?);
    }
    if p.done() {
        return Some(l);
    }
    if !matches!(p.next()?, Tok::Atom(a) if a.eq_ignore_ascii_case("RETURN")) {
        return None;
    }
    if p.next()? != Tok::Open {
        return None;
    }
    loop {
        match p.next()? {
            Tok::Close => return Some(l),
            Tok::Atom(a) if a.eq_ignore_ascii_case("STATUS") => l.status = Some(p.atoms()?),
            Tok::Atom(a) => l.ret.push(a.to_ascii_uppercase()),
            _ => return None,
        }
    }
}

fn append(p: &mut P) -> Option<Ext> {
    let mailbox = p.text()?;
    let mut messages = Vec::new();
    while !p.done() {
        let mut flags = Vec::new();
        if p.peek() == Some(&Tok::Open) {
            p.next();
            loop {
                match p.next()? {
                    Tok::Close => break,
                    Tok::Atom(a) => flags.push(a),
                    _ => return None,
                }
            }
        }
        // The date-time is quoted, the message a literal: a message's literal followed by
        // the next message's is not a date and a message (issue 18: MULTIAPPEND).
        let mut date = None;
        let mut data = p.next()?;
        if let Tok::Str(d) = &data {
            date = Some(internal_date(std::str::from_utf8(d).ok()?)?);
            data = p.next()?;
        }
        let Tok::Lit(data) = data else {
            return None;
        };
        messages.push(AppendMsg { flags, date, data });
    }
    (!messages.is_empty()).then_some(Ext::Append { mailbox, messages })
}

/// " 2-Jan-2026 10:00:00 +0100" (RFC 9051 date-time) as seconds since the epoch.
fn internal_date(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(s.trim_start(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_commands() {
        assert_eq!(
            parse(b"a1 SETACL \"Projects\" bob lrs\r\n"),
            Some((
                "a1".into(),
                Ext::SetAcl("Projects".into(), "bob".into(), "lrs".into())
            ))
        );
        assert_eq!(
            parse(b"a2 getacl {5}\r\nINBOX\r\n"),
            Some(("a2".into(), Ext::GetAcl("INBOX".into())))
        );
        assert_eq!(parse(b"a3 MYRIGHTS\r\n"), None);
        assert_eq!(parse(b"a4 SETACL a b c d\r\n"), None);
    }

    #[test]
    fn search_return_is_taken_off() {
        let (tag, e) =
            parse(b"t UID SEARCH RETURN (MIN COUNT) UNSEEN FROM {3}\r\nbob\r\n").unwrap();
        assert_eq!(tag, "t");
        assert_eq!(
            e,
            Ext::Search {
                ret: vec!["MIN".into(), "COUNT".into()],
                command: b"t UID SEARCH UNSEEN FROM {3}\r\nbob\r\n".to_vec()
            }
        );
    }

    #[test]
    fn list_extended() {
        let (_, e) = parse(
            b"t LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"Sent\" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
        )
        .unwrap();
        let Ext::List(l) = e else { panic!() };
        assert_eq!(l.select, ["SUBSCRIBED", "RECURSIVEMATCH"]);
        assert_eq!(
            l.patterns,
            [b"INBOX".to_vec(), b"Sent".to_vec(), b"%".to_vec()]
        );
        assert_eq!(l.ret, ["CHILDREN"]);
        assert_eq!(l.status, Some(vec!["MESSAGES".into(), "UNSEEN".into()]));
        assert!(parse(b"t LIST \"\" * RETURN (\r\n").is_none());
    }

    /// Mangled commands (cut, bytes changed, literals lying about their length) are refused
    /// or parsed, never a panic.
    #[test]
    fn mangled_input_never_panics() {
        let samples: [&[u8]; 5] = [
            b"a SETACL \"Projects\" bob lrs\r\n",
            b"t UID SEARCH RETURN (MIN COUNT) UNSEEN FROM {3}\r\nbob\r\n",
            b"t LIST (SUBSCRIBED) \"\" (INBOX %) RETURN (STATUS (MESSAGES))\r\n",
            b"t APPEND Drafts (\\Seen) \"22-Nov-2026 10:00:00 +0100\" {2}\r\nab {1+}\r\nc\r\n",
            b"t GETACL {5}\r\nINBOX\r\n",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"(){}\"\\ +-09\r\nA*%";
        for _ in 0..20_000 {
            let mut s = samples[(rand() % 5) as usize].to_vec();
            for _ in 0..(rand() % 4) {
                let at = (rand() as usize) % s.len();
                match rand() % 3 {
                    0 => s[at] = alphabet[(rand() as usize) % alphabet.len()],
                    1 => s.truncate(at.max(1)),
                    _ => s.insert(at, alphabet[(rand() as usize) % alphabet.len()]),
                }
            }
            let _ = parse(&s);
        }
    }

    #[test]
    fn multiappend() {
        let (_, e) = parse(
            b"t APPEND Drafts (\\Seen) \"22-Nov-2026 10:00:00 +0100\" {2}\r\nab {1+}\r\nc\r\n",
        )
        .unwrap();
        let Ext::Append { mailbox, messages } = e else {
            panic!()
        };
        assert_eq!(mailbox, "Drafts");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].flags, ["\\Seen"]);
        assert_eq!(messages[0].date, Some(1_795_338_000));
        assert_eq!(
            (messages[0].data.as_slice(), messages[1].data.as_slice()),
            (&b"ab"[..], &b"c"[..])
        );
        assert!(parse(b"t APPEND Drafts\r\n").is_none());
    }
}

/// Property test of the grammar additions: any bytes, and mangled commands built from their
/// pieces, are parsed or refused without panic.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"t ".to_vec()),
            Just(b"LIST ".to_vec()),
            Just(b"APPEND ".to_vec()),
            Just(b"SETACL ".to_vec()),
            Just(b"UID SEARCH RETURN (".to_vec()),
            Just(b"(".to_vec()),
            Just(b")".to_vec()),
            Just(b"{3}\r\n".to_vec()),
            Just(b"{4294967295+}\r\n".to_vec()),
            Just(b"~{2}\r\n".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"\\".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"RETURN (STATUS (MESSAGES))".to_vec()),
            Just(b"INBOX".to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes(raw in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = super::parse(&raw);
        }

        #[test]
        fn command_shaped(pieces in prop::collection::vec(piece(), 0..40)) {
            let _ = super::parse(&pieces.concat());
        }
    }
}
