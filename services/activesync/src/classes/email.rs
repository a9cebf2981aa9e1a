//! A stored message as ActiveSync's Email class (MS-ASEMAIL): the envelope, the read and
//! flag state, and the body the device prefers (plain text, HTML or the whole MIME message,
//! truncated as it asks), parsed with mail-parser.

use crate::formats::body::{BodyPreference, eas_date, truncate};
use crate::formats::wbxml::{Element, page};
use bureau_store::Item;
use mail_parser::{Address, MessageParser, PartType};

fn address_list(a: Option<&Address>) -> (String, Vec<String>) {
    let mut full = Vec::new();
    let mut names = Vec::new();
    let mut add = |name: Option<&str>, addr: Option<&str>| {
        let addr = addr.unwrap_or_default();
        match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                full.push(format!("\"{}\" <{addr}>", n.replace('"', "'")));
                names.push(n.to_string());
            }
            None => {
                full.push(format!("<{addr}>"));
                names.push(addr.to_string());
            }
        }
    };
    match a {
        Some(Address::List(list)) => {
            for x in list {
                add(x.name.as_deref(), x.address.as_deref());
            }
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                for x in &g.addresses {
                    add(x.name.as_deref(), x.address.as_deref());
                }
            }
        }
        None => {}
    }
    (full.join(", "), names)
}

/// Whether the owner has read it, as the store keeps it.
pub fn is_read(item: &Item) -> bool {
    item.flags.iter().any(|f| f == "\\Seen")
}

/// The content type of a part, "type/subtype".
pub fn content_type(p: &mail_parser::MessagePart) -> String {
    use mail_parser::MimeHeaders;
    p.content_type()
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")))
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// The message's attachments as AirSyncBase Attachment elements; each FileReference
/// (`collection:item:part`) is what ItemOperations fetches.
fn attachments_of(item: &Item, m: &mail_parser::Message) -> Vec<Element> {
    use mail_parser::MimeHeaders;
    m.attachments
        .iter()
        .filter_map(|id| Some((*id, m.part(*id)?)))
        .map(|(id, p)| {
            let name = p
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("attachment-{id}"));
            let mut a = Element::new(page::AIRSYNCBASE, "Attachment")
                .with_text("DisplayName", name)
                .with_text(
                    "FileReference",
                    format!("{}:{}:{id}", item.collection, item.id),
                )
                .with_text("Method", "1")
                .with_text("EstimatedDataSize", p.len().to_string());
            if let Some(cid) = p.content_id() {
                a = a.with_text("ContentId", cid.trim_matches(['<', '>']).to_string());
            }
            if p.content_disposition().is_some_and(|d| d.is_inline()) {
                a = a.with_text("IsInline", "1");
            }
            a
        })
        .collect()
}

