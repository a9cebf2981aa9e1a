//! The server's device information (OMA DS Device Information 1.2): what it is, the
//! datastores it offers and the formats and sync types each takes.

use crate::codec::{DEVINF, Version};
use crate::merge::Caps;
use bureau_wbxml::Element;
use std::collections::BTreeMap;

fn e(name: &'static str) -> Element {
    Element::new(DEVINF, name)
}

fn t(name: &'static str, value: &str) -> Element {
    e(name).text(value)
}

/// A datastore the server offers: its names, its display name, its content types and
/// versions (the preferred first), and its SIF type.
type Offered<'a> = (
    &'a [&'a str],
    &'a str,
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
);

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
        .with(e("SupportLargeObjs"))
        .with(e("SupportNumberOfChanges"));
    let vcard = [("text/vcard", "3.0"), ("text/x-vcard", "2.1")];
    let ical = [("text/calendar", "2.0"), ("text/x-vcalendar", "1.0")];
    let email = [
        ("application/vnd.omads-email+xml", "1.2"),
        ("message/rfc822", "1.0"),
    ];
    let datastores: [Offered; 7] = [
        (
            &["contacts", "addressbook", "card"],
            "Contacts",
            &vcard,
            Some("text/x-s4j-sifc"),
        ),
        (
            &["calendar", "events"],
            "Calendar",
            &ical,
            Some("text/x-s4j-sife"),
        ),
        (&["tasks", "todo"], "Tasks", &ical, Some("text/x-s4j-sift")),
        (
            &["notes", "memo"],
            "Notes",
            &[("text/plain", "1.0"), ("text/calendar", "2.0")],
            Some("text/x-s4j-sifn"),
        ),
        (&["journal"], "Journal", &[("text/calendar", "2.0")], None),
        (&["mail"], "Mail", &email, None),
        (
            &["files"],
            "Files",
            &[(crate::files::CONTENT_TYPE, "1.2")],
            None,
        ),
    ];
    for (names, display, types, sif) in datastores {
        let ((ct, ver), others) = (types[0], &types[1..]);
        let others = others.iter().copied().chain(sif.map(|s| (s, "1.1")));
        for name in names {
            let mut sync = e("SyncCap");
            // Two-way, slow, one-way and refresh both ways.
            for n in 1..=7 {
                sync = sync.with(t("SyncType", &n.to_string()));
            }
            let mut store = e("DataStore")
                .with(t("SourceRef", name))
                .with(t("DisplayName", display))
                .with(t("MaxGUIDSize", "32"))
                .with(e("Rx-Pref").with(t("CTType", ct)).with(t("VerCT", ver)));
            for (ct, ver) in others.clone() {
                store = store.with(e("Rx").with(t("CTType", ct)).with(t("VerCT", ver)));
            }
            store = store.with(e("Tx-Pref").with(t("CTType", ct)).with(t("VerCT", ver)));
            for (ct, ver) in others.clone() {
                store = store.with(e("Tx").with(t("CTType", ct)).with(t("VerCT", ver)));
            }
            // Folders (tree.rs): every datastore of collections.
            if version == Version::V1_2
                && crate::kind::Kind::of_name(name)
                    .is_some_and(|k| k.has_folders() || k == crate::kind::Kind::Files)
            {
                store = store.with(e("SupportHierarchicalSync"));
            }
            store = store.with(sync);
            if *name == "mail" && version == Version::V1_2 {
                // The filters mail.rs applies.
                let cgi = || t("CTType", "syncml:filtertype-cgi");
                store = store
                    .with(e("Filter-Rx").with(cgi()).with(t("VerCT", "1.0")))
                    .with(
                        e("FilterCap")
                            .with(cgi())
                            .with(t("VerCT", "1.0"))
                            .with(t("FilterKeyword", "received"))
                            .with(t("PropName", "emailitem")),
                    );
            }
            d = d.with(store);
        }
    }
    d
}

/// Most content types, and property names per type, kept of a device's CTCap.
const MAX_TYPES: usize = 8;
const MAX_NAMES: usize = 400;

/// What a device's DevInf says it holds, per content type (lower case). DevInf 1.2 puts a
/// CTCap in each DataStore with a Property per name; 1.1 puts one CTCap beside them, a flat
/// run of CTType, PropName, ValEnum and ParamName. Either way a BEGIN's values name the
/// components it holds.
pub fn caps(devinf: &Element) -> BTreeMap<String, Caps> {
    let mut out: BTreeMap<String, Caps> = BTreeMap::new();
    let ctcaps = devinf.children_named("CTCap").chain(
        devinf
            .children_named("DataStore")
            .flat_map(|d| d.children_named("CTCap")),
    );
    for ctcap in ctcaps {
        let mut ct = String::new();
        // The last PropName, while its values are read (None after a ParamName).
        let mut prop: Option<String> = None;
        let mut add = |ct: &str, name: String| {
            if ct.is_empty() || name.is_empty() || name.len() > 64 {
                return;
            }
            if out.len() >= MAX_TYPES && !out.contains_key(ct) {
                return;
            }
            let names = &mut out.entry(ct.to_string()).or_default().0;
            if names.len() < MAX_NAMES {
                names.insert(name.to_ascii_uppercase());
            }
        };
        let mut take = |e: &Element, ct: &mut String, prop: &mut Option<String>| match e.name {
            "CTType" => *ct = e.value().trim().to_ascii_lowercase(),
            "PropName" => {
                let name = e.value().trim().to_ascii_uppercase();
                add(ct, name.clone());
                *prop = Some(name);
            }
            "ValEnum" if prop.as_deref() == Some("BEGIN") => {
                add(ct, format!("BEGIN:{}", e.value().trim()));
            }
            "ParamName" | "PropParam" => *prop = None,
            _ => {}
        };
        for e in ctcap.elements() {
            if e.name == "Property" {
                for p in e.elements() {
                    take(p, &mut ct, &mut prop);
                }
                prop = None;
            } else {
                take(e, &mut ct, &mut prop);
            }
        }
    }
    out
}

