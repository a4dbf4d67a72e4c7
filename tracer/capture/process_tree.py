"""Builds the processes table from fork/exec/exit observations.

Shared by every backend that sees the process tree (bpf, bpftrace). One row per program image
a pid ran: a fork followed by exec is one row (the child's program); a second
exec by the same pid closes the row and opens another. Clones that never exec
and never exit as a thread-group leader were threads, and are dropped.

What an image ran with — its argv and the dynamic linker's variables of its environment — is
seen once per execve, apart from the exec itself: bindsnoop.bt reads them as the execve starts
(S, then A and V records), from another probe than the exec's (E), possibly on another CPU whose
buffer is read later; gotrace's BPF program reads them from the new image at the exec. So they
are kept per execve with the time it started, and each exec takes the last one that began before
it (an execve that failed, as execvp's tries along PATH do, is followed by another). A forked
child that never execs runs its parent's image: its argv and environment are the parent's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from ..binary.facts import script_line
from ..session.schema import loader_variable

CHUNK = 127  # bytes of an environment entry per V record (bindsnoop.bt's strings: BPFTRACE_STRLEN - 1)


@dataclass
class _Execve:
    """One execve as a tracer saw it begin: its argv and the loader variables of its environment."""

    ts: int | None  # when it began (S record); None: an older tracer's records, without S
    argv: list[str] = field(default_factory=list)
    env: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)  # env index -> (chunk, bytes)
    env_unseen: bool = False  # the tracer could not read the whole environment

    def loader_env(self) -> list[str] | None:
        """The loader variables in environment order; None when one of them, or the
        environment, was not read whole."""
        if self.env_unseen:
            return None
        out = []
        for index in sorted(self.env):
            chunks = sorted(self.env[index])
            value = b""
            for n, (k, text) in enumerate(chunks):
                if k != n:  # a piece missing
                    return None
                value += text
                if len(text) < CHUNK:
                    break
            else:
                return None  # every piece full: longer than the tracer reads
            entry = value.decode("utf-8", "replace")
            if loader_variable(entry):
                out.append(entry)
        return out


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
    loader_env: list[str] | None = None
    forked_from: "_Image | None" = None  # a child that has not exec'd runs this image
    execve: _Execve | None = None  # what its exec ran with, once known
    filename: str | None = None  # the exec's path, absolute (a script's, not its interpreter's)
    given: str | None = None  # that path as the exec was given it
    exec_ns: int | None = None  # its exec's time (a forked child's row starts at the fork)
    prev_exec_ns: int | None = None  # the same pid's exec before this one


@dataclass
class ProcessTree:
    # told of each exec as soon as it is decoded (object_keeper: keep the program's file while it is there)
    on_exec: Callable[[int, str], None] | None = None
    rows: list[_Image] = field(default_factory=list)
    current: dict[int, _Image] = field(default_factory=dict)
    execves: dict[int, list[_Execve]] = field(default_factory=dict)  # pid -> execves seen begin
    cwds: dict[tuple[int, int], str] = field(default_factory=dict)  # (pid, exec ts) -> cwd, for relative paths
    execed_pids: set = field(default_factory=set)  # what a progress line should count
    images: dict[tuple[int, int], str | None] = field(default_factory=dict)  # (pid, gen) -> exe
    # True when argv is read from the new image (the kernel's, a script's interpreter first: gotrace's
    # BPF program); False when it is execve's argument (bindsnoop.bt), rewritten here for a script
    argv_after_exec: bool = False

    # gen: the exec's ts_ns, 0 before a pid's first exec (a forked child runs its
    # parent's program). Late records name their image by it: exe_at(pid, gen).

    def root(self, pid: int, ppid: int, argv: list[str], ts_ns: int | None) -> None:
        img = _Image(pid, ppid, None, list(argv), ts_ns)
        self.rows.append(img)
        self.current[pid] = img

    def fork(self, ts_ns: int, ppid: int, child: int) -> None:
        parent = self.current.get(ppid)
        img = _Image(child, ppid, parent.exe if parent else None, None, ts_ns, forked_from=parent)
        self.rows.append(img)
        self.current[child] = img
        self.images[(child, 0)] = img.exe

    # ---- what an execve ran with ----------------------------------------
    def execve_start(self, ts_ns: int, pid: int) -> None:
        """An execve began (S): its A and V records follow."""
        self.execves.setdefault(pid, []).append(_Execve(ts_ns))

    def _open(self, pid: int, index: int) -> _Execve:
        runs = self.execves.setdefault(pid, [])
        if not runs or (runs[-1].ts is None and index == 0 and runs[-1].argv):
            runs.append(_Execve(None))  # records without S: each argv[0] begins an execve
        return runs[-1]

    def argv(self, pid: int, index: int, arg: str) -> None:
        self._open(pid, index).argv.append(arg)

    def env_piece(self, pid: int, index: int, chunk: int, text: bytes) -> None:
        """One piece of an environment entry that may be a loader variable (V); index -1: the
        environment could not be read whole."""
        run = self._open(pid, 1)
        if index < 0:
            run.env_unseen = True
        else:
            run.env.setdefault(index, []).append((chunk, text))

    def cwd(self, ts_ns: int, pid: int, path: str) -> None:
        """The working directory of the exec at ts_ns (C): a relative path is resolved against it."""
        self.cwds[(pid, ts_ns)] = path

    def exec(self, ts_ns: int, pid: int, exe: str, name=None) -> None:
        """``exe``: the path the exec was given; ``name(path)``: the program the image is named by
        (a script's interpreter), from the absolute path."""
        img = self.current.get(pid)
        prev = None
        if img is None or img.execed:
            if img is not None:
                img.end_ns = ts_ns
                prev = img.exec_ns
            img = _Image(pid, img.ppid if img else None, None, None, ts_ns)
            self.rows.append(img)
            self.current[pid] = img
        filename = self._absolute(pid, ts_ns, exe)
        img.exe = (name(filename) if name is not None and filename.startswith("/") else None) or filename
        img.filename, img.given, img.execed, img.exec_ns, img.prev_exec_ns = filename, exe, True, ts_ns, prev
        img.forked_from = None
        self.images[(pid, ts_ns)] = img.exe
        self.execed_pids.add(pid)
        runs = self.execves.get(pid)
        if runs and runs[-1].ts is None:  # an older tracer's records: the argv pending now is this exec's
            img.execve = runs[-1]
            self.execves[pid] = [r for r in runs if r.ts is not None]
        if self.on_exec is not None:
            self.on_exec(pid, img.exe)

    def _absolute(self, pid: int, ts_ns: int, path: str) -> str:
        """The exec's path made absolute with the cwd the tracer read for it (the kernel
        resolves a relative one there); as given when there is none."""
        if path.startswith("/"):
            return path
        cwd = self.cwds.pop((pid, ts_ns), None)
        if cwd is None or not cwd.startswith("/"):
            return path
        rest = path
        while rest.startswith("./"):
            rest = rest[2:].lstrip("/")
        return os.path.join(cwd, rest) if rest else cwd

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

    # ---- the table ----------------------------------------------------------
    def _execve_of(self, img: _Image) -> _Execve | None:
        """The last execve of the pid that began before this exec and after the one before."""
        if img.execve is not None:
            return img.execve
        best = None
        for run in self.execves.get(img.pid, ()):
            if run.ts is None or img.exec_ns is None or run.ts > img.exec_ns:
                continue
            if img.prev_exec_ns is not None and run.ts <= img.prev_exec_ns:
                continue
            if best is None or run.ts >= best.ts:
                best = run
        return best

    def _resolve(self, img: _Image) -> None:
        if img.forked_from is not None:  # created before it, so already resolved
            img.argv, img.loader_env = img.forked_from.argv, img.forked_from.loader_env
            return
        if not img.execed:
            return
        run = self._execve_of(img)
        if run is None:
            return  # unseen: the root keeps the argv gotrace gave it, the environment stays unknown
        if self.rows and img is self.rows[0] and img.argv and not self.argv_after_exec:
            img.argv = self._kernel_argv(img, img.argv)  # gotrace's own, whole: bindsnoop.bt cuts strings
        elif run.argv:
            img.argv = self._kernel_argv(img, run.argv)
        img.loader_env = run.loader_env()

    def _kernel_argv(self, img: _Image, argv: list[str]) -> list[str]:
        """argv as the program image has it: for a ``#!`` script given to execve, the kernel
        passes the interpreter, its optional argument and the script's path (as execve got it)
        before the arguments, and drops the script's argv[0] (binfmt_script.c)."""
        if self.argv_after_exec or img.filename is None or img.exe == img.filename \
                or not img.filename.startswith("/"):
            return argv
        line = script_line(img.filename)
        if line is None:
            return argv
        interp, arg = line
        return [interp, *([arg] if arg else []), img.given or img.filename, *argv[1:]]

    def processes_rows(self, keep_pids: set[int] | None = None) -> list[dict]:
        """The processes table: images that exec'd or exited, the root, and ``keep_pids``."""
        keep_pids = keep_pids or set()
        for img in self.rows:
            self._resolve(img)
        return [{"pid": r.pid, "ppid": r.ppid, "exe": r.exe, "argv": r.argv, "start_ns": r.start_ns,
                 "end_ns": r.end_ns, "exit_code": r.exit_code, "loader_env": r.loader_env}
                for r in self.rows if r.execed or r.exited or r.pid in keep_pids or r is self.rows[0]]
