"""One error type for everything a user can get wrong or lack.

Commands raise :class:`GotraceError`; the CLI's single handler prints its message
as one line and exits with its code, so no user ever sees a traceback for a
condition we anticipated.
"""
from __future__ import annotations


class GotraceError(Exception):
    """A failure to report as one line, with the process exit code to use."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class SessionError(GotraceError):
    """A session directory that is missing, truncated or not a gotrace session."""


class BackendUnavailable(GotraceError):
    """A capture backend cannot run here; the message says why and how to fix it."""
