"""SMTP with real clients: Python's smtplib, raw sockets for the attacks, and swaks."""

import base64
import smtplib
import socket
import subprocess
import time

import pytest

SMTP_CFG = """
[smtp]
max_messages_per_minute_per_ip = 10000
max_message_bytes = 200000
"""

MESSAGE = (
    b"From: Sender <sender@remote.example>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: Hello\r\n"
    b"Message-ID: <1@remote.example>\r\n"
    b"\r\n"
    b"Body line one.\r\n"
    b".leading dot kept\r\n"
    b"\xc3\xa9t\xc3\xa9 in UTF-8\r\n"
)


from conftest import tls_context as tls_ctx


@pytest.fixture
def office(bureau_factory):
    b = bureau_factory(SMTP_CFG)
    b.cli("domain", "add", "example.com")
    for uid, extra in [("alice", ["--alias", "a.martin@example.com"]), ("bob", []), ("carol", [])]:
        b.cli("user", "add", f"{uid}@example.com", *extra, "--password-stdin", input="long enough pw\n")
    b.cli("group", "add", "sales", "--address", "sales@example.com", "--member", "alice", "--member", "bob")
    return b


def mx(b):
    s = smtplib.SMTP("127.0.0.1", b.port(25), timeout=30)
    s.ehlo("client.remote.example")
    return s


def submission(b, user="alice", password="long enough pw"):
    s = smtplib.SMTP("127.0.0.1", b.port(587), timeout=30)
    s.ehlo("laptop")
    s.starttls(context=tls_ctx())
    s.ehlo("laptop")
    s.login(user, password)
    return s


def test_a_message_arrives_byte_for_byte_with_trace_headers(office):
    b = office
    with mx(b) as s:
        assert s.has_extn("pipelining") and s.has_extn("8bitmime") and s.has_extn("smtputf8")
        assert s.has_extn("chunking") and s.has_extn("enhancedstatuscodes") and s.has_extn("dsn")
        assert s.has_extn("starttls") and not s.has_extn("auth"), "no AUTH on the MX port"
        s.sendmail("sender@remote.example", ["alice@example.com"], MESSAGE)
    [got] = b.messages("alice")
    assert got.endswith(MESSAGE), "the message as sent, dot-unstuffed by the protocol only"
    head = got[: len(got) - len(MESSAGE)].decode()
    assert head.startswith("Return-Path: <sender@remote.example>\r\nReceived: from client.remote.example ([127.0.0.1])")
    assert "by box.example.com (Bureau) with ESMTP id " in head and "for <alice@example.com>" in head


def test_groups_aliases_plus_addressing_and_unknown_users(office):
    b = office
    with mx(b) as s:
        s.sendmail("x@remote.example", ["sales@example.com"], MESSAGE)
        s.sendmail("x@remote.example", ["a.martin@example.com"], MESSAGE)
        s.sendmail("x@remote.example", ["carol+lists@example.com"], MESSAGE)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("x@remote.example", ["nobody@example.com"], MESSAGE)
        code, text = e.value.recipients["nobody@example.com"]
        assert code == 550 and text.startswith(b"5.1.1")
        # One known, one unknown: the known one gets it.
        refused = s.sendmail("x@remote.example", ["bob@example.com", "ghost@example.com"], MESSAGE)
        assert list(refused) == ["ghost@example.com"]
    assert len(b.messages("alice")) == 2  # via sales and via the alias
    assert len(b.messages("bob")) == 2  # via sales and directly
    assert len(b.messages("carol")) == 1  # plus-addressed


RELAY_TRICKS = [
    "<user@other.example>",
    "<user%other.example@example.com>",
    '<"user@other.example"@example.com>',
    "<@example.com:user@other.example>",
    "<other.example!user@example.com>",
    "<user@[127.0.0.1]>",
    "<user@other.example.>",
    "<alice@example.com.other.example>",
]


def raw(b, port=25, tls=False):
    """A socket to the daemon (TLS from the first byte if asked) and a reader of replies."""
    sock = socket.create_connection(("127.0.0.1", b.port(port)), timeout=30)
    if tls:
        sock = tls_ctx().wrap_socket(sock)
    f = sock.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline()
            assert line, "connection closed"
            lines.append(line.decode())
            if line[3:4] != b"-":
                return "".join(lines)

    return sock, reply


def test_the_open_relay_matrix_is_refused(office):
    b = office
    sock, reply = raw(b)
    assert reply().startswith("220")
    sock.sendall(b"EHLO attacker.example\r\n")
    assert reply().startswith("250")
    for rcpt in RELAY_TRICKS:
        sock.sendall(b"MAIL FROM:<spammer@attacker.example>\r\n")
        assert reply().startswith("250")
        sock.sendall(f"RCPT TO:{rcpt}\r\n".encode())
        r = reply()
        assert r[0] == "5", f"{rcpt} accepted: {r}"
        sock.sendall(b"RSET\r\n")
        assert reply().startswith("250")
    sock.close()
    for uid in ("alice", "bob", "carol"):
        assert b.messages(uid) == []


