"""The ELF constants inspect prints: relocation types as ``readelf -W`` spells
them, section types by their elf.h names (SHT_GNU_versym, which readelf shortens
to VERSYM).

Kept here, not taken from pyelftools, for two reasons: importing pyelftools'
enums costs ~30 ms (it loads its construct library), which is most of what
``readelf`` takes on a whole small library; and pyelftools misnames some
AArch64 TLS relocations (1031 is R_AARCH64_TLSDESC in glibc's elf.h and in
readelf, not R_AARCH64_TLS_DTPREL32). Relocation types are the ones a
dynamic loader processes; any other falls back to pyelftools' full tables.
"""
from __future__ import annotations

E_TYPES = {1: "relocatable", 2: "executable", 3: "shared-object", 4: "core"}

P_TYPES = {0: "NULL", 1: "LOAD", 2: "DYNAMIC", 3: "INTERP", 4: "NOTE", 5: "SHLIB", 6: "PHDR", 7: "TLS",
           0x6474E550: "GNU_EH_FRAME", 0x6474E551: "GNU_STACK", 0x6474E552: "GNU_RELRO",
           0x6474E553: "GNU_PROPERTY"}

SH_TYPES = {0: "SHT_NULL", 1: "SHT_PROGBITS", 2: "SHT_SYMTAB", 3: "SHT_STRTAB", 4: "SHT_RELA", 5: "SHT_HASH",
            6: "SHT_DYNAMIC", 7: "SHT_NOTE", 8: "SHT_NOBITS", 9: "SHT_REL", 10: "SHT_SHLIB", 11: "SHT_DYNSYM",
            14: "SHT_INIT_ARRAY", 15: "SHT_FINI_ARRAY", 16: "SHT_PREINIT_ARRAY", 17: "SHT_GROUP",
            18: "SHT_SYMTAB_SHNDX", 19: "SHT_RELR", 0x6FFFFFF5: "SHT_GNU_ATTRIBUTES", 0x6FFFFFF6: "SHT_GNU_HASH",
            0x6FFFFFF7: "SHT_GNU_LIBLIST", 0x6FFFFFFD: "SHT_GNU_verdef", 0x6FFFFFFE: "SHT_GNU_verneed",
            0x6FFFFFFF: "SHT_GNU_versym", 0x6FFF4C03: "SHT_LLVM_ADDRSIG"}
SH_TYPES_BY_MACHINE = {62: {0x70000001: "SHT_AMD64_UNWIND"}, 40: {0x70000001: "SHT_ARM_EXIDX",
                                                                   0x70000003: "SHT_ARM_ATTRIBUTES"},
                       183: {0x70000003: "SHT_AARCH64_ATTRIBUTES"}}

