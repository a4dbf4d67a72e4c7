"""The images table of a capture: where each object was loaded, against where it was linked.

Backends report ld.so's load bias (``l_addr``) per object; the link-time base
comes from the file (binary/facts.py, model.elf_link_base's rule), so
load base = link-time base + slide, as /proc/PID/maps shows it.
"""
from __future__ import annotations

from ..binary import facts


def image_rows(raw: list[tuple[int, str, int]] | None) -> list[dict]:
    """The images table: link-time base and load base from each file's first PT_LOAD.

    ld.so's load bias (l_addr) is the slide: runtime = link-time + slide.
    """
    rows = []
    for row in raw or ():
        if isinstance(row, dict):  # a backend that knows both bases already (dyld-print: Mach-O __TEXT)
            rows.append(row)
            continue
        pid, path, l_addr = row
        link = facts.link_base(path) if path and path.startswith("/") else None
        slide = int(l_addr)
        slide = slide - (1 << 64) if slide >= 1 << 63 else slide  # a bias above the link address wraps
        rows.append({"pid": int(pid), "path": path, "link_base": link, "slide": slide,
                     "load_base": (link + slide) & 0xFFFFFFFFFFFFFFFF if link is not None else None})
    return rows
