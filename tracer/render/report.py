"""`gotrace report` and `gotrace bind`'s summary: a report dict (analysis/report.py) as rich text.

Whatever comes from the traced run (paths, argv, symbols) is escaped: a `[x]`
in a command line is text, never rich markup.
"""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from ..session.schema import latency_calibration
from .format import ID, NUM, TEXT, count, duration as _ns, plural, print_table, shown


def _latency_title(session: dict[str, Any]) -> str:
    cal = latency_calibration(session.get("latency_method"))
    if cal is None:
        return "resolver latency"
    # not the resolver's time: lldb's own handling of each stop stays in it (bpf measures the resolver)
    return (f"time per lookup under lldb, calibrated estimates (stop to stop, minus its own stop/resume cost "
            f"{_ns(cal['median_ns'])}, median of {cal['rounds']}): ranks lookups; not the resolver's own time, "
            "which bpf or bpftrace measure")


def _exit(s: dict[str, Any]) -> str:
    return "exit unknown" if s.get("exit_code") is None else f"exit {s['exit_code']}"


def _at_least(s: dict) -> str:
    """Counts of a session missing events it recorded (dropped, lost, damaged) are lower bounds."""
    return "at least " if s.get("counts_lower_bound") else ""


def _processes_line(b: dict, p: dict, s: dict | None = None) -> str:
    kinds = ", ".join(f"{k} {v:,}" for k, v in b["by_kind"].items())
    return (f"{_at_least(s or {})}{plural(b['total'], 'binding')} in {plural(p['count'], 'process')} "
            f"({plural(p['images'], 'program image')}, {p['failed']:,} exited non-zero"
            + (f", {p['static']:,} static" if p.get("static") else "") + f"): {kinds}; "
            f"resolved {b['resolved']:,}, failed {b['failed']:,}")


def _translated(p: dict) -> str:
    return ", ".join(f"{plural(n, 'program')} by {t}" for t, n in p["translated"].items())


def render_report(report: dict[str, Any], console: Console) -> None:
    s, b, p = report["session"], report["bindings"], report["processes"]
    state = "complete" if s["complete"] else "[yellow]INCOMPLETE[/]"
    if s.get("damaged_parts"):
        state += f", [bold red]DAMAGED[/]: {plural(len(s['damaged_parts']), 'events part')} unreadable"
    console.print(f"[bold]session[/] {escape(s['path'])}  ({state}, backend {s['backend']}, "
                  f"{_exit(s)}, {shown(s['duration_s'])} s)")
    if s.get("imported"):
        console.print(f"[bold]imported[/] {s['imported']['format']} log: {escape(', '.join(s['imported']['from']))}")
    else:
        console.print(f"[bold]command[/] {escape(' '.join(s['argv'] or []))}")
    console.print(escape(_processes_line(b, p, s)))
    _log_lines(s, console, "")
    _load_errors(report, console, full=True)
    if s["lost_events"]:
        console.print(f"[bold red]{s['lost_events']:,} events were lost[/] (perf buffer overflow or a full "
                      "binding map): counts are lower bounds")
    if not s.get("descendants_traced", True):
        console.print("[yellow]descendants were not traced[/]: lldb follows one process")
    if p.get("translated"):
        console.print("translated: " + _translated(p))
    if s.get("guest_latency"):
        console.print(_guest_timing(s["guest_latency"]))
    for note in report.get("notes") or ():
        console.print(f"[dim]note:[/] {escape(note)}")
    lat = report.get("latency_ns")
    if lat:
        _latency(lat, s, console)
        _slowest(report.get("slowest_lookups") or [], console)
    else:
        console.print("resolver latency: not measured by this backend")
    print_table(console, "top symbols", [("symbol", ID), ("bindings", NUM)],
                [[r["symbol"], count(r["bindings"])] for r in report["top_symbols"]])
    print_table(console, "top providers", [("provider", TEXT), ("bindings", NUM)],
                [[r["provider"], count(r["bindings"])] for r in report["top_providers"]])
    print_table(console, "bindings per executable", [("exe", TEXT), ("bindings", NUM)],
                [[r["exe"], count(r["bindings"])] for r in report["by_exe"]])
    print_table(console, "processes per executable", [("exe", TEXT), ("processes", NUM)],
                [[r["exe"], count(r["processes"])] for r in report["processes"]["by_exe"]])
    _failures(report, console)
    _interposed(report, console)
    quiet = p.get("without_bindings") or []
    if quiet:
        print_table(console, "processes without a binding", [("exe", TEXT), ("processes", NUM), ("why", TEXT)],
                    [[r["exe"], count(r["processes"]), r["reason"]] for r in quiet])
    tr = report.get("translator_bindings")
    if tr:
        print_table(console, f"the translator's own bindings (left out above): {tr['bindings']:,}",
                    [("translator", TEXT), ("bindings", NUM)], [[r["exe"], count(r["bindings"])] for r in tr["by_exe"]])
    rel = report.get("relocation")
    if rel:
        print_table(console, f"relocation time per image (total {_ns(rel['total_ns'])})",
                    [("image", TEXT), ("relocations", NUM), ("total", NUM), ("median", NUM), ("max", NUM)],
                    [[r["path"], count(r["relocations"]), _ns(r["total_ns"]), _ns(r["median_ns"]), _ns(r["max_ns"])]
                     for r in rel["top_images"]])


