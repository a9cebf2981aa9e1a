"""SyncML 1.2 hierarchical sync (folders) from hand-made request documents: no client
here syncs folders (SyncEvolution syncs one flat datastore), so the messages are written
from OMA DS Protocol 1.2 and its Folder Object, as a device that says
SupportHierarchicalSync in its DevInf sends them. What the device does is checked over
IMAP and CalDAV, and the other way round."""

import html
import re

import caldav

from test_syncml import PW
from test_syncml_mail import EMAIL, Session, add, email, imap, msg, office, statuses  # noqa: F401

FOLDER = "application/vnd.omads-folder+xml"


def devinf(hierarchical=True):
    """A device's DevInf 1.2 whose datastore ./m syncs as folders."""
    support = "<SupportHierarchicalSync/>" if hierarchical else ""
    return ("<Put><CmdID>5</CmdID><Meta><Type xmlns='syncml:metinf'>application/vnd.syncml-devinf+xml</Type>"
            "</Meta><Item><Source><LocURI>./devinf12</LocURI></Source><Data><DevInf xmlns='syncml:devinf'>"
            "<VerDTD>1.2</VerDTD><Man>Test</Man><Mod>Phone</Mod><DevID>dev-mail</DevID><DevTyp>phone</DevTyp>"
            f"<DataStore><SourceRef>./m</SourceRef><Rx-Pref><CTType>{EMAIL}</CTType><VerCT>1.2</VerCT>"
            f"</Rx-Pref><Tx-Pref><CTType>{EMAIL}</CTType><VerCT>1.2</VerCT></Tx-Pref>{support}<SyncCap>"
            "<SyncType>1</SyncType><SyncType>2</SyncType></SyncCap></DataStore></DevInf></Data></Item></Put>")


def folder(luid, name, verb="Add", parent=""):
    """A device's folder command; `parent` a SourceParent (its id) or TargetParent element."""
    data = html.escape(f"<Folder><name>{html.escape(name)}</name></Folder>")
    return (f"<{verb}><CmdID>{luid}</CmdID><Meta><Type xmlns='syncml:metinf'>{FOLDER}</Type></Meta><Item>"
            f"<Source><LocURI>{luid}</LocURI></Source>{parent}<Data>{data}</Data></Item></{verb}>")


def in_folder(luid, data, parent, ctype=EMAIL):
    """A device's Add of an item in its folder `parent`."""
    return (f"<Add><CmdID>{luid}</CmdID><Meta><Type xmlns='syncml:metinf'>{ctype}</Type></Meta><Item>"
            f"<Source><LocURI>{luid}</LocURI></Source><SourceParent><LocURI>{parent}</LocURI></SourceParent>"
            f"<Data>{html.escape(data)}</Data></Item></Add>")


def server_commands(text):
    """The server's commands, in order: (verb, GUID or LUID, parent (kind, id) or None,
    content type, data unescaped)."""
    out = []
    for m in re.finditer(r"<(Add|Replace|Delete)><CmdID>\d+</CmdID>(.*?)</\1>", text, re.S):
        verb, body = m.group(1), m.group(2)
        loc = re.search(r"<(?:Source|Target)><LocURI>([^<]+)</LocURI>", body).group(1)
        parent = re.search(r"<(SourceParent|TargetParent)><LocURI>([^<]+)</LocURI>", body)
        ctype = re.search(r"<Type[^>]*>([^<]+)</Type>", body)
        data = re.search(r"<Data>(.*?)</Data>", body, re.S)
        out.append((verb, loc, parent and parent.groups(), ctype and ctype.group(1),
                    data and html.unescape(data.group(1))))
    return out


def folder_names(commands):
    """The folder commands: id -> (verb, name, parent, role)."""
    out = {}
    for verb, loc, parent, ctype, data in commands:
        if ctype == FOLDER or (verb == "Delete" and data is None):
            name = data and re.search(r"<name>([^<]*)</name>", data)
            role = data and re.search(r"<role>([^<]*)</role>", data)
            out[loc] = (verb, name and html.unescape(name.group(1)), parent, role and role.group(1))
    return out


