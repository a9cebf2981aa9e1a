"""CalDAV and CardDAV with the Python caldav library, and request/response tests where the
exact answer matters (ETags and 412, sync-collection, time ranges, DTDs)."""

import base64
import http.client
import re
from datetime import datetime, timezone

import caldav
import pytest

from conftest import tls_context
from test_smtp_outbound import wait_for

PW = "long enough pw"
pytestmark = pytest.mark.filterwarnings("ignore:Unverified HTTPS request")


@pytest.fixture
def office(bureau_factory):
    b = bureau_factory("")
    b.cli("domain", "add", "example.com")
    for uid in ("alice", "bob"):
        b.cli("user", "add", f"{uid}@example.com", "--password-stdin", input=PW + "\n")
    return b


def dav(b, method, path, body=None, user="alice", password=PW, **headers):
    """One request; the status, the headers and the body as text."""
    conn = http.client.HTTPSConnection("127.0.0.1", b.port(443), context=tls_context(), timeout=30)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    h = {"Authorization": f"Basic {auth}"}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    if isinstance(body, str):
        body = body.encode()
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    out = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, out


def client(b, user="alice"):
    return caldav.DAVClient(url=f"https://127.0.0.1:{b.port(443)}/.well-known/caldav",
                            username=user, password=PW, ssl_verify_cert=False)


def event(uid, summary, start="20261123T100000Z", end="20261123T110000Z", extra=""):
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261122T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\n"
            f"SUMMARY:{summary}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n")


def test_discovery_and_calendars_with_the_caldav_library(office):
    b = office
    status, h, _ = dav(b, "PROPFIND", "/.well-known/caldav")
    assert status == 301 and h["location"] == "/dav/"
    assert dav(b, "PROPFIND", "/dav/", password="wrong")[0] == 401

    with client(b) as c:
        p = c.principal()
        assert p.url.path == "/dav/principals/alice/"
        cals = p.calendars()
        assert sorted(x.get_display_name() for x in cals) == ["Calendar", "Notes", "Tasks"]
        work = p.make_calendar(name="Work", cal_id="work")
        assert work.url.path == "/dav/calendars/alice/work/"
        e = work.save_event(event("ev-1@test", "Planning"))
        assert [x.icalendar_component["SUMMARY"] for x in work.events()] == ["Planning"]
        e.icalendar_component["SUMMARY"] = "Planning, moved"
        e.save()
        got = work.event_by_uid("ev-1@test")
        assert got.icalendar_component["SUMMARY"] == "Planning, moved"
        got.delete()
        assert work.events() == []
        assert sorted(x.get_display_name() for x in p.calendars()) == ["Calendar", "Notes", "Tasks", "Work"]
        # The task list takes to-dos only.
        tasks = p.calendar(cal_id="tasks")
        with pytest.raises(caldav.error.DAVError, match="Forbidden"):
            tasks.save_event(event("ev-2@test", "Not a task"))
        tasks.save_todo("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VTODO\r\n"
                        "UID:todo-1@test\r\nDTSTAMP:20261122T000000Z\r\nSUMMARY:Call Carol\r\n"
                        "END:VTODO\r\nEND:VCALENDAR\r\n")
        assert [t.icalendar_component["SUMMARY"] for t in tasks.todos()] == ["Call Carol"]


def test_etags_and_preconditions(office):
    b = office
    path = "/dav/calendars/alice/calendar/a.ics"
    dav(b, "PROPFIND", "/dav/calendars/alice/", Depth="1")  # the default calendar appears
    status, h, _ = dav(b, "PUT", path, event("a@test", "One"), If_None_Match="*")
    assert status == 201
    tag = h["etag"]
    # Made already: If-None-Match * fails; a stale If-Match fails; nothing changes.
    assert dav(b, "PUT", path, event("a@test", "Two"), If_None_Match="*")[0] == 412
    assert dav(b, "PUT", path, event("a@test", "Two"), If_Match='"1-1"')[0] == 412
    status, h2, text = dav(b, "GET", path)
    assert status == 200 and "SUMMARY:One" in text and h2["etag"] == tag
    status, h3, _ = dav(b, "PUT", path, event("a@test", "Two"), If_Match=tag)
    assert status == 204 and h3["etag"] != tag
    assert dav(b, "DELETE", path, If_Match=tag)[0] == 412
    assert dav(b, "DELETE", path, If_Match=h3["etag"])[0] == 204
    assert dav(b, "GET", path)[0] == 404
    # Not a calendar object: refused with CalDAV's precondition, nothing stored.
    status, _, text = dav(b, "PUT", path, "hello")
    assert status == 403 and "valid-calendar-data" in text
    assert dav(b, "GET", path)[0] == 404


SYNC = """<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"><d:sync-token>{}</d:sync-token>
<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"""


def sync(b, token=""):
    status, _, text = dav(b, "REPORT", "/dav/calendars/alice/calendar/", SYNC.format(token))
    assert status == 207, text
    new = re.search(r"<d:sync-token>([^<]+)</d:sync-token>", text).group(1)
    responses = re.findall(r"<d:response>(.*?)</d:response>", text)
    changed = sorted(re.search(r"<d:href>[^<]*/([^/<]+)</d:href>", r).group(1)
                     for r in responses if "getetag" in r)
    gone = sorted(re.search(r"<d:href>[^<]*/([^/<]+)</d:href>", r).group(1)
                  for r in responses if "404 Not Found</d:status></d:response" in r + "</d:response")
    return new, changed, gone


def test_sync_collection_gives_exactly_the_changes(office):
    b = office
    base = "/dav/calendars/alice/calendar/"
    dav(b, "PROPFIND", "/dav/calendars/alice/", Depth="1")
    for n in ("a", "b", "c"):
        assert dav(b, "PUT", f"{base}{n}.ics", event(f"{n}@test", n))[0] == 201
    token, changed, gone = sync(b)
    assert changed == ["a.ics", "b.ics", "c.ics"] and gone == []
    assert dav(b, "PUT", f"{base}b.ics", event("b@test", "b, edited"))[0] == 204
    assert dav(b, "DELETE", f"{base}c.ics")[0] == 204
    assert dav(b, "PUT", f"{base}d.ics", event("d@test", "d"))[0] == 201
    token2, changed, gone = sync(b, token)
    assert changed == ["b.ics", "d.ics"] and gone == ["c.ics"]
    assert sync(b, token2)[1:] == ([], [])
    status, _, text = dav(b, "REPORT", base, SYNC.format("https://elsewhere/sync/1/999"))
    assert status == 403 and "valid-sync-token" in text

    # The library's own sync agrees.
    with client(b) as c:
        cal = c.principal().calendar(cal_id="calendar")
        objs = cal.objects_by_sync_token(load_objects=False)
        assert len(list(objs)) == 3
        assert dav(b, "DELETE", f"{base}a.ics")[0] == 204
        updated, deleted = objs.sync()
        assert len(list(updated)) == 0 and len(list(deleted)) == 1


BERLIN = """BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r
DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"""

