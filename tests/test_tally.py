"""The report's tally gives one answer however the events were chunked."""
from __future__ import annotations

import random

import pyarrow as pa

from tracer.session import schema
from tracer.analysis.tally import EventTally


def _events(n: int, seed: int) -> pa.Table:
    rnd = random.Random(seed)
    kinds = [rnd.choice(schema.KINDS) for _ in range(n)]
    resolved = [rnd.random() > 0.1 for _ in range(n)]
    return pa.table({
        "kind": kinds,
        "resolved": resolved,
        "symbol": [f"s{rnd.randrange(30)}" for _ in range(n)],  # many ties among 30 names
        "provider": [f"/lib/p{rnd.randrange(5)}.so" if r else None for r in resolved],
        "exe": [rnd.choice(["/bin/a", "/bin/b", None]) for _ in range(n)],
        "latency_ns": pa.array([rnd.randrange(10_000) if rnd.random() > 0.3 else None for _ in range(n)],
                               pa.int64()),
    })


def _tally(table: pa.Table, cuts: list[int]) -> dict:
    t = EventTally()
    for a, b in zip([0, *cuts], [*cuts, table.num_rows]):
        t.add(table.slice(a, b - a))
    return t.sections(10)


def test_chunking_and_order_do_not_change_the_report():
    table = _events(5000, 1)
    whole = _tally(table, [])
    rnd = random.Random(2)
    for _ in range(5):
        assert _tally(table, sorted(rnd.sample(range(1, 5000), 7))) == whole
    assert _tally(table.take(list(range(4999, -1, -1))), [2500]) == whole  # reversed arrival
    # independent counts, by hand
    rows = table.to_pylist()
    assert whole["bindings"]["total"] == 5000
    assert whole["bindings"]["failed"] == sum(not r["resolved"] for r in rows)
    assert whole["bindings"]["by_kind"] == {k: sum(r["kind"] == k for r in rows) for k in schema.KINDS}
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["symbol"]] = counts.get(r["symbol"], 0) + 1
    assert whole["top_symbols"] == [{"symbol": s, "bindings": c}
                                    for s, c in sorted(counts.items(), key=lambda sc: (-sc[1], sc[0]))[:10]]
    assert all(e["exe"] is not None for e in whole["by_exe"]) and len(whole["by_exe"]) == 2
    lat = sorted(r["latency_ns"] for r in rows if r["latency_ns"] is not None)
    assert whole["latency_ns"]["all"]["count"] == len(lat) and whole["latency_ns"]["all"]["max"] == lat[-1]
    assert whole["latency_ns"]["all"]["p50"] == lat[round(0.5 * (len(lat) - 1))]


def test_no_latency_and_no_events():
    t = EventTally()
    t.add(_events(10, 3).set_column(5, "latency_ns", pa.nulls(10, pa.int64())))
    assert t.sections(3)["latency_ns"] is None and t.sections(3)["bindings"]["total"] == 10
    empty = EventTally().sections(3)
    assert empty["bindings"] == {"total": 0, "by_kind": {k: 0 for k in schema.KINDS}, "resolved": 0, "failed": 0}
    assert empty["top_symbols"] == [] and empty["latency_ns"] is None
