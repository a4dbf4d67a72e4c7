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
from collections.abc import Mapping
from typing import NamedTuple

from .elf import PT_DYNAMIC, PT_INTERP, PT_LOAD, PT_NOTE, _build_id, _cstr, _dynamic, _Header, _Reader, _segments, _versions
from .elf_versions import _dynsym_count

DF_SYMBOLIC, DF_1_NODEFLIB = 0x2, 0x800
BINDINGS = {0: "local", 1: "global", 2: "weak", 10: "unique"}  # STB_GNU_UNIQUE
VISIBILITY = ("default", "internal", "hidden", "protected")
TYPES = {0: "notype", 1: "object", 2: "func", 5: "common", 6: "tls", 10: "ifunc"}  # what lookups accept
STT_TLS = 6
SHN_UNDEF, SHN_ABS = 0, 0xFFF1


class Definition(NamedTuple):
    """One dynamic symbol an object defines (a tuple: thousands are made per library)."""

    name: str
    version: str | None  # None: the object has no symbol versions
    version_index: int  # DT_VERSYM's index without the hidden bit: 0 local, 1 base, 2… DT_VERDEF's
    hidden: bool  # name@VERSION rather than name@@VERSION: only a lookup of that exact version finds it
    binding: str  # global | weak | unique | local
    visibility: str
    type: str


