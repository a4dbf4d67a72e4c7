"""Start the traced command as our child, held at a gate until the tracer is ready.

A tracer that attaches after the child started would miss the first bindings
(ld.so runs before ``main``), so the child is forked, waits on a pipe, and only
execs when the backend opens the gate.

The child leads a process group of its own, like a shell job: on a terminal it
becomes the foreground group, so Ctrl-C reaches the command and everything it
started, while gotrace keeps capturing. SIGINT/SIGTERM/SIGHUP sent to gotrace
itself are forwarded to that whole group, so no grandchild is left running.
Either way the run counts as interrupted when the command dies of it; a
command that ignores or handles the signal and exits by itself ran to its end
(its status is gotrace's), and one that dies of a signal nobody sent gotrace or
its terminal (it killed itself) simply exited.
"""
from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass, field

from ..dispositions import restore_for_exec
from ..errors import GotraceError

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)  # what a terminal sends its foreground group


def exit_code_from_wait_status(status: int) -> int:
    """A wait(2) status as a shell reports it: the code, or 128+signal."""
    if status & 0x7F:
        return 128 + (status & 0x7F)
    return (status >> 8) & 0xFF


def resolve_command(argv: list[str], env: dict[str, str] | None = None) -> str:
    """The executable argv[0] names, or a one-line error with exit code 127."""
    if not argv:
        raise GotraceError("no command given: put it after --, e.g. gotrace bind -- go build", 2)
    path = (env or os.environ).get("PATH", os.defpath)
    found = shutil.which(argv[0], path=path)
    if found is None:
        if os.sep in argv[0] and os.path.exists(argv[0]):
            raise GotraceError(f"cannot run {argv[0]}: permission denied", 126)
        raise GotraceError(f"command not found: {argv[0]}", 127)
    if os.path.isdir(found):
        raise GotraceError(f"cannot run {argv[0]}: is a directory", 126)
    return found


@dataclass
class GatedChild:
    """A forked child waiting to exec ``argv``; ``release()`` lets it go."""

    argv: list[str]
    env: dict[str, str]
    # a program to wait at the gate in, instead of this forked Python (csrc/execgate.c): for a
    # tracer that must attach to the waiting process and should find only libc mapped there
    gate_exec: str | None = None
    pid: int = 0
    interrupted: int = 0  # the signal that interrupted the run, 0 if none
    start_ns: int = 0
    end_ns: int = 0
    _gate_w: int = -1
    _err_r: int = -1
    _old_handlers: dict = field(default_factory=dict)
    _tty: int | None = None  # terminal whose foreground group we handed to the child
    _exit_code: int | None = None  # once reaped

    def start(self) -> int:
        executable = resolve_command(self.argv, self.env)
        gate_r, gate_w = os.pipe()
        err_r, err_w = os.pipe()
        os.set_inheritable(err_w, False)
        pid = os.fork()
        if pid == 0:  # child: wait for the gate, then exec
            try:
                # interrupted at the gate, the child just dies (no Python handler runs in
                # it), and it execs with the dispositions it would have without gotrace
                restore_for_exec()
                os.close(gate_w)
                os.close(err_r)
                os.setpgid(0, 0)
                if self.gate_exec is not None:  # it waits at the gate, and reports a failed exec itself
                    os.set_inheritable(gate_r, True)
                    os.execve(self.gate_exec, [self.gate_exec, str(gate_r), executable, *self.argv], self.env)
                if os.read(gate_r, 1) != b"g":
                    os._exit(125)
                os.close(gate_r)
                os.execve(executable, self.argv, self.env)
            except OSError as exc:
                os.write(err_w, f"{exc.errno}".encode())
            finally:
                os._exit(127)
        os.close(gate_r)
        os.close(err_w)
        self.pid, self._gate_w, self._err_r = pid, gate_w, err_r
        try:
            os.setpgid(pid, pid)  # also here: whichever runs first wins the race
        except OSError:
            pass
        self._give_terminal(pid)
        for sig in FORWARDED:
            self._old_handlers[sig] = signal.signal(sig, self._forward)
        return pid

    def _give_terminal(self, pgid: int) -> None:
        """Make ``pgid`` the terminal's foreground group if we hold the terminal."""
        for fd in (0, 1, 2):
            try:
                if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                    try:
                        os.tcsetpgrp(fd, pgid)
                    finally:
                        signal.signal(signal.SIGTTOU, old)
                    self._tty = fd
                    return
            except OSError:
                continue

    def _take_terminal_back(self) -> None:
        if self._tty is None:
            return
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(self._tty, os.getpgrp())
        except OSError:
            pass
        finally:
            signal.signal(signal.SIGTTOU, old)
            self._tty = None

    def _forward(self, signum, _frame) -> None:
        self.interrupted = self.interrupted or signum
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def release(self) -> None:
        """Open the gate; raise if the exec itself failed. Interrupted while it
        waited (Ctrl-C while the tracer started), the command never runs."""
        self.start_ns = time.monotonic_ns()
        if self.interrupted:
            self.abort()
            return
        try:
            os.write(self._gate_w, b"g")
        except BrokenPipeError:  # the child died at the gate (a signal to its group): wait() tells
            os.close(self._gate_w)
            os.close(self._err_r)
            return
        os.close(self._gate_w)
        data = os.read(self._err_r, 64)  # EOF on successful exec (close-on-exec)
        os.close(self._err_r)
        if data:
            errno = int(data)
            self.wait()
            raise GotraceError(f"cannot run {self.argv[0]}: {os.strerror(errno)}", 126 if errno != 2 else 127)

    def abort(self) -> None:
        """Kill a child that never got released (tracer failed to start, or Ctrl-C)."""
        for fd in (self._gate_w, self._err_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.wait()

    def wait(self) -> int:
        """Wait for the child, retrying on signals; return its shell-style exit code."""
        if self._exit_code is not None:
            return self._exit_code
        while True:
            try:
                _, status = os.waitpid(self.pid, 0)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                status = 0
                break
        self.end_ns = time.monotonic_ns()
        held_terminal = self._tty is not None
        self._take_terminal_back()
        self.restore_signals()
        if (held_terminal and not self.interrupted and os.WIFSIGNALED(status)
                and os.WTERMSIG(status) in TERMINAL_SIGNALS):
            # the terminal's Ctrl-C, Ctrl-\ or hang-up reached the child's group (its
            # foreground), not us: the run was interrupted all the same. Any other death
            # by a signal (a command that kills itself) is the command's own exit.
            self.interrupted = os.WTERMSIG(status)
        if self.interrupted and os.WIFEXITED(status):
            # the command ran to its own end, the signal notwithstanding (it ignored it, as a
            # script's background job does SIGINT, or handled it): the run was not cut short,
            # and its exit status is the command's
            self.interrupted = 0
        self._exit_code = exit_code_from_wait_status(status)
        return self._exit_code

    def restore_signals(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()
