"""IMAP with real clients (imaplib, imapclient): the first slice of the IMAP issue."""

import imaplib
import socket
import ssl
import time

import pytest
from imapclient import IMAPClient

from test_smtp import MESSAGE, SMTP_CFG, mx


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


@pytest.fixture
def office(bureau_factory):
    b = bureau_factory(SMTP_CFG)
    b.cli("domain", "add", "example.com")
    for uid in ("alice", "bob"):
        b.cli("user", "add", f"{uid}@example.com", "--password-stdin", input="long enough pw\n")
    return b


def imaps(b, user="alice"):
    m = imaplib.IMAP4_SSL("127.0.0.1", b.port(993), ssl_context=ctx(), timeout=30)
    m.login(user, "long enough pw")
    return m


def test_no_login_before_starttls_then_login(office):
    b = office
    m = imaplib.IMAP4("127.0.0.1", b.port(143), timeout=30)
    assert "LOGINDISABLED" in m.capabilities and "STARTTLS" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        m.login("alice", "long enough pw")
    m.starttls(ssl_context=ctx())
    m.login("alice", "long enough pw")
    m.logout()
    with pytest.raises(imaplib.IMAP4.error):
        imaps(b).login("alice", "wrong")  # already logged in: BAD
    with pytest.raises(imaplib.IMAP4.error):
        imaplib.IMAP4_SSL("127.0.0.1", b.port(993), ssl_context=ctx()).login("alice", "wrong password")


def test_smtp_delivery_read_back_byte_for_byte(office):
    b = office
    with mx(b) as s:
        s.sendmail("sender@remote.example", ["alice@example.com"], MESSAGE)
    m = imaps(b)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    meta, body = data[0]
    assert body.endswith(MESSAGE) and body.startswith(b"Return-Path: <sender@remote.example>")
    assert b"FLAGS ()" in meta and f"RFC822.SIZE {len(body)}".encode() in meta
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: Hello\r\n\r\n"
    typ, data = m.fetch("1", "(BODY[TEXT])")
    assert data[0][1].startswith(b"Body line one.")
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0], "BODY[] without PEEK sets \\Seen"
    m.logout()


def test_flags_expunge_and_two_sessions(office):
    b = office
    with mx(b) as s:
        for _ in range(3):
            s.sendmail("x@remote.example", ["alice@example.com"], MESSAGE)
    one, two = imaps(b), imaps(b)
    one.select("INBOX")
    two.select("INBOX")
    one.store("2", "+FLAGS", "(\\Flagged $Work)")
    typ, data = two.noop()
    got = b" ".join(d for d in two.untagged_responses.get("FETCH", []) if isinstance(d, bytes))
    assert b"\\Flagged" in got and b"$Work" in got, two.untagged_responses
    one.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = one.expunge()
    assert data == [b"1"]
    two.noop()
    assert two.untagged_responses.get("EXPUNGE") == [b"1"]
    two.untagged_responses.pop("FETCH", None)
    typ, data = two.fetch("1:*", "(FLAGS)")
    assert data == [b"1 (FLAGS ($Work \\Flagged))", b"2 (FLAGS ())"], data
    one.logout()
    two.logout()


def test_idle_is_told_of_a_new_delivery(office):
    b = office
    with IMAPClient("127.0.0.1", port=b.port(993), ssl=True, ssl_context=ctx(), timeout=30) as c:
        c.login("alice", "long enough pw")
        c.select_folder("INBOX")
        c.idle()
        started = time.monotonic()
        with mx(b) as s:
            s.sendmail("x@remote.example", ["alice@example.com"], MESSAGE)
        responses = c.idle_check(timeout=5)
        c.idle_done()
        assert (1, b"EXISTS") in responses, responses
        assert time.monotonic() - started < 5


def test_mailboxes_append_status_and_special_use(office):
    b = office
    with IMAPClient("127.0.0.1", port=b.port(993), ssl=True, ssl_context=ctx(), timeout=30) as c:
        c.login("alice", "long enough pw")
        folders = {name: flags for flags, _, name in c.list_folders()}
        assert b"\\Sent" in folders["Sent"] and b"\\Trash" in folders["Trash"] and "INBOX" in folders
        c.create_folder("Projects/2026")
        assert "Projects/2026" in [n for _, _, n in c.list_folders()]
        uid = c.append("Projects/2026", MESSAGE, flags=[b"\\Seen"])
        assert b"APPENDUID" in uid
        st = c.folder_status("Projects/2026", [b"MESSAGES", b"UNSEEN", b"UIDNEXT"])
        assert st[b"MESSAGES"] == 1 and st[b"UNSEEN"] == 0
        c.select_folder("Projects/2026")
        [(msgid, data)] = c.fetch("1:*", ["BODY.PEEK[]", "FLAGS"]).items()
        assert data[b"BODY[]"] == MESSAGE and b"\\Seen" in data[b"FLAGS"]
        c.unselect_folder()
        c.delete_folder("Projects/2026")
        assert "Projects/2026" not in [n for _, _, n in c.list_folders()]


def test_another_users_mailboxes_are_invisible(office):
    b = office
    with mx(b) as s:
        s.sendmail("x@remote.example", ["bob@example.com"], MESSAGE)
    m = imaps(b, "alice")
    names = b" ".join(m.list()[1])
    assert b"bob" not in names.lower()
    for guess in ("bob/INBOX", "../bob/INBOX", "#shared/bob/INBOX"):
        typ, _ = m.select(f'"{guess}"')
        assert typ == "NO"
        typ, _ = m.status(f'"{guess}"', "(MESSAGES)")
        assert typ == "NO"
    m.logout()


def test_malformed_commands_get_bad_with_their_tag(office):
    b = office
    raw = ctx().wrap_socket(socket.create_connection(("127.0.0.1", b.port(993)), timeout=10), server_hostname="x")
    f = raw.makefile("rb")
    assert f.readline().startswith(b"* OK")
    for line, want in [
        (b"a1 FROBNICATE\r\n", b"a1 BAD"),
        (b"a2 LOGIN\r\n", b"a2 BAD"),
        (b"a3 SELECT INBOX\r\n", b"a3 BAD"),
        (b"a4 FETCH 1 (FLAGS)\r\n", b"a4 BAD"),
    ]:
        raw.sendall(line)
        assert f.readline().startswith(want), line
    raw.sendall(b"a5 LOGIN alice {14}\r\n")
    assert f.readline().startswith(b"+")
    raw.sendall(b"long enough pw\r\n")
    assert f.readline().startswith(b"a5 OK")
    raw.sendall(b"a6 NOOP\r\n")
    assert f.readline().startswith(b"a6 OK")
    raw.close()
