//! HTTP pieces: responses, bounded bodies, Basic credentials, URL segments.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

pub type Resp = Response<Full<Bytes>>;

pub fn bytes(code: StatusCode, content_type: &str, body: Vec<u8>) -> Resp {
    Response::builder()
        .status(code)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static headers")
}

pub fn status(code: StatusCode, text: &str) -> Resp {
    bytes(
        code,
        "text/plain; charset=utf-8",
        format!("{text}\n").into_bytes(),
    )
}

pub fn empty(code: StatusCode) -> Resp {
    Response::builder()
        .status(code)
        .body(Full::new(Bytes::new()))
        .expect("static headers")
}

pub fn xml(code: StatusCode, body: String) -> Resp {
    bytes(code, "application/xml; charset=utf-8", body.into_bytes())
}

/// A DAV error body naming the precondition that failed (RFC 4918 16).
pub fn dav_error(code: StatusCode, ns: &str, condition: &str) -> Resp {
    dav_error_with(code, ns, condition, "")
}

/// A precondition's error with what is wrong in words, for the person reading a client's
/// log (as sabre/dav's `s:message`): `<d:error><c:valid-calendar-data/><b:message>`.
pub fn dav_error_because(code: StatusCode, ns: &str, condition: &str, why: &str) -> Resp {
    xml(
        code,
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error {} xmlns:b=\"urn:bureau\">{}<b:message>{}</b:message></d:error>",
            crate::xml::NAMESPACES,
            crate::xml::empty_tag(ns, condition),
            crate::xml::esc(why),
        ),
    )
}

/// A precondition's error element with content (an href, for no-uid-conflict).
pub fn dav_error_with(code: StatusCode, ns: &str, condition: &str, inner: &str) -> Resp {
    let element = if inner.is_empty() {
        crate::xml::empty_tag(ns, condition)
    } else {
        crate::xml::tag(ns, condition, inner)
    };
    xml(
        code,
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error {}>{element}</d:error>",
            crate::xml::NAMESPACES,
        ),
    )
}

pub fn redirect(to: &str) -> Resp {
    Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header("location", to)
        .body(Full::new(Bytes::new()))
        .expect("static headers")
}

pub fn unauthorized() -> Resp {
    let mut r = status(StatusCode::UNAUTHORIZED, "sign in");
    r.headers_mut().insert(
        "www-authenticate",
        "Basic realm=\"Bureau\", charset=\"UTF-8\""
            .parse()
            .expect("ascii"),
    );
    r
}

pub fn options() -> Resp {
    let mut r = empty(StatusCode::OK);
    let h = r.headers_mut();
    h.insert(
        "dav",
        "1, 3, access-control, calendar-access, calendar-auto-schedule, addressbook, extended-mkcol"
            .parse()
            .expect("ascii"),
    );
    h.insert(
        "allow",
        "OPTIONS, GET, HEAD, PUT, DELETE, POST, COPY, MOVE, PROPFIND, PROPPATCH, MKCOL, MKCALENDAR, REPORT"
            .parse()
            .expect("ascii"),
    );
    r
}

/// The request body, refused with 413 past `limit` bytes.
pub async fn body(b: Incoming, limit: usize) -> Result<Vec<u8>, Resp> {
    match Limited::new(b, limit).collect().await {
        Ok(c) => Ok(c.to_bytes().to_vec()),
        Err(_) => Err(status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        )),
    }
}

/// Login and password of an `Authorization: Basic` header.
pub fn basic_credentials(h: &HeaderMap) -> Option<(String, String)> {
    bureau_core::auth::basic_credentials(h.get("authorization")?.to_str().ok()?)
}

pub use bureau_core::url::decode as unescape;

/// A segment for a URL path: unreserved characters as they are, the rest percent-encoded.
pub fn escape(seg: &str) -> String {
    let mut out = String::with_capacity(seg.len());
    escape_into(&mut out, seg);
    out
}

/// `escape`, written at the end of `out`.
pub fn escape_into(out: &mut String, seg: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        for s in ["plain.ics", "a b/c?d#e%f", "café.vcf", "x@y+z"] {
            assert_eq!(unescape(&escape(s)).as_deref(), Some(s));
        }
        assert_eq!(unescape("%zz"), None);
        assert_eq!(unescape("%FF"), None);
    }

    #[test]
    fn basic() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic YWxpY2U6cHc6Mg==".parse().unwrap());
        assert_eq!(basic_credentials(&h), Some(("alice".into(), "pw:2".into())));
        h.insert("authorization", "Bearer x".parse().unwrap());
        assert_eq!(basic_credentials(&h), None);
    }
}