WEEKLY = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + BERLIN +
          "BEGIN:VEVENT\r\nUID:weekly@test\r\nDTSTAMP:20261122T000000Z\r\n"
          "DTSTART;TZID=Europe/Berlin:20260302T090000\r\nDTEND;TZID=Europe/Berlin:20260302T100000\r\n"
          "RRULE:FREQ=WEEKLY;COUNT=10\r\nEXDATE;TZID=Europe/Berlin:20260323T090000\r\n"
          "SUMMARY:Weekly\r\nEND:VEVENT\r\n"
          "BEGIN:VEVENT\r\nUID:weekly@test\r\nDTSTAMP:20261122T000000Z\r\n"
          "RECURRENCE-ID;TZID=Europe/Berlin:20260316T090000\r\n"
          "DTSTART;TZID=Europe/Berlin:20260317T140000\r\nDTEND;TZID=Europe/Berlin:20260317T150000\r\n"
          "SUMMARY:Weekly, moved\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")

QUERY = """<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
<d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">
<c:time-range start="{}" end="{}"/></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"""


def test_time_range_expands_recurrences_across_dst(office):
    b = office
    dav(b, "PROPFIND", "/dav/calendars/alice/", Depth="1")
    assert dav(b, "PUT", "/dav/calendars/alice/calendar/weekly.ics", WEEKLY)[0] == 201
    assert dav(b, "PUT", "/dav/calendars/alice/calendar/other.ics",
               event("other@test", "Elsewhere", "20260601T100000Z", "20260601T110000Z"))[0] == 201

    def hits(start, end):
        status, _, text = dav(b, "REPORT", "/dav/calendars/alice/calendar/", QUERY.format(start, end),
                              Depth="1")
        assert status == 207, text
        return sorted(re.findall(r"/calendar/([^<]+)</d:href>", text))

    # 9:00 in Berlin is 08:00Z before the change to summer time (29 March), 07:00Z after.
    assert hits("20260309T080000Z", "20260309T083000Z") == ["weekly.ics"]
    assert hits("20260330T070000Z", "20260330T073000Z") == ["weekly.ics"]
    assert hits("20260330T080000Z", "20260330T083000Z") == []
    # The cancelled instance, and the moved one at its old and new times.
    assert hits("20260323T080000Z", "20260323T083000Z") == []
    assert hits("20260316T080000Z", "20260316T083000Z") == []
    assert hits("20260317T130000Z", "20260317T133000Z") == ["weekly.ics"]
    # After the tenth instance (4 May) the series is over.
    assert hits("20260511T000000Z", "20260512T000000Z") == []
    assert hits("20260101T000000Z", "20270101T000000Z") == ["other.ics", "weekly.ics"]
    # Edited (the cancelled instance restored): the next query sees the new instances.
    restored = WEEKLY.replace("EXDATE;TZID=Europe/Berlin:20260323T090000\r\n", "")
    assert dav(b, "PUT", "/dav/calendars/alice/calendar/weekly.ics", restored)[0] == 204
    assert hits("20260323T080000Z", "20260323T083000Z") == ["weekly.ics"]

    # The library's search sees the same.
    with client(b) as c:
        cal = c.principal().calendar(cal_id="calendar")
        found = cal.search(start=datetime(2026, 3, 30, 7, tzinfo=timezone.utc),
                           end=datetime(2026, 3, 30, 8, tzinfo=timezone.utc), event=True)
        assert [f.icalendar_component["UID"] for f in found] == ["weekly@test"]


def test_other_users_and_bad_bodies(office):
    b = office
    dav(b, "PROPFIND", "/dav/calendars/alice/", Depth="1")
    assert dav(b, "PUT", "/dav/calendars/alice/calendar/x.ics", event("x@test", "Private"))[0] == 201
    # Bob sees nothing of Alice's without a share, and cannot write there.
    for method, path, body in [("PROPFIND", "/dav/calendars/alice/calendar/", None),
                               ("GET", "/dav/calendars/alice/calendar/x.ics", None),
                               ("PUT", "/dav/calendars/alice/calendar/y.ics", event("y@test", "y")),
                               ("PROPFIND", "/dav/calendars/alice/", None)]:
        assert dav(b, method, path, body, user="bob")[0] in (403, 404), (method, path)
    # Her principal says who she is (to invite her), not where her calendars are.
    status, _, text = dav(b, "PROPFIND", "/dav/principals/alice/", user="bob", Depth="0", body=(
        '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop><d:displayname/>'
        '<c:calendar-user-address-set/><c:calendar-home-set/><c:schedule-inbox-URL/></d:prop></d:propfind>'))
    assert status == 207 and "mailto:alice@example.com" in text
    assert "/dav/calendars/alice/" not in text
    assert dav(b, "GET", "/dav/calendars/alice/calendar/y.ics")[0] == 404

    xxe = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&x;</d:displayname></d:prop></d:propfind>')
    status, _, text = dav(b, "PROPFIND", "/dav/calendars/alice/calendar/", xxe, Depth="0")
    assert status == 400 and "DTD" in text and "root:" not in text
    laughs = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
              '<d:propfind xmlns:d="DAV:"><d:prop><d:displayname>&b;</d:displayname></d:prop></d:propfind>')
    assert dav(b, "PROPFIND", "/dav/", laughs)[0] == 400
    assert dav(b, "PROPFIND", "/dav/", "<not xml")[0] == 400
    assert dav(b, "PROPFIND", "/dav/", "<a>" * 2, Depth="infinity")[0] in (400, 403)
    # A body past max-resource-size: test_max_resource_size_is_told_and_checked_before_reading
    # (413 before it is read, so a client still sending sees the connection end).


def test_address_books(office):
    b = office
    status, _, text = dav(b, "PROPFIND", "/dav/principals/alice/", """<?xml version="1.0"?>
<d:propfind xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav"><d:prop><a:addressbook-home-set/>
</d:prop></d:propfind>""", Depth="0")
    assert status == 207 and "<d:href>/dav/addressbooks/alice/</d:href>" in text
    status, _, text = dav(b, "PROPFIND", "/dav/addressbooks/alice/", Depth="1")
    assert status == 207 and "/dav/addressbooks/alice/contacts/" in text and "addressbook" in text
    card = ("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:carol\r\nFN:Carol Martin\r\n"
            "EMAIL:carol@remote.example\r\nEND:VCARD\r\n")
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/carol.vcf", card)[0] == 201
    old = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:john\r\nN:Doe;John;;;\r\nFN:John Doe\r\nEND:VCARD\r\n"
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/john.vcf", old)[0] == 201
    query = """<?xml version="1.0"?><a:addressbook-query xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav">
<d:prop><d:getetag/><a:address-data/></d:prop><a:filter><a:prop-filter name="EMAIL">
<a:text-match>CAROL@</a:text-match></a:prop-filter></a:filter></a:addressbook-query>"""
    status, _, text = dav(b, "REPORT", "/dav/addressbooks/alice/contacts/", query, Depth="1")
    assert status == 207 and "carol.vcf" in text and "john.vcf" not in text and "FN:Carol Martin" in text
    get = """<?xml version="1.0"?><a:addressbook-multiget xmlns:d="DAV:" xmlns:a="urn:ietf:params:xml:ns:carddav">
<d:prop><a:address-data/></d:prop><d:href>/dav/addressbooks/alice/contacts/john.vcf</d:href>
<d:href>/dav/addressbooks/alice/contacts/nobody.vcf</d:href></a:addressbook-multiget>"""
    status, _, text = dav(b, "REPORT", "/dav/addressbooks/alice/contacts/", get)
    assert status == 207 and "FN:John Doe" in text and "nobody.vcf</d:href><d:status>HTTP/1.1 404" in text
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/bad.vcf", "BEGIN:VCALENDAR\r\n")[0] == 403
    assert dav(b, "MKCOL", "/dav/addressbooks/alice/family/")[0] == 201
    status, _, text = dav(b, "PROPFIND", "/dav/addressbooks/alice/", Depth="1")
    assert "/dav/addressbooks/alice/family/" in text


