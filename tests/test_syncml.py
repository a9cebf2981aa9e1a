"""SyncML with a real client: Debian's SyncEvolution, its file backend standing in for a
phone, against a running Bureau over HTTPS. The data is checked over CardDAV, and the other
way round.

The packaged client crashes on its first HTTP POST (it hands libcurl NULL read and write
callbacks; ../shared/peers/syncml.md): tests/syncml/curl-callbacks.c, built here with gcc and
preloaded, gives libcurl callbacks that call the client's own transport methods. Nothing of
the protocol goes through it."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import urllib3

from test_dav import dav

urllib3.disable_warnings()
PW = "long enough pw"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    out = tmp_path_factory.mktemp("shim") / "curl-callbacks.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(out),
                    str(HERE / "syncml" / "curl-callbacks.c"), "-ldl"], check=True)
    return out


class Device:
    """One SyncEvolution configuration: a folder of vCards synced with Bureau."""

    def __init__(self, b, shim, home, user="alice", password=PW, device="dev1", wbxml=False):
        self.b, self.shim, self.home = b, shim, home
        self.folder = home / "cards"
        self.folder.mkdir(parents=True)
        self.env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                        XDG_DATA_HOME=str(home / ".local/share"), XDG_CACHE_HOME=str(home / ".cache"))
        self.run("--configure", "backend=file", "databaseFormat=text/vcard",
                 f"database=file://{self.folder}", "@client", "addressbook")
        self.run("--configure", "--keyring=no", "--template", "SyncEvolution",
                 f"syncURL=https://127.0.0.1:{b.port(443)}/syncml", f"username={user}",
                 f"password={password}", f"deviceId={device}", f"enableWBXML={int(wbxml)}",
                 "SSLVerifyServer=0", "SSLVerifyHost=0", "clientAuthType=basic",
                 "bureau@client", "addressbook")

    def run(self, *args, check=True):
        r = subprocess.run(["syncevolution", "--daemon=no", *args], env=dict(self.env, LD_PRELOAD=str(self.shim)),
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        return r

    def sync(self, mode, check=True):
        return self.run("--sync", mode, "bureau@client", "addressbook", check=check)

    def cards(self):
        return {p.name: p.read_text() for p in self.folder.iterdir()}

    def add(self, fn, tel):
        name = uuid.uuid4().hex
        (self.folder / name).write_text(
            f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{fn}\r\nN:{fn.split()[-1]};{fn.split()[0]};;;\r\n"
            f"TEL:{tel}\r\nEND:VCARD\r\n")
        return name


def server_cards(b, user="alice"):
    """The user's contacts over CardDAV: name -> vCard text."""
    status, _, text = dav(b, "PROPFIND", f"/dav/addressbooks/{user}/contacts/", Depth="1", user=user)
    assert status == 207, text
    import re
    names = re.findall(r"<d:href>/dav/addressbooks/[^<]*/contacts/([^<]+\.vcf)</d:href>", text)
    return {n: dav(b, "GET", f"/dav/addressbooks/{user}/contacts/{n}", user=user)[2] for n in names}


def with_text(cards, needle):
    return [c for c in cards.values() if needle in c]


@pytest.fixture
def office(bureau):
    bureau.cli("domain", "add", "example.com")
    bureau.cli("user", "add", "alice@example.com", "--password-stdin", input=PW + "\n")
    return bureau


@pytest.mark.parametrize("wbxml", [False, True], ids=["xml", "wbxml"])
def test_slow_then_two_way_both_ways_with_carddav(office, shim, tmp_path, wbxml):
    b = office
    phone = Device(b, shim, tmp_path / "phone", wbxml=wbxml)
    phone.add("Ann Device", "+33111")
    phone.add("Carl Device", "+33222")
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:srv-1\r\nFN:Bob Server\r\nN:Server;Bob;;;\r\nEND:VCARD\r\n"
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/bob.vcf", card, Content_Type="text/vcard")[0] == 201

    # First sync: slow. The device's cards reach CardDAV, the server's the device.
    out = phone.sync("slow").stdout
    assert "synchronization completed successfully" in out, out
    on_server = server_cards(b)
    assert len(on_server) == 3 and with_text(on_server, "+33111") and with_text(on_server, "+33222")
    assert len(with_text(phone.cards(), "Bob Server")) == 1 and len(phone.cards()) == 3

    # Again: nothing doubles.
    phone.sync("slow")
    assert len(server_cards(b)) == 3 and len(phone.cards()) == 3

    # Two-way: a change made over CardDAV reaches the device; the device's edit, new card
    # and deletion reach CardDAV.
    card2 = card.replace("FN:Bob Server", "FN:Bob Renamed")
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/bob.vcf", card2, Content_Type="text/vcard")[0] == 204
    [ann] = [n for n, c in phone.cards().items() if "+33111" in c]
    (phone.folder / ann).write_text(phone.cards()[ann].replace("+33111", "+33999"))
    [carl] = [n for n, c in phone.cards().items() if "+33222" in c]
    (phone.folder / carl).unlink()
    phone.add("Dora Device", "+33444")
    phone.sync("two-way")
    assert with_text(phone.cards(), "Bob Renamed") and not with_text(phone.cards(), "FN:Bob Server")
    on_server = server_cards(b)
    assert with_text(on_server, "+33999") and not with_text(on_server, "+33111")
    assert not with_text(on_server, "+33222")
    assert with_text(on_server, "+33444") and len(on_server) == 3

    # Refresh from the device (a real SyncML refresh): the server holds what the device
    # holds, nothing else.
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/extra.vcf",
               card.replace("srv-1", "srv-2").replace("Bob Server", "Extra Server"),
               Content_Type="text/vcard")[0] == 201
    phone.run("--configure", "enableRefreshSync=1", "bureau@client")
    phone.sync("refresh-from-local")
    on_server = server_cards(b)
    assert len(on_server) == 3 and not with_text(on_server, "Extra Server"), on_server.keys()
    assert with_text(on_server, "+33999") and with_text(on_server, "Bob Renamed")

    # Refresh from the server: the device holds what the server holds, nothing else.
    (phone.folder / "stray").write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Stray\r\nN:;Stray;;;\r\nEND:VCARD\r\n")
    phone.sync("refresh-from-remote")
    assert len(phone.cards()) == 3 and not with_text(phone.cards(), "Stray")
    assert len(server_cards(b)) == 3


