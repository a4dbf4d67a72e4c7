"""What an ELF file needs of each versioned library: every version it requires, and the symbols that require it.

The dynamic linker refuses to start a program whose DT_VERNEED names a version its
library lacks ("version `GLIBC_2.34' not found"): the highest version needed from a
library is the oldest release of it the program runs with — its floor. The versions
come from DT_VERNEED (what the loader checks, symbol or not); the symbols from the
dynamic symbol table's undefined entries and their .gnu.version index, as
`readelf -V --dyn-syms` shows them.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from .elf import PT_DYNAMIC, _cstr, _dynamic, _Header, _Reader, _section_headers, _segments, _versions, PT_LOAD

NUMBERED = re.compile(r"^([A-Z_]+?)_?(\d+(?:\.\d+)*)$")
# versions without a number that still set a floor (glibc's ABI tags)
ABI_TAGS = {"GLIBC_ABI_DT_RELR": ("GLIBC", (2, 36))}


@dataclass
class Need:
    """One required version of one library, and the undefined symbols bound to it."""

    library: str  # DT_NEEDED name (libc.so.6)
    version: str  # GLIBC_2.34
    symbols: list = field(default_factory=list)

    @property
    def family(self) -> str | None:
        """The version's prefix: GLIBC, GLIBCXX, CXXABI, GCC ... (None: not a numbered version)."""
        p = parse(self.version)
        return p[0] if p else None

    @property
    def number(self) -> tuple[int, ...] | None:
        p = parse(self.version)
        return p[1] if p else None


def parse(version: str) -> tuple[str, tuple[int, ...]] | None:
    """GLIBC_2.34 -> ("GLIBC", (2, 34)); GLIBC_ABI_DT_RELR -> glibc 2.36; GLIBC_PRIVATE -> None."""
    if version in ABI_TAGS:
        return ABI_TAGS[version]
    m = NUMBERED.match(version)
    if not m:
        return None
    return m.group(1), tuple(int(x) for x in m.group(2).split("."))


def version_needs(path: str, data: bytes) -> list[Need]:
    """Every version DT_VERNEED asks for, with the undefined dynamic symbols that ask for it."""
    hdr = _Header(path, data)
    typed = _segments(path, data, hdr)
    dynamic = next(((s.fileoff, s.filesize) for t, s in typed if t == PT_DYNAMIC), None)
    dyn = _dynamic(path, data, dynamic, hdr)
    reader = _Reader(path, data, [s for t, s in typed if t == PT_LOAD])
    if "DT_STRTAB" not in dyn or "DT_STRSZ" not in dyn:
        return []
    strtab = reader.bytes_at(dyn["DT_STRTAB"][0], dyn["DT_STRSZ"][0])
    index = _versions(reader, dyn, strtab, hdr.little)  # version index -> (library, version)
    needs = {vi: Need(lib, ver) for vi, (lib, ver) in index.items()}
    count = _dynsym_count(data, hdr, reader, dyn)
    if count and "DT_SYMTAB" in dyn and "DT_VERSYM" in dyn:
        wide = hdr.bits == 64
        size = 24 if wide else 16
        syms = reader.bytes_at(dyn["DT_SYMTAB"][0], count * size)
        versym = reader.bytes_at(dyn["DT_VERSYM"][0], count * 2)
        shndx_at = 6 if wide else 14
        for i in range(1, count):
            at = i * size
            if struct.unpack_from(hdr.order + "H", syms, at + shndx_at)[0] != 0:  # defined here
                continue
            vi = struct.unpack_from(hdr.order + "H", versym, i * 2)[0] & 0x7FFF
            if vi in needs:
                needs[vi].symbols.append(_cstr(strtab, struct.unpack_from(hdr.order + "I", syms, at)[0]))
    return sorted(needs.values(), key=lambda n: (n.library, n.family or "~", n.number or (), n.version))


def _dynsym_count(data: bytes, hdr: _Header, reader: _Reader | None = None,
                  dyn: dict | None = None) -> int:
    """Entries of .dynsym: from the section headers, or — stripped, and given the dynamic
    section — from its hash table, as ld.so and ``readelf -D --dyn-syms`` find them."""
    for _name, stype, _f, _a, _off, size, _link, _info, _al, entsize in _section_headers(data, hdr):
        if stype == 11 and entsize:  # SHT_DYNSYM
            return size // entsize
    return _count_from_hash(reader, dyn, hdr) if reader is not None and dyn is not None else 0


def _count_from_hash(reader: _Reader, dyn: dict, hdr: _Header) -> int:
    """Entries of the dynamic symbol table without section headers: DT_HASH's nchain,
    or the highest index a DT_GNU_HASH chain reaches."""
    o = hdr.order
    if "DT_HASH" in dyn:
        return struct.unpack(o + "II", reader.bytes_at(dyn["DT_HASH"][0], 8))[1]
    if "DT_GNU_HASH" not in dyn:
        return 0
    at = dyn["DT_GNU_HASH"][0]
    nbuckets, symoffset, bloom_size, _shift = struct.unpack(o + "IIII", reader.bytes_at(at, 16))
    word = 8 if hdr.bits == 64 else 4
    buckets_at = at + 16 + bloom_size * word
    buckets = struct.unpack(o + f"{nbuckets}I", reader.bytes_at(buckets_at, 4 * nbuckets))
    last = max(buckets, default=0)
    if last < symoffset:
        return symoffset
    chain_at = buckets_at + 4 * nbuckets
    while not struct.unpack(o + "I", reader.bytes_at(chain_at + 4 * (last - symoffset), 4))[0] & 1:
        last += 1
    return last + 1
