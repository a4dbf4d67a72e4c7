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


class Poller(threading.Thread):
    """A reader of what the traced processes write: ``poll()`` every ``interval``
    seconds at background priority until stopped, once more, then ``finish()``.
    An exception in the thread is raised again by ``stop()``, in the caller."""

    interval = 0.2

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        background_priority()
        try:
            while not self._halt.wait(self.interval):
                self.poll()
            self.poll()
            self.finish()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()
        if self.error is not None:
            raise self.error

    def poll(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass
