"""Failed lookups told apart, and processes that bound nothing told what they are.

A failed lookup is harmless or fatal depending on the reference, not the lookup:
ld.so skips an undefined *weak* reference (``__gmon_start__``, ``_ITM_*``, a
``__attribute__((weak))`` function checked for NULL), while a failed lookup of a
*global* reference is glibc's ``symbol lookup error: …: undefined symbol: …``:
the process exits 127 (at start-up, or at the first call of a lazily bound
function), or a dlopen reports it and the process goes on. Which one a
reference is comes from the requester's own dynamic symbol table (STB_WEAK or
not), read through binary/, so the files must still be there; a failed dlsym
only returned NULL to its caller.

Silence needs the same care: a process with no binding is either static (no
PT_INTERP: no dynamic linker ran; Go programs without cgo, the Go toolchain
itself since Go 1.21) or a dynamic program whose account is missing (it
dropped the tracing environment, died first, ran translated) — never "a
program with no bindings".
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from ..binary import facts
from .objects import KeptObjects
from .tally import by_count, ranked

EXIT_LOAD_ERROR = 127  # glibc's ld.so (_dl_signal_error, no catcher): also a shell's "command not found"


def last_exit_codes(processes: Iterable[dict]) -> dict[int, Any]:
    """pid -> its exit code (the last program image's, where a pid exec'd several)."""
    last: dict[int, tuple] = {}
    for p in processes:
        key = (p.get("start_ns") or 0)
        if p["pid"] not in last or key >= last[p["pid"]][0]:
            last[p["pid"]] = (key, p.get("exit_code"))
    return {pid: code for pid, (_k, code) in last.items()}


def _outcome(kind: str, code) -> str:
    if code == EXIT_LOAD_ERROR:
        return "died"  # symbol lookup error, exit 127
    if code is None:
        return "unknown"
    return "caught" if kind == "eager" else "unknown"  # a failing dlopen reported it; the process went on


def failed_lookups(failures: Counter, processes: list[dict], top_n: int, kept: KeptObjects | None = None
                   ) -> dict[str, Any]:
    """The failed lookups by what they mean.

    ``failures`` counts failed lookups by (pid, exe, requester, symbol, version, kind); ``kept``: the
    objects the session kept (else today's files are read)."""
    kept = kept or KeptObjects(None, None)
    codes = last_exit_codes(processes)
    weak, dlsym, unknown = Counter(), Counter(), Counter()
    fatal: list[dict] = []
    unreadable: set[str] = set()
    for (pid, exe, requester, symbol, version, kind), n in failures.items():
        if kind == "dlsym":
            dlsym[symbol] += n
            continue
        refs = kept.undefined_refs(pid, requester) if requester else None
        if refs is None and requester:
            unreadable.add(requester)
        is_weak = None if refs is None else refs.get(symbol)
        if is_weak:
            weak[symbol] += n
        elif is_weak is False:
            code = codes.get(pid)
            fatal.append({"pid": pid, "exe": exe, "requester": requester, "symbol": symbol, "version": version,
                          "kind": kind, "lookups": n, "exit_code": code, "outcome": _outcome(kind, code)})
        else:
            unknown[symbol] += n
    fatal.sort(key=lambda f: (f["pid"], f["requester"] or "", f["symbol"] or ""))
    return {
        "weak": sum(weak.values()), "dlsym": sum(dlsym.values()), "fatal": sum(f["lookups"] for f in fatal),
        "unknown": sum(unknown.values()),
        "weak_symbols": ranked(weak, top_n, "symbol", "lookups"),
        "dlsym_symbols": ranked(dlsym, top_n, "symbol", "lookups"),
        "unknown_symbols": ranked(unknown, top_n, "symbol", "lookups"),
        "requesters_unreadable": sorted(unreadable)[:top_n],
    }, fatal


def without_bindings(processes: list[dict], bound_pids: set[int], silent: list[dict],
                     kept: KeptObjects | None = None) -> list[dict[str, Any]]:
    """Processes that recorded no binding, by executable, each with what that means."""
    kept = kept or KeptObjects(None, None)
    told = {p.get("pid") for p in silent}
    groups: Counter = Counter()
    for p in processes:
        if p["pid"] in bound_pids or p["pid"] in told:
            continue
        exe = p.get("exe")
        groups[(str(exe) if exe is not None else "?", _why_quiet(p, kept))] += 1
    rows = [{"exe": exe, "processes": n, "reason": why} for (exe, why), n in groups.items()]
    rows.sort(key=lambda r: (-r["processes"], r["exe"], r["reason"]))
    return rows


def _why_quiet(p: dict, kept: KeptObjects) -> str:
    exe = p.get("exe")
    if p.get("translator"):
        return f"translated by {p['translator']}: its bindings are the guest's"
    linked = None
    if exe:
        _file, obj = kept.resolve(int(p["pid"]), str(exe))
        linked = (obj.interpreter is not None) if obj is not None else facts.dynamically_linked(str(exe))
    if linked is False:
        return "static: no dynamic linker"
    if linked is True:
        return "dynamic, yet no binding recorded (it dropped the tracing environment, or ended first)"
    return "file gone or unreadable: static or not cannot be told"


def static_count(rows: list[dict]) -> int:
    return sum(r["processes"] for r in rows if r["reason"].startswith("static"))


def exit_127_pids(processes: list[dict], fatal: list[dict]) -> dict[int, str]:
    """pid -> executable, of the processes that exited 127 with no fatal lookup to explain it."""
    explained = {f["pid"] for f in fatal}
    names = {p["pid"]: str(p.get("exe") or "?") for p in processes}
    return {pid: names[pid] for pid, code in last_exit_codes(processes).items()
            if code == EXIT_LOAD_ERROR and pid not in explained}


def exit_127_unexplained(processes: list[dict], fatal: list[dict]) -> list[str]:
    """Executables of processes that exited 127 with no fatal lookup to explain it."""
    return [n for n, _c in by_count(Counter(exit_127_pids(processes, fatal).values()))]


def libraries_not_found(pids: dict[int, str], images: list[dict], meta: dict, processes: list[dict] | None = None,
                        kept: KeptObjects | None = None) -> list[tuple[str, str, str]]:
    """(executable, needer, library) for each DT_NEEDED no file answers, in those processes: what ld.so
    stopped them for ("error while loading shared libraries"), replayed on today's files."""
    out, seen = [], set()
    for pid, exe, missing in _missing_by_pid(pids, images, meta, processes, kept):
        if exe not in seen:
            seen.add(exe)
            out += [(exe, needer, lib) for needer, lib in missing]
    return out


def _missing_by_pid(pids: dict[int, str], images: list[dict], meta: dict, processes: list[dict] | None = None,
                    kept: KeptObjects | None = None):
    """(pid, executable, [(needer, library)…]) of each of ``pids``, each executable (with its loader
    variables) replayed once."""
    from .scope import build_process, images_by_pid, loader_envs

    by_pid = images_by_pid(images)
    cwd = meta.get("cwd")
    env_of = loader_envs(processes or [], meta)
    kept = kept or KeptObjects(None, cwd)
    done: dict[tuple, list[tuple[str, str]]] = {}
    for pid, exe in sorted(pids.items()):
        if exe == "?":
            continue
        env = env_of(pid, exe)
        key = (exe, tuple(sorted(env.items())))
        if key not in done:
            done[key] = list(build_process(exe, by_pid.get(pid, []), env, cwd, resolve=kept.for_pid(pid)).missing)
        yield pid, exe, done[key]


def loader_deaths(processes: list[dict], fatal: list[dict], images: list[dict], meta: dict,
                  kept: KeptObjects | None = None) -> list[dict[str, Any]]:
    """The processes the dynamic linker stopped, one row each: exit 127 with a fatal lookup that
    killed it (glibc's "symbol lookup error"), or with a DT_NEEDED library found nowhere
    ("error while loading shared libraries", replayed on today's files). A 127 neither explains is
    left out: a shell passing on its child's status, or "command not found", exits 127 too."""
    out = []
    for f in fatal:
        if f["outcome"] == "died" and f["pid"] not in {d["pid"] for d in out}:
            out.append({"pid": f["pid"], "exe": f["exe"], "cause": "undefined symbol", "symbol": f["symbol"],
                        "version": f["version"], "library": None, "needed_by": f["requester"]})
    for pid, exe, missing in _missing_by_pid(exit_127_pids(processes, fatal), images, meta, processes, kept):
        if missing:
            needer, lib = missing[0]
            out.append({"pid": pid, "exe": exe, "cause": "library not found", "symbol": None, "version": None,
                        "library": lib, "needed_by": needer})
    out.sort(key=lambda d: d["pid"])
    return out
