"""Runs one process under lldb (launched or attached) and feeds its stops to a recorder.

Launch keeps ASLR as the system has it (SBLaunchInfo disables it by default),
gives the process the user's stdin/stdout/stderr (reopened through
/proc/<gotrace>/fd/N; regular files are fed through a pipe so the process
appends where gotrace's own output would, instead of overwriting from offset
0), and tells lldb to pass every signal straight through without stopping —
Go preempts goroutines with SIGURG and handles SIGSEGV, SIGPIPE, SIGCHLD and
SIGPROF itself.

Descendants are not traced: lldb follows one process (follow-fork-mode
only chooses which); forked children run untraced, which the session says.
"""
from __future__ import annotations

import contextlib
import os
import signal
import stat
import threading
import time
from dataclasses import dataclass, field

from ...dispositions import PYTHON_IGNORED
from ...errors import BackendUnavailable, GotraceError
from ... import procfs
from ...procfs import AT_BASE, auxv, cmdline, ppid as read_ppid
from ...session.schema import loader_env
from ..child import exit_code_from_wait_status
from ..ldso import ldso_path, require_layout
from .launch_plan import NATIVE, LaunchPlan
from .recorder import BindingRecorder

DARWIN = os.uname().sysname == "Darwin"

WAIT_S = 1  # event wait slice: how soon Ctrl-C is noticed
LEAVE_ALONE = {"SIGTRAP", "SIGSTOP", "SIGKILL"}  # lldb's own, or cannot be caught anyway
# Signals whose default action is not to end the process: never worth a stop
# (Go's async preemption is SIGURG, many times a second in a busy program).
HARMLESS = {"SIGURG", "SIGCHLD", "SIGCLD", "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU"}


@dataclass
class ImageRun:
    """One program image the traced pid ran (a new one after each exec)."""

    exe: str
    argv: list[str]
    start_ns: int
    end_ns: int | None = None
    loader_env: list[str] | None = None  # the dynamic linker's variables it was exec'd with


@dataclass
class DriverResult:
    pid: int
    exit_code: int | None  # None: detached while the process still ran
    interrupted: int = 0
    runs: list[ImageRun] = field(default_factory=list)
    ppid: int | None = None
    stops: int = 0
    signal_stops: int = 0  # stops for a signal that could end the process (never SIGURG)
    exit_detail: str = ""  # lldb's own account of the end, for the session metadata
    fatal_signal: int = 0  # a signal delivered with no handler and a deadly default action
    exit_unknown: bool = False  # lldb lost the process at its end and its status with it
    unpaired: int = 0
    cut_short: int = 0  # lookups in flight when their process ended (another thread's exit_group)
    calibration: dict | None = None
    images: list = field(default_factory=list)  # (pid, path, l_addr); dicts from the dyld profile
    relocations: list[dict] = field(default_factory=list)  # the dyld profile's per-image fixup times


class _Stdio:
    """File actions giving the launched process our stdio; pipes for regular files."""

    def __init__(self):
        self.threads: list[threading.Thread] = []
        self.actions: list[tuple[int, str, bool, bool]] = []
        self._close: list[int] = []

    def prepare(self) -> None:
        me = os.getpid()
        for fd in (0, 1, 2):
            try:
                mode = os.fstat(fd).st_mode
            except OSError:
                self.actions.append((fd, os.devnull, fd == 0, fd != 0))
                continue
            if fd != 0 and stat.S_ISREG(mode):
                r, w = os.pipe()
                self.actions.append((fd, f"/proc/{me}/fd/{w}", False, True))
                self._close.append(w)
                t = threading.Thread(target=_pump, args=(r, fd), daemon=True, name=f"gotrace-lldb-fd{fd}")
                t.start()
                self.threads.append(t)
            else:
                self.actions.append((fd, f"/proc/{me}/fd/{fd}", fd == 0, fd != 0))

    def launched(self) -> None:
        """The process has opened its ends: ours close, so EOF comes when it exits."""
        for w in self._close:
            os.close(w)
        self._close.clear()

    def finish(self) -> None:
        self.launched()
        for t in self.threads:
            t.join(timeout=5)


def _pump(r: int, fd: int) -> None:
    while True:
        try:
            data = os.read(r, 65536)
        except OSError:
            break
        if not data:
            break
        try:
            os.write(fd, data)
        except OSError:
            pass
    os.close(r)


