#!/bin/bash
# Buildroot post-image: the same disk as `make image` (image/genimage.cfg) from Buildroot's
# GRUB, root squashfs and host tools, and an update bundle (image/bundle.sh).
set -euo pipefail
EXT=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=$(cd "$EXT/.." && pwd)
export PATH="$HOST_DIR/bin:$HOST_DIR/sbin:$PATH"
version=$(cat "$TARGET_DIR/etc/bureau/release")

in="$BINARIES_DIR/bureau-input"
rm -rf "$in" "$BINARIES_DIR/genimage.tmp" && mkdir -p "$in" "$BINARIES_DIR/genimage.root"
cp "$BINARIES_DIR/efi-part/EFI/BOOT/bootx64.efi" "$in/bootx64.efi"
cp "$BINARIES_DIR/rootfs.squashfs" "$in/rootfs.squashfs"
grub-editenv "$in/grubenv" create
grub-editenv "$in/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
genimage --config "$ROOT/image/genimage.cfg" --rootpath "$BINARIES_DIR/genimage.root" \
    --tmppath "$BINARIES_DIR/genimage.tmp" --inputpath "$in" --outputpath "$BINARIES_DIR"
qemu-img convert -c -O qcow2 "$BINARIES_DIR/bureau.img" "$BINARIES_DIR/bureau.qcow2"
xz -T0 -9 -c "$BINARIES_DIR/bureau.img" >"$BINARIES_DIR/bureau.img.xz"
"$ROOT/image/bundle.sh" "$BINARIES_DIR/rootfs.squashfs" "$version" "$BINARIES_DIR/bureau-$version.raucb"
