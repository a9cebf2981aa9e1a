"""SyncML with a real client: Debian's SyncEvolution, its file backend standing in for a
phone, against a running Bureau over HTTPS. The data is checked over CardDAV, and the other
way round.

The packaged client crashes on its first HTTP POST (it hands libcurl NULL read and write
callbacks; ../shared/peers/syncml.md): tests/syncml/curl-callbacks.c, built here with gcc and
preloaded, gives libcurl callbacks that call the client's own transport methods. Nothing of
the protocol goes through it."""

import os
import re
import subprocess
import time
import uuid
from collections import Counter
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
    """One SyncEvolution configuration: folders of vCards or iCalendar objects synced with
    Bureau, one per datastore (SyncEvolution's addressbook, calendar and todo)."""

    FORMATS = {"addressbook": "text/vcard", "calendar": "text/calendar", "todo": "text/calendar",
               "memo": "text/plain", "journal": "text/calendar"}

    def __init__(self, b, shim, home, user="alice", password=PW, device="dev1", wbxml=False,
                 sources=("addressbook",), auth="basic"):
        self.b, self.shim, self.home, self.sources = b, shim, home, sources
        self.env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                        XDG_DATA_HOME=str(home / ".local/share"), XDG_CACHE_HOME=str(home / ".cache"))
        self.folders = {}
        for source in sources:
            folder = home / source
            folder.mkdir(parents=True)
            self.folders[source] = folder
            self.run("--configure", "backend=file", f"databaseFormat={self.FORMATS[source]}",
                     f"database=file://{folder}", "@client", source)
        self.folder = self.folders.get("addressbook")
        self.run("--configure", "--keyring=no", "--template", "SyncEvolution",
                 f"syncURL=https://127.0.0.1:{b.port(443)}/syncml", f"username={user}",
                 f"password={password}", f"deviceId={device}", f"enableWBXML={int(wbxml)}",
                 "SSLVerifyServer=0", "SSLVerifyHost=0", f"clientAuthType={auth}",
                 "bureau@client", *sources)
        if "journal" in sources:
            # A source of SyncEvolution's own naming: the server's datastore named for it.
            self.run("--configure", "uri=Journal", "bureau@client", "journal")

    def set_url(self, query=""):
        """The sync URL with a query (`sync=2`, `reset`...), as an administrator gives it."""
        url = f"https://127.0.0.1:{self.b.port(443)}/syncml" + (f"?{query}" if query else "")
        # A slow sync the device did not ask for is what the URL may choose.
        self.run("--configure", f"syncURL={url}", "preventSlowSync=0", "bureau@client")

    def report(self, out, source="addressbook"):
        """The mode SyncEvolution's report gives a source ("two-way", "slow", ...)."""
        m = re.search(rf"\|\s+{source} \|.*\n\|\s+([a-z -]+?), \d+ KB sent", out)
        return m.group(1) if m else out[-2000:]

    def run(self, *args, check=True):
        r = subprocess.run(["syncevolution", "--daemon=no", *args], env=dict(self.env, LD_PRELOAD=str(self.shim)),
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        return r

    def sync(self, mode, check=True):
        return self.run("--sync", mode, "bureau@client", *self.sources, check=check)

    def items(self, source):
        return {p.name: p.read_text() for p in self.folders[source].iterdir()}

    def cards(self):
        return self.items("addressbook")

    def add(self, fn, tel):
        name = uuid.uuid4().hex
        (self.folder / name).write_text(
            f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{fn}\r\nN:{fn.split()[-1]};{fn.split()[0]};;;\r\n"
            f"TEL:{tel}\r\nEND:VCARD\r\n")
        return name


def server_items(b, collection, ext, user="alice"):
    """A collection's objects over DAV: name -> text."""
    status, _, text = dav(b, "PROPFIND", f"{collection}", Depth="1", user=user)
    assert status == 207, text
    names = re.findall(rf"<d:href>{re.escape(collection)}([^<]+\.{ext})</d:href>", text)
    return {n: dav(b, "GET", f"{collection}{n}", user=user)[2] for n in names}


def server_cards(b, user="alice"):
    """The user's contacts over CardDAV: name -> vCard text."""
    return server_items(b, f"/dav/addressbooks/{user}/contacts/", "vcf", user)


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

    # One way from the device: its new card goes up, CardDAV's new one does not come down.
    phone.add("Up Only", "+33555")
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/down.vcf",
               card.replace("srv-1", "srv-3").replace("Bob Server", "Down Only"),
               Content_Type="text/vcard")[0] == 201
    out = phone.sync("one-way-from-local").stdout
    assert "one-way-from-local" in out or "one-way-from-client" in out, out[-2000:]
    assert with_text(server_cards(b), "Up Only") and not with_text(phone.cards(), "Down Only")
    # One way from the server: CardDAV's card comes down, the device's new one stays there.
    phone.add("Kept Local", "+33666")
    phone.sync("one-way-from-remote")
    assert with_text(phone.cards(), "Down Only") and not with_text(server_cards(b), "Kept Local")
    assert len(server_cards(b)) == 5 and len(phone.cards()) == 6


def vevent(uid, summary, start="20270110T090000Z", kind="VEVENT"):
    dates = f"DTSTART:{start}\r\nDTEND:{start[:9]}100000Z\r\n" if kind == "VEVENT" else f"DUE:{start}\r\n"
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:{kind}\r\nUID:{uid}\r\n"
            f"DTSTAMP:20261201T000000Z\r\n{dates}SUMMARY:{summary}\r\nEND:{kind}\r\nEND:VCALENDAR\r\n")


def test_events_and_tasks_both_ways_with_caldav(office, shim, tmp_path):
    b = office
    cal, todo = "/dav/calendars/alice/calendar/", "/dav/calendars/alice/tasks/"
    phone = Device(b, shim, tmp_path / "phone", sources=("calendar", "todo"))
    (phone.folders["calendar"] / "e1").write_text(vevent("dev-ev-1", "Device meeting"))
    (phone.folders["todo"] / "t1").write_text(vevent("dev-task-1", "Device task", kind="VTODO"))
    assert dav(b, "PUT", f"{cal}srv.ics", vevent("srv-ev-1", "Server meeting"),
               Content_Type="text/calendar")[0] == 201
    phone.sync("slow")
    on_server = server_items(b, cal, "ics")
    assert with_text(on_server, "SUMMARY:Device meeting") and len(on_server) == 2
    assert with_text(server_items(b, todo, "ics"), "SUMMARY:Device task")
    events, tasks = phone.items("calendar"), phone.items("todo")
    assert with_text(events, "Server meeting") and len(events) == 2
    assert len(tasks) == 1 and not with_text(tasks, "VEVENT")

    # Two-way: CalDAV's edit reaches the device; the device's new task reaches CalDAV.
    assert dav(b, "PUT", f"{cal}srv.ics", vevent("srv-ev-1", "Server meeting moved", "20270111T090000Z"),
               Content_Type="text/calendar")[0] == 204
    (phone.folders["todo"] / "t2").write_text(vevent("dev-task-2", "Second task", kind="VTODO"))
    phone.sync("two-way")
    assert with_text(phone.items("calendar"), "Server meeting moved")
    assert with_text(server_items(b, todo, "ics"), "SUMMARY:Second task")
    # A task in the events' datastore is refused, and stored nowhere.
    (phone.folders["calendar"] / "bad").write_text(vevent("dev-task-3", "Misfiled", kind="VTODO"))
    phone.sync("two-way", check=False)
    assert not with_text(server_items(b, cal, "ics"), "Misfiled")
    assert not with_text(server_items(b, todo, "ics"), "Misfiled")


