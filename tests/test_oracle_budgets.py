"""Time budgets in every unit `--fail-on` accepts, against the SI definitions of the units.

The oracle is the definition of the prefixes (1 s = 10^9 ns, 1 ms = 10^6 ns, 1 µs = 10^3 ns),
written out here, never read from tracer.analysis.budgets. A budget's allowance in nanoseconds
is what `compare --fail-on` holds the resolver growth to, so a unit read wrong keeps or breaks
a gate by a factor of a thousand.
"""
from __future__ import annotations

import pytest

from tracer.analysis.budgets import BudgetError, parse_budgets

NS_PER = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9}


@pytest.mark.parametrize("unit", sorted(NS_PER))
@pytest.mark.parametrize("metric", ["resolver", "relocation"])
def test_each_time_unit_is_its_si_value(metric, unit):
    (b,) = parse_budgets([f"{metric}+5{unit}"])
    assert (b.metric, b.amount, b.percent) == (metric, 5 * NS_PER[unit], False)
    (b,) = parse_budgets([f"{metric}+2.5{unit}"])
    assert b.amount == pytest.approx(2.5 * NS_PER[unit], rel=1e-12)


def test_units_read_side_by_side():
    """The README's example budget, and the same allowance in each unit: one and the same limit."""
    budgets = parse_budgets(["resolver+5ms,resolver+5000us,resolver+5000000ns,resolver+0.005s"])
    assert [b.amount for b in budgets] == pytest.approx([5_000_000] * 4, rel=1e-12)


@pytest.mark.parametrize("text", ["resolver+5", "resolver+5m", "resolver+5min", "bindings+5ms"])
def test_a_time_without_a_known_unit_is_refused(text):
    with pytest.raises(BudgetError):
        parse_budgets([text])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """picker alone and with libpre.so preloaded (tests/csrc/why/), under bpftrace, which times lookups."""
    import os
    import shutil

    from conftest import gotrace_cli, require, require_bpftrace
    from linkbins import build

    require(shutil.which("gcc") is not None, "gcc is not installed")
    require_bpftrace()
    d = tmp_path_factory.mktemp("budget-units")
    bins = build(d / "bins")
    for name, env in (("base", None), ("pre", {**os.environ, "LD_PRELOAD": str(bins["libpre"])})):
        out = gotrace_cli("bind", "-q", "-b", "bpftrace", "-o", str(d / name), "--", str(bins["picker"]), env=env)
        assert out.returncode == 0, out.stderr
    return d / "base", d / "pre"


def _latency_sum(session) -> int:
    """The resolver time of a session, summed from its events' Parquet parts by pyarrow alone."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parts = sorted((session / "events").glob("*.parquet"))
    assert parts
    return sum(int(pc.sum(pq.read_table(p, columns=["latency_ns"])["latency_ns"]).as_py() or 0) for p in parts)


def test_a_broken_time_budget_says_both_sums_in_milliseconds(two_runs):
    """`--fail-on resolver-wall+0ns` between two runs whose sums differ: the line gives each run's
    resolver time in ms (10^6 ns), as the Parquet files' own sums of latency_ns say."""
    import re

    from conftest import gotrace_cli

    a, b = two_runs
    sa, sb = _latency_sum(a), _latency_sum(b)
    assert sa > 0 and sb > 0 and sa != sb
    low, high = (a, b) if sa < sb else (b, a)
    out = gotrace_cli("compare", str(low), str(high), "--fail-on", "resolver-wall+0ns")
    assert out.returncode == 1, out.stderr
    (line,) = [x for x in out.stderr.splitlines() if "resolver-wall+0ns" in x]
    m = re.search(r"resolver wall time ([\d,]+\.\d{3}) ms → ([\d,]+\.\d{3}) ms", line)
    assert m, line
    shown = [float(x.replace(",", "")) for x in m.groups()]
    assert shown == pytest.approx([min(sa, sb) / 1e6, max(sa, sb) / 1e6], abs=0.0005)
    us = -(-(max(sa, sb) - min(sa, sb)) // 1000)  # the difference, rounded up to whole µs
    out = gotrace_cli("compare", str(low), str(high), "--fail-on", f"resolver-wall+{us}us")
    assert out.returncode == 0, out.stderr  # within the budget: 1 µs is 10^3 ns


def test_an_empty_session_measures_nothing(tmp_path, two_runs):
    """A session that recorded nothing (no event, no process): zero bindings, failures and
    processes — a count of nothing — so a run that now starts a process breaks processes+0."""
    from conftest import gotrace_cli
    from tracer import load_session
    from tracer.analysis.budgets import measures
    from tracer.session import schema
    from tracer.session.writer import SessionWriter, prepare_directory

    path = prepare_directory(tmp_path / "empty", False)
    w = SessionWriter(path, {"argv": ["x"], "backend": "bpftrace"})
    w.write_table("processes", schema.empty("processes"))
    w.finish(True)
    m = measures(load_session(path))
    assert (m["bindings"], m["failed"], m["fatal"], m["processes"]) == (0, 0, 0, 0)
    base, _pre = two_runs
    out = gotrace_cli("compare", str(path), str(base), "--fail-on", "processes+0")
    assert out.returncode == 1 and "processes+0" in out.stderr, out.stderr


def test_every_json_budget_is_broken_exactly_when_new_exceeds_its_limit(two_runs):
    """--json's budgets: `broken` is `new > limit` for every kind of budget (README: the limit
    is what a budget allows; a new-* budget allows none). Preloading libpre.so adds one
    provider (LD_DEBUG of the same runs would name it: tests/test_budgets.py holds that)."""
    import json

    from conftest import gotrace_cli

    base, pre = two_runs
    out = gotrace_cli("compare", "--json", str(base), str(pre), "--fail-on",
                      "new-provider,new-symbol,new-version,bindings+0,processes+0,resolver+1s")
    budgets = json.loads(out.stdout)["budgets"]
    assert len(budgets) == 6
    for b in budgets:
        assert b["broken"] is (b["new"] > b["limit"]), b
    provider = next(b for b in budgets if b["budget"] == "new-provider")
    assert provider["broken"] and provider["new"] == len(provider["culprits"]) == 1


@pytest.mark.parametrize("n", range(0, 13))
def test_a_budgets_culprit_list_names_some_and_counts_the_rest(n):
    """However many culprits, the names shown and the "and K more" add up to all of them, in
    order, and "and 0 more" is never said."""
    import re

    from tracer.analysis.budgets import _named

    items = [f"lib{i}.so (1 bindings)" for i in range(n)]
    text = _named(items)
    m = re.fullmatch(r"(.*?)(?: and ([\d,]+) more)?", text)
    named = [x for x in m.group(1).split(", ") if x]
    more = int(m.group(2).replace(",", "")) if m.group(2) else 0
    assert named == items[:len(named)] and len(named) + more == n
    assert m.group(2) is None or more >= 1
    assert named or n == 0
