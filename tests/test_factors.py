"""Issue 22: two-factor sign-in to the console (TOTP, checked with pyotp, an implementation
of RFC 6238 that is not ours) and application passwords for clients (IMAP with imapclient,
CalDAV over HTTP), each revocable; an administrator can turn a user's off (a lost phone)
but never set one up for them."""

import json
import time

import pyotp
from imapclient import IMAPClient

from conftest import tls_context
from test_dav import dav
from test_foundation import _https, login

PW = "long enough pw"


def session(b, login_, password, code=None):
    body = {"login": login_, "password": password} | ({"code": code} if code is not None else {})
    s, r, cookie = _https(b, "POST", "/api/v1/session", body)
    return s, r, cookie


def imap_ok(b, user, password):
    with IMAPClient("127.0.0.1", port=b.port(993), ssl_context=tls_context(), timeout=30) as c:
        try:
            c.login(user, password)
            return True
        except Exception:
            return False


def test_two_factor_sign_in_and_application_passwords(bureau_factory):
    b = bureau_factory("")
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "boss@example.com", "--admin", "--password-stdin", input=PW + "\n")
    b.cli("user", "add", "bob@example.com", "--password-stdin", input=PW + "\n")
    _, body, _, boss = login(b, "boss", PW)
    boss_csrf = json.loads(body)["csrf"]
    _, body, _, bob = login(b, "bob", PW)
    bob_csrf = json.loads(body)["csrf"]

    # An administrator cannot set it up for someone else.
    assert _https(b, "POST", "/api/v1/users/bob/totp", cookie=boss, csrf=boss_csrf)[0] == 403
    s, e, _ = _https(b, "POST", "/api/v1/users/bob/totp", cookie=bob, csrf=bob_csrf)
    assert s == 200 and e["qr"].startswith("data:image/svg+xml;base64,"), e
    otp = pyotp.parse_uri(e["uri"])
    assert otp.secret == e["secret"] and otp.issuer == "box.example.com" and otp.name == "bob@example.com", e["uri"]
    # Not on until a code from the app is typed; a wrong one is refused beside its field.
    assert session(b, "bob", PW)[0] == 200
    s, err, _ = _https(b, "PUT", "/api/v1/users/bob/totp", {"code": "12345"}, cookie=bob, csrf=bob_csrf)
    assert s == 400 and err["field"] == "code", err
    now = time.time()
    assert _https(b, "PUT", "/api/v1/users/bob/totp", {"code": otp.at(now)}, cookie=bob, csrf=bob_csrf)[0] == 204
    assert _https(b, "GET", "/api/v1/users/bob", cookie=bob)[1]["two_factor"] is True

    # The console: the password, then the code; a wrong code, a used code, are refused.
    s, err, _ = session(b, "bob", PW)
    assert s == 401 and err["field"] == "code" and "six-digit code" in err["error"], err
    assert session(b, "bob", "wrong password", otp.at(now + 30))[0] == 401
    s, err, _ = session(b, "bob", PW, "000000" if otp.at(now + 30) != "000000" else "111111")
    assert s == 401 and err["field"] == "code" and "Wrong code" in err["error"], err
    assert session(b, "bob", PW, otp.at(now))[0] == 401  # the code confirmed with: used
    s, me, cookie = session(b, "bob", PW, otp.at(now + 30))
    assert s == 200 and me["uid"] == "bob", me
    assert session(b, "bob", PW, otp.at(now + 30))[0] == 401  # a replay of it

    # Clients: the account password no longer opens IMAP or CalDAV; an application password does.
    assert not imap_ok(b, "bob@example.com", PW)
    assert dav(b, "PROPFIND", "/dav/calendars/bob/", user="bob", password=PW, Depth="0")[0] == 401
    s, made, _ = _https(b, "POST", "/api/v1/users/bob/app-passwords", {"name": "Thunderbird"}, cookie=bob, csrf=bob_csrf)
    assert s == 201 and made["name"] == "Thunderbird" and len(made["password"]) == 19, made
    assert _https(b, "POST", "/api/v1/users/bob/app-passwords", {"name": "x"}, cookie=boss, csrf=boss_csrf)[0] == 403
    assert _https(b, "POST", "/api/v1/users/bob/app-passwords", {"name": ""}, cookie=bob, csrf=bob_csrf)[1]["field"] == "name"
    app = made["password"]
    assert imap_ok(b, "bob@example.com", app)
    assert imap_ok(b, "bob", app.upper().replace("-", ""))  # however it is typed
    assert dav(b, "PROPFIND", "/dav/calendars/bob/", user="bob", password=app, Depth="0")[0] == 207
    # ...but never the console: there the account password and the code.
    assert session(b, "bob", app, otp.at(now + 60))[0] == 401
    # Listed, never shown again; the administrator sees and may revoke it.
    listed = _https(b, "GET", "/api/v1/users/bob", cookie=boss)[1]["app_passwords"]
    assert [a["name"] for a in listed] == ["Thunderbird"] and "password" not in listed[0], listed
    assert "sha256" not in json.dumps(listed)
    assert _https(b, "DELETE", f"/api/v1/users/bob/app-passwords/{listed[0]['id']}", cookie=boss, csrf=boss_csrf)[0] == 204
    assert not imap_ok(b, "bob@example.com", app)
    assert _https(b, "DELETE", f"/api/v1/users/bob/app-passwords/{listed[0]['id']}", cookie=bob, csrf=bob_csrf)[0] == 404

    # A lost phone: the administrator turns it off; the password alone signs in again.
    assert _https(b, "DELETE", "/api/v1/users/bob/totp", cookie=boss, csrf=boss_csrf)[0] == 204
    assert session(b, "bob", PW)[0] == 200
    assert imap_ok(b, "bob@example.com", PW)
    # The last administrator's lost phone: root on the box turns it off with the CLI.
    boss_otp = pyotp.TOTP(_https(b, "POST", "/api/v1/users/boss/totp", cookie=boss, csrf=boss_csrf)[1]["secret"])
    assert _https(b, "PUT", "/api/v1/users/boss/totp", {"code": boss_otp.now()}, cookie=boss, csrf=boss_csrf)[0] == 204
    assert session(b, "boss", PW)[0] == 401
    assert "is off" in b.cli("user", "two-factor-off", "boss").stdout
    assert session(b, "boss", PW)[0] == 200
    # Someone else's is not theirs to turn off.
    b.cli("user", "add", "carl@example.com", "--password-stdin", input=PW + "\n")
    _, body, _, carl = login(b, "carl", PW)
    carl_csrf = json.loads(body)["csrf"]
    assert _https(b, "DELETE", "/api/v1/users/bob/totp", cookie=carl, csrf=carl_csrf)[0] == 403