class NameIndex(Mapping):
    """name -> [Definition] over ``self._index`` (name -> rows): the names known up front, each name's
    Definitions made by ``__getitem__`` when asked for."""

    _index: dict[str, list[int]]

    def __contains__(self, name) -> bool:
        return name in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class Definitions(NameIndex):
    """name -> [Definition], read in bulk (numpy over the table: cc1 exports 28,000 symbols) and made
    into Definitions only when asked for: a replay asks for a few names, the report for which exist."""

    def __init__(self, syms: bytes, versym: bytes | None, strtab: bytes, version_names: dict[int, str],
                 hdr: _Header):
        import numpy as np

        o = hdr.order
        if hdr.bits == 64:
            dt = np.dtype([("name", o + "u4"), ("info", "u1"), ("other", "u1"), ("shndx", o + "u2"),
                           ("value", o + "u8"), ("size", o + "u8")])
        else:
            dt = np.dtype([("name", o + "u4"), ("value", o + "u4"), ("size", o + "u4"), ("info", "u1"),
                           ("other", "u1"), ("shndx", o + "u2")])
        table = np.frombuffer(syms, dt)
        stype = table["info"] & 0xF
        undefined = table["shndx"] == SHN_UNDEF
        no_value = (table["value"] == 0) & (table["shndx"] != SHN_ABS) & (stype != STT_TLS)
        # glibc's check_match: no value (unless absolute or TLS), undefined, or a type no lookup takes
        defined = ~undefined & ~no_value & np.isin(stype, list(TYPES))
        defined[:1] = False  # index 0: the null symbol
        text = strtab.decode("latin-1")  # byte offsets stay character offsets; names re-read as UTF-8 if need be
        parts = text.split("\0")
        starts = np.concatenate(([0], np.cumsum([len(p) + 1 for p in parts])[:-1])).tolist()
        at = dict(zip(starts, parts))  # a name that is the tail of another (shared suffix) is found the slow way

        def name_at(off: int) -> str:
            n = at.get(off)
            return n if n is not None and n.isascii() else _name(text, strtab, off)

        plt = np.nonzero(undefined & (table["value"] != 0) & (stype == 2))[0]
        self.canonical_plt = {name_at(off) for off in table["name"][plt].tolist()}
        # what the object asks others for: name -> referenced weakly (a failed lookup it survives)
        refs = np.nonzero(undefined)[0]
        refs = refs[refs > 0]
        self.undefined = dict(zip(map(name_at, table["name"][refs].tolist()),
                                  ((table["info"][refs] >> 4) == 2).tolist()))
        # references that name a version (DT_VERNEED, versym index ≥ 2): ld.so's lookup for them, at
        # load or through the PLT, carries that version; dlsym's lookup of the same name carries none
        if versym is not None and len(versym) >= 2 * len(table):
            need = (np.frombuffer(versym, o + "u2")[:len(table)][refs] & 0x7FFF) >= 2
            self.versioned_refs = frozenset(name_at(off) for off in table["name"][refs][need].tolist())
        else:
            self.versioned_refs = frozenset()
        self._rows = np.nonzero(defined)[0]
        self._index: dict[str, list[int]] = {}
        for row, off in zip(self._rows.tolist(), table["name"][self._rows].tolist()):
            name = name_at(off)
            if name in self._index:
                self._index[name].append(row)
            else:
                self._index[name] = [row]
        self._table, self._versym, self._names = table, versym, version_names
        self._order = o
        self._name_at = name_at
        self._made: dict[str, list[Definition]] = {}

    def name_of(self, row: int) -> str:
        """The name of the table's entry ``row`` (a relocation's symbol index)."""
        return self._name_at(int(self._table["name"][row]))

    def defined_at(self, addresses) -> dict[int, set[str]]:
        """address -> the names this object defines there, for each of ``addresses``."""
        import numpy as np

        if not len(addresses):
            return {}
        rows = self._rows[np.isin(self._table["value"][self._rows], np.asarray(list(addresses), np.uint64))]
        out: dict[int, set[str]] = {}
        for value, off in zip(self._table["value"][rows].tolist(), self._table["name"][rows].tolist()):
            out.setdefault(int(value), set()).add(self._name_at(int(off)))
        return out

    def __getitem__(self, name: str) -> list[Definition]:
        if name not in self._made:
            rows = self._index[name]  # KeyError: not defined here
            self._made[name] = [self._definition(name, r) for r in rows]
        return self._made[name]

    def _definition(self, name: str, row: int) -> Definition:
        t = self._table[row]
        info, other = int(t["info"]), int(t["other"])
        raw = struct.unpack_from(self._order + "H", self._versym, row * 2)[0] if self._versym is not None else 1
        index = raw & 0x7FFF
        return Definition(name, self._names.get(index) if index >= 2 else None, index, bool(raw & 0x8000),
                          BINDINGS.get(info >> 4, f"binding {info >> 4}"), VISIBILITY[other & 3],
                          TYPES[info & 0xF])

    def columns(self) -> dict[str, list]:
        """Every definition as columns (Definition's fields), in bulk: what a session keeps of it."""
        import numpy as np

        rows = self._rows
        names = [self._name_at(int(off)) for off in self._table["name"][rows].tolist()]
        if self._versym is not None:
            raw = np.frombuffer(self._versym, self._order + "u2")[rows].astype(np.int64)
        else:
            raw = np.ones(len(rows), np.int64)
        index = (raw & 0x7FFF).tolist()
        info = self._table["info"][rows].astype(np.int64)
        other = self._table["other"][rows].astype(np.int64)
        return {
            "name": names,
            "version": [self._names.get(i) if i >= 2 else None for i in index],
            "version_index": index,
            "hidden": ((raw & 0x8000) != 0).tolist(),
            "binding": [BINDINGS.get(b, f"binding {b}") for b in (info >> 4).tolist()],
            "visibility": [VISIBILITY[v] for v in (other & 3).tolist()],
            "type": [TYPES[t] for t in (info & 0xF).tolist()],
        }


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
    definitions: Mapping[str, list[Definition]] = field(default_factory=dict)
    copy_relocated: set[str] = field(default_factory=set)  # R_*_COPY: an executable's copies of library data
    # a copied variable's other names: when ld copies a library's variable into an executable it
    # defines there every alias the library gives it at that address (program_invocation_name
    # beside __progname_full), so references by either name reach the one copy: alias -> the copied name
    copy_aliases: dict[str, str] = field(default_factory=dict)
    # undefined functions with a value: a non-PIE executable's PLT entries that stand for the function's
    # address (the program takes it); lookups other than its own call slots (PLT class) bind to them
    canonical_plt: set[str] = field(default_factory=set)
    version_defs: list[str] = field(default_factory=list)  # DT_VERDEF's names, the base (the file's own) first
    version_needs: list[tuple[str, str]] = field(default_factory=list)  # DT_VERNEED: (library file, version)
    build_id: str | None = None  # NT_GNU_BUILD_ID as hex


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
    obj.build_id = _build_id(data, [(s.fileoff, s.filesize) for t, s in typed if t == PT_NOTE], hdr.little)
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
    count = _dynsym_count(data, hdr, reader, dyn)
    wide = hdr.bits == 64
    size = 24 if wide else 16
    syms = reader.bytes_at(dyn["DT_SYMTAB"][0], count * size)
    versym = reader.bytes_at(dyn["DT_VERSYM"][0], count * 2) if "DT_VERSYM" in dyn else None
    obj.versioned = versym is not None
    # a version index names a version this object defines (DT_VERDEF) or one it needs (DT_VERNEED): an
    # executable's copy of libc's stdout carries GLIBC_2.2.5 through the latter, as ld.so's l_versions does
    needs = _versions(reader, dyn, strtab, hdr.little)
    names = {i: ver for i, (_lib, ver) in needs.items()}
    defs = _verdefs(reader, dyn, strtab, hdr.order)
    names.update(defs)
    obj.version_defs = [defs[i] for i in sorted(defs)]
    obj.version_needs = [needs[i] for i in sorted(needs)]
    obj.definitions = Definitions(syms, versym, strtab, names, hdr)
    obj.canonical_plt = obj.definitions.canonical_plt
    obj.copy_relocated, obj.copy_aliases = _copy_relocated(reader, dyn, hdr, obj.definitions)
    return obj


