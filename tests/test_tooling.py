"""The first run on a new machine: scripts/test-deps.sh and image/build.sh refuse loudly, and
name what is missing, instead of failing minutes later (issue 23, defect 5)."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def path_without(tmp_path, hidden, fakes=None):
    """A PATH of links to every command here but `hidden`, with `fakes` (name -> script)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for cmd in Path(d).iterdir() if Path(d).is_dir() else ():
            link = bin_dir / cmd.name
            if cmd.name not in hidden and not link.exists():
                link.symlink_to(cmd)
    for name, script in (fakes or {}).items():
        f = bin_dir / name
        if f.is_symlink():
            f.unlink()
        f.write_text("#!/bin/bash\n" + script)
        f.chmod(0o755)
    return str(bin_dir)


def test_the_image_build_names_a_missing_tool_before_it_starts(tmp_path):
    ok = subprocess.run([str(ROOT / "image/build.sh"), "--check-tools"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    r = subprocess.run([str(ROOT / "image/build.sh"), "--check-tools"], capture_output=True, text=True,
                       env=dict(os.environ, PATH=path_without(tmp_path, {"qemu-img", "mksquashfs"})))
    assert r.returncode == 1, r.stderr
    assert "qemu-img (Debian package qemu-utils)" in r.stderr, r.stderr
    assert "mksquashfs (Debian package squashfs-tools)" in r.stderr and "genimage" not in r.stderr, r.stderr


def test_test_deps_refuses_an_install_that_would_remove_a_package(tmp_path):
    """apt resolving a conflict by removing qemu-utils (as a newer QEMU from backports did):
    refused, loudly, before anything is installed."""
    fakes = {
        # squid is "missing"; every other package is installed.
        "dpkg": 'if [ "$1 $2" = "-s squid" ]; then exit 1; fi\necho "Status: install ok installed"\n',
        "apt-get": 'echo "apt-get $*" >> "$LOG"\n'
                   'if [ "$1 $2" = "install -s" ]; then echo "Remv qemu-utils [1:7.2]"; echo "Inst squid (6.1)"; fi\n',
    }
    log = tmp_path / "apt.log"
    r = subprocess.run([str(ROOT / "scripts/test-deps.sh")], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PATH=path_without(tmp_path, set(), fakes), LOG=str(log)))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "would remove: qemu-utils" in r.stderr, r.stderr
    calls = log.read_text()
    assert "install -s" in calls and "install -y" not in calls, calls


def test_test_deps_puts_back_the_archives_version_of_a_package_it_would_remove(tmp_path):
    """qemu-utils 10 from backports breaks the archive's qemu-system-x86 7.2 (this machine):
    instead of removing it, the archive's qemu-utils goes in with it, said aloud, and only
    because then nothing is removed."""
    fakes = {
        "dpkg": 'if [ "$1 $2" = "-s qemu-system-x86" ]; then exit 1; fi\necho "Status: install ok installed"\n',
        "apt-get": 'echo "apt-get $*" >> "$LOG"\n'
                   'if [ "$1 $2" = "install -s" ]; then case "$*" in *qemu-utils=*) ;; '
                   '*) echo "Remv qemu-utils [1:10.0.2]";; esac; echo "Inst qemu-system-x86 (1:7.2)"; fi\n',
        "apt-cache": 'echo " qemu-utils | 1:7.2+dfsg-7 | http://deb.debian.org/debian bookworm/main amd64 Packages"\n',
    }
    log = tmp_path / "apt.log"
    r = subprocess.run([str(ROOT / "scripts/test-deps.sh")], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PATH=path_without(tmp_path, set(), fakes), LOG=str(log)))
    assert "installing the archive's qemu-utils=1:7.2+dfsg-7" in r.stdout, r.stdout + r.stderr
    installs = [c for c in log.read_text().splitlines() if "install -y" in c]
    assert len(installs) == 1 and "qemu-system-x86 qemu-utils=1:7.2+dfsg-7" in installs[0], installs


