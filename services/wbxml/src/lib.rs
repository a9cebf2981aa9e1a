//! WAP Binary XML (WBXML 1.1 to 1.3) as the sync protocols use it: UTF-8, tags from a
//! [`Vocabulary`]'s code pages, inline and string-table strings, opaque data, no
//! attributes. ActiveSync (MS-ASWBXML) and SyncML (OMA DS) each bring their vocabulary.
//! Sans I/O: bytes in, a tree out, and back.
//!
//! Decoding is strict and bounded: an unknown page or tag, an attribute, a token the
//! vocabulary does not use, text that is not UTF-8, nesting deeper than the caller's
//! bound, or input that ends early is an error naming the offset, never a panic.

pub mod activesync;
pub mod syncml;

/// A code page: the namespace it stands for and its tag names by token, from [`FIRST`].
pub struct Page {
    pub namespace: &'static str,
    pub tags: &'static [&'static str],
}

/// The first tag token of every page (0x00 to 0x04 are WBXML's global tokens).
pub const FIRST: u8 = 0x05;

/// A document type's public identifier, as the header gives it.
pub enum PublicId {
    /// A registered number (1: unknown).
    Known(u32),
    /// A formal public identifier, written as the string table's first string.
    Text(&'static str),
}

/// What a protocol's documents are made of: its code pages, by number, and the header it
/// writes.
pub struct Vocabulary {
    /// For errors ("not used in ActiveSync").
    pub name: &'static str,
    /// The WBXML version written (0x03 is 1.3).
    pub version: u8,
    pub public_id: PublicId,
    pub pages: &'static [Page],
}

/// Documents Bureau writes nest no deeper (ActiveSync documents nest about a dozen
/// levels); what it reads is bounded by `limits.wbxml_depth`, at most this.
pub const MAX_DEPTH: usize = 64;

const SWITCH_PAGE: u8 = 0x00;
const END: u8 = 0x01;
const STR_I: u8 = 0x03;
const STR_T: u8 = 0x83;
const OPAQUE: u8 = 0xC3;
const WITH_CONTENT: u8 = 0x40;
const WITH_ATTRIBUTES: u8 = 0x80;
/// UTF-8, as IANA's MIBenum.
const UTF8: u32 = 106;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("WBXML at byte {offset}: {reason}")]
pub struct WbxmlError {
    pub offset: usize,
    pub reason: String,
}

/// An element: its code page, its tag name (from the page's table) and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub page: u8,
    pub name: &'static str,
    pub children: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
    Opaque(Vec<u8>),
}

impl Vocabulary {
    /// The token of a tag on a page.
    pub fn token(&self, page: u8, name: &str) -> Option<u8> {
        let p = self.pages.get(page as usize)?;
        p.tags
            .iter()
            .position(|t| !t.is_empty() && *t == name)
            .map(|i| i as u8 + FIRST)
    }

    /// The name of a token on a page.
    pub fn tag(&self, page: u8, token: u8) -> Option<&'static str> {
        let i = token.checked_sub(FIRST)? as usize;
        self.pages
            .get(page as usize)?
            .tags
            .get(i)
            .copied()
            .filter(|t| !t.is_empty())
    }

    /// The page of a namespace ("AirSync", "Email", ...).
    pub fn page_of(&self, namespace: &str) -> Option<u8> {
        self.pages
            .iter()
            .position(|p| p.namespace == namespace)
            .map(|i| i as u8)
    }

    /// The header of a document: version, public identifier, charset, string table.
    fn header(&self) -> Vec<u8> {
        let mut out = vec![self.version];
        match self.public_id {
            PublicId::Known(n) => {
                mb_u32(&mut out, n);
                mb_u32(&mut out, UTF8);
                mb_u32(&mut out, 0);
            }
            PublicId::Text(s) => {
                // 0, then the identifier's offset in the string table: its first string.
                out.extend([0, 0]);
                mb_u32(&mut out, UTF8);
                mb_u32(&mut out, s.len() as u32 + 1);
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
        }
        out
    }
}

impl Element {
    /// An empty element. The name must be one of the page's tags (checked when encoded).
    pub fn new(page: u8, name: &'static str) -> Element {
        Element {
            page,
            name,
            children: Vec::new(),
        }
    }

