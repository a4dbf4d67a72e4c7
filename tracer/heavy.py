"""pandas and pyarrow, the heavy dependencies, imported on first use — so a traced command starts first.

Importing them costs ~0.35 s and ~0.2 s, several percent of a cold
``go build``, and capture needs neither before the command runs. Modules refer
to them through these proxies; capture imports pyarrow on a background
thread once the command is running (capture/background.py). `gotrace bind`
never needs pandas (its tables and summary are Arrow and rows); analysis
commands and notebooks import it on first use.
"""
from __future__ import annotations

import importlib
import sys
import threading


_after_import: dict[str, list] = {}
_hooks_lock = threading.RLock()


def after_import(name: str, hook) -> None:
    """Run ``hook(module)`` once ``name`` has been imported through this module
    (the CLI uses it to choose pyarrow's allocator without importing pyarrow
    before the command starts)."""
    with _hooks_lock:
        _after_import.setdefault(name, []).append(hook)


def load(name: str):
    """Import ``name`` now, running the after_import hooks it triggers."""
    module = importlib.import_module(name)
    if _after_import:  # importing pyarrow.csv imports pyarrow too: check every name
        with _hooks_lock:  # held while the hooks run: no other thread uses the module before they are done
            for n in [n for n in _after_import if n in sys.modules]:
                for hook in _after_import[n]:
                    hook(sys.modules[n])
                del _after_import[n]
    return module


def system_allocator(pyarrow) -> None:
    """pyarrow on the system allocator (an after_import hook of the CLI): it
    hands freed Parquet decode buffers back to the OS; the default pool keeps
    them, which doubles peak RSS on big sessions."""
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def pyarrow_without_pandas(pyarrow) -> None:
    """Have pyarrow take pandas as absent in this process (an after_import hook).

    pyarrow imports pandas (~0.3 s of CPU, on the traced build's cores) the
    first time it converts any Python list or numpy array, only to ask whether
    it is a pandas object. `gotrace bind` and `gotrace report` never hand it
    one, so they answer for it: pandas is hidden while pyarrow asks once, and
    pyarrow remembers the answer. Never for library use: a caller's
    ``to_pandas()`` would then fail.
    """
    if "pandas" in sys.modules:
        return
    sys.meta_path.insert(0, _NoPandas)
    try:
        pyarrow.array([0])
    finally:
        sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """An import finder for which pandas does not exist."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas hidden from pyarrow", name=name)
        return None


class _LazyModule:
    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(load(self._name), attr)


pd = _LazyModule("pandas")
pa = _LazyModule("pyarrow")
pc = _LazyModule("pyarrow.compute")
pq = _LazyModule("pyarrow.parquet")
pacsv = _LazyModule("pyarrow.csv")
