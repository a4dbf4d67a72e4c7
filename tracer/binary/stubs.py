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

ELF_STUBS = (".plt", ".plt.sec", ".plt.got")
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
    return StubReport(img.path, img.format, img.arch, sections, anomalies)


# ---------------------------------------------------------------- ELF

def _elf(img: Image, data: bytes) -> tuple[list[StubSection], list[Anomaly]]:
    by_name = {s.name: s for s in img.sections}
    imports = {i.address: i for i in img.imports}
    width = img.bits // 8
    order = "<" if img.endian == "little" else ">"
    fmt = order + ("Q" if width == 8 else "I")
    out: list[StubSection] = []
    anomalies: list[Anomaly] = []
    stub_ranges = [(by_name[n].addr, by_name[n].addr + by_name[n].size) for n in ELF_STUBS if n in by_name]
    for name in ELF_STUBS:
        sec = by_name.get(name)
        if sec is None or sec.size == 0:
            continue
        blob = _sec_bytes(data, sec)
        ss = StubSection(name, sec.addr, sec.size, "stubs")
        if blob is not None:
            _check_filled(anomalies, name, blob)
            entry = 8 if name == ".plt.got" else 16
            first = 32 if (name == ".plt" and img.arch == "arm64") else entry  # arm64's PLT0 is 32 bytes
            starts = [0] + list(range(first, len(blob) - entry + 1, entry))
            for i in starts:
                addr = sec.addr + i
                chunk = blob[i:i + (first if i == 0 else entry)]
                slot = _plt_target(img.arch, addr, chunk)
                imp = imports.get(slot) if slot is not None else None
                if name == ".plt" and i == 0:
                    action = "PLT0: pushes the link_map and jumps to ld.so's resolver"
                elif imp is not None:
                    action = f"jumps through {slot:#x} ({imp.mode} {imp.reloc})"
                elif slot is not None:
                    action = f"jumps through {slot:#x}"
                else:
                    action = "not decoded"
                ss.slots.append(Slot(addr, imp.symbol if imp else None, chunk.hex(), action))
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
                elif name == ".got.plt" and i < 3 * width:
                    sym = None
                    action = ("address of _DYNAMIC", "ld.so stores the link_map here",
                              "ld.so stores its resolver here")[i // width]
                else:
                    sym = None
                    action = "rebased at load (relative) or constant"
                ss.slots.append(Slot(addr, sym, f"{value:#x}", action))
        out.append(ss)
    return out, anomalies


def _check_lazy(img: Image, anomalies: list[Anomaly], section: str, addr: int, value: int, imp: ImportSlot,
                stub_ranges: list[tuple[int, int]]) -> None:
    where = f"{section} {addr:#x} ({imp.symbol})"
    if img.segment_of(value) is None:
        anomalies.append(Anomaly("lazy-pointer-outside", where,
                                 f"lazy pointer {value:#x} lies outside every segment: the first call jumps nowhere"))
    elif stub_ranges and not any(a <= value < b for a, b in stub_ranges):
        anomalies.append(Anomaly("lazy-pointer-not-to-stub", where,
                                 f"lazy pointer {value:#x} does not lead back into the PLT: the call never reaches ld.so"))


def _plt_target(arch: str, addr: int, chunk: bytes) -> int | None:
    """The GOT slot a PLT entry jumps through (x86_64 jmp *disp(%rip), arm64 adrp+ldr)."""
    if arch == "x86_64":
        i = chunk.find(b"\xff\x25")
        if i >= 0 and i + 6 <= len(chunk):
            disp = struct.unpack_from("<i", chunk, i + 2)[0]
            return addr + i + 6 + disp
        return None
    if arch == "arm64" and len(chunk) >= 8:
        for i in range(0, len(chunk) - 7, 4):
            adrp, ldr = struct.unpack_from("<II", chunk, i)
            if adrp & 0x9F000000 == 0x90000000 and ldr & 0xFFC00000 == 0xF9400000:
                immlo, immhi = (adrp >> 29) & 3, (adrp >> 5) & 0x7FFFF
                page = ((immhi << 2) | immlo) << 12
                if page & (1 << 32):
                    page -= 1 << 33
                return ((addr + i) & ~0xFFF) + page + ((ldr >> 10) & 0xFFF) * 8
    return None


# ---------------------------------------------------------------- Mach-O

WEAK_LOOKUP = "<weak lookup>"  # macho.py's label for a coalesced definition (weak-bind table, weak-lookup ordinal)


def _macho(img: Image, data: bytes, base: int) -> tuple[list[StubSection], list[Anomaly]]:
    from .macho_indirect import INDIRECT_SECTION_TYPES, indirect_spans, indirect_symbols, section_records

    names = indirect_symbols(img.path, data, base)
    records = section_records(data, base)
    spans = indirect_spans(records, data, base)
    binds: dict[int, list[ImportSlot]] = {}
    for imp in img.imports:
        binds.setdefault(imp.address, []).append(imp)
    width = 8 if img.bits == 64 else 4
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
            for n, i in enumerate(range(0, len(blob) - 7, 8)):
                addr = rec["addr"] + i
                value = struct.unpack_from("<Q", blob, i)[0]
                here = binds.get(addr, [])
                sym = here[0].symbol if here else names.get(rec["reserved1"] + n)
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


def _macho_bind_action(here: list[ImportSlot]) -> str:
    """What dyld does with a pointer slot, from its binds (a bind and a weak-bind may share one)."""
    regular = [i for i in here if i.library != WEAK_LOOKUP]
    coalesced = [i for i in here if i.library == WEAK_LOOKUP]
    if regular and regular[0].mode == "lazy":
        text = ("lazy bind: dyld < 12 binds it on first call through __stub_helper; macOS 12+ binds it at load "
                f"to {regular[0].library}")
    elif regular:
        text = f"dyld binds it at load to {regular[0].library} ({regular[0].reloc})"
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
        sym = here[0].symbol if here else pointer_names.get(ptr)
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
