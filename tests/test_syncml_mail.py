"""SyncML's Mail datastore (OMA DS e-mail objects and RFC 822) from hand-made request
documents: no client that syncs mail over SyncML runs here (SyncEvolution has no mail
source), so the messages are written from OMA DS 1.2 and its Email Data Object, as a
phone sends them. What the device does is checked over IMAP, and the other way round."""

import html
import re
from datetime import datetime, timezone

import pytest
from imapclient import IMAPClient

from conftest import tls_context
from test_syncml import PW, basic, message, post

EMAIL = "application/vnd.omads-email+xml"


@pytest.fixture
def office(bureau):
    bureau.cli("domain", "add", "example.com")
    bureau.cli("user", "add", "alice@example.com", "--password-stdin", input=PW + "\n")
    return bureau


def imap(b):
    c = IMAPClient("127.0.0.1", port=b.port(993), ssl_context=tls_context(), timeout=30)
    c.login("alice", PW)
    return c


def msg(subject, mid, body="Hello."):
    return (f"From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <{mid}@example.com>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n")


def email(read, message_text, flagged=False):
    """An OMA DS e-mail object as a device sends it (the message escaped in emailitem)."""
    return (f"<Email><read>{str(read).lower()}</read><forwarded>false</forwarded><replied>false</replied>"
            f"<received>20261201T100000Z</received><deleted>false</deleted><flagged>{str(flagged).lower()}</flagged>"
            f"<emailitem>{html.escape(message_text)}</emailitem></Email>")


class Session:
    """One SyncML session of device `dev-mail` with a datastore, message by message."""

    def __init__(self, b, sid, target, code, last, nxt, target_extra="", put="", query=""):
        self.b, self.sid, self.msg_id = b, sid, 1
        self.target = target
        alert = (f"{put}<Alert><CmdID>1</CmdID><Data>{code}</Data><Item><Target><LocURI>{target}</LocURI>"
                 f"{target_extra}</Target><Source><LocURI>./m</LocURI></Source><Meta><Anchor xmlns='syncml:metinf'>"
                 f"<Last>{last}</Last><Next>{nxt}</Next></Anchor></Meta></Item></Alert>")
        self.first = self.send(alert, cred=basic("alice", PW), path="/syncml" + (f"?{query}" if query else ""))
        m = re.search(r"<RespURI>([^<]+)</RespURI>", self.first)
        self.path = "/syncml?" + m.group(1).split("?", 1)[1] if m else "/syncml"

    def send(self, body, cred="", path=None):
        raw = message(body, cred=cred).replace(b"<MsgID>1</MsgID>", f"<MsgID>{self.msg_id}</MsgID>".encode())
        raw = raw.replace(b"<SessionID>1<", f"<SessionID>{self.sid}<".encode()).replace(b"dev9", b"dev-mail")
        self.msg_id += 1
        r = post(self.b, raw, path=path or self.path)
        assert r.status_code == 200, r.text
        return r.text

    def sync(self, commands):
        return self.send(f"<Sync><CmdID>2</CmdID><Target><LocURI>{self.target}</LocURI></Target>"
                         f"<Source><LocURI>./m</LocURI></Source>{commands}</Sync>")

    def end(self, maps=()):
        items = "".join(f"<MapItem><Target><LocURI>{g}</LocURI></Target><Source><LocURI>{l}</LocURI></Source>"
                        "</MapItem>" for g, l in maps)
        body = (f"<Map><CmdID>3</CmdID><Target><LocURI>{self.target}</LocURI></Target><Source><LocURI>./m</LocURI>"
                f"</Source>{items}</Map>") if maps else ""
        return self.send(body)


def add(luid, data, ctype=EMAIL, verb="Add"):
    return (f"<{verb}><CmdID>{luid}</CmdID><Meta><Type xmlns='syncml:metinf'>{ctype}</Type></Meta><Item>"
            f"<Source><LocURI>{luid}</LocURI></Source><Data>{html.escape(data)}</Data></Item></{verb}>")


def statuses(text, cmd):
    return dict(re.findall(rf"<CmdRef>(\w+)</CmdRef><Cmd>{cmd}</Cmd>.*?<Data>(\d+)</Data>", text))


