"""Where each entry of an ELF stub section starts, and which slot the loader fills for it.

A PLT's layout belongs to the architecture and the linker, and the file does not say
it: GNU ld writes sh_entsize 4 for ARM's and i386's ``.plt`` (one instruction), 0 for
arm64's, 16 or 8 for x86-64's ``.plt.got`` depending on ``-fcf-protection``; ARM's
header is 20 bytes from GNU ld and 32 from lld, its entries 12 or 16. So each entry is
found by decoding its instructions, and named by the GOT slot its code loads (on SPARC
the relocation patches the entry itself; a MIPS lazy stub passes its dynamic symbol's
index instead). What is decoded here, each checked in tests/test_elf_corpus.py against
objdump's ``sym@plt`` labels or llvm-objdump's disassembly:

- x86-64, i386: ``.plt`` (a 16-byte header, 16-byte entries; with IBT each lazy entry only
  pushes its relocation index), ``.plt.sec`` (16), ``.plt.got`` (8, or 16 with IBT);
- arm64: a 32-byte header, entries of 16 bytes or 24 with BTI or PAC;
- arm (little-endian): GNU ld's 20-byte header, lld's 32, entries of 12 or 16 bytes (with
  Thumb interworking stubs before some);
- s390x: 32-byte header and entries; riscv and loong64: a 32-byte header, 16-byte entries;
- SPARC: four reserved entries, then 12-byte (32-bit) or 32-byte (64-bit) entries;
- MIPS: the lazy stubs of ``.MIPS.stubs``, and a non-PIC executable's ``.plt`` (a 32-byte
  header, 16-byte entries).

Anything else (microMIPS's compressed PLT, PowerPC's ``.glink``, an unknown machine or an
entry that matches none of these) is said so in one line, not cut by a guess.
"""
from __future__ import annotations

import struct
from typing import NamedTuple


class Entry(NamedTuple):
    offset: int  # from the section's start
    size: int
    kind: str  # header | entry | padding
    target: int | None = None  # the slot the entry jumps through (SPARC: the entry itself)
    reloc_index: int | None = None  # an IBT lazy entry's pushed relocation index
    symbol_index: int | None = None  # a MIPS lazy stub's dynamic symbol index


class Layout(NamedTuple):
    entries: list[Entry]
    note: str | None = None  # what is not decoded, and why


def layout(arch: str, name: str, addr: int, blob: bytes, entsize: int, got_base: int | None,
           little: bool) -> Layout:
    """The entries of stub section ``name`` (bytes ``blob`` at ``addr``) of an ``arch`` file;
    ``got_base`` is _GLOBAL_OFFSET_TABLE_ (i386's PIC entries address slots from it)."""
    if arch in ("x86_64", "i386"):
        return _x86(arch, name, addr, blob, entsize, got_base)
    if name == ".MIPS.stubs" and arch.startswith("mips"):
        return _mips_stubs(blob, little)
    if name != ".plt":
        return Layout([], f"{name} of {arch} is not decoded")
    if arch == "arm64":  # A64 instructions are little-endian in big-endian files too
        return _arm64(addr, blob, entsize)
    if arch == "arm" and little:
        return _arm(addr, blob)
    if arch == "s390x":
        return _fixed(blob, 32, 32, lambda off, chunk: _s390x_target(addr + off, chunk), arch)
    if arch in ("riscv64", "riscv32"):
        return _fixed(blob, 32, 16, lambda off, chunk: _riscv_target(addr + off, chunk, arch == "riscv64"), arch)
    if arch == "loong64":
        return _fixed(blob, 32, 16, lambda off, chunk: _loong_target(addr + off, chunk), arch)
    if arch in ("sparc", "sparcv8plus", "sparcv9"):
        return _sparc(arch, addr, blob)
    if arch.startswith("mips"):
        return _fixed(blob, 32, 16, lambda off, chunk: _mips_plt_target(chunk, little), arch)
    if arch.startswith("ppc"):
        return Layout([], f"{arch}'s .plt holding code (the old BSS PLT) is not decoded")
    return Layout([], f"the PLT layout of {arch} is not known to gotrace: its entries are not cut")


