"""`gotrace bench-bind`: the per-symbol binding cost of one or two sides (goenv/bindbench.py) as a table."""
from __future__ import annotations

from rich.console import Console

from .format import ID, NUM, print_table


def _who(side) -> str:
    arch, translator = (side["arch"], side["translator"]) if isinstance(side, dict) else (side.arch, side.translator)
    return f"{arch}" + (f" via {translator}" if translator else " native")


def render_bench(sides: list, runs: int, con: Console) -> None:
    """first - warm per symbol: natively the lazy binding (and cold caches); under a translator also the
    translation of the function's own code, which dominates (qemu: ~30× the guest lookup itself), so it
    is named for what it is, never "binding cost"."""
    cols = [("symbol", ID)]
    for s in sides:
        cols += [(f"{_who(s)} first − warm", NUM), ("warm call", NUM)]
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
    print_table(con, f"first call's extra time over the second, per symbol (median of {runs} processes each): "
                "the lazy binding, and under a translator the translation of the function's code", cols, rows)
    for s in sides:
        sm = s.summary()
        con.print(f"{_who(s)}: first call's extra time, median {sm['median_bind_ns'] / 1e3:,.1f} µs over "
                  f"{sm['symbols']} symbols" + (" (binding and translating the function's code)"
                                                 if _translator(s) else " (the lazy binding)"))
    if len(sides) == 2:
        a, b = (s.summary()["median_bind_ns"] for s in sides)
        con.print(f"{_who(sides[1])} against {_who(sides[0])}: the first call's extra time is {b / max(a, 1):,.0f}× "
                  "as long; most of it is translating each function's code, not the symbol lookup "
                  "(gotrace bind --arch times the guest's lookups themselves)")


def _translator(side):
    return side["translator"] if isinstance(side, dict) else side.translator


def _ms(ns: float) -> str:
    return f"{ns / 1e6:,.2f} ms" if ns >= 1e5 else f"{ns / 1e3:,.1f} µs"


def render_load(res: dict, con: Console) -> None:
    """`gotrace bench-bind --stage load`: exec to main per side, with N imports and none."""
    n = res["imports"]
    rows = []
    for s in res["sides"]:
        e = s["exec_to_main_ns"]
        lo, hi = s["per_import_iqr_ns"]
        per = (f"{s['per_import_ns']:,.0f} ns ({lo:,.0f}–{hi:,.0f})" if s["per_import_resolved"]
               else f"below noise ({lo:,.0f}–{hi:,.0f} ns)")
        rows.append([_who(s), _ms(e["none"]), _ms(e["imports"]), per, str(s["runs"])])
    print_table(con, f"exec to main, median over fresh processes ({n:,} imports against none)",
                [("side", ID), ("no imports", NUM), (f"{n:,} imports", NUM), ("per import (IQR)", NUM),
                 ("runs", NUM)],
                rows)
    if "ratio_exec_to_main" in res:
        a, b = (_who(s) for s in res["sides"])
        per = res["ratio_per_import"]
        con.print(f"{b} against {a}: exec to main {res['ratio_exec_to_main']:,.1f}× as long", highlight=False)
        con.print(f"binding per import {per:,.1f}× as costly" if per is not None else
                  "binding per import: not resolved above the run-to-run noise on both sides; "
                  "raise --imports or --runs", highlight=False)
