"""LDAP-lite with real clients: ldapsearch, ldapwhoami and ldappasswd (Debian's ldap-utils)
and the Python ldap3 library, over StartTLS (389) and TLS (636)."""

import http.client
import imaplib
import json
import os
import ssl
import subprocess

import ldap3
import pytest

from conftest import tls_context
from test_foundation import login

PW = "long enough pw"
BASE = "dc=example,dc=com"
ENV = dict(os.environ, LDAPTLS_REQCERT="never")


@pytest.fixture
def office(bureau_factory):
    b = bureau_factory("")
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "alice@example.com", "--name", "Alice Martin", "--alias", "a.martin@example.com",
          "--admin", "--password-stdin", input=PW + "\n")
    b.cli("user", "add", "bob@example.com", "--name", "Bob Stone", "--password-stdin", input=PW + "\n")
    b.cli("group", "add", "sales", "--address", "sales@example.com", "--member", "alice")
    b.cli("user", "set", "bob", "--phone", "+33 1 23 45 67 89")
    return b


def ldap(b, tool, *args, tls="starttls"):
    url = f"ldaps://127.0.0.1:{b.port(636)}" if tls == "ldaps" else f"ldap://127.0.0.1:{b.port(389)}"
    extra = ["-ZZ"] if tls == "starttls" else []
    return subprocess.run([tool, "-x", "-H", url, *extra, *args], capture_output=True, text=True, env=ENV,
                          timeout=60)


def alice(*args, **kw):
    return ("-D", f"uid=alice,ou=people,{BASE}", "-w", PW) + args


def entries(out):
    return [line[4:] for line in out.splitlines() if line.startswith("dn: ")]


def test_root_dse_binds_and_refusals(office):
    b = office
    r = ldap(b, "ldapsearch", "-b", "", "-s", "base", "namingContexts", "supportedExtension", tls=None)
    assert r.returncode == 0 and f"namingContexts: {BASE}" in r.stdout, r.stderr
    assert "1.3.6.1.4.1.1466.20037" in r.stdout
    # Anonymous searches are off; passwords are refused in clear text; wrong ones get 49.
    assert ldap(b, "ldapsearch", "-b", BASE).returncode == 50
    r = ldap(b, "ldapsearch", *alice("-b", BASE), tls=None)
    assert r.returncode == 13, r.stderr
    r = ldap(b, "ldapwhoami", "-D", f"uid=alice,ou=people,{BASE}", "-w", "wrong password")
    assert r.returncode == 49
    # By DN over StartTLS, by address and by uid over TLS.
    r = ldap(b, "ldapwhoami", *alice())
    assert r.returncode == 0 and r.stdout.strip() == f"dn:uid=alice,ou=people,{BASE}", r.stderr
    for name in ("bob@example.com", "bob"):
        r = ldap(b, "ldapwhoami", "-D", name, "-w", PW, tls="ldaps")
        assert r.stdout.strip() == f"dn:uid=bob,ou=people,{BASE}", r.stderr
    # The directory is read-only over LDAP.
    r = subprocess.run(["ldapdelete", "-x", "-H", f"ldap://127.0.0.1:{b.port(389)}", "-ZZ", *alice(),
                        f"uid=bob,ou=people,{BASE}"], capture_output=True, text=True, env=ENV)
    assert r.returncode == 53


