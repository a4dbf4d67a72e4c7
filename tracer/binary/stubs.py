"""Stub and pointer sections, slot by slot, and what is wrong with them.

For each stub section (ELF ``.plt``/``.plt.sec``/``.plt.got``; Mach-O
``__stubs``, ``__symbol_stub*``, ``__auth_stubs``, ``__stub_helper``) and
pointer section (ELF ``.got``/``.got.plt``; Mach-O ``__la_symbol_ptr``,
``__got``, ``__nl_symbol_ptr``, ``__auth_got``): each slot's symbol, the
value the file holds there, and what the loader will do with it. Anomalies
are the patterns that break loading or hint at tampering: a stub section of
zeros or 0xCC, a lazy pointer that leads nowhere or not back into the stub
machinery, a bind naming a library the image does not load, a Mach-O
without LC_UUID (macOS 26's dyld refuses it), the wrong architecture.
"""
from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field

from .model import Image, ImportSlot, Section

ELF_STUBS = (".plt", ".plt.sec", ".plt.got", ".MIPS.stubs")
ELF_POINTERS = (".got", ".got.plt")
MACHO_POINTER_NAMES = ("__la_symbol_ptr", "__got", "__nl_symbol_ptr", "__auth_got")


@dataclass
class Slot:
    address: int
    symbol: str | None
    value: str  # what the file holds: a hex pointer, or stub bytes
    action: str  # what the loader does with it


@dataclass
class StubSection:
    name: str
    address: int
    size: int
    kind: str  # stubs | pointers | helper
    slots: list[Slot] = field(default_factory=list)
    note: str | None = None  # what of the section is not decoded, and why


@dataclass
class Anomaly:
    kind: str
    where: str
    reason: str


@dataclass
class StubReport:
    path: str
    format: str
    arch: str
    sections: list[StubSection]
    anomalies: list[Anomaly]
    file_type: str = ""  # Image.file_type: a relocatable object or a core dump has no stubs by nature

    def to_dict(self) -> dict:
        return asdict(self)


def _sec_bytes(data: bytes, sec: Section) -> bytes | None:
    if sec.kind == "SHT_NOBITS" or sec.offset + sec.size > len(data):
        return None
    return data[sec.offset:sec.offset + sec.size]


def _check_filled(anomalies: list[Anomaly], name: str, blob: bytes) -> None:
    """A stub section of nothing but zeros or int3 bytes: every call through it crashes."""
    for byte, words in ((0, "zeros"), (0xCC, "0xCC (int3) bytes")):
        if blob and blob.count(byte) == len(blob):
            anomalies.append(Anomaly("empty-stubs", name, f"the whole section is {words}: calls through it crash"))


def check(img: Image, data: bytes, want_arch: str | None = None, host_arch: str | None = None,
          host_format: str | None = None) -> StubReport:
    """The stub report for ``img`` (whose bytes are ``data``). Its architecture is
    held against ``want_arch``, or against ``host_arch`` when the file is of the
    host's own format (``host_format``): a Mach-O cannot run on Linux whatever its
    CPU, so a cross-built one is not the wrong architecture here."""
    if img.format == "ELF":
        sections, anomalies = _elf(img, data)
    else:
        sections, anomalies = _macho(img, data, img.slice_offset)
        if img.uuid is None and img.file_type in ("executable", "dylib", "bundle"):
            anomalies.append(Anomaly("missing-uuid", "load commands",
                                     "no LC_UUID: macOS 26's dyld refuses to load it (Go emits one from 1.24)"))
    loaded = {lib.name for lib in img.libraries}
    loaded_base = {n.rsplit("/", 1)[-1] for n in loaded}
    reported: set[str] = set()
    for imp in img.imports:
        lib = imp.library
        if lib is None or lib.startswith("<") or lib in loaded or lib in reported:
            continue
        if img.format == "ELF" and lib.rsplit("/", 1)[-1] in loaded_base:
            continue
        reported.add(lib)
        anomalies.append(Anomaly("library-not-loaded", f"{imp.symbol} at {imp.address:#x}",
                                 f"bound to {lib}, which the image does not load (not in "
                                 f"{'DT_NEEDED' if img.format == 'ELF' else 'its LC_LOAD_DYLIB commands'})"))
    for imp in img.imports:
        if img.format == "Mach-O" and imp.library is None:
            anomalies.append(Anomaly("library-not-loaded", f"{imp.symbol} at {imp.address:#x}",
                                     "bind names a library ordinal the image does not load"))
    target = want_arch or (host_arch if host_format is None or img.format == host_format else None)
    if target and img.arch != target:
        who = "requested" if want_arch else "host's"
        anomalies.append(Anomaly("wrong-arch", img.arch, f"built for {img.arch}, the {who} architecture is {target}"))
    return StubReport(img.path, img.format, img.arch, sections, anomalies, img.file_type)