def unfolded_lines(text):
    return Counter(re.sub(r"\r?\n[ \t]", "", text).replace("\r", "").splitlines())


CARD = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:kept-1\r\nFN:Ann Smith\r\nN:Smith;Ann;;;\r\n"
        "TEL;TYPE=WORK:111\r\nEMAIL;TYPE=INTERNET,X-CUSTOM:ann@example.org\r\n"
        "KEY;ENCODING=b:AAAA\r\nCLASS:PRIVATE\r\nX-BUREAU-SECRET:keep me\r\nEND:VCARD\r\n")
EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other client//EN\r\nBEGIN:VEVENT\r\n"
         "UID:kept-2\r\nDTSTAMP:20261101T080000Z\r\nDTSTART:20261210T090000Z\r\n"
         "DTEND:20261210T100000Z\r\nSUMMARY:Review\r\nLOCATION:Room 2\r\n"
         "ORGANIZER;CN=Alice:mailto:alice@example.com\r\n"
         "ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION;X-NUM-GUESTS=0:mailto:bob@example.org\r\n"
         "X-MOZ-GENERATION:3\r\nCATEGORIES:Work\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n"
         "DESCRIPTION:r\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_an_edit_on_the_device_keeps_what_it_never_saw(office, shim, tmp_path):
    """The device (SyncEvolution's file backend, its CTCap as it sends it) drops a card's
    UID, KEY and CLASS and a parameter it does not know, an event's X- properties and a
    parameter: after it edits one field, every stored line but that field's (and the
    stamps the device sets) is there as it was."""
    b = office
    book, cal = "/dav/addressbooks/alice/contacts/", "/dav/calendars/alice/calendar/"
    assert dav(b, "PUT", f"{book}ann.vcf", CARD, Content_Type="text/vcard")[0] == 201
    assert dav(b, "PUT", f"{cal}review.ics", EVENT, Content_Type="text/calendar")[0] == 201
    phone = Device(b, shim, tmp_path / "phone", sources=("addressbook", "calendar"))
    phone.sync("slow")
    [(card_name, card)] = phone.items("addressbook").items()
    [(event_name, event)] = phone.items("calendar").items()
    assert "UID:kept-1" not in card and "X-MOZ-GENERATION" not in event, (card, event)
    (phone.folders["addressbook"] / card_name).write_text(card.replace("TEL;TYPE=WORK:111", "TEL;TYPE=WORK:222"))
    (phone.folders["calendar"] / event_name).write_text(event.replace("SUMMARY:Review", "SUMMARY:Review moved"))
    phone.sync("two-way")

    stamps = ("PRODID:", "REV:", "DTSTAMP:", "LAST-MODIFIED:")
    after = unfolded_lines(server_items(b, book, "vcf")["ann.vcf"])
    assert unfolded_lines(CARD) - after == Counter(["TEL;TYPE=WORK:111"]), after
    assert [l for l in after - unfolded_lines(CARD) if not l.startswith(stamps)] == ["TEL;TYPE=WORK:222"]
    after = unfolded_lines(server_items(b, cal, "ics")["review.ics"])
    missing = [l for l in unfolded_lines(EVENT) - after if not l.startswith(stamps)]
    assert missing == ["SUMMARY:Review"], after
    # The device fills an empty description with the title: its own data.
    added = [l for l in after - unfolded_lines(EVENT) if not l.startswith(stamps)]
    assert sorted(added) == ["DESCRIPTION:Review moved", "SUMMARY:Review moved"], after


def test_notes_both_ways_with_caldav(office, shim, tmp_path):
    """Plain-text notes (SyncEvolution's memos) are VJOURNALs in the user's notes: the first
    line the title, the text the description; what CalDAV set that a note cannot show stays."""
    b = office
    notes = "/dav/calendars/alice/notes/"
    journal = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VJOURNAL\r\n"
               "UID:note-1\r\nDTSTAMP:20261201T000000Z\r\nSUMMARY:Door code\r\n"
               "DESCRIPTION:Door code\\n4711\r\nCATEGORIES:Office\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n")
    assert dav(b, "PUT", f"{notes}door.ics", journal, Content_Type="text/calendar")[0] == 201
    phone = Device(b, shim, tmp_path / "phone", sources=("memo",))
    (phone.folders["memo"] / "m1").write_text("Shopping; list\nmilk, eggs\n")
    phone.sync("slow")
    [added] = [t for t in server_items(b, notes, "ics").values() if "Shopping" in t]
    assert "SUMMARY:Shopping\\; list\r\n" in added and "DESCRIPTION:Shopping\\; list\\nmilk\\, eggs\r\n" in added
    [(name, text)] = [(n, t) for n, t in phone.items("memo").items() if "Door" in t]
    assert text.strip() == "Door code\n4711"

    (phone.folders["memo"] / name).write_text("Door code\n0815\n")
    phone.sync("two-way")
    stored = server_items(b, notes, "ics")["door.ics"]
    assert "DESCRIPTION:Door code\\n0815" in stored and "CATEGORIES:Office" in stored and "UID:note-1" in stored
    (phone.folders["memo"] / "m1").unlink()
    phone.sync("two-way")
    assert not with_text(server_items(b, notes, "ics"), "Shopping") and len(server_items(b, notes, "ics")) == 1


def test_journal_entries_both_ways_with_caldav(office, shim, tmp_path):
    """A device's Journal (Outlook's) is the user's "journal" collection, made on first use
    and seen over CalDAV: dated VJOURNALs both ways, kept apart from the notes."""
    b = office
    phone = Device(b, shim, tmp_path / "phone", sources=("journal",))
    (phone.folders["journal"] / "j1").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//phone//EN\r\nBEGIN:VJOURNAL\r\nUID:j-phone\r\n"
        "DTSTAMP:20261201T080000Z\r\nDTSTART;VALUE=DATE:20261201\r\nSUMMARY:Met the plumber\r\n"
        "DESCRIPTION:Boiler fixed\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n")
    phone.sync("slow")
    journal = "/dav/calendars/alice/journal/"
    [stored] = server_items(b, journal, "ics").values()
    assert "SUMMARY:Met the plumber" in stored and "DTSTART;VALUE=DATE:20261201" in stored, stored
    assert not with_text(server_items(b, "/dav/calendars/alice/notes/", "ics"), "plumber")
    entry = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VJOURNAL\r\nUID:j-dav\r\n"
             "DTSTAMP:20261202T000000Z\r\nDTSTART:20261202T090000Z\r\nSUMMARY:Quarterly review\r\n"
             "END:VJOURNAL\r\nEND:VCALENDAR\r\n")
    assert dav(b, "PUT", f"{journal}review.ics", entry, Content_Type="text/calendar")[0] == 201
    phone.sync("two-way")
    assert [t for t in phone.items("journal").values() if "SUMMARY:Quarterly review" in t]
    name = next(n for n, t in phone.items("journal").items() if "plumber" in t)
    (phone.folders["journal"] / name).unlink()
    phone.sync("two-way")
    assert list(server_items(b, journal, "ics")) == ["review.ics"]


