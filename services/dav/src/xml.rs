//! Request bodies as a small element tree (quick-xml, namespaces resolved), and the
//! escaping the responses need. Sans-I/O. A DOCTYPE anywhere is refused (no DTDs, so no
//! external entities and no entity expansion), as are documents deeper or larger than any
//! DAV client sends.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

pub const DAV: &str = "DAV:";
pub const CALDAV: &str = "urn:ietf:params:xml:ns:caldav";
pub const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
pub const CS: &str = "http://calendarserver.org/ns/";
pub const APPLE: &str = "http://apple.com/ns/ical/";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum XmlError {
    /// A DOCTYPE: refused outright.
    Dtd,
    /// Not well-formed, or past the limits.
    Malformed(String),
}

/// Parses a request body into its root element.
pub fn parse(body: &[u8]) -> Result<Element, XmlError> {
    let mut reader = quick_xml::NsReader::from_reader(body);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let bad = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
    loop {
        let (res, ev) = reader.read_resolved_event().map_err(|e| bad(&e))?;
        match ev {
            Event::DocType(_) => return Err(XmlError::Dtd),
            Event::Start(s) => {
                count += 1;
                let limits = bureau_core::limits::get();
                if stack.len() >= limits.dav_xml_depth || count > limits.dav_xml_elements {
                    return Err(XmlError::Malformed("document too deep or too large".into()));
                }
                let ns = match res {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => {
                        return Err(XmlError::Malformed(format!(
                            "unknown namespace prefix {}",
                            String::from_utf8_lossy(&p)
                        )));
                    }
                };
                let mut attrs = Vec::new();
                for a in s.attributes() {
                    let a = a.map_err(|e| bad(&e))?;
                    let v = a
                        .decode_and_unescape_value(reader.decoder())
                        .map_err(|e| bad(&e))?;
                    attrs.push((
                        String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
                        v.into_owned(),
                    ));
                }
                stack.push(Element {
                    ns,
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    attrs,
                    ..Default::default()
                });
            }
            Event::End(_) => {
                let mut done = stack
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unbalanced end tag".into()))?;
                // Whitespace around the text (and between child elements) means nothing here.
                let trimmed = done.text.trim();
                if trimmed.len() != done.text.len() {
                    done.text = trimmed.to_string();
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(|e| bad(&e))?);
                }
            }
            Event::GeneralRef(r) => {
                // Only the five predefined entities and character references.
                let name = r.decode().map_err(|e| bad(&e))?;
                let ch = match &*name {
                    "lt" => "<".to_string(),
                    "gt" => ">".to_string(),
                    "amp" => "&".to_string(),
                    "apos" => "'".to_string(),
                    "quot" => "\"".to_string(),
                    _ => match r.resolve_char_ref().map_err(|e| bad(&e))? {
                        Some(c) => c.to_string(),
                        None => {
                            return Err(XmlError::Malformed(format!("unknown entity &{name};")));
                        }
                    },
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&ch);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => return Err(XmlError::Malformed("no root element".into())),
            _ => {}
        }
    }
}

/// Text escaped for an XML element or attribute. Characters XML 1.0 cannot carry (NUL and
/// the C0 controls but tab, CR, LF), which a stored object may hold, become U+FFFD so that
/// the response stays well-formed for every client.
pub fn esc(s: &str) -> String {
    let bad = |c: char| c < ' ' && !matches!(c, '\t' | '\n' | '\r');
    if s.chars().any(bad) {
        let clean: String = s
            .chars()
            .map(|c| if bad(c) { '\u{FFFD}' } else { c })
            .collect();
        return quick_xml::escape::escape(&clean).into_owned();
    }
    quick_xml::escape::escape(s).into_owned()
}

/// The prefix responses use for a namespace.
pub fn prefix(ns: &str) -> Option<&'static str> {
    Some(match ns {
        DAV => "d",
        CALDAV => "c",
        CARDDAV => "a",
        CS => "cs",
        APPLE => "ic",
        _ => return None,
    })
}