# ---------------------------------------------------------------- ELF

def _elf(img: Image, data: bytes) -> tuple[list[StubSection], list[Anomaly]]:
    from .elf import dynamic_tags, section_entsizes
    from .elf_plt import layout

    by_name = {s.name: s for s in img.sections}
    imports = {i.address: i for i in img.imports}
    width = img.bits // 8
    order = "<" if img.endian == "little" else ">"
    fmt = order + ("Q" if width == 8 else "I")
    out: list[StubSection] = []
    anomalies: list[Anomaly] = []
    stub_ranges = [(by_name[n].addr, by_name[n].addr + by_name[n].size) for n in ELF_STUBS
                   if n in by_name and by_name[n].kind != "SHT_NOBITS"]
    # where each slot's first use goes before ld.so binds it: an IBT lazy entry or a MIPS
    # lazy stub is named by the slot that leads to it
    first_use: dict[int, ImportSlot] = {}
    for imp in img.imports:
        value = _word_at(img, data, imp.address, fmt, width)
        if value:
            first_use.setdefault(value, imp)
    got = by_name.get(".got.plt") or by_name.get(".got")
    entsizes = section_entsizes(img.path, data)
    reserved = _reserved_got(img, data, dynamic_tags(img.path, data), by_name.get(".dynamic"), fmt, width)
    for name in ELF_STUBS:
        sec = by_name.get(name)
        if sec is None or sec.size == 0:
            continue
        if sec.kind == "SHT_NOBITS":  # PowerPC's .plt: pointers ld.so fills, no code
            out.append(_nobits_pointers(img, sec, imports, width))
            continue
        blob = _sec_bytes(data, sec)
        ss = StubSection(name, sec.addr, sec.size, "stubs")
        if blob is not None:
            _check_filled(anomalies, name, blob)
            found = layout(img.arch, name, sec.addr, blob, entsizes.get(name, 0), got.addr if got else None,
                           img.endian == "little")
            ss.note = found.note
            for e in found.entries:
                ss.slots.append(_stub_slot(img, sec.addr + e.offset, blob[e.offset:e.offset + e.size], e,
                                           imports, first_use))
        out.append(ss)
    for name in ELF_POINTERS:
        sec = by_name.get(name)
        if sec is None or sec.size == 0:
            continue
        blob = _sec_bytes(data, sec)
        ss = StubSection(name, sec.addr, sec.size, "pointers")
        if blob is not None:
            for i in range(0, len(blob) - width + 1, width):
                addr = sec.addr + i
                value = struct.unpack_from(fmt, blob, i)[0]
                imp = imports.get(addr)
                if imp is not None:
                    if imp.mode == "lazy":
                        action = "lazy: bound by ld.so on the first call"
                        _check_lazy(img, anomalies, name, addr, value, imp, stub_ranges)
                    else:
                        action = f"eager: ld.so binds it at load ({imp.reloc})"
                    sym = imp.symbol + (f"@{imp.version}" if imp.version else "")
                elif addr in reserved:
                    sym, action = None, reserved[addr]
                else:
                    sym = None
                    action = "rebased at load (relative) or constant"
                ss.slots.append(Slot(addr, sym, f"{value:#x}", action))
        out.append(ss)
    return out, anomalies


# what ld.so keeps in the first words at DT_PLTGOT (glibc's elf_machine_runtime_setup per
# machine): got[1] the link_map and got[2] the resolver, got[0] the linker's _DYNAMIC or unused;
# RISC-V and LoongArch put the resolver first; MIPS has its own two GOTs
LINK_MAP, RESOLVER = "ld.so stores the link_map here", "ld.so stores its resolver here"
GOT_THREE = ("x86_64", "i386", "arm", "arm64", "s390x", "s390")
GOT_TWO = ("riscv64", "riscv32", "loong64")