def _latency(lat: dict[str, Any], s: dict[str, Any], console: Console) -> None:
    """Percentiles of wall time per kind; where the backend measured the time each lookup's thread was
    switched out, the totals split into on-CPU and off-CPU, and how much the slowest few make."""
    split = all((v.get("oncpu") is not None) for v in lat.values())
    cols = [("kind", ID), ("n", NUM), ("p50", NUM), ("p90", NUM), ("p99", NUM), ("max", NUM), ("total", NUM)]
    if split:
        cols += [("on-CPU p50", NUM), ("on-CPU total", NUM), ("off-CPU total", NUM)]
    rows = []
    for k, v in lat.items():
        row = [k, count(v["count"]), _ns(v["p50"]), _ns(v["p90"]), _ns(v["p99"]), _ns(v["max"]), _ns(v.get("total"))]
        if split:
            row += [_ns(v["oncpu"]["p50"]), _ns(v["oncpu"]["total"]), _ns(v["oncpu"]["offcpu_total"])]
        rows.append(row)
    print_table(console, _latency_title(s) + (" (wall; on-CPU: minus the time the thread was switched out)"
                                              if split else ""), cols, rows)
    every = lat.get("all") or {}
    on, tail = every.get("oncpu"), every.get("tail")
    if split and on and every.get("total") is not None:
        console.print(f"resolver time {_ns(every['total'])} wall = {_ns(on['total'])} on a CPU + "
                      f"{_ns(on['offcpu_total'])} switched out (preempted, or waiting on a page fault or a lock)",
                      highlight=False)
    if tail and tail.get("share") is not None:
        console.print(f"the slowest {tail['fraction'] * 100:g} % of lookups ({tail['lookups']:,}) make "
                      f"{tail['share'] * 100:.1f} % of the wall total", highlight=False)


