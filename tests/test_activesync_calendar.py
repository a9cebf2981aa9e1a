"""Calendar, tasks and notes over ActiveSync with a real EAS 16.1 client (pyactivesync), the
other side being CalDAV with the caldav library: what either makes, the other reads; an
event edited on the phone keeps what only CalDAV clients set; recurrence with exceptions;
all-day events in the phone's time zone; invitations from the phone reach attendees through
the same scheduling as CalDAV's."""

import base64
import struct
from collections import Counter

import caldav
import pytest

from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find, find_all, text_of, wtag

import eas_pages  # noqa: F401  (pyactivesync's missing code pages)
from test_activesync import PW, client, mx_wait, office_with_mx

def tzi(bias, std=None, dst=None, dst_bias=-60, name=""):
    """A Windows TIME_ZONE_INFORMATION, as phones send it: rules are (month, weekday, week, hour)."""
    def rule(r):
        return struct.pack("<8H", 0, *r, 0, 0, 0) if r else b"\0" * 16
    name = name.encode("utf-16-le").ljust(64, b"\0")
    return base64.b64encode(struct.pack("<i", bias) + name + rule(std) + struct.pack("<i", 0)
                            + name + rule(dst) + struct.pack("<i", dst_bias if dst else 0)).decode()


# As Outlook names the zone of Paris, Brussels and Madrid.
PARIS = tzi(-60, std=(10, 0, 5, 3), dst=(3, 0, 5, 2), name="Romance Standard Time")
TOKYO = tzi(-540)

STANDUP = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example Corp.//CalDAV Client//EN
BEGIN:VTIMEZONE
TZID:Europe/Paris
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:standup-1@example
DTSTAMP:20261101T080000Z
DTSTART;TZID=Europe/Paris:20261207T091500
DTEND;TZID=Europe/Paris:20261207T093000
RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=20
EXDATE;TZID=Europe/Paris:20261209T091500
SUMMARY:Stand-up
LOCATION:Room 2
X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC
COLOR:turquoise
CONFERENCE;VALUE=URI;FEATURE=VIDEO;LABEL=Join:https://meet.example/standup
ATTACH;FMTTYPE=application/pdf:https://files.example/agenda.pdf
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Reminder
TRIGGER:-PT10M
END:VALARM
BEGIN:VALARM
ACTION:EMAIL
SUMMARY:Stand-up soon
DESCRIPTION:Stand-up soon
ATTENDEE:mailto:alice@example.com
TRIGGER:-P1D
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:standup-1@example
DTSTAMP:20261101T080000Z
RECURRENCE-ID;TZID=Europe/Paris:20261214T091500
DTSTART;TZID=Europe/Paris:20261214T100000
DTEND;TZID=Europe/Paris:20261214T101500
SUMMARY:Stand-up (late)
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")

CALDAV_ONLY = [
    "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
    "COLOR:turquoise",
    "CONFERENCE;FEATURE=VIDEO;LABEL=Join;VALUE=URI:https://meet.example/standup",
    "ATTACH;FMTTYPE=application/pdf:https://files.example/agenda.pdf",
    "ACTION:EMAIL",
    "TRIGGER:-P1D",
    "PRODID:-//Example Corp.//CalDAV Client//EN",
]

TASK = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VTODO
UID:task-1@example
DTSTAMP:20261101T080000Z
DUE;VALUE=DATE:20261215
RRULE:FREQ=MONTHLY;BYMONTHDAY=15
SUMMARY:File the VAT return
PRIORITY:1
X-OTHER-CLIENT:keep me
END:VTODO
END:VCALENDAR
""".replace("\n", "\r\n")


@pytest.fixture
def office(bureau, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    bureau.cli("domain", "add", "example.com")
    for u in ("alice", "bob"):
        bureau.cli("user", "add", f"{u}@example.com", "--password-stdin", input=PW + "\n")
    return bureau


def unfolded(text):
    return text.replace("\r\n", "\n").replace("\n ", "")


def caldav_principal(b, user="alice"):
    return caldav.DAVClient(url=f"https://127.0.0.1:{b.port(443)}/.well-known/caldav",
                            username=user, password=PW, ssl_verify_cert=False).principal()


def collection_named(principal, name):
    return next(c for c in principal.calendars() if c.get_display_name() == name)


def sync(c, folder, key, commands=None, supported=None, filter_type=None):
    """One Sync of one folder; gives the parsed answer's Collection children."""
    children = [wtag("AirSync", "SyncKey", text=key), wtag("AirSync", "CollectionId", text=folder)]
    if filter_type:
        children.append(wtag("AirSync", "Options", children=[wtag("AirSync", "FilterType", text=filter_type)]))
    if supported:
        children.append(wtag("AirSync", "Supported", children=[wtag(p, t) for p, t in supported]))
    if commands is not None:
        children.append(wtag("AirSync", "GetChanges", text="0"))
        children.append(wtag("AirSync", "Commands", children=commands))
    else:
        children.append(wtag("AirSync", "WindowSize", text="50"))
    w = WBXMLWriter()
    w.tag("AirSync", "Sync", children=[wtag("AirSync", "Collections", children=[
        wtag("AirSync", "Collection", children=children)])])
    nodes = WBXMLReader(c._post("Sync", w.render())).parse()
    coll = find(nodes, "AirSync.Collection")
    assert coll is not None, nodes
    return coll[2]


