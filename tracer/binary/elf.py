"""ELF images, read with ``struct`` straight from the file's bytes.

No per-symbol objects and no heavy imports: pyelftools builds a Python
object per symbol or relocation (seconds on a Go toolchain binary) and its
import alone costs more than ``readelf`` takes on a small library, which is
what ``gotrace inspect`` is measured against. Headers, program and section
headers are unpacked directly; the dynamic symbol, version and relocation
tables are located through the dynamic section (so files whose section
headers were stripped still show their imports) and unpacked in bulk.
"""
from __future__ import annotations

import os
import struct

from ..arch import elf_arch
from .elf_names import E_TYPES, JUMP_SLOT, reloc_namer, section_type, segment_type
from .goinfo import go_build_info
from .model import Image, ImportSlot, Library, Section, Segment
from .sniff import BadBinary, Truncated

DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x8, 0x1, 0x08000000
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
SHT_NOTE = "SHT_NOTE"
SHT_SYMTAB_TYPE, SHT_NOTE_TYPE = 2, 7
PN_XNUM, SHN_XINDEX = 0xFFFF, 0xFFFF


def _prot(flags: int) -> str:
    return ("r" if flags & 4 else "-") + ("w" if flags & 2 else "-") + ("x" if flags & 1 else "-")


class _Reader:
    """Bounds-checked views of the file by link-time address."""

    def __init__(self, path: str, data: bytes, loads: list[Segment]):
        self.path, self.data, self.loads = path, data, loads

    def offset(self, vaddr: int) -> int | None:
        for s in self.loads:
            if s.vmaddr <= vaddr < s.vmaddr + s.filesize:
                return s.fileoff + (vaddr - s.vmaddr)
        return None

    def bytes_at(self, vaddr: int, size: int) -> bytes:
        off = self.offset(vaddr)
        if off is None or size < 0:
            raise BadBinary(f"{self.path}: dynamic table at {vaddr:#x} lies outside every loaded segment")
        if off + size > len(self.data):
            # every PT_LOAD lies within the file (_segments), so this is a count or size read from
            # the file that is wrong, not a cut file (a valid MIPS64 object was "truncated" so)
            raise BadBinary(f"{self.path}: corrupt ELF file (a dynamic table at {vaddr:#x} is said to hold "
                            f"{size:,} bytes, past the end of the file: a wrong count or size)")
        return self.data[off:off + size]


def read_elf(path: str, data: bytes) -> Image:
    try:
        return _read(path, data)
    except BadBinary:
        raise
    except Exception as exc:  # struct.error, a bad offset …: still one line
        raise _explain(path, data, exc) from None


def _explain(path: str, data: bytes, exc: Exception) -> BadBinary:
    text = str(exc)
    if "unpack requires" in text or "truncat" in text.lower() or "out of range" in text:
        return Truncated(path, len(data))
    return BadBinary(f"{path}: corrupt ELF file ({type(exc).__name__}: {text.splitlines()[0][:120] if text else 'no detail'})")


