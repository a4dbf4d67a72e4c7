"""Reads of /proc that several rooms need: one place, one way to fail.

The small reads fail soft (None, [] or False) because a traced process can
be gone by the time anyone looks; ``file_mappings`` is asked about a process
the user named, so it raises a one-line error instead; ``auxv`` and ``exe``
raise OSError for their callers to word.
"""
from __future__ import annotations

import os
import struct

from .errors import GotraceError

AT_PHDR, AT_BASE, AT_ENTRY = 3, 7, 9  # auxv keys: program headers, interpreter base, entry point


def pids() -> list[int]:
    """Every process visible now."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def cmdline(pid: int) -> list[str]:
    """argv of a live process (empty arguments left out), [] if it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def exec_environment(pid: int) -> tuple[str, list[str]] | None:
    """(the program, its environment as exec'd) of the image a process runs, read as one: on macOS
    KERN_PROCARGS2 holds both; on Linux /proc/PID/exe and environ, kept only when no exec came
    between them (image_identity the same before and after). None if gone or unreadable."""
    if os.uname().sysname == "Darwin":  # not run on macOS
        raw = _darwin_procargs(pid)
        got = None if raw is None else procargs(raw)
        return None if got is None else (got[0], got[1])
    before = image_identity(pid)
    env = environ(pid)
    if before is None or env is None or image_identity(pid) != before:
        return None
    return before[0], env


def environ(pid: int) -> list[str] | None:
    """The environment a process's image holds as it was exec'd (the strings the kernel copied at
    the exec; /proc/PID/environ on Linux, KERN_PROCARGS2 on macOS), None if it is gone or
    unreadable. Exact while the process is stopped; read while it runs, another exec may come
    first, which callers must allow for."""
    if os.uname().sysname == "Darwin":  # not run on macOS
        raw = _darwin_procargs(pid)
        got = None if raw is None else procargs(raw)
        return None if got is None else got[1]
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return [e.decode("utf-8", "replace") for e in data.split(b"\0") if e]


def image_identity(pid: int) -> tuple[str, int, int] | None:
    """(exe, stack start, environment start) of the image a process runs now: an exec changes them
    (ASLR), so reads between two equal identities are of one image. None if gone, or while an exec
    is under way (the new stack is set before the environment is copied there: field 50 is 0)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ident = os.readlink(f"/proc/{pid}/exe"), int(fields[25]), int(fields[47])  # fields 28 and 50
    except (OSError, IndexError, ValueError):
        return None
    return ident if ident[1] and ident[2] else None


def cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def procargs_environ(raw: bytes) -> list[str] | None:
    """The environment in a KERN_PROCARGS2 buffer (see procargs)."""
    got = procargs(raw)
    return None if got is None else got[1]


def procargs(raw: bytes) -> tuple[str, list[str]] | None:
    """(exec path, environment) of a KERN_PROCARGS2 buffer (xnu kern_sysctl.c sysctl_procargsx: argc
    as an int, the exec path, NUL padding, argc argument strings, then the environment strings up
    to an empty one); None when the buffer is shorter than argc says. Not run on macOS: checked
    on buffers laid out as xnu writes them."""
    if len(raw) < 4:
        return None
    argc = struct.unpack_from("<i", raw)[0]
    pos = raw.find(b"\0", 4)  # the exec path
    if pos < 0:
        return None
    path = raw[4:pos].decode("utf-8", "replace")
    while pos < len(raw) and raw[pos] == 0:
        pos += 1
    for _ in range(argc):
        end = raw.find(b"\0", pos)
        if end < 0:
            return None
        pos = end + 1
    env = []
    while pos < len(raw):
        end = raw.find(b"\0", pos)
        if end < 0 or end == pos:
            break
        env.append(raw[pos:end].decode("utf-8", "replace"))
        pos = end + 1
    return path, env


def _darwin_procargs(pid: int) -> bytes | None:
    """sysctl(CTL_KERN, KERN_PROCARGS2, pid): the process's exec'd arguments and environment."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    mib = (ctypes.c_int * 3)(1, 49, pid)  # CTL_KERN, KERN_PROCARGS2
    size = ctypes.c_size_t(0)
    if libc.sysctl(mib, 3, None, ctypes.byref(size), None, 0) != 0 or not size.value:
        return None
    buf = ctypes.create_string_buffer(size.value)
    if libc.sysctl(mib, 3, buf, ctypes.byref(size), None, 0) != 0:
        return None
    return buf.raw[:size.value]


