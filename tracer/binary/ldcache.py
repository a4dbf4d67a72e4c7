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
import os
import struct
import sys

CACHE = "/etc/ld.so.cache"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
# The flags of the entries each ABI's ld.so takes: glibc 2.36's _dl_cache_check_flags per
# machine and class (sysdeps/unix/sysv/linux/*/dl-cache.h, flag values from
# sysdeps/generic/ldconfig.h). x86-64, x32 (EM_X86_64 in ELFCLASS32), AArch64, ppc64, s390x
# (FLAG_S390_LIB64, not MIPS n32's 0x0600), SPARC64, IA-64, RISC-V's double-float ABI and MIPS
# n64 (legacy NaN) take their own flag only; 32-bit ARM takes its float ABI's flag or an unmarked
# libc6 entry — hard-float's (FLAG_ARM_LIBHF, Debian's armhf) here, soft-float's (ARM_SOFT_FLOAT) for a
# program whose ld.so is the soft-float one; every other ABI glibc's generic check: FLAG_ELF (1) or
# libc6 (3) — so an i386 program, or one of a machine with no flag of its own, never takes an x86-64 entry.
ACCEPTS = {(62, 64): {0x0303}, (62, 32): {0x0803}, (183, 64): {0x0A03}, (21, 64): {0x0503}, (22, 64): {0x0403},
           (43, 64): {0x0103}, (50, 64): {0x0203}, (243, 64): {0x1003}, (8, 64): {0x0703}, (40, 32): {0x0903, 0x0003}}
GENERIC = {0x0001, 0x0003}
# The machine does not tell 32-bit ARM's two ABIs apart, their ld.so does: Debian armel's soft-float one
# is /lib/ld-linux.so.3 (armhf's /lib/ld-linux-armhf.so.3), and takes FLAG_ARM_LIBSF (0x0B00) entries
ARM_SOFT_FLOAT, ARM_SOFT_FLOAT_LDSO = {0x0B03, 0x0003}, "ld-linux.so.3"
# Machines whose Linux ABIs are big-endian only (s390x, SPARC): their ld.so reads the cache in that
# order; every other machine here is taken as little-endian (ppc64el, not ppc64; aarch64, not aarch64_be)
BIG_ENDIAN = {22, 2, 43}


# dl-cache.h's cache_file_new.flags & 3: which byte order ldconfig wrote the file in (glibc >= 2.32;
# 0: an older ldconfig, which wrote its own machine's order)
ENDIAN_UNSET, ENDIAN_LITTLE, ENDIAN_BIG = 0, 2, 3


def _entries(data: bytes, byteorder: str) -> tuple[int, str, list[tuple]] | None:
    """(where the new header starts, struct byte order, [(flags, key, value, hwcap)]) of a cache the
    ld.so of a machine of ``byteorder`` would use; None for one it ignores (see parse)."""
    at = data.find(NEW_MAGIC)
    if at < 0 or len(data) <= at + 48:
        return None
    own = ENDIAN_LITTLE if byteorder == "little" else ENDIAN_BIG
    if data[at + 28] & 3 not in (ENDIAN_UNSET, own):
        return None
    order = "<" if byteorder == "little" else ">"
    nlibs, _len_strings = struct.unpack_from(order + "II", data, at + 20)
    entries = at + 48
    if (len(data) - entries) // 24 < nlibs:  # more entries than the file holds: ld.so calls it corrupt
        return None
    rows = [struct.unpack_from(order + "iIIIQ", data, entries + i * 24) for i in range(nlibs)]
    return at, order, [(flags, key, value, hwcap) for flags, key, value, _os, hwcap in rows]


def parse(data: bytes, byteorder: str = sys.byteorder) -> dict[tuple[str, int], str]:
    """(name, flags) -> path for the entries without hwcaps, or of DIR/tls (the first of each), as the ld.so of a
    machine of ``byteorder`` reads the file. A cache of the other byte order or of an invalid one,
    and one shorter than its header and the entries it counts, that ld.so ignores whole
    (dl-cache.c's _dl_load_cache_lookup: cache_file_new_matches_endian, "check for corruption") —
    so do we."""
    table = _entries(data, byteorder)
    out: dict[tuple[str, int], str] = {}
    for flags, key, value, hwcap in (table[2] if table else []):
        # a glibc-hwcaps subdirectory's copy is named_hwcaps'; of the legacy hwcap subdirectories
        # (glibc < 2.37) every ld.so takes DIR/tls (the TLS bit, _DL_HWCAP_TLS_MASK: listed before
        # the plain entry, so it wins), the others only on CPUs with those bits: left out
        if hwcap and hwcap != TLS_HWCAP:
            continue
        out.setdefault((_str(data, table[0] + key), flags & 0xFFFF), _str(data, table[0] + value))
    return out