def test_sharing_read_only_and_to_a_group(office):
    b = office
    assert dav(b, "PUT", "/dav/calendars/alice/calendar/x.ics", event("x@test", "Board meeting"))[0] == 201
    # Shared read-only with Bob: it is in Bob's home, readable, and refuses his writes.
    b.cli("mailbox", "share", "alice", "calendar", "--with", "bob", "--access", "read")
    with client(b, "bob") as c:
        cals = {x.url.path: x for x in c.principal().calendars()}
        assert "/dav/calendars/alice/calendar/" in cals, cals
        shared = cals["/dav/calendars/alice/calendar/"]
        assert shared.get_display_name() == "Calendar (alice)"
        assert [e.icalendar_component["SUMMARY"] for e in shared.events()] == ["Board meeting"]
    status, _, text = dav(b, "PUT", "/dav/calendars/alice/calendar/y.ics", event("y@test", "y"), user="bob")
    assert status == 403 and "need-privileges" in text
    assert dav(b, "DELETE", "/dav/calendars/alice/calendar/x.ics", user="bob")[0] == 403
    assert dav(b, "GET", "/dav/calendars/alice/calendar/x.ics")[0] == 200
    # Alice's other calendars stay hidden.
    assert dav(b, "PROPFIND", "/dav/calendars/alice/tasks/", user="bob", Depth="0")[0] == 404

    # Her address book, read-write to a group Bob is in.
    b.cli("group", "add", "team", "--member", "bob")
    b.cli("mailbox", "share", "alice", "contacts", "--with", "team", "--access", "read-write")
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:dave\r\nFN:Dave\r\nEND:VCARD\r\n"
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/dave.vcf", card, user="bob")[0] == 201
    status, _, text = dav(b, "PROPFIND", "/dav/addressbooks/bob/", Depth="1", user="bob")
    assert "/dav/addressbooks/alice/contacts/" in text
    assert "FN:Dave" in dav(b, "GET", "/dav/addressbooks/alice/contacts/dave.vcf")[2]

    # The admin API that shares wants an administrator's session, not a user's password.
    assert dav(b, "PUT", "/api/v1/users/alice/collections/calendar/shares/bob",
               '{"access": "read-write"}', user="bob")[0] == 401
    # Unshared: gone again.
    b.cli("mailbox", "unshare", "alice", "calendar", "--with", "bob")
    assert dav(b, "GET", "/dav/calendars/alice/calendar/x.ics", user="bob")[0] == 404
    r = b.cli("--json", "mailbox", "shares", "alice", "contacts")
    assert '"team"' in r.stdout and '"read-write"' in r.stdout


def test_import_and_export_whole_files(office, tmp_path):
    b = office
    events = "".join(
        f"BEGIN:VEVENT\r\nUID:imp-{i}@test\r\nDTSTAMP:20261122T000000Z\r\n"
        f"DTSTART;TZID=Europe/Berlin:202603{10 + i:02d}T090000\r\nSUMMARY:Imported {i}\r\nEND:VEVENT\r\n"
        for i in range(5))
    ics = tmp_path / "team.ics"
    ics.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//EN\r\n" + BERLIN + events
                   + "BEGIN:VTODO\r\nUID:todo@test\r\nSUMMARY:Not here\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
    # One of its events is already here under a name a client chose: replaced there, not
    # stored twice (the collection keeps one object per UID, issue 24's UID index).
    dav(b, "PROPFIND", "/dav/calendars/alice/", Depth="1")
    assert dav(b, "PUT", "/dav/calendars/alice/calendar/mine.ics",
               event("imp-0@test", "Mine", "20260310T080000Z", "20260310T090000Z"))[0] == 201
    r = b.cli("mailbox", "import", "alice", "calendar", str(ics))
    assert "6 objects stored" in r.stdout, r.stdout
    assert "Imported 0" in dav(b, "GET", "/dav/calendars/alice/calendar/mine.ics")[2]
    # Again: the same UIDs replace, nothing doubles.
    b.cli("mailbox", "import", "alice", "calendar", str(ics))
    status, h, text = dav(b, "GET", "/dav/calendars/alice/calendar/")
    assert status == 200 and h["content-type"].startswith("text/calendar")
    assert text.count("BEGIN:VEVENT") == 5 and text.count("BEGIN:VTIMEZONE") == 1
    assert text.count("BEGIN:VTODO") == 1
    with client(b) as c:
        cal = c.principal().calendar(cal_id="calendar")
        assert len(cal.events()) == 5
        found = cal.search(start=datetime(2026, 3, 12, 7, tzinfo=timezone.utc),
                           end=datetime(2026, 3, 12, 9, tzinfo=timezone.utc), event=True)
        assert [f.icalendar_component["UID"] for f in found] == ["imp-2@test"]

    # Only to-dos go into a task list; a broken file changes nothing.
    r = b.cli("mailbox", "import", "alice", "tasks", str(ics))
    assert "1 objects stored" in r.stdout and r.stdout.count("refused:") == 5, r.stdout
    bad = tmp_path / "bad.ics"
    bad.write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:no uid\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    r = b.cli("mailbox", "import", "alice", "calendar", str(bad), check=False)
    assert r.returncode != 0 and "UID" in r.stderr

    vcf = tmp_path / "people.vcf"
    vcf.write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:p1\r\nFN:Pat\r\nEND:VCARD\r\n"
                   "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:p2\r\nFN:Sam\r\nEND:VCARD\r\n")
    assert "2 objects stored" in b.cli("mailbox", "import", "alice", "contacts", str(vcf)).stdout
    status, _, text = dav(b, "GET", "/dav/addressbooks/alice/contacts/")
    assert status == 200 and "FN:Pat" in text and "FN:Sam" in text


def test_company_address_book(office):
    b = office
    b.cli("user", "add", "carol@example.com", "--name", "Carol Martin", "--password-stdin",
          input=PW + "\n")
    book = "/dav/addressbooks/_company/directory/"
    status, _, text = dav(b, "PROPFIND", "/dav/addressbooks/bob/", Depth="1", user="bob")
    assert book in text and "<d:displayname>Company directory</d:displayname>" in text
    status, _, text = dav(b, "GET", book, user="bob")
    assert status == 200 and "FN:Carol Martin" in text and "EMAIL;TYPE=work;PREF=1:alice@example.com" in text
    # Everyone reads it; nobody writes it.
    assert dav(b, "PUT", book + "x.vcf", "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:X\r\nEND:VCARD\r\n",
               user="bob")[0] == 403
    # It follows the directory: a new alias shows, a disabled user goes, sync tells both.
    status, _, text = dav(b, "REPORT", book, SYNC.format(""), user="bob")
    token = re.search(r"<d:sync-token>([^<]+)</d:sync-token>", text).group(1)
    b.cli("user", "set", "carol", "--add-alias", "c.martin@example.com")
    b.cli("user", "disable", "alice")
    status, _, text = dav(b, "REPORT", book, SYNC.format(token), user="bob")
    assert "carol.vcf</d:href><d:propstat>" in text and "alice.vcf</d:href><d:status>HTTP/1.1 404" in text
    assert "c.martin@example.com" in dav(b, "GET", book + "carol.vcf", user="bob")[2]
    b.cli("user", "del", "carol")
    assert dav(b, "GET", book + "carol.vcf", user="bob")[0] == 404


