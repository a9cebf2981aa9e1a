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
    /// Dated journal entries (Outlook's Journal): VJOURNALs in the user's "journal"
    /// collection, sent and taken as iCalendar.
    Journal,
    /// A mailbox's messages (mail.rs).
    Mail,
    /// The files of the user's home folder (files.rs).
    Files,
}

/// The mail folder "Mail" stands for.
pub const INBOX: &str = "INBOX";

impl Kind {
    /// The names devices use for it (compared without case, "./" and a trailing "/").
    pub fn of_name(name: &str) -> Option<Kind> {
        match name {
            "contacts" | "contact" | "card" | "scard" | "addressbook" => Some(Kind::Contacts),
            "events" | "event" | "calendar" | "cal" | "scal" => Some(Kind::Events),
            "tasks" | "task" | "stask" | "todo" => Some(Kind::Tasks),
            "notes" | "note" | "snote" | "memo" | "memos" => Some(Kind::Notes),
            "journal" | "journals" => Some(Kind::Journal),
            "mail" | "email" | "inbox" => Some(Kind::Mail),
            "files" | "file" | "briefcase" | "sfile" => Some(Kind::Files),
            _ if mail_folder(name).is_some() => Some(Kind::Mail),
            _ => None,
        }
    }

    /// The datastore a collection is, by its own name.
    pub fn of_collection(kind: CollectionKind) -> Option<Kind> {
        match kind {
            CollectionKind::AddressBook => Some(Kind::Contacts),
            CollectionKind::Calendar => Some(Kind::Events),
            CollectionKind::TaskList => Some(Kind::Tasks),
            CollectionKind::Notes => Some(Kind::Notes),
            CollectionKind::Mailbox => Some(Kind::Mail),
            CollectionKind::ScheduleInbox => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Contacts => "text/vcard",
            Kind::Events | Kind::Tasks => "text/calendar",
            Kind::Notes => "text/plain",
            Kind::Journal => "text/calendar",
            Kind::Mail => "application/vnd.omads-email+xml",
            Kind::Files => crate::files::CONTENT_TYPE,
        }
    }

    /// The collections that hold it, the preferred kind first, and the default's name.
    /// The older format a device may prefer for it (vCard 2.1, vCalendar 1.0).
    pub fn legacy_type(self) -> Option<&'static str> {
        match self {
            Kind::Contacts => Some("text/x-vcard"),
            Kind::Events | Kind::Tasks => Some("text/x-vcalendar"),
            Kind::Mail => Some("message/rfc822"),
            Kind::Notes | Kind::Journal | Kind::Files => None,
        }
    }

    /// A device may sync it as folders (SyncML 1.2 hierarchical sync, session/tree.rs):
    /// the kinds of which a user has several collections.
    pub fn has_folders(self) -> bool {
        matches!(
            self,
            Kind::Mail | Kind::Contacts | Kind::Events | Kind::Tasks | Kind::Notes
        )
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
            Kind::Journal => (&[CollectionKind::Notes], JOURNAL),
            Kind::Mail => (&[CollectionKind::Mailbox], INBOX),
            Kind::Files => (&[], "files"),
        }
    }

    pub fn component(self) -> Option<&'static str> {
        match self {
            Kind::Contacts | Kind::Mail | Kind::Files => None,
            Kind::Events => Some("VEVENT"),
            Kind::Tasks => Some("VTODO"),
            Kind::Notes | Kind::Journal => Some("VJOURNAL"),
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
            Kind::Journal => ct == "text/calendar",
            Kind::Files => ct == crate::files::CONTENT_TYPE || ct == crate::files::FOLDER_TYPE,
            Kind::Mail => matches!(
                ct.as_str(),
                "application/vnd.omads-email+xml" | "message/rfc822" | "text/plain"
            ),
        }
    }
}

/// The journal's collection, made on first use.
pub const JOURNAL: &str = "journal";

/// The mail folder a datastore name gives after "mail/" ("mail/Sent"), if it does.
pub fn mail_folder(name: &str) -> Option<&str> {
    let rest = name
        .strip_prefix("mail/")
        .or_else(|| name.strip_prefix("email/"))?;
    (!rest.is_empty()).then_some(rest)
}
