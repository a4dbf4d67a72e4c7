"""The `dtrace` backend: dscripts/*.d under DTrace's pid provider, one dtrace per process of the tree.

DTrace's pid provider instruments one process, so the tree is followed by
proctree.d (proc:::, progenyof) and each process gets a dtrace of its own:

* macOS (not run on macOS): execstop.d stops every new program at exec, before
  dyld runs in it; gotrace attaches dyldbindsnoop.d (every bind target dyld4
  looks up, each image's fixup time) and dlsymsnoop.d to it, and pidresume.d
  resumes it once their probes are on. DYLD_PRINT_LIBRARIES and _SEGMENTS run
  alongside so images, which the probes know by header address, get their paths.
  Rosetta-translated processes are refused by DTrace and said so.
* Linux, with DTrace for Linux: what DTrace can see there is libc's exported
  dlsym and dlopen (ld.so's own lookup functions are not probeable: Debian's
  ld.so is stripped) and the tree. DTrace for Linux has no stop(): the command
  itself is attached before it starts (its pid probes are uprobes on libc's file
  and survive its exec), every descendant when proctree.d reports its fork,
  ~0.4 s later. The session lists who was attached late, and what that misses.
"""
from __future__ import annotations

import os
import platform
import queue
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ... import procfs
from ...errors import BackendUnavailable
from ...session.schema import events_table
from ..backend import Availability, CaptureRequest, CaptureResult
from ..background import preload
from ..child import GatedChild
from ..dscripts import path as script
from .decode import DtraceDecoder
from .fleet import Fleet

DTRACE_ENV = "GOTRACE_DTRACE"
FLUSH_ROWS, FLUSH_S = 4096, 0.2


def dtrace_path() -> str | None:
    """$GOTRACE_DTRACE, else `dtrace` on PATH."""
    given = os.environ.get(DTRACE_ENV)
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("dtrace")


def sip_restricts_dtrace(csrutil_status: str) -> bool:
    """Whether `csrutil status` says DTrace is restricted: SIP on, without the
    "DTrace Restrictions: disabled" of `csrutil enable --without dtrace`."""
    text = csrutil_status.lower()
    if "status: disabled" in text:
        return False
    return "dtrace restrictions: disabled" not in text


@dataclass
class Plan:
    """Which scripts run how, on this OS."""

    dtrace: str
    darwin: bool
    arm64: bool = True

    def tree(self, pid: int) -> list[str]:
        extra = ["-w", "-s", script("execstop.d")] if self.darwin else []
        return [self.dtrace, "-q", "-Z", "-s", script("proctree.d"), *extra, "-p", str(pid)]

    def process(self, pid: int) -> list[str]:
        if self.darwin:
            return [self.dtrace, "-q", "-Z", "-w", "-s", script("dyldbindsnoop.d"), "-s", script("dlsymsnoop.d"),
                    "-s", script("pidresume.d"), "-p", str(pid), "1" if self.arm64 else "0"]
        return [self.dtrace, "-q", "-Z", "-s", script("dlsymsnoop.d"), "-p", str(pid)]

    @property
    def attach_on(self) -> str:
        """The record after which a process gets its own dtrace."""
        return "STOP" if self.darwin else "F"


