"""Why a library was loaded from where it was: who asked for it, where ld.so looked, what it found.

The loads come from the session (each process's images); who asked from the
DT_NEEDED entries of the objects loaded before it (scope.py); where ld.so
looked from libsearch.py — glibc's order, replayed on today's files with the
environment recorded at capture. A library no file provides (the process
died with "error while loading shared libraries") is answered the same way:
every place tried, none found.
"""
from __future__ import annotations

import os
from typing import Any

from ..session.reader import Session, frame_rows
from .libsearch import search
from .objects import KeptObjects
from .scope import (Loaded, Process, build_process, images_by_pid, loader_envs, lookup_images, process_key,
                    programs_named)
from .why import first_lookups

HOW = {
    "executable": "the program itself (execve)",
    "interpreter": "the program's interpreter (PT_INTERP): mapped by the kernel, found already loaded when "
                   "asked for by name",
    "preload": "LD_PRELOAD (or /etc/ld.so.preload)",
    "needed": "DT_NEEDED",
    "dlopen": "dlopen (no loaded object's DT_NEEDED names it)",
    "vdso": "the kernel's vDSO (no file): in the process before any DT_NEEDED is read, found already loaded when "
            "asked for by name",
    "unknown": "cannot be told: the executable is gone or unreadable now, so its DT_NEEDED cannot be read",
}


def _answers(lo: Loaded, name: str) -> bool:
    return name in (lo.name, os.path.basename(lo.name), lo.asked_as) or (lo.obj is not None and lo.obj.soname == name)


def _load(proc: Process, lo: Loaded) -> dict[str, Any]:
    steps = lo.search
    note = None
    meaning = HOW.get(lo.how, lo.how)
    if lo.how == "dlopen" and lo.loader:
        root = proc.dlopen_root(lo.name)
        meaning = f"DT_NEEDED of {os.path.basename(lo.loader)}, loaded by the dlopen of {os.path.basename(root)}"
    if lo.how == "dlopen" and lo.asked_as and "/" not in lo.asked_as:
        machine, bits = (lo.obj.machine, lo.obj.bits) if lo.obj else (62, 64)
        needer = lo.loader or proc.exe
        steps = search(lo.asked_as, proc.chain(needer), proc.env, machine, bits)
        if not lo.loader:  # dlopen searches from its caller, which no backend records
            note = ("dlopen searches from its caller's DT_RPATH/DT_RUNPATH; the caller is not recorded: replayed "
                    "as if the executable asked")
    elif lo.how == "dlopen":
        note = "dlopen'ed by path (or by a name no loaded object needs): the text passed to dlopen is not recorded"
    hit = steps[-1].hit if steps else None
    agrees = None if not steps else bool(hit) and os.path.realpath(hit) == os.path.realpath(lo.file or lo.name)
    return {"path": lo.name, "how": lo.how, "meaning": meaning, "asked_as": lo.asked_as,
            "loader": lo.loader, "needed_by": list(lo.needed_by),
            "search": [s.as_dict() for s in steps] if steps else None, "hit": hit, "agrees": agrees,
            "found": True, "note": note, "readable": lo.file is not None}


def _missing(proc: Process, asker: str, name: str) -> dict[str, Any]:
    lo = proc.objects.get(asker)
    machine, bits = (lo.obj.machine, lo.obj.bits) if lo is not None and lo.obj is not None else (62, 64)
    steps = search(name, proc.chain(asker), proc.env, machine, bits) if "/" not in name else []
    return {"path": None, "how": "needed", "meaning": HOW["needed"], "asked_as": name, "loader": asker,
            "needed_by": [asker], "search": [s.as_dict() for s in steps], "hit": None, "agrees": None,
            "found": False, "note": "found nowhere: ld.so stops the program (\"error while loading shared "
                                    "libraries: … cannot open shared object file\", exit 127)", "readable": False}


def why_library(s: Session, name: str, pid: int | None = None) -> dict[str, Any]:
    """Every process's load of library ``name`` (file name, soname, or path), grouped where identical."""
    top_env = dict(s.meta.get("loader_env") or {})
    cwd = s.meta.get("cwd")
    images = images_by_pid(frame_rows(s.images))
    # a backend that lists no images: the objects the lookups name
    unlisted = lookup_images(programs_named(s.events, s.processes), images)
    processes = frame_rows(s.processes)
    env_of = loader_envs(processes, s.meta)
    kept = KeptObjects(s.path, cwd)
    rows = [r for r in processes if r.get("exe") and (pid is None or r["pid"] == pid)]
    first = first_lookups(s, {int(r["pid"]) for r in rows}) if rows else {}
    groups: dict[str, dict[str, Any]] = {}
    built: dict[tuple, Process] = {}
    for r in rows:
        p, exe = int(r["pid"]), str(r["exe"])
        env = env_of(p, exe)
        mapped = images.get(p) or unlisted.get((p, exe), [])
        key = process_key(kept, p, exe, mapped, env)
        if key not in built:
            built[key] = build_process(exe, mapped, env, cwd, first.get(p), kept.for_pid(p))
        proc = built[key]
        found = [_load(proc, lo) for lo in proc.objects.values() if _answers(lo, name)]
        found += [_missing(proc, asker, need) for asker, need in proc.missing
                  if need == name or os.path.basename(need) == name]
        for load in found:
            sig = repr((exe, load["path"], load["how"], load["needed_by"], load["search"], env))
            g = groups.setdefault(sig, {"exe": exe, "pids": [], "loader_env": env, **load})
            g["pids"].append(p)
    loads = sorted(groups.values(), key=lambda g: (-len(g["pids"]), g["exe"], str(g["path"])))
    return {"why_version": 1, "session": str(s.path), "library": name, "pid": pid, "backend": s.meta.get("backend"),
            "loader_env": top_env, "loads": loads}
