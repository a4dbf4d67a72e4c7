"""`gotrace why`: each lookup's scope, its candidates, the winner and the rule; each library's search."""
from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.markup import escape


def _b(path) -> str:
    return os.path.basename(str(path)) if path else "-"


def _pids(pids: list[int]) -> str:
    shown = ", ".join(str(p) for p in pids[:6])
    return f"process {shown}" if len(pids) == 1 else f"{len(pids)} processes ({shown}{' …' if len(pids) > 6 else ''})"


def render_why_symbol(res: dict[str, Any], con: Console) -> None:
    lookups = res["lookups"]
    if not lookups:
        where = f" by process {res['pid']}" if res["pid"] is not None else ""
        con.print(f"{escape(res['symbol'])}: no lookup recorded{where} in {escape(res['session'])}")
        return
    # identical explanations in several processes (a go build runs cgo 40 times) are told once
    groups: dict[tuple, list[dict]] = {}
    for lk in lookups:
        key = (_b(lk["exe"]), lk["requester"], lk["kind"], lk["chosen"], tuple(lk["searched"]), lk["reason"])
        groups.setdefault(key, []).append(lk)
    total = sum(lk["lookups"] for lk in lookups)
    con.print(f"[bold]{escape(res['symbol'])}[/]: {total:,} lookup{'s' if total != 1 else ''}, "
              f"{len(groups)} distinct; {res['interposed']} interposed  (session {escape(res['session'])}, "
              f"{res['backend']})")
    for (exe, requester, kind, chosen, searched, reason), group in groups.items():
        lk = group[0]
        n = sum(g["lookups"] for g in group)
        sym = res["symbol"] + (f"@{lk['version']}" if lk["version"] else "")
        con.print()
        con.print(escape(f"{_pids(sorted({g['pid'] for g in group}))}, {exe}: {_asker(lk, requester, sym)} "
                         f"({kind}, {n:,} time{'s' if n != 1 else ''})"), soft_wrap=True)
        con.print(escape(f"  searched  {' → '.join(_b(x) for x in searched) or '-'}"), soft_wrap=True)
        for c in lk["candidates"]:
            mark = "" if c["accepted"] else f" — passed over: {c['rejected']}"
            ver = f"@{'' if c['hidden'] else '@'}{c['version']}" if c["version"] else ""
            con.print(escape(f"  defines   {_b(c['path'])}: {sym.split('@')[0]}{ver} ({c['binding']}, "
                             f"{c['visibility']}, {c['type']}){mark}"), soft_wrap=True)
        verdict = "[bold red]failed[/]" if chosen is None else escape(_b(chosen))
        tags = (" [yellow]interposed[/]" if lk["interposed"] else "") + \
               (" [red](today's files disagree)[/]" if lk["agrees"] is False else "")
        con.print(f"  chosen    {verdict}{tags}", soft_wrap=True)
        con.print(escape(f"  why       {reason}"), soft_wrap=True)
        for note in lk["notes"]:
            if note in reason:
                continue
            con.print(escape(f"  note      {note}"), soft_wrap=True)
        if lk["unreadable"] and lk["agrees"] is not None:
            con.print(escape(f"  note      gone or unreadable now, so not searched here: "
                             f"{', '.join(_b(u) for u in lk['unreadable'])}"), soft_wrap=True)


def _asker(lk: dict, requester: str, sym: str) -> str:
    """Who looked the symbol up: for dlsym ld.so records the handle's object, not the caller, when a
    handle was passed (RTLD_DEFAULT and RTLD_NEXT record the caller's object)."""
    forms = lk.get("dlsym_forms")
    if lk["kind"] != "dlsym" or forms is None:
        return f"{_b(requester)} looks up {sym}"
    if forms and "handle" not in forms:
        return f"{_b(requester)} calls dlsym({' or '.join(forms)}, {sym})"
    if forms == ["handle"]:
        return f"dlsym(handle of {_b(requester)}, {sym}) — the caller is not recorded"
    return (f"dlsym of {sym}, recorded for {_b(requester)}: its caller, or the object whose handle was passed "
            "(then the caller is not recorded)")


def render_why_library(res: dict[str, Any], con: Console) -> None:
    loads = res["loads"]
    if not loads:
        con.print(f"{escape(res['library'])}: no process of {escape(res['session'])} loaded or needed it "
                  "(name it as a file name, a soname or a path)")
        return
    con.print(f"[bold]{escape(res['library'])}[/]: {len(loads)} distinct load{'s' if len(loads) != 1 else ''} "
              f"(session {escape(res['session'])}, {res['backend']})")
    for ld in loads:
        con.print()
        where = ld["path"] if ld["found"] else "[not found]"
        con.print(escape(f"{_pids(sorted(ld['pids']))}, {_b(ld['exe'])}: {where}"), soft_wrap=True)
        asked = f" (asked as {ld['asked_as']})" if ld["asked_as"] and ld["asked_as"] != ld["path"] else ""
        con.print(escape(f"  how       {ld['meaning']}{asked}"), soft_wrap=True)
        if ld["needed_by"]:
            con.print(escape(f"  needed by {', '.join(_b(n) for n in ld['needed_by'])}"), soft_wrap=True)
        for step in ld["search"] or []:
            dirs = ":".join(step["dirs"]) or "(empty)"
            found = f" → found {step['hit']}" if step["hit"] else " → not there"
            con.print(escape(f"  searched  {step['source']}: {dirs}{found}"), soft_wrap=True)
        if ld["search"] is None and ld["found"] and ld["how"] != "unknown":
            con.print("  searched  nothing: " + ("a path, opened as it is" if ld["asked_as"] and "/" in ld["asked_as"]
                                                 else "no search by name"), soft_wrap=True)
        if ld["agrees"] is False:
            con.print(f"  [red]today's search finds {escape(ld['hit'] or 'nothing')}, not {escape(ld['path'])}[/]: "
                      "the files or the environment changed since the run", soft_wrap=True)
        if ld["note"]:
            con.print(escape(f"  note      {ld['note']}"), soft_wrap=True)


def render_dyld_searches(res: dict[str, Any], con: Console) -> None:
    """dyld's own account of each search: the paths in its order, how it came to each, where it ended."""
    for i, sr in enumerate(res["searches"]):
        if i:
            con.print()
        end = f"loaded from {sr['found']}" if sr["found"] else "found nowhere"
        con.print(escape(f"process {sr['pid']}, {_b(sr['exe'])}: dyld searched {sr['library']}: {end}"))
        for k, st in enumerate(sr["steps"], 1):
            what = st["outcome"] or "?"
            if st["error"]:
                what += f" ({st['error']})"
            con.print(escape(f"  {k}. {st['path']}  [{st['via'] or 'already loaded'}]: {what}"))
