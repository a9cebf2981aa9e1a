"""The office's web proxy: Bureau's privileged helper renders Squid's configuration from the
daemon's plan, a real squid (Debian's) runs it, and curl goes through it with Bureau's
accounts to a web server on loopback."""

import grp
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, _free_port, end

PW = "long enough pw"


@pytest.fixture
def web():
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from the web\n")

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/"
    srv.shutdown()


def passable(tmp_path):
    """Squid runs its helpers as the proxy user: it must get through the test's folders to
    the proxy's folder (which the helper makes root's, 0755)."""
    for p in [tmp_path, *tmp_path.parents]:
        if str(p) in ("/", "/tmp"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o711)
    return tmp_path / "proxy"


class Helper:
    """Bureau's privileged helper (root), as the appliance runs it, with the same
    configuration as the daemon. proxy.service is empty: it never touches this machine's
    own Squid."""

    def __init__(self, b, tmp_path, sock):
        self.log = open(tmp_path / "helper.log", "a")
        self.proc = subprocess.Popen([str(BIN), "helper", "--config", str(b.config)],
                                     stdout=self.log, stderr=self.log)
        wait_for("the helper's socket", sock.exists)
        self.sock = sock

    def ask(self, request):
        """Sends one request as the daemon would; the helper's reply."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self.sock))
            s.sendall(json.dumps(request).encode() + b"\n")
            return json.loads(s.makefile().readline())

    def stop(self):
        end(self.proc, 10)
        self.log.close()


def wait_for(what, check, timeout=15):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def proxy_config(tmp_path, sock, port):
    d = passable(tmp_path)
    # Squid's log folder, Squid's (as /var/log/squid is on the appliance).
    logs = tmp_path / "log"
    logs.mkdir()
    shutil.chown(logs, "proxy", "proxy")
    return d, (f'[admin]\nhelper_socket = "{sock}"\n\n'
               f'[proxy]\nhttp_port = "127.0.0.1:{port}"\nstate_dir = "{d}"\n'
               f'access_log = "{logs}/access.log"\nservice = ""\n')


def curl(proxy_port, url, creds=None):
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
            "-x", f"http://127.0.0.1:{proxy_port}", url]
    if creds:
        args[1:1] = ["-U", creds]
    return subprocess.run(args, capture_output=True, text=True).stdout


def test_squid_runs_bureaus_configuration_with_its_accounts(bureau_factory, tmp_path, web):
    sock = tmp_path / "helper.sock"
    port = _free_port()
    d, config = proxy_config(tmp_path, sock, port)
    b = bureau_factory(config)
    b.cli("domain", "add", "example.com")
    for uid in ("alice", "bob"):
        b.cli("user", "add", f"{uid}@example.com", "--password-stdin", input=PW + "\n")
    b.cli("group", "add", "interns", "--member", "bob")

    # Without the helper nothing can be applied: Squid (root) reads only what it renders.
    r = b.cli("proxy", "apply", check=False)
    assert r.returncode != 0 and "system helper is not running" in r.stderr, r.stderr
    assert not d.exists() and "squid" not in b.cli("service", "list").stdout

    # A folder an older release's daemon wrote in: a link Squid (root) would open as its
    # cache log, and a file of another account's. The helper removes both.
    d.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    (d / "cache.log").symlink_to(victim)
    (d / "squid.conf").write_text("# the daemon's\n")
    os.chown(d / "squid.conf", 65534, 65534)
    os.chown(d, 65534, 65534)

    helper = Helper(b, tmp_path, sock)
    try:
        # Bad input is refused beside its field, and nothing is written.
        r = b.cli("proxy", "apply", "--block", "../etc/passwd", check=False)
        assert r.returncode != 0 and "blocked" in r.stderr
        r = b.cli("proxy", "apply", "--rule", "nobody:deny:x.example", check=False)
        assert r.returncode != 0 and "rules[0]" in r.stderr
        r = b.cli("proxy", "apply", "--rule", "not a rule", check=False)
        assert r.returncode != 0 and "GROUP:allow|deny" in r.stderr
        assert (d / "squid.conf").read_text() == "# the daemon's\n"

        done = json.loads(b.cli("--json", "proxy", "apply", "--block", "blocked.example",
                                "--rule", "interns:deny:videos.example").stdout)
        conf = d / "squid.conf"
        assert done["config"] == str(conf) and not done["reloaded"]  # proxy.service = ""
        # The helper's: the folder, the configuration and the secret are root's; the
        # secret is for Squid's group alone.
        for p, mode in ((d, 0o755), (conf, 0o644), (d / "ldap.secret", 0o640)):
            st = os.lstat(p)
            assert (st.st_uid, st.st_mode & 0o7777) == (0, mode), p
        assert os.lstat(d / "ldap.secret").st_gid == grp.getgrnam("proxy").gr_gid
        assert not (d / "cache.log").exists() and victim.read_text() == "root's file\n"

        # A daemon taken over asks the helper straight: a name that would add a directive
        # to Squid's configuration is refused, and nothing changes.
        before = conf.read_bytes()
        plan = {"settings": {"networks": ["lan"], "authenticate": True, "blocked": [],
                             "rules": [{"group": "interns", "action": "allow",
                                        "domains": ["example.org"]}]},
                "accounts": {"groups": [["interns", ["bob\nauth_param basic program /bin/sh"]]],
                             "people_bases": ["ou=people,dc=example,dc=com"]},
                "bind_dn": "cn=squid,ou=services,dc=example,dc=com",
                "secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}
        reply = helper.ask({"op": "apply-proxy", "plan": plan})
        assert not reply["ok"] and "not a sign-in name" in reply["output"], reply
        assert conf.read_bytes() == before
        plan["accounts"]["groups"] = [["interns", ["bob"]]]
        plan["bind_dn"] = 'cn=squid" -W /etc/shadow'
        assert not helper.ask({"op": "apply-proxy", "plan": plan})["ok"]
        assert conf.read_bytes() == before
    finally:
        helper.stop()

    squid = subprocess.Popen(["squid", "-N", "-f", str(d / "squid.conf")],
                             env=dict(os.environ, LDAPTLS_REQCERT="never"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, (d / "cache.log").read_text()
                time.sleep(0.2)
        assert curl(port, web, f"alice:{PW}") == "200"
        assert curl(port, web, "alice@example.com:" + PW) == "200"
        assert curl(port, web, "alice:wrong password") == "407"
        assert curl(port, web) == "407"
        assert curl(port, "http://www.blocked.example/", f"alice:{PW}") == "403"
        # The interns' rule: Bob is refused videos.example (before any DNS lookup).
        assert curl(port, "http://videos.example/", f"bob:{PW}") == "403"
        assert curl(port, web, f"bob:{PW}") == "200"
    finally:
        # Stopped as a service stops it (SIGTERM; Bureau's shutdown_lifetime is 3 s): Squid
        # writes a request's log line after the client has its answer, so a SIGKILL right
        # after the last request could lose that line (CI once lost Bob's).
        end(squid, 30)

    summary = json.loads(b.cli("--json", "proxy", "status").stdout)["summary"]
    # Alice signed in once by uid and once by address: one person.
    assert dict(summary["top_users"]) == {"alice": 2, "bob": 1}
    assert dict(summary["top_denied_domains"]) == {"www.blocked.example": 1, "videos.example": 1}
    # The LDAP account the proxy uses is read-only and shown among service accounts.
    assert "squid" in b.cli("service", "list").stdout

    # A box updated from a release whose daemon wrote Squid's configuration: at start the
    # daemon has the helper render the saved settings again, and the folder is root's.
    conf = d / "squid.conf"
    conf.write_text("# an older release's daemon's\n")
    os.chown(conf, 65534, 65534)
    b.restart()
    helper = Helper(b, tmp_path, sock)
    try:
        wait_for("the configuration rendered again", lambda: os.lstat(conf).st_uid == 0, 60)
        assert "acl rule0_who proxy_auth bob bob@example.com" in conf.read_text()
    finally:
        helper.stop()


def test_a_configuration_squid_refuses_is_not_installed(bureau_factory, tmp_path):
    sock = tmp_path / "helper.sock"
    d, config = proxy_config(tmp_path, sock, 99999)
    b = bureau_factory(config)
    b.cli("domain", "add", "example.com")
    helper = Helper(b, tmp_path, sock)
    try:
        r = b.cli("proxy", "apply", check=False)
        assert r.returncode != 0 and "Squid refuses" in r.stderr, r.stderr
        assert not (d / "squid.conf").exists() and not (d / "squid.conf.new").exists()
        assert not (d / "ldap.secret").exists()
        # The service account is made only once a configuration is in place.
        assert "squid" not in b.cli("service", "list").stdout
    finally:
        helper.stop()
