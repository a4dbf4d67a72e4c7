"""bindsnoop.bt started while the CLI is still loading.

bpftrace takes ~0.27 s to compile and attach bindsnoop.bt, and the traced
command may not run before that. The CLI itself takes ~0.1 s (Typer, option
handling, the session directory) before the backend would start bpftrace, all
of it wall time added to the command's. So the console script, for a plain
``gotrace bind [options] -- CMD ...`` as root (it recognises one with
commands/plain_bind.py's scan), forks CMD's gated child and starts bpftrace
at once, and the CLI loads while bpftrace compiles.

Nothing is decided here: the command only runs if the bpftrace backend, after
the CLI has checked everything, takes this launch for exactly the same command,
environment and directory (``take``). Any other outcome — a usage error,
``--help``, another backend, a refused output directory — ends in ``discard``:
the child is killed at its gate, before it ever exec'd, and bpftrace is
stopped. Whatever the scan below is unsure of, it leaves to the normal path.
"""
from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
from dataclasses import dataclass

from ...errors import GotraceError
from ..child import GatedChild


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    child: GatedChild
    proc: subprocess.Popen


_pending: Launch | None = None


def start(command: list[str] | None) -> None:
    """Fork ``command``'s gated child and start bindsnoop.bt for it, if this
    host can trace it with bpftrace; else (or for None) do nothing."""
    global _pending
    if (not command or _pending is not None or os.geteuid() != 0 or platform.machine() != "x86_64"
            or shutil.which("bpftrace") is None):
        return
    from .launch import start_gated

    env = dict(os.environ)
    try:
        child, proc = start_gated(command, env)
    except (GotraceError, OSError):  # no ld.so symbols, an unknown command: the CLI will say so
        return
    _pending = Launch(list(command), env, os.getcwd(), child, proc)


def take(argv: list[str], env: dict[str, str]) -> Launch | None:
    """The pending launch if it is for exactly this command, environment and
    directory and bpftrace is still running; otherwise discard it."""
    global _pending
    launch, _pending = _pending, None
    if launch is None:
        return None
    if (launch.argv, launch.env, launch.cwd) == (list(argv), env, os.getcwd()) and launch.proc.poll() is None:
        return launch
    _stop(launch)
    return None


def discard() -> None:
    """Kill a launch nobody took: its command never runs."""
    global _pending
    launch, _pending = _pending, None
    if launch is not None:
        _stop(launch)


def _stop(launch: Launch) -> None:
    launch.child.abort()
    if launch.proc.poll() is None:
        launch.proc.send_signal(signal.SIGINT)  # it detaches in the background, as after a capture
    for pipe in (launch.proc.stdout, launch.proc.stderr):
        pipe.close()
