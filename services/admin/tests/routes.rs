//! The admin API's resources, each through the typed client the CLI uses, over a unix
//! socket to an `AdminApi` on a store in a temporary directory: what each answers, and
//! that bad input gets its status and changes nothing.

use bureau_admin::client::{Client, ClientError};
use bureau_admin::{AdminApi, Caller, DaemonInfo, Services};
use bureau_core::auth::Auth;
use bureau_directory::{Directory, DirectoryOptions};
use bureau_store::{Store, StoreOptions};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

struct Api {
    _dir: tempfile::TempDir,
    client: Client,
}

const NONE: Option<&Value> = None;

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("data"), StoreOptions::default()).unwrap();
    let directory = Directory::new(
        store,
        DirectoryOptions {
            argon2_m_kib: 1024,
            argon2_t: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let certs = bureau_core::tls::CertStore::open(None, dir.path(), "box.example.com").unwrap();
    let helper = dir.path().join("no-helper.sock");
    let info = DaemonInfo {
        hostname: "box.example.com".into(),
        data_dir: dir.path().display().to_string(),
        started: std::time::Instant::now(),
        services: Mutex::new(Vec::new()),
        setup_token: dir.path().join("setup-token"),
        updates_dir: dir.path().join("updates"),
        helper_socket: helper.clone(),
        max_update_bytes: 1 << 20,
        inflight: None,
        max_restore_bytes: 1 << 20,
        restart: Arc::new(tokio::sync::Notify::new()),
        hostname_fixed: true,
        system_dir: dir.path().join("system"),
        unclean_stop: None,
        ports: Default::default(),
    };
    let admin = AdminApi::new(Services {
        auth: Auth::new(directory.clone(), Default::default()),
        info: Arc::new(info),
        session_minutes: 60,
        acme: bureau_core::acme::Acme::new(certs.clone(), "box.example.com", None),
        certs,
        proxy_log: dir.path().join("access.log"),
        samba: Arc::new(bureau_daemons::samba::Keeper::new(directory, helper)),
        queue: None,
    });
    let socket = dir.path().join("admin.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let admin = admin.clone();
            let svc = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, std::convert::Infallible>(admin.handle(req, Caller::Socket).await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc),
            );
        }
    });
    Api {
        client: Client::new(&socket),
        _dir: dir,
    }
}

