//! The Notes class (MS-ASNOTE) from VJOURNALs; a device's new or changed note is made and
//! edited as a task is (tasks.rs `new` and `change`, with VJOURNAL).

use super::calendar::{View, Zones, categories};
use super::tasks::{long, main_of, text_of, utc_of};
use crate::formats::body::{BodyPreference, plain_body};
use crate::formats::wbxml::{Element, page};
use bureau_groupware::contentline::Comp;

/// A stored VJOURNAL as the Notes class's ApplicationData.
pub fn note_data(text: &str, v: &View, pref: &BodyPreference) -> Option<Element> {
    let vcal = Comp::parse(text)?;
    let zones = Zones::of(text);
    let n = main_of(&vcal, "VJOURNAL")?;
    let e = |name: &'static str| Element::new(page::NOTES, name);
    let mut d = Element::new(page::AIRSYNC, "ApplicationData")
        .with(e("Subject").text(text_of(n, "SUMMARY").unwrap_or_default()));
    if let Some(body) = text_of(n, "DESCRIPTION") {
        d = d.with(plain_body(&body, pref));
    }
    d = d.with(e("MessageClass").text("IPM.StickyNote"));
    if let Some(m) =
        utc_of(&zones, n, "LAST-MODIFIED", v).or_else(|| utc_of(&zones, n, "DTSTAMP", v))
    {
        d = d.with(e("LastModifiedDate").text(long(m)));
    }
    Some(categories(n, page::NOTES, d))
}
