//! The whole SMTP session as a fuzz target (issue 17), on stable Rust with proptest: a real
//! server in this process (store, directory, queue, the port-25 listener on loopback) is
//! sent generated sessions (commands, DATA and BDAT with every near-end of data, AUTH
//! garbage, raw bytes), and after each
//! - no session panicked (the fence counts panics) and a new connection is greeted;
//! - nothing written after a DATA that did not end with `<CR><LF>.<CR><LF>` was run as a
//!   command: a smuggled transaction is never delivered as its own message.

use bureau_core::Auth;
use bureau_core::shutdown::{Shutdown, Trigger};
use bureau_directory::{Directory, DirectoryOptions, NewUser};
use bureau_smtp::{Mode, Queue, Smtp};
use bureau_store::{Actor, Store, StoreOptions};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

struct Server {
    addr: SocketAddr,
    store: Store,
    _runtime: tokio::runtime::Runtime,
    _trigger: Trigger,
    _dir: tempfile::TempDir,
}

/// One server for every case (a case is one connection).
fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (addr, store, trigger) = runtime.block_on(async {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            let directory = Directory::new(
                store.clone(),
                DirectoryOptions {
                    argon2_m_kib: 1024,
                    argon2_t: 1,
                    dkim_bits: 1024,
                    ..Default::default()
                },
            )
            .unwrap();
            directory.add_domain("example.com").await.unwrap();
            directory
                .add_user(NewUser {
                    address: "alice@example.com".into(),
                    password: "long enough pw".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let mut cfg = bureau_core::config::SmtpConfig {
                verify_inbound: false,
                ..Default::default()
            };
            cfg.max_messages_per_minute_per_ip = 1_000_000;
            let queue = Queue::open(directory.clone(), cfg.clone(), "box.example.com".into())
                .await
                .unwrap();
            let certs =
                bureau_core::tls::CertStore::open(None, dir.path(), "box.example.com").unwrap();
            let smtp = Smtp::new(
                cfg,
                "box.example.com".into(),
                Auth::new(directory, Default::default()),
                certs.acceptor(&[]).unwrap(),
                queue,
                None,
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (trigger, shutdown): (Trigger, Shutdown) = bureau_core::shutdown::channel();
            tokio::spawn(smtp.serve(listener, Mode::Mx, shutdown));
            (addr, store, trigger)
        });
        Server {
            addr,
            store,
            _runtime: runtime,
            _trigger: trigger,
            _dir: dir,
        }
    })
}

/// Sends `input` on a new connection and reads what the server says until it closes or
/// goes quiet.
fn session(input: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(server().addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    out.extend_from_slice(&buf[..n]);
    // The server may close early (too many bad commands): what it did not read is dropped.
    let _ = s.write_all(input);
    let _ = s.write_all(b"\r\n.\r\nQUIT\r\n");
    // Then end of input, so that a session still reading a BDAT chunk ends too.
    let _ = s.shutdown(std::net::Shutdown::Write);
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// The subjects of alice's INBOX.
fn inbox_subjects() -> Vec<String> {
    let store = &server().store;
    let r = store.reader(Actor::System).unwrap();
    let alice = r.principal_by_name("alice").unwrap();
    let inbox = r.collection_by_name(alice.id, "INBOX").unwrap();
    r.items(inbox.id)
        .unwrap()
        .iter()
        .filter_map(|it| {
            let raw = r.content(it).ok()?;
            let m = bureau_core::mime::parse(&raw)?;
            m.subject().map(str::to_string)
        })
        .collect()
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO client.example\r\n".to_vec()),
        Just(b"HELO client.example\r\n".to_vec()),
        Just(b"MAIL FROM:<x@client.example>\r\n".to_vec()),
        Just(b"MAIL FROM:<x@client.example> BODY=8BITMIME SIZE=100\r\n".to_vec()),
        Just(b"RCPT TO:<alice@example.com>\r\n".to_vec()),
        Just(b"RCPT TO:<nobody@elsewhere.example>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"BDAT 5\r\nhello".to_vec()),
        Just(b"BDAT 0 LAST\r\n".to_vec()),
        Just(b"BDAT 99999999999999999999\r\n".to_vec()),
        Just(b"AUTH PLAIN AGFsaWNlAHdyb25n\r\n".to_vec()),
        Just(b"AUTH LOGIN\r\n".to_vec()),
        Just(b"*\r\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"NOOP\r\n".to_vec()),
        Just(b"STARTTLS\r\n".to_vec()),
        Just(b"VRFY alice\r\n".to_vec()),
        Just(b"\r\n.\r\n".to_vec()),
        Just(b"\r\n.\n".to_vec()),
        Just(b"\n.\r\n".to_vec()),
        Just(b"\r\n.\r\r\n".to_vec()),
        Just(b"\r.\r".to_vec()),
        Just(b"\r\n..\r\n".to_vec()),
        Just(b"Subject: s\r\n\r\nbody\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
        "[ -~]{0,1100}\r\n".prop_map(String::into_bytes),
    ]
}

/// Line endings a careless or hostile client puts where `<CR><LF>.<CR><LF>` belongs.
fn near_end() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        Just(&b"\r\n.\r\r\n"[..]),
        Just(&b"\r\n.\n"[..]),
        Just(&b"\n.\r\n"[..]),
        Just(&b"\n.\n"[..]),
        Just(&b"\r.\r\n"[..]),
        Just(&b"\r\n.\r"[..]),
        Just(&b"\r\n.\x00\r\n"[..]),
        Just(&b"\r\n .\r\n"[..]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_session_leaves_the_server_up(frags in prop::collection::vec(fragment(), 0..24)) {
        let before = bureau_core::fence::panics();
        session(&frags.concat());
        prop_assert_eq!(bureau_core::fence::panics(), before);
        let hello = session(b"QUIT\r\n");
        prop_assert!(hello.starts_with(b"220 "), "{}", String::from_utf8_lossy(&hello));
    }

    #[test]
    fn nothing_after_a_false_end_of_data_is_a_command(
        body in "[ -~]{0,80}",
        end in near_end(),
        n in 0u32..1_000_000,
    ) {
        let subject = format!("smuggled {n}");
        let input = format!(
            "EHLO client.example\r\nMAIL FROM:<x@client.example>\r\n\
             RCPT TO:<alice@example.com>\r\nDATA\r\nSubject: carrier\r\n\r\n{body}"
        );
        let smuggled = format!(
            "MAIL FROM:<ceo@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n\
             From: ceo@example.com\r\nSubject: {subject}\r\n\r\npay now"
        );
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(end);
        bytes.extend_from_slice(smuggled.as_bytes());
        session(&bytes);
        prop_assert!(!inbox_subjects().contains(&subject), "{:?} delivered {subject}", end);
    }
}