def _fixed(blob: bytes, header: int, size: int, target, arch: str) -> Layout:
    """A header, then entries of one size, each decoded by ``target(offset, chunk)``."""
    if len(blob) < header:
        return Layout([], f"the section is shorter than {arch}'s {header}-byte PLT header: not decoded")
    out = [Entry(0, header, "header")]
    out += [Entry(off, size, "entry", target(off, blob[off:off + size]))
            for off in range(header, len(blob) - size + 1, size)]
    return _finish(out, blob, arch)


def _finish(out: list[Entry], blob: bytes, arch: str) -> Layout:
    end = out[-1].offset + out[-1].size if out else 0
    if end < len(blob):
        out.append(Entry(end, len(blob) - end, "padding"))
    bad = sum(1 for e in out if e.kind == "entry" and e.target is None and e.reloc_index is None
              and e.symbol_index is None)
    note = None
    if bad:
        total = sum(1 for e in out if e.kind == "entry")
        note = f"{bad} of {total} entries do not match {arch}'s PLT layout: those are not decoded"
    return Layout(out, note)


# ---------------------------------------------------------------- x86

ENDBR = (b"\xf3\x0f\x1e\xfa", b"\xf3\x0f\x1e\xfb")  # endbr64, endbr32


def _x86(arch: str, name: str, addr: int, blob: bytes, entsize: int, got_base: int | None) -> Layout:
    if name == ".plt":
        header, size = 16, 16
    elif name == ".plt.sec":
        header, size = 0, 16
    elif name == ".plt.got":
        # GNU ld sets sh_entsize here (8, or 16 with IBT: endbr64; bnd jmp *slot; nop)
        header, size = 0, entsize if entsize in (8, 16) else (16 if blob[:4] in ENDBR else 8)
    else:
        return Layout([], f"{name} of {arch} is not decoded")
    if len(blob) < header:
        return Layout([], f"the section is shorter than {arch}'s 16-byte PLT header: not decoded")
    out = [Entry(0, header, "header")] if header else []
    for off in range(header, len(blob) - size + 1, size):
        target, index = _x86_entry(arch, addr + off, blob[off:off + size], got_base)
        out.append(Entry(off, size, "entry", target, index))
    return _finish(out, blob, arch)


