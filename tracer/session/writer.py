"""Writing a session while capturing: event parts as they arrive, the small tables at the end.

A session is a directory::

    meta.json                 what ran, where, with which backend; complete or not
    events/part-00000.parquet binding events, one file per flushed chunk
    processes.parquet         one row per program image a traced pid ran
    images.parquet            objects loaded in each process, bases and slides
    relocations.parquet       per-image relocation time (where measured)
    objects.parquet           what ld.so read of each object loaded (capture/object_keeper.py)
    symbols.parquet           their dynamic symbols: definitions with versions, undefined references
    loaded.parquet            which object each process's name was (pid, path -> object_id)

Events go to disk in independent Parquet parts as they arrive, so memory stays
flat however long the build, and a session that dies mid-way still holds every
part already flushed. ``meta.json`` is written first with ``complete: false``
and rewritten at the end, so an interrupted capture is recognisable as such.
It is also rewritten after every part, listing each part with its row count
(``event_parts``): a part damaged later is named with the rows it held, the rest
still read (session/reader.py). A full disk must not cost the one file that
says so: a little space is held back from the start (``meta.json.reserve``)
and given to ``meta.json`` at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from ..heavy import pa, pd, pq

from . import schema
from .schema import FORMAT, META
from ..errors import GotraceError


def prepare_directory(path: Path, force: bool) -> Path:
    """Refuse an output directory that cannot or must not be written, before anything runs.

    An empty existing directory is used as it is; a gotrace session is replaced
    only with ``force``; anything else is never touched.
    """
    path = Path(path)
    reuse = False
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise GotraceError(f"output path {path} exists and is not a directory; choose another -o")
        try:
            empty = not any(path.iterdir())
        except OSError as exc:
            raise GotraceError(f"cannot read {path}: {exc.strerror}; choose another -o") from None
        if empty:
            reuse = True
        elif not force:
            raise GotraceError(f"output directory {path} already exists; choose another -o or pass --force")
        elif not (path / META).exists():
            raise GotraceError(f"{path} is not empty and not a gotrace session; refusing to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    _check_writable(parent if not reuse else path, path)
    if path.exists() and not reuse:
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise GotraceError(f"cannot replace {path}: {exc.strerror or exc}") from None
    try:
        (path / "events").mkdir(parents=True, exist_ok=reuse)
    except OSError as exc:
        raise GotraceError(f"cannot create {path}: {exc.strerror}") from None
    return path


def _check_writable(directory: Path, path: Path) -> None:
    """One line naming what is wrong with the directory ``path`` is to be written in."""
    if not directory.exists():
        raise GotraceError(f"cannot create {path}: directory {directory} does not exist")
    if not directory.is_dir():
        raise GotraceError(f"cannot create {path}: {directory} is not a directory")
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise GotraceError(f"cannot write to {directory}: read-only file system; choose another -o")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise GotraceError(f"cannot write to {directory}: permission denied; choose another -o")


def create_unique(parent: Path, stem: str) -> Path:
    """A new, empty session directory ``parent/stem`` (``stem-2``, ``stem-3`` … when
    taken, by this or a concurrent gotrace), creating ``parent`` if needed."""
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GotraceError(f"cannot create {parent}: {exc.strerror}; choose a directory with -o") from None
    _check_writable(parent, parent / stem)
    for n in range(1, 10000):
        path = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()  # atomic: two runs in the same second never get the same directory
        except FileExistsError:
            continue
        except OSError as exc:
            raise GotraceError(f"cannot create {path}: {exc.strerror}") from None
        (path / "events").mkdir()
        return path
    raise GotraceError(f"{parent} holds 10,000 sessions named {stem}…; choose another -o")


def write_atomic(table: pa.Table, dest: Path) -> None:
    """A part is either whole or absent: a full disk never leaves half a file."""
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


RESERVE = META + ".reserve"
RESERVE_BYTES = 32 * 1024  # meta.json's final rewrite (a few KiB) on a disk the events filled


class SessionWriter:
    """Appends event chunks as Parquet parts and writes the small tables at the end."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path = Path(path)
        self.meta = {"format": FORMAT, "schema_version": schema.SCHEMA_VERSION, **meta, "complete": False,
                     "event_parts": {}}
        self.parts = 0
        self.events_written = 0
        self.write_error: str | None = None
        self._lock = threading.Lock()  # meta.json is rewritten by the writer thread and at the end
        self._write_meta()
        try:
            with open(self.path / RESERVE, "wb") as fh:  # real blocks, not a sparse file
                fh.write(b"\0" * RESERVE_BYTES)
        except OSError:
            (self.path / RESERVE).unlink(missing_ok=True)

    def _write_meta(self) -> None:
        with self._lock:
            tmp = self.path / (META + ".tmp")
            try:
                tmp.write_text(json.dumps(self.meta, indent=2, sort_keys=True, default=str) + "\n")
                os.replace(tmp, self.path / META)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    def append_events(self, table: pa.Table) -> pa.Table:
        """Write one chunk as its own part; after a write error, count but drop.

        Returns the chunk coerced to the events contract (what was written).
        """
        for name in schema.OPTIONAL["events"]:  # a chunk made without it (older code, a notebook): null
            if name not in table.column_names:
                table = table.append_column(name, pa.nulls(table.num_rows, schema.EVENTS.field(name).type))
        table = table.select(schema.EVENTS.names).cast(schema.EVENTS)
        if table.num_rows == 0:
            return table
        if self.write_error is None:
            name = f"part-{self.parts:05d}.parquet"
            try:
                write_atomic(table, self.path / "events" / name)
                self.parts += 1
                self.events_written += table.num_rows
                self.meta["event_parts"][name] = table.num_rows
                self.meta["events"] = self.events_written
                try:
                    self._write_meta()  # the part's row count, should the part be damaged later
                except OSError:
                    pass  # said again at the end (the reserve makes room for it)
                return table
            except OSError as exc:  # full disk, removed directory ...
                self.write_error = f"writing events failed: {exc.strerror or exc}"
        self.meta["events_dropped"] = self.meta.get("events_dropped", 0) + table.num_rows
        return table

    def write_table(self, name: str, data: pd.DataFrame | list[dict] | pa.Table) -> None:
        """Write a small table, given as rows (dicts by column), a DataFrame or an Arrow table."""
        try:
            table = (data.cast(schema.TABLES[name]) if isinstance(data, pa.Table) else
                     schema.from_rows(name, data) if isinstance(data, list) else schema.to_arrow(name, data))
            write_atomic(table, self.path / f"{name}.parquet")
        except OSError as exc:
            self.write_error = self.write_error or f"writing {name} failed: {exc.strerror or exc}"

    def finish(self, complete: bool, **updates: Any) -> None:
        self.meta.update(updates)
        self.meta["events"] = self.events_written
        if self.write_error:
            self.meta["write_error"] = self.write_error
            complete = False
        self.meta["complete"] = complete
        (self.path / RESERVE).unlink(missing_ok=True)  # its room is meta.json's now
        try:
            self._write_meta()
        except OSError as exc:
            # the meta.json written at the start (complete: false) stays in place
            self.write_error = self.write_error or f"saving metadata failed: {exc.strerror or exc}"
