//! What a datastore holds, the names devices give it, and the formats and collections
//! that go with it.

use bureau_store::CollectionKind;

/// What a datastore holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    Contacts,
    Events,
    Tasks,
    /// VJOURNALs, which devices send and take as plain text (or as iCalendar).
    Notes,
}

impl Kind {
    /// The names devices use for it (compared without case, "./" and a trailing "/").
    pub fn of_name(name: &str) -> Option<Kind> {
        match name {
            "contacts" | "contact" | "card" | "scard" | "addressbook" => Some(Kind::Contacts),
            "events" | "event" | "calendar" | "cal" | "scal" => Some(Kind::Events),
            "tasks" | "task" | "stask" | "todo" => Some(Kind::Tasks),
            "notes" | "note" | "snote" | "memo" | "memos" | "journal" => Some(Kind::Notes),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Contacts => "text/vcard",
            Kind::Events | Kind::Tasks => "text/calendar",
            Kind::Notes => "text/plain",
        }
    }

    /// The collections that hold it, the preferred kind first, and the default's name.
    /// The older format a device may prefer for it (vCard 2.1, vCalendar 1.0).
    pub fn legacy_type(self) -> Option<&'static str> {
        match self {
            Kind::Contacts => Some("text/x-vcard"),
            Kind::Events | Kind::Tasks => Some("text/x-vcalendar"),
            Kind::Notes => None,
        }
    }

    pub fn collections(self) -> (&'static [CollectionKind], &'static str) {
        match self {
            Kind::Contacts => (&[CollectionKind::AddressBook], "contacts"),
            Kind::Events => (&[CollectionKind::Calendar], "calendar"),
            // A task list, else the calendar (it holds VTODOs too).
            Kind::Tasks => (
                &[CollectionKind::TaskList, CollectionKind::Calendar],
                "calendar",
            ),
            Kind::Notes => (&[CollectionKind::Notes], "notes"),
        }
    }

    pub fn component(self) -> Option<&'static str> {
        match self {
            Kind::Contacts => None,
            Kind::Events => Some("VEVENT"),
            Kind::Tasks => Some("VTODO"),
            Kind::Notes => Some("VJOURNAL"),
        }
    }

    pub fn accepts(self, content_type: &str) -> bool {
        let ct = content_type.to_ascii_lowercase();
        match self {
            Kind::Contacts => matches!(
                ct.as_str(),
                "text/vcard" | "text/x-vcard" | "text/directory"
            ),
            Kind::Events | Kind::Tasks => ct == "text/calendar" || ct == "text/x-vcalendar",
            Kind::Notes => ct == "text/plain" || ct == "text/calendar",
        }
    }
}
