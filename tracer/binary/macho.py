"""Mach-O and fat (universal) images through LIEF.

LIEF decodes what matters here and pyelftools cannot: bind and lazy-bind
opcodes (LC_DYLD_INFO[_ONLY]), chained fixups (LC_DYLD_CHAINED_FIXUPS) and
fat headers. It is imported on first use (it costs ~0.1 s), and its logger is
silenced: a parse failure becomes one BadBinary line, never LIEF's own
stderr chatter.

Verified here against llvm-objdump on Mach-O files built on Linux (Go's
internal linker, ld64.lld) and on files Apple's ld and Go's linker made for
PyPI's macOS wheels (tests/fixtures/macho-wheels.json); never run on macOS.

LIEF hands back ``bytes`` for a name that is not UTF-8 (a corrupt file's):
every name goes through ``_text`` so JSON and the terminal always get text.
"""
from __future__ import annotations

import io
import os
import signal
import struct
import time
import warnings

from ..arch import MACHO_CPUS, host_arch
from .goinfo import go_build_info
from .macho_indirect import LC_SEGMENT, LC_SEGMENT_64, LC_SYMTAB, LoadCommandError, header, load_commands
from .model import Image, ImportSlot, Library, Section, Segment
from .sniff import FAT_MAGIC_64, FAT_MAGICS, BadBinary, Truncated

FILE_TYPES = {"EXECUTE": "executable", "DYLIB": "dylib", "BUNDLE": "bundle", "OBJECT": "relocatable",
              "DYLINKER": "dylinker", "CORE": "core", "KEXT_BUNDLE": "kext", "DYLIB_STUB": "dylib-stub",
              "DSYM": "dsym", "FILESET": "fileset", "PRELOAD": "preload", "FVMLIB": "fvmlib"}
LIB_KINDS = {"LOAD_DYLIB": "needed", "LOAD_WEAK_DYLIB": "weak", "REEXPORT_DYLIB": "reexport",
             "LAZY_LOAD_DYLIB": "lazy", "LOAD_UPWARD_DYLIB": "upward"}
CPU_SUBTYPE_ARM64E = 2


def _lief():
    import lief

    lief.logging.disable()
    return lief


def _enum_name(value) -> str:
    return str(value).rsplit(".", 1)[-1]


