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

# Readers live in tracer/binary/elf.py (struct over the file's bytes, no
# pyelftools: these run before a traced command starts); imported on use.


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
    from .binary.elf import build_id as read_build_id
    from .errors import GotraceError

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
    from .binary.elf import function_symbols
    from .errors import GotraceError

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
    from .binary.elf import PT_LOAD, program_headers
    from .errors import GotraceError

    try:
        spans = [(seg.vmaddr, seg.vmaddr + seg.vmsize) for ptype, seg, _ in program_headers(path)
                 if ptype == PT_LOAD and "x" in seg.prot]
    except (OSError, GotraceError, struct.error):
        return None
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None