def key_of(coll):
    assert text_of(find(coll, "AirSync.Status")) == "1", coll
    return text_of(find(coll, "AirSync.SyncKey"))


def items(coll, verb="AirSync.Add"):
    """Added (or changed) items: ServerId → ApplicationData children."""
    return {text_of(find(ch, "AirSync.ServerId")): find(ch, "AirSync.ApplicationData")[2]
            for _, _, ch in find_all(coll, verb)}


def val(nodes, tag):
    return text_of(find(nodes, tag))


def data(*fields):
    return wtag("AirSync", "ApplicationData", children=list(fields))


def cal(tag, text=None, children=None):
    return wtag("Calendar", tag, text=text, children=children)


def test_calendar_both_ways_keeps_what_caldav_clients_set(office):
    alice = caldav_principal(office)
    calendar = collection_named(alice, "Calendar")
    calendar.save_event(STANDUP)
    # As stored (the caldav library writes the event out its own way).
    stored = unfolded(calendar.event_by_uid("standup-1@example").data).splitlines()
    for line in CALDAV_ONLY:
        assert line in stored, (line, stored)

    with client(office, device="CalPhone1") as c:
        folders = {int(f.type): f.id for f in c.list_folders()}
        folder = folders[8]
        key = key_of(sync(c, folder, "0"))
        first = sync(c, folder, key)
        key = key_of(first)
        [(sid, ev)] = items(first).items()
        # The series: Paris 09:15 in December is 08:15 UTC; Monday and Wednesday weekly.
        assert val(ev, "Calendar.Subject") == "Stand-up"
        assert val(ev, "Calendar.StartTime") == "20261207T081500Z"
        assert val(ev, "Calendar.EndTime") == "20261207T083000Z"
        assert val(ev, "Calendar.Reminder") == "10"
        assert val(find(ev, "AirSyncBase.Location")[2], "AirSyncBase.DisplayName") == "Room 2"
        rec = find(ev, "Calendar.Recurrence")[2]
        assert (val(rec, "Calendar.Type"), val(rec, "Calendar.DayOfWeek"), val(rec, "Calendar.Occurrences")) == ("1", "10", "20")
        exceptions = [e for _, _, e in find_all(find(ev, "Calendar.Exceptions")[2], "Calendar.Exception")]
        assert val(exceptions[0], "Calendar.Deleted") == "1"
        assert val(exceptions[0], "AirSyncBase.InstanceId") == "20261209T081500Z"
        assert val(exceptions[1], "AirSyncBase.InstanceId") == "20261214T081500Z"
        assert val(exceptions[1], "Calendar.Subject") == "Stand-up (late)"
        assert val(exceptions[1], "Calendar.StartTime") == "20261214T090000Z"
        # Its time zone, as Windows describes Paris.
        raw = base64.b64decode(val(ev, "Calendar.Timezone"))
        assert struct.unpack("<i", raw[:4])[0] == -60 and struct.unpack("<H", raw[70:72])[0] == 10

        # Edited on the phone (16.1 sends what changed): the title and the reminder.
        edited = sync(c, folder, key, [wtag("AirSync", "Change", children=[
            wtag("AirSync", "ServerId", text=sid),
            data(cal("Subject", "Stand-up (all hands)"), cal("Reminder", "5"))])])
        key = key_of(edited)
        text = calendar.event_by_uid("standup-1@example").data
        assert "SUMMARY:Stand-up (all hands)" in text and "TRIGGER:-PT5M" in text
        # Every line the phone did not change is there as it was: only the title, the
        # reminder's trigger and the stamps differ.
        now = Counter(unfolded(text).splitlines())
        missing = Counter(stored) - now
        assert sorted(missing) == sorted(["SUMMARY:Stand-up", "TRIGGER:-PT10M", "DTSTAMP:20261101T080000Z"]), missing
        # Not echoed to the phone that made it.
        assert items(sync(c, folder, key)) == {}
        key = str(int(key) + 1)

        # One occurrence moved on the phone (InstanceId), another deleted.
        moved = sync(c, folder, key, [
            wtag("AirSync", "Change", children=[
                wtag("AirSync", "ServerId", text=sid),
                wtag("AirSyncBase", "InstanceId", text="20261216T081500Z"),
                data(cal("StartTime", "20261216T090000Z"), cal("EndTime", "20261216T091500Z"))]),
            wtag("AirSync", "Delete", children=[
                wtag("AirSync", "ServerId", text=sid),
                wtag("AirSyncBase", "InstanceId", text="20261221T081500Z")]),
        ])
        key = key_of(moved)
        text = calendar.event_by_uid("standup-1@example").data
        assert "RECURRENCE-ID;TZID=Europe/Paris:20261216T091500" in text, text
        assert "DTSTART;TZID=Europe/Paris:20261216T100000" in text
        assert "EXDATE;TZID=Europe/Paris:20261221T091500" in text
        for line in CALDAV_ONLY + ["LOCATION:Room 2", "SUMMARY:Stand-up (late)"]:
            assert line in unfolded(text).splitlines(), (line, text)
        # What CalDAV expands agrees: the 14th and 16th at 10:00, no 9th, no 21st.
        starts = sorted(str(e.icalendar_component["DTSTART"].dt) for e in calendar.search(
            start=__import__("datetime").datetime(2026, 12, 7), end=__import__("datetime").datetime(2026, 12, 24),
            event=True, expand=True))
        assert [s[:16] for s in starts] == ["2026-12-07 09:15", "2026-12-14 10:00", "2026-12-16 10:00", "2026-12-23 09:15"], starts

        # A bad change is refused with status 6 and changes nothing.
        before = calendar.event_by_uid("standup-1@example").data
        bad = sync(c, folder, key, [wtag("AirSync", "Change", children=[
            wtag("AirSync", "ServerId", text=sid),
            data(cal("Recurrence", children=[cal("Type", "9")]))])])
        assert val(find(bad, "AirSync.Responses")[2], "AirSync.Status") == "6"
        key = key_of(bad)
        assert calendar.event_by_uid("standup-1@example").data == before

        # Changed over CalDAV: a Change for the phone.
        e = calendar.event_by_uid("standup-1@example")
        e.data = e.data.replace("LOCATION:Room 2", "LOCATION:Room 3")
        e.save()
        changed = sync(c, folder, key)
        key = key_of(changed)
        [(csid, cev)] = items(changed, "AirSync.Change").items()
        assert csid == sid and val(find(cev, "AirSyncBase.Location")[2], "AirSyncBase.DisplayName") == "Room 3"

        # Deleted on the phone: gone from CalDAV.
        key = key_of(sync(c, folder, key, [wtag("AirSync", "Delete", children=[
            wtag("AirSync", "ServerId", text=sid)])]))
        assert calendar.events() == []


