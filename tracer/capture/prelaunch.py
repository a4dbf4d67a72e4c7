"""The tracer started while the CLI is still loading.

gotrace's BPF program takes ~50 ms to load and attach, bpftrace ~0.27 s to
compile and attach bindsnoop.bt, and the traced command may not run before
that. The CLI itself takes ~0.1 s (imports, option handling, the session
directory) before a backend would start its tracer, all of it wall time added
to the command's. So the console script, for a plain ``gotrace bind [options]
-- CMD ...`` as root (it recognises one with commands/plain_bind.py's scan),
forks CMD's gated child and starts the tracer at once — the BPF loader if its
build is cached (``-b auto|bpf``), else bpftrace (``-b auto|bpftrace``) —
and the CLI loads while the tracer attaches.

Nothing is decided here: the command only runs if the backend, after the CLI
has checked everything, takes this launch for exactly the same backend,
command, environment and directory (``take``). Any other outcome — a usage
error, ``--help``, another backend, a refused output directory — ends in
``discard``: the child is killed at its gate, before it ever exec'd, and the
tracer is stopped. Whatever the scan is unsure of, it leaves to the normal path.
"""
from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
from dataclasses import dataclass

from ..errors import GotraceError
from .child import GatedChild


@dataclass
class Launch:
    backend: str  # "bpf" or "bpftrace"
    argv: list[str]
    env: dict[str, str]
    cwd: str
    child: GatedChild
    proc: subprocess.Popen
    built: tuple | None = None  # bpf: (object, loader) it runs


_pending: Launch | None = None


def start(command: list[str] | None, backend: str = "auto") -> None:
    """Fork ``command``'s gated child and start the tracer ``backend`` would pick for
    it, if this host can run one without building anything; else (or for None) do nothing."""
    global _pending
    if not command or _pending is not None or os.geteuid() != 0 or platform.machine() != "x86_64":
        return
    env = dict(os.environ)
    if backend in ("auto", "bpf"):
        from .bpf.agent import socket_path

        agent = socket_path()
        if agent is not None and os.path.exists(agent):
            return  # gotrace's agent has the program attached already: nothing to start (bpf/via_agent.py)
        from .bpf import launch as bpf_launch

        built = bpf_launch.artifacts(build=False) if bpf_launch.host_problem() is None else None
        if built is not None:
            try:
                child, proc = bpf_launch.start_gated(command, env, built)
            except (GotraceError, OSError):  # no ld.so symbols, an unknown command: the CLI will say so
                return
            _pending = Launch("bpf", list(command), env, os.getcwd(), child, proc, built)
            return
    if backend in ("auto", "bpftrace") and shutil.which("bpftrace") is not None:
        from .bpftrace.launch import start_gated

        try:
            child, proc = start_gated(command, env)
        except (GotraceError, OSError):
            return
        _pending = Launch("bpftrace", list(command), env, os.getcwd(), child, proc)


def adopt(launch: Launch) -> None:
    """A launch made elsewhere — the agent's bind server holds a client's gated child and agent
    session (commands/bind_server.py) — taken by the backend as one started here would be."""
    global _pending
    if _pending is not None:
        stop(_pending)
    _pending = launch


def take(backend: str, argv: list[str], env: dict[str, str]) -> Launch | None:
    """The pending launch if it is ``backend``'s, for exactly this command, environment
    and directory, and its tracer is still running; otherwise discard it."""
    global _pending
    launch, _pending = _pending, None
    if launch is None:
        return None
    if (launch.backend, launch.argv, launch.env, launch.cwd) == (backend, list(argv), env, os.getcwd()) \
            and launch.proc.poll() is None:
        return launch
    stop(launch)
    return None


def pending_backend() -> str | None:
    return _pending.backend if _pending is not None else None


def discard() -> None:
    """Kill a launch nobody took: its command never runs."""
    global _pending
    launch, _pending = _pending, None
    if launch is not None:
        stop(launch)


def stop(launch: Launch) -> None:
    launch.child.abort()
    if launch.proc.poll() is None:
        launch.proc.send_signal(signal.SIGINT)  # it detaches in the background, as after a capture
    for pipe in (launch.proc.stdin, launch.proc.stdout, launch.proc.stderr, getattr(launch.proc, "kept_files", None)):
        if pipe is not None:
            pipe.close()