def test_searches_filters_scopes_and_attributes(office):
    b = office
    # Thunderbird's address lookup: a prefix on mail or cn.
    r = ldap(b, "ldapsearch", *alice("-b", BASE, "(|(mail=ali*)(cn=ali*))", "mail", "cn"))
    assert r.returncode == 0 and entries(r.stdout) == [f"uid=alice,ou=people,{BASE}"], r.stdout
    assert "mail: a.martin@example.com" in r.stdout and "sn:" not in r.stdout
    # The same with ldap3 over TLS, bound by address.
    server = ldap3.Server("127.0.0.1", port=b.port(636), use_ssl=True,
                          tls=ldap3.Tls(validate=ssl.CERT_NONE))
    with ldap3.Connection(server, "bob@example.com", PW, auto_bind=True) as c:
        c.search(f"ou=people,{BASE}", "(&(objectClass=inetOrgPerson)(sn=St*))", attributes=["*", "+"])
        [bob] = c.entries
        assert bob.uid.value == "bob" and bob.givenName.value == "Bob" and bob.mail.value == "bob@example.com"
        assert bob.telephoneNumber.value == "+33 1 23 45 67 89"
        assert c.response[0]["attributes"]["entryDN"] == [f"uid=bob,ou=people,{BASE}"]
        # Scopes: base, one level, subtree.
        c.search(f"ou=groups,{BASE}", "(objectClass=*)", search_scope=ldap3.BASE)
        assert [e.entry_dn for e in c.entries] == [f"ou=groups,{BASE}"]
        c.search(BASE, "(objectClass=organizationalUnit)", search_scope=ldap3.LEVEL)
        assert sorted(e.entry_dn for e in c.entries) == [f"ou={x},{BASE}" for x in ("contacts", "groups", "people", "resources")]
        c.search(BASE, "(cn=sales)", attributes=["member", "mail"])
        [sales] = c.entries
        assert sales.member.value == f"uid=alice,ou=people,{BASE}" and sales.mail.value == "sales@example.com"
        c.search(BASE, "(uid=alice)", attributes=["memberOf"])
        assert c.entries[0].memberOf.value == f"cn=sales,ou=groups,{BASE}"
        # The company address book's shared contacts (an administrator adds them over
        # CardDAV); the users' own cards are people already, not repeated.
        from test_dav import dav
        card = ("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:plumber\r\nFN:Joe Plumber\r\n"
                "EMAIL:joe@plumbing.example\r\nTEL:+33 1 23 45 67 89\r\nORG:Plumbing SA\r\nEND:VCARD\r\n")
        assert dav(b, "PUT", "/dav/addressbooks/_company/directory/joe.vcf", card)[0] == 201
        assert dav(b, "PUT", "/dav/addressbooks/_company/directory/x.vcf", card.replace("plumber", "x"),
                   user="bob")[0] == 403
        c.search(f"ou=contacts,{BASE}", "(objectClass=*)", search_scope=ldap3.LEVEL,
                 attributes=["cn", "mail", "telephoneNumber", "o"])
        [joe] = c.entries
        assert joe.entry_dn == f"cn=joe plumber,ou=contacts,{BASE}"
        assert joe.telephoneNumber.value == "+33 1 23 45 67 89" and joe.o.value == "Plumbing SA"
        # No password attribute, whatever is asked.
        c.search(BASE, "(userPassword=*)", attributes=["userPassword"])
        assert c.entries == []
        c.search(BASE, "(uid=bob)", attributes=["userPassword", "sambaNTPassword"])
        assert not any(c.response[0]["raw_attributes"].values()), c.response[0]
        # Other filter types, and a base that is not there.
        c.search(BASE, "(&(uid>=b)(!(cn~=alicemartin)))", attributes=["uid"])
        assert [e.uid.value for e in c.entries] == ["bob"]
        assert not c.search(f"ou=nowhere,{BASE}", "(objectClass=*)")
        assert c.result["result"] == 32 and c.result["dn"] == BASE, c.result


