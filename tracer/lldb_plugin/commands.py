"""The `gotrace` command inside lldb: aslr, stubs, bind start|stop|save.

Registered by gotrace_lldb.py (`command script import …`, see `gotrace
lldb-init`). Each command parses its arguments, calls the library, and
writes text (or JSON with --json) to lldb's result; every failure is one
line through result.SetError, never a traceback.

Recording (`gotrace bind start`) uses the same recorder as `gotrace bind
--backend lldb` (glibc's BindingRecorder; on macOS dyld4's DyldRecorder, not
run on macOS), driven by breakpoint callbacks that return
False (lldb resumes at once) instead of gotrace's own event loop, so it works
in any lldb session, including one the user drives by hand.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import lldb

from ..capture.ldso import require_layout
from ..capture.lldb.driver import ImageRun
from ..capture.lldb.recorder import BindingRecorder
from ..capture.lldb.tables import latency_method, processes_rows, write_session
from ..errors import BackendUnavailable, GotraceError
from ..procfs import AT_BASE, auxv, cmdline, ppid as read_ppid
from .live import image_bases, live_stubs, slots_to_dicts

HELP = "gotrace: image slides, live GOT slots and binding recording for the current process."
LONG_HELP = """gotrace commands inside lldb (see also the gotrace CLI):

  gotrace aslr [--json]           every loaded image: link-time base, load base, slide
  gotrace stubs [IMAGE] [--json]  live GOT / lazy-pointer slots of IMAGE (default: the program)
  gotrace bind start [--no-calibrate]   record dynamic-linker bindings from now on
  gotrace bind stop               stop recording (breakpoints removed, events kept)
  gotrace bind save DIR [--force] save a session for `gotrace report` / load_session()

Linux x86_64 with glibc; needs glibc's debug symbols for ld.so (libc6-dbg)."""

_STATE: dict = {}  # the recording in progress: recorder, target, started_ns, ...
# lldb finds command and callback functions by a dotted name resolved from its
# own session namespace, where only the imported script module (gotrace_lldb)
# is bound: register() records that module's name here.
_PREFIX = {"module": __name__}


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _ArgError(f"{self.prog}: {message}")


def _parse(parser: _Parser, command: str):
    try:
        return parser.parse_args(shlex.split(command))
    except SystemExit:  # --help
        raise _ArgError(parser.format_help().strip()) from None


def _hex(v) -> str:
    return "-" if v is None else f"{v:#x}"


def _target(debugger, exe_ctx):
    target = exe_ctx.GetTarget() if exe_ctx and exe_ctx.GetTarget().IsValid() else debugger.GetSelectedTarget()
    if not target or not target.IsValid():
        raise GotraceError("no target: start lldb with a program (lldb ./prog) or attach first")
    return target


def cmd_aslr(debugger, command, exe_ctx, result, internal_dict):
    """Every loaded image of the current process: link-time base, load base, slide.

    Syntax: gotrace aslr [--json]

    The link-time base is gotrace's own reading of each file (ELF: first PT_LOAD,
    page aligned; Mach-O: __TEXT), the load base is where lldb has the image's
    header mapped, and slide = load - link (what `image list -o` prints).
    """
    p = _Parser(prog="gotrace aslr", add_help=True)
    p.add_argument("--json", action="store_true")
    try:
        args = _parse(p, command)
        target = _target(debugger, exe_ctx)
        process = target.GetProcess()
        if not process or not process.IsValid() or not process.is_alive:
            raise GotraceError("no live process: run (process launch --stop-at-entry) or attach first")
        rows = image_bases(target)
    except (_ArgError, GotraceError) as exc:
        result.SetError(str(exc) if isinstance(exc, _ArgError) else exc.message)
        return
    if args.json:
        from ..binary.aslr import to_dicts
        result.AppendMessage(json.dumps(to_dicts(rows), indent=2))
        return
    lines = [f"{'link base':>18}  {'load base':>18}  {'slide':>18}  pie  image"]
    for r in rows:
        pie = "?" if r.position_independent is None else ("yes" if r.position_independent else "no")
        lines.append(f"{_hex(r.link_base):>18}  {_hex(r.load_base):>18}  {_hex(r.slide):>18}  {pie:>3}  {r.path}")
    result.AppendMessage("\n".join(lines))


