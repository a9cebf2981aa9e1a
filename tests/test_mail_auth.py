"""DKIM, SPF and DMARC: outgoing mail is signed with the domain's key and verifies with an
independent implementation (dkimpy) against the records `bureau domain dns` prints; incoming
mail is checked against a real DNS server and the verdict recorded in Authentication-Results."""

import json
import smtplib
import subprocess

import dkim

from test_smtp import submission
from test_smtp_outbound import routes, start_office, wait_for


def dns_records(b, domain):
    return json.loads(b.cli("--json", "domain", "dns", domain).stdout)


def test_outgoing_mail_is_dkim_signed_and_verifies(bureau_factory, test_mx, dns_zone):
    mx = test_mx()
    b = start_office(bureau_factory, routes(mx.port))
    records = dns_records(b, "example.com")
    kinds = {(r["type"], r["name"]) for r in records}
    assert ("MX", "example.com.") in kinds and ("TXT", "_dmarc.example.com.") in kinds
    [dkim_rec] = [r for r in records if "._domainkey." in r["name"]]
    assert dkim_rec["value"].startswith("v=DKIM1; k=rsa; p=")
    text = b.cli("domain", "dns", "example.com").stdout
    assert "IN\tMX\t10 box.example.com." in text and '"v=spf1 mx ~all"' in text

    msg = (
        b"From: Alice <alice@example.com>\r\nTo: bob@remote.example\r\nSubject: signed\r\n"
        b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <s1@example.com>\r\n\r\nSigned body.\r\n"
    )
    with submission(b) as s:
        s.sendmail("alice@example.com", ["bob@remote.example"], msg)
    [(_, _, data)] = wait_for(lambda: mx.received, what="remote delivery")
    assert data.startswith(b"DKIM-Signature:") and b"d=example.com" in data

    def dnsfunc(name, timeout=5):
        name = name.decode().rstrip(".") + "."
        for r in records:
            if r["name"] == name and r["type"] == "TXT":
                return r["value"].encode()
        return None

    assert dkim.verify(data, dnsfunc=dnsfunc), "dkimpy verifies our signature"
    tampered = data.replace(b"Signed body.", b"Changed body.")
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)


def make_key(tmp_path):
    key = tmp_path / "sender.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    import base64

    return key.read_bytes(), base64.b64encode(der).decode()


def test_incoming_mail_gets_spf_dkim_and_dmarc_verdicts(bureau_factory, dns_zone, tmp_path):
    private, public = make_key(tmp_path)
    dns_zone.add("remote.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns_zone.add("sel._domainkey.remote.example", "TXT", f"v=DKIM1; k=rsa; p={public}")
    dns_zone.add("_dmarc.remote.example", "TXT", "v=DMARC1; p=reject")
    dns_zone.add("bank.example", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns_zone.add("_dmarc.bank.example", "TXT", "v=DMARC1; p=reject")
    b = bureau_factory("[smtp]\nmax_messages_per_minute_per_ip = 1000\n")
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "alice@example.com", "--password-stdin", input="long enough pw\n")

    body = (
        b"From: Sender <sender@remote.example>\r\nTo: alice@example.com\r\nSubject: genuine\r\n"
        b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <g1@remote.example>\r\n\r\nHello.\r\n"
    )
    signed = dkim.sign(body, b"sel", b"remote.example", private, include_headers=[b"from", b"to", b"subject"]) + body
    # A forgery: a bank's From:, sent from an address its SPF does not list, unsigned, with a
    # fake verdict in our name.
    forged = (
        b"Authentication-Results: box.example.com; dkim=pass header.d=bank.example\r\n"
        b"From: Bank <security@bank.example>\r\nTo: alice@example.com\r\nSubject: urgent\r\n\r\nPay now.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", b.port(25), timeout=30) as s:
        s.ehlo("mail.remote.example")
        s.sendmail("sender@remote.example", ["alice@example.com"], signed)
        s.sendmail("security@bank.example", ["alice@example.com"], forged)
    genuine_copy, forged_copy = b.messages("alice")

    def verdicts(m):
        head = m.split(b"\r\n\r\n")[0].decode()
        results = [h for h in head.replace("\r\n\t", " ").split("\r\n") if h.startswith("Authentication-Results:")]
        return results

    [g] = verdicts(genuine_copy)
    assert g.startswith("Authentication-Results: box.example.com;")
    assert "dkim=pass" in g and "spf=pass" in g and "dmarc=pass" in g, g
    [f] = verdicts(forged_copy)
    assert "spf=fail" in f and "dmarc=fail" in f, f
    assert "dkim=pass header.d=bank.example" not in forged_copy.decode(), "the forged verdict was removed"
