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

from collections import Counter
from typing import Any, Callable

from ..heavy import pa, pc
from ..session.schema import KINDS

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
COLUMNS = ["kind", "resolved", "symbol", "provider", "exe", "latency_ns", "pid", "requester", "version"]  # all it reads
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
            measured = pc.is_valid(events["latency_ns"])
            for k in KINDS:
                lat = pc.filter(events["latency_ns"], pc.and_(measured, pc.equal(kind, k)))
                if len(lat):
                    self._latency[k].append(pc.cast(lat, pa.int64()))

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
        per_kind = {k: _percentiles(chunks) for k, chunks in self._latency.items() if chunks}
        if not per_kind:
            return None
        return {"all": _percentiles([c for k in KINDS for c in self._latency[k]]), **per_kind}

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
        }


def _percentiles(chunks: list) -> dict[str, Any]:
    values = pa.chunked_array(chunks, pa.int64())
    qs = pc.quantile(values, q=list(QUANTILES.values()), interpolation="nearest").to_pylist()
    out = {k: int(v) for k, v in zip(QUANTILES, qs)}
    out.update(max=int(pc.max(values).as_py()), mean=float(pc.mean(values).as_py()), count=len(values))
    return out
