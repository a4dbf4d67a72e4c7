"""One architecture vocabulary: every room names a CPU the same way.

gotrace's names are the ones `uname -m` and Apple use where they agree, and
Apple's where they do not: ``x86_64``, ``arm64`` (never aarch64), ``i386``,
``arm``, ``riscv64``, ``ppc64le``, ``s390x``, ``loong64`` … Everything that
spells a CPU otherwise — ELF's e_machine, Go's GOARCH, a compiler triple, a
``.tbd`` target, `uname -m` on Linux — is translated here and nowhere else,
so doctor, libcheck, inspect and translated runs can never disagree about
what the host is.

Kept free of imports beyond ``os``: ``gotrace inspect --json`` loads it.
"""
from __future__ import annotations

import os

# other spellings -> gotrace's name (gotrace's names map to themselves)
ALIASES = {
    "x86_64": "x86_64", "amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64",
    "arm64": "arm64", "aarch64": "arm64", "arm64e": "arm64",
    "i386": "i386", "i486": "i386", "i586": "i386", "i686": "i386", "386": "i386", "x86": "i386",
    "arm": "arm", "armv6l": "arm", "armv7l": "arm", "armv7": "arm", "armhf": "arm",
    "riscv64": "riscv64", "ppc64le": "ppc64le", "powerpc64le": "ppc64le", "ppc64": "ppc64",
    "powerpc64": "ppc64", "ppc": "ppc", "powerpc": "ppc", "s390x": "s390x", "s390": "s390", "loong64": "loong64",
    "loongarch64": "loong64", "mips": "mips", "mipsle": "mipsle", "mipsel": "mipsle", "mips64": "mips64",
    "mips64le": "mips64le", "mips64el": "mips64le", "sparc": "sparc", "sparcv8plus": "sparcv8plus",
    "sparc32plus": "sparcv8plus", "sparcv9": "sparcv9", "sparc64": "sparcv9", "ia64": "ia64", "arm64_32": "arm64_32",
}

# ELF e_machine -> name; riscv, ppc64, s390 and mips are refined by class and byte order (elf_arch),
# MIPS as Go spells it (mips, mipsle, mips64, mips64le); EM_SPARC32PLUS (18) is Solaris' sparcv8plus:
# 32-bit SPARC code that needs a V9 CPU
ELF_MACHINES = {62: "x86_64", 183: "arm64", 3: "i386", 40: "arm", 243: "riscv", 21: "ppc64", 20: "ppc",
                22: "s390x", 8: "mips", 258: "loong64", 2: "sparc", 18: "sparcv8plus", 43: "sparcv9", 50: "ia64"}
E_MACHINE = {"x86_64": 62, "arm64": 183, "i386": 3, "arm": 40, "riscv64": 243, "ppc64le": 21, "ppc64": 21,
             "ppc": 20, "s390x": 22, "s390": 22, "mips": 8, "mipsle": 8, "mips64": 8, "mips64le": 8, "loong64": 258,
             "sparc": 2, "sparcv8plus": 18, "sparcv9": 43, "ia64": 50}

# name -> Go's GOARCH (names Go spells the same way are left out)
_GOARCH = {"x86_64": "amd64", "i386": "386"}

# Mach-O CPU types as LIEF names them -> name
MACHO_CPUS = {"X86_64": "x86_64", "ARM64": "arm64", "X86": "i386", "ARM": "arm", "POWERPC": "ppc",
              "POWERPC64": "ppc64", "ARM64_32": "arm64_32"}


def canonical(name: str | None) -> str | None:
    """gotrace's name for any spelling of a CPU (GOARCH, uname -m, a triple's
    first field, a .tbd target), or None when it is not one."""
    if not name:
        return None
    n = name.strip().lower()
    return ALIASES.get(n) or ALIASES.get(n.split("-", 1)[0])


def host_arch() -> str:
    """The CPU this process runs on, in gotrace's names (a translated
    process sees the architecture it is translated to)."""
    machine = os.uname().machine
    return canonical(machine) or machine.lower()


# a 64-bit CPU's own 32-bit code, which its kernel runs natively (x86_64's IA-32 compatibility mode:
# `gcc -m32` and GOARCH=386 programs; arm64 kernels with AArch32 at EL0: armhf programs) — no translator
COMPAT = {"x86_64": frozenset({"i386"}), "arm64": frozenset({"arm"})}


def host_format() -> str:
    """The executable format this host's loader runs: Mach-O on macOS, ELF elsewhere."""
    return "Mach-O" if os.uname().sysname == "Darwin" else "ELF"


def elf_arch(machine: int, bits: int = 64, little: bool = True) -> str:
    """The name for an ELF e_machine (``machine-N`` when unknown)."""
    name = ELF_MACHINES.get(machine)
    if name is None:
        return f"machine-{machine}"
    if name == "riscv":
        return f"riscv{bits}"
    if name == "ppc64" and little:
        return "ppc64le"
    if name == "s390x" and bits == 32:
        return "s390"
    if name == "mips":
        return "mips" + ("64" if bits == 64 else "") + ("le" if little else "")
    return name


def elf_header_arch(head: bytes) -> str | None:
    """The name for the ELF file whose first 20 bytes are ``head`` (class, byte
    order and e_machine from its header), None if it is not ELF."""
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    little = head[5] == 1
    return elf_arch(int.from_bytes(head[18:20], "little" if little else "big"), 64 if head[4] == 2 else 32, little)


def goarch(name: str) -> str:
    """Go's GOARCH for an architecture name (amd64 for x86_64, 386 for i386)."""
    return _GOARCH.get(name, name)


def from_goarch(value: str) -> str:
    """gotrace's name for a GOARCH value (x86_64 for amd64)."""
    return canonical(value) or value