class LldbDriver:
    """Launch or attach, arm the recorder, run the event loop until exit or Ctrl-C."""

    def __init__(self, lldb, sink=None):
        self.lldb = lldb
        self.sink = sink
        self.debugger = lldb.SBDebugger.Create(False)
        self.debugger.SetAsync(True)
        self.listener = self.debugger.GetListener()
        self.target = None
        self.process = None
        self.recorder: BindingRecorder | None = None
        self.result: DriverResult | None = None
        self._interrupt = 0
        self._detached = False
        self._calibrate_at_entry = False  # an attach calibrates at the first lookup's entry stop
        self._attached = False  # an attached process is detached, never killed
        self.layout = None
        self.ldso = ldso_path()

    # ---- helpers -----------------------------------------------------------
    def _need_layout(self):
        if DARWIN:  # the dyld profile needs no layout: its breakpoints go by name (not run on macOS)
            return
        if self.ldso is None:
            raise GotraceError("the lldb backend needs glibc's dynamic linker (Linux x86_64)")
        try:
            _, self.layout = require_layout(self.ldso)
        except BackendUnavailable as exc:
            raise GotraceError(exc.message, 2) from None

    def _quiet_signals(self) -> None:
        """Every signal goes to the process. Harmless ones never stop it; one that
        could end it stops briefly, so gotrace learns whether it is fatal (not
        caught, not ignored): lldb reports death by signal N as exit status N."""
        sigs = self.process.GetUnixSignals()
        for i in range(sigs.GetNumSignals()):
            num = sigs.GetSignalAtIndex(i)
            name = sigs.GetSignalAsCString(num)
            if name in LEAVE_ALONE:
                continue
            sigs.SetShouldStop(num, name not in HARMLESS)
            sigs.SetShouldNotify(num, False)
            sigs.SetShouldSuppress(num, False)

    def _wait(self, timeout: int = WAIT_S):
        """The next process state event: (state, restarted) or None on timeout."""
        ev = self.lldb.SBEvent()
        if not self.listener.WaitForEvent(timeout, ev):
            return None
        if not self.lldb.SBProcess.EventIsProcessEvent(ev):
            return "other", False
        return self.lldb.SBProcess.GetStateFromEvent(ev), self.lldb.SBProcess.GetRestartedFromEvent(ev)

    def _wait_stop(self) -> None:
        """Resume and return at the next real stop or at the end."""
        self.process.Continue()
        self._until_stopped()

    def _until_stopped(self, deadline_s: float = 60) -> int:
        end = time.monotonic() + deadline_s
        L = self.lldb
        while time.monotonic() < end:
            got = self._wait()
            if got is None or got[0] == "other":
                continue
            state, restarted = got
            if state == L.eStateStopped and not restarted:
                return state
            if state in (L.eStateExited, L.eStateDetached, L.eStateCrashed):
                return state
        raise GotraceError("lldb did not report the process stopping within 60 s")

    def _new_recorder(self, exe: str) -> None:
        if DARWIN:  # not run on macOS
            from ...arch import canonical
            from .dyld_recorder import DyldRecorder

            self.recorder = DyldRecorder(self.lldb, self.target, self.process, exe,
                                         canonical(self.target.GetTriple().split("-", 1)[0]) or "arm64",
                                         sink=self.sink)
            self.recorder.arm()
            return
        aux = auxv(self.process.GetProcessID())
        base = aux.get(AT_BASE)
        if not base:
            raise GotraceError(f"{exe} is not dynamically linked: there are no dynamic-linker bindings to trace "
                               "(static Go binaries have none)", 2)
        self.recorder = BindingRecorder(self.lldb, self.target, self.process, self.layout, base, exe, sink=self.sink)
        self.recorder.arm()

    # ---- launch ------------------------------------------------------------
    def launch(self, argv: list[str], exe: str, env: dict[str, str], plan: LaunchPlan = NATIVE) -> DriverResult:
        with self._signals_caught():
            return self._launch(argv, exe, env, plan)

    def attach(self, pid: int) -> DriverResult:
        with self._signals_caught():
            return self._attach(pid)

    @contextlib.contextmanager
    def _signals_caught(self):
        """Ctrl-C/SIGTERM/SIGHUP only set a flag: the loop ends the run cleanly at
        its next turn (an exception inside an lldb call could leave it half-done)."""
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        old = {s: signal.signal(s, self._on_signal) for s in sigs}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _launch(self, argv: list[str], exe: str, env: dict[str, str], plan: LaunchPlan) -> DriverResult:
        L = self.lldb
        _become_subreaper()
        self._need_layout()
        err = L.SBError()
        self.target = self.debugger.CreateTarget(exe, plan.triple, plan.platform, True, err)
        if not self.target or not self.target.IsValid():
            raise GotraceError(f"lldb cannot load {exe}: {err.GetCString() or 'not an executable it understands'}")
        shim = _exec_shim(plan)  # the program starts with default dispositions, not lldb-server's
        self.debugger.DeleteTarget(self.target)  # it loads: now launch it through the shim
        # (built for the plan's architecture: under Rosetta the process is translated from the start)
        self.target = self.debugger.CreateTarget(str(shim), plan.triple, plan.platform, True, err)
        info = L.SBLaunchInfo([",".join(str(int(s)) for s in PYTHON_IGNORED), exe, *argv])
        info.SetExecutableFile(L.SBFileSpec(str(shim)), True)
        info.SetEnvironmentEntries([f"{k}={v}" for k, v in env.items()], False)
        info.SetWorkingDirectory(os.getcwd())
        info.SetLaunchFlags((info.GetLaunchFlags() & ~L.eLaunchFlagDisableASLR) | L.eLaunchFlagStopAtEntry)
        stdio = _Stdio()
        stdio.prepare()
        for fd, path, rd, wr in stdio.actions:
            info.AddOpenFileAction(fd, path, rd, wr)
        start = time.monotonic_ns()
        self.process = self.target.Launch(info, err)
        if not err.Success() or not self.process or not self.process.IsValid():
            stdio.finish()
            raise GotraceError(f"lldb cannot launch {exe}: {err.GetCString()}")
        try:
            state = self._until_stopped()
            stdio.launched()
            if state != L.eStateStopped:
                raise GotraceError(f"{exe} ended before lldb could stop it at its entry point")
            self._quiet_signals()  # the shim's signals pass too
            self._through_shim(exe)
            self._quiet_signals()  # lldb starts the new image with its default signal handling
            pid = self.process.GetProcessID()
            self.result = DriverResult(pid=pid, exit_code=None, ppid=read_ppid(pid))
            # stopped at its exec: the environment the kernel holds is the one it was exec'd with (the
            # shim's, unchanged); without /proc (macOS), the one lldb was told to launch it with
            env_now = procfs.environ(pid)
            self.result.runs.append(ImageRun(exe, list(argv), start, loader_env=loader_env(
                env_now if env_now is not None else [f"{k}={v}" for k, v in env.items()])))
            self._new_recorder(exe)
            thread = self.process.GetSelectedThread()
            self.recorder.calibrate(thread, wait_stop=self._wait_stop, abort=lambda: bool(self._interrupt))
            return self._run()
        finally:
            self._collect()  # whatever happened, events already seen reach the session
            stdio.finish()
            self._close()

    def _through_shim(self, exe: str) -> None:
        """From the shim's entry to the program's: run until the exec stop (the
        program stopped at its own entry, before its dynamic linker has run)."""
        L = self.lldb
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.process.Continue()
            state = self._until_stopped()
            if state != L.eStateStopped:
                raise GotraceError(f"cannot run {exe}: it ended before it started "
                                   f"(exit status {self.process.GetExitStatus()})", 126)
            if any(t.GetStopReason() == L.eStopReasonExec for t in self.process):
                return
        raise GotraceError(f"lldb did not see {exe} start within 60 s")

    # ---- attach ------------------------------------------------------------
    def _attach(self, pid: int) -> DriverResult:
        L = self.lldb
        self._need_layout()
        if not procfs.alive(pid):
            raise GotraceError(f"no process {pid}: check the PID with ps", 2)
        try:
            exe = procfs.exe(pid)
        except PermissionError:
            raise GotraceError(f"cannot attach to process {pid}: it belongs to another user; run as root", 2) \
                from None
        except OSError:
            raise GotraceError(f"process {pid} has no program to attach to (a kernel thread or a zombie)", 2) \
                from None
        err = L.SBError()
        self.target = self.debugger.CreateTarget("")
        self._attached = True
        self.process = self.target.AttachToProcessWithID(self.listener, pid, err)
        if not err.Success() or not self.process.IsValid():
            raise GotraceError(f"cannot attach to process {pid}: {err.GetCString()} "
                               "(needs root or the same user, and no other debugger attached)", 2)
        try:
            state = self.process.GetState()
            if state != L.eStateStopped:  # attach may report its stop before we listen
                state = self._until_stopped(30)
            if state != L.eStateStopped:
                raise GotraceError(f"process {pid} ended while lldb attached")
            argv = cmdline(pid) or [exe]
            env_now = procfs.environ(pid)  # stopped: what its image was exec'd with (unless it wrote there)
            self.result = DriverResult(pid=pid, exit_code=None, ppid=read_ppid(pid))
            self.result.runs.append(ImageRun(exe, argv, time.monotonic_ns(),
                                             loader_env=None if env_now is None else loader_env(env_now)))
            self._quiet_signals()
            self._new_recorder(exe)
            # not here: attached, its threads stopped wherever they were, inside system calls too, where a
            # thread pointed elsewhere is moved by the kernel's restart on resume (Python died of it). The
            # first lookup's entry is a breakpoint stop: the calibration runs there (_handle_stop).
            self._calibrate_at_entry = True
            return self._run(attached=True)
        finally:
            self._collect()
            self._close()

    # ---- the loop ------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._interrupt = signum

    def _run(self, attached: bool = False) -> DriverResult:
        L = self.lldb
        res = self.result
        if self.process.GetState() == L.eStateStopped:
            self.process.Continue()
        while True:
            if self.process.GetState() in (L.eStateExited, L.eStateDetached):
                res.exit_code = _exit_code(self.process, res.fatal_signal)
                break
            if self._interrupt:
                res.interrupted = self._interrupt
                self._stop_tracing(attached)
                break
            got = self._wait()
            if got is None or got[0] == "other":
                continue
            state, restarted = got
            if state == L.eStateStopped:
                if restarted:
                    continue
                self._handle_stop(time.monotonic_ns())
                self.process.Continue()
            elif state == L.eStateExited:
                res.exit_code = _exit_code(self.process, res.fatal_signal)
                break
            elif state in (L.eStateDetached, L.eStateCrashed, L.eStateInvalid):
                res.exit_code = _exit_code(self.process, res.fatal_signal)
                break
        now = time.monotonic_ns()
        res.exit_detail = "detached" if self._detached else _exit_detail(self.process)
        if not self._detached and self.process.GetExitDescription() == "lost connection":
            # lldb-server can lose a thread that exits while the process is stopped
            # (seen at exit_group) and then gives up; the process ends regardless.
            # gotrace is a child subreaper, so the orphan is ours to reap: its real status.
            real = _reap_orphan(res.pid)
            if real is not None:
                res.exit_code = real
                res.exit_detail += f"; real exit status reaped by gotrace: {real}"
            else:
                res.exit_code = None
                res.exit_unknown = True
        res.runs[-1].end_ns = now
        if res.exit_code is not None and not self._detached and self.recorder is not None:
            self.recorder.process_exited()
        self._collect()
        return res

    def _handle_stop(self, now: int) -> None:
        L = self.lldb
        stops = [(thread, thread.GetStopReason()) for thread in self.process]  # before a calibration resumes it
        for thread, reason in stops:
            if reason == L.eStopReasonBreakpoint:
                bp_id = thread.GetStopReasonDataAtIndex(0)
                if self._calibrate_at_entry and self.recorder.is_entry(bp_id):
                    self._calibrate_here(thread)
                    now = time.monotonic_ns()  # the lookup starts when the process goes on
                self.recorder.on_stop(thread, bp_id, now)
            elif reason == L.eStopReasonSignal:
                self.result.signal_stops += 1
                signo = thread.GetStopReasonDataAtIndex(0)
                if _is_fatal(self.process.GetProcessID(), signo):
                    self.result.fatal_signal = signo
            elif reason == L.eStopReasonExec:
                self._on_exec(now)
                return

    def _calibrate_here(self, thread) -> None:
        """An attach's calibration, at the first lookup's entry stop: a breakpoint stop, never inside a
        system call. The other threads stay stopped meanwhile (suspended), so none of them runs into
        the calibration's or the recorder's breakpoints; the thread's symbol name is what it reads."""
        self._calibrate_at_entry = False
        mine = thread.GetThreadID()
        suspended = [t for t in self.process if t.GetThreadID() != mine and t.Suspend()]
        try:
            self.process.SetSelectedThread(thread)
            name = thread.GetFrameAtIndex(0).FindRegister("rdi").GetValueAsUnsigned()
            self.recorder.calibrate(thread, wait_stop=self._wait_stop, abort=lambda: bool(self._interrupt),
                                    probe_str=name)
        finally:
            for t in suspended:
                t.Resume()

    def _on_exec(self, now: int) -> None:
        """A new program image in the same pid: ld.so moved, so re-arm from scratch."""
        self._collect()
        self.recorder.disarm()
        pid = self.process.GetProcessID()
        try:
            exe = procfs.exe(pid)
        except OSError:
            exe = "?"
        argv = cmdline(pid)
        env_now = procfs.environ(pid)  # stopped at the exec
        self.result.runs[-1].end_ns = now
        self.result.runs.append(ImageRun(exe, argv, now, loader_env=None if env_now is None else loader_env(env_now)))
        cal = self.recorder.calibration
        self._new_recorder(exe)
        self.recorder.calibration = cal  # same process, same machine: the cycle cost stands

    def _collect(self) -> None:
        rec, res = self.recorder, self.result
        if rec is None:
            return
        rec.flush()
        res.stops += rec.stops
        res.unpaired += rec.unpaired
        res.cut_short += rec.cut_short
        res.images.extend(r for r in rec.image_rows() if r not in res.images)
        res.calibration = rec.calibration.describe()
        res.relocations.extend(getattr(rec, "relocations", ()))
        if hasattr(rec, "relocations"):
            rec.relocations = []
        rec.stops = rec.unpaired = rec.cut_short = 0

    def _stop_tracing(self, attached: bool) -> None:
        """Ctrl-C: an attached process is detached clean; a launched one is interrupted."""
        L = self.lldb
        if attached:
            self.process.SendAsyncInterrupt()
            self._until_stopped(10)
            self.recorder.disarm()
            err = self.process.Detach()
            if not err.Success():
                raise GotraceError(f"lldb could not detach from process {self.process.GetProcessID()}: "
                                   f"{err.GetCString()}")
            self._detached = True
            self.target.DeleteAllBreakpoints()
            self.debugger.DeleteTarget(self.target)  # nothing left for Destroy to kill;
            # from here on self.process must not be touched (lldb freed it)
            self.result.exit_code = None
            return
        pid = self.process.GetProcessID()
        try:
            os.kill(pid, self.result.interrupted or signal.SIGINT)  # as a shell's Ctrl-C would
        except OSError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            got = self._wait()
            if got and got[0] == L.eStateStopped and not got[1]:
                self._handle_stop(time.monotonic_ns())
                self.process.Continue()
            elif got and got[0] in (L.eStateExited, L.eStateDetached, L.eStateCrashed):
                break
        if self.process.GetState() != L.eStateExited:
            self.process.Kill()
        self.result.exit_code = _exit_code(self.process, self.result.fatal_signal)

    def _close(self) -> None:
        try:
            if not self._detached and self.process is not None and self.process.IsValid() and \
                    self.process.GetState() not in (self.lldb.eStateExited, self.lldb.eStateDetached):
                if self.recorder is not None:
                    self.recorder.disarm()
                if self._attached:  # not ours to end: whatever went wrong, it runs on as it was
                    self.process.Detach()
                    self._detached = True
                else:
                    self.process.Kill()
        finally:
            self.lldb.SBDebugger.Destroy(self.debugger)