def test_all_day_events_and_invitations_from_the_phone(office):
    alice = caldav_principal(office)
    calendar = collection_named(alice, "Calendar")
    with client(office, device="CalPhone2") as c:
        folder = next(f.id for f in c.list_folders() if int(f.type) == 8)
        key = key_of(sync(c, folder, "0"))
        # An all-day event made in Tokyo: midnight there is 15:00 UTC the day before.
        made = sync(c, folder, key, [wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="c-1"),
            data(cal("Timezone", TOKYO), cal("AllDayEvent", "1"), cal("StartTime", "20261224T150000Z"),
                 cal("EndTime", "20261225T150000Z"), cal("Subject", "Office closed"),
                 cal("BusyStatus", "3"))])])
        key = key_of(made)
        resp = find(made, "AirSync.Responses")[2]
        assert val(resp, "AirSync.Status") == "1"
        [closed] = [e for e in calendar.events() if "Office closed" in e.data]
        assert "DTSTART;VALUE=DATE:20261225" in closed.data and "DTEND;VALUE=DATE:20261226" in closed.data
        assert "X-MICROSOFT-CDO-BUSYSTATUS:OOF" in closed.data
        # An all-day event made over CalDAV reaches this phone as midnight to midnight in Tokyo.
        calendar.save_event("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
                            "UID:newyear@example\r\nDTSTAMP:20261101T080000Z\r\nDTSTART;VALUE=DATE:20270101\r\n"
                            "DTEND;VALUE=DATE:20270102\r\nSUMMARY:New Year\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        got = sync(c, folder, key)
        key = key_of(got)
        [ny] = items(got).values()
        assert val(ny, "Calendar.AllDayEvent") == "1"
        assert (val(ny, "Calendar.StartTime"), val(ny, "Calendar.EndTime")) == ("20261231T150000Z", "20270101T150000Z")

        # A meeting made on the phone (Paris time) with Bob invited: Bob's calendar has it.
        invite = sync(c, folder, key, [wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="c-2"),
            data(cal("Timezone", PARIS), cal("StartTime", "20261210T130000Z"), cal("EndTime", "20261210T140000Z"),
                 cal("Subject", "Planning"), cal("Attendees", children=[cal("Attendee", children=[
                     cal("Email", "bob@example.com"), cal("Name", "Bob"), cal("AttendeeType", "1")])]))])])
        key = key_of(invite)
        [planning] = [e for e in calendar.events() if "Planning" in e.data]
        assert "DTSTART;TZID=Europe/Paris:20261210T140000" in planning.data, planning.data
        assert "ORGANIZER:mailto:alice@example.com" in planning.data and "BEGIN:VTIMEZONE" in planning.data
        bob = caldav_principal(office, "bob")
        [copy] = [e for e in collection_named(bob, "Calendar").events() if "Planning" in e.data]
        assert "PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.com" in unfolded(copy.data)
        assert "SEQUENCE" not in copy.data
        # Bob accepts over CalDAV: Alice's phone sees his answer.
        copy.data = copy.data.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")
        copy.save()
        back = sync(c, folder, key)
        key = key_of(back)
        [(_, pl)] = items(back, "AirSync.Change").items()
        att = find(find(pl, "Calendar.Attendees")[2], "Calendar.Attendee")[2]
        assert (val(att, "Calendar.Email"), val(att, "Calendar.AttendeeStatus")) == ("bob@example.com", "3")
        assert val(pl, "Calendar.MeetingStatus") == "1"


