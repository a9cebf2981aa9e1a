"""Fixtures for end-to-end tests: a real `bureau serve` on temporary ports and data."""

import os
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("BUREAU_BIN", ROOT / "target" / "debug" / "bureau"))


def _free_offset():
    for _ in range(100):
        off = random.randrange(20000, 60000 - 1000)
        ok = True
        for port in (80, 443):
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

    def __init__(self, tmp: Path, extra: str = ""):
        self.dir = tmp
        self.offset = _free_offset()
        self.data = tmp / "data"
        self.config = tmp / "bureau.toml"
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
        self.log = open(tmp / "bureau.log", "w")
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