def _name(text: str, strtab: bytes, off: int) -> str:
    end = text.find("\0", off)
    name = text[off:end if end >= 0 else len(text)]
    return name if name.isascii() else _cstr(strtab, off)


COPY_RELOC = {62: 5, 183: 1024, 3: 5, 40: 20, 243: 4, 21: 19, 20: 19, 22: 9, 8: 126, 258: 4, 2: 19, 18: 19,
              43: 19}  # R_<machine>_COPY by e_machine


def _copy_relocated(reader: _Reader, dyn: dict, hdr: _Header, defs: "Definitions"
                    ) -> tuple[set[str], dict[str, str]]:
    """The symbols an executable's R_*_COPY relocations copy into it (in DT_RELA or DT_REL), and
    the aliases ld defined at those copies' addresses (alias -> the copied symbol)."""
    import numpy as np

    rtype = COPY_RELOC.get(hdr.machine)
    if rtype is None:
        return set(), {}
    out: set[str] = set()
    copies: dict[int, str] = {}  # the copies' addresses (r_offset) -> the copied symbol
    for table, size, rela in (("DT_RELA", "DT_RELASZ", True), ("DT_REL", "DT_RELSZ", False)):
        if table not in dyn or size not in dyn:
            continue
        dt = _reloc_dtype(hdr, rela)
        blob = reader.bytes_at(dyn[table][0], dyn[size][0] - dyn[size][0] % dt.itemsize)
        rows = np.frombuffer(blob, dt)
        syms, types = _sym_and_type(rows, hdr)
        for i, at in zip(syms[types == rtype].tolist(), rows["offset"][types == rtype].tolist()):
            copies[int(at)] = defs.name_of(int(i))
    out.update(copies.values())
    aliases = {alias: copies[at] for at, names in defs.defined_at(copies).items()
               for alias in names if alias not in out}
    return out | set(aliases), aliases


def _reloc_dtype(hdr: _Header, rela: bool):
    """A numpy record of one REL/RELA entry; MIPS64's r_info is r_sym (32 bits), then r_ssym,
    r_type3, r_type2, r_type (a byte each), not one word (as elf._relocations reads it)."""
    import numpy as np

    o, wide = hdr.order, hdr.bits == 64
    word = o + ("u8" if wide else "u4")
    if wide and hdr.machine == 8:
        info = [("sym", o + "u4"), ("ssym", "u1"), ("type3", "u1"), ("type2", "u1"), ("type", "u1")]
    else:
        info = [("info", word)]
    return np.dtype([("offset", word)] + info + ([("addend", word)] if rela else []))


def _sym_and_type(rows, hdr: _Header):
    """(symbol indexes, types) of rows of ``_reloc_dtype``: MIPS64's types composed as elf.py does."""
    if "sym" in rows.dtype.names:
        return rows["sym"], rows["type"] | rows["type2"].astype("u4") << 8 | rows["type3"].astype("u4") << 16
    info = rows["info"]
    return (info >> 32, info & 0xFFFFFFFF) if hdr.bits == 64 else (info >> 8, info & 0xFF)
