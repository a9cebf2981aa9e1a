"""Server-alerted sync (OMA DS 1.2 package #0 over WAP push on UDP), received by a UDP
socket standing in for the phone's push port: no client here takes SyncML pushes, so the
notification is read by this test's own reading of OMA DS Notification 1.2 (the layout
in services/syncml/src/san.rs's header)."""

import base64
import hashlib
import socket

import pytest

from test_dav import dav
from test_syncml import PW
from test_syncml_mail import Session, add, office  # noqa: F401 (the fixture)


def card(uid, name):
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEND:VCARD\r\n"


def read_push(pdu):
    """A WAP push PDU's notification: (header fields, [(sync type, uri)], digest ok)."""
    assert pdu[1] == 0x06, pdu[:8]
    headers_len = pdu[2]
    headers = pdu[3:3 + headers_len]
    assert headers == bytes([0xCE, 0xAF, 0x85]), headers  # ds.notification, push.syncml
    san = pdu[3 + headers_len:]
    digest, note = san[:16], san[16:]
    bits = int.from_bytes(note[:7], "big")
    version, ui, initiator, session = bits >> 46, (bits >> 44) & 3, (bits >> 43) & 1, bits & 0xFFFF
    n = note[7]
    server = note[8:8 + n].decode()
    body = note[8 + n:]
    count, at, syncs = body[0] >> 4, 1, []
    for _ in range(count):
        kind = 200 + (body[at] >> 4)
        length = body[at + 4]
        syncs.append((kind, body[at + 5:at + 5 + length].decode()))
        at += 5 + length
    credential = base64.b64encode(hashlib.md5(f"alice:{PW}".encode()).digest()).decode()
    inner = base64.b64encode(hashlib.md5(note).digest()).decode()
    ok = hashlib.md5(f"{credential}::{inner}".encode()).digest() == digest
    return (version, ui, initiator, session, server), syncs, ok


def quiet(udp, seconds=5):
    """Nothing came on the push port for a while (the server settles changes for 2 s)."""
    udp.settimeout(seconds)
    with pytest.raises(socket.timeout):
        udp.recvfrom(4096)


def test_a_change_by_another_hand_alerts_the_device_that_asked(office):  # noqa: F811
    """A device whose URL says `push=<port>` is alerted (206, two-way, on "contacts") when
    CardDAV changes its contacts, not when it changes them itself; it answers with the
    alerted type and gets the change; a URL without `push` ends the alerts."""
    b = office
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    s = Session(b, 1, "contacts", 201, 0, 1, query=f"push={port}")
    assert "<Data>201</Data>" in s.first, s.first
    s.sync(add("c1", card("own", "Own Card"), ctype="text/vcard"))
    s.end()
    quiet(udp)

    status, _, _ = dav(b, "PUT", "/dav/addressbooks/alice/contacts/new.vcf", card("new", "From Dav"),
                       Content_Type="text/vcard")
    assert status == 201
    udp.settimeout(30)
    pdu, _ = udp.recvfrom(4096)
    (version, ui, initiator, _, server), syncs, digest_ok = read_push(pdu)
    assert (version, ui, initiator) == (12, 0, 1)
    assert server == "https://box/syncml" and syncs == [(206, "contacts")] and digest_ok

    s = Session(b, 2, "contacts", 206, 1, 2, query=f"push={port}")
    assert "<Data>200</Data>" in s.first and "<Data>508</Data>" not in s.first, s.first
    reply = s.sync("")
    assert "FN:From Dav" in reply, reply
    s.end()

    s = Session(b, 3, "contacts", 200, 2, 3)
    s.sync("")
    s.end()
    assert dav(b, "PUT", "/dav/addressbooks/alice/contacts/late.vcf", card("late", "Late"),
               Content_Type="text/vcard")[0] == 201
    quiet(udp)
