"""Exchange ActiveSync with a real EAS 16.1 client (pyactivesync from PyPI): the device is
provisioned, lists its folders, and is refused until it holds the policy key; plus the
protocol's edges (OPTIONS, the packed query string, bad input) with requests."""

import base64
import json
import struct

import pytest
import requests
import urllib3

from pyactivesync import Client
from pyactivesync.exceptions import StatusError
from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find, find_all, text_of, wtag

urllib3.disable_warnings()
PW = "long enough pw"
# pyactivesync's tables stop at EASProvisionDoc: the policy settings by their tokens (MS-ASWBXML
# code page 14: AllowHTMLEmail 0x29, DevicePasswordEnabled 0x0E).
ALLOW_HTML_EMAIL = "Provision.0x29"
DEVICE_PASSWORD_ENABLED = "Provision.0x0E"


@pytest.fixture
def office(bureau, monkeypatch):
    # The box's certificate is self-signed: requests would take these over verify=False.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    bureau.cli("domain", "add", "example.com")
    bureau.cli("user", "add", "alice@example.com", "--password-stdin", input=PW + "\n")
    return bureau


def client(b, device="PyTestDev1", username="alice@example.com", password=PW):
    return Client(server=f"127.0.0.1:{b.port(443)}", username=username, password=password,
                  device_id=device, verify_ssl=False)


