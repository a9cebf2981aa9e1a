"""The outbound queue against a real SMTP server on loopback: delivered, retried after a
temporary failure, bounced after a permanent one, through a smarthost with AUTH, and kept
across a SIGKILL."""

import email
import json
import os
import smtplib
import time

import pytest

from conftest import TestMX, _free_port
from test_smtp import submission

MSG = b"From: Alice <alice@example.com>\r\nTo: bob@remote.example\r\nSubject: out\r\n\r\nHello out there.\r\n"


def start_office(bureau_factory, extra):
    b = bureau_factory(
        "[smtp]\nretry_first_secs = 1\nretry_max_secs = 2\nmax_messages_per_minute_per_ip = 10000\n" + extra
    )
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "alice@example.com", "--password-stdin", input="long enough pw\n")
    b.cli("user", "add", "carol@example.com", "--password-stdin", input="long enough pw\n")
    return b


def wait_for(cond, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def routes(port):
    return f'\n[smtp.routes]\n"remote.example" = "127.0.0.1:{port}"\n'


def queue(b):
    return json.loads(b.cli("--json", "queue", "list").stdout)


def test_delivered_to_the_remote_mx_and_locally_in_one_go(bureau_factory, test_mx):
    mx = test_mx()
    b = start_office(bureau_factory, routes(mx.port))
    with submission(b) as s:
        refused = s.sendmail("alice@example.com", ["bob@remote.example", "carol@example.com"], MSG)
        assert refused == {}
    [(mail_from, rcpts, data)] = wait_for(lambda: mx.received, what="remote delivery")
    assert mail_from == "alice@example.com" and rcpts == ["bob@remote.example"]
    assert data.endswith(MSG) and b"by box.example.com (Bureau) with ESMTPSA" in data
    assert not data.startswith(b"Return-Path"), "Return-Path is the final MTA's"
    [local] = b.messages("carol")
    assert local.endswith(MSG)
    wait_for(lambda: queue(b) == [], what="the queue to empty")


def test_a_temporary_failure_is_retried(bureau_factory, test_mx):
    mx = test_mx()
    mx.script["data"] = ["451 4.3.0 try later", "451 4.3.0 try later"]
    b = start_office(bureau_factory, routes(mx.port))
    with submission(b) as s:
        s.sendmail("alice@example.com", ["bob@remote.example"], MSG)
    q = wait_for(lambda: [e for e in queue(b) if e["attempts"] >= 1], what="a failed attempt")
    assert q[0]["rcpts"][0]["state"] == "pending" and "451" in q[0]["rcpts"][0]["error"]
    wait_for(lambda: mx.received, what="delivery on retry")
    wait_for(lambda: queue(b) == [], what="the queue to empty")
    assert b.messages("alice") == [], "no bounce"


def test_a_permanent_failure_bounces_to_the_sender(bureau_factory, test_mx):
    mx = test_mx()
    mx.script["rcpt"] = ["550 5.1.1 no such user here"]
    b = start_office(bureau_factory, routes(mx.port))
    with submission(b) as s:
        s.sendmail("alice@example.com", ["bob@remote.example"], MSG)
    [dsn] = wait_for(lambda: b.messages("alice"), what="the bounce")
    text = dsn.decode()
    report = email.message_from_bytes(dsn)
    assert report["Subject"] == "Undelivered Mail Returned to Sender" and report["Return-Path"] == "<>"
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = [p.get_content_type() for p in report.get_payload()]
    assert parts == ["text/plain", "message/delivery-status", "text/rfc822-headers"], parts
    assert "Final-Recipient: rfc822; bob@remote.example" in text and "Status: 5." in text
    assert "no such user here" in text and "Subject: out" in text
    assert mx.received == []
    wait_for(lambda: queue(b) == [], what="the queue to empty")


def test_through_a_smarthost_with_auth(bureau_factory, test_mx):
    relay = test_mx(auth=(b"office", b"relay secret"))
    b = start_office(
        bureau_factory,
        f'\n[smtp.relay]\nhost = "127.0.0.1"\nport = {relay.port}\ntls = "none"\n'
        'username = "office"\npassword = "relay secret"\n',
    )
    with submission(b) as s:
        s.sendmail("alice@example.com", ["someone@anywhere.example"], MSG)
    [(mail_from, rcpts, _)] = wait_for(lambda: relay.received, what="relay delivery")
    assert rcpts == ["someone@anywhere.example"] and relay.auth_seen == ["office"]
    log = (b.dir / "bureau.log").read_text()
    assert "relay secret" not in log


def test_queued_mail_survives_sigkill_and_the_cli_manages_the_queue(bureau_factory, test_mx):
    port = _free_port()  # nothing listens there yet: the remote MX is down
    b = start_office(bureau_factory, routes(port))
    with submission(b) as s:
        s.sendmail("alice@example.com", ["bob@remote.example"], MSG)
        s.sendmail("alice@example.com", ["bob@remote.example"], MSG.replace(b"out", b"second"))
    entries = wait_for(lambda: [e for e in queue(b) if e["attempts"] >= 1], what="failed attempts")
    text = b.cli("queue", "list").stdout
    assert "bob@remote.example" in text and "pending" in text
    # The administrator deletes the second one.
    second = [e for e in queue(b) if e["size"] != entries[0]["size"]] or queue(b)[1:]
    b.cli("queue", "delete", second[0]["id"])
    assert len(queue(b)) == 1
    b.kill()
    # The remote MX comes up; the daemon restarts after a power cut: the message goes out.
    mx = TestMX(port=port)
    try:
        b.restart()
        b.cli("queue", "retry", queue(b)[0]["id"])
        [(_, rcpts, data)] = wait_for(lambda: mx.received, what="delivery after restart")
        assert rcpts == ["bob@remote.example"] and b"Subject: out" in data
        wait_for(lambda: queue(b) == [], what="the queue to empty")
    finally:
        mx.stop()


def test_unauthenticated_mail_to_other_domains_is_still_refused(bureau_factory, test_mx):
    mx = test_mx()
    b = start_office(bureau_factory, routes(mx.port))
    with smtplib.SMTP("127.0.0.1", b.port(25), timeout=30) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("x@attacker.example", ["bob@remote.example"], MSG)
    time.sleep(1)
    assert mx.received == [] and queue(b) == []


def test_dsn_parameters_shape_the_bounce(bureau_factory, test_mx):
    mx = test_mx()
    mx.script["rcpt"] = ["550 5.1.1 no such user", "550 5.1.1 no such user"]
    b = start_office(bureau_factory, routes(mx.port))
    with submission(b) as s:
        s.mail("alice@example.com", ["ENVID=alice-42", "RET=FULL"])
        assert s.rcpt("quiet@remote.example", ["NOTIFY=NEVER"])[0] == 250
        assert s.rcpt("bob@remote.example", ["NOTIFY=FAILURE", "ORCPT=rfc822;Bob@Remote.Example"])[0] == 250
        assert s.data(MSG)[0] == 250
    [dsn] = wait_for(lambda: b.messages("alice"), what="the bounce")
    text = dsn.decode()
    assert "Original-Envelope-Id: alice-42" in text
    assert "Original-Recipient: rfc822;Bob@Remote.Example" in text
    assert "bob@remote.example" in text and "quiet@remote.example" not in text, "NOTIFY=NEVER is not reported"
    assert "Content-Type: message/rfc822" in text and "Hello out there." in text, "RET=FULL returns the body"


def test_mx_lookup_in_real_dns(bureau_factory, dns_zone):
    """No static route: the queue asks DNS for remote.example's MX and delivers there, on
    port 25 (of 127.0.0.2, so that no other test's port is in the way; needs root)."""
    if os.geteuid() != 0:
        pytest.skip("binding port 25 needs root")
    dns_zone.add("remote.example", "MX", "10 mx.remote.example.")
    dns_zone.add("mx.remote.example", "A", "127.0.0.2")
    dns_zone.add("nomail.example", "MX", "0 .")
    mx = TestMX(host="127.0.0.2", port=25)
    try:
        b = start_office(bureau_factory, "")
        with submission(b) as s:
            s.sendmail("alice@example.com", ["bob@remote.example"], MSG)
            s.sendmail("alice@example.com", ["x@nomail.example"], MSG)
            s.sendmail("alice@example.com", ["x@nonexistent.example"], MSG)
        [(_, rcpts, _)] = wait_for(lambda: mx.received, what="delivery to the MX")
        assert rcpts == ["bob@remote.example"]
        # A null MX (RFC 7505) and a domain that does not exist bounce at once.
        bounces = wait_for(lambda: b.messages("alice") if len(b.messages("alice")) >= 2 else None, what="bounces")
        text = b"".join(bounces).decode()
        assert "null MX" in text and "does not exist" in text
    finally:
        mx.stop()