def test_client_autoconfiguration(office):
    import plistlib
    import xml.etree.ElementTree as ET

    b = office
    for path in ("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.com",
                 "/mail/config-v1.1.xml"):
        conn = http.client.HTTPSConnection("127.0.0.1", b.port(443), context=tls_context(), timeout=30)
        conn.request("GET", path)
        r = conn.getresponse()
        assert r.status == 200, path
        root = ET.fromstring(r.read())
        assert [d.text for d in root.iter("domain")] == ["example.com"]
        imap = [s for s in root.iter("incomingServer") if s.findtext("socketType") == "SSL"][0]
        assert imap.findtext("hostname") == "box.example.com"
        assert imap.findtext("port") == str(b.port(993))
        smtp = [s.findtext("port") for s in root.iter("outgoingServer")]
        assert smtp == [str(b.port(465)), str(b.port(587))]
        assert root.find("calendar/serverURL").text == f"https://box.example.com:{b.port(443)}/.well-known/caldav"
        assert root.find("addressBook").get("type") == "carddav"

    assert dav(b, "GET", "/dav/mobileconfig", password="wrong")[0] == 401
    conn = http.client.HTTPSConnection("127.0.0.1", b.port(443), context=tls_context(), timeout=30)
    conn.request("GET", "/dav/mobileconfig",
                 headers={"Authorization": "Basic " + base64.b64encode(f"alice:{PW}".encode()).decode()})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type") == "application/x-apple-aspen-config"
    body = r.read()
    profile = plistlib.loads(body)
    kinds = {p["PayloadType"]: p for p in profile["PayloadContent"]}
    assert set(kinds) == {"com.apple.mail.managed", "com.apple.caldav.account", "com.apple.carddav.account"}
    mail = kinds["com.apple.mail.managed"]
    assert mail["EmailAddress"] == "alice@example.com"
    assert mail["IncomingMailServerPortNumber"] == b.port(993)
    assert kinds["com.apple.caldav.account"]["CalDAVPrincipalURL"] == "/dav/principals/alice/"
    assert PW.encode() not in body


def test_free_busy_query(office):
    b = office
    base = "/dav/calendars/alice/calendar/"
    for name, start, end, extra in [
        ("a", "20261123T100000Z", "20261123T110000Z", ""),
        ("b", "20261123T103000Z", "20261123T113000Z", ""),                     # overlaps a
        ("c", "20261123T120000Z", "20261123T130000Z", "STATUS:TENTATIVE\r\n"),
        ("d", "20261123T140000Z", "20261123T150000Z", "TRANSP:TRANSPARENT\r\n"),
        ("e", "20261123T160000Z", "20261123T170000Z", "STATUS:CANCELLED\r\n"),
        ("f", "20261124T090000Z", "20261124T100000Z", ""),                     # outside
    ]:
        assert dav(b, "PUT", f"{base}{name}.ics", event(f"{name}@test", name, start, end, extra))[0] == 201
    query = """<?xml version="1.0"?><c:free-busy-query xmlns:c="urn:ietf:params:xml:ns:caldav">
<c:time-range start="20261123T000000Z" end="20261124T000000Z"/></c:free-busy-query>"""
    status, h, text = dav(b, "REPORT", base, query, Depth="1")
    assert status == 200 and h["content-type"].startswith("text/calendar"), text
    lines = [l for l in text.split("\r\n") if l.startswith("FREEBUSY")]
    assert lines == ["FREEBUSY;FBTYPE=BUSY:20261123T100000Z/20261123T113000Z",
                     "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20261123T120000Z/20261123T130000Z"], text
    # Read access is enough: a read-only sharee may ask.
    b.cli("mailbox", "share", "alice", "calendar", "--with", "bob")
    assert dav(b, "REPORT", base, query, user="bob")[0] == 200
    assert dav(b, "REPORT", base, query.replace(' end="20261124T000000Z"', ""))[0] == 400


def unfolded(text):
    return text.replace("\r\n ", "").replace("\n ", "")


def attendee_line(text, addr):
    [line] = [l for l in unfolded(text).splitlines() if l.startswith("ATTENDEE") and l.lower().endswith(addr)]
    return line


