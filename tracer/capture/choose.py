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

from .backend import Backend
from ..errors import BackendUnavailable

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


def choose(name: str, attach: int | None = None) -> tuple[Backend, str]:
    """The backend to use and a one-line account of the choice.

    ``auto`` never picks lldb for a command: lldb follows one process, and a
    build is many. Attaching to a running process is lldb's alone.
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
        dt = get("dtrace")
        avail = dt.probe()
        if avail.ok:
            return dt, "backend dtrace (auto: macOS, root and DTrace allowed: latency per bind target)"
        return get("dyld-print"), f"backend dyld-print (auto: {avail.explain()}; dyld's own account, no latency)"
    reasons = []
    for name in LINUX_PREFERENCE[:-1]:
        backend = get(name)
        avail = backend.probe()
        if avail.ok:
            said = f"; {'; '.join(reasons)}" if reasons else ""
            return backend, f"backend {name} (auto: {AUTO_WHY[name]}{said})"
        reasons.append(f"not {name}: {avail.explain()}")
    fallback = get("ld-debug")
    fb = fallback.probe()
    if not fb.ok:
        raise BackendUnavailable(f"no backend can run: {'; '.join(reasons)}; not ld-debug: {fb.explain()}")
    return fallback, f"backend ld-debug (auto: {'; '.join(reasons)}; no latency without BPF)"


def next_after(name: str) -> str | None:
    """The backend ``auto`` tries when ``name`` was picked but failed to start (Linux)."""
    if name in LINUX_PREFERENCE[:-1]:
        return LINUX_PREFERENCE[LINUX_PREFERENCE.index(name) + 1]
    return None
