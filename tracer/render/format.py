"""The formatting rules every rendering shares: numbers, durations, addresses, words, tables.

Tables never break an identifier: symbols, addresses, relocation types and
counts are kept whole in their cells (only free text and long paths wrap), a
table that cannot fit the terminal that way is printed as plain aligned rows,
and output that is not a terminal (a pipe, a file) is always plain rows, so
`gotrace inspect prog --all | grep SYMBOL` finds every symbol whole. What a
cell holds is never read as rich markup.
"""
from __future__ import annotations

from typing import Any, Sequence

ID, TEXT, NUM = "id", "text", "num"  # column kinds: never broken, may wrap, right-aligned and never broken
_GAP = 3  # what rich puts between columns (" │ ")
_MIN_TEXT = 12  # the narrowest a wrappable column may get


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


def count(n: int | None) -> str:
    """A count with thousands separators, the same way everywhere ('-' for none)."""
    return "-" if n is None else f"{n:,}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 process``, ``2 processes``, ``1,024 bindings``."""
    if n == 1:
        return f"1 {word}"
    return f"{n:,} {many or (word + 'es' if word.endswith(('s', 'x', 'sh', 'ch')) else word + 's')}"


def shown(v: Any) -> str:
    """A value for a cell or a line: '-' for nothing, never 'None'."""
    return "-" if v is None else str(v)


def print_table(console, title: str | None, cols: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> None:
    """``cols``: (header, kind) pairs, kind ID, TEXT or NUM. A rich table on a terminal
    wide enough to keep every ID and NUM cell whole, else plain aligned rows."""
    cells = [[shown(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, (h, _) in enumerate(cols)]
    need = sum(w if kind != TEXT else min(w, _MIN_TEXT) for w, (_, kind) in zip(widths, cols)) + _GAP * len(cols)
    if not console.is_terminal or need > console.width:
        _plain(console, title, cols, cells, widths)
        return
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(title) if title else None, title_justify="left", title_style="bold", show_edge=False,
              pad_edge=False)
    for (header, kind), w in zip(cols, widths):
        if kind == TEXT:
            t.add_column(header, overflow="fold")
        else:
            t.add_column(header, justify="right" if kind == NUM else "left", no_wrap=True, min_width=w)
    for r in cells:
        t.add_row(*[Text(v) for v in r])
    console.print(t)


def _plain(console, title, cols, cells, widths) -> None:
    def line(values):
        out = []
        for v, w, (_, kind) in zip(values, widths, cols):
            out.append(v.rjust(w) if kind == NUM else v.ljust(w))
        return "  ".join(out).rstrip()

    if title:
        console.print(title, markup=False, highlight=False, soft_wrap=True)
    console.print(line([h for h, _ in cols]), markup=False, highlight=False, soft_wrap=True)
    for r in cells:
        console.print(line(r), markup=False, highlight=False, soft_wrap=True)
