"""gotrace's own work beside the traced command: at the lowest priority, and off its critical path.

The traced build should not compete with its tracer. Decoding and writing
can wait for idle CPU (pipes and buffers absorb the delay), and the heavy
imports (pyarrow; what the CLI needs for its summary) happen on a thread
once the command is running, not before it may start.
"""
from __future__ import annotations

import importlib
import os
import sys
import threading

from .. import heavy

HEAVY = ("pyarrow", "pyarrow.compute", "pyarrow.parquet")  # what every capture writes with
_also: list[str] = []


def background_priority() -> None:
    """Run the calling thread at nice 19 (Linux niceness is per thread; elsewhere a
    thread id could be some other process's pid, so nothing is done)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (OSError, AttributeError):
        pass


def also_preload(*names: str) -> None:
    """Modules a caller will need once the command has run (the CLI's report
    and rendering): imported by :func:`preload`'s thread, after what capture needs."""
    _also.extend(n for n in names if n not in _also)


def _import_all(needed: tuple[str, ...]) -> None:
    background_priority()  # the command comes first
    for name in (*HEAVY, *needed):
        heavy.load(name)
    for name in _also:
        importlib.import_module(name)


def preload(*needed: str) -> None:
    """Import the heavy modules (HEAVY, then ``needed``) in the background;
    users find them ready (or wait)."""
    threading.Thread(target=_import_all, args=(needed,), name="gotrace-preload", daemon=True).start()
