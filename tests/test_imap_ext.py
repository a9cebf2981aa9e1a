"""IMAP extensions with real clients (imapclient, and imaplib where a raw command must be
seen as sent): CONDSTORE/QRESYNC, ACL and the shared namespace, ESEARCH, SORT, THREAD,
QUOTA, LIST-EXTENDED/LIST-STATUS, MULTIAPPEND."""

import imaplib
import re

import pytest
from imapclient import IMAPClient

from conftest import tls_context as ctx, without_recent
from test_imap import imaps, office  # noqa: F401 (fixture)

PW = "long enough pw"
imaplib.Commands.setdefault("LISTRIGHTS", ("AUTH", "SELECTED"))


def client(b, user="alice"):
    c = IMAPClient("127.0.0.1", port=b.port(993), ssl=True, ssl_context=ctx(), timeout=30)
    c.login(user, PW)
    return c


def msg(subject, extra="", body="Hello.\r\n"):
    return (f"From: Carol <carol@remote.example>\r\nTo: alice@example.com\r\n"
            f"Subject: {subject}\r\n{extra}\r\n{body}").encode()


def raw(m, name, *args):
    """A command imaplib has no method for; the untagged answers it produced, by type."""
    m.untagged_responses.clear()
    typ, data = m._simple_command(name, *args)
    return typ, data, {k: list(v) for k, v in m.untagged_responses.items()}