def test_make_qemu_says_when_its_kept_disk_is_older_than_the_image(tmp_path):
    """A VM disk is copy-on-write over the image: after `make image` rebuilt the image, the
    kept disk is refused with how to start fresh, instead of silently booting a mix."""
    image = tmp_path / "bureau.qcow2"
    image.write_bytes(b"a newer image")
    disk = tmp_path / "vm.qcow2"
    disk.write_bytes(b"an old overlay")
    (tmp_path / "vm.image").write_text("1 2\n")
    r = subprocess.run([str(ROOT / "qemu/run.sh")], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, BUREAU_QEMU_IMAGE=str(image), BUREAU_QEMU_DISK=str(disk),
                                BUREAU_QEMU_SERIAL=str(tmp_path / "s")))
    assert r.returncode == 1, r.stderr
    assert "was made over the image built 1970-01-01" in r.stderr and "BUREAU_QEMU_FRESH=1 make qemu" in r.stderr
    assert disk.read_bytes() == b"an old overlay"


def buildroot_check(root=ROOT, **env):
    return subprocess.run([str(root / "scripts/buildroot-check.sh")], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, **env))


def test_the_buildroot_defconfig_configures_what_the_image_needs(tmp_path):
    """Loaded in the pinned Buildroot release (../shared/buildroot, as CI has it): glibc,
    systemd, GRUB EFI with its normal mode, RAUC, genimage, bureau, samba4, squid, tzdata,
    overlayfs (issue 23, defect 4: it configured uClibc and BusyBox init). And a defconfig
    that lacks the kernel headers' series is caught, naming what Kconfig dropped."""
    import shutil
    import pytest

    r = buildroot_check()
    if r.returncode == 2:
        pytest.skip(f"no Buildroot tree here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    tree = ROOT / "target/buildroot-2026.02.3"
    tree = Path(os.environ.get("BUREAU_BUILDROOT_DIR", tree))

    # The same check on a copy whose defconfig lost the kernel headers' lines.
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/buildroot-check.sh", tmp_path / "scripts")
    shutil.copytree(ROOT / "buildroot", tmp_path / "buildroot")
    shutil.copytree(ROOT / "image", tmp_path / "image", ignore=shutil.ignore_patterns("*.img", "*.qcow2"))
    defconfig = tmp_path / "buildroot/configs/bureau_x86_64_defconfig"
    defconfig.write_text("".join(l for l in defconfig.read_text().splitlines(keepends=True)
                                 if "HEADERS" not in l))
    r = buildroot_check(tmp_path, BUREAU_BUILDROOT_DIR=str(tree))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "BR2_TOOLCHAIN_USES_GLIBC=y" in r.stderr and "BR2_INIT_SYSTEMD=y" in r.stderr, r.stderr


def test_firstboot_follows_no_link_the_daemon_made(tmp_path):
    """bureau-firstboot runs as root in the daemon's folder before the daemon starts: a link
    in place of the folder, the name or its temporary file is removed, never followed (a
    daemon taken over had root truncate a file through `hostname.new`, and read one into the
    host name through `hostname`), and a name that is not one is made up again."""
    secret = tmp_path / "secret"
    secret.write_text("root:$y$j9T$hash:19000:0:99999:7:::\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    told = tmp_path / "told"
    path = path_without(tmp_path, {"hostname"}, {"hostname": f'echo "$1" > {told}\n'})

    def firstboot(d):
        r = subprocess.run([str(ROOT / "image/overlay/usr/lib/bureau/firstboot")], capture_output=True,
                           text=True, env=dict(os.environ, PATH=path, BUREAU_SYSTEM_DIR=str(d)))
        assert r.returncode == 0, r.stderr
        return told.read_text().strip()

    d = tmp_path / "system"
    d.mkdir()
    (d / "hostname").symlink_to(secret)
    (d / "hostname.new").symlink_to(secret)
    name = firstboot(d)
    assert name.startswith("bureau-") and name.endswith(".local"), name
    assert secret.read_text().startswith("root:$y$") and not (d / "hostname").is_symlink()
    assert (d / "hostname").read_text().strip() == name and os.readlink(d / "localtime").endswith("/UTC")

    # The name the console chose is kept; one that is not a host name is made up again.
    (d / "hostname").write_text("box.office.example\n")
    assert firstboot(d) == "box.office.example"
    for bad in ("-x; rm -rf /\n", "--help\n", "a..b\n"):
        (d / "hostname").write_text(bad)
        assert firstboot(d).startswith("bureau-"), bad

    # The folder itself a link: removed and made again, nothing written where it led.
    d2 = tmp_path / "linked"
    d2.symlink_to(elsewhere)
    firstboot(d2)
    assert d2.is_dir() and not d2.is_symlink() and list(elsewhere.iterdir()) == []
