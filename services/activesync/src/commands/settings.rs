//! Settings (MS-ASCMD 2.2.1.18): records the device's information, tells the user's
//! addresses, and reads and writes the out-of-office settings the SMTP side answers mail
//! with (bureau_smtp::autoreply). A device recovery password is answered "protocol error":
//! it would be kept for nothing.

use crate::formats::wbxml::{Element, page};
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
            let time = |t: Option<i64>| crate::formats::body::eas_date(t.unwrap_or(0));
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
            .and_then(|t| crate::classes::calendar::parse_time(&t))
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