def test_paged_search_over_two_thousand_users(office):
    b = office
    _, body, _, cookie = login(b, "alice", PW)
    csrf = json.loads(body)["csrf"]
    conn = http.client.HTTPSConnection("127.0.0.1", b.port(443), context=tls_context(), timeout=60)
    for i in range(2000):
        conn.request("POST", "/api/v1/users", body=json.dumps({"address": f"user{i:04}@example.com",
                     "password": PW}), headers={"Content-Type": "application/json",
                     "Cookie": cookie.split(";")[0], "X-CSRF-Token": csrf})
        r = conn.getresponse()
        r.read()
        assert r.status == 201
    # Without paging: the server's size limit, and result 4.
    r = ldap(b, "ldapsearch", *alice("-b", f"ou=people,{BASE}", "(uid=user*)", "uid"))
    assert r.returncode == 4 and len(entries(r.stdout)) == 1000
    # Paged: everyone, 500 at a time.
    r = ldap(b, "ldapsearch", *alice("-E", "pr=500/noprompt", "-b", f"ou=people,{BASE}", "(uid=user*)", "uid"))
    assert r.returncode == 0, r.stderr
    assert len(entries(r.stdout)) == 2000 and len(set(entries(r.stdout))) == 2000
    server = ldap3.Server("127.0.0.1", port=b.port(636), use_ssl=True, tls=ldap3.Tls(validate=ssl.CERT_NONE))
    with ldap3.Connection(server, f"uid=alice,ou=people,{BASE}", PW, auto_bind=True) as c:
        got = list(c.extend.standard.paged_search(BASE, "(mail=user1*)", attributes=["mail"], paged_size=300))
        assert len([e for e in got if e["type"] == "searchResEntry"]) == 1000


def test_password_modify_then_every_service_takes_the_new_password(office):
    b = office
    bob = ("-D", f"uid=bob,ou=people,{BASE}")
    # The old password is needed for one's own; another's is an administrator's to set.
    # (ldappasswd exits 1 and prints the result code.)
    r = ldap(b, "ldappasswd", *bob, "-w", PW, "-a", "not it", "-s", "bob's new secret")
    assert r.returncode == 1 and "(49)" in r.stdout
    r = ldap(b, "ldappasswd", *bob, "-w", PW, "-a", PW, "-s", "short")
    assert r.returncode == 1 and "Constraint violation (19)" in r.stdout, r.stdout
    r = ldap(b, "ldappasswd", *bob, "-w", PW, "-a", PW, "-s", "a new long secret")
    assert r.returncode == 0, r.stderr
    assert ldap(b, "ldapwhoami", *bob, "-w", "a new long secret").returncode == 0
    assert ldap(b, "ldapwhoami", *bob, "-w", PW).returncode == 49
    with imaplib.IMAP4_SSL("127.0.0.1", b.port(993), ssl_context=tls_context()) as m:
        assert m.login("bob", "a new long secret")[0] == "OK"
    r = ldap(b, "ldappasswd", *bob, "-w", "a new long secret", "-s", "taken over!!", f"uid=alice,ou=people,{BASE}")
    assert r.returncode == 1 and "(50)" in r.stdout
    r = ldap(b, "ldappasswd", *alice("-s", "reset by alice", f"uid=bob,ou=people,{BASE}"))
    assert r.returncode == 0, r.stderr
    assert ldap(b, "ldapwhoami", *bob, "-w", "reset by alice").returncode == 0


def test_service_accounts_bind_read_only(office):
    b = office
    made = json.loads(b.cli("--json", "service", "add", "wiki", "--description", "The office wiki").stdout)
    dn, password = made["bind_dn"], made["password"]
    assert dn == f"cn=wiki,ou=services,{BASE}" and len(password) >= 32
    r = ldap(b, "ldapwhoami", "-D", dn, "-w", password)
    assert r.returncode == 0 and r.stdout.strip() == f"dn:{dn}", r.stderr
    r = ldap(b, "ldapsearch", "-D", dn, "-w", password, "-b", BASE, "(uid=alice)", "mail")
    assert r.returncode == 0 and "mail: alice@example.com" in r.stdout
    # Read-only: no password changes, no writes.
    r = ldap(b, "ldappasswd", "-D", dn, "-w", password, "-s", "anything long", f"uid=bob,ou=people,{BASE}")
    assert r.returncode == 1 and "(50)" in r.stdout
    # Not a login anywhere else.
    with imaplib.IMAP4_SSL("127.0.0.1", b.port(993), ssl_context=tls_context()) as m:
        with pytest.raises(imaplib.IMAP4.error):
            m.login("wiki", password)
    # A reset ends the old password; a deleted account binds no more.
    new = json.loads(b.cli("--json", "service", "reset", "wiki").stdout)["password"]
    assert ldap(b, "ldapwhoami", "-D", dn, "-w", password).returncode == 49
    assert ldap(b, "ldapwhoami", "-D", dn, "-w", new).returncode == 0
    # A telephone number is checked like any field.
    r = b.cli("user", "set", "bob", "--phone", "call me maybe", check=False)
    assert r.returncode != 0 and "phone" in r.stderr
    # A name taken by a user is refused, beside its field.
    r = b.cli("service", "add", "alice", check=False)
    assert r.returncode != 0 and "alice" in r.stderr
    b.cli("service", "del", "wiki")
    assert ldap(b, "ldapwhoami", "-D", dn, "-w", new).returncode == 49