def test_submission_needs_tls_then_auth_and_own_addresses(office):
    b = office
    s = smtplib.SMTP("127.0.0.1", b.port(587), timeout=30)
    s.ehlo("laptop")
    assert not s.has_extn("auth"), "no AUTH offered before STARTTLS"
    plain = base64.b64encode(b"\0alice\0long enough pw").decode()
    code, _ = s.docmd("AUTH", "PLAIN " + plain)
    assert code == 538
    code, _ = s.docmd("MAIL", "FROM:<alice@example.com>")
    assert code == 530
    s.starttls(context=tls_ctx())
    s.ehlo("laptop")
    assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
    code, _ = s.docmd("MAIL", "FROM:<alice@example.com>")
    assert code == 530, "authentication required"
    with pytest.raises(smtplib.SMTPAuthenticationError):
        s.login("alice", "wrong password")
    s.login("alice", "long enough pw")
    # Someone else's envelope sender, or From: header: refused.
    with pytest.raises(smtplib.SMTPSenderRefused):
        s.sendmail("bob@example.com", ["carol@example.com"], MESSAGE)
    forged = MESSAGE.replace(b"From: Sender <sender@remote.example>", b"From: Bob <bob@example.com>")
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail("alice@example.com", ["carol@example.com"], forged)
    assert e.value.smtp_code == 550
    # Her own address, an alias, or a sub-address: delivered.
    mine = MESSAGE.replace(b"From: Sender <sender@remote.example>", b"From: Alice <a.martin@example.com>")
    s.sendmail("alice+x@example.com", ["carol@example.com"], mine)
    s.quit()
    [got] = b.messages("carol")
    assert got.endswith(mine) and b"with ESMTPSA" in got


def test_implicit_tls_submission_and_auth_login(office):
    b = office
    with smtplib.SMTP_SSL("127.0.0.1", b.port(465), context=tls_ctx(), timeout=30) as s:
        s.ehlo("phone")
        assert not s.has_extn("starttls")
        s.user, s.password = "bob@example.com", "long enough pw"
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235
        msg = MESSAGE.replace(b"From: Sender <sender@remote.example>", b"From: bob@example.com")
        s.sendmail("bob@example.com", ["alice@example.com"], msg)
    assert len(b.messages("alice")) == 1


def test_bare_lf_smuggling_does_not_split_a_message(office):
    b = office
    sock, reply = raw(b)
    reply()
    sock.sendall(b"EHLO attacker.example\r\n")
    reply()
    sock.sendall(b"MAIL FROM:<a@attacker.example>\r\n")
    assert reply().startswith("250")
    sock.sendall(b"RCPT TO:<alice@example.com>\r\n")
    assert reply().startswith("250")
    sock.sendall(b"DATA\r\n")
    assert reply().startswith("354")
    # The classic smuggling payload: a bare-LF "end of data", then a second transaction.
    sock.sendall(
        b"Subject: first\r\n\r\nfirst body\n.\r\n"
        b"MAIL FROM:<ceo@example.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n"
        b"From: ceo@example.com\r\nSubject: smuggled\r\n\r\nsmuggled body\r\n.\r\n"
    )
    r = reply()
    assert r.startswith("550 5.5.2"), r
    # Nothing else was answered: no second transaction ran.
    sock.sendall(b"NOOP\r\n")
    assert reply().startswith("250 2.0.0")
    sock.close()
    assert all(b"smuggled" not in m for m in b.messages("alice"))
    assert b.messages("alice") == [], "the message with a bare LF is refused whole"


def test_starttls_command_injection_has_no_effect(office):
    b = office
    sock, reply = raw(b, 587)
    reply()
    sock.sendall(b"EHLO laptop\r\n")
    reply()
    # Commands pipelined behind STARTTLS, in the clear: they must be discarded.
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<alice@example.com>\r\nRSET\r\n")
    assert reply().startswith("220")
    tls = tls_ctx().wrap_socket(sock, server_hostname="box.example.com")
    f = tls.makefile("rb")
    tls.sendall(b"EHLO laptop\r\n")
    first = f.readline()
    assert first.startswith(b"250-box.example.com"), first
    while f.readline()[3:4] == b"-":
        pass
    tls.sendall(b"RCPT TO:<carol@example.com>\r\n")
    assert f.readline().startswith(b"503"), "the injected MAIL FROM did not run"
    tls.close()