    /// With a child element added.
    pub fn with(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// With a child element of the same page holding text.
    pub fn with_text(self, name: &'static str, text: impl Into<String>) -> Element {
        let page = self.page;
        self.with(Element::new(page, name).text(text))
    }

    /// With text added. Characters XML 1.0 cannot carry (NUL and the other C0 controls
    /// but tab, CR and LF) become U+FFFD: an inline string ends at its NUL, and devices
    /// parse what they get as XML. A mail holding them still syncs (issue 17).
    pub fn text(mut self, text: impl Into<String>) -> Element {
        let mut text: String = text.into();
        if text.chars().any(not_xml) {
            text = text
                .chars()
                .map(|c| if not_xml(c) { '\u{FFFD}' } else { c })
                .collect();
        }
        self.children.push(Node::Text(text));
        self
    }

    /// With opaque bytes added.
    pub fn opaque(mut self, data: Vec<u8>) -> Element {
        self.children.push(Node::Opaque(data));
        self
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element of this name (on any page).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// Every child element of this name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |e| e.name == name)
    }

    /// The text the element holds (its text children joined); opaque data as UTF-8 if it is.
    pub fn value(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Opaque(b) => out.push_str(&String::from_utf8_lossy(b)),
                Node::Element(_) => {}
            }
        }
        out
    }

    /// The text of the first child element of this name.
    pub fn child_value(&self, name: &str) -> Option<String> {
        self.child(name).map(Element::value)
    }
}

// ---- decoding ----