def tlv(tag, body):
    n = len(body)
    length = bytes([n]) if n < 128 else bytes([0x83]) + n.to_bytes(3, "big")
    return bytes([tag]) + length + body


def ldap_msg(msgid, op):
    return tlv(0x30, tlv(0x02, bytes([msgid])) + op)


def test_malformed_and_mutated_messages_never_hurt_the_server(office):
    import random
    import socket

    b = office
    bind = ldap_msg(1, tlv(0x60, tlv(0x02, b"\x03") + tlv(0x04, b"") + tlv(0x80, b"")))
    search = ldap_msg(2, tlv(0x63, tlv(0x04, b"") + tlv(0x0A, b"\x00") + tlv(0x0A, b"\x00") + tlv(0x02, b"\x00")
                             + tlv(0x02, b"\x00") + tlv(0x01, b"\x00") + tlv(0x87, b"objectClass")
                             + tlv(0x30, tlv(0x04, b"namingContexts"))))

    def exchange(data, read=True):
        with socket.create_connection(("127.0.0.1", b.port(389)), timeout=5) as s:
            s.sendall(data)
            if not read:
                return b""
            s.settimeout(0.3)
            out = b""
            try:
                while chunk := s.recv(65536):
                    out += chunk
                    if len(out) > 4 and b"\x65" in out[:8]:
                        break
            except (socket.timeout, ConnectionResetError):
                pass
            return out

    # The messages as built are understood: the root DSE names the domain.
    assert b"dc=example,dc=com" in exchange(bind + search)
    # LDAPv2 gets protocolError (2) in a BindResponse (0x61).
    v2 = exchange(ldap_msg(1, tlv(0x60, tlv(0x02, b"\x02") + tlv(0x04, b"") + tlv(0x80, b""))))
    assert v2[:1] == b"\x30" and b"\x61" in v2 and b"\x0a\x01\x02" in v2
    # Garbage, a message past the size bound: a Notice of Disconnection (protocolError).
    for data in (b"\x30\x03\xff\xff\xff", b"\x04\x03abc",
                 tlv(0x30, b"\x02\x01\x01" + tlv(0x63, b"\x04\x00" * 40000))):
        answer = exchange(data)
        assert b"1.3.6.1.4.1.1466.20036" in answer and b"\x0a\x01\x02" in answer, (data[:20], answer)
    deep = tlv(0x87, b"cn")
    for _ in range(200):
        deep = tlv(0xA3, deep) if len(deep) < 60000 else deep
    exchange(ldap_msg(3, tlv(0x63, tlv(0x04, b"") + tlv(0x0A, b"\x02") + tlv(0x0A, b"\x00") + tlv(0x02, b"\x00")
                             + tlv(0x02, b"\x00") + tlv(0x01, b"\x00") + deep + tlv(0x30, b""))))
    # 1,500 byte-level mutations of the bind and search.
    rng = random.Random(20261201)
    for i in range(1500):
        data = bytearray(bind + search)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[pos] = rng.randrange(256)
            else:
                del data[pos]
        exchange(bytes(data), read=i % 50 == 0)
    # Still serving, and nothing panicked.
    r = ldap(b, "ldapwhoami", *alice())
    assert r.returncode == 0, r.stderr
    assert "panicked" not in (b.dir / "bureau.log").read_text()