def test_tasks_and_notes_both_ways(office):
    alice = caldav_principal(office)
    tasks = collection_named(alice, "Tasks")
    notes = collection_named(alice, "Notes")
    tasks.save_todo(TASK)
    with client(office, device="TaskPhone") as c:
        folders = {int(f.type): f.id for f in c.list_folders()}
        tkey = key_of(sync(c, folders[7], "0"))
        got = sync(c, folders[7], tkey)
        tkey = key_of(got)
        [(sid, t)] = items(got).items()
        assert val(t, "Tasks.Subject") == "File the VAT return"
        assert val(t, "Tasks.Importance") == "2" and val(t, "Tasks.Complete") == "0"
        assert val(t, "Tasks.UtcDueDate") == "2026-12-15T00:00:00.000Z"
        # Every month on the 15th.
        rec = find(t, "Tasks.Recurrence")[2]
        assert (val(rec, "Tasks.Type"), val(rec, "Tasks.DayOfMonth")) == ("2", "15")
        # Done on the phone: completed in CalDAV, the other client's property kept.
        tkey = key_of(sync(c, folders[7], tkey, [wtag("AirSync", "Change", children=[
            wtag("AirSync", "ServerId", text=sid),
            data(wtag("Tasks", "Complete", text="1"), wtag("Tasks", "DateCompleted", text="2026-12-02T10:00:00.000Z"))])]))
        text = tasks.todos(include_completed=True)[0].data
        assert "STATUS:COMPLETED" in text and "COMPLETED:20261202T100000Z" in text
        assert "X-OTHER-CLIENT:keep me" in text and "DUE;VALUE=DATE:20261215" in text
        # A task made on the phone.
        made = sync(c, folders[7], tkey, [wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="t-2"),
            data(wtag("Tasks", "Subject", text="Order toner"),
                 wtag("Tasks", "UtcDueDate", text="2026-12-20T00:00:00.000Z"),
                 wtag("Tasks", "DueDate", text="2026-12-20T00:00:00.000Z"),
                 wtag("Tasks", "Importance", text="1"), wtag("Tasks", "Complete", text="0"))])])
        assert val(find(made, "AirSync.Responses")[2], "AirSync.Status") == "1"
        [toner] = [t for t in tasks.todos() if "Order toner" in t.data]
        assert "DUE;VALUE=DATE:20261220" in toner.data and "STATUS:NEEDS-ACTION" in toner.data

        # Notes: made on the phone, read over CalDAV; changed over CalDAV, read on the phone.
        nkey = key_of(sync(c, folders[10], "0"))
        made = sync(c, folders[10], nkey, [wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="n-1"),
            data(wtag("Notes", "Subject", text="Wi-Fi"),
                 wtag("AirSyncBase", "Body", children=[wtag("AirSyncBase", "Type", text="1"),
                                                       wtag("AirSyncBase", "Data", text="Guest network: office-guest")]),
                 wtag("Notes", "MessageClass", text="IPM.StickyNote"))])])
        nkey = key_of(made)
        [note] = notes.journals()
        assert "SUMMARY:Wi-Fi" in note.data and "DESCRIPTION:Guest network: office-guest" in note.data
        note.data = note.data.replace("office-guest", "office-visitors")
        note.save()
        # The phone changes it too before hearing of that: the server's version wins.
        nsid = text_of(find(find(made, "AirSync.Responses")[2], "AirSync.ServerId"))
        lost = sync(c, folders[10], nkey, [wtag("AirSync", "Change", children=[
            wtag("AirSync", "ServerId", text=nsid), data(wtag("Notes", "Subject", text="Phone title"))])])
        nkey = key_of(lost)
        assert "SUMMARY:Wi-Fi" in notes.journals()[0].data
        got = sync(c, folders[10], nkey)
        [n] = items(got, "AirSync.Change").values()
        assert val(n, "Notes.Subject") == "Wi-Fi"
        assert val(find(n, "AirSyncBase.Body")[2], "AirSyncBase.Data") == "Guest network: office-visitors"
        assert val(n, "Notes.MessageClass") == "IPM.StickyNote"


