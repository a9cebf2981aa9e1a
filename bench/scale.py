"""Costs that should not grow with the data (issue 24): each single-item operation timed on
a small and a big collection of the same box, in one run, with the ratio big/small.

Run by bench/scale.sh (a release `bureau serve` on loopback; OFF is its port offset). Each
figure is the median of RUNS timings, in ms, measured from this client (one connection per
protocol, kept open). Sizes: SMALL and BIG items (1,000 and 10,000 by default); mail also at
HUGE (100,000; 0 leaves it out)."""

import base64
import http.client
import imaplib
import json
import os
import random
import re
import smtplib
import socket
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import ldap3

OFF = int(os.environ["OFF"])
CLI = os.environ["CLI"].split()
BPID = int(os.environ["BPID"])
SMALL = int(os.environ.get("SMALL", 1000))
BIG = int(os.environ.get("BIG", 10000))
HUGE = int(os.environ.get("HUGE", 100000))
RUNS = int(os.environ.get("RUNS", 100))
PW = "long enough pw"
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def cli(*args, stdin=""):
    subprocess.run([*CLI, *args], input=stdin, text=True, check=True, capture_output=True)


def settle():
    """Waits until the server is idle (under 5% of a core and under 1 MB written over a
    second) and the kernel has written back what it wrote (under 16 MB dirty): the term
    index's batches and moves run after the writes that made them, and an operation is
    measured in the state the box keeps, not while the indexer or the disk catches up.
    Returns the seconds waited."""
    t = time.time()
    def busy():
        stat = open(f"/proc/{BPID}/stat").read().rsplit(")", 1)[1].split()
        io = dict(l.split(": ") for l in open(f"/proc/{BPID}/io").read().splitlines())
        return sum(int(x) for x in stat[11:13]), int(io["wchar"])
    hz = os.sysconf("SC_CLK_TCK")
    before = busy()
    while True:
        time.sleep(1)
        now = busy()
        mem = dict(l.split(":") for l in open("/proc/meminfo").read().splitlines())
        dirty = sum(int(mem[k].split()[0]) for k in ("Dirty", "Writeback")) << 10
        if now[0] - before[0] < hz * 0.05 and now[1] - before[1] < 1 << 20 and dirty < 16 << 20:
            return time.time() - t
        before = now


def median_ms(f, runs=RUNS):
    times = []
    for i in range(runs):
        t = time.perf_counter()
        f(i)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


rows = []


def row(what, kind, small, big, huge=None):
    """One operation's medians; O(1) must stay within 1.5x at 10x (and at 100x) the data,
    O(n) within 12x at 10x."""
    ratio = big / small if small else float("inf")
    huge_ratio = huge / small if huge is not None and small else None
    ok = ratio <= (1.5 if kind == "O(1)" else 12) and (huge_ratio is None or huge_ratio <= 1.5)
    rows.append((what, kind, small, big, ratio, huge, huge_ratio, "ok" if ok else "OVER"))
    tail = f"  {huge:8.2f}  x{huge_ratio:5.2f}" if huge is not None else ""
    print(f"{what:<44} {kind:<5} {small:8.2f} {big:8.2f}  x{ratio:5.2f}{tail}  {rows[-1][-1]}", flush=True)


def message(i, to):
    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 40)[:2500]
    body += f"\r\nReference R{i:07}Q."
    return (f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\nTo: {to}\r\n"
            f"Subject: message {i} about topic {i % 13}\r\nMessage-ID: <m{i}.{uuid.uuid4().hex}@example.org>\r\n"
            f"Date: Mon, 2 Nov 2026 10:{i % 60:02}:00 +0000\r\n\r\n{body}\r\n").encode()


def imap(user):
    m = imaplib.IMAP4_SSL("127.0.0.1", 993 + OFF, ssl_context=CTX)
    # imaplib writes a literal and its CRLF apart: without this, Nagle's algorithm holds
    # the CRLF until the server's delayed ACK (40 ms per APPEND, the client's own cost).
    m.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    m.login(user, PW)
    return m


def fill_mailbox(user, n):
    def part(k):
        m = imap(user)
        for i in range(k, n, 4):
            m.append("INBOX", None, None, message(i, f"{user}@bench.example"))
        m.logout()
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(part, range(4)))


