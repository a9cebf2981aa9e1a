"""Run by bench/syncml.sh: SyncEvolution (file backend) as the phone against a SyncML
server on loopback, Bureau or, with SERVER=syncevolution (inside a network namespace of its
own, as syncevo-http-server listens on every interface), SyncEvolution's own server
(`syncevo-http-server` and `syncevo-dbus-server`, file stores). Each line: what was synced,
the wall time of `syncevolution --sync`, what the client sent and got (its own report), and
the CPU seconds the client and the server spent on it."""

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

WORK = Path(sys.argv[1])
SHIM = os.environ["SHIM"]
N = int(os.environ.get("N", 5000))
SERVER = os.environ.get("SERVER", "bureau")
FORMATS = {"addressbook": "text/vcard", "calendar": "text/calendar"}
PW = "long enough pw"
PEER_PORT = 9999


def env_of(home):
    return dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "c"),
                XDG_DATA_HOME=str(home / "d"), XDG_CACHE_HOME=str(home / "k"))


def syncevolution(env, *args):
    r = subprocess.run(["syncevolution", "--daemon=no", *args], env=env, capture_output=True,
                       text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout


class Peer:
    """SyncEvolution as the server: its datastores in the context @server, one peer
    configuration per device (matched by the device's id), the HTTP front end started
    here; the D-Bus server it starts is found by name."""

    def __init__(self):
        self.home = WORK / "peer-server"
        self.env = env_of(self.home)
        for source in FORMATS:
            folder = self.home / source
            folder.mkdir(parents=True)
            syncevolution(self.env, "--configure", "backend=file", f"databaseFormat={FORMATS[source]}",
                          f"database=file://{folder}", "@server", source)
        subprocess.run(["dbus-update-activation-environment", "HOME", "XDG_CONFIG_HOME",
                        "XDG_DATA_HOME", "XDG_CACHE_HOME"], env=self.env, check=True)
        self.http = subprocess.Popen(["/usr/bin/python3", "/usr/bin/syncevo-http-server", "--quiet",
                                      f"http://127.0.0.1:{PEER_PORT}/syncevolution"],
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        self.peak = 0
        threading.Thread(target=self.sample, daemon=True).start()

    def add_device(self, name, source):
        syncevolution(self.env, "--configure", "--keyring=no", "--template", "SyncEvolution_Client",
                      "PeerIsClient=1", f"remoteDeviceId={name}", "username=alice", f"password={PW}",
                      # As on the client: no copies of the database around each sync.
                      "printChanges=0", "dumpData=0",
                      f"{name}@server", *FORMATS)

    def pids(self):
        found = subprocess.run(["pgrep", "-f", "syncevo-dbus"], capture_output=True, text=True).stdout
        return [self.http.pid, *map(int, found.split())]

    def cpu(self):
        """The server's CPU seconds: its processes' own, and that of the session helpers
        they have reaped."""
        total = 0.0
        for pid in self.pids():
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
        return total

    def sample(self):
        while True:
            rss = 0
            for pid in self.pids():
                try:
                    m = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
                    rss += int(m.group(1)) if m else 0
                except OSError:
                    pass
            self.peak = max(self.peak, rss)
            time.sleep(0.1)


PEER = Peer() if SERVER == "syncevolution" else None
URL = (f"http://127.0.0.1:{PEER_PORT}/syncevolution" if PEER
       else f"https://127.0.0.1:{443 + int(os.environ.get('OFF', 0))}/syncml")


def server_cpu():
    if PEER:
        return PEER.cpu()
    fields = Path(f"/proc/{os.environ['BPID']}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_cpu():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Phone:
    def __init__(self, name, source, wbxml):
        self.home = WORK / name
        self.folder = self.home / "data"
        self.folder.mkdir(parents=True)
        self.source = source
        self.env = dict(env_of(self.home), LD_PRELOAD=SHIM)
        if PEER:
            PEER.add_device(name, source)
        syncevolution(self.env, "--configure", "backend=file", f"databaseFormat={FORMATS[source]}",
                      f"database=file://{self.folder}", "@client", source)
        syncevolution(self.env, "--configure", "--keyring=no", "--template", "SyncEvolution",
                      f"syncURL={URL}", "username=alice", f"password={PW}", f"deviceId={name}",
                      f"enableWBXML={int(wbxml)}", "SSLVerifyServer=0", "SSLVerifyHost=0",
                      "printChanges=0", "dumpData=0", "bureau@client", source)

    def sync(self, mode):
        t, client, server = time.perf_counter(), client_cpu(), server_cpu()
        out = syncevolution(self.env, "--sync", mode, "bureau@client", self.source)
        took = time.perf_counter() - t
        # The status report's last table: "<mode>, N KB sent by client, M KB received".
        kb = re.search(r"(\d+) KB sent by client, (\d+) KB received", out)
        kb = (kb.group(1), kb.group(2)) if kb else ("?", "?")
        return took, kb, (client_cpu() - client, server_cpu() - server)


def card(i):
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i}\r\nN:{i};Person;;;\r\n"
            f"TEL;TYPE=CELL:+33 6 {i:08}\r\nEMAIL:p{i}@example.org\r\nEND:VCARD\r\n")


def event(i):
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:bench-{i}\r\n"
            f"DTSTAMP:20261201T000000Z\r\nDTSTART:2027{1 + i % 12:02}{1 + i % 28:02}T090000Z\r\n"
            f"DTEND:2027{1 + i % 12:02}{1 + i % 28:02}T100000Z\r\nSUMMARY:Meeting {i}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def line(what, result, rate=True):
    took, kb, (client, server) = result
    items = f"{N / took:7.0f} items/s" if rate else " " * 15
    print(f"{SERVER:<13} {what:<46} {took:7.2f} s {items}  sent {kb[0]:>5} KB, got {kb[1]:>5} KB"
          f"  CPU client {client:5.2f} s, server {server:5.2f} s", flush=True)


for source, make, label in (("addressbook", card, "contacts"), ("calendar", event, "events")):
    phone = Phone(f"{label}-xml", source, wbxml=False)
    for i in range(N):
        (phone.folder / f"{i}").write_text(make(i))
    line(f"slow sync, {N} {label} from the device, XML", phone.sync("slow"))
    # 50 changes on the device, then two-way.
    for i in range(50):
        (phone.folder / f"{i}").write_text(make(i).replace(f" {i}\r\n", f" {i} changed\r\n", 1))
    line("two-way, 50 changes on the device, XML", phone.sync("two-way"), rate=False)
    line("two-way, no change, XML", phone.sync("two-way"), rate=False)
    if source == "addressbook":
        # A second, empty device: the server's N come to it.
        other = Phone(f"{label}-wbxml", source, wbxml=True)
        line(f"slow sync, {N} {label} to an empty device, WBXML", other.sync("slow"))
        assert len(list(other.folder.iterdir())) == N


def open_sessions(count=100):
    """Memory per open session: `count` devices each begin a slow sync of the contacts
    (now N on the server) with 4,000-byte messages, so that each session holds N pending
    changes; Bureau's RSS before and after."""
    import base64
    import requests
    import urllib3
    urllib3.disable_warnings()
    cred = base64.b64encode(f"alice:{PW}".encode()).decode()

    def msg(dev, msg_id, body, cred_part=""):
        return (f"<SyncML xmlns='SYNCML:SYNCML1.2'><SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto>"
                f"<SessionID>1</SessionID><MsgID>{msg_id}</MsgID><Target><LocURI>{URL}</LocURI></Target>"
                f"<Source><LocURI>{dev}</LocURI></Source>{cred_part}<Meta><MaxMsgSize xmlns='syncml:metinf'>"
                f"4000</MaxMsgSize></Meta></SyncHdr><SyncBody>{body}<Final/></SyncBody></SyncML>").encode()

    def post(url, body):
        r = requests.post(url, data=body, verify=False, timeout=60,
                          headers={"Content-Type": "application/vnd.syncml+xml"})
        assert r.status_code == 200, r.text
        return r.text

    def rss():
        return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{os.environ['BPID']}/status").read_text()).group(1))

    before = rss()
    for n in range(count):
        dev = f"open-{n}"
        first = post(URL, msg(dev, 1, "<Alert><CmdID>1</CmdID><Data>201</Data><Item><Target><LocURI>contacts"
                                      "</LocURI></Target><Source><LocURI>./c</LocURI></Source><Meta><Anchor "
                                      "xmlns='syncml:metinf'><Next>1</Next></Anchor></Meta></Item></Alert>",
                                 "<Cred><Meta><Type xmlns='syncml:metinf'>syncml:auth-basic</Type></Meta>"
                                 f"<Data>{cred}</Data></Cred>"))
        resp = re.search(r"<RespURI>([^<]+)</RespURI>", first).group(1)
        url = URL + "?" + resp.split("?", 1)[1]
        reply = post(url, msg(dev, 2, "<Sync><CmdID>1</CmdID><Target><LocURI>contacts</LocURI></Target>"
                                      "<Source><LocURI>./c</LocURI></Source></Sync>"))
        assert "<Add>" in reply and "<Final" not in reply
    grown = rss() - before
    print(f"{SERVER:<13} {count} open sessions, each with {N} changes pending: RSS +{grown // 1024} MB, "
          f"{grown / count:.0f} kB per session", flush=True)


if not PEER:
    open_sessions()
if PEER:
    print(f"{SERVER:<13} peak RSS (HTTP front end, D-Bus server, session helper): {PEER.peak // 1024} MB")
    PEER.http.terminate()
