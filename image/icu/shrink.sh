#!/usr/bin/env bash
# Replaces the root's ICU data library (31 MB: every locale, collation, converter and
# time zone ICU knows) with one holding only the items of keep.list, then checks with
# check.py, against the root's own ICU, that what Samba needs of it still works.
# Usage: shrink.sh ROOT WORKDIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
R=$1 W=$2
lib=$(ls "$R"/usr/lib/x86_64-linux-gnu/libicudata.so.*.* 2>/dev/null | head -1)
[ -n "$lib" ] || { echo "icu: no libicudata in the root" >&2; exit 1; }
major=$(basename "$lib" | sed -E 's/libicudata\.so\.([0-9]+)\..*/\1/')
sym="icudt${major}_dat"
rm -rf "$W" && mkdir -p "$W/items/translit" "$W/out" "$W/full"
# The data is one symbol's bytes in .rodata: cut it out by the symbol's address and size.
read -r addr size < <(nm -D -S "$lib" | awk -v s="$sym" '$4 == s {print $1, $2}')
read -r sec_addr sec_off < <(readelf -S -W "$lib" | awk '$2 == ".rodata" {print $4, $5}')
python3 - "$lib" "$W/full/icudt${major}l.dat" "$addr" "$size" "$sec_addr" "$sec_off" <<'PY'
import sys
lib, out, addr, size, sec_addr, sec_off = sys.argv[1], sys.argv[2], *(int(x, 16) for x in sys.argv[3:])
with open(lib, "rb") as f:
    f.seek(addr - sec_addr + sec_off)
    open(out, "wb").write(f.read(size))
PY
grep -v '^#' "$HERE/keep.list" | sed '/^$/d' >"$W/keep.txt"
icupkg -x "$W/keep.txt" -d "$W/items" "$W/full/icudt${major}l.dat"
# The package's name (its items' prefix) is the file's: icudt<major>l.
icupkg -tl -a "$W/keep.txt" -s "$W/items" new "$W/out/icudt${major}l.dat"
cat >"$W/data.S" <<ASM
    .section .rodata
    .globl $sym
    .type $sym, @object
    .balign 16
$sym:
    .incbin "$W/out/icudt${major}l.dat"
    .size $sym, . - $sym
    .section .note.GNU-stack,"",@progbits
ASM
gcc -shared -nostdlib -Wl,-soname,"libicudata.so.$major" -o "$W/out/libicudata.so.$major" "$W/data.S"
LD_LIBRARY_PATH="$W/out:$R/usr/lib/x86_64-linux-gnu" python3 "$HERE/check.py" "$major"
install -m 0644 "$W/out/libicudata.so.$major" "$lib"
echo "icu: data cut from $(du -k "$W/full/icudt${major}l.dat" | cut -f1) kB to $(du -k "$lib" | cut -f1) kB"
