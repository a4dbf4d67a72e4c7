"""The macOS backend that needs no root: dyld's own account (DYLD_PRINT_*) of every process.

The command runs with DYLD_PRINT_LIBRARIES, _SEGMENTS, _BINDINGS and _APIS sent to
one file with DYLD_PRINT_TO_FILE; every descendant inherits them (but those of a
SIP-protected program: sip.py), and dyld in each process appends its lines there,
Rosetta-translated processes included. A reader thread turns the growing file into
events (log.py), `ps` samples the process tree (procwatch.py) for parents, Rosetta
and processes that wrote nothing. What this cannot give, said in the session:
latency (dyld prints no times), failed lookups beyond missing weak imports and
dlsym, per-image fixup time, exit codes but the command's, who called dlsym. A
process that may print but not choose its output file (dyld honours
DYLD_PRINT_TO_FILE only with AMFI's custom-shared-cache permission:
DyldProcessConfig.cpp ``Logging``) prints to its own stderr instead: its lines
are then in the command's output, not in the session.

Not run on macOS: no Mac was at hand. Everything it builds (the environment, the
`arch` wrapper, the parsing of dyld's and ps's output) is tested here on output in
the documented formats; on Linux the backend's probe says it needs macOS.
"""
from __future__ import annotations

import os
import platform
import tempfile
import time
from typing import Callable

from ..backend import Availability, CaptureRequest, CaptureResult
from ..background import Poller, preload
from ..child import GatedChild
from ...session.schema import events_table, loader_env
from . import sip
from .log import DyldLog, event_columns

POLL_S = 0.1
VARIABLES = ("DYLD_PRINT_LIBRARIES", "DYLD_PRINT_SEGMENTS", "DYLD_PRINT_BINDINGS", "DYLD_PRINT_APIS")


def dyld_environment(logfile: str) -> dict[str, str]:
    """The variables every traced process gets: dyld's account of it, appended to ``logfile``."""
    return {**{v: "1" for v in VARIABLES}, "DYLD_PRINT_TO_FILE": logfile}


class DyldPrintBackend:
    name = "dyld-print"

    def probe(self) -> Availability:
        if platform.system() != "Darwin":
            return Availability(False, f"dyld-print needs macOS's dyld (this is {platform.system()})",
                                "here use ld-debug or bpftrace; a log recorded on a Mac (DYLD_PRINT_TO_FILE) is "
                                "read with `gotrace import dyld-print LOG`")
        return Availability(True, "dyld's DYLD_PRINT_* account needs no privileges")

    def capture(self, request: CaptureRequest) -> CaptureResult:
        fd, logfile = tempfile.mkstemp(prefix="gotrace-dyld-", suffix=".log")
        os.close(fd)
        dyld_vars = dyld_environment(logfile)
        env = {**request.env, **dyld_vars}
        argv = request.wrap(request.argv, dyld_vars) if request.wrap else list(request.argv)
        warnings = sip.before(request.argv, request.env)
        for w in warnings:
            request.on_warning(w)
        log = DyldLog()
        reader = LogReader(logfile, log, request.sink)
        child = GatedChild(argv, env)
        watch = None
        try:
            child.start()
            from .procwatch import TreeWatch

            watch = TreeWatch(child.pid)
            reader.start()
            watch.start()
            child.release()
            preload()
            exit_code = child.wait()
        finally:
            if watch is not None:
                watch.stop()
            reader.stop()
            if not os.environ.get("GOTRACE_DYLD_LOG"):
                try:
                    os.unlink(logfile)
                except OSError:
                    pass
        return self._result(log, watch, child, request, exit_code, warnings, logfile, env)

    def _result(self, log: DyldLog, watch, child: GatedChild, request: CaptureRequest, exit_code: int,
                warnings: list[str], logfile: str, child_env: dict[str, str]) -> CaptureResult:
        from .procwatch import image_environment

        host_arm64 = platform.machine() == "arm64"
        processes = log.processes(host_arm64=host_arm64)
        seen = watch.seen if watch is not None else {}
        for row in processes:
            s = seen.get(row["pid"])
            row["ppid"] = s.ppid if s else None
            row["loader_env"] = image_environment(s, row.get("exe"))
            if s and s.translated:
                row["translator"] = "rosetta"
        root_rows = [r for r in processes if r["pid"] == child.pid]
        if not root_rows:  # the command itself wrote nothing (SIP): it still ran
            root_rows = [{"pid": child.pid, "exe": request.argv[0], "arch": None, "translator": None}]
            processes.insert(0, root_rows[0])
        root_rows[0].update(argv=list(request.argv), start_ns=child.start_ns,
                            loader_env=loader_env(f"{k}={v}" for k, v in child_env.items()))  # exec'd so by gotrace
        root_rows[0]["ppid"] = os.getpid()
        root_rows[-1].update(exit_code=exit_code, end_ns=child.end_ns)
        accounted = {r["pid"] for r in processes if r.get("exe") is not None and r["pid"] in log.accounts}
        silent = sip.silent(seen, accounted, child.pid)
        st = log.stats()
        return CaptureResult(
            exit_code=exit_code, interrupted=child.interrupted, processes=processes, images=log.images(),
            relocations=None, malformed_records=st.malformed,
            meta={"ts_source": "time gotrace read the line (dyld prints no timestamps)", "latency_method": None,
                  "dyld_print": {"variables": list(VARIABLES), "lines": st.bodies + st.malformed - st.unknown,
                                 "unknown_lines": st.unknown, "ambiguous_lines": st.ambiguous,
                                 "lost_lines": st.lost, "stray_text": st.stray, "unnamed_binds": st.prebuilt,
                                 "log": logfile if os.environ.get("GOTRACE_DYLD_LOG") else None},
                  "loader_env_unseen": sum(1 for p in processes if p.get("loader_env") is None),
                  "process_tree": {"method": "ps sampled every 0.25 s (processes shorter than that can be missed; "
                                             "each image's environment read then, KERN_PROCARGS2)",
                                   "samples": watch.samples if watch else 0,
                                   "error": watch.error if watch else None},
                  "sip_warnings": warnings, "silent_processes": silent,
                  "limits": ["no latency", "no failed lookups but missing weak imports and dlsym",
                             "no per-image fixup time", "exit codes of the command only",
                             "SIP-protected programs and their descendants write no line"]})


class LogReader(Poller):
    """Reads the log as dyld appends to it and hands events to the sink."""

    interval = POLL_S

    def __init__(self, path: str, log: DyldLog, sink: Callable):
        super().__init__("gotrace-dyld-print")
        self.path, self.log, self.sink = path, log, sink
        self.offset = 0

    def finish(self) -> None:
        self._emit(self.log.close(time.monotonic_ns()))

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return
        if data:
            self.offset += len(data)
            self._emit(self.log.feed(data, time.monotonic_ns()))

    def _emit(self, rows: list[tuple]) -> None:
        if rows:
            self.sink(events_table(event_columns(rows), "dyld-print"))