def cmd_stubs(debugger, command, exe_ctx, result, internal_dict):
    """The live import slots (GOT, lazy pointers) of an image in the stopped process.

    Syntax: gotrace stubs [IMAGE] [--json]

    For each slot: its runtime address, symbol, eager/lazy, the value it holds
    now and where that points (symbol@image), and its state: bound, unbound
    (a lazy slot still leading into the PLT), null, or outside (pointing into
    no loaded image — flagged, with the file's own anomalies from `gotrace stubs`).
    """
    p = _Parser(prog="gotrace stubs", add_help=True)
    p.add_argument("image", nargs="?")
    p.add_argument("--json", action="store_true")
    try:
        args = _parse(p, command)
        target = _target(debugger, exe_ctx)
        path, slots, anomalies = live_stubs(target, args.image)
    except (_ArgError, GotraceError) as exc:
        result.SetError(str(exc) if isinstance(exc, _ArgError) else exc.message)
        return
    except ValueError as exc:
        result.SetError(str(exc))
        return
    if args.json:
        result.AppendMessage(json.dumps({"path": path, "slots": slots_to_dicts(slots),
                                         "anomalies": [a.__dict__ for a in anomalies]}, indent=2))
    else:
        bound = sum(1 for s in slots if s.state == "bound")
        lines = [f"{path}: {len(slots)} slots, {bound} bound, "
                 f"{sum(1 for s in slots if s.state == 'unbound')} unbound (lazy), {len(anomalies)} anomalies",
                 f"{'slot':>18}  {'mode':5}  {'state':9}  {'value':>18}  symbol -> target"]
        for s in slots:
            lines.append(f"{s.address:#18x}  {s.mode:5}  {s.state:9}  {_hex(s.value):>18}  {s.symbol} -> {s.target or '-'}")
        for a in anomalies:
            lines.append(f"ANOMALY {a.kind} at {a.where}: {a.reason}")
        result.AppendMessage("\n".join(lines))
    if anomalies:
        result.SetStatus(lldb.eReturnStatusFailed)


def on_breakpoint(frame, bp_loc, internal_dict):
    """Breakpoint callback of a recording: hand the stop to the recorder, resume."""
    rec = _STATE.get("recorder")
    if rec is not None:
        rec.on_stop(frame.GetThread(), bp_loc.GetBreakpoint().GetID(), time.monotonic_ns())
    return False


def _with_callback(bp) -> None:
    bp.SetScriptCallbackFunction(f"{_PREFIX['module']}.on_breakpoint")


def _bind_start(debugger, target, args, result) -> None:
    if _STATE.get("recorder") is not None and _STATE.get("recording"):
        raise GotraceError("already recording; gotrace bind stop or gotrace bind save DIR first")
    process = target.GetProcess()
    if not process or not process.IsValid() or process.GetState() != lldb.eStateStopped:
        raise GotraceError("the process must exist and be stopped: process launch --stop-at-entry, or attach")
    if sys.platform == "darwin":  # dyld4's profile (capture/lldb/dyld_recorder.py); not run on macOS
        _bind_start_dyld(target, process, result)
        return
    try:
        _, layout = require_layout()
        from ..capture.bpftrace.launch import wait_for_bindsnoop_to_go

        wait_for_bindsnoop_to_go("hide lldb's breakpoints")  # gotrace's own tracers, still detaching
    except BackendUnavailable as exc:
        raise GotraceError(exc.message) from None
    pid = process.GetProcessID()
    base = auxv(pid).get(AT_BASE)
    if not base:
        raise GotraceError("this process has no dynamic linker (static binary): nothing to record")
    from ..capture.bpftrace.launch import wait_for_bindsnoop_to_go

    wait_for_bindsnoop_to_go("hide lldb's breakpoints")  # else every breakpoint in ld.so stays silent
    exe = target.GetExecutable().fullpath or "?"
    rec = BindingRecorder(lldb, target, process, layout, base, exe, on_breakpoint=_with_callback)
    if not args.no_calibrate:
        was_async = debugger.GetAsync()
        debugger.SetAsync(False)
        try:
            rec.calibrate(process.GetSelectedThread())
        finally:
            debugger.SetAsync(was_async)
    rec.arm()
    argv = cmdline(pid) or [exe]
    _STATE.update(recorder=rec, recording=True, target=target, pid=pid, ppid=read_ppid(pid),
                  run=ImageRun(exe, argv, time.monotonic_ns(), loader_env=_loader_env(pid)), start_time=time.time())
    cal = rec.calibration.median_ns
    result.AppendMessage(f"gotrace: recording bindings of pid {pid}"
                         + (f" (lldb stop/resume cost calibrated: {cal / 1e3:.0f} us median)" if cal else
                            " (not calibrated: latency_ns will be null)")
                         + "; continue the process, then: gotrace bind save DIR")


def _loader_env(pid: int) -> list[str] | None:
    """The dynamic linker's variables the stopped process was exec'd with (None: unreadable)."""
    from ..procfs import environ
    from ..session.schema import loader_env

    env = environ(pid)
    return None if env is None else loader_env(env)


def _bind_start_dyld(target, process, result) -> None:
    from ..arch import canonical
    from ..capture.lldb.dyld_recorder import DyldRecorder

    pid = process.GetProcessID()
    exe = target.GetExecutable().fullpath or "?"
    arch = canonical(target.GetTriple().split("-", 1)[0]) or "arm64"
    rec = DyldRecorder(lldb, target, process, exe, arch, on_breakpoint=_with_callback)
    rec.arm()
    _STATE.update(recorder=rec, recording=True, target=target, pid=pid, ppid=None,
                  run=ImageRun(exe, [exe], time.monotonic_ns(), loader_env=_loader_env(pid)), start_time=time.time())
    result.AppendMessage(f"gotrace: recording dyld4's bindings of pid {pid} ({arch}; raw stop-to-stop times); "
                         "continue the process, then: gotrace bind save DIR")


