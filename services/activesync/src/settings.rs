//! Settings (MS-ASCMD 2.2.1.18) and Search of the GAL (2.2.1.16).
//!
//! Settings records the device's information, tells the user's addresses, and reads and
//! writes the out-of-office settings the SMTP side answers mail with
//! (bureau_smtp::autoreply). A device recovery password is answered "protocol error": it
//! would be kept for nothing. Search looks up the company directory (enabled users) by
//! name, address or alias prefix, or the user's mail (find.rs).

use crate::wbxml::{Element, page};
use crate::{ActiveSync, Context, Resp, document};
use bureau_store::StoreError;

const DEVICE_FIELDS: &[&str] = &[
    "Model",
    "IMEI",
    "FriendlyName",
    "OS",
    "OSLanguage",
    "PhoneNumber",
    "UserAgent",
    "MobileOperator",
];

/// Records the Settings fields of a DeviceInformation/Set with the device.
pub fn record_device_information(cx: &mut Context, set: &Element) {
    for f in DEVICE_FIELDS {
        if let Some(v) = set.child_value(f) {
            cx.device
                .info
                .insert(f.to_string(), v.chars().take(256).collect());
        }
    }
}

pub async fn settings(
    eas: &ActiveSync,
    cx: &mut Context,
    doc: Option<Element>,
) -> Result<Resp, StoreError> {
    let settings = |s: &str| Element::new(page::SETTINGS, "Settings").with_text("Status", s);
    let Some(doc) = doc.filter(|d| d.name == "Settings") else {
        return Ok(document(&settings("2")));
    };
    let mut out = settings("1");
    for part in doc.elements() {
        let answer = |s: &str| Element::new(page::SETTINGS, part.name).with_text("Status", s);
        out = out.with(match part.name {
            "DeviceInformation" => match part.child("Set") {
                Some(set) => {
                    record_device_information(cx, set);
                    eas.save_device(cx.user.principal, &cx.device).await?;
                    answer("1")
                }
                None => answer("2"),
            },
            "UserInformation" => {
                // 14.1 and later: the account with its primary address marked.
                let accounts = crate::version_number(&cx.req.version) >= 141;
                let primary = if accounts {
                    "PrimarySmtpAddress"
                } else {
                    "SmtpAddress"
                };
                let mut addresses = Element::new(page::SETTINGS, "EmailAddresses")
                    .with_text(primary, cx.user.address.clone());
                for a in &cx.user.aliases {
                    addresses = addresses.with_text("SmtpAddress", a.clone());
                }
                let get = Element::new(page::SETTINGS, "Get");
                answer("1").with(if accounts {
                    get.with(
                        Element::new(page::SETTINGS, "Accounts").with(
                            Element::new(page::SETTINGS, "Account")
                                .with_text("UserDisplayName", cx.user.display_name.clone())
                                .with(addresses),
                        ),
                    )
                } else {
                    get.with(addresses)
                })
            }
            "Oof" => oof(eas, cx, part).await?,
            // The device's recovery password: not kept here (see above).
            _ => answer("2"),
        });
    }
    Ok(document(&out))
}

/// The audiences of an out-of-office message, as Settings names them.
const AUDIENCES: [&str; 3] = [
    "AppliesToInternal",
    "AppliesToExternalKnown",
    "AppliesToExternalUnknown",
];

