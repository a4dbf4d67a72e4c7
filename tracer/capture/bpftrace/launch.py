"""How bindsnoop.bt is started: its file, its arguments, bpftrace's environment.

One place, because several callers start it and must start the same thing: the
backend, ``prelaunch`` (the console script starting it before the CLI has even
loaded), the bench's floor and the tests that run it by hand. Kept free of
pandas, pyarrow and the decoder, so importing it costs the prelaunch almost
nothing.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import time

from ... import procfs
from ...errors import BackendUnavailable, GotraceError
from .. import dscripts
from ..child import GatedChild
from ..ldso import require_layout

STRLEN = 128  # BPFTRACE_STRLEN: bytes per string in a record (decode.py reads that layout)
RB_PAGES_ENV = "GOTRACE_BPFTRACE_PERF_RB_PAGES"  # per-CPU perf buffer pages (default 2048 = 8 MiB)
MAP_KEYS_ENV = "GOTRACE_BPFTRACE_MAP_KEYS"  # entries per map (default 65536: bindings between two drains)


def script_path() -> str:
    return dscripts.path("bindsnoop.bt")


def script_args(root_pid: int, mark_pid: int) -> list[str]:
    """bindsnoop.bt's positional arguments, in the order its USAGE gives."""
    try:
        ldso, lay = require_layout()
    except BackendUnavailable as exc:
        raise BackendUnavailable(f"bpftrace backend unavailable: {exc.message}") from None
    layout = [lay.lookup, *lay.fixup, *lay.profile_fixup, *lay.text]
    from .btf import cwd_offsets, task_exit_code_offset

    return [str(root_pid), ldso, str(mark_pid), *(str(v) for v in layout), str(task_exit_code_offset() or 0),
            *(str(v) for v in (cwd_offsets() or [0] * 9))]


def bpftrace_env() -> dict[str, str]:
    return dict(os.environ, BPFTRACE_STRLEN=str(STRLEN),
                BPFTRACE_MAP_KEYS_MAX=os.environ.get(MAP_KEYS_ENV, "65536"),
                BPFTRACE_PERF_RB_PAGES=os.environ.get(RB_PAGES_ENV, "2048"))


def start_gated(argv: list[str], env: dict[str, str], mark_pid: int | None = None) -> tuple[GatedChild, subprocess.Popen]:
    """``argv``'s gated child (see launch) and bpftrace running bindsnoop.bt for
    it, in its own session (a terminal's Ctrl-C is for the traced command, not
    the tracer). MARK_PID is this process unless given (0: by hand). The
    script's arguments are resolved before the child exists, so a failure
    starts nothing; a bpftrace that cannot start takes the child with it."""
    args = script_args(0, os.getpid() if mark_pid is None else mark_pid)
    child = GatedChild(argv, env)
    child.start()
    args[0] = str(child.pid)
    try:
        proc = subprocess.Popen(["bpftrace", script_path(), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=bpftrace_env(),
                                start_new_session=True)
    except OSError as exc:
        child.abort()
        raise BackendUnavailable(f"cannot start bpftrace: {exc.strerror}") from None
    _grow_pipe(proc.stdout.fileno())
    return child, proc


def bindsnoop_pids(loaders: bool = False) -> list[int]:
    """Every bpftrace running bindsnoop.bt — gotrace's or one run by hand (one
    that was told to stop keeps running while the kernel detaches its probes, ~1 s);
    with ``loaders``, gotrace's BPF loaders too (csrc/bindload.c: ~0.5 s of detaching; not its agent)."""
    found = []
    for pid in procfs.pids():
        argv = procfs.cmdline(pid)  # [] if gone meanwhile
        name = os.path.basename(argv[0]) if argv else ""
        if (name == "bpftrace" and argv[1:2] and argv[1].endswith("bindsnoop.bt")) \
                or (loaders and name.startswith("bindload-") and argv[1:2] != ["--agent"]):
            found.append(pid)
    return found


def bindsnoop_running() -> bool:
    return bool(bindsnoop_pids())


UPROBE_WAIT_S = 20


def wait_for_bindsnoop_to_go(whose: str) -> None:
    """A bpftrace session (or gotrace's BPF loader) that just ended detaches its uprobes in the
    background for up to a few seconds; meanwhile another tracer's probe on the same code fails or
    sees nothing (lldb's breakpoints, DTrace's "Failed to enable probe"). Wait for it, and refuse
    in one line if one stays."""
    deadline = time.monotonic() + UPROBE_WAIT_S
    while True:
        pids = bindsnoop_pids(loaders=True)
        if not pids:
            return
        if time.monotonic() > deadline:
            who = os.path.basename((procfs.cmdline(pids[0]) or ["a tracer"])[0])
            raise GotraceError(f"{who} (pid {pids[0]}) still has uprobes on ld.so, which {whose}; "
                               "wait for it to finish (or stop it), then run again", 2)
        time.sleep(0.2)


def _grow_pipe(fd: int) -> None:
    """A 1 MiB pipe: bpftrace blocks on a full stdout and stops draining its
    perf buffers, so a short stall on our side must not fill the pipe."""
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            limit = int(f.read())
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), min(limit, 1 << 20))
    except (OSError, ValueError):
        pass
