"""Run by bench/syncml.sh: SyncEvolution (file backend) against Bureau on loopback. Each
line: what was synced, the wall time of `syncevolution --sync`, and the messages sent by
the client (its own count, from its report)."""

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

WORK = Path(sys.argv[1])
OFF = int(os.environ["OFF"])
SHIM = os.environ["SHIM"]
N = int(os.environ.get("N", 5000))
FORMATS = {"addressbook": "text/vcard", "calendar": "text/calendar"}


class Phone:
    def __init__(self, name, source, wbxml):
        self.home = WORK / name
        self.folder = self.home / "data"
        self.folder.mkdir(parents=True)
        self.source = source
        self.env = dict(os.environ, HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / "c"),
                        XDG_DATA_HOME=str(self.home / "d"), XDG_CACHE_HOME=str(self.home / "k"))
        self.run("--configure", "backend=file", f"databaseFormat={FORMATS[source]}",
                 f"database=file://{self.folder}", "@client", source)
        self.run("--configure", "--keyring=no", "--template", "SyncEvolution",
                 f"syncURL=https://127.0.0.1:{443 + OFF}/syncml", "username=alice",
                 "password=long enough pw", f"deviceId={name}", f"enableWBXML={int(wbxml)}",
                 "SSLVerifyServer=0", "SSLVerifyHost=0", "printChanges=0", "dumpData=0",
                 "bureau@client", source)

    def run(self, *args):
        r = subprocess.run(["syncevolution", "--daemon=no", *args], env=dict(self.env, LD_PRELOAD=SHIM),
                           capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r.stdout

    def sync(self, mode):
        t = time.perf_counter()
        out = self.run("--sync", mode, "bureau@client", self.source)
        took = time.perf_counter() - t
        # The status report's last table: "<mode>, N KB sent by client, M KB received".
        kb = re.search(r"(\d+) KB sent by client, (\d+) KB received", out)
        return took, (kb.group(1), kb.group(2)) if kb else ("?", "?")


def card(i):
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i}\r\nN:{i};Person;;;\r\n"
            f"TEL;TYPE=CELL:+33 6 {i:08}\r\nEMAIL:p{i}@example.org\r\nEND:VCARD\r\n")


def event(i):
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:bench-{i}\r\n"
            f"DTSTAMP:20261201T000000Z\r\nDTSTART:2027{1 + i % 12:02}{1 + i % 28:02}T090000Z\r\n"
            f"DTEND:2027{1 + i % 12:02}{1 + i % 28:02}T100000Z\r\nSUMMARY:Meeting {i}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def line(what, took, kb):
    print(f"{what:<52} {took:7.2f} s  {N / took:7.0f} items/s  client sent {kb[0]} KB, got {kb[1]} KB")


for source, make, label in (("addressbook", card, "contacts"), ("calendar", event, "events")):
    phone = Phone(f"{label}-xml", source, wbxml=False)
    for i in range(N):
        (phone.folder / f"{i}").write_text(make(i))
    took, kb = phone.sync("slow")
    line(f"slow sync, {N} {label} from the device, XML", took, kb)
    # 50 changes on the device, then two-way.
    for i in range(50):
        (phone.folder / f"{i}").write_text(make(i).replace(f" {i}\r\n", f" {i} changed\r\n", 1))
    took, kb = phone.sync("two-way")
    print(f"{'two-way, 50 changes on the device, XML':<52} {took:7.2f} s  client sent {kb[0]} KB")
    took, kb = phone.sync("two-way")
    print(f"{'two-way, no change, XML':<52} {took:7.2f} s")
    if source == "addressbook":
        # A second, empty device: the server's 5,000 come to it (refresh from the server).
        other = Phone(f"{label}-wbxml", source, wbxml=True)
        took, kb = other.sync("slow")
        line(f"slow sync, {N} {label} to an empty device, WBXML", took, kb)
        assert len(list(other.folder.iterdir())) == N
