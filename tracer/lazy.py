"""pandas and pyarrow, imported on first use — so a traced command starts first.

Importing them costs ~0.35 s and ~0.2 s, several percent of a cold
``go build``, and capture needs neither before the command runs. Modules refer
to them through these proxies, and :func:`preload` imports them on a thread
once the command is running.
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
pa = _LazyModule("pyarrow")
pc = _LazyModule("pyarrow.compute")
pq = _LazyModule("pyarrow.parquet")
pacsv = _LazyModule("pyarrow.csv")
HEAVY = ("pyarrow", "pyarrow.compute", "pyarrow.csv", "pyarrow.parquet", "pandas")


def _import_all() -> None:
    from .priority import background_priority

    background_priority()  # the command comes first
    for name in HEAVY:
        importlib.import_module(name)


def preload() -> None:
    """Import the heavy modules in the background; users find them ready (or wait)."""
    threading.Thread(target=_import_all, name="gotrace-preload", daemon=True).start()
