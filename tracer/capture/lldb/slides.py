"""Image slides as lldb itself computes them (`image list -o`).

lldb's `image list -o` prints, per module, the load address of the object file's
header minus its file address (lldb CommandObjectTarget.cpp, SBModule.cpp): the
slide of a Mach-O image (cache dylibs included, which have no file here) and the
load bias of an ELF one, with nothing read from the file.
"""
from __future__ import annotations

INVALID = 0xFFFFFFFFFFFFFFFF


def lldb_slides(target) -> list[dict]:
    """One row per module: path, load_base, link_base, slide (None where lldb has no load address)."""
    rows = []
    for module in target.module_iter():
        spec = module.GetFileSpec()
        header = module.GetObjectFileHeaderAddress()
        load, link = header.GetLoadAddress(target), header.GetFileAddress()
        load = None if load in (INVALID, None) else load
        link = None if link in (INVALID, None) else link
        rows.append({"path": spec.fullpath or spec.GetFilename() or "?", "load_base": load, "link_base": link,
                     "slide": load - link if load is not None and link is not None else None})
    return rows