def exe(pid: int) -> str:
    """The program a process runs; OSError when it is gone, another user's, or a kernel thread."""
    return os.readlink(f"/proc/{pid}/exe")


def handled_signals(pid: int) -> int | None:
    """Bit mask (bit N-1 for signal N) of the signals a process catches or ignores; None if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        return int(fields["SigCgt"].strip(), 16) | int(fields["SigIgn"].strip(), 16)
    except (OSError, KeyError, ValueError):
        return None


def randomize_va_space() -> int | None:
    """kernel.randomize_va_space: 0 off, 1 stack/mmap/vdso, 2 also the heap."""
    try:
        with open("/proc/sys/kernel/randomize_va_space") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return None


def ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


PF_EXITING = 0x4  # include/linux/sched.h: the task is in do_exit


def ending(pid: int) -> int | None:
    """A process on its way out (or a zombie): its wait status, as the kernel set it when the
    exit began; None while it runs, -1 when it is already gone. A killed tracer still closing its
    probes' files — up to a second for the kernel — is not a zombie yet, but already says this."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return -1
    if fields[0] not in (b"Z", b"X") and not int(fields[6]) & PF_EXITING:
        return None
    return int(fields[49]) if len(fields) > 49 else -1  # field 52, exit_code (Linux 3.5)


def auxv(pid: int) -> dict[int, int]:
    """The auxiliary vector the kernel gave the process: pairs of the program's own word size —
    u32 for a 32-bit program the 64-bit kernel runs (i386 on x86_64), u64 otherwise."""
    with open(f"/proc/{pid}/auxv", "rb") as fh:
        raw = fh.read()
    size, code = (4, "I") if _elf_class(pid) == 1 else (8, "Q")
    vals = struct.unpack(f"<{len(raw) // size}{code}", raw[: len(raw) // size * size])
    return {vals[i]: vals[i + 1] for i in range(0, len(vals) - 1, 2)}


def _elf_class(pid: int) -> int | None:
    """EI_CLASS of the process's program (1: 32-bit, 2: 64-bit), None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/exe", "rb") as fh:
            head = fh.read(5)
    except OSError:
        return None
    return head[4] if len(head) == 5 and head[:4] == b"\x7fELF" else None


def mapped_ranges(pid: int) -> list[tuple[int, int]]:
    """Every mapping of the process, [start, end), files, heap and anonymous ones alike; [] if unreadable."""
    out = []
    try:
        with open(f"/proc/{pid}/maps") as fh:
            for line in fh:
                lo, _, hi = line.split(None, 1)[0].partition("-")
                out.append((int(lo, 16), int(hi, 16)))
    except (OSError, ValueError):
        return []
    return out


def file_mappings(pid: int) -> dict[str, int]:
    """path -> start of its offset-0 mapping (the image's runtime base)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/maps") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise GotraceError(f"no process with pid {pid}") from None
    except PermissionError:
        raise GotraceError(f"cannot read /proc/{pid}/maps: permission denied (run as its user or root)") from None
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        start = int(parts[0].split("-")[0], 16)
        path = parts[5].removesuffix(" (deleted)")
        if int(parts[2], 16) == 0 and (path not in out or start < out[path]):
            out[path] = start
    return out


def file_ranges(pid: int) -> list[tuple[int, int, str]]:
    """(start, end, path) of every file mapping of a live process; [] if it is gone or unreadable."""
    out = []
    try:
        with open(f"/proc/{pid}/maps") as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].startswith("/"):
                    lo, _, hi = parts[0].partition("-")
                    out.append((int(lo, 16), int(hi, 16), parts[5].rstrip("\n").removesuffix(" (deleted)")))
    except (OSError, ValueError):
        return []
    return out
