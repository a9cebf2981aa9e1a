//! WBXML with ActiveSync's code pages (`bureau_wbxml::activesync`), nested at most
//! `limits.wbxml_depth` deep.

pub use bureau_wbxml::activesync::VOCABULARY;
pub use bureau_wbxml::activesync::page;
pub use bureau_wbxml::{Element, Node, WbxmlError};

pub fn decode(bytes: &[u8]) -> Result<Element, WbxmlError> {
    bureau_wbxml::decode(&VOCABULARY, bytes, bureau_core::limits::get().wbxml_depth)
}

pub fn encode(root: &Element) -> Result<Vec<u8>, WbxmlError> {
    bureau_wbxml::encode(&VOCABULARY, root)
}

/// The document as XML (libwbxml's wbxml2xml form), for logs and tests.
pub fn to_xml(root: &Element) -> String {
    bureau_wbxml::to_xml(&VOCABULARY, root)
}