DYNAMIC_RELOCS = {
    62: {1: "R_X86_64_64", 2: "R_X86_64_PC32", 5: "R_X86_64_COPY", 6: "R_X86_64_GLOB_DAT",
         7: "R_X86_64_JUMP_SLOT", 8: "R_X86_64_RELATIVE", 10: "R_X86_64_32", 11: "R_X86_64_32S",
         16: "R_X86_64_DTPMOD64", 17: "R_X86_64_DTPOFF64", 18: "R_X86_64_TPOFF64", 24: "R_X86_64_PC64",
         32: "R_X86_64_SIZE32", 33: "R_X86_64_SIZE64",  # st_size of a looked-up symbol; pyelftools has neither
         36: "R_X86_64_TLSDESC", 37: "R_X86_64_IRELATIVE"},
    183: {257: "R_AARCH64_ABS64", 258: "R_AARCH64_ABS32", 1024: "R_AARCH64_COPY", 1025: "R_AARCH64_GLOB_DAT",
          1026: "R_AARCH64_JUMP_SLOT", 1027: "R_AARCH64_RELATIVE", 1028: "R_AARCH64_TLS_DTPMOD64",
          1029: "R_AARCH64_TLS_DTPREL64", 1030: "R_AARCH64_TLS_TPREL64", 1031: "R_AARCH64_TLSDESC",
          1032: "R_AARCH64_IRELATIVE"},
    3: {1: "R_386_32", 2: "R_386_PC32", 5: "R_386_COPY", 6: "R_386_GLOB_DAT", 7: "R_386_JUMP_SLOT",
        8: "R_386_RELATIVE", 14: "R_386_TLS_TPOFF", 35: "R_386_TLS_DTPMOD32", 36: "R_386_TLS_DTPOFF32",
        37: "R_386_TLS_TPOFF32", 41: "R_386_TLS_DESC", 42: "R_386_IRELATIVE"},
    40: {2: "R_ARM_ABS32", 17: "R_ARM_TLS_DTPMOD32", 18: "R_ARM_TLS_DTPOFF32", 19: "R_ARM_TLS_TPOFF32",
         20: "R_ARM_COPY", 21: "R_ARM_GLOB_DAT", 22: "R_ARM_JUMP_SLOT", 23: "R_ARM_RELATIVE",
         160: "R_ARM_IRELATIVE"},
    8: {0: "R_MIPS_NONE", 2: "R_MIPS_32", 3: "R_MIPS_REL32", 18: "R_MIPS_64", 38: "R_MIPS_TLS_DTPMOD32",
        39: "R_MIPS_TLS_DTPREL32", 40: "R_MIPS_TLS_DTPMOD64", 41: "R_MIPS_TLS_DTPREL64", 47: "R_MIPS_TLS_TPREL32",
        48: "R_MIPS_TLS_TPREL64", 51: "R_MIPS_GLOB_DAT", 126: "R_MIPS_COPY", 127: "R_MIPS_JUMP_SLOT"},
    21: {1: "R_PPC64_ADDR32", 19: "R_PPC64_COPY", 20: "R_PPC64_GLOB_DAT", 21: "R_PPC64_JMP_SLOT",
         22: "R_PPC64_RELATIVE", 26: "R_PPC64_REL32", 38: "R_PPC64_ADDR64", 68: "R_PPC64_DTPMOD64",
         73: "R_PPC64_TPREL64", 78: "R_PPC64_DTPREL64", 248: "R_PPC64_IRELATIVE"},
    20: {1: "R_PPC_ADDR32", 19: "R_PPC_COPY", 20: "R_PPC_GLOB_DAT", 21: "R_PPC_JMP_SLOT", 22: "R_PPC_RELATIVE",
         26: "R_PPC_REL32", 68: "R_PPC_DTPMOD32", 73: "R_PPC_TPREL32", 78: "R_PPC_DTPREL32",
         248: "R_PPC_IRELATIVE"},
    22: {4: "R_390_32", 9: "R_390_COPY", 10: "R_390_GLOB_DAT", 11: "R_390_JMP_SLOT", 12: "R_390_RELATIVE",
         22: "R_390_64", 54: "R_390_TLS_DTPMOD", 55: "R_390_TLS_DTPOFF", 56: "R_390_TLS_TPOFF",
         61: "R_390_IRELATIVE"},
    243: {0: "R_RISCV_NONE", 1: "R_RISCV_32", 2: "R_RISCV_64", 3: "R_RISCV_RELATIVE", 4: "R_RISCV_COPY",
          5: "R_RISCV_JUMP_SLOT", 6: "R_RISCV_TLS_DTPMOD32", 7: "R_RISCV_TLS_DTPMOD64", 8: "R_RISCV_TLS_DTPREL32",
          9: "R_RISCV_TLS_DTPREL64", 10: "R_RISCV_TLS_TPREL32", 11: "R_RISCV_TLS_TPREL64",
          12: "R_RISCV_TLSDESC", 58: "R_RISCV_IRELATIVE"},
    258: {0: "R_LARCH_NONE", 1: "R_LARCH_32", 2: "R_LARCH_64", 3: "R_LARCH_RELATIVE", 4: "R_LARCH_COPY",
          5: "R_LARCH_JUMP_SLOT", 6: "R_LARCH_TLS_DTPMOD32", 7: "R_LARCH_TLS_DTPMOD64", 8: "R_LARCH_TLS_DTPREL32",
          9: "R_LARCH_TLS_DTPREL64", 10: "R_LARCH_TLS_TPREL32", 11: "R_LARCH_TLS_TPREL64", 12: "R_LARCH_IRELATIVE",
          13: "R_LARCH_TLS_DESC32", 14: "R_LARCH_TLS_DESC64"},
    # SPARC (EM_SPARC 2, EM_SPARC32PLUS 18, EM_SPARCV9 43 share one set): Solaris' and glibc's dynamic ones
    2: {0: "R_SPARC_NONE", 3: "R_SPARC_32", 19: "R_SPARC_COPY", 20: "R_SPARC_GLOB_DAT", 21: "R_SPARC_JMP_SLOT",
        22: "R_SPARC_RELATIVE", 23: "R_SPARC_UA32", 32: "R_SPARC_64", 54: "R_SPARC_UA64",
        74: "R_SPARC_TLS_DTPMOD32", 75: "R_SPARC_TLS_DTPMOD64", 76: "R_SPARC_TLS_DTPOFF32",
        77: "R_SPARC_TLS_DTPOFF64", 78: "R_SPARC_TLS_TPOFF32", 79: "R_SPARC_TLS_TPOFF64", 249: "R_SPARC_IRELATIVE"},
}
DYNAMIC_RELOCS[18] = DYNAMIC_RELOCS[43] = DYNAMIC_RELOCS[2]
# the lazy-binding (PLT slot) relocation type per machine: readelf spells it JUMP_SLOT or JMP_SLOT
JUMP_SLOT = {62: 7, 183: 1026, 3: 7, 40: 22, 243: 5, 8: 127, 21: 21, 20: 21, 22: 11, 258: 5, 2: 21, 18: 21, 43: 21}
# pyelftools' enum for machines without a table above (imported only then)
_PYELFTOOLS_RELOC_ENUMS = {21: "ENUM_RELOC_TYPE_PPC64", 20: "ENUM_RELOC_TYPE_PPC", 22: "ENUM_RELOC_TYPE_S390X",
                           8: "ENUM_RELOC_TYPE_MIPS", 258: "ENUM_RELOC_TYPE_LOONGARCH"}


