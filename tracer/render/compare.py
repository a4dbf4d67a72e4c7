"""`gotrace compare`: a compare dict (analysis/compare.py) as rich tables."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ..session.schema import KINDS
from .format import micros


def render_compare(res: dict[str, Any], con: Console, top: int) -> None:
    t = Table(title="sessions", title_justify="left")
    for col in ("", "A", "B"):
        t.add_column(col)
    for key in ("path", "backend", "arch", "translator", "processes", "translated_images", "bindings", "failed"):
        t.add_row(key, str(res["a"][key]), str(res["b"][key]))
    for k in KINDS:
        t.add_row(k, f"{res['a']['by_kind'][k]:,}", f"{res['b']['by_kind'][k]:,}")
    con.print(t)
    for title, rows in (("latency by symbol", res["latency_by_symbol"]), ("latency by library", res["latency_by_library"])):
        if not rows:
            con.print(f"{title}: nothing measured in both")
            continue
        lt = Table(title=title, title_justify="left")
        for col in ("name", "A median", "B median", "B/A", "A p99", "B p99", "A n", "B n"):
            lt.add_column(col, justify="left" if col == "name" else "right")
        for r in rows:
            lt.add_row(r["name"], micros(r["a"]["median_ns"]), micros(r["b"]["median_ns"]),
                       f"{r['median_ratio']:.2f}×" if r["median_ratio"] is not None else "-",
                       micros(r["a"]["p99_ns"]), micros(r["b"]["p99_ns"]), str(r["a"]["count"]), str(r["b"]["count"]))
        con.print(lt)
    con.print(f"bindings (requester, symbol, provider) in both: {res['in_both']:,}; only in A: "
              f"{len(res['only_in_a']):,}; only in B: {len(res['only_in_b']):,}")
    for name, key in (("only in A", "only_in_a"), ("only in B", "only_in_b")):
        for row in res[key][:top]:
            con.print(f"  {name}: {row[0]} → {row[1]} from {row[2]}")
