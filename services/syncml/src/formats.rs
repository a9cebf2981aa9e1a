//! The formats devices send that the store does not keep as they are: a plain-text note
//! (what phones and SyncEvolution's memos send) is kept as an iCalendar VJOURNAL, as
//! CalDAV and ActiveSync's Notes keep notes.
//!
//! The note's first line is its SUMMARY and the whole text its DESCRIPTION; read back, a
//! DESCRIPTION that does not start with the SUMMARY gets it as its first line.

use crate::merge::Caps;
use bureau_groupware::contentline::{Comp, esc, unescape};

/// A device's plain-text note as a VCALENDAR holding one VJOURNAL.
pub fn note_from_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let text = text.trim_end_matches('\n');
    let summary = text.lines().next().unwrap_or("").trim();
    let mut journal = Comp::new("VJOURNAL");
    journal
        .props
        .push(format!("UID:{:032x}", rand::random::<u128>()));
    journal.props.push(format!(
        "DTSTAMP:{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    journal.props.push(format!("SUMMARY:{}", esc(summary)));
    journal.props.push(format!("DESCRIPTION:{}", esc(text)));
    let mut cal = Comp::new("VCALENDAR");
    cal.props.push("VERSION:2.0".into());
    cal.props.push("PRODID:-//Bureau//SyncML//EN".into());
    cal.subs.push(journal);
    cal.text()
}

/// What a device holding plain-text notes holds of a VJOURNAL.
pub fn note_caps() -> Caps {
    Caps::of([
        "BEGIN:VCALENDAR",
        "BEGIN:VJOURNAL",
        "SUMMARY",
        "DESCRIPTION",
    ])
}

/// A stored VJOURNAL as a plain-text note; None when the text holds none.
pub fn note_to_text(ical: &str) -> Option<String> {
    let cal = Comp::parse(ical)?;
    let j = cal.subs.iter().find(|s| s.name == "VJOURNAL")?;
    let value = |name| j.get(name).map(|l| unescape(&l.value)).unwrap_or_default();
    let (summary, description) = (value("SUMMARY"), value("DESCRIPTION"));
    Some(if description.starts_with(&summary) {
        description
    } else if description.is_empty() {
        summary
    } else {
        format!("{summary}\n{description}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_goes_in_as_a_journal_and_comes_back_the_same() {
        let text = "Shopping; milk, eggs\nand \\ bread\n";
        let ical = note_from_text(text);
        bureau_groupware::object::check(
            bureau_groupware::object::ObjectKind::Calendar,
            ical.as_bytes(),
        )
        .unwrap();
        assert!(
            ical.contains("SUMMARY:Shopping\\; milk\\, eggs\r\n"),
            "{ical}"
        );
        assert_eq!(note_to_text(&ical).unwrap(), text.trim_end());
        // A journal written elsewhere, its description without the summary.
        let other = "BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:1\r\nSUMMARY:Title\r\n\
            DESCRIPTION:Body\\nmore\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n";
        assert_eq!(note_to_text(other).unwrap(), "Title\nBody\nmore");
    }
}