def _x86_entry(arch: str, addr: int, chunk: bytes, got_base: int | None) -> tuple[int | None, int | None]:
    """(slot jumped through, None) or, for an IBT lazy entry (endbr; push $n; jmp PLT0), (None, n)."""
    at = 4 if chunk[:4] in ENDBR else 0
    if chunk[at:at + 1] == b"\xf2":  # bnd prefix (MPX)
        at += 1
    op = chunk[at:at + 2]
    if len(chunk) >= at + 6:
        disp = struct.unpack_from("<i", chunk, at + 2)[0]
        if op == b"\xff\x25":  # jmp *disp(%rip) on x86-64, jmp *abs32 on i386
            return (addr + at + 6 + disp if arch == "x86_64" else disp & 0xFFFFFFFF), None
        if op == b"\xff\xa3" and arch == "i386" and got_base is not None:  # jmp *disp(%ebx)
            return (got_base + disp) & 0xFFFFFFFF, None
        if chunk[at:at + 1] == b"\x68" and at:  # IBT lazy entry: push $index
            index = struct.unpack_from("<I", chunk, at + 1)[0]
            return None, (index // 8 if arch == "i386" else index)  # i386 pushes a byte offset into .rel.plt
    return None, None


# ---------------------------------------------------------------- arm64, arm

BTI_C, AUTIA1716, AUTIB1716 = 0xD503245F, 0xD503219F, 0xD50321DF


def _arm64(addr: int, blob: bytes, entsize: int) -> Layout:
    if len(blob) < 32:
        return Layout([], "the section is shorter than arm64's 32-byte PLT header: not decoded")
    if entsize in (16, 24):
        size = entsize
    else:  # BTI (bti c first) or PAC (autia1716 before br x17) entries are 24 bytes
        first = struct.unpack_from("<4I", blob, 32) if len(blob) >= 48 else (0, 0, 0, 0)
        size = 24 if first[0] == BTI_C or first[3] in (AUTIA1716, AUTIB1716) else 16
    return _fixed(blob, 32, size, lambda off, chunk: _arm64_target(addr + off, chunk), "arm64")


def _arm64_target(addr: int, chunk: bytes) -> int | None:
    """adrp x16, page; ldr x17, [x16, #off]: the slot is page + off."""
    for i in range(0, len(chunk) - 7, 4):
        adrp, ldr = struct.unpack_from("<II", chunk, i)
        if adrp & 0x9F00001F == 0x90000010 and ldr & 0xFFC003FF == 0xF9400211:
            immlo, immhi = (adrp >> 29) & 3, (adrp >> 5) & 0x7FFFF
            page = ((immhi << 2) | immlo) << 12
            if page & (1 << 32):
                page -= 1 << 33
            return (((addr + i) & ~0xFFF) + page + ((ldr >> 10) & 0xFFF) * 8) & 0xFFFFFFFFFFFFFFFF
    return None


ARM_ADD_IP_PC, ARM_ADD_IP_IP, ARM_LDR_PC_IP = 0xE28FC000, 0xE28CC000, 0xE5BCF000  # masks 0xFFFFF000
ARM_LDR_IP_PC4, ARM_ADD_IP_PC_IP, ARM_LDR_PC_IP0 = 0xE59FC004, 0xE08FC00C, 0xE59CF000  # lld's long entry
# bx pc; then nop (older binutils) or b .-2 (newer): a Thumb caller's way into the ARM entry after it
THUMB_STUBS = (0x46C04778, 0xE7FD4778)


def _rot_imm(word: int) -> int:
    imm, rot = word & 0xFF, ((word >> 8) & 0xF) * 2
    return ((imm >> rot) | (imm << (32 - rot))) & 0xFFFFFFFF if rot else imm


def _arm(addr: int, blob: bytes) -> Layout:
    """Entries found by their instructions: GNU ld's (add ip, pc; add ip, ip[; add ip, ip];
    ldr pc, [ip, #n]!), lld's (the same, padded to 16 bytes, or ldr ip, [pc, #4]; add ip, pc,
    ip; ldr pc, [ip]; .word), each optionally after a Thumb ``bx pc; nop``."""
    words = struct.unpack_from(f"<{len(blob) // 4}I", blob)
    starts: list[tuple[int, int | None]] = []  # (offset, slot)
    i = 0
    while i < len(words):
        at = i
        if words[i] in THUMB_STUBS and i + 1 < len(words):
            i += 1
        w = words[i]
        if w & 0xFFFFF000 == ARM_ADD_IP_PC:
            ip = addr + 4 * i + 8 + _rot_imm(w)
            j = i + 1
            while j < len(words) and words[j] & 0xFFFFF000 == ARM_ADD_IP_IP:
                ip += _rot_imm(words[j])
                j += 1
            if j < len(words) and words[j] & 0xFFFFF000 == ARM_LDR_PC_IP:
                starts.append((at, (ip + (words[j] & 0xFFF)) & 0xFFFFFFFF))
                i = j + 1
                continue
        elif w == ARM_LDR_IP_PC4 and i + 3 < len(words) and words[i + 1] == ARM_ADD_IP_PC_IP \
                and words[i + 2] == ARM_LDR_PC_IP0:
            starts.append((at, (addr + 4 * (i + 1) + 8 + words[i + 3]) & 0xFFFFFFFF))
            i += 4
            continue
        i = at + 1
    if not starts:
        return Layout([], "no ARM PLT entry (add ip, pc … ldr pc, [ip]) found: the section is not decoded")
    out = [Entry(0, 4 * starts[0][0], "header")] if starts[0][0] else []
    for n, (w, slot) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(words)
        out.append(Entry(4 * w, 4 * (end - w), "entry", slot))
    return _finish(out, blob, "arm")


# ---------------------------------------------------------------- s390x, RISC-V, LoongArch, SPARC, MIPS

def _s390x_target(addr: int, chunk: bytes) -> int | None:
    """larl %r1, slot (c0 10, then the halfword offset)."""
    if chunk[:2] != b"\xc0\x10" or len(chunk) < 6:
        return None
    return (addr + 2 * struct.unpack_from(">i", chunk, 2)[0]) & 0xFFFFFFFFFFFFFFFF


def _sext(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _riscv_target(addr: int, chunk: bytes, wide: bool) -> int | None:
    """auipc t3, hi; l{d,w} t3, lo(t3)."""
    if len(chunk) < 8:
        return None
    auipc, load = struct.unpack_from("<II", chunk)
    if auipc & 0xFFF != 0xE17 or load & 0xFFFFF != (0xE3E03 if wide else 0xE2E03):
        return None
    return (addr + _sext(auipc & 0xFFFFF000, 32) + _sext(load >> 20, 12)) & ((1 << (64 if wide else 32)) - 1)


def _loong_target(addr: int, chunk: bytes) -> int | None:
    """pcaddu12i $t3, hi; ld.d $t3, $t3, lo."""
    if len(chunk) < 8:
        return None
    pcadd, load = struct.unpack_from("<II", chunk)
    if pcadd >> 25 != 0b0001110 or pcadd & 0x1F != 15 or load >> 22 != 0x0A3 or load & 0x3FF != (15 << 5 | 15):
        return None
    return (addr + (_sext((pcadd >> 5) & 0xFFFFF, 20) << 12) + _sext((load >> 10) & 0xFFF, 12)) & 0xFFFFFFFFFFFFFFFF


def _sparc(arch: str, addr: int, blob: bytes) -> Layout:
    """Four reserved entries (.PLT0-.PLT3: ld.so's resolver call), then one per import; the
    R_SPARC_JMP_SLOT relocation names the entry itself, whose instructions ld.so rewrites."""
    size = 32 if arch == "sparcv9" else 12
    if (len(blob) - 4 * size) // size > 32768 and size == 32:
        return Layout([], "a SPARC V9 PLT of more than 32,768 entries (its far layout) is not decoded")
    return _fixed(blob, 4 * size, size, lambda off, chunk: addr + off, arch)


def _mips_plt_target(chunk: bytes, little: bool) -> int | None:
    """A non-PIC executable's PLT entry (GNU ld, lld): lui $15, %hi(slot); l[wd] $25, %lo(slot)($15);
    jr $25; [d]addiu $24, $15, %lo(slot). (microMIPS's and MIPS16's compressed entries are not these.)"""
    if len(chunk) < 8:
        return None
    lui, load = struct.unpack_from(("<" if little else ">") + "II", chunk)
    if lui >> 16 != 0x3C0F or load >> 16 not in (0x8DF9, 0xDDF9):
        return None
    return (_sext((lui & 0xFFFF) << 16, 32) + _sext(load & 0xFFFF, 16)) & 0xFFFFFFFFFFFFFFFF


STUB_LOAD = (0x8F998010, 0xDF998010)  # lw / ld t9, -0x7ff0(gp): GOT[0], ld.so's lazy resolver
STUB_INDEX = {0x2418: "addiu", 0x6418: "daddiu", 0x3418: "ori"}  # li t8, index (t8 from $zero)


def _mips_stubs(blob: bytes, little: bool) -> Layout:
    """binutils' lazy stubs: load GOT[0]; move t7, ra; jalr t9; li t8, index (lui t8 + ori t8
    when the index needs more than 15 bits): ld.so binds dynamic symbol ``index``."""
    words = struct.unpack_from(("<" if little else ">") + f"{len(blob) // 4}I", blob)
    starts = [i for i, w in enumerate(words) if w in STUB_LOAD]
    if not starts:
        return Layout([], "no MIPS lazy stub (lw t9, -0x7ff0(gp) …) found: the section is not decoded")
    out = [Entry(0, 4 * starts[0], "padding")] if starts[0] else []
    for n, w in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else min(len(words), w + 5)
        index = hi = None
        for k in range(w + 1, end):
            top = words[k] >> 16
            if top == 0x3C18:  # lui t8, hi
                hi = words[k] & 0x7FFF
            elif top == 0x3718 and hi is not None:  # ori t8, t8, lo
                index = hi << 16 | (words[k] & 0xFFFF)
                end = k + 1
                break
            elif top in STUB_INDEX:
                index = words[k] & 0xFFFF
                end = k + 1
                break
        out.append(Entry(4 * w, 4 * (end - w), "entry", None, None, index))
    return _finish(out, blob, "MIPS")
