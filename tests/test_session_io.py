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