class DtraceBackend:
    name = "dtrace"

    def probe(self) -> Availability:
        darwin = platform.system() == "Darwin"
        other = "dyld-print" if darwin else "ld-debug or bpftrace"
        exe = dtrace_path()
        if exe is None:
            if os.environ.get(DTRACE_ENV):
                return Availability(False, f"{DTRACE_ENV}={os.environ[DTRACE_ENV]} is not an executable dtrace",
                                    "point it at one, or unset it")
            return Availability(False, "no dtrace on PATH", "macOS ships one (/usr/sbin/dtrace); on Linux install "
                                f"DTrace for Linux (dtrace-utils) or set {DTRACE_ENV}; or use --backend {other}")
        if os.geteuid() != 0:
            return Availability(False, "DTrace needs root", f"run gotrace with sudo, or use --backend {other}")
        if darwin:  # not run on macOS
            try:
                status = subprocess.run(["csrutil", "status"], capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                status = ""
            if status and sip_restricts_dtrace(status):
                return Availability(False, "System Integrity Protection restricts DTrace (csrutil status)",
                                    "in Recovery run `csrutil enable --without dtrace`, or use --backend dyld-print")
        return Availability(True, "DTrace's pid provider, one dtrace per process")

    def capture(self, request: CaptureRequest) -> CaptureResult:
        darwin = platform.system() == "Darwin"
        plan = Plan(dtrace_path() or "dtrace", darwin, platform.machine() == "arm64")
        env = dict(request.env)
        dyld = None
        if darwin:  # images by header address: named through dyld's own account (not run on macOS)
            from ..dyld_print.backend import dyld_environment
            import tempfile

            fd, dyld = tempfile.mkstemp(prefix="gotrace-dyld-", suffix=".log")
            os.close(fd)
            env.update({k: v for k, v in dyld_environment(dyld).items() if k != "DYLD_PRINT_BINDINGS"
                        and k != "DYLD_PRINT_APIS"})
        if not darwin:
            from ..bpftrace.launch import wait_for_bindsnoop_to_go

            wait_for_bindsnoop_to_go("keep DTrace from enabling its own")
        names = Names(darwin)
        decoder = DtraceDecoder(names.name_of, names.image_at)
        fleet = Fleet()
        child = GatedChild(request.argv, env, gate_exec=None if darwin else str(_gate()))
        child.start()
        run = _Run(plan, fleet, decoder, request, child.pid, names)
        fleet.on_line = run.on_line
        try:
            # Linux has no stop(): the command's own probes go on while it waits at the gate (in
            # csrc/execgate.c; they are uprobes on libc's file and outlive the exec), and first: a
            # second dtrace could not grab the process while the tree's holds it ("not a
            # dynamically-linked executable")
            if not darwin:
                run.attached[child.pid] = None
                self._start(fleet, plan.process(child.pid), str(child.pid))
                # the mappings are the gated Python's until the exec: read them at the first lookup
            self._start(fleet, plan.tree(child.pid), "tree")
        except BaseException:
            child.abort()
            fleet.stop(0)
            raise
        run.start()
        try:
            child.release()
            preload()
            exit_code = child.wait()
        finally:
            run.finish()
        if dyld:
            names.read_dyld_log(dyld)
        decoder_rows = run.drain_rest()
        if decoder_rows:
            request.sink(_table(decoder_rows))
        processes = decoder.processes_rows(child.pid, request.argv, exit_code, child.start_ns, child.end_ns,
                                           os.getpid())
        return CaptureResult(
            exit_code=exit_code, interrupted=child.interrupted, processes=processes, images=None,
            relocations=decoder.relocations, malformed_records=decoder.malformed,
            meta={"ts_source": "DTrace's timestamp (CLOCK_MONOTONIC on Linux)",
                  "latency_method": {"method": "DTrace pid provider, entry to return: dlsym and dlopen"
                                     + (", dyld4's resolveSymbol per bind target" if darwin else ""),
                                     "includes": "the probes' own cost (a trap at entry and at return)"},
                  "dtrace": {"path": plan.dtrace, "attached": len(run.attached), "attached_late": run.late(),
                             "not_attached": run.not_attached, "stderr": run.stderr_lines()},
                  "limits": (["Rosetta-translated processes (DTrace refuses them)", "no lazy bindings (dyld4 "
                              "binds at load)", "processes SIP restricts"] if darwin else
                             ["only dlsym and dlopen: ld.so's own lookups are not probeable (Debian's ld.so is "
                              "stripped)", "descendants are attached after they start (no stop() in DTrace for "
                              "Linux): their first calls are missed", "no eager or lazy bindings"])})


    @staticmethod
    def _start(fleet: Fleet, argv: list[str], label: str) -> None:
        why = fleet.wait_ready(fleet.start(argv, label))
        if why:
            raise BackendUnavailable(f"dtrace could not start: {why}")


def _gate():
    """csrc/execgate.c, built once per source version: the command waits for its dtrace in a
    process that maps libc alone (a forked gotrace maps liblldb, pyarrow ..., where a pid
    probe named by function alone can fail to go on: "Failed to enable probe", seen here)."""
    from ...csrc.build import compile_cached

    return compile_cached("execgate", ["execgate.c"], "cc", ["-O2"], what="the dtrace launch gate")


def _table(rows: list[tuple]):
    ts, pid, tid, exe, req, sym, prov, kind, ok, lat = zip(*rows)
    return events_table({"ts_ns": ts, "pid": pid, "tid": tid, "exe": exe, "requester": req, "symbol": sym,
                         "provider": prov, "kind": kind, "resolved": ok, "latency_ns": lat}, "dtrace")


class Names:
    """Addresses to paths: Linux from /proc/PID/maps (read while the process lives),
    macOS from the images dyld's DYLD_PRINT_SEGMENTS placed (read at the end)."""

    def __init__(self, darwin: bool):
        self.darwin = darwin
        self.ranges: dict[int, list] = {}
        self.headers: dict[tuple[int, int], str] = {}
        self.parent: dict[int, int] = {}  # a forked child shares its parent's mappings until it execs

    def snapshot(self, pid: int) -> None:
        """Read a process's mappings now (its probes just came on): it may be gone when its records are read."""
        if not self.darwin:
            self.ranges[pid] = procfs.file_ranges(pid) or self.ranges.get(pid, [])

    def name_of(self, pid: int, addr: int) -> str | None:
        if self.darwin:
            return None  # not named while running; B records carry headers (image_at)
        for _ in range(2):
            for lo, hi, path in self.ranges.get(pid) or self.ranges.get(self.parent.get(pid), ()):
                if lo <= addr < hi:
                    return path
            fresh = procfs.file_ranges(pid)  # a dlopen since the last read, or the first look
            if not fresh or fresh == self.ranges.get(pid):
                return None
            self.ranges[pid] = fresh
        return None

    def image_at(self, pid: int, header: int) -> str | None:
        return self.headers.get((pid, header))

    def read_dyld_log(self, logfile: str) -> None:  # not run on macOS
        from ..dyld_print.log import DyldLog

        log = DyldLog()
        try:
            with open(logfile, "rb") as fh:
                log.feed(fh.read(), None)
            log.close(None)
        finally:
            os.unlink(logfile)
        for row in log.images():
            self.headers[(row["pid"], row["load_base"])] = row["path"]


@dataclass
class _Run:
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
                    self._flush(force=False)
                    continue
                self._take(line)
            self._flush(force=True)
        except BaseException as exc:
            self.error = exc

    def _take(self, line: str) -> None:
        kind = line.split("\t", 1)[0]
        if self.plan.darwin and kind in ("B", "R"):
            self.deferred.append(line)
            return
        row = self.decoder.feed(line)
        if row is not None:
            self._rows.append(row)
            self._flush(force=False)

    def on_line(self, label: str, line: str) -> None:
        """Each line as its dtrace's reader thread reads it: a new process gets its dtrace now."""
        kind = line.split("\t", 1)[0]
        if kind == "F":
            f = line.split("\t")
            self.names.parent[int(f[3])] = int(f[2])
        if kind == self.plan.attach_on and not self._closing.is_set():
            pid = int(line.split("\t")[3 if kind == "F" else 2])
            with self._lock:
                if pid in self.attached or self._closing.is_set():
                    return
                self.attached[pid] = 0
                self._pool.submit(self._attach, pid)

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
            self.request.sink(_table(rows))

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
