"""The few facts about ELF files that capture needs, cached per file.

Capture resolves runtime facts (link_map load bias, lazy vs dlsym) against the
files on disk. Only what is needed is read: program headers and the JUMP_SLOT
relocations' symbol names. Unreadable or non-ELF paths answer None rather than
failing a capture.
"""
from __future__ import annotations

import functools
import os
import struct

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile



@functools.lru_cache(maxsize=4096)
def link_base(path: str) -> int | None:
    """Link-time address of the first PT_LOAD, aligned down to its p_align (0 for PIE/shared)."""
    from .binary.elf import PT_LOAD, program_headers
    from .errors import GotraceError

    try:
        for ptype, seg, align in program_headers(path):
            if ptype == PT_LOAD:
                return seg.vmaddr & ~(max(align, 1) - 1)
    except (OSError, GotraceError, struct.error):
        return None
    return None


@functools.lru_cache(maxsize=4096)
def jump_slot_symbols(path: str) -> frozenset[str] | None:
    """Names bound through PLT slots (JUMP_SLOT relocations) of an ELF file."""
    from .binary.elf import plt_symbols
    from .errors import GotraceError

    try:
        return plt_symbols(path)
    except (OSError, GotraceError, struct.error, IndexError):
        return None


def build_id(path: str) -> str | None:
    """The GNU build-id as hex, used to find a stripped file's debug info."""
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            sec = elf.get_section_by_name(".note.gnu.build-id")
            if sec is None:
                return None
            for note in sec.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    return note["n_desc"]
    except (OSError, ELFError, ValueError):
        return None
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
    file's own .symtab or its build-id debug file (ld.so is stripped).

    The table is unpacked in one pass (pyelftools' symbol-by-symbol parse of
    ld.so's debug file costs ~45 ms, in front of every traced command)."""
    found: dict[str, tuple[int, int]] = {}
    for cand in debug_candidates(path):
        try:
            with open(cand, "rb") as fh:
                elf = ELFFile(fh)
                symtab = elf.get_section_by_name(".symtab")
                if symtab is None or symtab["sh_entsize"] == 0:
                    continue
                strtab = elf.get_section(symtab["sh_link"]).data()
                _scan_symbols(symtab.data(), symtab["sh_entsize"], elf.elfclass, elf.little_endian,
                              strtab, names, found)
        except (OSError, ELFError, ValueError, IndexError, struct.error):
            continue
        if len(found) == len(names):
            break
    return found


def _scan_symbols(data: bytes, entsize: int, elfclass: int, little: bool, strtab: bytes,
                  names: frozenset[str], found: dict[str, tuple[int, int]]) -> None:
    end = "<" if little else ">"
    if elfclass == 64:  # st_name, st_info, st_other, st_shndx, st_value, st_size
        fmt, name_i, info_i, value_i, size_i = end + "IBBHQQ", 0, 1, 4, 5
    else:  # st_name, st_value, st_size, st_info, st_other, st_shndx
        fmt, name_i, info_i, value_i, size_i = end + "IIIBBH", 0, 3, 1, 2
    width = struct.calcsize(fmt)
    wanted = {n.encode() for n in names}
    usable = len(data) - len(data) % entsize
    for i in range(0, usable, entsize):
        sym = struct.unpack_from(fmt, data, i) if entsize >= width else None
        if sym is None or sym[info_i] & 0xF != 2:  # STT_FUNC
            continue
        off = sym[name_i]
        name = strtab[off:strtab.find(b"\0", off)]
        if name in wanted:
            text = name.decode()
            if text not in found:
                found[text] = (sym[value_i], sym[value_i] + sym[size_i])


@functools.lru_cache(maxsize=64)
def text_range(path: str) -> tuple[int, int] | None:
    """Link-time extent of the executable PT_LOAD segment(s)."""
    try:
        with open(path, "rb") as fh:
            spans = [(int(s["p_vaddr"]), int(s["p_vaddr"]) + int(s["p_memsz"]))
                     for s in ELFFile(fh).iter_segments("PT_LOAD") if int(s["p_flags"]) & 1]
    except (OSError, ELFError, ValueError):
        return None
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None