def test_wrong_credentials_are_refused_and_nothing_is_stored(office, shim, tmp_path):
    b = office
    phone = Device(b, shim, tmp_path / "phone", password="not the password")
    phone.add("Eve Device", "+33555")
    r = phone.sync("slow", check=False)
    assert r.returncode != 0
    assert server_cards(b) == {}
    assert b.proc.poll() is None


def post(b, body, ctype="application/vnd.syncml+xml", path="/syncml"):
    return requests.post(f"https://127.0.0.1:{b.port(443)}{path}", data=body, verify=False,
                         headers={"Content-Type": ctype}, timeout=30)


HEADER = ("<SyncHdr><VerDTD>{v}</VerDTD><VerProto>SyncML/1.2</VerProto><SessionID>1</SessionID>"
          "<MsgID>1</MsgID><Target><LocURI>https://box/syncml</LocURI></Target><Source><LocURI>dev9</LocURI>"
          "</Source>{cred}</SyncHdr>")


def message(body="", v="1.2", cred=""):
    return (f"<SyncML xmlns='SYNCML:SYNCML1.2'>{HEADER.format(v=v, cred=cred)}<SyncBody>{body}<Final/>"
            "</SyncBody></SyncML>").encode()


def basic(user, password):
    import base64
    data = base64.b64encode(f"{user}:{password}".encode()).decode()
    return ("<Cred><Meta><Format xmlns='syncml:metinf'>b64</Format><Type xmlns='syncml:metinf'>"
            f"syncml:auth-basic</Type></Meta><Data>{data}</Data></Cred>")


def test_bad_input_gets_its_status_and_changes_nothing(office):
    b = office
    # Not SyncML, a DTD, a wrong version, an unknown element, an unknown media type: HTTP 4xx.
    assert post(b, b"<SyncML><SyncHdr>").status_code == 400
    dtd = b"<?xml version='1.0'?><!DOCTYPE SyncML [<!ENTITY x 'y'>]><SyncML/>"
    r = post(b, dtd)
    assert r.status_code == 400 and "DOCTYPE" in r.text
    assert post(b, message(v="9.9")).status_code == 400
    assert post(b, message("<Teleport/>")).status_code == 400
    assert post(b, b"\x02\x00\x00\x6a\x00", "application/vnd.syncml+wbxml").status_code == 400
    assert post(b, message(), "text/plain").status_code == 415
    assert requests.get(f"https://127.0.0.1:{b.port(443)}/syncml", verify=False).status_code == 405
    assert post(b, b"<SyncML>" + b" " * (2 << 20)).status_code == 413
    # No credentials: 407 with a challenge; wrong ones: 401. Nothing stored, no session.
    r = post(b, message())
    assert r.status_code == 200 and "<Data>407</Data>" in r.text and "<Chal>" in r.text, r.text
    r = post(b, message(cred=basic("alice", "wrong")))
    assert "<Data>401</Data>" in r.text and "RespURI" not in r.text
    # Signed in: an unknown datastore is a 404 for its Alert; a Map for items of no session
    # is a 404 too.
    alert = ("<Alert><CmdID>1</CmdID><Data>200</Data><Item><Target><LocURI>nowhere</LocURI></Target>"
             "<Source><LocURI>./x</LocURI></Source><Meta><Anchor xmlns='syncml:metinf'><Last>1</Last>"
             "<Next>2</Next></Anchor></Meta></Item></Alert>"
             "<Map><CmdID>2</CmdID><Target><LocURI>contacts</LocURI></Target><Source><LocURI>./c</LocURI>"
             "</Source><MapItem><Target><LocURI>99</LocURI></Target><Source><LocURI>1</LocURI></Source>"
             "</MapItem></Map>")
    r = post(b, message(alert, cred=basic("alice", PW)))
    assert "<Data>212</Data>" in r.text and r.text.count("<Data>404</Data>") == 2, r.text
    assert server_cards(b) == {}
    assert b.proc.poll() is None
