//! IMAP load generator for docs/BENCHMARKS.md, run against Bureau and Dovecot alike.
//! Every connection is implicit TLS (993-style); the server's certificate is not checked
//! (loopback benchmark). Each mode prints one result line.
//!
//!     imap_load HOST:PORT USER PASSWORD fill MESSAGES CLIENTS   APPEND to INBOX -> APPEND/s
//!     imap_load HOST:PORT USER PASSWORD login LOGINS CLIENTS    connect, TLS, LOGIN, LOGOUT
//!     imap_load HOST:PORT USER PASSWORD fetch RUNS              SELECT, FETCH 1:1000 ENVELOPE latency
//!     imap_load HOST:PORT USER PASSWORD mixed CLIENTS SECONDS   SELECT/FETCH/STORE/APPEND/EXPUNGE
//!     imap_load HOST:PORT USER PASSWORD idle CLIENTS SECONDS    hold CLIENTS connections in IDLE

#[path = "../../../bench/common/anycert.rs"]
mod anycert;

use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

#[derive(Clone)]
struct Target {
    addr: String,
    user: String,
    password: String,
    tls: TlsConnector,
}

struct Conn {
    r: BufReader<ReadHalf<TlsStream<TcpStream>>>,
    w: WriteHalf<TlsStream<TcpStream>>,
    tag: u32,
}

impl Conn {
    async fn open(t: &Target) -> Conn {
        let tcp = TcpStream::connect(&t.addr).await.expect("connect");
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = t.tls.connect(name, tcp).await.expect("TLS handshake");
        let (r, w) = tokio::io::split(tls);
        let mut c = Conn {
            r: BufReader::new(r),
            w,
            tag: 0,
        };
        let greeting = c.line().await;
        assert!(greeting.starts_with(b"* OK"), "greeting: {greeting:?}");
        c
    }

    async fn login(t: &Target) -> Conn {
        let mut c = Conn::open(t).await;
        c.cmd(&format!("LOGIN \"{}\" \"{}\"", t.user, t.password))
            .await;
        c
    }

    /// One response line, with any literals it announces read into it.
    async fn line(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            if self.r.read_until(b'\n', &mut out).await.expect("read") == 0 {
                panic!("server closed the connection");
            }
            let line = &out[start..];
            let Some(n) = literal_len(line) else {
                return out;
            };
            let at = out.len();
            out.resize(at + n, 0);
            self.r.read_exact(&mut out[at..]).await.expect("literal");
        }
    }

    /// Sends one command and reads until its tagged answer, which must be OK.
    async fn cmd(&mut self, command: &str) -> Vec<u8> {
        self.tag += 1;
        let tag = format!("a{} ", self.tag);
        self.w
            .write_all(format!("{tag}{command}\r\n").as_bytes())
            .await
            .unwrap();
        self.until(&tag, command).await
    }

    async fn until(&mut self, tag: &str, what: &str) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(tag.as_bytes());
            all.extend_from_slice(&line);
            if done {
                assert!(
                    line[tag.len()..].starts_with(b"OK"),
                    "{what}: {}",
                    String::from_utf8_lossy(&line)
                );
                return all;
            }
        }
    }

    /// APPEND with a synchronising literal (every server takes it); returns the new UID.
    async fn append(&mut self, msg: &[u8]) -> Option<u32> {
        self.tag += 1;
        let tag = format!("a{} ", self.tag);
        self.w
            .write_all(format!("{tag}APPEND INBOX {{{}}}\r\n", msg.len()).as_bytes())
            .await
            .unwrap();
        let cont = self.line().await;
        assert!(cont.starts_with(b"+"), "APPEND: {cont:?}");
        self.w.write_all(msg).await.unwrap();
        self.w.write_all(b"\r\n").await.unwrap();
        let all = self.until(&tag, "APPEND").await;
        let text = String::from_utf8_lossy(&all);
        let at = text.find("APPENDUID ")?;
        text[at + 10..]
            .split_whitespace()
            .nth(1)?
            .trim_end_matches(']')
            .parse()
            .ok()
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..])
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

