"""stderr's rich console, made on first use, and the one failure line — without Typer.

Shared by the Typer commands and the console script's fast paths
(commands/console.py, commands/plain_bind.py), which must not import Typer or click.
"""
from __future__ import annotations

import os
import sys

from ..errors import one_line


class _LazyConsole:
    """A rich Console made on first use: importing rich.console costs ~35 ms,
    and `gotrace bind` must not spend it before the traced command starts."""

    def __init__(self, **options):
        self._options, self._console = options, None

    def __getattr__(self, name):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


err_console = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # one line per message, even in logs


def print_error(message: str) -> None:
    """``gotrace: message`` on stderr, the prefix in bold red on a terminal. Written
    directly, not through rich: no import for a failure, and a message holding
    brackets is never taken for markup."""
    color = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    sys.stderr.write(("\033[1;31mgotrace:\033[0m " if color else "gotrace: ") + f"{message}\n")
    sys.stderr.flush()


def warn_damaged(session) -> None:
    """One line per events part a loaded session could not read: what follows leaves its rows out."""
    for d in getattr(session, "damaged", None) or ():
        rows = f"{d['rows']:,} bindings" if d.get("rows") is not None else "bindings the writer did not record"
        print_error(f"warning: {session.path}: {d['file']} cannot be read ({d['error']}); it held {rows}, left "
                    "out of what follows: the answers are partial")


def report_failure(exc: BaseException) -> int:
    """Say what went wrong in one line (errors.one_line's rule); the exit code."""
    if isinstance(exc, BrokenPipeError):  # stdout's reader went away: nothing left to tell it
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except OSError:
            pass
        return 1
    message, code = one_line(exc)
    print_error(message)
    return code


def check_json_out(path: str | None) -> None:
    """Refuse a --json-out FILE that cannot be written, before anything runs."""
    if path is None or path == "-":
        return
    from pathlib import Path

    from ..errors import GotraceError

    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise GotraceError(f"--json-out {path}: is a directory; give a file name")
    if _in_place(path):
        if not os.access(path, os.W_OK):
            raise GotraceError(f"--json-out {path}: {_denied(path)}")
        return
    if not parent.is_dir():
        raise GotraceError(f"--json-out {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise GotraceError(f"--json-out {path}: {_denied(parent)}")


def _denied(path) -> str:
    """Why a file cannot be written: the file system, or the permissions (root passes those)."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system; choose another file"
    except OSError:
        pass
    return "permission denied"


def _in_place(path: str) -> bool:
    """Write to it, never replace it: a device, a FIFO, a descriptor (/dev/fd/3, /dev/stdout)."""
    import stat

    if os.path.realpath(os.path.dirname(os.path.abspath(path))).startswith(("/dev", "/proc")):
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False  # not there yet: a new file


def emit_json(doc, as_json: bool = False, json_out: str | None = None) -> None:
    """The JSON document on stdout (--json, or --json-out -) and/or into a file
    (--json-out FILE: what a traced program prints on stdout never mixes with it)."""
    import json

    text = json.dumps(doc, indent=2) + "\n"
    if as_json or json_out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    if json_out is not None and json_out != "-":
        from ..errors import GotraceError

        try:
            if _in_place(json_out):
                with open(json_out, "w") as fh:
                    fh.write(text)
                return
        except OSError as exc:
            raise GotraceError(f"cannot write {json_out}: {exc.strerror or exc}") from None
        tmp = f"{json_out}.tmp-{os.getpid()}"  # a file: whole or absent, never half a document
        try:
            with open(tmp, "w") as fh:
                fh.write(text)
            os.replace(tmp, json_out)
        except OSError as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise GotraceError(f"cannot write {json_out}: {exc.strerror or exc}") from None