def test_scheduling_invitations_replies_and_free_busy(bureau_factory, test_mx):
    """RFC 6638 with the caldav library: Alice invites Bob (here) and Dave (elsewhere); Bob's
    schedule inbox and calendar get it, his acceptance updates Alice's copy; Dave gets iMIP
    mail at his MX and his emailed reply updates it too; free/busy through the outbox."""
    import email.policy
    import smtplib
    from email.message import EmailMessage

    mx = test_mx()
    b = bureau_factory(f'[smtp]\nretry_first_secs = 1\nretry_max_secs = 2\n\n'
                       f'[smtp.routes]\n"partner.example" = "127.0.0.1:{mx.port}"\n')
    b.cli("domain", "add", "example.com")
    for uid in ("alice", "bob"):
        b.cli("user", "add", f"{uid}@example.com", "--password-stdin", input=PW + "\n")
    assert "calendar-auto-schedule" in dav(b, "OPTIONS", "/dav/")[1]["dav"]

    invite = event("meet-1@test", "Budget review", start="20261210T100000Z", end="20261210T110000Z")
    with client(b) as c:
        p = c.principal()
        assert p.schedule_inbox().url.path == "/dav/calendars/alice/schedule-inbox/"
        cal = p.calendar(cal_id="calendar")
        cal.save_with_invites(invite, ["mailto:bob@example.com", "mailto:dave@partner.example"])
    _, before, _ = dav(b, "GET", "/dav/calendars/alice/calendar/meet-1@test.ics")
    assert before["schedule-tag"].startswith('"')

    # Bob: the REQUEST in his schedule inbox, the event in his calendar awaiting an answer.
    with client(b, "bob") as c:
        p = c.principal()
        [req] = p.schedule_inbox().get_items()
        assert req.is_invite_request() and "Budget review" in req.data
        status, _, copy = dav(b, "GET", "/dav/calendars/bob/calendar/meet-1@test.ics", user="bob")
        assert status == 200 and "PARTSTAT=NEEDS-ACTION" in attendee_line(copy, "bob@example.com")
        # The schedule inbox is not listed as a calendar.
        assert all("schedule" not in x.url.path for x in p.calendars())
        req.accept_invite()
    status, after, mine = dav(b, "GET", "/dav/calendars/alice/calendar/meet-1@test.ics")
    assert "PARTSTAT=ACCEPTED" in attendee_line(mine, "bob@example.com")
    # The merged reply changed the ETag, not the Schedule-Tag (RFC 6638 3.2): Alice's client
    # may still write with If-Schedule-Tag-Match, and a stale tag is refused.
    assert after["etag"] != before["etag"] and after["schedule-tag"] == before["schedule-tag"]
    path = "/dav/calendars/alice/calendar/meet-1@test.ics"
    assert dav(b, "PUT", path, mine, If_Schedule_Tag_Match='"stale"')[0] == 412
    status, h, _ = dav(b, "PUT", path, mine, If_Schedule_Tag_Match=before["schedule-tag"])
    assert status == 204 and h["schedule-tag"] != before["schedule-tag"]
    with client(b) as c:
        [reply] = c.principal().schedule_inbox().get_items()
        assert reply.is_invite_reply()

    # Dave: iMIP at his MX, from Alice, signed for example.com, with the REQUEST.
    [(mail_from, rcpts, data)] = wait_for(lambda: mx.received, what="the iMIP mail")
    assert mail_from == "alice@example.com" and rcpts == ["dave@partner.example"]
    text = data.decode()
    assert "method=REQUEST" in text and "UID:meet-1@test" in unfolded(text)

    def mail_reply(sender, attendee, partstat):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = sender, "alice@example.com", "Accepted: Budget review"
        m.set_content("Answer attached.")
        m.add_attachment(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//partner//EN\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n"
            "UID:meet-1@test\r\nDTSTAMP:20261201T120000Z\r\nDTSTART:20261210T100000Z\r\n"
            "ORGANIZER:mailto:alice@example.com\r\n"
            f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            subtype="calendar", params={"method": "REPLY"})
        with smtplib.SMTP("127.0.0.1", b.port(25), timeout=30) as s:
            s.sendmail(sender, ["alice@example.com"], m.as_bytes(policy=email.policy.SMTP))

    def dave():
        return attendee_line(dav(b, "GET", "/dav/calendars/alice/calendar/meet-1@test.ics")[2],
                             "dave@partner.example")

    # Someone else answering for Dave changes nothing; Dave's own answer does.
    mail_reply("mallory@evil.example", "dave@partner.example", "DECLINED")
    mail_reply("dave@partner.example", "dave@partner.example", "TENTATIVE")
    wait_for(lambda: "PARTSTAT=TENTATIVE" in dave(), what="Dave's reply to be applied")
    assert "PARTSTAT=ACCEPTED" in attendee_line(
        dav(b, "GET", "/dav/calendars/alice/calendar/meet-1@test.ics")[2], "bob@example.com")

    # Free/busy across colleagues through the outbox.
    with client(b) as c:
        p = c.principal()
        fb = p.freebusy_request(datetime(2026, 12, 10, 0, 0, tzinfo=timezone.utc),
                                datetime(2026, 12, 11, 0, 0, tzinfo=timezone.utc),
                                ["mailto:bob@example.com", "mailto:nobody@example.com"])
        assert "FREEBUSY;FBTYPE=BUSY:20261210T100000Z/20261210T110000Z" in unfolded(
            fb["mailto:bob@example.com"].data)
        assert fb["errors"]["mailto:nobody@example.com"].startswith("3.7")
    # The outbox answers for its owner's address only.
    status, _, _ = dav(b, "POST", "/dav/calendars/bob/schedule-outbox/", user="bob", body=(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nMETHOD:REQUEST\r\nBEGIN:VFREEBUSY\r\n"
        "UID:fb-1\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:20261210T000000Z\r\nDTEND:20261211T000000Z\r\n"
        "ORGANIZER:mailto:alice@example.com\r\nATTENDEE:mailto:alice@example.com\r\n"
        "END:VFREEBUSY\r\nEND:VCALENDAR\r\n"), content_type="text/calendar")
    assert status == 403
    assert dav(b, "POST", "/dav/calendars/alice/schedule-outbox/", user="bob", body="x")[0] in (403, 404)

    # Alice cancels: Bob's copy is gone and his inbox has the CANCEL; Dave is mailed.
    status, _, _ = dav(b, "DELETE", "/dav/calendars/alice/calendar/meet-1@test.ics")
    assert status == 204
    assert dav(b, "GET", "/dav/calendars/bob/calendar/meet-1@test.ics", user="bob")[0] == 404
    with client(b, "bob") as c:
        methods = sorted(unfolded(i.data).split("METHOD:")[1].split("\r\n")[0].split("\n")[0]
                         for i in c.principal().schedule_inbox().get_items())
        assert methods == ["CANCEL", "REQUEST"]
    wait_for(lambda: len(mx.received) == 2, what="the CANCEL mail")
    assert "method=CANCEL" in mx.received[1][2].decode()


def hrefs(text):
    return sorted(re.findall(r"<d:href>[^<]*/([^/<]+\.ics)</d:href>", text))


def test_property_filters_uid_conflicts_copy_and_move(office):
    b = office
    base = "/dav/calendars/alice/calendar/"
    dav(b, "PROPFIND", "/dav/calendars/alice/", Depth="1")
    assert dav(b, "PUT", base + "a.ics", event("a@test", "Budget review",
                                                extra="LOCATION:Room 1\r\n"))[0] == 201
    assert dav(b, "PUT", base + "b.ics", event("b@test", "Lunch"))[0] == 201
    # With the caldav library: a search by UID, and by summary text.
    with client(b) as c:
        cal = c.principal().calendar(cal_id="calendar")
        assert cal.event_by_uid("b@test").icalendar_component["SUMMARY"] == "Lunch"

    def query(props):
        body = ('<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
                '<d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR">'
                f'<c:comp-filter name="VEVENT">{props}</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>')
        status, _, text = dav(b, "REPORT", base, body, Depth="1")
        assert status == 207, text
        return hrefs(text)

    assert query('<c:prop-filter name="SUMMARY"><c:text-match>BUDGET</c:text-match></c:prop-filter>') == ["a.ics"]
    assert query('<c:prop-filter name="SUMMARY"><c:text-match collation="i;octet">BUDGET</c:text-match>'
                 '</c:prop-filter>') == []
    assert query('<c:prop-filter name="LOCATION"><c:is-not-defined/></c:prop-filter>') == ["b.ics"]
    assert query('<c:prop-filter name="SUMMARY"><c:text-match negate-condition="yes">lunch</c:text-match>'
                 '</c:prop-filter>') == ["a.ics"]
    assert query('<c:prop-filter name="UID"><c:text-match collation="i;octet">b@test</c:text-match>'
                 '</c:prop-filter>') == ["b.ics"]
    status, _, text = dav(b, "REPORT", base, (
        '<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:prop-filter name="SUMMARY">'
        '<c:text-match collation="i;klingon">x</c:text-match></c:prop-filter></c:comp-filter></c:comp-filter>'
        '</c:filter></c:calendar-query>'), Depth="1")
    assert status == 403 and "supported-collation" in text

    # One UID per collection: the same event under another name is refused, naming the first.
    status, _, text = dav(b, "PUT", base + "again.ics", event("a@test", "Copy"))
    assert status == 403 and "no-uid-conflict" in text and base + "a.ics" in text
    assert dav(b, "GET", base + "again.ics")[0] == 404

    # COPY into another calendar, MOVE back under a new name, Overwrite: F.
    assert dav(b, "MKCALENDAR", "/dav/calendars/alice/work/")[0] == 201
    url = f"https://127.0.0.1:{b.port(443)}/dav/calendars/alice/work/a.ics"
    assert dav(b, "COPY", base + "a.ics", Destination=url)[0] == 201
    assert "Budget review" in dav(b, "GET", "/dav/calendars/alice/work/a.ics")[2]
    assert dav(b, "COPY", base + "a.ics", Destination=url, Overwrite="F")[0] == 412
    assert dav(b, "COPY", base + "a.ics", Destination=url)[0] == 204
    assert dav(b, "MOVE", base + "b.ics", Destination="/dav/calendars/alice/work/lunch.ics")[0] == 201
    assert dav(b, "GET", base + "b.ics")[0] == 404
    assert "Lunch" in dav(b, "GET", "/dav/calendars/alice/work/lunch.ics")[2]
    # Not into a task list, not into someone else's calendar, not onto a missing collection.
    assert dav(b, "COPY", base + "a.ics", Destination="/dav/calendars/alice/tasks/a.ics")[0] == 403
    # (Someone else's calendar without a grant is as absent as a missing one.)
    assert dav(b, "COPY", base + "a.ics", Destination="/dav/calendars/bob/calendar/a.ics")[0] == 409
    assert dav(b, "GET", "/dav/calendars/bob/calendar/a.ics", user="bob")[0] == 404
    assert dav(b, "COPY", base + "a.ics", Destination="/dav/calendars/alice/nope/a.ics")[0] == 409
    assert dav(b, "COPY", base + "a.ics")[0] == 400


