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
# xz rather than gzip: the modules of the data partition's ext4 grew it to 3.3 MB with gzip,
# 2.4 MB so, which the image's size budget needed; booting it costs no more (GRUB reads less
# and the kernel decompresses more). The kernel's xz reader wants a CRC32 check.
(cd "$work" && find . | cpio -o -H newc --quiet | xz -9e --check=crc32 --lzma2=preset=9e,dict=16MiB) >"$out"
