"""`gotrace bench-bind`: the per-symbol binding cost of one or two sides (goenv/bindbench.py) as a table."""
from __future__ import annotations

from rich.console import Console

from .format import ID, NUM, print_table


def _who(side) -> str:
    return f"{side.arch}" + (f" via {side.translator}" if side.translator else " native")


def render_bench(sides: list, runs: int, con: Console) -> None:
    cols = [("symbol", ID)]
    for s in sides:
        cols += [(f"{_who(s)} bind", NUM), ("warm call", NUM)]
    if len(sides) == 2:
        cols.append(("ratio", NUM))
    merged = sides[0].per_symbol.set_index("symbol")
    other = sides[1].per_symbol.set_index("symbol") if len(sides) == 2 else None
    rows = []
    for sym, row in merged.iterrows():
        cells = [sym, f"{row.bind_ns / 1e3:,.1f} µs", f"{row.warm_ns:,} ns"]
        if other is not None and sym in other.index:
            o = other.loc[sym]
            cells += [f"{o.bind_ns / 1e3:,.1f} µs", f"{o.warm_ns:,} ns", f"{o.bind_ns / max(row.bind_ns, 1):,.0f}×"]
        elif other is not None:
            cells += ["-", "-", "-"]
        rows.append(cells)
    print_table(con, f"binding cost per symbol (median of {runs} processes each)", cols, rows)
    for s in sides:
        sm = s.summary()
        con.print(f"{_who(s)}: median binding cost {sm['median_bind_ns'] / 1e3:,.1f} µs over {sm['symbols']} symbols")
    if len(sides) == 2:
        a, b = (s.summary()["median_bind_ns"] for s in sides)
        con.print(f"translation multiplies the median binding cost by {b / max(a, 1):,.0f}×")
