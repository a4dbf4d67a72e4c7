"""The root backend: bpftrace uprobes on ld.so, following the whole process tree.

``dscripts/bindsnoop.bt`` does the probing (launch.py starts it, decode.py
reads its records, bpf_map.py its binding map); this module checks that it
can run, starts it with the child's pid, opens the child's gate once the
probes are attached, and streams the
script's records through :class:`BpftraceDecoder`: the rare ones from
bpftrace's output, the bindings straight from the script's BPF map, which
gotrace empties itself (``bpf_map``: bpftrace printing it cost ~8 us a record).
bpftrace runs in its own session so a terminal Ctrl-C reaches the traced
command, never the tracer: probes keep recording until the command has
exited; then per-CPU drain marks (see ``_stop``) prove every record has been
read, and bpftrace is told to detach its probes, which it finishes in the
background.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import deque

from .. import prelaunch
from .bpf_map import BpfMap
from .lines import LineReader, capture_result
from ..process_tree import ProcessTree
from .decode import BINDING_KEY_SIZE, BINDING_VALUE_SIZE, BpftraceDecoder
from .launch import STRLEN, bpftrace_env, start_gated
from ...errors import BackendUnavailable, TracerDidNotStart
from ... import procfs
from ..backend import Availability, CaptureRequest, CaptureResult, tracer_gone, uprobes_problem
from ..background import preload
from ..ldso import ldso_path, ldso_problem

TRACEFS = "/sys/kernel/tracing"
READY_TIMEOUT_S = 90
DRAIN_S = 0.1  # bindsnoop.bt's binding map is emptied (and decoded) this often
BINDING_MAP = "AT_b"  # bpftrace's name for the script's @b
DECODE_BYTES = 1 << 20  # decode once this much output has accumulated ...
DECODE_SECONDS = 0.1  # ... or this long after the last decode
READ_BATCH_BYTES = 1 << 16  # a read smaller than this ...
READ_PAUSE_S = 0.01  # ... is followed by a pause (the 1 MiB pipe absorbs it)
STDERR_NOISE = ("couldn't set RLIMIT_MEMLOCK", "Addrspace is not set")
LATENCY_METHOD = ("bpftrace nsecs from uprobe entry to uretprobe of _dl_lookup_symbol_x; "
                  "includes the probes' own trap cost")


def _tracefs_ready() -> bool:
    return os.path.isdir(os.path.join(TRACEFS, "events", "sched"))


def ensure_tracefs() -> str | None:
    """Mount tracefs if it is missing (root only); return a reason on failure."""
    if _tracefs_ready():
        return None
    try:
        subprocess.run(["mount", "-t", "tracefs", "tracefs", TRACEFS], check=True,
                       capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        pass
    if _tracefs_ready():
        return None
    return f"tracefs is not mounted at {TRACEFS}; run: mount -t tracefs tracefs {TRACEFS}"


class BpftraceBackend:
    name = "bpftrace"

    def __init__(self) -> None:
        self._probe: Availability | None = None

    def probe(self) -> Availability:
        if self._probe is None:
            self._probe = self._check()
        return self._probe

    def _check(self) -> Availability:
        if shutil.which("bpftrace") is None:
            return Availability(False, "bpftrace is not installed", "install it: apt-get install bpftrace")
        problem = uprobes_problem("bpftrace", "ld-debug")
        if problem is not None:
            return problem
        problem = ldso_problem(ldso_path(), "bpftrace")
        if problem is not None:
            return problem
        reason = ensure_tracefs()
        if reason:
            return Availability(False, reason)
        return Availability(True, "root, bpftrace and glibc debug symbols are present")

    def capture(self, request: CaptureRequest) -> CaptureResult:
        avail = self.probe()
        if not avail.ok:
            raise BackendUnavailable(f"bpftrace backend unavailable: {avail.explain()}")
        decoder = BpftraceDecoder(tree=ProcessTree(on_exec=request.on_exec))
        env = bpftrace_env()
        early = prelaunch.take("bpftrace", request.argv, request.env)  # started by the console script while the CLI loaded
        child, proc = (early.child, early.proc) if early is not None else start_gated(request.argv, request.env)
        decoder.tree.root(child.pid, os.getpid(), request.argv, time.monotonic_ns())
        version = _VersionQuery()  # answered while bpftrace compiles, not after the command
        preload("pyarrow.csv")  # pyarrow (and the text records' reader) loads on the other CPU while bpftrace compiles, not during the command
        errors = _StderrCollector(proc.stderr)
        errors.start()
        stream = _Stream(proc.stdout, decoder, request)
        exit_code = ended = None
        try:
            if not stream.wait_ready(READY_TIMEOUT_S):
                child.abort()
                _stop(proc)
                errors.join(5)
                raise TracerDidNotStart(f"bpftrace failed to start: {errors.summary() or 'no probes attached'}")
            try:
                stream.open_bindings(proc.pid)
            except BackendUnavailable:
                child.abort()
                raise
            stream.start()
            child.release()
            exit_code = child.wait()
            ended = procfs.ending(proc.pid)  # before it was told to stop: what ran after its end is missing
            # descendants still running now (daemons) are followed no further
            time.sleep(0.02)
        finally:
            if exit_code is None and child.pid:
                child.restore_signals()
            _stop(proc, stream)
            if stream.ident is not None:
                stream.join()
            if stream.bindings is not None:
                stream.bindings.close()
            proc.stdout.close()  # a bpftrace still detaching can never block on a pipe nobody reads
            if proc.poll() is not None:  # else it is detaching in the background
                errors.join(5)
        if stream.error is not None:
            raise stream.error
        return capture_result(
            decoder, request, exit_code, child.interrupted,
            None if ended is None else tracer_gone("bpftrace", ended, errors.summary()),
            meta={
                "ts_source": "CLOCK_MONOTONIC (bpftrace nsecs)",
                "latency_method": LATENCY_METHOD,
                "bpftrace_version": version.result(),
                "string_limit_bytes": STRLEN - 1,
                "bpftrace_stderr": errors.summary() or None,
                "perf_rb_pages": int(env["BPFTRACE_PERF_RB_PAGES"]),
                "map_keys": int(env["BPFTRACE_MAP_KEYS_MAX"]),
                "binding_records_made": decoder.emitted,  # the script's count; events + lost = this
                "binding_reader": stream.reader_method(),
                "bpftrace_started": "by the console script, while the CLI loaded" if early is not None
                                    else "by the backend",
            },
        )


def _mark_every_cpu() -> set[int] | None:
    """Call getppid() once on each CPU (MARK_PID's probe prints a MARK there).

    Returns the CPUs marked, or None when this process may not run on every
    online CPU (a cpuset): then marks cannot prove every buffer was drained.
    """
    allowed = os.sched_getaffinity(0)
    if len(allowed) != os.cpu_count():
        return None
    try:
        for cpu in sorted(allowed):
            os.sched_setaffinity(0, {cpu})
            os.getppid()
    finally:
        os.sched_setaffinity(0, allowed)
    return set(allowed)


def _stop(proc: subprocess.Popen, stream: "_Stream | None" = None) -> None:
    """End capture: drain every CPU's buffer (the stream then empties the
    binding map a last time), then let bpftrace detach.

    Each getppid() makes the script print how many binding records it has made,
    then a MARK from that CPU. bpftrace stops on SIGINT only after detaching
    every probe, which takes the kernel ~1 s. When a MARK from every CPU has
    arrived, all records before it have been read, so SIGINT is sent and the
    detach is left to finish in the background (bpftrace runs in its own
    session). Otherwise (no marks, or bpftrace not answering) wait for its
    exit, killing it after 30 s.
    """
    if proc.poll() is not None:
        return
    if stream is not None and stream.is_alive():
        cpus = _mark_every_cpu()
        if cpus is None:
            os.getppid()  # the count at least (this CPU's mark proves nothing alone)
        else:
            stream.expect_marks(cpus)
            if stream.done.wait(10):
                proc.send_signal(signal.SIGINT)
                threading.Thread(target=proc.wait, name="gotrace-bpftrace-detach", daemon=True).start()
                return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _VersionQuery:
    """`bpftrace --version`, started now and read when the session is saved."""

    def __init__(self):
        try:
            self._proc = subprocess.Popen(["bpftrace", "--version"], stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        except OSError:
            self._proc = None

    def result(self) -> str | None:
        if self._proc is None:
            return None
        try:
            out, _ = self._proc.communicate(timeout=10)
        except subprocess.SubprocessError:
            self._proc.kill()
            self._proc.wait()
            return None
        return out.strip() or None


class _StderrCollector(threading.Thread):
    def __init__(self, pipe):
        super().__init__(name="gotrace-bpftrace-stderr", daemon=True)
        self.pipe = pipe
        self.lines: deque[str] = deque(maxlen=20)

    def run(self) -> None:
        for raw in self.pipe:
            line = raw.decode("utf-8", "replace").strip()
            if line and not any(n in line for n in STDERR_NOISE):
                self.lines.append(line)

    def summary(self) -> str:
        errs = [l for l in self.lines if "ERROR" in l or "rror" in l]
        return (errs or list(self.lines) or [""])[0]


class _Stream(LineReader):
    """Reads bpftrace's stdout in large blocks and decodes complete lines, and
    empties the script's binding map every DRAIN_S (see bpf_map)."""

    def __init__(self, pipe, decoder: BpftraceDecoder, request: CaptureRequest):
        super().__init__(pipe, decoder, request, "gotrace-bpftrace-reader")
        self.done = threading.Event()  # output complete (marks arrived, or EOF)
        self._want_marks: set[int] | None = None
        self.bindings: BpfMap | None = None

    def open_bindings(self, bpftrace_pid: int) -> None:
        """Open bindsnoop.bt's @b (its maps exist once READY has printed)."""
        try:
            self.bindings = BpfMap.of_process(bpftrace_pid, BINDING_MAP)
        except (LookupError, OSError) as exc:
            raise BackendUnavailable(f"cannot read bindsnoop.bt's binding map: {exc}") from None
        sizes = (self.bindings.key_size, self.bindings.value_size)
        if sizes != (BINDING_KEY_SIZE, BINDING_VALUE_SIZE):  # another bpftrace's layout: never decode garbage
            self.bindings.close()
            self.bindings = None
            raise BackendUnavailable(
                f"this bpftrace lays out bindsnoop.bt's binding records as {sizes[0]}+{sizes[1]} bytes, gotrace "
                f"reads {BINDING_KEY_SIZE}+{BINDING_VALUE_SIZE} (bpftrace 0.17); use --backend ld-debug")

    def reader_method(self) -> str:
        how = "BPF_MAP_LOOKUP_AND_DELETE_BATCH" if self.bindings is None or self.bindings.batched \
            else "get_next_key + lookup + delete per entry (kernel without batch operations)"
        return f"gotrace empties bpftrace's map {BINDING_MAP} every {DRAIN_S * 1000:.0f} ms with {how}"

    def _drain_bindings(self) -> None:
        m = self.bindings
        if m is None:
            return
        keys, values, n = m.drain()
        if n:
            table = self.decoder.feed_records(keys, values, n, m.value_size)
            if table is not None and table.num_rows:
                self.request.sink(table)

    def expect_marks(self, cpus: set[int]) -> None:
        self._want_marks = cpus

    def _drained(self) -> bool:
        return self._want_marks is not None and self._want_marks <= self.decoder.marks

    def run(self) -> None:
        """Read as it comes, decode in batches; empty the binding map.

        bpftrace writes record by record; decoding each small read would cost
        more than the records, so reads accumulate until DECODE_BYTES or
        DECODE_SECONDS. Bindings wait in the kernel's map and are taken out
        every DRAIN_S, and once more at the end: when the drain marks have
        arrived, every record the script counted before them is in the map.
        """
        pending: list[bytes] = []
        size = 0
        last = drained = time.monotonic()
        try:
            while not self._drained():
                if time.monotonic() - drained >= DRAIN_S:
                    self._drain_bindings()
                    drained = time.monotonic()
                if select.select([self.fd], [], [], DRAIN_S)[0]:
                    data = os.read(self.fd, 1 << 20)
                    if not data:
                        break
                    self.announce_execs(data)
                    pending.append(data)
                    size += len(data)
                    if len(data) < READ_BATCH_BYTES:
                        time.sleep(READ_PAUSE_S)  # let a trickle pool: fewer wake-ups and syscalls
                now = time.monotonic()
                if pending and (size >= DECODE_BYTES or now - last >= DECODE_SECONDS
                                or self._want_marks is not None):
                    self._consume(b"".join(pending))
                    pending, size, last = [], 0, now
            if pending:
                self._consume(b"".join(pending))
            if self.buf:
                self._consume(b"\n")
            self._drain_bindings()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()
