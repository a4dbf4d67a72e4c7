"""Budgets on `gotrace compare`: the gate a CI job puts between a baseline run and a new one.

A budget is a short text, so it fits a CI file and reads back as what it checks:

  bindings+10%      more than 10 % more bindings than the baseline
  bindings+500      more than 500 more bindings
  resolver+20%      resolver time (the sum of lookup latencies) up by more than 20 %
  resolver+5ms      … or by more than 5 ms (ns, us, ms, s)
  relocation+20%    relocation time (bpftrace's _dl_relocate_object spans), the same way
  failed+0          any more failed lookups   processes+N   any more than N more processes
  fatal+0           any more fatal lookups (a process died, or a dlopen failed, of an undefined symbol)
  new-provider      a library that provides a binding the baseline never bound to
  new-version       a symbol version bound (libc.so.6 GLIBC_2.38) the baseline never bound
  new-symbol        a symbol bound that the baseline never bound
  new-fatal         a fatal lookup (exe, requester, symbol, version) the baseline did not have
  exit-status       the command's exit status is not the baseline's (0 → 127)
  loader-deaths+0   any more processes the dynamic linker stopped (exit 127: a library found
                    nowhere, or an undefined symbol)
  new-missing-library  a library found nowhere ("error while loading shared libraries") that the
                    baseline did not miss

Objects are named by file name, as `compare` lines them up, so a baseline
recorded on another machine or in another directory still matches. A budget
that a session cannot measure (resolver time of an ld-debug session, which
times nothing) is an error, never a budget kept: a gate that cannot fail is no gate.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..errors import GotraceError
from ..session.reader import Session, frame_rows
from .naming import object_name
from .failures import failed_lookups, loader_deaths
from .tally import FAILURE_KEY

COUNTS = ("bindings", "failed", "fatal", "processes", "loader-deaths")
TIMES = ("resolver", "relocation")
NEW = ("new-provider", "new-version", "new-symbol", "new-fatal", "new-missing-library")
OUTCOMES = ("exit-status",)
UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_GROWTH = re.compile(r"^(?P<metric>[a-z-]+)\+(?P<amount>\d+(?:\.\d+)?)(?P<unit>%|ns|us|µs|ms|s)?$")
SYNTAX = ("bindings|failed|fatal|processes|loader-deaths+N or +P%, resolver|relocation+P% or +TIME (5ms), "
          "new-provider, new-version, new-symbol, new-fatal, new-missing-library, exit-status")
FAILURES = ("failed", "fatal", "new-fatal")  # what an LD_DEBUG account cannot show
# what needs the exit status of every process, not only the command's: ld-debug and dyld-print
# learn the command's alone (their accounts are the loader's log, not the process tree's)
DEATHS = ("loader-deaths", "new-missing-library")
NO_CHILD_EXIT = ("ld-debug", "dyld-print")
SHOWN = 5  # culprits named in a broken budget's line


class BudgetError(GotraceError):
    """A budget that cannot be read, or cannot be checked on these sessions (exit 2, as any usage error)."""


@dataclass(frozen=True)
class Budget:
    text: str
    metric: str
    amount: float | None = None  # the allowed growth: a percentage, a count, or nanoseconds
    percent: bool = False


def parse_budgets(texts: list[str]) -> "Budgets":
    """Budgets from --fail-on values; each value may hold several, comma-separated."""
    out: list[Budget] = []
    for text in (t.strip() for value in texts for t in value.split(",")):
        if not text:
            continue
        if text in NEW or text in OUTCOMES:
            out.append(Budget(text, text))
            continue
        m = _GROWTH.match(text)
        if not m or m["metric"] not in COUNTS + TIMES:
            raise BudgetError(f"budget {text!r} not understood; budgets are {SYNTAX}")
        metric, amount, unit = m["metric"], float(m["amount"]), m["unit"]
        if unit == "%":
            out.append(Budget(text, metric, amount, True))
        elif metric in TIMES:
            if unit is None:
                raise BudgetError(f"budget {text!r}: say the unit of time ({metric}+5ms) or a percentage "
                                  f"({metric}+20%)")
            out.append(Budget(text, metric, amount * UNITS[unit]))
        elif unit is not None:
            raise BudgetError(f"budget {text!r}: {metric} is a count: {metric}+N or {metric}+P%")
        elif amount != int(amount):
            raise BudgetError(f"budget {text!r}: {metric} is a count: a whole number")
        else:
            out.append(Budget(text, metric, amount))
    if not out:
        raise BudgetError(f"--fail-on names no budget; budgets are {SYNTAX}")
    return Budgets(out)


def measures(s: Session) -> dict[str, Any]:
    """What the budgets look at in one session (its events already without a translator's own)."""
    ev, procs = s.events, s.processes
    ok = ev[ev["resolved"]] if len(ev) else ev
    failures: Counter = Counter()
    if len(ev):
        bad = ev.loc[~ev["resolved"], FAILURE_KEY]
        for row in bad.astype(object).where(bad.notna(), None).itertuples(index=False, name=None):
            failures[row] += 1
    rows = frame_rows(procs)
    _, fatal = failed_lookups(failures, rows, top_n=0)
    deaths = loader_deaths(rows, fatal, frame_rows(s.images), s.meta)
    lat = ev["latency_ns"].dropna()
    providers: Counter = Counter()
    versions: dict[tuple[str, str], set[str]] = {}
    symbols: Counter = Counter()
    for provider, symbol, version in zip(ok["provider"].map(object_name), ok["symbol"].astype(str), ok["version"]):
        providers[provider] += 1
        symbols[symbol] += 1
        if isinstance(version, str) and version:
            versions.setdefault((provider, version), set()).add(symbol)
    return {
        "bindings": int(len(ev)),
        "failed": int((~ev["resolved"]).sum()) if len(ev) else 0,
        "fatal": sum(f["lookups"] for f in fatal),
        "processes": int(procs["pid"].nunique()) if len(procs) else 0,
        "resolver": int(lat.sum()) if len(lat) else None,
        "relocation": int(s.relocations["duration_ns"].sum()) if len(s.relocations) else None,
        "providers": providers, "versions": versions, "symbols": symbols,
        "fatal_keys": {(object_name(f["exe"]), object_name(f["requester"]), f["symbol"], f["version"])
                       for f in fatal},
        "backend": s.meta.get("backend"),
        "loader-deaths": len(deaths), "deaths": deaths,
        "missing_libraries": {d["library"]: d for d in deaths if d["library"]},
        "exit_code": s.meta.get("exit_code"),
        "exit_code_unknown": bool(s.meta.get("exit_code_unknown")) or s.meta.get("exit_code") is None,
    }


def _named(items: list[str]) -> str:
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" and {more:,} more" if more > 0 else "")


