#!/bin/bash
# Buildroot post-build ($1 = target directory): what image/build.sh does to the Debian
# userland, for Buildroot's: release, keyring, read-only-root details, units, initramfs.
set -euo pipefail
T=$1
EXT=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=$(cd "$EXT/.." && pwd)
KEYS=${BUREAU_SIGNING_DIR:?set BUREAU_SIGNING_DIR to the update-signing keys (docs/IMAGE.md)}

(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo dev) >"$T/etc/bureau/release"
cp "$KEYS/ca.crt" "$T/etc/rauc/keyring.pem"
: >"$T/etc/machine-id"
ln -sf ../usr/lib/systemd/resolv.conf "$T/etc/resolv.conf"
mkdir -p "$T/efi" "$T/var/lib/bureau" "$T/usr/share/bureau"
cp "$ROOT/README.md" "$T/usr/share/bureau/"

# The same units as image/build.sh enables.
wants="$T/etc/systemd/system/multi-user.target.wants"
mkdir -p "$wants"
for u in systemd-networkd systemd-resolved systemd-timesyncd bureau bureau-helper \
    bureau-firstboot bureau-health bureau-banner; do
    f=$(find "$T/usr/lib/systemd/system" "$T/lib/systemd/system" -name "$u.service" 2>/dev/null | head -1)
    [ -n "$f" ] && ln -sf "${f#"$T"}" "$wants/$u.service"
done
# Masked as image/build.sh masks them: nobody signs in on the console; no systemd first-boot
# wizard; Samba as a plain file server (no NetBIOS, no domain controller); no binfmt_misc;
# nothing at boot the box does not use (kernel debugging mounts, pstore, a journal flush
# with the journal in memory, login records, module loading: the kernel has no modules).
for u in getty@tty1.service serial-getty@ttyS0.service systemd-firstboot.service \
    nmbd.service nmb.service samba-ad-dc.service samba.service systemd-binfmt.service \
    proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
    systemd-network-generator.service dev-hugepages.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount modprobe@drm.service modprobe@fuse.service \
    modprobe@efi_pstore.service systemd-pstore.service systemd-journal-flush.service \
    systemd-update-utmp.service systemd-update-utmp-runlevel.service \
    modprobe@configfs.service modprobe@dm_mod.service modprobe@loop.service \
    systemd-modules-load.service kmod-static-nodes.service; do
    ln -sf /dev/null "$T/etc/systemd/system/$u"
done
# smbd and Squid start from their drop-ins (image/overlay) once Bureau wrote their settings.
# Samba's own build (--systemd-install-services) names its unit smb.service, Debian
# smbd.service; the overlay's drop-ins and the helper use Debian's name, so it is made an
# alias (systemd reads an alias's drop-ins and starts the unit by either name).
smb=$(find "$T/usr/lib/systemd/system" "$T/lib/systemd/system" -name smb.service 2>/dev/null | head -1)
if [ -n "$smb" ] && [ -z "$(find "$T/usr/lib/systemd/system" "$T/lib/systemd/system" -name smbd.service 2>/dev/null)" ]; then
    ln -sf "${smb#"$T"}" "$T/etc/systemd/system/smbd.service"
fi
for u in smbd smb squid; do
    f=$(find "$T/usr/lib/systemd/system" "$T/lib/systemd/system" -name "$u.service" 2>/dev/null | head -1)
    [ -n "$f" ] && ln -sf "${f#"$T"}" "$wants/$u.service"
done
# The time zone chosen in the console, kept on the data partition.
ln -sf /var/lib/bureau/system/localtime "$T/etc/localtime"
echo bureau >"$T/etc/hostname"

# GRUB loads /boot/vmlinuz and /boot/initrd.img from the slot (image/grub.cfg).
ln -sf bzImage "$T/boot/vmlinuz"
"$ROOT/image/mkinitramfs.sh" "$T/bin/busybox" "$T/boot/initrd.img"
