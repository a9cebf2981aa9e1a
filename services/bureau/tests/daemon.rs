//! The real `bureau` binary: configuration errors, schema refusal, privilege drop, clean
//! shutdown and the admin CLI, each as an administrator would meet them.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bureau");

struct Daemon {
    child: Child,
    dir: Option<tempfile::TempDir>,
}

fn config(dir: &Path, offset: u16, extra: &str) -> PathBuf {
    let path = dir.join("bureau.toml");
    let text = format!(
        "[server]\nhostname = \"box.example.com\"\ndata_dir = \"{}\"\nuser = \"\"\nbind = [\"127.0.0.1\"]\nport_offset = {offset}\n\n[directory]\nargon2_memory_kib = 256\nargon2_passes = 1\n{extra}",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A port offset under which every standard port the daemon binds is free. Offsets differ
/// between the tests of one process (a counter) and between processes (the pid).
fn free_offset() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    const PORTS: [u16; 9] = [25, 80, 143, 389, 443, 465, 587, 636, 993];
    for _ in 0..200 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let off = (20_000 + (std::process::id() % 40 * 1000 + u32::from(n) * 997) % 40_000) as u16;
        let held: Vec<_> = PORTS
            .iter()
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p + off)).ok())
            .collect();
        if held.len() == PORTS.len() {
            return off;
        }
    }
    panic!("no free ports");
}

impl Daemon {
    fn start(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra)
    }

    fn start_in(dir: tempfile::TempDir, extra: &str) -> Daemon {
        let cfg = config(dir.path(), free_offset(), extra);
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "daemon not ready");
            match lines.next() {
                Some(Ok(l)) if l == "bureau: ready" => break,
                Some(_) => {}
                None => panic!("daemon exited: {:?}", child.wait()),
            }
        }
        Daemon {
            child,
            dir: Some(dir),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.as_ref().unwrap().path().join("data/admin.sock")
    }

    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut c = Command::new(BIN)
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let o = self.cli(args, stdin);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn term(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        (status, self.dir.take().unwrap())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `bureau serve` expecting it to refuse to start; returns its stderr.
fn refused_start(cfg: &Path) -> String {
    let o = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(!o.status.success(), "started anyway");
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one clear line, got: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_broken_config_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 30_000, "\n[auth]\nip_max_failures = \"ten\"\n");
    let line = std::fs::read_to_string(&cfg)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("ip_max"))
        .unwrap()
        + 1;
    let err = refused_start(&cfg);
    assert!(
        err.starts_with(&format!(
            "error: {}:{line}: key `auth.ip_max_failures`:",
            cfg.display()
        )),
        "{err}"
    );

    let cfg = config(dir.path(), 30_000, "\n[smtp]\nport = 25\n");
    let err = refused_start(&cfg);
    assert!(
        err.contains("key `smtp.port`: unknown field `port`"),
        "{err}"
    );

    std::fs::write(&cfg, "[server\n").unwrap();
    let err = refused_start(&cfg);
    assert!(
        err.starts_with(&format!("error: {}:1:", cfg.display())),
        "{err}"
    );

    let err = refused_start(&dir.path().join("missing.toml"));
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let d = Daemon::start("");
    d.ok(&["domain", "add", "example.com"], "");
    let (status, dir) = d.term();
    assert!(status.success());
    let db = dir.path().join("data/bureau.redb");
    {
        let db = redb::Database::open(&db).unwrap();
        let tx = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        tx.open_table(meta)
            .unwrap()
            .insert("schema_version", 99)
            .unwrap();
        tx.commit().unwrap();
    }
    let digest = |p: &Path| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::fs::read(p).unwrap().hash(&mut h);
        h.finish()
    };
    let before = digest(&db);
    let cfg = dir.path().join("bureau.toml");
    let err = refused_start(&cfg);
    assert!(
        err.contains(&format!(
            "schema version 99, newer than this bureau supports ({})",
            bureau_store::SCHEMA_VERSION
        )),
        "{err}"
    );
    assert!(digest(&db) == before, "the newer database was modified");
}

#[test]
fn sigterm_stops_cleanly_and_keeps_the_data() {
    let d = Daemon::start("");
    d.ok(&["domain", "add", "example.com"], "");
    d.ok(
        &["user", "add", "ann@example.com", "--password-stdin"],
        "long enough pw\n",
    );
    let sock = d.socket();
    let (status, dir) = d.term();
    assert!(status.success(), "exit {status:?}");
    assert!(!sock.exists(), "socket removed");
    let d = Daemon::start_in(dir, "");
    assert!(d.ok(&["user", "list"], "").contains("ann@example.com"));
}

