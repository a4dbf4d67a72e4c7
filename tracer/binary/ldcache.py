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
FLAG_ELF_LIBC6 = 0x0003
# dl-cache.h's _DL_CACHE_DEFAULT_ID per ELF machine and class: the flags an entry must carry
# (x32, EM_X86_64 in ELFCLASS32, is FLAG_X8664_LIBX32: its ld.so skips the x86-64 entries)
CACHE_ID = {(62, 64): 0x0303, (62, 32): 0x0803, (183, 64): 0x0A03, (3, 32): 0x0003, (40, 32): 0x0903,
            (243, 64): 0x1003, (21, 64): 0x0503, (22, 64): 0x0403, (2, 64): 0x0003}
# s390x is FLAG_S390_LIB64 (0x0400, sysdeps/generic/ldconfig.h), not MIPS n32's 0x0600


def parse(data: bytes) -> dict[tuple[str, int], str]:
    """(name, flags) -> path for the entries without hwcaps (the first of each, as ld.so takes it)."""
    at = data.find(NEW_MAGIC)
    if at < 0 or len(data) < at + 48:
        return {}
    # ldconfig writes the cache in its machine's byte order, named in the header's flags byte (glibc 2.33's
    # cache_file_new_flags_endian_big = 3, _little = 2; unset by older ldconfigs: the machine's own order)
    order = {2: "<", 3: ">"}.get(data[at + 28], "<" if sys.byteorder == "little" else ">")
    nlibs, _len_strings = struct.unpack_from(order + "II", data, at + 20)
    out: dict[tuple[str, int], str] = {}
    entries = at + 48
    for i in range(min(nlibs, (len(data) - entries) // 24)):
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
def entries(path: str = CACHE) -> dict[tuple[str, int], str] | None:
    """The cache's entries; None when there is no cache to read."""
    try:
        with open(path, "rb") as fh:
            return parse(fh.read())
    except OSError:
        return None


def lookup(name: str, machine: int, bits: int, path: str = CACHE) -> str | None:
    """Where the cache says ``name`` is for an object of this ELF machine and class."""
    table = entries(path) or {}
    want = CACHE_ID.get((machine, bits))
    for (key, flags), found in table.items():
        if key == name and (flags == want if want is not None else flags & 0xFF == FLAG_ELF_LIBC6):
            return found
    return None
