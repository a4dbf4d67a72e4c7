"""Why a symbol bound where it did: glibc's lookup replayed from the files, beside what the session recorded.

For every recorded lookup of a symbol: the scope ld.so searched, in its order
(scope.py: the executable, LD_PRELOAD, DT_NEEDED breadth-first; a dlopen'ed
object's own dependencies after that; -Bsymbolic objects themselves first),
every object in it that defines the symbol — with version, binding and
visibility, and why a definition was passed over (another version, a hidden
one, a local symbol) — the one chosen and the rule that made it win.

The choice follows glibc's check_match and do_lookup_x (elf/dl-lookup.c): the
first object whose definition matches wins; a weak definition is as good as
a global one (unless LD_DYNAMIC_WEAK); a versioned reference wants its
version exactly, or any definition of an object without versions; an
unversioned one takes the base or oldest version, or the one public version.
`interposed` says that the definition came from somewhere else than the
requester would get alone: its own definition, or else the first of its own
dependencies that defines it.

What the session recorded is the truth; the replay explains it. Where they
disagree (a file changed since, a handle passed to dlsym, RTLD_DEEPBIND,
dlmopen) the answer says so rather than pick one.
"""
from __future__ import annotations

import functools
import os
from collections import Counter
from typing import Any

from ..binary.elf_dynsyms import Definition
from ..session.reader import Session, frame_rows
from .objects import KeptObjects
from .scope import (VDSO_NAMES, Loaded, Process, build_process, images_by_pid, loader_envs, lookup_images, process_key,
                    programs_named)
from .translator import as_translator, replay_programs
from .why_macho import explain_macho

WHY_VERSION = 1


def accept(defs: list[Definition], version: str | None, versioned: bool, newest: bool
           ) -> tuple[Definition | None, str | None]:
    """The definition a lookup takes from one object, or why it takes none (check_match)."""
    exported = [d for d in defs if d.binding != "local"]
    if not exported:
        return None, "local symbol: not exported"
    if not versioned:
        return exported[0], None
    if version is not None:
        for d in exported:
            if d.version == version or d.version_index < 2:
                return d, None
        have = ", ".join(sorted({f"{d.name}{'@' if d.hidden else '@@'}{d.version}" for d in exported}))
        return None, f"defines {have}, not @{version}"
    public = []
    for d in exported:
        if d.version_index < (2 if newest else 3):  # the base version, or (not dlsym) the oldest
            return d, None
        if not d.hidden:
            public.append(d)
    if len(public) == 1:
        return public[0], None
    if not public:
        return None, "only hidden versions (name@VERSION): an unversioned reference cannot bind them"
    return None, "several public versions and an unversioned reference: ambiguous, none taken"


@functools.lru_cache(maxsize=4096)
def _real(path: str) -> str:
    try:
        return os.path.realpath(path)
    except OSError:
        return path


def _same(a: str | None, b: str | None, proc: Process) -> bool:
    """One object under two names (the session's, a path through a symlink)?"""
    if a is None or b is None:
        return a is b
    if a == b:
        return True
    fa, fb = (proc.objects[x].file if x in proc.objects else x for x in (a, b))
    return bool(fa and fb) and _real(fa) == _real(fb)


def lookup_scope(proc: Process, requester: str, symbol: str,
                 symbolic_first: bool = True) -> tuple[list[str], list[str]]:
    """The objects a lookup by ``requester`` searches, in order, and what shaped that order
    (``symbolic_first`` False: without a -Bsymbolic requester's own first pass)."""
    lo = proc.objects.get(requester)
    notes = []
    if lo is not None and lo.how == "vdso":
        return [requester], ["the vDSO's functions are looked up in the vDSO alone (dl_vdso_vsym)"]
    scope = list(proc.global_scope)
    if lo is not None and lo.how == "dlopen" and proc.readable:
        root = proc.dlopen_root(requester)
        whose = "its own scope (itself and its dependencies)" if root == requester else \
            f"the scope of {os.path.basename(root)}, whose dlopen brought it in (that object and its dependencies)"
        notes.append(f"{os.path.basename(requester)} was loaded by dlopen: after the global scope, {whose}")
        scope += [n for n in proc.local_scope(root) if n not in scope]
    if symbolic_first and lo is not None and lo.obj is not None and lo.obj.symbolic:
        notes.append(f"{os.path.basename(requester)} was linked -Bsymbolic (DT_SYMBOLIC): it searches itself first")
        scope = [requester] + [n for n in scope if n != requester]
    return scope, notes