impl Api {
    async fn ok(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        match self.client.call::<Value>(method.clone(), path, body).await {
            Ok(v) => v.unwrap_or(Value::Null),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// The refusal's status and field.
    async fn refused(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Option<String>) {
        match self.client.call::<Value>(method.clone(), path, body).await {
            Err(ClientError::Api(e, status)) => (status, e.field),
            other => panic!("{method} {path}: not refused: {other:?}"),
        }
    }

    async fn names(&self, path: &str, key: &str) -> Vec<String> {
        let v = self.ok(Method::GET, path, NONE).await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_str().unwrap().to_string())
            .collect()
    }

    async fn with_user(&self) {
        self.ok(
            Method::POST,
            "/api/v1/domains",
            Some(&json!({"name": "example.com"})),
        )
        .await;
        self.ok(
            Method::POST,
            "/api/v1/users",
            Some(&json!({"address": "ann@example.com", "password": "long enough pw"})),
        )
        .await;
    }
}

#[tokio::test]
async fn domains() {
    let a = api().await;
    let d = a
        .ok(
            Method::POST,
            "/api/v1/domains",
            Some(&json!({"name": "Example.COM"})),
        )
        .await;
    assert_eq!(d["name"], "example.com", "names are kept lowercase");
    assert_eq!(
        a.refused(
            Method::POST,
            "/api/v1/domains",
            Some(&json!({"name": "example.com"}))
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        a.refused(
            Method::POST,
            "/api/v1/domains",
            Some(&json!({"name": "../etc"}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(a.names("/api/v1/domains", "name").await, ["example.com"]);
    let dns = a
        .ok(Method::GET, "/api/v1/domains/example.com/dns", NONE)
        .await;
    assert!(dns.to_string().contains("MX"), "{dns}");
    assert_eq!(
        a.refused(Method::DELETE, "/api/v1/domains/nowhere.example", NONE)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    a.ok(Method::DELETE, "/api/v1/domains/example.com", NONE)
        .await;
    assert!(a.names("/api/v1/domains", "name").await.is_empty());
    // No mail queue here (mail turned off): its endpoints say so.
    assert_eq!(
        a.refused(Method::GET, "/api/v1/queue", NONE).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn users() {
    let a = api().await;
    a.with_user().await;
    assert_eq!(
        a.refused(
            Method::POST,
            "/api/v1/users",
            Some(&json!({"address": "bob@example.com", "password": "short"}))
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    // A domain not served here: the form's address field is wrong.
    let (s, field) = a
        .refused(
            Method::POST,
            "/api/v1/users",
            Some(&json!({"address": "bob@elsewhere.example", "password": "long enough pw"})),
        )
        .await;
    assert_eq!(
        (s, field.as_deref()),
        (StatusCode::BAD_REQUEST, Some("address"))
    );
    assert_eq!(a.names("/api/v1/users", "uid").await, ["ann"]);
    let ann = a.ok(Method::GET, "/api/v1/users/ann", NONE).await;
    assert_eq!(ann["address"], "ann@example.com");
    a.ok(
        Method::PUT,
        "/api/v1/users/ann/password",
        Some(&json!({"password": "a fresh passphrase"})),
    )
    .await;
    assert!(
        a.ok(Method::GET, "/api/v1/users/ann/devices", NONE)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    a.ok(Method::DELETE, "/api/v1/users/ann", NONE).await;
    assert_eq!(
        a.refused(Method::GET, "/api/v1/users/ann", NONE).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn groups() {
    let a = api().await;
    a.with_user().await;
    a.ok(
        Method::POST,
        "/api/v1/groups",
        Some(&json!({"name": "staff", "members": ["ann"]})),
    )
    .await;
    let (s, field) = a
        .refused(
            Method::PUT,
            "/api/v1/groups/staff/members",
            Some(&json!({"members": ["ann", "nobody"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an unknown member ({field:?})");
    let g = a.ok(Method::GET, "/api/v1/groups/staff", NONE).await;
    assert_eq!(
        g["members"],
        json!(["ann"]),
        "the refused change changed nothing"
    );
    a.ok(
        Method::POST,
        "/api/v1/groups/staff/collections",
        Some(&json!({"kind": "mailbox", "name": "Orders"})),
    )
    .await;
    assert!(
        a.ok(Method::GET, "/api/v1/groups/staff/collections", NONE)
            .await
            .to_string()
            .contains("Orders")
    );
    a.ok(Method::DELETE, "/api/v1/groups/staff", NONE).await;
    assert!(a.names("/api/v1/groups", "name").await.is_empty());
}

#[tokio::test]
async fn collections() {
    let a = api().await;
    a.with_user().await;
    let names = a.names("/api/v1/users/ann/collections", "name").await;
    assert!(names.iter().any(|n| n == "calendar"), "{names:?}");
    let ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:i1\r\n\
                DTSTAMP:20261204T000000Z\r\nDTSTART:20261205T090000Z\r\nSUMMARY:One\r\n\
                END:VEVENT\r\nEND:VCALENDAR\r\n";
    let path = |c: &str| format!("/api/v1/users/ann/collections/{c}/import");
    let upload = |c: &str, data: &[u8]| {
        let (client, p, data) = (&a.client, path(c), data.to_vec());
        async move { client.upload(Method::POST, &p, data).await }
    };
    match upload("nothere", ics).await {
        Err(ClientError::Api(_, s)) => assert_eq!(s, StatusCode::NOT_FOUND),
        other => panic!("{other:?}"),
    }
    match upload("calendar", b"hello").await {
        Err(ClientError::Api(_, s)) => assert_eq!(s, StatusCode::BAD_REQUEST),
        other => panic!("{other:?}"),
    }
    let report: Value = serde_json::from_slice(&upload("calendar", ics).await.unwrap()).unwrap();
    assert_eq!(report["stored"], 1);
    let items = a
        .ok(
            Method::GET,
            "/api/v1/users/ann/collections/calendar/items",
            NONE,
        )
        .await;
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(
        a.refused(
            Method::PUT,
            "/api/v1/users/ann/collections/calendar/shares/nobody",
            Some(&json!({"access": "read"}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn system_and_services() {
    let a = api().await;
    let status = a.ok(Method::GET, "/api/v1/status", NONE).await;
    assert_eq!(status["hostname"], "box.example.com", "{status}");
    let cert = a.ok(Method::GET, "/api/v1/certificate", NONE).await;
    assert!(cert.is_object(), "{cert}");
    let proxy = a.ok(Method::GET, "/api/v1/proxy", NONE).await;
    assert!(proxy.is_object(), "{proxy}");
    let (s, field) = a
        .refused(
            Method::PUT,
            "/api/v1/proxy",
            Some(&json!({"networks": ["not a network"]})),
        )
        .await;
    assert_eq!((s, field.is_some()), (StatusCode::BAD_REQUEST, true));
    let samba = a.ok(Method::GET, "/api/v1/samba", NONE).await;
    assert!(samba.is_object(), "{samba}");
}
