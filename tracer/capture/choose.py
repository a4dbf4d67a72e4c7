"""Which capture backend runs: the registry of names, and the ``auto`` rule.

On Linux ``auto`` prefers the backends that record most (latency, failed
lookups, the full process tree): gotrace's own BPF program, which costs no
more than its probes, then bpftrace, which does the same through a compiler
and a bigger runtime; and falls back to the one that needs nothing (ld-debug),
saying which it picked and why the others could not run. On macOS it is DTrace when
it can run (root, SIP allowing it), else dyld's own account (dyld-print), which
needs no root and works under Rosetta.
"""
from __future__ import annotations

import platform
from typing import TYPE_CHECKING

from ..errors import BackendUnavailable

if TYPE_CHECKING:  # the console's plain-bind scan imports NAMES: no backend module for it
    from .backend import Backend

NAMES = ("auto", "bpf", "bpftrace", "ld-debug", "lldb", "dyld-print", "dtrace")
LINUX_PREFERENCE = ("bpf", "bpftrace", "ld-debug")  # auto's order on Linux: most recorded at least cost first
AUTO_WHY = {
    "bpf": "root, BTF and ld.so symbols: gotrace's own BPF program, every lookup with its latency",
    "bpftrace": "root, bpftrace and ld.so symbols: every lookup with its latency",
}


def get(name: str) -> Backend:
    """The named backend; only its own module is imported (each costs start-up time)."""
    if name == "bpf":
        from .bpf.backend import BpfBackend
        return BpfBackend()
    if name == "bpftrace":
        from .bpftrace.backend import BpftraceBackend
        return BpftraceBackend()
    if name == "ld-debug":
        from .ld_debug.backend import LdDebugBackend
        return LdDebugBackend()
    if name == "lldb":
        from .lldb.backend import LldbBackend
        return LldbBackend()
    if name == "dyld-print":
        from .dyld_print.backend import DyldPrintBackend
        return DyldPrintBackend()
    if name == "dtrace":
        from .dtrace.backend import DtraceBackend
        return DtraceBackend()
    raise BackendUnavailable(f"unknown backend {name!r}; choose one of {', '.join(NAMES)}")


def choose(name: str, attach: int | None = None, rosetta: bool = False) -> tuple[Backend, str]:
    """The backend to use and a one-line account of the choice.

    ``auto`` never picks lldb for a command: lldb follows one process, and a
    build is many. Attaching to a running process is lldb's alone. Under Rosetta
    (``rosetta``: macOS, --arch x86_64 on Apple Silicon) auto takes dyld-print:
    DTrace refuses translated processes.
    """
    if attach is not None:
        if name not in ("auto", "lldb"):
            raise BackendUnavailable(f"--pid/--attach needs the lldb backend (not {name}): use --backend lldb")
        backend = get("lldb")
        avail = backend.probe()
        if not avail.ok:
            raise BackendUnavailable(f"lldb backend unavailable: {avail.explain()}")
        return backend, "backend lldb" + (" (auto: --attach is lldb's)" if name == "auto" else "")
    if name != "auto":
        backend = get(name)
        avail = backend.probe()
        if not avail.ok:
            raise BackendUnavailable(f"{name} backend unavailable: {avail.explain()}")
        return backend, f"backend {name}"
    if platform.system() == "Darwin":  # not run on macOS
        if rosetta:
            return get("dyld-print"), ("backend dyld-print (auto: Rosetta-translated processes, which DTrace "
                                       "refuses; dyld's own account of every process, no latency; --backend lldb "
                                       "times one)")
        dt = get("dtrace")
        avail = dt.probe()
        if avail.ok:
            return dt, "backend dtrace (auto: macOS, root and DTrace allowed: latency per bind target)"
        return get("dyld-print"), f"backend dyld-print (auto: {avail.explain()}; dyld's own account, no latency)"
    backend, reasons = _first_that_runs(LINUX_PREFERENCE)
    if backend is None:
        raise BackendUnavailable(f"no backend can run: {'; '.join(reasons)}")
    if backend.name == "ld-debug":
        return backend, f"backend ld-debug (auto: {'; '.join(reasons)}; no latency without BPF)"
    said = f"; {'; '.join(reasons)}" if reasons else ""
    why = AUTO_WHY[backend.name]
    agent = getattr(backend, "agent", None)
    if agent is not None:  # the bpf backend through gotrace's agent (capture/bpf/agent.py): for any user
        why = f"gotrace's agent (pid {agent.pid}) runs its BPF program: every lookup with its latency"
    return backend, f"backend {backend.name} (auto: {why}{said})"


def fall_back(failed: str, why: str) -> tuple[Backend, str] | None:
    """What ``auto`` runs instead when ``failed``, its choice, could not start its tracer (``why``)
    before the command ran: the next of its Linux backends that can; None if none can."""
    if failed not in LINUX_PREFERENCE:
        return None
    backend, _ = _first_that_runs(LINUX_PREFERENCE[LINUX_PREFERENCE.index(failed) + 1:])
    return None if backend is None else (backend, f"backend {backend.name} (auto: {why}; falling back)")


def _first_that_runs(names) -> tuple[Backend | None, list[str]]:
    """The first of ``names`` whose probe passes, and why each before it could not run."""
    reasons = []
    for name in names:
        backend = get(name)
        avail = backend.probe()
        if avail.ok:
            return backend, reasons
        reasons.append(f"not {name}: {avail.explain()}")
    return None, reasons
