#!/bin/bash
# mkinitramfs.sh BUSYBOX OUT [MODULES_TREE MODULE_LIST]: the initramfs both builds use: a
# static busybox, image/initramfs/init, and (for a kernel with modular disk drivers) the
# modules to load first, from MODULES_TREE (a directory holding lib/modules/<version>).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
busybox=$1 out=$2 tree=${3:-} list=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,etc,newroot}
cp "$busybox" "$work/bin/busybox"
ln -s busybox "$work/bin/sh"
install -m 0755 "$HERE/initramfs/init" "$work/init"
: >"$work/etc/modules"
if [ -n "$tree" ]; then
    cp -a "$tree/lib" "$work/"
    cp "$list" "$work/etc/modules"
fi
# Uncompressed: GRUB reads it from the uncompressed root slot, and the kernel's xz took 2 s of
# a TCG boot to unpack it (11 MB); the disk image and the bundles are compressed whole.
(cd "$work" && find . | cpio -o -H newc --quiet) >"$out"
