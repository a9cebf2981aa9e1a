//! What the transcript tests share: a real IMAP server in this process, and a client that
//! speaks lines to it.
#![allow(dead_code)] // each test file uses its own part

#[path = "../../../../bench/common/anycert.rs"]
mod anycert;

use bureau_core::Auth;
use bureau_core::shutdown::{Shutdown, Trigger};
use bureau_directory::{Directory, DirectoryOptions, NewUser};
use bureau_imap::{Imap, Mode};
use bureau_store::{Store, StoreOptions};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub const PW: &str = "long enough pw";

/// A running server with users alice and bob.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub store: Store,
    pub _trigger: Trigger,
    pub _dir: tempfile::TempDir,
}

pub async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
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
    for u in ["alice", "bob"] {
        directory
            .add_user(NewUser {
                address: format!("{u}@example.com"),
                password: PW.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let auth = Auth::new(directory, Default::default());
    let certs = bureau_core::tls::CertStore::open(None, dir.path(), "box.example.com").unwrap();
    let imap = Imap::new(
        "box.example.com".into(),
        auth,
        certs.acceptor(&[]).unwrap(),
        100,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, shutdown): (Trigger, Shutdown) = bureau_core::shutdown::channel();
    tokio::spawn(imap.serve(listener, Mode::Tls, shutdown));
    Server {
        addr,
        store,
        _trigger: trigger,
        _dir: dir,
    }
}

pub struct Client {
    pub r: BufReader<ReadHalf<TlsStream<TcpStream>>>,
    pub w: WriteHalf<TlsStream<TcpStream>>,
    pub tag: u32,
}

impl Client {
    pub async fn connect(s: &Server) -> Client {
        let tcp = TcpStream::connect(s.addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(anycert::client_config()))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let (r, w) = tokio::io::split(tls);
        let mut c = Client {
            r: BufReader::new(r),
            w,
            tag: 0,
        };
        let greeting = c.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
        c
    }

    pub async fn login(s: &Server, user: &str) -> Client {
        let mut c = Client::connect(s).await;
        let r = c.cmd(&format!("LOGIN {user} \"{PW}\"")).await;
        assert!(r.last().unwrap().contains(" OK "), "{r:?}");
        c
    }

    /// One response line, literals it announces read into it (as `{n}` then the bytes).
    pub async fn line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut l = Vec::new();
            let n = tokio::time::timeout(Duration::from_secs(30), self.r.read_until(b'\n', &mut l))
                .await
                .expect("server answered within 30 s")
                .unwrap();
            assert!(
                n > 0,
                "connection closed after {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&l);
            let text = String::from_utf8_lossy(&l);
            let t = text.trim_end();
            if let Some(open) = t
                .strip_suffix('}')
                .and_then(|x| x.rfind('{').map(|i| &x[i + 1..]))
            {
                let n: usize = open.trim_end_matches('+').parse().unwrap();
                let mut lit = vec![0; n];
                self.r.read_exact(&mut lit).await.unwrap();
                out.extend_from_slice(&lit);
                continue;
            }
            break;
        }
        String::from_utf8_lossy(&out).trim_end().to_string()
    }

    pub async fn send(&mut self, raw: &[u8]) {
        self.w.write_all(raw).await.unwrap();
        self.w.flush().await.unwrap();
    }

    /// Sends a tagged command; the untagged lines and the tagged one (tags as `t`).
    pub async fn cmd(&mut self, line: &str) -> Vec<String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.send(format!("{tag} {line}\r\n").as_bytes()).await;
        self.until(&tag).await
    }

    pub async fn until(&mut self, tag: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line().await;
            let done = l.starts_with(&format!("{tag} "));
            out.push(match l.strip_prefix(tag) {
                Some(rest) if done => format!("t{rest}"),
                _ => l,
            });
            if done {
                return out;
            }
        }
    }

    /// `C: line` then exactly these lines (with `*` matching any run).
    pub async fn expect(&mut self, line: &str, want: &[&str]) {
        let got = self.cmd(line).await;
        assert!(
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| like(w, g)),
            "C: {line}\nexpected:\n  {}\ngot:\n  {}",
            want.join("\n  "),
            got.join("\n  ")
        );
    }

    /// `C: line` then lines that include each of these (in any order), and the tagged one.
    pub async fn expect_some(&mut self, line: &str, want: &[&str]) -> Vec<String> {
        let got = self.cmd(line).await;
        for w in want {
            assert!(
                got.iter().any(|g| like(w, g)),
                "C: {line}\nmissing: {w}\ngot:\n  {}",
                got.join("\n  ")
            );
        }
        got
    }

    pub async fn append(&mut self, mailbox: &str, msg: &str) {
        let r = self
            .cmd(&format!("APPEND {mailbox} {{{}+}}\r\n{msg}", msg.len()))
            .await;
        assert!(r.last().unwrap().starts_with("t"), "{r:?}");
        assert!(r.last().unwrap().contains(" OK "), "{r:?}");
    }
}

/// A glob where `*` matches any run of characters.
pub fn like(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let Some(mut rest) = s.strip_prefix(parts[0]) else {
        return false;
    };
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.ends_with(parts[parts.len() - 1])
}

pub fn msg(subject: &str, date: &str) -> String {
    format!("Date: {date}\r\nFrom: a@example.com\r\nSubject: {subject}\r\n\r\nbody\r\n")
}

pub fn field<'a>(l: &'a str, name: &str) -> Option<&'a str> {
    let i = l.find(name)?;
    let rest = &l[i + name.len()..];
    Some(&rest[..rest.find([' ', ')']).unwrap_or(rest.len())])
}