struct Reader<'a> {
    vocab: &'a Vocabulary,
    bytes: &'a [u8],
    at: usize,
    strings: &'a [u8],
    max_depth: usize,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, WbxmlError> {
        Err(WbxmlError {
            offset: self.at,
            reason: reason.into(),
        })
    }

    fn byte(&mut self) -> Result<u8, WbxmlError> {
        match self.bytes.get(self.at) {
            Some(b) => {
                self.at += 1;
                Ok(*b)
            }
            None => self.fail("the document ends early"),
        }
    }

    fn peek(&self) -> Result<u8, WbxmlError> {
        match self.bytes.get(self.at) {
            Some(b) => Ok(*b),
            None => self.fail("the document ends early"),
        }
    }

    /// A multi-byte unsigned integer (at most 32 bits).
    fn mb_u32(&mut self) -> Result<u32, WbxmlError> {
        let mut v: u32 = 0;
        for _ in 0..5 {
            let b = self.byte()?;
            if v > (u32::MAX >> 7) {
                return self.fail("a number over 32 bits");
            }
            v = (v << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail("a number over 32 bits")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WbxmlError> {
        match self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
        {
            Some(end) => {
                let s = &self.bytes[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => self.fail("the document ends early"),
        }
    }

    /// An inline string: UTF-8 up to its NUL.
    fn inline_string(&mut self) -> Result<String, WbxmlError> {
        let rest = &self.bytes[self.at..];
        let Some(len) = rest.iter().position(|b| *b == 0) else {
            return self.fail("a string without its end");
        };
        let s = std::str::from_utf8(&rest[..len])
            .map(str::to_string)
            .or_else(|_| self.fail("a string that is not UTF-8"))?;
        self.at += len + 1;
        Ok(s)
    }

    fn table_string(&mut self) -> Result<String, WbxmlError> {
        let index = self.mb_u32()? as usize;
        let rest = self.strings.get(index..).unwrap_or_default();
        let Some(len) = rest.iter().position(|b| *b == 0) else {
            return self.fail("a reference outside the string table");
        };
        std::str::from_utf8(&rest[..len])
            .map(str::to_string)
            .or_else(|_| self.fail("a string that is not UTF-8"))
    }
}

/// Reads a document of `vocab`, nested at most `max_depth` (and [`MAX_DEPTH`]) deep.
pub fn decode(vocab: &Vocabulary, bytes: &[u8], max_depth: usize) -> Result<Element, WbxmlError> {
    let mut r = Reader {
        vocab,
        bytes,
        at: 0,
        strings: &[],
        max_depth: max_depth.min(MAX_DEPTH),
    };
    let version = r.byte()?;
    if !(0x01..=0x03).contains(&version) {
        return r.fail(format!("version {version:#04x} is not WBXML 1.1 to 1.3"));
    }
    if r.mb_u32()? == 0 {
        // The public identifier is a string table reference.
        r.mb_u32()?;
    }
    let charset = r.mb_u32()?;
    if charset != UTF8 {
        return r.fail(format!("charset {charset} is not UTF-8 (106)"));
    }
    let table_len = r.mb_u32()? as usize;
    r.strings = r.take(table_len)?;
    let mut page = 0u8;
    // Switches before the root.
    while r.peek()? == SWITCH_PAGE {
        r.byte()?;
        page = r.byte()?;
    }
    let root = element(&mut r, &mut page, 0)?;
    if r.at != bytes.len() {
        return r.fail("bytes after the document's end");
    }
    Ok(root)
}

fn element(r: &mut Reader, page: &mut u8, depth: usize) -> Result<Element, WbxmlError> {
    if depth >= r.max_depth {
        return r.fail(format!("nested deeper than {}", r.max_depth));
    }
    let t = r.byte()?;
    if t & WITH_ATTRIBUTES != 0 {
        return r.fail(format!("attributes are not used in {}", r.vocab.name));
    }
    let Some(name) = r.vocab.tag(*page, t & 0x3F) else {
        let Some(p) = r.vocab.pages.get(*page as usize) else {
            return r.fail(format!("no code page {page}"));
        };
        return r.fail(format!(
            "no tag {:#04x} on code page {page} ({})",
            t & 0x3F,
            p.namespace
        ));
    };
    let mut e = Element::new(*page, name);
    if t & WITH_CONTENT == 0 {
        return Ok(e);
    }
    loop {
        match r.peek()? {
            END => {
                r.byte()?;
                return Ok(e);
            }
            SWITCH_PAGE => {
                r.byte()?;
                let p = r.byte()?;
                if r.vocab.pages.get(p as usize).is_none() {
                    return r.fail(format!("no code page {p}"));
                }
                *page = p;
            }
            STR_I => {
                r.byte()?;
                e.children.push(Node::Text(r.inline_string()?));
            }
            STR_T => {
                r.byte()?;
                e.children.push(Node::Text(r.table_string()?));
            }
            OPAQUE => {
                r.byte()?;
                let n = r.mb_u32()? as usize;
                e.children.push(Node::Opaque(r.take(n)?.to_vec()));
            }
            b if b & 0x3F < FIRST => {
                return r.fail(format!("token {b:#04x} is not used in {}", r.vocab.name));
            }
            _ => e.children.push(Node::Element(element(r, page, depth + 1)?)),
        }
    }
}

// ---- encoding ----

/// A character XML 1.0 does not allow in text.
fn not_xml(c: char) -> bool {
    c < ' ' && !matches!(c, '\t' | '\n' | '\r')
}

/// Writes a document of `vocab`. A tag its page does not have, or text holding a NUL, is
/// an error.
pub fn encode(vocab: &Vocabulary, root: &Element) -> Result<Vec<u8>, WbxmlError> {
    let mut out = vocab.header();
    let mut page = 0u8;
    write(vocab, &mut out, &mut page, root, 0)?;
    Ok(out)
}

fn write(
    vocab: &Vocabulary,
    out: &mut Vec<u8>,
    page: &mut u8,
    e: &Element,
    depth: usize,
) -> Result<(), WbxmlError> {
    let fail = |out: &Vec<u8>, reason: String| WbxmlError {
        offset: out.len(),
        reason,
    };
    if depth >= MAX_DEPTH {
        return Err(fail(out, format!("nested deeper than {MAX_DEPTH}")));
    }
    let t = vocab.token(e.page, e.name).ok_or_else(|| {
        fail(
            out,
            format!("{} is not a tag of code page {}", e.name, e.page),
        )
    })?;
    if e.page != *page {
        out.extend([SWITCH_PAGE, e.page]);
        *page = e.page;
    }
    if e.children.is_empty() {
        out.push(t);
        return Ok(());
    }
    out.push(t | WITH_CONTENT);
    for n in &e.children {
        match n {
            Node::Element(c) => write(vocab, out, page, c, depth + 1)?,
            Node::Text(s) => {
                if s.contains('\0') {
                    return Err(fail(out, "text holds a NUL".into()));
                }
                out.push(STR_I);
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            Node::Opaque(b) => {
                out.push(OPAQUE);
                mb_u32(out, b.len() as u32);
                out.extend_from_slice(b);
            }
        }
    }
    out.push(END);
    Ok(())
}

fn mb_u32(out: &mut Vec<u8>, mut v: u32) {
    let mut buf = [0u8; 5];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = (v & 0x7F) as u8 | if i == buf.len() - 1 { 0 } else { 0x80 };
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

// ---- XML, for people (logs, tests) ----

/// The document as XML, one namespace declaration where the code page changes and opaque
/// data in base64 (the form libwbxml's wbxml2xml writes, `xmlns="Page:"`).
pub fn to_xml(vocab: &Vocabulary, root: &Element) -> String {
    let mut out = String::new();
    xml(vocab, &mut out, root, None);
    out
}

fn xml(vocab: &Vocabulary, out: &mut String, e: &Element, parent_page: Option<u8>) {
    out.push('<');
    out.push_str(e.name);
    if parent_page != Some(e.page) {
        out.push_str(&format!(
            " xmlns=\"{}:\"",
            vocab
                .pages
                .get(e.page as usize)
                .map_or("?", |p| p.namespace)
        ));
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for n in &e.children {
        match n {
            Node::Element(c) => xml(vocab, out, c, Some(e.page)),
            Node::Text(t) => escape(out, t),
            Node::Opaque(b) => {
                use base64::Engine;
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            }
        }
    }
    out.push_str("</");
    out.push_str(e.name);
    out.push('>');
}

fn escape(out: &mut String, t: &str) {
    out.push_str(&quick_xml::escape::escape(t));
}

#[cfg(test)]
mod tests {
    use super::activesync::{PAGES, VOCABULARY as AS, page};
    use super::*;

    fn decode(b: &[u8]) -> Result<Element, WbxmlError> {
        super::decode(&AS, b, MAX_DEPTH)
    }
    fn encode(e: &Element) -> Result<Vec<u8>, WbxmlError> {
        super::encode(&AS, e)
    }
    fn token(page: u8, name: &str) -> Option<u8> {
        AS.token(page, name)
    }
    fn tag(page: u8, token: u8) -> Option<&'static str> {
        AS.tag(page, token)
    }

    /// MS-ASWBXML 3.1.1's example: a Sync response adding a contact.
    const SPEC_EXAMPLE: &[u8] = b"\x03\x01\x6a\x00\x45\x5c\x4f\x50\x03Contacts\x00\x01\x4b\x032\x00\x01\x52\x032\x00\x01\x4e\x031\x00\x01\x56\x47\x4d\x032:1\x00\x01\x5d\x00\x11\x4a\x46\x031\x00\x01\x4c\x030\x00\x01\x4d\x031\x00\x01\x01\x00\x01\x5e\x03Funk, Don\x00\x01\x5f\x03Don\x00\x01\x69\x03Funk\x00\x01\x00\x11\x56\x031\x00\x01\x01\x01\x01\x01\x01\x01";

    #[test]
    fn the_specifications_example_both_ways() {
        let doc = decode(SPEC_EXAMPLE).unwrap();
        assert_eq!(doc.name, "Sync");
        let add = doc
            .child("Collections")
            .and_then(|c| c.child("Collection"))
            .and_then(|c| c.child("Commands"))
            .and_then(|c| c.child("Add"))
            .unwrap();
        assert_eq!(add.child_value("ServerId").as_deref(), Some("2:1"));
        let data = add.child("ApplicationData").unwrap();
        assert_eq!(data.child_value("FileAs").as_deref(), Some("Funk, Don"));
        assert_eq!(data.child("FileAs").unwrap().page, page::CONTACTS);
        assert_eq!(data.child("Body").unwrap().page, page::AIRSYNCBASE);
        assert_eq!(encode(&doc).unwrap(), SPEC_EXAMPLE);

        // Built by hand, it is the same bytes.
        let built = Element::new(page::AIRSYNC, "Sync").with(
            Element::new(page::AIRSYNC, "Collections").with(
                Element::new(page::AIRSYNC, "Collection")
                    .with_text("Class", "Contacts")
                    .with_text("SyncKey", "2")
                    .with_text("CollectionId", "2")
                    .with_text("Status", "1")
                    .with(
                        Element::new(page::AIRSYNC, "Commands").with(
                            Element::new(page::AIRSYNC, "Add")
                                .with_text("ServerId", "2:1")
                                .with(
                                    Element::new(page::AIRSYNC, "ApplicationData")
                                        .with(
                                            Element::new(page::AIRSYNCBASE, "Body")
                                                .with_text("Type", "1")
                                                .with_text("EstimatedDataSize", "0")
                                                .with_text("Truncated", "1"),
                                        )
                                        .with(
                                            Element::new(page::CONTACTS, "FileAs")
                                                .text("Funk, Don"),
                                        )
                                        .with(Element::new(page::CONTACTS, "FirstName").text("Don"))
                                        .with(Element::new(page::CONTACTS, "LastName").text("Funk"))
                                        .with(
                                            Element::new(page::AIRSYNCBASE, "NativeBodyType")
                                                .text("1"),
                                        ),
                                ),
                        ),
                    ),
            ),
        );
        assert_eq!(built, doc);
        assert!(to_xml(&AS, &doc).starts_with(
            "<Sync xmlns=\"AirSync:\"><Collections><Collection><Class>Contacts</Class>"
        ));
    }

    #[test]
    fn tables_are_consistent() {
        for (n, p) in PAGES.iter().enumerate() {
            assert!(p.tags.len() <= 0x3F - 4, "{}", p.namespace);
            let mut seen = std::collections::HashSet::new();
            for (i, t) in p.tags.iter().enumerate().filter(|(_, t)| !t.is_empty()) {
                assert!(seen.insert(*t), "{} twice on {}", t, p.namespace);
                let tok = i as u8 + FIRST;
                assert_eq!(token(n as u8, t), Some(tok));
                assert_eq!(tag(n as u8, tok), Some(*t));
            }
            assert_eq!(AS.page_of(p.namespace), Some(n as u8));
        }
        assert_eq!(token(page::FOLDER_HIERARCHY, "FolderSync"), Some(0x16));
        assert_eq!(token(page::PING, "HeartbeatInterval"), Some(0x08));
        assert_eq!(token(page::AIRSYNCBASE, "InstanceId"), Some(0x2D));
        assert_eq!(token(page::FIND, "Picture"), Some(0x22));
        assert_eq!(tag(page::SEARCH, 0x06), None);
    }

    #[test]
    fn opaque_data_and_long_lengths() {
        let big = vec![0xABu8; 200_000];
        let doc = Element::new(page::COMPOSE_MAIL, "SendMail")
            .with(Element::new(page::COMPOSE_MAIL, "Mime").opaque(big.clone()));
        let bytes = encode(&doc).unwrap();
        // The page switch comes first, then the length as a multi-byte integer.
        assert_eq!(
            &bytes[..8],
            &[0x03, 0x01, 0x6A, 0x00, 0x00, 0x15, 0x45, 0x50]
        );
        assert_eq!(&bytes[8..12], &[0xC3, 0x8C, 0x9A, 0x40]);
        let back = decode(&bytes).unwrap();
        assert_eq!(back, doc);
        assert_eq!(
            back.child("Mime").unwrap().children,
            vec![Node::Opaque(big)]
        );
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let err = |b: &[u8]| decode(b).unwrap_err().reason;
        assert!(err(b"").contains("ends early"));
        assert!(err(b"\x03\x01\x6a\x00").contains("ends early"));
        assert!(err(b"\x03\x01\x04\x00\x45\x01").contains("not UTF-8"));
        assert!(err(b"\x09\x01\x6a\x00\x45\x01").contains("version"));
        assert!(err(b"\x03\x01\x6a\x00\x00\x1a\x45\x01").contains("no code page"));
        assert!(err(b"\x03\x01\x6a\x00\x3f").contains("no tag 0x3f"));
        assert!(err(b"\x03\x01\x6a\x00\xc5\x01").contains("attributes"));
        assert!(err(b"\x03\x01\x6a\x00\x45\x03abc").contains("without its end"));
        assert!(err(b"\x03\x01\x6a\x00\x45\x03\xff\x00\x01").contains("not UTF-8"));
        assert!(err(b"\x03\x01\x6a\x00\x45\x02\x01").contains("not used"));
        assert!(err(b"\x03\x01\x6a\x00\x45\xc3\x90\x80\x80\x80\x00").contains("32 bits"));
        assert!(err(b"\x03\x01\x6a\x00\x45\xc3\x8f\xff\xff\xff\xff\x7f").contains("32 bits"));
        assert!(err(b"\x03\x01\x6a\x00\x45\xc3\x8f\xff\xff\xff\x7f").contains("ends early"));
        assert!(err(b"\x03\x01\x6a\x00\x45\xc3\x05ab\x01").contains("ends early"));
        assert!(err(b"\x03\x01\x6a\x00\x45\x01\x01").contains("after the document"));
        let mut deep = b"\x03\x01\x6a\x00".to_vec();
        deep.extend(std::iter::repeat_n(0x5Cu8, 100));
        assert!(err(&deep).contains("deeper"));
        // Every cut of a good document, and every byte changed, is refused or read: no panic.
        let good =
            encode(&Element::new(page::FOLDER_HIERARCHY, "FolderSync").with_text("SyncKey", "0"))
                .unwrap();
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err());
        }
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            let mut b = SPEC_EXAMPLE.to_vec();
            for _ in 0..3 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % b.len();
                b[i] = (x >> 8) as u8;
            }
            let _ = decode(&b);
        }
    }

    #[test]
    fn encoding_refuses_what_it_cannot_write() {
        let bad = Element::new(page::AIRSYNC, "NoSuchTag");
        assert!(encode(&bad).unwrap_err().reason.contains("not a tag"));
        let mut nul = Element::new(page::AIRSYNC, "Sync");
        nul.children.push(Node::Text("a\0b".into()));
        assert!(encode(&nul).unwrap_err().reason.contains("NUL"));
    }

    /// Defect 5 of issue 17: a NUL in a mail made every Sync of its folder fail.
    #[test]
    fn text_that_xml_cannot_carry_is_replaced() {
        let e = Element::new(page::AIRSYNC, "Sync").text("a\0b\x01c\td");
        let back = decode(&encode(&e).unwrap()).unwrap();
        assert_eq!(back.value(), "a\u{FFFD}b\u{FFFD}c\td");
    }
}

/// Property tests: any bytes decode or fail with an offset, never panic; what decodes
/// encodes back to bytes that decode to the same document.
#[cfg(test)]
mod fuzz {
    use super::activesync::VOCABULARY as AS;
    use super::*;
    use proptest::prelude::*;

    fn decode(b: &[u8]) -> Result<Element, WbxmlError> {
        super::decode(&AS, b, MAX_DEPTH)
    }
    fn encode(e: &Element) -> Result<Vec<u8>, WbxmlError> {
        super::encode(&AS, e)
    }

    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(vec![SWITCH_PAGE, 0]),
            Just(vec![SWITCH_PAGE, 7]),
            Just(vec![SWITCH_PAGE, 200]),
            Just(vec![STR_I, b'a', 0]),
            Just(vec![OPAQUE, 3, 1, 2, 3]),
            Just(vec![OPAQUE, 0xFF, 0xFF]),
            Just(vec![END]),
            (0x05u8..0x40).prop_map(|t| vec![t | WITH_CONTENT]),
            (0x05u8..0x40).prop_map(|t| vec![t]),
            prop::collection::vec(any::<u8>(), 0..4),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes(raw in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&raw);
        }

        #[test]
        fn token_shaped(tokens in prop::collection::vec(token(), 0..100)) {
            let mut raw = AS.header();
            raw.extend(tokens.concat());
            if let Ok(doc) = decode(&raw) {
                let again = encode(&doc).expect("a decoded document encodes");
                prop_assert_eq!(decode(&again).expect("re-decodes"), doc);
            }
        }
    }
}
