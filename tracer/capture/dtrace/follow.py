"""Following the tree once the command runs: records decoded as they come, a dtrace
attached to every new process, events handed to the sink."""
from __future__ import annotations

import collections
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import os

from ... import procfs
from ...binary.facts import script_interpreter
from ...session.schema import loader_env
from ...session.schema import events_table
from ..backend import CaptureRequest
from .decode import DtraceDecoder
from .fleet import Fleet
from .names import Names
from .plan import Plan

FLUSH_ROWS, FLUSH_S = 4096, 0.2
# A lookup record is held until the tree's dtrace (its own buffers, switched apart from the process's)
# has printed a record this much later than it — its heartbeat comes every 50 ms — so the exec or fork
# that says which program made it is read first; or until it has waited HOLD_S (a tree dtrace gone quiet)
TREE_PAST_NS, HOLD_S = 30_000_000, 2.0


def _runs_script(path: str, exe: str) -> bool:
    """Whether ``exe`` is the interpreter of the #! script at ``path`` (what the kernel runs for it)."""
    interp = script_interpreter(path)
    return interp is not None and os.path.realpath(interp) == os.path.realpath(exe)


def events_of(rows: list[tuple]):
    """Decoded event tuples as the session's events table."""
    ts, pid, tid, exe, req, sym, prov, kind, ok, lat = zip(*rows)
    return events_table({"ts_ns": ts, "pid": pid, "tid": tid, "exe": exe, "requester": req, "symbol": sym,
                         "provider": prov, "kind": kind, "resolved": ok, "latency_ns": lat}, "dtrace")


