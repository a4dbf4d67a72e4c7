"""gotrace doctor: one line per check of the Go/cgo environment."""
from __future__ import annotations

import json
import sys

import typer

from .options import JsonOpt, stdout_console


def doctor_command(as_json: JsonOpt = False) -> None:
    """Check `go env` against the machine: GOARCH, translator, CC.

    GOROOT belongs to the go on PATH; the toolchain's own architecture;
    GOOS/GOARCH is a real target; GOARCH against the host CPU and the
    binfmt_misc translator that would run foreign binaries; with
    CGO_ENABLED=1, a C compiler that exists and targets GOARCH. On a Mac (not
    run on macOS): the terminal under Rosetta, the go binary's own build,
    every go on PATH, Homebrew's prefix, clang's target with cgo's -arch, and
    LC_UUID (macOS 26 refuses binaries without it).

    Exits 1 when a check fails. Variables are read as `go env` sees them, so
    a configuration is checked by setting it for the one command. Examples:

      gotrace doctor
      GOARCH=arm64 CC=aarch64-linux-gnu-gcc CGO_ENABLED=1 gotrace doctor
      gotrace doctor --json | jq '.checks[] | select(.status != "pass")'

    Each line is pass, warn or fail, with the fix for what is not a pass.
    """
    from ..goenv.doctor import run_checks, to_dicts  # on use: start-up stays light
    from ..render.checks import render_checks

    checks = run_checks()
    if as_json:
        sys.stdout.write(json.dumps({"checks": to_dicts(checks)}, indent=2) + "\n")
    else:
        render_checks(checks, stdout_console())
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(1)
