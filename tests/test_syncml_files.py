"""SyncML's Files datastore (also "briefcase"): the user's home folder on the file server,
as OMA DS file objects, from hand-made request documents (no client here syncs files over
SyncML). What the device does is checked on disk, where Samba's [homes] share serves it."""

import base64
import html
import re

from test_syncml_mail import Session, add, office, server_adds, statuses  # noqa: F401 (the fixture)

FILE = "application/vnd.omads-file+xml"


def obj(name, data):
    return (f"<File><name>{html.escape(name)}</name><size>{len(data)}</size>"
            f"<body enc=\"base64\">{base64.b64encode(data).decode()}</body></File>")


def body(xml):
    return base64.b64decode(re.search(r"<body[^>]*>([^<]*)</body>", xml).group(1))


def test_files_sync_both_ways_with_the_home_folder(office):  # noqa: F811
    b = office
    home = b.data / "shares" / "homes" / "alice"
    home.mkdir(parents=True)
    (home / "plan.txt").write_bytes(b"Q4 plan\n")
    (home / "budget.ods").write_bytes(b"\x00budget\xff")
    (home / ".hidden").write_text("not synced")

    s = Session(b, 1, "briefcase", 201, 0, 1)
    assert "<Data>201</Data>" in s.first, s.first
    photo = bytes(range(256)) * 4
    reply = s.sync(add("d1", obj("photo.jpg", photo), ctype=FILE) + add("d2", obj("plan.txt", b"Q4 plan\n"), ctype=FILE)
                   + add("d3", obj("../escape.txt", b"x"), ctype=FILE) + add("d4", "<Email/>", ctype=FILE))
    assert statuses(reply, "Add") == {"d1": "201", "d2": "200", "d3": "400", "d4": "400"}, reply
    adds = server_adds(reply)
    # The server's one file the device lacks: budget.ods, whole, in base64.
    [(guid, (ctype, xml))] = adds.items()
    assert ctype == FILE and "<name>budget.ods</name>" in xml and body(xml) == b"\x00budget\xff", xml
    s.end([(guid, "d5")])
    assert (home / "photo.jpg").read_bytes() == photo
    assert oct((home / "photo.jpg").stat().st_mode & 0o777) == "0o660"
    assert not (b.data / "shares" / "homes" / "escape.txt").exists()

    # Two-way: the device changes its photo and deletes the budget; on the share, the plan
    # changes and a file is added; each side gets the other's.
    (home / "plan.txt").write_bytes(b"Q4 plan, revised\n")
    (home / "minutes.txt").write_bytes(b"Monday\n")
    s = Session(b, 2, "briefcase", 200, 1, 2)
    assert "<Data>200</Data>" in s.first and "<Data>508</Data>" not in s.first, s.first
    reply = s.sync(add("d1", obj("photo.jpg", b"new photo"), ctype=FILE, verb="Replace")
                   + "<Delete><CmdID>9</CmdID><Item><Source><LocURI>d5</LocURI></Source></Item></Delete>")
    assert statuses(reply, "Replace") == {"d1": "200"} and statuses(reply, "Delete") == {"9": "200"}, reply
    replaced = re.findall(r"<Replace>.*?<Target><LocURI>([^<]+)</LocURI>.*?<Data>(.*?)</Data>", reply, re.S)
    assert [(l, body(html.unescape(d))) for l, d in replaced] == [("d2", b"Q4 plan, revised\n")], reply
    [(_, (_, xml))] = server_adds(reply).items()
    assert "<name>minutes.txt</name>" in xml, xml
    s.end()
    assert (home / "photo.jpg").read_bytes() == b"new photo"
    assert not (home / "budget.ods").exists()
    assert sorted(p.name for p in home.iterdir()) == [".hidden", "minutes.txt", "photo.jpg", "plan.txt"]
