"""The objects a session's processes loaded, as the session kept them, else as today's files say.

A session written by gotrace 0.1's capture keeps what the analyses read of every
object (capture/object_keeper.py: the OBJECTS, SYMBOLS and LOADED tables), so
a replay does not depend on the files still being there, or being the same.
Older and imported sessions keep nothing: their objects are read from today's
files, as before, and the answers say when those are gone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..binary import dynrecord, facts
from ..binary.elf_dynsyms import DynObject
from ..heavy import pa, pc, pq

Resolver = Callable[[str], "tuple[str | None, DynObject | None]"]


def readable(name: str, cwd: str | None) -> str | None:
    """Where the file a session names is now (relative names: from the capture's cwd); None if gone."""
    path = name if os.path.isabs(name) or not cwd else os.path.join(cwd, name)
    return path if os.path.isfile(path) else None


class KeptObjects:
    """(pid, name) -> the object that process loaded under that name, from the session's tables."""

    def __init__(self, path: str | os.PathLike | None, cwd: str | None = None):
        self.cwd = cwd
        self.names: dict[tuple[int, str], tuple[str, str | None]] = {}  # -> (object_id, real path)
        self.rows: dict[str, dict] = {}
        self._symbols: pa.Table | None = None
        self._made: dict[str, DynObject] = {}
        self._runs: dict[str, tuple[int, int]] = {}
        self.kept = False
        if path is None:
            return
        path = Path(path)
        try:
            loaded = pq.read_table(path / "loaded.parquet").to_pylist()
            objects = pq.read_table(path / "objects.parquet").to_pylist()
            self._symbols = pq.read_table(path / "symbols.parquet")
        except (OSError, pa.ArrowException):
            return  # not kept (an older or imported session), or damaged: today's files answer
        self.kept = True
        self.rows = {r["object_id"]: r for r in objects}
        # each object's rows are written together: where each one's run starts and ends
        ids = self._symbols["object_id"].to_pylist()
        self._runs: dict[str, tuple[int, int]] = {}
        start = 0
        for i in range(1, len(ids) + 1):
            if i == len(ids) or ids[i] != ids[start]:
                if ids[start] in self._runs:  # not written together after all: filter instead
                    self._runs = {}
                    break
                self._runs[ids[start]] = (start, i)
                start = i
        for r in loaded:
            self.names[(int(r["pid"]), r["path"])] = (r["object_id"], r["real_path"])

    def object(self, object_id: str) -> DynObject | None:
        if object_id not in self._made:
            row = self.rows.get(object_id)
            if row is None or self._symbols is None:
                return None
            run = self._runs.get(object_id)
            if run is not None:
                mine = self._symbols.slice(run[0], run[1] - run[0])
            else:
                mine = self._symbols.filter(pc.equal(self._symbols["object_id"], object_id))
            self._made[object_id] = dynrecord.from_rows(row, mine)
        return self._made[object_id]

    def identity(self, pid: int, name: str) -> str | None:
        """The kept object's id (one build under any name), None if not kept."""
        got = self.names.get((int(pid), name))
        return got[0] if got else None

    def resolve(self, pid: int, name: str) -> tuple[str | None, DynObject | None]:
        """(where it was or is, what ld.so reads of it): kept if the session kept it, else today's file."""
        got = self.names.get((int(pid), name))
        if got is not None:
            obj = self.object(got[0])
            if obj is not None:
                return got[1] or name, obj
        file = readable(name, self.cwd)
        return file, facts.dyn_object(file) if file else None

    def for_pid(self, pid: int) -> Resolver:
        return lambda name: self.resolve(pid, name)

    def undefined_refs(self, pid: int, name: str) -> dict | None:
        """The object's undefined references (name -> weak?), None if neither kept nor readable."""
        _file, obj = self.resolve(pid, name)
        return None if obj is None else getattr(obj.definitions, "undefined", {})

    def version_owner(self, pid: int, name: str, version: str) -> str | None:
        """The library a binding's version belongs to when ``name`` holds the definition without
        defining the version (an executable's copy or canonical PLT entry of libc's symbol: the
        version is libc's, read from DT_VERNEED); None when ``name`` defines it itself or cannot tell."""
        _file, obj = self.resolve(pid, name)
        if obj is None or version in obj.version_defs:
            return None
        return next((f for f, v in obj.version_needs if v == version), None)


def today(cwd: str | None) -> KeptObjects:
    """Objects read from today's files only (a session that kept none)."""
    return KeptObjects(None, cwd)
