"""A dtrace whose process control hung: found, stopped, and its process let go.

DTrace for Linux grabs each process it traces with ptrace (`dtrace -p`). Seen here, now and then,
at an exec that follows a few forks (a pyenv shim on PATH: env, bash, then exec of another #!
script): the dtrace's ptrace thread waits on a lock of its own while its process sits in a
tracing stop, for good — the command never ends, and SIGTERM does not end that dtrace either (it
waits for the same thread to let the process go). A stop DTrace makes to place its probes lasts
milliseconds, its ptrace thread waiting in waitpid meanwhile; a process held STUCK_S with that
thread asleep on a futex is this hang (a process stopped by job control waits with DTrace's
thread in waitpid: not touched). The dtrace is killed — the kernel then detaches its tracee,
which goes on — and the uprobe events dead dtraces left registered (dt_PID_dtrace/BEGIN and
/END, on libdtrace) are removed when the capture ends (sweep_uprobes). The session says which process lost its probes, and from when.
Linux only: macOS has no /proc, and its dtrace stops processes otherwise.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time

STUCK_S = 10.0
UPROBE_EVENTS = "/sys/kernel/tracing/uprobe_events"


def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except OSError:
        return {}


def _wchan(pid: int, tid: int) -> str:
    try:
        with open(f"/proc/{pid}/task/{tid}/wchan") as fh:
            return fh.read()
    except OSError:
        return ""


def held(pid: int, dtrace_pid: int) -> bool:
    """Whether ``pid`` sits in a tracing stop of ``dtrace_pid``'s whose ptrace thread sleeps on a futex."""
    st = _status(pid)
    tracer = int(st.get("TracerPid", "0") or 0)
    return (st.get("State", "").startswith("t") and tracer > 0
            and os.path.isdir(f"/proc/{dtrace_pid}/task/{tracer}")
            and _wchan(dtrace_pid, tracer).startswith("futex"))


def sweep_uprobes(path: str = UPROBE_EVENTS, wait_s: float = 2.0) -> int:
    """Remove the uprobe events dtraces that are gone left registered (group dt_PID_dtrace, PID no
    longer a process: killed, as above, or by fleet.stop); how many. An event a dying dtrace still
    holds refuses removal (EBUSY) for a moment: retried for ``wait_s``."""
    deadline = time.monotonic() + wait_s
    removed = 0
    while True:
        try:
            with open(path) as fh:
                names = [line.split()[0].split(":", 1)[-1] for line in fh if line.strip()]
        except OSError:
            return removed
        gone = [n for n in names if re.fullmatch(r"dt_(\d+)_dtrace/\S+", n)
                and not os.path.exists(f"/proc/{n[3:].split('_', 1)[0]}")]
        busy = False
        for name in gone:
            try:  # os.open: Python's "a" mode seeks to the end, which tracefs refuses (EINVAL)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, f"-:{name}\n".encode())
                finally:
                    os.close(fd)
                removed += 1
            except OSError:
                busy = True
        if not busy or time.monotonic() > deadline:
            return removed
        time.sleep(0.1)


class Watchdog(threading.Thread):
    """Checks each per-process dtrace of a fleet every second; releases a process held STUCK_S."""

    def __init__(self, fleet, stuck_s: float = STUCK_S) -> None:
        super().__init__(name="gotrace-dtrace-watchdog", daemon=True)
        self.fleet = fleet
        self.stuck_s = stuck_s
        self.released: list[dict] = []  # {pid, exe, dtrace_pid, held_s, at_ns}
        self._since: dict[int, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(1.0):
            self.check(time.monotonic())

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(5)

    def check(self, now: float) -> None:
        for t in list(self.fleet.tracers):
            if not t.label.isdigit() or t.proc.poll() is not None:
                continue
            pid = int(t.label)
            if not held(pid, t.proc.pid):
                self._since.pop(pid, None)
                continue
            since = self._since.setdefault(pid, now)
            if now - since >= self.stuck_s:
                self._release(t, pid, now - since)

    def _release(self, t, pid: int, held_s: float) -> None:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = None
        try:
            os.kill(t.proc.pid, signal.SIGKILL)
            t.proc.wait(10)
        except Exception:  # gone already, or not reaped in time: its tracee is let go either way
            pass
        self._since.pop(pid, None)
        self.released.append({"pid": pid, "exe": exe, "dtrace_pid": t.proc.pid, "held_s": round(held_s, 1),
                              "at_ns": time.monotonic_ns()})