def server_adds(text):
    """The server's Adds: GUID -> (type, data, unescaped once)."""
    out = {}
    for m in re.finditer(r"<Add>(.*?)</Add>", text, re.S):
        guid = re.search(r"<Source><LocURI>([^<]+)</LocURI>", m.group(1)).group(1)
        ctype = re.search(r"<Type[^>]*>([^<]+)</Type>", m.group(1)).group(1)
        data = html.unescape(re.search(r"<Data>(.*?)</Data>", m.group(1), re.S).group(1))
        out[guid] = (ctype, data)
    return out


def test_mail_syncs_as_email_objects_both_ways_with_imap(office):
    """A slow sync of "Mail" (INBOX) with a filter on the newest messages: the device gets
    the new ones as e-mail objects with their state, not the old one; its own message is
    stored (seen, as it said), one already there is matched by Message-ID, not doubled.
    Then two-way: its flag change and its delete reach IMAP, IMAP's \\Seen reaches it."""
    b = office
    with imap(b) as c:
        c.append("INBOX", msg("Old news", "old"), flags=[], msg_time=datetime(2020, 1, 5, tzinfo=timezone.utc))
        c.append("INBOX", msg("Lunch", "lunch"), flags=[b"\\Seen"])
        c.append("INBOX", msg("Invoice", "invoice"), flags=[])
    since = "<Filter><Record><Item><Meta><Type xmlns='syncml:metinf'>syncml:filtertype-cgi</Type></Meta>" \
            "<Data>received&amp;GE;20260101T000000Z</Data></Item></Record></Filter>"
    s = Session(b, 1, "Mail", 201, 0, 1, target_extra=since)
    assert "<Data>201</Data>" in s.first and "<Data>406</Data>" not in s.first, s.first
    reply = s.sync(add("p1", email(True, msg("From the phone", "phone"))) +
                   add("p2", email(False, msg("Lunch", "lunch"))))
    assert statuses(reply, "Add") == {"p1": "201", "p2": "200"}, reply
    adds = server_adds(reply)
    assert {t for t, _ in adds.values()} == {EMAIL}, reply
    texts = [d for _, d in adds.values()]
    assert len(texts) == 1 and "Subject: Invoice" in texts[0] and "<read>false</read>" in texts[0], texts
    [(invoice_guid, _)] = adds.items()
    s.end([(invoice_guid, "p3")])
    with imap(b) as c:
        c.select_folder("INBOX")
        got = c.fetch(c.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        subjects = {v[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip(): v[b"FLAGS"] for v in got.values()}
    assert sorted(subjects) == ["Subject: From the phone", "Subject: Invoice", "Subject: Lunch",
                                "Subject: Old news"], subjects
    assert b"\\Seen" in subjects["Subject: From the phone"]

    # Two-way: the device reads and flags the invoice and deletes its own message; IMAP
    # flags Lunch, which the device holds as p2.
    with imap(b) as c:
        c.select_folder("INBOX")
        [lunch] = c.search(["SUBJECT", "Lunch"])
        c.add_flags([lunch], [b"\\Flagged"])
    s = Session(b, 2, "Mail", 200, 1, 2)
    assert "<Data>200</Data>" in s.first, s.first
    flags_only = "<Email><read>true</read><flagged>true</flagged></Email>"
    reply = s.sync(add("p3", flags_only, verb="Replace")
                   + "<Delete><CmdID>9</CmdID><Item><Source><LocURI>p1</LocURI></Source></Item></Delete>")
    assert statuses(reply, "Replace") == {"p3": "200"} and statuses(reply, "Delete") == {"9": "200"}, reply
    replaced = re.findall(r"<Replace>.*?<Target><LocURI>([^<]+)</LocURI>.*?<Data>(.*?)</Data>", reply, re.S)
    assert [(l, "<flagged>true</flagged>" in html.unescape(d)) for l, d in replaced] == [("p2", True)], reply
    s.end()
    with imap(b) as c:
        c.select_folder("INBOX")
        assert not c.search(["SUBJECT", "From the phone"])
        [invoice] = c.search(["SUBJECT", "Invoice"])
        assert set(c.get_flags([invoice])[invoice]) == {b"\\Seen", b"\\Flagged"}


def test_another_folder_as_rfc822_headers_only(office):
    """A device whose DevInf prefers message/rfc822 for "mail/Sent" gets Sent's messages as
    plain RFC 822, cut to the headers by its field filter (emailitem, MaxSize 0); its own
    RFC 822 message is stored in Sent."""
    b = office
    with imap(b) as c:
        c.append("Sent", msg("Quote", "quote", body="A long body " * 50), flags=[b"\\Seen"])
    devinf = ("<Put><CmdID>5</CmdID><Meta><Type xmlns='syncml:metinf'>application/vnd.syncml-devinf+xml</Type>"
              "</Meta><Item><Source><LocURI>./devinf12</LocURI></Source><Data><DevInf xmlns='syncml:devinf'>"
              "<VerDTD>1.2</VerDTD><Man>Test</Man><Mod>Phone</Mod><DevID>dev-mail</DevID><DevTyp>phone</DevTyp>"
              "<DataStore><SourceRef>./m</SourceRef><Rx-Pref><CTType>message/rfc822</CTType><VerCT>1.0</VerCT>"
              "</Rx-Pref><Tx-Pref><CTType>message/rfc822</CTType><VerCT>1.0</VerCT></Tx-Pref><SyncCap>"
              "<SyncType>1</SyncType><SyncType>2</SyncType></SyncCap></DataStore></DevInf></Data></Item></Put>")
    headers_only = ("<Filter><Field><Item><Meta><Type xmlns='syncml:metinf'>application/vnd.syncml-devinf+xml"
                    "</Type></Meta><Data><Property xmlns='syncml:devinf'><PropName>emailitem</PropName>"
                    "<MaxSize>0</MaxSize></Property></Data></Item></Field></Filter>")
    s = Session(b, 1, "mail/Sent", 201, 0, 1, target_extra=headers_only, put=devinf)
    assert "<Data>201</Data>" in s.first and "<Data>406</Data>" not in s.first, s.first
    reply = s.sync(add("s1", msg("Sent from the phone", "sent-phone"), ctype="message/rfc822"))
    assert statuses(reply, "Add") == {"s1": "201"}, reply
    [(ctype, data)] = server_adds(reply).values()
    assert ctype == "message/rfc822" and "Subject: Quote" in data and "A long body" not in data, data
    s.end()
    with imap(b) as c:
        c.select_folder("Sent")
        assert len(c.search(["SUBJECT", "Sent from the phone"])) == 1
        c.select_folder("INBOX")
        assert not c.search("ALL")


def test_bad_mail_gets_its_status_and_changes_nothing(office):
    """An unknown folder is 404, a filter the server cannot apply 406 (and a filter on
    contacts too); an item that is not a message, or an e-mail object that is not one, 400;
    a change to a message the device does not hold, without a message, 400. INBOX is left
    as it was."""
    b = office
    assert "<Data>404</Data>" in Session(b, 1, "mail/Nope", 201, 0, 1).first
    subject = "<Filter><Record><Item><Meta><Type xmlns='syncml:metinf'>syncml:filtertype-cgi</Type></Meta>" \
              "<Data>subject&amp;CON;lunch</Data></Item></Record></Filter>"
    assert "<Data>406</Data>" in Session(b, 2, "Mail", 201, 0, 1, target_extra=subject).first
    since = subject.replace("subject&amp;CON;lunch", "received&amp;GE;20260101")
    assert "<Data>406</Data>" in Session(b, 3, "contacts", 201, 0, 1, target_extra=since).first
    s = Session(b, 4, "Mail", 201, 0, 1)
    reply = s.sync(add("b1", "just words, no header", ctype="message/rfc822")
                   + add("b2", "<contact><FileAs>x</FileAs></contact>")
                   + add("b3", "<Email><read>true</read></Email>", verb="Replace"))
    assert statuses(reply, "Add") == {"b1": "400", "b2": "400"}, reply
    assert statuses(reply, "Replace") == {"b3": "400"}, reply
    s.end()
    with imap(b) as c:
        c.select_folder("INBOX")
        assert not c.search("ALL")
