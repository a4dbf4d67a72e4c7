"""A session in other tools' formats: Chrome trace events, CSV, one Parquet file.

Chrome/Perfetto (the Trace Event Format's JSON object form): one process track
per pid named after its program, one thread track per tid; a binding with a
measured latency is a complete event ("X") spanning the lookup as it was
observed (latency_raw_ns), drawn where it ran: from its start, which is ts_ns
or ts_ns minus the latency as its backend stamps the start or the end
(schema.TS_MARKS), so a thread's slices follow each other and a lookup made
inside another (an interposed malloc's lazy binding) nests in it; one without
a latency is an instant event ("i"); timestamps are microseconds from the
session start (the format's unit), with the nanosecond figures kept in args.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import GotraceError
from ..heavy import pa, pq
from ..session.reader import Session
from ..session.schema import lookup_span

FORMATS = ("chrome", "csv", "parquet")


def chrome_trace(s: Session) -> dict:
    ev, procs = s.events, s.processes
    t0 = int(s.meta.get("start_ns") or (ev["ts_ns"].min() if len(ev) else 0))
    out = []
    for pid, exe in zip(procs["pid"], procs["exe"]):  # the last image names the track
        label = os.path.basename(str(exe)) if exe is not None and str(exe) not in ("nan", "<NA>") else "?"
        out.append({"ph": "M", "name": "process_name", "pid": int(pid), "tid": int(pid), "args": {"name": label}})
    translated = procs.loc[procs["translator"].notna(), "pid"] if "translator" in procs.columns else []
    for pid in set(int(p) for p in translated):
        out.append({"ph": "M", "name": "process_labels", "pid": pid, "tid": pid, "args": {"labels": "translated"}})
    tids = ev["tid"].fillna(ev["pid"]).astype("int64") if len(ev) else []
    lat = ev["latency_ns"] if len(ev) else []
    raw = ev["latency_raw_ns"] if "latency_raw_ns" in ev.columns else lat
    backend = ev["backend"].astype(str) if "backend" in ev.columns else [s.meta.get("backend")] * len(ev)
    slices = []
    for ts, pid, tid, sym, req, prov, kind, ok, ns, raw_ns, by in zip(
            ev["ts_ns"], ev["pid"], tids, ev["symbol"], ev["requester"], ev["provider"], ev["kind"], ev["resolved"],
            lat, raw, backend):
        observed = _int(raw_ns)
        if observed is None:
            observed = _int(ns)
        start, dur = lookup_span(by, int(ts), observed)
        e = {"name": str(sym), "cat": f"binding,{kind}", "pid": int(pid), "tid": int(tid),
             "ts": (start - t0) / 1000.0,
             "args": {"requester": str(req), "provider": None if prov is None or str(prov) == "nan" else str(prov),
                      "kind": str(kind), "resolved": bool(ok)}}
        if dur is not None:
            e.update(ph="X", dur=dur / 1000.0)
            e["args"].update(latency_ns=_int(ns), latency_raw_ns=dur)
        else:
            e.update(ph="i", s="t")
        slices.append((int(pid), int(tid), start, -(dur or 0), e))
    slices.sort(key=lambda x: x[:4])  # a thread's slices in order, an outer one before what it holds
    out.extend(x[4] for x in slices)
    return {"traceEvents": out, "displayTimeUnit": "ns",
            "otherData": {"gotrace_session": str(s.path), "backend": s.meta.get("backend"),
                          "argv": s.meta.get("argv")}}


def _int(v) -> int | None:
    return None if v is None or str(v) in ("<NA>", "nan", "None") else int(v)


def export(s: Session, fmt: str, dest: str | os.PathLike) -> int:
    """Write the session's events as ``fmt`` to ``dest`` (``-``: stdout); returns the rows written."""
    if fmt not in FORMATS:
        raise GotraceError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    to_stdout = str(dest) == "-"
    dest = Path(dest)
    if not to_stdout and not dest.parent.exists():
        raise GotraceError(f"cannot write {dest}: directory {dest.parent} does not exist")
    try:
        if fmt == "chrome":
            trace = chrome_trace(s)
            if to_stdout:
                json.dump(trace, sys.stdout, separators=(",", ":"))
                sys.stdout.flush()
            else:
                with open(dest, "w") as fh:
                    json.dump(trace, fh, separators=(",", ":"))
            return sum(1 for e in trace["traceEvents"] if e["ph"] in ("X", "i"))
        if fmt == "csv":
            s.events.to_csv(sys.stdout if to_stdout else dest, index=False)
        else:
            sink = pa.output_stream(sys.stdout.buffer) if to_stdout else dest
            pq.write_table(pa.Table.from_pandas(s.events, preserve_index=False), sink)
            if to_stdout:
                sink.close()
        if to_stdout:
            sys.stdout.flush()
    except BrokenPipeError:
        raise  # the reader of stdout went away: the console ends quietly
    except OSError as exc:
        raise GotraceError(f"cannot write {'stdout' if to_stdout else dest}: {exc.strerror or exc}") from None
    return len(s.events)
