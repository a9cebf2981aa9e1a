"""The office's file server: Bureau's privileged helper writes Samba's configuration and
accounts from the directory, a real smbd (Debian's) serves it, and smbclient signs in with
Bureau's passwords.

The helper and smbd run in a mount namespace of their own over a copy of /etc, so the Unix
accounts Samba needs are made there and this machine's own accounts are never touched."""

import json
import os
import socket
import subprocess
import time

import pytest

from conftest import BIN, _free_port

PW = "long enough pw"
NEW_PW = "another long pw"


def wait_for(what, check, timeout=15):
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Box:
    """The helper (root, in its own mount namespace) and, once configured, smbd beside it."""

    def __init__(self, tmp, config):
        self.etc = tmp / "etc"
        subprocess.run(["cp", "-a", "/etc", str(self.etc)], check=True)
        self.log = open(tmp / "helper.log", "a")
        self.helper = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$0" /etc && exec "$1" helper --config "$2"',
             str(self.etc), str(BIN), str(config)],
            stdout=self.log, stderr=self.log, start_new_session=True)
        self.smbd = None

    def inside(self, *cmd, **kw):
        """Runs a command in the helper's namespace (its /etc)."""
        return subprocess.run(["nsenter", "--target", str(self.helper.pid), "--mount", *cmd],
                              capture_output=True, text=True, **kw)

    def start_smbd(self, conf, port):
        self.smbd = subprocess.Popen(
            ["nsenter", "--target", str(self.helper.pid), "--mount",
             "smbd", "--foreground", "--no-process-group", "-s", str(conf), "--debug-stdout", "-d", "1"],
            # smbd signals its whole process group on the way out: not ours.
            stdout=self.log, stderr=self.log, start_new_session=True)
        wait_for("smbd", lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0)

    def stop(self):
        for p in (self.smbd, self.helper):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.log.close()


def smb(port, share, user, pw, cmd="ls"):
    r = subprocess.run(
        ["smbclient", f"//127.0.0.1/{share}", "-p", str(port), "-U", f"{user}%{pw}", "-c", cmd],
        capture_output=True, text=True, timeout=60, cwd="/tmp")
    return r.returncode, r.stdout + r.stderr


def test_smbd_serves_bureaus_shares_to_bureaus_accounts(bureau_factory, tmp_path):
    port = _free_port()
    sock = tmp_path / "helper.sock"
    conf = tmp_path / "samba" / "smb.conf"
    shares = tmp_path / "shares"
    # smbd works in the shares as their owner, who must get through the test's folders.
    for p in [tmp_path, *tmp_path.parents]:
        if str(p) in ("/", "/tmp"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o711)
    b = bureau_factory(f'[admin]\nhelper_socket = "{sock}"\n\n'
                       f'[samba]\nconfig = "{conf}"\nstate_dir = "{tmp_path}/samba/state"\n'
                       f'shares_dir = "{shares}"\nlisten = "127.0.0.1:{port}"\n')
    b.cli("domain", "add", "example.com")
    for uid in ("alice", "bob", "carl"):
        b.cli("user", "add", f"{uid}@example.com", "--password-stdin", input=PW + "\n")
    b.cli("group", "add", "sales", "--member", "alice", "--member", "bob")
    # A Bureau user named like a system account: left out of Samba, the account untouched.
    b.cli("user", "add", "news@example.com", "--password-stdin", input=PW + "\n")

    # Without the helper nothing can be applied, and nothing is saved.
    r = b.cli("samba", "apply", "--share", "sales:sales", check=False)
    assert r.returncode != 0 and "system helper is not running" in r.stderr
    assert json.loads(b.cli("--json", "samba", "status").stdout)["state"]["settings"]["enabled"] is False

    box = Box(tmp_path, b.config)
    try:
        wait_for("the helper's socket", sock.exists)
        # Bad input is refused beside its field; nothing is written.
        for share, field in (("../etc:sales", "shares[0].name"), ("a/b:sales", "shares[0].name"),
                             ("homes:sales", "shares[0].name"), ("docs:nobody", "shares[0].group")):
            r = b.cli("samba", "apply", "--share", share, check=False)
            assert r.returncode != 0 and field in r.stderr, (share, r.stderr)
        r = b.cli("samba", "apply", "--workgroup", "NOT A WORKGROUP", check=False)
        assert r.returncode != 0 and "workgroup" in r.stderr
        assert not conf.exists()

        # Samba's folders given to another account (as the daemon gave them at its start
        # before): the helper makes them root's again, as smbd (root) reads them.
        (tmp_path / "samba" / "state").mkdir(parents=True)
        for d in (tmp_path / "samba", tmp_path / "samba" / "state"):
            os.chown(d, 65534, 65534)
        done = json.loads(b.cli("--json", "samba", "apply", "--share", "sales:sales", "--public").stdout)
        assert [os.stat(d).st_uid for d in (tmp_path / "samba", tmp_path / "samba" / "state")] == [0, 0]
        rep = done["report"]
        assert rep["config"] == str(conf) and rep["users"] == 3
        assert rep["skipped"] == [["news", "a system account of that name exists"]]
        assert sorted(rep["added"]) == ["alice", "bob", "carl"] and not rep["reloaded"]
        text = conf.read_text()
        assert "[sales]" in text and "valid users = alice bob" in text and "[homes]" in text
        # The accounts exist in the helper's /etc only, marked as Bureau's, without a shell.
        inside = box.inside("getent", "passwd", "alice").stdout
        assert "Bureau account" in inside and "nologin" in inside
        assert subprocess.run(["getent", "passwd", "alice"], capture_output=True).returncode != 0

        box.start_smbd(conf, port)
        (tmp_path / "plan.txt").write_text("Q4 plan\n")
        rc, out = smb(port, "sales", "alice", PW, f"put {tmp_path}/plan.txt plan.txt")
        assert rc == 0, out
        rc, out = smb(port, "sales", "bob", PW, f"get plan.txt {tmp_path}/got.txt")
        assert rc == 0 and (tmp_path / "got.txt").read_text() == "Q4 plan\n", out
        # carl is not in the group: refused at the share, but has his home and the public share.
        rc, out = smb(port, "sales", "carl", PW)
        assert rc != 0 and "NT_STATUS_ACCESS_DENIED" in out
        assert smb(port, "carl", "carl", PW, f"put {tmp_path}/plan.txt mine.txt")[0] == 0
        assert (shares / "homes" / "carl" / "mine.txt").exists()
        assert smb(port, "public", "carl", PW)[0] == 0
        rc, out = smb(port, "carl", "bob", PW)
        assert rc != 0 and "NT_STATUS_ACCESS_DENIED" in out
        assert "NT_STATUS_LOGON_FAILURE" in smb(port, "public", "news", PW)[1]
        assert box.inside("getent", "passwd", "news").stdout.split(":")[4] == "news"
        rc, out = smb(port, "sales", "alice", "wrong password")
        assert rc != 0 and "NT_STATUS_LOGON_FAILURE" in out

        # A new password in Bureau: the new one works in Samba, the old one no longer.
        b.cli("user", "passwd", "alice", "--password-stdin", input=NEW_PW + "\n")
        wait_for("the new password", lambda: smb(port, "sales", "alice", NEW_PW)[0] == 0)
        rc, out = smb(port, "sales", "alice", PW)
        assert rc != 0 and "NT_STATUS_LOGON_FAILURE" in out

        # Disabled in Bureau: refused by Samba.
        b.cli("user", "disable", "bob")
        wait_for("bob disabled", lambda: smb(port, "sales", "bob", PW)[0] != 0)
        assert "NT_STATUS_ACCOUNT_DISABLED" in smb(port, "public", "bob", PW)[1]

        # Deleted in Bureau: gone from Samba and from the accounts; the files stay.
        b.cli("user", "del", "carl")
        wait_for("carl removed", lambda: box.inside("getent", "passwd", "carl").returncode != 0)
        assert smb(port, "public", "carl", PW)[0] != 0
        assert (shares / "homes" / "carl" / "mine.txt").exists()

        # A refused change leaves the running configuration as it was.
        before = conf.read_text()
        r = b.cli("samba", "apply", "--share", "../../etc:sales", check=False)
        assert r.returncode != 0 and "shares[0].name" in r.stderr
        assert conf.read_text() == before

        st = b.cli("samba", "status").stdout
        assert "enabled: yes" in st and "shares: sales (group sales)" in st and "smbd: running" in st
        last = json.loads(b.cli("--json", "samba", "status").stdout)["state"]["last"]
        assert last["error"] is None and last["report"]["removed"] == ["carl"]
    finally:
        box.stop()
