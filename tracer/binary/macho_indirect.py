"""Mach-O section records and the indirect symbol table, read raw.

Stub and symbol-pointer sections name their symbols only through the
indirect symbol table (section ``reserved1`` is the first index, ``reserved2``
the stub size). Reading these few structures directly keeps every offset
bounds-checked and the special INDIRECT_SYMBOL_LOCAL/ABS entries visible.
Offsets are relative to the slice (``base``) in a fat file. The load-command
walk here is also what ``macho`` uses to refuse corrupt files before LIEF.
"""
from __future__ import annotations

import struct

LC_SEGMENT, LC_SEGMENT_64, LC_SYMTAB, LC_DYSYMTAB = 0x1, 0x19, 0x2, 0xB
INDIRECT_SYMBOL_LOCAL, INDIRECT_SYMBOL_ABS = 0x80000000, 0x40000000


class LoadCommandError(ValueError):
    """A load command that runs past sizeofcmds (the message says where)."""


def header(data: bytes, base: int = 0) -> tuple[str, bool, int, int, int]:
    """``(byte order, 64-bit, ncmds, sizeofcmds, header size)`` of a thin Mach-O at ``base``."""
    magic = data[base:base + 4]
    is64 = magic in (b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
    order = "<" if magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe") else ">"
    ncmds, sizeofcmds = struct.unpack_from(order + "II", data, base + 16)
    return order, is64, ncmds, sizeofcmds, 32 if is64 else 28


def load_commands(data: bytes, base: int = 0):
    """Yield ``(order, is64, cmd, offset, size)`` per load command, bounds-checked."""
    order, is64, ncmds, sizeofcmds, hdr = header(data, base)
    pos, end = base + hdr, base + hdr + sizeofcmds
    for _ in range(ncmds):
        if pos + 8 > end:
            raise LoadCommandError(f"load commands overrun sizeofcmds at offset {pos}")
        cmd, size = struct.unpack_from(order + "II", data, pos)
        if size < 8 or pos + size > end:
            raise LoadCommandError(f"load command at offset {pos} has size {size}")
        yield order, is64, cmd, pos, size
        pos += size


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def section_records(data: bytes, base: int = 0) -> list[dict]:
    out = []
    for order, _is64, cmd, pos, size in load_commands(data, base):
        if cmd == LC_SEGMENT_64:
            nsects = struct.unpack_from(order + "I", data, pos + 64)[0]
            at, rec = pos + 72, 80
            layout = order + "16s16sQQIIIIIII"
        elif cmd == LC_SEGMENT:
            nsects = struct.unpack_from(order + "I", data, pos + 48)[0]
            at, rec = pos + 56, 68
            layout = order + "16s16sIIIIIIIII"
        else:
            continue
        for i in range(nsects):
            if at + (i + 1) * rec > pos + size:
                break
            sect, seg, addr, sz, off, _align, _reloff, _nreloc, flags, r1, r2 = struct.unpack_from(
                layout, data, at + i * rec)[:11]
            out.append({"sectname": _name(sect), "segname": _name(seg), "addr": addr, "size": sz,
                        "offset": off, "flags": flags, "reserved1": r1, "reserved2": r2})
    return out


def _tables(data: bytes, base: int) -> tuple[tuple | None, tuple | None]:
    symtab = dysymtab = None
    order = header(data, base)[0]
    for _order, _is64, cmd, pos, size in load_commands(data, base):
        if cmd == LC_SYMTAB and size >= 24:
            symtab = struct.unpack_from(order + "IIII", data, pos + 8)
        elif cmd == LC_DYSYMTAB and size >= 64:
            dysymtab = struct.unpack_from(order + "II", data, pos + 56)
    return symtab, dysymtab


# Section types whose records index the indirect table through reserved1
S_NON_LAZY_SYMBOL_POINTERS, S_LAZY_SYMBOL_POINTERS, S_SYMBOL_STUBS = 0x6, 0x7, 0x8
S_LAZY_DYLIB_SYMBOL_POINTERS, S_THREAD_LOCAL_VARIABLE_POINTERS = 0x10, 0x14
INDIRECT_SECTION_TYPES = (S_NON_LAZY_SYMBOL_POINTERS, S_LAZY_SYMBOL_POINTERS, S_SYMBOL_STUBS,
                          S_LAZY_DYLIB_SYMBOL_POINTERS, S_THREAD_LOCAL_VARIABLE_POINTERS)


def indirect_spans(records: list[dict], data: bytes, base: int = 0) -> dict[int, tuple[int, str | None]]:
    """Position in ``records`` -> (how many indirect entries the section owns, the
    section whose entries come next). The table is shared in reserved1 order, so a
    section owns the entries up to the next section's first (or the table's end):
    what it may claim whatever its size and reserved2 say."""
    dysymtab = _tables(data, base)[1]
    total = min(dysymtab[1], max(len(data) - base - dysymtab[0], 0) // 4) if dysymtab else 0  # what the file holds
    users = sorted((r["reserved1"], n) for n, r in enumerate(records)
                   if r["flags"] & 0xFF in INDIRECT_SECTION_TYPES and r["size"])
    out = {}
    for k, (first, n) in enumerate(users):
        later = [(f, m) for f, m in users[k + 1:] if f > first]
        if later:
            out[n] = (later[0][0] - first, f"{records[later[0][1]]['segname']},{records[later[0][1]]['sectname']}")
        else:
            out[n] = (max(total - first, 0), None)
    return out


def indirect_symbols(path: str, data: bytes, base: int = 0) -> dict[int, str]:
    """Indirect table index -> symbol name (or ``<local>`` / ``<absolute>``)."""
    order, is64 = header(data, base)[:2]
    symtab, dysymtab = _tables(data, base)
    if symtab is None or dysymtab is None:
        return {}
    symoff, nsyms, stroff, strsize = symtab
    indoff, nind = dysymtab
    nlist = 16 if is64 else 12
    out: dict[int, str] = {}
    strings = data[base + stroff:base + stroff + strsize]
    for i in range(nind):
        at = base + indoff + 4 * i
        if at + 4 > len(data):
            break
        idx = struct.unpack_from(order + "I", data, at)[0]
        if idx & INDIRECT_SYMBOL_LOCAL:
            out[i] = "<local>"
            continue
        if idx & INDIRECT_SYMBOL_ABS:
            out[i] = "<absolute>"
            continue
        if idx >= nsyms:
            continue
        sat = base + symoff + idx * nlist
        if sat + 4 > len(data):
            continue
        strx = struct.unpack_from(order + "I", data, sat)[0]
        if strx < len(strings):
            end = strings.find(b"\0", strx)
            out[i] = strings[strx:end if end >= 0 else len(strings)].decode("utf-8", "replace")
    return out
