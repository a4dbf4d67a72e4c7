"""`gotrace aslr`: every image's link-time base, load base and slide as a table."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .format import signed_hex

LEVELS = {0: "off", 1: "partial (stack, mmap, vdso)", 2: "full"}


def render_aslr(doc: dict[str, Any], console: Console) -> None:
    level = LEVELS.get(doc["randomize_va_space"], "unknown")
    console.print(f"ASLR on this system: {level} (kernel.randomize_va_space={doc['randomize_va_space']})")
    t = Table(show_edge=False, pad_edge=False)
    for c in ("pid", "image", "link-time base", "load base", "slide", "PIE/PIC", "from"):
        t.add_column(c, overflow="fold")
    for r in doc["images"]:
        pic = "-" if r["position_independent"] is None else ("yes" if r["position_independent"] else "no")
        t.add_row(str(r["pid"]), r["path"], signed_hex(r["link_base"]), signed_hex(r["load_base"]),
                  signed_hex(r["slide"]), pic, r["source"])
    console.print(t)
