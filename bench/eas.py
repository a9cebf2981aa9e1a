"""ActiveSync figures (docs/BENCHMARKS.md), with pyactivesync as the devices:
- memory per held Ping: the daemon's RSS with N Pings held, against before;
- change-to-Ping-reply: a device holds a Ping, a message arrives by SMTP, time to the answer;
- initial Sync of a big folder in windows of 100: time per window;
- the same for a calendar of EVENTS recurring events made over CalDAV.
Usage: eas.py HTTPS_PORT SMTP_PORT IMAP_PORT BUREAU_PID [PINGS] [MESSAGES] [EVENTS]"""

import imaplib
import os
import smtplib
import ssl
import statistics
import sys
import threading
import time

import urllib3

from pyactivesync import Client

urllib3.disable_warnings()
for v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(v, None)
https, smtp, imap, pid = (int(a) for a in sys.argv[1:5])
PINGS = int(sys.argv[5]) if len(sys.argv) > 5 else 500
MESSAGES = int(sys.argv[6]) if len(sys.argv) > 6 else 10000
EVENTS = int(sys.argv[7]) if len(sys.argv) > 7 else 2000
PW = "long enough pw"


def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))


def client(device, user="u1@bench.example"):
    return Client(server=f"127.0.0.1:{https}", username=user, password=PW, device_id=device, verify_ssl=False,
                  timeout=120)


def quiet_inbox(c):
    inbox = next(f for f in c.list_folders() if int(f.type) == 2).id
    key = c.sync_folder(inbox).sync_key
    r = c.sync_folder(inbox, key, window_size=512)
    while r.more_available:
        r = c.sync_folder(inbox, r.sync_key, window_size=512)
    return inbox, r.sync_key


# ---- memory per held Ping ----
devices = []
for i in range(PINGS):
    c = client(f"P{i:04d}", user="u2@bench.example")
    inbox, _ = quiet_inbox(c)
    devices.append((c, inbox))
time.sleep(1)
before = rss_kb()
threads = [threading.Thread(target=lambda c=c, f=f: c.ping([f], heartbeat=120), daemon=True) for c, f in devices]
for t in threads:
    t.start()
time.sleep(8)
held = rss_kb()
print(f"{PINGS} Pings held: RSS {before / 1024:.1f} MB -> {held / 1024:.1f} MB, "
      f"{(held - before) / PINGS:.1f} kB per held Ping (TLS connection included)")
# Release them: one message wakes them all.
with smtplib.SMTP("127.0.0.1", smtp) as s:
    s.sendmail("x@elsewhere.example", ["u2@bench.example"], b"Subject: wake\r\n\r\nAll of you.\r\n")
for t in threads:
    t.join(timeout=60)

# ---- change to Ping reply ----
c = client("Latency1")
inbox, key = quiet_inbox(c)
lat = []
for i in range(30):
    box = {}
    t = threading.Thread(target=lambda: box.update(r=c.ping([inbox], heartbeat=120), at=time.monotonic()))
    t.start()
    time.sleep(0.3)
    with smtplib.SMTP("127.0.0.1", smtp) as s:
        s.sendmail("x@elsewhere.example", ["u1@bench.example"], f"Subject: {i}\r\n\r\nnews\r\n".encode())
        sent = time.monotonic()
    t.join(timeout=60)
    assert box["r"].status == "2", box
    lat.append((box["at"] - sent) * 1000)
    key = c.sync_folder(inbox, key, window_size=512).sync_key
lat.sort()
print(f"change to Ping reply (SMTP 250 to the answer, {len(lat)} runs): p50 {statistics.median(lat):.1f} ms, "
      f"p95 {lat[int(len(lat) * 0.95) - 1]:.1f} ms")

# ---- initial Sync of a big folder ----
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
body = ("From: a@bench.example\r\nTo: u3@bench.example\r\nSubject: message {}\r\n\r\n" + "x" * 2000 + "\r\n")


def fill(part, parts=16):
    # Several connections at once: their APPENDs share the store's group commits.
    m = imaplib.IMAP4("127.0.0.1", imap)
    m.starttls(ssl_context=ctx)
    m.login("u3", PW)
    for i in range(part, MESSAGES, parts):
        m.append("INBOX", None, None, body.format(i).encode())
    m.logout()


t0 = time.monotonic()
fillers = [threading.Thread(target=fill, args=(p,)) for p in range(16)]
for t in fillers:
    t.start()
for t in fillers:
    t.join()
print(f"{MESSAGES} messages appended over IMAP (16 connections) in {time.monotonic() - t0:.1f} s")
c = client("Initial1", user="u3@bench.example")
inbox = next(f for f in c.list_folders() if int(f.type) == 2).id
def initial_sync(c, folder, expected, what):
    key = c.sync_folder(folder).sync_key
    windows, got = [], 0
    while True:
        t = time.monotonic()
        r = c.sync_folder(folder, key, window_size=100)
        windows.append((time.monotonic() - t) * 1000)
        got += len(r.added)
        key = r.sync_key
        if not r.more_available:
            break
    windows.sort()
    assert got == expected, got
    print(f"initial Sync of {expected} {what} in {len(windows)} windows of 100: p50 {statistics.median(windows):.1f} ms, "
          f"p95 {windows[int(len(windows) * 0.95) - 1]:.1f} ms, max {windows[-1]:.1f} ms per window")


initial_sync(c, inbox, MESSAGES, "messages")

# ---- a calendar: weekly events in Paris time with an exception each, as CalDAV clients write them ----
import base64
import http.client

EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\nUID:ev-{n}@bench\r\n"
         "DTSTAMP:20261101T080000Z\r\nDTSTART;TZID=Europe/Paris:2026{m:02d}{d:02d}T{h:02d}0000\r\n"
         "DTEND;TZID=Europe/Paris:2026{m:02d}{d:02d}T{h:02d}3000\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\n"
         "EXDATE;TZID=Europe/Paris:2026{m:02d}{d2:02d}T{h:02d}0000\r\nSUMMARY:Meeting {n}\r\n"
         "LOCATION:Room {r}\r\nX-OTHER-CLIENT:kept\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
auth = {"Authorization": "Basic " + base64.b64encode(f"u3:{PW}".encode()).decode(),
        "Content-Type": "text/calendar"}


def put_events(part, parts=16):
    conn = http.client.HTTPSConnection("127.0.0.1", https, context=ctx, timeout=120)
    for n in range(part, EVENTS, parts):
        m, d, h = 1 + n % 11, 1 + n % 20, 8 + n % 9
        conn.request("PUT", f"/dav/calendars/u3/calendar/ev-{n}.ics",
                     body=EVENT.format(n=n, m=m, d=d, d2=d + 7, h=h, r=n % 30).encode(), headers=auth)
        r = conn.getresponse()
        r.read()
        assert r.status == 201, r.status
    conn.close()


t0 = time.monotonic()
putters = [threading.Thread(target=put_events, args=(p,)) for p in range(16)]
for t in putters:
    t.start()
for t in putters:
    t.join()
print(f"{EVENTS} events PUT over CalDAV (16 connections) in {time.monotonic() - t0:.1f} s")
calendar = next(f for f in c.list_folders() if int(f.type) == 8).id
initial_sync(c, calendar, EVENTS, "recurring events")
print(f"bureau peak RSS: {int(open(f'/proc/{pid}/status').read().split('VmHWM:')[1].split()[0]) // 1024} MB")