def test_the_url_chooses_the_sync_as_icewarps_table_says(office, shim, tmp_path):
    """`sync=N` in the URL the device was given (modes.rs): 2 makes a two-way sync slow;
    5 sends the server's change and takes none of the device's; 7 stores what the device
    sends and sends nothing back; 8 sends the device what it lacks and stores nothing of
    its own; `reset` empties the device, and its next sync fills it again; 3 with anchors
    that do not agree falls back to 7. `%23` separates parameters as `&` does."""
    b = office
    phone = Device(b, shim, tmp_path / "phone")
    phone.add("Ann Smith", "+331")
    phone.sync("slow")
    assert len(server_cards(b)) == 1

    phone.set_url("sync=2")
    assert phone.report(phone.sync("two-way").stdout) == "slow"

    phone.set_url("format=vob%23sync=5")
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/srv1.vcf",
               "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:srv1\r\nFN:Bob Server\r\nN:Server;Bob;;;\r\nEND:VCARD\r\n",
               Content_Type="text/vcard")[0] == 201
    phone.add("Carl Device", "+333")
    out = phone.sync("two-way").stdout
    assert phone.report(out) == "one-way-from-remote", out[-3000:]
    assert with_text(phone.cards(), "Bob Server") and not with_text(server_cards(b), "Carl Device")

    phone.set_url("sync=7")
    phone.add("Dora Device", "+334")
    phone.sync("two-way")
    assert with_text(server_cards(b), "Dora Device") and with_text(server_cards(b), "Carl Device")
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/srv2.vcf",
               "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:srv2\r\nFN:Eve Server\r\nN:Server;Eve;;;\r\nEND:VCARD\r\n",
               Content_Type="text/vcard")[0] == 201
    phone.sync("two-way")
    assert not with_text(phone.cards(), "Eve Server")

    phone.set_url("sync=8")
    phone.add("Fred Device", "+335")
    phone.sync("two-way")
    assert with_text(phone.cards(), "Eve Server") and not with_text(server_cards(b), "Fred Device")
    names = [c.split("FN:")[1].split("\n")[0].strip() for c in phone.cards().values()]
    assert len(names) == len(set(names)), names

    phone.set_url("reset")
    phone.sync("two-way")
    assert phone.cards() == {}
    # The server forgot the device's anchors: with 3, its two-way sync falls back to 7
    # (508), so its new card is stored and nothing is sent back.
    phone.set_url("sync=3")
    phone.add("Gina Device", "+336")
    out = phone.sync("two-way").stdout
    assert phone.report(out) == "slow", out[-3000:]
    assert with_text(server_cards(b), "Gina Device") and len(phone.cards()) == 1
    # Without a URL value, a slow sync fills the device again, nothing doubled.
    phone.set_url()
    phone.sync("slow")
    assert len(phone.cards()) == len(server_cards(b)) == 6


def test_backup_writes_the_devices_items_into_its_home_folder(office, shim, tmp_path):
    """`backup=<prefix>` (IceWarp's): each item the device sends is also a file in the
    user's home folder on the file server, `<prefix>YYYYMMDDNNNN.<ext>` counting the day's
    files; `backup` alone has no prefix (here after a `#`, as Funambol's clients write
    it, which reaches the server as `%23`); without it, nothing is written."""
    import datetime
    b = office
    home = b.data / "shares" / "homes" / "alice"
    phone = Device(b, shim, tmp_path / "phone")
    phone.set_url("backup=phone-")
    phone.add("Ann Backup", "+33 1 11")
    phone.add("Ben Backup", "+33 1 22")
    phone.sync("slow")
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    files = sorted(p.name for p in home.iterdir())
    assert files == [f"phone-{day}0001.vcf", f"phone-{day}0002.vcf"], files
    texts = sorted((home / f).read_text() for f in files)
    assert "FN:Ann Backup" in texts[0] and "FN:Ben Backup" in texts[1], texts
    assert oct((home / files[0]).stat().st_mode & 0o777) == "0o660"

    phone.set_url("sync=1%23backup")
    name = next(n for n, t in phone.cards().items() if "Ann" in t)
    (phone.folder / name).write_text(phone.cards()[name].replace("+33 1 11", "+33 1 99"))
    phone.sync("two-way")
    assert (home / f"{day}0001.vcf").read_text().count("+33 1 99") == 1
    phone.set_url("")
    phone.add("Cid Nobackup", "+33 1 33")
    phone.sync("two-way")
    assert len(list(home.iterdir())) == 3


def test_a_device_that_speaks_vcard_21_gets_and_sends_it(office, shim, tmp_path):
    """SyncEvolution made to sync in vCard 2.1 only (syncFormat=text/x-vcard,
    forceSyncFormat=1), as older phones do: its cards, with accents and a note on two lines
    (quoted-printable on the wire), are kept as vCard 3.0; CardDAV's cards reach it as 2.1."""
    b = office
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/srv.vcf",
               "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:srv-21\r\nFN:Hélène Serveur\r\nN:Serveur;Hélène;;;\r\n"
               "TEL;TYPE=WORK,VOICE:+33 1 11\r\nNOTE:line one\\nline two\\, still\r\nEND:VCARD\r\n",
               Content_Type="text/vcard")[0] == 201
    phone = Device(b, shim, tmp_path / "old")
    phone.run("--configure", "syncFormat=text/x-vcard", "forceSyncFormat=1", "loglevel=4",
              "bureau@client", "addressbook")
    (phone.folder / "own").write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë Dupré\r\nN:Dupré;Zoë;;;\r\n"
                                      "NOTE:first\\nsecond\r\nEND:VCARD\r\n")
    phone.sync("slow")
    # On the wire, both ways: 2.1.
    logs = list(phone.home.glob(".cache/syncevolution/*/syncevolution-log_*.xml"))
    sent = "".join(p.read_text(errors="replace") for p in logs if "outgoing" in p.name)
    got = "".join(p.read_text(errors="replace") for p in logs if "incoming" in p.name)
    assert "VERSION:2.1" in sent and "QUOTED-PRINTABLE" in sent, sent[-3000:]
    assert "VERSION:2.1" in got and "text/x-vcard" in got and "Serveur" in got, got[-3000:]
    # Kept as 3.0, in UTF-8, the note's line break escaped.
    [own] = with_text(server_cards(b), "Dupré")
    assert "VERSION:3.0" in own and "FN:Zoë Dupré" in own and "NOTE:first\\nsecond" in own, own
    assert "QUOTED-PRINTABLE" not in own
    # The device has CardDAV's card whole.
    [srv] = with_text(phone.cards(), "Serveur")
    assert "Hélène" in srv and "line one\\nline two\\, still" in srv and "+33 1 11" in srv, srv


