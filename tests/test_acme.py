"""Certificates from an ACME authority: Debian's pebble (RFC 8555 test server) issues and
renews the box's certificate after validating HTTP-01 on Bureau's port-80 listener (pebble
resolves the box's name through the tests' DNS server), and every TLS port serves it."""

import json
import os
import socket
import ssl
import subprocess
import time

import pytest
import requests
import urllib3

from conftest import _free_port
from test_foundation import _https, login

urllib3.disable_warnings()
PW = "long enough pw"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def served(port):
    """The certificate a TLS port serves (DER)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s, ctx.wrap_socket(s) as t:
        return t.getpeercert(binary_form=True)


@pytest.fixture
def pebble(tmp_path):
    """pebble with its own HTTPS certificate, made here (pebble's package ships none)."""
    d = tmp_path / "pebble"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=pebble test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "leaf.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "cert.pem", "-days", "2", "-extfile", "ext", cwd=d)

    class Pebble:
        ca = d / "ca.pem"
        port, mgmt = _free_port(), _free_port()
        proc = None

        def start(self, http_port, dns_port):
            (d / "config.json").write_text(json.dumps({"pebble": {
                "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.mgmt}",
                "certificate": str(d / "cert.pem"), "privateKey": str(d / "key.pem"),
                "httpPort": http_port, "tlsPort": _free_port(), "ocspResponderURL": "",
                "externalAccountBindingRequired": False}}))
            env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
            self.log = open(d / "pebble.log", "w")
            self.proc = subprocess.Popen(["pebble", "-config", str(d / "config.json"),
                                          "-dnsserver", f"127.0.0.1:{dns_port}"],
                                         env=env, stdout=self.log, stderr=subprocess.STDOUT)
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.1)
            raise RuntimeError((d / "pebble.log").read_text())

        def directory(self):
            return f"https://127.0.0.1:{self.port}/dir"

        def pem(self, what):
            return requests.get(f"https://127.0.0.1:{self.mgmt}/{what}/0", verify=False, timeout=10).text

    p = Pebble()
    yield p
    if p.proc:
        p.proc.terminate()
        p.proc.wait(timeout=10)
        p.log.close()


def test_pebble_issues_and_renews_the_boxs_certificate_for_every_port(bureau_factory, dns_zone, pebble, tmp_path):
    b = bureau_factory(f'[tls]\nacme_ca_file = "{pebble.ca}"\n')
    dns_zone.add("box.example.com", "A", "127.0.0.1")
    pebble.start(b.port(80), dns_zone.port)
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "boss@example.com", "--admin", "--password-stdin", input=PW + "\n")
    status, body, _, cookie = login(b, "boss", PW)
    assert status == 200
    csrf = json.loads(body)["csrf"]

    def api(method, path, data=None):
        s, out, _ = _https(b, method, f"/api/v1/{path}", data, cookie=cookie, csrf=csrf)
        return s, out

    # Bad settings are refused beside their field, and nothing is asked of the authority.
    s, err = api("PUT", "certificate/acme", {"enabled": True, "email": "nope", "directory": pebble.directory()})
    assert s == 400 and err["field"] == "email", err
    s, err = api("PUT", "certificate/acme", {"enabled": True, "email": "it@example.com", "directory": "http://x/dir"})
    assert s == 400 and err["field"] == "directory", err
    assert api("GET", "certificate")[1]["source"] == "self-signed"

    s, st = api("PUT", "certificate/acme", {"enabled": True, "email": "it@example.com", "directory": pebble.directory()})
    assert s == 200 and st["last_error"] is None and st["last_issued"], (st, (tmp_path / "pebble" / "pebble.log").read_text()[-2000:])
    s, info = api("GET", "certificate")
    assert info["source"] == "acme" and "Pebble" in info["issuer"] and info["names"] == ["box.example.com"], info
    first = served(b.port(443))
    for port in (993, 465, 636):
        assert served(b.port(port)) == first, port
    # It chains to pebble's root.
    (tmp_path / "root.pem").write_text(pebble.pem("roots"))
    (tmp_path / "inter.pem").write_text(pebble.pem("intermediates"))
    (tmp_path / "leaf.pem").write_text(ssl.DER_cert_to_PEM_cert(first))
    r = subprocess.run(["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "leaf.pem"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    # Renewed: a new certificate, served at once on every port.
    s, renewed = api("POST", "certificate/acme/renew")
    assert s == 200 and renewed["source"] == "acme", renewed
    second = served(b.port(443))
    assert second != first and served(b.port(993)) == second

    # An authority that cannot be reached: said in words, the certificate in use stays.
    s, err = api("PUT", "certificate/acme", {"enabled": True, "email": "it@example.com",
                                             "directory": f"https://127.0.0.1:{_free_port()}/dir"})
    assert s == 502 and "could not be reached" in err["error"], err
    assert api("GET", "certificate/acme")[1]["last_error"]
    assert served(b.port(443)) == second
    # Port 80 still sends everything else to HTTPS.
    r = requests.get(f"http://127.0.0.1:{b.port(80)}/admin/", allow_redirects=False, timeout=10,
                     headers={"Host": "box.example.com"})
    assert r.status_code == 301 and r.headers["location"].startswith("https://box.example.com")
    assert requests.get(f"http://127.0.0.1:{b.port(80)}/.well-known/acme-challenge/none", timeout=10).status_code == 404
