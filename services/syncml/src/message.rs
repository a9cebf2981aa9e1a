//! A message's parts as the session reads them, and the reply as it is built: the SyncHdr,
//! the commands of the SyncBody with their CmdIDs, and the Status every command is owed
//! (OMA DS Representation Protocol 1.2, 5 and 6).

use crate::codec::Version;
use bureau_wbxml::syncml::page::{METINF, SYNCML};
use bureau_wbxml::{Element, Node};

/// SyncML status codes (Representation Protocol 10).
pub mod status {
    pub const OK: u16 = 200;
    pub const ADDED: u16 = 201;
    /// Deleted, but not archived as the device asked (Bureau keeps no archive).
    pub const DELETED_WITHOUT_ARCHIVE: u16 = 210;
    pub const AUTHENTICATED: u16 = 212;
    /// A part of a split item, kept until the rest comes.
    pub const CHUNK_ACCEPTED: u16 = 213;
    pub const NOT_DELETED: u16 = 211;
    pub const BAD_REQUEST: u16 = 400;
    pub const INVALID_CREDENTIALS: u16 = 401;
    /// Signed in, but not allowed to sync (the domain's or the user's SyncML is off).
    pub const FORBIDDEN: u16 = 403;
    pub const NOT_FOUND: u16 = 404;
    pub const NOT_ALLOWED: u16 = 405;
    pub const NOT_SUPPORTED: u16 = 406;
    pub const MISSING_CREDENTIALS: u16 = 407;
    pub const TOO_LARGE: u16 = 413;
    /// The device changed what the server had changed since: the server's version stands
    /// and goes to the device ("conflict resolved with server data").
    pub const ALREADY_EXISTS: u16 = 418;
    pub const SERVER_WON: u16 = 419;
    /// The store is full (the user's quota).
    pub const DEVICE_FULL: u16 = 420;
    pub const UNSUPPORTED_TYPE: u16 = 415;
    /// A split item whose parts do not add up to the Size it announced.
    pub const SIZE_MISMATCH: u16 = 424;
    pub const FAILED: u16 = 500;
    pub const REFRESH_REQUIRED: u16 = 508;
    pub const STORE_FAILURE: u16 = 510;
    pub const BAD_VERSION: u16 = 513;
}

/// Sync types (Alert codes, Protocol 5.5.2).
pub mod alert {
    pub const TWO_WAY: u16 = 200;
    pub const SLOW: u16 = 201;
    pub const ONE_WAY_FROM_CLIENT: u16 = 202;
    pub const REFRESH_FROM_CLIENT: u16 = 203;
    pub const ONE_WAY_FROM_SERVER: u16 = 204;
    pub const REFRESH_FROM_SERVER: u16 = 205;
    pub const NEXT_MESSAGE: u16 = 222;
    pub const RESUME: u16 = 225;

    /// The sync a server-alerted type (206 to 210) stands for.
    pub fn of_server_alerted(code: u16) -> u16 {
        match code {
            206 => TWO_WAY,
            207 => ONE_WAY_FROM_CLIENT,
            208 => REFRESH_FROM_CLIENT,
            209 => ONE_WAY_FROM_SERVER,
            210 => REFRESH_FROM_SERVER,
            other => other,
        }
    }
}

/// The header of a client's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    pub session_id: String,
    pub msg_id: String,
    /// The server's URI as the client addressed it.
    pub target: String,
    /// The device's id.
    pub source: String,
    /// The user name the device gives, if any.
    pub source_name: Option<String>,
    /// (type, format, data) of the credentials, if sent.
    pub cred: Option<Cred>,
    pub max_msg_size: Option<usize>,
    /// The largest object the client takes (in parts); None if it takes none split.
    pub max_obj_size: Option<usize>,
    pub no_resp: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cred {
    pub kind: String,
    pub format: String,
    pub data: String,
}

/// Why a message cannot be read as SyncML: answered with an HTTP 400.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadHeader {
    #[error("no SyncHdr")]
    NoHeader,
    #[error("VerDTD {0:?} is not SyncML 1.0, 1.1 or 1.2")]
    Version(String),
    #[error("the SyncHdr lacks {0}")]
    Missing(&'static str),
}

