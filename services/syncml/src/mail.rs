//! The Mail datastore: a mailbox's messages as OMA DS e-mail objects
//! (`application/vnd.omads-email+xml`, OMA DS Email Data Object 1.2) or as plain RFC 822
//! (`message/rfc822`), and the filters a device may set on them (OMA DS 1.2 Protocol,
//! "Filtering").
//!
//! An e-mail object is a flat document: the message's state (`read`, `replied`,
//! `forwarded`, `flagged`, `deleted`, kept as the IMAP flags \Seen, \Answered, $Forwarded,
//! \Flagged and \Deleted), its `received` time (the message's internal date) and the
//! message itself in `emailitem`. A device's Add stores a message, as an IMAP APPEND would;
//! its Replace of a message it holds changes the state only (a message's text does not
//! change once stored, as in IMAP).
//!
//! Filters: a record filter (`syncml:filtertype-cgi`) on `received` with `&GE;` or `&GT;`
//! (the newest N days: the device gives the first day), and a field filter on `emailitem`
//! with a MaxSize (the body cut to that many bytes; 0, the headers only). Anything else is
//! answered 406.

use bureau_store::Item;
use bureau_wbxml::Element;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use quick_xml::escape::escape;

/// A flag of the e-mail object and the IMAP flag that keeps it.
const FLAGS: [(&str, &str); 5] = [
    ("read", "\\Seen"),
    ("replied", "\\Answered"),
    ("forwarded", "$Forwarded"),
    ("flagged", "\\Flagged"),
    ("deleted", "\\Deleted"),
];

/// What a device's filter asks of the messages it gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// Only messages received at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// The body cut to this many bytes (0: the headers only).
    pub max_body: Option<usize>,
}

/// A filter this server cannot apply (406).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported filter: {0}")]
pub struct Unsupported(pub String);

impl Filter {
    /// The filter of an Alert's Target, if it has one.
    pub fn of(target: &Element) -> Result<Option<Filter>, Unsupported> {
        let Some(f) = target.child("Filter") else {
            return Ok(None);
        };
        let mut out = Filter::default();
        if let Some(record) = f.child("Record").and_then(|r| r.child("Item")) {
            let ty = crate::message::meta(record, "Type").unwrap_or_default();
            if !ty.eq_ignore_ascii_case("syncml:filtertype-cgi") {
                return Err(Unsupported(format!("record filter type {ty:?}")));
            }
            let cgi = record.child_value("Data").unwrap_or_default();
            for term in cgi.split("&AND;").map(str::trim).filter(|t| !t.is_empty()) {
                out.since = Some(since(term)?);
            }
        }
        if let Some(field) = f.child("Field").and_then(|r| r.child("Item")) {
            let props = field.child("Data").into_iter().flat_map(|d| {
                d.children_named("Property").chain(
                    d.children_named("DevInf")
                        .flat_map(|i| i.children_named("Property")),
                )
            });
            for p in props {
                let name = p.child_value("PropName").unwrap_or_default();
                let size = p.child_value("MaxSize").and_then(|s| s.trim().parse().ok());
                match (name.trim().to_ascii_lowercase().as_str(), size) {
                    ("emailitem", Some(n)) => out.max_body = Some(n),
                    _ => return Err(Unsupported(format!("field filter on {name:?}"))),
                }
            }
        }
        Ok(Some(out))
    }

    /// The filter of an Alert's Target, on a datastore that is mail or not (which takes none).
    pub fn on(target: Option<&Element>, mail: bool) -> Result<Filter, Unsupported> {
        match target.map(Filter::of).transpose()?.flatten() {
            Some(_) if !mail => Err(Unsupported("a filter on a datastore of no mail".into())),
            f => Ok(f.unwrap_or_default()),
        }
    }

    /// Whether a message passes the record filter.
    pub fn admits(&self, item: &Item) -> bool {
        self.since.is_none_or(|t| item.date >= t)
    }
}

/// A record filter's term on `received`: the time it gives.
fn since(term: &str) -> Result<i64, Unsupported> {
    let bad = || Unsupported(format!("record filter {term:?}"));
    let (prop, rest) = term.split_once('&').ok_or_else(bad)?;
    let (op, value) = rest.split_once(';').ok_or_else(bad)?;
    let inclusive = match op {
        "GE" => true,
        "GT" => false,
        _ => return Err(bad()),
    };
    if !prop.trim().eq_ignore_ascii_case("received") {
        return Err(bad());
    }
    let t = parse_time(value.trim()).ok_or_else(bad)?;
    Ok(if inclusive { t } else { t + 1 })
}

