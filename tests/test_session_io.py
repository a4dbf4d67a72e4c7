"""Saved sessions load with the contract's dtypes, whatever the order of the data."""
from __future__ import annotations

import pyarrow as pa

from tracer import load_session
from tracer.session import schema
from tracer.session.writer import SessionWriter, prepare_directory


def _chunk(kinds: list[str]) -> pa.Table:
    n = len(kinds)
    return pa.table({
        "ts_ns": list(range(n)), "pid": [1] * n, "tid": [1] * n, "exe": ["/bin/x"] * n, "requester": ["/bin/x"] * n,
        "symbol": [f"s{i}" for i in range(n)], "version": [None] * n, "provider": ["/lib/libc.so.6"] * n,
        "kind": kinds, "resolved": [True] * n, "latency_ns": [1] * n, "latency_raw_ns": [1] * n,
        "backend": ["bpftrace"] * n,
    })


def test_kind_categories_are_in_contract_order_whatever_the_parts_hold(tmp_path):
    """pandas treats unordered categoricals with the same categories in another
    order as the same dtype, so astype() would keep the parts' order (the first
    part seen decides it). One part and several parts, dlsym seen before lazy."""
    for parts in ([["dlsym", "eager", "lazy"]], [["dlsym"], ["eager", "dlsym"], ["lazy"]]):
        path = prepare_directory(tmp_path / f"s{len(parts)}", False)
        w = SessionWriter(path, {"argv": ["x"]})
        for kinds in parts:
            w.append_events(_chunk(kinds))
        w.write_table("processes", schema.empty("processes"))
        w.finish(True)
        ev = load_session(path).events
        assert list(ev["kind"].cat.categories) == list(schema.KINDS)
        assert list(ev["kind"]) == [k for kinds in parts for k in kinds]


def test_one_damaged_part_leaves_the_rest_readable_and_says_what_was_lost(tmp_path, monkeypatch):
    """An ld-debug session of four programs in four parts or more, one part then cut to half its size.
    Oracles: glibc's own LD_DEBUG=bindings count of the same command (the whole session's rows), and
    the damaged part's rows read with pandas before the damage. report, why, export, plot and compare
    read the three intact parts, name the damaged file with the rows it held, and say the answers
    are partial; the gate refuses a partial run."""
    import json
    import os
    import subprocess

    import pandas as pd

    from conftest import gotrace_cli, ld_debug_counts
    from tracer import bind
    from tracer.capture import sink

    argv = ["sh", "-c", "ls / >/dev/null; python3 -c 'import ssl'; git --version >/dev/null; cat /dev/null"]
    logs = tmp_path / "ld"
    logs.mkdir()
    subprocess.run(argv, env={**os.environ, "LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(logs / "ld")}, check=True)
    whole = sum(ld_debug_counts(logs).values())
    # every slice of a quarter of the run its own part: the backend's tables cut before the sink
    monkeypatch.setattr(sink, "CHUNK_ROWS", 1)
    step, feed = whole // 4 + 1, sink.ChunkSink.__call__
    monkeypatch.setattr(sink.ChunkSink, "__call__",
                        lambda self, t: [feed(self, t.slice(i, step)) for i in range(0, t.num_rows, step)])
    sess = bind(argv, out=tmp_path / "s", backend="ld-debug").session
    parts = sorted((sess / "events").glob("part-*.parquet"))
    assert len(parts) >= 4 and sum(len(pd.read_parquet(p)) for p in parts) == whole
    victim = parts[2]
    lost = len(pd.read_parquet(victim))
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    intact = pd.concat([pd.read_parquet(p) for p in parts if p != victim])
    said = f"events/{victim.name}"

    rep = gotrace_cli("report", "--json", str(sess))
    assert rep.returncode == 0, rep.stderr
    doc = json.loads(rep.stdout)
    assert doc["bindings"]["total"] == whole - lost == len(intact)
    (d,) = doc["session"]["damaged_parts"]
    assert d["file"] == said and d["rows"] == lost and doc["session"]["counts_lower_bound"] is True
    text = gotrace_cli("report", str(sess)).stdout
    assert "DAMAGED" in text and said in text and f"{lost:,} bindings" in text and "partial" in text

    symbol = str(intact["symbol"].value_counts().index[0])
    why = gotrace_cli("why", str(sess), symbol, "--json")
    assert why.returncode == 0, why.stderr
    assert said in why.stderr and "partial" in why.stderr
    assert json.loads(why.stdout)["damaged_parts"][0]["rows"] == lost
    csv = tmp_path / "e.csv"
    out = gotrace_cli("export", str(sess), "-f", "csv", "-o", str(csv))
    assert out.returncode == 0 and said in out.stderr, out.stderr
    assert len(pd.read_csv(csv)) == len(intact)
    out = gotrace_cli("plot", str(sess), "-o", str(tmp_path / "p.png"))
    assert out.returncode == 0 and said in out.stderr, out.stderr
    out = gotrace_cli("compare", "--json", str(sess), str(sess))
    assert out.returncode == 0 and said in out.stderr, out.stderr
    assert json.loads(out.stdout)["a"]["damaged_parts"] == [d]
    gate = gotrace_cli("compare", str(sess), str(sess), "--fail-on", "bindings+10%")
    assert gate.returncode == 2 and said in gate.stderr and len(gate.stderr.strip().splitlines()) == 3
    # a part that is gone altogether is named as well, with its rows
    victim.unlink()
    doc = json.loads(gotrace_cli("report", "--json", str(sess)).stdout)
    assert doc["session"]["damaged_parts"] == [{"file": said, "rows": lost, "error": "missing"}]
