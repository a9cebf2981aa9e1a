//! Search (MS-ASCMD 2.2.1.16): the company directory (enabled users) by name, address or
//! alias prefix, or the user's mail (find.rs).

use super::find::{gal, search_mailbox};
use crate::formats::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_store::StoreError;

/// Search: the GAL from the directory, or the user's mail (find.rs).
pub async fn search(
    eas: &ActiveSync,
    cx: &Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let search = |s: &str| Element::new(page::SEARCH, "Search").with_text("Status", s);
    let Some(store) = doc
        .filter(|d| d.name == "Search")
        .and_then(|d| d.child("Store").cloned())
    else {
        return Ok(document(&search("2")));
    };
    let name = store.child_value("Name").unwrap_or_default();
    let respond =
        |s: Element| document(&search("1").with(Element::new(page::SEARCH, "Response").with(s)));
    if name.eq_ignore_ascii_case("Mailbox") {
        return Ok(respond(search_mailbox(eas, cx, &store)?));
    }
    let answer = |status: &str| Element::new(page::SEARCH, "Store").with_text("Status", status);
    if !name.eq_ignore_ascii_case("GAL") {
        return Ok(respond(answer("3")));
    }
    let query = store.child_value("Query").unwrap_or_default();
    let (from, to) = store
        .child("Options")
        .and_then(|o| o.child_value("Range"))
        .and_then(|r| {
            let (a, b) = r.trim().split_once('-')?;
            Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?))
        })
        .filter(|(a, b)| a <= b)
        .unwrap_or((0, 99));
    if query.trim().is_empty() {
        return Ok(respond(answer("2")));
    }
    let (results, total) = gal(eas, &query, from, to)?;
    let shown = results.len();
    let mut s = answer("1");
    for r in results {
        s = s.with(Element::new(page::SEARCH, "Result").with(r));
    }
    if shown > 0 {
        s = s.with_text("Range", format!("{from}-{}", from + shown - 1));
    }
    Ok(respond(s.with_text("Total", total.to_string())))
}