class _Header:
    """e_ident and the ELF header, with extended numbering (PN_XNUM, SHN_XINDEX) applied."""

    def __init__(self, path: str, data: bytes, size: int | None = None):
        """``data`` holds at least the header; ``size`` is the file's (default: len(data))."""
        size = len(data) if size is None else size
        cls, enc = data[4], data[5]
        if cls not in (1, 2) or enc not in (1, 2):
            raise BadBinary(f"{path}: corrupt ELF file (bad class {cls} or data encoding {enc} in e_ident)")
        self.bits = 64 if cls == 2 else 32
        self.little = enc == 1
        o = self.order = "<" if self.little else ">"
        if min(len(data), size) < (64 if cls == 2 else 52):
            raise Truncated(path, size)
        (self.type, self.machine, _version, self.entry, self.phoff, self.shoff, _flags, _ehsize, self.phentsize,
         self.phnum, self.shentsize, self.shnum, self.shstrndx) = struct.unpack_from(
            o + ("HHIQQQIHHHHHH" if cls == 2 else "HHIIIIIHHHHHH"), data, 16)
        self.shdr_fmt = o + ("IIQQQQIIQQ" if cls == 2 else "IIIIIIIIII")
        self.phdr_fmt = o + ("IIQQQQQQ" if cls == 2 else "IIIIIIII")
        if self.shoff and (self.shnum == 0 or self.shstrndx == SHN_XINDEX or self.phnum == PN_XNUM):
            # more than 0xff00 sections or segments: the real counts live in section 0
            if self.shoff + struct.calcsize(self.shdr_fmt) > len(data):
                raise Truncated(path, size)
            sh0 = struct.unpack_from(self.shdr_fmt, data, self.shoff)
            self.shnum = self.shnum or sh0[5]
            self.shstrndx = sh0[6] if self.shstrndx == SHN_XINDEX else self.shstrndx
            self.phnum = sh0[7] if self.phnum == PN_XNUM else self.phnum
        if self.phnum and self.phentsize < struct.calcsize(self.phdr_fmt):
            raise BadBinary(f"{path}: corrupt ELF file (e_phentsize {self.phentsize} is too small)")
        if self.shoff and self.shnum and self.shentsize < struct.calcsize(self.shdr_fmt):
            raise BadBinary(f"{path}: corrupt ELF file (e_shentsize {self.shentsize} is too small)")
        if self.phnum and self.phoff + self.phnum * self.phentsize > size:
            raise Truncated(path, size)
        if self.shoff and self.shnum and self.shoff + self.shnum * self.shentsize > size:
            raise Truncated(path, size)


def _segments(path: str, data: bytes, hdr: _Header, table_at: int | None = None,
              size: int | None = None) -> list[tuple[int, Segment]]:
    """``(p_type, Segment)`` per program header; ``table_at``: where the table
    starts in ``data`` when that holds only the table (default: e_phoff)."""
    table_at = hdr.phoff if table_at is None else table_at
    size = len(data) if size is None else size
    out = []
    for i in range(hdr.phnum):
        fields = struct.unpack_from(hdr.phdr_fmt, data, table_at + i * hdr.phentsize)
        if hdr.bits == 64:
            ptype, flags, off, vaddr, _paddr, filesz, memsz, _align = fields
        else:
            ptype, off, vaddr, _paddr, filesz, memsz, flags, _align = fields
        if ptype == PT_LOAD and off + filesz > size:
            raise Truncated(path, size)
        out.append((ptype, Segment(segment_type(ptype), vaddr, memsz, off, filesz, _prot(flags))))
    return out