def imap_ops(sizes):
    """Per operation, the median on each mailbox of `sizes` ((user, messages), ...). An
    operation's timings are taken in turns on every mailbox, so whatever else the machine
    does meanwhile weighs on every size alike."""
    boxes = []
    for user, n in sizes:
        m = imap(user)
        m.select("INBOX")
        uids = m.uid("SEARCH", None, "ALL")[1][0].split()
        boxes.append({"user": user, "n": n, "m": m, "uids": uids,
                      "smtp": smtplib.SMTP("127.0.0.1", 25 + OFF, timeout=30)})
    out = [{} for _ in boxes]

    def each(name, op):
        times = [[] for _ in boxes]
        for i in range(RUNS):
            for k, b in enumerate(boxes):
                times[k].append(op(b, i))
        for k in range(len(boxes)):
            out[k][name] = statistics.median(times[k])

    def timed(f):
        t = time.perf_counter()
        f()
        return (time.perf_counter() - t) * 1000

    pick = lambda b: random.choice(b["uids"]).decode()
    each("IMAP SELECT", lambda b, i: timed(lambda: b["m"].select("INBOX")))
    each("IMAP UID FETCH of one message (BODY.PEEK[])",
         lambda b, i: timed(lambda: b["m"].uid("FETCH", pick(b), "(BODY.PEEK[])")))
    each("IMAP UID STORE of one flag",
         lambda b, i: timed(lambda: b["m"].uid("STORE", pick(b), "+FLAGS", "(\\Flagged)")))
    each("IMAP APPEND of one message", lambda b, i: timed(lambda: b["m"].append(
        "INBOX", None, None, message(b["n"] + 1000 + i, "x@bench.example"))))
    for b in boxes:
        b["gone"] = random.sample(b["uids"], RUNS)
        for u in b["gone"]:
            b["m"].uid("STORE", u.decode(), "+FLAGS", "(\\Deleted)")
        gone = set(b["gone"])
        b["flagged"] = random.sample([u for u in b["uids"] if u not in gone], RUNS)
    each("IMAP UID EXPUNGE of one message",
         lambda b, i: timed(lambda: b["m"].uid("EXPUNGE", b["gone"][i].decode())))

    def expunge(b, i):
        b["m"].uid("STORE", b["flagged"][i].decode(), "+FLAGS.SILENT", "(\\Deleted)")
        return timed(b["m"].expunge)
    each("IMAP EXPUNGE of one \\Deleted message", expunge)
    each("IMAP UID SEARCH SUBJECT (one match)", lambda b, i: timed(lambda: b["m"].uid(
        "SEARCH", None, "SUBJECT", f'"message {random.randrange(b["n"])} about"')))
    each("IMAP UID SEARCH BODY (one match)", lambda b, i: timed(lambda: b["m"].uid(
        "SEARCH", None, "BODY", f"R{random.randrange(b['n']):07}Q")))
    each("IMAP UID SEARCH TEXT (one match)", lambda b, i: timed(lambda: b["m"].uid(
        "SEARCH", None, "TEXT", f"R{random.randrange(b['n']):07}Q")))
    # SMTP delivery into each mailbox, from outside.
    each("SMTP delivery to the mailbox", lambda b, i: timed(lambda: b["smtp"].sendmail(
        "a@example.org", [f"{b['user']}@bench.example"], message(i, f"{b['user']}@bench.example"))))
    for b in boxes:
        b["m"].logout()
        b["smtp"].quit()
    return out


class Dav:
    def __init__(self, user):
        self.conn = http.client.HTTPSConnection("127.0.0.1", 443 + OFF, context=CTX, timeout=120)
        self.auth = "Basic " + base64.b64encode(f"{user}:{PW}".encode()).decode()

    def req(self, method, path, body=None, **headers):
        h = {"Authorization": self.auth, **{k.replace("_", "-"): v for k, v in headers.items()}}
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        assert r.status < 300, (method, path, r.status, data[:300])
        return data


def vevent(uid, day):
    start = f"2026{1 + day % 12:02}{1 + day % 28:02}T{8 + day % 9:02}0000Z"
    end = start[:9] + f"{9 + day % 9:02}" + start[11:]
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:{start}\r\n"
            f"DTEND:{end}\r\nSUMMARY:event {uid}\r\nEND:VEVENT\r\n")


def ics(*events):
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n" + "".join(events) + "END:VCALENDAR\r\n"


