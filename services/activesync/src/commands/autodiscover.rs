//! Autodiscover for ActiveSync clients: the address and password are enough to find the
//! server. POX (MS-OXDSCLI, the mobilesync schema) at /autodiscover/autodiscover.xml, after
//! Basic sign-in; v2 JSON (`?Protocol=ActiveSync`) at /autodiscover/autodiscover.json,
//! public as DNS is. The request's XML is read with quick-xml, which expands no entity and
//! reads no DTD.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

pub const POX: &str = "/autodiscover/autodiscover.xml";
pub const JSON: &str = "/autodiscover/autodiscover.json";
const MOBILESYNC: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
const RESPONSE_NS: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";

pub fn serves(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p == POX || p == JSON || p.starts_with("/autodiscover/autodiscover.json/")
}

fn xml(status: StatusCode, body: String) -> crate::Resp {
    Response::builder()
        .status(status)
        .header("content-type", "text/xml; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers")
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// The e-mail address and the response schema a POX request asks for.
pub fn parse_request(body: &[u8]) -> Option<(String, String)> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let (mut email, mut schema) = (None, None);
    loop {
        match r.read_event().ok()? {
            Event::Start(e) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned())
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t.decode().ok()?.trim().to_string();
                match path.last().map(String::as_str) {
                    Some("EMailAddress") => email = Some(text),
                    Some("AcceptableResponseSchema") => schema = Some(text),
                    _ => {}
                }
            }
            Event::DocType(_) => return None,
            Event::Eof => break,
            _ => {}
        }
    }
    Some((email?, schema?))
}

/// The POX answer for a signed-in user.
pub fn pox(body: &[u8], url: &str, display_name: &str) -> crate::Resp {
    let error = |code: &str, message: &str| {
        xml(
            StatusCode::OK,
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<Autodiscover xmlns=\"{RESPONSE_NS}\"><Response xmlns=\"{MOBILESYNC}\"><Error><ErrorCode>{code}</ErrorCode><Message>{message}</Message><DebugData/></Error></Response></Autodiscover>"
            ),
        )
    };
    let Some((email, schema)) = parse_request(body) else {
        return error("600", "Invalid Request");
    };
    if schema != MOBILESYNC {
        // Outlook's schema: this server offers ActiveSync only.
        return error("601", "Provider is not available");
    }
    xml(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<Autodiscover xmlns=\"{RESPONSE_NS}\"><Response xmlns=\"{MOBILESYNC}\"><Culture>en:us</Culture><User><DisplayName>{}</DisplayName><EMailAddress>{}</EMailAddress></User><Action><Settings><Server><Type>MobileSync</Type><Url>{url}</Url><Name>{url}</Name></Server></Settings></Action></Response></Autodiscover>",
            escape(display_name),
            escape(&email)
        ),
    )
}

/// The v2 (JSON) answer: where ActiveSync is, for any address.
pub fn json(query: &str, url: &str) -> crate::Resp {
    let protocol = query
        .split('&')
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.eq_ignore_ascii_case("protocol").then(|| v.to_string())
        })
        .unwrap_or_default();
    let (status, body) = if protocol.eq_ignore_ascii_case("activesync") {
        (
            StatusCode::OK,
            format!("{{\"Protocol\":\"ActiveSync\",\"Url\":\"{url}\"}}"),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "{\"ErrorCode\":\"InvalidProtocol\",\"ErrorMessage\":\"The given protocol value is invalid. Supported values are 'ActiveSync'.\"}".to_string(),
        )
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_without_dtds() {
        let good = br#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>ann@office.example</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>"#;
        assert_eq!(
            parse_request(good),
            Some(("ann@office.example".into(), MOBILESYNC.into()))
        );
        let dtd = br#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "boom">]><Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>"#;
        assert_eq!(parse_request(dtd), None);
        assert_eq!(parse_request(b"not xml <"), None);
    }
}
