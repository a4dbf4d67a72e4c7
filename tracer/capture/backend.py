"""The small interface every capture backend implements.

A backend answers two questions: can it run here (``probe``, with the reason
and the fix when it cannot), and run a command under capture (``capture``),
feeding event tables (session.schema.events_table) to the sink and returning
the small tables at the end. Everything else — session layout, progress,
summary — is shared (capture/run.py). A new backend is a package beside
bpftrace/, ld_debug/ and lldb/, registered in capture/choose.py.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..heavy import pa


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""
    fix: str = ""

    def explain(self) -> str:
        return f"{self.reason}; {self.fix}" if self.fix else self.reason


def tracer_gone(who: str, status: int, said: str) -> str:
    """The session's incomplete_reason when the tracer process ended before it was told to:
    what it said on stderr, else how it ended (``status``: procfs.ending's)."""
    how = ("it is gone" if status < 0 else f"killed by signal {status & 0x7f}" if status & 0x7f
           else f"exit status {status >> 8}")
    return f"{who} ended during the run ({said or how}): what ran after that is not recorded"


def uprobes_problem(who: str, elsewhere: str) -> Availability | None:
    """Why ``who`` (bindsnoop.bt, gotrace's BPF program) cannot put its uprobes here: it needs
    root and reads the return address at [sp] on entry, which is x86_64's calling convention."""
    if os.geteuid() != 0:
        return Availability(False, f"{who} needs root (CAP_BPF and CAP_PERFMON)",
                            "run gotrace as root, e.g. sudo -E gotrace bind ...")
    machine = platform.machine()
    if machine != "x86_64":
        return Availability(False, f"the uprobes of {who} support x86_64 hosts only, not {machine}",
                            f"use --backend {elsewhere}")
    return None


@dataclass
class CaptureRequest:
    argv: list[str]
    env: dict[str, str]
    sink: Callable[[pa.Table], None]  # receives decoded event chunks
    on_process: Callable[[int], None] = lambda n: None  # progress: processes seen so far
    attach: int | None = None  # trace this running process instead of starting argv (lldb)
    # the argv to exec, given the command and the variables the backend adds: a translated run
    # under Rosetta prefixes `arch -x86_64 -e K=V …` (arch, SIP-protected, would drop DYLD_*)
    wrap: Callable[[list[str], dict[str, str]], list[str]] | None = None
    # the lldb backend starts the program as this architecture itself (macOS: x86_64 under
    # Rosetta 2, through an x86_64 launch shim; capture/lldb/launch_plan.py) instead of a wrap
    arch: str | None = None
    on_warning: Callable[[str], None] = lambda text: None  # what the user should know before the run
    # each exec as the backend learns of it (pid, program path): the run keeps the program's file
    on_exec: Callable[[int, str], None] = lambda pid, exe: None
    # an object a tracer opened as soon as a record named it (pid, name, an open descriptor or None,
    # (st_dev, st_ino)): the very file, kept for the session (capture/object_keeper.py owns the fd)
    keep_object: Callable[..., None] = lambda pid, name, fd, inode: fd is not None and os.close(fd)


@dataclass
class CaptureResult:
    exit_code: int
    interrupted: int = 0  # signal number that interrupted the run, 0 if none
    # the small tables as rows: dicts by the contract's column names (schema.from_rows)
    processes: list[dict] | None = None
    images: list[tuple[int, str, int]] | None = None  # (pid, path, l_addr = load bias); bases filled later
    relocations: list[dict] | None = None
    lost_events: int = 0
    malformed_records: int = 0
    meta: dict = field(default_factory=dict)  # backend-specific facts for meta.json
    # why what was recorded is not all that happened (the tracer died during the run), or None
    incomplete_reason: str | None = None


class Backend(Protocol):
    name: str

    def probe(self) -> Availability: ...

    def capture(self, request: CaptureRequest) -> CaptureResult: ...