@dataclass
class Follow:
    """The capture's moving parts once the command runs: records decoded as they
    come, a dtrace attached to every new process, events handed to the sink."""

    plan: Plan
    fleet: Fleet
    decoder: DtraceDecoder
    request: CaptureRequest
    root: int
    names: Names
    attached: dict = field(default_factory=dict)  # pid -> monotonic ns its probes came on (None: before it ran)
    not_attached: list = field(default_factory=list)
    deferred: list = field(default_factory=list)  # macOS: B/R records, named once dyld's log is read

    def __post_init__(self):
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gotrace-dtrace-attach")
        self._halt = threading.Event()
        self._closing = threading.Event()  # the command has exited: nothing new is attached
        self._thread = threading.Thread(target=self._loop, name="gotrace-dtrace-decode", daemon=True)
        self._rows: list[tuple] = []
        self._held: collections.deque = collections.deque()  # (monotonic s, row): see TREE_PAST_NS
        self._tree_ts = 0  # the latest time the tree's dtrace has printed
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        # not at background priority: a fork it reads late is a process attached late
        try:
            while not (self._halt.is_set() and self.fleet.lines.empty()):
                try:
                    label, line = self.fleet.lines.get(timeout=0.1)
                except queue.Empty:
                    self._settle(force=False)
                    self._flush(force=False)
                    continue
                self._take(label, line)
            self._settle(force=True)
            self._flush(force=True)
        except BaseException as exc:
            self.error = exc

    def _take(self, label: str, line: str) -> None:
        kind = line.split("\t", 1)[0]
        if self.plan.darwin and kind in ("B", "R"):
            self.deferred.append(line)
            return
        row = self.decoder.feed(line)
        if label == "tree":  # every record of proctree.d but READY (a pid, far below any time) starts with its time
            try:
                self._tree_ts = max(self._tree_ts, int(line.split("\t", 2)[1]))
            except (IndexError, ValueError):
                pass
        if row is not None:
            self._held.append((time.monotonic(), row))
        self._settle(force=False)
        self._flush(force=False)

    def _settle(self, force: bool) -> None:
        """Move the held records the tree has caught up with into the rows to write, each named by the
        program its pid ran at its time as known now (DtraceDecoder.exe): the process's own dtrace may
        print a lookup before the tree's prints the exec that started that program."""
        now = time.monotonic()
        while self._held:
            since, row = self._held[0]
            if not (force or row[0] + TREE_PAST_NS <= self._tree_ts or now - since >= HOLD_S):
                break
            self._held.popleft()
            self._rows.append(row[:3] + (self.decoder.exe(row[1], row[0]),) + row[4:])

    def on_line(self, label: str, line: str) -> None:
        """Each line as its dtrace's reader thread reads it: a new process gets its dtrace now."""
        kind = line.split("\t", 1)[0]
        if kind == "F":
            f = line.split("\t")
            self.names.parent[int(f[3])] = int(f[2])
        if kind == ("STOP" if self.plan.darwin else "E"):
            self._environment(line)
        if kind == self.plan.attach_on and not self._closing.is_set():
            pid = int(line.split("\t")[3 if kind == "F" else 2])
            with self._lock:
                if pid in self.attached or self._closing.is_set():
                    return
                self.attached[pid] = 0
                self._pool.submit(self._attach, pid)

    def _environment(self, line: str) -> None:
        """What the image just exec'd holds: its loader variables (and, on Linux, its cwd for a relative
        path). macOS: at STOP, execstop.d holds the process at its exec, so the read (KERN_PROCARGS2) is
        that image's. Linux: at E, while it runs (DTrace for Linux has no stop(), and D cannot walk the
        environment: no loops): the read counts only when the process still runs the program exec'd and
        did not exec again during it (same exe, same stack start before and after); else it stays null."""
        f = line.rstrip("\n").split("\t")
        try:
            ts, pid = int(f[1]), int(f[2])
        except (IndexError, ValueError):
            return
        if self.plan.darwin:  # not run on macOS
            env = procfs.environ(pid)
            self.decoder.environments[(pid, ts)] = (None if env is None else loader_env(env), None)
            return
        before = procfs.image_identity(pid)
        env, cwd = procfs.environ(pid), procfs.cwd(pid)
        path = "\t".join(f[4:])
        full = path if os.path.isabs(path) or cwd is None else os.path.join(cwd, path)
        if env is None or before is None or before != procfs.image_identity(pid) \
                or os.path.realpath(full) != os.path.realpath(before[0]) and not _runs_script(full, before[0]):
            return
        self.decoder.environments[(pid, ts)] = (loader_env(env), full)

    def _attach(self, pid: int) -> None:
        exe = None
        try:
            exe = procfs.exe(pid) if not self.plan.darwin else None
        except OSError:
            pass
        if exe is None and not self.plan.darwin:
            with self._lock:
                self.attached.pop(pid, None)
                self.not_attached.append({"pid": pid, "reason": "exited before a dtrace could attach"})
            return
        if exe:
            self.decoder.exes_known.setdefault(pid, exe)
        t, why = self.fleet.attach(self.plan.process(pid), str(pid))
        with self._lock:
            if why:
                self.attached.pop(pid, None)
                reason = why
                if "translated" in why:
                    reason += " (Rosetta): use --backend dyld-print or lldb for it"
                self.not_attached.append({"pid": pid, "exe": exe, "reason": reason})
            else:
                self.attached[pid] = t.ready_ns
        if not why:
            self.names.snapshot(pid)

    def _flush(self, force: bool) -> None:
        if not self._rows:
            return
        if force or len(self._rows) >= FLUSH_ROWS or time.monotonic() - self._last_flush >= FLUSH_S:
            rows, self._rows = self._rows, []
            self._last_flush = time.monotonic()
            self.request.sink(events_of(rows))

    def finish(self) -> None:
        """The command has exited: no new attach; every dtrace ends; every record read."""
        with self._lock:
            self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.fleet.stop(grace_s=2.0)
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.error is not None:
            raise self.error

    def drain_rest(self) -> list[tuple]:
        """The records held back until dyld's log named the images (macOS)."""
        rows = []
        for line in self.deferred:
            row = self.decoder.feed(line)
            if row is not None:
                rows.append(row)
        return rows

    def late(self) -> list[dict]:
        """Processes whose probes came on after they started, and by how much."""
        out = []
        for pid, ready in self.attached.items():
            p = self.decoder.procs.get(pid)
            if ready and p is not None and p.start_ns:
                out.append({"pid": pid, "exe": self.decoder.exe(pid, ready),
                            "late_ms": round((ready - p.start_ns) / 1e6, 1)})
        return sorted(out, key=lambda r: r["pid"])

    def stderr_lines(self) -> list[str]:
        """What dtrace said besides records, once per kind (the per-process ones repeat)."""
        seen = []
        for t in self.fleet.tracers:
            for line in t.stderr:
                generic = " ".join(w if not w.isdigit() else "N" for w in line.split())
                if generic not in seen:
                    seen.append(generic)
        return seen[:20]
