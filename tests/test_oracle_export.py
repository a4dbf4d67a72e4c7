"""`gotrace export -f chrome`: every slice where and as long as the lookup was, against the session's own files.

The oracle is the session read without gotrace: its Parquet parts by pyarrow.dataset, meta.json by
json, and what each backend's probe stamps, written out here from the probes themselves:
bindsnoop.bpf.c and bindsnoop.bt take ts_ns in the return probe (the lookup ran from ts_ns -
latency_raw_ns to ts_ns); lldb's recorder at the entry breakpoint (from ts_ns on); ld-debug has no
latency (an instant at ts_ns). The Trace Event Format counts microseconds.
"""
from __future__ import annotations

import json
import os
from collections import Counter

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from conftest import gotrace_cli, require_backend
from tracer import bind

STAMPED_AT = {"bpf": "return", "bpftrace": "return", "lldb": "entry", "ld-debug": None}


def _rows(session):
    ev = ds.dataset(os.path.join(session, "events"), format="parquet").to_table().to_pylist()
    procs = pq.read_table(os.path.join(session, "processes.parquet")).to_pylist()
    with open(os.path.join(session, "meta.json")) as fh:
        meta = json.load(fh)
    return ev, procs, meta


@pytest.mark.parametrize("backend", ["bpf", "bpftrace", "ld-debug", "lldb"])
def test_chrome_slices_are_the_lookups_as_recorded(backend, tmp_path):
    require_backend(backend)
    argv = ["ls", "-d", "/"] if backend == "lldb" else ["sh", "-c", "ls -d / >/dev/null; git --version >/dev/null"]
    res = bind(argv, out=tmp_path / "s", backend=backend)
    assert res.exit_code == 0
    out = gotrace_cli("export", str(tmp_path / "s"), "-f", "chrome", "-o", str(tmp_path / "t.json"))
    assert out.returncode == 0, out.stderr
    trace = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    ev, procs, meta = _rows(tmp_path / "s")
    assert ev
    assert f"{len(ev)} bindings written" in out.stderr

    # one track per process, named after its (last) program
    names = {e["pid"]: e["args"]["name"] for e in trace if e["ph"] == "M" and e["name"] == "process_name"}
    assert names == {p["pid"]: os.path.basename(p["exe"]) for p in procs}

    t0 = meta["start_ns"]
    want = Counter()
    for r in ev:
        raw = r.get("latency_raw_ns")
        raw = r.get("latency_ns") if raw is None else raw
        at = STAMPED_AT[backend]
        start = r["ts_ns"] - raw if at == "return" and raw is not None else r["ts_ns"]
        want[(r["symbol"], r["pid"], r["tid"] if r["tid"] is not None else r["pid"], start - t0,
              raw if at else None, r["requester"], r["provider"], r["kind"], r["resolved"])] += 1
    got = Counter()
    for e in trace:
        if e["ph"] == "M":
            continue
        assert e["ph"] == ("X" if STAMPED_AT[backend] else "i")
        a = e["args"]
        got[(e["name"], e["pid"], e["tid"], round(e["ts"] * 1000), round(e["dur"] * 1000) if "dur" in e else None,
             a["requester"], a["provider"], a["kind"], a["resolved"])] += 1
        assert e["cat"] == f"binding,{a['kind']}"
    assert got == want

    # a thread's slices in the order they began, an outer one before the ones it holds
    by_thread: dict = {}
    for e in trace:
        if e["ph"] != "M":
            by_thread.setdefault((e["pid"], e["tid"]), []).append((e["ts"], -e.get("dur", 0)))
    for spans in by_thread.values():
        assert spans == sorted(spans)


def test_a_process_whose_program_is_unknown_is_drawn_as_such(tmp_path):
    """A process row without a program (an ld-debug child forked before its parent's program was named,
    an attach that could not read /proc/PID/exe) gets a track named "?", not "None" or "nan"."""
    require_backend("ld-debug")
    res = bind(["sh", "-c", "ls -d / >/dev/null"], out=tmp_path / "s", backend="ld-debug")
    assert res.exit_code == 0
    table = pq.read_table(tmp_path / "s" / "processes.parquet")
    rows = table.to_pylist()
    unknown = rows[-1]["pid"]
    rows[-1]["exe"] = None
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), tmp_path / "s" / "processes.parquet")
    out = gotrace_cli("export", str(tmp_path / "s"), "-f", "chrome", "-o", str(tmp_path / "t.json"))
    assert out.returncode == 0, out.stderr
    names = {e["pid"]: e["args"]["name"] for e in json.loads((tmp_path / "t.json").read_text())["traceEvents"]
             if e["ph"] == "M" and e["name"] == "process_name"}
    assert names[unknown] == "?"
    assert all(n not in ("None", "nan", "?") for p, n in names.items() if p != unknown)
