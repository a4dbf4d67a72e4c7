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
