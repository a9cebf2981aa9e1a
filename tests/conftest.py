"""Fixtures for end-to-end tests: a real `bureau serve` on temporary ports and data."""

import json
import os
import random
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


class Bureau:
    """A running daemon, its CLI, and its ports."""

    def __init__(self, tmp: Path, extra: str = "", _reuse: bool = False):
        self.dir = tmp
        self.data = tmp / "data"
        self.config = tmp / "bureau.toml"
        if not _reuse:
            self.offset = _free_offset()
            self.config.write_text(
            f"""[server]
hostname = "box.example.com"
data_dir = "{self.data}"
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
def bureau_factory(tmp_path):
    started = []

    def start(extra: str = "", name: str = "b"):
        d = tmp_path / name
        d.mkdir()
        b = Bureau(d, extra)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def bureau(bureau_factory):
    return bureau_factory()