ZONED = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//other//EN\r\nBEGIN:VEVENT\r\nUID:zoned-1\r\n"
         "DTSTAMP:20261201T000000Z\r\nDTSTART;TZID=Europe/Paris:20270104T090000\r\n"
         "DTEND;TZID=Europe/Paris:20270104T100000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\n"
         "SUMMARY:Weekly review\r\nCONFERENCE;VALUE=URI:https://meet.example.org/r\r\n"
         "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.org\r\nBEGIN:VALARM\r\n"
         "ACTION:DISPLAY\r\nDESCRIPTION:Review\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\n"
         "END:VCALENDAR\r\n")


def test_a_device_that_speaks_vcalendar_10_gets_and_sends_it(office, shim, tmp_path):
    """SyncEvolution made to sync events and tasks in vCalendar 1.0 only, as most phones
    do: CalDAV's zoned weekly meeting reaches it in UTC with its rule and alarm; its own
    event with accents, its all-day day off and its task due on a day are kept as
    iCalendar; its edit of the meeting keeps the zone, the attendee's name and what it
    never saw; a second slow sync doubles nothing."""
    b = office
    cal, todo = "/dav/calendars/alice/calendar/", "/dav/calendars/alice/tasks/"
    assert dav(b, "PUT", f"{cal}zoned.ics", ZONED, Content_Type="text/calendar")[0] == 201
    phone = Device(b, shim, tmp_path / "old", sources=("calendar", "todo"))
    phone.run("--configure", "syncFormat=text/x-vcalendar", "forceSyncFormat=1", "loglevel=4",
              "bureau@client", "calendar", "todo")
    (phone.folders["calendar"] / "own").write_text(vevent("dev-10", "Réunion été", "20270112T140000Z"))
    (phone.folders["calendar"] / "off").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:dev-off\r\nDTSTAMP:20261201T000000Z\r\n"
        "DTSTART;VALUE=DATE:20270115\r\nDTEND;VALUE=DATE:20270116\r\nSUMMARY:Day off\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n")
    (phone.folders["todo"] / "t").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nUID:dev-t\r\nDTSTAMP:20261201T000000Z\r\n"
        "DUE;VALUE=DATE:20270120\r\nSUMMARY:File taxes\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
    out = phone.sync("slow").stdout
    assert "synchronization completed successfully" in out, out[-3000:]
    logs = list(phone.home.glob(".cache/syncevolution/*/syncevolution-log_*.xml"))
    sent = "".join(p.read_text(errors="replace") for p in logs if "outgoing" in p.name)
    got = "".join(p.read_text(errors="replace") for p in logs if "incoming" in p.name)
    assert "VERSION:1.0" in sent and "VERSION:1.0" in got and "text/x-vcalendar" in got, got[-3000:]
    assert "TZID" not in got and "DTSTART:20270104T080000Z" in got, got[-3000:]

    # The device has the meeting at its hour, weekly, with its alarm.
    [meeting] = with_text(phone.items("calendar"), "Weekly review")
    assert "20270104T080000Z" in meeting and "FREQ=WEEKLY" in meeting and "BEGIN:VALARM" in meeting, meeting
    # CalDAV has the device's items as iCalendar.
    on_server = server_items(b, cal, "ics")
    [own] = with_text(on_server, "Réunion été")
    assert "VERSION:2.0" in own and "DTSTART:20270112T140000Z" in own, own
    [off] = with_text(on_server, "Day off")
    assert "DTSTART;VALUE=DATE:20270115" in off and "DTEND;VALUE=DATE:20270116" in off, off
    [task] = with_text(server_items(b, todo, "ics"), "File taxes")
    assert "DUE;VALUE=DATE:20270120" in task, task

    # The device renames the meeting: the zone, the rule, the attendee's name, the
    # conference link and the alarm stay as they were.
    [name] = [n for n, c in phone.items("calendar").items() if "Weekly review" in c]
    path = phone.folders["calendar"] / name
    path.write_text(path.read_text().replace("SUMMARY:Weekly review", "SUMMARY:Weekly review (room 4)"))
    phone.sync("two-way")
    after = unfolded_lines(server_items(b, cal, "ics")["zoned.ics"])
    for line in ["DTSTART;TZID=Europe/Paris:20270104T090000", "DTEND;TZID=Europe/Paris:20270104T100000",
                 "RRULE:FREQ=WEEKLY;BYDAY=MO", "CONFERENCE;VALUE=URI:https://meet.example.org/r",
                 "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.org", "TRIGGER:-PT15M",
                 "SUMMARY:Weekly review (room 4)"]:
        assert after[line] == 1, (line, after)
    assert after["BEGIN:VALARM"] == 1, after

    # Slow again: nothing doubles.
    phone.sync("slow")
    assert len(server_items(b, cal, "ics")) == 3 and len(phone.items("calendar")) == 3
    assert len(server_items(b, todo, "ics")) == 1 and len(phone.items("todo")) == 1


def test_three_devices_of_one_user_converge(office, shim, tmp_path):
    b = office
    phones = [Device(b, shim, tmp_path / f"p{i}", device=f"dev{i}") for i in range(3)]
    for i, p in enumerate(phones):
        p.add(f"Person{i} Device{i}", f"+3310{i}")
    for p in phones:
        p.sync("slow")
    for p in phones:
        p.sync("two-way")
    on_server = server_cards(b)
    assert len(on_server) == 3
    for p in phones:
        assert sorted(c.count("FN:") for c in p.cards().values()) == [1, 1, 1], p.cards()
        assert all(with_text(p.cards(), f"+3310{i}") for i in range(3))
    # Each edits or deletes one, then two rounds: all four agree.
    [mine] = [n for n, c in phones[0].cards().items() if "+33100" in c]
    (phones[0].folder / mine).write_text(phones[0].cards()[mine].replace("+33100", "+33199"))
    [gone] = [n for n, c in phones[1].cards().items() if "+33102" in c]
    (phones[1].folder / gone).unlink()
    phones[2].add("Late Added", "+33177")
    for _ in range(2):
        for p in phones:
            p.sync("two-way")
    want = {"+33199", "+33101", "+33177"}
    assert {t for t in want if with_text(server_cards(b), t)} == want and len(server_cards(b)) == 3
    for p in phones:
        assert {t for t in want if with_text(p.cards(), t)} == want and len(p.cards()) == 3, p.cards()
        assert not with_text(p.cards(), "+33100") and not with_text(p.cards(), "+33102")


