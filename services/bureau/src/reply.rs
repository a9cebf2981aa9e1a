//! Answers the HTTPS side builds itself, shared by the web front and the console's files.

use bureau_admin::Resp;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

/// A plain-text answer.
pub(crate) fn plain(status: StatusCode, text: &str) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text.to_string())))
        .unwrap_or_default()
}
