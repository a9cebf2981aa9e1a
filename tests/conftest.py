"""Fixtures for end-to-end tests: a real `bureau serve` on temporary ports and data."""

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("BUREAU_BIN", ROOT / "target" / "debug" / "bureau"))
# Standard ports the daemon listens on, before the offset.
PORTS = (25, 80, 143, 389, 443, 465, 587, 636, 993)


def _free_offset():
    for _ in range(100):
        off = random.randrange(20000, 60000 - 1000)
        ok = True
        for port in PORTS:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port + off))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return off
    raise RuntimeError("no free ports")


def end(proc, wait, group=False):
    """Stops a process (with `group`, the session it leads, its children too): asked, then
    killed after `wait` seconds."""
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    try:
        send(signal.SIGTERM)
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(wait)
    except ProcessLookupError:
        pass


def without_recent(x):
    """Flags as a test compares them: \\Recent is the session's own (RFC 3501 2.3.2, given to
    whichever session is told of a message first), so it is left out. Takes a FETCH line
    (bytes), or imapclient's tuple or set of flags."""
    import re
    if isinstance(x, bytes):
        return re.sub(rb" ?\\Recent", b"", x)
    if isinstance(x, set):
        return x - {b"\\Recent"}
    return tuple(f for f in x if f != b"\\Recent")


def tls_context():
    """TLS to the daemon under test, whose certificate is self-signed."""
    import ssl

    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class Zone:
    """A real DNS server (dnslib) on loopback whose records tests set: the daemons under
    test use it for MX lookups and SPF/DKIM/DMARC checks, so nothing leaves the machine."""

    def __init__(self):
        from dnslib import QTYPE, RCODE, RR
        from dnslib.server import BaseResolver, DNSServer

        self.records = {}
        zone = self

        class Resolver(BaseResolver):
            def resolve(self, request, handler):
                reply = request.reply()
                qname = str(request.q.qname).lower()
                qtype = QTYPE[request.q.qtype]
                names = {n for (n, _) in zone.records}
                for value in zone.records.get((qname, qtype), []):
                    reply.add_answer(*RR.fromZone(f"{qname} 60 IN {qtype} {value}"))
                if qname not in names:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply

        self.port = _free_port()
        self.server = DNSServer(Resolver(), port=self.port, address="127.0.0.1")
        self.server.start_thread()

    def add(self, name, rtype, value):
        if rtype == "TXT":
            chunks = [value[i : i + 250] for i in range(0, len(value), 250)]
            value = " ".join('"' + c.replace('"', '\\"') + '"' for c in chunks)
        self.records.setdefault((name.lower().rstrip(".") + ".", rtype), []).append(value)

    def stop(self):
        self.server.stop()


class Bureau:
    """A running daemon, its CLI, and its ports."""

    def __init__(self, tmp: Path, extra: str = "", _reuse: bool = False, dns_port: int = 0,
                 hostname: str | None = "box.example.com"):
        self.dir = tmp
        self.data = tmp / "data"
        self.config = tmp / "bureau.toml"
        if not _reuse:
            self.offset = _free_offset()
            dns = f'dns_servers = ["127.0.0.1:{dns_port}"]\ndns_timeout_secs = 2\n'
            extra = extra.replace("[smtp]\n", "[smtp]\n" + dns, 1) if "[smtp]\n" in extra else extra + "\n[smtp]\n" + dns
            name = f'hostname = "{hostname}"\n' if hostname else ""
            self.config.write_text(
            f"""[server]
{name}data_dir = "{self.data}"
user = ""
bind = ["127.0.0.1"]
port_offset = {self.offset}

[directory]
argon2_memory_kib = 1024
argon2_passes = 1

{extra}
"""
            )
        self.log = open(tmp / "bureau.log", "a")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        deadline = time.time() + 30
        while True:
            line = self.proc.stdout.readline()
            if line.strip() == "bureau: ready":
                break
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"bureau exited: {(tmp / 'bureau.log').read_text()}")
            if time.time() > deadline:
                raise RuntimeError("bureau not ready")

    def port(self, standard: int) -> int:
        return standard + self.offset

    def cli(self, *args, input: str = "", check: bool = True):
        r = subprocess.run(
            [str(BIN), "--socket", str(self.data / "admin.sock"), *args],
            input=input,
            capture_output=True,
            text=True,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"bureau {' '.join(args)}: {r.stderr}")
        return r

    def messages(self, uid, mailbox="INBOX"):
        """The raw messages in a user's mailbox, oldest first."""
        items = json.loads(self.cli("--json", "mailbox", "items", uid, mailbox).stdout)
        out = []
        for it in items:
            r = subprocess.run(
                [str(BIN), "--socket", str(self.data / "admin.sock"), "mailbox", "get", uid, mailbox, str(it["id"])],
                capture_output=True, check=True,
            )
            out.append(r.stdout)
        return out

    def kill(self):
        """SIGKILL, as a power cut would stop it."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def restart(self):
        self.stop()
        self.__init__(self.dir, _reuse=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def dns_zone():
    z = Zone()
    yield z
    z.stop()


@pytest.fixture
def bureau_factory(tmp_path, dns_zone):
    started = []

    def start(extra: str = "", name: str = "b", **kw):
        d = tmp_path / name
        d.mkdir()
        b = Bureau(d, extra, dns_port=dns_zone.port, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def bureau(bureau_factory):
    return bureau_factory()


class TestMX:
    """A real SMTP server (aiosmtpd) on loopback playing another domain's MX or a
    provider's smarthost. `script` maps a stage ("rcpt", "data") to the replies to give,
    in order; once used up, it answers 250."""

    def __init__(self, auth=None, port=None, host="127.0.0.1"):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.received = []
        self.script = {"rcpt": [], "data": []}
        self.auth_seen = []
        mx = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if mx.script["rcpt"]:
                    return mx.script["rcpt"].pop(0)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                if mx.script["data"]:
                    return mx.script["data"].pop(0)
                mx.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
                return "250 OK queued"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth is not None and (auth_data.login, auth_data.password) == auth
            if ok:
                mx.auth_seen.append(auth_data.login.decode())
            return AuthResult(success=ok)

        self.port = port or _free_port()
        kwargs = {}
        if auth is not None:
            kwargs = dict(authenticator=authenticator, auth_require_tls=False, auth_required=True)
        self.controller = Controller(Handler(), hostname=host, port=self.port, **kwargs)
        self.controller.start()

    def stop(self):
        self.controller.stop()


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def test_mx():
    started = []

    def start(auth=None):
        m = TestMX(auth)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()
