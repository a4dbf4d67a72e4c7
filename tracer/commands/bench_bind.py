"""gotrace bench-bind: binding cost per symbol, native and translated, without a tracer."""
from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from ._common import JsonOpt, handles_errors
from .output import err_console


@handles_errors
def bench_bind_command(
    arch: Annotated[Optional[str], typer.Option("--arch", help="Also run the probe as this architecture "
                    "(arm64 …) through its binfmt_misc translator, and compare.", show_default=False)] = None,
    runs: Annotated[int, typer.Option("--runs", "-r", min=3, help="Fresh processes per side (medians).")] = 20,
    register_binfmt: Annotated[bool, typer.Option("--register-binfmt", help="Register qemu-user's handler for "
                               "this run if none is (root).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Time each of 26 libm functions' first call (ld.so binds its PLT slot, then the call
    runs) against its second, in fresh processes of a probe program built for the target
    architecture: first - warm is the lazy-binding cost per symbol, with no tracer in the
    way. With --arch the same probe also runs translated, and the ratio is what
    translation costs at the dynamic-linking stage.
    """
    from rich.console import Console
    from rich.table import Table

    from ..bindbench import run

    def progress(i: int, n: int) -> None:
        if sys.stderr.isatty():
            err_console.print(f"\r[dim]run {i}/{n}[/]", end="")

    sides = [run(None, runs, progress=progress)]
    if arch:
        sides.append(run(arch, runs, register_binfmt, progress=progress))
    if sys.stderr.isatty():
        err_console.print("")
    if as_json:
        out = {"sides": [dict(s.summary(), per_symbol=s.per_symbol.to_dict(orient="records")) for s in sides]}
        if len(sides) == 2:
            out["ratio_median_bind"] = round(sides[1].summary()["median_bind_ns"] /
                                             max(sides[0].summary()["median_bind_ns"], 1), 2)
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    t = Table(title=f"binding cost per symbol (median of {runs} processes each)", title_justify="left")
    t.add_column("symbol")
    for s in sides:
        who = f"{s.arch}" + (f" via {s.translator}" if s.translator else " native")
        t.add_column(f"{who}\nbind", justify="right")
        t.add_column("warm call", justify="right")
    if len(sides) == 2:
        t.add_column("ratio", justify="right")
    merged = sides[0].per_symbol.set_index("symbol")
    other = sides[1].per_symbol.set_index("symbol") if len(sides) == 2 else None
    for sym, row in merged.iterrows():
        cells = [sym, f"{row.bind_ns / 1e3:,.1f} µs", f"{row.warm_ns} ns"]
        if other is not None and sym in other.index:
            o = other.loc[sym]
            cells += [f"{o.bind_ns / 1e3:,.1f} µs", f"{o.warm_ns} ns", f"{o.bind_ns / max(row.bind_ns, 1):,.0f}×"]
        t.add_row(*cells)
    con = Console(highlight=False)
    con.print(t)
    for s in sides:
        sm = s.summary()
        con.print(f"{s.arch}{' via ' + s.translator if s.translator else ' native'}: median binding cost "
                  f"{sm['median_bind_ns'] / 1e3:,.1f} µs over {sm['symbols']} symbols")
    if len(sides) == 2:
        a, b = (s.summary()["median_bind_ns"] for s in sides)
        con.print(f"translation multiplies the median binding cost by {b / max(a, 1):,.0f}×")
