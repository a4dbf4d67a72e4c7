"""The traced command's process tree on macOS, without root: `ps` read a few times a second.

dyld's lines give pids but no parents, and a process that dropped its DYLD_*
variables (SIP) writes nothing at all: only a process listing shows it ran.
macOS gives an unprivileged process no event for a child's fork or exec
(kqueue's NOTE_TRACK is gone), so the tree is sampled: ``ps -A -o
pid=,ppid=,flags=,comm=`` every POLL_S. ``flags`` is the kernel's p_flag, in
hex, which carries P_TRANSLATED (0x20000, xnu bsd/sys/proc.h): the process
runs under Rosetta. A process shorter than a poll can be missed; the session
says how the tree was seen. Each new image a listing shows has its program and
environment read at once (KERN_PROCARGS2: the exec path and the strings exec
copied, in one read): its loader_env, null for an image missed. Not run on macOS: tested on `ps` output in its
documented form.
"""
from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field

from ... import procfs
from ...session.schema import loader_env

POLL_S = 0.25
P_TRANSLATED = 0x20000
PS = ["ps", "-A", "-o", "pid=,ppid=,flags=,comm="]


@dataclass
class Seen:
    pid: int
    ppid: int
    exes: list = field(default_factory=list)  # what it ran, in the order seen (exec keeps the pid)
    translated: bool = False
    # (program, loader variables) of each image read (KERN_PROCARGS2) when a listing first showed it
    environments: list = field(default_factory=list)


def image_environment(seen: Seen | None, exe: str | None) -> list[str] | None:
    """The loader variables read for the image of ``seen``'s pid that ran ``exe`` (the same file),
    when exactly one read was of it; None otherwise."""
    if seen is None or exe is None:
        return None
    mine = [env for path, env in seen.environments if os.path.realpath(path) == os.path.realpath(exe)]
    return mine[0] if len(mine) == 1 else None


def parse_ps(text: str) -> list[tuple[int, int, int, str]]:
    """(pid, ppid, flags, command path) per line of ``ps -o pid=,ppid=,flags=,comm=``."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4:
            continue
        try:
            out.append((int(parts[0]), int(parts[1]), int(parts[2], 16), parts[3].strip()))
        except ValueError:
            continue
    return out


class TreeWatch(threading.Thread):
    """Samples the descendants of ``root`` until stopped."""

    def __init__(self, root: int, run=subprocess.run, environment=None):
        super().__init__(name="gotrace-ps", daemon=True)
        self._environment = environment or procfs.exec_environment
        self.root = root
        self.seen: dict[int, Seen] = {}
        self.samples = 0
        self.error: str | None = None
        self._run = run
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._halt.wait(POLL_S) or self.error:
                self.sample()
                return

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()

    def sample(self) -> None:
        try:
            out = self._run(PS, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as exc:
            self.error = f"ps failed: {exc}"
            return
        self.take(parse_ps(out.stdout))

    def take(self, rows: list[tuple[int, int, int, str]]) -> None:
        """One listing: the root and every process whose parent is known to be in the tree."""
        self.samples += 1
        parent = {pid: ppid for pid, ppid, _f, _c in rows}
        for pid, ppid, flags, comm in rows:
            if pid not in self.seen and not self._descends(pid, parent):
                continue
            s = self.seen.get(pid)
            if s is not None and ppid not in (s.ppid, 1) and not self._descends(ppid, parent):
                continue  # the pid was reused by a process outside the tree
            if s is None:
                s = self.seen[pid] = Seen(pid, ppid)
            if not s.exes or s.exes[-1] != comm:
                s.exes.append(comm)
                got = self._environment(pid)  # the image and its environment, read as one
                if got is not None:
                    s.environments.append((got[0], loader_env(got[1])))
            s.translated = s.translated or bool(flags & P_TRANSLATED)

    def _descends(self, pid: int, parent: dict[int, int]) -> bool:
        hops = 0
        while pid and hops < 64:
            if pid == self.root or pid in self.seen:
                return True
            pid = parent.get(pid, 0)
            hops += 1
        return False