def scopes(proc: Process, requester: str, symbol: str) -> list[tuple[list[str], list[str]]]:
    """The scopes a (non-dlsym) lookup may have searched: one, but for an executable's copy-relocated
    variable, whose R_*_COPY lookup skips the executable while its other references do not."""
    scope, notes = lookup_scope(proc, requester, symbol)
    lo = proc.objects.get(requester)
    if lo is None or lo.how != "executable" or lo.obj is None or symbol not in lo.obj.copy_relocated:
        return [(scope, notes)]
    return [(scope, notes),
            ([n for n in scope if n != requester], notes + [
                f"the copy relocation's own lookup: the executable holds a copy of {symbol}, so this lookup "
                "skips it and fills the copy from the first other object that defines it"])]


DLSYM_FORMS = ("handle", "RTLD_DEFAULT", "RTLD_NEXT")  # dlsym_scopes' first three, in its order


def dlsym_scopes(proc: Process, requester: str, symbol: str) -> list[tuple[list[str], list[str]]]:
    """dlsym's possible scopes: the handle passed chose one, and no backend records the handle."""
    base = os.path.basename(requester)
    scope, notes = lookup_scope(proc, requester, symbol)
    after = scope[scope.index(requester) + 1:] if requester in scope else scope
    every = list(proc.global_scope) + [n for n, o in proc.objects.items()
                                       if n not in proc.global_scope and o.how != "vdso"]
    return [
        (proc.local_scope(requester), [f"dlsym(handle, …) with {base}'s handle: {base} and its dependencies"]),
        (scope, [f"dlsym(RTLD_DEFAULT, …) from {base}: its own lookup scope"] + notes),
        (after, [f"dlsym(RTLD_NEXT, …) from {base}: the objects after it in its scope"]),
        (every, ["dlsym: the handle passed chose the scope, and none of RTLD_DEFAULT, RTLD_NEXT or the "
                 "requester's own handle explains the result: shown is every loaded object, global scope first"]),
    ]


def _replay(proc: Process, scope: list[str], symbol: str, version: str | None, newest: bool,
            plt_class: bool = True):
    """glibc's do_lookup_x over ``scope``: the candidates, the objects unreadable now, the winner.
    ``plt_class``: a call slot's lookup (JUMP_SLOT), which passes over canonical PLT entries."""
    dyn_weak = bool(proc.env.get("LD_DYNAMIC_WEAK"))
    candidates, unreadable = [], []
    chosen = weak_first = None
    for name in scope:
        lo = proc.objects.get(name)
        if lo is None or lo.obj is None:
            if lo is None or lo.how != "vdso":
                unreadable.append(name)
            continue
        defs = lo.obj.definitions.get(symbol)
        if not defs and symbol in lo.obj.canonical_plt:
            candidates.append({"path": name, "version": None, "binding": "global", "visibility": "default",
                               "type": "func", "hidden": False, "accepted": not plt_class, "canonical_plt": True,
                               "rejected": "its PLT entry, which a call slot's lookup passes over" if plt_class
                               else None})
            if not plt_class and chosen is None:
                chosen = name
            continue
        if not defs:
            continue
        taken, why_not = accept(defs, version, lo.obj.versioned, newest)
        d = taken or defs[0]
        candidates.append({"path": name, "version": d.version, "binding": d.binding, "visibility": d.visibility,
                           "type": d.type, "hidden": d.hidden, "accepted": taken is not None, "rejected": why_not})
        if taken is None or chosen is not None:
            continue
        if taken.binding == "weak" and dyn_weak:
            weak_first = weak_first or name  # LD_DYNAMIC_WEAK: a later global definition wins
            continue
        chosen = name
    return candidates, unreadable, chosen or weak_first


