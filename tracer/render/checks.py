"""`gotrace doctor` and `gotrace libcheck`: one line per check or library, pass / warn / fail first."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape

MARK = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]fail[/]"}


def render_checks(checks: list, console: Console) -> None:
    for c in checks:
        console.print(f"{MARK[c.status]}  {escape(f'{c.name:15}')} {escape(c.message)}"
                      + (f"\n      fix: {escape(c.fix)}" if c.fix and c.status != "pass" else ""))


def render_libraries(results: list, console: Console) -> None:
    for r in results:
        mark = MARK["pass"] if r.status == "pass" else MARK["fail"]
        console.print(f"{mark}  " + escape(f"-l{r.name:12} {r.path or '-'}  {r.message}"))