/// `20261201T101500Z` or `20261201`, in UTC.
fn parse_time(v: &str) -> Option<i64> {
    let v = v.trim_end_matches('Z');
    NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y%m%d")
                .ok()?
                .and_hms_opt(0, 0, 0)
        })
        .map(|t| t.and_utc().timestamp())
}

fn format_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// A message cut as the filter says: the header whole, the body to `max_body` bytes.
fn cut(raw: &str, max_body: Option<usize>) -> &str {
    let Some(max) = max_body else {
        return raw;
    };
    let body_at = [("\r\n\r\n", 4), ("\n\n", 2)]
        .iter()
        .filter_map(|(sep, n)| raw.find(sep).map(|i| i + n))
        .min()
        .unwrap_or(raw.len());
    let mut end = (body_at + max).min(raw.len());
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    &raw[..end]
}

/// A stored message as the device gets it: an e-mail object, or (`rfc822`) the message.
/// XML cannot carry every control character: those are left out.
pub fn outgoing(item: &Item, raw: &[u8], rfc822: bool, f: &Filter) -> String {
    let text = String::from_utf8_lossy(raw);
    let message = cut(&text, f.max_body);
    if rfc822 {
        return message.to_string();
    }
    let has = |flag: &str| item.flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
    let mut out = String::with_capacity(message.len() + 400);
    out.push_str("<Email>");
    for (name, flag) in FLAGS {
        out.push_str(&format!("<{name}>{}</{name}>", has(flag)));
    }
    let at = format_time(item.date);
    out.push_str(&format!("<received>{at}</received><created>{at}</created>"));
    let clean: String = message
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\r' | '\n' | '\t'))
        .collect();
    out.push_str(&format!(
        "<emailitem>{}</emailitem></Email>",
        escape(&clean)
    ));
    out
}

/// A device's message or e-mail object, read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Incoming {
    /// The IMAP flags it sets (true) or clears (false); those it does not name stay.
    pub flags: Vec<(&'static str, bool)>,
    /// The message, if it carries one.
    pub message: Option<Vec<u8>>,
    pub received: Option<i64>,
}

/// Why a device's item is not a message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadMail {
    #[error("not an e-mail object")]
    NotEmail,
    #[error("the message has no header")]
    NoHeader,
}

/// Reads a device's item: an e-mail object by its type or its look, else a message.
pub fn incoming(content_type: Option<&str>, data: &str) -> Result<Incoming, BadMail> {
    let xml = content_type.map_or(data.trim_start().starts_with('<'), |ct| {
        ct.eq_ignore_ascii_case(crate::kind::Kind::Mail.content_type())
    });
    if !xml {
        return Ok(Incoming {
            message: Some(checked(data)?),
            ..Default::default()
        });
    }
    let (root, fields) = crate::sif::fields(data).ok_or(BadMail::NotEmail)?;
    if !root.eq_ignore_ascii_case("email") {
        return Err(BadMail::NotEmail);
    }
    let mut out = Incoming::default();
    for (name, value) in &fields {
        let name = name.to_ascii_lowercase();
        if let Some((_, flag)) = FLAGS.iter().find(|(n, _)| *n == name) {
            out.flags
                .push((flag, value.trim().eq_ignore_ascii_case("true")));
        } else if name == "received" {
            out.received = parse_time(value.trim());
        } else if name == "emailitem" && !value.trim().is_empty() {
            out.message = Some(checked(value)?);
        }
    }
    Ok(out)
}

/// A message as stored: CRLF line ends, a header that mail-parser reads.
fn checked(text: &str) -> Result<Vec<u8>, BadMail> {
    let text = text.trim_start_matches(['\r', '\n']);
    let mut raw = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if !raw.ends_with("\r\n") {
        raw.push_str("\r\n");
    }
    let parsed = mail_parser::MessageParser::new().parse_headers(raw.as_bytes());
    if parsed.is_none_or(|m| m.headers().is_empty()) {
        return Err(BadMail::NoHeader);
    }
    Ok(raw.into_bytes())
}

/// A message's key for matching a device's copy with the stored one: its Message-ID, else
/// the hash of the whole message.
pub fn key(raw: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match mail_parser::MessageParser::new()
        .parse_headers(raw)
        .as_ref()
        .and_then(|m| m.message_id())
    {
        Some(id) => id.hash(&mut h),
        None => raw.hash(&mut h),
    }
    h.finish()
}

