"""lldb's own stop/resume cost, measured in the traced process before its first lookup.

A binding's raw latency under lldb is the time between two breakpoint stops as gotrace
sees them, so it holds one full stop/resume cycle besides the lookup. That cycle is its
own in every process: natively a few hundred microseconds, under Rosetta 2 it goes
through Rosetta's debugserver and the translated code. So it is measured where the
lookups will be: a stopped thread is pointed at an empty function (a plain ``ret`` in
the dynamic linker) with a breakpoint on it and another on the way back, ``rounds``
times; its registers (and, on x86_64, the stack words used) are put back afterwards.

x86_64 (glibc's ld.so; dyld under Rosetta): the thread starts at one ``ret`` with the
return addresses on its stack: the breakpoint's ``ret``, a third ``ret`` between it and
the return-site breakpoint (leaving the breakpoint then costs a step-over and a resume,
as leaving a lookup's entry does), then the first ``ret`` again, where the return-site
breakpoint is: the thread never runs its own code meanwhile, and no breakpoint shares an
address with another (an attach calibrates at a lookup's entry stop, where the recorder's
breakpoint is: returning onto it let the thread run on into the lookup on the crafted stack,
SIGBUS, 1 run in 10).
arm64 (dyld, native): ``ret`` jumps to lr, so the thread starts at one ``ret`` with lr
at the breakpoint's, and lr is pointed back at the thread's pc at that stop. Only plain
``ret`` is used: arm64e code returns with ``retab``, which would check lr's signature.
The arm64 and Rosetta paths are not run on macOS.
"""
from __future__ import annotations

import os
import time

ROUNDS = 40
REGISTERS = {  # per architecture: program counter, stack pointer, link register
    "x86_64": ("rip", "rsp", None),
    "arm64": ("pc", "sp", "lr"),
}
RETS_NEEDED = {"x86_64": 3, "arm64": 2}


