"""Rooms and equipment (issue 19): made with the CLI, booked by inviting them from a CalDAV
client (the caldav library) and from an ActiveSync phone (pyactivesync), each by its
policy (accept if free, a manager's approval, auto-accept for the groups allowed), booked
from elsewhere by iMIP mail only when allowed, and found by LDAP (ldap3), CalDAV principal
searches and ActiveSync's ResolveRecipients."""

import email.policy
import imaplib
import re
import smtplib
import ssl
from email.message import EmailMessage

import ldap3
import pytest
from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find, find_all, wtag

import eas_pages  # noqa: F401  (pyactivesync's missing code pages)
from conftest import tls_context
from test_activesync import client as eas_client
from test_activesync_calendar import cal, data, key_of, sync, val
from test_dav import attendee_line, client, dav, event, unfolded
from test_smtp_outbound import wait_for

PW = "long enough pw"
BASE = "dc=example,dc=com"
pytestmark = pytest.mark.filterwarnings("ignore:Unverified HTTPS request")


@pytest.fixture
def office(bureau_factory, test_mx, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    mx = test_mx()
    b = bureau_factory(f'[smtp]\nretry_first_secs = 1\nretry_max_secs = 2\n\n'
                       f'[smtp.routes]\n"partner.example" = "127.0.0.1:{mx.port}"\n')
    b.cli("domain", "add", "example.com")
    for uid in ("alice", "bob", "carol"):
        b.cli("user", "add", f"{uid}@example.com", "--password-stdin", input=PW + "\n")
    b.cli("group", "add", "sales", "--member", "bob")
    b.cli("resource", "add", "room1@example.com", "--display-name", "Blue room", "--capacity", "8",
          "--location", "2nd floor", "--external")
    b.cli("resource", "add", "room2@example.com", "--display-name", "Board room",
          "--policy", "manager", "--manager", "carol")
    b.cli("resource", "add", "beamer@example.com", "--kind", "equipment", "--display-name", "Projector",
          "--policy", "auto-accept", "--booker", "sales")
    return b, mx


def hrefs(text):
    """The hrefs of a multistatus's responses."""
    return sorted(re.findall(r"<d:response><d:href>([^<]*)</d:href>", text))


def invite(b, user, uid, start, end, *attendees):
    with client(b, user) as c:
        c.principal().calendar(cal_id="calendar").save_with_invites(
            event(uid, f"Meeting {uid}", start=start, end=end), [f"mailto:{a}" for a in attendees])


def answer(b, user, uid, attendee):
    status, _, text = dav(b, "GET", f"/dav/calendars/{user}/calendar/{uid}.ics", user=user)
    assert status == 200, text
    return re.search(r"PARTSTAT=([A-Z-]+)", attendee_line(text, attendee)).group(1)


def test_rooms_are_booked_by_their_policies(office):
    b, mx = office
    listed = b.cli("resource", "list").stdout
    assert "room1" in listed and "equipment" in listed
    assert "room1" not in b.cli("user", "list").stdout

    # Accept if free: the first booking is accepted, an overlapping one declined, the next
    # hour accepted; the organizers' copies carry the room's answers.
    invite(b, "alice", "a1", "20261210T100000Z", "20261210T110000Z", "room1@example.com")
    assert answer(b, "alice", "a1", "room1@example.com") == "ACCEPTED"
    invite(b, "bob", "b1", "20261210T103000Z", "20261210T113000Z", "room1@example.com")
    assert answer(b, "bob", "b1", "room1@example.com") == "DECLINED"
    invite(b, "bob", "b2", "20261210T110000Z", "20261210T120000Z", "room1@example.com")
    assert answer(b, "bob", "b2", "room1@example.com") == "ACCEPTED"
    # Moved onto Bob's booking, Alice's meeting loses the room (and frees its old hour).
    invite(b, "alice", "a1", "20261210T113000Z", "20261210T123000Z", "room1@example.com")
    assert answer(b, "alice", "a1", "room1@example.com") == "DECLINED"
    with client(b) as c:
        from datetime import datetime, timezone
        fb = c.principal().freebusy_request(datetime(2026, 12, 10, tzinfo=timezone.utc),
                                            datetime(2026, 12, 11, tzinfo=timezone.utc),
                                            ["mailto:room1@example.com", "mailto:beamer@example.com"])
        busy = re.findall(r"(?m)^FREEBUSY[^:]*:(\S+)", unfolded(fb["mailto:room1@example.com"].data))
        assert busy == ["20261210T110000Z/20261210T120000Z"], busy
        # The projector's time is for those who may book it.
        assert fb["errors"]["mailto:beamer@example.com"].startswith("3.8")

    # Auto-accept, for its bookers only: Bob is in sales, Alice is not.
    invite(b, "alice", "a2", "20261211T100000Z", "20261211T110000Z", "beamer@example.com")
    assert answer(b, "alice", "a2", "beamer@example.com") == "DECLINED"
    invite(b, "bob", "b3", "20261211T100000Z", "20261211T110000Z", "beamer@example.com")
    assert answer(b, "bob", "b3", "beamer@example.com") == "ACCEPTED"

    # A manager's approval: the booking waits, Carol is told by mail and answers in the
    # room's calendar, shared with her; Alice gets the room's reply.
    invite(b, "alice", "a3", "20261212T090000Z", "20261212T100000Z", "room2@example.com")
    assert answer(b, "alice", "a3", "room2@example.com") == "NEEDS-ACTION"

    def notice():
        with imaplib.IMAP4_SSL("127.0.0.1", b.port(993), ssl_context=tls_context()) as m:
            m.login("carol", PW)
            m.select("INBOX")
            _, ids = m.search(None, "SUBJECT", '"Booking request"')
            return ids[0].split()
    wait_for(notice, what="the manager's notice")
    path = "/dav/calendars/room2/calendar/a3.ics"
    assert dav(b, "GET", path, user="bob")[0] in (403, 404)
    status, _, copy = dav(b, "GET", path, user="carol")
    assert status == 200 and "PARTSTAT=NEEDS-ACTION" in attendee_line(copy, "room2@example.com")
    approved = unfolded(copy).replace(attendee_line(copy, "room2@example.com"),
                                      "ATTENDEE;PARTSTAT=ACCEPTED:mailto:room2@example.com")
    assert dav(b, "PUT", path, approved, user="carol", content_type="text/calendar")[0] == 204
    assert answer(b, "alice", "a3", "room2@example.com") == "ACCEPTED"

    # From elsewhere: mail to a resource closed to outside bookings is refused at RCPT; the
    # Blue room is open to them, and answers a partner's iMIP invitation by mail.
    with smtplib.SMTP("127.0.0.1", b.port(25), timeout=30) as s:
        s.ehlo("partner.example")
        s.mail("dave@partner.example")
        code, text = s.rcpt("beamer@example.com")
        assert code == 550 and b"5.7.1" in text
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "dave@partner.example", "room1@example.com", "Invitation"
    m.set_content("Please book.")
    m.add_attachment(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//partner//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
        "UID:ext-1@partner\r\nDTSTAMP:20261201T120000Z\r\nDTSTART:20261214T100000Z\r\n"
        "DTEND:20261214T110000Z\r\nSUMMARY:Partner visit\r\nORGANIZER:mailto:dave@partner.example\r\n"
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:room1@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        subtype="calendar", params={"method": "REQUEST"})
    with smtplib.SMTP("127.0.0.1", b.port(25), timeout=30) as s:
        s.sendmail("dave@partner.example", ["room1@example.com"], m.as_bytes(policy=email.policy.SMTP))
    [(sender, rcpts, reply)] = wait_for(lambda: mx.received, what="the room's reply")
    assert sender == "room1@example.com" and rcpts == ["dave@partner.example"]
    text = unfolded(reply.decode())
    assert "method=REPLY" in text and "PARTSTAT=ACCEPTED:mailto:room1@example.com" in text


def test_rooms_are_found_and_booked_from_ldap_dav_and_activesync(office):
    b, _ = office
    # CalDAV principal searches (RFC 3744 9.4, 9.5) with the calendar user type.
    search = ('<?xml version="1.0"?><d:principal-property-search xmlns:d="DAV:" '
              'xmlns:c="urn:ietf:params:xml:ns:caldav" test="{test}">{terms}'
              '<d:prop><d:displayname/><c:calendar-user-type/><c:calendar-user-address-set/></d:prop>'
              '</d:principal-property-search>')
    term = ('<d:property-search><d:prop>{prop}</d:prop><d:match>{what}</d:match></d:property-search>')
    body = search.format(test="allof", terms=term.format(prop="<c:calendar-user-type/>", what="ROOM"))
    status, _, text = dav(b, "REPORT", "/dav/principals/", body, Depth="0")
    assert status == 207, text
    assert sorted(hrefs(text)) == ["/dav/principals/room1/", "/dav/principals/room2/"]
    assert "<c:calendar-user-type>ROOM</c:calendar-user-type>" in text
    body = search.format(test="anyof", terms=term.format(prop="<d:displayname/>", what="blue")
                         + term.format(prop="<c:calendar-user-address-set/>", what="mailto:bob@"))
    status, _, text = dav(b, "REPORT", "/dav/principals/", body)
    assert sorted(hrefs(text)) == ["/dav/principals/bob/", "/dav/principals/room1/"]
    # Elsewhere only with apply-to-principal-collection-set.
    assert dav(b, "REPORT", "/dav/principals/alice/", body)[0] == 403
    body = body.replace("</d:principal-property-search>",
                        "<d:apply-to-principal-collection-set/></d:principal-property-search>")
    assert dav(b, "REPORT", "/dav/principals/alice/", body)[0] == 207
    status, _, text = dav(b, "REPORT", "/dav/principals/",
                          '<d:principal-search-property-set xmlns:d="DAV:"/>')
    assert status == 200 and "<d:displayname/>" in text and "calendar-user-type" in text
    status, _, text = dav(b, "PROPFIND", "/dav/principals/beamer/",
                          '<d:propfind xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav"><d:prop>'
                          '<c:calendar-user-type/><d:displayname/><c:calendar-home-set/></d:prop></d:propfind>',
                          Depth="0")
    assert status == 207 and "<c:calendar-user-type>RESOURCE</c:calendar-user-type>" in text
    assert "Projector" in text and "/dav/calendars/beamer/" not in text

    # LDAP: rooms under ou=resources, as address books list people.
    server = ldap3.Server("127.0.0.1", port=b.port(636), use_ssl=True, tls=ldap3.Tls(validate=ssl.CERT_NONE))
    with ldap3.Connection(server, "alice@example.com", PW, auto_bind=True) as c:
        c.search(BASE, "(employeeType=room)", attributes=["mail", "cn", "roomNumber", "description"])
        rooms = {e.entry_dn: e for e in c.entries}
        assert sorted(rooms) == [f"uid=room1,ou=resources,{BASE}", f"uid=room2,ou=resources,{BASE}"]
        blue = rooms[f"uid=room1,ou=resources,{BASE}"]
        assert (blue.mail.value, blue.roomNumber.value, blue.description.value) == (
            "room1@example.com", "2nd floor", "room for 8")
    # No one signs in as a room: not with a user's password, nor with the one the source
    # once hashed for unknown logins, which a login without a password of its own (a room)
    # was checked against and so signed in with, over IMAP or any other protocol.
    for password in (PW, "bureau dummy password"):
        with pytest.raises(ldap3.core.exceptions.LDAPBindError):
            ldap3.Connection(server, "room1@example.com", password, auto_bind=True)
        with imaplib.IMAP4_SSL("127.0.0.1", b.port(993), ssl_context=tls_context()) as m:
            with pytest.raises(imaplib.IMAP4.error):
                m.login("room1@example.com", password)

    # ActiveSync: ResolveRecipients finds the room; a meeting made on the phone books it.
    with eas_client(b, device="RoomPhone1") as c:
        c.provision()
        w = WBXMLWriter()
        w.tag("ResolveRecipients", "ResolveRecipients", children=[
            wtag("ResolveRecipients", "To", text="room1@example.com"),
            wtag("ResolveRecipients", "To", text="Board"),
            wtag("ResolveRecipients", "To", text="beamer@example.com"),
            wtag("ResolveRecipients", "Options", children=[
                wtag("ResolveRecipients", "Availability", children=[
                    wtag("ResolveRecipients", "StartTime", text="2026-12-10T10:00:00.000Z"),
                    wtag("ResolveRecipients", "EndTime", text="2026-12-10T11:00:00.000Z")])])])
        root = find(WBXMLReader(c._post("ResolveRecipients", w.render())).parse(),
                    "ResolveRecipients.ResolveRecipients")[2]
        room1, board, beamer = [r for _, _, r in find_all(root, "ResolveRecipients.Response")]
        # The projector's time is for its bookers (sales); Alice is not one.
        avail = find(find(beamer, "ResolveRecipients.Recipient")[2], "ResolveRecipients.Availability")[2]
        assert val(avail, "ResolveRecipients.Status") == "163"
        avail = find(find(room1, "ResolveRecipients.Recipient")[2], "ResolveRecipients.Availability")[2]
        assert val(avail, "ResolveRecipients.Status") == "1"
        for resp, name, addr in ((room1, "Blue room", "room1@example.com"),
                                 (board, "Board room", "room2@example.com")):
            assert val(resp, "ResolveRecipients.Status") == "1"
            rec = find(resp, "ResolveRecipients.Recipient")[2]
            assert (val(rec, "ResolveRecipients.DisplayName"),
                    val(rec, "ResolveRecipients.EmailAddress")) == (name, addr)

        folder = next(f.id for f in c.list_folders() if int(f.type) == 8)
        key = key_of(sync(c, folder, "0"))
        made = sync(c, folder, key, [wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="r-1"),
            data(cal("StartTime", "20261215T090000Z"), cal("EndTime", "20261215T100000Z"),
                 cal("Subject", "Phone booking"), cal("Attendees", children=[cal("Attendee", children=[
                     cal("Email", "room1@example.com"), cal("Name", "Blue room"), cal("AttendeeType", "3")])]))])])
        assert val(find(made, "AirSync.Responses")[2], "AirSync.Status") == "1"
    with client(b) as c:
        [booked] = [e for e in c.principal().calendar(cal_id="calendar").events() if "Phone booking" in e.data]
        assert "PARTSTAT=ACCEPTED" in attendee_line(booked.data, "room1@example.com")
