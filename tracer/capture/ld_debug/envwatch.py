"""What each program image was exec'd with, for the ld-debug backend: the dynamic linker's variables
of its environment, its executable and working directory.

LD_DEBUG prints none of it, and the backend runs without root (no BPF to read it at the exec), so
it is read from /proc while the image runs, by tracer/csrc/envwatch.c: glibc's ld.so writes its
ld.<pid> log from its start, before it loads a library; inotify says so at once, and a new image
(a new stack start in /proc/PID/stat) has /proc/PID/environ, exe and cwd read then — in C: a
Python thread may wait 5 ms for the interpreter's lock, and many processes are gone by then. A
read counts only if the process did not exec during it (exe and stack start the same after it),
and it is given to the image of that pid whose program is that exe: ld.so's account names each
image's program, and an exe that two images of a pid share is matched only when every one of
them was read. What is not read (a process gone first, a compiler missing) keeps loader_env null,
counted in the session.
"""
from __future__ import annotations

import os
import subprocess
import threading

from ...errors import GotraceError

UNESCAPE = {"t": "\t", "n": "\n", "\\": "\\"}


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(UNESCAPE.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_line(line: str) -> tuple[int, tuple[list[str], str, str | None] | None] | None:
    """envwatch's ``PID STATE STACK EXE CWD [NAME=VALUE...]`` -> (pid, (loader_env, exe, cwd) or None)."""
    f = line.rstrip("\n").split("\t")
    if len(f) < 5 or not f[0].isdigit():
        return None
    if f[1] != "ok":
        return int(f[0]), None
    return int(f[0]), ([_unescape(e) for e in f[5:]], _unescape(f[3]), _unescape(f[4]) or None)


def match_images(exes: list[str | None], reads: list) -> list[tuple[str | None, list[str] | None]]:
    """(exe, loader_env) for each image of a pid (``exes``: ld.so's names for their programs, in
    order) from envwatch's ``reads`` of that pid, in order: an image gets the read of its own
    program (its name made absolute with the read's cwd where relative, the read's exe the same
    file); a program two images share, only when each of them was read."""
    def same(exe, read) -> str | None:
        if exe is None or read is None:
            return None
        _env, real, cwd = read
        full = exe if os.path.isabs(exe) or cwd is None else os.path.join(cwd, exe)
        return full if os.path.realpath(full) == os.path.realpath(real) else None

    out = [(exe, None) for exe in exes]
    ok = [r for r in reads if r is not None]
    for i, exe in enumerate(exes):
        mine = [r for r in ok if same(exe, r)]
        twins = [j for j, other in enumerate(exes) if other is not None and mine and same(other, mine[0])]
        if not mine or len(mine) != len(twins):
            continue
        read = mine[twins.index(i)]
        full = same(exe, read)
        out[i] = (full if os.sep in exe else exe, read[0])
    return out


class EnvWatch:
    """envwatch running on the log directory; ``seen[pid]``: for each image of the pid it read, in
    order, (loader_env, exe, cwd), or None when the read is not sure. ``problem``: why nothing is
    read at all, or None."""

    def __init__(self, logdir: str):
        self.logdir = logdir
        self.seen: dict[int, list] = {}
        self.problem: str | None = None
        self._proc = None
        self._thread = None

    def start(self) -> None:
        from ...csrc.build import compile_cached

        try:
            prog = compile_cached("envwatch", ["envwatch.c"], "cc", ["-O2"], what="the environment reader")
            self._proc = subprocess.Popen([str(prog), self.logdir], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, errors="replace")
        except (GotraceError, OSError) as exc:
            self.problem = getattr(exc, "message", None) or str(exc)
            return
        if self._proc.stdout.readline().strip() != "READY":  # watching before the command starts
            self.problem = (self._proc.stderr.read().strip() or "envwatch did not start")[:200]
            self._proc.wait()
            self._proc = None
            return
        self._thread = threading.Thread(target=self._read, name="gotrace-ld-debug-env", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            got = parse_line(line)
            if got is not None:
                self.seen.setdefault(got[0], []).append(got[1])

    def stop(self) -> None:
        if self._proc is None:
            return
        try:
            self._proc.stdin.close()  # envwatch reads what inotify still holds, then ends
        except OSError:
            pass
        self._thread.join(10)
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