def test_a_conflict_is_won_by_the_server_and_an_edit_outlives_a_delete(office, shim, tmp_path):
    """Both sides changed one card since the last sync: the server's version stands on both
    (status 419, conflict resolved with server data). A card the device
    deleted but the server edited comes back to the device; a card the server deleted but
    the device edited comes back to the server, with the edit."""
    b = office
    book = "/dav/addressbooks/alice/contacts/"
    phone = Device(b, shim, tmp_path / "phone")
    for n in ("both", "devdel", "srvdel"):
        card = f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{n}\r\nFN:{n} Card\r\nN:Card;{n};;;\r\nTEL:111\r\nEND:VCARD\r\n"
        assert dav(b, "PUT", f"{book}{n}.vcf", card, Content_Type="text/vcard")[0] == 201
    phone.sync("slow")
    names = {n: name for name, c in phone.cards().items() for n in ("both", "devdel", "srvdel") if f"FN:{n} " in c}
    assert len(names) == 3, phone.cards()

    def edit_device(n, tel):
        path = phone.folder / names[n]
        path.write_text(path.read_text().replace("TEL:111", f"TEL:{tel}"))

    def edit_server(n, tel):
        _, headers, text = dav(b, "GET", f"{book}{n}.vcf")
        assert dav(b, "PUT", f"{book}{n}.vcf", text.replace("TEL:111", f"TEL:{tel}"),
                   Content_Type="text/vcard")[0] == 204

    edit_device("both", "222")
    edit_server("both", "333")
    (phone.folder / names["devdel"]).unlink()
    edit_server("devdel", "444")
    edit_device("srvdel", "555")
    assert dav(b, "DELETE", f"{book}srvdel.vcf")[0] == 204
    out = phone.sync("two-way").stdout
    # The device takes one item back (devdel) and one change (both's server version).
    assert re.search(r"\|\s+addressbook \|\s+1\s+\|\s+1\s+\|\s+0\s+\|\s+0\s+\|", out), out[-3000:]

    on_server = server_cards(b)
    assert "TEL:333" in on_server["both.vcf"] and not with_text(on_server, "TEL:222"), on_server
    assert "TEL:444" in on_server["devdel.vcf"], on_server
    assert with_text(on_server, "FN:srvdel Card") and with_text(on_server, "TEL:555"), on_server
    cards = phone.cards()
    assert with_text(cards, "TEL:333") and not with_text(cards, "TEL:222"), cards
    assert with_text(cards, "TEL:444") and with_text(cards, "TEL:555") and len(cards) == 3, cards
    # And they stay agreed.
    phone.sync("two-way")
    assert len(server_cards(b)) == 3 and len(phone.cards()) == 3


def test_an_administrator_records_a_devices_sessions(office, shim, tmp_path):
    """The console's session log of a SyncML device: off until switched on; then each
    message with its time, the box's time to answer, the sizes and what each side said,
    but no item data and no password; off again records nothing; emptied on request. Only
    a SyncML device has one."""
    import json
    from test_foundation import _https, login

    b = office
    b.cli("user", "add", "boss@example.com", "--admin", "--password-stdin", input=PW + "\n")
    _, body, _, cookie = login(b, "boss@example.com", PW)
    csrf = json.loads(body)["csrf"]

    def api(method, path, data=None):
        return _https(b, method, f"/api/v1/users/alice/devices/{path}", data, cookie=cookie, csrf=csrf)

    phone = Device(b, shim, tmp_path / "phone", device="logged-phone")
    phone.add("Ann Secretname", "+33123")
    phone.sync("slow")
    status, log, _ = api("GET", "syncml:logged-phone/log")
    assert status == 200 and log == {"on": False, "entries": []}, log

    assert api("PUT", "syncml:logged-phone/log", {"on": True})[1]["on"] is True
    phone.add("Bob Othername", "+33456")
    phone.sync("two-way")
    status, log, _ = api("GET", "syncml:logged-phone/log")
    entries = log["entries"]
    assert status == 200 and len(entries) >= 2, log
    said = " | ".join(e["received"] + " => " + e["sent"] for e in entries)
    assert "Alert 200" in said and "(1 Add)" in said and " 201×1" in said and "Final" in said, said
    for e in entries:
        assert e["took_ms"] >= 0 and e["bytes_in"] > 0 and e["bytes_out"] > 0 and e["encoding"] == "xml", e
        assert abs(e["at_ms"] / 1000 - time.time()) < 300, e
    assert "Othername" not in json.dumps(log) and PW not in json.dumps(log)

    # Off: the next sync adds nothing; emptied: nothing left.
    api("PUT", "syncml:logged-phone/log", {"on": False})
    phone.sync("two-way")
    assert len(api("GET", "syncml:logged-phone/log")[1]["entries"]) == len(entries)
    assert api("DELETE", "syncml:logged-phone/log")[1] == {"on": False, "entries": []}
    assert api("PUT", "syncml:logged-phone/log", {"on": "yes"})[0] == 400
    assert api("GET", "syncml:no-such-phone/log")[0] == 404
    # As the console writes the id, percent-encoded: the same device, and its Reset works.
    assert api("GET", "syncml%3Alogged-phone/log")[0] == 200
    assert api("DELETE", "syncml%3Alogged-phone")[0] == 204
    assert api("GET", "syncml%3Alogged-phone/log")[0] == 404


def test_the_servers_changes_span_as_many_messages_as_the_device_needs(office, shim, tmp_path):
    """A device that takes small messages (maxMsgSize 20,000 bytes) gets 150 cards over
    several, each after its Alert 222, the last one Final; in WBXML too."""
    b = office
    for i in range(150):
        card = (f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:many-{i}\r\nFN:Many {i}\r\nN:{i};Many;;;\r\n"
                f"NOTE:{'x' * 200}\r\nEND:VCARD\r\n")
        assert dav(b, "PUT", f"/dav/addressbooks/alice/contacts/many-{i}.vcf", card,
                   Content_Type="text/vcard")[0] == 201
    for wbxml in (False, True):
        phone = Device(b, shim, tmp_path / f"small{int(wbxml)}", device=f"small{int(wbxml)}", wbxml=wbxml)
        phone.run("--configure", "maxMsgSize=20000", "bureau@client")
        phone.sync("slow")
        assert len(phone.cards()) == 150
        phone.sync("two-way")
        assert len(phone.cards()) == 150 and len(server_cards(b)) == 150


def test_objects_larger_than_a_message_go_in_parts_both_ways(office, shim, tmp_path):
    """A device that takes 20,000-byte messages: a card with a 60 kB photo from CardDAV
    reaches it in parts, and its own card with one reaches CardDAV whole, in XML and WBXML."""
    b = office
    photo = "A" * 60_000
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:big-1\r\nFN:Big Photo\r\nN:Photo;Big;;;\r\n"
            f"PHOTO;ENCODING=b;TYPE=JPEG:{photo}\r\nEND:VCARD\r\n")
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/big.vcf", card,
               Content_Type="text/vcard")[0] == 201
    for wbxml in (False, True):
        phone = Device(b, shim, tmp_path / f"p{int(wbxml)}", device=f"big{int(wbxml)}", wbxml=wbxml)
        phone.run("--configure", "maxMsgSize=20000", "bureau@client")
        # Valid base64 (the device decodes and encodes it again), one end per encoding.
        own = "B" * 50_000 + ("QUJD", "REVG")[wbxml]
        (phone.folder / uuid.uuid4().hex).write_text(
            f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Own Photo {int(wbxml)}\r\nN:Photo;Own;;;\r\n"
            f"PHOTO;ENCODING=b;TYPE=JPEG:{own}\r\nEND:VCARD\r\n")
        out = phone.sync("slow").stdout
        [got] = with_text(phone.cards(), "Big Photo")
        assert photo in re.sub(r"\r?\n[ \t]", "", got), out[-3000:]
        [stored] = with_text(server_cards(b), f"Own Photo {int(wbxml)}")
        assert own in re.sub(r"\r?\n[ \t]", "", stored)


