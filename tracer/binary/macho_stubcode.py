"""Which pointer each Mach-O stub jumps through, read from its instructions.

A stub section's ``reserved2`` says how long each stub is, and tools that list
stubs (otool -Iv, lldb, llvm-objdump --indirect-symbols) cut the section by it
and name the pieces from the indirect symbol table. Go's linker writes 6 there
on every architecture (cmd/link/internal/ld/macho.go), right for x86_64's
``jmp *disp(%rip)`` and half of arm64's 12-byte ``adrp/ldr/br``, so that
reading puts every name on the wrong address. The code itself is the truth:
the stubs are decoded here, and the name of each is the name of the pointer it
loads. Patterns, from Apple's ld (ld64 / ld-prime) and Go's linker:

* x86_64: ``ff 25 disp32`` — jmp *disp(%rip), 6 bytes (i386: ``ff 25 abs32``);
* arm64: ``adrp xN, page; ldr xM, [xN, #off]; br xM`` — 12 bytes (Apple's ld
  uses x16 for both, Go's x16 then x17), or ``nop; ldr x16, literal; br x16``
  (ld64's form for a pointer within 1 MB).
"""
from __future__ import annotations

import struct

NOP = 0xD503201F


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _arm64(addr: int, blob: bytes, i: int) -> int | None:
    """The pointer a 12-byte arm64 stub at ``blob[i:]`` (address ``addr``) loads, or None."""
    if i + 12 > len(blob):
        return None
    w0, w1, w2 = struct.unpack_from("<III", blob, i)
    if w2 & 0xFFFFFC1F != 0xD61F0000:  # br xM
        return None
    target_reg = (w2 >> 5) & 31
    if w0 & 0x9F000000 == 0x90000000:  # adrp xN, page
        page = _signed((((w0 >> 5) & 0x7FFFF) << 2) | ((w0 >> 29) & 3), 21) << 12
        base_reg = w0 & 31
        # ldr xM, [xN, #imm12 * 8]
        if w1 & 0xFFC00000 == 0xF9400000 and (w1 >> 5) & 31 == base_reg and w1 & 31 == target_reg:
            return (addr & ~0xFFF) + page + ((w1 >> 10) & 0xFFF) * 8
        return None
    if w0 == NOP and w1 & 0xFF000000 == 0x58000000 and w1 & 31 == target_reg:  # ldr xM, literal
        return addr + 4 + _signed((w1 >> 5) & 0x7FFFF, 19) * 4
    return None


def _x86(arch: str, addr: int, blob: bytes, i: int) -> int | None:
    if i + 6 > len(blob) or blob[i:i + 2] != b"\xff\x25":
        return None
    if arch == "x86_64":
        return (addr + 6 + struct.unpack_from("<i", blob, i + 2)[0]) & 0xFFFFFFFFFFFFFFFF
    return struct.unpack_from("<I", blob, i + 2)[0]


STUB_SIZE = {"x86_64": 6, "i386": 6, "arm64": 12, "arm64e": 12}
PATTERN = {"x86_64": "jmp *disp(%rip)", "i386": "jmp *abs32", "arm64": "adrp/ldr/br", "arm64e": "adrp/ldr/br"}


def decode(arch: str, addr: int, blob: bytes) -> list[tuple[int, int | None]] | None:
    """``(offset, pointer or None)`` of every stub in a section at ``addr``, cut
    by the length its architecture's stubs have; None when the first one is not
    a stub this module knows (the caller then falls back on ``reserved2``)."""
    size = STUB_SIZE.get(arch)
    if size is None:
        return None

    def one(i: int) -> int | None:
        return _arm64(addr + i, blob, i) if size == 12 else _x86(arch, addr + i, blob, i)

    if not blob or one(0) is None:
        return None
    return [(i, one(i)) for i in range(0, len(blob) - size + 1, size)]
