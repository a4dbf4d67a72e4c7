"""The ``gotrace`` console script: the one entry point, its fast paths, and the one place failures are caught.

Every failure anywhere below — a GotraceError, a bug, Ctrl-C — arrives at
:func:`main` and becomes one line and an exit code (output.report_failure,
errors.one_line's rule), as memray's ``main`` does; commands only raise.

Two command lines are answered without Typer, because start-up is their whole
cost or lands on a traced command's wall time:

* ``inspect --json [--arch A] [--all] FILE`` — scripts and CI jobs run it over
  every binary they ship; Typer and rich take ~0.1 s to import, five times
  what ``readelf`` needs for a whole library;
* a plain ``bind [-o D] [-b B] [-q] [--force] [--json] -- CMD`` (plain_bind.py)
  — Typer and click would add ~40 ms before the command may start. Where
  gotrace's agent and its bind server run, the whole bind is handed to the
  server, which has everything loaded (bind_client.py); otherwise the tracer
  (gotrace's BPF loader, or bpftrace) is started first of all, so it attaches
  its probes while the rest loads (capture/prelaunch.py).

Every other command line, including any these scans are unsure of, goes to
the Typer app (app.py), which owns the grammar, the help and usage errors.
"""
from __future__ import annotations

import os
import sys

from .. import dispositions  # noqa: F401 — first, to note the signal mask gotrace inherited


def main(argv: list[str] | None = None, fast_paths: bool = True) -> None:
    """Run one command line and exit with its code (``fast_paths=False``: through Typer only)."""
    try:
        code = _run(sys.argv[1:] if argv is None else argv, fast_paths)
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:  # noqa: BLE001 — the one place: anticipated, a bug or Ctrl-C, one line each
        from .output import report_failure

        code = report_failure(exc)
    _exit_now(code)


def _run(argv: list[str], fast_paths: bool):
    if fast_paths:
        request = _inspect_json_request(argv)
        if request is not None:
            return _inspect_json(*request)
        if argv[:1] == ["bind"]:
            from ..capture import prelaunch
            from . import plain_bind

            plain = plain_bind.scan(argv)
            if plain is not None and plain.backend in ("auto", "bpf"):
                from . import bind_client

                code = bind_client.run(argv, plain.command)  # the agent's bind server, if one runs
                if code is not None:
                    return code
            if plain is not None and plain.backend in plain_bind.PRELAUNCH_BACKENDS:
                prelaunch.start(plain.command, plain.backend)  # the tracer attaches while the rest loads
            if plain is not None:  # no Typer: the command starts ~40 ms sooner
                return plain_bind.run(plain)
    from .app import run_app

    return run_app(argv)


def _exit_now(code) -> None:
    """Exit without tearing the interpreter down. After `bind` that teardown —
    finalising pandas, pyarrow and every module — takes ~0.1 s of the user's
    wall time for nothing: sessions and outputs are closed explicitly, and no
    gotrace code relies on atexit handlers."""
    if "tracer.capture.prelaunch" in sys.modules:  # a launch nobody took: its command never runs
        sys.modules["tracer.capture.prelaunch"].discard()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    try:
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def _inspect_json_request(argv: list[str]) -> tuple[str, str | None] | None:
    """``(file, arch)`` when argv is a plain ``inspect --json`` call, else None."""
    if len(argv) < 3 or argv[0] != "inspect" or "--json" not in argv:
        return None
    files, arch, rest = [], None, argv[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("--json", "--all"):
            pass
        elif arg == "--arch" and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
            arch = rest[i + 1]
            i += 1
        elif arg.startswith("--arch=") and len(arg) > len("--arch="):
            arch = arg[len("--arch="):]
        elif arg == "--":
            files.extend(rest[i + 1:])
            break
        elif arg.startswith("-"):
            return None  # -h, --help, a typo: Typer's to answer
        else:
            files.append(arg)
        i += 1
    return (files[0], arch) if len(files) == 1 else None


def _inspect_json(path: str, arch: str | None) -> int:
    import json

    from ..binary.open import open_image

    doc = open_image(path, arch).to_dict()
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()
    return 0