def _copy_in_executable(proc: Process, provider: str | None, symbol: str) -> bool:
    """Whether ``provider`` is the executable holding a copy of the variable (or an alias of one)."""
    lo = proc.objects.get(provider) if provider else None
    return lo is not None and lo.how == "executable" and lo.obj is not None and symbol in lo.obj.copy_relocated


def _first_own(proc: Process, requester: str, symbol: str, version: str | None, newest: bool) -> str | None:
    """What the requester would bind alone: its own definition, else its first dependency's."""
    for name in proc.local_scope(requester):
        if name == requester and _copy_in_executable(proc, name, symbol):
            continue  # the lookup that fills the copy skips the copy
        lo = proc.objects.get(name)
        if lo is not None and lo.obj is not None and symbol in lo.obj.definitions:
            if accept(lo.obj.definitions[symbol], version, lo.obj.versioned, newest)[0] is not None:
                return name
    return None


def explain(proc: Process, requester: str, symbol: str, version: str | None, kind: str,
            provider: str | None, reason: bool = True) -> dict[str, Any]:
    """One lookup: scope, candidates, the replay's choice against the session's, reason (None
    unless ``reason``: the report needs only the verdicts), interposed."""
    newest = kind == "dlsym"
    if requester not in proc.objects and os.path.basename(requester) in VDSO_NAMES:  # a backend lists no vDSO image
        proc.objects[requester] = Loaded(requester, None, None, "vdso")
    vdso = requester in proc.objects and proc.objects[requester].how == "vdso"
    options = dlsym_scopes(proc, requester, symbol) if kind == "dlsym" and not vdso else \
        scopes(proc, requester, symbol)
    # an eager lookup is a call slot's (bind-now) or a data reference's: they differ on canonical PLT entries
    classes = (False, True) if kind == "eager" else (True,)
    explained: list[str] = []  # dlsym: the forms whose scope gives the recorded result
    first = None
    for i, ((scope, notes), plt_class) in enumerate((o, c) for o in options for c in classes):
        candidates, unreadable, replay = _replay(proc, scope, symbol, version, newest, plt_class)
        if vdso and provider == requester:  # no file to read: the kernel's image answers for itself
            replay = provider
        agrees = _same(replay, provider, proc)
        if agrees and kind == "dlsym" and i < len(DLSYM_FORMS):
            explained.append(DLSYM_FORMS[i])
            first = first or (scope, notes, candidates, unreadable, replay, agrees)
            continue
        if agrees:
            break
    if first is not None:  # dlsym: the first scope that explains the result
        scope, notes, candidates, unreadable, replay, agrees = first
    blind = [u for u in unreadable if u in scope[:scope.index(provider) + 1 if provider in scope else len(scope)]]
    if blind and not vdso:  # what the replay would have searched first is gone: no verdict either way
        agrees = None
    searched = scope[:scope.index(provider) + 1] if provider in scope else scope
    symbolic = proc.objects.get(requester)
    if kind != "dlsym" and symbolic is not None and symbolic.obj is not None and symbolic.obj.symbolic \
            and scope[:1] == [requester] and not _same(provider, requester, proc):
        # _dl_lookup_symbol_x: the object alone first, then the whole scope, which holds it again in its place
        base, _ = lookup_scope(proc, requester, symbol, symbolic_first=False)
        searched = [requester] + (base[:base.index(provider) + 1] if provider in base else base)
    own = _first_own(proc, requester, symbol, version, newest) if provider else None
    canonical = any(c.get("canonical_plt") and c["accepted"] and _same(c["path"], provider, proc) for c in candidates)
    copied = _copy_in_executable(proc, provider, symbol)
    # a canonical PLT entry jumps to the definition a call would get, a copy relocation holds the library's
    # variable: the same function or data, not another one
    interposed = bool(provider and own and not canonical and not copied and not _same(own, provider, proc))
    if agrees is None and provider:  # what would have been searched first is gone: no verdict either way
        interposed = None
    # ld.so names a dlsym's requester by its handle's object for dlsym(handle, …), by the caller's
    # object for RTLD_DEFAULT and RTLD_NEXT (dl-sym.c): only the latter tells who called
    caller = requester if kind != "dlsym" or (explained and "handle" not in explained) else None
    return {
        "requester": requester, "symbol": symbol, "version": version, "kind": kind,
        "caller": caller, "dlsym_forms": explained if kind == "dlsym" else None,
        "scope": scope, "searched": searched,
        "candidates": candidates, "chosen": provider, "replayed": replay, "agrees": agrees,
        "reason": _reason(proc, requester, symbol, version, kind, provider, replay, agrees, candidates, own, notes,
                          unreadable) if reason else None,
        "interposed": interposed, "own_definition": own, "notes": notes, "unreadable": unreadable,
    }


