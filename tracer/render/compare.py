"""`gotrace compare`: a compare dict (analysis/compare.py) as tables."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from ..session.schema import KINDS
from .format import ID, NUM, TEXT, count, duration, micros, print_table, shown


def render_compare(res: dict[str, Any], con: Console, top: int) -> None:
    a, b = res["a"], res["b"]
    rows = [[key, shown(a[key]), shown(b[key])] for key in ("path", "backend", "arch", "translator")]
    rows += [[key, count(a[key]), count(b[key])] for key in ("processes", "translated_images", "bindings", "failed")]
    rows += [[k, count(a["by_kind"][k]), count(b["by_kind"][k])] for k in KINDS]
    rows.append(["latency method", a["latency_method"]["text"], b["latency_method"]["text"]])
    rows += [[label, duration(a.get(key)), duration(b.get(key))]
             for label, key in (("resolver time (wall)", "resolver_ns"), ("  on a CPU", "resolver_oncpu_ns"),
                                ("  switched out", "resolver_offcpu_ns"))]
    print_table(con, "sessions", [("", ID), ("A", TEXT), ("B", TEXT)], rows)
    # (title, rows, said when empty): neither side timing its images (ld-debug, lldb's glibc
    # profile) is the common case, not worth a line
    for title, rows, say_empty in (("latency by symbol", res["latency_by_symbol"], True),
                                   ("latency by library", res["latency_by_library"], True),
                                   ("relocation time by image (one value per load)", res["relocation_by_image"], False)):
        if not rows and not say_empty:
            continue
        if not rows:
            con.print(f"{title}: nothing measured in both")
            continue
        print_table(con, title, [("name", ID), ("A median", NUM), ("B median", NUM), ("B/A", NUM), ("A p99", NUM),
                                 ("B p99", NUM), ("A n", NUM), ("B n", NUM)],
                    [[r["name"], micros(r["a"]["median_ns"]), micros(r["b"]["median_ns"]),
                      f"{r['median_ratio']:.2f}×" if r["median_ratio"] is not None else "-",
                      micros(r["a"]["p99_ns"]), micros(r["b"]["p99_ns"]), count(r["a"]["count"]),
                      count(r["b"]["count"])] for r in rows])
    counts = {key: res.get(f"{key}_count", len(res[key])) for key in ("only_in_a", "only_in_b")}  # older dicts
    con.print(f"bindings (requester, symbol, provider) in both: {res['in_both']:,}; only in A: "
              f"{counts['only_in_a']:,}; only in B: {counts['only_in_b']:,}", soft_wrap=True)
    for name, key in (("only in A", "only_in_a"), ("only in B", "only_in_b")):
        shown_rows = res[key][:top]
        for row in shown_rows:
            con.print(escape(f"  {name}: {row[0]} → {row[1]} from {row[2]}"), soft_wrap=True)
        if len(shown_rows) < counts[key]:
            con.print(f"  {name}: {len(shown_rows):,} of {counts[key]:,} listed (--top N lists more; --json "
                      f"lists up to {res.get('only_in_listed_max', len(res[key])):,})", soft_wrap=True)


def render_budgets(results: list[dict[str, Any]], con: Console) -> None:
    """One line per broken budget (what CI logs show), then how many held."""
    broken = [r for r in results if r["broken"]]
    for r in broken:
        con.print(f"[bold red]budget broken:[/] {escape(r['line'])}", soft_wrap=True, highlight=False)
    kept = len(results) - len(broken)
    if broken:
        con.print(f"{len(broken)} of {len(results)} budgets broken" + (f", {kept} kept" if kept else ""),
                  highlight=False)
    else:
        con.print(f"[green]all {len(results)} budgets kept[/]: " + "; ".join(escape(r["line"]) for r in results),
                  soft_wrap=True, highlight=False)
