"""The ``gotrace`` console script: ``inspect --json`` without loading Typer.

Scripts and CI jobs run ``gotrace inspect --json`` over every binary they
ship, where start-up is the whole cost: Typer and rich take ~0.1 s to import,
five times what ``readelf`` needs for a whole library. So this entry point
answers exactly that well-formed request itself — ``inspect``, ``--json``, an
optional ``--arch A`` or ``--all`` (which JSON ignores), one file — and hands
every other command line, including any it is unsure of, to the Typer app,
which owns the grammar, the help and the usage errors. Failures print the
same one line and exit with the same code as the Typer path.

For ``bind`` it starts one thing before anything else: bpftrace, which
compiles its probes meanwhile (see backends/prelaunch.py); and a plain
``bind [-o D] [-b B] [-q] [--force] [--json] -- CMD`` runs without Typer at
all (commands/plain_bind.py).
"""
from __future__ import annotations

import os
import sys


def main() -> None:
    try:
        code = _run(sys.argv[1:])
    except KeyboardInterrupt:  # Ctrl-C before a command started, or while loading: no traceback
        sys.stderr.write("gotrace: interrupted\n")
        code = 130
    _exit_now(code)


def _run(argv: list[str]):
    request = _inspect_json_request(argv)
    if request is not None:
        return _inspect_json(*request)
    if argv[:1] == ["bind"]:  # bpftrace compiles while the CLI loads (backends/prelaunch.py)
        from .backends import prelaunch
        from .commands import plain_bind

        prelaunch.start(argv)
        plain = plain_bind.scan(argv)
        if plain is not None:  # no Typer: the command starts ~40 ms sooner
            return plain_bind.run(plain)
    from .cli import main as typer_main

    try:
        typer_main()
    except SystemExit as exc:
        return exc.code
    return 0


def _exit_now(code) -> None:
    """Exit without tearing the interpreter down. After `bind` that teardown —
    finalising pandas, pyarrow and every module — takes ~0.1 s of the user's
    wall time for nothing: sessions and outputs are closed explicitly, and no
    gotrace code relies on atexit handlers."""
    if "tracer.backends.prelaunch" in sys.modules:  # a launch nobody took: its command never runs
        sys.modules["tracer.backends.prelaunch"].discard()
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

    from .errors import one_line

    try:
        from .binary.open import open_image

        doc = open_image(path, arch).to_dict()
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except (KeyboardInterrupt, Exception) as exc:  # anticipated or a bug: one line either way
        return _fail(*one_line(exc))
    return 0


def _fail(message: str, code: int) -> int:
    prefix = "\033[1;31mgotrace:\033[0m" if sys.stderr.isatty() and not os.environ.get("NO_COLOR") else "gotrace:"
    sys.stderr.write(f"{prefix} {message}\n")
    return code