def test_a_session_goes_on_at_its_respuri_after_the_daemon_is_killed(office):
    """The session is kept in the store after each message: killed (SIGKILL) mid-session and
    started again, the daemon answers the device's next message at the RespURI without a
    new sign-in; the message whose answer was lost, sent again, gets the same answer and
    stores nothing twice; the session then ends whole and the next sync is two-way."""
    b = office
    alert = ("<Alert><CmdID>1</CmdID><Data>201</Data><Item><Target><LocURI>contacts</LocURI></Target>"
             "<Source><LocURI>./c</LocURI></Source><Meta><Anchor xmlns='syncml:metinf'><Last>1</Last>"
             "<Next>2</Next></Anchor></Meta></Item></Alert>")
    first = post(b, message(alert, cred=basic("alice", PW)))
    path = "/syncml?" + re.search(r"<RespURI>([^<]+)</RespURI>", first.text).group(1).split("?", 1)[1]

    def sync(msg_id, luid, name, final):
        body = ("<Sync><CmdID>1</CmdID><Target><LocURI>contacts</LocURI></Target><Source><LocURI>./c</LocURI>"
                "</Source><Add><CmdID>2</CmdID><Meta><Type xmlns='syncml:metinf'>text/vcard</Type></Meta><Item>"
                f"<Source><LocURI>{luid}</LocURI></Source><Data>BEGIN:VCARD\nVERSION:3.0\nFN:{name}\n"
                f"N:{name};;;;\nEND:VCARD</Data></Item></Add></Sync>")
        return message(body, final=final).replace(b"<MsgID>1</MsgID>", f"<MsgID>{msg_id}</MsgID>".encode())

    second = post(b, sync(2, "l1", "Before Kill", False), path=path)
    assert "<Data>201</Data>" in second.text, second.text
    b.kill()
    b.restart()
    again = post(b, sync(2, "l1", "Before Kill", False), path=path)
    assert again.content == second.content
    third = post(b, sync(3, "l2", "After Kill", True), path=path)
    assert "<Data>201</Data>" in third.text and "<Data>407</Data>" not in third.text, third.text
    assert "<Final" in third.text
    # Package 5: the device's statuses for the server's (empty) Sync, Final: the session ends.
    done = ("<Status><CmdID>1</CmdID><MsgRef>3</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>"
            "<Data>200</Data></Status>")
    post(b, message(done).replace(b"<MsgID>1</MsgID>", b"<MsgID>4</MsgID>"), path=path)
    cards = server_cards(b)
    assert len(with_text(cards, "Before Kill")) == 1 and len(with_text(cards, "After Kill")) == 1
    # The console lists the device (it sent no DevInf) with the time of that sync.
    from test_foundation import _https, login
    b.cli("user", "add", "boss@example.com", "--admin", "--password-stdin", input=PW + "\n")
    cookie = login(b, "boss", PW)[3]
    [d] = _https(b, "GET", "/api/v1/users/alice/devices", cookie=cookie)[1]
    assert (d["id"], d["protocol"]) == ("syncml:dev9", "syncml") and d["last_seen"] > 0, d
    # The anchors were saved: a two-way sync with them is taken as two-way (200, not 508).
    two_way = alert.replace("<Data>201</Data>", "<Data>200</Data>").replace(
        "<Last>1</Last><Next>2</Next>", "<Last>2</Last><Next>3</Next>")
    r = post(b, message(two_way, cred=basic("alice", PW)).replace(b"<SessionID>1<", b"<SessionID>2<"))
    assert "<Data>508</Data>" not in r.text and "<Data>200</Data>" in r.text, r.text


SIF_CONTACT = ("<?xml version='1.0' encoding='UTF-8'?><contact><SIFVersion>1.1</SIFVersion>"
               "<FirstName>Zoë</FirstName><LastName>Outlook</LastName><Email1Address>zoe@example.org</Email1Address>"
               "<BusinessTelephoneNumber>+33 1 23</BusinessTelephoneNumber><Body>two\nlines</Body>"
               "<Spouse>Max</Spouse></contact>")


def des_b64(data, password, decrypt=False):
    """Funambol's des;b64 with OpenSSL: DES-ECB, PKCS#5 padding, the key the first 8 bytes
    of the MD5 of the password; then base64 (or, to decrypt, base64 first)."""
    import base64
    import hashlib
    key = hashlib.md5(password.encode()).hexdigest()[:16]
    args = ["openssl", "enc", "-des-ecb", "-K", key, "-provider", "legacy", "-provider", "default"]
    if decrypt:
        return subprocess.run([*args, "-d"], input=base64.b64decode(data), capture_output=True, check=True).stdout
    return base64.b64encode(subprocess.run(args, input=data, capture_output=True, check=True).stdout).decode()


def test_a_funambol_client_syncs_in_sif(office):
    """As the Funambol Outlook plug-in syncs (no Funambol client runs here; its messages are
    made by hand from Funambol's SIF 1.1 and OMA DS): the URL says `format=sif`, the client
    sends a SIF-C contact base64-encoded, and gets CardDAV's card as SIF-C, base64-encoded;
    its contact is a vCard over CardDAV, its own fields kept. An item in Funambol's
    `des;b64` (DES-ECB under the first 8 bytes of the password's MD5, made here with
    OpenSSL) is stored, and the server's items then go in `des;b64` too; one that does not
    decrypt, and bad base64, are 400, and neither is stored."""
    import base64
    b = office
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:srv-sif\r\nFN:Bob Server\r\nN:Server;Bob;;;\r\nTEL;TYPE=CELL:+33 6 00\r\nEND:VCARD\r\n"
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/bob.vcf", card, Content_Type="text/vcard")[0] == 201
    alert = ("<Alert><CmdID>1</CmdID><Data>201</Data><Item><Target><LocURI>card</LocURI></Target>"
             "<Source><LocURI>scard</LocURI></Source><Meta><Anchor xmlns='syncml:metinf'><Last>0</Last>"
             "<Next>1</Next></Anchor></Meta></Item></Alert>")
    first = post(b, message(alert, cred=basic("alice", PW)), path="/syncml?format=sif")
    assert "<Data>212</Data>" in first.text, first.text
    path = "/syncml?" + re.search(r"<RespURI>([^<]+)</RespURI>", first.text).group(1).split("?", 1)[1]

    def add(luid, data, fmt="b64"):
        return (f"<Add><CmdID>{luid}</CmdID><Meta><Type xmlns='syncml:metinf'>text/x-s4j-sifc</Type>"
                f"<Format xmlns='syncml:metinf'>{fmt}</Format></Meta><Item><Source><LocURI>{luid}</LocURI></Source>"
                f"<Data>{data}</Data></Item></Add>")

    sif = base64.b64encode(SIF_CONTACT.encode()).decode()
    des = des_b64(SIF_CONTACT.replace("Zoë", "Desirée").replace("zoe@", "desiree@").encode(), PW)
    body = ("<Sync><CmdID>2</CmdID><Target><LocURI>card</LocURI></Target><Source><LocURI>scard</LocURI></Source>"
            + add("1", sif) + add("4", des, "des;b64") + add("2", "c2VjcmV0", "des;b64") + add("3", "not base64!")
            + "</Sync>")
    second = post(b, message(body).replace(b"<MsgID>1</MsgID>", b"<MsgID>2</MsgID>"), path=path)
    statuses = dict(re.findall(r"<Status>.*?<SourceRef>(\d)</SourceRef>.*?<Data>(\d+)</Data>", second.text))
    assert statuses == {"1": "201", "4": "201", "2": "400", "3": "400"}, second.text
    # The server's card, in SIF, in des;b64 as the device sent.
    m = re.search(r"<Add>.*?<Type[^>]*>text/x-s4j-sifc</Type><Format[^>]*>des;b64</Format>.*?<Data>([^<]+)</Data>",
                  second.text, re.S)
    assert m, second.text
    got = des_b64(m.group(1).encode(), PW, decrypt=True).decode()
    assert "<FirstName>Bob</FirstName>" in got and "<MobileTelephoneNumber>+33 6 00</MobileTelephoneNumber>" in got, got
    done = ("<Map><CmdID>3</CmdID><Target><LocURI>scard</LocURI></Target><Source><LocURI>card</LocURI></Source>"
            "</Map>")
    post(b, message(done).replace(b"<MsgID>1</MsgID>", b"<MsgID>3</MsgID>"), path=path)

    cards = server_cards(b)
    assert with_text(cards, "FN:Desirée Outlook") and with_text(cards, "desiree@example.org")
    [zoe] = with_text(cards, "Zoë")
    for line in ["FN:Zoë Outlook", "EMAIL;TYPE=internet:zoe@example.org", "TEL;TYPE=work,voice:+33 1 23",
                 "NOTE:two\\nlines", "X-SIF-SPOUSE:Max"]:
        assert line in zoe, (line, zoe)
    assert len(cards) == 3 and not with_text(cards, "secret")