def _role(proc: Process, name: str) -> str:
    lo = proc.objects.get(name)
    base = os.path.basename(name)
    if lo is None:
        return base
    if lo.how == "executable":
        return f"the executable {base}"
    if lo.how == "preload":
        return f"{base} (LD_PRELOAD)"
    if lo.loader:
        return f"{base} (DT_NEEDED of {os.path.basename(lo.loader)})"
    return base


def _miss(proc: Process, requester: str, symbol: str, kind: str) -> str:
    """What a failed lookup does to the process: it depends on the reference, not on the lookup."""
    if kind == "dlsym":
        return "dlsym returned NULL to its caller"
    lo = proc.objects.get(requester)
    refs = getattr(lo.obj.definitions, "undefined", None) if lo is not None and lo.obj is not None else None
    weak = refs.get(symbol) if refs else None
    if weak:
        return f"{os.path.basename(requester)} references it weakly: ld.so leaves it NULL and goes on"
    if weak is False:
        return (f"a global (not weak) reference of {os.path.basename(requester)}, so it is fatal: glibc's \"symbol "
                f"lookup error: undefined symbol: {symbol}\", exit 127 "
                f"({'at load' if kind == 'eager' else 'at the first call'}; a dlopen reports it instead)")
    return "whether the reference is weak cannot be told: the requester is gone or unreadable"


