#!/usr/bin/env python3
"""Boot time of the appliance image (bench/run.sh boot): powers a fresh copy of
target/image/bureau.qcow2 on in QEMU (TCG unless BUREAU_QEMU_ACCEL says otherwise) and
measures from QEMU's start to each forwarded port answering as its protocol should, for the
first boot and for a reboot. Prints a table for docs/BENCHMARKS.md. BOOT_BENCH_IMAGE boots
another image (an earlier build, side by side in one run)."""

import http.client
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFFSET = int(os.environ.get("BOOT_BENCH_PORTS", "41000"))
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def greets(port, tls, expect):
    with socket.create_connection(("127.0.0.1", OFFSET + port), timeout=3) as s:
        if tls:
            s = CTX.wrap_socket(s)
        return s.recv(64).startswith(expect)


def https_ok():
    c = http.client.HTTPSConnection("127.0.0.1", OFFSET + 443, context=CTX, timeout=3)
    c.request("GET", "/api/v1/setup")
    return c.getresponse().status == 200


CHECKS = {
    "smtp 25": lambda: greets(25, False, b"220"),
    "submission 587": lambda: greets(587, False, b"220"),
    "submissions 465": lambda: greets(465, True, b"220"),
    "imap 143": lambda: greets(143, False, b"* OK"),
    "imaps 993": lambda: greets(993, True, b"* OK"),
    "https 443": https_ok,
}


def wait_all(t0, timeout=600):
    """Seconds from t0 to each check's first success. Until SMTP answers, a new probe of it
    starts every 0.25 s, each in its own thread: a probe sent before the guest's network is up
    hangs until its timeout (QEMU's user network accepts on the host at once and its SYN to the
    guest is lost), and probes in turn, as this did before 2026-12-06, measured boots up to 3 s
    late. Then the other ports, in turn (the daemon opens them all together)."""
    seen = {}
    lock = threading.Lock()

    def probe(name, check):
        try:
            if check():
                with lock:
                    seen.setdefault(name, time.monotonic() - t0)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass

    first = next(iter(CHECKS))
    while first not in seen and time.monotonic() - t0 < timeout:
        threading.Thread(target=probe, args=(first, CHECKS[first]), daemon=True).start()
        time.sleep(0.25)
    while len(seen) < len(CHECKS) and time.monotonic() - t0 < timeout:
        for name, check in CHECKS.items():
            if name not in seen:
                probe(name, check)
        time.sleep(0.2)
    return dict(seen)


def main():
    tmp = Path(tempfile.mkdtemp(prefix="bureau-boot-"))
    disk = tmp / "disk.qcow2"
    image = Path(os.environ.get("BOOT_BENCH_IMAGE", ROOT / "target/image/bureau.qcow2")).resolve()
    print(f"image: {image}")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image),
                    "-F", "qcow2", str(disk), "4G"], check=True)
    env = dict(os.environ, BUREAU_QEMU_DISK=str(disk), BUREAU_QEMU_SERIAL=str(tmp / "serial.log"),
               BUREAU_QEMU_PORTS=str(OFFSET), BUREAU_QEMU_MONITOR=str(tmp / "mon.sock"))
    env.setdefault("BUREAU_QEMU_ACCEL", "tcg")
    rows = []
    for boot in ("first boot", "second boot"):
        t0 = time.monotonic()
        q = subprocess.Popen([str(ROOT / "qemu/run.sh")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen = wait_all(t0)
        rows.append((boot, seen))
        # The power button (ACPI), then power on again for the second run.
        m = socket.socket(socket.AF_UNIX)
        m.connect(str(tmp / "mon.sock"))
        pressed = time.monotonic()
        m.sendall(b"system_powerdown\n")
        try:
            q.wait(120)
            print(f"{boot}: powered off {time.monotonic() - pressed:.1f} s after its button was pressed")
        except subprocess.TimeoutExpired:
            print(f"{boot}: still on 120 s after its button was pressed; power cut")
            q.kill()
            q.wait()
    print(f"accel {env['BUREAU_QEMU_ACCEL']}, 2 vCPUs, 512 MB; seconds from QEMU start to the port answering")
    print("| port | " + " | ".join(r[0] for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for name in CHECKS:
        print(f"| {name} | " + " | ".join(f"{r[1].get(name, float('nan')):.1f}" for r in rows) + " |")
    print("| all | " + " | ".join(f"{max(r[1].values()) if len(r[1]) == len(CHECKS) else float('nan'):.1f}"
                                  for r in rows) + " |")


if __name__ == "__main__":
    sys.exit(main())
