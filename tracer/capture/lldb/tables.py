"""The session tables an lldb recording becomes (the backend and the lldb command module alike)."""
from __future__ import annotations

import os


def processes_rows(pid: int, ppid: int | None, runs, exit_code: int | None) -> list[dict]:
    """One row per program image the pid ran; the exit code belongs to the last."""
    last = len(runs) - 1
    return [{"pid": pid, "ppid": ppid, "exe": r.exe, "argv": r.argv, "start_ns": r.start_ns,
             "end_ns": r.end_ns, "exit_code": exit_code if i == last else None,
             "loader_env": getattr(r, "loader_env", None)} for i, r in enumerate(runs)]


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

    from ...errors import GotraceError
    from ...session.schema import events_from_rows
    from ...session.writer import SessionWriter, prepare_directory
    from ..images import image_rows
    from ..translated.translation import annotate

    import shutil

    target = prepare_directory(Path(path), force or _own_unfinished(Path(path), meta))
    try:
        writer = SessionWriter(target, meta)
        if rows:
            writer.append_events(events_from_rows(rows))
        writer.write_table("processes", annotate(processes, os.getcwd(), None))
        writer.write_table("images", image_rows(images))
        writer.write_table("relocations", [])
        writer.finish(writer.write_error is None, processes=int(len(processes)), lost_events=0, malformed_records=0)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # never a half-written session a retry must --force away
        raise
    if writer.write_error:
        raise GotraceError(f"session incomplete: {writer.write_error}")
    return writer.events_written


def _own_unfinished(path, meta: dict) -> bool:
    """A session this same kind of save left unfinished (it died mid-way): a retry may replace it."""
    import json

    try:
        old = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(old, dict) and old.get("complete") is False
            and old.get("backend_choice") == meta.get("backend_choice"))