def _exec_shim(plan: LaunchPlan = NATIVE):
    """csrc/execdefault.c, built once per source version and architecture (see its header)."""
    from ...csrc.build import compile_cached

    return compile_cached(plan.shim_stem, ["execdefault.c"], "cc", plan.shim_flags, what="the lldb launch shim")


def _become_subreaper() -> None:
    """Orphaned descendants (the traced process, if lldb-server dies first) become ours."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap_orphan(pid: int, timeout_s: float = 5.0) -> int | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not (yet) ours: lldb-server may still be its parent
            if not procfs.alive(pid):
                return None
            got, status = 0, 0
        if got == pid:
            return exit_code_from_wait_status(status)
        time.sleep(0.02)
    return None


def _exit_detail(process) -> str:
    return (f"state {process.GetState()}, exit status {process.GetExitStatus()}, "
            f"description {process.GetExitDescription()!r}")


def _exit_code(process, fatal_signal: int) -> int:
    """The shell's view: the exit status, or 128+N when a signal N ended it.

    lldb reports both exit(N) and death by signal N as status N; the signal
    stop before the death is what tells them apart.
    """
    status = process.GetExitStatus()
    if fatal_signal and status == fatal_signal:
        return 128 + fatal_signal
    return status if status >= 0 else 1


def _is_fatal(pid: int, signo: int) -> bool:
    """Will delivering ``signo`` end the process? Not if it is caught or ignored,
    nor if its default action is to ignore it or stop."""
    if signo <= 0 or signo >= 64:
        return False
    caught = procfs.handled_signals(pid)
    if caught is None or caught & (1 << (signo - 1)):
        return False
    return signal.Signals(signo).name not in HARMLESS if signo in signal.Signals._value2member_map_ else True
