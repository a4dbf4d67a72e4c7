"""The records dscripts/*.d print, as the session's events, processes and relocations.

One decoder takes the lines of every dtrace gotrace runs for a capture (the tree's
proctree.d, and one dlsymsnoop.d / dyldbindsnoop.d per process), in whatever
order their buffers deliver them: each record carries its own time. Addresses
are named through ``name_of(pid, address)`` (Linux: the process's
/proc/PID/maps; macOS: the images dyld's DYLD_PRINT_SEGMENTS placed), a
dyld4 image header through ``image_at(pid, header)``.

The record formats are the scripts' headers'. The macOS ones (B, R, STOP,
RESUMED) are not run on macOS: tested on records in those formats.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

EXITED, KILLED, DUMPED = 1, 2, 3  # proc:::exit's reason (CLD_*)
ABSOLUTE = 2  # dyld4's ResolvedSymbol::Kind::bindAbsolute


@dataclass
class Proc:
    pid: int
    ppid: int | None = None
    start_ns: int | None = None
    exes: list = field(default_factory=list)  # (ts_ns, path) per exec, in time order
    code: int | None = None  # the last exit() / exit_group() argument
    reason: int | None = None  # proc:::exit's
    end_ns: int | None = None

    def exe_at(self, ts: int, inherited: str | None) -> str | None:
        best = inherited
        for t, path in self.exes:
            if t <= ts:
                best = path
        return best


class DtraceDecoder:
    """Feed it the scripts' lines (``feed``); it returns event tuples and keeps the tree."""

    def __init__(self, name_of: Callable[[int, int], str | None],
                 image_at: Callable[[int, int], str | None] | None = None):
        self.name_of = name_of
        self.image_at = image_at or (lambda pid, mh: None)
        self.procs: dict[int, Proc] = {}
        self.relocations: list[dict] = []
        self.malformed = 0
        self.exes_known: dict[int, str] = {}  # what a pid ran when it was attached (/proc/PID/exe)
        # (pid, exec ts: E's on Linux, STOP's on macOS) -> (loader_env, absolute path or None), as read then
        self.environments: dict[tuple[int, int], tuple[list[str] | None, str | None]] = {}

    def proc(self, pid: int) -> Proc:
        p = self.procs.get(pid)
        if p is None:
            p = self.procs[pid] = Proc(pid)
        return p

    def exe(self, pid: int, ts: int) -> str | None:
        p = self.procs.get(pid)
        inherited = self.exes_known.get(pid)
        if p is not None and p.ppid is not None and inherited is None:
            parent = self.procs.get(p.ppid)
            if parent is not None and p.start_ns is not None:
                inherited = parent.exe_at(p.start_ns, self.exes_known.get(p.ppid))
        return p.exe_at(ts, inherited) if p is not None else inherited

    def feed(self, line: str) -> tuple | None:
        """One record; an event tuple for S and B records:
        (ts_ns, pid, tid, exe, requester, symbol, provider, kind, resolved, latency_ns)."""
        f = line.rstrip("\n").split("\t")
        try:
            t = f[0]
            if t == "S":
                ts, pid, tid, lat = (int(x) for x in f[1:5])
                handle, result, caller = (int(x, 16) for x in f[5:8])
                name = "\t".join(f[8:])
                return (ts, pid, tid, self.exe(pid, ts), self.name_of(pid, caller), name,
                        self.name_of(pid, result) if result else None, "dlsym", result != 0, lat)
            if t == "B":
                ts, pid, tid, lat = (int(x) for x in f[1:5])
                req, prov, offset = (int(x, 16) for x in f[5:8])
                kind, name = int(f[8]), "\t".join(f[9:])
                found = prov != 0 or kind == ABSOLUTE
                return (ts, pid, tid, self.exe(pid, ts), self.image_at(pid, req) if req else None, name,
                        self.image_at(pid, prov) if prov else None, "eager", found, lat)
            if t == "R":
                ts, pid, _tid, dur = (int(x) for x in f[1:5])
                self.relocations.append({"ts_ns": ts, "pid": pid, "duration_ns": dur,
                                         "path": self.image_at(pid, int(f[5], 16))})
            elif t == "F":
                ts, parent, child = int(f[1]), int(f[2]), int(f[3])
                if child == parent:  # DTrace for Linux: a new thread (pr_pid is its process's), no fork
                    return None
                c = self.proc(child)
                c.ppid, c.start_ns = parent, ts
                self.proc(parent)
            elif t == "E":
                ts, pid, ppid = int(f[1]), int(f[2]), int(f[3])
                p = self.proc(pid)
                p.ppid = p.ppid if p.ppid is not None else ppid
                p.start_ns = p.start_ns if p.start_ns is not None else ts
                p.exes.append((ts, "\t".join(f[4:])))
                p.exes.sort()
            elif t == "Q":
                self.proc(int(f[2])).code = int(f[3])
            elif t == "X":
                p = self.proc(int(f[2]))
                p.end_ns, p.reason = int(f[1]), int(f[4])
                p.ppid = p.ppid if p.ppid is not None else int(f[3])
            elif t in ("READY", "STOP", "RESUMED", "O", "T", ""):
                pass
            else:
                self.malformed += 1
        except (ValueError, IndexError):
            self.malformed += 1
        return None

    def exit_code(self, p: Proc) -> int | None:
        """As a shell says it; None for a death by a signal (the records do not name it) or unknown."""
        if p.reason == EXITED and p.code is not None:
            return p.code & 0xFF
        return None

    def processes_rows(self, root: int, argv: list[str], exit_code: int, start_ns: int, end_ns: int,
                       own_pid: int, root_env: list[str] | None = None) -> list[dict]:
        """One row per program image of every process of the tree (root first)."""
        rows = []
        order = sorted(self.procs.values(), key=lambda p: (p.pid != root, p.start_ns or 0, p.pid))
        for p in order:
            if p.pid != root and p.ppid is None:
                continue  # a parent seen only as a parent: outside the tree
            images = [path for _t, path in p.exes] or [self.exe(p.pid, p.start_ns or 0)]
            for i, exe in enumerate(images):
                last = i == len(images) - 1
                is_root = p.pid == root
                env, full = self._environment(p, i) if p.exes else (self._inherited(p), None)
                if is_root and i == 0 and env is None:
                    env = root_env  # exec'd by gotrace with it
                rows.append({
                    "pid": p.pid, "ppid": own_pid if is_root else p.ppid, "exe": full or exe,
                    "argv": list(argv) if is_root and i == 0 else None,
                    "start_ns": (start_ns if is_root else p.start_ns) if i == 0 else p.exes[i][0],
                    "end_ns": (end_ns if is_root else p.end_ns) if last else None,
                    "exit_code": (exit_code if is_root else self.exit_code(p)) if last else None,
                    "loader_env": env,
                })
        return rows

    def _inherited(self, p: Proc) -> list[str] | None:
        """A child that never exec'd runs its parent's image as it was at the fork: its environment."""
        parent = self.procs.get(p.ppid) if p.ppid is not None else None
        if parent is None or p.start_ns is None:
            return None
        at = [i for i, (t, _path) in enumerate(parent.exes) if t <= p.start_ns]
        return self._environment(parent, at[-1])[0] if at else None

    def _environment(self, p: Proc, i: int) -> tuple[list[str] | None, str | None]:
        """The loader variables (and absolute path) read for the i-th image of ``p``: keyed by its E's
        time on Linux; on macOS by execstop.d's STOP, the first at or after that E and before the next."""
        ts = p.exes[i][0]
        if (p.pid, ts) in self.environments:
            return self.environments[(p.pid, ts)]
        until = p.exes[i + 1][0] if i + 1 < len(p.exes) else None
        stops = sorted(t for (pid, t) in self.environments if pid == p.pid and t >= ts and (until is None or t < until))
        return self.environments[(p.pid, stops[0])] if stops else (None, None)
