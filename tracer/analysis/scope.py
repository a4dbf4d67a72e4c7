"""One process's objects as glibc's ld.so loaded them: who needed what, in which order, and the global scope.

At start-up ld.so maps the executable, then the LD_PRELOAD objects (and
/etc/ld.so.preload's), then walks DT_NEEDED breadth-first — each object's
needs in order, a name already loaded never twice (elf/dl-deps.c). That list
is the global scope every lookup searches first, in that order. An object
that is in none of it was dlopen'ed: its own lookups search the global scope,
then its local scope (itself and its dependencies, breadth-first).

Which files those were comes from the session (the images each process
mapped, by path); what each file needs and defines from what the session kept
of it (analysis/objects.py), else from today's files: what is gone is said,
never guessed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..binary.elf_dynsyms import DynObject
from .libsearch import Step, search
from .objects import KeptObjects, Resolver, readable

VDSO_NAMES = ("linux-vdso.so.1", "linux-gate.so.1", "linux-vdso64.so.1")
PRELOAD_FILE = "/etc/ld.so.preload"


@dataclass
class Loaded:
    """One object of the process, named as the session names it."""

    name: str
    file: str | None  # where it is read from now (None: gone or unreadable)
    obj: DynObject | None
    how: str  # executable | preload | needed | interpreter | dlopen | vdso | unknown (executable unreadable)
    loader: str | None = None  # the object whose DT_NEEDED loaded it (the first one, breadth-first)
    needed_by: list[str] = field(default_factory=list)  # every object whose DT_NEEDED names it
    search: list[Step] | None = None  # how ld.so found it (None: no search — a path, or already loaded)
    asked_as: str | None = None  # the DT_NEEDED / LD_PRELOAD text that named it


@dataclass
class Process:
    exe: str
    objects: dict[str, Loaded]  # by name, in load order
    global_scope: list[str]
    missing: list[tuple[str, str]] = field(default_factory=list)  # (needer, needed name) found nowhere
    roots: list[str] = field(default_factory=list)  # the objects dlopen was asked for, in load order
    _local: dict[str, list[str]] = field(default_factory=dict, repr=False)
    env: dict[str, str] = field(default_factory=dict)
    # False: the loader variables this program exec'd with were not recorded (a backend that missed
    # its exec, a session from before they were): env is then gotrace's own, a guess the answers name
    env_recorded: bool = True

    @property
    def readable(self) -> bool:
        """Whether the executable itself can be read now (else the load order cannot be replayed)."""
        main = self.objects.get(self.exe)
        return main is not None and main.obj is not None

    def origin(self, name: str) -> str | None:
        lo = self.objects.get(name)
        if lo is None or lo.file is None:
            return None
        path = os.path.realpath(lo.file) if lo.how == "executable" else lo.file  # /proc/self/exe, l_name
        return os.path.dirname(os.path.abspath(path))

    def chain(self, name: str) -> list[tuple[str, DynObject | None, str | None]]:
        """The asker, its loader, … up to the executable (DT_RPATH is inherited along it)."""
        out, seen = [], set()
        while name is not None and name not in seen and name in self.objects:
            seen.add(name)
            lo = self.objects[name]
            out.append((name, lo.obj, self.origin(name)))
            name = lo.loader
        return out

    def dlopen_root(self, name: str) -> str:
        """The object dlopen was asked for whose loading brought ``name`` in: ld.so gives every
        object of that load the root's scope (dl-object.c: the topmost l_loader's searchlist)."""
        for root in self.roots:
            if name in self.local_scope(root):
                return root
        return name

    def local_scope(self, name: str) -> list[str]:
        """An object and its dependencies, breadth-first: a dlopen'ed object's own scope."""
        if name in self._local:
            return self._local[name]
        order, i = [name], 0
        while i < len(order):
            lo = self.objects.get(order[i])
            for need in (lo.obj.needed if lo and lo.obj else []):
                dep = self._named(need, order[i])
                if dep and dep not in order:
                    order.append(dep)
            i += 1
        self._local[name] = order
        return order

    def _named(self, need: str, asker: str) -> str | None:
        for name, lo in self.objects.items():
            if lo.asked_as == need and asker in lo.needed_by:
                return name
        return _match(need, self.objects)


def loader_envs(processes: Iterable[dict], meta: dict) -> "LoaderEnvs":
    """(pid, exe) -> the loader variables that program image exec'd with (LD_PRELOAD set inside the
    traced tree included): the processes table's ``loader_env`` where the backend recorded it, else
    the environment gotrace gave the command (meta.json's ``loader_env``)."""
    top = {k: str(v) for k, v in (meta.get("loader_env") or {}).items()}
    recorded: dict[tuple[int, str], dict[str, str]] = {}
    for row in processes:
        entries = row.get("loader_env")
        if entries is None or row.get("pid") is None or row.get("exe") is None:
            continue
        env = {}
        for entry in entries:
            name, sep, value = str(entry).partition("=")
            if sep:
                env[name] = value
        recorded[(int(row["pid"]), str(row["exe"]))] = env
    return LoaderEnvs(recorded, top)


class LoaderEnvs:
    """(pid, exe) -> the loader variables a program image exec'd with (see loader_envs)."""

    def __init__(self, recorded: dict[tuple[int, str], dict[str, str]], top: dict[str, str]):
        self._recorded, self._top = recorded, top

    def __call__(self, pid: int, exe: str) -> dict[str, str]:
        return self._recorded.get((int(pid), str(exe)), self._top)

    def recorded(self, pid: int, exe: str) -> bool:
        """Whether the session recorded them (else they are gotrace's own, the command's at the top)."""
        return (int(pid), str(exe)) in self._recorded


def process_key(kept: KeptObjects, pid: int, exe: str, images: list[str], env: dict[str, str]) -> tuple:
    """What makes two processes one model: the same program and images — the same files where the
    session kept them (a rebuilt program under the same path is another) — and the same loader
    variables (200 runs of one program are one model)."""
    return (exe, tuple(sorted((n, kept.identity(pid, n)) for n in [exe, *images])),
            tuple(sorted(env.items())))


def images_by_pid(rows: Iterable[dict]) -> dict[int, list[str]]:
    """The images table's rows as pid -> the paths that process mapped."""
    out: dict[int, list[str]] = {}
    for row in rows:
        if row.get("path") is not None:
            out.setdefault(int(row["pid"]), []).append(str(row["path"]))
    return out


def programs_named(events, processes):
    """The events, each whose program the backend left null (a DTrace session written before its records
    waited for the tree's exec records) named by the image its pid ran at its time, as the processes
    table says (the last one started by then, else its first): otherwise its lookups would be replayed
    in a scope that begins with no program."""
    missing = events["exe"].isna() if "exe" in events.columns else None
    if missing is None or not missing.any() or processes is None or not len(processes):
        return events
    ran: dict[int, list[tuple[int, str]]] = {}
    for pid, exe, start in processes[["pid", "exe", "start_ns"]].astype(object).itertuples(index=False):
        if isinstance(exe, str):
            ran.setdefault(int(pid), []).append((int(start) if start == start and start is not None else 0, exe))

    def program(pid, ts) -> str | None:
        images = sorted(ran.get(int(pid), []))
        started = [exe for start, exe in images if ts is None or ts != ts or start <= ts]
        return started[-1] if started else (images[0][1] if images else None)

    out = events.copy()
    out["exe"] = out["exe"].astype(object)
    ts = out["ts_ns"] if "ts_ns" in out.columns else [None] * len(out)
    out.loc[missing, "exe"] = [program(p, t) for p, t in zip(out.loc[missing, "pid"], ts[missing])]
    return out


def lookup_images(events, listed: dict[int, list[str]]) -> dict[tuple[int, str], list[str]]:
    """(pid, exe) -> the objects its lookups name (requesters, then providers, in their first order), for a
    process the images table lists nothing of (DTrace on Linux, an imported LD_DEBUG=bindings log): each
    was loaded in it, and a dlopen'ed one is known by nothing else — without it, its lookups would be
    replayed in the global scope alone."""
    rest = events[~events["pid"].isin(list(listed))]
    out: dict[tuple[int, str], list[str]] = {}
    for column in ("requester", "provider"):
        pairs = rest[["pid", "exe", column]].dropna().astype({"exe": str, column: str}).drop_duplicates()
        for pid, exe, name in pairs.itertuples(index=False):
            names = out.setdefault((int(pid), exe), [])
            if name not in names:
                names.append(name)
    return out


def _match(need: str, objects: dict[str, Loaded]) -> str | None:
    """An already loaded object answering to a DT_NEEDED name (its soname, or its file name)."""
    if "/" in need:
        return need if need in objects else None
    for name, lo in objects.items():  # the vDSO too: glibc names it linux-vdso.so.1 like any loaded object
        if (lo.obj is not None and lo.obj.soname == need) or os.path.basename(name) == need:
            return name
    return None


def preloads(env: dict[str, str], preload_file: str = PRELOAD_FILE) -> list[str]:
    """LD_PRELOAD's objects (space or colon separated), then /etc/ld.so.preload's."""
    out = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p]
    try:
        with open(preload_file) as fh:
            out += [p for line in fh for p in line.split("#", 1)[0].replace(":", " ").split() if p]
    except OSError:
        pass
    return out


