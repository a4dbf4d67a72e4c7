"""Sessions from logs captured elsewhere: a Mac's DYLD_PRINT_* file, glibc's LD_DEBUG files.

A CI runner, a container without gotrace or a colleague's Mac can capture what the
dynamic linker said with nothing but an environment variable; `gotrace import`
turns that log into a session that report, compare, plot and export read like any
other. The same parsers as the live backends read it (capture/dyld_print/,
capture/ld_debug/parse.py), so an imported LD_DEBUG log gives, binding for
binding, what `gotrace bind --backend ld-debug` records from the same files.
``meta.json`` says the session was imported, from which files, and what such a
log cannot tell.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import GotraceError
from ..heavy import pa
from ..session.schema import events_table
from ..session.writer import SessionWriter, create_unique, prepare_directory
from ..version import __version__
from .images import image_rows

FORMATS = ("dyld-print", "ld-debug")
READ = 1 << 20
LIMITS = {
    "dyld-print": ["no latency (dyld prints no times)", "no failed lookups but missing weak imports and dlsym",
                   "no parent pids or exit codes", "event times are the order of the lines, not clock times",
                   "processes that dropped DYLD_* (SIP-protected programs and what they start) left no lines",
                   "who called dlsym (dyld does not say)",
                   "the environment each process had (loader_env null: dyld's account does not print it)"],
    "ld-debug": ["no latency", "no failed lookups", "no tid or ppid, no exit codes",
                 "event times are the order of the lines, not clock times",
                 "processes that clear LD_DEBUG or run setuid left no lines",
                 "the environment each process had (loader_env null: LD_DEBUG does not print it)"],
}
LD_LINE = re.compile(r"^\s*(\d+):")


@dataclass
class ImportResult:
    session: Path
    events: int
    processes: int
    malformed: int
    meta: dict


def import_logs(fmt: str, sources: list[str | os.PathLike], out: str | os.PathLike | None = None,
                force: bool = False) -> ImportResult:
    """Read the logs (files; for ld-debug also directories of LD_DEBUG_OUTPUT
    files) and write a session; the session's directory and counts."""
    if fmt not in FORMATS:
        raise GotraceError(f"unknown log format {fmt!r}; choose one of {', '.join(FORMATS)}")
    files = _files(fmt, sources)
    path = prepare_directory(Path(out), force) if out else create_unique(
        Path("gotrace-sessions"), time.strftime("%Y%m%d-%H%M%S") + f"-import-{fmt}")
    writer = SessionWriter(path, {
        "command": None, "argv": None, "cwd": os.getcwd(), "host": None, "arch": None, "kernel": None,
        "os": "Darwin" if fmt == "dyld-print" else "Linux", "backend": fmt,
        "backend_choice": f"imported {fmt} log", "versions": {"gotrace": __version__, "pyarrow": pa.__version__},
        "start_time": time.time(), "start_ns": 0, "latency_method": None,
        "ts_source": "the order of the lines in the log (1 ns per line): the log has no clock times",
        "imported": {"format": fmt, "from": [str(Path(f).resolve()) for f in files], "at": time.time(),
                     "limits": LIMITS[fmt]},
    })
    try:
        if fmt == "dyld-print":
            processes, images, stats = _dyld_print(files, writer)
        else:
            processes, images, stats = _ld_debug(files, writer)
    except BaseException:
        writer.finish(False, failure="import failed")
        raise
    writer.write_table("processes", processes)
    writer.write_table("images", images)
    writer.write_table("relocations", [])
    writer.finish(writer.write_error is None, end_ns=max(writer.events_written, 1), processes=len(processes),
                  lost_events=0, **stats)
    return ImportResult(path, writer.events_written, len(processes), stats.get("malformed_records", 0), writer.meta)


def _files(fmt: str, sources: list) -> list[str]:
    if not sources:
        raise GotraceError(f"no log given: gotrace import {fmt} FILE…")
    files = []
    for src in map(str, sources):
        if os.path.isdir(src):
            if fmt != "ld-debug":
                raise GotraceError(f"{src} is a directory; give the DYLD_PRINT_TO_FILE log itself")
            from .ld_debug.backend import log_pid

            found = [os.path.join(src, n) for n in sorted(os.listdir(src), key=_log_order)
                     if log_pid(n) is not None and os.path.isfile(os.path.join(src, n))]
            if not found:
                raise GotraceError(f"{src} holds no LD_DEBUG_OUTPUT files (named PREFIX.PID)")
            files += found
        elif os.path.isfile(src):
            files.append(src)
        elif os.path.exists(src):
            raise GotraceError(f"{src} is not a regular file")
        else:
            raise GotraceError(f"no such log: {src}")
    return files