def _bind_stop() -> None:
    rec = _STATE.get("recorder")
    if rec is None:
        raise GotraceError("not recording: gotrace bind start first")
    if _STATE.get("recording"):
        process = _STATE["target"].GetProcess()
        if process and process.IsValid() and process.is_alive:
            rec.disarm()
        _STATE["recording"] = False
        _STATE["run"].end_ns = time.monotonic_ns()


def _bind_save(args, result) -> None:
    rec = _STATE.get("recorder")
    if rec is None:
        raise GotraceError("nothing recorded: gotrace bind start first")
    target = _STATE["target"]
    process = target.GetProcess()
    exited = process.IsValid() and process.GetState() == lldb.eStateExited
    if _STATE.get("recording"):
        _bind_stop()
    run = _STATE["run"]
    exit_code = process.GetExitStatus() if exited else None
    procs = processes_rows(_STATE["pid"], _STATE["ppid"], [run], exit_code)
    meta = {
        "command": run.argv[0] if run.argv else run.exe, "argv": run.argv, "cwd": os.getcwd(),
        "backend": "lldb", "backend_choice": "lldb command module (gotrace bind start)",
        "start_time": _STATE["start_time"], "end_time": time.time(), "start_ns": run.start_ns, "end_ns": run.end_ns,
        "exit_code": exit_code, "attached": True, "descendants_traced": False,
        "ts_source": "CLOCK_MONOTONIC when gotrace saw the lookup's entry breakpoint stop",
        "latency_method": latency_method(rec.calibration.describe()),
        "lldb_stops": rec.stops, "unpaired_lookups": rec.unpaired,
        "lookups_cut_short": rec.cut_short,
        "limits": ["descendants not traced: lldb follows one process", "no relocation times"],
    }
    n = write_session(args.dir, args.force, rec.rows, procs, rec.image_rows(), meta)
    result.AppendMessage(f"gotrace: {n} bindings saved: {args.dir}  (gotrace report {args.dir})")
    _STATE.clear()


def cmd_bind(debugger, command, exe_ctx, result, internal_dict):
    """Record dynamic-linker bindings of the current process.

    Syntax: gotrace bind start [--no-calibrate]
            gotrace bind stop
            gotrace bind save DIR [--force]

    start puts breakpoints on ld.so's _dl_lookup_symbol_x (and on each call site
    it returns to) whose callbacks record every binding and resume at once.
    Before arming it times lldb's own stop/resume cost on the stopped thread
    (a breakpoint pair around an empty function), so the saved session has
    both raw and corrected latency; --no-calibrate skips that (latency_ns null).
    save writes a session that `gotrace report` and load_session() read.
    """
    p = _Parser(prog="gotrace bind", add_help=True)
    p.add_argument("action", choices=["start", "stop", "save"])
    p.add_argument("dir", nargs="?")
    p.add_argument("--force", action="store_true")
    p.add_argument("--no-calibrate", action="store_true")
    try:
        args = _parse(p, command)
        target = _target(debugger, exe_ctx)
        if args.action == "start":
            _bind_start(debugger, target, args, result)
        elif args.action == "stop":
            _bind_stop()
            rec = _STATE["recorder"]
            result.AppendMessage(f"gotrace: stopped; {len(rec.rows)} bindings held; gotrace bind save DIR")
        else:
            if not args.dir:
                raise GotraceError("gotrace bind save needs a directory: gotrace bind save DIR")
            _bind_save(args, result)
    except _ArgError as exc:
        result.SetError(str(exc))
    except GotraceError as exc:
        result.SetError(exc.message)
    except RuntimeError as exc:
        result.SetError(str(exc))
    except ImportError as exc:  # what lldb's own Python cannot load: say which, and with what
        result.SetError(f"gotrace: lldb's Python {sys.version.split()[0]} ({sys.executable or 'embedded'}) "
                        f"cannot load what saving needs: {exc}; recreate gotrace's venv with the Python lldb "
                        f"embeds (python3 -m venv), or point GOTRACE_VENV at one made with it")


COMMANDS = ("cmd_aslr", "cmd_stubs", "cmd_bind", "on_breakpoint")


def register(debugger, module: str) -> None:
    """Add the gotrace container and its commands; ``module`` re-exports COMMANDS."""
    _PREFIX["module"] = module
    ci = debugger.GetCommandInterpreter()
    ret = lldb.SBCommandReturnObject()
    ci.HandleCommand(f"command container add -o -h {shlex.quote(HELP)} -H {shlex.quote(LONG_HELP)} gotrace", ret)
    for name, func, short in (("aslr", "cmd_aslr", "Image slides: link-time base, load base, slide."),
                              ("stubs", "cmd_stubs", "Live GOT / lazy-pointer slots of an image."),
                              ("bind", "cmd_bind", "Record bindings: start | stop | save DIR.")):
        ci.HandleCommand(f"command script add -o -s synchronous -f {module}.{func} -h {shlex.quote(short)} "
                         f"gotrace {name}", ret)
        if not ret.Succeeded():
            raise RuntimeError(f"cannot add gotrace {name}: {ret.GetError()}")
