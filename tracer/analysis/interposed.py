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

from ..heavy import pa, pc
from .scope import Process, build_process, images_by_pid
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
    table = table.filter(table["resolved"])
    if table.num_rows == 0:
        return None
    by_pid = images_by_pid(images)
    env, cwd = dict(meta.get("loader_env") or {}), meta.get("cwd")
    # one process model per executable and set of images: 200 runs of one program are one model
    built: dict[tuple, tuple[Process, set[str]]] = {}
    shape: dict[tuple, tuple] = {}  # (pid, exe): a pid runs one program image after another
    pairs = table.group_by(["pid", "exe"]).aggregate([])
    for pid, exe in zip(pairs["pid"].to_pylist(), pairs["exe"].to_pylist()):
        if exe is None:
            continue
        key = shape[(pid, exe)] = (str(exe), tuple(sorted(by_pid.get(pid, []))))
        if key not in built:
            proc = build_process(key[0], by_pid.get(pid, []), env, cwd)
            built[key] = proc, _multiply_defined(proc)
    candidates = set().union(*(m for _p, m in built.values())) if built else set()
    if not candidates:
        return {"lookups": 0, "symbols": 0, "replayed": 0, "disagreed": 0, "by_the_dynamic_linker": 0, "top": []}
    symbol = table["symbol"]
    if pa.types.is_dictionary(symbol.type):
        symbol = symbol.cast(pa.string())
    table = table.filter(pc.fill_null(pc.is_in(symbol, value_set=pa.array(sorted(candidates), pa.string())), False))
    counts = table.group_by(LOOKUP_KEY).aggregate([([], "count_all")])
    columns = [counts[c].to_pylist() for c in LOOKUP_KEY] + [counts["count_all"].to_pylist()]
    memo: dict[tuple, tuple[bool, bool, str | None]] = {}
    hits: Counter = Counter()
    pids: dict[tuple, set[int]] = {}
    symbols: set[str] = set()
    total = replayed = disagreed = internal = 0
    for pid, exe, requester, sym, version, provider, kind, n in zip(*columns):
        if (pid, exe) not in shape or requester is None or sym is None:
            continue
        proc, multi = built[shape[(pid, exe)]]
        if sym not in multi:
            continue
        key = (shape[(pid, exe)], requester, sym, version, provider, kind)
        if key not in memo:
            one = explain(proc, str(requester), str(sym), version, str(kind), provider, reason=False)
            by_ldso = requester in proc.objects and proc.objects[requester].how == "interpreter"
            memo[key] = (one["interposed"], one["agrees"], one["own_definition"], by_ldso)
        interposed, agrees, own, by_ldso = memo[key]
        replayed += 1
        disagreed += agrees is False  # None: files gone, nothing replayed
        if interposed and by_ldso:
            internal += n  # ld.so's own error handling, which libc.so.6 takes over by design
        elif interposed:
            total += n
            symbols.add(sym)
            row = (sym, os.path.basename(str(provider)), os.path.basename(str(own)), os.path.basename(str(requester)))
            hits[row] += n
            pids.setdefault(row, set()).add(pid)
    top = sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]
    return {
        "lookups": total, "symbols": len(symbols), "replayed": replayed, "disagreed": disagreed,
        "by_the_dynamic_linker": internal,
        "top": [{"symbol": s, "provider": p, "instead_of": own, "requester": r, "lookups": n,
                 "processes": len(pids[(s, p, own, r)])} for (s, p, own, r), n in top],
    }