#[test]
fn the_admin_cli_manages_domains_users_and_groups() {
    let d = Daemon::start("");
    assert_eq!(
        d.ok(&["domain", "add", "Example.COM"], ""),
        "added domain example.com\n"
    );
    d.ok(
        &[
            "user",
            "add",
            "ann@example.com",
            "--name",
            "Ann Lee",
            "--quota",
            "1G",
            "--alias",
            "a.lee@example.com",
            "--password-stdin",
        ],
        "long enough pw\n",
    );
    d.ok(
        &["user", "add", "ben@example.com", "--password-stdin"],
        "long enough pw\n",
    );

    // Clear errors, non-zero exit, nothing changed.
    for (args, stdin, want) in [
        (
            vec!["user", "add", "ann@example.com", "--password-stdin"],
            "long enough pw\n",
            "uid: ann already exists",
        ),
        (
            vec!["user", "add", "cat@example.com", "--password-stdin"],
            "short\n",
            "password: at least 8",
        ),
        (
            vec!["user", "add", "cat@elsewhere.example", "--password-stdin"],
            "long enough pw\n",
            "not one of this box's domains",
        ),
        (vec!["domain", "add", "no_dots"], "", "domain:"),
        (vec!["domain", "del", "example.com"], "", "still used"),
        (vec!["user", "show", "nobody"], "", "not found"),
    ] {
        let o = d.cli(&args, stdin);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = String::from_utf8(o.stderr).unwrap();
        assert!(
            err.contains(want) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let users: serde_json::Value =
        serde_json::from_str(&d.ok(&["--json", "user", "list"], "")).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);

    let show = d.ok(&["user", "show", "ann"], "");
    assert!(
        show.contains("a.lee@example.com") && show.contains("quota:    1.0G"),
        "{show}"
    );
    d.ok(&["user", "disable", "ben"], "");
    assert!(d.ok(&["user", "list"], "").contains("disabled"));
    d.ok(
        &["user", "passwd", "ann", "--password-stdin"],
        "another long one\n",
    );

    d.ok(
        &[
            "group",
            "add",
            "sales",
            "--address",
            "sales@example.com",
            "--member",
            "ann",
        ],
        "",
    );
    assert_eq!(
        d.ok(&["group", "members", "sales", "--set", "ann", "ben"], ""),
        "ann\nben\n"
    );
    assert!(
        d.ok(&["user", "show", "ben"], "")
            .contains("groups:   sales")
    );
    d.ok(&["user", "del", "ben"], "");
    assert_eq!(d.ok(&["group", "members", "sales"], ""), "ann\n");
    d.ok(&["group", "del", "sales"], "");
    let status = d.ok(&["status"], "");
    assert!(
        status.contains("1 domain(s), 1 user(s), 0 group(s)"),
        "{status}"
    );
    let st: serde_json::Value = serde_json::from_str(&d.ok(&["--json", "status"], "")).unwrap();
    assert_eq!(st["services"][0]["name"], "https");
}

#[test]
fn the_cli_without_a_daemon_says_so() {
    let o = Command::new(BIN)
        .args(["--socket", "/nonexistent/admin.sock", "status"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("is `bureau serve` running?"), "{err}");
}

/// Started as root with `server.user`, the daemon binds, then runs as that user.
#[test]
fn drops_privileges_after_binding() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("needs root; not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // nobody must be able to reach the data directory.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cfg = config(dir.path(), free_offset(), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("user = \"\"", "user = \"nobody\"");
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "bureau: ready");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == nobody.uid.to_string()),
        "{uid_line}"
    );
    // It still writes its store, as nobody.
    let o = Command::new(BIN)
        .arg("--socket")
        .arg(dir.path().join("data/admin.sock"))
        .args(["domain", "add", "example.com"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = child.kill();
    let _ = child.wait();
}

/// lettre, as a mail program would use it: STARTTLS on submission, AUTH, a message to a
/// colleague, who then has it.
#[test]
fn lettre_submits_through_starttls_and_auth() {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let d = Daemon::start("");
    d.ok(&["domain", "add", "example.com"], "");
    d.ok(
        &["user", "add", "ann@example.com", "--password-stdin"],
        "long enough pw\n",
    );
    d.ok(
        &["user", "add", "ben@example.com", "--password-stdin"],
        "long enough pw\n",
    );
    let text = std::fs::read_to_string(d.dir.as_ref().unwrap().path().join("bureau.toml")).unwrap();
    let offset: u16 = text
        .lines()
        .find_map(|l| l.strip_prefix("port_offset = "))
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tls = TlsParameters::builder("box.example.com".into())
            .dangerous_accept_invalid_certs(true)
            .build_rustls()
            .unwrap();
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(587 + offset)
            .tls(Tls::Required(tls))
            .credentials(Credentials::new("ann".into(), "long enough pw".into()))
            .build();
        let envelope = lettre::address::Envelope::new(
            Some("ann@example.com".parse().unwrap()),
            vec!["ben@example.com".parse().unwrap()],
        )
        .unwrap();
        let msg = b"From: ann@example.com\r\nTo: ben@example.com\r\nSubject: via lettre\r\n\r\nHi Ben.\r\n";
        mailer.send_raw(&envelope, msg).await.unwrap();
        // Wrong password: refused with 535.
        let bad = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(587 + offset)
            .tls(Tls::Required(
                TlsParameters::builder("box.example.com".into())
                    .dangerous_accept_invalid_certs(true)
                    .build_rustls()
                    .unwrap(),
            ))
            .credentials(Credentials::new("ann".into(), "wrong".into()))
            .build();
        let err = bad.send_raw(&envelope, msg).await.unwrap_err();
        assert!(err.is_permanent(), "{err}");
    });
    let items: serde_json::Value =
        serde_json::from_str(&d.ok(&["--json", "mailbox", "items", "ben", "INBOX"], "")).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1);
    let id = items[0]["id"].to_string();
    let body = d.ok(&["mailbox", "get", "ben", "INBOX", &id], "");
    assert!(
        body.contains("Subject: via lettre") && body.contains("with ESMTPSA"),
        "{body}"
    );
}