def program_headers(path: str) -> list[tuple[int, Segment, int]]:
    """``(p_type, Segment, p_align)`` per program header, reading only the ELF
    header and the table: capture asks this of every library a session loaded."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(64)
        if head[:4] != b"\x7fELF":
            raise BadBinary(f"{path}: not an ELF file")
        try:
            hdr = _Header(path, head, size)
        except Truncated:  # extended numbering: the counts are in section 0, beyond the head
            fh.seek(0)
            hdr = _Header(path, fh.read(), size)
        fh.seek(hdr.phoff)
        table = fh.read(hdr.phnum * hdr.phentsize)
    if len(table) < hdr.phnum * hdr.phentsize:
        raise Truncated(path, size)
    segments = _segments(path, table, hdr, table_at=0, size=size)
    align_at = struct.calcsize(hdr.phdr_fmt) - (8 if hdr.bits == 64 else 4)  # p_align ends either layout
    aligns = [struct.unpack_from(hdr.order + ("Q" if hdr.bits == 64 else "I"), table, i * hdr.phentsize + align_at)[0]
              for i in range(hdr.phnum)]
    return [(t, seg, a) for (t, seg), a in zip(segments, aligns)]


def _section_headers(data: bytes, hdr: _Header) -> list[tuple]:
    """Raw section headers: (name, type, flags, addr, offset, size, link, info, addralign, entsize)."""
    if not hdr.shoff or not hdr.shnum:
        return []
    return [struct.unpack_from(hdr.shdr_fmt, data, hdr.shoff + i * hdr.shentsize) for i in range(hdr.shnum)]


def section_entsizes(path: str, data: bytes) -> dict[str, int]:
    """name -> sh_entsize of each section (stubs reads the PLTs' entry sizes; inspect needs none)."""
    hdr = _Header(path, data)
    raw = _section_headers(data, hdr)
    if not raw or hdr.shstrndx >= len(raw):
        return {}
    names = data[raw[hdr.shstrndx][4]:raw[hdr.shstrndx][4] + raw[hdr.shstrndx][5]]
    return {_cstr(names, r[0]): r[9] for r in raw}


def _sections(path: str, data: bytes, hdr: _Header) -> list[Section]:
    raw = _section_headers(data, hdr)
    if not raw:
        return []
    names = b""
    if hdr.shstrndx < len(raw):
        _n, _t, _f, _a, off, size, *_ = raw[hdr.shstrndx]
        names = data[off:off + size]
    return [Section(_cstr(names, r[0]) if names else "", r[3], r[5], r[4], section_type(r[1], hdr.machine))
            for r in raw]


def _read(path: str, data: bytes) -> Image:
    hdr = _Header(path, data)
    img = Image(path=path, format="ELF", arch=elf_arch(hdr.machine, hdr.bits, hdr.little), file_type="",
                pie=False, bits=hdr.bits, endian="little" if hdr.little else "big", entry=hdr.entry)
    typed = _segments(path, data, hdr)
    img.segments = [s for _, s in typed]
    interp = None
    dynamic = None
    for ptype, seg in typed:
        if ptype == PT_INTERP:
            if seg.fileoff + seg.filesize > len(data):
                raise Truncated(path, len(data))
            interp = data[seg.fileoff:seg.fileoff + seg.filesize].split(b"\0", 1)[0].decode("utf-8", "replace")
        elif ptype == PT_DYNAMIC:
            dynamic = (seg.fileoff, seg.filesize)
    img.interpreter = interp
    img.sections = _sections(path, data, hdr)
    entsize = 24 if hdr.bits == 64 else 16
    for s in img.sections:
        if s.name == ".symtab":
            img.symbols = s.size // entsize
        elif s.name == ".dynsym":
            img.dynamic_symbols = s.size // entsize
    img.uuid = _build_id(data, [(s.fileoff, s.filesize) for t, s in typed if t == PT_NOTE]
                         + [(s.offset, s.size) for s in img.sections if s.kind == SHT_NOTE], hdr.little)
    dyn = _dynamic(path, data, dynamic, hdr)
    flags = dyn.get("DT_FLAGS", [0])[0]
    flags_1 = dyn.get("DT_FLAGS_1", [0])[0]
    img.bind_now = "DT_BIND_NOW" in dyn or bool(flags & DF_BIND_NOW) or bool(flags_1 & DF_1_NOW)
    if hdr.type == 3:  # ET_DYN
        # DF_1_PIE is recent (binutils 2.31); before it, an interpreter and no
        # soname meant a PIE program (libc.so.6 has an interpreter and a soname)
        img.pie = bool(flags_1 & DF_1_PIE) or (interp is not None and "DT_SONAME" not in dyn)
        img.file_type = "executable" if img.pie else "shared-object"
    else:
        img.file_type = E_TYPES.get(hdr.type, f"e_type {hdr.type:#x}")
    reader = _Reader(path, data, [s for t, s in typed if t == PT_LOAD])
    strtab = b""
    if "DT_STRTAB" in dyn and "DT_STRSZ" in dyn:
        strtab = reader.bytes_at(dyn["DT_STRTAB"][0], dyn["DT_STRSZ"][0])
    img.libraries = [Library(_cstr(strtab, off), "needed") for off in dyn.get("DT_NEEDED", [])]
    img.imports = _imports(img, reader, dyn, strtab, hdr)
    img.go = go_build_info(_go_buildinfo_bytes(img, data), hdr.little)
    return img


def _go_buildinfo_bytes(img: Image, data: bytes) -> bytes:
    """Where Go's build info can be: its section, or — section headers
    stripped — anywhere in the loaded data (a file with sections but no
    .go.buildinfo was not linked by Go, so it is not searched)."""
    found = _section_bytes(img, data, ".go.buildinfo")
    if found is not None:
        return found
    if img.sections:
        return b""
    return data


def _section_bytes(img: Image, data: bytes, name: str) -> bytes | None:
    for s in img.sections:
        if s.name == name and s.kind != "SHT_NOBITS" and s.offset + s.size <= len(data):
            return data[s.offset:s.offset + s.size]
    return None


def _build_id(data: bytes, spans: list[tuple[int, int]], little: bool) -> str | None:
    """The GNU build-id from PT_NOTE segments or SHT_NOTE sections (either may
    be missing: stripped section headers; Go puts it outside its PT_NOTE)."""
    order = "<" if little else ">"
    for off, size in spans:
        blob = data[off:off + size]
        pos = 0
        while pos + 12 <= len(blob):
            namesz, descsz, ntype = struct.unpack_from(order + "III", blob, pos)
            name_end = pos + 12 + ((namesz + 3) & ~3)
            desc_end = name_end + ((descsz + 3) & ~3)
            if desc_end > len(blob) or namesz > len(blob):
                break
            if ntype == 3 and blob[pos + 12:pos + 12 + namesz].rstrip(b"\0") == b"GNU":
                return blob[name_end:name_end + descsz].hex()
            pos = desc_end
    return None


_DT = {1: "DT_NEEDED", 14: "DT_SONAME", 5: "DT_STRTAB", 6: "DT_SYMTAB", 7: "DT_RELA", 8: "DT_RELASZ", 10: "DT_STRSZ",
       11: "DT_SYMENT", 17: "DT_REL", 18: "DT_RELSZ", 20: "DT_PLTREL", 23: "DT_JMPREL", 2: "DT_PLTRELSZ",
       24: "DT_BIND_NOW", 30: "DT_FLAGS", 0x6ffffffb: "DT_FLAGS_1", 0x6ffffff0: "DT_VERSYM",
       0x6ffffffe: "DT_VERNEED", 0x6fffffff: "DT_VERNEEDNUM", 4: "DT_HASH", 0x6ffffef5: "DT_GNU_HASH",
       15: "DT_RPATH", 29: "DT_RUNPATH", 16: "DT_SYMBOLIC", 0x6ffffffc: "DT_VERDEF", 0x6ffffffd: "DT_VERDEFNUM",
       3: "DT_PLTGOT", 0x6000000f: "DT_ANDROID_REL", 0x60000010: "DT_ANDROID_RELSZ", 0x60000011: "DT_ANDROID_RELA",
       0x60000012: "DT_ANDROID_RELASZ"}
# processor-specific tags mean something only on their machine: MIPS's GOT layout (readelf -A)
_DT_MIPS = {**_DT, 0x7000000a: "DT_MIPS_LOCAL_GOTNO", 0x70000011: "DT_MIPS_SYMTABNO", 0x70000013: "DT_MIPS_GOTSYM",
            0x70000032: "DT_MIPS_PLTGOT"}
EM_MIPS = 8


def _dynamic(path: str, data: bytes, where: tuple[int, int] | None, hdr: _Header) -> dict[str, list[int]]:
    if where is None:
        return {}
    off, size = where
    if off + size > len(data):
        raise Truncated(path, len(data))
    fmt = hdr.order + ("qQ" if hdr.bits == 64 else "iI")
    usable = size - size % struct.calcsize(fmt)
    out: dict[str, list[int]] = {}
    names = _DT_MIPS if hdr.machine == EM_MIPS else _DT
    for tag, val in struct.iter_unpack(fmt, data[off:off + usable]):
        if tag == 0:
            break
        name = names.get(tag)
        if name:
            out.setdefault(name, []).append(val)
    return out


def _cstr(blob: bytes, off: int) -> str:
    if off >= len(blob):
        return f"<bad string offset {off}>"
    end = blob.find(b"\0", off)
    return blob[off:end if end >= 0 else len(blob)].decode("utf-8", "replace")


def _versions(reader: _Reader, dyn: dict, strtab: bytes, little: bool) -> dict[int, tuple[str, str]]:
    """Version index -> (library file, version name) from DT_VERNEED."""
    if "DT_VERNEED" not in dyn:
        return {}
    order = "<" if little else ">"
    out: dict[int, tuple[str, str]] = {}
    vaddr = dyn["DT_VERNEED"][0]
    for _ in range(min(dyn.get("DT_VERNEEDNUM", [0])[0], 4096)):
        vn_version, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack(order + "HHIII", reader.bytes_at(vaddr, 16))
        lib = _cstr(strtab, vn_file)
        aux = vaddr + vn_aux
        for _ in range(min(vn_cnt, 4096)):
            _hash, _flags, other, name, nxt = struct.unpack(order + "IHHII", reader.bytes_at(aux, 16))
            out[other] = (lib, _cstr(strtab, name))
            if not nxt:
                break
            aux += nxt
        if not vn_next:
            break
        vaddr += vn_next
    return out


def _reloc_tables(dyn: dict) -> list[tuple[int, int, bool, bool, bool]]:
    """``(vaddr, size, is_rela, from_plt, packed)`` of the dynamic relocation tables, each entry once.

    Solaris' ld (and some others) make DT_RELA/DT_REL cover DT_JMPREL too; ld.so
    then takes the PLT part out of the eager range (glibc's elf/dynamic-link.h:
    "ranges[0].size -= size"), so here the JMPREL range is cut out of the others.
    Android's linker also reads DT_ANDROID_REL(A): relocations packed by lld/relocation_packer.
    """
    plt = None
    if "DT_JMPREL" in dyn and "DT_PLTRELSZ" in dyn:
        plt = (dyn["DT_JMPREL"][0], dyn["DT_PLTRELSZ"][0], dyn.get("DT_PLTREL", [7])[0] == 7, True, False)
    tables = [(dyn[key][0], dyn[size_key][0], rela, False, True)
              for key, size_key, rela in (("DT_ANDROID_RELA", "DT_ANDROID_RELASZ", True),
                                          ("DT_ANDROID_REL", "DT_ANDROID_RELSZ", False))
              if key in dyn and size_key in dyn]
    for key, size_key, rela in (("DT_RELA", "DT_RELASZ", True), ("DT_REL", "DT_RELSZ", False)):
        if key not in dyn or size_key not in dyn:
            continue
        start, end = dyn[key][0], dyn[key][0] + dyn[size_key][0]
        if plt is not None and plt[0] < end and start < plt[0] + plt[1]:
            pieces = [(start, plt[0]), (plt[0] + plt[1], end)]
        else:
            pieces = [(start, end)]
        tables += [(a, b - a, rela, False, False) for a, b in pieces if b > a]
    return tables + ([plt] if plt else [])


def _imports(img: Image, reader: _Reader, dyn: dict, strtab: bytes, hdr: _Header) -> list[ImportSlot]:
    tables = _reloc_tables(dyn)
    if "DT_SYMTAB" not in dyn:
        return []
    mips_got = _mips_global_got(dyn, hdr) if hdr.machine == EM_MIPS else None
    if not tables and mips_got is None:
        return []
    o, wide = hdr.order, hdr.bits == 64
    # 0x6000000f-0x60000012 are OS-specific: Android's packed tables only where they hold its
    # "APS2" format (Solaris' DT_SUNW_* tags use the same numbers)
    tables = [t for t in tables if not t[4] or _android_packed(reader, t[0])]
    rels = [(offset, sym, rtype, from_plt)  # relocations that name a symbol
            for vaddr, size, is_rela, from_plt, packed in tables
            for offset, sym, rtype in (_packed_relocations(reader, vaddr, size, is_rela, hdr) if packed
                                       else _relocations(reader, vaddr, size, is_rela, hdr)) if sym]
    if not rels and mips_got is None:
        return []
    nsyms = max((r[1] for r in rels), default=0) + 1
    if mips_got is not None:
        nsyms = max(nsyms, mips_got[1])
    sym_size = 24 if wide else 16  # st_name first; st_info at 4 (64-bit) or 12 (32-bit)
    syms = reader.bytes_at(dyn["DT_SYMTAB"][0], nsyms * sym_size)
    versym = reader.bytes_at(dyn["DT_VERSYM"][0], nsyms * 2) if "DT_VERSYM" in dyn else None
    versions = _versions(reader, dyn, strtab, hdr.little)
    name_of = reloc_namer(hdr.machine)
    jump_slot = JUMP_SLOT.get(hdr.machine)
    info_at = 4 if wide else 12
    per_symbol: dict[int, tuple[str, str | None, str | None, bool]] = {}

    def symbol(si: int) -> tuple[str, str | None, str | None, bool]:
        known = per_symbol.get(si)
        if known is None:
            at = si * sym_size
            lib = ver = None
            if versym is not None:
                vi = struct.unpack_from(o + "H", versym, si * 2)[0] & 0x7FFF
                lib, ver = versions.get(vi, (None, None))
            weak = (syms[at + info_at] >> 4) == 2  # STB_WEAK
            known = per_symbol[si] = (_cstr(strtab, struct.unpack_from(o + "I", syms, at)[0]), lib, ver, weak)
        return known

    slots: list[ImportSlot] = []
    for addr, si, rtype, from_plt in rels:
        name, lib, ver, weak = symbol(si)
        rname = name_of(rtype)
        plt_type = rtype == jump_slot if jump_slot is not None else ("JUMP_SLOT" in rname or "JMP_SLOT" in rname)
        lazy = from_plt and plt_type and not img.bind_now
        sec = img.section_of(addr)
        slots.append(ImportSlot(name, lib, addr, sec.name if sec else None, "lazy" if lazy else "eager",
                                rname, ver, weak))
    if mips_got is not None:
        for addr, si, lazy in _mips_got_lookups(reader, dyn, hdr, mips_got, syms, img.bind_now):
            name, lib, ver, weak = symbol(si)
            sec = img.section_of(addr)
            slots.append(ImportSlot(name, lib, addr, sec.name if sec else None, "lazy" if lazy else "eager",
                                    MIPS_GLOBAL_GOT, ver, weak))
    return slots


MIPS_GLOBAL_GOT = "MIPS global GOT"  # the reloc label of a slot bound through MIPS's GOT, not by a relocation
SHN_COMMON, STT_FUNC, STT_SECTION, STO_MIPS_PLT = 0xFFF2, 2, 3, 0x8


def _mips_global_got(dyn: dict, hdr: _Header) -> tuple[int, int, int, int] | None:
    """``(gotsym, symtabno, local_gotno, got)``: MIPS binds no symbol through relocations of
    its GOT; dynamic symbols from DT_MIPS_GOTSYM on each own one global GOT entry, after
    the DT_MIPS_LOCAL_GOTNO local ones (the "Global entries" of ``readelf -A``)."""
    keys = ("DT_MIPS_GOTSYM", "DT_MIPS_SYMTABNO", "DT_MIPS_LOCAL_GOTNO", "DT_PLTGOT")
    if not all(k in dyn for k in keys):
        return None
    gotsym, symtabno, local_gotno, got = (dyn[k][0] for k in keys)
    if gotsym >= symtabno:
        return None
    return gotsym, symtabno, local_gotno, got


def _mips_got_lookups(reader: _Reader, dyn: dict, hdr: _Header, mips_got: tuple[int, int, int, int], syms: bytes,
                      bind_now: bool) -> list[tuple[int, int, bool]]:
    """``(slot, symbol index, lazy)`` of the global GOT entries ld.so fills by a lookup, by
    glibc's elf_machine_got_rel (sysdeps/mips/dl-machine.h): an undefined function with a
    value (its lazy stub in .MIPS.stubs, no STO_MIPS_PLT) is bound on its first call; a
    defined function whose entry differs from its value, or a section symbol, is only
    rebased; everything else is looked up at load."""
    gotsym, symtabno, local_gotno, got = mips_got
    o, wide = hdr.order, hdr.bits == 64
    word = 8 if wide else 4
    count = symtabno - gotsym
    entries = struct.unpack(o + ("Q" if wide else "I") * count,
                            reader.bytes_at(got + local_gotno * word, count * word))
    if wide:  # st_name, st_info, st_other, st_shndx, st_value
        fmt, info_i, other_i, shndx_i, value_i = o + "IBBHQ", 1, 2, 3, 4
    else:  # st_name, st_value, st_size, st_info, st_other, st_shndx
        fmt, info_i, other_i, shndx_i, value_i = o + "IIIBBH", 3, 4, 5, 1
    size = 24 if wide else 16
    out = []
    for n in range(count):
        si = gotsym + n
        sym = struct.unpack_from(fmt, syms, si * size)
        stype, shndx, value = sym[info_i] & 0xF, sym[shndx_i], sym[value_i]
        slot = got + (local_gotno + n) * word
        if shndx == 0:  # SHN_UNDEF
            stub = stype == STT_FUNC and value != 0 and not sym[other_i] & STO_MIPS_PLT
            out.append((slot, si, stub and not bind_now))
        elif shndx == SHN_COMMON:
            out.append((slot, si, False))
        elif stype == STT_FUNC and entries[n] != value:
            if bind_now:
                out.append((slot, si, False))
        elif stype != STT_SECTION:
            out.append((slot, si, False))
    return out


def _relocations(reader: _Reader, vaddr: int, size: int, is_rela: bool, hdr: _Header):
    """``(r_offset, symbol index, type)`` of each entry of a REL or RELA table, unpacked in bulk."""
    wide = hdr.bits == 64
    if wide and hdr.machine == EM_MIPS:
        # MIPS64's r_info: r_sym (32 bits), r_ssym, r_type3, r_type2, r_type (a byte each), in
        # that order in the file whatever its byte order: not one 64-bit word as elsewhere
        fmt = hdr.order + "QIBBBB" + ("q" if is_rela else "")
        n = size // struct.calcsize(fmt)
        return [(e[0], e[1], e[5] | e[4] << 8 | e[3] << 16)
                for e in struct.iter_unpack(fmt, reader.bytes_at(vaddr, n * struct.calcsize(fmt)))]
    shift, mask = (32, 0xFFFFFFFF) if wide else (8, 0xFF)
    fmt = hdr.order + ("QQ" if wide else "II") + (("q" if wide else "i") if is_rela else "")
    n = size // struct.calcsize(fmt)
    return [(e[0], e[1] >> shift, e[1] & mask)
            for e in struct.iter_unpack(fmt, reader.bytes_at(vaddr, n * struct.calcsize(fmt)))]


def dynamic_tags(path: str, data: bytes) -> dict[str, list[int]]:
    """The dynamic section's tags by name (stubs labels the GOT words ld.so reserves at DT_PLTGOT)."""
    hdr = _Header(path, data)
    dynamic = next(((s.fileoff, s.filesize) for t, s in _segments(path, data, hdr) if t == PT_DYNAMIC), None)
    return _dynamic(path, data, dynamic, hdr)


def _android_packed(reader: _Reader, vaddr: int) -> bool:
    off = reader.offset(vaddr)
    return off is not None and reader.data[off:off + 4] == b"APS2"


def _packed_relocations(reader: _Reader, vaddr: int, size: int, is_rela: bool, hdr: _Header):
    """``(r_offset, symbol index, type)`` of Android's packed relocations ("APS2": SLEB128
    numbers in groups sharing an offset delta, an r_info or an addend: bionic's
    linker/linker_reloc_iterators.h and lld's AndroidPackedRelocationSection)."""
    blob = reader.bytes_at(vaddr, size)
    pos = 4  # past "APS2"

    def sleb() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            if pos >= len(blob):
                raise Truncated(reader.path, len(reader.data))
            byte = blob[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value - (1 << shift) if byte & 0x40 else value

    by_info, by_offset_delta, by_addend, has_addend = 1, 2, 4, 8
    count, offset = sleb(), sleb()
    shift, mask = (32, 0xFFFFFFFF) if hdr.bits == 64 else (8, 0xFF)
    word = (1 << hdr.bits) - 1
    out = []
    info = 0
    while len(out) < count:
        group, flags = sleb(), sleb()
        delta = sleb() if flags & by_offset_delta else 0
        if flags & by_info:
            info = sleb()
        if flags & has_addend and flags & by_addend:
            sleb()  # the group's addend: not needed here
        for _ in range(min(group, count - len(out))):
            offset = (offset + (delta if flags & by_offset_delta else sleb())) & word
            if not flags & by_info:
                info = sleb()
            if flags & has_addend and not flags & by_addend:
                sleb()
            out.append((offset, (info & word) >> shift, info & mask))
    return out


def plt_symbols(path: str) -> frozenset[str]:
    """Names bound through PLT slots (the JUMP_SLOT relocations of DT_JMPREL).

    The ld-debug backend asks this of every object a traced build loads, to
    tell lazy bindings from eager ones, so it reads the dynamic section and
    that one table, nothing else.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF":
        raise BadBinary(f"{path}: not an ELF file")
    hdr = _Header(path, data)
    typed = _segments(path, data, hdr)
    dynamic = next(((s.fileoff, s.filesize) for t, s in typed if t == PT_DYNAMIC), None)
    dyn = _dynamic(path, data, dynamic, hdr)
    if not all(k in dyn for k in ("DT_JMPREL", "DT_PLTRELSZ", "DT_SYMTAB", "DT_STRTAB", "DT_STRSZ")):
        return frozenset()
    reader = _Reader(path, data, [s for t, s in typed if t == PT_LOAD])
    strtab = reader.bytes_at(dyn["DT_STRTAB"][0], dyn["DT_STRSZ"][0])
    want = JUMP_SLOT.get(hdr.machine)
    slots = {sym for _, sym, rtype in _relocations(reader, dyn["DT_JMPREL"][0], dyn["DT_PLTRELSZ"][0],
                                                   dyn.get("DT_PLTREL", [7])[0] == 7, hdr)
             if sym and (want is None or rtype == want)}
    if not slots:
        return frozenset()
    sym_size = 24 if hdr.bits == 64 else 16
    syms = reader.bytes_at(dyn["DT_SYMTAB"][0], (max(slots) + 1) * sym_size)
    return frozenset(_cstr(strtab, struct.unpack_from(hdr.order + "I", syms, i * sym_size)[0]) for i in slots)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF":
        raise BadBinary(f"{path}: not an ELF file")
    return data


def build_id(path: str) -> str | None:
    """The GNU build-id (hex) from the notes, as inspect reports it."""
    data = _read_file(path)
    hdr = _Header(path, data)
    notes = [(s.fileoff, s.filesize) for t, s in _segments(path, data, hdr) if t == PT_NOTE]
    notes += [(r[4], r[5]) for r in _section_headers(data, hdr) if r[1] == SHT_NOTE_TYPE]
    return _build_id(data, notes, hdr.little)


def function_symbols(path: str, names: frozenset[str]) -> dict[str, tuple[int, int]]:
    """``name -> (start, end)`` of the FUNC symbols in .symtab among ``names``
    (the first of each name), the table unpacked in one pass."""
    data = _read_file(path)
    hdr = _Header(path, data)
    raw = _section_headers(data, hdr)
    symtab = next((r for r in raw if r[1] == SHT_SYMTAB_TYPE), None)
    if symtab is None or not symtab[9] or symtab[6] >= len(raw):
        return {}
    _n, _t, _f, _a, off, size, link, _i, _al, entsize = symtab
    str_off, str_size = raw[link][4], raw[link][5]
    table, strtab = data[off:off + size], data[str_off:str_off + str_size]
    if hdr.bits == 64:  # st_name, st_info, st_other, st_shndx, st_value, st_size
        fmt, info_i, value_i, size_i = hdr.order + "IBBHQQ", 1, 4, 5
    else:  # st_name, st_value, st_size, st_info, st_other, st_shndx
        fmt, info_i, value_i, size_i = hdr.order + "IIIBBH", 3, 1, 2
    if entsize < struct.calcsize(fmt):
        return {}
    wanted = {n.encode() for n in names}
    found: dict[str, tuple[int, int]] = {}
    for i in range(0, len(table) - len(table) % entsize, entsize):
        sym = struct.unpack_from(fmt, table, i)
        if sym[info_i] & 0xF != 2:  # STT_FUNC
            continue
        name = strtab[sym[0]:strtab.find(b"\0", sym[0])]
        if name in wanted and name.decode() not in found:
            found[name.decode()] = (sym[value_i], sym[value_i] + sym[size_i])
    return found
