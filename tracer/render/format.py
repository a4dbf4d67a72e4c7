"""The few formatting rules every rendering shares: durations, addresses, plain tables."""
from __future__ import annotations

from typing import Any


def duration(v: int | float | None) -> str:
    """Nanoseconds in the largest unit that keeps one digit before the point."""
    if v is None:
        return "-"
    v = float(v)
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if v >= div:
            return f"{v / div:.1f} {unit}"
    return f"{v:.0f} ns"


def micros(ns) -> str:
    """Nanoseconds as µs (ms from one millisecond on), for latency columns side by side."""
    return "-" if ns is None else (f"{ns / 1e3:,.1f} µs" if ns < 1e6 else f"{ns / 1e6:,.2f} ms")


def hex_or_dash(v: int | None) -> str:
    return "-" if v is None else f"{v:#x}"


def signed_hex(v: int | None) -> str:
    """A slide: negative ones keep their sign."""
    return "-" if v is None else (f"-{-v:#x}" if v < 0 else f"{v:#x}")


def table(title: str, cols: list[str], rows: list[list[Any]] | None = None, numeric: bool = True):
    """A borderless rich table; the first column left, the others right when ``numeric``."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i == 0 or not numeric else "right", overflow="fold")
    for r in rows or ():
        t.add_row(*[str(x) for x in r])
    return t