def _text(value) -> str:
    """A name as text: LIEF returns bytes for one that is not UTF-8."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _arch_of(binary) -> str:
    name = MACHO_CPUS.get(_enum_name(binary.header.cpu_type), _enum_name(binary.header.cpu_type).lower())
    if name == "arm64" and (binary.header.cpu_subtype & 0xFF) == CPU_SUBTYPE_ARM64E:
        return "arm64e"
    return name


def _prot(p: int) -> str:
    return ("r" if p & 1 else "-") + ("w" if p & 2 else "-") + ("x" if p & 4 else "-")


def fat_slices(data: bytes) -> list[tuple[int, int, int]]:
    """``(cputype, offset, size)`` of each fat slice, bounds-checked by hand so
    a lying header is refused before LIEF sees it."""
    magic = data[:4]
    wide = magic == FAT_MAGIC_64
    count = struct.unpack_from(">I", data, 4)[0]
    entry = 32 if wide else 20
    if 8 + count * entry > len(data):
        raise Truncated("", len(data))
    out = []
    for i in range(count):
        if wide:
            cpu, _sub, off, size = struct.unpack_from(">iiQQ", data, 8 + i * entry)
        else:
            cpu, _sub, off, size = struct.unpack_from(">iiII", data, 8 + i * entry)
        if off + size > len(data) or size < 28:
            raise Truncated("", len(data))
        out.append((cpu, off, size))
    return out


def _check_load_commands(path: str, data: bytes, base: int = 0, size: int | None = None) -> None:
    """Refuse load commands that run past the header's own bounds, and
    segments or link-edit tables that run past the end of the file."""
    limit = base + (size if size is not None else len(data) - base)
    if base + 24 > len(data):  # ncmds and sizeofcmds end at byte 24
        raise Truncated(path, len(data))
    _order, is64, _ncmds, sizeofcmds, hdr = header(data, base)
    if base + hdr + sizeofcmds > len(data):
        raise Truncated(path, len(data))
    try:
        for order, _is64, cmd, pos, csize in load_commands(data, base):
            extents = []
            if cmd in (LC_SEGMENT_64, LC_SEGMENT):
                wide = cmd == LC_SEGMENT_64
                fixed, per = (72, 80) if wide else (56, 68)
                if csize < fixed:
                    raise LoadCommandError(f"segment command at offset {pos} is {csize} bytes")
                extents.append(struct.unpack_from(order + ("QQ" if wide else "II"), data, pos + (40 if wide else 32)))
                nsects = struct.unpack_from(order + "I", data, pos + (64 if wide else 48))[0]
                if fixed + nsects * per > csize:
                    raise LoadCommandError(f"{nsects} sections do not fit the {csize}-byte segment command "
                                           f"at offset {pos}")
            elif cmd == LC_SYMTAB and csize >= 24:  # symbols, strings
                symoff, nsyms, stroff, strsize = struct.unpack_from(order + "IIII", data, pos + 8)
                extents += [(symoff, nsyms * (16 if is64 else 12)), (stroff, strsize)]
            for off, length in extents:
                if length and base + off + length > limit:
                    raise Truncated(path, len(data))
    except LoadCommandError as exc:
        raise BadBinary(f"{path}: corrupt Mach-O file ({exc})") from None


def cpu_budget(size: int) -> float:
    """Seconds of CPU time the parse may use: about 15 times what a healthy
    file needs (an 8 MB Apple-ld dylib takes ~0.07 s, a 2.5 MB Go binary ~0.01 s)."""
    return 1.0 + size / 20e6


WALL_BACKSTOP = 300.0  # s: only for a child that stops using CPU and never ends (never seen)


def _walk(path: str) -> None:
    """What read_macho asks of LIEF, done once in the child."""
    with open(path, "rb") as f:
        data = f.read(4)
        if data == FAT_MAGIC_64:  # a FAT_MAGIC_64 file's slices are parsed from their bytes
            data += f.read()
    _fats, found = _parse(_lief(), path, data)
    if not found:
        raise ValueError("LIEF could not parse it")
    for b, _off in found:
        list(b.bindings), len(b.symbols), list(b.sections), list(b.segments)


def _parse(lief, path: str, data: bytes) -> tuple[list, list[tuple[object, int]]]:
    """LIEF's parse of the file and each binary in it with the file offset it starts at.

    LIEF 0.17 gives None for a FAT_MAGIC_64 universal file (64-bit offsets, what `lipo -fat64`
    writes), which llvm-objdump and dyld read: its slices are parsed one by one from the table
    fat_slices bounds-checked. The parses are returned too: a binary lives only as long as its
    parse."""
    if data[:4] != FAT_MAGIC_64:
        fat = lief.MachO.parse(path)
        if fat is None:
            return [], []
        return [fat], [(b, int(getattr(b, "fat_offset", 0) or 0)) for b in (fat.at(i) for i in range(fat.size))]
    fats, found = [], []
    for _cpu, off, size in fat_slices(data):
        fat = lief.MachO.parse(io.BytesIO(data[off:off + size]))
        if fat is None or fat.size != 1:
            return fats, []
        fats.append(fat)
        found.append((fat.at(0), off))
    return fats, found


def _parse_in_child_first(path: str, size: int) -> None:
    """Let LIEF parse the file once in a forked child, on a CPU-time budget.

    Hostile or corrupt files have made LIEF spin for tens of seconds (fuzzing
    found some); a child that overruns is killed, one that crashes cannot take
    gotrace with it, and either way the user gets one line. The budget is CPU
    time (ITIMER_PROF: SIGPROF, whose default action ends the child), never
    wall-clock time: on a busy machine a healthy file takes longer to parse
    but no more CPU, and a wall-clock deadline refused it as corrupt. A good
    file costs a fork and a second parse (milliseconds).
    """
    budget = cpu_budget(size)
    _lief()  # imported before the fork, so the budget covers the parse, not the import
    pid = os.fork()
    if pid == 0:  # child: parse, walk what read_macho walks, report by exit code
        code = 1
        try:
            signal.signal(signal.SIGPROF, signal.SIG_DFL)
            signal.setitimer(signal.ITIMER_PROF, budget)
            _walk(path)
            code = 0
        finally:
            os._exit(code)
    start, pause = time.monotonic(), 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > WALL_BACKSTOP:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise BadBinary(f"{path}: corrupt Mach-O file (the parser was still running after {WALL_BACKSTOP:.0f} s)")
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGPROF, signal.SIGXCPU):
        raise BadBinary(f"{path}: corrupt Mach-O file (the parser did not finish within {budget:.1f} s of CPU time)")
    if os.WIFSIGNALED(status):
        raise BadBinary(f"{path}: corrupt Mach-O file (the parser crashed: signal {os.WTERMSIG(status)})")


def read_macho(path: str, data: bytes, arch: str | None = None) -> Image:
    try:
        if data[:4] in FAT_MAGICS:
            try:
                slices = fat_slices(data)
            except Truncated:
                raise Truncated(path, len(data)) from None
            for _cpu, off, size in slices:
                _check_load_commands(path, data, off, size)
        else:
            _check_load_commands(path, data)
    except struct.error:
        raise Truncated(path, len(data)) from None
    _parse_in_child_first(path, len(data))
    lief = _lief()
    try:
        _fats, found = _parse(lief, path, data)
    except Exception as exc:  # LIEF raises little, but never let it through
        raise BadBinary(f"{path}: corrupt Mach-O file ({exc})") from None
    if not found:
        raise BadBinary(f"{path}: corrupt Mach-O file (LIEF could not parse it)")
    binaries = [b for b, _off in found]
    with warnings.catch_warnings():  # LIEF warns about unknown enum values in corrupt files
        warnings.simplefilter("ignore")
        archs = [_arch_of(b) for b in binaries]
    want = arch or host_arch()
    notes = []
    if want in archs:
        at = archs.index(want)
    elif arch is not None:
        raise BadBinary(f"{path}: no {arch} slice (it has: {', '.join(archs)})")
    else:
        at = 0
        if len(archs) > 1:
            notes.append(f"no slice for the host's {want}; showing {archs[0]} (pick one with --arch)")
    try:
        with warnings.catch_warnings():  # LIEF warns about unknown enum values in corrupt files
            warnings.simplefilter("ignore")
            img = _image(path, binaries[at], lief)
    except BadBinary:
        raise
    except Exception as exc:
        raise BadBinary(f"{path}: corrupt Mach-O file ({type(exc).__name__}: {str(exc)[:120]})") from None
    img.slices = archs
    img.slice_offset = found[at][1]
    img.notes = notes + img.notes
    return img


def _image(path: str, b, lief) -> Image:
    flags = {_enum_name(f) for f in b.header.flags_list}
    ftype = _enum_name(b.header.file_type)
    img = Image(path=path, format="Mach-O", arch=_arch_of(b), file_type=FILE_TYPES.get(ftype, ftype.lower()),
                pie="PIE" in flags, bits=64 if "64" in _enum_name(b.header.magic) else 32, endian="little",
                bind_now=True)
    img.interpreter = _text(b.dylinker.name) if b.has_dylinker else None
    img.entry = int(b.entrypoint) if b.has_entrypoint else None
    img.libraries = [Library(_text(lib.name), LIB_KINDS.get(_enum_name(lib.command), _enum_name(lib.command).lower()))
                     for lib in b.libraries]
    img.segments = [Segment(_text(s.name), int(s.virtual_address), int(s.virtual_size), int(s.file_offset),
                            int(s.file_size), _prot(int(s.init_protection))) for s in b.segments]
    img.sections = [Section(f"{_text(s.segment_name)},{_text(s.name)}", int(s.virtual_address), int(s.size),
                            int(s.offset), _enum_name(s.type)) for s in b.sections]
    if b.has_uuid:
        h = bytes(b.uuid.uuid).hex().upper()
        img.uuid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    img.code_signature = bool(b.has_code_signature)
    img.symbols = len(b.symbols)
    img.imports = _imports(img, b)
    for s in b.sections:
        if s.name == "__go_buildinfo":
            img.go = go_build_info(bytes(s.content))
    return img


def _imports(img: Image, b) -> list[ImportSlot]:
    """One row per bind: a slot in both the bind and the weak-bind table (C++'s
    ``operator new`` in an image that also defines weak symbols) has two, as
    dyld applies both: the bind, then weak-def coalescing over it; so has a slot
    a table binds twice (dyld applies both in order, as llvm-objdump lists them)."""
    slots: list[ImportSlot] = []
    twolevel = "TWOLEVEL" in {_enum_name(f) for f in b.header.flags_list}
    for bind in b.bindings:
        kind = type(bind).__name__
        addr = int(bind.address)
        sym = _text(bind.symbol.name) if bind.has_symbol else "?"
        lib = _text(bind.library.name) if bind.has_library else _special_ordinal(bind.library_ordinal)
        if kind == "IndirectBindingInfo":  # no bind opcodes (before macOS 10.6): the ordinal in the nlist's n_desc
            lib = NLIST_ORDINALS.get(bind.library_ordinal, lib) if twolevel else "<flat lookup>"
        weak = bool(getattr(bind, "weak_import", False))
        if kind == "DyldBindingInfo":
            cls = _enum_name(bind.binding_class)
            mode = "lazy" if cls == "LAZY" else "eager"
            reloc = f"BIND_TYPE_{_enum_name(bind.binding_type)}" + ("" if cls == "STANDARD" else f" ({cls.lower()})")
            if cls == "WEAK":
                # The weak-bind table (LC_DYLD_INFO) has no library ordinal: each entry is a
                # coalesced definition dyld looks up in load order, what chained fixups say
                # with the weak-lookup ordinal; not a weak import (LIEF reports one).
                lib, weak = WEAK_LOOKUP, False
        elif kind == "ChainedBindingInfo":
            mode, reloc = "eager", f"DYLD_CHAINED_{_enum_name(bind.ptr_format)}"
        else:
            mode, reloc = "eager", kind.removesuffix("BindingInfo").lower() or "bind"
        sec = img.section_of(addr)
        slots.append(ImportSlot(sym, lib, addr, sec.name if sec else None, mode, reloc, None, weak))
    return slots


WEAK_LOOKUP = "<weak lookup>"  # a coalesced (weak) definition: the first image in load order that has one


# n_desc's special ordinals, as dyld reads them (MachOAnalyzer::libOrdinalFromDesc), which also takes every
# ordinal of an image without MH_TWOLEVEL for a flat lookup
NLIST_ORDINALS = {0: "<self>", 0xFE: "<flat lookup>", 0xFF: "<main executable>"}


def _special_ordinal(ordinal: int) -> str | None:
    return {0: "<self>", -1: "<main executable>", -2: "<flat lookup>", -3: WEAK_LOOKUP}.get(ordinal)