def test_mkcalendar_keeps_the_component_set_it_was_asked(office):
    """Issue 19, defect 3: an events-only calendar also took tasks and journals. The caldav
    library's make_calendar with supported_calendar_component_set, then raw PUTs."""
    cal = client(office).principal().make_calendar(name="Events only", cal_id="events-only",
                                                   supported_calendar_component_set=["VEVENT"])
    comps = cal.get_supported_components()
    assert comps == ["VEVENT"], comps
    path = "/dav/calendars/alice/events-only"
    assert dav(office, "PUT", f"{path}/e.ics", event("e1", "Meeting"), Content_Type="text/calendar")[0] == 201
    todo = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\nUID:t1\r\n"
            "DTSTAMP:20261122T000000Z\r\nSUMMARY:Task\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
    s, _, body = dav(office, "PUT", f"{path}/t.ics", todo, Content_Type="text/calendar")
    assert s == 403 and "supported-calendar-component" in body, (s, body)
    # A component CalDAV does not know is refused at MKCALENDAR.
    mk = ('<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
          '<d:set><d:prop><c:supported-calendar-component-set><c:comp name="VFOO"/>'
          '</c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>')
    s, _, body = dav(office, "MKCALENDAR", "/dav/calendars/alice/foo/", mk, Content_Type="application/xml")
    assert s == 403, (s, body)


def test_calendar_order_is_kept(office):
    """Issue 19, defect 5: calendar-order (Apple's, which Apple Calendar and DAVx5 sort
    calendars by) was taken by PROPPATCH and never given back."""
    b = office
    dav(b, "PROPFIND", "/dav/calendars/alice/", Depth="1")
    patch = ('<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:a="http://apple.com/ns/ical/">'
             '<d:set><d:prop><a:calendar-order>3</a:calendar-order></d:prop></d:set></d:propertyupdate>')
    status, _, text = dav(b, "PROPPATCH", "/dav/calendars/alice/calendar/", patch)
    assert status == 207 and "200 OK" in text, text
    find = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:a="http://apple.com/ns/ical/">'
            '<d:prop><a:calendar-order/></d:prop></d:propfind>')
    status, _, text = dav(b, "PROPFIND", "/dav/calendars/alice/calendar/", find, Depth="0")
    assert status == 207 and re.search(r"<[^>]*calendar-order[^>]*>3</", text), text


def one_component(comp, uid, extra=""):
    """A calendar object of one `comp` (VTODO, VJOURNAL) named after its UID."""
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
            f"BEGIN:{comp}\r\nUID:{uid}\r\nDTSTAMP:20261122T000000Z\r\nSUMMARY:{uid}\r\n{extra}"
            f"END:{comp}\r\nEND:VCALENDAR\r\n")


def query(b, path, comp_filter):
    """The objects of `path` a calendar-query with this filter inside VCALENDAR's finds."""
    body = ('<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            '<d:prop><d:getetag/></d:prop><c:filter><c:comp-filter name="VCALENDAR">'
            f'{comp_filter}</c:comp-filter></c:filter></c:calendar-query>')
    status, _, text = dav(b, "REPORT", path + "/", body, Depth="1", Content_Type="application/xml")
    assert status == 207, text
    return hrefs(text)


def in_range(b, path, comp, start, end):
    """The objects of `path` whose `comp` overlaps [start, end), by calendar-query."""
    return query(b, path, f'<c:comp-filter name="{comp}"><c:time-range start="{start}" end="{end}"/></c:comp-filter>')


def test_journals_match_time_ranges_as_rfc4791_says(office):
    """RFC 4791 9.9's VJOURNAL rows: a date-time DTSTART matches the ranges holding it, a
    date DTSTART the ranges overlapping its day, and a journal without DTSTART none."""
    dav(office, "PROPFIND", "/dav/calendars/alice/", Depth="1")
    mk = ('<?xml version="1.0"?><c:mkcalendar xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
          '<d:set><d:prop><c:supported-calendar-component-set><c:comp name="VJOURNAL"/>'
          '</c:supported-calendar-component-set></d:prop></d:set></c:mkcalendar>')
    assert dav(office, "MKCALENDAR", "/dav/calendars/alice/journal/", mk)[0] == 201
    path = "/dav/calendars/alice/journal"

    for name, extra in [("timed", "DTSTART:20261210T120000Z\r\n"),
                        ("day", "DTSTART;VALUE=DATE:20261212\r\n"), ("undated", "")]:
        assert dav(office, "PUT", f"{path}/{name}.ics", one_component("VJOURNAL", name, extra),
                   Content_Type="text/calendar")[0] == 201

    def query(start, end):
        return in_range(office, path, "VJOURNAL", start, end)

    assert query("20261210T000000Z", "20261211T000000Z") == ["timed.ics"]
    assert query("20261210T120000Z", "20261210T130000Z") == ["timed.ics"]
    assert query("20261210T110000Z", "20261210T120000Z") == []
    assert query("20261212T230000Z", "20261213T010000Z") == ["day.ics"]
    assert query("20261213T000000Z", "20261214T000000Z") == []
    assert query("20260101T000000Z", "20280101T000000Z") == ["day.ics", "timed.ics"]


