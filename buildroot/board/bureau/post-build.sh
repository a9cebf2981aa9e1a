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
ln -sf ../run/systemd/resolve/stub-resolv.conf "$T/etc/resolv.conf"
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
ln -sf /dev/null "$T/etc/systemd/system/getty@tty1.service"
ln -sf /dev/null "$T/etc/systemd/system/serial-getty@ttyS0.service"

# GRUB loads /boot/vmlinuz and /boot/initrd.img from the slot (image/grub.cfg).
ln -sf bzImage "$T/boot/vmlinuz"
"$ROOT/image/mkinitramfs.sh" "$T/bin/busybox" "$T/boot/initrd.img"
