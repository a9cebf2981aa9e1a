#!/bin/bash
# make image: builds Bureau's appliance disk offline from what this machine reaches (Debian's
# packages and the bureau binary built here). Outputs, in $OUT (target/image):
#   bureau.img       raw GPT disk (EFI + GRUB, root slots A and B, data)
#   bureau.img.xz    the same, compressed: what an office downloads and flashes
#   bureau.qcow2     the same, compressed cluster by cluster, for VMs and QEMU
#   rootfs.squashfs  the root slot's contents, what update bundles carry
#   bureau-<version>.raucb  a signed update bundle of this build
# Slow steps are cached in $CACHE (outside the repository) by the hash of their inputs: the
# Debian userland, the kernel and its modules, and the signing keys. A build whose inputs did
# not change does nothing.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${BUREAU_IMAGE_CACHE:-/var/cache/bureau-image}
OUT=${BUREAU_IMAGE_OUT:-$ROOT/target/image}
BIN=${BUREAU_BIN:-$ROOT/target/release/bureau}
SUITE=bookworm
MIRROR=${BUREAU_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${BUREAU_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
KEYS=${BUREAU_SIGNING_DIR:-$CACHE/keys}

say() { printf 'image: %s\n' "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# Every tool the build runs, and the Debian package that has it: checked before anything
# starts, so a missing one is named now rather than minutes later. `build.sh --check-tools`
# runs this check alone.
TOOLS="mmdebstrap:mmdebstrap apt-cache:apt apt-get:apt dpkg-deb:dpkg make:make bc:bc bison:bison
  flex:flex mksquashfs:squashfs-tools genimage:genimage qemu-img:qemu-utils grub-mkstandalone:grub-common
  grub-editenv:grub-common rauc:rauc openssl:openssl xz:xz-utils cpio:cpio
  mkfs.vfat:dosfstools mcopy:mtools mkfs.ext4:e2fsprogs sfdisk:fdisk busybox:busybox-static
  icupkg:icu-devtools gcc:gcc nm:binutils readelf:binutils python3:python3"
check_tools() {
    local missing=() t
    for t in $TOOLS; do
        command -v "${t%%:*}" >/dev/null 2>&1 || missing+=("${t%%:*} (Debian package ${t#*:})")
    done
    [ -d /usr/lib/grub/x86_64-efi ] || missing+=("GRUB's EFI modules (Debian package grub-efi-amd64-bin)")
    [ -e /usr/include/gelf.h ] || missing+=("libelf's headers, for the kernel's build (Debian package libelf-dev)")
    [ -e /usr/include/openssl/ssl.h ] || missing+=("OpenSSL's headers, for the kernel's build (Debian package libssl-dev)")
    if ((${#missing[@]})); then
        echo "image: missing on this machine, install them first (scripts/test-deps.sh does):" >&2
        printf 'image:   %s\n' "${missing[@]}" >&2
        return 1
    fi
}
check_tools
[ "${1:-}" = --check-tools ] && { say "every tool is here"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "image: run as root (mmdebstrap, chroot, mknod)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "image: no bureau binary at $BIN (cargo build --release -p bureau)" >&2; exit 1; }
mkdir -p "$CACHE/debs" "$OUT"

# ---- 1. the Debian userland, cached by its package list -------------------------------------
pkgs=$(grep -v '^#' "$HERE/packages" | xargs | tr ' ' ',')
base="$CACHE/base-$(echo "$SUITE $pkgs $(hash_of "$HERE/strip.list")" | sha256sum | cut -c1-16).tar"
if [ ! -s "$base" ]; then
    say "building the Debian userland ($SUITE, minbase + $pkgs)"
    excludes=()
    for p in doc man info locale; do excludes+=(--dpkgopt="path-exclude=/usr/share/$p/*"); done
    mmdebstrap --variant=minbase --format=tar --include="$pkgs" "${excludes[@]}" \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
        --setup-hook="sync-in $CACHE/debs /var/cache/apt/archives/" \
        --customize-hook="sync-out /var/cache/apt/archives $CACHE/debs" \
        --skip=download/empty \
        "$SUITE" "$base.tmp" \
        "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
        "deb $SECURITY $SUITE-security main"
    mv "$base.tmp" "$base"
fi

# ---- 2. the kernel: Debian's 6.1 source, Linux's x86_64_defconfig and Bureau's fragment -------
# The same configuration as the Buildroot kernel (buildroot/board/bureau/linux.fragment):
# everything the box needs built in, no modules, LZ4. The source tree and its objects stay in
# the cache, so a changed fragment rebuilds only what it touches.
spkg=linux-source-6.1
sver=$(apt-cache policy "$spkg" | awk '/Candidate:/{print $2}')
[ -n "$sver" ] && [ "$sver" != "(none)" ] || { echo "image: apt knows no $spkg (apt-get update?)" >&2; exit 1; }
sdeb="$CACHE/debs/${spkg}_${sver/:/%3a}_all.deb"
if [ ! -s "$sdeb" ]; then
    say "downloading $spkg $sver"
    (cd "$CACHE/debs" && apt-get download -q "$spkg=$sver" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    [ -s "$sdeb" ] || { echo "image: apt-get download $spkg=$sver made no $sdeb" >&2; exit 1; }
fi
fragment="$ROOT/buildroot/board/bureau/linux.fragment"
kdir="$CACHE/kernel-$(hash_of <(basename "$sdeb") "$fragment")"
if [ ! -s "$kdir/bzImage" ]; then
    src="$CACHE/source-$(basename "$sdeb" .deb)"
    if [ ! -e "$src/.unpacked" ]; then
        say "unpacking $(basename "$sdeb")"
        rm -rf "$CACHE"/source-"$spkg"_* && mkdir -p "$src"
        dpkg-deb --fsys-tarfile "$sdeb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' |
            tar -xJ -C "$src" --strip-components=1
        touch "$src/.unpacked"
    fi
    say "building the kernel ($(nproc) jobs; the first build takes a while)"
    kb="$src/build"
    mkdir -p "$kb"
    klog="$CACHE/kernel-build.log"
    { make -s -C "$src" O="$kb" x86_64_defconfig &&
        "$src/scripts/kconfig/merge_config.sh" -m -O "$kb" "$kb/.config" "$fragment" &&
        make -s -C "$src" O="$kb" olddefconfig; } >"$klog" 2>&1 || { tail -30 "$klog" >&2; exit 1; }
    # merge_config.sh's own check, made strict: an option the fragment sets and the
    # configuration dropped (a misspelt name, a missing dependency) stops the build.
    lost=$(grep -E '^(CONFIG_|# CONFIG_)' "$fragment" | while read -r l; do
        case "$l" in
            "# "*) k=${l#\# }; k=${k%% *}; ! grep -q "^$k=" "$kb/.config" || echo "$k (set, the fragment unsets it)" ;;
            *) grep -qxF "$l" "$kb/.config" || echo "$l" ;;
        esac
    done)
    [ -z "$lost" ] || { echo "image: the kernel's configuration lacks:" >&2; echo "$lost" | sed 's/^/image:   /' >&2; exit 1; }
    make -s -C "$src" O="$kb" -j"$(nproc)" LOCALVERSION=-bureau KBUILD_BUILD_TIMESTAMP=@0 \
        KBUILD_BUILD_USER=bureau KBUILD_BUILD_HOST=image bzImage >>"$klog" 2>&1 ||
        { tail -30 "$klog" >&2; exit 1; }
    rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
    cp "$kb/arch/x86/boot/bzImage" "$kb/.config" "$kdir.tmp/"
    make -s -C "$src" O="$kb" LOCALVERSION=-bureau kernelrelease >"$kdir.tmp/version"
    mv "$kdir.tmp" "$kdir"
fi
kver=$(cat "$kdir/version")

# ---- 3. signing keys for update bundles (a development CA unless BUREAU_SIGNING_DIR) ----------
if [ ! -s "$KEYS/signing.crt" ]; then
    say "making update-signing keys in $KEYS (a development CA: offices use their own)"
    mkdir -p "$KEYS" && chmod 700 "$KEYS"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500 \
        -subj "/O=Bureau/CN=Bureau update CA" -keyout "$KEYS/ca.key" -out "$KEYS/ca.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/O=Bureau/CN=Bureau update signing" -keyout "$KEYS/signing.key" -out "$KEYS/signing.csr" 2>/dev/null
    openssl x509 -req -in "$KEYS/signing.csr" -CA "$KEYS/ca.crt" -CAkey "$KEYS/ca.key" \
        -CAcreateserial -days 36500 -out "$KEYS/signing.crt" \
        -extfile <(printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning,emailProtection\n') 2>/dev/null
    rm -f "$KEYS/signing.csr"
fi

# ---- 4. the root slot: userland + kernel + overlay + bureau ----------------------------------
version=${BUREAU_VERSION:-$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo dev)}
overlay=$(cd "$HERE/overlay" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
key="$base $kdir $version $overlay debug=${BUREAU_IMAGE_DEBUG:-0} $(hash_of "$BIN" "$HERE"/*.sh "$HERE"/*.cfg "$HERE/initramfs/init" "$HERE"/icu/* "$KEYS/ca.crt")"
if [ -s "$OUT/bureau.qcow2" ] && [ "$(cat "$OUT/.inputs" 2>/dev/null)" = "$key" ]; then
    say "up to date: $OUT"
    exit 0
fi
rm -f "$OUT/.inputs"

R="$OUT/rootfs"
rm -rf "$R" && mkdir -p "$R"
say "assembling the root filesystem"
tar -C "$R" -xf "$base"
# ICU's data, 31 MB that only Samba's UTF8-NFC/NFD conversions touch, cut to what they need.
"$HERE/icu/shrink.sh" "$R" "$OUT/icu" >&2
mkdir -p "$R/boot"
cp "$kdir/bzImage" "$R/boot/vmlinuz"
cp -a "$HERE/overlay/." "$R/"
install -m 0755 "$BIN" "$R/usr/bin/bureau"
cp "$KEYS/ca.crt" "$R/etc/rauc/keyring.pem"
echo "$version" >"$R/etc/bureau/release"
mkdir -p "$R/usr/share/bureau" "$R/efi" "$R/var/lib/bureau"
cp "$ROOT/README.md" "$R/usr/share/bureau/"
# A read-only root: the machine id is made at each boot; no first-boot wizard of systemd's.
: >"$R/etc/machine-id"
echo bureau >"$R/etc/hostname"
# systemd-resolved's stub, from a file in the slot rather than the one resolved writes when it
# starts: Bureau reads it at its start, which no longer waits for resolved (issue 23).
ln -sf ../usr/lib/systemd/resolv.conf "$R/etc/resolv.conf"
# The time zone chosen in the console, kept on the data partition (bureau-firstboot makes it UTC).
ln -sf /var/lib/bureau/system/localtime "$R/etc/localtime"
systemd-sysusers --root="$R" >/dev/null
# resolved as Bureau's copy of its unit orders it (image/overlay/etc/systemd/system), not
# before sysinit.target as Debian's package enabled it.
rm -f "$R/etc/systemd/system/sysinit.target.wants/systemd-resolved.service"
systemctl --root="$R" enable -q systemd-networkd systemd-resolved systemd-timesyncd \
    bureau.service bureau-helper.service bureau-firstboot.service bureau-health.service \
    bureau-banner.service
# Nobody signs in on the box's console: it shows the banner; the web console does the rest.
# BUREAU_IMAGE_DEBUG=1 (developers only) gives a root shell on the serial line instead.
if [ "${BUREAU_IMAGE_DEBUG:-0}" = 1 ]; then
    mkdir -p "$R/etc/systemd/system/serial-getty@ttyS0.service.d"
    printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200 %%I $TERM\n' \
        >"$R/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
    systemctl --root="$R" enable -q serial-getty@ttyS0.service
else
    systemctl --root="$R" mask -q serial-getty@ttyS0.service
fi
# The accounts are made above (sysusers at build time) and /etc starts from them at each
# boot: systemd-sysusers at boot only cost the critical path a second under TCG.
# No one logs in on the box, and /var is in memory: no login records (utmp, wtmp) to keep.
systemctl --root="$R" mask -q getty@tty1.service systemd-sysusers.service \
    systemd-update-utmp.service systemd-update-utmp-runlevel.service \
    systemd-firstboot.service e2scrub_reap.service e2scrub_all.timer apt-daily.timer \
    apt-daily-upgrade.timer 2>/dev/null || true
# The box runs no foreign binaries: no binfmt_misc (its kernel has none, and its mount and
# rule loader failed at every boot).
systemctl --root="$R" mask -q systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
    proc-sys-fs-binfmt_misc.mount
# Nor what a box with no kernel debugging and no crash store mounts or starts at each boot
# (each unit costs the boot a few hundred milliseconds of a vCPU under emulation: issue 23),
# nor, its kernel having no modules, systemd's module loaders. logind stays: it is what turns
# a press of the power button into a clean shutdown.
systemctl --root="$R" mask -q systemd-network-generator.service \
    dev-hugepages.mount sys-kernel-debug.mount sys-kernel-tracing.mount dpkg-db-backup.timer \
    modprobe@drm.service modprobe@fuse.service modprobe@efi_pstore.service systemd-pstore.service \
    modprobe@configfs.service modprobe@dm_mod.service modprobe@loop.service \
    systemd-modules-load.service kmod-static-nodes.service
# The journal lives in memory (Storage=volatile): there is nothing to flush to /var/log.
systemctl --root="$R" mask -q systemd-journal-flush.service
# Samba as a plain file server (no NetBIOS, no domain controller); smbd and Squid start from
# their drop-ins once Bureau has written their configuration.
systemctl --root="$R" mask -q nmbd.service samba-ad-dc.service 2>/dev/null || true
systemctl --root="$R" enable -q smbd.service squid.service

# What the box never runs, removed last: enabling units above still ran update-rc.d (Perl).
grep -v '^#' "$HERE/strip.list" | while read -r p; do
    [ -n "$p" ] && (cd "$R" && rm -rf $p)
done
# ... and what runs still finds every library it links (a library stripped by mistake stops
# the build here, not smbd on the box).
for b in /usr/sbin/smbd /usr/bin/smbpasswd /usr/bin/pdbedit /usr/bin/testparm /usr/bin/smbstatus \
    /usr/bin/smbcontrol $(cd "$R" && printf '/%s ' usr/libexec/samba/*) /usr/sbin/squid \
    /usr/lib/squid/basic_ldap_auth /usr/bin/bureau /usr/bin/rauc; do
    if ! out=$(chroot "$R" /lib64/ld-linux-x86-64.so.2 --list "$b" 2>&1) || grep -q 'not found' <<<"$out"; then
        echo "image: $b does not load after image/strip.list:" >&2
        grep 'not found' <<<"$out" >&2 || echo "$out" >&2
        exit 1
    fi
done

# The initramfs: static busybox (Debian's busybox-static) and our init.
"$HERE/mkinitramfs.sh" /bin/busybox "$R/boot/initrd.img"

say "making the root slot (squashfs, uncompressed)"
# Uncompressed: under TCG, decompressing an xz root was most of the boot's work once the
# kernel ran (each block first touched, on two emulated CPUs), and on a box it costs CPU at
# every first read. The image is compressed whole instead (bureau.img.xz, update bundles),
# which makes it smaller than an xz squashfs did: one stream sees every file, not 256 KiB at
# a time (docs/BENCHMARKS.md).
mksquashfs "$R" "$OUT/rootfs.squashfs" -noI -noD -noF -noX -noappend -quiet -no-progress \
    -wildcards -e 'proc/*' 'sys/*' 'dev/*' 'run/*' 'tmp/*'

# ---- 5. the EFI partition: a standalone GRUB with our boot logic, and its environment ---------
G="$OUT/genimage"
rm -rf "$G" && mkdir -p "$G/input" "$G/root" "$G/tmp"
grub-mkstandalone -O x86_64-efi -o "$G/input/bootx64.efi" \
    --modules="part_gpt fat squash4 xzio gzio loadenv regexp test linux echo efi_gop" \
    --locales= --fonts= --themes= "boot/grub/grub.cfg=$HERE/grub.cfg"
grub-editenv "$G/input/grubenv" create
grub-editenv "$G/input/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
cp "$OUT/rootfs.squashfs" "$G/input/"

# ---- 6. the disk ------------------------------------------------------------------------------
say "writing the disk (genimage)"
genimage --config "$HERE/genimage.cfg" --rootpath "$G/root" --tmppath "$G/tmp" \
    --inputpath "$G/input" --outputpath "$G/images" >"$OUT/genimage.log" 2>&1 ||
    { tail -20 "$OUT/genimage.log" >&2; exit 1; }
mv "$G/images/bureau.img" "$OUT/bureau.img"
qemu-img convert -c -O qcow2 "$OUT/bureau.img" "$OUT/bureau.qcow2"
rm -rf "$G"
say "compressing the disk (xz -9)"
xz -T0 -9 -c "$OUT/bureau.img" >"$OUT/bureau.img.xz.part" && mv "$OUT/bureau.img.xz.part" "$OUT/bureau.img.xz"

# ---- 7. an update bundle of this very build ---------------------------------------------------
"$HERE/bundle.sh" "$OUT/rootfs.squashfs" "$version" "$OUT/bureau-$version.raucb"
ln -sf "bureau-$version.raucb" "$OUT/bureau.raucb"

echo "$key" >"$OUT/.inputs"
size() { du -k --apparent-size "$1" | awk '{printf "%.1f MB", $1 / 1024}'; }
say "kernel $kver, bureau $version"
say "$OUT/bureau.img    $(size "$OUT/bureau.img") raw"
say "$OUT/bureau.img.xz $(size "$OUT/bureau.img.xz") ($(stat -c %s "$OUT/bureau.img.xz") bytes)"
say "$OUT/bureau.qcow2  $(size "$OUT/bureau.qcow2")"
say "$OUT/rootfs.squashfs  $(size "$OUT/rootfs.squashfs")"
