"""The format-neutral picture of a binary that inspect, stubs and aslr share.

ELF and Mach-O readers both fill these, so commands, JSON and tests see one
shape. Addresses are link-time (as in the file); the loader adds the slide.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Segment:
    name: str  # ELF: "LOAD[0]" etc.; Mach-O: "__TEXT"
    vmaddr: int
    vmsize: int
    fileoff: int
    filesize: int
    prot: str  # "r-x"


@dataclass
class ImportSlot:
    """One pointer-sized slot the loader fills with a symbol's address."""

    symbol: str
    library: str | None  # ELF: from symbol versioning when present; Mach-O: the bind's dylib
    address: int  # link-time address of the slot
    section: str | None
    mode: str  # "eager" (bound at load) | "lazy" (bound on first call)
    reloc: str  # R_X86_64_JUMP_SLOT, BIND_TYPE_POINTER, DYLD_CHAINED_PTR_64 ...
    version: str | None = None
    weak: bool = False


@dataclass
class Section:
    name: str  # Mach-O: "__DATA_CONST,__got"
    addr: int
    size: int
    offset: int  # file offset (0 for zero-fill)
    kind: str = ""  # Mach-O section type, ELF sh_type


@dataclass
class Library:
    name: str
    kind: str  # needed | weak | reexport | lazy | upward


@dataclass
class Image:
    path: str
    format: str  # "ELF" | "Mach-O"
    arch: str  # gotrace's names: x86_64, arm64, i386, arm, riscv64, ppc64le, s390x ...
    file_type: str  # executable | shared-object | relocatable | core | dylib | bundle ...
    pie: bool
    bits: int
    endian: str
    interpreter: str | None = None
    entry: int | None = None
    libraries: list[Library] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    uuid: str | None = None  # Mach-O LC_UUID / ELF GNU build-id (hex)
    code_signature: bool = False
    bind_now: bool = False  # ELF DF_BIND_NOW/DF_1_NOW; Mach-O: always (dyld binds at load)
    imports: list[ImportSlot] = field(default_factory=list)
    symbols: int = 0  # entries in the static symbol table (.symtab / LC_SYMTAB)
    dynamic_symbols: int = 0  # ELF .dynsym entries: what a stripped library still exports and imports
    go: dict | None = None  # Go build info: version, path, mod, settings
    slices: list[str] = field(default_factory=list)  # fat Mach-O: every slice's arch
    slice_offset: int = 0  # fat Mach-O: where the chosen slice starts in the file
    notes: list[str] = field(default_factory=list)  # what the reader could not read, and why

    @property
    def link_base(self) -> int | None:
        """The link-time base: ELF's first PT_LOAD page, Mach-O's __TEXT vmaddr."""
        if self.format == "Mach-O":
            for s in self.segments:
                if s.name == "__TEXT":
                    return s.vmaddr
            return None
        loads = [s for s in self.segments if s.name.startswith("LOAD")]
        return loads[0].vmaddr & ~0xFFF if loads else None

    def segment_of(self, addr: int) -> Segment | None:
        for s in self.segments:
            if s.vmaddr <= addr < s.vmaddr + max(s.vmsize, 1):
                return s
        return None

    def section_of(self, addr: int) -> Section | None:
        best = None
        for s in self.sections:
            if s.addr and s.addr <= addr < s.addr + s.size:
                if best is None or s.size < best.size:
                    best = s
        return best

    def to_dict(self) -> dict:
        d = asdict(self)
        d["link_base"] = self.link_base
        return d