/// What the server keeps of a device's DevInf to choose formats and merge its changes:
/// its CTCap per content type, and the content type each of its datastores prefers.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Held {
    pub caps: BTreeMap<String, Caps>,
    /// By the datastore's name (its SourceRef without "./", lower case).
    pub rx_pref: BTreeMap<String, String>,
    /// The datastores (by name) the device syncs as folders (DevInf 1.2
    /// SupportHierarchicalSync).
    pub hierarchical: std::collections::BTreeSet<String>,
}

const CAPS: &str = "CTCap ";
const RX_PREF: &str = "RxPref ";
const HIERARCHICAL: &str = "Hierarchical ";

/// A datastore's name as its DevInf SourceRef or an Alert's Source gives it.
pub fn datastore_name(uri: &str) -> String {
    uri.trim()
        .trim_start_matches("./")
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

impl Held {
    /// From a device's DevInf.
    pub fn of(devinf: &Element) -> Held {
        let mut rx_pref = BTreeMap::new();
        let mut hierarchical = std::collections::BTreeSet::new();
        for d in devinf.children_named("DataStore").take(MAX_TYPES * 4) {
            let name = d.child_value("SourceRef").map(|r| datastore_name(&r));
            if let Some(name) = name.as_ref().filter(|n| n.len() <= 64)
                && d.child("SupportHierarchicalSync").is_some()
            {
                hierarchical.insert(name.clone());
            }
            let ct = d
                .child("Rx-Pref")
                .and_then(|p| p.child_value("CTType"))
                .map(|c| c.trim().to_ascii_lowercase());
            if let (Some(name), Some(ct)) = (name, ct)
                && name.len() <= 64
                && ct.len() <= 64
            {
                rx_pref.insert(name, ct);
            }
        }
        Held {
            caps: caps(devinf),
            rx_pref,
            hierarchical,
        }
    }

    /// As kept in the device's info.
    pub fn write(&self, info: &mut BTreeMap<String, String>) {
        for (ct, c) in &self.caps {
            let names: Vec<&str> = c.0.iter().map(String::as_str).collect();
            info.insert(format!("{CAPS}{ct}"), names.join(" "));
        }
        for (name, ct) in &self.rx_pref {
            info.insert(format!("{RX_PREF}{name}"), ct.clone());
        }
        for name in &self.hierarchical {
            info.insert(format!("{HIERARCHICAL}{name}"), "1".into());
        }
    }

    /// From the device's info.
    pub fn read(info: &BTreeMap<String, String>) -> Held {
        let mut held = Held::default();
        for (k, v) in info {
            if let Some(ct) = k.strip_prefix(CAPS) {
                held.caps.insert(ct.to_string(), Caps::of(v.split(' ')));
            } else if let Some(name) = k.strip_prefix(RX_PREF) {
                held.rx_pref.insert(name.to_string(), v.clone());
            } else if let Some(name) = k.strip_prefix(HIERARCHICAL) {
                held.hierarchical.insert(name.to_string());
            }
        }
        held
    }

    /// The device syncs this datastore as folders.
    pub fn in_folders(&self, datastore: &str) -> bool {
        self.hierarchical.contains(&datastore_name(datastore))
    }

    /// The content type a datastore of the device prefers (its Rx-Pref).
    pub fn prefers(&self, datastore: &str) -> Option<&str> {
        self.rx_pref
            .get(&datastore_name(datastore))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DEVINF;

    fn t(name: &'static str, v: &str) -> Element {
        Element::new(DEVINF, name).text(v)
    }

    #[test]
    fn a_devices_ctcap_is_read_in_both_versions() {
        let prop = |name: &str, vals: &[&str]| {
            let mut p = e("Property").with(t("PropName", name));
            for v in vals {
                p = p.with(t("ValEnum", v));
            }
            p.with(
                e("PropParam")
                    .with(t("ParamName", "TYPE"))
                    .with(t("ValEnum", "WORK")),
            )
        };
        let v12 = e("DevInf").with(
            e("DataStore").with(
                e("CTCap")
                    .with(t("CTType", "text/VCARD"))
                    .with(prop("BEGIN", &["VCARD"]))
                    .with(prop("tel", &[]))
                    .with(prop("X-*", &[])),
            ),
        );
        assert_eq!(
            caps(&v12)["text/vcard"],
            Caps::of(["BEGIN", "BEGIN:VCARD", "TEL", "X-*"])
        );
        let v11 = e("DevInf").with(
            e("CTCap")
                .with(t("CTType", "text/calendar"))
                .with(t("PropName", "BEGIN"))
                .with(t("ValEnum", "VEVENT"))
                .with(t("PropName", "SUMMARY"))
                .with(t("ParamName", "BEGIN"))
                .with(t("ValEnum", "NOT-A-COMPONENT"))
                .with(t("CTType", "text/x-vcard"))
                .with(t("PropName", "N")),
        );
        let c = caps(&v11);
        assert_eq!(
            c["text/calendar"],
            Caps::of(["BEGIN", "BEGIN:VEVENT", "SUMMARY"])
        );
        assert_eq!(c["text/x-vcard"], Caps::of(["N"]));
    }
}
