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
from typing import Any, Callable, Iterable

from ..heavy import pa, pc
from .objects import KeptObjects
from .scope import Process, build_process, images_by_pid, loader_envs, lookup_images, process_key
from .translator import as_translator, replay_programs
from .why import explain


LOOKUP_KEY = ["pid", "exe", "requester", "symbol", "version", "provider", "kind"]  # one lookup, as replayed


def _multiply_defined(proc: Process) -> set[str]:
    """Symbols two or more objects of the process define (or an executable's canonical PLT stands for)."""
    seen: Counter = Counter()
    for lo in proc.objects.values():
        if lo.obj is not None:
            seen.update(lo.obj.definitions.keys())
    exe = proc.objects.get(proc.exe)
    plt = exe.obj.canonical_plt if exe is not None and exe.obj is not None else set()
    return {s for s, n in seen.items() if n > 1} | plt


def interposed_lookups(parts: Callable[[list[str]], Iterable[pa.Table]], images: list[dict],
                       meta: dict[str, Any], top_n: int,
                       translators: Callable[[Any], bool] | None = None,
                       processes: list[dict] | None = None, kept: KeptObjects | None = None
                       ) -> dict[str, Any] | None:
    """Interposed bindings: how many, of which symbols, the top ones (symbol, requester, provider, whose
    definition lost). None when there is nothing to replay (no binding, or a macOS session).

    ``parts(columns)`` yields the saved events part by part: read twice (which processes ran which
    program, then only the lookups of symbols two of their objects define), so a session of any
    size is replayed in the memory of one part. ``translators``: programs whose own lookups are
    left out, as the report's tally leaves them. ``processes``: the processes table's rows (each
    program image's loader variables); ``kept``: the objects the session kept (else today's files)."""
    if meta.get("backend") == "dyld-print":
        return None
    by_pid = images_by_pid(images)
    cwd = meta.get("cwd")
    env_of = loader_envs(processes or [], meta)
    host = replay_programs(meta, processes or [])
    kept = kept or KeptObjects(None, cwd)
    # one process model per program, its objects and its loader variables: 200 runs of one program are one model
    built: dict[tuple, tuple[Process, set[str]]] = {}
    shape: dict[tuple, tuple] = {}  # (pid, exe): a pid runs one program image after another
    # a process the images table lists nothing of (DTrace on Linux, an imported LD_DEBUG=bindings log): the
    # objects its lookups name, a dlopen'ed one included (scope.lookup_images, as why replays it)
    named: dict[tuple, list[str]] = {}
    listed = pa.array(sorted(by_pid), pa.int64())
    programs: dict[tuple, None] = {}  # (pid, exe) in the order the parts hold them
    for part in parts(["pid", "exe", "requester", "provider"]):
        part = _without(part, translators)
        pairs = part.group_by(["pid", "exe"]).aggregate([])
        programs.update(dict.fromkeys(zip(pairs["pid"].to_pylist(), pairs["exe"].to_pylist())))
        rest = part.filter(pc.invert(pc.is_in(part["pid"].cast(pa.int64()), value_set=listed)))
        if rest.num_rows:
            for key, names in lookup_images(rest.to_pandas(), {}).items():
                have = named.setdefault(key, [])
                have += [n for n in names if n not in have]
    for pid, exe in programs:
        if exe is None:
            continue
        objects = by_pid.get(pid) or named.get((pid, exe), [])
        env = env_of(pid, exe)
        program, = as_translator(host, pid, exe)  # a translator's own lookups: its scope, not the guest's
        key = shape[(pid, exe)] = process_key(kept, pid, str(program), objects, env)
        if key not in built:
            proc = build_process(str(program), objects, env, cwd, resolve=kept.for_pid(pid))
            built[key] = proc, _multiply_defined(proc)
    if not shape:
        return None
    candidates = pa.array(sorted(set().union(*(m for _p, m in built.values()))), pa.string())
    kept = []
    for part in parts([*LOOKUP_KEY, "resolved"]):
        part = _without(part, translators)
        part = part.filter(pc.and_(pc.fill_null(part["resolved"], False), _is_in(part["symbol"], candidates)))
        if part.num_rows:
            kept.append(part.select(LOOKUP_KEY).group_by(LOOKUP_KEY).aggregate([([], "count_all")]))
    if kept:
        counts = pa.concat_tables(kept).group_by(LOOKUP_KEY).aggregate([("count_all", "sum")])
        columns = [counts[c].to_pylist() for c in LOOKUP_KEY] + [counts["count_all_sum"].to_pylist()]
    else:
        columns = [[] for _ in range(len(LOOKUP_KEY) + 1)]
    memo: dict[tuple, tuple[bool, bool, str | None]] = {}
    hits: Counter = Counter()
    pids: dict[tuple, set[int]] = {}
    symbols: set[str] = set()
    total = replayed = disagreed = internal = blind = 0
    blind_objects: Counter = Counter()  # programs whose files were gone: their lookups not replayed
    for pid, exe, requester, sym, version, provider, kind, n in zip(*columns):
        if (pid, exe) not in shape or requester is None or sym is None:
            continue
        proc, multi = built[shape[(pid, exe)]]
        if sym not in multi:
            continue
        _, requester, provider = as_translator(host, pid, exe, requester, provider)
        key = (shape[(pid, exe)], requester, sym, version, provider, kind)
        if key not in memo:
            one = explain(proc, str(requester), str(sym), version, str(kind), provider, reason=False)
            by_ldso = requester in proc.objects and proc.objects[requester].how == "interpreter"
            memo[key] = (one["interposed"], one["agrees"], one["own_definition"], by_ldso)
        interposed, agrees, own, by_ldso = memo[key]
        if agrees is None and provider is not None:  # files gone, not kept: nothing replayed, no verdict
            blind += n
            blind_objects[os.path.basename(str(exe))] += n
            continue
        replayed += 1
        disagreed += agrees is False
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
        # lookups that could not be replayed: objects of their scope gone and not kept by the session
        # (a program deleted before gotrace could read it); which programs, most lookups first
        "not_replayed": blind, "not_replayed_programs": [p for p, _n in blind_objects.most_common(top_n)],
        "top": [{"symbol": s, "provider": p, "instead_of": own, "requester": r, "lookups": n,
                 "processes": len(pids[(s, p, own, r)])} for (s, p, own, r), n in top],
    }


def _is_in(column: pa.ChunkedArray, values: pa.Array) -> pa.ChunkedArray:
    """Which rows hold one of ``values``; a dictionary column is looked up in its dictionary, never
    decoded row by row."""
    if not pa.types.is_dictionary(column.type):
        return pc.fill_null(pc.is_in(column, value_set=values), False)
    masks = [pc.fill_null(pc.take(pc.is_in(ch.dictionary, value_set=values), ch.indices), False)
             for ch in column.chunks]
    return pa.chunked_array(masks, pa.bool_())


def _without(part: pa.Table, translators: Callable[[Any], bool] | None) -> pa.Table:
    """The part without a binfmt_misc translator's own lookups (the tally's rule)."""
    if translators is None or part.num_rows == 0:
        return part
    exe = part["exe"]
    if pa.types.is_dictionary(exe.type):
        exe = exe.cast(pa.string())
    theirs = [e for e in pc.unique(exe).to_pylist() if e is not None and translators(e)]
    if not theirs:
        return part
    return part.filter(pc.invert(pc.fill_null(pc.is_in(exe, value_set=pa.array(theirs, pa.string())), False)))
