//! SyncML's vocabularies against libwbxml (Debian's libwbxml2-utils): every tag of every
//! page written as XML, encoded by xml2wbxml, read here to the same names; and a message
//! written here read back by wbxml2xml.

use bureau_wbxml::syncml::{DEVINF_1_2, DEVINF_PAGES, PAGES, SYNCML_1_2, page};
use bureau_wbxml::{Element, MAX_DEPTH, Page, Vocabulary};
use std::path::Path;
use std::process::Command;

fn tool(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (make test installs libwbxml2-utils)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const SYNCML_DOCTYPE: &str = "<!DOCTYPE SyncML PUBLIC \"-//SYNCML//DTD SyncML 1.2//EN\" \"http://www.openmobilealliance.org/tech/DTD/OMA-TS-SyncML_RepPro_DTD-V1_2.dtd\">";
const DEVINF_DOCTYPE: &str = "<!DOCTYPE DevInf PUBLIC \"-//SYNCML//DTD DevInf 1.2//EN\" \"http://www.openmobilealliance.org/tech/DTD/OMA-SyncML-Device_Information-DTD-1.2.dtd\">";

/// xml2wbxml's bytes for a document.
fn libwbxml_encode(dir: &Path, doctype: &str, xml: &str) -> Vec<u8> {
    let doc = format!("<?xml version=\"1.0\"?>\n{doctype}\n{xml}");
    std::fs::write(dir.join("in.xml"), doc).unwrap();
    tool(dir, "xml2wbxml", &["-o", "out.wbxml", "in.xml"]);
    std::fs::read(dir.join("out.wbxml")).unwrap()
}

fn tags(p: &Page) -> Vec<&'static str> {
    p.tags.iter().copied().filter(|t| !t.is_empty()).collect()
}

/// Every tag of `pages` (page `on` of `vocab`) under `root`, through xml2wbxml, read here.
fn every_tag(
    vocab: &Vocabulary,
    doctype: &str,
    root: (&str, &str),
    inner: &str,
    pages: &[(u8, &Page)],
) {
    let dir = tempfile::tempdir().unwrap();
    for (n, p) in pages {
        // The root's own tag is checked as the root (libwbxml takes a nested DevInf for the
        // start of another document).
        let names: Vec<&str> = tags(p).into_iter().filter(|t| *t != root.0).collect();
        let children: String = names
            .iter()
            .map(|t| format!("<{t} xmlns=\"{}\"/>", p.namespace))
            .collect();
        // The first page's tags directly under the root; the others in a Meta.
        let xml = if *n == 0 {
            format!("<{} xmlns=\"{}\">{children}</{}>", root.0, root.1, root.0)
        } else {
            format!(
                "<{} xmlns=\"{}\"><{inner}>{children}</{inner}></{}>",
                root.0, root.1, root.0
            )
        };
        let bytes = libwbxml_encode(dir.path(), doctype, &xml);
        let doc = bureau_wbxml::decode(vocab, &bytes, MAX_DEPTH).unwrap();
        assert_eq!(doc.name, root.0);
        let parent = if *n == 0 {
            &doc
        } else {
            doc.child(inner).unwrap()
        };
        let read: Vec<&str> = parent.elements().map(|e| e.name).collect();
        assert_eq!(read, names, "page {n} ({})", p.namespace);
        assert!(parent.elements().all(|e| e.page == *n));
    }
}

#[test]
fn every_syncml_and_metinf_tag_as_libwbxml_writes_it() {
    every_tag(
        &SYNCML_1_2,
        SYNCML_DOCTYPE,
        ("SyncML", "SYNCML:SYNCML1.2"),
        "Meta",
        &[(page::SYNCML, &PAGES[0]), (page::METINF, &PAGES[1])],
    );
}

#[test]
fn every_devinf_tag_as_libwbxml_writes_it() {
    every_tag(
        &DEVINF_1_2,
        DEVINF_DOCTYPE,
        ("DevInf", "syncml:devinf"),
        "",
        &[(0, &DEVINF_PAGES[0])],
    );
}

#[test]
fn a_message_written_here_is_read_by_wbxml2xml() {
    let dir = tempfile::tempdir().unwrap();
    let msg = Element::new(page::SYNCML, "SyncML")
        .with(
            Element::new(page::SYNCML, "SyncHdr")
                .with_text("VerDTD", "1.2")
                .with(
                    Element::new(page::SYNCML, "Meta")
                        .with(Element::new(page::METINF, "MaxMsgSize").text("150000")),
                ),
        )
        .with(Element::new(page::SYNCML, "SyncBody").with(Element::new(page::SYNCML, "Final")));
    let bytes = bureau_wbxml::encode(&SYNCML_1_2, &msg).unwrap();
    std::fs::write(dir.path().join("in.wbxml"), bytes).unwrap();
    tool(
        dir.path(),
        "wbxml2xml",
        &["-m", "0", "-o", "out.xml", "in.wbxml"],
    );
    let xml = std::fs::read_to_string(dir.path().join("out.xml")).unwrap();
    assert!(
        xml.ends_with("<SyncML xmlns=\"SYNCML:SYNCML1.2\"><SyncHdr><VerDTD>1.2</VerDTD><Meta><MaxMsgSize xmlns=\"syncml:metinf\">150000</MaxMsgSize></Meta></SyncHdr><SyncBody><Final/></SyncBody></SyncML>"),
        "{xml}"
    );
}
