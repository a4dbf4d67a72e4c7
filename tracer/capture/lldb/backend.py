"""The debugger backend: lldb's SB API, breakpoints on ld.so's lookup.

It works where uprobes cannot (inside translated processes, on any platform
lldb runs) and needs no root to trace your own processes, at a price: every
binding stops the process twice, about a millisecond each here, and lldb
follows one process, so descendants run untraced (the session says so and
``auto`` never picks this backend). Latency is calibrated against lldb's own
stop/resume cost in the same run (see recorder.py).

Linux x86_64 with glibc is what is implemented and verified; macOS dyld
breakpoints are not (no macOS here).
"""
from __future__ import annotations

import platform

import os

from ... import procfs
from ...arch import COMPAT, host_arch
from ...binary.facts import dynamically_linked, file_arch, script_interpreter
from ...errors import BackendUnavailable, GotraceError
from ..backend import Availability, CaptureRequest, CaptureResult
from ..bpftrace.launch import bindsnoop_pids, wait_for_bindsnoop_to_go
from ..child import resolve_command
from ..ldso import DEBUG_SYMBOLS_FIX, UNRESOLVABLE, ldso_layout, ldso_path
from .launch_plan import NATIVE, rosetta_plan

class LldbBackend:
    name = "lldb"

    def probe(self) -> Availability:
        if platform.system() == "Darwin":  # the dyld profile (dyld_recorder.py); not run on macOS
            from .loader import import_lldb
            try:
                import_lldb()
            except BackendUnavailable as exc:
                return Availability(False, exc.message)
            return Availability(True, "lldb's Python bindings (Xcode's) and dyld4's functions by name")
        if platform.system() != "Linux" or platform.machine() != "x86_64":
            return Availability(False, f"the lldb backend is implemented for Linux x86_64 only "
                                       f"(this is {platform.system()} {platform.machine()})")
        ldso = ldso_path()
        if ldso is None or ldso_layout(ldso) is None:
            return Availability(False, UNRESOLVABLE, DEBUG_SYMBOLS_FIX)
        from .loader import import_lldb
        try:
            import_lldb()
        except BackendUnavailable as exc:
            return Availability(False, exc.message)
        return Availability(True, "lldb's Python bindings and lldb-server are available")

    def capture(self, request: CaptureRequest) -> CaptureResult:
        from ...session.schema import events_from_rows
        from .driver import LldbDriver
        from .loader import import_lldb
        from .tables import latency_method, processes_rows

        plan = NATIVE
        if request.arch is not None:  # macOS, x86_64 on Apple Silicon (run.py); not run on macOS
            plan = rosetta_plan(command_env=request.env)
        lldb = import_lldb()
        wait_for_bindsnoop_to_go("hide lldb's breakpoints")

        def sink(rows: list[tuple]) -> None:
            request.sink(events_from_rows(rows))

        driver = LldbDriver(lldb, sink=sink)
        if request.attach:
            res = driver.attach(request.attach)
        else:
            exe = os.path.abspath(resolve_command(request.argv, request.env))  # as typed, it may be relative
            _one_elf_program(request.argv[0], exe)
            res = driver.launch(request.argv, exe, request.env, plan)
        request.on_process(1)
        processes = processes_rows(res.pid, res.ppid, res.runs, res.exit_code)
        limits = []
        if res.exit_unknown:
            limits.append("exit status unknown: lldb-server lost the process as it exited (a thread vanished "
                          "while stopped) and had already reaped it; gotrace exits 1")
        if res.stops == 0:
            limits.append("no lookup breakpoint was hit: another tracer's uprobe on ld.so (bpftrace, perf) "
                          "may have taken the trap")
        note = "descendants not traced: lldb follows one process (it detaches forked children)"
        return CaptureResult(
            incomplete_reason=_uprobes_came(),
            exit_code=res.exit_code if res.exit_code is not None else (1 if res.exit_unknown else 0),
            interrupted=res.interrupted,
            processes=processes,
            images=list(res.images),
            relocations=list(res.relocations) or None,
            meta={
                "ts_source": "CLOCK_MONOTONIC when gotrace saw the lookup's entry breakpoint stop",
                "latency_method": latency_method(res.calibration),
                "descendants_traced": False,
                "attached": bool(request.attach),
                "lldb_stops": res.stops,
                "signal_stops": res.signal_stops,
                "lldb_exit": res.exit_detail,
                "exit_code_unknown": res.exit_unknown,
                "unpaired_lookups": res.unpaired,
                "lookups_cut_short": res.cut_short,
                **({"lldb_launch": plan.meta()} if plan.translated else {}),
                "limits": limits + [note, *(["no relocation times (nested lookup stops would dominate them)"]
                                            if platform.system() != "Darwin" else []),
                           "each binding stops the process twice (about 2 ms each here)"],
            },
        )