def test_alarms_match_nested_comp_filters_as_rfc4791_says(office):
    """RFC 4791 9.7.1 and 9.9's VALARM row: a comp-filter nested in VEVENT's looks at the
    event's alarms (their trigger times: relative to start or end, absolute, repeated, of
    each instance), or at their absence; it was ignored, so every event matched."""
    path = "/dav/calendars/alice/calendar"
    alarm = "BEGIN:VALARM\r\nACTION:{action}\r\nDESCRIPTION:x\r\n{trigger}END:VALARM\r\n"
    events = {
        "before": ("20261210T100000Z", "20261210T110000Z", alarm.format(action="DISPLAY", trigger="TRIGGER:-PT15M\r\n")),
        "after-end": ("20261210T100000Z", "20261210T110000Z",
                      alarm.format(action="DISPLAY", trigger="TRIGGER;RELATED=END:PT5M\r\n")),
        "absolute": ("20261210T100000Z", "20261210T110000Z",
                     alarm.format(action="AUDIO", trigger="TRIGGER;VALUE=DATE-TIME:20261210T080000Z\r\n")),
        "repeated": ("20261210T120000Z", "20261210T130000Z", alarm.format(
            action="DISPLAY", trigger="TRIGGER:-PT30M\r\nREPEAT:2\r\nDURATION:PT10M\r\n")),
        "daily": ("20261210T090000Z", "20261210T093000Z",
                  "RRULE:FREQ=DAILY;COUNT=5\r\n" + alarm.format(action="DISPLAY", trigger="TRIGGER:-PT10M\r\n")),
        "silent": ("20261210T100000Z", "20261210T110000Z", ""),
    }
    for uid, (start, end, extra) in events.items():
        assert dav(office, "PUT", f"{path}/{uid}.ics", event(uid, uid, start=start, end=end, extra=extra),
                   Content_Type="text/calendar")[0] == 201

    def alarms(inner):
        found = query(office, path, f'<c:comp-filter name="VEVENT"><c:comp-filter name="VALARM">{inner}'
                                    '</c:comp-filter></c:comp-filter>')
        return [h.removesuffix(".ics") for h in found]

    def ringing(start, end):
        return alarms(f'<c:time-range start="{start}" end="{end}"/>')

    assert ringing("20261210T094000Z", "20261210T095000Z") == ["before"]
    assert ringing("20261210T110000Z", "20261210T111000Z") == ["after-end"]
    assert ringing("20261210T075900Z", "20261210T080100Z") == ["absolute"]
    # The third ring of the repeated alarm only (11:30, 11:40, 11:50).
    assert ringing("20261210T114500Z", "20261210T115500Z") == ["repeated"]
    assert ringing("20261210T115500Z", "20261210T120000Z") == []
    # The fourth day's instance of the daily meeting.
    assert ringing("20261213T084500Z", "20261213T085500Z") == ["daily"]
    assert ringing("20261215T084500Z", "20261215T085500Z") == []
    assert alarms("") == ["absolute", "after-end", "before", "daily", "repeated"]
    assert alarms("<c:is-not-defined/>") == ["silent"]
    assert alarms('<c:prop-filter name="ACTION"><c:text-match>AUDIO</c:text-match></c:prop-filter>') == ["absolute"]
    # Nothing lies within an alarm.
    body = ('<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:comp-filter name="VALARM">'
            '<c:comp-filter name="X"/></c:comp-filter></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>')
    assert dav(office, "REPORT", path + "/", body, Depth="1")[0] == 403


def test_tasks_match_time_ranges_as_rfc4791_says(office):
    """Issue 19, defect 4: a task without DTSTART or DUE matches every time range (RFC 4791
    9.9's table); one with only DUE matches the ranges holding it."""
    path = "/dav/calendars/alice/tasks"
    def todo(uid, extra=""):
        return one_component("VTODO", uid, extra)
    assert dav(office, "PUT", f"{path}/undated.ics", todo("undated"), Content_Type="text/calendar")[0] == 201
    assert dav(office, "PUT", f"{path}/due.ics", todo("due", "DUE:20261210T120000Z\r\n"),
               Content_Type="text/calendar")[0] == 201
    assert dav(office, "PUT", f"{path}/done.ics", todo("done", "COMPLETED:20261205T090000Z\r\n"),
               Content_Type="text/calendar")[0] == 201

    def query(start, end):
        return {h.removesuffix(".ics") for h in in_range(office, path, "VTODO", start, end)}

    assert query("20261201T000000Z", "20261202T000000Z") == {"undated"}
    assert query("20261210T000000Z", "20261211T000000Z") == {"undated", "due"}
    assert query("20261205T000000Z", "20261206T000000Z") == {"undated", "done"}


def test_max_resource_size_is_told_and_checked_before_reading(office):
    """Issue 19, defect 6: max-resource-size was not advertised, and a too-large body was
    refused only after ~10 MB had been read. Announced past the limit: 413 at once."""
    s, _, text = dav(office, "PROPFIND", "/dav/calendars/alice/calendar/",
                     '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
                     '<d:prop><c:max-resource-size/></d:prop></d:propfind>', Depth="0")
    assert s == 207 and "max-resource-size>10485760<" in text, text
    import socket
    raw = socket.create_connection(("127.0.0.1", office.port(443)), timeout=30)
    conn = tls_context().wrap_socket(raw)
    auth = base64.b64encode(f"alice:{PW}".encode()).decode()
    conn.sendall((f"PUT /dav/calendars/alice/calendar/big.ics HTTP/1.1\r\nHost: box\r\n"
                  f"Authorization: Basic {auth}\r\nContent-Type: text/calendar\r\n"
                  f"Content-Length: {200 << 20}\r\n\r\n").encode())
    head = conn.recv(4096).decode()
    conn.close()
    assert head.startswith("HTTP/1.1 413"), head
    assert "max-resource-size" in head, head


def test_an_attendees_own_partstat_keeps_the_schedule_tag(office):
    """Issue 19, defect 5 (RFC 6638 3.2.10): when Bob only answers on his copy, its
    Schedule-Tag stays, so Alice's next update is not taken for a conflict; Alice's own
    change to her event gives hers a new one."""
    organizer = "ORGANIZER:mailto:alice@example.com\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.com\r\n"
    ics = event("tag-1@test", "Review", start="20261211T100000Z", end="20261211T110000Z", extra=organizer)
    assert dav(office, "PUT", "/dav/calendars/alice/calendar/tag-1.ics", ics, Content_Type="text/calendar")[0] == 201
    path = "/dav/calendars/bob/calendar/tag-1@test.ics"
    s, h, copy = dav(office, "GET", path, user="bob")
    assert s == 200, (s, copy)
    tag = h["schedule-tag"]
    answered = copy.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")
    s, h2, _ = dav(office, "PUT", path, answered, user="bob", Content_Type="text/calendar",
                   If_Schedule_Tag_Match=tag)
    assert s in (201, 204), s
    assert h2.get("schedule-tag", tag) == tag
    assert dav(office, "GET", path, user="bob")[1]["schedule-tag"] == tag
    # The organizer's own change is a new tag on her copy.
    _, a1, _ = dav(office, "GET", "/dav/calendars/alice/calendar/tag-1.ics")
    moved = ics.replace("SUMMARY:Review", "SUMMARY:Review, moved")
    assert dav(office, "PUT", "/dav/calendars/alice/calendar/tag-1.ics", moved, Content_Type="text/calendar")[0] == 204
    _, a2, _ = dav(office, "GET", "/dav/calendars/alice/calendar/tag-1.ics")
    assert a2["schedule-tag"] != a1["schedule-tag"]