/// A draft made or changed on the device (16.x, in the Drafts folder): the MIME message it
/// sent (Body type 4), or a message from the user made of the To, Cc, Bcc, Subject,
/// Importance and Body it sent; on a change, what it left out is taken from the draft as
/// it was.
pub fn draft(
    user: &bureau_directory::User,
    data: &Element,
    old_raw: Option<&[u8]>,
) -> Option<Vec<u8>> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::address::Address as A;
    let body = data.child("Body");
    let kind = body.and_then(|b| b.child_value("Type"));
    // Type 4: the whole message in MIME, kept as the device wrote it.
    if kind.as_deref().map(str::trim) == Some("4") {
        let mime = body.and_then(|b| b.child_value("Data"))?.into_bytes();
        return bureau_core::mime::parse(&mime).is_some().then_some(mime);
    }
    let old = old_raw.and_then(bureau_core::mime::parse);
    let field = |page: u8, name: &str| {
        data.elements()
            .find(|e| e.page == page && e.name == name)
            .map(|e| e.value())
    };
    let pairs = |a: Option<&Address>| -> Vec<(String, String)> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| {
                    let name = x.name().unwrap_or_default().to_string();
                    Some((name, x.address()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
    };
    // The device's list, read as a To: header would be; else the draft's as it was.
    let list = |page: u8, name: &str, was: Option<&Address>| match field(page, name) {
        Some(v) => MessageParser::default()
            .parse(format!("To: {v}\r\n\r\n").as_bytes())
            .map(|m| pairs(m.to()))
            .unwrap_or_default(),
        None => pairs(was),
    };
    let addresses = |l: Vec<(String, String)>| {
        A::new_list(
            l.into_iter()
                .map(|(n, a)| A::new_address(if n.is_empty() { None } else { Some(n) }, a))
                .collect(),
        )
    };
    let to = list(page::EMAIL, "To", old.as_ref().and_then(|o| o.to()));
    let cc = list(page::EMAIL, "Cc", old.as_ref().and_then(|o| o.cc()));
    let bcc = list(page::EMAIL2, "Bcc", old.as_ref().and_then(|o| o.bcc()));
    let subject = field(page::EMAIL, "Subject")
        .or_else(|| old.as_ref().and_then(|o| o.subject().map(str::to_string)))
        .unwrap_or_default();
    let html = kind.is_some_and(|t| t.trim() == "2");
    let text = body
        .and_then(|b| b.child_value("Data"))
        .or_else(|| {
            old.as_ref()
                .and_then(|o| o.body_text(0).map(|t| t.into_owned()))
        })
        .unwrap_or_default();
    let mut b = MessageBuilder::new()
        .from((user.display_name.as_str(), user.address.as_str()))
        .subject(subject);
    if !to.is_empty() {
        b = b.to(addresses(to));
    }
    if !cc.is_empty() {
        b = b.cc(addresses(cc));
    }
    if !bcc.is_empty() {
        b = b.bcc(addresses(bcc));
    }
    if let Some(i) = field(page::EMAIL, "Importance") {
        let v = match i.trim() {
            "2" => "high",
            "0" => "low",
            _ => "normal",
        };
        b = b.header("Importance", mail_builder::headers::raw::Raw::new(v));
    }
    b = if html {
        b.html_body(text)
    } else {
        b.text_body(text)
    };
    let fresh = b.write_to_vec().ok()?;
    match old_raw.filter(|_| body.is_none()) {
        // Only headers changed: the draft keeps its body and attachments as they were.
        Some(old) => {
            const CHANGED: [&[u8]; 6] = [
                b"to:",
                b"cc:",
                b"bcc:",
                b"subject:",
                b"importance:",
                b"from:",
            ];
            let named = |line: &[u8]| {
                CHANGED
                    .iter()
                    .any(|n| line.len() >= n.len() && line[..n.len()].eq_ignore_ascii_case(n))
            };
            let head_end = fresh
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(fresh.len(), |p| p + 2);
            let mut out = bureau_smtp::without_headers(&fresh[..head_end], |l| !named(l));
            out.extend_from_slice(&bureau_smtp::without_headers(old, named));
            Some(out)
        }
        None => Some(fresh),
    }
}

/// The message as an Email class ApplicationData.
pub fn application_data(
    item: &Item,
    raw: &[u8],
    pref: &BodyPreference,
    view: &crate::classes::calendar::View,
) -> Element {
    let data = Element::new(crate::formats::wbxml::page::AIRSYNC, "ApplicationData");
    let Some(m) = bureau_core::mime::parse(raw) else {
        // Not a message mail-parser can read: still shown, with its raw text.
        return data
            .with(Element::new(page::EMAIL, "DateReceived").text(eas_date(item.date)))
            .with(Element::new(page::EMAIL, "Read").text(if is_read(item) { "1" } else { "0" }))
            .with(
                Element::new(page::AIRSYNCBASE, "Body")
                    .with_text("Type", "1")
                    .with_text("EstimatedDataSize", raw.len().to_string())
                    .with_text("Data", String::from_utf8_lossy(raw).into_owned()),
            );
    };
    let email = |name: &'static str, v: String| Element::new(page::EMAIL, name).text(v);
    let (to, to_names) = address_list(m.to());
    let (cc, _) = address_list(m.cc());
    let (from, _) = address_list(m.from());
    let (reply_to, _) = address_list(m.reply_to());
    let mut d = data;
    if !to.is_empty() {
        d = d.with(email("To", to));
    }
    if !cc.is_empty() {
        d = d.with(email("Cc", cc));
    }
    if !from.is_empty() {
        d = d.with(email("From", from));
    }
    if !reply_to.is_empty() {
        d = d.with(email("ReplyTo", reply_to));
    }
    let subject = m.subject().unwrap_or_default().to_string();
    d = d
        .with(email("Subject", subject.clone()))
        .with(email("DateReceived", eas_date(item.date)));
    if !to_names.is_empty() {
        d = d.with(email("DisplayTo", to_names.join("; ")));
    }
    d = d.with(email("ThreadTopic", subject));
    let importance = match m
        .header_raw("Importance")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("high") => "2",
        Some("low") => "0",
        _ => match m.header_raw("X-Priority").map(str::trim) {
            Some(p) if p.starts_with('1') || p.starts_with('2') => "2",
            Some(p) if p.starts_with('4') || p.starts_with('5') => "0",
            _ => "1",
        },
    };
    d = d
        .with(email("Importance", importance.into()))
        .with(email("Read", if is_read(item) { "1" } else { "0" }.into()));
    // mail-parser makes HTML of a plain message: only a real HTML part counts.
    let html = m
        .html_part(0)
        .filter(|p| matches!(p.body, PartType::Html(_)))
        .and_then(|_| m.body_html(0))
        .map(|h| h.into_owned());
    let (kind, limit) = pref.choose(html.is_some());
    let body = match kind {
        4 => String::from_utf8_lossy(raw).into_owned(),
        2 => html.clone().unwrap_or_default(),
        _ => m.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
    };
    let cut = truncate(&body, limit.unwrap_or(usize::MAX));
    let mut b = Element::new(page::AIRSYNCBASE, "Body")
        .with_text("Type", kind.to_string())
        .with_text("EstimatedDataSize", body.len().to_string());
    if cut.len() < body.len() {
        b = b.with_text("Truncated", "1");
    }
    if !cut.is_empty() || limit != Some(0) {
        b = b.with_text("Data", cut.to_string());
    }
    d = d.with(b);
    let attachments = attachments_of(item, &m);
    if !attachments.is_empty() {
        let mut list = Element::new(page::AIRSYNCBASE, "Attachments");
        for a in attachments {
            list = list.with(a);
        }
        d = d.with(list);
    }
    // An invitation (or its cancellation) by mail: the phone shows its buttons.
    let meeting = crate::classes::calendar::invitation_of(raw)
        .and_then(|text| crate::classes::calendar::meeting_request(&text, view));
    let (class, content_class) = match &meeting {
        Some((_, class)) => (*class, "urn:content-classes:calendarmessage"),
        None => ("IPM.Note", "urn:content-classes:message"),
    };
    d = d.with(email("MessageClass", class.into()));
    if let Some((m, _)) = meeting {
        d = d.with(m);
    }
    d = d
        .with(email("InternetCPID", "65001".into()))
        .with(Element::new(page::EMAIL, "Flag").with(
            if item.flags.iter().any(|f| f == "\\Flagged") {
                Element::new(page::EMAIL, "Status").text("2")
            } else {
                Element::new(page::EMAIL, "Status").text("0")
            },
        ))
        .with(email("ContentClass", content_class.into()))
        .with(
            Element::new(page::AIRSYNCBASE, "NativeBodyType").text(if html.is_some() {
                "2"
            } else {
                "1"
            }),
        );
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> crate::classes::calendar::View {
        crate::classes::calendar::View {
            version: 161,
            me: vec!["alice@example.com".into()],
            device: bureau_groupware::tzi::Tzi::fixed(0),
            home: chrono_tz::UTC,
        }
    }

    fn item(flags: &[&str]) -> Item {
        Item {
            id: 7,
            collection: 1,
            modseq: 3,
            name: None,
            blob: None,
            flags: flags.iter().map(|s| s.to_string()).collect(),
            date: 1_796_112_000,
            props: Default::default(),
        }
    }

    const MSG: &[u8] = b"From: Carol Martin <carol@example.org>\r\nTo: Alice <alice@example.com>, bob@example.com\r\nSubject: Caf\xc3\xa9 plans\r\nImportance: high\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee you at the caf\xc3\xa9 at noon.\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See you at the <b>caf\xc3\xa9</b> at noon.</p>\r\n--b--\r\n";

    #[test]
    fn an_invitation_by_mail_is_a_meeting_request() {
        let msg = b"From: carol@remote.example\r\nTo: alice@example.com\r\nSubject: Visit\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYou are invited.\r\n--b\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:visit-1\r\nDTSTAMP:20261101T080000Z\r\nDTSTART:20261215T130000Z\r\nDTEND:20261215T140000Z\r\nSUMMARY:Visit\r\nORGANIZER;CN=Carol:mailto:carol@remote.example\r\nATTENDEE;RSVP=TRUE:mailto:alice@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n--b--\r\n";
        let d = application_data(&item(&[]), msg, &BodyPreference::default(), &view());
        assert_eq!(
            d.child_value("MessageClass").as_deref(),
            Some("IPM.Schedule.Meeting.Request")
        );
        let m = d.child("MeetingRequest").unwrap();
        assert_eq!(
            m.child_value("StartTime").as_deref(),
            Some("2026-12-15T13:00:00.000Z")
        );
        assert_eq!(
            m.child_value("Organizer").as_deref(),
            Some("\"Carol\" <carol@remote.example>")
        );
        let id = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            m.child_value("GlobalObjId").unwrap(),
        )
        .unwrap();
        assert!(
            id.starts_with(&[4, 0, 0, 0, 0x82]) && id.ends_with(b"vCal-Uid\x01\0\0\0visit-1\0")
        );
        assert!(crate::formats::wbxml::encode(&d).is_ok());
    }

    #[test]
    fn a_message_as_the_device_asks() {
        let plain = BodyPreference {
            types: vec![(1, Some(12))],
            mime_support: 0,
        };
        let d = application_data(&item(&["\\Seen"]), MSG, &plain, &view());
        assert_eq!(d.child_value("Subject").as_deref(), Some("Café plans"));
        assert_eq!(
            d.child_value("To").as_deref(),
            Some("\"Alice\" <alice@example.com>, <bob@example.com>")
        );
        assert_eq!(
            d.child_value("DisplayTo").as_deref(),
            Some("Alice; bob@example.com")
        );
        assert_eq!(
            d.child_value("From").as_deref(),
            Some("\"Carol Martin\" <carol@example.org>")
        );
        assert_eq!(d.child_value("Importance").as_deref(), Some("2"));
        assert_eq!(d.child_value("Read").as_deref(), Some("1"));
        assert_eq!(
            d.child_value("DateReceived").as_deref(),
            Some("2026-12-01T08:00:00.000Z")
        );
        let body = d.child("Body").unwrap();
        assert_eq!(body.child_value("Type").as_deref(), Some("1"));
        assert_eq!(body.child_value("Truncated").as_deref(), Some("1"));
        assert_eq!(body.child_value("Data").as_deref(), Some("See you at t"));
        assert_eq!(d.child_value("NativeBodyType").as_deref(), Some("2"));

        let html = BodyPreference {
            types: vec![(2, None)],
            mime_support: 0,
        };
        let d = application_data(&item(&["\\Flagged"]), MSG, &html, &view());
        let body = d.child("Body").unwrap();
        assert!(body.child_value("Data").unwrap().contains("<b>café</b>"));
        assert!(body.child("Truncated").is_none());
        assert_eq!(d.child_value("Read").as_deref(), Some("0"));
        assert_eq!(
            d.child("Flag")
                .and_then(|f| f.child_value("Status"))
                .as_deref(),
            Some("2")
        );

        let mime = BodyPreference {
            types: vec![(4, None)],
            mime_support: 2,
        };
        let d = application_data(&item(&[]), MSG, &mime, &view());
        let body = d.child("Body").unwrap();
        assert_eq!(body.child_value("Type").as_deref(), Some("4"));
        assert_eq!(body.child_value("Data").unwrap().as_bytes(), MSG);
        // A cut never splits a character.
        assert_eq!(truncate("café", 4), "caf");
    }
}
