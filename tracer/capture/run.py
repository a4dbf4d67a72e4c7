"""Runs a command under a backend and saves the session: the library's bind API.

``bind()`` is what ``gotrace bind`` calls and what a notebook or script can call
directly. Event chunks from the backend are buffered up to a bounded size,
written as Parquet parts, counted into the report's tally, and (optionally)
handed to ``on_chunk`` as pandas DataFrames while the command is still running.
Only ``on_chunk`` needs pandas: the CLI passes none and never imports it
(see heavy.pyarrow_without_pandas).
"""
from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..heavy import pa, pd

from . import choose
from ..analysis.tally import EventTally
from ..errors import GotraceError, TracerDidNotStart
from ..session.writer import SessionWriter, create_unique, prepare_directory
from ..version import __version__
from .backend import CaptureRequest
from .child import resolve_command
from .images import image_rows
from .object_keeper import ObjectKeeper
from .sink import ChunkSink, Progress
from .translated import translation as translate


@dataclass
class BindResult:
    session: Path
    exit_code: int
    backend: str
    choice: str
    complete: bool
    interrupted: int
    lost_events: int
    events: int
    write_error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, repr=False)  # as saved in meta.json
    tally: EventTally | None = field(default=None, repr=False)  # of the events saved
    processes: list[dict] = field(default_factory=list, repr=False)  # as saved
    relocations: list[dict] = field(default_factory=list, repr=False)
    images: list[dict] = field(default_factory=list, repr=False)

    def report(self, top: int = 10) -> dict[str, Any]:
        """The session's report (as `gotrace report --json` gives it), from what
        the run kept in memory: nothing is read back."""
        from ..analysis.report import report_session, summarize

        if self.tally is None:
            return report_session(self.session, top)
        return summarize(self.session, self.meta, self.tally, self.processes, self.relocations, top, self.images)


def _time_guest_lookups(path: Path, translation: translate.Translation) -> dict:
    """Latencies the qemu plugin measured, into the saved events of translated processes."""
    from .translated import guest_latency

    records = guest_latency.read_records(translation.timing_dir)
    return guest_latency.apply(path / "events", records, translation.host_exe)


DEFAULT_PARENT = "gotrace-sessions"


def _tally_holds(tally: EventTally, meta: dict, processes: list[dict]) -> bool:
    """Whether the summary counted while capturing split translator from guest
    as the saved session's report will (it knows the translators only now)."""
    from ..analysis.translator import from_session

    saved = from_session(meta, processes)
    seen = set(tally.exes) | (set(tally.translator.exes) if tally.translator else set())
    now = tally.translators or (lambda exe: False)
    return all(bool(now(exe)) == bool(saved(exe)) for exe in seen)


