//! What every data class sends the same way (MS-ASAIRSBASE, MS-ASDTYPE): the body the
//! device prefers, cut to its size, and ActiveSync's date form.

use crate::formats::wbxml::{Element, page};

/// What the device asked for in Options (or a Fetch's Options).
#[derive(Clone, Debug, Default)]
pub struct BodyPreference {
    /// 1 plain text, 2 HTML, 4 MIME; in the device's order.
    pub types: Vec<(u8, Option<usize>)>,
    /// MIMESupport: 0 never MIME, 1 for S/MIME only, 2 always when asked.
    pub mime_support: u8,
}

impl BodyPreference {
    pub fn from_options(options: Option<&Element>) -> BodyPreference {
        let Some(o) = options else {
            return BodyPreference::default();
        };
        let types = o
            .children_named("BodyPreference")
            .filter_map(|b| {
                let t = b.child_value("Type")?.trim().parse().ok()?;
                let size = b
                    .child_value("TruncationSize")
                    .and_then(|s| s.trim().parse().ok());
                Some((t, size))
            })
            .collect();
        BodyPreference {
            types,
            mime_support: o
                .child_value("MIMESupport")
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
        }
    }

    /// The body type to send and its truncation size.
    pub(crate) fn choose(&self, has_html: bool) -> (u8, Option<usize>) {
        for (t, size) in &self.types {
            match t {
                4 if self.mime_support == 2 => return (4, *size),
                2 if has_html => return (2, *size),
                1 => return (1, *size),
                _ => {}
            }
        }
        // Without a preference: what the message has, whole.
        (if has_html { 2 } else { 1 }, None)
    }
}

/// ActiveSync's date form: 2026-12-01T10:00:00.000Z.
pub fn eas_date(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// At most `limit` bytes of `s`, cut on a character boundary.
pub(crate) fn truncate(s: &str, limit: usize) -> &str {
    if s.len() <= limit {
        return s;
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A plain-text body (of an event, a task, a note) as AirSyncBase Body, cut to the size
/// the device asks for plain text.
pub fn plain_body(text: &str, pref: &BodyPreference) -> Element {
    let limit = pref
        .types
        .iter()
        .find(|(t, _)| *t == 1)
        .and_then(|(_, size)| *size);
    let cut = limit.map_or(text, |l| truncate(text, l));
    let mut b = Element::new(page::AIRSYNCBASE, "Body")
        .with_text("Type", "1")
        .with_text("EstimatedDataSize", text.len().to_string());
    if cut.len() < text.len() {
        b = b.with_text("Truncated", "1");
    }
    b.with_text("Data", cut)
}
