"""gotrace inspect and gotrace stubs: what a binary asks of its loader."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import stdout_console, JsonOpt, handles_errors

FileArg = Annotated[Path, typer.Argument(help="An ELF, Mach-O or fat (universal) Mach-O file.", show_default=False)]
ArchOpt = Annotated[Optional[str], typer.Option("--arch", help="Fat Mach-O slice to read (x86_64, arm64 …) "
                                                "[default: the host's, else the first].", show_default=False)]
AllOpt = Annotated[bool, typer.Option("--all", help="Show every row, not the first 40 per table.")]
LIMIT = 40


@handles_errors
def inspect_command(file: FileArg, arch: ArchOpt = None, show_all: AllOpt = False, as_json: JsonOpt = False) -> None:
    """What a binary asks of its loader: format, architecture(s), file type, PIE,
    interpreter or dylinker, libraries, segments, build-id / LC_UUID, code signature,
    Go build info, and the import table (one row per bound slot: symbol, library,
    slot address, section, eager or lazy, relocation or bind type).

    Examples: gotrace inspect ./hello;  gotrace inspect --arch arm64 ./universal --json
    """
    from ..binary import open_image  # here, not at start-up: other commands need none of it
    from ..render_binary import render_image

    img = open_image(file, arch)
    if as_json:
        sys.stdout.write(json.dumps(img.to_dict(), indent=2) + "\n")
        return
    render_image(img, stdout_console(), None if show_all else LIMIT)


@handles_errors
def stubs_command(file: FileArg, arch: ArchOpt = None, show_all: AllOpt = False, as_json: JsonOpt = False) -> None:
    """The stub and pointer sections slot by slot (ELF .plt, .plt.sec, .got, .got.plt;
    Mach-O __stubs, __symbol_stub1, __stub_helper, __la_symbol_ptr, __got,
    __nl_symbol_ptr, __auth_got): each slot's symbol, what the file holds there and
    what the loader will do with it.

    Exits 1 when it finds an anomaly: stub sections of zeros or 0xCC, lazy pointers
    outside every segment or not back into the PLT / __stub_helper, binds to a
    library the image does not load, a Mach-O without LC_UUID, or an architecture
    other than the host's (or --arch's).
    """
    from ..binary.macho import host_arch
    from ..binary.open import read_image
    from ..binary.stubs import check
    from ..render_binary import render_stubs

    img, data = read_image(file, arch)
    report = check(img, data, want_arch=arch, host_arch=host_arch())
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        render_stubs(report, stdout_console(), None if show_all else LIMIT)
    if report.anomalies:
        raise typer.Exit(1)
