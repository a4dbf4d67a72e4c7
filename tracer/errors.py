"""One error type for everything a user can get wrong or lack.

Library code and commands raise :class:`GotraceError`; the console's one
handler (commands/console.py) prints its message as one line and exits with
its code, so no user ever sees a traceback for a condition we anticipated.
"""
from __future__ import annotations

import os


class GotraceError(Exception):
    """A failure to report as one line, with the process exit code to use."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def one_line(exc: BaseException) -> tuple[str, int]:
    """The line and exit code gotrace reports for a failure (the rule of the
    console's one handler, commands/console.py). A bug is still one line, with
    the way to see its traceback (GOTRACE_DEBUG set: the bug is raised again,
    traceback and all)."""
    if isinstance(exc, GotraceError):
        return exc.message, exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if os.environ.get("GOTRACE_DEBUG"):
        raise exc
    return f"internal error: {type(exc).__name__}: {exc} (GOTRACE_DEBUG=1 shows the traceback)", 70


class SessionError(GotraceError):
    """A session directory that is missing, truncated or not a gotrace session."""


class BackendUnavailable(GotraceError):
    """A capture backend cannot run here; the message says why and how to fix it."""


class TracerDidNotStart(BackendUnavailable):
    """The tracer failed to attach after the backend was chosen (a kernel that refuses
    the program, say); the command never ran, so ``auto`` may try the next backend."""