def office_with_mx(bureau_factory, test_mx, monkeypatch):
    """A box whose mail to remote.example goes to a test MX, with alice and bob."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    mx = test_mx()
    office = bureau_factory(f'\n[smtp.routes]\n"remote.example" = "127.0.0.1:{mx.port}"\n')
    office.cli("domain", "add", "example.com")
    for u in ("alice", "bob"):
        office.cli("user", "add", f"{u}@example.com", "--password-stdin", input=PW + "\n")
    return office, mx


def mx_wait(mx, seconds=20):
    """Until the test MX has received something (or the time is up)."""
    import time
    deadline = time.time() + seconds
    while not mx.received and time.time() < deadline:
        time.sleep(0.2)


def post(b, query, body=b"", version="16.1", policy_key=None, auth=("alice@example.com", PW)):
    headers = {"Content-Type": "application/vnd.ms-sync.wbxml"}
    if version:
        headers["MS-ASProtocolVersion"] = version
    if policy_key:
        headers["X-MS-PolicyKey"] = str(policy_key)
    return requests.post(f"https://127.0.0.1:{b.port(443)}/Microsoft-Server-ActiveSync?{query}",
                         data=body, headers=headers, auth=auth, verify=False, timeout=30)


def folder_sync_body(key="0"):
    w = WBXMLWriter()
    w.tag("FolderHierarchy", "FolderSync", children=[wtag("FolderHierarchy", "SyncKey", text=key)])
    return w.render()


def test_provision_then_folder_sync_with_a_real_client(office):
    with client(office) as c:
        key = c.provision()
        assert key and key.isdigit()
        folders = c.list_folders()
    by_type = {}
    for f in folders:
        by_type.setdefault(int(f.type), []).append(f.name)
    # MS-ASCMD 2.2.3.186.3: 2 Inbox, 3 Drafts, 4 Deleted Items, 5 Sent Items, 7 Tasks,
    # 8 Calendar, 9 Contacts, 10 Notes, 12 user mail folders.
    assert by_type[2] == ["Inbox"] and by_type[3] == ["Drafts"] and by_type[4] == ["Trash"]
    assert by_type[5] == ["Sent"] and sorted(by_type[12]) == ["Archive", "Junk"]
    assert 7 in by_type and 8 in by_type and 9 in by_type and 10 in by_type
    assert all(f.parent_id == "0" for f in folders)

    # A new mailbox (made over IMAP here) reaches the device as one Add under its parent.
    import imaplib
    with imaplib.IMAP4("127.0.0.1", office.port(143)) as m:
        m.starttls(ssl_context=__import__("conftest").tls_context())
        m.login("alice", PW)
        m.create("Archive/2026")
    with client(office) as c:
        c.provision()
        w = folder_sync_body("0")
        first = WBXMLReader(c._post("FolderSync", w)).parse()
        k1 = text_of(find(first, "FolderHierarchy.SyncKey"))
        nothing = WBXMLReader(c._post("FolderSync", folder_sync_body(k1))).parse()
        assert text_of(find(nothing, "FolderHierarchy.Count")) == "0"
        assert text_of(find(nothing, "FolderHierarchy.SyncKey")) == k1
        with imaplib.IMAP4("127.0.0.1", office.port(143)) as m:
            m.starttls(ssl_context=__import__("conftest").tls_context())
            m.login("alice", PW)
            m.create("Projects")
            m.delete("Archive/2026")
        changed = WBXMLReader(c._post("FolderSync", folder_sync_body(k1))).parse()
        assert text_of(find(changed, "FolderHierarchy.Status")) == "1"
        assert text_of(find(changed, "FolderHierarchy.Count")) == "2"
        assert text_of(find(find(changed, "FolderHierarchy.Add")[2], "FolderHierarchy.DisplayName")) == "Projects"
        assert find(find(changed, "FolderHierarchy.Delete")[2], "FolderHierarchy.ServerId") is not None
        k2 = text_of(find(changed, "FolderHierarchy.SyncKey"))
        assert int(k2) == int(k1) + 1
        # A stale key: status 9, the device starts over.
        stale = WBXMLReader(c._post("FolderSync", folder_sync_body(k1))).parse()
        assert text_of(find(stale, "FolderHierarchy.Status")) == "9"


def test_no_command_before_the_policy_is_acknowledged(office):
    q = "Cmd=FolderSync&User=alice&DeviceId=Raw1&DeviceType=TestPhone"
    # 14.0 and later: the command's own status, 142 without a key, 144 with a wrong one.
    r = post(office, q, folder_sync_body())
    assert r.status_code == 200
    assert text_of(find(WBXMLReader(r.content).parse(), "FolderHierarchy.Status")) == "142"
    r = post(office, q, folder_sync_body(), policy_key=12345)
    assert text_of(find(WBXMLReader(r.content).parse(), "FolderHierarchy.Status")) == "144"
    # 12.x: HTTP 449.
    assert post(office, q, folder_sync_body(), version="12.1").status_code == 449
    # Provisioned, the key works; an acknowledgement with a wrong temporary key does not.
    w = WBXMLWriter()
    w.tag("Provision", "Provision", children=[wtag("Provision", "Policies", children=[wtag(
        "Provision", "Policy", children=[wtag("Provision", "PolicyType", text="MS-EAS-Provisioning-WBXML")])])])
    first = WBXMLReader(post(office, "Cmd=Provision&User=alice&DeviceId=Raw1&DeviceType=TestPhone",
                             w.render()).content).parse()
    temp = text_of(find(first, "Provision.PolicyKey"))
    assert text_of(find(first, ALLOW_HTML_EMAIL)) == "1"

    def ack(key):
        w = WBXMLWriter()
        w.tag("Provision", "Provision", children=[wtag("Provision", "Policies", children=[wtag(
            "Provision", "Policy", children=[wtag("Provision", "PolicyType", text="MS-EAS-Provisioning-WBXML"),
                                             wtag("Provision", "PolicyKey", text=key),
                                             wtag("Provision", "Status", text="1")])])])
        r = post(office, "Cmd=Provision&User=alice&DeviceId=Raw1&DeviceType=TestPhone", w.render(), policy_key=key)
        return WBXMLReader(r.content).parse()

    assert text_of(find(find(ack("999"), "Provision.Policy")[2], "Provision.Status")) == "5"
    final = text_of(find(ack(temp), "Provision.PolicyKey"))
    assert final and final != temp
    r = post(office, q, folder_sync_body(), policy_key=final)
    assert text_of(find(WBXMLReader(r.content).parse(), "FolderHierarchy.Status")) == "1"
    # 12.0 gets a policy without the settings 12.0 does not know.
    first = WBXMLReader(post(office, "Cmd=Provision&User=alice&DeviceId=Old1&DeviceType=Outlook",
                             w.render(), version="12.0").content).parse()
    assert find(first, DEVICE_PASSWORD_ENABLED) is not None
    assert find(first, ALLOW_HTML_EMAIL) is None


def test_options_the_packed_query_and_bad_input(office):
    url = f"https://127.0.0.1:{office.port(443)}/Microsoft-Server-ActiveSync"
    r = requests.options(url, auth=("alice@example.com", PW), verify=False, timeout=30)
    assert r.status_code == 200
    assert r.headers["MS-ASProtocolVersions"] == "12.0,12.1,14.0,14.1,16.0,16.1"
    assert r.headers["MS-ASProtocolCommands"] == (
        "Provision,FolderSync,FolderCreate,FolderUpdate,FolderDelete,Sync,Ping,SendMail,SmartReply,"
        "SmartForward,MoveItems,GetItemEstimate,MeetingResponse,Settings,Search,ResolveRecipients,"
        "ItemOperations,Find,GetAttachment,ValidateCert")
    # Credentials: none or wrong, 401 asking for Basic; DOMAIN\user works.
    assert requests.options(url, verify=False, timeout=30).status_code == 401
    assert requests.options(url, auth=("alice@example.com", "nope"), verify=False,
                            timeout=30).headers["WWW-Authenticate"].startswith("Basic")
    assert requests.options(url, auth=("OFFICE\\alice", PW), verify=False, timeout=30).status_code == 200

    # The packed (base64) query string: 16.1, FolderSync, device "Packed1", no key yet.
    packed = bytes([161, 9, 0x09, 0x04, 7]) + b"Packed1" + bytes([0, 5]) + b"Phone"
    r = requests.post(f"{url}?{base64.b64encode(packed).decode()}", data=folder_sync_body(),
                      auth=("alice@example.com", PW), verify=False, timeout=30,
                      headers={"Content-Type": "application/vnd.ms-sync.wbxml"})
    assert r.status_code == 200
    assert text_of(find(WBXMLReader(r.content).parse(), "FolderHierarchy.Status")) == "142"

    q = "Cmd=FolderSync&User=alice&DeviceId=Bad1&DeviceType=T"
    # Unknown command: 400.
    assert post(office, "Cmd=Frobnicate&User=alice&DeviceId=Bad1&DeviceType=T").status_code == 400
    # Malformed and truncated WBXML, an unknown protocol version, a bad device id: 400.
    body = folder_sync_body()
    for broken in (b"\x03\x01\x6a\x00\x45\x3f", body[:-2], b"not wbxml"):
        assert post(office, q, broken).status_code == 400
    assert post(office, q, body, version="2.5").status_code == 400
    assert post(office, "Cmd=FolderSync&DeviceId=../../x", body).status_code == 400


def _imap(b):
    import imaplib
    from conftest import tls_context
    m = imaplib.IMAP4("127.0.0.1", b.port(143))
    m.starttls(ssl_context=tls_context())
    m.login("alice", PW)
    return m


def test_mail_sync_with_a_real_client(office):
    import smtplib
    from pyactivesync import EmailChange

    html = ("Subject: Hello 2\r\nFrom: Carol <carol@example.org>\r\nTo: alice@example.com\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hi <b>Alice</b></p>\r\n")
    with smtplib.SMTP("127.0.0.1", office.port(25), timeout=30) as s:
        for i in range(2):
            s.sendmail("carol@example.org", ["alice@example.com"],
                       f"Subject: Hello {i}\r\nFrom: carol@example.org\r\nTo: alice@example.com\r\n\r\nBody {i}.\r\n")
        s.sendmail("carol@example.org", ["alice@example.com"], html.encode())
    with client(office) as c:
        folders = c.list_folders()
        inbox = next(f for f in folders if int(f.type) == 2).id
        trash = next(f for f in folders if int(f.type) == 4).id
        first = c.sync_folder(inbox)
        assert first.added == [] and first.sync_key == "1"
        # Two at a time, in arrival order, MoreAvailable while more wait.
        r1 = c.sync_folder(inbox, first.sync_key, window_size=2)
        assert len(r1.added) == 2 and r1.more_available
        r2 = c.sync_folder(inbox, r1.sync_key, window_size=2)
        assert len(r2.added) == 1 and not r2.more_available
        added = {a.fields["Email.Subject"]: a for a in r1.added + r2.added}
        assert set(added) == {"Hello 0", "Hello 1", "Hello 2"}
        h = added["Hello 2"].fields
        assert h["Email.From"] == '"Carol" <carol@example.org>' and h["Email.Read"] == "0"
        # No body preference given: the body as the message has it (HTML here).
        assert h["AirSyncBase.Type"] == "2" and "<b>Alice</b>" in h["AirSyncBase.Data"]
        assert h["AirSyncBase.NativeBodyType"] == "2"
        assert added["Hello 0"].fields["AirSyncBase.Data"].startswith("Body 0.")
        # The same key again (a lost answer): the same answer.
        again = c.sync_folder(inbox, r1.sync_key, window_size=2)
        assert again.sync_key == r2.sync_key and [a.server_id for a in again.added] == [a.server_id for a in r2.added]

        # Read and flagged on the phone: the flags are the store's, seen over IMAP.
        sid = added["Hello 0"].server_id
        done = c.apply_email_changes(inbox, r2.sync_key, [EmailChange(server_id=sid, read=True, flagged=True)])
        assert done.statuses[sid] == "1"
        m = _imap(office)
        m.select("INBOX")
        uid = sid.split(":")[1]
        _, data = m.uid("FETCH", uid, "(FLAGS)")
        assert b"\\Seen" in data[0] and b"\\Flagged" in data[0]
        # Not sent back to the phone; a change made over IMAP is.
        m.uid("STORE", added["Hello 1"].server_id.split(":")[1], "+FLAGS", "(\\Seen)")
        r3 = c.sync_folder(inbox, done.sync_key)
        assert [x.server_id for x in r3.changed] == [added["Hello 1"].server_id]
        assert r3.changed[0].fields["Email.Read"] == "1" and r3.added == []

        # Deleted on the phone: moved to Trash.
        gone = c.apply_email_changes(inbox, r3.sync_key, [EmailChange(server_id=sid, delete=True)])
        m.select("Trash")
        _, data = m.search(None, "ALL")
        assert len(data[0].split()) == 1
        m.select("INBOX")
        _, data = m.search(None, "ALL")
        assert len(data[0].split()) == 2
        # Expunged over IMAP: a Delete for the phone; new mail: an Add.
        m.uid("STORE", added["Hello 1"].server_id.split(":")[1], "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.logout()
        with smtplib.SMTP("127.0.0.1", office.port(25), timeout=30) as s:
            s.sendmail("carol@example.org", ["alice@example.com"], b"Subject: Hello 3\r\n\r\nNew.\r\n")
        r4 = c.sync_folder(inbox, gone.sync_key)
        assert r4.deleted == [added["Hello 1"].server_id]
        assert [a.fields["Email.Subject"] for a in r4.added] == ["Hello 3"]
        # Trash syncs on its own; a stale key is refused with status 3.
        t = c.sync_folder(trash, c.sync_folder(trash).sync_key)
        assert [a.fields["Email.Subject"] for a in t.added] == ["Hello 0"]
        with pytest.raises(StatusError) as refused:
            c.sync_folder(inbox, "1")
        assert (refused.value.command, refused.value.code) == ("Sync", "3")


def test_ping_is_woken_by_a_delivery(bureau_factory, monkeypatch):
    import smtplib
    import threading
    import time

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    b = bureau_factory("[activesync]\nmin_heartbeat_secs = 1\nmax_heartbeat_secs = 120\n")
    b.cli("domain", "add", "example.com")
    b.cli("user", "add", "alice@example.com", "--password-stdin", input=PW + "\n")
    with client(b, device="Pinger1") as c:
        folders = c.list_folders()
        inbox = next(f for f in folders if int(f.type) == 2).id
        key = c.sync_folder(inbox).sync_key
        key = c.sync_folder(inbox, key).sync_key  # told everything: nothing pending
        # Nothing happens: the heartbeat runs out.
        started = time.monotonic()
        assert c.ping([inbox], heartbeat=1).status == "1"
        assert time.monotonic() - started >= 1
        # Out of bounds, or a folder it does not have: told so.
        r = post(b, "Cmd=Ping&User=alice&DeviceId=Pinger1&DeviceType=T", _ping_body(inbox, 500),
                 policy_key=c._transport.policy_key)
        nodes = WBXMLReader(r.content).parse()
        assert text_of(find(nodes, "Ping.Status")) == "5"
        assert text_of(find(nodes, "Ping.HeartbeatInterval")) == "120"
        assert c.ping(["999999"], heartbeat=5).status == "7"

        # Held, then woken by mail arriving over SMTP, long before its heartbeat.
        answered = {}

        def hold():
            answered["result"] = c.ping([inbox], heartbeat=60)
            answered["at"] = time.monotonic()

        t = threading.Thread(target=hold)
        t.start()
        time.sleep(1.0)
        assert t.is_alive()
        with smtplib.SMTP("127.0.0.1", b.port(25), timeout=30) as s:
            s.sendmail("carol@example.org", ["alice@example.com"], b"Subject: ping me\r\n\r\nHi.\r\n")
            delivered = time.monotonic()
        t.join(timeout=30)
        assert answered["result"].status == "2" and answered["result"].changed_folder_ids == [inbox]
        latency = answered["at"] - delivered
        print(f"ping answered {latency * 1000:.0f} ms after the delivery")
        assert latency < 30  # push, not the heartbeat's end (measured in docs/BENCHMARKS.md)
        # An empty Ping repeats the last one: news is still there, answered at once.
        r = post(b, "Cmd=Ping&User=alice&DeviceId=Pinger1&DeviceType=T", b"",
                 policy_key=c._transport.policy_key)
        nodes = WBXMLReader(r.content).parse()
        assert text_of(find(nodes, "Ping.Status")) == "2"
        # After a Sync, quiet again.
        assert [a.fields["Email.Subject"] for a in c.sync_folder(inbox, key).added] == ["ping me"]
        assert c.ping([inbox], heartbeat=1).status == "1"


def _ping_body(folder, heartbeat):
    w = WBXMLWriter()
    w.tag("Ping", "Ping", children=[
        wtag("Ping", "HeartbeatInterval", text=str(heartbeat)),
        wtag("Ping", "Folders", children=[wtag("Ping", "Folder", children=[
            wtag("Ping", "Id", text=folder), wtag("Ping", "Class", text="Email")])])])
    return w.render()


def test_send_mail_move_items_and_estimates(bureau_factory, test_mx, monkeypatch):
    from email.message import EmailMessage

    office, mx = office_with_mx(bureau_factory, test_mx, monkeypatch)
    with client(office, device="Sender1") as c:
        folders = c.list_folders()
        inbox = next(f for f in folders if int(f.type) == 2).id
        archive = next(f for f in folders if f.name == "Archive").id
        msg = EmailMessage()
        msg["From"] = "Alice <alice@example.com>"
        msg["To"] = "bob@example.com, partner@remote.example"
        msg["Bcc"] = "alice@example.com"
        msg["Subject"] = "From the phone"
        msg.set_content("Sent over ActiveSync.\n")
        c.send_mail(msg)
        # Bob has it (without the Bcc line), the world's copy is queued, Alice has it in
        # Sent, read, and as the Bcc recipient in her INBOX.
        bob = office.messages("bob")
        assert len(bob) == 1 and b"Sent over ActiveSync." in bob[0] and b"Bcc:" not in bob[0]
        assert b"by box.example.com (Bureau) with ESMTPSA" in bob[0]
        mx_wait(mx)
        [(mail_from, rcpts, data)] = mx.received
        assert (mail_from, rcpts) == ("alice@example.com", ["partner@remote.example"])
        assert b"DKIM-Signature:" in data and b"Bcc:" not in data
        assert len(office.messages("alice", "Sent")) == 1
        assert len(office.messages("alice")) == 1
        # Not as someone else.
        forged = EmailMessage()
        forged["From"] = "bob@example.com"
        forged["To"] = "bob@example.com"
        forged["Subject"] = "Not mine"
        forged.set_content("x\n")
        with pytest.raises(StatusError) as refused:
            c.send_mail(forged)
        assert refused.value.code == "120"
        assert len(office.messages("bob")) == 1

        # Estimates, then a move to Archive seen by neither folder as news.
        key = c.sync_folder(inbox).sync_key
        assert c.get_item_estimate(inbox, key) == 1
        r = c.sync_folder(inbox, key)
        [item] = r.added
        assert c.get_item_estimate(inbox, r.sync_key) == 0
        akey = c.sync_folder(archive).sync_key
        new_id = c.move_item(item.server_id, inbox, archive)
        assert new_id.startswith(f"{archive}:")
        assert c.sync_folder(inbox, r.sync_key).deleted == []
        assert c.sync_folder(archive, akey).added == []
        assert len(office.messages("alice", "Archive")) == 1 and office.messages("alice") == []
        # A message that is not there: status 1 (invalid source).
        with pytest.raises(StatusError) as bad:
            c.move_item(f"{inbox}:999999", inbox, archive)
        assert bad.value.code == "1"


CAROL = ("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:carol-1\r\nFN:Carol Martin\r\nN:Martin;Carol;;;\r\n"
         "ORG:Acme;Sales\r\nEMAIL;TYPE=work;PREF=1:carol@acme.example\r\nTEL;TYPE=cell:+33 6 00 00 00 00\r\n"
         "ADR;TYPE=work:;;1 rue de la Paix;Paris;;75002;France\r\n"
         "PHOTO:data:image/png;base64,iVBORw0KGgo=\r\nX-SOCIALPROFILE;TYPE=mastodon:https://example.social/@carol\r\n"
         "END:VCARD\r\n")


def test_contacts_between_carddav_and_activesync(office):
    from test_dav import dav
    from pyactivesync.models import Contact, ContactChange

    book = "/dav/addressbooks/alice/contacts"
    assert dav(office, "PUT", f"{book}/carol.vcf", CAROL, content_type="text/vcard")[0] == 201
    with client(office, device="Contacts1") as c:
        folder = next(f for f in c.list_folders() if int(f.type) == 9).id
        key = c.sync_folder(folder).sync_key
        r = c.sync_folder(folder, key)
        [carol] = r.added
        f = carol.fields
        assert (f["Contacts.FileAs"], f["Contacts.FirstName"], f["Contacts.LastName"]) == ("Carol Martin", "Carol", "Martin")
        assert (f["Contacts.CompanyName"], f["Contacts.Department"]) == ("Acme", "Sales")
        assert f["Contacts.Email1Address"] == "carol@acme.example"
        assert f["Contacts.MobilePhoneNumber"] == "+33 6 00 00 00 00"
        assert (f["Contacts.BusinessAddressCity"], f["Contacts.BusinessAddressCountry"]) == ("Paris", "France")

        # Made on the phone: a card CardDAV clients read with the same fields.
        dan = Contact(first_name="Dan", last_name="Brown", company_name="Brown & Co",
                      email1_address="dan@brown.example", mobile_phone_number="+44 7700 900000",
                      business_address_city="London", job_title="Owner")
        added = c.create_contact(folder, r.sync_key, dan)
        assert added.status == "1" and added.server_id.startswith(f"{folder}:")
        s, _, listing = dav(office, "PROPFIND", book, Depth="1")
        href = next(h for h in listing.split("<d:href>")[1:] if h.split("<")[0].endswith(".vcf")
                    and "carol" not in h.split("<")[0]).split("<")[0]
        s, _, card = dav(office, "GET", href)
        assert s == 200
        for line in ("FN:Dan Brown", "N:Brown;Dan;;;", "ORG:Brown & Co;", "TITLE:Owner",
                     "EMAIL;TYPE=internet;PREF=1:dan@brown.example", "TEL;TYPE=cell;VALUE=text:+44 7700 900000",
                     "ADR;TYPE=work:;;;London;;;"):
            assert line in card, (line, card)
        # Not sent back to the phone as news.
        quiet = c.sync_folder(folder, added.sync_key)
        assert quiet.added == [] and quiet.changed == []

        # Changed on the phone (whole, as EAS sends it): CardDAV sees the change and keeps
        # what the phone never saw (the photo, the social profile).
        changed = c.apply_contact_changes(folder, quiet.sync_key, [ContactChange(
            server_id=carol.server_id,
            contact=Contact(first_name="Carol", last_name="Martin-Durand", email1_address="carol@new.example",
                            mobile_phone_number="+33 6 00 00 00 00"))])
        assert changed.statuses[carol.server_id] == "1"
        s, _, card = dav(office, "GET", f"{book}/carol.vcf")
        assert "N:Martin-Durand;Carol;;;" in card and "carol@new.example" in card
        assert "PHOTO:data:image/png;base64,iVBORw0KGgo=" in card
        assert "X-SOCIALPROFILE;TYPE=mastodon:https://example.social/@carol" in card
        assert "UID:urn:uuid:carol-1" in card and "carol@acme.example" not in card
        # Deleted over CardDAV: a Delete for the phone.
        assert dav(office, "DELETE", f"{book}/carol.vcf")[0] == 204
        gone = c.sync_folder(folder, changed.sync_key)
        assert gone.deleted == [carol.server_id]


def test_autodiscover_finds_the_server_from_an_address(office):
    import xml.etree.ElementTree as ET

    base = f"https://127.0.0.1:{office.port(443)}"
    req = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/'
           'autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>alice@example.com</EMailAddress>'
           '<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006'
           '</AcceptableResponseSchema></Request></Autodiscover>')
    url = f"https://box.example.com:{office.port(443)}/Microsoft-Server-ActiveSync"
    # POX, signed in (iOS and Android ask this way).
    assert requests.post(f"{base}/autodiscover/autodiscover.xml", data=req, verify=False, timeout=30).status_code == 401
    r = requests.post(f"{base}/Autodiscover/Autodiscover.xml", data=req, auth=("alice@example.com", PW),
                      verify=False, timeout=30)
    assert r.status_code == 200
    ns = {"m": "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"}
    doc = ET.fromstring(r.content)
    assert doc.find(".//m:Server/m:Type", ns).text == "MobileSync"
    assert doc.find(".//m:Server/m:Url", ns).text == url
    assert doc.find(".//m:User/m:EMailAddress", ns).text == "alice@example.com"
    # A request with a DTD, or for Outlook's schema: Autodiscover's errors.
    bad = requests.post(f"{base}/autodiscover/autodiscover.xml", auth=("alice@example.com", PW), verify=False,
                        data='<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><Autodiscover/>', timeout=30)
    assert ET.fromstring(bad.content).find(".//m:Error/m:ErrorCode", ns).text == "600"
    outlook = req.replace("mobilesync/responseschema/2006", "outlook/responseschema/2006a")
    r = requests.post(f"{base}/autodiscover/autodiscover.xml", data=outlook, auth=("alice@example.com", PW),
                      verify=False, timeout=30)
    assert ET.fromstring(r.content).find(".//m:Error/m:ErrorCode", ns).text == "601"
    # v2 (JSON), public.
    r = requests.get(f"{base}/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=ActiveSync",
                     verify=False, timeout=30)
    assert r.json() == {"Protocol": "ActiveSync", "Url": url}
    r = requests.get(f"{base}/autodiscover/autodiscover.json?Email=alice@example.com&Protocol=Smtp",
                     verify=False, timeout=30)
    assert r.status_code == 400 and r.json()["ErrorCode"] == "InvalidProtocol"


def test_the_administrator_sees_devices_and_wipes_one(office):
    from test_foundation import _https, login

    office.cli("user", "add", "boss@example.com", "--admin", "--password-stdin", input=PW + "\n")
    with client(office, device="Wiped1") as c:
        c.provision()
        c.list_folders()
    _, body, _, cookie = login(office, "boss", PW)
    csrf = json.loads(body)["csrf"]
    s, devices, _ = _https(office, "GET", "/api/v1/users/alice/devices", cookie=cookie)
    [d] = devices
    assert d["id"] == "Wiped1" and d["info"]["Model"] == "pyactivesync" and d["protocol"] == "activesync 16.1"
    assert d["policy_key"] != 0 and not d["wipe_requested"]
    assert _https(office, "POST", "/api/v1/users/alice/devices/Nope/wipe", cookie=cookie, csrf=csrf)[0] == 404
    assert _https(office, "POST", "/api/v1/users/alice/devices/Wiped1/wipe", cookie=cookie, csrf=csrf)[0] == 204
    # The device's next command is refused; provisioning again tells it to wipe itself.
    q = "Cmd=FolderSync&User=alice&DeviceId=Wiped1&DeviceType=pyactivesync"
    r = post(office, q, folder_sync_body(), policy_key=d["policy_key"])
    assert text_of(find(WBXMLReader(r.content).parse(), "FolderHierarchy.Status")) == "144"
    w = WBXMLWriter()
    w.tag("Provision", "Provision", children=[wtag("Provision", "Policies", children=[wtag(
        "Provision", "Policy", children=[wtag("Provision", "PolicyType", text="MS-EAS-Provisioning-WBXML")])])])
    told = WBXMLReader(post(office, q.replace("FolderSync", "Provision"), w.render()).content).parse()
    assert find(told, "Provision.RemoteWipe") is not None
    ack = WBXMLWriter()
    ack.tag("Provision", "Provision", children=[wtag("Provision", "RemoteWipe", children=[
        wtag("Provision", "Status", text="1")])])
    post(office, q.replace("FolderSync", "Provision"), ack.render())
    [d] = _https(office, "GET", "/api/v1/users/alice/devices", cookie=cookie)[1]
    assert d["wipe_requested"] and d["info"]["wipe_acknowledged"] == "1"
    # Removed: forgotten with its sync state.
    assert _https(office, "DELETE", "/api/v1/users/alice/devices/Wiped1", cookie=cookie, csrf=csrf)[0] == 204
    assert _https(office, "GET", "/api/v1/users/alice/devices", cookie=cookie)[1] == []

    # Outlook takes a new DeviceId on restart: the same machine replaces its old record,
    # and a wipe asked for the old id still happens.
    def outlook(device_id):
        return Client(server=f"127.0.0.1:{office.port(443)}", username="alice@example.com", password=PW,
                      device_id=device_id, device_type="WindowsOutlook15", verify_ssl=False)
    with outlook("OutlookA") as c:
        c.list_folders()
    with outlook("OutlookB") as c:
        c.list_folders()
    assert [d["id"] for d in _https(office, "GET", "/api/v1/users/alice/devices", cookie=cookie)[1]] == ["OutlookB"]
    assert _https(office, "POST", "/api/v1/users/alice/devices/OutlookB/wipe", cookie=cookie, csrf=csrf)[0] == 204
    q = "Cmd=Provision&User=alice&DeviceId=OutlookC&DeviceType=WindowsOutlook15"
    w = WBXMLWriter()
    w.tag("Provision", "Provision", children=[
        wtag("Settings", "DeviceInformation", children=[wtag("Settings", "Set", children=[
            wtag("Settings", "Model", text="pyactivesync"), wtag("Settings", "FriendlyName", text="pyactivesync client"),
            wtag("Settings", "OS", text="Linux")])]),
        wtag("Provision", "Policies", children=[wtag("Provision", "Policy", children=[
            wtag("Provision", "PolicyType", text="MS-EAS-Provisioning-WBXML")])])])
    told = WBXMLReader(post(office, q, w.render()).content).parse()
    assert find(told, "Provision.RemoteWipe") is not None
    [d] = _https(office, "GET", "/api/v1/users/alice/devices", cookie=cookie)[1]
    assert d["id"] == "OutlookC" and d["wipe_requested"]


def test_settings_and_the_gal(office):
    office.cli("user", "add", "alicia.rossi@example.com", "--name", "Alicia Rossi", "--password-stdin", input=PW + "\n")
    office.cli("user", "add", "bob@example.com", "--name", "Bob Ali", "--password-stdin", input=PW + "\n")
    office.cli("user", "add", "zoe@example.com", "--name", "Zoe Martin", "--password-stdin", input=PW + "\n")
    office.cli("user", "disable", "zoe")
    with client(office, device="Gal1") as c:
        c.provision()
        # Prefix of a name, an address or an alias; disabled users are not listed.
        found = c.search_gal("ali", max_results=10)
        assert sorted(e.email_address for e in found) == ["alice@example.com", "alicia.rossi@example.com",
                                                           "bob@example.com"]
        rossi = next(e for e in found if e.email_address == "alicia.rossi@example.com")
        assert (rossi.display_name, rossi.first_name, rossi.last_name) == ("Alicia Rossi", "Alicia", "Rossi")
        assert c.search_gal("zoe") == [] and len(c.search_gal("ali", max_results=1)) == 1
        # Settings: device information kept, the user's addresses told, out-of-office read
        # (off; see test_out_of_office_set_on_the_phone_answers_mail).
        # By tokens (code page 18): pyactivesync's tables lack UserInformation.
        req = (b"\x03\x01\x6a\x00\x00\x12\x45"
               b"\x56\x48\x57\x03Pixel 9\x00\x01\x5a\x03Android 16\x00\x01\x01\x01"  # DeviceInformation/Set
               b"\x5d\x07\x01"  # UserInformation/Get
               b"\x49\x47\x53\x03Text\x00\x01\x01\x01"  # Oof/Get/BodyType
               b"\x01")
        nodes = WBXMLReader(c._post("Settings", req)).parse()
        statuses = [text_of(s) for s in find_all(nodes, "Settings.Status")]
        assert statuses == ["1", "1", "1", "1"]
        assert text_of(find(nodes, "Settings.OofState")) == "0"
        assert text_of(find(nodes, "Settings.0x23")) == "alice@example.com"  # PrimarySmtpAddress


def test_item_operations_fetch_items_and_attachments(office):
    import smtplib
    from email.message import EmailMessage
    from pyactivesync import BodyType

    msg = EmailMessage()
    msg["From"] = "carol@example.org"
    msg["To"] = "alice@example.com"
    msg["Subject"] = "The quote"
    msg.set_content("Quote attached.\n")
    pdf = b"%PDF-1.4 fake but binary \x00\xff\x10" * 50
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="quote.pdf")
    with smtplib.SMTP("127.0.0.1", office.port(25), timeout=30) as s:
        s.send_message(msg)
    with client(office, device="ItemOps1") as c:
        folders = c.list_folders()
        inbox = next(f for f in folders if int(f.type) == 2).id
        trash = next(f for f in folders if int(f.type) == 4).id
        key = c.sync_folder(inbox).sync_key
        [item] = c.sync_folder(inbox, key).added
        fetched = c.fetch_item(inbox, item.server_id, body_type=BodyType.PLAIN_TEXT)
        assert fetched.fields["Email.Subject"] == "The quote"
        assert fetched.bodies[0].data.startswith("Quote attached.")
        [att] = fetched.attachments
        assert att.display_name == "quote.pdf" and att.estimated_data_size == len(pdf)
        assert c.fetch_attachment(att.file_reference) == pdf
        mime = c.fetch_item(inbox, item.server_id, body_type=BodyType.MIME)
        assert b"quote.pdf" in mime.bodies[0].data
        # Someone else's or a made-up reference: not found, nothing leaks.
        for bad in (f"{inbox}:{item.server_id.split(':')[1]}:99", "1:1:1", "../etc"):
            w = WBXMLWriter()
            w.tag("ItemOperations", "ItemOperations", children=[wtag("ItemOperations", "Fetch", children=[
                wtag("ItemOperations", "Store", text="Mailbox"), wtag("AirSyncBase", "FileReference", text=bad)])])
            nodes = WBXMLReader(c._post("ItemOperations", w.render())).parse()
            assert [text_of(s) for s in find_all(nodes, "ItemOperations.Status")] == ["1", "15"], bad
            assert find(nodes, "ItemOperations.Data") is None
        # Trash emptied in one request.
    m = _imap(office)
    m.select("INBOX")
    m.copy("1", "Trash")
    m.logout()
    with client(office, device="ItemOps1") as c:
        c.provision()
        # By tokens: pyactivesync's tables lack EmptyFolderContents (page 20, 0x12).
        req = b"\x03\x01\x6a\x00\x00\x14\x45\x52\x00\x00\x52\x03" + trash.encode() + b"\x00\x01\x01\x01"
        nodes = WBXMLReader(c._post("ItemOperations", req)).parse()
        assert [text_of(s) for s in find_all(nodes, "ItemOperations.Status")] == ["1", "1"]
    assert office.messages("alice", "Trash") == [] and len(office.messages("alice")) == 1


def _smart(c, command, folder, item, message, replace=False):
    from pyactivesync._mime import to_crlf_bytes
    import uuid
    children = [wtag("ComposeMail", "ClientId", text=uuid.uuid4().hex), wtag("ComposeMail", "SaveInSentItems"),
                wtag("ComposeMail", "Source", children=[wtag("ComposeMail", "FolderId", text=folder),
                                                        wtag("ComposeMail", "ItemId", text=item)])]
    if replace:
        children.append(wtag("ComposeMail", "ReplaceMime"))
    children.append(wtag("ComposeMail", "MIME", opaque=to_crlf_bytes(message)))
    w = WBXMLWriter()
    w.tag("ComposeMail", command, children=children)
    resp = c._post(command, w.render())
    return text_of(find(WBXMLReader(resp).parse(), "ComposeMail.Status")) if resp else "1"


def test_smart_reply_and_forward_carry_the_original(office):
    import email
    import smtplib
    from email.message import EmailMessage
    from email import policy

    office.cli("user", "add", "bob@example.com", "--password-stdin", input=PW + "\n")
    msg = EmailMessage()
    msg["From"] = "Carol <carol@example.org>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = "The quote"
    msg["Message-ID"] = "<quote-1@example.org>"
    msg.set_content("Here is our quote for the new desks.\n")
    pdf = b"%PDF-1.4 binary \x00\xff\x10" * 40
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="quote.pdf")
    with smtplib.SMTP("127.0.0.1", office.port(25), timeout=30) as s:
        s.send_message(msg)
    with client(office, device="Smart1") as c:
        inbox = next(f for f in c.list_folders() if int(f.type) == 2).id
        key = c.sync_folder(inbox).sync_key
        [item] = c.sync_folder(inbox, key).added

        # SmartForward to Bob: the phone sends its few lines; Bob gets them, the original's
        # text and its attachment.
        fwd = EmailMessage()
        fwd["From"] = "alice@example.com"
        fwd["To"] = "bob@example.com"
        fwd["Subject"] = "Fwd: The quote"
        fwd.set_content("Bob, can you check this?\n")
        assert _smart(c, "SmartForward", inbox, item.server_id, fwd) == "1"
        [got] = office.messages("bob")
        m = email.message_from_bytes(got, policy=policy.default)
        text = m.get_body(("plain",)).get_content()
        assert text.startswith("Bob, can you check this?")
        assert "-----Original Message-----" in text and "From: Carol <carol@example.org>" in text
        assert "Here is our quote for the new desks." in text
        [att] = list(m.iter_attachments())
        assert att.get_filename() == "quote.pdf" and att.get_content() == pdf

        # SmartReply to Carol's address here (Bob stands in): threaded, original quoted, no
        # attachment, and the original marked answered for IMAP clients.
        rep = EmailMessage()
        rep["From"] = "alice@example.com"
        rep["To"] = "bob@example.com"
        rep["Subject"] = "Re: The quote"
        rep.set_content("Thanks, we accept.\n")
        assert _smart(c, "SmartReply", inbox, item.server_id, rep) == "1"
        got = office.messages("bob")[1]
        m = email.message_from_bytes(got, policy=policy.default)
        assert m["In-Reply-To"] == "<quote-1@example.org>" and m["References"] == "<quote-1@example.org>"
        assert "Here is our quote" in m.get_body(("plain",)).get_content()
        assert list(m.iter_attachments()) == []
        assert len(office.messages("alice", "Sent")) == 2
        imap = _imap(office)
        imap.select("INBOX")
        flags = imap.fetch("1", "(FLAGS)")[1][0].decode()
        imap.logout()
        assert "\\Answered" in flags and "$Forwarded" in flags

        # ReplaceMime: the phone's message goes as it is.
        plain = EmailMessage()
        plain["From"] = "alice@example.com"
        plain["To"] = "bob@example.com"
        plain["Subject"] = "Re: The quote"
        plain.set_content("Whole reply, written on the phone.\n")
        assert _smart(c, "SmartReply", inbox, item.server_id, plain, replace=True) == "1"
        assert b"Here is our quote" not in office.messages("bob")[2]
        # A source that is not there: 150, nothing sent.
        assert _smart(c, "SmartReply", inbox, f"{inbox}:999999", rep) == "150"
        assert _smart(c, "SmartForward", "999", item.server_id, fwd) == "150"
        assert len(office.messages("bob")) == 3
        # A SendMail retried with its ClientId is sent once.
        for _ in range(2):
            c.send_mail(plain, client_id="retry-1")
        assert len(office.messages("bob")) == 4


def test_folders_made_renamed_and_deleted_from_the_phone(office):
    from test_dav import client as caldav_client

    with client(office, device="Folders1") as c:
        folders = c.list_folders()
        inbox = next(f for f in folders if int(f.type) == 2).id
        projects = c.create_folder("Projects", type=12)
        sub = c.create_folder("2027", parent_id=projects.id, type=12)
        team = c.create_folder("Team", type=13)
        m = _imap(office)
        names = [line.decode().rsplit(" ", 1)[1].strip('"') for line in m.list()[1]]
        assert "Projects" in names and "Projects/2027" in names
        with caldav_client(office) as dav:
            assert "Team" in [x.get_display_name() for x in dav.principal().calendars()]
        # Renamed: the sub-folder moves with it.
        c.update_folder(projects.id, "Clients")
        names = [line.decode().rsplit(" ", 1)[1].strip('"') for line in m.list()[1]]
        assert "Clients/2027" in names and "Projects" not in names
        # The phone's own change is not told back to it: the key it is given holds it.
        k1 = c._folder_sync_key()
        w = WBXMLWriter()
        w.tag("FolderHierarchy", "FolderDelete", children=[wtag("FolderHierarchy", "SyncKey", text=k1),
                                                           wtag("FolderHierarchy", "ServerId", text=team.id)])
        done = WBXMLReader(c._post("FolderDelete", w.render())).parse()
        assert text_of(find(done, "FolderHierarchy.Status")) == "1"
        k2 = text_of(find(done, "FolderHierarchy.SyncKey"))
        assert int(k2) == int(k1) + 1
        after = WBXMLReader(c._post("FolderSync", folder_sync_body(k2))).parse()
        assert text_of(find(after, "FolderHierarchy.Count")) == "0"
        # A stale key: 9.
        w = WBXMLWriter()
        w.tag("FolderHierarchy", "FolderDelete", children=[wtag("FolderHierarchy", "SyncKey", text=k1),
                                                           wtag("FolderHierarchy", "ServerId", text=sub.id)])
        stale = WBXMLReader(c._post("FolderDelete", w.render())).parse()
        assert text_of(find(stale, "FolderHierarchy.Status")) == "9"
        c.delete_folder(sub.id)
        with caldav_client(office) as dav:
            assert "Team" not in [x.get_display_name() for x in dav.principal().calendars()]
        names = [line.decode().rsplit(" ", 1)[1].strip('"') for line in m.list()[1]]
        assert "Clients/2027" not in names and "Clients" in names
        m.logout()
        # INBOX and the default calendar stay (3); what is not there is 4; a bad name 10.
        for folder_id, code in ((inbox, "3"), ("999999", "4")):
            with pytest.raises(StatusError) as refused:
                c.delete_folder(folder_id)
            assert refused.value.code == code
        with pytest.raises(StatusError) as refused:
            c.create_folder("a/b", type=12)
        assert refused.value.code == "10"
        with pytest.raises(StatusError) as refused:
            c.create_folder("Clients", type=12)
        assert refused.value.code == "2"


def test_mailbox_search_find_and_ranges(office):
    import smtplib
    from email.message import EmailMessage

    blob = bytes(range(256)) * 8
    for n, (subject, text) in enumerate([("Budget 2027", "The budget for next year."),
                                         ("Lunch", "Pizza on Friday?"),
                                         ("Re: budget", "Figures attached.")]):
        msg = EmailMessage()
        msg["From"] = f"sender{n}@example.org"
        msg["To"] = "alice@example.com"
        msg["Subject"] = subject
        msg.set_content(text + "\n")
        if n == 2:
            msg.add_attachment(blob, maintype="application", subtype="octet-stream", filename="figures.bin")
        with smtplib.SMTP("127.0.0.1", office.port(25), timeout=30) as s:
            s.send_message(msg)
    with client(office, device="Search1") as c:
        inbox = next(f for f in c.list_folders() if int(f.type) == 2).id
        # Search (Mailbox) by date, with pyactivesync's own call.
        found = c.search_mailbox(inbox, date_received_after="2000-01-01T00:00:00.000Z")
        assert sorted(r["Email.Subject"] for r in found) == ["Budget 2027", "Lunch", "Re: budget"]
        # Free text, through Find (16.1), as pyactivesync does it.
        hits = c.search_mailbox(inbox, free_text="budget")
        assert sorted(h["Email.Subject"] for h in hits) == ["Budget 2027", "Re: budget"]
        assert all(h["AirSync.CollectionId"] == inbox for h in hits)
        pizza = c.find_mailbox("pizza friday", folder_id=inbox)
        assert [i.fields["Email.Subject"] for i in pizza.items] == ["Lunch"]
        assert c.find_mailbox("nothing-like-this", folder_id=inbox).items == []
        [me] = c.find_gal("alice").items
        assert me.fields["GAL.EmailAddress"] == "alice@example.com"
        # Search with FreeText directly: the LongId works for ItemOperations.
        w = WBXMLWriter()
        w.tag("Search", "Search", children=[wtag("Search", "Store", children=[
            wtag("Search", "Name", text="Mailbox"),
            wtag("Search", "Query", children=[wtag("Search", "And", children=[
                wtag("AirSync", "Class", text="Email"), wtag("Search", "FreeText", text="figures")])]),
            wtag("Search", "Options", children=[wtag("Search", "Range", text="0-9")])])])
        nodes = WBXMLReader(c._post("Search", w.render())).parse()
        [(_, _, result)] = find_all(nodes, "Search.Result")
        long_id = text_of(find(result, "Search.LongId"))
        assert text_of(find(nodes, "Search.Total")) == "1"
        w = WBXMLWriter()
        w.tag("ItemOperations", "ItemOperations", children=[wtag("ItemOperations", "Fetch", children=[
            wtag("ItemOperations", "Store", text="Mailbox"), wtag("Search", "LongId", text=long_id)])])
        nodes = WBXMLReader(c._post("ItemOperations", w.render())).parse()
        assert text_of(find(nodes, "Email.Subject")) == "Re: budget"
        # An attachment fetched in two ranges.
        ref = text_of(find(nodes, "AirSyncBase.FileReference"))
        parts = []
        for rng in ("0-999", "1000-4095"):
            w = WBXMLWriter()
            w.tag("ItemOperations", "ItemOperations", children=[wtag("ItemOperations", "Fetch", children=[
                wtag("ItemOperations", "Store", text="Mailbox"), wtag("AirSyncBase", "FileReference", text=ref),
                wtag("ItemOperations", "Options", children=[wtag("ItemOperations", "Range", text=rng)])])])
            nodes = WBXMLReader(c._post("ItemOperations", w.render())).parse()
            assert text_of(find(nodes, "ItemOperations.Total")) == str(len(blob))
            parts.append(base64.b64decode(text_of(find(nodes, "ItemOperations.Data"))))
        assert parts[0] + parts[1] == blob and len(parts[0]) == 1000
        # GetAttachment (the 12.x way): the bytes themselves.
        key = c.provision()
        r = post(office, f"Cmd=GetAttachment&AttachmentName={ref}&User=alice&DeviceId=Search1&DeviceType=pyactivesync",
                 policy_key=key)
        assert r.status_code == 200 and r.content == blob
        assert r.headers["Content-Type"] == "application/octet-stream"
        r = post(office, f"Cmd=GetAttachment&AttachmentName={inbox}:1:99&User=alice&DeviceId=Search1&DeviceType=pyactivesync",
                 policy_key=key)
        assert r.status_code == 404


def test_out_of_office_set_on_the_phone_answers_mail(bureau_factory, test_mx, monkeypatch):
    import smtplib
    import time
    from email.message import EmailMessage
    from pyactivesync.models import OofState

    office, mx = office_with_mx(bureau_factory, test_mx, monkeypatch)

    def mail(sender, subject, **headers):
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = "alice@example.com"
        msg["Subject"] = subject
        msg["Message-ID"] = f"<{subject.replace(' ', '-')}@test>"
        for k, v in headers.items():
            msg[k.replace("_", "-")] = v
        msg.set_content("Hello Alice.\n")
        with smtplib.SMTP("127.0.0.1", office.port(25), timeout=30) as s:
            s.send_message(msg)

    with client(office, device="Oof1") as c:
        assert c.get_oof().state == OofState.DISABLED
        c.set_oof(OofState.ENABLED, reply_message="I am away until Monday.")
        got = c.get_oof()
        assert got.state == OofState.ENABLED
        assert {m.applies_to: (m.enabled, m.reply_message) for m in got.messages} == {
            "Internal": (True, "I am away until Monday."),
            "ExternalKnown": (True, "I am away until Monday."),
            "ExternalUnknown": (True, "I am away until Monday.")}

    mail("carol@remote.example", "Quote request")
    mx_wait(mx)
    [(mail_from, rcpts, data)] = mx.received
    assert rcpts == ["carol@remote.example"]
    assert b"Auto-Submitted: auto-replied" in data and b"I am away until Monday." in data
    assert b"In-Reply-To: <Quote-request@test>" in data and b"Subject: Automatic reply: Quote request" in data
    assert b"DKIM-Signature:" in data
    # Once per sender; never to lists, bulk mail or other robots.
    mail("carol@remote.example", "Second question")
    mail("news@remote.example", "Newsletter", List_Id="<news.remote.example>")
    mail("promo@remote.example", "Offer", Precedence="bulk")
    mail("robot@remote.example", "Notice", Auto_Submitted="auto-generated")
    # An internal sender hears too (in the INBOX).
    mail("bob@example.com", "Lunch")
    deadline = time.time() + 10
    while not office.messages("bob") and time.time() < deadline:
        time.sleep(0.2)
    [to_bob] = office.messages("bob")
    assert b"Automatic reply: Lunch" in to_bob
    time.sleep(1)
    assert len(mx.received) == 1

    # Scheduled in the past: no reply to a new sender; switched off: none either.
    with client(office, device="Oof1") as c:
        c.set_oof(OofState.ENABLED_SCHEDULED, start_time="2020-01-01T00:00:00.000Z",
                  end_time="2020-01-02T00:00:00.000Z", reply_message="Gone in 2020.")
        assert c.get_oof().start_time == "2020-01-01T00:00:00.000Z"
        # An end before the start: refused, nothing changes.
        with pytest.raises(StatusError):
            c.set_oof(OofState.ENABLED_SCHEDULED, start_time="2027-01-02T00:00:00.000Z",
                      end_time="2027-01-01T00:00:00.000Z")
        assert c.get_oof().state == OofState.ENABLED_SCHEDULED
    mail("dave@remote.example", "Hello")
    time.sleep(1)
    assert len(mx.received) == 1


def test_validate_cert_checks_smime_certificates(bureau_factory, tmp_path, monkeypatch):
    import subprocess
    import eas_pages  # noqa: F401  (ValidateCert's code page)

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    # The office's own authority, a user's S/MIME certificate from it, a TLS-only one, and a
    # stranger's self-signed one.
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=Office CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    for name, eku in (("carol", "emailProtection"), ("web", "serverAuth")):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (tmp_path / f"{name}.ext").write_text(
            f"extendedKeyUsage={eku}\nsubjectAltName=email:{name}@example.com\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "10", "-out", f"{name}.pem", "-extfile", f"{name}.ext")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "x.key", "-out", "stranger.pem", "-days", "10", "-subj", "/CN=stranger",
            "-addext", "extendedKeyUsage=emailProtection", "-addext", "basicConstraints=critical,CA:FALSE")

    def der64(name):
        pem = (tmp_path / f"{name}.pem").read_text()
        return "".join(line for line in pem.splitlines() if "-----" not in line)

    office = bureau_factory(f'\n[activesync]\ntrust_anchors = "{tmp_path / "ca.pem"}"\n')
    office.cli("domain", "add", "example.com")
    office.cli("user", "add", "alice@example.com", "--password-stdin", input=PW + "\n")
    with client(office, device="Certs1") as c:
        c.provision()
        w = WBXMLWriter()
        w.tag("ValidateCert", "ValidateCert", children=[
            wtag("ValidateCert", "Certificates", children=[
                wtag("ValidateCert", "Certificate", text=der64(n)) for n in ("carol", "web", "stranger")
            ] + [wtag("ValidateCert", "Certificate", text="bm90IGEgY2VydA==")]),
            wtag("ValidateCert", "CheckCRL", text="0")])
        nodes = WBXMLReader(c._post("ValidateCert", w.render())).parse()
        root = find(nodes, "ValidateCert.ValidateCert")[2]
        assert text_of(find(root, "ValidateCert.Status")) == "1"
        statuses = [text_of(find(cert, "ValidateCert.Status")) for _, _, cert in find_all(root, "ValidateCert.Certificate")]
        # Good; not for mail (6); no trusted issuer (4); not a certificate (2).
        assert statuses == ["1", "6", "4", "2"]


def test_drafts_made_changed_and_sent_from_the_phone(office):
    from email.message import EmailMessage
    import eas_pages  # noqa: F401  (Email2's Send)

    office.cli("user", "add", "bob@example.com", "--password-stdin", input=PW + "\n")
    with client(office, device="Drafts1") as c:
        drafts = next(f for f in c.list_folders() if int(f.type) == 3).id
        key = c.sync_folder(drafts).sync_key
        msg = EmailMessage()
        msg["From"] = "alice@example.com"
        msg["To"] = "bob@example.com"
        msg["Subject"] = "Half written"
        msg.set_content("To be continued.\n")
        msg.add_attachment(b"plan", maintype="application", subtype="octet-stream", filename="plan.bin")
        made = c.create_email_draft(drafts, key, msg, read=True)
        assert made.status == "1" and made.server_id.startswith(f"{drafts}:")
        m = _imap(office)
        m.select("Drafts")
        assert b"\\Draft" in m.fetch("1", "(FLAGS)")[1][0]
        # Changed (16.1: only the subject) and sent in the same Change.
        w = WBXMLWriter()
        w.tag("AirSync", "Sync", children=[wtag("AirSync", "Collections", children=[
            wtag("AirSync", "Collection", children=[
                wtag("AirSync", "SyncKey", text=made.sync_key), wtag("AirSync", "CollectionId", text=drafts),
                wtag("AirSync", "GetChanges", text="0"),
                wtag("AirSync", "Commands", children=[wtag("AirSync", "Change", children=[
                    wtag("AirSync", "ServerId", text=made.server_id),
                    wtag("AirSync", "ApplicationData", children=[
                        wtag("Email", "Subject", text="Finished")]),
                    wtag("Email2", "Send")])])])])])
        nodes = WBXMLReader(c._post("Sync", w.render())).parse()
        assert text_of(find(nodes, "AirSync.Status")) == "1"
        assert find(nodes, "AirSync.Responses") is None
    [got] = office.messages("bob")
    assert b"Subject: Finished" in got and b"To be continued." in got and b"plan.bin" in got
    assert b"Half written" not in got
    assert len(office.messages("alice", "Sent")) == 1
    m.select("Drafts")
    assert m.search(None, "ALL")[1] == [b""]
    m.logout()