/// The namespace declarations every multistatus carries.
pub const NAMESPACES: &str = r#"xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="urn:ietf:params:xml:ns:carddav" xmlns:cs="http://calendarserver.org/ns/" xmlns:ic="http://apple.com/ns/ical/""#;

/// `<name/>` of any namespace, with a declaration when it has no prefix of ours.
pub fn empty_tag(ns: &str, name: &str) -> String {
    match prefix(ns) {
        Some(p) => format!("<{p}:{name}/>"),
        None => format!("<x:{name} xmlns:x=\"{}\"/>", esc(ns)),
    }
}

/// Writes `<name>inner</name>` (inner already XML) at the end of `out`.
pub fn push_tag(out: &mut String, ns: &str, name: &str, inner: &str) {
    match prefix(ns) {
        Some(p) => {
            for part in ["<", p, ":", name, ">", inner, "</", p, ":", name, ">"] {
                out.push_str(part);
            }
        }
        None => out.push_str(&tag(ns, name, inner)),
    }
}

/// `<name>inner</name>` (inner already XML).
pub fn tag(ns: &str, name: &str, inner: &str) -> String {
    match prefix(ns) {
        Some(p) => format!("<{p}:{name}>{inner}</{p}:{name}>"),
        None => format!("<x:{name} xmlns:x=\"{}\">{inner}</x:{name}>", esc(ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_resolved() {
        let doc = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data/><x xmlns="urn:other">t &amp; &#65;</x></D:prop></D:propfind>"#;
        let root = parse(doc).unwrap();
        assert!(root.is(DAV, "propfind"));
        let prop = root.child(DAV, "prop").unwrap();
        assert!(prop.child(DAV, "getetag").is_some());
        assert!(prop.child(CALDAV, "calendar-data").is_some());
        assert_eq!(prop.child("urn:other", "x").unwrap().text, "t & A");
    }

    #[test]
    fn dtds_and_entities_refused() {
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d:propfind xmlns:d="DAV:">&x;</d:propfind>"#;
        assert_eq!(parse(xxe), Err(XmlError::Dtd));
        let laughs = br#"<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><l>&b;</l>"#;
        assert_eq!(parse(laughs), Err(XmlError::Dtd));
        assert!(matches!(
            parse(br#"<d:p xmlns:d="DAV:">&x;</d:p>"#),
            Err(XmlError::Malformed(_))
        ));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(parse(b"<a><b></a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse(b""), Err(XmlError::Malformed(_))));
    }
}

#[test]
fn escaped_text_is_well_formed() {
    assert_eq!(esc("a<b&\u{0}c\u{1b}"), "a&lt;b&amp;\u{FFFD}c\u{FFFD}");
    assert_eq!(esc("tab\there"), "tab\there");
}

/// Property tests: any bytes, and generated nesting, are parsed or refused without panic.
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("<d:prop>".to_string()),
            Just("</d:prop>".to_string()),
            Just("<x xmlns=\"urn:x\">".to_string()),
            Just("</x>".to_string()),
            Just("&amp;".to_string()),
            Just("&#0;".to_string()),
            Just("&#x110000;".to_string()),
            Just("<!DOCTYPE a [<!ENTITY e \"x\">]>".to_string()),
            Just("<![CDATA[".to_string()),
            Just("]]>".to_string()),
            Just("<y:z/>".to_string()),
            "[a-z<>&;\"' ]{0,6}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_bytes(raw in prop::collection::vec(any::<u8>(), 0..1024)) {
            let _ = super::parse(&raw);
        }

        #[test]
        fn xml_shaped(pieces in prop::collection::vec(piece(), 0..200)) {
            let doc = format!("<d:propfind xmlns:d=\"DAV:\">{}</d:propfind>", pieces.concat());
            let _ = super::parse(doc.as_bytes());
        }

        #[test]
        fn deep(depth in 0usize..20_000) {
            let doc = format!("<d:a xmlns:d=\"DAV:\">{}{}</d:a>", "<d:b>".repeat(depth), "</d:b>".repeat(depth));
            let r = super::parse(doc.as_bytes());
            prop_assert_eq!(r.is_ok(), depth < bureau_core::limits::get().dav_xml_depth);
        }
    }
}
