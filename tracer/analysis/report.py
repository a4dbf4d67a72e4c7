"""Summaries of a session, as one plain dict (rendered as tables or JSON).

The dict is the stable ``gotrace report --json`` format (see
docs/report-json.md): keys are only ever added, never renamed. The event
figures come from :class:`tracer.analysis.tally.EventTally`, fed chunk by chunk;
the small tables (processes, relocations) are plain rows. So neither
`gotrace bind`'s summary nor `gotrace report` needs pandas or the whole
events table in memory; :func:`build_report` accepts a loaded
:class:`~tracer.session.reader.Session` (notebooks) and gives the same dict.
"""
from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from .tally import COLUMNS, EventTally, by_count, ranked

REPORT_VERSION = 1


def summarize(path: str | Path, meta: dict[str, Any], tally: EventTally, processes: list[dict],
              relocations: list[dict], top_n: int = 10) -> dict[str, Any]:
    """The report of one session from its parts: meta.json's dict, the events'
    tally, and processes and relocations as rows (dicts by column)."""
    start, end = meta.get("start_ns"), meta.get("end_ns")
    events = tally.sections(top_n)
    return {
        "report_version": REPORT_VERSION,
        "session": {
            "path": str(path),
            "argv": meta.get("argv"),
            "backend": meta.get("backend"),
            "backend_choice": meta.get("backend_choice"),
            "complete": bool(meta.get("complete")),
            "exit_code": meta.get("exit_code"),
            "duration_s": round((end - start) / 1e9, 3) if start and end else None,
            "lost_events": int(meta.get("lost_events") or 0),
            "malformed_records": int(meta.get("malformed_records") or 0),
            "latency_method": meta.get("latency_method"),
            # False only for the lldb backend: it follows one process
            "descendants_traced": bool(meta.get("descendants_traced", True)),
            "exit_code_unknown": bool(meta.get("exit_code_unknown", False)),  # lldb lost the status
            "host": meta.get("host"),
            "arch": meta.get("arch"),
            "translation": meta.get("translation"),  # --arch: the handler, translator and env used
            "guest_latency": meta.get("guest_latency"),  # --arch with qemu: what the timing plugin paired
        },
        "processes": {
            "count": len({p["pid"] for p in processes}),
            "images": len(processes),
            "failed": sum(1 for p in processes if p.get("exit_code")),
            "by_exe": ranked(Counter("?" if p.get("exe") is None else str(p["exe"]) for p in processes),
                          top_n, "exe", "processes"),
            # program images run by a binfmt_misc translator (qemu-aarch64 ...), by translator
            "translated": dict(by_count(Counter(p["translator"] for p in processes if p.get("translator")))),
        },
        **{k: events[k] for k in ("bindings", "top_symbols", "top_providers", "by_exe", "failed_symbols")},
        "latency_ns": events["latency_ns"],
        "relocation": _relocation(relocations, top_n),
    }


def report_session(path: str | Path, top_n: int = 10) -> dict[str, Any]:
    """Report a saved session, reading its events one part at a time."""
    from ..session.reader import iter_event_parts, read_meta, read_rows

    path = Path(path)
    meta = read_meta(path)
    tally = EventTally()
    for part in iter_event_parts(path, meta, COLUMNS):
        tally.add(part)
    required = bool(meta.get("complete"))
    return summarize(path, meta, tally, read_rows(path, "processes", optional=not required),
                     read_rows(path, "relocations", optional=True), top_n)


def build_report(session, top: int = 10) -> dict[str, Any]:
    """Report a session loaded with :func:`tracer.load_session` (pandas)."""
    from ..heavy import pa

    tally = EventTally()
    ev = session.events
    if len(ev):
        tally.add(pa.Table.from_pandas(ev[[c for c in COLUMNS if c in ev.columns]], preserve_index=False))
    return summarize(session.path, session.meta, tally, _rows(session.processes), _rows(session.relocations), top)


def _rows(frame) -> list[dict]:
    if frame is None or frame.empty:
        return []
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _relocation(rows: Iterable[dict], top_n: int) -> dict[str, Any] | None:
    per_path: dict[str, list[int]] = {}
    total = count = 0
    for r in rows:
        count += 1
        total += int(r["duration_ns"])
        if r["path"] is not None:  # an image never named still counts in the totals
            per_path.setdefault(str(r["path"]), []).append(int(r["duration_ns"]))
    if not count:
        return None
    order = sorted(per_path.items(), key=lambda item: (-sum(item[1]), item[0]))[:top_n]
    return {
        "total_ns": total,
        "images": count,
        "top_images": [
            {"path": p, "relocations": len(d), "total_ns": sum(d),
             "median_ns": int(statistics.median(d)), "max_ns": max(d)}
            for p, d in order
        ],
    }
