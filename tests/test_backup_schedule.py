"""Scheduled backups into a folder somewhere else than the box's data (where a USB disk or
the office's share is mounted; the test's folder stands in for the mount point: this
machine has no cifs or usb-storage kernel modules to mount one; the boot test mounts both):
written, checked whole, the old ones dropped, the newest always kept, and restored into an
empty box."""

import imaplib
import json
import smtplib
import time

from conftest import tls_context
from test_foundation import _https, login

PW = "long enough pw"
SHARE = {"server": "nas", "share": "Backups", "user": "office", "domain": "", "password": "share secret"}


def admin(b, uid):
    _, body, _, cookie = login(b, uid, PW)
    csrf = json.loads(body)["csrf"]
    return lambda method, path, data=None: _https(b, method, f"/api/v1/{path}", data, cookie=cookie, csrf=csrf)[:2]


def test_a_scheduled_backup_is_written_checked_kept_and_restored_into_an_empty_box(bureau_factory, tmp_path):
    one = bureau_factory("", name="one")
    one.cli("domain", "add", "example.com")
    one.cli("user", "add", "alice@example.com", "--admin", "--password-stdin", input=PW + "\n")
    with smtplib.SMTP("127.0.0.1", one.port(25), timeout=30) as s:
        s.sendmail("carol@remote.example", ["alice@example.com"], b"Subject: hi\r\n\r\nKept safe.\r\n")
    api = admin(one, "alice")
    usb = tmp_path / "usb"
    usb.mkdir()

    # Settings that cannot work are refused beside their field.
    for bad, field in (({"folder": "relative/dir"}, "folder"), ({"folder": str(tmp_path / "none")}, "folder"),
                       ({"folder": str(one.data)}, "folder"), ({"folder": str(usb), "hour": 24}, "hour"),
                       ({"folder": str(usb), "keep_days": 0}, "keep_days"),
                       # The USB disk, without the helper that mounts it.
                       ({"folder": "usb"}, "folder"),
                       # The office's share: each field the kernel's SMB client would
                       # misread is refused beside it, and without the helper that mounts
                       # it, a good one is said beside the server.
                       ({"folder": "smb"}, "share.server"),
                       ({"folder": "smb", "share": {**SHARE, "server": "nas,ip=192.0.2.1"}}, "share.server"),
                       ({"folder": "smb", "share": {**SHARE, "share": "a/../b"}}, "share.share"),
                       ({"folder": "smb", "share": {**SHARE, "user": "office,uid=0"}}, "share.user"),
                       ({"folder": "smb", "share": {**SHARE, "domain": "A=B"}}, "share.domain"),
                       ({"folder": "smb", "share": {**SHARE, "password": "two\nlines"}}, "share.password"),
                       ({"folder": "smb", "share": SHARE}, "share.server"),
                       # ... and the NFS export's likewise.
                       ({"folder": "nfs"}, "export.server"),
                       ({"folder": "nfs", "export": {"server": "nas addr=1", "path": "/b"}}, "export.server"),
                       ({"folder": "nfs", "export": {"server": "nas", "path": "b"}}, "export.path"),
                       ({"folder": "nfs", "export": {"server": "nas", "path": "/b,vers=3"}}, "export.path"),
                       ({"folder": "nfs", "export": {"server": "nas", "path": "/b"}}, "export.server")):
        s, err = api("PUT", "backup/schedule", {"enabled": True, **bad})
        assert s == 400 and err["field"] == field, (bad, err)
        assert "share secret" not in json.dumps(err)
    assert api("GET", "backup/schedule")[1]["state"]["settings"]["folder"] == ""
    old = usb / "bureau-backup-20200101-020000.tar.gz"
    old.write_bytes(b"an old backup")
    (usb / "notes.txt").write_text("not a backup\n")
    s, st = api("PUT", "backup/schedule", {"enabled": True, "folder": str(usb), "hour": 2, "keep_days": 7})
    assert s == 200 and st["settings"]["folder"] == str(usb), st

    s, st = api("POST", "backup/schedule/run")
    assert s == 200 and st["last_error"] is None and st["last_good"], st
    name = st["last_good"][0]
    assert sorted(p.name for p in usb.iterdir()) == sorted([name, "notes.txt"]), list(usb.iterdir())
    s, listing = api("GET", "backup/schedule")
    assert [a["name"] for a in listing["archives"]] == [name]
    [check] = [c for c in api("GET", "health")[1] if c["id"] == "backup"]
    assert check["state"] == "ok", check

    # A folder gone (the disk unplugged): said in words, the good one still on record.
    usb.rename(tmp_path / "unplugged")
    s, err = api("POST", "backup/schedule/run")
    assert s == 500 and "the backup failed" in err["error"], err
    assert api("GET", "backup/schedule")[1]["state"]["last_good"][0] == name
    (tmp_path / "unplugged").rename(usb)

    # An empty box, pointed at the same disk, restores it.
    two = bureau_factory("", name="two")
    two.cli("domain", "add", "example.com")
    two.cli("user", "add", "zed@example.com", "--admin", "--password-stdin", input=PW + "\n")
    api2 = admin(two, "zed")
    assert api2("PUT", "backup/schedule", {"enabled": False, "folder": str(usb)})[0] == 200
    assert api2("POST", "backup/schedule/../../etc/restore")[0] == 404
    assert api2("POST", "backup/schedule/bureau-backup-20991231-000000.tar.gz/restore")[0] == 404
    s, info = api2("POST", f"backup/schedule/{name}/restore")
    assert s == 202, info
    deadline = time.time() + 60
    while two.proc.stdout.readline().strip() != "bureau: ready":
        assert two.proc.poll() is None and time.time() < deadline
    users = {u["uid"] for u in json.loads(two.cli("--json", "user", "list").stdout)}
    assert users == {"alice"}
    with imaplib.IMAP4_SSL("127.0.0.1", two.port(993), ssl_context=tls_context()) as m:
        m.login("alice", PW)
        m.select("INBOX")
        _, data = m.fetch("1", "(BODY[TEXT])")
        assert b"Kept safe." in data[0][1]
