"""What a live process under lldb looks like: image slides and GOT slots.

The same questions `gotrace aslr` and `gotrace stubs` answer from files and
/proc, asked of the process lldb holds: load bases from lldb's module list
(where each image's header is mapped), link-time bases and import slots from
gotrace's own reading of the file, and each slot's current value read from
the process's memory and named by lldb's symbolication.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from .. import procfs
from ..binary.aslr import ImageBase, image_facts
from ..binary.open import read_image
from ..binary.sniff import BadBinary
from ..binary.stubs import Anomaly, check

INVALID = 0xFFFFFFFFFFFFFFFF


def image_bases(target) -> list[ImageBase]:
    """Every module lldb has loaded: link-time base, load base, slide."""
    process = target.GetProcess()
    pid = process.GetProcessID() if process and process.IsValid() else 0
    rows = []
    for module in target.module_iter():
        spec = module.GetFileSpec()
        path = spec.fullpath or spec.GetFilename() or "?"
        header = module.GetObjectFileHeaderAddress()
        load = header.GetLoadAddress(target)
        load = None if load in (INVALID, None) else load
        facts = image_facts(path) if os.path.isfile(path) else None
        link, pic = (facts[0], facts[1]) if facts else (header.GetFileAddress(), None)
        if link == INVALID:
            link = None
        slide = load - link if load is not None and link is not None else None
        rows.append(ImageBase(pid, path, link, load, slide, pic, "lldb"))
    return rows


@dataclass
class LiveSlot:
    address: int  # runtime address of the slot
    symbol: str
    mode: str  # eager | lazy
    value: int | None  # what the slot holds now
    state: str  # bound | unbound | null | unreadable | outside
    target: str | None  # symbol@module the value points into


def _module_range(target, module) -> tuple[int, int] | None:
    lo, hi = None, None
    for i in range(module.GetNumSections()):
        sec = module.GetSectionAtIndex(i)
        a = sec.GetLoadAddress(target)
        if a in (INVALID, None) or sec.GetByteSize() == 0:
            continue
        lo = a if lo is None else min(lo, a)
        hi = a + sec.GetByteSize() if hi is None else max(hi, a + sec.GetByteSize())
    return (lo, hi) if lo is not None else None


def live_stubs(target, path: str | None = None) -> tuple[str, list[LiveSlot], list[Anomaly]]:
    """The import slots of one loaded image (default: the main program) as they are now."""
    import lldb  # noqa: PLC0415 — present: we run inside lldb or after capture/lldb/loader.py

    process = target.GetProcess()
    if not process or not process.IsValid() or process.GetState() not in (lldb.eStateStopped,):
        raise ValueError("no stopped process: launch or attach, stop it, then run gotrace stubs")
    module = target.GetModuleAtIndex(0) if path is None else next(
        (m for m in target.module_iter() if m.GetFileSpec().fullpath == path
         or m.GetFileSpec().GetFilename() == os.path.basename(path)), None)
    if module is None or not module.IsValid():
        raise ValueError(f"no loaded image named {path}")
    file = module.GetFileSpec().fullpath
    try:
        img, data = read_image(file)
    except BadBinary as exc:
        raise ValueError(exc.message) from None
    if img.format != "ELF":
        raise ValueError(f"{file}: live slots are implemented for ELF only")
    load = module.GetObjectFileHeaderAddress().GetLoadAddress(target)
    slide = load - (img.link_base or 0)
    plt = [(s.addr + slide, s.addr + s.size + slide) for s in img.sections if s.name in (".plt", ".plt.sec")]
    own = _module_range(target, module)
    mapped = procfs.mapped_ranges(process.GetProcessID())
    report = check(img, data)
    anomalies = list(report.anomalies)
    slots = []
    err = lldb.SBError()
    width = img.bits // 8
    for imp in img.imports:
        addr = imp.address + slide
        value = process.ReadUnsignedFromMemory(addr, width, err)
        name = imp.symbol + (f"@{imp.version}" if imp.version else "")
        if not err.Success():
            slots.append(LiveSlot(addr, name, imp.mode, None, "unreadable", None))
            continue
        if value == 0:
            slots.append(LiveSlot(addr, name, imp.mode, 0, "null", None))
            continue
        so = target.ResolveLoadAddress(value)
        mod = so.GetModule()
        where = None
        if mod and mod.IsValid():
            sym = so.GetSymbol()
            where = f"{sym.GetName() if sym and sym.IsValid() else hex(value)}@{os.path.basename(mod.GetFileSpec().fullpath or '?')}"
        if any(a <= value < b for a, b in plt) or (imp.mode == "lazy" and own and own[0] <= value < own[1]
                                                    and mod and mod.GetFileSpec().fullpath == file):
            state = "unbound"  # a lazy slot still leading back into the PLT
        elif where is None and not any(lo <= value < hi for lo, hi in mapped):
            state = "outside"
            anomalies.append(Anomaly("slot-outside-images", f"{addr:#x} ({name})",
                                     f"holds {value:#x}, inside no mapping of the process: using it crashes"))
        elif where is None:  # mapped but unnamed: data (libc's stdout lives in its .bss), not a stray pointer
            state, where = "bound", f"{value:#x} (data, unnamed)"
        else:
            state = "bound"
        slots.append(LiveSlot(addr, name, imp.mode, value, state, where))
    return file, slots, anomalies


def slots_to_dicts(slots: list[LiveSlot]) -> list[dict]:
    return [asdict(s) for s in slots]
