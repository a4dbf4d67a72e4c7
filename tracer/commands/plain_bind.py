"""A plain ``gotrace bind [options] -- CMD ...``, run without loading Typer.

Typer and click take ~40 ms to import and to build the command tree, all of
it before the traced command may start, so all of it on the command's wall
time. The console script therefore recognises the plain form itself —
``-o/--output D``, ``-b/--backend B``, ``-q/--quiet``, ``--force``,
``--json``, ``--json-out FILE``, each at most once, then ``--`` and the
command — and runs it through the same ``run_bind`` the Typer command
calls. Anything else, or anything this scan is unsure of (``--help``,
``--arch``, ``-oDIR``, a repeated option, a typo), goes to Typer, which owns
the grammar, the help and the usage errors. Failures reach the console's one handler either way:
the same line and the same exit code on both paths.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..capture.choose import NAMES

PRELAUNCH_BACKENDS = {"auto", "bpf", "bpftrace"}  # a plain bind these may run gets its tracer started early

_VALUE_OPTIONS = {"-o": "output", "--output": "output", "-b": "backend", "--backend": "backend",
                  "--json-out": "json_out"}
_FLAG_OPTIONS = {"-q": "quiet", "--quiet": "quiet", "--force": "force", "--json": "as_json"}


@dataclass(frozen=True)
class PlainBind:
    command: list[str]
    output: str | None = None
    backend: str = "auto"
    quiet: bool = False
    force: bool = False
    as_json: bool = False
    json_out: str | None = None


def scan(cli_argv: list[str]) -> PlainBind | None:
    """The options of a plain bind command line; None for anything else."""
    if not cli_argv or cli_argv[0] != "bind" or "--" not in cli_argv:
        return None
    cut = cli_argv.index("--")
    options, command = cli_argv[1:cut], cli_argv[cut + 1:]
    found: dict[str, object] = {}
    i = 0
    while i < len(options):
        opt = options[i]
        name, eq, value = opt.partition("=") if opt.startswith("--") else (opt, "", "")
        if opt in _FLAG_OPTIONS:
            field, value = _FLAG_OPTIONS[opt], True
        elif name in _VALUE_OPTIONS:
            field = _VALUE_OPTIONS[name]
            if not eq:
                i += 1
                if i >= len(options):
                    return None
                value = options[i]
            if not value or (field == "backend" and value not in NAMES):
                return None
        else:
            return None  # --arch, --attach, --help, -oDIR, a typo: Typer's to handle
        if field in found:
            return None  # repeated: Typer's rule (the last wins) is left to Typer
        found[field] = value
        i += 1
    return PlainBind(command, **found) if command else None


def bind_command(cli_argv: list[str]) -> list[str] | None:
    """CMD of a plain bind that gotrace's BPF program or bpftrace may trace
    (``-b auto|bpf|bpftrace``): the command the console starts a tracer for early;
    None for anything else."""
    plain = scan(cli_argv)
    return plain.command if plain is not None and plain.backend in PRELAUNCH_BACKENDS else None


def run(plain: PlainBind) -> int:
    """Run a scanned plain bind; its exit code (failures propagate to the console)."""
    from .. import heavy
    from .bind_run import run_bind

    heavy.after_import("pyarrow", heavy.system_allocator)  # as the Typer app does
    return run_bind(plain.command, Path(plain.output) if plain.output else None, plain.backend,
                    force=plain.force, quiet=plain.quiet, as_json=plain.as_json, json_out=plain.json_out)