def test_chunking_bdat(office):
    b = office
    sock, reply = raw(b)
    reply()
    sock.sendall(b"EHLO client\r\n")
    reply()
    part1 = b"Subject: chunks\r\n\r\nfirst "
    part2 = b"second\r\n"
    sock.sendall(b"MAIL FROM:<x@remote.example>\r\nRCPT TO:<bob@example.com>\r\n")
    assert reply().startswith("250") and reply().startswith("250")
    sock.sendall(b"BDAT %d\r\n" % len(part1) + part1)
    assert reply().startswith("250")
    sock.sendall(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert reply().startswith("250 2.0.0 Ok")
    # A BDAT with no transaction: its bytes are read, not run as commands.
    evil = b"MAIL FROM:<x@y>\r\n"
    sock.sendall(b"BDAT %d LAST\r\n" % len(evil) + evil)
    assert reply().startswith("503")
    sock.sendall(b"NOOP\r\n")
    assert reply().startswith("250")
    sock.close()
    [got] = b.messages("bob")
    assert got.endswith(part1 + part2)


def test_limits_size_quota_and_malformed_commands(office):
    b = office
    b.cli("user", "set", "carol", "--quota", "1")
    b.messages("carol")  # carol has 0 bytes: under quota
    with mx(b) as s:
        s.sendmail("x@remote.example", ["carol@example.com"], MESSAGE)  # fills her quota
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("x@remote.example", ["carol@example.com"], MESSAGE)
        assert e.value.recipients["carol@example.com"][0] == 452
        code, _ = s.docmd("MAIL", "FROM:<x@remote.example> SIZE=999999999")
        assert code == 552
        code, _ = s.docmd("RSET")
        big = MESSAGE + b"x" * 250_000 + b"\r\n"
        # Without a declared SIZE the limit holds at the end of the data.
        del s.esmtp_features["size"]
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("x@remote.example", ["alice@example.com"], big)
        assert e.value.smtp_code == 552
        for bad in ("FOO", "MAIL TO:<x>", "RCPT TO:<alice@example.com>", "DATA"):
            code, _ = s.docmd(bad)
            assert 500 <= code < 600, bad
        code, _ = s.docmd("NOOP")
        assert code == 250, "the session survives bad commands"
    assert b.messages("alice") == []


def test_swaks_mx_and_submission(office):
    b = office
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(b.port(25)), "--from", "x@remote.example",
         "--to", "alice@example.com", "--body", "hello from swaks", "--header", "Subject: swaks"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(b.port(587)), "--tls", "--auth", "PLAIN",
         "--auth-user", "bob", "--auth-password", "long enough pw", "--from", "bob@example.com",
         "--header", "From: bob@example.com", "--to", "alice@example.com", "--body", "from bob via swaks"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    msgs = b.messages("alice")
    assert len(msgs) == 2
    assert b"hello from swaks" in msgs[0] and b"from bob via swaks" in msgs[1]
    # Relaying through the MX with swaks: refused.
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(b.port(25)), "--from", "x@remote.example",
         "--to", "victim@elsewhere.example"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0 and "554 5.7.1" in r.stdout


def test_a_250_survives_sigkill(office):
    b = office
    with mx(b) as s:
        s.sendmail("x@remote.example", ["alice@example.com"], MESSAGE)
    b.kill()
    b.restart()
    [got] = b.messages("alice")
    assert got.endswith(MESSAGE)


def test_too_many_connections_from_one_address(bureau_factory):
    b = bureau_factory("[smtp]\nmax_connections_per_ip = 2\n")
    held = [socket.create_connection(("127.0.0.1", b.port(25)), timeout=10) for _ in range(2)]
    for h in held:
        assert h.recv(100).startswith(b"220")
    third = socket.create_connection(("127.0.0.1", b.port(25)), timeout=10)
    assert third.recv(100).startswith(b"421 4.7.0")
    held[0].close()
    time.sleep(0.2)
    fourth = socket.create_connection(("127.0.0.1", b.port(25)), timeout=10)
    assert fourth.recv(100).startswith(b"220")


def test_catch_all_takes_unknown_addresses_of_its_domain(office):
    b = office
    assert "carol" in b.cli("domain", "catch-all", "example.com", "carol").stdout
    with mx(b) as s:
        s.sendmail("x@remote.example", ["whoever@example.com"], MESSAGE)
        # Another domain is still refused: catch-all is no relay.
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("x@remote.example", ["whoever@elsewhere.example"], MESSAGE)
    assert len(b.messages("carol")) == 1
    b.cli("domain", "catch-all", "example.com", "none")
    with mx(b) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("x@remote.example", ["whoever@example.com"], MESSAGE)