def _fmt(metric: str, v: float) -> str:
    if metric in TIMES:
        return f"{v / 1e6:,.3f} ms"
    return f"{int(v):,}"


def _growth(b: Budget, base: int, new: int) -> dict[str, Any]:
    limit = base * (1 + b.amount / 100) if b.percent else base + b.amount
    broken = new > limit
    change = f"{(new - base) / base * 100:+.1f}%" if base else ("+∞%" if new else "+0%")
    allowed = f"+{b.amount:g}%" if b.percent else f"+{_fmt(b.metric, b.amount)}"
    line = (f"{b.text}: {b.metric} {_fmt(b.metric, base)} → {_fmt(b.metric, new)} ({change}; "
            f"{'over' if broken else 'within'} the allowed {allowed})")
    return {"budget": b.text, "broken": broken, "baseline": base, "new": new, "limit": limit, "line": line,
            "culprits": []}


def _new_items(b: Budget, ma: dict, mb: dict) -> dict[str, Any]:
    if b.metric == "new-provider":
        new = sorted(set(mb["providers"]) - set(ma["providers"]), key=lambda p: (-mb["providers"][p], str(p)))
        culprits = [f"{p} ({mb['providers'][p]:,} bindings)" for p in new]
    elif b.metric == "new-version":
        new = sorted(set(mb["versions"]) - set(ma["versions"]))
        culprits = [f"{v} of {p} ({_named(sorted(mb['versions'][(p, v)]))})" for p, v in new]
    elif b.metric == "new-symbol":
        new = sorted(set(mb["symbols"]) - set(ma["symbols"]))
        culprits = list(new)
    elif b.metric == "new-missing-library":
        new = sorted(set(mb["missing_libraries"]) - set(ma["missing_libraries"]))
        culprits = [_death(mb["missing_libraries"][lib]) for lib in new]
    else:
        new = sorted(mb["fatal_keys"] - ma["fatal_keys"], key=lambda k: tuple(str(x) for x in k))
        culprits = [f"{sym}{'@' + ver if ver else ''} in {req} (process {exe})" for exe, req, sym, ver in new]
    what = b.metric.removeprefix("new-").replace("-", " ")
    if b.metric == "new-missing-library" and len(culprits) != 1:
        what = "missing librarie"
    line = (f"{b.text}: {len(culprits):,} new {what}{'s' if len(culprits) != 1 else ''}: {_named(culprits)}"
            if culprits else f"{b.text}: no new {what}")
    return {"budget": b.text, "broken": bool(culprits), "baseline": None, "new": len(culprits), "limit": 0,
            "line": line, "culprits": culprits}


