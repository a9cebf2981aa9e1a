"""IMAP with real clients (imaplib, imapclient): the first slice of the IMAP issue."""

import imaplib
import socket
import time

import pytest
from imapclient import IMAPClient

from conftest import tls_context as ctx, without_recent
from test_smtp import MESSAGE, SMTP_CFG, mx


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
    assert b"FLAGS ()" in without_recent(meta) and f"RFC822.SIZE {len(body)}".encode() in meta
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


def test_search_copy_move_uid_expunge_rename_and_lsub(office):
    b = office
    with mx(b) as s:
        s.sendmail("x@remote.example", ["alice@example.com"], MESSAGE)
        s.sendmail("x@remote.example", ["alice@example.com"], MESSAGE.replace(b"Subject: Hello", b"Subject: Invoice 42"))
        s.sendmail("x@remote.example", ["alice@example.com"], MESSAGE.replace(b"Body line one.", b"Unique needle here."))
    with IMAPClient("127.0.0.1", port=b.port(993), ssl=True, ssl_context=ctx(), timeout=30) as c:
        c.login("alice", "long enough pw")
        c.select_folder("INBOX")
        assert c.search(["SUBJECT", "invoice"]) == [2]
        assert c.search(["BODY", "NEEDLE"]) == [3]
        assert c.search(["NOT", "SEEN"]) == [1, 2, 3]
        assert c.search(["LARGER", "10", "SMALLER", "100000"]) == [1, 2, 3]
        assert c.search(["FROM", "sender@remote.example", "UID", "2:*"]) == [2, 3]
        assert c.search(["HEADER", "Message-ID", "1@remote.example"]) == [1, 2, 3]
        c.add_flags([1], [b"\\Seen"])
        assert c.search(["SEEN"]) == [1] and c.search(["OR", "SEEN", "SUBJECT", "invoice"]) == [1, 2]
        with pytest.raises(Exception):
            c.search(["SUBJECT", "x"], charset="KOI8-R")
        # COPY answers COPYUID; MOVE takes the message out of INBOX.
        c.copy([1], "Archive")
        c.move([2], "Archive")
        assert c.search(["ALL"]) == [1, 3]
        assert c.folder_status("Archive", [b"MESSAGES"])[b"MESSAGES"] == 2
        # UID EXPUNGE removes only the UIDs named.
        c.add_flags([1, 3], [b"\\Deleted"])
        c.uid_expunge([3])
        assert c.search(["ALL"]) == [1]
        # RENAME with children; LSUB follows UNSUBSCRIBE.
        c.create_folder("Clients")
        c.create_folder("Clients/Acme")
        c.rename_folder("Clients", "Customers")
        names = [n for _, _, n in c.list_folders()]
        assert "Customers/Acme" in names and "Clients" not in names
        # RENAME INBOX moves its messages to the new mailbox; INBOX stays, empty.
        before = c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"]
        c.rename_folder("INBOX", "Old mail")
        assert c.folder_status("Old mail", ["MESSAGES"])[b"MESSAGES"] == before > 0
        assert c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0
        c.select_folder("INBOX")
        c.unsubscribe_folder("Junk")
        subscribed = [n for _, _, n in c.list_sub_folders()]
        assert "Junk" not in subscribed and "INBOX" in subscribed
        assert c.namespace().personal[0][0] == ""
        [ident] = c.id_({"name": "test"})
        assert dict(zip(ident[::2], ident[1::2]))[b"name"] == b"Bureau"