def _uprobes_came() -> str | None:
    """None, or why the session may lack lookups: a bpftrace (bindsnoop.bt) or gotrace BPF loader
    that started during the run puts uprobes on the ld.so code lldb's breakpoints are on; a lookup a
    uprobe traps first never stops lldb, and a uprobe's removal writes back the file's byte over
    lldb's breakpoint — silently, unless said here. (One that came and went between the start and
    this check is not seen.)"""
    others = bindsnoop_pids(loaders=True)
    if not others:
        return None
    who = os.path.basename((procfs.cmdline(others[0]) or ["a tracer"])[0])
    return (f"{who} (pid {others[0]}) put uprobes on ld.so during the run: lookups they trapped (or made after "
            "their removal wiped lldb's breakpoints) never stopped lldb, so the counts may be a lower bound; run "
            "one tracer at a time")


def _one_elf_program(name: str, exe: str) -> None:
    """Refuse at once, in one line, what lldb cannot trace: a script (lldb would
    follow its interpreter, which it cannot even load as a target), or a static
    program (no dynamic linker, nothing to record)."""
    interpreter = script_interpreter(exe)
    if interpreter is not None:
        hint = (" (PyPI's go wrapper: trace the toolchain itself, $(go env GOROOT)/bin/go)"
                if os.path.basename(name) == "go" else "")
        raise GotraceError(f"{name} is a script run by {interpreter}: the lldb backend traces one ELF program, "
                           f"so give it the program itself{hint}, or use --backend ld-debug or bpftrace", 2)
    if dynamically_linked(exe) is False:
        raise GotraceError(f"{name} is not dynamically linked: there are no dynamic-linker bindings to trace "
                           "(static Go binaries have none)", 2)
    _not_own_32_bit(name, exe)


def _not_own_32_bit(name: str, exe: str) -> None:
    """A 32-bit program of the host's own CPU (i386 on x86_64) loads its own ld.so
    (/lib/ld-linux.so.2), not the one whose breakpoints the recorder sets: refuse in one line."""
    arch = file_arch(exe)
    if arch in COMPAT.get(host_arch(), ()):
        raise GotraceError(f"{name} is a 32-bit {arch} program: it loads its own ld.so, which the lldb backend does "
                           "not follow; use --backend ld-debug", 2)


def check_attachable(pid: int) -> None:
    """A one-line error before anything touches the process, when PID cannot be traced safely: gone,
    not dynamically linked (nothing to trace: the refusal must not come after lldb attached), or its
    ld.so lookup already trapped by another tracer (see recorder.foreign_probe)."""
    if pid <= 0 or not procfs.alive(pid):
        raise GotraceError(f"no process {pid}: check the PID with ps", 2)
    if platform.system() != "Linux":
        return
    try:
        exe = procfs.exe(pid)
        base = procfs.auxv(pid).get(procfs.AT_BASE)
    except OSError:
        return  # another user's, a kernel thread, a zombie: the attach says which
    _not_own_32_bit(f"process {pid} ({exe})", f"/proc/{pid}/exe")
    if not base:
        raise GotraceError(f"process {pid} ({exe}) is not dynamically linked: there are no dynamic-linker bindings "
                           "to trace (static Go binaries have none); it was left alone", 2)
    layout = ldso_layout(ldso_path()) if ldso_path() else None
    if layout is None:
        return
    wait_for_bindsnoop_to_go("hide lldb's breakpoints")  # gotrace's own tracers, still detaching
    try:
        with open(f"/proc/{pid}/mem", "rb") as fh:
            fh.seek(base + layout.lookup)
            first = fh.read(1)
    except OSError:
        return  # not readable here: checked again once attached, before any breakpoint
    from .recorder import TRAP, foreign_probe

    if first == TRAP:
        raise GotraceError(foreign_probe(pid), 2)
