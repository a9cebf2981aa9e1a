#!/usr/bin/env bash
# Installs what the tests need on a fresh machine (Rust, gcc, Python 3 and Node are there):
# Debian packages the end-to-end tests drive, and a Python venv with the test clients.
# Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(openssl curl procps swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl isync
  # the appliance image (make image) and its boot test (make qemu)
  mmdebstrap gpg libdpkg-perl mount debian-archive-keyring genimage grub-efi-amd64-bin grub-common
  ovmf qemu-system-x86 qemu-utils rauc squashfs-tools mtools dosfstools busybox-static e2fsprogs
  fdisk cpio xz-utils systemd git icu-devtools binutils
  # the box's kernel, built from Debian's source (image/build.sh)
  make bc bison flex libelf-dev libssl-dev
  # the LDAP tests' clients, and the web proxy Bureau configures
  ldap-utils squid
  # the file server Bureau configures, and its client (Samba also stands in for the office's
  # SMB server in the boot test, and NFS-Ganesha for its NFS server)
  samba smbclient nfs-ganesha nfs-ganesha-vfs
  # the WBXML codec is checked against libwbxml's wbxml2xml and xml2wbxml
  libwbxml2-utils
  # SyncML's client (its file backend stands in for a phone)
  syncevolution
  # the ACME test server that issues and renews the box's certificate in the tests
  pebble
  # the web console's browser tests (playwright-core drives Debian's Chromium)
  chromium fonts-dejavu-core)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  # apt may resolve a conflict by removing a package (a newer QEMU from backports took
  # qemu-utils away once): that is refused here, loudly, not found out minutes later.
  # What apt would remove to install these; "!" if it cannot install them at all.
  simulate() {
    local out
    out=$(DEBIAN_FRONTEND=noninteractive apt-get install -s --no-install-recommends --allow-downgrades "$@" 2>&1) ||
      { echo "!"; return; }
    awk '$1 == "Remv" {print $2}' <<<"$out" | xargs
  }
  removals=$(simulate "${missing[@]}")
  # A package of our own list that apt would remove (qemu-utils 10 from backports breaks the
  # archive's qemu-system-x86 7.2) is instead put back to the newest version the configured
  # sources hold, so the two match: said here, and only if then nothing at all is removed.
  if [ -n "$removals" ] && [ "$removals" != "!" ]; then
    pinned=()
    for r in $removals; do
      v=$(apt-cache madison "$r" | awk -F'|' 'NR == 1 {gsub(/ /, "", $2); print $2}')
      if [[ " ${APT_PACKAGES[*]} " != *" $r "* ]] || [ -z "$v" ]; then pinned=(); break; fi
      pinned+=("$r=$v")
    done
    if ((${#pinned[@]})) && [ -z "$(simulate "${missing[@]}" "${pinned[@]}")" ]; then
      echo "test-deps: installing the archive's ${pinned[*]} in place of the installed version, which the packages above cannot live with"
      missing+=("${pinned[@]}")
      removals=""
    fi
  fi
  [ "$removals" = "!" ] && removals=""  # apt-get below says why it cannot
  if [ -n "$removals" ] && [ "${BUREAU_APT_ALLOW_REMOVALS:-0}" != 1 ]; then
    echo "test-deps: installing ${missing[*]} would remove: $removals" >&2
    echo "test-deps: refusing; resolve it by hand, or set BUREAU_APT_ALLOW_REMOVALS=1" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends --allow-downgrades "${missing[@]}"
fi
# Every package is there now, and stayed there (nothing above removed one of them).
absent=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || absent+=("$p")
done
if ((${#absent[@]})); then
  echo "test-deps: not installed after apt-get: ${absent[*]}" >&2
  exit 1
fi
image/build.sh --check-tools

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import sys; sys.exit(0)' 2>/dev/null \
   || ! cmp -s tests/requirements.txt .venv/.requirements 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt .venv/.requirements
fi

# playwright-core for the console tests, as locked.
if ! cmp -s tests/console/package-lock.json tests/console/node_modules/.installed-lock 2>/dev/null; then
  (cd tests/console && npm ci --no-audit --no-fund --silent && cp package-lock.json node_modules/.installed-lock)
fi