def test_condstore_and_qresync_across_sessions(office):
    b = office
    with client(b) as c:
        for i in range(3):
            c.append("INBOX", msg(f"m{i}"))
        sel = c.select_folder("INBOX")
        h0, validity = sel[b"HIGHESTMODSEQ"], sel[b"UIDVALIDITY"]
        assert h0 >= 3
        got = c.fetch("1:*", ["MODSEQ"])
        assert all(got[u][b"MODSEQ"][0] <= h0 for u in got)

    one = imaps(b)
    assert raw(one, "ENABLE", "QRESYNC")[2]["ENABLED"] == [b"QRESYNC"]
    typ, _, u = raw(one, "SELECT", "INBOX")
    one.state = "SELECTED"
    assert typ == "OK" and u["HIGHESTMODSEQ"] == [str(h0).encode()]

    with client(b) as two:
        two.select_folder("INBOX")
        two.add_flags([2], [b"\\Flagged"])
        two.add_flags([1], [b"\\Deleted"])
        two.uid_expunge([1])
        h1 = two.folder_status("INBOX", [b"HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
    assert h1 > h0

    # The other session hears of both: VANISHED (not EXPUNGE) and the flags with MODSEQ.
    typ, _, u = raw(one, "NOOP")
    assert u["VANISHED"] == [b"1"] and "EXPUNGE" not in u, u
    assert any(b"UID 2" in f and b"\\Flagged" in f and b"MODSEQ" in f for f in u["FETCH"]), u

    # CHANGEDSINCE with VANISHED: what changed since h0 and what went.
    typ, _, u = raw(one, "UID", "FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {h0} VANISHED)")
    assert typ == "OK" and u["VANISHED"] == [b"(EARLIER) 1"], u
    assert len(u["FETCH"]) == 1 and b"UID 2" in u["FETCH"][0]

    # UNCHANGEDSINCE: refused for a message changed after the given modseq.
    typ, data, _ = raw(one, "UID", "STORE", "2:3", f"(UNCHANGEDSINCE {h0})", "+FLAGS", "(\\Seen)")
    assert typ == "OK" and data[0].startswith(b"[MODIFIED 2]"), data
    typ, _, u = raw(one, "UID", "FETCH", "2:3", "(FLAGS)")
    # With CONDSTORE on, flags come with their modseq (as Dovecot sends them).
    assert all(re.search(rb" MODSEQ \(\d+\)\)$", f) for f in u["FETCH"]), u
    flags = [re.sub(rb" MODSEQ \(\d+\)", b"", without_recent(f)) for f in u["FETCH"]]
    assert flags == [b"1 (UID 2 FLAGS (\\Flagged))", b"2 (UID 3 FLAGS (\\Seen))"], u

    # SEARCH MODSEQ answers with the highest modseq of what it found.
    typ, _, u = raw(one, "SEARCH", "MODSEQ", str(h0 + 1))
    assert u["SEARCH"][0].startswith(b"1 2 (MODSEQ "), u
    one.logout()

    # A new session resynchronises in one SELECT (QRESYNC).
    three = imaps(b)
    raw(three, "ENABLE", "QRESYNC")
    typ, _, u = raw(three, "SELECT", f"INBOX (QRESYNC ({validity} {h0}))")
    assert typ == "OK" and u["VANISHED"] == [b"(EARLIER) 1"], u
    assert {f.split(b" (")[0] for f in u["FETCH"]} == {b"1", b"2"}, u
    # QRESYNC before ENABLE is refused.
    four = imaps(b)
    with pytest.raises(imaplib.IMAP4.error, match="QRESYNC is not enabled"):
        raw(four, "SELECT", f"INBOX (QRESYNC ({validity} {h0}))")
    three.logout()
    four.logout()


def test_shared_mailbox_read_only_keeps_its_own_seen(office):
    b = office
    with client(b, "alice") as a:
        a.create_folder("Projects")
        a.append("Projects", msg("plan"))
        a.append("Projects", msg("budget"), flags=[b"\\Flagged"])
        a.setacl("Projects", "bob", "lrs")
        acl = dict(a.getacl("Projects"))
        assert acl[b"bob"] == b"lrs" and acl[b"alice"].startswith(b"lrswi")

    m = imaps(b, "bob")
    typ, data = m.namespace()
    assert b'(("Shared/" "/"))' in data[0]
    with client(b, "bob") as c:
        names = [n for _, _, n in c.list_folders()]
        assert "Shared/alice/Projects" in names and "Shared" in names
        assert c.list_folders(pattern="Shared/alice/%")[0][2] == "Shared/alice/Projects"
        sel = c.select_folder("Shared/alice/Projects")
        assert sel[b"PERMANENTFLAGS"] == (b"\\Seen",)
        assert c.fetch([1], ["BODY[]"])[1][b"BODY[]"].endswith(b"Hello.\r\n")
        assert b"\\Seen" in c.get_flags([1])[1]
        with pytest.raises(IMAPClient.Error):
            c.add_flags([1], [b"\\Flagged"])
        with pytest.raises(IMAPClient.Error):
            c.add_flags([2], [b"\\Deleted"])
        with pytest.raises(IMAPClient.Error):
            c.expunge()
        with pytest.raises(IMAPClient.Error):
            c.setacl("Shared/alice/Projects", "bob", "lrswi")
        with pytest.raises(IMAPClient.Error):
            c.append("Shared/alice/Projects", msg("not mine to add"))
        typ, data, u = raw(m, "MYRIGHTS", '"Shared/alice/Projects"')
        assert u["MYRIGHTS"] == [b"Shared/alice/Projects lrs"]

    # bob's \Seen is his: alice's copy is still unseen, her \Flagged untouched.
    with client(b, "alice") as a:
        a.select_folder("Projects")
        flags = a.get_flags([1, 2])
        flags = {k: without_recent(v) for k, v in flags.items()}
        assert flags[1] == () and flags[2] == (b"\\Flagged",), flags
        a.add_flags([1], [b"\\Seen"])
        a.remove_flags([1], [b"\\Seen"])
        # Revoked: gone from bob's view at once.
        a.setacl("Projects", "bob", "\"\"")
    with client(b, "bob") as c:
        assert not [n for _, _, n in c.list_folders() if n.startswith("Shared/")]
        # Guessing names finds nothing: own namespace or shared, every command refused.
        for name in ("Shared/alice/Projects", "Shared/alice/INBOX", "Shared/nobody/INBOX"):
            with pytest.raises(IMAPClient.Error, match="NONEXISTENT"):
                c.select_folder(name)
            with pytest.raises(IMAPClient.Error, match="NONEXISTENT"):
                c.folder_status(name, [b"MESSAGES"])
            with pytest.raises(IMAPClient.Error, match="NONEXISTENT"):
                c.append(name, msg("x"))
        with pytest.raises(IMAPClient.Error, match="NOPERM"):
            c.create_folder("Shared/alice/Mine")
    m.logout()


def test_read_write_share_to_a_group(office):
    b = office
    b.cli("group", "add", "team", "--member", "bob")
    with client(b, "alice") as a:
        a.create_folder("Team")
        a.setacl("Team", "team", "lrswited")
    with client(b, "bob") as c:
        c.append("Shared/alice/Team", msg("from bob"), flags=[b"\\Seen"])
        c.select_folder("Shared/alice/Team")
        c.add_flags([1], [b"$Done"])
        assert without_recent(set(c.get_flags([1])[1])) == {b"\\Seen", b"$Done"}
    m = imaps(b, "alice")
    typ, _, u = raw(m, "LISTRIGHTS", "Team", "team")
    assert u["LISTRIGHTS"] == [b'Team team "" lrs wiptecd']
    m.select("Team")
    typ, data = m.fetch("1", "(FLAGS)")
    assert [without_recent(d) for d in data] == [b"1 (FLAGS ($Done))"], "bob's \\Seen stays his"
    assert m.deleteacl("Team", "team")[0] == "OK"
    m.logout()
    with client(b, "bob") as c:
        assert not [n for _, _, n in c.list_folders() if n.startswith("Shared")]


def test_esearch_sort_thread(office):
    b = office
    m = imaps(b)
    with client(b) as c:
        c.append("INBOX", msg("Zebra", "Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@x>\r\n"))
        c.append("INBOX", msg("Re: Zebra", "Date: Mon, 2 Nov 2026 12:00:00 +0000\r\nMessage-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\n"))
        c.append("INBOX", msg("Apple", "Date: Mon, 2 Nov 2026 11:00:00 +0000\r\nMessage-ID: <3@x>\r\n"))
        c.select_folder("INBOX")
        assert c.sort(["SUBJECT"]) == [3, 1, 2]
        assert c.sort(["REVERSE", "DATE"]) == [2, 3, 1]
        assert c.thread("REFERENCES") == ((1, 2), (3,))
        assert c.thread("ORDEREDSUBJECT") == ((1, 2), (3,))
    m.select("INBOX")
    typ, data = m.uid("SEARCH", "RETURN (MIN MAX COUNT ALL)", "SUBJECT", "Zebra")
    assert typ == "OK"
    es = m.untagged_responses["ESEARCH"][0]
    assert es.startswith(b'(TAG "') and es.split(b") ", 1)[1].split() == [
        b"UID", b"MIN", b"1", b"MAX", b"2", b"ALL", b"1:2", b"COUNT", b"2"], es
    typ, data, u = raw(m, "SEARCH", "RETURN ()", "ALL")
    assert u["ESEARCH"][0].endswith(b"ALL 1:3")
    with pytest.raises(imaplib.IMAP4.error, match="unknown RETURN option"):
        raw(m, "SEARCH", "RETURN (BOGUS)", "ALL")
    m.logout()


def test_quota_list_status_and_multiappend(office):
    b = office
    b.cli("user", "set", "alice", "--quota", "1M")
    with client(b) as c:
        c.multiappend("Drafts", [msg("one"), {"msg": msg("two"), "flags": [b"\\Seen"]}])
        root = c.get_quota_root("INBOX")
        assert root[0].quota_roots == [""]
        q = root[1][0]
        assert q.resource == "STORAGE" and q.limit == 1024 and 0 < q.usage < 10
    m = imaps(b)
    assert raw(m, "SETQUOTA", '""', "(STORAGE 99999)")[0] == "NO"

    typ, _, u = raw(m, "LIST", '""', "*", "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN))")
    assert typ == "OK"
    statuses = b" ".join(u["STATUS"])
    assert b'"Drafts" (MESSAGES 2 UNSEEN 1)' in statuses, statuses
    assert b'"INBOX" (MESSAGES 0 UNSEEN 0)' in statuses
    m.unsubscribe("Junk")
    typ, _, u = raw(m, "LIST", "(SUBSCRIBED)", '""', "*")
    names = b" ".join(u["LIST"])
    assert b"\\Subscribed" in names and b"Junk" not in names
    typ, _, u = raw(m, "LIST", "(SPECIAL-USE)", '""', "*")
    assert all(b"\\HasNoChildren \\" in x for x in u["LIST"]) and b"INBOX" not in b"".join(u["LIST"])
    with pytest.raises(imaplib.IMAP4.error, match="RECURSIVEMATCH"):
        raw(m, "LIST", "(RECURSIVEMATCH)", '""', "*")
    m.logout()


def test_binary(office):
    """RFC 3516: BINARY[section] undoes only the transfer encoding (the charset stays),
    literal8 when the content has a NUL, BINARY.SIZE, partials, UNKNOWN-CTE, and APPEND of
    a literal8."""
    b = office
    mime = (b"From: carol@remote.example\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =\r\nau lait\r\n--X\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"iVBORw0KGgoA\r\nAP8=\r\n--X\r\n"
            b"Content-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
            b"begin 644 x\r\n--X--\r\n")
    png = b"\x89PNG\r\n\x1a\n\x00\x00\xff"
    with client(b) as c:
        assert b"BINARY" in c.capabilities()
        c.append("INBOX", mime)
        c.select_folder("INBOX")
        got = c.fetch("1", ["BINARY.PEEK[1]", "BINARY.SIZE[1]", "BINARY.SIZE[2]", "FLAGS"])[1]
        assert got[b"BINARY[1]"].startswith(b"caf\xe9 au lait"), got
        assert got[b"BINARY.SIZE[1]"] == len(got[b"BINARY[1]"])
        assert got[b"BINARY.SIZE[2]"] == len(png)
        assert b"\\Seen" not in got[b"FLAGS"]

    m = imaps(b)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BINARY.PEEK[2])")
    assert typ == "OK" and data[0][0].endswith(b"BINARY[2] ~{%d}" % len(png)), data
    assert data[0][1] == png
    typ, data = m.fetch("1", "(BINARY.PEEK[2]<1.3>)")
    assert b"BINARY[2]<1> {3}" in data[0][0] and data[0][1] == png[1:4], data
    typ, data = m.fetch("1", "(BINARY.PEEK[3])")
    assert typ == "NO" and b"[UNKNOWN-CTE]" in data[0], data
    typ, data = m.fetch("1", "(BINARY[1])")
    assert typ == "OK" and b"\\Seen" in b" ".join(
        x if isinstance(x, bytes) else x[0] for x in data)

    # APPEND of a literal8: a message with a NUL in it, read back whole with BINARY[].
    body = b"Subject: nul\r\n\r\na\x00b\r\n"
    m.send(b"b1 APPEND INBOX ~{%d}\r\n" % len(body))
    assert m.readline().startswith(b"+")
    m.send(body + b"\r\n")
    while not (line := m.readline()).startswith(b"b1 "):
        pass
    assert line.startswith(b"b1 OK"), line
    m.select("INBOX")
    typ, data = m.fetch("2", "(BINARY.PEEK[])")
    assert data[0][0].endswith(b"BINARY[] ~{%d}" % len(body)) and data[0][1] == body, data
    m.logout()


def test_imap4rev2_and_mailbox_names(office):
    """IMAP4rev2 (RFC 9051) once enabled: UTF-8 mailbox names, SELECT with LIST and without
    RECENT, SEARCH answered by ESEARCH. Without it, names are modified UTF-7 (RFC 3501
    5.1.3) and a name that does not decode is refused with NO. STATUS SIZE and DELETED either way."""
    b = office
    old = imaps(b)
    caps = old.capabilities
    assert "IMAP4REV2" in caps and "STATUS=SIZE" in caps, caps
    assert old.create("Entw&APw-rfe")[0] == "OK"
    typ, data = old.create("Bad&AGE")  # a name that cannot be used: NO, not BAD (issue 18)
    assert typ == "NO" and b"modified UTF-7" in data[0], data
    old.append("INBOX", None, None, msg("sized"))

    new = imaps(b)
    new._encoding = "utf-8"  # imaplib sends ASCII unless told
    typ, _, u = raw(new, "ENABLE", "IMAP4rev2")
    assert typ == "OK" and u["ENABLED"] == [b"IMAP4rev2"], u
    typ, _, u = raw(new, "LIST", '""', "*")
    # Names outside ASCII come as literals: valid in both revisions.
    names = b"\n".join(b"".join(x) if isinstance(x, tuple) else x for x in u["LIST"])
    assert "Entwürfe".encode() in names and b"&APw-" not in names, names
    assert new.create('"Notizen/Café"')[0] == "OK"
    typ, _, u = raw(new, "SELECT", "INBOX")
    assert typ == "OK" and u["LIST"] == [b'() "/" "INBOX"'] and "RECENT" not in u, u
    new.state = "SELECTED"  # selected by hand, so imaplib does not know
    typ, _, u = raw(new, "SEARCH", "ALL")
    assert typ == "OK" and "SEARCH" not in u and u["ESEARCH"][0].endswith(b" ALL 1"), u
    new.logout()

    typ, data = old.list('""', "Notizen/*")
    assert data == [b'(\\HasNoChildren) "/" "Notizen/Caf&AOk-"'], data
    typ, data = old.status("INBOX", "(MESSAGES SIZE DELETED)")
    assert typ == "OK" and b"MESSAGES 1" in data[0] and b"DELETED 0" in data[0], data
    assert f"SIZE {len(msg('sized'))}".encode() in data[0], data
    old.logout()