def _reserved_got(img: Image, data: bytes, dyn: dict, dynamic: Section | None, fmt: str,
                  width: int) -> dict[int, str]:
    """Link-time address -> what ld.so keeps there, for the GOT words it reserves."""
    out: dict[int, str] = {}
    got = dyn.get("DT_PLTGOT", [None])[0]
    if got is None:
        return out
    if img.arch in GOT_THREE:
        first = _word_at(img, data, got, fmt, width)
        out[got] = ("address of _DYNAMIC" if dynamic is not None and first == dynamic.addr
                    else "reserved (ld.so does not read it)")
        out[got + width], out[got + 2 * width] = LINK_MAP, RESOLVER
    elif img.arch in GOT_TWO:
        out[got], out[got + width] = RESOLVER, LINK_MAP
    elif img.arch.startswith("mips"):
        out[got] = "ld.so stores its lazy resolver here (the lazy stubs call GOT[0])"
        second = _word_at(img, data, got + width, fmt, width)
        if second is not None and second >> (8 * width - 1):  # GNU ld's mark: a module pointer
            out[got + width] = "module pointer (GNU extension): ld.so stores the link_map here"
        if "DT_MIPS_PLTGOT" in dyn:  # .got.plt: the PLT's own resolver and link_map
            plt_got = dyn["DT_MIPS_PLTGOT"][0]
            out[plt_got] = "ld.so stores its PLT resolver here (.plt's header calls it)"
            out[plt_got + width] = LINK_MAP
    return out


PLT_HEADER = {"x86_64": "PLT0: pushes the link_map and jumps to ld.so's resolver",
              "i386": "PLT0: pushes the link_map and jumps to ld.so's resolver",
              "sparc": "reserved entries (.PLT0-.PLT3): ld.so writes its resolver call here"}


def _stub_slot(img: Image, addr: int, chunk: bytes, e, imports: dict[int, ImportSlot],
               first_use: dict[int, ImportSlot]) -> Slot:
    """One entry of elf_plt's layout as a slot: its symbol from the slot it jumps through (or,
    for a lazy entry that loads none, from the slot whose first use leads into it)."""
    if e.kind == "header":
        arch = "sparc" if img.arch.startswith("sparc") else img.arch
        return Slot(addr, None, chunk.hex(), PLT_HEADER.get(arch, "PLT header: hands the link_map to ld.so's "
                                                                  "lazy resolver"))
    if e.kind == "padding":
        return Slot(addr, None, chunk.hex(), "padding after the last entry")
    if e.target is not None:
        imp = imports.get(e.target)
    else:  # an entry that loads no slot: named by the slot whose first use leads into it
        imp = next((first_use[v] for v in range(addr, addr + e.size) if v in first_use), None)
    how = f" ({imp.mode} {imp.reloc})" if imp is not None else ""
    if e.target == addr:
        action = "ld.so rewrites this entry's instructions to reach the symbol" + how
    elif e.target is not None:
        action = f"jumps through {e.target:#x}" + how
    elif e.reloc_index is not None:
        action = f"lazy entry: pushes relocation {e.reloc_index} and jumps to PLT0 (its slot's first call)"
    elif e.symbol_index is not None:
        action = f"lazy stub: calls ld.so's resolver (GOT[0]) for dynamic symbol {e.symbol_index}"
    else:
        action = "not decoded"
    return Slot(addr, imp.symbol if imp else None, chunk.hex(), action)


def _nobits_pointers(img: Image, sec: Section, imports: dict[int, ImportSlot], width: int) -> StubSection:
    ss = StubSection(sec.name, sec.addr, sec.size, "pointers",
                     note=f"{img.arch}'s {sec.name} is a table of pointers ld.so fills (no bytes in the file); "
                          "calls reach it through linker-made stubs in .text (and .glink), which are not read")
    for addr in range(sec.addr, sec.addr + sec.size - width + 1, width):
        imp = imports.get(addr)
        if imp is None:
            ss.slots.append(Slot(addr, None, "zero-fill", "ld.so's own (resolver, link_map) or unused"))
        else:
            sym = imp.symbol + (f"@{imp.version}" if imp.version else "")
            ss.slots.append(Slot(addr, sym, "zero-fill", ("lazy: bound by ld.so on the first call"
                                                          if imp.mode == "lazy" else
                                                          f"eager: ld.so binds it at load ({imp.reloc})")))
    return ss


def _check_lazy(img: Image, anomalies: list[Anomaly], section: str, addr: int, value: int, imp: ImportSlot,
                stub_ranges: list[tuple[int, int]]) -> None:
    where = f"{section} {addr:#x} ({imp.symbol})"
    if img.segment_of(value) is None:
        anomalies.append(Anomaly("lazy-pointer-outside", where,
                                 f"lazy pointer {value:#x} lies outside every segment: the first call jumps nowhere"))
    elif stub_ranges and not any(a <= value < b for a, b in stub_ranges):
        anomalies.append(Anomaly("lazy-pointer-not-to-stub", where,
                                 f"lazy pointer {value:#x} does not lead back into the PLT: the call never reaches ld.so"))