def find_rets(lldb, target, ranges: list[tuple[int, int]], count: int, arch: str) -> list[int]:
    """Load addresses of up to ``count`` plain ``ret`` instructions within the load ranges."""
    found: list[int] = []
    flavor = "intel" if arch == "x86_64" else None
    width = 2 if arch == "x86_64" else 4  # instructions to read: at most one per this many bytes
    for lo, hi in ranges:
        insns = target.ReadInstructions(lldb.SBAddress(lo, target), max(1, min((hi - lo) // width, 16384)), flavor)
        for i in range(insns.GetSize()):
            ins = insns.GetInstructionAtIndex(i)
            addr = ins.GetAddress().GetLoadAddress(target)
            if addr >= hi:
                break
            if ins.GetMnemonic(target).strip() == "ret":
                found.append(addr)
                if len(found) == count:
                    return found
    return found


ALIASES = {"lr": "x30", "fp": "x29"}  # arm64 names some stubs (qemu's) spell the plain way


def _register(sets, name: str):
    for regs in sets:
        for cand in (name, ALIASES.get(name)):
            reg = regs.GetChildMemberWithName(cand) if cand else None
            if reg is not None and reg.IsValid():
                return reg
    return None


def set_registers(lldb, thread, **values: int) -> None:
    """Write registers through their register set (FindRegister's values are read-only). The
    sets' names depend on the debug server (lldb-server, debugserver, a gdb stub): all are searched."""
    sets = list(thread.GetFrameAtIndex(0).GetRegisters())
    err = lldb.SBError()
    for name, value in values.items():
        reg = _register(sets, name)
        if reg is None or not reg.SetValueFromCString(hex(value), err):
            raise RuntimeError(f"lldb cannot write register {name}: {err.GetCString() or 'no such register'}")


class _Rounds:
    """One calibration: the breakpoints, the resumes, the samples."""

    def __init__(self, lldb, target, process, thread, cal, wait_stop, abort, read_like_entry):
        self.lldb, self.target, self.process, self.thread = lldb, target, process, thread
        self.cal, self.wait_stop, self.abort, self.read_like_entry = cal, wait_stop, abort, read_like_entry
        self.stopped_ns = 0

    def resume_until(self, bp_id: int) -> bool:
        """Resume; True at a stop of ``bp_id``, its time in ``self.stopped_ns`` — taken as soon as
        the stop is known, before asking lldb about it, as the driver stamps a lookup's stops."""
        self.process.SetSelectedThread(self.thread)
        if self.wait_stop is None:
            self.process.Continue()
        else:
            self.wait_stop()
        self.stopped_ns = time.monotonic_ns()
        if self.process.GetState() != self.lldb.eStateStopped:
            return False
        if self.thread.GetStopReason() != self.lldb.eStopReasonBreakpoint:
            return False
        # (breakpoint id, location id) pairs: another breakpoint may share the address (at a lookup's
        # entry, where an attach calibrates, the return is onto the entry's own breakpoint)
        n = self.thread.GetStopReasonDataCount()
        return any(self.thread.GetStopReasonDataAtIndex(i) == bp_id for i in range(0, n, 2))

    def run(self, rounds: int, r_empty: int, back: int, enter, at_entry) -> None:
        """``enter()`` points the thread at the empty function; ``at_entry()`` runs at its stop."""
        bp_in = self.target.BreakpointCreateByAddress(r_empty)
        bp_back = self.target.BreakpointCreateByAddress(back)
        for bp in (bp_in, bp_back):
            bp.SetThreadID(self.thread.GetThreadID())
        try:
            for _ in range(rounds):
                if self.abort is not None and self.abort():
                    self.cal.error = self.cal.error or "interrupted"
                    return
                problem = enter()
                if problem:
                    self.cal.error = problem
                    return
                if not self.resume_until(bp_in.GetID()):
                    self.cal.error = "the calibration breakpoint was not reached"
                    return
                t0 = self.stopped_ns
                self.read_like_entry(self.thread)
                at_entry()
                if not self.resume_until(bp_back.GetID()):
                    self.cal.error = "the calibration return was not reached"
                    return
                self.cal.samples_ns.append(self.stopped_ns - t0)
        finally:
            self.target.BreakpointDelete(bp_in.GetID())
            self.target.BreakpointDelete(bp_back.GetID())


# x86_64 Linux: a thread stopped inside an interrupted system call has rax = -ERESTART* and its pc
# just after the `syscall` instruction; when it resumes, the kernel restarts the call by moving pc
# back 2 bytes (arch/x86/kernel/signal.c) — wherever pc then points. A thread pointed elsewhere
# there resumes inside an instruction: Python sleeping in clock_nanosleep died of SIGSEGV.
ERESTART = {-512, -513, -514, -516}  # ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK
SYSCALL = b"\x0f\x05"


def in_interrupted_syscall(lldb, process, thread, arch: str) -> bool:
    """Whether the stopped thread is inside a system call the kernel will restart on resume (so its
    pc must not be moved): always False off x86_64 Linux, where the restart is not done this way."""
    if arch != "x86_64" or os.uname().sysname != "Linux":
        return False
    frame = thread.GetFrameAtIndex(0)
    rax = frame.FindRegister("rax").GetValueAsUnsigned()
    pc = frame.FindRegister("rip").GetValueAsUnsigned()
    rax = rax - (1 << 64) if rax >= 1 << 63 else rax
    if rax not in ERESTART:
        return False
    err = lldb.SBError()
    before = process.ReadMemory(pc - 2, 2, err)
    return not err.Success() or before == SYSCALL


def calibrate(lldb, target, process, thread, arch: str, rets: list[int], cal, rounds: int = ROUNDS,
              wait_stop=None, abort=None, read_like_entry=lambda thread: None):
    """Fill ``cal`` (recorder.Calibration) with ``rounds`` stop-pair times on ``thread``.

    ``wait_stop`` resumes the process and returns once it has stopped again (the driver's
    event loop; lldb's synchronous mode when None); ``read_like_entry(thread)`` makes the
    reads a lookup's entry stop makes, so the calibration pays for them too.
    """
    if arch not in REGISTERS:
        cal.error = f"no calibration for {arch}"
        return cal
    if len(rets) < RETS_NEEDED[arch]:
        cal.error = "not enough `ret` instructions found in the dynamic linker's code"
        return cal
    if in_interrupted_syscall(lldb, process, thread, arch):  # its pc must stay where it is
        cal.error = "not calibrated: the thread was stopped inside a system call, where it must not be moved"
        return cal
    pc_name, sp_name, lr_name = REGISTERS[arch]
    frame = thread.GetFrameAtIndex(0)
    pc0, sp0 = (frame.FindRegister(n).GetValueAsUnsigned() for n in (pc_name, sp_name))
    r = _Rounds(lldb, target, process, thread, cal, wait_stop, abort, read_like_entry)
    err = lldb.SBError()
    if arch == "arm64":
        lr0 = frame.FindRegister(lr_name).GetValueAsUnsigned()
        r_start, r_empty = rets[:2]
        try:
            r.run(rounds, r_empty, pc0,
                  enter=lambda: set_registers(lldb, thread, **{pc_name: r_start, lr_name: r_empty}),
                  at_entry=lambda: set_registers(lldb, thread, **{lr_name: pc0}))
        finally:
            set_registers(lldb, thread, **{pc_name: pc0, lr_name: lr0, sp_name: sp0})
        return cal
    r_start, r_empty, r_mid = rets[:3]
    r_back = r_start  # the return-site breakpoint: a round then starts on it (lldb steps over it, untimed)
    scratch = (sp0 - 256) & ~0xF  # below the red zone
    frame_bytes = b"".join(a.to_bytes(8, "little") for a in (r_empty, r_mid, r_back))
    saved = process.ReadMemory(scratch, len(frame_bytes), err)
    if not err.Success():
        cal.error = f"cannot read the stack: {err.GetCString()}"
        return cal

    def enter() -> str | None:
        process.WriteMemory(scratch, frame_bytes, err)
        if not err.Success():
            return f"cannot write the stack: {err.GetCString()}"
        set_registers(lldb, thread, **{pc_name: r_start, sp_name: scratch})
        return None

    try:
        r.run(rounds, r_empty, r_back, enter=enter, at_entry=lambda: None)
    finally:
        process.WriteMemory(scratch, saved, err)
        set_registers(lldb, thread, **{pc_name: pc0, sp_name: sp0})
    return cal
