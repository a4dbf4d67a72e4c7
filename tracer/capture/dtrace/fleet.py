"""The dtrace processes of one capture: started, awaited until their probes are on, read, stopped.

DTrace's pid provider instruments one process per dtrace (-p PID), so a process
tree needs one dtrace for the tree (proctree.d) and one per process. Every
dtrace's output goes, line by line, into one queue for the decoder; a dtrace is
*ready* when its READY record arrives (its BEGIN ran: every probe is enabled).
Attaching is bounded (MAX_STARTING at once): a dtrace spends ~0.4 s of CPU
compiling and placing probes, and a build starts hundreds of processes.
"""
from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field

MAX_STARTING = 4
READY_TIMEOUT_S = 60.0
# What dtrace says when its principal buffer was full and records were lost: libdtrace's
# dt_handle_cpudrop ("%llu drop%s on CPU %d"), printed by dtrace(1)'s drop handler with its
# "dtrace: " prefix (Oracle's DTrace for Linux and Apple's alike). Aggregation and dynamic
# variable drops are other lines: the scripts keep no aggregation, and a dynamic variable
# drop loses a latency pairing, not a record.
DROPS = re.compile(r"^dtrace: (\d+) drops? on CPU \d+$")


@dataclass
class Tracer:
    """One dtrace: its process, what it traces, and when its probes came on."""

    label: str  # "tree", or the pid it traces
    proc: subprocess.Popen
    ready: threading.Event = field(default_factory=threading.Event)
    ready_ns: int | None = None
    stderr: list = field(default_factory=list)
    stderr_reader: threading.Thread | None = None


class Fleet:
    """Every dtrace of a capture; their records in ``lines`` as (label, line)."""

    def __init__(self, on_line=None) -> None:
        # called with each line by the thread that read it, before the decoder sees it: a new
        # process is attached to at once, whatever the decoder is busy with (pyarrow loading ...)
        self.on_line = on_line or (lambda label, line: None)
        self.lines: queue.Queue = queue.Queue()
        self.tracers: list[Tracer] = []
        self._lock = threading.Lock()
        self._starting = threading.Semaphore(MAX_STARTING)

    def start(self, argv: list[str], label: str) -> Tracer:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", start_new_session=True)
        t = Tracer(label, proc)
        with self._lock:
            self.tracers.append(t)
        threading.Thread(target=self._read_out, args=(t,), name=f"gotrace-dtrace-{label}", daemon=True).start()
        t.stderr_reader = threading.Thread(target=self._read_err, args=(t,), daemon=True)
        t.stderr_reader.start()
        return t

    def _read_out(self, t: Tracer) -> None:
        for line in t.proc.stdout:
            if not t.ready.is_set() and line.startswith("READY"):
                t.ready_ns = time.monotonic_ns()
                t.ready.set()
            self.on_line(t.label, line)
            self.lines.put((t.label, line))
        t.ready.set()  # gone without READY: wait_ready tells which

    def _read_err(self, t: Tracer) -> None:
        for line in t.proc.stderr:
            if line.strip():
                t.stderr.append(line.strip())

    def wait_ready(self, t: Tracer, timeout: float = READY_TIMEOUT_S) -> str | None:
        """None when the probes are on; else dtrace's own reason, in one line."""
        if not t.ready.wait(timeout):
            return f"dtrace did not enable its probes within {timeout:.0f} s"
        if t.ready_ns is None:
            t.proc.wait()
            time.sleep(0.05)  # its stderr reader may still be taking the last line
            return (t.stderr[-1] if t.stderr else f"dtrace exited with status {t.proc.returncode}")
        return None

    def attach(self, argv: list[str], label: str) -> tuple[Tracer, str | None]:
        """Start a per-process dtrace and wait for its probes, at most MAX_STARTING at a time."""
        with self._starting:
            t = self.start(argv, label)
            return t, self.wait_ready(t)

    def records_dropped(self) -> int:
        """Records the dtraces said they dropped (DROPS), once they have stopped: every count of
        the capture is then a lower bound, and a process may be known only as another's parent."""
        total = 0
        for t in list(self.tracers):
            if t.stderr_reader is not None:
                t.stderr_reader.join(5)  # its pipe closed when the dtrace exited: the last line is in
            total += sum(int(m.group(1)) for m in map(DROPS.match, t.stderr) if m)
        return total

    def stop(self, grace_s: float = 2.0) -> None:
        """Let every dtrace end on its own (the scripts exit(0) when their process exits, which
        also removes their uprobes; `dtrace -p` alone may not end and spin, and a killed one
        leaves its uprobes registered), then end the rest."""
        deadline = time.monotonic() + grace_s
        for t in list(self.tracers):
            try:
                t.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                t.proc.terminate()  # SIGTERM: dtrace prints what its buffers hold and exits
        for t in list(self.tracers):
            try:
                t.proc.wait(5)
            except subprocess.TimeoutExpired:
                t.proc.kill()
                t.proc.wait()