def _reason(proc, requester, symbol, version, kind, provider, replay, agrees, candidates, own, notes,
            unreadable) -> str:
    sym = f"{symbol}{'@' + version if version else ''}"
    if agrees is None:
        gone = ", ".join(os.path.basename(u) for u in unreadable)
        return (f"cannot be replayed: {gone} {'is' if len(unreadable) == 1 else 'are'} gone or unreadable now "
                f"(why reads the files the session names: run it where they are); the session recorded "
                f"{os.path.basename(provider) if provider else 'a failed lookup'}")
    skipped = [c for c in candidates if not c["accepted"]]
    tail = "".join(f"; {os.path.basename(c['path'])} passed over: {c['rejected']}" for c in skipped)
    if provider is None:
        lo = proc.objects.get(requester)
        if lo is not None and lo.how == "vdso":
            return (f"the vDSO of the run's kernel does not define {sym}: glibc asks it for that system call's fast "
                    "entry point at start-up (dl_vdso_vsym) and, finding none, makes the system call itself — nothing "
                    "fails (a kernel older than the glibc, or built without it)")
        if replay is None:
            gone = f" ({len(unreadable)} of them unreadable now)" if unreadable else ""
            return f"no object in the scope defines {sym}{gone}{tail}; {_miss(proc, requester, symbol, kind)}"
        return (f"the session recorded a failed lookup, yet {os.path.basename(replay)} defines {sym} today: "
                "a file changed since the run, or a scope rule not replayed here (dlsym's handle, RTLD_DEEPBIND, "
                "dlmopen)")
    if not agrees:
        unrecorded = ("" if proc.env_recorded else
                      f"; the loader variables {os.path.basename(proc.exe)} exec'd with were not recorded (the "
                      "backend missed its exec), so it was replayed with gotrace's own environment: an LD_PRELOAD "
                      "or LD_LIBRARY_PATH set inside the traced tree is not in this replay")
        return (f"bound to {os.path.basename(provider)}, while the replay puts {os.path.basename(replay or '?')} "
                "first: a file changed since the run, or a scope rule not replayed here (dlsym's handle, "
                "RTLD_DEEPBIND, dlmopen)" + unrecorded + tail)
    lo = proc.objects.get(provider)
    later = [os.path.basename(c["path"]) for c in candidates if c["accepted"] and not _same(c["path"], provider, proc)]
    also = (f"; {' and '.join([', '.join(later[:-1]), later[-1]] if len(later) > 1 else later)} "
            f"define{'s' if len(later) == 1 else ''} it too, later in the scope") if later else ""
    weak = next((c for c in candidates if _same(c["path"], provider, proc)), {}).get("binding") == "weak"
    weak_note = ("; a weak definition, taken all the same: the first definition wins, weak or not "
                 "(unless LD_DYNAMIC_WEAK)" if weak and later else "")
    if any(c.get("canonical_plt") and c["accepted"] and _same(c["path"], provider, proc) for c in candidates):
        rule = (f"{os.path.basename(provider)} takes the address of {symbol}: not position-independent, it made its "
                "PLT entry the function's one address (an undefined symbol with a value), so every reference "
                "but its own call slots binds there — the entry jumps on to the definition")
    elif _copy_in_executable(proc, provider, symbol):
        copied = lo.obj.copy_aliases.get(symbol) if lo is not None and lo.obj is not None else None
        what = (f"{symbol}, an alias of the variable {copied} at the same address: ld defined it at its copy of "
                f"{copied} (a copy relocation" if copied else f"the variable {symbol} (a copy relocation")
        rule = (f"{os.path.basename(provider)} holds a copy of {what}: not position-independent, it reads it at a "
                "fixed address), so every reference binds to that copy, the library's own included")
    elif kind == "dlsym" and notes:
        rule = f"{notes[0]}; {os.path.basename(provider)} is the first there that defines {sym}"
    elif lo is not None and lo.how == "vdso":
        rule = "the vDSO's own function, looked up in the vDSO"
    elif _same(provider, requester, proc) and lo is not None and lo.obj is not None and lo.obj.symbolic:
        rule = f"{os.path.basename(requester)} searches itself first (-Bsymbolic)"
    elif lo is not None and lo.how == "executable":
        rule = f"the executable comes first in the global scope, and it exports {symbol}"
    elif lo is not None and lo.how == "preload":
        rule = (f"LD_PRELOAD puts {os.path.basename(provider)} right after the executable, before every DT_NEEDED "
                "library")
    elif lo is not None and provider not in proc.global_scope:
        rule = (f"no object of the global scope defines {sym}; {os.path.basename(provider)} is in "
                f"{os.path.basename(requester)}'s own scope (dlopen'ed)")
    else:
        rule = f"the first definition in the global scope, which is breadth-first: {_role(proc, provider)}"
    own_note = ""
    if own is not None and not _copy_in_executable(proc, provider, symbol) and not any(
            c.get("canonical_plt") and c["accepted"] for c in candidates) and own is not None and _same(own, requester, proc) and not _same(provider, requester, proc):
        own_note = (f"; {os.path.basename(requester)}'s own definition loses: its references go through the "
                    "global scope too (-Bsymbolic, or hidden or protected visibility, would keep them inside)")
    return rule + also + weak_note + own_note + tail


def first_lookups(s: Session, pids: set[int]) -> dict[int, dict[str, int]]:
    """pid -> requester -> the time of its first lookup (an object's relocation follows its loading)."""
    ev = s.events
    if "ts_ns" not in ev.columns or not pids:
        return {}
    sub = ev[ev["pid"].isin(pids)]
    first = sub.groupby(["pid", sub["requester"].astype(str)], observed=True)["ts_ns"].min()
    out: dict[int, dict[str, int]] = {}
    for (pid, req), ts in first.items():
        out.setdefault(int(pid), {})[req] = int(ts)
    return out