def mailboxes(b):
    with imap(b) as c:
        return {name for _, _, name in c.list_folders()}


def subjects_in(b, mailbox):
    with imap(b) as c:
        c.select_folder(mailbox)
        got = c.fetch(c.search("ALL"), ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        return sorted(v[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip()[9:] for v in got.values())


def test_mail_syncs_as_folders_both_ways_with_imap(office):
    """Slow sync: the device's folder "Work" is taken as the mailbox of that name, its new
    folder "Phone" becomes a mailbox holding the message it put there; the server sends
    every other mailbox as a folder (roles for INBOX, Sent, Drafts, Trash), Work/2026 under
    the device's own Work, the folders before the items, each item naming its folder.
    Two-way: the device moves its message to Work, renames Phone and moves it into Work,
    deletes Trash; IMAP's new
    mailbox, rename and deleted mailbox reach the device as folder Add, Replace, Delete."""
    b = office
    with imap(b) as c:
        c.create_folder("Work/2026")
        c.append("Work/2026", msg("Budget", "budget"))
        c.append("INBOX", msg("Hello", "hello"))
    s = Session(b, 1, "Mail", 201, 0, 1, put=devinf())
    assert "<Data>201</Data>" in s.first, s.first
    reply = s.sync(folder("fW", "Work") + folder("fP", "Phone")
                   + in_folder("m1", email(True, msg("Taken on the phone", "phone")), "fP"))
    assert statuses(reply, "Add") == {"fW": "200", "fP": "201", "m1": "201"}, reply
    commands = server_commands(reply)
    folders = folder_names(commands)
    by_name = {name: (guid, parent, role) for guid, (_, name, parent, role) in folders.items()}
    assert set(by_name) == {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive", "2026"}, folders
    assert [by_name[n][2] for n in ("INBOX", "Sent", "Drafts", "Trash", "Junk")] == \
        ["inbox", "sent", "draft", "trash", None]
    # Work/2026 under the device's own Work, by the device's id for it.
    assert by_name["2026"][1] == ("TargetParent", "fW"), by_name
    items = [(loc, parent, data) for verb, loc, parent, ctype, data in commands if ctype == EMAIL]
    last_folder = max(i for i, c in enumerate(commands) if c[3] == FOLDER)
    first_item = min(i for i, c in enumerate(commands) if c[3] == EMAIL)
    assert last_folder < first_item, commands
    subjects = {re.search(r"Subject: (\w+)", d).group(1): (loc, parent) for loc, parent, d in items}
    assert set(subjects) == {"Budget", "Hello"}, items
    # An item names its folder by the folder's GUID until the device maps it.
    assert subjects["Budget"][1] == ("SourceParent", by_name["2026"][0]), subjects
    assert subjects["Hello"][1] == ("SourceParent", by_name["INBOX"][0]), subjects
    assert all(loc.startswith(parent[1] + ":") for loc, parent in subjects.values()), subjects
    maps = [(guid, "L" + guid.replace(":", "-")) for guid in folders] + \
        [(loc, "L" + loc.replace(":", "-")) for loc, _ in subjects.values()]
    assert "<Data>200</Data>" in s.end(maps)
    assert {"Phone", "Work", "Work/2026"} <= mailboxes(b)
    assert subjects_in(b, "Phone") == ["Taken on the phone"]

    # IMAP: a new mailbox with a message, one inside Phone, Work/2026 renamed, Junk deleted.
    with imap(b) as c:
        c.create_folder("Phone/Receipts")
        c.create_folder("Projects")
        c.append("Projects", msg("Plan", "plan"))
        c.rename_folder("Work/2026", "Work/Done")
        c.delete_folder("Junk")
    s = Session(b, 2, "Mail", 200, 1, 2, put=devinf())
    assert "<Data>200</Data>" in s.first, s.first
    trash = "L" + by_name["Trash"][0]
    move = ("<Move><CmdID>mv</CmdID><Item><Source><LocURI>m1</LocURI></Source>"
            "<SourceParent><LocURI>fW</LocURI></SourceParent></Item></Move>")
    # (A folder's Move names no type: the device's id says it is a folder.)
    move_folder = ("<Move><CmdID>mf</CmdID><Item><Source><LocURI>fP</LocURI></Source>"
                   "<SourceParent><LocURI>fW</LocURI></SourceParent></Item></Move>")
    reply = s.sync(move + folder("fP", "Mobile", verb="Replace") + move_folder
                   + f"<Delete><CmdID>dt</CmdID><Meta><Type xmlns='syncml:metinf'>{FOLDER}</Type></Meta>"
                   f"<Item><Source><LocURI>{trash}</LocURI></Source></Item></Delete>")
    assert statuses(reply, "Move") == {"mv": "200", "mf": "200"}, reply
    assert statuses(reply, "Replace") == {"fP": "200"} and statuses(reply, "Delete") == {"dt": "200"}, reply
    commands = server_commands(reply)
    folders = folder_names(commands)
    assert sorted((v, n) for v, n, _, _ in folders.values()) == \
        [("Add", "Projects"), ("Add", "Receipts"), ("Delete", None), ("Replace", "Done")], folders
    assert folders["L" + by_name["Junk"][0]][0] == "Delete"
    assert folders["L" + by_name["2026"][0]][:3] == ("Replace", "Done", ("TargetParent", "fW")), folders
    [projects] = [g for g, (v, n, _, _) in folders.items() if n == "Projects"]
    # Inside the device's folder, which it renamed and moved meanwhile: the same folder.
    [receipts] = [f for f in folders.values() if f[1] == "Receipts"]
    assert receipts[2] == ("TargetParent", "fP"), folders
    items = [(loc, parent, data) for verb, loc, parent, ctype, data in commands if ctype == EMAIL]
    # Only the new mailbox's message: the device's own move is not sent back.
    assert [(p, "Subject: Plan" in d) for _, p, d in items] == [(("SourceParent", projects), True)], items
    s.end([(projects, "fX")] + [(g, "fR") for g, f in folders.items() if f[1] == "Receipts"])
    boxes = mailboxes(b)
    # Phone's mailbox inside it went with it.
    assert {"Work/Mobile", "Work/Mobile/Receipts", "Work/Done", "Projects"} <= boxes, boxes
    assert not {"Phone", "Mobile", "Trash", "Junk"} & boxes, boxes
    assert subjects_in(b, "Work") == ["Taken on the phone"] and subjects_in(b, "Work/Mobile") == []

    # A third two-way sync: nothing changed, nothing sent (the renames and maps were kept);
    # the device renames Work/Done, naming no parent: it stays in Work.
    s = Session(b, 3, "Mail", 200, 2, 3, put=devinf())
    reply = s.sync(folder("L" + by_name["2026"][0], "Finished", verb="Replace"))
    assert statuses(reply, "Replace") == {"L" + by_name["2026"][0]: "200"}, reply
    assert server_commands(reply) == [], reply
    s.end()
    assert "Work/Finished" in mailboxes(b) and subjects_in(b, "Work/Finished") == ["Budget"]


def test_bad_folders_get_their_status_and_change_nothing(office):
    """A folder name with "/" is 400; a parent the device never named 404; INBOX cannot be
    deleted or renamed (405); a folder in a calendar 406; a Move in a datastore not synced
    as folders 406. The mailboxes stay as they were."""
    b = office
    before = mailboxes(b)
    s = Session(b, 1, "Mail", 201, 0, 1, put=devinf())
    reply = s.sync(folder("f1", "INBOX") + folder("f2", "a/b")
                   + in_folder("m1", email(False, msg("Lost", "lost")), "nope")
                   + folder("f3", "Sub", parent="<TargetParent><LocURI>999999</LocURI></TargetParent>"))
    assert statuses(reply, "Add") == {"f1": "200", "f2": "400", "m1": "404", "f3": "404"}, reply
    s.end()
    s = Session(b, 2, "Mail", 200, 1, 2, put=devinf())
    reply = s.sync(folder("f1", "Elsewhere", verb="Replace")
                   + f"<Delete><CmdID>d1</CmdID><Meta><Type xmlns='syncml:metinf'>{FOLDER}</Type></Meta>"
                   "<Item><Source><LocURI>f1</LocURI></Source></Item></Delete>")
    assert statuses(reply, "Replace") == {"f1": "405"} and statuses(reply, "Delete") == {"d1": "405"}, reply
    s.end()
    assert mailboxes(b) == before
    with imap(b) as c:
        c.select_folder("INBOX")
        assert not c.search("ALL")
    s = Session(b, 3, "Mail", 201, 0, 1, put=devinf(hierarchical=False))
    reply = s.sync("<Move><CmdID>mv</CmdID><Item><Source><LocURI>x</LocURI></Source></Item></Move>")
    assert statuses(reply, "Move") == {"mv": "406"}, reply


def test_calendars_sync_as_folders_with_caldav(office):
    """"Calendar" synced as folders: each of the user's calendars is a folder (not the
    journal), an event goes to the calendar its folder is, a new folder is a new calendar
    CalDAV lists, a folder inside a calendar is refused (406)."""
    b = office
    dav = caldav.DAVClient(f"https://127.0.0.1:{b.port(443)}/dav/", username="alice", password=PW,
                           ssl_verify_cert=False)
    principal = dav.principal()
    team = principal.make_calendar(name="team", cal_id="team")
    team.save_event("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:standup\r\n"
                    "DTSTART:20261207T090000Z\r\nDTEND:20261207T091500Z\r\nSUMMARY:Standup\r\n"
                    "END:VEVENT\r\nEND:VCALENDAR\r\n")
    put = devinf().replace(EMAIL, "text/calendar").replace("<VerCT>1.2</VerCT>", "<VerCT>2.0</VerCT>")
    s = Session(b, 1, "Calendar", 201, 0, 1, put=put)
    assert "<Data>201</Data>" in s.first, s.first
    event = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:dentist\r\nDTSTART:20261208T140000Z\r\n"
             "DTEND:20261208T150000Z\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    reply = s.sync(folder("fp", "private") + in_folder("e1", event, "fp", ctype="text/calendar")
                   + folder("fs", "sub", parent="<SourceParent><LocURI>fp</LocURI></SourceParent>"))
    assert statuses(reply, "Add") == {"fp": "201", "e1": "201", "fs": "406"}, reply
    commands = server_commands(reply)
    folders = folder_names(commands)
    assert sorted(n for _, n, _, _ in folders.values()) == ["calendar", "team"], folders
    [team_guid] = [g for g, (_, n, _, _) in folders.items() if n == "team"]
    events = [(parent, data) for verb, loc, parent, ctype, data in commands if ctype == "text/calendar"]
    assert [(p, "SUMMARY:Standup" in d) for p, d in events] == [(("SourceParent", team_guid), True)], events
    s.end()
    calendars = {str(c.url).rstrip("/").rsplit("/", 1)[-1]: c for c in principal.calendars()}
    assert "private" in calendars and "journal" not in calendars, calendars
    [dentist] = calendars["private"].events()
    assert "SUMMARY:Dentist" in dentist.data


FILE = "application/vnd.omads-file+xml"


def file_obj(name, data):
    import base64
    return (f"<File><name>{html.escape(name)}</name><size>{len(data)}</size>"
            f"<body enc=\"base64\">{base64.b64encode(data).decode()}</body></File>")


def test_files_sync_as_folders_with_the_home_folder(office):
    """"Files" synced as folders: the home folder's folders go as folder objects before
    what they hold, each item naming its folder; a link in the home folder is neither
    listed nor followed. The device's folder and its file are made on disk, its copies of
    what is there matched; then its Move, folder renames and deletes happen on disk,
    and a file new on the share reaches it inside its folder."""
    b = office
    home = b.data / "shares" / "homes" / "alice"
    (home / "docs" / "old").mkdir(parents=True)
    (home / "docs" / "a.txt").write_bytes(b"A\n")
    (home / "top.txt").write_bytes(b"top\n")
    outside = b.data / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not the device's\n")
    (home / "docs" / "link").symlink_to(outside)
    put = devinf().replace(EMAIL, FILE)
    s = Session(b, 1, "Files", 201, 0, 1, put=put)
    assert "<Data>201</Data>" in s.first, s.first
    in_docs = "<TargetParent><LocURI>{}</LocURI></TargetParent>"
    reply = s.sync(folder("fp", "photos") + in_folder("p1", file_obj("cat.jpg", b"\xffcat"), "fp", ctype=FILE)
                   + folder("fd", "docs") + in_folder("a1", file_obj("a.txt", b"A\n"), "fd", ctype=FILE)
                   + in_folder("x1", file_obj("y.txt", b"y"), "nope", ctype=FILE))
    assert statuses(reply, "Add") == {"fp": "201", "p1": "201", "fd": "200", "a1": "200", "x1": "404"}, reply
    commands = server_commands(reply)
    sent = [(verb, ctype, re.search(r"<name>([^<]*)</name>", data).group(1), parent)
            for verb, loc, parent, ctype, data in commands]
    assert sent == [("Add", FOLDER, "old", ("TargetParent", "fd")), ("Add", FILE, "top.txt", None)], sent
    [old_guid, top_guid] = [loc for _, loc, _, _, _ in commands]
    s.end([(old_guid, "fo"), (top_guid, "t1")])
    assert (home / "photos" / "cat.jpg").read_bytes() == b"\xffcat"
    assert oct((home / "photos").stat().st_mode & 0o777) == "0o770"
    assert not (outside / "cat.jpg").exists() and sorted(p.name for p in outside.iterdir()) == ["secret.txt"]

    (home / "docs" / "new.txt").write_bytes(b"new\n")
    s = Session(b, 2, "Files", 200, 1, 2, put=put)
    assert "<Data>508</Data>" not in s.first, s.first
    move = ("<Move><CmdID>mv</CmdID><Item><Source><LocURI>p1</LocURI></Source>"
            "<SourceParent><LocURI>fd</LocURI></SourceParent></Item></Move>")
    # (docs/old renamed in its folder: it stays there.)
    reply = s.sync(move + folder("fp", "pictures", verb="Replace") + folder("fo", "older", verb="Replace")
                   + "<Delete><CmdID>dl</CmdID><Item><Source><LocURI>t1</LocURI></Source></Item></Delete>"
                   + in_folder("z1", file_obj("z.txt", b"z"), "fp", ctype=FILE).replace(
                       "<SourceParent><LocURI>fp</LocURI></SourceParent>", in_docs.format("999999")))
    assert statuses(reply, "Move") == {"mv": "200"}, reply
    assert statuses(reply, "Replace") == {"fp": "200", "fo": "200"}, reply
    assert statuses(reply, "Delete") == {"dl": "200"}, reply
    assert statuses(reply, "Add") == {"z1": "404"}, reply
    sent = [(verb, re.search(r"<name>([^<]*)</name>", data).group(1), parent)
            for verb, loc, parent, ctype, data in server_commands(reply)]
    assert sent == [("Add", "new.txt", ("TargetParent", "fd"))], sent
    s.end([(loc, "n1") for _, loc, _, _, _ in server_commands(reply)])
    assert (home / "docs" / "cat.jpg").read_bytes() == b"\xffcat"
    assert sorted(p.name for p in home.iterdir()) == ["docs", "pictures"]
    assert sorted(p.name for p in (home / "docs").iterdir()) == ["a.txt", "cat.jpg", "link", "new.txt", "older"]

    # The device deletes docs: it goes with what it held (the link itself, not what it
    # leads to), and the device is not told of what it held.
    s = Session(b, 3, "Files", 200, 2, 3, put=put)
    reply = s.sync("<Delete><CmdID>df</CmdID><Item><Source><LocURI>fd</LocURI></Source></Item></Delete>")
    assert statuses(reply, "Delete") == {"df": "200"} and server_commands(reply) == [], reply
    s.end()
    assert sorted(p.name for p in home.iterdir()) == ["pictures"]
    assert (outside / "secret.txt").exists()
