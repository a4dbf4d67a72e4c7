"""gotrace bench-bind: binding cost, native and translated, without a tracer."""
from __future__ import annotations

import json
import platform
import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from ..errors import GotraceError
from .options import JsonOpt
from .output import err_console


DEFAULT_IMPORTS = 4000  # enough to rise above qemu's run-to-run noise here


class Stage(str, Enum):
    first_call = "first-call"
    load = "load"


def bench_bind_command(
    arch: Annotated[Optional[str], typer.Option("--arch", help="Also run the probe as this architecture and "
                    "compare: arm64 on Linux (binfmt_misc's qemu-user), x86_64 on an Apple Silicon Mac "
                    "(Rosetta 2).", show_default=False)] = None,
    stage: Annotated[Optional[Stage], typer.Option("--stage", help="first-call: each lazy PLT slot's first "
                     "call against its second (Linux; the default there). load: exec to main with N imports "
                     "and with none (dyld binds at load: the default and only stage on macOS).",
                     show_default=False)] = None,
    imports: Annotated[int, typer.Option("--imports", "-N", min=1, help="With --stage load: functions the "
                       "probe imports.")] = DEFAULT_IMPORTS,
    runs: Annotated[int, typer.Option("--runs", "-r", min=3, help="Fresh processes per probe and side "
                    "(medians).")] = 20,
    register_binfmt: Annotated[bool, typer.Option("--register-binfmt", help="Linux: register qemu-user's "
                               "handler for this run if none is (root).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Binding cost, native and translated, without a tracer.

    --stage first-call (Linux): a probe built for the target architecture
    times each of 26 libm functions' first call (ld.so binds its PLT slot,
    then the call runs) against its second, in fresh processes: first - warm
    is the lazy binding natively; translated it also holds the translation
    of the function's code (most of it under qemu).

    --stage load (macOS's only stage: dyld binds every import while it loads):
    two probes per architecture, one importing N functions of a generated
    library and one importing none (the library loaded all the same), each
    exec'd in fresh processes by a small timer that reads the clock just
    before the exec; the probe reads it first thing in main. Timed: exec to
    main, i.e. the kernel's exec, the dynamic linker loading and binding, and
    for a foreign probe its translator starting. (imports - none) / N is the
    binding cost per import. A foreign probe runs translated by itself
    (qemu-user through binfmt_misc; an x86_64-only program under Rosetta 2),
    so no `arch` or qemu process is timed, only the translation.

    With --arch the ratio translated / native is printed. Examples:

      gotrace bench-bind                         # Linux: cost per symbol
      gotrace bench-bind --arch arm64 --register-binfmt   # and under qemu
      gotrace bench-bind --stage load --arch arm64 -N 2000 --json
      gotrace bench-bind --arch x86_64           # a Mac: against Rosetta 2

    The probes are built with the target's C compiler on first use and cached.
    """
    from rich.console import Console

    darwin = platform.system() == "Darwin"
    stage = stage or (Stage.load if darwin else Stage.first_call)
    if darwin and stage is Stage.first_call:
        raise GotraceError("dyld binds every import at load: macOS has no first-call binding to time; "
                           "use --stage load")

    def progress(i: int, n: int) -> None:
        if sys.stderr.isatty():
            err_console.print(f"\r[dim]round {i}/{n}[/]", end="")

    if stage is Stage.load:
        from ..goenv import loadbench
        from ..render.bench_bind import render_load

        res = loadbench.report(loadbench.run(arch, runs, imports, register_binfmt, progress=progress), imports)
        if sys.stderr.isatty():
            err_console.print("")
        if as_json:
            sys.stdout.write(json.dumps(res, indent=2) + "\n")
        else:
            render_load(res, Console(highlight=False))
        return

    from ..goenv.bindbench import run
    from ..render.bench_bind import render_bench

    sides = [run(None, runs, progress=progress)]
    if arch:
        sides.append(run(arch, runs, register_binfmt, progress=progress))
    if sys.stderr.isatty():
        err_console.print("")
    if as_json:
        out = {"stage": "first-call",
               # what bind_ns is: first call minus warm call (translated: code translation included)
               "measures": "first call minus second call per symbol: the lazy binding, and under a translator the "
                           "translation of the function's code",
               "sides": [dict(s.summary(), per_symbol=s.per_symbol.to_dict(orient="records")) for s in sides]}
        if len(sides) == 2:
            out["ratio_median_bind"] = round(sides[1].summary()["median_bind_ns"] /
                                             max(sides[0].summary()["median_bind_ns"], 1), 2)
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    render_bench(sides, runs, Console(highlight=False))
