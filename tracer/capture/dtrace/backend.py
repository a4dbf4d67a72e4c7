"""The `dtrace` backend: dscripts/*.d under DTrace's pid provider, one dtrace per process of the tree.

DTrace's pid provider instruments one process, so the tree is followed by
proctree.d (proc:::, progenyof) and each process gets a dtrace of its own:

* macOS (not run on macOS): execstop.d stops every new program at exec, before
  dyld runs in it; gotrace attaches dyldbindsnoop.d (every bind target dyld4
  looks up, each image's fixup time) and dlsymsnoop.d to it, and pidresume.d
  resumes it once their probes are on. DYLD_PRINT_LIBRARIES and _SEGMENTS run
  alongside so images, which the probes know by header address, get their paths.
  Rosetta-translated processes are refused by DTrace and said so.
* Linux, with DTrace for Linux: what DTrace can see there is libc's exported
  dlsym and dlopen (ld.so's own lookup functions are not probeable: Debian's
  ld.so is stripped) and the tree. DTrace for Linux has no stop(): the command
  itself is attached before it starts (its pid probes are uprobes on libc's file
  and survive its exec), every descendant when proctree.d reports its fork,
  ~0.4 s later. The session lists who was attached late, and what that misses.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess

from ...errors import BackendUnavailable
from ...session.schema import loader_env
from ..backend import Availability, CaptureRequest, CaptureResult
from ..background import preload
from ..child import GatedChild
from .decode import DtraceDecoder
from .fleet import Fleet
from .follow import Follow, events_of
from .hung import Watchdog, sweep_uprobes
from .names import Names
from .plan import Plan

DTRACE_ENV = "GOTRACE_DTRACE"


def dtrace_path() -> str | None:
    """$GOTRACE_DTRACE, else `dtrace` on PATH."""
    given = os.environ.get(DTRACE_ENV)
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which("dtrace")


def sip_restricts_dtrace(csrutil_status: str) -> bool:
    """Whether `csrutil status` says DTrace is restricted: SIP on, without the
    "DTrace Restrictions: disabled" of `csrutil enable --without dtrace`."""
    text = csrutil_status.lower()
    if "status: disabled" in text:
        return False
    return "dtrace restrictions: disabled" not in text


class DtraceBackend:
    name = "dtrace"

    def probe(self) -> Availability:
        darwin = platform.system() == "Darwin"
        other = "dyld-print" if darwin else "ld-debug or bpftrace"
        exe = dtrace_path()
        if exe is None:
            if os.environ.get(DTRACE_ENV):
                return Availability(False, f"{DTRACE_ENV}={os.environ[DTRACE_ENV]} is not an executable dtrace",
                                    "point it at one, or unset it")
            return Availability(False, "no dtrace on PATH", "macOS ships one (/usr/sbin/dtrace); on Linux install "
                                f"DTrace for Linux (dtrace-utils) or set {DTRACE_ENV}; or use --backend {other}")
        if os.geteuid() != 0:
            return Availability(False, "DTrace needs root", f"run gotrace with sudo, or use --backend {other}")
        if darwin:  # not run on macOS
            try:
                status = subprocess.run(["csrutil", "status"], capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                status = ""
            if status and sip_restricts_dtrace(status):
                return Availability(False, "System Integrity Protection restricts DTrace (csrutil status)",
                                    "in Recovery run `csrutil enable --without dtrace`, or use --backend dyld-print")
        return Availability(True, "DTrace's pid provider, one dtrace per process")

    def capture(self, request: CaptureRequest) -> CaptureResult:
        darwin = platform.system() == "Darwin"
        plan = Plan(dtrace_path() or "dtrace", darwin, platform.machine() == "arm64")
        env = dict(request.env)
        dyld = None
        if darwin:  # images by header address: named through dyld's own account (not run on macOS)
            from ..dyld_print.backend import dyld_environment
            import tempfile

            fd, dyld = tempfile.mkstemp(prefix="gotrace-dyld-", suffix=".log")
            os.close(fd)
            env.update({k: v for k, v in dyld_environment(dyld).items() if k != "DYLD_PRINT_BINDINGS"
                        and k != "DYLD_PRINT_APIS"})
        if not darwin:
            from ..bpftrace.launch import wait_for_bindsnoop_to_go

            wait_for_bindsnoop_to_go("keep DTrace from enabling its own")
        names = Names(darwin)
        decoder = DtraceDecoder(names.name_of, names.image_at)
        fleet = Fleet()
        child = GatedChild(request.argv, env, gate_exec=None if darwin else str(_gate()))
        child.start()
        run = Follow(plan, fleet, decoder, request, child.pid, names)
        fleet.on_line = run.on_line
        try:
            # Linux has no stop(): the command's own probes go on while it waits at the gate (in
            # csrc/execgate.c; they are uprobes on libc's file and outlive the exec), and first: a
            # second dtrace could not grab the process while the tree's holds it ("not a
            # dynamically-linked executable")
            if not darwin:
                run.attached[child.pid] = None
                self._start(fleet, plan.process(child.pid), str(child.pid))
                # the mappings are the gated Python's until the exec: read them at the first lookup
            self._start(fleet, plan.tree(child.pid), "tree")
        except BaseException:
            child.abort()
            fleet.stop(0)
            raise
        run.start()
        watchdog = None if darwin else Watchdog(fleet)
        if watchdog is not None:
            watchdog.start()
        try:
            child.release()
            preload()
            exit_code = child.wait()
        finally:
            if watchdog is not None:
                watchdog.stop()
            run.finish()
            if not darwin:
                sweep_uprobes()
        released = watchdog.released if watchdog is not None else []
        if dyld:
            names.read_dyld_log(dyld)
        dropped = fleet.records_dropped()
        decoder_rows = run.drain_rest()
        if decoder_rows:
            request.sink(events_of(decoder_rows))
        processes = decoder.processes_rows(child.pid, request.argv, exit_code, child.start_ns, child.end_ns,
                                           os.getpid(), root_env=loader_env(f"{k}={v}" for k, v in env.items()))
        return CaptureResult(
            exit_code=exit_code, interrupted=child.interrupted, processes=processes, images=None,
            incomplete_reason="; ".join(
                f"the dtrace of pid {r['pid']} ({r['exe'] or 'gone'}) hung, holding it stopped {r['held_s']} s "
                "(DTrace for Linux's process control): it was killed so the command could go on, and that "
                "process's dlsym and dlopen calls from then are not recorded" for r in released) or None,
            relocations=decoder.relocations, malformed_records=decoder.malformed, lost_events=dropped,
            meta={"ts_source": "DTrace's timestamp (CLOCK_MONOTONIC on Linux)",
                  "latency_method": {"method": "DTrace pid provider, entry to return: dlsym and dlopen"
                                     + (", dyld4's resolveSymbol per bind target" if darwin else ""),
                                     "includes": "the probes' own cost (a trap at entry and at return)"},
                  "dtrace": {"path": plan.dtrace, "attached": len(run.attached), "attached_late": run.late(),
                             "not_attached": run.not_attached, "stderr": run.stderr_lines(),
                             "records_dropped": dropped, "released": released},
                  "limits": (["Rosetta-translated processes (DTrace refuses them)", "no lazy bindings (dyld4 "
                              "binds at load)", "processes SIP restricts"] if darwin else
                             ["only dlsym and dlopen: ld.so's own lookups are not probeable (Debian's ld.so is "
                              "stripped)", "descendants are attached after they start (no stop() in DTrace for "
                              "Linux): their first calls are missed", "no eager or lazy bindings",
                              "loader_env is read from /proc when the exec's record arrives: null for a process "
                              "gone, or running another image, by then"]),
                  "loader_env_unseen": sum(1 for p in processes if p.get("loader_env") is None)})


    @staticmethod
    def _start(fleet: Fleet, argv: list[str], label: str) -> None:
        why = fleet.wait_ready(fleet.start(argv, label))
        if why:
            raise BackendUnavailable(f"dtrace could not start: {why}")


def _gate():
    """csrc/execgate.c, built once per source version: the command waits for its dtrace in a
    process that maps libc alone (a forked gotrace maps liblldb, pyarrow ..., where a pid
    probe named by function alone can fail to go on: "Failed to enable probe", seen here)."""
    from ...csrc.build import compile_cached

    return compile_cached("execgate", ["execgate.c"], "cc", ["-O2"], what="the dtrace launch gate")
