//! A stored vCard as ActiveSync's Contact class (MS-ASCNTC), and a device's contact back
//! into the vCard without losing what the device never saw.
//!
//! Reading assigns vCard lines to the device's fields (three e-mail slots, the phone
//! slots by TYPE, work/home/other addresses...). A change from the device replaces exactly
//! the lines it was shown, since ActiveSync sends a contact whole; every other line (PHOTO,
//! a fourth address, IMPP, X- properties, parameters of other clients) stays as it was.
//! Fields the device sends that vCard has no place for are kept as X-EAS-<field>.

use crate::formats::wbxml::{Element, Node, page};
use bureau_groupware::contentline::{esc, lines, split, unescape};

/// Which device field a TEL line fills, given the slots already taken.
fn phone_slot(types: &[String], taken: &[&'static str]) -> Option<&'static str> {
    let has = |t: &str| types.iter().any(|x| x == t);
    // Text telephones, video and SMS numbers have no place on the device: left alone.
    if has("textphone") || has("video") || has("text") {
        return None;
    }
    if has("cell") {
        return Some("MobilePhoneNumber");
    }
    if has("fax") {
        return Some(if has("home") {
            "HomeFaxNumber"
        } else {
            "BusinessFaxNumber"
        });
    }
    if has("pager") {
        return Some("PagerNumber");
    }
    if has("car") || has("x-car") {
        return Some("CarPhoneNumber");
    }
    let pair: [&'static str; 2] = if has("home") {
        ["HomePhoneNumber", "Home2PhoneNumber"]
    } else {
        ["BusinessPhoneNumber", "Business2PhoneNumber"]
    };
    pair.into_iter().find(|p| !taken.contains(p))
}

fn date_to_eas(v: &str) -> Option<String> {
    let digits: String = v.chars().filter(|c| c.is_ascii_digit()).take(8).collect();
    (digits.len() == 8).then(|| {
        format!(
            "{}-{}-{}T00:00:00.000Z",
            &digits[..4],
            &digits[4..6],
            &digits[6..8]
        )
    })
}

fn date_from_eas(v: &str) -> Option<String> {
    let digits: String = v.chars().filter(|c| c.is_ascii_digit()).take(8).collect();
    (digits.len() == 8).then_some(digits)
}

/// The card's lines the device is shown, by field, and the indexes of those lines.
fn read(card: &str) -> (Vec<(&'static str, u8, String)>, Vec<usize>) {
    let ls = lines(card);
    let mut fields: Vec<(&'static str, u8, String)> = Vec::new();
    let mut owned = Vec::new();
    let mut phones: Vec<&'static str> = Vec::new();
    let mut adr_taken: Vec<&'static str> = Vec::new();
    let mut emails: Vec<(u32, usize, String)> = Vec::new();
    let mut has_url = false;
    let contacts = page::CONTACTS;
    for (i, l) in ls.iter().enumerate() {
        let mut put = |f: &'static str, v: String| fields.push((f, contacts, v));
        match l.name.as_str() {
            "FN" => {
                put("FileAs", unescape(&l.value));
                owned.push(i);
            }
            "N" => {
                let n = split(&l.value, ';');
                for (f, k) in [
                    ("LastName", 0),
                    ("FirstName", 1),
                    ("MiddleName", 2),
                    ("Title", 3),
                    ("Suffix", 4),
                ] {
                    if let Some(v) = n.get(k).filter(|v| !v.is_empty()) {
                        put(f, v.clone());
                    }
                }
                owned.push(i);
            }
            "ORG" => {
                let o = split(&l.value, ';');
                if let Some(v) = o.first().filter(|v| !v.is_empty()) {
                    put("CompanyName", v.clone());
                }
                if let Some(v) = o.get(1).filter(|v| !v.is_empty()) {
                    put("Department", v.clone());
                }
                owned.push(i);
            }
            "TITLE" => {
                put("JobTitle", unescape(&l.value));
                owned.push(i);
            }
            "EMAIL" => emails.push((l.pref, i, unescape(&l.value))),
            "TEL" => {
                if let Some(slot) = phone_slot(&l.types, &phones).filter(|s| !phones.contains(s)) {
                    phones.push(slot);
                    let v = unescape(&l.value);
                    put(slot, v.strip_prefix("tel:").unwrap_or(&v).to_string());
                    owned.push(i);
                }
            }
            "ADR" => {
                let has = |t: &str| l.types.iter().any(|x| x == t);
                let kind = if has("work") {
                    "Business"
                } else if has("home") {
                    "Home"
                } else {
                    "Other"
                };
                if !adr_taken.contains(&kind) {
                    adr_taken.push(kind);
                    let a = split(&l.value, ';');
                    for (suffix, k) in [
                        ("Street", 2),
                        ("City", 3),
                        ("State", 4),
                        ("PostalCode", 5),
                        ("Country", 6),
                    ] {
                        if let Some(v) = a.get(k).filter(|v| !v.is_empty()) {
                            let name = format!("{kind}Address{suffix}");
                            if let Some(tag) = static_tag(contacts, &name) {
                                put(tag, v.clone());
                            }
                        }
                    }
                    owned.push(i);
                }
            }
            "BDAY" | "ANNIVERSARY" => {
                if let Some(d) = date_to_eas(&l.value) {
                    put(
                        if l.name == "BDAY" {
                            "Birthday"
                        } else {
                            "Anniversary"
                        },
                        d,
                    );
                    owned.push(i);
                }
            }
            "URL" if !has_url => {
                has_url = true;
                put("WebPage", unescape(&l.value));
                owned.push(i);
            }
            "NOTE" => {
                fields.push(("Body", page::AIRSYNCBASE, unescape(&l.value)));
                owned.push(i);
            }
            "NICKNAME" => {
                fields.push(("NickName", page::CONTACTS2, unescape(&l.value)));
                owned.push(i);
            }
            "CATEGORIES" => {
                for c in split(&l.value, ',').into_iter().filter(|c| !c.is_empty()) {
                    put("Category", c);
                }
                owned.push(i);
            }
            n if n.starts_with("X-EAS-") => {
                let field = &n["X-EAS-".len()..];
                let found = [contacts, page::CONTACTS2]
                    .into_iter()
                    .find_map(|p| static_tag(p, field).map(|t| (t, p)));
                if let Some((tag, p)) = found {
                    fields.push((tag, p, unescape(&l.value)));
                    owned.push(i);
                }
            }
            _ => {}
        }
    }
    emails.sort_by_key(|(pref, i, _)| (*pref, *i));
    for ((_, i, v), f) in
        emails
            .into_iter()
            .zip(["Email1Address", "Email2Address", "Email3Address"])
    {
        fields.push((f, contacts, v));
        owned.push(i);
    }
    owned.sort_unstable();
    (fields, owned)
}

/// The tag name as the code page spells it (X-EAS- property names are upper case).
fn static_tag(page: u8, name: &str) -> Option<&'static str> {
    crate::formats::wbxml::VOCABULARY
        .pages
        .get(page as usize)?
        .tags
        .iter()
        .find(|t| !t.is_empty() && t.eq_ignore_ascii_case(name))
        .copied()
}

/// The card as a Contact class ApplicationData.
pub fn application_data(card: &str) -> Element {
    let (fields, _) = read(card);
    let mut d = Element::new(page::AIRSYNC, "ApplicationData");
    let mut categories = Element::new(page::CONTACTS, "Categories");
    for (f, p, v) in fields {
        match f {
            "Category" => {
                categories = categories.with(Element::new(page::CONTACTS, "Category").text(v))
            }
            "Body" => {
                d = d.with(
                    Element::new(page::AIRSYNCBASE, "Body")
                        .with_text("Type", "1")
                        .with_text("EstimatedDataSize", v.len().to_string())
                        .with_text("Data", v),
                )
            }
            _ => d = d.with(Element::new(p, f).text(v)),
        }
    }
    if !categories.children.is_empty() {
        d = d.with(categories);
    }
    d
}

/// What the device sent, field by field (Body's text, categories one by one).
fn sent(data: &Element) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for e in data.elements() {
        match (e.page, e.name) {
            (_, "Categories") => {
                for c in e.children_named("Category") {
                    out.push(("Category", c.value()));
                }
            }
            (p, "Body") if p == page::AIRSYNCBASE => {
                if let Some(t) = e.child_value("Data") {
                    out.push(("Body", t));
                }
            }
            (p, _) if p == page::CONTACTS || p == page::CONTACTS2 => {
                let v = e.value();
                if !v.is_empty() || e.children.iter().all(|n| matches!(n, Node::Text(_))) {
                    out.push((e.name, v));
                }
            }
            _ => {}
        }
    }
    out
}

/// The vCard lines for what the device sent.
fn card_lines(fields: &[(&'static str, String)]) -> Vec<String> {
    let get = |f: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == f)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    let n = ["LastName", "FirstName", "MiddleName", "Title", "Suffix"]
        .map(|f| esc(get(f).unwrap_or("")));
    let display = get("FileAs").map(str::to_string).unwrap_or_else(|| {
        let joined = [get("FirstName"), get("MiddleName"), get("LastName")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if joined.is_empty() {
            get("CompanyName")
                .or(get("Email1Address"))
                .unwrap_or("")
                .to_string()
        } else {
            joined
        }
    });
    out.push(format!("FN:{}", esc(&display)));
    if n.iter().any(|p| !p.is_empty()) {
        out.push(format!("N:{}", n.join(";")));
    }
    if get("CompanyName").is_some() || get("Department").is_some() {
        out.push(format!(
            "ORG:{};{}",
            esc(get("CompanyName").unwrap_or("")),
            esc(get("Department").unwrap_or(""))
        ));
    }
    if let Some(v) = get("JobTitle") {
        out.push(format!("TITLE:{}", esc(v)));
    }
    for (i, f) in ["Email1Address", "Email2Address", "Email3Address"]
        .iter()
        .enumerate()
    {
        if let Some(v) = get(f) {
            // The device may send "Name <address>": the address is what is kept.
            let addr = v
                .rsplit_once('<')
                .map(|(_, a)| a.trim_end_matches('>').trim())
                .unwrap_or(v.trim());
            out.push(format!("EMAIL;TYPE=internet;PREF={}:{}", i + 1, esc(addr)));
        }
    }
    for (f, types) in [
        ("BusinessPhoneNumber", "work,voice"),
        ("Business2PhoneNumber", "work,voice"),
        ("HomePhoneNumber", "home,voice"),
        ("Home2PhoneNumber", "home,voice"),
        ("MobilePhoneNumber", "cell"),
        ("BusinessFaxNumber", "work,fax"),
        ("HomeFaxNumber", "home,fax"),
        ("PagerNumber", "pager"),
        ("CarPhoneNumber", "x-car"),
    ] {
        if let Some(v) = get(f) {
            out.push(format!("TEL;TYPE={types};VALUE=text:{}", esc(v)));
        }
    }
    for (kind, t) in [
        ("Business", "TYPE=work"),
        ("Home", "TYPE=home"),
        ("Other", "TYPE=x-other"),
    ] {
        let part = |s: &str| esc(get(&format!("{kind}Address{s}")).unwrap_or(""));
        let parts = ["Street", "City", "State", "PostalCode", "Country"].map(part);
        if parts.iter().any(|p| !p.is_empty()) {
            out.push(format!("ADR;{t}:;;{}", parts.join(";")));
        }
    }
    if let Some(d) = get("Birthday").and_then(date_from_eas) {
        out.push(format!("BDAY:{d}"));
    }
    if let Some(d) = get("Anniversary").and_then(date_from_eas) {
        out.push(format!("ANNIVERSARY:{d}"));
    }
    if let Some(v) = get("WebPage") {
        out.push(format!("URL:{}", esc(v)));
    }
    if let Some(v) = get("Body") {
        out.push(format!("NOTE:{}", esc(v)));
    }
    if let Some(v) = get("NickName") {
        out.push(format!("NICKNAME:{}", esc(v)));
    }
    let cats: Vec<String> = fields
        .iter()
        .filter(|(k, _)| *k == "Category")
        .map(|(_, v)| esc(v))
        .collect();
    if !cats.is_empty() {
        out.push(format!("CATEGORIES:{}", cats.join(",")));
    }
    const MAPPED: &[&str] = &[
        "LastName",
        "FirstName",
        "MiddleName",
        "Title",
        "Suffix",
        "FileAs",
        "CompanyName",
        "Department",
        "JobTitle",
        "Email1Address",
        "Email2Address",
        "Email3Address",
        "BusinessPhoneNumber",
        "Business2PhoneNumber",
        "HomePhoneNumber",
        "Home2PhoneNumber",
        "MobilePhoneNumber",
        "BusinessFaxNumber",
        "HomeFaxNumber",
        "PagerNumber",
        "CarPhoneNumber",
        "Birthday",
        "Anniversary",
        "WebPage",
        "Body",
        "NickName",
        "Category",
    ];
    for (k, v) in fields {
        let address_part = k.contains("Address") && !k.starts_with("Email");
        if !MAPPED.contains(k) && !address_part && !v.is_empty() {
            out.push(format!("X-EAS-{}:{}", k.to_ascii_uppercase(), esc(v)));
        }
    }
    out
}

/// A new card from a device's contact.
pub fn new_card(data: &Element, uid: &str) -> String {
    let mut c = format!("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\n");
    for l in card_lines(&sent(data)) {
        c.push_str(&l);
        c.push_str("\r\n");
    }
    c.push_str("END:VCARD\r\n");
    c
}

/// The stored card with the device's contact in place of what the device was shown;
/// every other line kept as it was. When the device listed the fields it supports
/// (Supported), a field outside that list is "ghosted": the card's value stays.
pub fn merge(card: &str, data: &Element, supported: Option<&[String]>) -> String {
    let (shown, owned) = read(card);
    let ls = lines(card);
    let mut out = String::new();
    let mut fields = sent(data);
    if let Some(supported) = supported {
        // Categories come one Category at a time.
        let ghosted = |f: &str| {
            let name = if f == "Category" { "Categories" } else { f };
            !supported.iter().any(|s| s == name)
        };
        fields.retain(|(f, _)| !ghosted(f));
        fields.extend(
            shown
                .into_iter()
                .filter(|(f, _, _)| ghosted(f))
                .map(|(f, _, v)| (f, v)),
        );
    }
    let mut fresh = card_lines(&fields);
    for (i, l) in ls.iter().enumerate() {
        if l.name == "END" {
            for f in fresh.drain(..) {
                out.push_str(&f);
                out.push_str("\r\n");
            }
        }
        if owned.binary_search(&i).is_err() {
            out.push_str(&l.raw);
            out.push_str("\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:c1\r\nFN:Carol Martin\r\nN:Martin;Carol;;Dr.;\r\nORG:Acme\\, Inc.;Sales\r\nEMAIL;TYPE=work;PREF=1:carol@acme.example\r\nEMAIL;TYPE=home:carol@home.example\r\nTEL;TYPE=cell:+33 6 00 00 00 00\r\nTEL;TYPE=work,voice:+33 1 00 00 00 00\r\nTEL;TYPE=textphone:+33 1 99\r\nADR;TYPE=work:;;1 rue de la Paix;Paris;;75002;France\r\nBDAY:19800517\r\nPHOTO:data:image/png;base64,iVBORw0KGgo=\r\nX-SOCIALPROFILE;TYPE=mastodon:https://example.social/@carol\r\nNOTE:Met at the fair\\nin May\r\nCATEGORIES:Clients,VIP\r\nEND:VCARD\r\n";

    #[test]
    fn a_card_as_the_device_sees_it() {
        let d = application_data(CARD);
        let v = |f: &str| d.child_value(f);
        assert_eq!(v("FileAs").as_deref(), Some("Carol Martin"));
        assert_eq!(v("LastName").as_deref(), Some("Martin"));
        assert_eq!(v("Title").as_deref(), Some("Dr."));
        assert_eq!(v("CompanyName").as_deref(), Some("Acme, Inc."));
        assert_eq!(v("Department").as_deref(), Some("Sales"));
        assert_eq!(v("Email1Address").as_deref(), Some("carol@acme.example"));
        assert_eq!(v("Email2Address").as_deref(), Some("carol@home.example"));
        assert_eq!(v("MobilePhoneNumber").as_deref(), Some("+33 6 00 00 00 00"));
        assert_eq!(
            v("BusinessPhoneNumber").as_deref(),
            Some("+33 1 00 00 00 00")
        );
        assert_eq!(v("BusinessAddressCity").as_deref(), Some("Paris"));
        assert_eq!(v("BusinessAddressPostalCode").as_deref(), Some("75002"));
        assert_eq!(v("Birthday").as_deref(), Some("1980-05-17T00:00:00.000Z"));
        assert_eq!(
            d.child("Body")
                .and_then(|b| b.child_value("Data"))
                .as_deref(),
            Some("Met at the fair\nin May")
        );
        let cats: Vec<String> = d
            .child("Categories")
            .unwrap()
            .children_named("Category")
            .map(Element::value)
            .collect();
        assert_eq!(cats, ["Clients", "VIP"]);
        // Encodable as it is.
        assert!(crate::formats::wbxml::encode(&d).is_ok());
    }

    #[test]
    fn a_change_from_the_device_keeps_what_it_never_saw() {
        let change = Element::new(page::AIRSYNC, "ApplicationData")
            .with(Element::new(page::CONTACTS, "FirstName").text("Carol"))
            .with(Element::new(page::CONTACTS, "LastName").text("Martin-Durand"))
            .with(
                Element::new(page::CONTACTS, "Email1Address").text("\"Carol\" <carol@new.example>"),
            )
            .with(Element::new(page::CONTACTS, "MobilePhoneNumber").text("+33 7 11"))
            .with(Element::new(page::CONTACTS, "OfficeLocation").text("Floor 3"));
        let merged = merge(CARD, &change, None);
        // Kept: the UID, the photo, the social profile, the phone the device was not shown.
        for kept in [
            "UID:urn:uuid:c1",
            "PHOTO:data:image/png;base64,iVBORw0KGgo=",
            "X-SOCIALPROFILE;TYPE=mastodon:https://example.social/@carol",
            "TEL;TYPE=textphone:+33 1 99",
        ] {
            assert!(merged.contains(kept), "{kept} lost:\n{merged}");
        }
        // Replaced: what it was shown (its full contact now).
        assert!(merged.contains("N:Martin-Durand;Carol;;;"));
        assert!(merged.contains("EMAIL;TYPE=internet;PREF=1:carol@new.example"));
        assert!(!merged.contains("carol@home.example") && !merged.contains("ORG:"));
        assert!(merged.contains("X-EAS-OFFICELOCATION:Floor 3"));
        assert!(
            merged.ends_with("END:VCARD\r\n")
                && merged.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n")
        );
        // And the device reads back what it sent.
        let back = application_data(&merged);
        assert_eq!(
            back.child_value("OfficeLocation").as_deref(),
            Some("Floor 3")
        );
        assert_eq!(
            back.child_value("Email1Address").as_deref(),
            Some("carol@new.example")
        );
        assert_eq!(
            back.child_value("MobilePhoneNumber").as_deref(),
            Some("+33 7 11")
        );
        assert!(calcard::vcard::VCard::parse(&merged).is_ok());

        // A device that said it supports only names and e-mail: the rest is ghosted, kept.
        let supported: Vec<String> = ["FirstName", "LastName", "Email1Address"]
            .map(String::from)
            .to_vec();
        let merged = merge(CARD, &change, Some(&supported));
        let back = application_data(&merged);
        assert_eq!(
            back.child_value("LastName").as_deref(),
            Some("Martin-Durand")
        );
        assert_eq!(
            back.child_value("MobilePhoneNumber").as_deref(),
            Some("+33 6 00 00 00 00")
        );
        assert_eq!(
            back.child_value("CompanyName").as_deref(),
            Some("Acme, Inc.")
        );
        assert!(back.child_value("OfficeLocation").is_none());
        assert!(
            merged.contains("CATEGORIES:Clients,VIP") && merged.contains("NOTE:Met at the fair")
        );
    }
}
