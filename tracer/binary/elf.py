"""ELF images: headers through pyelftools, the big tables in bulk with numpy (imported only then).

pyelftools builds a Python object per symbol or relocation, which costs
seconds on a Go toolchain binary; here the dynamic symbol, version and
relocation tables are each one ``numpy.frombuffer`` over the file's bytes,
located through the dynamic section (so files whose section headers were
stripped still show their imports).
"""
from __future__ import annotations

import io
import struct

from elftools.elf import enums
from elftools.elf.elffile import ELFFile

from .goinfo import go_build_info
from .model import Image, ImportSlot, Library, Section, Segment
from .sniff import BadBinary, Truncated

ARCH = {
    "EM_X86_64": "x86_64", "EM_AARCH64": "arm64", "EM_386": "i386", "EM_ARM": "arm",
    "EM_RISCV": "riscv", "EM_PPC64": "ppc64", "EM_PPC": "ppc", "EM_S390": "s390x",
    "EM_MIPS": "mips", "EM_LOONGARCH": "loong64",
}
RELOC_ENUMS = {
    "EM_X86_64": enums.ENUM_RELOC_TYPE_x64, "EM_AARCH64": enums.ENUM_RELOC_TYPE_AARCH64,
    "EM_386": enums.ENUM_RELOC_TYPE_i386, "EM_ARM": enums.ENUM_RELOC_TYPE_ARM,
    "EM_PPC64": enums.ENUM_RELOC_TYPE_PPC64, "EM_S390": enums.ENUM_RELOC_TYPE_S390X,
    "EM_MIPS": enums.ENUM_RELOC_TYPE_MIPS,
}
DF_BIND_NOW, DF_1_NOW, DF_1_PIE = 0x8, 0x1, 0x08000000
PT_NAMES = {"PT_LOAD": "LOAD", "PT_DYNAMIC": "DYNAMIC", "PT_INTERP": "INTERP", "PT_NOTE": "NOTE",
            "PT_TLS": "TLS", "PT_GNU_RELRO": "GNU_RELRO", "PT_GNU_STACK": "GNU_STACK",
            "PT_GNU_EH_FRAME": "GNU_EH_FRAME", "PT_PHDR": "PHDR", "PT_GNU_PROPERTY": "GNU_PROPERTY"}


def _arch(machine: str, bits: int, little: bool) -> str:
    name = ARCH.get(machine, machine.removeprefix("EM_").lower())
    if name == "riscv":
        return f"riscv{bits}"
    if name == "ppc64" and little:
        return "ppc64le"
    return name


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
            raise Truncated(self.path, len(self.data))
        return self.data[off:off + size]


def read_elf(path: str, data: bytes) -> Image:
    try:
        return _read(path, data)
    except BadBinary:
        raise
    except Exception as exc:  # pyelftools, struct, construct's StreamError …: still one line
        raise _explain(path, data, exc) from None


def _explain(path: str, data: bytes, exc: Exception) -> BadBinary:
    text = str(exc)
    if "stream" in text.lower() or "unpack requires" in text or "truncat" in text.lower():
        return Truncated(path, len(data))
    return BadBinary(f"{path}: corrupt ELF file ({type(exc).__name__}: {text.splitlines()[0][:120] if text else 'no detail'})")