/// Flags set as the device says, the others kept.
pub fn apply(flags: &mut Vec<String>, changes: &[(&str, bool)]) {
    for (flag, on) in changes {
        flags.retain(|f| !f.eq_ignore_ascii_case(flag));
        if *on {
            flags.push(flag.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bureau_wbxml::syncml::page;

    const MSG: &str = "From: Bob <bob@example.com>\r\nTo: alice@example.com\r\n\
        Subject: Lunch <today> & more\r\nMessage-ID: <m1@example.com>\r\n\r\nAt noon.\r\nBob\r\n";

    fn item(flags: &[&str]) -> Item {
        Item {
            id: 1,
            collection: 1,
            modseq: 1,
            name: None,
            blob: None,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            date: 1_796_000_000,
            props: Default::default(),
        }
    }

    #[test]
    fn a_message_goes_out_as_an_email_object_and_comes_back() {
        let out = outgoing(
            &item(&["\\Seen", "\\Flagged"]),
            MSG.as_bytes(),
            false,
            &Filter::default(),
        );
        assert!(
            out.starts_with("<Email><read>true</read><replied>false</replied>"),
            "{out}"
        );
        assert!(out.contains("<flagged>true</flagged>"));
        assert!(out.contains("Subject: Lunch &lt;today&gt; &amp; more"));
        let back = incoming(Some("application/vnd.omads-email+xml"), &out).unwrap();
        assert_eq!(back.message.as_deref(), Some(MSG.as_bytes()));
        assert_eq!(back.received, Some(1_796_000_000));
        assert!(
            back.flags.contains(&("\\Seen", true)) && back.flags.contains(&("\\Answered", false))
        );
        let mut flags = vec!["\\Seen".to_string(), "$Junk".into()];
        apply(&mut flags, &[("\\Seen", false), ("\\Flagged", true)]);
        assert_eq!(flags, ["$Junk", "\\Flagged"]);
    }

    #[test]
    fn a_filter_cuts_the_body_or_keeps_the_headers_only() {
        let headers = outgoing(
            &item(&[]),
            MSG.as_bytes(),
            true,
            &Filter {
                since: None,
                max_body: Some(0),
            },
        );
        assert!(
            headers.ends_with("Message-ID: <m1@example.com>\r\n\r\n"),
            "{headers}"
        );
        let two = outgoing(
            &item(&[]),
            MSG.as_bytes(),
            true,
            &Filter {
                since: None,
                max_body: Some(2),
            },
        );
        assert!(two.ends_with("\r\n\r\nAt"));
    }

    #[test]
    fn a_devices_filter_is_read_or_refused() {
        let target = |cgi: &str, prop: &str| {
            let mut item = Element::new(page::SYNCML, "Item").with(
                Element::new(page::SYNCML, "Meta")
                    .with(Element::new(page::METINF, "Type").text("syncml:filtertype-cgi")),
            );
            item = item.with(Element::new(page::SYNCML, "Data").text(cgi));
            let prop = Element::new(crate::codec::DEVINF, "Property")
                .with(Element::new(crate::codec::DEVINF, "PropName").text(prop))
                .with(Element::new(crate::codec::DEVINF, "MaxSize").text("0"));
            let field = Element::new(page::SYNCML, "Field").with(
                Element::new(page::SYNCML, "Item")
                    .with(Element::new(page::SYNCML, "Data").with(prop)),
            );
            Element::new(page::SYNCML, "Target").with(
                Element::new(page::SYNCML, "Filter")
                    .with(Element::new(page::SYNCML, "Record").with(item))
                    .with(field),
            )
        };
        let f = Filter::of(&target("received&GE;20261201T000000Z", "emailitem"))
            .unwrap()
            .unwrap();
        assert_eq!(f.since, Some(parse_time("20261201").unwrap()));
        assert_eq!(f.max_body, Some(0));
        let mut old = item(&[]);
        old.date = f.since.unwrap() - 1;
        assert!(!f.admits(&old));
        assert!(Filter::of(&target("subject&CON;lunch", "emailitem")).is_err());
        assert!(Filter::of(&target("received&GE;20261201", "subject")).is_err());
    }

    #[test]
    fn what_is_not_a_message_is_refused() {
        assert_eq!(
            incoming(Some("message/rfc822"), "just words"),
            Err(BadMail::NoHeader)
        );
        assert_eq!(
            incoming(None, "<contact><FileAs>x</FileAs></contact>"),
            Err(BadMail::NotEmail)
        );
        let flags_only = incoming(None, "<Email><read>true</read></Email>").unwrap();
        assert_eq!(
            (flags_only.flags, flags_only.message),
            (vec![("\\Seen", true)], None)
        );
        assert_ne!(key(MSG.as_bytes()), key(b"Subject: x\r\n\r\n"));
        assert_eq!(
            key(MSG.as_bytes()),
            key(MSG.replace("At noon", "Later").as_bytes())
        );
    }
}
