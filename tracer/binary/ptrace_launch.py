"""Start a program stopped at its entry point, with ASLR as the system has it.

At the entry point the dynamic linker has mapped and relocated every library
the program needs (DT_NEEDED, recursively) and no program code has run yet:
the moment link-time and runtime addresses are compared. The child asks to be
traced (PTRACE_TRACEME, allowed under any Yama level) and execs; the parent
plants an int3 at AT_ENTRY, continues, and hands the stopped pid to a callback.
Then the program is killed, or the instruction restored and the program let go.

Linux x86_64 only (user_regs_struct layout, int3); personality and
randomize_va_space are never touched.
"""
from __future__ import annotations

import ctypes
import os
import platform
import signal
from typing import Callable

from ..dispositions import restore_for_exec
from ..errors import GotraceError
from ..procfs import AT_ENTRY, auxv

PTRACE_TRACEME, PTRACE_PEEKTEXT, PTRACE_POKETEXT, PTRACE_CONT = 0, 1, 4, 7
PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_DETACH = 12, 13, 17
RIP = 16  # index of rip in struct user_regs_struct
TRACEME_REFUSED = 125  # the forked child's exit status when PTRACE_TRACEME fails (it never execs then)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def _ptrace(req: int, pid: int, addr: int = 0, data: int | ctypes.c_void_p = 0) -> int:
    ctypes.set_errno(0)
    res = _libc.ptrace(req, pid, ctypes.c_void_p(addr), data if isinstance(data, ctypes.c_void_p)
                       else ctypes.c_void_p(data))
    err = ctypes.get_errno()
    if res == -1 and err:
        raise OSError(err, os.strerror(err))
    return res


def run_stopped_at_entry(argv: list[str], env: dict[str, str] | None, on_stop: Callable[[int, dict[int, int]], None],
                         let_go: bool = False) -> int | None:
    """Run ``argv`` to its entry point, call ``on_stop(pid, auxv)``, then kill it
    (returns None) or let it run to completion (returns its exit code)."""
    if platform.machine() != "x86_64":
        raise GotraceError(f"launching stopped at entry needs an x86_64 host (this is {platform.machine()}); "
                           "use gotrace aslr --pid PID on a running process")
    pid = os.fork()
    if pid == 0:
        try:
            restore_for_exec()
            _ptrace(PTRACE_TRACEME, 0)
        except OSError:  # EPERM: this process is itself traced (strace -f, gdb), so its child is too
            os._exit(TRACEME_REFUSED)
        try:
            os.execvpe(argv[0], argv, env if env is not None else os.environ)
        except OSError:
            pass
        os._exit(127)
    try:
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status):  # it never reached exec traced: the code is the child's own, above
            code = os.WEXITSTATUS(status)
            if code == TRACEME_REFUSED:
                raise GotraceError(f"cannot trace {argv[0]}: it is traced already (gotrace runs under strace -f or "
                                   "a debugger?); run it untraced, or start it and use gotrace aslr --pid PID")
            raise GotraceError(f"command not found or not executable: {argv[0]}" if code == 127
                               else f"{argv[0]} exited ({code}) before it could be stopped", 127 if code == 127 else 2)
        aux = auxv(pid)
        entry = aux.get(AT_ENTRY)
        if not entry:
            raise GotraceError(f"{argv[0]}: the kernel gave it no entry point (not a program it can run)")
        word = _ptrace(PTRACE_PEEKTEXT, pid, entry) & 0xFFFFFFFFFFFFFFFF
        _ptrace(PTRACE_POKETEXT, pid, entry, (word & ~0xFF) | 0xCC)
        _ptrace(PTRACE_CONT, pid)
        while True:
            _, status = os.waitpid(pid, 0)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                why = (f"exit code {os.WEXITSTATUS(status)}" if os.WIFEXITED(status)
                       else f"signal {os.WTERMSIG(status)}")
                raise GotraceError(f"{argv[0]} ended ({why}) before reaching its entry point: "
                                   "the dynamic linker failed (a missing library?)")
            sig = os.WSTOPSIG(status)
            if sig == signal.SIGTRAP:
                break
            _ptrace(PTRACE_CONT, pid, 0, sig)  # deliver anything else (ld.so does not normally signal)
        on_stop(pid, aux)
        if not let_go:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        regs = (ctypes.c_ulonglong * 27)()
        _ptrace(PTRACE_GETREGS, pid, 0, ctypes.cast(regs, ctypes.c_void_p))
        regs[RIP] = entry
        _ptrace(PTRACE_SETREGS, pid, 0, ctypes.cast(regs, ctypes.c_void_p))
        _ptrace(PTRACE_POKETEXT, pid, entry, word)
        _ptrace(PTRACE_DETACH, pid)
        _, status = os.waitpid(pid, 0)
        return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    except BaseException:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
