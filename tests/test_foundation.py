"""The foundation as an administrator and a client meet it: users made with the CLI sign in
through the one auth entry point (here the console's login over real HTTPS), the brute-force
guard slows and then refuses one address while others go on, and a replaced certificate is
served without a restart."""

import http.client
import json
import subprocess
import time

GUARD = """
[auth]
base_delay_ms = 200
max_delay_ms = 2000
ip_max_failures = 4
lockout_secs = 60
"""


from conftest import tls_context


def login(b, user, password, source="127.0.0.1"):
    conn = http.client.HTTPSConnection(
        "127.0.0.1", b.port(443), context=tls_context(), source_address=(source, 0), timeout=30
    )
    started = time.monotonic()
    conn.request(
        "POST",
        "/api/v1/session",
        body=json.dumps({"login": user, "password": password}),
        headers={"Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, time.monotonic() - started, resp.getheader("Set-Cookie")


def test_cli_user_signs_in_and_the_guard_slows_then_locks_one_address(bureau_factory):
    b = bureau_factory(GUARD)
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "alice@example.com", "--name", "Alice", "--password-stdin", input="correct horse\n")

    status, body, _, cookie = login(b, "alice", "correct horse")
    assert status == 200, body
    assert json.loads(body)["uid"] == "alice"
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    # By address too.
    assert login(b, "alice@example.com", "correct horse")[0] == 200

    # Wrong passwords from 127.0.0.2: refused, each answer slower than the one before.
    times = []
    for _ in range(3):
        status, body, took, _ = login(b, "alice", "wrong guess", source="127.0.0.2")
        assert status == 401, body
        assert json.loads(body)["error"] == "wrong login or password"
        times.append(took)
    assert times[1] > times[0] + 0.2 and times[2] > times[1] + 0.3, times

    # The fourth failure locks 127.0.0.2 out: even the right password is refused now.
    assert login(b, "alice", "wrong guess", source="127.0.0.2")[0] == 401
    status, body, took, _ = login(b, "alice", "correct horse", source="127.0.0.2")
    assert status == 429, body
    assert took < 1.0, "a locked-out address is refused at once, without a password check"

    # Another address is not affected: alice signs in from 127.0.0.1.
    status, body, _, _ = login(b, "alice", "correct horse", source="127.0.0.1")
    assert status == 200, body

    # The log names logins and addresses, never a password.
    log = (b.dir / "bureau.log").read_text()
    assert "127.0.0.2 locked out" in log
    assert "correct horse" not in log and "wrong guess" not in log


def test_disabled_and_unknown_users_are_refused(bureau):
    b = bureau
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "bob@example.com", "--password-stdin", input="long enough pw\n")
    b.cli("user", "disable", "bob")
    assert login(b, "bob", "long enough pw")[0] == 401
    assert login(b, "nobody@example.com", "long enough pw")[0] == 401
    b.cli("user", "enable", "bob")
    assert login(b, "bob", "long enough pw")[0] == 200
    # A new password takes effect at once; the old one stops working.
    b.cli("user", "passwd", "bob", "--password-stdin", input="a brand new one\n")
    assert login(b, "bob", "a brand new one")[0] == 200
    assert login(b, "bob", "long enough pw")[0] == 401


def served_cert(b):
    with socket_ctx(b) as s:
        return s.getpeercert(binary_form=True)


class socket_ctx:
    def __init__(self, b):
        import socket

        self.raw = socket.create_connection(("127.0.0.1", b.port(443)), timeout=10)
        self.s = tls_context().wrap_socket(self.raw, server_hostname="box.example.com")

    def __enter__(self):
        return self.s

    def __exit__(self, *a):
        self.s.close()