def test_a_soft_delete_keeps_the_item_and_an_archive_is_said_to_be_impossible(office):
    """OMA DS 1.2 Delete with SftDel (the device let go of its copy, for room): the item
    stays on the server (200); with Archive: deleted, answered 210 (Bureau keeps no
    archive)."""
    b = office

    def session(sid, code, last, nxt, body):
        alert = (f"<Alert><CmdID>1</CmdID><Data>{code}</Data><Item><Target><LocURI>contacts</LocURI></Target>"
                 f"<Source><LocURI>./c</LocURI></Source><Meta><Anchor xmlns='syncml:metinf'><Last>{last}</Last>"
                 f"<Next>{nxt}</Next></Anchor></Meta></Item></Alert>")
        first = post(b, message(alert, cred=basic("alice", PW)).replace(b"<SessionID>1<", f"<SessionID>{sid}<".encode()))
        assert f"<Data>{code}</Data>" in first.text, first.text
        path = "/syncml?" + re.search(r"<RespURI>([^<]+)</RespURI>", first.text).group(1).split("?", 1)[1]
        sync = ("<Sync><CmdID>2</CmdID><Target><LocURI>contacts</LocURI></Target><Source><LocURI>./c</LocURI>"
                f"</Source>{body}</Sync>")
        reply = post(b, message(sync).replace(b"<MsgID>1</MsgID>", b"<MsgID>2</MsgID>")
                     .replace(b"<SessionID>1<", f"<SessionID>{sid}<".encode()), path=path)
        post(b, message("").replace(b"<MsgID>1</MsgID>", b"<MsgID>3</MsgID>")
             .replace(b"<SessionID>1<", f"<SessionID>{sid}<".encode()), path=path)
        return reply.text

    def add(luid, name):
        return (f"<Add><CmdID>{luid}</CmdID><Meta><Type xmlns='syncml:metinf'>text/vcard</Type></Meta><Item>"
                f"<Source><LocURI>{luid}</LocURI></Source><Data>BEGIN:VCARD\nVERSION:3.0\nFN:{name}\n"
                f"N:{name};;;;\nEND:VCARD</Data></Item></Add>")

    session(1, 201, 0, 1, add("l1", "Soft Gone") + add("l2", "Archived"))
    assert len(server_cards(b)) == 2
    text = session(2, 200, 1, 2, "<Delete><CmdID>5</CmdID><SftDel/><Item><Source><LocURI>l1</LocURI></Source></Item>"
                   "</Delete><Delete><CmdID>6</CmdID><Archive/><Item><Source><LocURI>l2</LocURI></Source></Item></Delete>")
    statuses = dict(re.findall(r"<CmdRef>(\d)</CmdRef><Cmd>Delete</Cmd>.*?<Data>(\d+)</Data>", text))
    assert statuses == {"5": "200", "6": "210"}, text
    cards = server_cards(b)
    assert with_text(cards, "Soft Gone") and not with_text(cards, "Archived"), cards


def test_an_item_in_parts_is_joined_or_refused(office):
    """Hand-made parts (OMA DS 1.2 large objects): a part with MoreData is answered 213 and
    kept; the last joins it; parts that do not add up to the announced Size are 424 and
    store nothing; an object over the server's MaxObjSize is 413."""
    b = office
    alert = ("<Alert><CmdID>1</CmdID><Data>201</Data><Item><Target><LocURI>contacts</LocURI></Target>"
             "<Source><LocURI>./c</LocURI></Source><Meta><Anchor xmlns='syncml:metinf'><Last>1</Last>"
             "<Next>2</Next></Anchor></Meta></Item></Alert>")
    first = post(b, message(alert, cred=basic("alice", PW)))
    assert "MaxObjSize" in first.text and "<Data>212</Data>" in first.text, first.text
    path = "/syncml?" + re.search(r"<RespURI>([^<]+)</RespURI>", first.text).group(1).split("?", 1)[1]
    whole = "BEGIN:VCARD\nVERSION:3.0\nFN:In Parts\nN:Parts;In;;;\nNOTE:" + "n" * 300 + "\nEND:VCARD\n"

    def part(msg_id, luid, data, more, size=None):
        meta = f"<Meta><Size xmlns='syncml:metinf'>{size}</Size></Meta>" if size else ""
        sync = ("<Sync><CmdID>1</CmdID><Target><LocURI>contacts</LocURI></Target><Source><LocURI>./c</LocURI>"
                "</Source><Add><CmdID>2</CmdID><Meta><Type xmlns='syncml:metinf'>text/vcard</Type></Meta><Item>"
                f"<Source><LocURI>{luid}</LocURI></Source>{meta}<Data>{data}</Data>{'<MoreData/>' if more else ''}"
                "</Item></Add></Sync>")
        m = message(sync, final=False).replace(b"<MsgID>1</MsgID>", f"<MsgID>{msg_id}</MsgID>".encode())
        return post(b, m, path=path).text

    r = part(2, "luid-1", whole[:100], True, len(whole))
    assert "<Data>213</Data>" in r, r
    r = part(3, "luid-1", whole[100:200], True)
    assert "<Data>213</Data>" in r and not with_text(server_cards(b), "In Parts")
    r = part(4, "luid-1", whole[200:], False)
    assert "<Data>201</Data>" in r, r
    assert len(with_text(server_cards(b), "nnnnnnnnnn")) == 1
    # Parts that do not add up.
    part(5, "luid-2", whole[:100].replace("In Parts", "Short One"), True, len(whole) + 5)
    r = part(6, "luid-2", whole[100:], False)
    assert "<Data>424</Data>" in r and not with_text(server_cards(b), "Short One"), r
    # Announced over the server's MaxObjSize.
    r = part(7, "luid-3", whole[:100], True, 3 << 20)
    assert "<Data>413</Data>" in r, r
    assert len(server_cards(b)) == 1 and b.proc.poll() is None