def default_session_dir(argv: list[str]) -> Path:
    """A new directory gotrace-sessions/<time>-<cmd> (created, with gotrace-sessions/;
    -2, -3 … when a run in the same second took the name)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = os.path.basename(argv[0]) if argv else "cmd"
    return create_unique(Path(DEFAULT_PARENT), f"{stamp}-{name}")


LOADER_ENV = ("LD_LIBRARY_PATH", "LD_PRELOAD", "LD_BIND_NOW", "LD_DYNAMIC_WEAK", "DYLD_LIBRARY_PATH",
              "DYLD_FALLBACK_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "DYLD_FORCE_FLAT_NAMESPACE")


def bind(argv: list[str], out: str | os.PathLike | None = None, backend: str = "auto",
         force: bool = False, env: dict[str, str] | None = None,
         on_chunk: Callable[[pd.DataFrame], None] | None = None,
         progress: Progress | None = None, on_choice: Callable[[str], None] | None = None,
         attach: int | None = None, arch: str | None = None, register_binfmt: bool = False,
         on_warning: Callable[[str], None] | None = None) -> BindResult:
    """Run ``argv`` with every descendant under capture and save a session.

    With ``attach=PID`` (lldb backend), trace that running process from now
    on instead; ``argv`` is then taken from its command line. With ``arch``,
    run the command as that architecture through its binfmt_misc translator
    (see tracer.translate); ``register_binfmt`` registers qemu for this run.
    On macOS ``arch`` runs it through Rosetta 2 (capture/translated/rosetta.py).
    ``on_warning`` hears what the user should know before the run (SIP).
    """
    env = dict(os.environ if env is None else env)
    rosetta = None  # the RosettaRun of an --arch run on macOS
    translated_by_rosetta = False
    if arch is not None and platform.system() == "Darwin":  # not run on macOS (no Mac here)
        from .translated import rosetta as rosetta_mod

        if attach is not None:
            raise GotraceError("--arch starts a command; it cannot be combined with --pid/--attach")
        rosetta_mod.check_program(arch, argv, env)
        rosetta = rosetta_mod.prepare(arch, argv, env)
        translated_by_rosetta = rosetta is not None and rosetta.translator is not None
        rosetta_mod.check_backend(backend, rosetta)
        if backend == "lldb" and translated_by_rosetta:
            from .lldb.launch_plan import rosetta_plan
            rosetta_plan(command_env=env)  # its refusals before anything starts
        arch = None
    if attach is not None:
        from .lldb.backend import check_attachable
        check_attachable(attach)
        from ..procfs import cmdline
        argv = cmdline(attach) or [f"pid{attach}"]
    translation = None
    if arch is not None:
        if attach is not None:
            raise GotraceError("--arch starts a command; it cannot be combined with --pid/--attach")
        wanted = translate.normalize(arch)
        translate.check_program(wanted, argv, env)
        foreign = wanted != translate.host_arch()
        if foreign and backend in ("bpf", "bpftrace", "lldb"):
            raise GotraceError(f"--backend {backend} cannot see translated guest code (uprobes and lldb's "
                               "breakpoints land in the translator, not the guest); use --backend ld-debug")
        if foreign and backend == "auto":
            backend = "ld-debug"
        translation = translate.prepare(arch, argv, env, register_binfmt, time_guest=True)
    try:
        if attach is None:
            resolve_command(argv, env)  # unknown commands fail before anything is created
        chosen, choice = choose.choose(backend, attach, rosetta=translated_by_rosetta)
    except GotraceError:
        if translation is not None:  # a handler registered for this run goes again
            translation.close()
        raise
    lldb_arch = translated_by_rosetta and chosen.name == "lldb"  # lldb starts it as x86_64 itself, no `arch`
    if lldb_arch:
        choice += (f"; running as {rosetta.arch} under Rosetta 2 (an {rosetta.arch} launch shim; lldb's debugserver "
                   "hands the process to Rosetta's)")
    elif rosetta is not None:
        choice += f"; running as {rosetta.arch} through `arch -{rosetta.arch}`" + (
            " (Rosetta 2)" if rosetta.translator else "")
    if translation is not None:
        choice += (f"; running as {translation.arch} through {translation.handler.translator} "
                   f"(binfmt_misc {translation.handler.name}"
                   + (", registered for this run)" if translation.registered else ")"))
    from . import prelaunch
    if prelaunch.pending_backend() not in (None, chosen.name):  # the console script's early tracer is not for this run
        prelaunch.discard()
    if on_choice is not None:
        on_choice(choice)
    path = prepare_directory(Path(out), force) if out else default_session_dir(argv)
    progress = progress or Progress()
    uname = platform.uname()
    writer = SessionWriter(path, {
        "command": argv[0], "argv": list(argv), "cwd": os.getcwd(),
        "host": socket.gethostname(), "arch": uname.machine, "kernel": uname.release,
        "os": uname.system, "backend": chosen.name, "backend_choice": choice,
        # pyarrow adds its own once loaded: looking it up now costs ~10 ms before the command starts
        "versions": {"gotrace": __version__, "python": sys.version.split()[0]},
        "start_time": time.time(), "start_ns": time.monotonic_ns(),
        # what steers the dynamic linker's searches, as the command got it (gotrace why reads it)
        "loader_env": {k: v for k, v in env.items() if k in LOADER_ENV},
        "translation": translation.meta() if translation is not None else (
            rosetta.meta() if rosetta is not None else None),
    })
    keeper = ObjectKeeper(os.getcwd())
    sink = ChunkSink(writer, progress, on_chunk, translators=lambda: translate.translator_filter(translation),
                     on_table=keeper.see)

    def on_process(n: int) -> None:
        progress.processes = n

    request = CaptureRequest(argv=list(argv), env=env, sink=sink, on_process=on_process, attach=attach,
                             wrap=rosetta.wrap if rosetta is not None and not lldb_arch else None,
                             arch=rosetta.arch if lldb_arch else None,
                             on_warning=on_warning or (lambda text: None), on_exec=keeper.exec,
                             keep_object=keeper.keep)
    result = None
    failure: str | None = None
    try:
        while True:
            try:
                result = chosen.capture(request)
                break
            except TracerDidNotStart as exc:  # nothing ran: auto goes on to the next backend
                instead = choose.fall_back(chosen.name, exc.message) if backend == "auto" else None
                if instead is None:
                    raise
                chosen, choice = instead
                writer.meta.update(backend=chosen.name, backend_choice=choice)
                if on_choice is not None:
                    on_choice(choice)
    except KeyboardInterrupt:
        failure = "interrupted"
        raise
    finally:
        sink.close()
        guest_timing = None
        if translation is not None and translation.timing_dir and result is not None and writer.events_written:
            guest_timing = _time_guest_lookups(path, translation)
        if translation is not None:
            translation.close()
        writer.meta["versions"].update(pyarrow=pa.__version__)  # what wrote the tables
        images: list[dict] = []
        if result is not None:
            procs = translate.annotate(result.processes or [], os.getcwd(), translation)
            writer.write_table("processes", procs)
            images = image_rows(result.images)
            writer.write_table("images", images)
            writer.write_table("relocations", result.relocations or [])
            for name, table in keeper.finish(procs, images).items():  # what the analyses read of each object
                writer.write_table(name, table)
            complete = not result.interrupted and writer.write_error is None and result.incomplete_reason is None
            writer.finish(complete, end_time=time.time(), end_ns=time.monotonic_ns(),
                          exit_code=result.exit_code, interrupted_by=result.interrupted or None,
                          lost_events=result.lost_events, malformed_records=result.malformed_records,
                          processes=len(procs),
                          **({"incomplete_reason": result.incomplete_reason} if result.incomplete_reason else {}),
                          **result.meta, **({"guest_latency": guest_timing} if guest_timing else {}))
        elif writer.events_written == 0 and isinstance(sys.exc_info()[1], GotraceError):
            keeper.finish([], [])
            shutil.rmtree(path, ignore_errors=True)  # refused before the command ran: leave no half session behind
        else:  # an internal error may come after the command ran: what was captured, and the error, are kept
            error = sys.exc_info()[1]
            for name, table in keeper.finish([], []).items():
                writer.write_table(name, table)
            writer.finish(False, end_time=time.time(), end_ns=time.monotonic_ns(),
                          failure=failure or (f"capture failed: {type(error).__name__}: {error}" if error is not None
                                              else "capture failed"))
    # interrupted: the shell convention for the signal (130 for Ctrl-C), whatever the child did
    exit_code = 128 + result.interrupted if result.interrupted else result.exit_code
    return BindResult(session=path, exit_code=exit_code, backend=chosen.name, choice=choice,
                      complete=writer.meta["complete"], interrupted=result.interrupted,
                      lost_events=result.lost_events, events=writer.events_written,
                      write_error=writer.write_error, meta=writer.meta,
                      # guest timing rewrote the saved events' latencies: the report reads them back
                      tally=None if guest_timing or not _tally_holds(sink.tally, writer.meta, procs) else sink.tally,
                      processes=procs,
                      relocations=result.relocations or [], images=images)
