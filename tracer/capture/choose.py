"""Which capture backend runs: the registry of names, and the ``auto`` rule.

On Linux ``auto`` prefers the backend that records most (bpftrace: latency,
failed lookups, the full process tree) and falls back to the one that needs
nothing (ld-debug), saying which it picked and why. On macOS it is DTrace when
it can run (root, SIP allowing it), else dyld's own account (dyld-print), which
needs no root and works under Rosetta.
"""
from __future__ import annotations

import platform

from .backend import Backend
from ..errors import BackendUnavailable

NAMES = ("auto", "bpf", "bpftrace", "ld-debug", "lldb", "dyld-print", "dtrace")


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
    bpf = get("bpftrace")
    avail = bpf.probe()
    if avail.ok:
        return bpf, "backend bpftrace (auto: root, bpftrace and ld.so symbols available)"
    fallback = get("ld-debug")
    fb = fallback.probe()
    if not fb.ok:
        raise BackendUnavailable(f"no backend can run: bpftrace: {avail.explain()}; ld-debug: {fb.explain()}")
    return fallback, f"backend ld-debug (auto: {avail.explain()}; no latency without bpftrace)"