/// Settings Oof: Get gives the out-of-office settings, Set replaces them (a message left
/// out keeps its text).
async fn oof(eas: &ActiveSync, cx: &Context, part: &Element) -> Result<Element, StoreError> {
    use bureau_smtp::autoreply::{OutOfOffice, State};
    let s = |n: &'static str| Element::new(page::SETTINGS, n);
    let answer = |code: &str| s("Oof").with_text("Status", code);
    let store = eas.store();
    let mut cur = OutOfOffice::load(store, &cx.user.uid)?;
    if part.child("Get").is_some() {
        let state = match cur.state {
            State::Off => "0",
            State::On => "1",
            State::Scheduled => "2",
        };
        let mut get = s("Get").with_text("OofState", state);
        if cur.state == State::Scheduled {
            let time = |t: Option<i64>| crate::email::eas_date(t.unwrap_or(0));
            get = get
                .with_text("StartTime", time(cur.start))
                .with_text("EndTime", time(cur.end));
        }
        for (tag, text) in
            AUDIENCES
                .into_iter()
                .zip([&cur.internal, &cur.external_known, &cur.external_unknown])
        {
            let mut m = s("OofMessage")
                .with(s(tag))
                .with_text("Enabled", if text.is_some() { "1" } else { "0" });
            if let Some(t) = text {
                m = m
                    .with_text("ReplyMessage", t.clone())
                    .with_text("BodyType", "TEXT");
            }
            get = get.with(m);
        }
        return Ok(answer("1").with(get));
    }
    let Some(set) = part.child("Set") else {
        return Ok(answer("2"));
    };
    let time = |n: &str| {
        set.child_value(n)
            .and_then(|t| crate::calendar::parse_time(&t))
            .map(|t| t.and_utc().timestamp())
    };
    cur.state = match set.child_value("OofState").as_deref().map(str::trim) {
        Some("0") => State::Off,
        Some("1") => State::On,
        Some("2") => {
            let (start, end) = (time("StartTime"), time("EndTime"));
            if start.zip(end).is_none_or(|(a, b)| a >= b) {
                return Ok(answer("2"));
            }
            cur.start = start;
            cur.end = end;
            State::Scheduled
        }
        _ => return Ok(answer("2")),
    };
    for m in set.children_named("OofMessage") {
        let Some(i) = AUDIENCES.iter().position(|a| m.child(a).is_some()) else {
            continue;
        };
        let enabled = m.child_value("Enabled").is_some_and(|e| e.trim() == "1");
        let text = m.child_value("ReplyMessage").unwrap_or_default();
        let html = m
            .child_value("BodyType")
            .is_some_and(|b| b.trim().eq_ignore_ascii_case("HTML"));
        let text = if html {
            // What the mail's reader shows, without the markup.
            mail_parser::decoders::html::html_to_text(&text)
        } else {
            text
        };
        let slot = [
            &mut cur.internal,
            &mut cur.external_known,
            &mut cur.external_unknown,
        ]
        .into_iter()
        .nth(i)
        .expect("three audiences");
        *slot = enabled.then_some(text);
    }
    cur.save(store, &cx.user.uid).await?;
    Ok(answer("1"))
}

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
        return Ok(respond(crate::find::search_mailbox(eas, cx, &store)?));
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

/// Enabled users of the directory whose name, uid, address or alias starts with the query,
/// by name: those in `from..=to` as Search Properties, and how many there are.
pub fn gal(
    eas: &ActiveSync,
    query: &str,
    from: usize,
    to: usize,
) -> Result<(Vec<Element>, usize), StoreError> {
    let query = query.trim().to_lowercase();
    let users = eas
        .auth
        .directory()
        .calendar_users()
        .map_err(|e| StoreError::Io(e.to_string()))?;
    let mut found: Vec<_> = users
        .into_iter()
        .filter(|u| u.enabled && !query.is_empty())
        .filter(|u| {
            let words = u.display_name.to_lowercase();
            words.split_whitespace().any(|w| w.starts_with(&query))
                || words.starts_with(&query)
                || u.uid.starts_with(&query)
                || u.address.starts_with(&query)
                || u.aliases.iter().any(|a| a.starts_with(&query))
        })
        .collect();
    found.sort_by(|a, b| {
        a.display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
    });
    let total = found.len();
    let results: Vec<Element> = found
        .iter()
        .skip(from)
        .take(to.saturating_sub(from) + 1)
        .map(|u| {
            let (first, last) = match u.display_name.rsplit_once(' ') {
                Some((f, l)) => (f.to_string(), l.to_string()),
                None => (String::new(), u.display_name.clone()),
            };
            let mut p = Element::new(page::SEARCH, "Properties")
                .with(Element::new(page::GAL, "DisplayName").text(u.display_name.clone()))
                .with(Element::new(page::GAL, "Alias").text(u.uid.clone()))
                .with(Element::new(page::GAL, "EmailAddress").text(u.address.clone()));
            if !first.is_empty() {
                p = p.with(Element::new(page::GAL, "FirstName").text(first));
            }
            p = p.with(Element::new(page::GAL, "LastName").text(last));
            if let Some(phone) = &u.phone {
                p = p.with(Element::new(page::GAL, "Phone").text(phone.clone()));
            }
            // A room's place, where a phone shows a person's office.
            if let Some(place) = u.resource.as_ref().and_then(|r| r.location.clone()) {
                p = p.with(Element::new(page::GAL, "Office").text(place));
            }
            p
        })
        .collect();
    Ok((results, total))
}