def _death(d: dict) -> str:
    """One process the dynamic linker stopped, as glibc's own message would name it."""
    exe = object_name(d["exe"])
    if d["library"]:
        return f"{d['library']}, needed by {object_name(d['needed_by'])} (process {exe}, exit 127)"
    sym = f"{d['symbol']}{'@' + d['version'] if d['version'] else ''}"
    return f"undefined symbol {sym} in {object_name(d['needed_by'])} (process {exe}, exit 127)"


def _exit_status(b: Budget, ma: dict, mb: dict) -> dict[str, Any]:
    base, new = ma["exit_code"], mb["exit_code"]
    broken = base != new
    culprits = [_death(d) for d in mb["deaths"]] if broken else []
    line = (f"{b.text}: the command exited {base} → {new}" + (f"; the dynamic linker stopped {_named(culprits)}"
                                                               if culprits else "")
            if broken else f"{b.text}: the command exited {new}, as the baseline did")
    return {"budget": b.text, "broken": broken, "baseline": base, "new": new, "limit": base, "line": line,
            "culprits": culprits}


def check_budgets(budgets: list[Budget], a: Session, b: Session) -> list[dict[str, Any]]:
    """Each budget against baseline ``a`` and new run ``b``: broken or kept, with a line saying why."""
    for sess, side in ((a, "the baseline"), (b, "the new run")):
        partial = [f"{d['file']} ({d['rows']:,} bindings)" if d.get("rows") is not None else d["file"]
                   for d in getattr(sess, "damaged", None) or ()]
        if partial:
            raise BudgetError(f"budgets cannot be checked: {side} ({sess.path}) is damaged, {', '.join(partial)} "
                              "cannot be read; a gate on part of a run could keep what the whole run breaks")
        if int(sess.meta.get("events_dropped") or 0):
            raise BudgetError(f"budgets cannot be checked: {side} ({sess.path}) saved only part of its events "
                              f"({sess.meta['events_dropped']:,} were never written: {sess.meta.get('write_error')})")
    ma, mb = measures(a), measures(b)
    out = []
    for bud in budgets:
        if bud.metric in FAILURES:
            for m, side in ((ma, "the baseline"), (mb, "the new run")):
                if m["backend"] == "ld-debug":
                    raise BudgetError(f"budget {bud.text!r} cannot be checked: {side} is an ld-debug session, and "
                                      "LD_DEBUG prints only lookups that succeeded; record both runs with "
                                      "--backend bpftrace (or lldb)")
        if bud.metric in DEATHS:
            for m, side in ((ma, "the baseline"), (mb, "the new run")):
                if m["backend"] in NO_CHILD_EXIT:
                    raise BudgetError(f"budget {bud.text!r} cannot be checked: {side} ({m['backend']}) records the "
                                      "exit status of the command alone, not of the processes it started; record both runs with --backend bpf or bpftrace (exit-status "
                                      "checks the command's own)")
        if bud.metric == "exit-status":
            for m, side in ((ma, "the baseline"), (mb, "the new run")):
                if m["exit_code_unknown"]:
                    raise BudgetError(f"budget {bud.text!r} cannot be checked: {side}'s exit status is unknown "
                                      f"({m['backend']} lost it, or the capture failed)")
            out.append(_exit_status(bud, ma, mb))
            continue
        if bud.metric in NEW:
            out.append(_new_items(bud, ma, mb))
            continue
        for m, side in ((ma, "the baseline"), (mb, "the new run")):
            if m[bud.metric] is None:
                what = ("times no lookup" if bud.metric == "resolver" else "recorded no relocation")
                raise BudgetError(f"budget {bud.text!r} cannot be checked: {side} ({m['backend']}) {what}; "
                                  "record both runs with --backend bpftrace")
        res = _growth(bud, ma[bud.metric], mb[bud.metric])
        if bud.metric == "loader-deaths":
            before = {(object_name(d["exe"]), d["library"], d["symbol"]) for d in ma["deaths"]}
            res["culprits"] = [_death(d) for d in mb["deaths"]
                               if (object_name(d["exe"]), d["library"], d["symbol"]) not in before]
            if res["broken"] and res["culprits"]:
                res["line"] += f": {_named(res['culprits'])}"
        out.append(res)
    return out


class Budgets(list):
    """Parsed budgets, checked by compare() on the sessions it compares (a translator's bindings left out)."""

    def check(self, a: Session, b: Session) -> list[dict[str, Any]]:
        return check_budgets(list(self), a, b)