BROKEN_EVENTS = {
    "no END lines": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:b1\r\nDTSTAMP:20261122T000000Z\r\nDTSTART:20261201T100000Z\r\nSUMMARY:x\r\n",
    "bad DTSTART": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:b2\r\nDTSTAMP:20261122T000000Z\r\nDTSTART:tomorrow\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    "no DTSTART": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:b3\r\nDTSTAMP:20261122T000000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    "nonsense RRULE": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:b4\r\nDTSTAMP:20261122T000000Z\r\nDTSTART:20261201T100000Z\r\nRRULE:FREQ=SOMETIMES;BYDAY=XX\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
}
BROKEN_CARDS = {
    "no UID": "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:No Uid\r\nN:Uid;No;;;\r\nEND:VCARD\r\n",
    "cut off": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c2\r\nFN:Cut",
    "two in one": "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c3\r\nFN:One\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nUID:c4\r\nFN:Two\r\nEND:VCARD\r\n",
}


def test_broken_data_is_refused_and_changes_nothing(office):
    """Issue 19, defect 1: broken objects were stored with 201 (one broke python-caldav's
    search for the whole calendar). Each is refused with its precondition; nothing is kept."""
    for why, ics in BROKEN_EVENTS.items():
        s, _, body = dav(office, "PUT", f"/dav/calendars/alice/calendar/{why.replace(' ', '-')}.ics", ics,
                         Content_Type="text/calendar")
        assert s in (400, 403) and "valid-calendar-data" in body, (why, s, body)
    for why, vcf in BROKEN_CARDS.items():
        s, _, body = dav(office, "PUT", f"/dav/addressbooks/alice/contacts/{why.replace(' ', '-')}.vcf", vcf,
                         Content_Type="text/vcard")
        assert s in (400, 403) and "valid-address-data" in body, (why, s, body)
    s, _, listing = dav(office, "PROPFIND", "/dav/calendars/alice/calendar/", Depth="1")
    assert ".ics" not in listing, listing
    s, _, listing = dav(office, "PROPFIND", "/dav/addressbooks/alice/contacts/", Depth="1")
    assert ".vcf" not in listing, listing
    # The calendar still answers a search with the caldav library.
    cal = client(office).principal().calendar(cal_id="calendar")
    assert cal.search(event=True) == []
    # Nothing broken is stored: `bureau check` (which lists objects an older release may
    # have stored broken; tested on such a store in services/dav/src/check.rs) says so.
    out = office.cli("check")
    assert out.returncode == 0 and "sound" in out.stdout


EXPAND = """<?xml version="1.0"?><c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
<d:prop><c:calendar-data>{data}</c:calendar-data></d:prop><c:filter><c:comp-filter name="VCALENDAR">
<c:comp-filter name="VEVENT"><c:time-range start="{start}" end="{end}"/></c:comp-filter></c:comp-filter>
</c:filter></c:calendar-query>"""


def test_calendar_data_returns_the_components_and_properties_asked(office):
    """RFC 4791 9.6.1-9.6.4: calendar-data's comp/prop selection (the whole object was
    returned): the properties named, a value left out with novalue, no alarm unless asked."""
    path = "/dav/calendars/alice/calendar/sel.ics"
    extra = "DESCRIPTION:long notes\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n"
    assert dav(office, "PUT", path, event("sel", "Selected", extra=extra), Content_Type="text/calendar")[0] == 201
    body = ('<?xml version="1.0"?><c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
            '<d:prop><c:calendar-data><c:comp name="VCALENDAR"><c:prop name="VERSION"/>'
            '<c:comp name="VEVENT"><c:prop name="UID"/><c:prop name="SUMMARY"/>'
            '<c:prop name="DESCRIPTION" novalue="yes"/></c:comp></c:comp></c:calendar-data></d:prop>'
            f'<d:href>{path}</d:href></c:calendar-multiget>')
    status, _, text = dav(office, "REPORT", "/dav/calendars/alice/calendar/", body, Depth="1")
    assert status == 207, text
    data = re.search(r"<c:calendar-data>(.*)</c:calendar-data>", text, re.S).group(1).replace("&#13;", "\r")
    assert data.replace("\r", "") == ("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:sel\nSUMMARY:Selected\n"
                                      "DESCRIPTION:\nEND:VEVENT\nEND:VCALENDAR\n"), data


def test_calendar_data_expand_and_limits(office):
    """Issue 19, defect 2: `expand` was ignored (the stored text came back with its RRULE).
    Each instance must come back on its own, in UTC, as recurring_ical_events (what the
    caldav library expands with) finds them from the stored text."""
    import icalendar
    import recurring_ical_events

    b = office
    dav(b, "PROPFIND", "/dav/calendars/alice/", Depth="1")
    assert dav(b, "PUT", "/dav/calendars/alice/calendar/weekly.ics", WEEKLY)[0] == 201
    start, end = "20260301T000000Z", "20260401T000000Z"

    def calendar_data(data):
        status, _, text = dav(b, "REPORT", "/dav/calendars/alice/calendar/",
                              EXPAND.format(data=data, start=start, end=end), Depth="1")
        assert status == 207, text
        found = re.findall(r"<c:calendar-data>(.*?)</c:calendar-data>", text, re.S)
        assert len(found) == 1, text
        return icalendar.Calendar.from_ical(found[0].replace("&#13;", "\r").replace("&amp;", "&")
                                            .replace("&lt;", "<").replace("&gt;", ">"))

    got = calendar_data(f'<c:expand start="{start}" end="{end}"/>')
    events = got.walk("VEVENT")
    assert not got.walk("VTIMEZONE")
    assert all("RRULE" not in e and "EXDATE" not in e for e in events)
    mine = sorted((e["RECURRENCE-ID"].dt, e["DTSTART"].dt, e["DTEND"].dt, str(e["SUMMARY"]))
                  for e in events)
    assert all(t.tzinfo is not None and t.utcoffset().total_seconds() == 0 for m in mine for t in m[:3])
    reference = recurring_ical_events.of(icalendar.Calendar.from_ical(WEEKLY)).between(
        datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc))
    theirs = sorted(((e.get("RECURRENCE-ID").dt if e.get("RECURRENCE-ID") else e["DTSTART"].dt)
                     .astimezone(timezone.utc), e["DTSTART"].dt.astimezone(timezone.utc),
                     e["DTEND"].dt.astimezone(timezone.utc), str(e["SUMMARY"])) for e in reference)
    assert mine == theirs and len(mine) == 4, (mine, theirs)

    # limit-recurrence-set: the master, and the moved instance only when it overlaps.
    got = calendar_data('<c:limit-recurrence-set start="20260320T000000Z" end="20260401T000000Z"/>')
    assert [str(e["SUMMARY"]) for e in got.walk("VEVENT")] == ["Weekly"]
    got = calendar_data('<c:limit-recurrence-set start="20260317T000000Z" end="20260318T000000Z"/>')
    assert sorted(str(e["SUMMARY"]) for e in got.walk("VEVENT")) == ["Weekly", "Weekly, moved"]
    # A range that is not one is refused, not ignored.
    status, _, _ = dav(b, "REPORT", "/dav/calendars/alice/calendar/",
                       EXPAND.format(data='<c:expand start="20260301"/>', start=start, end=end),
                       Depth="1")
    assert status == 400