def meeting_response(c, folder, request_id, answer):
    w = WBXMLWriter()
    w.tag("MeetingResponse", "MeetingResponse", children=[wtag("MeetingResponse", "Request", children=[
        wtag("MeetingResponse", "UserResponse", text=answer),
        wtag("MeetingResponse", "CollectionId", text=folder),
        wtag("MeetingResponse", "RequestId", text=request_id)])])
    result = find(WBXMLReader(c._post("MeetingResponse", w.render())).parse(), "MeetingResponse.Result")[2]
    return val(result, "MeetingResponse.Status"), val(result, "MeetingResponse.CalendarId")


def invitation(uid, organizer, summary, day):
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261101T080000Z\r\nDTSTART:202612{day}T130000Z\r\nDTEND:202612{day}T140000Z\r\n"
            f"SUMMARY:{summary}\r\nORGANIZER:mailto:{organizer}\r\n"
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{organizer}\r\n"
            "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@example.com\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def test_meeting_responses_reach_the_organizer(bureau_factory, test_mx, monkeypatch):
    import smtplib
    from email.message import EmailMessage

    office, mx = office_with_mx(bureau_factory, test_mx, monkeypatch)
    alice_cal = collection_named(caldav_principal(office), "Calendar")
    alice_cal.save_event(invitation("plan@example", "alice@example.com", "Planning", "10"))
    alice_cal.save_event(invitation("lunch@example", "alice@example.com", "Lunch", "11"))
    bob_cal = collection_named(caldav_principal(office, "bob"), "Calendar")

    with client(office, username="bob@example.com", device="BobPhone") as c:
        folders = {int(f.type): f.id for f in c.list_folders()}
        key = key_of(sync(c, folders[8], "0"))
        got = sync(c, folders[8], key)
        key = key_of(got)
        invites = {val(d, "Calendar.Subject"): (sid, d) for sid, d in items(got).items()}
        plan_sid, plan = invites["Planning"]
        # Bob's copy, as the phone sees an invitation: a meeting he attends, not answered.
        assert (val(plan, "Calendar.MeetingStatus"), val(plan, "Calendar.ResponseType")) == ("3", "5")
        assert val(plan, "Calendar.ResponseRequested") == "1"

        # Accepted on the phone: Alice's copy shows it.
        assert meeting_response(c, folders[8], plan_sid, "1") == ("1", plan_sid)
        text = unfolded(alice_cal.event_by_uid("plan@example").data)
        assert "ATTENDEE;PARTSTAT=ACCEPTED;RSVP=TRUE:mailto:bob@example.com" in text, text
        again = sync(c, folders[8], key)
        key = key_of(again)
        [(_, mine)] = items(again, "AirSync.Change").items()
        assert val(mine, "Calendar.ResponseType") == "3"
        # Declined: gone from Bob's calendar, and Alice's copy says so.
        lunch_sid, _ = invites["Lunch"]
        assert meeting_response(c, folders[8], lunch_sid, "3") == ("1", None)
        assert [e for e in bob_cal.events() if "Lunch" in e.data] == []
        assert "PARTSTAT=DECLINED" in unfolded(alice_cal.event_by_uid("lunch@example").data)
        # Nonsense: status 2, nothing changes.
        assert meeting_response(c, folders[8], lunch_sid, "1")[0] == "2"
        assert meeting_response(c, folders[8], plan_sid, "7")[0] == "2"

    # An invitation by mail from elsewhere: accepting it puts the event in the calendar and
    # sends the organizer a REPLY by mail.
    msg = EmailMessage()
    msg["From"] = "carol@remote.example"
    msg["To"] = "bob@example.com"
    msg["Subject"] = "Invitation: Supplier visit"
    msg.set_content("You are invited.\n")
    msg.add_alternative(invitation("visit@remote.example", "carol@remote.example", "Supplier visit", "15")
                        .replace("VERSION:2.0\r\n", "VERSION:2.0\r\nMETHOD:REQUEST\r\n"),
                        subtype="calendar", params={"method": "REQUEST"})
    with smtplib.SMTP("127.0.0.1", office.port(25), timeout=30) as s:
        s.send_message(msg)
    with client(office, username="bob@example.com", device="BobPhone") as c:
        inbox = next(f.id for f in c.list_folders() if int(f.type) == 2)
        ikey = c.sync_folder(inbox).sync_key
        [mail] = c.sync_folder(inbox, ikey).added
        # The phone sees an invitation (its accept and decline buttons), not a plain mail.
        assert mail.fields["Email.MessageClass"] == "IPM.Schedule.Meeting.Request"
        status, cal_id = meeting_response(c, inbox, mail.server_id, "2")
        assert status == "1" and cal_id
        [visit] = [e for e in bob_cal.events() if "Supplier visit" in e.data]
        # The answered invitation is in Deleted Items now.
        assert office.messages("bob") == [] and len(office.messages("bob", "Trash")) == 1
        assert "PARTSTAT=TENTATIVE" in unfolded(visit.data) and "METHOD" not in visit.data
    mx_wait(mx)
    [(_, rcpts, data)] = mx.received
    assert rcpts == ["carol@remote.example"]
    assert b"METHOD:REPLY" in data and b"TENTATIVE" in data


