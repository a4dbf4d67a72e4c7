"""What a loader error's explanation checks of a file that is on this machine.

A pasted "Library not loaded" names files; where they exist here (the machine that
failed, or a CI artifact unpacked beside the log), the explanation says what they are
instead of guessing: there or not, which architectures (every slice of a fat file), the
install name or soname, LC_RPATHs or DT_RPATH/DT_RUNPATH, and whether a symbol (and
version) is exported. Mach-O is read with LIEF after the same guarded parse `inspect`
uses (a hostile file cannot hang or crash gotrace); ELF with gotrace's own reader.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

from ..errors import GotraceError
from . import facts, macho_slices


@dataclass
class FileFacts:
    path: str
    state: str  # "file" | "missing" | "directory" | "unreadable"
    format: str | None = None  # "Mach-O" | "ELF" | None (neither)
    archs: list = field(default_factory=list)  # Mach-O: every slice; ELF: its machine and class
    elf_class: str | None = None  # ELFCLASS32 | ELFCLASS64
    install_name: str | None = None  # Mach-O LC_ID_DYLIB, ELF DT_SONAME
    rpaths: list = field(default_factory=list)  # LC_RPATH, or DT_RPATH + DT_RUNPATH, as written
    needed: list = field(default_factory=list)  # LC_LOAD_DYLIB…, or DT_NEEDED
    version_defs: list = field(default_factory=list)  # ELF DT_VERDEF names
    uuids: list = field(default_factory=list)  # Mach-O LC_UUID per slice
    note: str | None = None  # why something could not be read


def file_facts(path: str) -> FileFacts:
    """The facts of ``path`` as it is now (never raises for a bad file: ``note`` says)."""
    if not os.path.lexists(path):
        return FileFacts(path, "missing")
    if os.path.isdir(path):
        return FileFacts(path, "directory")
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        return FileFacts(path, "unreadable", note=exc.strerror)
    out = FileFacts(path, "file")
    if head[:4] == b"\x7fELF":
        out.format = "ELF"
        out.elf_class = "ELFCLASS64" if head[4:5] == b"\x02" else "ELFCLASS32"
        a = facts.file_arch(path)
        out.archs = [a] if a else []
        obj = facts.dyn_object(path)
        if obj is not None:
            out.install_name, out.needed = obj.soname, list(obj.needed)
            out.rpaths, out.version_defs = list(obj.rpath) + list(obj.runpath), list(obj.version_defs[1:])
        return out
    sl = macho_slices.slices(path)
    if not sl:
        return out
    out.format = "Mach-O"
    out.archs = [s.arch for s in sl]
    out.uuids = [s.uuid for s in sl]
    fat, b = _macho(path, out.archs[0], out)
    if b is not None:
        _macho_commands(b, out)
    del b, fat  # LIEF's binaries live only as long as their fat file: drop them in that order
    return out


def _macho(path: str, arch: str | None, out: FileFacts | None = None):
    """(the fat file, LIEF's binary of one slice), after the guarded parse; (None, None) (``out.note``
    set) if refused. The caller keeps the fat file while it reads the binary (LIEF frees the
    slices with it)."""
    from .macho import _lief
    from .open import read_image

    try:
        read_image(path, arch)
    except GotraceError as exc:
        if out is not None:
            out.note = exc.message
        return None, None
    lief = _lief()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fat = lief.MachO.parse(path)
        if fat is None:
            return None, None
        from .macho import _arch_of

        for b in fat:
            if arch is None or _arch_of(b) == arch:
                return fat, b
    return fat, None


def _macho_commands(b, out: FileFacts) -> None:
    from .macho import _text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in b.commands:
            name = type(c).__name__
            if name == "RPathCommand":
                out.rpaths.append(_text(c.path))
            elif name == "DylibCommand":
                if "ID_DYLIB" in str(c.command):
                    out.install_name = _text(c.name)
                else:
                    out.needed.append(_text(c.name))


def exports(path: str, symbol: str, arch: str | None = None) -> list[str] | None:
    """Whether ``path`` exports ``symbol``: [] no; [""] yes (unversioned); ELF: the versions it
    is defined at. None: the file cannot be read here. Mach-O names carry C's underscore."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"\x7fELF":
        obj = facts.dyn_object(path)
        if obj is None:
            return None
        defs = obj.definitions[symbol] if symbol in obj.definitions else []
        return [d.version or "" for d in defs]
    fat, b = _macho(path, arch)
    if b is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = {str(s.name) for s in b.exported_symbols}
    del b, fat
    return [""] if symbol in names else []
