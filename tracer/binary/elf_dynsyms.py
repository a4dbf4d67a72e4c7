"""What the dynamic linker reads of an ELF object to load it and to look symbols up in it.

`gotrace why` replays glibc's decisions from the files: which libraries an
object needs and where it asks for them to be searched (DT_NEEDED, DT_RPATH,
DT_RUNPATH, DF_1_NODEFLIB), whether it searches itself first (DT_SYMBOLIC),
and every symbol it defines with its version (DT_VERSYM and DT_VERDEF) —
the same facts ``readelf -d --dyn-syms -V`` prints, read through the dynamic
section so a file without section headers still answers.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .elf import PT_DYNAMIC, PT_INTERP, PT_LOAD, _cstr, _dynamic, _Header, _Reader, _segments, _versions
from .elf_versions import _dynsym_count

DF_SYMBOLIC, DF_1_NODEFLIB = 0x2, 0x800
BINDINGS = {0: "local", 1: "global", 2: "weak", 10: "unique"}  # STB_GNU_UNIQUE
VISIBILITY = ("default", "internal", "hidden", "protected")
TYPES = {0: "notype", 1: "object", 2: "func", 5: "common", 6: "tls", 10: "ifunc"}  # what lookups accept
STT_TLS = 6
SHN_UNDEF, SHN_ABS = 0, 0xFFF1


@dataclass(frozen=True)
class Definition:
    """One dynamic symbol an object defines."""

    name: str
    version: str | None  # None: the object has no symbol versions
    version_index: int  # DT_VERSYM's index without the hidden bit: 0 local, 1 base, 2… DT_VERDEF's
    hidden: bool  # name@VERSION rather than name@@VERSION: only a lookup of that exact version finds it
    binding: str  # global | weak | unique | local
    visibility: str
    type: str


@dataclass
class DynObject:
    """The loader's view of one ELF file."""

    path: str
    machine: int = 0
    bits: int = 64
    soname: str | None = None
    interpreter: str | None = None
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)  # as written: $ORIGIN not expanded
    runpath: list[str] = field(default_factory=list)
    symbolic: bool = False  # DT_SYMBOLIC or DF_SYMBOLIC: the object searches itself first
    nodeflib: bool = False  # DF_1_NODEFLIB: neither ld.so.cache nor the default directories
    versioned: bool = False  # has DT_VERSYM (a lookup with a version then checks it)
    definitions: dict[str, list[Definition]] = field(default_factory=dict)
    # undefined functions with a value: a non-PIE executable's PLT entries that stand for the function's
    # address (the program takes it); lookups other than its own call slots (PLT class) bind to them
    canonical_plt: set[str] = field(default_factory=set)


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


def _verdefs(reader: _Reader, dyn: dict, strtab: bytes, order: str) -> dict[int, str]:
    """Version index -> name, from DT_VERDEF (index 1 is the base: the file's own name)."""
    out: dict[int, str] = {}
    if "DT_VERDEF" not in dyn:
        return out
    at = dyn["DT_VERDEF"][0]
    for _ in range(min(dyn.get("DT_VERDEFNUM", [0])[0], 65535)):
        _ver, _flags, ndx, cnt, _hash, aux, nxt = struct.unpack(order + "HHHHIII", reader.bytes_at(at, 20))
        if cnt:
            name_off = struct.unpack(order + "I", reader.bytes_at(at + aux, 4))[0]
            out[ndx] = _cstr(strtab, name_off)
        if not nxt:
            break
        at += nxt
    return out


def read_dyn_object(path: str, data: bytes) -> DynObject:
    hdr = _Header(path, data)
    typed = _segments(path, data, hdr)
    obj = DynObject(path, machine=hdr.machine, bits=hdr.bits)
    dynamic = None
    for ptype, seg in typed:
        if ptype == PT_INTERP:
            obj.interpreter = data[seg.fileoff:seg.fileoff + seg.filesize].split(b"\0", 1)[0].decode("utf-8", "replace")
        elif ptype == PT_DYNAMIC:
            dynamic = (seg.fileoff, seg.filesize)
    dyn = _dynamic(path, data, dynamic, hdr)
    if "DT_STRTAB" not in dyn or "DT_STRSZ" not in dyn:
        return obj
    reader = _Reader(path, data, [s for t, s in typed if t == PT_LOAD])
    strtab = reader.bytes_at(dyn["DT_STRTAB"][0], dyn["DT_STRSZ"][0])
    obj.needed = [_cstr(strtab, off) for off in dyn.get("DT_NEEDED", [])]
    obj.soname = _cstr(strtab, dyn["DT_SONAME"][0]) if "DT_SONAME" in dyn else None
    for key, attr in (("DT_RPATH", "rpath"), ("DT_RUNPATH", "runpath")):
        for off in dyn.get(key, []):
            getattr(obj, attr).extend(d for d in _cstr(strtab, off).split(":") if d)
    obj.symbolic = "DT_SYMBOLIC" in dyn or bool(dyn.get("DT_FLAGS", [0])[0] & DF_SYMBOLIC)
    obj.nodeflib = bool(dyn.get("DT_FLAGS_1", [0])[0] & DF_1_NODEFLIB)
    if "DT_SYMTAB" not in dyn:
        return obj
    count = _dynsym_count(data, hdr) or _count_from_hash(reader, dyn, hdr)
    wide = hdr.bits == 64
    size = 24 if wide else 16
    syms = reader.bytes_at(dyn["DT_SYMTAB"][0], count * size)
    versym = reader.bytes_at(dyn["DT_VERSYM"][0], count * 2) if "DT_VERSYM" in dyn else None
    obj.versioned = versym is not None
    # a version index names a version this object defines (DT_VERDEF) or one it needs (DT_VERNEED): an
    # executable's copy of libc's stdout carries GLIBC_2.2.5 through the latter, as ld.so's l_versions does
    names = {i: ver for i, (_lib, ver) in _versions(reader, dyn, strtab, hdr.little).items()}
    names.update(_verdefs(reader, dyn, strtab, hdr.order))
    fmt = hdr.order + ("IBBHQQ" if wide else "IIIBBH")
    for i in range(1, count):
        if wide:
            name_off, info, other, shndx, value, _size = struct.unpack_from(fmt, syms, i * size)
        else:
            name_off, value, _size, info, other, shndx = struct.unpack_from(fmt, syms, i * size)
        stype, bind = info & 0xF, info >> 4
        if shndx == SHN_UNDEF and value and stype == 2:
            obj.canonical_plt.add(_cstr(strtab, name_off))
        # glibc's check_match: no value (unless absolute or TLS), undefined, or a type no lookup takes
        if shndx == SHN_UNDEF or (value == 0 and shndx != SHN_ABS and stype != STT_TLS) or stype not in TYPES:
            continue
        raw = struct.unpack_from(hdr.order + "H", versym, i * 2)[0] if versym is not None else 1
        index = raw & 0x7FFF
        name = _cstr(strtab, name_off)
        obj.definitions.setdefault(name, []).append(Definition(
            name, names.get(index) if index >= 2 else None, index, bool(raw & 0x8000),
            BINDINGS.get(bind, f"binding {bind}"), VISIBILITY[other & 3], TYPES[stype]))
    return obj
