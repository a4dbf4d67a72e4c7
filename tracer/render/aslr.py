"""`gotrace aslr`: every image's link-time base, load base and slide as a table."""
from __future__ import annotations

from typing import Any

from rich.console import Console

from .format import ID, TEXT, print_table, signed_hex

LEVELS = {0: "off", 1: "partial (stack, mmap, vdso)", 2: "full"}


def render_aslr(doc: dict[str, Any], console: Console) -> None:
    if doc["randomize_va_space"] is not None:
        level = LEVELS.get(doc["randomize_va_space"], "unknown")
        console.print(f"ASLR on this system: {level} (kernel.randomize_va_space={doc['randomize_va_space']})")
    rows = []
    for r in doc["images"]:
        pic = "-" if r["position_independent"] is None else ("yes" if r["position_independent"] else "no")
        rows.append([str(r["pid"]), r["path"], signed_hex(r["link_base"]), signed_hex(r["load_base"]),
                     signed_hex(r["slide"]), pic, r["source"]])
    print_table(console, None, [("pid", ID), ("image", TEXT), ("link-time base", ID), ("load base", ID), ("slide", ID),
                                ("PIE/PIC", ID), ("from", ID)], rows)
