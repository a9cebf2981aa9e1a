//! The server's device information (OMA DS Device Information 1.2): what it is, the
//! datastores it offers and the formats and sync types each takes.

use crate::codec::{DEVINF, Version};
use bureau_wbxml::Element;

fn e(name: &'static str) -> Element {
    Element::new(DEVINF, name)
}

fn t(name: &'static str, value: &str) -> Element {
    e(name).text(value)
}

/// The server's DevInf, as a `Results` or `Put` carries it in its Data.
pub fn server(version: Version) -> Element {
    let verdtd = if version == Version::V1_2 {
        "1.2"
    } else {
        "1.1"
    };
    let mut d = e("DevInf")
        .with(t("VerDTD", verdtd))
        .with(t("Man", "Bureau"))
        .with(t("Mod", "Bureau"))
        .with(t("SwV", env!("CARGO_PKG_VERSION")))
        .with(t("DevID", "bureau"))
        .with(t("DevTyp", "server"))
        .with(e("UTC"))
        .with(e("SupportNumberOfChanges"));
    let vcard = (("text/vcard", "3.0"), ("text/x-vcard", "2.1"));
    let ical = (("text/calendar", "2.0"), ("text/calendar", "2.0"));
    for (names, display, ((ct, ver), other)) in [
        (&["contacts", "addressbook", "card"][..], "Contacts", vcard),
        (&["calendar", "events"][..], "Calendar", ical),
        (&["tasks", "todo"][..], "Tasks", ical),
    ] {
        for name in names {
            let mut sync = e("SyncCap");
            // Two-way, slow, one-way and refresh both ways.
            for n in 1..=7 {
                sync = sync.with(t("SyncType", &n.to_string()));
            }
            d = d.with(
                e("DataStore")
                    .with(t("SourceRef", name))
                    .with(t("DisplayName", display))
                    .with(t("MaxGUIDSize", "32"))
                    .with(e("Rx-Pref").with(t("CTType", ct)).with(t("VerCT", ver)))
                    .with(e("Rx").with(t("CTType", other.0)).with(t("VerCT", other.1)))
                    .with(e("Tx-Pref").with(t("CTType", ct)).with(t("VerCT", ver)))
                    .with(e("Tx").with(t("CTType", other.0)).with(t("VerCT", other.1)))
                    .with(sync),
            );
        }
    }
    d
}