def dav_ops(user, name, n, workdir):
    d = Dav(user)
    base = f"/dav/calendars/{user}/{name}/"
    d.req("MKCALENDAR", base)
    path = os.path.join(workdir, f"{name}.ics")
    with open(path, "w") as f:
        f.write(ics(*(vevent(f"{name}-{i}", i) for i in range(n))))
    cli("mailbox", "import", user, name, path)
    out = {}
    out["DAV PUT of a new event"] = median_ms(
        lambda i: d.req("PUT", f"{base}new-{i}.ics", ics(vevent(f"new-{name}-{i}", i)), Content_Type="text/calendar"))
    out["DAV GET of one event"] = median_ms(lambda i: d.req("GET", f"{base}new-{i}.ics"))
    token_body = ('<d:sync-collection xmlns:d="DAV:"><d:sync-token/><d:sync-level>1</d:sync-level>'
                  '<d:prop><d:getetag/></d:prop></d:sync-collection>')
    full = d.req("REPORT", base, token_body).decode()
    token = re.search(r"<d:sync-token>([^<]+)</d:sync-token>", full).group(1)

    def one_change_sync(i):
        nonlocal token
        d.req("PUT", f"{base}new-{i}.ics", ics(vevent(f"new-{name}-{i}", i + 1)), Content_Type="text/calendar")
        t = time.perf_counter()
        got = d.req("REPORT", base, token_body.replace("<d:sync-token/>", f"<d:sync-token>{token}</d:sync-token>")).decode()
        token = re.search(r"<d:sync-token>([^<]+)</d:sync-token>", got).group(1)
        return (time.perf_counter() - t) * 1000
    out["DAV sync-collection with one change"] = statistics.median(one_change_sync(i) for i in range(RUNS))
    out["DAV DELETE of one event"] = median_ms(lambda i: d.req("DELETE", f"{base}new-{i}.ics"))
    out["DAV PROPFIND depth 1 (all etags)"] = median_ms(
        lambda i: d.req("PROPFIND", base, '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>',
                        Depth="1"), runs=21)
    return out


def eas_ops(sizes):
    """ActiveSync on the same mailboxes ((user, messages), ...): a Sync bringing one new
    message, a held Ping woken by a delivery (SMTP 250 to the Ping's answer), an
    ItemOperations fetch of one message; each timed in turns on every mailbox, as
    `imap_ops` does."""
    import threading
    import urllib3
    from pyactivesync import Client
    urllib3.disable_warnings()
    # requests would take a CA bundle from the environment over verify=False.
    for v in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(v, None)
    boxes = []
    for user, n in sizes:
        c = Client(server=f"127.0.0.1:{443 + OFF}", username=f"{user}@bench.example", password=PW,
                   device_id=f"Scale{user}", verify_ssl=False, timeout=120)
        inbox = next(f for f in c.list_folders() if int(f.type) == 2).id
        key = c.sync_folder(inbox).sync_key
        ids = []
        while True:
            r = c.sync_folder(inbox, key, window_size=512)
            ids += [a.server_id for a in r.added]
            key = r.sync_key
            if not r.more_available:
                break
        assert len(ids) >= n, len(ids)
        boxes.append({"user": user, "c": c, "inbox": inbox, "key": key, "ids": ids, "m": imap(user)})
    out = [{} for _ in boxes]

    def each(name, op, runs=RUNS):
        times = [[] for _ in boxes]
        for i in range(runs):
            for k, b in enumerate(boxes):
                times[k].append(op(b, i))
        for k in range(len(boxes)):
            out[k][name] = statistics.median(times[k])

    def one_change(b, i):
        b["m"].append("INBOX", None, None, message(i, f"{b['user']}@bench.example"))
        t = time.perf_counter()
        r = b["c"].sync_folder(b["inbox"], b["key"], window_size=512)
        b["key"] = r.sync_key
        assert len(r.added) == 1, r.added
        return (time.perf_counter() - t) * 1000
    each("EAS Sync bringing one new message", one_change)

    def woken(b, i):
        box = {}
        t = threading.Thread(target=lambda: box.update(
            r=b["c"].ping([b["inbox"]], heartbeat=120), at=time.perf_counter()))
        t.start()
        time.sleep(0.2)
        with smtplib.SMTP("127.0.0.1", 25 + OFF, timeout=30) as s:
            # From the start of the SMTP transaction: the Ping may answer before the
            # client has read the 250 (the message is filed first).
            sent = time.perf_counter()
            s.sendmail("a@example.org", [f"{b['user']}@bench.example"],
                       message(i, f"{b['user']}@bench.example"))
        t.join(timeout=60)
        b["key"] = b["c"].sync_folder(b["inbox"], b["key"], window_size=512).sync_key
        return (box["at"] - sent) * 1000
    each("EAS Ping woken by a delivery (SMTP included)", woken, runs=20)

    def fetch(b, i):
        t = time.perf_counter()
        b["c"].fetch_item(b["inbox"], random.choice(b["ids"]))
        return (time.perf_counter() - t) * 1000
    each("EAS ItemOperations fetch of one message", fetch)
    for b in boxes:
        b["m"].logout()
    return out


