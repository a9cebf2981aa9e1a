#!/bin/bash
# mkinitramfs.sh BUSYBOX OUT: the initramfs both builds use: a static busybox and
# image/initramfs/init. The kernel has its drivers built in: there are no modules to carry.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
busybox=$1 out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,newroot}
cp "$busybox" "$work/bin/busybox"
ln -s busybox "$work/bin/sh"
install -m 0755 "$HERE/initramfs/init" "$work/init"
# Uncompressed: GRUB reads it from the uncompressed root slot, and unpacking costs a boot under
# emulation more than reading it; the disk image and the bundles are compressed whole.
(cd "$work" && find . | cpio -o -H newc --quiet) >"$out"
