"""Records dynamic-linker bindings of one process through lldb breakpoints.

Linux, glibc ld.so, x86_64 only: the breakpoints go on ld.so's own lookup path
and the registers read are the System V x86_64 ones. macOS's dyld has its own
profile (dyld_recorder.py, not run on macOS).

One binding, the way bindsnoop.bt sees it, with breakpoints instead of uprobes:

- a breakpoint on ``_dl_lookup_symbol_x``'s first instruction reads the
  arguments (rdi: symbol name, rsi: requesting link_map, r8: version) and the
  return address at [rsp]; its caller gives the kind (``LdsoLayout.kind_of``);
- a breakpoint on that return address (one per distinct call site, made on
  first sight and kept) reads rax, the defining link_map (0: lookup failed).
  Entry and return pair per thread by stack pointer (rsp there = rsp at
  entry + 8), so a lookup that never returns cannot pair with a later one.

Latency. ``latency_raw_ns`` is the time between the two stops as gotrace
observes them, so it holds one full lldb stop/resume cycle besides the
lookup. ``calibrate`` measures that cycle in the same process before the
first lookup (calibrate.py: a breakpoint pair around a ``ret`` in ld.so,
repeated). ``latency_ns`` = raw minus the calibration median, floored at
0; the method, sample count and spread go into the session metadata.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from ...errors import GotraceError
from ..ldso import LdsoLayout
from . import calibrate as calibration

STRING_MAX = 4096
TRAP = b"\xcc"  # int3: a breakpoint already there, before lldb placed any


def foreign_probe(pid: int) -> str:
    """The refusal when another tracer already has a breakpoint on ld.so's lookup in the process: a
    uprobe (bpftrace, perf, gotrace's bpf backend) takes the trap from lldb, and a breakpoint placed
    over it would save the trap as the instruction and leave it behind when lldb goes."""
    return (f"ld.so's _dl_lookup_symbol_x in process {pid} already has another tracer's breakpoint (a uprobe: "
            "bpftrace, perf, gotrace -b bpf or bpftrace, gotrace's agent, or a debugger): lldb cannot share it "
            "without harm to the process; run again once that tracer has stopped (sudo gotrace agent stop)")
CHUNK_EVENTS = 4096  # rows handed to the sink at a time


@dataclass
class _Pending:
    t0: int
    sp: int
    symbol: str
    version: str | None
    requester: str
    kind: str


@dataclass
class Calibration:
    """lldb's own stop/resume cost here, measured around an empty function."""

    samples_ns: list[int] = field(default_factory=list)
    error: str | None = None
    where: str = "ld.so"  # the dynamic linker whose `ret` is the empty function

    def corrected(self, raw_ns: int) -> int | None:
        """A raw stop-to-stop time minus the median cycle, floored at 0; None when not calibrated."""
        return max(0, raw_ns - self.median_ns) if self.samples_ns else None

    @property
    def median_ns(self) -> int | None:
        return int(statistics.median(self.samples_ns)) if self.samples_ns else None

    def describe(self) -> dict:
        s = sorted(self.samples_ns)
        q = (lambda f: s[min(len(s) - 1, int(f * len(s)))]) if s else (lambda f: None)
        return {
            "method": f"breakpoint pair around an empty function (a `ret` in {self.where}) in the traced process, "
                      "before its first lookup; the median is subtracted from each entry-to-return time",
            "rounds": len(s), "median_ns": self.median_ns, "p10_ns": q(0.10), "p90_ns": q(0.90),
            "error": self.error,
        }


class RowSink:
    """Event rows kept, and handed to ``self.sink`` CHUNK_EVENTS at a time (both profiles' recorders)."""

    rows: list
    sink = None

    def _add(self, row: tuple) -> None:
        self.rows.append(row)
        if self.sink is not None and len(self.rows) >= CHUNK_EVENTS:
            self.flush()

    def flush(self) -> None:
        if self.sink is not None and self.rows:
            rows, self.rows = self.rows, []
            self.sink(rows)


def read_cstr(lldb, process, addr: int) -> str:
    """A C string from the process ('' if unreadable); bytes that are not UTF-8 are replaced."""
    if not addr:
        return ""
    err = lldb.SBError()
    try:
        text = process.ReadCStringFromMemory(addr, STRING_MAX, err)
        return text if err.Success() and text else ""
    except SystemError:  # the bindings cannot return non-UTF-8 as str
        raw = process.ReadMemory(addr, 512, err)
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace") if err.Success() and raw else ""


class BindingRecorder(RowSink):
    """Breakpoints on one process's ld.so lookups, and the rows they produce."""

    def __init__(self, lldb, target, process, layout: LdsoLayout, ldso_bias: int, exe: str,
                 sink=None, backend: str = "lldb", on_breakpoint=None):
        self.lldb, self.target, self.process = lldb, target, process
        self.layout, self.bias, self.exe = layout, ldso_bias, exe
        self.pid = process.GetProcessID()
        self.sink = sink  # called with a list of row tuples; None keeps them in self.rows
        self.backend = backend
        # called with each breakpoint the recorder makes: inside an interactive lldb
        # the command module gives them a script callback instead of an event loop
        self.on_breakpoint = on_breakpoint or (lambda bp: None)
        self.rows: list[tuple] = []
        self.calibration = Calibration()
        self.entry_bp = None
        self.error_bp = None
        self.return_bps: dict[int, int] = {}  # return address -> breakpoint id
        self.return_ids: set[int] = set()
        self.pending: dict[int, list[_Pending]] = {}
        self.names: dict[int, str] = {}  # link_map -> object path
        self.biases: dict[str, int] = {}  # object path -> l_addr
        self.stops = 0
        self.unpaired = 0
        self.cut_short = 0  # lookups in flight when the process ended (exit_group, a crash)

    # ---- set-up -------------------------------------------------------
    def arm(self) -> None:
        err = self.lldb.SBError()
        first = self.process.ReadMemory(self.bias + self.layout.lookup, 1, err)
        if err.Success() and first == TRAP:
            raise GotraceError(foreign_probe(self.pid), 2)
        self.entry_bp = self.target.BreakpointCreateByAddress(self.bias + self.layout.lookup)
        if not self.entry_bp.IsValid() or self.entry_bp.GetNumLocations() == 0:
            raise RuntimeError("lldb could not place a breakpoint on ld.so's _dl_lookup_symbol_x")
        self.on_breakpoint(self.entry_bp)
        if self.layout.signal_error:
            # a lookup that fails on a global reference never returns: it raises its error
            # here (as bindsnoop.bt's probe); hit only on errors, so free for the rest
            self.error_bp = self.target.BreakpointCreateByAddress(self.bias + self.layout.signal_error)
            self.on_breakpoint(self.error_bp)

    def disarm(self) -> None:
        """Remove every breakpoint (before detaching, so the process runs on clean)."""
        for bp in (self.entry_bp, self.error_bp):
            if bp is not None:
                self.target.BreakpointDelete(bp.GetID())
        for bid in self.return_bps.values():
            self.target.BreakpointDelete(bid)
        self.entry_bp = self.error_bp = None
        self.return_bps.clear()
        self.return_ids.clear()

    # ---- calibration ----------------------------------------------------
    def calibrate(self, thread, rounds: int = calibration.ROUNDS, wait_stop=None, abort=None,
                  probe_str: int | None = None) -> Calibration:
        """Time ``rounds`` breakpoint pairs around an empty function on ``thread`` (calibrate.py);
        ``probe_str``: a string the entry-like reads read (a lookup's symbol name at its entry)."""
        ranges = [(self.bias + lo, self.bias + hi) for lo, hi in
                  ((self.layout.lookup, self.layout.lookup_end), self.layout.fixup, self.layout.profile_fixup)]
        rets = calibration.find_rets(self.lldb, self.target, ranges, calibration.RETS_NEEDED["x86_64"], "x86_64")
        err = self.lldb.SBError()
        if probe_str is None:
            sp = thread.GetFrameAtIndex(0).FindRegister("rsp").GetValueAsUnsigned()
            probe_str = self.process.ReadPointerFromMemory(sp + 8, err)  # argv[0] at a launch's entry
        return calibration.calibrate(self.lldb, self.target, self.process, thread, "x86_64", rets,
                                     self.calibration, rounds, wait_stop, abort,
                                     read_like_entry=lambda t: self._read_like_entry(t, probe_str))

    def _read_like_entry(self, thread, string_at: int) -> None:
        """The reads an entry stop makes, so calibration pays for them too."""
        frame = thread.GetFrameAtIndex(0)
        for n in ("rdi", "rsi", "rdx", "r8", "rsp"):
            frame.FindRegister(n).GetValueAsUnsigned()
        err = self.lldb.SBError()
        sp = frame.FindRegister("rsp").GetValueAsUnsigned()
        self.process.ReadPointerFromMemory(sp, err)  # return address
        self._cstr(string_at)  # symbol name
        self.process.ReadPointerFromMemory(sp + 8, err)  # version record
        self._cstr(string_at)  # version name

    def _cstr(self, addr: int) -> str:
        return read_cstr(self.lldb, self.process, addr)

    # ---- stops ----------------------------------------------------------
    def is_entry(self, bp_id: int) -> bool:
        return self.entry_bp is not None and bp_id == self.entry_bp.GetID()

    def on_stop(self, thread, bp_id: int, now_ns: int) -> bool:
        """Handle a breakpoint stop of ours; False if the breakpoint is not ours."""
        if self.entry_bp is not None and bp_id == self.entry_bp.GetID():
            self.stops += 1
            self._entry(thread, now_ns)
            return True
        if bp_id in self.return_ids:
            self.stops += 1
            self._return(thread, now_ns)
            return True
        if self.error_bp is not None and bp_id == self.error_bp.GetID():
            self.stops += 1
            stack = self.pending.get(thread.GetThreadID())
            if stack:  # the innermost lookup in flight is the one raising
                self._unreturned(thread.GetThreadID(), stack.pop())
            return True
        return False

    def _name(self, lm: int) -> str:
        name = self.names.get(lm)
        if name is None:
            err = self.lldb.SBError()
            l_addr = self.process.ReadPointerFromMemory(lm, err)
            ptr = self.process.ReadPointerFromMemory(lm + 8, err)
            if not err.Success():
                return f"<link_map {lm:#x}>"
            raw = self._cstr(ptr)
            name = raw or self.exe  # the main program's link_map has an empty l_name
            self.names[lm] = name
            self.biases.setdefault(name, l_addr)
        return name

    def _entry(self, thread, now: int) -> None:
        frame = thread.GetFrameAtIndex(0)
        reg = lambda n: frame.FindRegister(n).GetValueAsUnsigned()  # noqa: E731
        err = self.lldb.SBError()
        sp = reg("rsp")
        ret = self.process.ReadPointerFromMemory(sp, err)
        symbol = self._cstr(reg("rdi")) or "?"
        ver_ptr = reg("r8")
        version = self._cstr(self.process.ReadPointerFromMemory(ver_ptr, err)) if ver_ptr else None
        in_ldso = self.layout.text[0] <= ret - self.bias < self.layout.text[1]
        kind = self.layout.kind_of(ret - self.bias) if in_ldso else "dlsym"
        self.pending.setdefault(thread.GetThreadID(), []).append(
            _Pending(now, sp, symbol, version or None, self._name(reg("rsi")), kind))
        if ret not in self.return_bps:
            bp = self.target.BreakpointCreateByAddress(ret)
            self.return_bps[ret] = bp.GetID()
            self.return_ids.add(bp.GetID())
            self.on_breakpoint(bp)

    def _return(self, thread, now: int) -> None:
        frame = thread.GetFrameAtIndex(0)
        sp = frame.FindRegister("rsp").GetValueAsUnsigned()
        stack = self.pending.get(thread.GetThreadID())
        if not stack:
            return  # the call site ran without a lookup we saw (e.g. armed mid-call)
        while stack and stack[-1].sp + 8 < sp:  # lookups that never returned here
            self._unreturned(thread.GetThreadID(), stack.pop())
        if not stack or stack[-1].sp + 8 != sp:
            return
        p = stack.pop()
        result = frame.FindRegister("rax").GetValueAsUnsigned()
        raw = now - p.t0
        provider = self._name(result) if result else None
        self._add((p.t0, self.pid, thread.GetThreadID(), self.exe, p.requester, p.symbol, p.version, provider,
                   p.kind, bool(result), self.calibration.corrected(raw), raw, self.backend))

    def _unreturned(self, tid: int, p: _Pending) -> None:
        """A lookup ld.so's error path left (_dl_signal_error: a longjmp back into a failing
        dlopen, or "symbol lookup error" and _exit(127)): a failed lookup, not timed."""
        self.unpaired += 1
        self._add((p.t0, self.pid, tid, self.exe, p.requester, p.symbol, p.version, None,
                   p.kind, False, None, None, self.backend))

    def process_exited(self) -> None:
        """The process ended with lookups still in flight: a thread cut short by another's
        exit_group, or a crash. Neither failed (a failing one raised its error above), so
        they are counted, not recorded, as bindsnoop.bt leaves them."""
        self.cut_short += sum(len(stack) for stack in self.pending.values())
        self.pending.clear()

    def image_rows(self) -> list[tuple[int, str, int]]:
        """(pid, path, l_addr) of every object seen in a lookup."""
        return [(self.pid, path, bias) for path, bias in self.biases.items()]