def _check_extents(path: str, data: bytes) -> None:
    """Truncation first, from the raw header: pyelftools would report it as a
    missing string table or a stream error."""
    cls, enc = data[4], data[5]
    if cls not in (1, 2) or enc not in (1, 2):
        raise BadBinary(f"{path}: corrupt ELF file (bad class {cls} or data encoding {enc} in e_ident)")
    o = "<" if enc == 1 else ">"
    if cls == 2:
        if len(data) < 64:
            raise Truncated(path, len(data))
        phoff, shoff = struct.unpack_from(o + "QQ", data, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(o + "HHHH", data, 54)
    else:
        phoff, shoff = struct.unpack_from(o + "II", data, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(o + "HHHH", data, 42)
    if phnum and phoff + phnum * phentsize > len(data):
        raise Truncated(path, len(data))
    if shnum and shoff + shnum * shentsize > len(data):
        raise Truncated(path, len(data))
    for i in range(phnum if phentsize >= (56 if cls == 2 else 32) else 0):
        at = phoff + i * phentsize
        if cls == 2:
            ptype, _flags, off, _va, _pa, filesz = struct.unpack_from(o + "IIQQQQ", data, at)
        else:
            ptype, off, _va, _pa, filesz = struct.unpack_from(o + "IIIII", data, at)
        if ptype == 1 and off + filesz > len(data):  # PT_LOAD
            raise Truncated(path, len(data))


def _read(path: str, data: bytes) -> Image:
    _check_extents(path, data)
    elf = ELFFile(io.BytesIO(data))
    hdr = elf.header
    bits = elf.elfclass
    little = elf.little_endian
    if hdr["e_phoff"] + hdr["e_phnum"] * hdr["e_phentsize"] > len(data):
        raise Truncated(path, len(data))
    machine = hdr["e_machine"]
    img = Image(path=path, format="ELF", arch=_arch(machine, bits, little), file_type="", pie=False,
                bits=bits, endian="little" if little else "big", entry=int(hdr["e_entry"]))
    segments: list[Segment] = []
    interp = None
    dynamic_vaddr = None
    for seg in elf.iter_segments():
        ptype = seg["p_type"]
        name = PT_NAMES.get(ptype, ptype if isinstance(ptype, str) else f"0x{ptype:x}")
        segments.append(Segment(name, int(seg["p_vaddr"]), int(seg["p_memsz"]), int(seg["p_offset"]),
                                int(seg["p_filesz"]), _prot(int(seg["p_flags"]))))
        if ptype == "PT_INTERP":
            end = int(seg["p_offset"]) + int(seg["p_filesz"])
            if end > len(data):
                raise Truncated(path, len(data))
            interp = data[int(seg["p_offset"]):end].split(b"\0", 1)[0].decode("utf-8", "replace")
        elif ptype == "PT_DYNAMIC":
            dynamic_vaddr = (int(seg["p_offset"]), int(seg["p_filesz"]))
    img.segments = segments
    img.interpreter = interp
    loads = [s for s in segments if s.name == "LOAD"]
    img.sections = _sections(elf, path, data)
    for s in img.sections:
        entsize = 24 if bits == 64 else 16
        if s.name == ".symtab":
            img.symbols = s.size // entsize
        elif s.name == ".dynsym":
            img.dynamic_symbols = s.size // entsize
    img.uuid = _build_id(data, [(s.fileoff, s.filesize) for s in segments if s.name == "NOTE"]
                         + [(s.offset, s.size) for s in img.sections if s.kind == "SHT_NOTE"], little)
    dyn = _dynamic(path, data, dynamic_vaddr, bits, little)
    flags = dyn.get("DT_FLAGS", [0])[0]
    flags_1 = dyn.get("DT_FLAGS_1", [0])[0]
    img.bind_now = "DT_BIND_NOW" in dyn or bool(flags & DF_BIND_NOW) or bool(flags_1 & DF_1_NOW)
    etype = hdr["e_type"]
    if etype == "ET_EXEC":
        img.file_type = "executable"
    elif etype == "ET_DYN":
        # DF_1_PIE is recent (binutils 2.31); before it, an interpreter and no
        # soname meant a PIE program (libc.so.6 has an interpreter and a soname)
        img.pie = bool(flags_1 & DF_1_PIE) or (interp is not None and "DT_SONAME" not in dyn)
        img.file_type = "executable" if img.pie else "shared-object"
    else:
        img.file_type = {"ET_REL": "relocatable", "ET_CORE": "core"}.get(etype, str(etype))
    reader = _Reader(path, data, loads)
    strtab = b""
    if "DT_STRTAB" in dyn and "DT_STRSZ" in dyn:
        strtab = reader.bytes_at(dyn["DT_STRTAB"][0], dyn["DT_STRSZ"][0])
    img.libraries = [Library(_cstr(strtab, off), "needed") for off in dyn.get("DT_NEEDED", [])]
    img.imports = _imports(img, reader, dyn, strtab, machine, bits, little)
    img.go = go_build_info(_section_bytes(img, data, ".go.buildinfo") or data, little)
    return img


def _sections(elf: ELFFile, path: str, data: bytes) -> list[Section]:
    if elf.header["e_shoff"] == 0 or elf.header["e_shnum"] == 0:
        return []
    if elf.header["e_shoff"] + elf.header["e_shnum"] * elf.header["e_shentsize"] > len(data):
        raise Truncated(path, len(data))
    out = []
    for sec in elf.iter_sections():
        out.append(Section(sec.name, int(sec["sh_addr"]), int(sec["sh_size"]), int(sec["sh_offset"]),
                           str(sec["sh_type"])))
    return out


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
       0x6ffffffe: "DT_VERNEED", 0x6fffffff: "DT_VERNEEDNUM", 4: "DT_HASH", 0x6ffffef5: "DT_GNU_HASH"}


def _dynamic(path: str, data: bytes, where: tuple[int, int] | None, bits: int, little: bool) -> dict[str, list[int]]:
    if where is None:
        return {}
    import numpy as np  # only dynamic files need it: a static one (Go's toolchain) skips the ~70 ms import

    off, size = where
    if off + size > len(data):
        raise Truncated(path, len(data))
    dt = np.dtype([("tag", "i8" if bits == 64 else "i4"), ("val", "u8" if bits == 64 else "u4")])
    dt = dt.newbyteorder("<" if little else ">")
    n = size // dt.itemsize
    table = np.frombuffer(data, dtype=dt, count=n, offset=off)
    out: dict[str, list[int]] = {}
    for tag, val in zip(table["tag"].tolist(), table["val"].tolist()):
        if tag == 0:
            break
        name = _DT.get(tag)
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


def _imports(img: Image, reader: _Reader, dyn: dict, strtab: bytes, machine: str, bits: int,
             little: bool) -> list[ImportSlot]:
    order = "<" if little else ">"
    tables = []  # (vaddr, size, is_rela, from_plt)
    if "DT_RELA" in dyn and "DT_RELASZ" in dyn:
        tables.append((dyn["DT_RELA"][0], dyn["DT_RELASZ"][0], True, False))
    if "DT_REL" in dyn and "DT_RELSZ" in dyn:
        tables.append((dyn["DT_REL"][0], dyn["DT_RELSZ"][0], False, False))
    if "DT_JMPREL" in dyn and "DT_PLTRELSZ" in dyn:
        rela = dyn.get("DT_PLTREL", [7])[0] == 7
        tables.append((dyn["DT_JMPREL"][0], dyn["DT_PLTRELSZ"][0], rela, True))
    if not tables or "DT_SYMTAB" not in dyn:
        return []
    import numpy as np

    w = "u8" if bits == 64 else "u4"
    rels = []
    for vaddr, size, is_rela, from_plt in tables:
        fields = [("offset", w), ("info", w)] + ([("addend", "i8" if bits == 64 else "i4")] if is_rela else [])
        dt = np.dtype(fields).newbyteorder(order)
        n = size // dt.itemsize
        arr = np.frombuffer(reader.bytes_at(vaddr, n * dt.itemsize), dtype=dt)
        info = arr["info"].astype(np.uint64)
        sym = (info >> np.uint64(32)) if bits == 64 else (info >> np.uint64(8))
        typ = (info & np.uint64(0xFFFFFFFF)) if bits == 64 else (info & np.uint64(0xFF))
        keep = sym != 0
        rels.append((arr["offset"][keep].astype(np.uint64), sym[keep], typ[keep], from_plt))
    nsyms = int(max((int(r[1].max()) for r in rels if len(r[1])), default=-1)) + 1
    if nsyms == 0:
        return []
    if bits == 64:
        sdt = np.dtype([("name", "u4"), ("info", "u1"), ("other", "u1"), ("shndx", "u2"),
                        ("value", "u8"), ("size", "u8")])
    else:
        sdt = np.dtype([("name", "u4"), ("value", "u4"), ("size", "u4"), ("info", "u1"),
                        ("other", "u1"), ("shndx", "u2")])
    sdt = sdt.newbyteorder(order)
    syms = np.frombuffer(reader.bytes_at(dyn["DT_SYMTAB"][0], nsyms * sdt.itemsize), dtype=sdt)
    versym = None
    if "DT_VERSYM" in dyn:
        versym = np.frombuffer(reader.bytes_at(dyn["DT_VERSYM"][0], nsyms * 2), dtype=np.dtype("u2").newbyteorder(order))
    versions = _versions(reader, dyn, strtab, little)
    names_cache: dict[int, str] = {}
    reloc_names = {v: k for k, v in RELOC_ENUMS.get(machine, {}).items() if isinstance(v, int)}
    slots: list[ImportSlot] = []
    for offsets, symidx, types, from_plt in rels:
        for addr, si, ty in zip(offsets.tolist(), symidx.tolist(), types.tolist()):
            name = names_cache.get(si)
            if name is None:
                name = names_cache[si] = _cstr(strtab, int(syms["name"][si]))
            lib = ver = None
            if versym is not None:
                vi = int(versym[si]) & 0x7FFF
                if vi in versions:
                    lib, ver = versions[vi]
            rname = reloc_names.get(ty, f"type {ty}")
            lazy = from_plt and "JUMP_SLOT" in rname and not img.bind_now
            sec = img.section_of(addr)
            weak = (int(syms["info"][si]) >> 4) == 2
            slots.append(ImportSlot(name, lib, addr, sec.name if sec else None, "lazy" if lazy else "eager",
                                    rname, ver, weak))
    return slots
