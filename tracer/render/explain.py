"""`gotrace explain`: one block per load error — what the loader did, why, the likely cause,
what to try, and what the named files are on this machine."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape


def render_explanations(res: dict[str, Any], con: Console) -> None:
    errs = res["errors"]
    for i, x in enumerate(errs):
        e = x["error"]
        if i:
            con.print()
        who = f"process {e['pid']}" if e.get("pid") is not None else (e.get("program") or "")
        where = f"line {e['line']}" if e.get("line") else ""
        head = ", ".join(p for p in (f"{e['source']}", who, where) if p)
        con.print(f"[bold red]{escape(e['kind'])}[/] ({escape(e['cause'])})  [dim]{escape(head)}[/]")
        con.print(f"  what:   {escape(x['what'])}")
        con.print(f"  why:    {escape(x['why'])}")
        for t in e.get("tried") or []:
            con.print(f"          tried {escape(t['path'])}: {escape(t['reason'])}")
        if x.get("likely"):
            con.print(f"  likely: {escape(x['likely'])}")
        for f in x["fixes"]:
            con.print(f"  try:    {escape(f)}")
        if x["checks"]:
            con.print("  on this machine:")
            for c in x["checks"]:
                con.print(f"    {escape(c)}")
        if x["from_text_only"]:
            con.print("  [dim](from the message alone: none of the files it names is on this machine)[/]")


def render_explain_summary(res: dict[str, Any], con: Console) -> None:
    """The closing line: how much of the input was the loader's."""
    n = len(res["errors"])
    kinds: dict[str, int] = {}
    for x in res["errors"]:
        kinds[x["error"]["kind"]] = kinds.get(x["error"]["kind"], 0) + 1
    what = ", ".join(f"{v} {k}" for k, v in kinds.items())
    src = res.get("source") or "the input"
    of = (f"; {res['error_lines']} of {res['lines']} line{'s' if res['lines'] != 1 else ''} were the loader's"
          if res.get("lines") else "")
    con.print(f"[dim]{n} load error{'s' if n != 1 else ''} in {escape(str(src))}"
              + (f" ({escape(what)})" if what else "") + f"{of}[/]")
