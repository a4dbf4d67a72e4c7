"""/etc/ld.so.cache as glibc's ld.so reads it: library name -> path, per architecture.

After DT_RPATH, LD_LIBRARY_PATH and DT_RUNPATH, ld.so asks the cache
ldconfig wrote ("search cache=/etc/ld.so.cache" in LD_DEBUG=libs), then the
default directories. The file holds glibc's "new" format (glibc-ld.so.cache1.1,
dl-cache.h), possibly after the old libc5 table; entries name their
architecture in their flags, so an x86_64 program is never given an aarch64
library listed under the same name (both are on multiarch systems).
"""
from __future__ import annotations

import functools
import struct
import sys

CACHE = "/etc/ld.so.cache"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
# The flags of the entries each ABI's ld.so takes: glibc 2.36's _dl_cache_check_flags per
# machine and class (sysdeps/unix/sysv/linux/*/dl-cache.h, flag values from
# sysdeps/generic/ldconfig.h). x86-64, x32 (EM_X86_64 in ELFCLASS32), AArch64, ppc64, s390x
# (FLAG_S390_LIB64, not MIPS n32's 0x0600), SPARC64, IA-64, RISC-V's double-float ABI and MIPS
# n64 (legacy NaN) take their own flag only; 32-bit ARM takes hard-float (FLAG_ARM_LIBHF, Debian's
# armhf; armel's soft-float ld.so takes 0x0B03 instead, which the machine alone does not tell) or
# an unmarked libc6 entry; every other ABI glibc's generic check: FLAG_ELF (1) or libc6 (3) — so an
# i386 program, or one of a machine with no flag of its own, never takes an x86-64 entry.
ACCEPTS = {(62, 64): {0x0303}, (62, 32): {0x0803}, (183, 64): {0x0A03}, (21, 64): {0x0503}, (22, 64): {0x0403},
           (43, 64): {0x0103}, (50, 64): {0x0203}, (243, 64): {0x1003}, (8, 64): {0x0703}, (40, 32): {0x0903, 0x0003}}
GENERIC = {0x0001, 0x0003}
# Machines whose Linux ABIs are big-endian only (s390x, SPARC): their ld.so reads the cache in that
# order; every other machine here is taken as little-endian (ppc64el, not ppc64; aarch64, not aarch64_be)
BIG_ENDIAN = {22, 2, 43}


# dl-cache.h's cache_file_new.flags & 3: which byte order ldconfig wrote the file in (glibc >= 2.32;
# 0: an older ldconfig, which wrote its own machine's order)
ENDIAN_UNSET, ENDIAN_LITTLE, ENDIAN_BIG = 0, 2, 3


def parse(data: bytes, byteorder: str = sys.byteorder) -> dict[tuple[str, int], str]:
    """(name, flags) -> path for the entries without hwcaps (the first of each, as ld.so takes it),
    as the ld.so of a machine of ``byteorder`` reads the file. A cache of the other byte order or of an
    invalid one, and one shorter than its header and the entries it counts, that ld.so ignores whole
    (dl-cache.c's _dl_load_cache_lookup: cache_file_new_matches_endian, "check for corruption") — so
    do we."""
    at = data.find(NEW_MAGIC)
    if at < 0 or len(data) <= at + 48:
        return {}
    own = ENDIAN_LITTLE if byteorder == "little" else ENDIAN_BIG
    if data[at + 28] & 3 not in (ENDIAN_UNSET, own):
        return {}
    order = "<" if byteorder == "little" else ">"
    nlibs, _len_strings = struct.unpack_from(order + "II", data, at + 20)
    entries = at + 48
    if (len(data) - entries) // 24 < nlibs:  # more entries than the file holds: ld.so calls it corrupt
        return {}
    out: dict[tuple[str, int], str] = {}
    for i in range(nlibs):
        flags, key, value, _os, hwcap = struct.unpack_from(order + "iIIIQ", data, entries + i * 24)
        if hwcap:  # a glibc-hwcaps subdirectory's copy: ld.so prefers it only on CPUs that support it
            continue
        name, path = _str(data, at + key), _str(data, at + value)
        out.setdefault((name, flags & 0xFFFF), path)
    return out


def _str(data: bytes, off: int) -> str:
    end = data.find(b"\0", off)
    return data[off:end if end >= 0 else len(data)].decode("utf-8", "replace")


@functools.lru_cache(maxsize=4)
def entries(path: str = CACHE, byteorder: str = sys.byteorder) -> dict[tuple[str, int], str] | None:
    """The cache's entries as an ld.so of ``byteorder`` reads them; None when there is no cache to read."""
    try:
        with open(path, "rb") as fh:
            return parse(fh.read(), byteorder)
    except OSError:
        return None


def lookup(name: str, machine: int, bits: int, path: str = CACHE) -> str | None:
    """Where the cache says ``name`` is for an object of this ELF machine and class: as that
    machine's ld.so reads the file (an s390x program's, under qemu-user here, ignores a
    little-endian cache)."""
    table = entries(path, "big" if machine in BIG_ENDIAN else "little") or {}
    want = ACCEPTS.get((machine, bits), GENERIC)
    for (key, flags), found in table.items():
        if key == name and flags in want:
            return found
    return None
