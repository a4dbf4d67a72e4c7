"""pandas and pyarrow, imported on first use — so a traced command starts first.

Importing them costs ~0.35 s and ~0.2 s, several percent of a cold
``go build``, and capture needs neither before the command runs. Modules refer
to them through these proxies, and :func:`preload` imports them on a thread
once the command is running.
"""
from __future__ import annotations

import importlib
import sys
import threading


_after_import: dict[str, list] = {}
_hooks_lock = threading.Lock()


def after_import(name: str, hook) -> None:
    """Run ``hook(module)`` once ``name`` has been imported through this module
    (the CLI uses it to choose pyarrow's allocator without importing pyarrow
    before the command starts)."""
    with _hooks_lock:
        _after_import.setdefault(name, []).append(hook)


def _load(name: str):
    module = importlib.import_module(name)
    if _after_import:  # importing pyarrow.csv imports pyarrow too: check every name
        with _hooks_lock:
            ready = [(n, hooks) for n, hooks in _after_import.items() if n in sys.modules]
            for n, _ in ready:
                del _after_import[n]
        for n, hooks in ready:
            for hook in hooks:
                hook(sys.modules[n])
    return module


class _LazyModule:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(_load(self._name), attr)


pd = _LazyModule("pandas")
pa = _LazyModule("pyarrow")
pc = _LazyModule("pyarrow.compute")
pq = _LazyModule("pyarrow.parquet")
pacsv = _LazyModule("pyarrow.csv")
HEAVY = ("pyarrow", "pyarrow.compute", "pyarrow.csv", "pyarrow.parquet", "pandas")
_also: list[str] = []


def also_preload(*names: str) -> None:
    """Modules a caller will need once the command has run (the CLI's report
    and rendering): imported by :func:`preload`'s thread, after HEAVY."""
    _also.extend(names)


def _import_all() -> None:
    from .priority import background_priority

    background_priority()  # the command comes first
    for name in HEAVY:
        _load(name)
    for name in _also:
        importlib.import_module(name)


def preload() -> None:
    """Import the heavy modules in the background; users find them ready (or wait)."""
    threading.Thread(target=_import_all, name="gotrace-preload", daemon=True).start()
