"""The signal dispositions and mask a command gotrace starts gets: those it would get without gotrace.

Python ignores SIGPIPE and SIGXFSZ at start-up (a write to a closed pipe then
raises instead of killing the interpreter), installs its own SIGINT handler,
and gotrace adds handlers of its own. An ignored signal stays ignored across
exec, so without this `gotrace bind -- yes | head -1` sees EPIPE forever
instead of dying of SIGPIPE. What the parent of gotrace ignored (nohup's
SIGHUP, a background job's SIGINT) stays ignored, as it would for the command
run directly. Called in the child, between fork and exec.
"""
from __future__ import annotations

import signal

# what the interpreter set at start-up: put back as subprocess's restore_signals does
PYTHON_IGNORED = tuple(getattr(signal, n) for n in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, n))
INHERITED_MASK = signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the console imports this module first


def restore_for_exec() -> None:
    """Default action for what Python set, default for every Python-level
    handler (none must run in a child about to exec), the mask gotrace inherited."""
    for sig in PYTHON_IGNORED:
        signal.signal(sig, signal.SIG_DFL)
    for sig in signal.valid_signals():
        try:
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL, SIGSTOP, real-time signals Python cannot name
            continue
    signal.pthread_sigmask(signal.SIG_SETMASK, INHERITED_MASK)