def test_mbsync_syncs_1000_messages_down_then_both_ways(office, tmp_path):
    import email.utils
    import os
    import subprocess

    b = office
    with mx(b) as s:
        for i in range(1000):
            s.sendmail("x@remote.example", ["alice@example.com"], MESSAGE.replace(b"Subject: Hello", b"Subject: m%d" % i))
    mail = tmp_path / "mail"
    mail.mkdir()
    cert = b.data / "tls" / "self-signed.crt"
    cfg = tmp_path / "mbsyncrc"
    cfg.write_text(
        f"""IMAPAccount bureau
Host localhost
Port {b.port(993)}
User alice
Pass "long enough pw"
SSLType IMAPS
CertificateFile {cert}

IMAPStore remote
Account bureau

MaildirStore local
Path {mail}/
Inbox {mail}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns INBOX Archive
Create Both
Expunge Both
SyncState *
"""
    )

    def sync():
        r = subprocess.run(["mbsync", "-c", str(cfg), "-a"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr

    def local(folder="INBOX"):
        d = mail / folder
        return [p for sub in ("cur", "new") for p in (d / sub).iterdir()]

    sync()
    assert len(local()) == 1000
    # Changes on each side.
    files = sorted(local())
    victim, reader = files[0], files[1]
    os.remove(victim)
    seen = reader.parent.parent / "cur" / (reader.name.split(":2,")[0] + ":2,S")
    os.rename(reader, seen)
    new_local = mail / "INBOX" / "new" / "1800000000.local.host"
    new_local.write_bytes(b"From: alice@example.com\r\nSubject: written offline\r\nDate: "
                          + email.utils.formatdate().encode() + b"\r\n\r\nDraft text.\r\n")
    with mx(b) as s:
        s.sendmail("x@remote.example", ["alice@example.com"], MESSAGE.replace(b"Subject: Hello", b"Subject: newer"))
    with IMAPClient("127.0.0.1", port=b.port(993), ssl=True, ssl_context=ctx(), timeout=30) as c:
        c.login("alice", "long enough pw")
        c.select_folder("INBOX")
        c.add_flags(c.search(["SUBJECT", "m500"]), [b"\\Flagged"])
    sync()
    with IMAPClient("127.0.0.1", port=b.port(993), ssl=True, ssl_context=ctx(), timeout=30) as c:
        c.login("alice", "long enough pw")
        c.select_folder("INBOX")
        assert len(c.search(["ALL"])) == 1000 - 1 + 1 + 1
        assert len(c.search(["SUBJECT", "written offline"])) == 1
        assert len(c.search(["SEEN"])) == 1
    names = [p.name for p in local()]
    assert len(names) == 1001
    assert sum(1 for n in names if n.endswith("F") or ":2,F" in n) == 1, "the server's flag came down"


def test_envelope_and_bodystructure_parse_in_imapclient(office):
    b = office
    msg = (
        b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nFrom: =?utf-8?q?Ren=C3=A9e?= <renee@remote.example>\r\n"
        b"To: alice@example.com\r\nCc: Team: bob@example.com;\r\nSubject: Report\r\nMessage-ID: <r1@remote.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XYZ\r\n\r\n"
        b"--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n"
        b"--XYZ\r\nContent-Type: application/pdf; name=report.pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=report.pdf\r\n\r\nJVBERi0xLjQK\r\n--XYZ--\r\n"
    )
    with mx(b) as s:
        s.sendmail("renee@remote.example", ["alice@example.com"], msg)
    with IMAPClient("127.0.0.1", port=b.port(993), ssl=True, ssl_context=ctx(), timeout=30) as c:
        c.login("alice", "long enough pw")
        c.select_folder("INBOX", readonly=True)
        [data] = c.fetch("1", ["ENVELOPE", "BODYSTRUCTURE", "BODY"]).values()
        env = data[b"ENVELOPE"]
        assert env.subject == b"Report" and env.message_id == b"<r1@remote.example>"
        assert env.from_[0].mailbox == b"renee" and env.from_[0].host == b"remote.example"
        assert env.from_[0].name == b"=?utf-8?b?UmVuw6ll?="
        assert env.to[0].mailbox == b"alice"
        bs = data[b"BODYSTRUCTURE"]
        assert bs.is_multipart
        parts, subtype = bs[0], bs[1]
        assert subtype == b"MIXED"
        assert parts[0][0] == b"TEXT" and parts[0][1] == b"PLAIN"
        assert parts[1][0] == b"APPLICATION" and parts[1][1] == b"PDF" and parts[1][5] == b"BASE64"
        assert data[b"BODY"].is_multipart
    # The ALL and FULL macros (imaplib sends them bare; `(ALL)` is not IMAP).
    m = imaps(b)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1", "ALL")
    assert typ == "OK" and b"ENVELOPE (" in data[0]
    typ, data = m.fetch("1", "FULL")
    assert typ == "OK" and b"BODY ((" in data[0]
    m.logout()


def test_fetch_by_part_number(office):
    b = office
    msg = (
        b"From: a@remote.example\r\nTo: alice@example.com\r\nSubject: parts\r\n"
        b"Content-Type: multipart/mixed; boundary=A\r\n\r\n"
        b"--A\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
        b"--A\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--A--\r\n"
    )
    with mx(b) as s:
        s.sendmail("a@remote.example", ["alice@example.com"], msg)
    m = imaps(b)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[2])")
    assert typ == "OK"
    flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
    # The CRLF before a boundary belongs to the boundary (RFC 2046 5.1.1).
    assert b"BODY[1] {10}first part" in flat
    assert b"Content-Transfer-Encoding: base64" in flat and b"AAECAw==" in flat
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0], "PEEK leaves \\Seen alone"
    m.logout()


