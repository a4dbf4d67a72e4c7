"""The report's interposed symbols: bindings that went to another object than the requester would get alone.

An LD_PRELOAD interposer, a library earlier in the global scope that defines
the same function, an executable exporting a symbol a library defines as
well: each lookup is replayed by why.explain (glibc's rules on today's
files). ld.so's own references that libc.so.6 takes over by design
(_dl_catch_error, _dl_signal_error …) are counted apart. Only symbols that two objects of the process define can be
interposed, so only those are replayed: a whole `go build` stays cheap.
macOS sessions are left out: dyld's two-level namespace binds to the library
named at link time, so there is nothing to replay.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any

from ..heavy import pa
from .scope import Process, build_process
from .tally import LOOKUP_KEY
from .why import explain


def _multiply_defined(proc: Process) -> set[str]:
    """Symbols two or more objects of the process define (or an executable's canonical PLT stands for)."""
    seen: Counter = Counter()
    for lo in proc.objects.values():
        if lo.obj is not None:
            seen.update(lo.obj.definitions.keys())
    exe = proc.objects.get(proc.exe)
    plt = exe.obj.canonical_plt if exe is not None and exe.obj is not None else set()
    return {s for s, n in seen.items() if n > 1} | plt


def interposed_lookups(parts: list[pa.Table], images: list[dict], meta: dict[str, Any],
                       top_n: int) -> dict[str, Any] | None:
    """Interposed bindings: how many, of which symbols, the top ones (symbol, requester, provider, whose
    definition lost). None when there is nothing to replay (no binding, or a macOS session)."""
    if not parts or meta.get("backend") == "dyld-print":
        return None
    table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    if table.num_rows == 0:
        return None
    counts = table.group_by(LOOKUP_KEY).aggregate([([], "count_all")])
    columns = [counts[c].to_pylist() for c in LOOKUP_KEY] + [counts["count_all"].to_pylist()]
    by_pid: dict[int, list[str]] = {}
    for row in images:
        if row.get("path") is not None:
            by_pid.setdefault(int(row["pid"]), []).append(str(row["path"]))
    env, cwd = dict(meta.get("loader_env") or {}), meta.get("cwd")
    built: dict[tuple, tuple[Process, set[str]]] = {}
    hits: Counter = Counter()
    pids: dict[tuple, set[int]] = {}
    symbols: set[str] = set()
    total = replayed = disagreed = internal = 0
    for pid, exe, requester, symbol, version, provider, kind, n in zip(*columns):
        if exe is None or requester is None or symbol is None:
            continue
        key = (exe, tuple(sorted(by_pid.get(pid, []))))
        if key not in built:
            proc = build_process(str(exe), by_pid.get(pid, []), env, cwd)
            built[key] = proc, _multiply_defined(proc)
        proc, multi = built[key]
        if symbol not in multi:
            continue
        one = explain(proc, str(requester), str(symbol), version, str(kind), provider)
        replayed += 1
        disagreed += not one["agrees"]
        if one["interposed"] and requester in proc.objects and proc.objects[requester].how == "interpreter":
            internal += n  # ld.so's own error handling, which libc.so.6 takes over by design
        elif one["interposed"]:
            total += n
            symbols.add(symbol)
            row = (symbol, os.path.basename(str(provider)), os.path.basename(str(one["own_definition"])),
                   os.path.basename(str(requester)))
            hits[row] += n
            pids.setdefault(row, set()).add(pid)
    top = sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]
    return {
        "lookups": total, "symbols": len(symbols), "replayed": replayed, "disagreed": disagreed,
        "by_the_dynamic_linker": internal,
        "top": [{"symbol": s, "provider": p, "instead_of": own, "requester": r, "lookups": n,
                 "processes": len(pids[(s, p, own, r)])} for (s, p, own, r), n in top],
    }

