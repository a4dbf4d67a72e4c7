"""The report's tally against counts made by hand from the same rows (the rows are the oracle:
every figure is a count or a percentile of them), with failed lookups keyed as analysis/failures.py
keys them, a translator's own events set apart, and chunks that arrive empty or fully resolved."""
from __future__ import annotations

import random
from collections import Counter

import pyarrow as pa

from tracer.analysis.tally import FAILURE_KEY, EventTally
from tracer.session import schema

QEMU = "/usr/bin/qemu-aarch64"


def _rows(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        resolved = rnd.random() > 0.2
        out.append({"kind": rnd.choice(schema.KINDS), "resolved": resolved, "symbol": f"s{rnd.randrange(12)}",
                    "provider": f"/lib/p{rnd.randrange(4)}.so" if resolved else None,
                    "exe": rnd.choice(["/bin/a", "/bin/b", QEMU]), "pid": rnd.randrange(100, 104),
                    "requester": rnd.choice(["/bin/a", "/lib/p1.so"]), "version": rnd.choice([None, "V1"]),
                    "latency_ns": rnd.randrange(1, 10_000) if rnd.random() > 0.3 else None})
    return out


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("kind", pa.string()), ("resolved", pa.bool_()), ("symbol", pa.string()), ("provider", pa.string()),
        ("exe", pa.string()), ("pid", pa.int32()), ("requester", pa.string()), ("version", pa.string()),
        ("latency_ns", pa.int64())]))


def _ranked(counts: Counter, key: str, n: int = 10) -> list[dict]:
    return [{key: k, "bindings": c} for k, c in sorted(counts.items(), key=lambda kc: (-kc[1], kc[0]))[:n]]


def test_failures_translators_and_chunks_counted_by_hand():
    rows = _rows(3000, 7)
    t = EventTally(translators=lambda exe: exe == QEMU)
    t.add(_table([]))  # an empty chunk changes nothing
    t.add(_table([dict(r, resolved=True, provider="/lib/p0.so") for r in rows[:1] if r["exe"] != QEMU]))
    first = 1 if rows[0]["exe"] != QEMU else 0
    for a in range(1, 3000, 700):  # the rest, in chunks
        t.add(_table(rows[a:a + 700]))
    mine = [dict(rows[0], resolved=True, provider="/lib/p0.so")] * first + [r for r in rows[1:] if r["exe"] != QEMU]
    theirs_q = [r for r in rows[1:] if r["exe"] == QEMU]
    s = t.sections(10)
    assert s["bindings"]["total"] == len(mine) and s["bindings"]["failed"] == sum(not r["resolved"] for r in mine)
    assert s["failed_symbols"] == _ranked(Counter(r["symbol"] for r in mine if not r["resolved"]), "symbol")
    assert s["top_providers"] == [{"provider": k, "bindings": c} for k, c in sorted(
        Counter(r["provider"] for r in mine if r["provider"]).items(), key=lambda kc: (-kc[1], kc[0]))]
    assert t.failures == Counter(tuple(r[k] for k in FAILURE_KEY) for r in mine if not r["resolved"])
    assert t.pids == {r["pid"] for r in mine}
    lat = sorted(r["latency_ns"] for r in mine if r["latency_ns"] is not None)
    assert s["latency_ns"]["all"]["count"] == len(lat) and s["latency_ns"]["all"]["max"] == lat[-1]
    # the translator's own: apart, with its own counts
    q = t.translator_section(10)
    assert q["bindings"] == len(theirs_q) and q["by_exe"] == [{"exe": QEMU, "bindings": len(theirs_q)}]
    assert q["top_providers"] == [{"provider": k, "bindings": c} for k, c in sorted(
        Counter(r["provider"] for r in theirs_q if r["provider"]).items(), key=lambda kc: (-kc[1], kc[0]))]


def test_no_translator_section_without_translators_or_their_events():
    rows = [r for r in _rows(200, 3) if r["exe"] != QEMU]
    assert EventTally().translator_section(5) is None
    t = EventTally(translators=lambda exe: exe == QEMU)
    t.add(_table(rows))
    assert t.translator_section(5) is None and t.sections(5)["bindings"]["total"] == len(rows)


def test_a_single_latency_and_all_resolved():
    """One measured lookup is a latency; a chunk wholly resolved has no failed symbols."""
    row = dict(_rows(1, 5)[0], exe="/bin/a", resolved=True, provider="/lib/p0.so", latency_ns=42)
    t = EventTally()
    t.add(_table([row]))
    s = t.sections(3)
    # one lookup: every percentile and the sum are it; no off-CPU time measured, so no on-CPU figures;
    # the slowest 0.1 % of one lookup is that lookup (at least one), the whole total
    assert s["latency_ns"]["all"] == {"p50": 42, "p90": 42, "p99": 42, "max": 42, "mean": 42.0, "count": 1,
                                      "total": 42, "oncpu": None,
                                      "tail": {"fraction": 0.001, "lookups": 1, "total": 42, "share": 1.0}}
    assert s["failed_symbols"] == [] and t.failures == Counter()


def test_a_symbol_seen_once_an_all_failed_chunk_and_an_unknown_program():
    """A count of one is still a row of the ranking; a chunk of failures only adds no resolved
    lookup; an event whose program is unknown (null exe) is nobody's translator, even beside the
    translator's own in one chunk."""
    base = dict(_rows(1, 9)[0], kind="eager", latency_ns=None, pid=1, requester="/bin/a", version=None)
    t = EventTally(translators=lambda exe: exe == QEMU)
    t.add(_table([dict(base, exe="/bin/a", symbol="once", resolved=True, provider="/lib/p0.so")]))
    t.add(_table([dict(base, exe="/bin/a", symbol=f"gone{i}", resolved=False, provider=None) for i in range(3)]))
    t.add(_table([dict(base, exe=None, symbol="orphan", resolved=True, provider="/lib/p0.so"),
                  dict(base, exe=QEMU, symbol="qemu_own", resolved=True, provider="/lib/p0.so")]))
    s = t.sections(10)
    assert {"symbol": "once", "bindings": 1} in s["top_symbols"] and {"symbol": "orphan", "bindings": 1} in s["top_symbols"]
    assert s["bindings"] == {"total": 5, "by_kind": {k: 5 * (k == "eager") for k in schema.KINDS}, "resolved": 2,
                             "failed": 3}
    assert t.translator_section(5)["bindings"] == 1  # qemu's own lookup, and only it