fn message(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender {s} <sender{s}@example.org>\r\nTo: Load <load@bench.example>\r\n\
         Subject: Load message {i} about topic {t}\r\n\
         Date: Mon, 2 Nov 2026 {h:02}:{mi:02}:{se:02} +0000\r\n\
         Message-ID: <{i}.{n}@load.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n",
        s = i % 50,
        t = i % 97,
        h = (i / 3600) % 24,
        mi = (i / 60) % 60,
        se = i % 60,
        n = std::process::id(),
    )
    .into_bytes();
    while m.len() < 3000 {
        m.extend_from_slice(b"The quick brown fox jumps over the lazy dog, message body text.\r\n");
    }
    m
}

struct Lat(Vec<Duration>);

impl Lat {
    fn show(&mut self) -> String {
        self.0.sort();
        let at = |q: f64| {
            let i = ((self.0.len() as f64 * q) as usize).min(self.0.len().saturating_sub(1));
            self.0.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        format!("p50 {:.2} ms, p99 {:.2} ms", at(0.5), at(0.99))
    }
}

/// Splits `total` jobs over `clients` tasks, each running `job(client, conn-less index)`.
async fn spread<F, Fut>(total: usize, clients: usize, job: F) -> (f64, Lat)
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Vec<Duration>> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let n = total / clients + usize::from(c < total % clients);
        let job = job.clone();
        tasks.push(tokio::spawn(async move { job(c, n).await }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    (started.elapsed().as_secs_f64(), Lat(lat))
}

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.first().map(String::as_str) == Some("hash") && a.len() == 2 {
        // A PHC string at the directory's default argon2id cost, for Dovecot's passwd-file.
        use argon2::PasswordHasher;
        use argon2::password_hash::{SaltString, rand_core::OsRng};
        let d = bureau_directory::DirectoryOptions::default();
        let params = argon2::Params::new(d.argon2_m_kib, d.argon2_t, d.argon2_p, None).unwrap();
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        println!("{}", argon.hash_password(a[1].as_bytes(), &salt).unwrap());
        return;
    }
    if a.len() < 5 {
        eprintln!("usage: imap_load HOST:PORT USER PASSWORD fill|login|fetch|mixed|idle ARGS");
        std::process::exit(2);
    }
    let num = |i: usize| -> usize { a.get(i).and_then(|s| s.parse().ok()).expect("a number") };
    let config = anycert::client_config();
    let t = Target {
        addr: a[0].clone(),
        user: a[1].clone(),
        password: a[2].clone(),
        tls: TlsConnector::from(Arc::new(config)),
    };
    match a[3].as_str() {
        "fill" => fill(t, num(4), num(5)).await,
        "login" => login(t, num(4), num(5)).await,
        "fetch" => fetch(t, num(4)).await,
        "mixed" => mixed(t, num(4), num(5) as u64).await,
        "idle" => idle(t, num(4), num(5) as u64).await,
        other => panic!("unknown mode {other}"),
    }
}

/// APPEND of `total` 3 KB messages over `clients` connections.
async fn fill(t: Target, total: usize, clients: usize) {
    let t2 = t.clone();
    let (secs, mut lat) = spread(total, clients, move |c, n| {
        let t = t2.clone();
        async move {
            let mut conn = Conn::login(&t).await;
            let mut lat = Vec::with_capacity(n);
            for i in 0..n {
                let msg = message(c * 1_000_000 + i);
                let at = Instant::now();
                conn.append(&msg).await;
                lat.push(at.elapsed());
            }
            conn.cmd("LOGOUT").await;
            lat
        }
    })
    .await;
    println!(
        "APPEND: {total} messages of 3 KB over {clients} connections in {secs:.2} s: {:.0} APPEND/s, {}",
        total as f64 / secs,
        lat.show()
    );
}

/// `total` connections (TCP, TLS, LOGIN, LOGOUT) over `clients` clients.
async fn login(t: Target, total: usize, clients: usize) {
    let t2 = t.clone();
    let (secs, mut lat) = spread(total, clients, move |_, n| {
        let t = t2.clone();
        async move {
            let mut lat = Vec::with_capacity(n);
            for _ in 0..n {
                let at = Instant::now();
                let mut conn = Conn::login(&t).await;
                lat.push(at.elapsed());
                conn.cmd("LOGOUT").await;
            }
            lat
        }
    })
    .await;
    println!(
        "LOGIN: {total} connections (TCP, TLS, LOGIN, LOGOUT) over {clients} clients in {secs:.2} s: {:.0} LOGIN/s, connect to LOGIN OK {}",
        total as f64 / secs,
        lat.show()
    );
}

/// SELECT and FETCH 1:1000 ENVELOPE, `runs` times.
async fn fetch(t: Target, runs: usize) {
    let mut conn = Conn::login(&t).await;
    let (mut lat, mut select) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let at = Instant::now();
        conn.cmd("SELECT INBOX").await;
        select.push(at.elapsed());
        let at = Instant::now();
        let out = conn.cmd("FETCH 1:1000 ENVELOPE").await;
        lat.push(at.elapsed());
        let n = out.windows(10).filter(|w| w == b" (ENVELOPE").count();
        assert_eq!(n, 1000, "FETCH 1:1000 ENVELOPE answered {n} messages");
    }
    conn.cmd("LOGOUT").await;
    println!("FETCH 1:1000 ENVELOPE, {runs} runs: {}", Lat(lat).show());
    println!(
        "SELECT INBOX (all of it), {runs} runs: {}",
        Lat(select).show()
    );
}

