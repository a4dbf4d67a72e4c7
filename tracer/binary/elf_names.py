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
}
# the lazy-binding (PLT slot) relocation type per machine
JUMP_SLOT = {62: 7, 183: 1026, 3: 7, 40: 22, 243: 5}
# pyelftools' enum for machines without a table above (imported only then)
_PYELFTOOLS_RELOC_ENUMS = {21: "ENUM_RELOC_TYPE_PPC64", 22: "ENUM_RELOC_TYPE_S390X", 8: "ENUM_RELOC_TYPE_MIPS"}


def reloc_namer(machine: int):
    """A function type -> name for this machine's relocations."""
    table = dict(DYNAMIC_RELOCS.get(machine, {}))
    fallback: dict[int, str] | None = None

    def name(rtype: int) -> str:
        nonlocal fallback
        found = table.get(rtype)
        if found:
            return found
        if fallback is None:
            fallback = _pyelftools_names(machine)
        return fallback.get(rtype, f"type {rtype}")

    return name


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
