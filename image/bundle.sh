#!/bin/bash
# bundle.sh ROOTFS.squashfs VERSION OUT.raucb: a signed RAUC update bundle (verity format)
# that writes ROOTFS into the inactive root slot. Signed with $BUREAU_SIGNING_DIR (default:
# the image cache's development keys, whose CA every image built here trusts).
set -euo pipefail
[ $# = 3 ] || { echo "usage: $0 ROOTFS.squashfs VERSION OUT.raucb" >&2; exit 2; }
rootfs=$1 version=$2 out=$3
KEYS=${BUREAU_SIGNING_DIR:-${BUREAU_IMAGE_CACHE:-/var/cache/bureau-image}/keys}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/content"
cp "$rootfs" "$work/content/rootfs.img"
cat >"$work/content/manifest.raucm" <<MANIFEST
[update]
compatible=bureau-x86_64
version=$version

[bundle]
format=verity

[image.rootfs]
filename=rootfs.img
MANIFEST
rm -f "$out"
# The root slot's image is uncompressed (image/build.sh): the bundle compresses it.
rauc bundle --mksquashfs-args="-comp xz -Xbcj x86 -b 1M" --cert="$KEYS/signing.crt" --key="$KEYS/signing.key" \
    --keyring="$KEYS/ca.crt" "$work/content" "$out" >/dev/null
echo "bundle: $out ($(du -k "$out" | cut -f1) KiB, version $version)" >&2