SEEDS = [
    "FETCH 1:* (FLAGS ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])",
    "UID FETCH 1:* (BODYSTRUCTURE BINARY.PEEK[1]<0.10> BINARY.SIZE[1] MODSEQ) (CHANGEDSINCE 1)",
    "UID SEARCH OR FROM carol SUBJECT \"hello there\" SINCE 1-Jan-2020 NOT DELETED",
    "SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 TEXT caf\u00e9 LARGER 10",
    "STORE 1:2 +FLAGS.SILENT (\\Flagged $Label1)",
    "UID STORE 1 (UNCHANGEDSINCE 5) -FLAGS (\\Seen)",
    "SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 SUBJECT hello",
    "STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)",
    "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"*\" \"INBOX\") RETURN (CHILDREN STATUS (MESSAGES))",
    "LSUB \"\" \"%\"",
    "SELECT INBOX (QRESYNC (1 1 1:5))",
    "EXAMINE \"Entw&APw-rfe\"",
    "GETACL INBOX",
    "SETACL INBOX bob +lr",
    "LISTRIGHTS INBOX bob",
    "COPY 1 Drafts",
    "UID MOVE 99 Trash",
    "UID EXPUNGE 1:3",
    "GETQUOTAROOT INBOX",
    "NAMESPACE",
    "ENABLE QRESYNC IMAP4rev2",
    "ID (\"name\" \"fuzz\")",
    "CREATE Fuzz/Deep/Er",
    "RENAME Fuzz Fuzzed",
]


def test_mutated_commands_never_drop_the_connection(office):
    """A few thousand byte-level mutations of real commands: each gets its tagged answer
    (OK, NO or BAD) or, after too many errors, a BYE; the server never panics and still
    serves afterwards."""
    import random

    b = office
    m = imaps(b)
    for _ in range(3):
        m.append("INBOX", None, None,
                 b"From: carol@remote.example\r\nSubject: hello there\r\n\r\ncaf\xc3\xa9 au lait\r\n")
    m.logout()
    rng = random.Random(20261122)
    alphabet = b' ()[]<>{}"\\*%:,.-+~$&0123456789abcINBOXSEARCHFETCHUID\x00\xff\xc3'

    def mutate(seed):
        s = bytearray(seed.encode())
        for _ in range(rng.randint(1, 4)):
            op, at = rng.randrange(4), rng.randrange(len(s) + 1)
            if op == 0 and at < len(s):
                s[at] = rng.choice(alphabet)
            elif op == 1:
                s[at:at] = bytes([rng.choice(alphabet)]) * rng.randint(1, 3)
            elif op == 2:
                del s[at:at + rng.randint(1, 5)]
            else:
                s = s[:at]
        # Literals would wait for their bytes; mutations stay on one line.
        return bytes(s).replace(b"{", b"(").replace(b"\r", b"").replace(b"\n", b"")

    def connect():
        sock = ctx().wrap_socket(socket.create_connection(("127.0.0.1", b.port(993)), timeout=15),
                                 server_hostname="x")
        f = sock.makefile("rb")
        assert f.readline().startswith(b"* OK")
        for line in (b"l1 LOGIN alice \"long enough pw\"\r\n", b"l2 SELECT INBOX\r\n"):
            sock.sendall(line)
            while not (got := f.readline()).startswith(line[:3]):
                assert got, "connection closed during login"
        return sock, f

    def answer(f, tag):
        while True:
            line = f.readline()
            assert line, f"connection dropped without answering {tag!r}"
            if line.startswith(b"* BYE"):
                return b"BYE"
            if line.endswith(b"}\r\n") and b"{" in line:
                f.read(int(line[line.rindex(b"{") + 1:-3].rstrip(b"+")))
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1:].split(b" ", 1)[0]
                assert status in (b"OK", b"NO", b"BAD"), line
                return status

    sock, f = connect()
    counts = {}
    for n in range(3000):
        cmd = mutate(rng.choice(SEEDS))
        if any(w in cmd.upper() for w in (b"IDLE", b"LOGOUT", b"STARTTLS", b"AUTHENTICATE", b"DONE")):
            continue
        tag = b"f%d" % n
        sock.sendall(tag + b" " + cmd + b"\r\n")
        status = answer(f, tag)
        counts[status] = counts.get(status, 0) + 1
        if status == b"BYE":
            sock.close()
            sock, f = connect()
    sock.close()
    assert counts.get(b"BAD", 0) > 500 and counts.get(b"OK", 0) > 100, counts
    assert "panicked" not in (b.dir / "bureau.log").read_text()
    m = imaps(b)
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_close_removes_deleted_messages_without_expunge_responses(office):
    b = office
    with imaps(b) as m:
        for i in range(3):
            m.append("INBOX", None, None, f"Subject: {i}\r\n\r\nbody {i}\r\n".encode())
        m.select("INBOX")
        m.store("2", "+FLAGS", "\\Deleted")
        m.untagged_responses.clear()
        typ, _ = m.close()
        assert typ == "OK"
        # RFC 3501 6.4.2: CLOSE sends no untagged EXPUNGE.
        assert "EXPUNGE" not in m.untagged_responses, m.untagged_responses
        typ, data = m.select("INBOX")
        assert data == [b"2"]
        _, subjects = m.fetch("1:*", "(BODY[HEADER.FIELDS (SUBJECT)])")
        assert [s[1].strip() for s in subjects if isinstance(s, tuple)] == [b"Subject: 0", b"Subject: 2"]