def _log_order(name: str) -> tuple:
    """gotrace's kept logs in the order their processes wrote them: a reused pid's
    first log is ld.PID.done, then ld.PID.2.done …, then the live ld.PID."""
    from .ld_debug.backend import log_pid

    parts = name.split(".")
    done = parts[-1] == "done"
    k = int(parts[-2]) if done and len(parts) > 3 and parts[-2].isdigit() else 1
    return (log_pid(name) or 0, 0 if done else 1, k, name)


def _read(path: str):
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(READ):
                yield chunk
    except OSError as exc:
        raise GotraceError(f"cannot read {path}: {exc.strerror}") from None


def _dyld_print(files: list[str], writer: SessionWriter) -> tuple[list, list, dict]:
    from .dyld_print.log import DyldLog, LogStats, event_columns

    processes, images, total = [], [], LogStats()
    seen_pids: set[int] = set()
    position = 0
    for f in files:
        log = DyldLog(first_position=position)
        for chunk in _read(f):
            rows = log.feed(chunk, None)
            if rows:
                writer.append_events(events_table(event_columns(rows), "dyld-print"))
        rows = log.close(None)
        if rows:
            writer.append_events(events_table(event_columns(rows), "dyld-print"))
        position = log.position
        procs = log.processes()
        seen_pids |= {p["pid"] for p in procs}
        processes += procs
        images += log.images()
        s = log.stats()
        for k in ("bodies", "unknown", "ambiguous", "lost", "stray", "prebuilt"):
            setattr(total, k, getattr(total, k) + getattr(s, k))
    return processes, images, {"malformed_records": total.malformed, "dyld_print": {
        "lines": total.bodies + total.malformed - total.unknown, "unknown_lines": total.unknown,
        "ambiguous_lines": total.ambiguous, "lost_lines": total.lost, "stray_text": total.stray,
        "unnamed_binds": total.prebuilt}}


def _ld_debug(files: list[str], writer: SessionWriter) -> tuple[list, list, dict]:
    from .ld_debug.backend import events_of, log_pid, processes_rows
    from .ld_debug.parse import LdDebugFileParser, Untangler

    search = os.environ.get("PATH", os.defpath)
    parsers: dict[int, LdDebugFileParser] = {}
    ts = 0

    def parser(pid: int) -> LdDebugFileParser:
        if pid not in parsers:
            parsers[pid] = LdDebugFileParser(pid, search)
        return parsers[pid]

    for f in files:
        pid = log_pid(os.path.basename(f))
        data = b"".join(_read(f))
        if pid is not None:  # one process's LD_DEBUG_OUTPUT file (its forked children write into it too)
            groups = {pid: data.decode("utf-8", "replace").splitlines()}
        else:  # a stderr capture: every process's lines, each with its pid (cut lines joined first)
            untangle = Untangler()
            whole = untangle.lines(data.decode("utf-8", "replace").splitlines())
            groups = {}
            for line in whole + untangle.rest():
                m = LD_LINE.match(line)
                if m:
                    groups.setdefault(int(m.group(1)), []).append(line)
        for p, lines in groups.items():
            rows: list[tuple] = []
            parser(p).feed(lines, ts, rows)
            ts += 1
            if rows:
                writer.append_events(events_of(_ordered(rows, ts)))
    rows = []
    for prs in parsers.values():
        prs.flush(rows)
    if rows:
        writer.append_events(events_of(_ordered(rows, ts)))
    from .translated.translation import annotate

    raw_images = [row for prs in parsers.values() for row in prs.image_rows()]
    return annotate(processes_rows(parsers), os.getcwd(), None), image_rows(raw_images), {"malformed_records": 0}


def _ordered(rows: list[tuple], base: int) -> list[tuple]:
    """Event times from the order of the lines (the log has none)."""
    return [(base * 1_000_000 + i, *r[1:]) for i, r in enumerate(rows)]
