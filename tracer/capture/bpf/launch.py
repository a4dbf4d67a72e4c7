"""Starting gotrace's BPF program: what the host must have, the build, the loader's arguments.

Shared by the backend and the console script's early start (capture/prelaunch.py), so
it imports nothing heavy: the early start runs before the CLI has loaded, and
every millisecond here is on the traced command's wall time.

The object is CO-RE (compiled once, relocated by libbpf against the running
kernel's BTF), so one build serves every kernel; what depends on the host's
ld.so (the addresses of its functions) is passed as arguments at each start,
from ldso.py's layout, which is cached per ld.so.
"""
from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path

from ... import procfs
from ...binary import facts
from ...binary.elf import PT_LOAD, program_headers
from ...errors import BackendUnavailable, GotraceError
from ..backend import Availability, uprobes_problem
from ..child import GatedChild
from ..ldso import require_layout

BTF = Path("/sys/kernel/btf/vmlinux")
LOCKDOWN = Path("/sys/kernel/security/lockdown")
MIN_KERNEL = (5, 11)  # task-local storage for tracing programs (5.11); the ring buffer came in 5.8
BPF_CC = ("clang-14", "clang")
BPF_FLAGS = ["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu", "-c"]
LOADER_FLAGS = ["-O2"]
LOADER_LIBS = ("-lbpf",)
LIBBPF_HEADER = Path("/usr/include/bpf/libbpf.h")
RINGBUF_ENV = "GOTRACE_BPF_RINGBUF_BYTES"  # the ring buffer's size (tests shrink it to make it overflow)
FUNCTIONS = ("_dl_lookup_symbol_x", "_dl_relocate_object", "_dl_signal_cexception")
INSTALL = "apt-get install clang-14 gcc libbpf-dev"


def bpf_cc() -> str | None:
    return next((cc for cc in BPF_CC if shutil.which(cc)), None)


def _kernel_version(release: str) -> tuple[int, int]:
    parts = release.split("-", 1)[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def host_problem() -> Availability | None:
    """Why this host cannot run the program at all (no build can change it), or None."""
    problem = uprobes_problem("gotrace's BPF program", "ld-debug")
    if problem is not None:
        return problem
    release = platform.release()
    if _kernel_version(release) < MIN_KERNEL:
        return Availability(False, f"kernel {release} is older than 5.11 (no BPF task-local storage for "
                            "tracing programs)",
                            "use --backend bpftrace")
    if not BTF.exists():
        return Availability(False, f"the kernel has no BTF ({BTF} is missing): CO-RE cannot place the "
                            "program's reads", "use --backend bpftrace")
    try:
        lockdown = LOCKDOWN.read_text()
    except OSError:
        lockdown = ""
    if "[confidentiality]" in lockdown:
        return Availability(False, "the kernel is locked down (confidentiality): BPF may not read kernel memory",
                            "use --backend ld-debug")
    return None


def artifacts(build: bool) -> tuple[Path, Path] | None:
    """(the BPF object, its loader) from the cache; built first if ``build`` (once per source
    version: csrc/build.py), else None when either is not built yet."""
    from ...csrc.build import cached, compile_cached

    cc = bpf_cc() or BPF_CC[0]
    if not build:
        obj = cached("bindsnoop-bpf", ["bindsnoop.bpf.c"], cc, BPF_FLAGS, suffix=".o")
        loader = cached("bindload", ["bindload.c"], "cc", LOADER_FLAGS, LOADER_LIBS)
        return (obj, loader) if obj and loader else None
    obj = compile_cached("bindsnoop-bpf", ["bindsnoop.bpf.c"], cc, BPF_FLAGS, suffix=".o",
                         what="gotrace's BPF program")
    if not LIBBPF_HEADER.exists():
        raise GotraceError(f"building gotrace's BPF loader needs libbpf's headers ({LIBBPF_HEADER}): {INSTALL}")
    loader = compile_cached("bindload", ["bindload.c"], "cc", LOADER_FLAGS, LOADER_LIBS, what="the BPF loader")
    return obj, loader


def empty_probes_object() -> Path:
    """The program with every probe where it is and each body empty (GOTRACE_EMPTY_PROBES): what
    trapping into it costs, with nothing recorded — the bench's floor (bench/bench_bind.py)."""
    from ...csrc.build import compile_cached

    cc = bpf_cc() or BPF_CC[0]
    return compile_cached("bindsnoop-bpf-empty", ["bindsnoop.bpf.c"], cc, [*BPF_FLAGS[:-1], "-DGOTRACE_EMPTY_PROBES",
                          BPF_FLAGS[-1]], suffix=".o", what="gotrace's BPF program (empty probes)")


def file_offset(path: str, vaddr: int) -> int | None:
    """Where a link-time address lies in the file (uprobes are placed by file offset)."""
    for ptype, seg, _align in program_headers(path):
        if ptype == PT_LOAD and seg.vmaddr <= vaddr < seg.vmaddr + seg.filesize:
            return seg.fileoff + (vaddr - seg.vmaddr)
    return None


def loader_args(root_pid: int) -> list[str]:
    """bindload's arguments after OBJ (its USAGE): ld.so, the root, bindsnoop.bt's layout, file offsets."""
    ldso, lay = require_layout()
    funcs = facts.function_ranges(ldso, frozenset(FUNCTIONS))
    offsets = [file_offset(ldso, funcs[f][0]) if f in funcs else None for f in FUNCTIONS]
    if None in offsets:
        raise BackendUnavailable("bpf backend unavailable: ld.so's functions are not where its symbols say")
    layout = [lay.lookup, *lay.fixup, *lay.profile_fixup, *lay.text]
    return [ldso, str(root_pid), *(str(v) for v in layout), *(str(o) for o in offsets)]


def start_gated(argv: list[str], env: dict[str, str], built: tuple[Path, Path]) -> tuple[GatedChild, subprocess.Popen]:
    """``argv``'s gated child and the loader attaching the program for it, in its own
    session (a terminal's Ctrl-C is for the command). The loader's arguments are
    resolved before the child exists, so a failure starts nothing."""
    obj, loader = built
    args = loader_args(0)  # raises before anything is started
    child = GatedChild(argv, env)
    child.start()
    args[1] = str(child.pid)
    # the loader sends each program's and object's file here as it is named (bpf/backend.py: _KeptFiles)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:  # room for a burst of execs while gotrace's reader waits for the CPU (the loader never blocks)
        theirs.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)  # SO_SNDBUFFORCE: root may exceed wmem_max
        ours.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
    except OSError:
        pass
    try:
        proc = subprocess.Popen([str(loader), str(obj), *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                pass_fds=(theirs.fileno(),),
                                env={**os.environ, "GOTRACE_KEEP_FD": str(theirs.fileno())})
    except OSError as exc:
        child.abort()
        ours.close()
        raise BackendUnavailable(f"cannot start gotrace's BPF loader: {exc.strerror}") from None
    finally:
        theirs.close()
    proc.kept_files = ours  # type: ignore[attr-defined]
    return child, proc


def loader_pids() -> list[int]:
    """Every bindload started for one command (one told to stop still detaches its uprobes, ~0.5 s);
    not the agent (``bindload --agent``), which stays."""
    found = []
    for p in procfs.pids():
        argv = procfs.cmdline(p)
        if argv and os.path.basename(argv[0]).startswith("bindload-") and argv[1:2] != ["--agent"]:
            found.append(p)
    return found
