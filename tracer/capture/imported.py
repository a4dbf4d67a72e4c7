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
import shutil
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
DYLD4 = re.compile(r"dyld\[\d+\]: ")  # dyld4's prefix (demux.PREFIX, on text)


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
    errors, searches = stats.pop("_errors", []), stats.pop("_searches", [])
    if not stats.pop("_read_anything", True) and not writer.events_written:
        writer.finish(False, failure="nothing read")
        shutil.rmtree(path, ignore_errors=True)
        what = "dyld line (dyld: … or dyld[PID]: …) or loader error" if fmt == "dyld-print" else "LD_DEBUG line"
        raise GotraceError(f"no {what} in {', '.join(map(str, files))}: nothing to import (is it the right file? "
                           "gotrace explain reads a pasted error alone)", 1)
    writer.write_table("processes", processes)
    writer.write_table("images", images)
    writer.write_table("relocations", [])
    writer.write_table("errors", errors)
    if fmt == "dyld-print":
        writer.write_table("searches", searches)
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
    from ..loaderrors.scan import scan
    from .dyld_print.dyld2 import Dyld2Log
    from .dyld_print.log import DyldLog, LogStats, event_columns

    processes, images, errors, searches, total = [], [], [], [], LogStats()
    lines = dict(lines=0, dyld_read=0, dyld_unread=0, other=0, error_messages=0, error_lines=0, dyld_physical=0,
                 blank=0)
    samples: list[str] = []
    position = pid_base = 0
    for f in files:
        log = DyldLog(first_position=position)
        carry, kept = b"", []
        for chunk in _read(f):
            kept.append(chunk)  # the line pass below reads the same bytes: the file is read once
            data = carry + chunk
            carry = b"\r" if data.endswith(b"\r") else b""  # CRLF split across reads
            rows = log.feed((data[:-1] if carry else data).replace(b"\r\n", b"\n"), None)
            if rows:
                writer.append_events(events_table(event_columns(rows), "dyld-print"))
        rows = log.close(None)
        if rows:
            writer.append_events(events_table(event_columns(rows), "dyld-print"))
        s = log.stats()
        for k in ("bodies", "unknown", "ambiguous", "lost", "stray", "prebuilt", "errors"):
            setattr(total, k, getattr(total, k) + getattr(s, k))
        samples += log.unknown_samples()
        # the same file line by line: load errors (several lines each), dyld2's pid-less lines, other text
        text = b"".join(kept).decode("utf-8", "replace").splitlines()
        del kept
        found = scan(text)
        old = Dyld2Log()
        for i, line in enumerate(text):
            if i in found.lines:
                continue
            at = line.find("dyld: ")
            if "dyld[" in line and DYLD4.search(line):
                lines["dyld_physical"] += 1  # dyld4's: read by the demux above
            elif at >= 0 and not line[:at].strip():
                lines["dyld_physical"] += 1
                if not old.take(line[at + 6:], position + i + 1) and len(samples) < 5:
                    samples.append(line[at:])
            elif old.take_bare(line):
                lines["dyld_physical"] += 1
            elif line.strip():
                lines["other"] += 1
            else:
                lines["blank"] += 1
        lines["lines"] += len(text)
        lines["error_messages"] += len(found.errors)
        lines["error_lines"] += len(found.lines)
        lines["dyld_read"] += old.read
        lines["dyld_unread"] += len(old.unknown)
        ev, procs2, images2 = old.rows()  # pid-less processes, numbered 0, 1 … within this file
        if not procs2 and any(e.pid is None for e in found.errors):  # a pasted message alone: its process
            first = next(e for e in found.errors if e.pid is None)
            procs2 = [{"pid": 0, "exe": first.program or (first.requester if first.via == "launch" else None),
                       "start_ns": position + first.line}]
        for p in procs2:
            p["pid"] += pid_base
        for im in images2:
            im["pid"] += pid_base
        if ev:
            writer.append_events(events_table(event_columns([(t, p + pid_base, *r) for t, p, *r in ev]),
                                              "dyld-print"))
        procs = log.processes() + procs2
        exes = {p["pid"]: p["exe"] for p in procs}
        for e in found.errors:
            row = e.row()
            if e.pid is None and procs2:  # no pid: the pid-less process whose lines came last before the message
                row["pid"] = max((p for p in procs2 if p["start_ns"] <= position + e.line),
                                 key=lambda p: p["start_ns"], default=procs2[0])["pid"]
            row["exe"] = exes.get(row["pid"]) or e.program
            # Rosetta, from the report ("Code Type: X86-64 (Translated)") or dyld's own words: an arm64
            # file refused for a process that can load x86_64 alone
            if found.translated or (e.cause == "wrong-arch" and e.need and set(e.need) <= {"x86_64", "i386"}
                                    and any(h.startswith("arm64") for h in e.have)):
                for p in procs:
                    if p["pid"] == row["pid"]:
                        p["translator"] = p.get("translator") or "rosetta"
            if row["pid"] is not None and row["pid"] not in exes:  # a process known from its error alone
                procs.append({"pid": row["pid"], "exe": row["exe"], "start_ns": position + e.line})
                exes[row["pid"]] = row["exe"]
            errors.append({k: v for k, v in row.items() if k != "program"})
        pid_base += len(procs2)
        position = log.position + len(text)
        processes += procs
        images += log.images() + [{**im, "link_base": None, "slide": None} for im in images2]
        searches += log.searches()
    lines["dyld_read"] += total.bodies - total.unknown
    lines["dyld_unread"] += total.unknown
    read_anything = lines["dyld_read"] or lines["error_messages"]
    # stray text is program output, dyld2's lines or error messages: each counted where it was read above
    return processes, images, {"malformed_records": lines["dyld_unread"] + total.ambiguous + total.lost,
                               "_errors": errors, "_searches": searches, "_read_anything": bool(read_anything),
                               "dyld_print": {
        "lines": lines["lines"], "dyld_lines_read": lines["dyld_read"], "dyld_lines_unread": lines["dyld_unread"],
        "unread_samples": samples[:5], "other_lines": lines["other"], "load_errors": lines["error_messages"],
        # each line of the files once: dyld's, a load error's, other text, blank (they add up to "lines")
        "line_kinds": {"dyld": lines["dyld_physical"], "error": lines["error_lines"], "other": lines["other"],
                       "blank": lines["blank"]},
        "error_lines": lines["error_lines"], "unknown_lines": total.unknown,
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

    from ..loaderrors.scan import scan

    errors: list[dict] = []
    for f in files:
        pid = log_pid(os.path.basename(f))
        data = b"".join(_read(f))
        for e in scan(data.decode("utf-8", "replace")).errors:  # ld.so's fatal messages (a stderr capture)
            row = e.row()
            row["exe"] = row.pop("program")
            errors.append(row)
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
    return annotate(processes_rows(parsers), os.getcwd(), None), image_rows(raw_images), {"malformed_records": 0,
                                                                                          "_errors": errors}


def _ordered(rows: list[tuple], base: int) -> list[tuple]:
    """Event times from the order of the lines (the log has none)."""
    return [(base * 1_000_000 + i, *r[1:]) for i, r in enumerate(rows)]