def admin_session():
    conn = http.client.HTTPSConnection("127.0.0.1", 443 + OFF, context=CTX, timeout=60)
    conn.request("POST", "/api/v1/session", body=json.dumps({"login": "admin", "password": PW}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    csrf = json.loads(r.read())["csrf"]
    return conn, {"Content-Type": "application/json", "Cookie": r.getheader("Set-Cookie").split(";")[0],
                  "X-CSRF-Token": csrf}


def add_users(start, end):
    conn, headers = admin_session()
    for i in range(start, end):
        conn.request("POST", "/api/v1/users", body=json.dumps(
            {"address": f"p{i:05}@bench.example", "password": PW}), headers=headers)
        r = conn.getresponse()
        r.read()
        assert r.status == 201, r.status


def ldap_ops():
    server = ldap3.Server("127.0.0.1", port=636 + OFF, use_ssl=True, tls=ldap3.Tls(validate=ssl.CERT_NONE))
    c = ldap3.Connection(server, "admin@bench.example", PW, auto_bind=True)
    out = {}
    out["LDAP search by uid"] = median_ms(
        lambda i: c.search("dc=bench,dc=example", "(uid=p00042)", attributes=["mail"]))
    out["LDAP search by mail"] = median_ms(
        lambda i: c.search("dc=bench,dc=example", "(mail=p00007@bench.example)", attributes=["cn"]))
    c.unbind()
    return out


def main():
    workdir = sys.argv[1]
    cli("domain", "add", "bench.example")
    cli("user", "add", "admin@bench.example", "--admin", "--password-stdin", stdin=PW + "\n")
    for u in ("small", "big", "huge"):
        cli("user", "add", f"{u}@bench.example", "--password-stdin", stdin=PW + "\n")
    print(f"## scale: each operation at {SMALL:,} and {BIG:,} items (median of {RUNS}, ms)", flush=True)
    print(f"{'operation':<44} {'kind':<5} {'small':>8} {'big':>8}  ratio  {'huge':>8}  ratio", flush=True)
    t = time.time()
    fill_mailbox("small", SMALL)
    fill_mailbox("big", BIG)
    print(f"(mailboxes of {SMALL:,} and {BIG:,} filled in {time.time() - t:.0f} s)", flush=True)
    sizes = [("small", SMALL), ("big", BIG)]
    if HUGE:
        t = time.time()
        fill_mailbox("huge", HUGE)
        print(f"(mailbox of {HUGE:,} filled in {time.time() - t:.0f} s)", flush=True)
        sizes.append(("huge", HUGE))
    print(f"(indexed and written back {settle():.0f} s later)", flush=True)
    small, big, *huge = imap_ops(sizes)
    huge = huge[0] if huge else {}
    for k in small:
        row(k, "O(1)", small[k], big[k], huge.get(k))
    small, big = eas_ops([("small", SMALL), ("big", BIG)])
    for k in small:
        row(k, "O(1)", small[k], big[k])
    small, big = dav_ops("small", "c-small", SMALL, workdir), dav_ops("big", "c-big", BIG, workdir)
    for k in small:
        row(k, "O(n)" if "PROPFIND" in k else "O(1)", small[k], big[k])
    add_users(0, SMALL)
    small = ldap_ops()
    add_users(SMALL, BIG)
    big = ldap_ops()
    for k in small:
        row(k + " (users)", "O(1)", small[k], big[k])
    over = [r[0] for r in rows if r[-1] != "ok"]
    print(f"over their ratio: {', '.join(over) if over else 'none'}", flush=True)


if __name__ == "__main__":
    main()
