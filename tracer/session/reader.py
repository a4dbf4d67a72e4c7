"""Reading a saved session: whole, as DataFrames, or one events part at a time.

The layout is the writer's (session/writer.py). ``load_session`` is what
notebooks and the pandas analyses use; ``iter_event_parts`` and
``read_rows`` serve the report, which never loads pandas.

One damaged events part (a disk error, a copy cut short) must not cost the
session: the parts that read are read, and each one that does not is named
with the rows the writer recorded for it (meta.json's ``event_parts``), so
every answer can say it is partial and by how much (``Session.damaged``).
"""
from __future__ import annotations

import ctypes
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..heavy import pa, pd, pq

from . import schema
from .schema import FORMAT, META
from ..errors import SessionError

STRING_COLUMNS = {
    "events": ["exe", "requester", "symbol", "version", "provider", "kind", "backend"],
    "processes": ["exe"],
    "images": ["path"],
    "relocations": ["path"],
    "errors": [],
    "searches": [],
}


@dataclass
class Session:
    """A loaded session: DataFrames per table plus the metadata."""

    path: Path
    meta: dict[str, Any]
    events: pd.DataFrame
    processes: pd.DataFrame
    images: pd.DataFrame
    relocations: pd.DataFrame = field(default_factory=lambda: schema.empty("relocations"))
    errors: pd.DataFrame = field(default_factory=lambda: schema.empty("errors"))  # what the loader refused
    searches: pd.DataFrame = field(default_factory=lambda: schema.empty("searches"))  # dyld's library searches
    # events parts that could not be read, each {"file", "rows" (None: not recorded), "error"}
    damaged: list[dict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete"))


def _part_damage(meta: dict[str, Any], name: str, error: str) -> dict[str, Any]:
    rows = (meta.get("event_parts") or {}).get(name)
    return {"file": f"events/{name}", "rows": int(rows) if rows is not None else None, "error": error}


def _first_sentence(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.split(". ")[0].rstrip(".")


def _missing_parts(target: Path, meta: dict[str, Any], present: list[Path]) -> list[dict[str, Any]]:
    """Parts the writer recorded that are no longer there."""
    have = {p.name for p in present}
    return [_part_damage(meta, name, "missing") for name in sorted(meta.get("event_parts") or {}) if name not in have]


def read_meta(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise SessionError(f"no session at {path}")
    if not path.is_dir():
        raise SessionError(f"{path} is not a session directory")
    meta_file = path / META
    if not meta_file.exists():
        raise SessionError(f"{path} is not a gotrace session (no {META})")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        raise SessionError(f"{meta_file} is unreadable or truncated") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SessionError(f"{path} is not a gotrace session ({META} has another format)")
    if meta.get("schema_version", 0) > schema.SCHEMA_VERSION:
        raise SessionError(f"{path} was written by a newer gotrace (schema {meta['schema_version']}); upgrade gotrace")
    return meta


def _read(path: Path, name: str, optional: bool, columns: list[str] | None = None,
          meta: dict[str, Any] | None = None, damaged: list[dict] | None = None) -> pd.DataFrame:
    target = path / (name if name == "events" else f"{name}.parquet")
    if not target.exists():
        if optional:
            return schema.empty(name) if columns is None else schema.empty(name)[columns]
        raise SessionError(f"{path} is truncated: {target.name} is missing")
    if columns is not None and name == "events" and "latency_raw_ns" in columns:
        columns = list(dict.fromkeys([*columns, "latency_ns"]))  # schema 1 derives one from the other
    try:
        if target.is_dir():
            parts = sorted(target.glob("part-*.parquet"))
            if damaged is not None:
                damaged += _missing_parts(target, meta or {}, parts)
            frame = _read_parts(parts, name, columns, meta or {}, damaged)
        else:
            table = pq.read_table(target, read_dictionary=STRING_COLUMNS[name])
            frame = table.to_pandas(self_destruct=True, split_blocks=True)
            del table
    except (OSError, pa.ArrowException) as exc:
        raise SessionError(f"{path} is truncated or corrupt: {target.name}: {exc}") from None
    if name == "events":
        if "latency_ns" in frame and "latency_raw_ns" not in frame and (columns is None or "latency_raw_ns" in columns):
            # schema 1: nothing was corrected
            frame.insert(frame.columns.get_loc("latency_ns") + 1, "latency_raw_ns", frame["latency_ns"])
        if "kind" in frame:
            kind = frame["kind"]
            # set_categories, not astype: unordered dtypes compare equal whatever the
            # order, so astype would keep the order the part files happened to have
            frame["kind"] = (kind.cat.set_categories(list(schema.KINDS)) if isinstance(kind.dtype, pd.CategoricalDtype)
                             else kind.astype(schema.kind_dtype()))
    for col in schema.OPTIONAL.get(name, ()):  # older schemas: not recorded
        if col not in frame.columns and (columns is None or col in columns):
            frame[col] = None
    if name == "events":
        for col, dtype in (("latency_ns", "Int64"), ("latency_raw_ns", "Int64"), ("offcpu_ns", "Int64"),
                           ("tid", "Int32")):  # tid: null for ld-debug
            if col in frame:
                frame[col] = frame[col].astype(dtype)
    for col in ("ppid", "exit_code", "end_ns", "start_ns"):
        if col in frame.columns:
            frame[col] = frame[col].astype("Int64" if "ns" in col else "Int32")
    return frame


def iter_event_parts(path: Path, meta: dict[str, Any], columns: list[str], damaged: list[dict] | None = None):
    """The events as Arrow tables, one part at a time (those of ``columns`` a
    part has): for a pass over a session of any size in the memory of one part.
    A part that cannot be read is skipped and added to ``damaged`` (with the rows
    the writer recorded for it); without that list it is an error naming the file."""
    target = path / "events"
    if not target.is_dir():
        if meta.get("complete"):
            raise SessionError(f"{path} is truncated: events is missing")
        return
    parts = sorted(target.glob("part-*.parquet"))
    if damaged is not None:
        damaged += _missing_parts(target, meta, parts)
    for p in parts:
        try:
            part = pq.ParquetFile(p, pre_buffer=False)
            table = part.read(columns=[c for c in columns if c in part.schema_arrow.names], use_threads=False)
        except (OSError, pa.ArrowException) as exc:
            if damaged is None:
                raise SessionError(f"{path} is truncated or corrupt: events/{p.name}: {_first_sentence(exc)}") from None
            damaged.append(_part_damage(meta, p.name, _first_sentence(exc)))
            continue
        yield table


def read_rows(path: Path, name: str, optional: bool) -> list[dict[str, Any]]:
    """A small table (processes, images, relocations) as rows, without pandas."""
    target = path / f"{name}.parquet"
    if not target.exists():
        if optional:
            return []
        raise SessionError(f"{path} is truncated: {target.name} is missing")
    try:
        return pq.read_table(target).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise SessionError(f"{path} is truncated or corrupt: {target.name}: {exc}") from None


def _read_parts(parts: list[Path], name: str, columns: list[str] | None = None, meta: dict[str, Any] | None = None,
                damaged: list[dict] | None = None) -> pd.DataFrame:
    """Read part files one at a time and merge their categoricals.

    Converting part by part, then joining column by column (each dropped from
    the parts once joined), keeps peak memory near the size of the final
    frame; one big Arrow table plus its pandas copy, or pd.concat of the
    parts, would double it.
    """
    frames = []
    for p in parts:
        try:
            part = pq.ParquetFile(p, read_dictionary=STRING_COLUMNS[name], pre_buffer=False)  # one footer read
            present = None if columns is None else [c for c in columns if c in part.schema_arrow.names]
            table = part.read(columns=present, use_threads=False)
        except (OSError, pa.ArrowException) as exc:
            if damaged is None:
                raise SessionError(f"{p.parent.parent} is truncated or corrupt: {name}/{p.name}: "
                                   f"{_first_sentence(exc)}") from None
            damaged.append(_part_damage(meta or {}, p.name, _first_sentence(exc)))
            continue
        frames.append(table.to_pandas(self_destruct=True, split_blocks=True))
        del table
        _trim_heap()
    if not frames:
        return schema.empty(name) if columns is None else schema.empty(name)[columns]
    if len(frames) == 1:
        return frames[0]
    from pandas.api.types import union_categoricals

    columns = {}
    for col in schema.TABLES[name]:  # in schema order; older schemas lack some
        c = col.name
        if c not in frames[0].columns:
            continue
        parts_of_c = [f[c] for f in frames]
        columns[c] = (union_categoricals(parts_of_c) if c in STRING_COLUMNS[name]
                      else pd.concat(parts_of_c, ignore_index=True))
        del parts_of_c
        for f in frames:
            del f[c]
    del frames
    return pd.DataFrame(columns, copy=False)


def _trim_heap() -> None:
    """Give freed decode buffers back to the OS (glibc keeps them otherwise)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except OSError:
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


def frame_rows(frame) -> list[dict]:
    """A loaded table as rows (dicts by column, None for missing values), the form
    the report and the translator rules take the small tables in."""
    if frame is None or frame.empty:
        return []
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def load_session(path: str | os.PathLike, event_columns: list[str] | None = None) -> Session:
    """Load a saved session as DataFrames (for reports, notebooks and scripts).

    String columns come back categorical, so a million-event session fits in
    tens of megabytes rather than hundreds. ``event_columns`` reads only those
    event columns (a big session loads faster and smaller).
    """
    path = Path(path)
    meta = read_meta(path)
    damaged: list[dict] = []
    return Session(
        path=path,
        meta=meta,
        events=_read(path, "events", optional=not meta.get("complete", False), columns=event_columns, meta=meta,
                     damaged=damaged),
        processes=_read(path, "processes", optional=not meta.get("complete", False)),
        images=_read(path, "images", optional=True),
        relocations=_read(path, "relocations", optional=True),
        errors=_read(path, "errors", optional=True),
        searches=_read(path, "searches", optional=True),
        damaged=damaged,
    )
