"""gotrace bench-bind: binding cost per symbol, native and translated, without a tracer."""
from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from .options import JsonOpt
from .output import err_console


def bench_bind_command(
    arch: Annotated[Optional[str], typer.Option("--arch", help="Also run the probe as this architecture "
                    "(arm64 …) through its binfmt_misc translator, and compare.", show_default=False)] = None,
    runs: Annotated[int, typer.Option("--runs", "-r", min=3, help="Fresh processes per side (medians).")] = 20,
    register_binfmt: Annotated[bool, typer.Option("--register-binfmt", help="Register qemu-user's handler for "
                               "this run if none is (root).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """What binding one symbol costs, native and translated, no tracer.

    A probe program built for the target architecture times each of 26 libm
    functions' first call (ld.so binds its PLT slot, then the call runs)
    against its second, in fresh processes: first - warm is the lazy-binding
    cost per symbol, with no tracer in the way. With --arch the same probe
    also runs translated, and the ratio is what translation costs at the
    dynamic-linking stage. Examples:

      gotrace bench-bind
      gotrace bench-bind --arch arm64 --runs 30 --json

    The probe is built with the target's C compiler on first use and cached.
    """
    from rich.console import Console

    from ..goenv.bindbench import run
    from ..render.bench_bind import render_bench

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
    render_bench(sides, runs, Console(highlight=False))