def _slowest(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        return
    measured = any(r.get("offcpu_ns") is not None for r in rows)
    cols = [("symbol", ID), ("process", TEXT), ("kind", ID), ("wall", NUM)]
    if measured:
        cols += [("off-CPU", NUM), ("on-CPU", NUM)]
    out = []
    for r in rows:
        row = [r["symbol"], f"{str(r.get('exe') or '?').rsplit('/', 1)[-1]} ({r['pid']})", r["kind"],
               _ns(r["latency_ns"])]
        if measured:
            row += [_ns(r.get("offcpu_ns")), _ns(r.get("oncpu_ns"))]
        out.append(row)
    print_table(console, "slowest lookups", cols, out)


def _failures(report: dict[str, Any], console: Console) -> None:
    """Failed lookups by what they mean: the fatal ones first, one row each."""
    fatal = report.get("fatal_lookups") or []
    if fatal:
        print_table(console, "fatal lookups (undefined symbol: glibc's \"symbol lookup error\")",
                    [("pid", NUM), ("requester", TEXT), ("symbol", ID), ("version", ID), ("outcome", TEXT)],
                    [[str(f["pid"]), f["requester"], f["symbol"], f["version"] or "",
                      {"died": f"died, exit {f['exit_code']}", "caught": "dlopen failed, process went on"}
                      .get(f["outcome"], "unknown")] for f in fatal])
    fl = report.get("failed_lookups")
    if fl is None:  # a report dict from before the breakdown
        if report["failed_symbols"]:
            print_table(console, "failed lookups", [("symbol", ID), ("lookups", NUM)],
                        [[r["symbol"], count(r["bindings"])] for r in report["failed_symbols"]])
        return
    rows = ([[r["symbol"], "weak reference: skipped", count(r["lookups"])] for r in fl["weak_symbols"]]
            + [[r["symbol"], "dlsym: returned NULL", count(r["lookups"])] for r in fl["dlsym_symbols"]])
    if rows:
        print_table(console, f"failed lookups that stopped nothing (weak {fl['weak']:,}, dlsym {fl['dlsym']:,})",
                    [("symbol", ID), ("meaning", TEXT), ("lookups", NUM)], rows)
    if fl["unknown_symbols"]:  # weak (skipped) or global (fatal): the requester's file no longer says
        print_table(console, f"failed lookups that may have been fatal ({fl['unknown']:,}: the requester is gone or "
                    "unreadable, so whether its reference was weak cannot be told)",
                    [("symbol", ID), ("lookups", NUM)],
                    [[r["symbol"], count(r["lookups"])] for r in fl["unknown_symbols"]])


def _interposed(report: dict[str, Any], console: Console) -> None:
    """Bindings taken from another object than the requester's own definition (or its first dependency's)."""
    ip = report.get("interposed")
    if ip and ip.get("not_replayed"):
        console.print(f"[bold]note:[/] {plural(ip['not_replayed'], 'lookup')} could not be checked for interposition: "
                      f"files of {', '.join(escape(p) for p in ip['not_replayed_programs'][:3])} were gone before "
                      "gotrace could keep them", soft_wrap=True)
    if not ip or not ip["top"]:
        return
    print_table(console, f"interposed symbols ({plural(ip['lookups'], 'lookup')} of {plural(ip['symbols'], 'symbol')}; "
                "gotrace why SESSION SYMBOL says why)",
                [("symbol", ID), ("bound to", TEXT), ("instead of", TEXT), ("requester", TEXT), ("lookups", NUM),
                 ("processes", NUM)],
                [[r["symbol"], r["provider"], r["instead_of"], r["requester"], count(r["lookups"]),
                  count(r["processes"])] for r in ip["top"]])


def _guest_timing(g: dict) -> str:
    unpaired = g.get("processes_unpaired") or []
    return (f"guest lookups timed by the qemu plugin: {g['bindings_timed']:,} in "
            f"{plural(g['processes_timed'], 'process')}"
            + (f"; {plural(len(unpaired), 'process')} left untimed (their counts disagree)" if unpaired else ""))


SHOWN_ERRORS = 5  # distinct load errors bind's and import's summary names; report shows them all


def _log_lines(s: dict[str, Any], console: Console, lead: str) -> None:
    """How much of an imported dyld log was read: every line is read or counted, never dropped."""
    d = s.get("dyld_print") or {}
    if "dyld_lines_read" not in d:
        return
    parts = [f"read {d['dyld_lines_read']:,} dyld line{'s' if d['dyld_lines_read'] != 1 else ''}"]
    if d.get("load_errors"):
        parts.append(f"{plural(d['load_errors'], 'load error')} ({plural(d['error_lines'], 'line')})")
    unread = d.get("dyld_lines_unread", 0) + d.get("ambiguous_lines", 0) + d.get("lost_lines", 0)
    if unread:
        parts.append(f"[yellow]{unread:,} not read[/]" + (f" ({d['ambiguous_lines']:,} could be more than one "
                     "process's)" if d.get("ambiguous_lines") else ""))
    if d.get("other_lines"):
        parts.append(f"{d['other_lines']:,} other line{'s' if d['other_lines'] != 1 else ''} (not dyld's)")
    console.print(lead + "; ".join(parts) + f" — of {d.get('lines', 0):,} lines")
    for line in d.get("unread_samples") or ():
        console.print(f"{lead}  not read: {escape(line[:200])}")


def _load_errors(report: dict[str, Any], console: Console, full: bool) -> None:
    """Load errors first: a process dyld or ld.so refused is the first thing to know."""
    groups = report.get("load_errors") or []
    if not groups:
        return
    if not full:
        for g in groups[:SHOWN_ERRORS]:
            who = f"{plural(len(g['pids']), 'process')}" if g["pids"] else "a process"
            console.print(f"[bold red]gotrace: load error[/] ({escape(g['error']['kind'])}, "
                          f"{escape(g['error']['cause'])}) in {who}: {escape(g['what'])}: {escape(g['why'])}")
        if len(groups) > SHOWN_ERRORS:
            console.print(f"[bold red]gotrace:[/] and {plural(len(groups) - SHOWN_ERRORS, 'other load error')}")
        console.print(f"[bold]gotrace:[/] gotrace explain {escape(report['session']['path'])} says what to try")
        return
    from .explain import render_explanations

    console.print(f"[bold red]{plural(sum(g['count'] for g in groups), 'load error')}[/]"
                  + (f" ({len(groups)} distinct)" if len(groups) > 1 else ""))
    render_explanations({"errors": groups}, console)
    console.print()


def render_summary(report: dict[str, Any], console: Console, show_choice: bool = False) -> None:
    """The few lines `gotrace bind` prints when the command has finished."""
    s, b, p = report["session"], report["bindings"], report["processes"]
    kinds = ", ".join(f"{k} {v:,}" for k, v in b["by_kind"].items())
    if show_choice and s.get("backend_choice"):
        console.print(f"[bold]gotrace:[/] {escape(s['backend_choice'])}")
    fl = report.get("failed_lookups") or {}
    fatal = f", {fl['fatal']:,} fatal" if fl.get("fatal") else ""
    _load_errors(report, console, full=False)
    console.print(f"[bold]gotrace:[/] {_at_least(s)}{plural(b['total'], 'binding')} in {plural(p['count'], 'process')} "
                  f"({kinds}; {plural(b['failed'], 'failed lookup')}{fatal})")
    _log_lines(s, console, "[bold]gotrace:[/] ")
    if p.get("translated"):
        console.print("[bold]gotrace:[/] translated: " + _translated(p))
    if s.get("guest_latency"):
        console.print("[bold]gotrace:[/] " + _guest_timing(s["guest_latency"]))
    if s.get("exit_code_unknown"):
        console.print("[bold yellow]gotrace:[/] the command's exit status is unknown: lldb lost the process as it "
                      "exited (lldb-server bug); gotrace exits 1")
    if not s.get("descendants_traced", True):
        console.print("[bold yellow]gotrace:[/] descendants were not traced: lldb follows one process "
                      "(use --backend bpftrace or ld-debug for a process tree)")
    lat = (report.get("latency_ns") or {}).get("all")
    if lat:
        cal = latency_calibration(s.get("latency_method"))
        what = "resolver latency" if cal is None else "time per lookup under lldb (calibrated estimates)"
        on = lat.get("oncpu")
        console.print(f"[bold]gotrace:[/] {what} p50 {_ns(lat['p50'])}, p99 {_ns(lat['p99'])}, "
                      f"max {_ns(lat['max'])}"
                      + (f" (stop to stop, lldb's own stop/resume cost, {_ns(cal['median_ns'])} median of "
                         f"{cal['rounds']}, subtracted): ranks lookups; not the resolver's own time, which bpf "
                         "or bpftrace measure" if cal else "")
                      + (f"; total {_ns(lat['total'])}, of it {_ns(on['total'])} on a CPU"
                         if on and lat.get("total") is not None else ""))
    if report["top_providers"]:
        tops = ", ".join(f"{r['provider']} {r['bindings']:,}" for r in report["top_providers"][:3])
        console.print(f"[bold]gotrace:[/] top providers: {escape(tops)}")
    ip = report.get("interposed")
    if ip and ip["top"]:
        seen = list(dict.fromkeys(f"{r['symbol']} from {r['provider']} over {r['instead_of']}" for r in ip["top"]))
        console.print(f"[bold]gotrace:[/] interposed: {escape('; '.join(seen[:2]))}"
                      + (f" and {len(seen) - 2} more" if len(seen) > 2 else "")
                      + f" ({plural(ip['lookups'], 'lookup')}; gotrace why SESSION {escape(ip['top'][0]['symbol'])})")
    for note in report.get("notes") or ():
        console.print(f"[bold]gotrace:[/] [dim]note:[/] {escape(note)}")
    if s["lost_events"]:
        console.print(f"[bold red]gotrace:[/] {s['lost_events']:,} events lost: counts are lower bounds")
    state = "saved" if s["complete"] else "[yellow]saved, marked incomplete[/]"
    console.print(f"[bold]gotrace:[/] session {state}: {escape(s['path'])}  (gotrace report {escape(s['path'])})")
