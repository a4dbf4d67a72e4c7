"""Budgets on `gotrace compare`: the gate a CI job puts between a baseline run and a new one.

A budget is a short text, so it fits a CI file and reads back as what it checks:

  bindings+10%      more than 10 % more bindings than the baseline
  bindings+500      more than 500 more bindings
  resolver+20%      resolver time up by more than 20 %: on-CPU time where both sessions measured
                    the time lookups spent switched out (bpf, bpftrace), else wall time
  resolver+5ms      … or by more than 5 ms (ns, us, ms, s)
  resolver-wall+20%     the sum of lookup latencies, as measured (a thread preempted or
                        blocked mid-lookup counts: one such lookup can be most of a build's total)
  resolver-oncpu+20%    the sum of latency - offcpu_ns: the resolver's own work
  resolver-median+20%   the median lookup latency
  resolver-trimmed+20%  the sum of lookup latencies without the slowest 1 % of lookups
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
  load-errors+0     any more load errors (the session's errors table: dyld's "Library not loaded",
                    "Symbol not found" …, glibc's fatal messages, from an imported log)
  new-load-error    a load error (kind, requester, library, symbol) the baseline did not have

Objects are named by file name, as `compare` lines them up, so a baseline
recorded on another machine or in another directory still matches. A budget
that a session cannot measure (resolver time of an ld-debug session, which
times nothing) is an error, never a budget kept: a gate that cannot fail is no gate.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..errors import GotraceError
from ..session.reader import Session, frame_rows
from .naming import object_name
from .failures import failed_lookups, loader_deaths
from .objects import KeptObjects
from .tally import FAILURE_KEY

COUNTS = ("bindings", "failed", "fatal", "processes", "loader-deaths", "load-errors")
RESOLVER_STATS = ("resolver-wall", "resolver-oncpu", "resolver-median", "resolver-trimmed")
TIMES = ("resolver", "relocation", *RESOLVER_STATS)
TRIM = 0.01  # resolver-trimmed leaves out this share of the lookups, the slowest
# what each time statistic is, in a budget's line
LABELS = {
    "resolver-wall": "resolver wall time",
    "resolver-oncpu": "resolver on-CPU time",
    "resolver-median": "median lookup latency",
    "resolver-trimmed": f"resolver time without the slowest {TRIM * 100:g} % of lookups",
}
NEW = ("new-provider", "new-version", "new-symbol", "new-fatal", "new-missing-library", "new-load-error")
OUTCOMES = ("exit-status",)
UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_GROWTH = re.compile(r"^(?P<metric>[a-z]+(?:-[a-z]+)?)\+(?P<amount>\d+(?:\.\d+)?)(?P<unit>%|ns|us|µs|ms|s)?$")
SYNTAX = ("bindings|failed|fatal|processes|loader-deaths|load-errors+N or +P%, resolver|resolver-wall|"
          "resolver-oncpu|resolver-median|resolver-trimmed|relocation+P% or +TIME (5ms), new-provider, new-version, "
          "new-symbol, new-fatal, new-missing-library, new-load-error, exit-status")
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
    kept = KeptObjects(s.path, s.meta.get("cwd"))
    _, fatal = failed_lookups(failures, rows, top_n=0, kept=kept)
    deaths = loader_deaths(rows, fatal, frame_rows(s.images), s.meta, kept)
    providers: Counter = Counter()
    versions: dict[tuple[str, str], set[str]] = {}
    symbols: Counter = Counter()
    owners: dict[tuple, str | None] = {}
    for pid, provider, symbol, version in zip(ok["pid"], ok["provider"], ok["symbol"].astype(str), ok["version"]):
        name = object_name(provider)
        providers[name] += 1
        symbols[symbol] += 1
        if isinstance(version, str) and version:
            # a version is the library's that defines it: an executable's copy relocation or canonical
            # PLT entry of libc's symbol binds there, but GLIBC_2.2.5 is still libc.so.6's
            key = (int(pid), str(provider), version)
            if key not in owners:
                owners[key] = kept.version_owner(int(pid), str(provider), version)
            versions.setdefault((owners[key] or name, version), set()).add(symbol)
    return {
        "bindings": int(len(ev)),
        "failed": int((~ev["resolved"]).sum()) if len(ev) else 0,
        "fatal": sum(f["lookups"] for f in fatal),
        "processes": int(procs["pid"].nunique()) if len(procs) else 0,
        **_resolver(ev),
        "relocation": int(s.relocations["duration_ns"].sum()) if len(s.relocations) else None,
        "providers": providers, "versions": versions, "symbols": symbols,
        "fatal_keys": {(object_name(f["exe"]), object_name(f["requester"]), f["symbol"], f["version"])
                       for f in fatal},
        "backend": s.meta.get("backend"),
        "loader-deaths": len(deaths), "deaths": deaths,
        "missing_libraries": {d["library"]: d for d in deaths if d["library"]},
        "load-errors": len(getattr(s, "errors", ()) if getattr(s, "errors", None) is not None else ()),
        "load_errors": _load_error_keys(s),
        "exit_code": s.meta.get("exit_code"),
        "exit_code_unknown": bool(s.meta.get("exit_code_unknown")) or s.meta.get("exit_code") is None,
    }


def _load_error_keys(s: Session) -> dict[tuple, str]:
    """Each distinct load error, by what it is (files by name: another machine's paths still match)."""
    errs = getattr(s, "errors", None)
    out = {}
    for e in frame_rows(errs) if errs is not None else []:
        key = (e["kind"], object_name(e.get("requester")), object_name(e.get("library")), e.get("symbol"),
               e.get("version"))
        what = e.get("symbol") or e.get("library") or "?"
        out.setdefault(key, f"{e['kind']} {what}" + (f" ({e['cause']})" if e.get("cause") else "")
                       + (f", needed by {object_name(e['requester'])}" if e.get("requester") else ""))
    return out


def _resolver(ev) -> dict[str, Any]:
    """The resolver statistics a budget can hold (None: the session cannot measure it). On-CPU time needs
    the time switched out of every timed lookup (offcpu_ns: bpf and bpftrace)."""
    timed = ev[ev["latency_ns"].notna()] if len(ev) else ev
    if not len(timed):
        return {k: None for k in RESOLVER_STATS}
    lat = timed["latency_ns"].astype("int64")
    off = timed["offcpu_ns"] if "offcpu_ns" in timed.columns else None
    measured = off is not None and bool(off.notna().all())
    ordered = lat.sort_values(ignore_index=True)
    keep = len(ordered) - math.ceil(len(ordered) * TRIM)
    return {
        "resolver-wall": int(lat.sum()),
        "resolver-oncpu": int((lat - off.astype("int64")).sum()) if measured else None,
        "resolver-median": int(ordered.iloc[(len(ordered) - 1) // 2]),  # the lower median: a lookup's own
        "resolver-trimmed": int(ordered.iloc[:keep].sum()),
    }


def _named(items: list[str]) -> str:
    more = len(items) - SHOWN
    return ", ".join(items[:SHOWN]) + (f" and {more:,} more" if more > 0 else "")


def _fmt(metric: str, v: float) -> str:
    if metric == "resolver-median":  # one lookup: microseconds
        return f"{v / 1e3:,.3f} µs"
    if metric in TIMES:
        return f"{v / 1e6:,.3f} ms"
    return f"{int(v):,}"


def _growth(b: Budget, base: int, new: int, stat: str | None = None, why: str = "") -> dict[str, Any]:
    """``stat``: the statistic measured (the resolver's, for resolver+…), named in the line."""
    stat = stat or b.metric
    limit = base * (1 + b.amount / 100) if b.percent else base + b.amount
    broken = new > limit
    change = f"{(new - base) / base * 100:+.1f}%" if base else ("+∞%" if new else "+0%")
    allowed = f"+{b.amount:g}%" if b.percent else f"+{_fmt(stat, b.amount)}"
    line = (f"{b.text}: {LABELS.get(stat, stat)}{why} {_fmt(stat, base)} → {_fmt(stat, new)} ({change}; "
            f"{'over' if broken else 'within'} the allowed {allowed})")
    return {"budget": b.text, "broken": broken, "baseline": base, "new": new, "limit": limit, "line": line,
            "culprits": [], **({"statistic": stat} if stat in RESOLVER_STATS else {})}


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
    elif b.metric == "new-load-error":
        new = [k for k in mb["load_errors"] if k not in ma["load_errors"]]
        culprits = [mb["load_errors"][k] for k in new]
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
        stat, why = bud.metric, ""
        if stat == "resolver":  # on-CPU time, which a thread preempted or blocked mid-lookup does not move
            both = ma["resolver-oncpu"] is not None and mb["resolver-oncpu"] is not None
            stat = "resolver-oncpu" if both or ma["resolver-wall"] is None or mb["resolver-wall"] is None \
                else "resolver-wall"
            if stat == "resolver-wall":
                side = "the baseline" if ma["resolver-oncpu"] is None else "the new run"
                why = f", as {side} measured no time switched out"
        for m, side in ((ma, "the baseline"), (mb, "the new run")):
            if m[stat] is None:
                if stat == "relocation":
                    what, hint = "recorded no relocation", "record both runs with --backend bpf or bpftrace"
                elif m["resolver-wall"] is None:
                    what, hint = "times no lookup", "record both runs with --backend bpf or bpftrace"
                else:
                    what, hint = ("did not measure the time lookups spent switched out (offcpu_ns: bpf and "
                                  "bpftrace sessions record it)", "use resolver-wall, resolver-median or "
                                  "resolver-trimmed, or record both runs again")
                raise BudgetError(f"budget {bud.text!r} cannot be checked: {side} ({m['backend']}) {what}; {hint}")
        res = _growth(bud, ma[stat], mb[stat], stat, why)
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