def _word_at(img: Image, data: bytes, addr: int, fmt: str, width: int) -> int | None:
    """The pointer the file holds at link-time address ``addr`` (None: not in the file)."""
    for seg in img.segments:
        if seg.name == "LOAD" and seg.vmaddr <= addr and addr + width <= seg.vmaddr + seg.filesize:
            off = seg.fileoff + addr - seg.vmaddr
            if off + width <= len(data):
                return struct.unpack_from(fmt, data, off)[0]
    return None


# ---------------------------------------------------------------- Mach-O

WEAK_LOOKUP = "<weak lookup>"  # macho.py's label for a coalesced definition (weak-bind table, weak-lookup ordinal)


def _macho(img: Image, data: bytes, base: int) -> tuple[list[StubSection], list[Anomaly]]:
    from .macho_indirect import INDIRECT_SECTION_TYPES, header, indirect_spans, indirect_symbols, section_records

    names = indirect_symbols(img.path, data, base)
    records = section_records(data, base)
    spans = indirect_spans(records, data, base)
    binds: dict[int, list[ImportSlot]] = {}
    for imp in img.imports:
        binds.setdefault(imp.address, []).append(imp)
    width = 8 if img.bits == 64 else 4
    pointer = header(data, base)[0] + ("Q" if width == 8 else "I")
    pointer_names: dict[int, str] = {}  # pointer slot -> the name its indirect entry gives
    for pos, rec in enumerate(records):
        if rec["flags"] & 0xFF in INDIRECT_SECTION_TYPES and rec["flags"] & 0xFF != 8:
            first = rec["reserved1"]
            end = first + min(rec["size"] // width, spans.get(pos, (0, None))[0])
            for idx, name in names.items():  # the entries the file holds, whatever a corrupt size says
                if first <= idx < end:
                    pointer_names[rec["addr"] + (idx - first) * width] = name
    out: list[StubSection] = []
    anomalies: list[Anomaly] = []
    helper = next((s for s in img.sections if s.name.endswith(",__stub_helper")), None)
    for pos, rec in enumerate(records):
        full = f"{rec['segname']},{rec['sectname']}"
        stype = rec["flags"] & 0xFF
        is_stub = stype == 8  # S_SYMBOL_STUBS
        is_ptr = stype in (6, 7) or rec["sectname"] in MACHO_POINTER_NAMES  # non-lazy, lazy
        is_helper = rec["sectname"] == "__stub_helper"
        if not (is_stub or is_ptr or is_helper) or rec["size"] == 0:
            continue
        blob = data[base + rec["offset"]:base + rec["offset"] + rec["size"]] if rec["offset"] else None
        kind = "stubs" if is_stub else ("helper" if is_helper else "pointers")
        ss = StubSection(full, rec["addr"], rec["size"], kind)
        if blob is not None and kind in ("stubs", "helper"):
            _check_filled(anomalies, full, blob)
        if blob is not None and kind == "stubs":
            _macho_stubs(img, ss, rec, blob, names, spans.get(pos), binds, pointer_names, anomalies)
        elif blob is not None and kind == "pointers":
            for n, i in enumerate(range(0, len(blob) - width + 1, width)):  # i386's pointers are 4 bytes
                addr = rec["addr"] + i
                value = struct.unpack_from(pointer, blob, i)[0]
                here = binds.get(addr, [])
                sym = _last_bind(here).symbol if here else names.get(rec["reserved1"] + n)
                if here:
                    action = _macho_bind_action(here)
                    imp = here[0]
                    if imp.mode == "lazy":
                        where = f"{full} {addr:#x} ({sym})"
                        if img.segment_of(value) is None:
                            anomalies.append(Anomaly("lazy-pointer-outside", where,
                                                     f"lazy pointer {value:#x} lies outside every segment"))
                        elif helper is not None and not (helper.addr <= value < helper.addr + helper.size):
                            anomalies.append(Anomaly("lazy-pointer-not-to-stub", where,
                                                     f"lazy pointer {value:#x} does not lead into __stub_helper"))
                else:
                    action = "rebased at load, or a local symbol's address"
                ss.slots.append(Slot(addr, sym, f"{value:#x}", action))
        out.append(ss)
    return out, anomalies


def _last_bind(here: list[ImportSlot]) -> ImportSlot:
    """The bind a slot keeps: dyld applies a table's binds in order, so of a slot bound twice
    the later bind is what it holds; a weak-bind entry alone is its own."""
    regular = [i for i in here if i.library != WEAK_LOOKUP]
    return regular[-1] if regular else here[0]


def _macho_bind_action(here: list[ImportSlot]) -> str:
    """What dyld does with a pointer slot, from its binds (a bind and a weak-bind may share one)."""
    regular = [i for i in here if i.library != WEAK_LOOKUP]
    coalesced = [i for i in here if i.library == WEAK_LOOKUP]
    if regular and regular[-1].mode == "lazy":
        text = ("lazy bind: dyld < 12 binds it on first call through __stub_helper; macOS 12+ binds it at load "
                f"to {regular[-1].library}")
    elif regular:
        text = f"dyld binds it at load to {regular[-1].library} ({regular[-1].reloc})"
    else:
        return ("dyld binds it at load to the first definition in load order (a coalesced weak definition, "
                f"{coalesced[0].reloc})")
    if coalesced:
        text += "; then, as a weak-bind entry, to the first definition in load order (coalesced)"
    return text


def _macho_stubs(img: Image, ss: StubSection, rec: dict, blob: bytes, names: dict[int, str],
                 span: tuple[int, str | None] | None, binds: dict[int, list[ImportSlot]],
                 pointer_names: dict[int, str], anomalies: list[Anomaly]) -> None:
    """The stubs as their code has them (see macho_stubcode), each named by the pointer it
    jumps through; a section whose reserved2 disagrees with its code or its share of the
    indirect table is an anomaly: otool, lldb and llvm-objdump name its stubs wrongly."""
    from .macho_stubcode import PATTERN, STUB_SIZE, decode

    declared, first = rec["reserved2"], rec["reserved1"]
    decoded = decode(img.arch, rec["addr"], blob)
    if decoded is None:  # not a stub this reader knows: cut as the file says
        size = declared or 6
        for n, i in enumerate(range(0, len(blob) - size + 1, size)):
            ss.slots.append(Slot(rec["addr"] + i, names.get(first + n), blob[i:i + size].hex(),
                                 f"not decoded: {size}-byte slots, as reserved2 declares"))
        return
    size = STUB_SIZE[img.arch]
    disagree = []
    for n, (i, ptr) in enumerate(decoded):
        own = names.get(first + n) if span is None or n < span[0] else None
        if ptr is None:
            ss.slots.append(Slot(rec["addr"] + i, own, blob[i:i + size].hex(), "not a stub: no pointer load decoded"))
            continue
        here = binds.get(ptr, [])
        sym = _last_bind(here).symbol if here else pointer_names.get(ptr)
        where = img.section_of(ptr)
        action = f"jumps through {ptr:#x}" + (f" ({where.name})" if where else " (outside every section)")
        if here:
            action += ", " + _macho_bind_action(here).replace("dyld binds it", "which dyld binds", 1)
        if sym and own and not own.startswith("<") and own != sym:
            disagree.append((rec["addr"] + i, own, sym))
        ss.slots.append(Slot(rec["addr"] + i, sym or own, blob[i:i + size].hex(), action))
    problems = []
    if declared != size:
        problems.append(f"reserved2 declares {declared}-byte stubs, but the code is {len(decoded)} stubs of "
                        f"{size} bytes ({PATTERN[img.arch]})")
    claimed = rec["size"] // declared if declared else 0
    if span is not None and claimed != span[0]:
        nxt = f" ({span[1]}'s begin at index {first + span[0]})" if span[1] else " (the table ends there)"
        problems.append(f"reserved2 makes it {claimed} stubs, but the indirect symbol table gives it {span[0]} "
                        f"entries{nxt}")
    if problems:
        anomalies.append(Anomaly("stub-size-mismatch", ss.name, "; ".join(problems) +
                                 ": tools that cut stubs by reserved2 (otool -Iv, lldb, llvm-objdump) put "
                                 "names on the wrong addresses"))
    if disagree:
        at, own, sym = disagree[0]
        anomalies.append(Anomaly("stub-name-mismatch", ss.name,
                                 f"{len(disagree)} stub(s) jump through a pointer bound to another symbol than "
                                 f"their indirect entry names (first: {at:#x}, {own} by the table, {sym} by "
                                 "its pointer)"))