def build_process(exe: str, images: list[str], env: dict[str, str], cwd: str | None,
                  first_seen: dict[str, int] | None = None, resolve: Resolver | None = None) -> Process:
    """The process's objects: the executable, its preloads and dependencies in ld.so's
    order (the global scope), then the images nothing needed (dlopen'ed).

    ``first_seen``: when each object first made a lookup (its relocation, at load):
    which of two dlopen'ed objects needing the same library loaded it. ``resolve``: name ->
    (file, what ld.so reads of it) for this process (KeptObjects.for_pid); today's files if None."""
    resolve = resolve or KeptObjects(None, cwd).for_pid(0)

    def _loaded(name: str, how: str) -> Loaded:
        file, obj = (None, None) if how == "vdso" else resolve(name)
        return Loaded(name, file, obj, how)

    mapped = {}  # the session's images not placed yet, by name
    for name in images:
        mapped[name] = _loaded(name, "vdso" if os.path.basename(name) in VDSO_NAMES else "dlopen")
    proc = Process(exe, {}, [], env=env)
    main = mapped.pop(exe, None) or _loaded(exe, "executable")
    main.how = "executable"
    proc.objects[exe] = main
    machine, bits = (main.obj.machine, main.obj.bits) if main.obj else (62, 64)
    if main.obj is not None:
        # a translated program shares its pid with its translator (qemu-user maps the guest's
        # objects beside its own): ld.so's open_verify takes only objects of the program's machine
        # and class, so the other architecture's objects are the translator's, not this program's
        mapped = {n: lo for n, lo in mapped.items()
                  if lo.obj is None or (lo.obj.machine, lo.obj.bits) == (machine, bits)}
    # ld.so is loaded before anything asks for it: a DT_NEEDED of its soname finds it (PT_INTERP's path)
    interp = main.obj.interpreter if main.obj else None
    rtld = None
    if interp:
        named = next((n for n in mapped if os.path.realpath(n) == os.path.realpath(interp)), None)
        rtld = mapped.pop(named) if named else _loaded(interp, "interpreter")
        rtld.how = "interpreter"
    order = [exe]
    for pre in preloads(env):
        name = _match(pre, mapped) or next((n for n in mapped if os.path.basename(n) == os.path.basename(pre)), None)
        lo = mapped.pop(name) if name else _loaded(pre, "preload")
        lo.how, lo.loader, lo.asked_as = "preload", exe, pre
        lo.needed_by.append(exe)
        proc.objects[lo.name] = lo
        order.append(lo.name)
    i = 0
    while i < len(order):
        asker = proc.objects[order[i]]
        for need in (asker.obj.needed if asker.obj else []):
            name = _match(need, proc.objects)
            if name is None and proc.missing and _match(need, mapped) is None:
                # a DT_NEEDED found nowhere ends the program there (_dl_map_object_deps: fatal at start-up):
                # what its breadth-first order reaches after it was never loaded — unless the session
                # saw it mapped (the files changed since the run)
                continue
            if name is None and rtld is not None and need in (os.path.basename(rtld.name),
                                                              rtld.obj.soname if rtld.obj else None):
                name = rtld.name
                rtld.loader, rtld.asked_as = asker.name, need
                proc.objects[name] = rtld
            if name is None and need in VDSO_NAMES:
                # the kernel's vDSO is in the namespace before any DT_NEEDED is read (rtld.c: setup_vdso):
                # a DT_NEEDED of its name finds it there, without a search
                name = _match(need, {n: lo for n, lo in mapped.items() if lo.how == "vdso"}) or need
                lo = mapped.pop(name, None) or _loaded(name, "vdso")
                lo.loader, lo.asked_as = asker.name, need
                proc.objects[name] = lo
            if name is None:
                steps = None if "/" in need else search(need, proc.chain(asker.name), env, machine, bits)
                name = _match(need, mapped)
                if name is not None and "/" not in name and mapped[name].obj is None and steps and steps[-1].hit:
                    # a name, not a path (ld-debug's image of a process stopped before it relocated: no
                    # line gave the path), read nowhere: the file is the one ld.so's search opens
                    mapped.pop(name)
                    name = None
                if name is not None:
                    lo = mapped.pop(name)
                else:  # not in the session's images (a backend that lists none): today's search says which
                    hit = steps[-1].hit if steps else (need if os.path.isfile(need) else None)
                    if hit is None:
                        proc.missing.append((asker.name, need))
                        continue
                    lo = _loaded(hit, "needed")
                lo.how, lo.loader, lo.search, lo.asked_as = "needed", asker.name, steps, need
                proc.objects[lo.name] = lo
                name = lo.name
            if asker.name not in proc.objects[name].needed_by:
                proc.objects[name].needed_by.append(asker.name)
            if name not in order:
                order.append(name)
        i += 1
    proc.global_scope = order
    if rtld is not None and rtld.name not in proc.objects:
        proc.objects[rtld.name] = rtld
    for name, lo in mapped.items():  # nothing in the global scope needed them: dlopen'ed (or the vDSO)
        if main.obj is None and lo.how == "dlopen":
            lo.how = "unknown"  # the executable's DT_NEEDED cannot be read: how it came is unknown
        proc.objects[name] = lo
    opened = [n for n, lo in proc.objects.items() if lo.how == "dlopen"]
    for name in opened:  # their own dependencies, as dlopen loads them
        lo = proc.objects[name]
        for need in (lo.obj.needed if lo.obj else []):
            dep = _match(need, proc.objects)
            if dep is not None and name not in proc.objects[dep].needed_by:
                proc.objects[dep].needed_by.append(name)
                if proc.objects[dep].how == "dlopen" and proc.objects[dep].asked_as is None:
                    proc.objects[dep].asked_as = need
    seen = first_seen or {}
    roots = [n for n in opened if not any(proc.objects[m].how == "dlopen" for m in proc.objects[n].needed_by)]
    covered = {m for r in roots for m in proc.local_scope(r)}
    for name in opened:  # a DT_NEEDED cycle of dlopen'ed objects has no root above
        if name not in covered:
            rest = [m for m in proc.local_scope(name) if m in opened and m not in covered]
            # dl_open_worker relocates a load's new objects in reverse order of the root's search list, the
            # root last: the one whose first lookup came last, when each made one; else the first in the
            # images' order (LD_DEBUG=files' is the load order)
            root = max(rest, key=lambda m: seen[m]) if all(m in seen for m in rest) else name
            roots.append(root)
            covered.update(proc.local_scope(root))
    proc.roots = sorted(roots, key=lambda n: (seen.get(n, 1 << 62), n))
    for root in proc.roots:  # l_loader of what a dlopen brought in: the first object that needed it
        for name in proc.local_scope(root)[1:]:
            lo = proc.objects[name]
            if lo.how == "dlopen" and lo.loader is None and name not in proc.roots:
                lo.loader = next((m for m in proc.local_scope(root) if m in lo.needed_by), None)
    return proc

