"""Builds the processes table from fork/exec/exit observations.

Shared by every backend that sees the process tree (bpftrace today). One row per program image
a pid ran: a fork followed by exec is one row (the child's program); a second
exec by the same pid closes the row and opens another. Clones that never exec
and never exit as a thread-group leader were threads, and are dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class _Image:
    pid: int
    ppid: int | None
    exe: str | None
    argv: list[str] | None
    start_ns: int | None
    end_ns: int | None = None
    exit_code: int | None = None
    execed: bool = False
    exited: bool = False


@dataclass
class ProcessTree:
    # told of each exec as soon as it is decoded (object_keeper: keep the program's file while it is there)
    on_exec: Callable[[int, str], None] | None = None
    rows: list[_Image] = field(default_factory=list)
    current: dict[int, _Image] = field(default_factory=dict)
    pending_argv: dict[int, list[str]] = field(default_factory=dict)
    execed_pids: set = field(default_factory=set)  # what a progress line should count
    images: dict[tuple[int, int], str | None] = field(default_factory=dict)  # (pid, gen) -> exe

    # gen: the exec's ts_ns, 0 before a pid's first exec (a forked child runs its
    # parent's program). Late records name their image by it: exe_at(pid, gen).

    def root(self, pid: int, ppid: int, argv: list[str], ts_ns: int | None) -> None:
        img = _Image(pid, ppid, None, list(argv), ts_ns)
        self.rows.append(img)
        self.current[pid] = img

    def fork(self, ts_ns: int, ppid: int, child: int) -> None:
        parent = self.current.get(ppid)
        img = _Image(child, ppid, parent.exe if parent else None,
                     parent.argv if parent else None, ts_ns)
        self.rows.append(img)
        self.current[child] = img
        self.images[(child, 0)] = img.exe

    def argv(self, pid: int, index: int, arg: str) -> None:
        if index == 0:
            self.pending_argv[pid] = []
        self.pending_argv.setdefault(pid, []).append(arg)

    def exec(self, ts_ns: int, pid: int, exe: str) -> None:
        img = self.current.get(pid)
        argv = self.pending_argv.pop(pid, None)
        if img is None or img.execed:
            if img is not None:
                img.end_ns = ts_ns
            img = _Image(pid, img.ppid if img else None, None, None, ts_ns)
            self.rows.append(img)
            self.current[pid] = img
        img.exe, img.execed = exe, True
        self.images[(pid, ts_ns)] = exe
        self.execed_pids.add(pid)
        img.argv = argv if argv is not None else img.argv
        if self.on_exec is not None:
            self.on_exec(pid, exe)

    def exit(self, ts_ns: int, pid: int, exit_code: int | None) -> None:
        img = self.current.get(pid)
        if img is None:
            return
        img.end_ns, img.exit_code, img.exited = ts_ns, exit_code, True

    def exe_of(self, pid: int) -> str | None:
        img = self.current.get(pid)
        return img.exe if img else None

    def exe_at(self, pid: int, gen: int) -> str | None:
        """The program pid ran in image ``gen``; its latest if that is unknown."""
        if (pid, gen) in self.images:
            return self.images[(pid, gen)]
        return self.exe_of(pid)

    def processes_rows(self, keep_pids: set[int] | None = None) -> list[dict]:
        """The processes table: images that exec'd or exited, the root, and ``keep_pids``."""
        keep_pids = keep_pids or set()
        return [{"pid": r.pid, "ppid": r.ppid, "exe": r.exe, "argv": r.argv, "start_ns": r.start_ns,
                 "end_ns": r.end_ns, "exit_code": r.exit_code}
                for r in self.rows if r.execed or r.exited or r.pid in keep_pids or r is self.rows[0]]
