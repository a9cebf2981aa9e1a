#!/bin/bash
# make qemu: boots the appliance image in QEMU with the box's ports forwarded to localhost
# (port + 20000: 20025 -> 25, 20443 -> 443, 20993 -> 993, ...; `make run` uses + 10000, so
# both run side by side), UEFI firmware (OVMF), 512 MB.
#
# Environment (the boot tests set these; defaults suit a person at a terminal):
#   BUREAU_QEMU_IMAGE   the image a new disk is made over (default target/image/bureau.qcow2)
#   BUREAU_QEMU_DISK    disk to boot; default: a copy-on-write disk over target/image/bureau.qcow2
#                       in target/qemu/, made on the first run and kept (your data stays)
#   BUREAU_QEMU_FRESH   1: throw the kept disk away and start from the image (erases the VM's
#                       data); needed after `make image` rebuilt the image under a kept disk
#   BUREAU_QEMU_PORTS   offset added to each forwarded port (default 20000)
#   BUREAU_QEMU_ACCEL   kvm or tcg (default: kvm if it works here, else tcg)
#   BUREAU_QEMU_SERIAL  where the serial console goes: "stdio" (default), a file path, or any
#                       QEMU chardev ("unix:/path,server,nowait")
#   BUREAU_QEMU_MONITOR unix socket path for the QEMU monitor (default: none)
#   BUREAU_QEMU_ISOLATED 1: the guest reaches nothing outside (QEMU's user network with
#                       restrict=on: no route, no DNS); the forwarded ports still answer
#   BUREAU_QEMU_GUESTFWD QEMU guestfwd rules the guest may use even so, separated by ";"
#                       ("tcp:10.0.2.100:80-cmd:COMMAND": each connection runs COMMAND)
#   BUREAU_QEMU_EXTRA_DISK a raw disk image attached as a second disk (a backup disk, say)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${BUREAU_QEMU_IMAGE:-$ROOT/target/image/bureau.qcow2}
STATE=$ROOT/target/qemu
OFFSET=${BUREAU_QEMU_PORTS:-20000}
mkdir -p "$STATE"

[ -s "$IMAGE" ] || { echo "qemu: no image at $IMAGE (make image)" >&2; exit 1; }
disk=${BUREAU_QEMU_DISK:-$STATE/disk.qcow2}
# UEFI variables belong to the disk (boot entries live there).
vars="${disk%.qcow2}.vars.fd"
# Which image the disk was made over: a disk is copy-on-write over the image file, so one
# rebuilt since no longer matches what the disk holds.
made_over="${disk%.qcow2}.image"
image_id=$(stat -c '%Y %s' "$IMAGE")
if [ "${BUREAU_QEMU_FRESH:-0}" = 1 ]; then
    rm -f "$disk" "$vars" "$made_over"
fi
if [ -s "$disk" ] && [ -s "$made_over" ] && [ "$(cat "$made_over")" != "$image_id" ]; then
    built=$(date -d "@$(cut -d' ' -f1 "$made_over")" '+%F %T')
    cat >&2 <<MSG
qemu: $disk was made over the image built $built; make image has rebuilt it since.
qemu: booting that disk over the new image would mix the two. Either
qemu:   start fresh (erases the VM's data):  BUREAU_QEMU_FRESH=1 make qemu
qemu:   or keep the VM's data: build the old image again, boot it, and update it with
qemu:   target/image/bureau.raucb from the new build (the console's System page).
MSG
    exit 1
fi
if [ ! -s "$disk" ]; then
    # A 4 GB disk over the image: the first boot grows the data partition into it.
    qemu-img create -q -f qcow2 -b "$IMAGE" -F qcow2 "$disk" 4G
    echo "$image_id" > "$made_over"
fi
[ -s "$vars" ] || cp /usr/share/OVMF/OVMF_VARS.fd "$vars"

accel=${BUREAU_QEMU_ACCEL:-}
if [ -z "$accel" ]; then
    accel=tcg
    # KVM only if the firmware runs under it for a few seconds without KVM stopping the guest
    # (nested virtualisation often opens /dev/kvm and then fails: "KVM internal error").
    if [ -w /dev/kvm ]; then
        probe=$(timeout 6 qemu-system-x86_64 -accel kvm -cpu host -machine q35 -m 128 \
            -display none -nodefaults -serial null -monitor none \
            -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd 2>&1 || true)
        case "$probe" in
            *rror*|*ssertion*) ;;
            *) accel=kvm ;;
        esac
    fi
fi
cpu=max
[ "$accel" = kvm ] && cpu=host

fwd=""
for p in 25 80 143 389 443 445 465 587 636 993 3128; do
    fwd="$fwd,hostfwd=tcp:127.0.0.1:$((OFFSET + p))-:$p"
done

restrict=""
[ "${BUREAU_QEMU_ISOLATED:-0}" = 1 ] && restrict=",restrict=on"
IFS=';' read -ra rules <<<"${BUREAU_QEMU_GUESTFWD:-}"
for rule in "${rules[@]}"; do
    restrict="$restrict,guestfwd=$rule"
done

serial=${BUREAU_QEMU_SERIAL:-stdio}
case "$serial" in stdio|*:*) ;; *) serial="file:$serial" ;; esac
monitor=(-monitor none)
[ -n "${BUREAU_QEMU_MONITOR:-}" ] && monitor=(-monitor "unix:$BUREAU_QEMU_MONITOR,server,nowait")

if [ "$serial" = stdio ]; then
    cat >&2 <<EOF
qemu: booting $disk ($accel). Once up:
  console   https://localhost:$((OFFSET + 443))/  (the setup token is printed below)
  IMAPS     localhost:$((OFFSET + 993))   submission localhost:$((OFFSET + 587))   SMTP localhost:$((OFFSET + 25))
  quit      Ctrl-A X
EOF
fi

exec qemu-system-x86_64 \
    -name bureau -machine q35 -accel "$accel" -cpu "$cpu" -smp 2 -m 512 \
    -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd \
    -drive if=pflash,format=raw,file="$vars" \
    -drive if=virtio,format=qcow2,file="$disk" \
    ${BUREAU_QEMU_EXTRA_DISK:+-drive if=virtio,format=raw,file="$BUREAU_QEMU_EXTRA_DISK"} \
    -netdev "user,id=net0$fwd$restrict" -device virtio-net-pci,netdev=net0 \
    -device virtio-rng-pci \
    -display none -serial "$serial" "${monitor[@]}"