/// The text of the first descendant along `path`.
pub fn text_at(e: &Element, path: &[&str]) -> Option<String> {
    let mut at = e;
    for p in path {
        at = at.child(p)?;
    }
    Some(at.value().trim().to_string())
}

/// A Meta's child (Type, Format, MaxMsgSize, Anchor...), whether the Meta is on the
/// command or on its item.
pub fn meta(e: &Element, name: &str) -> Option<String> {
    text_at(e, &["Meta", name])
}

impl Header {
    pub fn of(root: &Element) -> Result<Header, BadHeader> {
        let h = root.child("SyncHdr").ok_or(BadHeader::NoHeader)?;
        let verdtd = h
            .child_value("VerDTD")
            .ok_or(BadHeader::Missing("VerDTD"))?;
        let version =
            Version::of_verdtd(&verdtd).ok_or_else(|| BadHeader::Version(verdtd.clone()))?;
        let need = |path: &[&str], what| text_at(h, path).ok_or(BadHeader::Missing(what));
        let cred = h.child("Cred").map(|c| Cred {
            kind: meta(c, "Type").unwrap_or_else(|| "syncml:auth-basic".into()),
            format: meta(c, "Format").unwrap_or_default(),
            data: c.child_value("Data").unwrap_or_default().trim().to_string(),
        });
        Ok(Header {
            version,
            session_id: need(&["SessionID"], "SessionID")?,
            msg_id: need(&["MsgID"], "MsgID")?,
            target: need(&["Target", "LocURI"], "Target")?,
            source: need(&["Source", "LocURI"], "Source")?,
            source_name: text_at(h, &["Source", "LocName"]),
            cred,
            max_msg_size: meta(h, "MaxMsgSize").and_then(|v| v.parse().ok()),
            max_obj_size: meta(h, "MaxObjSize").and_then(|v| v.parse().ok()),
            no_resp: h.child("NoResp").is_some(),
        })
    }
}

/// Builds a reply: its header, then commands, each with the next CmdID.
pub struct Reply {
    pub version: Version,
    header: Element,
    body: Vec<Element>,
    next_cmd: u32,
    pub final_: bool,
}

pub fn el(name: &'static str) -> Element {
    Element::new(SYNCML, name)
}

pub fn text(name: &'static str, value: impl Into<String>) -> Element {
    el(name).text(value)
}

pub fn metinf(name: &'static str, value: impl Into<String>) -> Element {
    Element::new(METINF, name).text(value)
}

fn loc(name: &'static str, uri: &str) -> Element {
    el(name).with(text("LocURI", uri))
}

impl Reply {
    /// A reply to `h`, as message `msg_id` of the server; `resp_uri` where the next message
    /// goes; `max_msg_size` what the server accepts.
    pub fn to(h: &Header, msg_id: u32, resp_uri: Option<&str>, max_msg_size: usize) -> Reply {
        let mut header = el("SyncHdr")
            .with(text("VerDTD", h.version.verdtd()))
            .with(text("VerProto", h.version.verproto()))
            .with(text("SessionID", h.session_id.clone()))
            .with(text("MsgID", msg_id.to_string()))
            .with(loc("Target", &h.source))
            .with(loc("Source", &h.target));
        if let Some(u) = resp_uri {
            header = header.with(text("RespURI", u));
        }
        header = header.with(
            el("Meta")
                .with(metinf("MaxMsgSize", max_msg_size.to_string()))
                .with(metinf("MaxObjSize", crate::MAX_OBJECT.to_string())),
        );
        Reply {
            version: h.version,
            header,
            body: Vec::new(),
            next_cmd: 1,
            final_: false,
        }
    }

    /// Adds a command, and the commands a Sync holds, each with the next CmdID first.
    pub fn push(&mut self, cmd: Element) {
        let numbered = self.numbered(cmd);
        self.body.push(numbered);
    }

    fn numbered(&mut self, cmd: Element) -> Element {
        let mut with_id = Element::new(cmd.page, cmd.name);
        with_id
            .children
            .push(Node::Element(text("CmdID", self.next_cmd.to_string())));
        self.next_cmd += 1;
        let holds_commands = matches!(cmd.name, "Sync" | "Atomic" | "Sequence");
        for n in cmd.children {
            match n {
                Node::Element(c)
                    if holds_commands && matches!(c.name, "Add" | "Replace" | "Delete") =>
                {
                    let c = self.numbered(c);
                    with_id.children.push(Node::Element(c));
                }
                other => with_id.children.push(other),
            }
        }
        with_id
    }

