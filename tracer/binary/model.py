"""The format-neutral picture of a binary that inspect, stubs and aslr share.

ELF and Mach-O readers both fill these, so commands, JSON and tests see one
shape. Addresses are link-time (as in the file); the loader adds the slide.

Plain records rather than dataclasses: the dataclasses module imports
``inspect`` (~12 ms), a third of what ``readelf`` takes on a whole library,
and ``gotrace inspect --json`` is measured against readelf.
"""
from __future__ import annotations

import bisect

_REQUIRED = object()
PAGE = 0x1000  # the mapping granule ELF link-time bases are aligned to


def elf_link_base(first_load_vaddr: int) -> int:
    """The link-time base of an ELF file: its first PT_LOAD's p_vaddr, page
    aligned — where the kernel and ld.so start its first mapping, so load
    base = link-time base + slide lines up with /proc/PID/maps. The one rule:
    inspect, aslr and bind's images table all use it."""
    return first_load_vaddr & ~(PAGE - 1)


class _Record:
    """Fields in declaration order, keyword or positional construction,
    equality and repr by field — what the dataclasses here were used for."""

    FIELDS: tuple[str, ...] = ()
    DEFAULTS: dict = {}  # a default, or ``list`` for a fresh empty list

    def __init__(self, *args, **kwargs):
        if len(args) > len(self.FIELDS):
            raise TypeError(f"{type(self).__name__} takes {len(self.FIELDS)} fields, got {len(args)}")
        values = dict(zip(self.FIELDS, args))
        for name in self.FIELDS[len(args):]:
            if name in kwargs:
                values[name] = kwargs.pop(name)
            else:
                default = self.DEFAULTS.get(name, _REQUIRED)
                if default is _REQUIRED:
                    raise TypeError(f"{type(self).__name__}: missing field {name!r}")
                values[name] = default() if default is list else default
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unknown field(s) {', '.join(kwargs)}")
        self.__dict__.update(values)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.FIELDS)

    __hash__ = None  # mutable, like a dataclass with eq

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.FIELDS)})"


class Segment(_Record):
    FIELDS = ("name",  # ELF: LOAD, DYNAMIC …; Mach-O: "__TEXT"
              "vmaddr", "vmsize", "fileoff", "filesize",
              "prot")  # "r-x"


class ImportSlot(_Record):
    """One pointer-sized slot the loader fills with a symbol's address."""

    FIELDS = ("symbol",
              "library",  # ELF: from symbol versioning when present; Mach-O: the bind's dylib
              "address",  # link-time address of the slot
              "section",
              "mode",  # "eager" (bound at load) | "lazy" (bound on first call)
              "reloc",  # R_X86_64_JUMP_SLOT, BIND_TYPE_POINTER, DYLD_CHAINED_PTR_64 ...
              "version", "weak")
    DEFAULTS = {"version": None, "weak": False}


class Section(_Record):
    FIELDS = ("name",  # Mach-O: "__DATA_CONST,__got"
              "addr", "size",
              "offset",  # file offset (0 for zero-fill)
              "kind")  # Mach-O section type, ELF sh_type
    DEFAULTS = {"kind": ""}


class Library(_Record):
    FIELDS = ("name",
              "kind")  # needed | weak | reexport | lazy | upward


class Image(_Record):
    FIELDS = ("path",
              "format",  # "ELF" | "Mach-O"
              "arch",  # gotrace's names: x86_64, arm64, i386, arm, riscv64, ppc64le, s390x ...
              "file_type",  # executable | shared-object | relocatable | core | dylib | bundle ...
              "pie", "bits", "endian", "interpreter", "entry", "libraries", "segments", "sections",
              "uuid",  # Mach-O LC_UUID / ELF GNU build-id (hex)
              "code_signature",
              "bind_now",  # ELF DF_BIND_NOW/DF_1_NOW; Mach-O: always (dyld binds at load)
              "imports",
              "symbols",  # entries in the static symbol table (.symtab / LC_SYMTAB)
              "dynamic_symbols",  # ELF .dynsym entries: what a stripped library still exports and imports
              "go",  # Go build info: version, path, mod, settings
              "slices",  # fat Mach-O: every slice's arch
              "slice_offset",  # fat Mach-O: where the chosen slice starts in the file
              "notes")  # what the reader could not read, and why
    DEFAULTS = {"interpreter": None, "entry": None, "libraries": list, "segments": list, "sections": list,
                "uuid": None, "code_signature": False, "bind_now": False, "imports": list, "symbols": 0,
                "dynamic_symbols": 0, "go": None, "slices": list, "slice_offset": 0, "notes": list}

    @property
    def link_base(self) -> int | None:
        """The link-time base: ELF's first PT_LOAD page, Mach-O's __TEXT vmaddr."""
        if self.format == "Mach-O":
            for s in self.segments:
                if s.name == "__TEXT":
                    return s.vmaddr
            return None
        loads = [s for s in self.segments if s.name.startswith("LOAD")]
        return elf_link_base(loads[0].vmaddr) if loads else None

    def segment_of(self, addr: int) -> Segment | None:
        for s in self.segments:
            if s.vmaddr <= addr < s.vmaddr + max(s.vmsize, 1):
                return s
        return None

    def section_of(self, addr: int) -> Section | None:
        """The smallest section holding ``addr``. ELF's ``.tbss`` is skipped: it
        is a TLS template that takes no address space, so its range belongs to
        the section laid out after it (.init_array, typically), as readelf shows.

        Called once per import slot — 20 000 times on libLLVM — so it
        bisects an index built on first use instead of scanning every section
        (built again when ``sections`` is replaced or changes length).
        """
        key = (id(self.sections), len(self.sections))
        index = self.__dict__.get("_section_index")
        if index is None or index[0] != key:
            spans = sorted(((s.addr, s.addr + s.size, s) for s in self.sections
                            if s.addr and s.size and s.name != ".tbss"), key=lambda span: span[:2])
            reach, top = [], 0  # reach[i]: the furthest end among spans[0..i]
            for _, end, _ in spans:
                top = max(top, end)
                reach.append(top)
            index = self.__dict__["_section_index"] = (key, [a for a, _, _ in spans], spans, reach)
        _, starts, spans, reach = index
        best = None
        i = bisect.bisect_right(starts, addr) - 1
        while i >= 0 and reach[i] > addr:  # walk back only while an earlier span can still reach addr
            start, end, sec = spans[i]
            if start <= addr < end and (best is None or sec.size < best.size):
                best = sec
            i -= 1
        return best

    def to_dict(self) -> dict:
        d = self.as_dict()
        for key in ("libraries", "segments", "sections", "imports"):
            d[key] = [x.as_dict() for x in d[key]]
        d["slices"], d["notes"] = list(self.slices), list(self.notes)
        d["go"] = _plain(self.go)
        d["link_base"] = self.link_base
        return d


def _plain(value):
    """A copy of nested dicts and lists (Go build info), so callers may edit it."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
