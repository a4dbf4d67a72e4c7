"""The report's event figures, accumulated one chunk of events at a time.

`gotrace bind` feeds every chunk it writes, as it writes it, so its summary is
ready the moment the command exits: nothing is read back, and pandas is never
imported (its import alone is ~0.3 s of CPU taken from the traced build).
`gotrace report` feeds a saved session's parts one by one, so memory stays
near one part's size plus the latencies. Both give the same figures: one
implementation.

Orders are total, so a report never depends on the order chunks arrived in:
counts descending, then by name. Percentiles are nearest-rank at index
round(q·(n−1)), ties to even — numpy's and pandas' ``nearest``.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable

from ..heavy import pa, pc
from ..session.schema import KINDS

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
COLUMNS = ["kind", "resolved", "symbol", "provider", "exe", "latency_ns", "pid", "requester", "version",
           "offcpu_ns"]  # all it reads (a session from before offcpu_ns lacks it: not measured)
SLOWEST = 50  # slowest lookups kept for the report (--top shows fewer)
SLOWEST_KEYS = ["latency_ns", "offcpu_ns", "symbol", "version", "exe", "pid", "requester", "provider", "kind"]
TAIL_FRACTION = 0.001  # the slowest 0.1 % of lookups: how much of the total they make
FAILURE_KEY = ["pid", "exe", "requester", "symbol", "version", "kind"]  # failed lookups are counted by these


def by_count(counts: Counter) -> list[tuple[str, int]]:
    """(name, count) pairs in the report's order: count descending, then name."""
    return sorted(((str(v), c) for v, c in counts.items() if c > 0), key=lambda vc: (-vc[1], vc[0]))


def ranked(counts: Counter, n: int, key: str, unit: str = "bindings") -> list[dict[str, Any]]:
    """The ``n`` largest counts as report rows."""
    return [{key: v, unit: c} for v, c in by_count(counts)[:n]]


def _count(column, into: Counter) -> None:
    vc = pc.value_counts(column)
    for value, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
        if value is not None:
            into[value] += n


