"""gotrace inspect and gotrace stubs: what a binary asks of its loader."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import JsonOpt, stdout_console

FileArg = Annotated[Path, typer.Argument(help="An ELF, Mach-O or fat (universal) Mach-O file.", show_default=False)]
ArchOpt = Annotated[Optional[str], typer.Option("--arch", help="Fat Mach-O slice to read (x86_64, arm64 …).",
                                                show_default="the host's, else the first")]
AllOpt = Annotated[bool, typer.Option("--all", help="Show every row, not the first 40 per table.")]
LIMIT = 40


def inspect_command(file: FileArg, arch: ArchOpt = None, show_all: AllOpt = False, as_json: JsonOpt = False) -> None:
    """What a binary asks of its loader: libraries, segments, imports.

    Format, architecture(s), file type, PIE, interpreter or dylinker,
    libraries, segments, build-id or LC_UUID, code signature, Go build info,
    and the import table: one row per bound slot (symbol, library, slot
    address, section, eager or lazy, relocation or bind type). Examples:

      gotrace inspect ./hello
      gotrace inspect --arch arm64 --json ./universal

    Tables show their first 40 rows (--all shows every one); --json always
    has every row.
    """
    from ..binary import open_image  # here, not at start-up: other commands need none of it
    from ..render.binary import render_image

    img = open_image(file, arch)
    if as_json:
        sys.stdout.write(json.dumps(img.to_dict(), indent=2) + "\n")
        return
    render_image(img, stdout_console(), None if show_all else LIMIT)


def stubs_command(file: FileArg, arch: ArchOpt = None, show_all: AllOpt = False, as_json: JsonOpt = False) -> None:
    """Stub and pointer sections slot by slot; exit 1 on anomalies.

    ELF .plt, .plt.sec, .got and .got.plt; Mach-O __stubs, __symbol_stub1,
    __stub_helper, __la_symbol_ptr, __got, __nl_symbol_ptr and __auth_got:
    each slot's symbol, what the file holds there and what the loader will do.

    Exits 1 when it finds an anomaly: stub sections of zeros or 0xCC, lazy
    pointers outside every segment or not back into the PLT / __stub_helper,
    binds to a library the image does not load, a Mach-O without LC_UUID, or
    an architecture other than --arch's, or the host's for a file of the
    host's own format (a Mach-O on Linux is not judged by the CPU).
    """
    from ..arch import host_arch, host_format
    from ..binary.open import read_image
    from ..binary.stubs import check
    from ..render.binary import render_stubs

    img, data = read_image(file, arch)
    report = check(img, data, want_arch=arch, host_arch=host_arch(), host_format=host_format())
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        render_stubs(report, stdout_console(), None if show_all else LIMIT)
    if report.anomalies:
        raise typer.Exit(1)
