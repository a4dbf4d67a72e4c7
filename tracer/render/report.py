"""`gotrace report` and `gotrace bind`'s summary: a report dict (analysis/report.py) as rich text."""
from __future__ import annotations

from typing import Any

from rich.console import Console

from .format import duration as _ns, table as _table


def render_report(report: dict[str, Any], console: Console) -> None:
    s, b, p = report["session"], report["bindings"], report["processes"]
    state = "complete" if s["complete"] else "[yellow]INCOMPLETE[/]"
    console.print(f"[bold]session[/] {s['path']}  ({state}, backend {s['backend']}, "
                  f"exit {s['exit_code']}, {s['duration_s']} s)")
    console.print(f"[bold]command[/] {' '.join(s['argv'] or [])}")
    kinds = ", ".join(f"{k} {v:,}" for k, v in b["by_kind"].items())
    console.print(f"[bold]{b['total']:,}[/] bindings in [bold]{p['count']}[/] processes "
                  f"({p['images']} program images, {p['failed']} exited non-zero): {kinds}; "
                  f"resolved {b['resolved']:,}, failed {b['failed']:,}")
    if s["lost_events"]:
        console.print(f"[bold red]{s['lost_events']:,} events were lost[/] (perf buffer overflow or a full "
                      "binding map): counts are lower bounds")
    if not s.get("descendants_traced", True):
        console.print("[yellow]descendants were not traced[/]: lldb follows one process")
    if p.get("translated"):
        console.print("translated program images: " + ", ".join(f"{n:,} by {t}" for t, n in p["translated"].items()))
    if s.get("guest_latency"):
        console.print(_guest_timing(s["guest_latency"]))
    lat = report.get("latency_ns")
    if lat:
        rows = [[k, f"{v['count']:,}", _ns(v["p50"]), _ns(v["p90"]), _ns(v["p99"]), _ns(v["max"])]
                for k, v in lat.items()]
        console.print(_table("resolver latency" + _correction(s), ["kind", "n", "p50", "p90", "p99", "max"], rows))
    else:
        console.print("resolver latency: not measured by this backend")
    console.print(_table("top symbols", ["symbol", "bindings"],
                         [[r["symbol"], f"{r['bindings']:,}"] for r in report["top_symbols"]]))
    console.print(_table("top providers", ["provider", "bindings"],
                         [[r["provider"], f"{r['bindings']:,}"] for r in report["top_providers"]]))
    console.print(_table("bindings per executable", ["exe", "bindings"],
                         [[r["exe"], f"{r['bindings']:,}"] for r in report["by_exe"]]))
    console.print(_table("processes per executable", ["exe", "processes"],
                         [[r["exe"], r["processes"]] for r in report["processes"]["by_exe"]]))
    if report["failed_symbols"]:
        console.print(_table("failed lookups", ["symbol", "lookups"],
                             [[r["symbol"], f"{r['bindings']:,}"] for r in report["failed_symbols"]]))
    rel = report.get("relocation")
    if rel:
        console.print(_table(f"relocation time per image (total {_ns(rel['total_ns'])})",
                             ["image", "relocations", "total", "median", "max"],
                             [[r["path"], r["relocations"], _ns(r["total_ns"]), _ns(r["median_ns"]),
                               _ns(r["max_ns"])] for r in rel["top_images"]]))


def _correction(session: dict[str, Any]) -> str:
    method = session.get("latency_method")
    cal = method.get("calibration") if isinstance(method, dict) else None
    if not cal or cal.get("median_ns") is None:
        return ""
    return f" (after subtracting lldb's own stop/resume cost, {_ns(cal['median_ns'])} median of {cal['rounds']})"


def _guest_timing(g: dict) -> str:
    unpaired = g.get("processes_unpaired") or []
    return (f"guest lookups timed by the qemu plugin: {g['bindings_timed']:,} in {g['processes_timed']} processes"
            + (f"; {len(unpaired)} processes left untimed (their counts disagree)" if unpaired else ""))


def render_summary(report: dict[str, Any], console: Console, show_choice: bool = False) -> None:
    """The few lines `gotrace bind` prints when the command has finished."""
    s, b, p = report["session"], report["bindings"], report["processes"]
    kinds = ", ".join(f"{k} {v:,}" for k, v in b["by_kind"].items())
    if show_choice and s.get("backend_choice"):
        console.print(f"[bold]gotrace:[/] {s['backend_choice']}")
    console.print(f"[bold]gotrace:[/] {b['total']:,} bindings in {p['count']} processes ({kinds}; "
                  f"{b['failed']:,} failed lookups)")
    if p.get("translated"):
        console.print("[bold]gotrace:[/] translated program images: "
                      + ", ".join(f"{n:,} by {t}" for t, n in p["translated"].items()))
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
        console.print(f"[bold]gotrace:[/] resolver latency p50 {_ns(lat['p50'])}, p99 {_ns(lat['p99'])}, "
                      f"max {_ns(lat['max'])}{_correction(s)}")
    if report["top_providers"]:
        tops = ", ".join(f"{r['provider']} {r['bindings']:,}" for r in report["top_providers"][:3])
        console.print(f"[bold]gotrace:[/] top providers: {tops}")
    if s["lost_events"]:
        console.print(f"[bold red]gotrace:[/] {s['lost_events']:,} events lost: counts are lower bounds")
    state = "saved" if s["complete"] else "[yellow]saved, marked incomplete[/]"
    console.print(f"[bold]gotrace:[/] session {state}: {s['path']}  (gotrace report {s['path']})")