def reloc_namer(machine: int):
    """A function type -> name for this machine's relocations."""
    table = dict(DYNAMIC_RELOCS.get(machine, {}))
    fallback: dict[int, str] | None = None

    def one(rtype: int) -> str:
        nonlocal fallback
        found = table.get(rtype)
        if found:
            return found
        if fallback is None:
            fallback = _pyelftools_names(machine)
        return fallback.get(rtype, f"type {rtype}")

    def composed(rtype: int) -> str:
        # MIPS64: up to three types applied in turn (r_type, r_type2, r_type3: elf.c reads them
        # as type | type2 << 8 | type3 << 16, as glibc's ld.so does); readelf prints each, here
        # they are joined, the trailing R_MIPS_NONEs left out: R_MIPS_REL32/R_MIPS_64
        parts = [(rtype >> shift) & 0xFF for shift in (0, 8, 16)]
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return "/".join(one(p) for p in parts)

    return composed if machine == 8 else one


def _pyelftools_names(machine: int) -> dict[int, str]:
    from elftools.elf import enums  # ~30 ms: only for a relocation type named nowhere above

    attr = _PYELFTOOLS_RELOC_ENUMS.get(machine) or {62: "ENUM_RELOC_TYPE_x64", 183: "ENUM_RELOC_TYPE_AARCH64",
                                                     3: "ENUM_RELOC_TYPE_i386", 40: "ENUM_RELOC_TYPE_ARM"}.get(machine)
    table = getattr(enums, attr, {}) if attr else {}
    return {v: k for k, v in table.items() if isinstance(v, int)}


def section_type(sh_type: int, machine: int) -> str:
    return SH_TYPES.get(sh_type) or SH_TYPES_BY_MACHINE.get(machine, {}).get(sh_type) or f"0x{sh_type:x}"


def segment_type(p_type: int) -> str:
    return P_TYPES.get(p_type) or f"0x{p_type:x}"
