//! A SyncML message as bytes, both ways, sans I/O: XML (`application/vnd.syncml+xml`) and
//! WBXML (`application/vnd.syncml+wbxml`) read into the same tree of [`Element`]s, and the
//! tree written in the encoding the client used.
//!
//! Device information (`DevInf`) has a vocabulary of its own: inline elements of the
//! `syncml:devinf` namespace in XML, an opaque WBXML document inside `Data` in WBXML. In
//! the tree its elements are on [`DEVINF`], whichever way they came.
//!
//! XML is read without DTDs (a DOCTYPE is refused), bounded in depth and size; an element
//! no vocabulary names is an error that names it.

use bureau_wbxml::syncml::{self, page};
use bureau_wbxml::{Element, MAX_DEPTH, Node, Vocabulary};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// The tree's page for DevInf elements (their own code space in WBXML).
pub const DEVINF: u8 = 0x10;

/// Elements a message may hold; past this it is refused (a 5,000-item slow sync message
/// of 150 kB holds a few thousand).
const MAX_ELEMENTS: usize = 200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Encoding {
    Xml,
    Wbxml,
}

impl Encoding {
    /// The encoding of a request's Content-Type, if it is SyncML's.
    pub fn of_content_type(ct: &str) -> Option<Encoding> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        if ct.eq_ignore_ascii_case("application/vnd.syncml+xml") {
            Some(Encoding::Xml)
        } else if ct.eq_ignore_ascii_case("application/vnd.syncml+wbxml") {
            Some(Encoding::Wbxml)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Xml => "application/vnd.syncml+xml",
            Encoding::Wbxml => "application/vnd.syncml+wbxml",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Xml => "xml",
            Encoding::Wbxml => "wbxml",
        }
    }
}

/// SyncML's versions, as VerDTD says them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Version {
    V1_0,
    V1_1,
    V1_2,
}

impl Version {
    pub fn of_verdtd(v: &str) -> Option<Version> {
        match v.trim() {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }

    pub fn verdtd(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    pub fn verproto(self) -> &'static str {
        match self {
            Version::V1_0 => "SyncML/1.0",
            Version::V1_1 => "SyncML/1.1",
            Version::V1_2 => "SyncML/1.2",
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Version::V1_0 => "SYNCML:SYNCML1.0",
            Version::V1_1 => "SYNCML:SYNCML1.1",
            Version::V1_2 => "SYNCML:SYNCML1.2",
        }
    }

    fn vocabulary(self) -> &'static Vocabulary {
        match self {
            Version::V1_0 => &syncml::SYNCML_1_0,
            Version::V1_1 => &syncml::SYNCML_1_1,
            Version::V1_2 => &syncml::SYNCML_1_2,
        }
    }

