"""kill -9 while clients write (issue 17): IMAP APPEND and ActiveSync Sync Adds run at full
speed, the daemon is killed with SIGKILL at a random moment, started again on the same data,
and every write a client was told was done (a tagged OK with APPENDUID, an EAS Status 1) must
be there. The store's own SIGKILL test covers raw writes; SMTP's is in test_smtp."""

import imaplib
import json
import random
import threading
import time

import urllib3

from conftest import tls_context as ctx

PW = "long enough pw"
CYCLES = 4


def appender(b, acked, stop, errors):
    try:
        m = imaplib.IMAP4_SSL("127.0.0.1", b.port(993), ssl_context=ctx(), timeout=30)
        m.login("alice", PW)
        n = 0
        while not stop.is_set():
            subject = f"durable-{b.cycle}-{n}"
            msg = f"From: a@example.com\r\nSubject: {subject}\r\n\r\n{'x' * random.randrange(10, 60000)}\r\n"
            typ, data = m.append("INBOX", None, None, msg.encode())
            if typ == "OK":
                acked.append(subject)
            n += 1
    except (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error):
        pass  # the daemon was killed under us
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


def phone(b, acked, stop, errors):
    from pyactivesync import Client
    from pyactivesync.models import Contact

    try:
        with Client(server=f"127.0.0.1:{b.port(443)}", username="alice@example.com", password=PW,
                    device_id=f"Durable{b.cycle}", verify_ssl=False) as c:
            folder = next(f for f in c.list_folders() if int(f.type) == 9).id
            key = c.sync_folder(folder).sync_key
            n = 0
            while not stop.is_set():
                name = f"Durable{b.cycle}x{n}"
                r = c.create_contact(folder, key, Contact(first_name=name, last_name="Kill"))
                if r.status == "1":
                    acked.append(name)
                    key = r.sync_key
                n += 1
    except Exception as e:  # noqa: BLE001
        if stop.is_set() or "Connection" in type(e).__name__ or "connection" in str(e).lower():
            return
        errors.append(e)


def test_acknowledged_appends_and_phone_writes_survive_sigkill(bureau, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    urllib3.disable_warnings()
    b = bureau
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "alice@example.com", "--password-stdin", input=PW + "\n")
    mails, contacts, errors = [], [], []
    rnd = random.Random(40)
    for cycle in range(CYCLES):
        b.cycle = cycle
        stop = threading.Event()
        workers = [threading.Thread(target=appender, args=(b, mails, stop, errors)),
                   threading.Thread(target=appender, args=(b, mails, stop, errors)),
                   threading.Thread(target=phone, args=(b, contacts, stop, errors))]
        for w in workers:
            w.start()
        time.sleep(1.5 + rnd.random() * 2)
        b.kill()
        stop.set()
        for w in workers:
            w.join(timeout=60)
        b.restart()
    assert not errors, errors
    assert len(mails) > 20 and len(contacts) > 5, (len(mails), len(contacts))
    print(f"{len(mails)} APPENDs and {len(contacts)} phone contacts acknowledged over {CYCLES} kills")

    # The dashboard says the last run did not stop cleanly; a clean restart clears it.
    status = json.loads(b.cli("--json", "status").stdout)
    assert status["unclean_stop"], status
    assert status["internal_errors"] == 0
    b.restart()
    assert json.loads(b.cli("--json", "status").stdout)["unclean_stop"] is None

    m = imaplib.IMAP4_SSL("127.0.0.1", b.port(993), ssl_context=ctx(), timeout=60)
    m.login("alice", PW)
    m.select("INBOX")
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    stored = {part[1].decode().split(":", 1)[1].strip() for part in data if isinstance(part, tuple)}
    lost = [s for s in mails if s not in stored]
    assert not lost, f"{len(lost)} acknowledged APPENDs lost of {len(mails)}: {lost[:5]}"

    items = json.loads(b.cli("--json", "mailbox", "items", "alice", "contacts").stdout)
    cards = b"".join(b.messages("alice", "contacts"))
    lost = [n for n in contacts if n.encode() not in cards]
    assert not lost, f"{len(lost)} acknowledged phone contacts lost of {len(contacts)} ({len(items)} stored)"