def test_an_uploaded_certificate_is_served_without_a_restart(bureau):
    b = bureau
    first = served_cert(b)
    tls = b.data / "tls"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=mail.example.com", "-days", "30",
         "-keyout", str(tls / "custom.key"), "-out", str(tls / "custom.crt")],
        check=True, capture_output=True,
    )
    deadline = time.time() + 15
    while served_cert(b) == first:
        assert time.time() < deadline, "the new certificate was not picked up"
        time.sleep(0.5)
    assert b.proc.poll() is None, "no restart"


def test_http_redirects_to_https(bureau):
    conn = http.client.HTTPConnection("127.0.0.1", bureau.port(80), timeout=10)
    conn.request("GET", "/admin/?x=1", headers={"Host": "box.example.com"})
    r = conn.getresponse()
    assert r.status == 301
    assert r.getheader("Location") == f"https://box.example.com:{bureau.port(443)}/admin/?x=1"


def test_admin_api_refuses_without_session_and_without_csrf(bureau):
    b = bureau
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "root@example.com", "--uid", "boss", "--admin", "--password-stdin", input="long enough pw\n")
    b.cli("user", "add", "carl@example.com", "--password-stdin", input="long enough pw\n")

    def call(method, path, body=None, cookie=None, csrf=None):
        conn = http.client.HTTPSConnection("127.0.0.1", b.port(443), context=tls_context(), timeout=30)
        h = {"Content-Type": "application/json"}
        if cookie:
            h["Cookie"] = cookie.split(";")[0]
        if csrf:
            h["X-CSRF-Token"] = csrf
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)

    assert call("GET", "/api/v1/users")[0] == 401
    status, body, _, cookie = login(b, "boss", "long enough pw")
    csrf = json.loads(body)["csrf"]
    assert call("GET", "/api/v1/users", cookie=cookie)[0] == 200
    # A change without the CSRF token, or with a wrong one: 403, nothing made.
    assert call("POST", "/api/v1/domains", {"name": "other.example"}, cookie=cookie)[0] == 403
    assert call("POST", "/api/v1/domains", {"name": "other.example"}, cookie=cookie, csrf="nope")[0] == 403
    assert "other.example" not in b.cli("domain", "list").stdout
    s, created = call("POST", "/api/v1/domains", {"name": "other.example"}, cookie=cookie, csrf=csrf)
    assert s == 201 and created["name"] == "other.example"
    # Bad input names its field and changes nothing.
    s, err = call("POST", "/api/v1/users", {"address": "x@nowhere.example", "password": "long enough pw"},
                  cookie=cookie, csrf=csrf)
    assert s == 400 and err["field"] == "address"

    # A user who is not an administrator: its own record yes, the rest 403.
    status, body, _, ccookie = login(b, "carl", "long enough pw")
    ccsrf = json.loads(body)["csrf"]
    assert call("GET", "/api/v1/users/carl", cookie=ccookie)[0] == 200
    assert call("GET", "/api/v1/users/boss", cookie=ccookie)[0] == 403
    assert call("GET", "/api/v1/users", cookie=ccookie)[0] == 403
    assert call("POST", "/api/v1/domains", {"name": "x.example"}, cookie=ccookie, csrf=ccsrf)[0] == 403
    # It may change its own password.
    assert call("PUT", "/api/v1/users/carl/password", {"password": "my new secret"}, cookie=ccookie, csrf=ccsrf)[0] == 204
    assert login(b, "carl", "my new secret")[0] == 200
    # Signed out: the session is gone.
    assert call("DELETE", "/api/v1/session", cookie=ccookie, csrf=ccsrf)[0] == 204
    assert call("GET", "/api/v1/users/carl", cookie=ccookie)[0] == 401


def _https(b, method, path, body=None, cookie=None, csrf=None, raw=None):
    conn = http.client.HTTPSConnection("127.0.0.1", b.port(443), context=tls_context(), timeout=30)
    h = {"Content-Type": "application/octet-stream" if raw is not None else "application/json"}
    if cookie:
        h["Cookie"] = cookie.split(";")[0]
    if csrf:
        h["X-CSRF-Token"] = csrf
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    out = r.read()
    conn.close()
    return r.status, (json.loads(out) if out else None), r.getheader("Set-Cookie")


