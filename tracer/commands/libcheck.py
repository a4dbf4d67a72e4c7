"""gotrace libcheck: the architecture of each library a cgo build will link."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import JsonOpt, stdout_console
from ..arch import canonical, goarch as goarch_of
from ..errors import GotraceError



def _go_env(key: str) -> str | None:
    try:
        out = subprocess.run(["go", "env", key], capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def libcheck_command(
    flags: Annotated[Optional[list[str]], typer.Argument(help="Linker flags (-L DIR, -lNAME) after --.",
                                                         show_default=False)] = None,
    package: Annotated[Optional[Path], typer.Option("--package", help="A Go package directory: use its #cgo LDFLAGS.",
                                                    show_default=False)] = None,
    goarch: Annotated[Optional[str], typer.Option("--arch", "--goarch", help="Target architecture (arm64, amd64 "
                                                  "or x86_64 …).", show_default="go env GOARCH")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find each -lNAME as the linker would; check its architecture.

    Each library is searched for the way the linker would (the -L directories,
    then the C compiler's). Examples:

      gotrace libcheck -- -L/opt/lib -lfoo -lm
      gotrace libcheck --package ./mypkg     # the package's #cgo LDFLAGS
      gotrace libcheck --arch arm64 -- -lm

    Reports ELF e_machine, fat Mach-O slices, .tbd stub targets and static
    archives' members. Exits 1 when a library is missing or of the wrong
    architecture.
    """
    from ..goenv.libcheck import check_libraries, package_ldflags, to_dicts  # on use: start-up stays light

    args = list(flags or [])
    if package is not None:
        if not package.is_dir():
            raise GotraceError(f"{package}: not a directory (--package wants a Go package directory)")
        args += package_ldflags(str(package))
    if not any(a.startswith("-l") for a in args):
        raise GotraceError("no -lNAME to check: pass linker flags after --, or --package DIR with #cgo LDFLAGS")
    goarch = goarch or os.environ.get("GOARCH") or _go_env("GOARCH")
    goarch = goarch_of(canonical(goarch) or goarch) if goarch else goarch  # x86_64 is amd64 to Go
    if not goarch:
        raise GotraceError("cannot tell the target architecture: pass --goarch or install Go")
    cc = (os.environ.get("CC") or _go_env("CC") or "gcc").split()[0]
    results = check_libraries(args, goarch, cc)
    if as_json:
        sys.stdout.write(json.dumps({"goarch": goarch, "libraries": to_dicts(results)}, indent=2) + "\n")
    else:
        from ..render.checks import render_libraries

        render_libraries(results, stdout_console())
    if any(r.status != "pass" for r in results):
        raise typer.Exit(1)