@pytest.mark.parametrize("auth", ["basic", "md5"])
def test_wrong_credentials_are_refused_and_nothing_is_stored(office, shim, tmp_path, auth):
    b = office
    phone = Device(b, shim, tmp_path / "phone", password="not the password", auth=auth)
    phone.add("Eve Device", "+33555")
    r = phone.sync("slow", check=False)
    assert r.returncode != 0
    assert server_cards(b) == {}
    assert b.proc.poll() is None


def test_md5_sign_in_by_uid_and_by_address(office, shim, tmp_path):
    """syncml:auth-md5 (the client's default): the server's nonce, then the device's digest
    of its credential and that nonce; by the user's name or address."""
    b = office
    for i, user in enumerate(["alice", "alice@example.com"]):
        phone = Device(b, shim, tmp_path / f"phone{i}", user=user, device=f"md5-{i}", auth="md5")
        phone.add(f"Md5 Person{i}", f"+3366{i}")
        phone.sync("slow")
        phone.sync("two-way")
        assert with_text(server_cards(b), f"+3366{i}")


def test_the_domain_chooses_the_sign_in_and_syncml_can_be_turned_off(office, shim, tmp_path):
    """IceWarp's rules, set with the CLI: a domain that takes MD5 only asks a device that
    offers basic credentials once for MD5 (407 with an MD5 Chal), then refuses it (401);
    SyncEvolution, set up for basic, answers the Chal and syncs. SyncML off for the domain,
    or for the user, is a 403 after a good sign-in, and nothing is stored."""
    b = office
    out = b.cli("domain", "syncml", "example.com", "--auth", "md5").stdout
    assert "MD5 sign-in only" in out, out
    r = post(b, message(cred=basic("alice", PW)))
    assert "<Data>407</Data>" in r.text and "syncml:auth-md5" in r.text and "NextNonce" in r.text, r.text
    r = post(b, message(cred=basic("alice", PW)))
    assert "<Data>401</Data>" in r.text and "RespURI" not in r.text, r.text
    phone = Device(b, shim, tmp_path / "basic", device="asked-md5", auth="basic")
    phone.add("Asked Twice", "+3371")
    phone.sync("slow")
    assert with_text(server_cards(b), "Asked Twice")
    # Basic only: the device set up for MD5 is asked for basic, and syncs.
    b.cli("domain", "syncml", "example.com", "--auth", "basic")
    phone = Device(b, shim, tmp_path / "md5", device="asked-basic", auth="md5")
    phone.add("Asked Basic", "+3372")
    phone.sync("slow")
    assert with_text(server_cards(b), "Asked Basic")
    assert b.cli("domain", "syncml", "example.com", "--auth", "sometimes", check=False).returncode != 0

    # Off for the domain, then for the user: refused after the sign-in, nothing stored.
    b.cli("domain", "syncml", "example.com", "--service", "off", "--auth", "any")
    r = post(b, message(cred=basic("alice", PW)))
    assert "<Data>403</Data>" in r.text and "RespURI" not in r.text, r.text
    phone.add("Not Now", "+3373")
    assert phone.sync("two-way", check=False).returncode != 0
    b.cli("domain", "syncml", "example.com", "--service", "on")
    b.cli("user", "set", "alice", "--syncml", "off")
    assert "<Data>403</Data>" in post(b, message(cred=basic("alice", PW))).text
    assert not with_text(server_cards(b), "Not Now")
    b.cli("user", "set", "alice", "--syncml", "on")
    phone.sync("two-way")
    assert with_text(server_cards(b), "Not Now")


def post(b, body, ctype="application/vnd.syncml+xml", path="/syncml"):
    return requests.post(f"https://127.0.0.1:{b.port(443)}{path}", data=body, verify=False,
                         headers={"Content-Type": ctype}, timeout=30)


HEADER = ("<SyncHdr><VerDTD>{v}</VerDTD><VerProto>SyncML/1.2</VerProto><SessionID>1</SessionID>"
          "<MsgID>1</MsgID><Target><LocURI>https://box/syncml</LocURI></Target><Source><LocURI>dev9</LocURI>"
          "</Source>{cred}</SyncHdr>")


def message(body="", v="1.2", cred="", final=True):
    return (f"<SyncML xmlns='SYNCML:SYNCML1.2'>{HEADER.format(v=v, cred=cred)}<SyncBody>{body}"
            f"{'<Final/>' if final else ''}</SyncBody></SyncML>").encode()


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
    # Past the server's MaxMsgSize: refused from its length, before its body is read.
    import socket
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", b.port(443)), timeout=30)) as t:
        t.sendall(b"POST /syncml HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.syncml+xml\r\n"
                  b"Content-Length: 2097152\r\n\r\n<SyncML>")
        assert t.recv(100).startswith(b"HTTP/1.1 413"), "413"
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


def test_a_replayed_message_gets_the_same_reply_and_the_session_follows_its_respuri(office):
    b = office
    alert = ("<Alert><CmdID>1</CmdID><Data>201</Data><Item><Target><LocURI>contacts</LocURI></Target>"
             "<Source><LocURI>./c</LocURI></Source><Meta><Anchor xmlns='syncml:metinf'><Last>1</Last>"
             "<Next>2</Next></Anchor></Meta></Item></Alert>")
    first = post(b, message(alert, cred=basic("alice", PW)))
    assert "<Data>212</Data>" in first.text, first.text
    uri = re.search(r"<RespURI>([^<]+)</RespURI>", first.text).group(1)
    path = "/syncml?" + uri.split("?", 1)[1]
    # Package 3 at the RespURI, without credentials: one card.
    sync = ("<Sync><CmdID>1</CmdID><Target><LocURI>contacts</LocURI></Target><Source><LocURI>./c</LocURI>"
            "</Source><Add><CmdID>2</CmdID><Meta><Type xmlns='syncml:metinf'>text/vcard</Type></Meta><Item>"
            "<Source><LocURI>luid-1</LocURI></Source><Data>BEGIN:VCARD\nVERSION:3.0\nFN:Replay Once\n"
            "N:Once;Replay;;;\nEND:VCARD</Data></Item></Add></Sync>")
    msg2 = message(sync).replace(b"<MsgID>1</MsgID>", b"<MsgID>2</MsgID>")
    second = post(b, msg2, path=path)
    assert "<Data>201</Data>" in second.text, second.text
    # The reply was lost; the device sends the same message again: the same answer, and
    # the card is not stored twice.
    again = post(b, msg2, path=path)
    assert again.content == second.content
    assert len(with_text(server_cards(b), "Replay Once")) == 1
    # The RespURI is the session's: another device's message there needs credentials.
    other = post(b, msg2.replace(b"<LocURI>dev9</LocURI>", b"<LocURI>dev8</LocURI>"), path=path)
    assert "<Data>407</Data>" in other.text