    fn devinf(self) -> &'static Vocabulary {
        match self {
            Version::V1_2 => &syncml::DEVINF_1_2,
            _ => &syncml::DEVINF_1_1,
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadMessage {
    #[error("a DOCTYPE is not accepted")]
    Dtd,
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error(transparent)]
    Wbxml(#[from] bureau_wbxml::WbxmlError),
    #[error("no element {name} in {namespace}")]
    Unknown { namespace: String, name: String },
    #[error("the message is nested too deep or holds too many elements")]
    TooLarge,
    #[error("not a SyncML message")]
    NotSyncMl,
}

/// Reads a message.
pub fn decode(bytes: &[u8], encoding: Encoding, max_depth: usize) -> Result<Element, BadMessage> {
    let root = match encoding {
        Encoding::Xml => from_xml(bytes, max_depth.min(MAX_DEPTH))?,
        Encoding::Wbxml => {
            // The pages are the same in every version; the public identifier is not checked.
            let mut root = bureau_wbxml::decode(&syncml::SYNCML_1_2, bytes, max_depth)?;
            inline_devinf(&mut root, max_depth)?;
            root
        }
    };
    if root.name != "SyncML" || root.page != page::SYNCML {
        return Err(BadMessage::NotSyncMl);
    }
    Ok(root)
}

/// Opaque WBXML DevInf documents inside Data, read into the tree.
fn inline_devinf(e: &mut Element, max_depth: usize) -> Result<(), BadMessage> {
    for n in &mut e.children {
        match n {
            Node::Element(c) => inline_devinf(c, max_depth)?,
            Node::Opaque(b) if e.name == "Data" && b.first().is_some_and(|v| *v <= 3) => {
                if let Ok(mut d) = bureau_wbxml::decode(&syncml::DEVINF_1_2, b, max_depth)
                    && d.name == "DevInf"
                {
                    on_page(&mut d, DEVINF);
                    *n = Node::Element(d);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn on_page(e: &mut Element, page: u8) {
    e.page = page;
    for n in &mut e.children {
        if let Node::Element(c) = n {
            on_page(c, page);
        }
    }
}

/// Writes a message in `encoding`, with `version`'s identifiers.
pub fn encode(root: &Element, encoding: Encoding, version: Version) -> Result<Vec<u8>, BadMessage> {
    match encoding {
        Encoding::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            xml(&mut out, root, None, version);
            Ok(out.into_bytes())
        }
        Encoding::Wbxml => {
            let mut root = root.clone();
            opaque_devinf(&mut root, version)?;
            Ok(bureau_wbxml::encode(version.vocabulary(), &root)?)
        }
    }
}

/// DevInf subtrees as opaque WBXML documents of their own.
fn opaque_devinf(e: &mut Element, version: Version) -> Result<(), BadMessage> {
    for n in &mut e.children {
        if let Node::Element(c) = n {
            if c.page == DEVINF {
                let mut d = c.clone();
                on_page(&mut d, 0);
                *n = Node::Opaque(bureau_wbxml::encode(version.devinf(), &d)?);
            } else {
                opaque_devinf(c, version)?;
            }
        }
    }
    Ok(())
}

fn namespace(page: u8, version: Version) -> &'static str {
    match page {
        page::METINF => "syncml:metinf",
        DEVINF => "syncml:devinf",
        _ => version.namespace(),
    }
}

fn xml(out: &mut String, e: &Element, parent: Option<u8>, version: Version) {
    out.push('<');
    out.push_str(e.name);
    if parent != Some(e.page) {
        out.push_str(" xmlns=\"");
        out.push_str(namespace(e.page, version));
        out.push('"');
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for n in &e.children {
        match n {
            Node::Element(c) => xml(out, c, Some(e.page), version),
            Node::Text(t) => out.push_str(&quick_xml::escape::escape(t.as_str())),
            Node::Opaque(b) => out.push_str(&quick_xml::escape::escape(
                String::from_utf8_lossy(b).as_ref(),
            )),
        }
    }
    out.push_str("</");
    out.push_str(e.name);
    out.push('>');
}

/// The vocabulary page and static name of an element of `namespace`.
fn known(namespace: &str, name: &str) -> Option<(u8, &'static str)> {
    let ns = namespace.to_ascii_lowercase();
    let (page, pages): (u8, &[bureau_wbxml::Page]) = if ns.starts_with("syncml:syncml1.") {
        (page::SYNCML, &syncml::PAGES[..1])
    } else if ns == "syncml:metinf" {
        (page::METINF, &syncml::PAGES[1..])
    } else if ns == "syncml:devinf" {
        (DEVINF, &syncml::DEVINF_PAGES)
    } else {
        return None;
    };
    let tag = pages[0]
        .tags
        .iter()
        .find(|t| !t.is_empty() && **t == name)?;
    Some((page, tag))
}

fn from_xml(bytes: &[u8], max_depth: usize) -> Result<Element, BadMessage> {
    let mut reader = quick_xml::NsReader::from_reader(bytes);
    reader.config_mut().expand_empty_elements = true;
    let bad = |e: &dyn std::fmt::Display| BadMessage::Xml(e.to_string());
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    loop {
        let (res, ev) = reader.read_resolved_event().map_err(|e| bad(&e))?;
        match ev {
            Event::DocType(_) => return Err(BadMessage::Dtd),
            Event::Start(s) => {
                count += 1;
                if stack.len() >= max_depth || count > MAX_ELEMENTS {
                    return Err(BadMessage::TooLarge);
                }
                let ns = match res {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    // A message without a namespace is SyncML's (some devices leave it out).
                    ResolveResult::Unbound => Version::V1_2.namespace().to_string(),
                    ResolveResult::Unknown(p) => {
                        return Err(bad(&format!(
                            "unknown namespace prefix {}",
                            String::from_utf8_lossy(&p)
                        )));
                    }
                };
                let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
                let Some((page, name)) = known(&ns, &name) else {
                    return Err(BadMessage::Unknown {
                        namespace: ns,
                        name,
                    });
                };
                stack.push(Element::new(page, name));
            }
            Event::End(_) => {
                let mut done = stack
                    .pop()
                    .ok_or_else(|| bad(&"an end tag without start"))?;
                // Whitespace between elements means nothing; text is kept as it is.
                if done.children.iter().any(|n| matches!(n, Node::Element(_))) {
                    done.children
                        .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => return Ok(done),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| bad(&e))?;
                push_text(&mut stack, &text);
            }
            Event::CData(c) => {
                let text = c.decode().map_err(|e| bad(&e))?;
                push_text(&mut stack, &text);
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| bad(&e))?;
                let ch = match &*name {
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "amp" => "&".to_string(),
                    "apos" => "'".to_string(),
                    "quot" => "\"".to_string(),
                    _ => match r.resolve_char_ref().map_err(|e| bad(&e))? {
                        Some(c) => c.to_string(),
                        None => return Err(bad(&format!("unknown entity &{name};"))),
                    },
                };
                push_text(&mut stack, &ch);
            }
            Event::Eof => return Err(bad(&"the document ends early")),
            _ => {}
        }
    }
}

/// Text joins the text before it in the same element.
fn push_text(stack: &mut [Element], text: &str) {
    let Some(top) = stack.last_mut() else {
        return;
    };
    match top.children.last_mut() {
        Some(Node::Text(t)) => t.push_str(text),
        _ => top.children.push(Node::Text(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto><SessionID>5</SessionID><MsgID>1</MsgID><Target><LocURI>http://box/syncml</LocURI></Target><Source><LocURI>dev1</LocURI></Source><Meta><MaxMsgSize xmlns='syncml:metinf'>150000</MaxMsgSize></Meta></SyncHdr><SyncBody><Put><CmdID>1</CmdID><Item><Source><LocURI>./devinf12</LocURI></Source><Data><DevInf xmlns='syncml:devinf'><VerDTD>1.2</VerDTD><DevID>dev1</DevID><UTC/></DevInf></Data></Item></Put><Sync><CmdID>2</CmdID><Add><CmdID>3</CmdID><Item><Source><LocURI>1</LocURI></Source><Data><![CDATA[BEGIN:VCARD\nFN:A & B\nEND:VCARD]]></Data></Item></Add></Sync><Final/></SyncBody></SyncML>";

    #[test]
    fn xml_and_wbxml_read_to_the_same_tree() {
        let root = decode(MESSAGE.as_bytes(), Encoding::Xml, 32).unwrap();
        let hdr = root.child("SyncHdr").unwrap();
        assert_eq!(hdr.child_value("SessionID").as_deref(), Some("5"));
        let max = hdr.child("Meta").unwrap().child("MaxMsgSize").unwrap();
        assert_eq!((max.page, max.value().as_str()), (page::METINF, "150000"));
        let body = root.child("SyncBody").unwrap();
        let devinf = body
            .child("Put")
            .unwrap()
            .child("Item")
            .unwrap()
            .child("Data")
            .unwrap();
        let devinf = devinf.child("DevInf").unwrap();
        assert_eq!(devinf.page, DEVINF);
        assert_eq!(devinf.child_value("DevID").as_deref(), Some("dev1"));
        let data = body
            .child("Sync")
            .unwrap()
            .child("Add")
            .unwrap()
            .child("Item")
            .unwrap();
        assert_eq!(
            data.child_value("Data").as_deref(),
            Some("BEGIN:VCARD\nFN:A & B\nEND:VCARD")
        );
        // WBXML both ways, the DevInf as an opaque document of its own.
        let wbxml = encode(&root, Encoding::Wbxml, Version::V1_2).unwrap();
        assert_eq!(decode(&wbxml, Encoding::Wbxml, 32).unwrap(), root);
        // And XML again.
        let xml = encode(&root, Encoding::Xml, Version::V1_2).unwrap();
        assert_eq!(decode(&xml, Encoding::Xml, 32).unwrap(), root);
    }

    #[test]
    fn bad_messages_are_refused_with_their_reason() {
        let dtd = "<?xml version=\"1.0\"?><!DOCTYPE SyncML [<!ENTITY x \"y\">]><SyncML/>";
        assert_eq!(
            decode(dtd.as_bytes(), Encoding::Xml, 32),
            Err(BadMessage::Dtd)
        );
        let unknown = "<SyncML xmlns='SYNCML:SYNCML1.2'><Teleport/></SyncML>";
        assert!(matches!(
            decode(unknown.as_bytes(), Encoding::Xml, 32),
            Err(BadMessage::Unknown { .. })
        ));
        let deep = format!("<SyncML>{}", "<Item>".repeat(100));
        assert_eq!(
            decode(deep.as_bytes(), Encoding::Xml, 32),
            Err(BadMessage::TooLarge)
        );
        assert!(decode(b"<SyncML><SyncHdr>", Encoding::Xml, 32).is_err());
        assert!(decode(b"\x02\x00\x00", Encoding::Wbxml, 32).is_err());
        let other = "<SyncHdr xmlns='SYNCML:SYNCML1.2'/>";
        assert_eq!(
            decode(other.as_bytes(), Encoding::Xml, 32),
            Err(BadMessage::NotSyncMl)
        );
    }
}