/// `clients` clients doing rounds of six commands for `secs` seconds.
async fn mixed(t: Target, clients: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let t2 = t.clone();
    let (elapsed, mut lat) = spread(clients, clients, move |c, _| {
        let t = t2.clone();
        async move {
            let mut conn = Conn::login(&t).await;
            let mut lat = Vec::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                i += 1;
                let at = Instant::now();
                let exists = exists(&conn.cmd("SELECT INBOX").await).max(1);
                let pick = (i * 7919 + c * 104_729) % exists + 1;
                let end = (pick + 19).min(exists);
                conn.cmd(&format!("FETCH {pick}:{end} (FLAGS ENVELOPE)"))
                    .await;
                let flag = if i.is_multiple_of(2) {
                    "+FLAGS"
                } else {
                    "-FLAGS"
                };
                conn.cmd(&format!("STORE {pick} {flag} (\\Flagged)")).await;
                let uid = conn.append(&message(9_000_000 + c * 100_000 + i)).await;
                if let Some(uid) = uid {
                    conn.cmd(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))
                        .await;
                    conn.cmd(&format!("UID EXPUNGE {uid}")).await;
                }
                lat.push(at.elapsed());
            }
            conn.cmd("LOGOUT").await;
            lat
        }
    })
    .await;
    let rounds = lat.0.len();
    println!(
        "mixed: {clients} clients for {elapsed:.1} s: {rounds} rounds (SELECT, FETCH 20 (FLAGS ENVELOPE), STORE, APPEND, UID STORE, UID EXPUNGE) = {:.0} commands/s, round {}",
        rounds as f64 * 6.0 / elapsed,
        lat.show()
    );
}

/// `clients` connections held in IDLE for `secs` seconds.
async fn idle(t: Target, clients: usize, secs: u64) {
    let mut conns = Vec::new();
    for _ in 0..clients {
        let mut c = Conn::login(&t).await;
        c.cmd("SELECT INBOX").await;
        c.w.write_all(b"i IDLE\r\n").await.unwrap();
        let cont = c.line().await;
        assert!(cont.starts_with(b"+"), "IDLE: {cont:?}");
        conns.push(c);
    }
    println!("idle: {clients} connections in IDLE");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    for mut c in conns {
        c.w.write_all(b"DONE\r\n").await.unwrap();
        c.until("i ", "IDLE").await;
    }
}

fn exists(select: &[u8]) -> usize {
    String::from_utf8_lossy(select)
        .lines()
        .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
        .unwrap_or(0)
}