    /// The Status for a command of the client's message `msg_ref`.
    #[allow(clippy::too_many_arguments)]
    pub fn status(
        &mut self,
        msg_ref: &str,
        cmd_ref: &str,
        cmd: &str,
        target_ref: Option<&str>,
        source_ref: Option<&str>,
        code: u16,
        extra: Vec<Element>,
    ) {
        let mut s = el("Status")
            .with(text("MsgRef", msg_ref))
            .with(text("CmdRef", cmd_ref))
            .with(text("Cmd", cmd.to_string()));
        if let Some(t) = target_ref.filter(|t| !t.is_empty()) {
            s = s.with(text("TargetRef", t));
        }
        if let Some(t) = source_ref.filter(|t| !t.is_empty()) {
            s = s.with(text("SourceRef", t));
        }
        let (before, after): (Vec<Element>, Vec<Element>) =
            extra.into_iter().partition(|e| e.name == "Chal");
        for e in before {
            s = s.with(e);
        }
        s = s.with(text("Data", code.to_string()));
        for e in after {
            s = s.with(e);
        }
        self.push(s);
    }

    /// Commands so far, to size the message.
    pub fn commands(&self) -> usize {
        self.body.len()
    }

    pub fn into_element(self) -> Element {
        let mut body = el("SyncBody");
        body.children = self.body.into_iter().map(Node::Element).collect();
        if self.final_ {
            body = body.with(el("Final"));
        }
        el("SyncML").with(self.header).with(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Encoding, decode};

    #[test]
    fn a_header_is_read_and_a_reply_answers_it() {
        let msg = "<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto><SessionID>5</SessionID><MsgID>1</MsgID><Target><LocURI>http://box/syncml</LocURI></Target><Source><LocURI>dev1</LocURI><LocName>alice</LocName></Source><Cred><Meta><Format xmlns='syncml:metinf'>b64</Format><Type xmlns='syncml:metinf'>syncml:auth-basic</Type></Meta><Data>YWxpY2U6cHc=</Data></Cred><Meta><MaxMsgSize xmlns='syncml:metinf'>150000</MaxMsgSize></Meta></SyncHdr><SyncBody/></SyncML>";
        let root = decode(msg.as_bytes(), Encoding::Xml, 32).unwrap();
        let h = Header::of(&root).unwrap();
        assert_eq!(h.version, Version::V1_2);
        assert_eq!((h.session_id.as_str(), h.msg_id.as_str()), ("5", "1"));
        assert_eq!(
            (h.target.as_str(), h.source.as_str()),
            ("http://box/syncml", "dev1")
        );
        assert_eq!(h.source_name.as_deref(), Some("alice"));
        let c = h.cred.clone().unwrap();
        assert_eq!(
            (c.kind.as_str(), c.format.as_str()),
            ("syncml:auth-basic", "b64")
        );
        assert_eq!(h.max_msg_size, Some(150_000));

        let mut r = Reply::to(&h, 1, Some("http://box/syncml?s=x"), 1 << 20);
        r.status(
            "1",
            "0",
            "SyncHdr",
            Some(&h.target),
            Some(&h.source),
            212,
            vec![],
        );
        r.final_ = true;
        let out = r.into_element();
        let s = out.child("SyncBody").unwrap().child("Status").unwrap();
        assert_eq!(s.child_value("CmdID").as_deref(), Some("1"));
        assert_eq!(s.child_value("Data").as_deref(), Some("212"));
        assert_eq!(
            text_at(&out, &["SyncHdr", "Target", "LocURI"]).as_deref(),
            Some("dev1")
        );
        assert!(out.child("SyncBody").unwrap().child("Final").is_some());

        let bad = msg.replace("<VerDTD>1.2</VerDTD>", "<VerDTD>3.0</VerDTD>");
        let root = decode(bad.as_bytes(), Encoding::Xml, 32).unwrap();
        assert_eq!(Header::of(&root), Err(BadHeader::Version("3.0".into())));
    }
}
