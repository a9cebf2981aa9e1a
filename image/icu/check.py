"""What Samba needs of ICU, with the ICU found on LD_LIBRARY_PATH: its UTF8-NFD and
UTF8-NFC conversions open the any-nfd and any-nfc transliterators; each must open and turn
a decomposable string into the other form. Usage: check.py ICU_MAJOR_VERSION."""

import ctypes
import sys

v = sys.argv[1]
ctypes.CDLL(f"libicuuc.so.{v}", mode=ctypes.RTLD_GLOBAL)
i18n = ctypes.CDLL(f"libicui18n.so.{v}")
open_ = getattr(i18n, f"utrans_openU_{v}")
open_.restype = ctypes.c_void_p
trans = getattr(i18n, f"utrans_transUChars_{v}")
trans.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_int32,
                  ctypes.c_int32, ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_int)]


def utf16(s):
    raw = s.encode("utf-16-le")
    return (ctypes.c_uint16 * 64).from_buffer_copy(raw.ljust(128, b"\0")), len(raw) // 2


def run(tid, text):
    err = ctypes.c_int(0)
    idb, n = utf16(tid)
    t = open_(idb, n, 0, None, 0, None, ctypes.byref(err))
    if not t or err.value > 0:
        sys.exit(f"icu: {tid}: utrans_openU failed, error {err.value}")
    buf, n = utf16(text)
    length, limit = ctypes.c_int32(n), ctypes.c_int32(n)
    trans(t, buf, ctypes.byref(length), 64, 0, ctypes.byref(limit), ctypes.byref(err))
    if err.value > 0:
        sys.exit(f"icu: {tid}: transliteration failed, error {err.value}")
    return bytes(buf)[: length.value * 2].decode("utf-16-le")


for tid, text, want in [("any-nfd", "caf\u00e9", "cafe\u0301"), ("any-nfc", "cafe\u0301", "caf\u00e9")]:
    got = run(tid, text)
    if got != want:
        sys.exit(f"icu: {tid} gave {got!r}, not {want!r}")
print("icu: any-nfd and any-nfc work with the data kept")