class EventTally:
    """Counts, top lists and latency percentiles of the events added so far.

    With ``translators`` (analysis/translator.py), events whose program is a
    binfmt_misc translator itself go to ``self.translator``, a tally of their
    own, so the figures are the translated program's."""

    def __init__(self, translators: Callable[[Any], bool] | None = None) -> None:
        self.translators = translators if translators else None
        self.translator: EventTally | None = EventTally() if self.translators else None
        self.total = 0
        self.resolved = 0
        self.kinds: Counter = Counter()
        self.symbols: Counter = Counter()
        self.providers: Counter = Counter()
        self.exes: Counter = Counter()
        self.failed: Counter = Counter()
        self.failures: Counter = Counter()  # failed lookups by FAILURE_KEY (analysis/failures.py)
        self.pids: set[int] = set()  # processes with at least one binding
        self._latency: dict[str, list] = {k: [] for k in KINDS}  # non-null latencies per kind
        # per kind, of the timed lookups whose off-CPU time was measured: latency - offcpu, and offcpu
        self._oncpu: dict[str, list] = {k: [] for k in KINDS}
        self._offcpu: dict[str, list] = {k: [] for k in KINDS}
        self._slowest: list[dict] = []  # the SLOWEST slowest timed lookups so far, slowest first

    def add(self, events: pa.Table) -> None:
        n = events.num_rows
        if n == 0:
            return
        if self.translators is not None:
            events = self._split(events)
            n = events.num_rows
            if n == 0:
                return
        self.total += n
        resolved = events["resolved"]
        self.resolved += int(pc.sum(resolved).as_py() or 0)
        kind = events["kind"]
        _count(kind, self.kinds)
        _count(events["symbol"], self.symbols)
        _count(events["provider"], self.providers)
        _count(events["exe"], self.exes)
        if "pid" in events.column_names:
            self.pids.update(pc.unique(events["pid"]).to_pylist())
        if self.resolved != self.total:
            _count(pc.filter(events["symbol"], pc.invert(resolved)), self.failed)
            if all(c in events.column_names for c in FAILURE_KEY):
                failed = events.select(FAILURE_KEY).filter(pc.invert(resolved))
                for row in zip(*(failed[c].to_pylist() for c in FAILURE_KEY)):
                    self.failures[row] += 1
        if "latency_ns" in events.column_names and events["latency_ns"].null_count < n:
            latency = events["latency_ns"]
            measured = pc.is_valid(latency)
            offcpu = events["offcpu_ns"] if "offcpu_ns" in events.column_names else None
            both = None if offcpu is None or offcpu.null_count == n else pc.and_(measured, pc.is_valid(offcpu))
            for k in KINDS:
                of_kind = pc.equal(kind, k)
                lat = pc.filter(latency, pc.and_(measured, of_kind))
                if len(lat):
                    self._latency[k].append(pc.cast(lat, pa.int64()))
                if both is not None:
                    sel = pc.and_(both, of_kind)
                    off = pc.cast(pc.filter(offcpu, sel), pa.int64())
                    if len(off):
                        self._offcpu[k].append(off)
                        self._oncpu[k].append(pc.subtract(pc.cast(pc.filter(latency, sel), pa.int64()), off))
            self._keep_slowest(events, measured)

    def _keep_slowest(self, events: pa.Table, measured) -> None:
        """Merge this chunk's slowest timed lookups into the SLOWEST kept: every row at least as slow as
        the chunk's SLOWEST-th (ties too), then one total order, so chunks in any order give one list."""
        timed = events.filter(measured)
        if timed.num_rows > SLOWEST:
            cut = pc.select_k_unstable(timed["latency_ns"], k=SLOWEST, sort_keys=[("dummy", "descending")])
            floor = pc.min(timed["latency_ns"].take(cut)).as_py()
            timed = timed.filter(pc.greater_equal(timed["latency_ns"], floor))
        cols = {c: (timed[c].to_pylist() if c in timed.column_names else [None] * timed.num_rows)
                for c in SLOWEST_KEYS}
        rows = self._slowest + [dict(zip(SLOWEST_KEYS, r)) for r in zip(*(cols[c] for c in SLOWEST_KEYS))]
        rows.sort(key=lambda r: (-r["latency_ns"], *(str(r[c]) for c in SLOWEST_KEYS[1:])))
        self._slowest = rows[:SLOWEST]

    def _split(self, events: pa.Table) -> pa.Table:
        """The events of translated programs; the translator's own to self.translator."""
        exe = events["exe"]
        if pa.types.is_dictionary(exe.type):  # a pandas categorical, from build_report
            exe = exe.cast(pa.string())
        theirs = [e for e in pc.unique(exe).to_pylist() if e is not None and self.translators(e)]
        if not theirs:
            return events
        mask = pc.fill_null(pc.is_in(exe, value_set=pa.array(theirs, pa.string())), False)
        self.translator.add(events.filter(mask))
        return events.filter(pc.invert(mask))

    def translator_section(self, top_n: int) -> dict[str, Any] | None:
        """The translator's own share: shown apart, never mixed into the figures."""
        t = self.translator
        if t is None or not t.total:
            return None
        return {"bindings": t.total, "by_exe": ranked(t.exes, top_n, "exe"),
                "top_providers": ranked(t.providers, top_n, "provider")}

    def latency(self) -> dict[str, Any] | None:
        per_kind = {k: self._kind_latency(self._latency[k], self._oncpu[k], self._offcpu[k])
                    for k, chunks in self._latency.items() if chunks}
        if not per_kind:
            return None
        every = [c for k in KINDS for c in self._latency[k]]
        out = self._kind_latency(every, [c for k in KINDS for c in self._oncpu[k]],
                                 [c for k in KINDS for c in self._offcpu[k]])
        out["tail"] = _tail(every)
        return {"all": out, **per_kind}

    @staticmethod
    def _kind_latency(latency: list, oncpu: list, offcpu: list) -> dict[str, Any]:
        """Wall percentiles and total; on-CPU (latency - offcpu) percentiles and total beside them,
        where off-CPU time was measured (else null)."""
        out = _percentiles(latency)
        on = _percentiles(oncpu) if oncpu else None
        if on is not None:
            on["offcpu_total"] = int(pc.sum(_values(offcpu)).as_py() or 0)
        out["oncpu"] = on
        return out

    def slowest(self, top_n: int) -> list[dict[str, Any]]:
        """The slowest timed lookups, slowest first: wall time, and of it the time switched out."""
        return [{**r, "pid": None if r["pid"] is None else int(r["pid"]),
                 "oncpu_ns": None if r["offcpu_ns"] is None else r["latency_ns"] - r["offcpu_ns"]}
                for r in self._slowest[:top_n]]

    def sections(self, top_n: int) -> dict[str, Any]:
        """The report's event keys, as report.build_report places them."""
        return {
            "bindings": {
                "total": self.total,
                "by_kind": {k: int(self.kinds.get(k, 0)) for k in KINDS},
                "resolved": self.resolved,
                "failed": self.total - self.resolved,
            },
            "top_symbols": ranked(self.symbols, top_n, "symbol"),
            "top_providers": ranked(self.providers, top_n, "provider"),
            "by_exe": ranked(self.exes, top_n, "exe"),
            "failed_symbols": ranked(self.failed, top_n, "symbol"),
            "latency_ns": self.latency(),
            "slowest_lookups": self.slowest(top_n),
        }


def _values(chunks: list) -> pa.ChunkedArray:
    """Arrays and chunked arrays as one chunked array: given a ChunkedArray as an element,
    pa.chunked_array would convert it value by value in Python (~80 ms per 100,000)."""
    return pa.chunked_array([c for x in chunks for c in (x.chunks if isinstance(x, pa.ChunkedArray) else [x])],
                            pa.int64())


def _percentiles(chunks: list) -> dict[str, Any]:
    values = _values(chunks)
    qs = pc.quantile(values, q=list(QUANTILES.values()), interpolation="nearest").to_pylist()
    out = {k: int(v) for k, v in zip(QUANTILES, qs)}
    out.update(max=int(pc.max(values).as_py()), mean=float(pc.mean(values).as_py()), count=len(values),
               total=int(pc.sum(values).as_py() or 0))
    return out


def _tail(chunks: list) -> dict[str, Any]:
    """How much of the total the slowest TAIL_FRACTION of lookups make (at least one lookup)."""
    values = _values(chunks)
    k = max(1, math.ceil(len(values) * TAIL_FRACTION))
    top = pc.select_k_unstable(values, k=k, sort_keys=[("dummy", "descending")])
    part = int(pc.sum(values.take(top)).as_py() or 0)
    total = int(pc.sum(values).as_py() or 0)
    return {"fraction": TAIL_FRACTION, "lookups": k, "total": part, "share": round(part / total, 4) if total else None}