def test_first_boot_setup_token_makes_the_first_administrator_once(bureau_factory):
    b = bureau_factory(GUARD)
    assert _https(b, "GET", "/api/v1/setup")[1]["pending"] is True
    token = subprocess.run(
        [str(b.proc.args[0]), "--config", str(b.config), "setup-token"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert len(token) == 35 and (b.data / "setup-token").stat().st_mode & 0o777 == 0o600

    new_admin = {"address": "boss@office.example", "password": "long enough pw", "display_name": "Boss"}
    # A wrong token: 403 on the token field, nothing made.
    s, err, _ = _https(b, "POST", "/api/v1/setup", dict(new_admin, token="0" * 32))
    assert s == 403 and err["field"] == "token"
    # Bad input with the right token: 400, and the domain it would have needed is not left behind.
    s, err, _ = _https(b, "POST", "/api/v1/setup", dict(new_admin, token=token, password="short"))
    assert s == 400, err
    assert b.cli("--json", "domain", "list").stdout.strip() == "[]"
    # The token as a person types it: upper case, spaces for dashes.
    s, session, cookie = _https(b, "POST", "/api/v1/setup", dict(new_admin, token=token.upper().replace("-", " ")))
    assert s == 201 and session["admin"] and session["uid"] == "boss"
    # Signed in by it: the session works for an administrator's call.
    assert _https(b, "GET", "/api/v1/users", cookie=cookie)[0] == 200
    assert json.loads(b.cli("--json", "user", "show", "boss").stdout)["admin"] is True
    # Once only: the token is gone, and a second setup is refused.
    assert not (b.data / "setup-token").exists()
    assert _https(b, "GET", "/api/v1/setup")[1]["pending"] is False
    assert _https(b, "POST", "/api/v1/setup", dict(new_admin, token=token))[0] == 409
    # A restart with an administrator makes no new token.
    b.restart()
    assert not (b.data / "setup-token").exists()


def _ready_again(b, timeout=60):
    """Waits for a daemon that restarts itself (same process) to serve again."""
    deadline = time.time() + timeout
    while b.proc.stdout.readline().strip() != "bureau: ready":
        assert b.proc.poll() is None and time.time() < deadline


def test_the_wizard_names_the_box_and_sets_its_time_zone(bureau_factory):
    import smtplib

    def token(b):
        return subprocess.run([str(b.proc.args[0]), "--config", str(b.config), "setup-token"],
                              capture_output=True, text=True, check=True).stdout.strip()

    admin = {"address": "boss@office.example", "password": "long enough pw"}
    # The configuration file names this one: the wizard may not rename it.
    fixed = bureau_factory(name="fixed")
    state = _https(fixed, "GET", "/api/v1/setup")[1]
    assert state == {"pending": True, "hostname": "box.example.com", "hostname_fixed": True, "timezone": "UTC",
                     "password_min_len": 8}
    for bad, field in (({"hostname": "other.example.com"}, "hostname"), ({"hostname": "no spaces.example"}, "hostname"),
                       ({"timezone": "Mars/Olympus"}, "timezone"), ({"timezone": "../../etc/passwd"}, "timezone")):
        s, err, _ = _https(fixed, "POST", "/api/v1/setup", dict(admin, token=token(fixed), **bad))
        assert s == 400 and err["field"] == field, (bad, err)
    assert _https(fixed, "GET", "/api/v1/setup")[1]["pending"] is True
    assert fixed.cli("--json", "domain", "list").stdout.strip() == "[]"

    # Unnamed in the file: the wizard's name and time zone are the box's, after a restart.
    free = bureau_factory(name="free", hostname=None)
    state = _https(free, "GET", "/api/v1/setup")[1]
    assert state["hostname_fixed"] is False and state["hostname"] != "mail.office.example"
    s, session, _ = _https(free, "POST", "/api/v1/setup",
                           dict(admin, token=token(free), hostname="Mail.Office.Example", timezone="Europe/Paris"))
    assert s == 201, session
    pid = free.proc.pid
    _ready_again(free)
    assert free.proc.pid == pid
    assert _https(free, "GET", "/api/v1/setup")[1] == {
        "pending": False, "hostname": "mail.office.example", "hostname_fixed": False, "timezone": "Europe/Paris",
        "password_min_len": 8}
    with smtplib.SMTP("127.0.0.1", free.port(25), timeout=30) as m:
        assert b"mail.office.example" in m.ehlo()[1]
    assert (free.data / "system" / "localtime").readlink().as_posix() == "/usr/share/zoneinfo/Europe/Paris"
    # The self-signed certificate was made again for the new name.
    import ssl
    pem = ssl.get_server_certificate(("127.0.0.1", free.port(443)))
    der = ssl.PEM_cert_to_DER_cert(pem)
    assert b"mail.office.example" in der
    # Later, from the dashboard: the time zone alone changes without a restart.
    _, body, _, cookie = login(free, "boss", "long enough pw")
    csrf = json.loads(body)["csrf"]
    s, done, _ = _https(free, "PUT", "/api/v1/system/settings", {"timezone": "America/New_York"}, cookie=cookie, csrf=csrf)
    assert s == 200 and done == {"restarting": False}
    s, info, _ = _https(free, "GET", "/api/v1/system", cookie=cookie)
    assert info["hostname"] == "mail.office.example" and info["timezone"] == "America/New_York"
    s, err, _ = _https(free, "PUT", "/api/v1/system/settings", {"hostname": "bad name"}, cookie=cookie, csrf=csrf)
    assert s == 400 and err["field"] == "hostname"


def test_setup_token_guesses_are_slowed_then_locked_out(bureau_factory):
    b = bureau_factory(GUARD)
    guess = {"address": "x@office.example", "password": "long enough pw", "token": "0" * 32}
    statuses = [_https(b, "POST", "/api/v1/setup", guess)[0] for _ in range(5)]
    assert statuses[:4] == [403] * 4 and statuses[4] == 429, statuses
    assert _https(b, "GET", "/api/v1/setup")[1]["pending"] is True


def test_update_endpoints_need_an_administrator_and_the_helper(bureau_factory, tmp_path):
    b = bureau_factory(f'[admin]\nhelper_socket = "{tmp_path}/no-helper.sock"\nmax_update_mb = 1\n')
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "root@example.com", "--uid", "boss", "--admin", "--password-stdin", input="long enough pw\n")
    b.cli("user", "add", "carl@example.com", "--password-stdin", input="long enough pw\n")
    status, body, _, cookie = login(b, "carl", "long enough pw")
    csrf = json.loads(body)["csrf"]
    assert _https(b, "PUT", "/api/v1/system/update", raw=b"x" * 10, cookie=cookie, csrf=csrf)[0] == 403
    status, body, _, cookie = login(b, "boss", "long enough pw")
    csrf = json.loads(body)["csrf"]
    s, info, _ = _https(b, "GET", "/api/v1/system", cookie=cookie)
    assert s == 200 and info["slots"] is None and "helper" in info["helper_error"]
    # Too large: 413; no helper to install it: 503. Either way nothing stays behind.
    assert _https(b, "PUT", "/api/v1/system/update", raw=b"x" * (2 << 20), cookie=cookie, csrf=csrf)[0] == 413
    s, err, _ = _https(b, "PUT", "/api/v1/system/update", raw=b"not a bundle", cookie=cookie, csrf=csrf)
    assert s == 503, err
    assert list((b.data / "updates").iterdir()) == []
    r = b.cli("update", "apply", str(b.config), check=False)
    assert r.returncode == 1 and "system helper is not running" in r.stderr
