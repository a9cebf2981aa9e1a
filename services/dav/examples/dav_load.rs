//! CalDAV load for docs/BENCHMARKS.md, against Bureau and Radicale alike: one keep-alive
//! connection (TLS for https:// URLs, any certificate accepted), requests one after another.
//! Events: 10% weekly (half of them without end), the rest single, spread over 2026.
//!
//!     dav_load CALENDAR-URL USER PASSWORD put N        PUT events 0..N one by one
//!     dav_load CALENDAR-URL USER PASSWORD query RUNS   calendar-query for June 2026
//!     dav_load CALENDAR-URL USER PASSWORD propfind RUNS   PROPFIND depth 1 (getetag)
//!     dav_load CALENDAR-URL USER PASSWORD sync RUNS    sync-collection after 10 changes
//!     dav_load - - - ics N FILE                          the N events as one .ics
//!     dav_load - - - files N DIR                         the N events as DIR/ev-I.ics

#[path = "../../../bench/common/anycert.rs"]
mod anycert;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn event(i: usize, edit: &str) -> String {
    let day = (i * 7919) % 365;
    let start =
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(day as u64);
    let hour = 8 + i % 10;
    let rule = match i % 20 {
        0 => "RRULE:FREQ=WEEKLY\r\n",
        10 => "RRULE:FREQ=WEEKLY;COUNT=20\r\n",
        _ => "",
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\nUID:ev-{i}@bench\r\n\
         DTSTAMP:20261122T000000Z\r\nDTSTART:{d}T{hour:02}0000Z\r\nDTEND:{d}T{h2:02}0000Z\r\n{rule}\
         SUMMARY:Event {i}{edit}\r\nLOCATION:Room {r}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        d = start.format("%Y%m%d"),
        h2 = hour + 1,
        r = i % 12,
    )
}

struct Conn {
    send: SendRequest<Full<Bytes>>,
    host: String,
    path: String,
    auth: String,
    /// To connect again when the server closes after an answer (Radicale does).
    url: String,
    user: String,
    password: String,
}

impl Conn {
    async fn open(url: &str, user: &str, password: &str) -> Conn {
        let uri: hyper::Uri = url.parse().expect("a URL");
        let host = uri.host().expect("a host").to_string();
        let tls = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .expect("connect");
        tcp.set_nodelay(true).unwrap();
        let send = if tls {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(anycert::client_config()));
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let s = connector.connect(name, tcp).await.expect("TLS");
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                .await
                .expect("HTTP");
            tokio::spawn(conn);
            send
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .expect("HTTP");
            tokio::spawn(conn);
            send
        };
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Conn {
            send,
            host,
            path: uri.path().to_string(),
            auth: format!("Basic {auth}"),
            url: url.to_string(),
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        depth: Option<&str>,
        body: String,
    ) -> (u16, String) {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("host", &self.host)
            .header("authorization", &self.auth)
            .header(
                "content-type",
                if method == "PUT" {
                    "text/calendar"
                } else {
                    "application/xml"
                },
            );
        if let Some(d) = depth {
            req = req.header("depth", d);
        }
        if self.send.ready().await.is_err() {
            *self = Conn::open(
                &self.url.clone(),
                &self.user.clone(),
                &self.password.clone(),
            )
            .await;
        }
        let resp = self
            .send
            .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn show(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0;
    format!("p50 {:.2} ms, p99 {:.2} ms", at(0.5), at(0.99))
}

const QUERY: &str = r#"<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:time-range start="20260601T000000Z" end="20260701T000000Z"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"#;
const PROPFIND: &str =
    r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>"#;
const TOKEN: &str = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:sync-token/></d:prop></d:propfind>"#;

fn sync_body(token: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 5 {
        eprintln!(
            "usage: dav_load CALENDAR-URL USER PASSWORD put|query|propfind|sync|ics|files ARGS"
        );
        std::process::exit(2);
    }
    let n: usize = a[4].parse().expect("a number");
    match a[3].as_str() {
        "ics" => {
            let mut out = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n");
            for i in 0..n {
                let e = event(i, "");
                let start = e.find("BEGIN:VEVENT").unwrap();
                let end = e.find("END:VCALENDAR").unwrap();
                out.push_str(&e[start..end]);
            }
            out.push_str("END:VCALENDAR\r\n");
            std::fs::write(&a[5], out).expect("write");
            return;
        }
        "files" => {
            for i in 0..n {
                std::fs::write(format!("{}/ev-{i}.ics", a[5]), event(i, "")).expect("write");
            }
            return;
        }
        _ => {}
    }
    let mut c = Conn::open(&a[0], &a[1], &a[2]).await;
    let base = c.path.clone();
    let mut lat = Vec::new();
    match a[3].as_str() {
        "put" => {
            let started = Instant::now();
            for i in 0..n {
                let at = Instant::now();
                let (s, body) = c
                    .call("PUT", &format!("{base}ev-{i}.ics"), None, event(i, ""))
                    .await;
                assert!(s == 201 || s == 204, "PUT {i}: {s} {body}");
                lat.push(at.elapsed());
            }
            let secs = started.elapsed().as_secs_f64();
            let k = lat.len().min(1000);
            println!(
                "PUT {n} events one by one: {:.0} PUT/s; first {k}: {}; last {k}: {}",
                n as f64 / secs,
                show(lat[..k].to_vec()),
                show(lat[lat.len() - k..].to_vec())
            );
        }
        "query" => {
            let mut hits = 0;
            for _ in 0..n {
                let at = Instant::now();
                let (s, body) = c.call("REPORT", &base, Some("1"), QUERY.into()).await;
                lat.push(at.elapsed());
                assert_eq!(s, 207, "{body}");
                hits = body.matches("getetag>").count() / 2;
            }
            println!("calendar-query, one month ({hits} events): {}", show(lat));
        }
        "propfind" => {
            let mut count = 0;
            for _ in 0..n {
                let at = Instant::now();
                let (s, body) = c.call("PROPFIND", &base, Some("1"), PROPFIND.into()).await;
                lat.push(at.elapsed());
                assert_eq!(s, 207, "{body}");
                count = body
                    .matches("<d:response>")
                    .count()
                    .max(body.matches("<response>").count());
            }
            println!(
                "PROPFIND depth 1, getetag ({count} responses): {}",
                show(lat)
            );
        }
        "sync" => {
            let (_, body) = c.call("PROPFIND", &base, Some("0"), TOKEN.into()).await;
            let token = body
                .split("sync-token>")
                .nth(1)
                .and_then(|t| t.split('<').next())
                .expect("a sync-token")
                .to_string();
            for i in 0..10 {
                let (s, _) = c
                    .call(
                        "PUT",
                        &format!("{base}ev-{i}.ics"),
                        None,
                        event(i, " (edited)"),
                    )
                    .await;
                assert!(s == 201 || s == 204);
            }
            let mut changed = 0;
            for _ in 0..n {
                let at = Instant::now();
                let (s, body) = c.call("REPORT", &base, Some("1"), sync_body(&token)).await;
                lat.push(at.elapsed());
                assert_eq!(s, 207, "{body}");
                changed = body.matches("getetag>").count() / 2;
            }
            println!(
                "sync-collection after 10 changes ({changed} changed): {}",
                show(lat)
            );
        }
        other => panic!("unknown mode {other}"),
    }
}
