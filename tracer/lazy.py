"""pandas, imported on first use — so a traced command starts before it loads.

Importing pandas costs ~0.35 s, a few percent of a cold ``go build``. Capture
needs it only at the end (small tables, the summary), so modules refer to
``pd`` through this proxy and :func:`preload_pandas` imports it on a thread
while the command (or bpftrace's start-up) is already running.
"""
from __future__ import annotations

import importlib
import threading


class _LazyModule:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


pd = _LazyModule("pandas")


def preload_pandas() -> None:
    """Import pandas in the background; later users find it ready (or wait for it)."""
    threading.Thread(target=importlib.import_module, args=("pandas",), name="gotrace-preload",
                     daemon=True).start()
