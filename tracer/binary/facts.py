"""The few facts about ELF files that capture needs, cached per file, never failing.

Capture resolves runtime facts (link_map load bias, lazy vs dlsym) against the
files on disk. Only what is needed is read: program headers and the JUMP_SLOT
relocations' symbol names. Unreadable or non-ELF paths answer None rather than
failing a capture.
"""
from __future__ import annotations

import functools
import os
import struct

from ..errors import GotraceError

# Readers live in binary/elf.py (struct over the file's bytes, no pyelftools:
# these run before a traced command starts); imported on use.


@functools.lru_cache(maxsize=4096)
def link_base(path: str) -> int | None:
    """The link-time base (model.elf_link_base: first PT_LOAD, page aligned; 0 for PIE/shared)."""
    from .elf import PT_LOAD, program_headers
    from .model import elf_link_base

    try:
        for ptype, seg, _align in program_headers(path):
            if ptype == PT_LOAD:
                return elf_link_base(seg.vmaddr)
    except (OSError, GotraceError, struct.error):
        return None
    return None


@functools.lru_cache(maxsize=4096)
def jump_slot_symbols(path: str) -> frozenset[str] | None:
    """Names bound through PLT slots (JUMP_SLOT relocations) of an ELF file."""
    from .elf import plt_symbols

    try:
        return plt_symbols(path)
    except (OSError, GotraceError, struct.error, IndexError):
        return None


def versioned_references(path: str) -> frozenset[str] | None:
    """Names an ELF object references with a version (GLIBC_2.2.5 …); None: unreadable or not ELF."""
    obj = dyn_object(path)
    return None if obj is None else getattr(obj.definitions, "versioned_refs", frozenset())


def build_id(path: str) -> str | None:
    """The GNU build-id as hex, used to find a stripped file's debug info."""
    from .elf import build_id as read_build_id

    try:
        return read_build_id(path)
    except (OSError, GotraceError, struct.error, IndexError):
        return None


def debug_candidates(path: str) -> list[str]:
    """The file itself, then its build-id debug file (Debian's libc6-dbg layout)."""
    candidates = [path]
    bid = build_id(path)
    if bid:
        candidates.append(os.path.join("/usr/lib/debug/.build-id", bid[:2], bid[2:] + ".debug"))
    return candidates


@functools.lru_cache(maxsize=16)
def function_ranges(path: str, names: frozenset[str]) -> dict[str, tuple[int, int]]:
    """``name -> (start, end)`` link-time addresses of FUNC symbols, from the
    file's own .symtab or its build-id debug file (ld.so is stripped)."""
    from .elf import function_symbols

    found: dict[str, tuple[int, int]] = {}
    for cand in debug_candidates(path):
        try:
            for name, span in function_symbols(cand, names).items():
                found.setdefault(name, span)
        except (OSError, GotraceError, struct.error, IndexError):
            continue
        if len(found) == len(names):
            break
    return found


@functools.lru_cache(maxsize=64)
def text_range(path: str) -> tuple[int, int] | None:
    """Link-time extent of the executable PT_LOAD segment(s)."""
    from .elf import PT_LOAD, program_headers

    try:
        spans = [(seg.vmaddr, seg.vmaddr + seg.vmsize) for ptype, seg, _ in program_headers(path)
                 if ptype == PT_LOAD and "x" in seg.prot]
    except (OSError, GotraceError, struct.error):
        return None
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None


@functools.lru_cache(maxsize=4096)
def file_arch(path: str) -> str | None:
    """The architecture an ELF file is built for (arch.elf_arch's name), None if not ELF."""
    from ..arch import elf_header_arch

    try:
        with open(path, "rb") as fh:
            return elf_header_arch(fh.read(20))
    except OSError:
        return None


def dynamically_linked(path: str) -> bool | None:
    """Whether an ELF program asks for a dynamic linker (PT_INTERP); None if not ELF or unreadable."""
    from .elf import PT_INTERP, program_headers

    try:
        return any(ptype == PT_INTERP for ptype, _seg, _align in program_headers(path))
    except (OSError, GotraceError, struct.error):
        return None


@functools.lru_cache(maxsize=1024)
def script_interpreter(path: str) -> str | None:
    """The interpreter a ``#!`` script names (what the kernel really runs), None if not a script."""
    line = script_line(path)
    return line[0] if line else None


def script_line(path: str) -> tuple[str, str | None] | None:
    """A ``#!`` script's interpreter and its optional argument as the kernel reads them
    (binfmt_script.c: the first line, within its first 256 bytes; the interpreter up to the
    first blank, everything after it, trimmed, as one argument); None if not a script."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        return None
    cut = min((i for i in (line.find(b" "), line.find(b"\t")) if i >= 0), default=len(line))
    arg = line[cut:].strip(b" \t")
    return line[:cut].decode(errors="replace"), (arg.decode(errors="replace") or None)


@functools.lru_cache(maxsize=4096)
def _macho_slices(path: str):
    from .macho_slices import slices

    return tuple(slices(path))


def macho_text_vmaddr(path: str, uuid: str | None = None, arch: str | None = None) -> int | None:
    """The link-time __TEXT vmaddr of the slice of a Mach-O file that ran (the one
    with dyld's logged UUID), None if the file is not here or is not that build."""
    from .macho_slices import pick

    s = pick(list(_macho_slices(path)), uuid, arch)
    return s.text_vmaddr if s else None


def macho_arch(path: str, uuid: str | None = None) -> str | None:
    """The architecture of the slice that ran (by UUID, or a thin file's only one)."""
    from .macho_slices import pick

    s = pick(list(_macho_slices(path)), uuid)
    return s.arch if s else None


def _from_elf(path: str, read):
    """``read(path, data)`` of an ELF file; None when it is gone, unreadable, not ELF or corrupt."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if data[:4] != b"\x7fELF":
            return None
        return read(path, data)
    except (OSError, GotraceError, struct.error, IndexError):
        return None


def undefined_refs(path: str) -> dict | None:
    """An ELF file's undefined dynamic symbols: name -> weak reference? (None: not readable here).
    Read with the rest of what ld.so reads of it (one read of the file, one pass over .dynsym);
    shared by every caller, as the cached object is: not to be changed."""
    obj = dyn_object(path)
    return None if obj is None else getattr(obj.definitions, "undefined", {})


@functools.lru_cache(maxsize=4096)
def dyn_object(path: str):
    """What ld.so reads of an ELF object (elf_dynsyms.DynObject); None: gone, unreadable or not ELF."""
    from .elf_dynsyms import read_dyn_object

    return _from_elf(path, read_dyn_object)


def dyn_object_from_bytes(name: str, data: bytes):
    """dyn_object of a file already read (a descriptor kept on a file that may be deleted since)."""
    from .elf_dynsyms import read_dyn_object

    try:
        return read_dyn_object(name, data) if data[:4] == b"\x7fELF" else None
    except (GotraceError, struct.error, IndexError, ValueError):
        return None


def copy_relocated(path: str) -> frozenset[str]:
    """Symbols an executable copies into itself (R_*_COPY): their lookups skip the executable."""
    obj = dyn_object(path) if path else None
    return frozenset(obj.copy_relocated) if obj is not None else frozenset()


MH_TWOLEVEL = 0x80


@functools.lru_cache(maxsize=256)
def macho_binds(path: str, arch: str | None = None) -> tuple[bool, dict[str, str | None]] | None:
    """A Mach-O image's bind targets: (two-level namespace?, symbol -> the library its bind names:
    an install name, or "<flat lookup>", "<main executable>", "<self>", "<weak lookup>").
    None: gone, unreadable or not Mach-O."""
    from .macho import read_macho

    try:
        with open(path, "rb") as fh:
            data = fh.read()
        img = read_macho(path, data, arch)
        at = int(img.slice_offset or 0)
        magic = data[at:at + 4]
        order = "<" if magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe") else ">"
        flags = struct.unpack_from(order + "I", data, at + 24)[0]
        return bool(flags & MH_TWOLEVEL), {s.symbol: s.library for s in img.imports}
    except (OSError, GotraceError, struct.error, IndexError):
        return None