def test_resolve_recipients_with_free_busy(office):
    calendar = collection_named(caldav_principal(office), "Calendar")
    calendar.save_event(invitation("busy@example", "alice@example.com", "Budget", "10")
                        .replace("T130000Z", "T090000Z").replace("T140000Z", "T100000Z"))
    calendar.save_event("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
                        "UID:maybe@example\r\nDTSTAMP:20261101T080000Z\r\nDTSTART:20261210T103000Z\r\n"
                        "DTEND:20261210T110000Z\r\nSUMMARY:Maybe\r\nSTATUS:TENTATIVE\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    with client(office, username="bob@example.com", device="BobPhone2") as c:
        c.provision()
        w = WBXMLWriter()
        w.tag("ResolveRecipients", "ResolveRecipients", children=[
            wtag("ResolveRecipients", "To", text="alice@example.com"),
            wtag("ResolveRecipients", "To", text="nobody@elsewhere.example"),
            wtag("ResolveRecipients", "Options", children=[
                wtag("ResolveRecipients", "CertificateRetrieval", text="2"),
                wtag("ResolveRecipients", "Availability", children=[
                    wtag("ResolveRecipients", "StartTime", text="2026-12-10T08:00:00.000Z"),
                    wtag("ResolveRecipients", "EndTime", text="2026-12-10T12:00:00.000Z")])])])
        nodes = WBXMLReader(c._post("ResolveRecipients", w.render())).parse()
        root = find(nodes, "ResolveRecipients.ResolveRecipients")[2]
        assert val(root, "ResolveRecipients.Status") == "1"
        alice, nobody = [r for _, _, r in find_all(root, "ResolveRecipients.Response")]
        assert val(alice, "ResolveRecipients.Status") == "1"
        rec = find(alice, "ResolveRecipients.Recipient")[2]
        assert val(rec, "ResolveRecipients.EmailAddress") == "alice@example.com"
        avail = find(rec, "ResolveRecipients.Availability")[2]
        # Half hours from 08:00: free, free, busy, busy, free, tentative, free, free.
        assert val(avail, "ResolveRecipients.MergedFreeBusy") == "00220100"
        assert val(find(rec, "ResolveRecipients.Certificates")[2], "ResolveRecipients.Status") == "7"
        assert val(nobody, "ResolveRecipients.Status") == "4"
        assert find(nobody, "ResolveRecipients.Recipient") is None
        # By name, with pyactivesync's own call.
        [r] = c.resolve_recipients("ali")
        assert r.email_address == "alice@example.com" and r.type == "1"


def test_ghosted_contact_fields_are_kept(office):
    from test_activesync import CAROL
    from test_dav import dav

    book = "/dav/addressbooks/alice/contacts"
    assert dav(office, "PUT", f"{book}/carol.vcf", CAROL, content_type="text/vcard")[0] == 201
    with client(office, device="Ghost1") as c:
        folder = next(f.id for f in c.list_folders() if int(f.type) == 9)
        # This phone knows names and e-mail only: everything else is ghosted.
        key = key_of(sync(c, folder, "0", supported=[("Contacts", "FirstName"), ("Contacts", "LastName"),
                                                     ("Contacts", "Email1Address")]))
        got = sync(c, folder, key)
        key = key_of(got)
        [sid] = items(got)
        key = key_of(sync(c, folder, key, [wtag("AirSync", "Change", children=[
            wtag("AirSync", "ServerId", text=sid),
            data(wtag("Contacts", "FirstName", text="Carole"), wtag("Contacts", "LastName", text="Martin"))])]))
        card = dav(office, "GET", f"{book}/carol.vcf")[2]
        assert "N:Martin;Carole;;;" in card
        # Not supported, so not removed though the change left them out.
        assert "+33 6 00 00 00 00" in card and "Acme" in card and "Paris" in card
        # Supported and left out: removed.
        assert "carol@acme.example" not in card


def test_calendar_filter_and_stale_keys(office):
    calendar = collection_named(caldav_principal(office), "Calendar")
    old = invitation("old@example", "alice@example.com", "Old", "01").replace("202612", "202001")
    calendar.save_event(old)
    calendar.save_event(invitation("soon@example", "alice@example.com", "Soon", "20").replace("202612", "209912"))
    # A weekly series that began long ago and never ends is never "over".
    calendar.save_event(invitation("weekly@example", "alice@example.com", "Weekly", "01")
                        .replace("202612", "201801").replace("SUMMARY:", "RRULE:FREQ=WEEKLY\r\nSUMMARY:"))
    with client(office, device="Filter1") as c:
        folder = next(f.id for f in c.list_folders() if int(f.type) == 8)
        key = key_of(sync(c, folder, "0"))
        # FilterType 5: events over for more than a month are left out.
        got = sync(c, folder, key, filter_type="5")
        key = key_of(got)
        assert sorted(val(d, "Calendar.Subject") for d in items(got).values()) == ["Soon", "Weekly"]
        # The last key again is a retry: the same answer. A key from before that is stale:
        # status 3, and the change it carries is not made.
        [sid] = [s for s, d in items(got).items() if val(d, "Calendar.Subject") == "Soon"]
        assert items(sync(c, folder, "1")) == items(got)
        key = key_of(sync(c, folder, key))
        stale = sync(c, folder, "1", [wtag("AirSync", "Change", children=[
            wtag("AirSync", "ServerId", text=sid), data(cal("Subject", "Hijacked"))])])
        assert val(stale, "AirSync.Status") == "3"
        assert "Hijacked" not in calendar.event_by_uid("soon@example").data
        # Garbage for a key: 3 as well.
        assert val(sync(c, folder, "banana"), "AirSync.Status") == "3"
