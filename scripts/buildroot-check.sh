#!/usr/bin/env bash
# Loads Bureau's Buildroot defconfig (buildroot/configs/bureau_x86_64_defconfig) in a real
# Buildroot tree and checks that the resulting .config has what the image needs: Kconfig
# drops an option whose dependencies are not met without a word, so a defconfig can look
# right and configure something else (uClibc and BusyBox init, once).
#
# The tree: $BUREAU_BUILDROOT_DIR, else the pinned release's source unpacked from
# ../shared/buildroot/buildroot-$VERSION.tar.xz into target/. Nothing is downloaded and
# nothing is built but Kconfig itself. Exit 0: every option is there; 1: the missing ones
# are named; 2: no Buildroot tree to load it in.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=2026.02.3   # the Buildroot LTS release the tree is written for (docs/IMAGE.md)
OUT=$ROOT/target/buildroot-check

tree=${BUREAU_BUILDROOT_DIR:-}
if [ -z "$tree" ]; then
    tarball=$ROOT/../shared/buildroot/buildroot-$VERSION.tar.xz
    if [ ! -s "$tarball" ]; then
        echo "buildroot-check: no Buildroot tree (set BUREAU_BUILDROOT_DIR, or put $tarball)" >&2
        exit 2
    fi
    tree=$ROOT/target/buildroot-$VERSION
    if [ ! -f "$tree/Makefile" ]; then
        mkdir -p "$ROOT/target"
        tar -xJf "$tarball" -C "$ROOT/target"
    fi
fi

rm -rf "$OUT"
make -s -C "$tree" BR2_EXTERNAL="$ROOT/buildroot" O="$OUT" bureau_x86_64_defconfig >/dev/null

# What the image needs, as Kconfig writes it.
want=(
    BR2_x86_64=y
    BR2_TOOLCHAIN_USES_GLIBC=y
    BR2_INIT_SYSTEMD=y
    BR2_PACKAGE_SYSTEMD_NETWORKD=y
    BR2_PACKAGE_SYSTEMD_RESOLVED=y
    BR2_LINUX_KERNEL=y
    BR2_TARGET_GRUB2=y
    BR2_TARGET_GRUB2_X86_64_EFI=y
    BR2_TARGET_ROOTFS_SQUASHFS=y
    BR2_TARGET_ROOTFS_SQUASHFS4_NONE=y
    BR2_PACKAGE_RAUC=y
    BR2_PACKAGE_HOST_RAUC=y
    BR2_PACKAGE_HOST_GENIMAGE=y
    BR2_PACKAGE_BUREAU=y
    BR2_PACKAGE_SAMBA4=y
    BR2_PACKAGE_SQUID=y
    BR2_PACKAGE_TZDATA=y
    BR2_PACKAGE_CA_CERTIFICATES=y
    "# BR2_TARGET_ENABLE_ROOT_LOGIN is not set"
    # Accounts made at build, as image/build.sh makes them: no systemd-sysusers at boot.
    "# BR2_PACKAGE_SYSTEMD_SYSUSERS is not set"
)
missing=()
for w in "${want[@]}"; do
    grep -qxF "$w" "$OUT/.config" || missing+=("$w")
done
# GRUB's built-in configuration has `if` and `for`: the normal mode's parser must be built in.
grep -q '^BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI=".*\bnormal\b' "$OUT/.config" ||
    missing+=("normal in BR2_TARGET_GRUB2_BUILTIN_MODULES_EFI")
# The kernel's own options come from the fragment: /etc is an overlay (the image's initramfs
# mounts it), the root a squashfs, the boot an EFI stub.
grep -q '^BR2_ROOTFS_USERS_TABLES=".*board/bureau/users.txt"' "$OUT/.config" ||
    missing+=("board/bureau/users.txt in BR2_ROOTFS_USERS_TABLES")
for k in CONFIG_OVERLAY_FS=y CONFIG_SQUASHFS=y CONFIG_SQUASHFS_XZ=y CONFIG_EFI_STUB=y; do
    grep -qxF "$k" "$ROOT/buildroot/board/bureau/linux.fragment" || missing+=("$k (linux.fragment)")
done
if ((${#missing[@]})); then
    echo "buildroot-check: the defconfig loaded in Buildroot $(make -s -C "$tree" print-version 2>/dev/null || echo '?') lacks:" >&2
    printf 'buildroot-check:   %s\n' "${missing[@]}" >&2
    exit 1
fi
echo "buildroot-check: the defconfig configures glibc, systemd, GRUB EFI, RAUC, genimage, bureau, samba4, squid, tzdata and overlayfs"