# dl-cache.h: an entry of a glibc-hwcaps subdirectory has only bit 62 set in its hwcap's upper half
# (besides the ISA level bits, the low 10), its lower half indexing the subdirectory names of the
# cache extension's glibc_hwcaps section (tag 1; the extension's magic cache_extension_magic)
HWCAP_EXTENSION, ISA_LEVEL_MASK, EXTENSION_MAGIC, TAG_GLIBC_HWCAPS = 1 << 30, (1 << 10) - 1, 0xEAA42174, 1
TLS_HWCAP = 1 << 63


def named_hwcaps(data: bytes, byteorder: str = sys.byteorder) -> dict[tuple[str, int], list[tuple[str, str]]]:
    """(name, flags) -> [(glibc-hwcaps subdirectory, path)] in the cache's order: the copies ldconfig
    found under DIR/glibc-hwcaps/SUBDIR (glibc >= 2.33), which ld.so prefers to the entry without
    hwcaps when this CPU supports the subdirectory (search_cache: the best-priority one wins)."""
    table = _entries(data, byteorder)
    if table is None:
        return {}
    at, order, rows = table
    subdirs: list[str] = []
    try:
        ext = at + struct.unpack_from(order + "I", data, at + 32)[0]
        if ext > at and struct.unpack_from(order + "I", data, ext)[0] == EXTENSION_MAGIC:
            for i in range(struct.unpack_from(order + "I", data, ext + 4)[0]):
                tag, _flags, off, size = struct.unpack_from(order + "IIII", data, ext + 8 + 16 * i)
                if tag == TAG_GLIBC_HWCAPS:
                    subdirs = [_str(data, at + struct.unpack_from(order + "I", data, at + off + 4 * k)[0])
                               for k in range(size // 4)]
    except struct.error:  # an extension past the file's end: no subdirectory is known
        return {}
    out: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for flags, key, value, hwcap in rows:
        index = hwcap & 0xFFFFFFFF
        if (hwcap >> 32) & ~ISA_LEVEL_MASK == HWCAP_EXTENSION and index < len(subdirs):
            out.setdefault((_str(data, at + key), flags & 0xFFFF), []).append((subdirs[index], _str(data, at + value)))
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


@functools.lru_cache(maxsize=4)
def _named(path: str, byteorder: str) -> dict[tuple[str, int], list[tuple[str, str]]]:
    try:
        with open(path, "rb") as fh:
            return named_hwcaps(fh.read(), byteorder)
    except OSError:
        return {}


def accepts(machine: int, bits: int, interp: str | None = None) -> set[int]:
    """The entry flags the ld.so of a program of this ELF machine and class (and PT_INTERP) takes."""
    if (machine, bits) == (40, 32) and interp and os.path.basename(interp) == ARM_SOFT_FLOAT_LDSO:
        return ARM_SOFT_FLOAT
    return ACCEPTS.get((machine, bits), GENERIC)


def lookup(name: str, machine: int, bits: int, path: str = CACHE, hwcaps: tuple[str, ...] = (),
           interp: str | None = None) -> str | None:
    """Where the cache says ``name`` is for an object of this ELF machine and class: as that
    machine's ld.so reads the file (an s390x program's, under qemu-user here, ignores a
    little-endian cache). ``hwcaps``: the glibc-hwcaps subdirectories that ld.so searches on this
    CPU, best first (ldso_dirs.hwcaps_searched): a copy in the best of them is taken first.
    ``interp``: the program's PT_INTERP, which tells 32-bit ARM's float ABIs apart."""
    order = "big" if machine in BIG_ENDIAN else "little"
    want = accepts(machine, bits, interp)
    if hwcaps:
        copies = [(hwcaps.index(sub), found) for (key, flags), rows in _named(path, order).items()
                  if key == name and flags in want for sub, found in rows if sub in hwcaps]
        if copies:
            return min(copies)[1]
    table = entries(path, order) or {}
    for (key, flags), found in table.items():
        if key == name and flags in want:
            return found
    return None
