"""The session tables an lldb recording becomes (backend and command module alike)."""
from __future__ import annotations

import os

from ..lazy import pa

EVENT_COLUMNS = ["ts_ns", "pid", "tid", "exe", "requester", "symbol", "version", "provider", "kind",
                 "resolved", "latency_ns", "latency_raw_ns", "backend"]
_TYPES = {"ts_ns": pa.int64, "pid": pa.int32, "tid": pa.int32, "resolved": pa.bool_,
          "latency_ns": pa.int64, "latency_raw_ns": pa.int64}


def events_table(rows: list[tuple]) -> pa.Table:
    """BindingRecorder rows as an Arrow table in the events contract's column order."""
    cols = list(zip(*rows)) if rows else [[] for _ in EVENT_COLUMNS]
    return pa.table({name: pa.array(list(col), _TYPES.get(name, pa.string)())
                     for name, col in zip(EVENT_COLUMNS, cols)})


def processes_rows(pid: int, ppid: int | None, runs, exit_code: int | None) -> list[dict]:
    """One row per program image the pid ran; the exit code belongs to the last."""
    last = len(runs) - 1
    return [{"pid": pid, "ppid": ppid, "exe": r.exe, "argv": r.argv, "start_ns": r.start_ns,
             "end_ns": r.end_ns, "exit_code": exit_code if i == last else None} for i, r in enumerate(runs)]


def latency_method(calibration: dict | None) -> dict:
    return {
        "raw": "entry breakpoint stop to return-site breakpoint stop, as gotrace observed them",
        "corrected": "latency_ns = max(0, raw - calibration median_ns); null when not calibrated",
        "calibration": calibration,
    }


def write_session(path, force: bool, rows: list[tuple], processes: list[dict], images: list[tuple[int, str, int]],
                  meta: dict) -> int:
    """Save a recording made inside lldb as a complete session; returns the event count."""
    from pathlib import Path

    from ..capture import image_rows
    from ..session import SessionWriter, prepare_directory

    target = prepare_directory(Path(path), force)
    writer = SessionWriter(target, meta)
    if rows:
        writer.append_events(events_table(rows))
    from ..translate import annotate

    writer.write_table("processes", annotate(processes, os.getcwd(), None))
    writer.write_table("images", image_rows(images))
    writer.write_table("relocations", [])
    writer.finish(writer.write_error is None, processes=int(len(processes)), lost_events=0, malformed_records=0)
    if writer.write_error:
        from ..errors import GotraceError
        raise GotraceError(f"session incomplete: {writer.write_error}")
    return writer.events_written
