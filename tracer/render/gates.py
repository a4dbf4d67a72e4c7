"""`gotrace check`: one line per failed rule, then what each file demands."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape

MARK = {True: "[green]pass[/]", False: "[bold red]fail[/]"}


def render_checks(results: list, console: Console) -> None:
    for r in results:
        for f in r.failures:
            culprits = f": {', '.join(f.culprits)}" if f.culprits else ""
            console.print(f"{MARK[False]}  {escape(f.rule):9} {escape(r.path)}: {escape(f.message)}{escape(culprits)}",
                          soft_wrap=True)
        if not r.failures:
            console.print(f"{MARK[True]}  {'':9} {escape(r.path)}")
        for line in describe(r):
            console.print(f"      {escape(line)}", soft_wrap=True)


def describe(r) -> list[str]:
    """What the file demands, a line per fact."""
    f = r.facts
    out = []
    if r.format == "ELF":
        out.append(f"{f['arch']} {f['link_mode']}" + (f", interpreter {f['interpreter']}" if f["interpreter"] else "")
                   + (f", bind-now ({', '.join(f['bind_now_from'])})" if f["bind_now"] else ""))
        if f["needed"]:
            out.append("needs " + ", ".join(f["needed"]))
        for fl in f["floors"]:
            syms = fl["symbols"]
            shown = ", ".join(syms[:6]) + (f" and {len(syms) - 6} more" if len(syms) > 6 else "")
            out.append(f"floor {fl['version']} of {fl['library']}" + (f" (set by {shown})" if syms else ""))
        for p in f["private_versions"]:
            out.append(f"needs {p['version']} of {p['library']}: private, tied to that exact build")
    else:
        for s in f["slices"]:
            out.append(f"{s['arch']}: LC_UUID {s['uuid'] or 'missing'}, "
                       f"{s['platform'] or 'no platform'} {s['minos'] or ''}".rstrip())
    go = f.get("go")
    if go:
        settings = go["settings"]
        keys = [k for k in ("CGO_ENABLED", "-tags", "-ldflags", "GOOS", "GOARCH") if k in settings]
        out.append(f"Go {go['version']}" + ("" if not keys else ": " + ", ".join(f"{k}={settings[k]}" for k in keys)))
    return out