def _unnamed(symbol: str, version: str | None, kind: str, provider: str | None, backend: str | None) -> dict[str, Any]:
    """A lookup whose requester the session does not name: no scope to replay, and why not."""
    how = ("DTrace for Linux names an address by the process's /proc/PID/maps, read while it lives, and this "
           "process had ended before its records were read" if backend == "dtrace" else
           f"the {backend or 'capture'} backend recorded none")
    return {"requester": None, "symbol": symbol, "version": version, "kind": kind, "caller": None,
            "dlsym_forms": [] if kind == "dlsym" else None, "scope": [], "searched": [], "candidates": [],
            "chosen": provider, "replayed": None, "agrees": None,
            "reason": f"cannot be replayed: the session does not name the object that asked ({how})",
            "interposed": None, "own_definition": None, "notes": [], "unreadable": []}


def why_symbol(s: Session, symbol: str, pid: int | None = None) -> dict[str, Any]:
    """Every recorded lookup of ``symbol`` (of process ``pid``), grouped per process, explained."""
    ev = programs_named(s.events, s.processes)
    rows = ev[ev["symbol"].astype(str) == symbol]
    if pid is not None:
        rows = rows[rows["pid"] == pid]
    groups: Counter = Counter()
    for r in rows[["pid", "exe", "requester", "version", "provider", "kind"]].astype(object).itertuples(index=False):
        key = tuple(None if (isinstance(x, float) and x != x) else x for x in r)
        groups[key] += 1
    top_env = dict(s.meta.get("loader_env") or {})
    env_of = loader_envs(frame_rows(s.processes), s.meta)
    host = replay_programs(s.meta, frame_rows(s.processes))  # a translator's own lookups: its scope
    cwd = s.meta.get("cwd")
    images = images_by_pid(frame_rows(s.images))
    unlisted = lookup_images(ev, images)  # a backend that lists no images: the objects the lookups name
    kept = KeptObjects(s.path, cwd)
    first = first_lookups(s, {int(k[0]) for k in groups})
    macho = s.meta.get("backend") == "dyld-print" or str(s.meta.get("os") or "") == "Darwin"
    procs: dict[tuple, Process] = {}
    lookups = []
    for (p, exe, requester, version, provider, kind), n in sorted(groups.items(), key=lambda kv: (
            kv[0][0], str(kv[0][2]), str(kv[0][4]))):
        env = env_of(p, exe)
        if macho:
            one = explain_macho(images.get(int(p), []), str(exe), str(requester), symbol, str(kind), provider,
                                env, cwd)
            lookups.append({"pid": int(p), "exe": exe, "lookups": n, **one})
            continue
        if requester is None:
            lookups.append({"pid": int(p), "exe": exe, "lookups": n, "loader_env": env,
                            "loader_env_recorded": env_of.recorded(p, exe),
                            **_unnamed(symbol, version, str(kind), provider, s.meta.get("backend"))})
            continue
        program, requester, provider = as_translator(host, p, exe, requester, provider)
        mapped = images.get(int(p)) or unlisted.get((int(p), str(exe)), [])
        key = process_key(kept, int(p), str(program), mapped, env) + (env_of.recorded(p, exe),)
        if key not in procs:
            procs[key] = build_process(str(program), mapped, env, cwd, first.get(int(p)), kept.for_pid(int(p)))
            procs[key].env_recorded = env_of.recorded(p, exe)
        one = explain(procs[key], str(requester), symbol, version, str(kind), provider)
        lookups.append({"pid": int(p), "exe": exe, "lookups": n, "loader_env": env,
                        "loader_env_recorded": env_of.recorded(p, exe), **one})
    return {"why_version": WHY_VERSION, "session": str(s.path), "symbol": symbol, "pid": pid,
            "backend": s.meta.get("backend"), "loader_env": top_env, "lookups": lookups,
            "interposed": sum(1 for x in lookups if x["interposed"])}
