//! The web console's assets (web-admin/, a page, a script, a stylesheet and a catalogue
//! of its words per language, with no build step), embedded in the binary and served at /admin/ with headers that keep the page
//! from being framed or fed other scripts. The console itself talks to /api/v1/.

use bureau_admin::Resp;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

#[derive(rust_embed::Embed)]
#[folder = "../../web-admin/"]
#[include = "*.html"]
#[include = "*.js"]
#[include = "*.css"]
struct Assets;

/// Whether a path is the console's.
pub fn serves(path: &str) -> bool {
    path == "/" || path == "/admin" || path.starts_with("/admin/")
}

pub fn handle(path: &str, if_none_match: Option<&str>) -> Resp {
    let name = match path {
        "/" | "/admin" => return redirect("/admin/"),
        "/admin/" => "index.html",
        p => p.trim_start_matches("/admin/"),
    };
    // The words, one catalogue per language, kept once in the binary (bureau-words).
    let words = name
        .strip_prefix("i18n/")
        .and_then(|n| n.strip_suffix(".json"))
        .and_then(bureau_words::catalogue_json);
    let (data, etag): (std::borrow::Cow<'static, [u8]>, String) = match (words, Assets::get(name)) {
        (Some(json), _) => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            json.hash(&mut h);
            (json.as_bytes().into(), format!("\"{:016x}\"", h.finish()))
        }
        (None, Some(file)) => {
            let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]));
            (file.data, etag)
        }
        (None, None) => return crate::reply::plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    let kind = match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        // The console's words, a catalogue per language.
        Some("json") => "application/json; charset=utf-8",
        _ => "application/octet-stream",
    };
    let b = Response::builder()
        .header("etag", &etag)
        .header("cache-control", "no-cache")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        );
    let resp = if if_none_match == Some(etag.as_str()) {
        b.status(StatusCode::NOT_MODIFIED)
            .body(Full::new(Bytes::new()))
    } else {
        b.status(StatusCode::OK)
            .header("content-type", kind)
            .body(Full::new(Bytes::from(data.into_owned())))
    };
    resp.unwrap_or_default()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn redirect(to: &str) -> Resp {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", to)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_script_and_stylesheet_are_embedded() {
        for p in ["/admin/", "/admin/app.js", "/admin/style.css"] {
            let r = handle(p, None);
            assert_eq!(r.status(), StatusCode::OK, "{p}");
            assert!(
                r.headers()["content-security-policy"]
                    .to_str()
                    .unwrap()
                    .contains("frame-ancestors 'none'")
            );
            let tag = r.headers()["etag"].to_str().unwrap().to_string();
            assert_eq!(handle(p, Some(&tag)).status(), StatusCode::NOT_MODIFIED);
        }
        assert_eq!(
            handle("/admin/../Cargo.toml", None).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(handle("/admin", None).status(), StatusCode::FOUND);
    }
}
