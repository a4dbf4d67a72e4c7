"""Records dyld4's bindings of one process through lldb breakpoints: the dyld profile.

macOS, dyld4 (macOS 12+). Not run on macOS: the breakpoint table and the argument
rules come from dyld's sources (apple-oss-distributions/dyld, dyld-1378) and the
two ABIs, and are tested here against a stand-in for lldb's process API. The
glibc profile (recorder.py) is the one that runs here.

Breakpoints by name (lldb resolves them in dyld, and again in the shared cache's
dyld that a native process restarts into):

* ``dyld4::Loader::resolveSymbol`` — once per bind target. It returns a 48-byte
  ResolvedSymbol through a hidden pointer: arm64 passes it in x8, so this = x0
  and the symbol name is the fifth argument, x4; x86_64 passes it in rdi, so
  this = rsi and the name is the sixth, r9. At the return site the struct holds
  the providing loader (+0), the symbol's offset in it (+16) and the kind (+32).
* ``dyld4::JustInTimeLoader::applyFixups`` — once per image: its fixup time.
* ``dyld4::APIs::dlsym`` — handle and name; the result in x0 / rax.

A loader is named through the image header it maps: dyld-1378's Loader starts
with the magic 'l4yd' and a JustInTimeLoader's header pointer sits 32 bytes in;
lldb names the module at that address. Entry and return pair per thread by
stack pointer: on arm64 the return site's sp is the entry's (bl pushes
nothing), on x86_64 it is 8 bytes higher (the call pushed the return address).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import calibrate as calibration
from .recorder import Calibration, RowSink, read_cstr

BREAKPOINTS = {  # role -> dyld4's function (demangled name, as lldb takes it)
    "lookup": "dyld4::Loader::resolveSymbol",
    "fixup": "dyld4::JustInTimeLoader::applyFixups",
    "dlsym": "dyld4::APIs::dlsym",
}
DYLD_MODULE = "dyld"
LOADER_MAGIC = 0x6C347964  # 'l4yd' (Loader::kMagic)
HEADER_OFFSET = 32  # JustInTimeLoader::mappedAddress, after Loader's 32 bytes (dyld-1378)
RESOLVED_TARGET, RESOLVED_OFFSET, RESOLVED_KIND = 0, 16, 32  # Loader::ResolvedSymbol
KIND_ABSOLUTE = 2

# per architecture: where each argument is at a function's first instruction
ARGS = {
    "arm64": {"result": "x8", "this": "x0", "symbol": "x4", "handle": "x1", "name": "x2", "return": "x0",
              "ra": "lr", "sp": "sp", "ret_sp_delta": 0},
    "x86_64": {"result": "rdi", "this": "rsi", "symbol": "r9", "handle": "rsi", "name": "rdx", "return": "rax",
               "ra": "[sp]", "sp": "rsp", "ret_sp_delta": 8},
}
FIXUP_THIS = {"arm64": "x0", "x86_64": "rdi"}  # applyFixups returns nothing: no hidden pointer


@dataclass
class _Pending:
    role: str
    t0: int
    sp: int
    symbol: str | None = None
    requester: str | None = None
    result_ptr: int = 0
    image: str | None = None


class DyldRecorder(RowSink):
    """Breakpoints on one process's dyld4 binding functions, and the rows they produce
    (the same interface as recorder.BindingRecorder, so the driver takes either)."""

    def __init__(self, lldb, target, process, exe: str, arch: str, sink=None, backend: str = "lldb",
                 on_breakpoint=None):
        if arch not in ARGS:
            raise ValueError(f"the dyld profile knows arm64 and x86_64, not {arch}")
        self.lldb, self.target, self.process = lldb, target, process
        self.exe, self.arch, self.args = exe, arch, ARGS[arch]
        self.pid = process.GetProcessID()
        self.sink, self.backend = sink, backend
        self.on_breakpoint = on_breakpoint or (lambda bp: None)
        self.rows: list[tuple] = []
        self.relocations: list[dict] = []
        self.calibration = Calibration(where="dyld")
        self.entry_bps: dict[int, str] = {}  # breakpoint id -> role
        self.return_bps: dict[int, int] = {}  # return address -> breakpoint id
        self.return_ids: set[int] = set()
        self.pending: dict[int, list[_Pending]] = {}
        self.stops = 0
        self.unpaired = 0
        self.cut_short = 0  # dyld halts in a failing lookup: in-flight ones are failures (process_exited)

    # ---- set-up ---------------------------------------------------------------------------
    def arm(self) -> None:
        for role, name in BREAKPOINTS.items():
            bp = self.target.BreakpointCreateByName(name, DYLD_MODULE)
            if not bp.IsValid() or bp.GetNumLocations() == 0:
                if role == "lookup":
                    raise RuntimeError(f"lldb found no {name} in dyld: is this dyld4 (macOS 12 or later)?")
                continue
            self.entry_bps[bp.GetID()] = role
            self.on_breakpoint(bp)

    def disarm(self) -> None:
        for bid in [*self.entry_bps, *self.return_bps.values()]:
            self.target.BreakpointDelete(bid)
        self.entry_bps.clear()
        self.return_bps.clear()
        self.return_ids.clear()

    def dyld_text(self) -> tuple[int, int] | None:
        """dyld's __TEXT,__text as load addresses (where calibration finds its ``ret``s)."""
        for module in self.target.module_iter():
            if module.GetFileSpec().GetFilename() != DYLD_MODULE:
                continue
            seg = module.FindSection("__TEXT")
            for i in range(seg.GetNumSubSections() if seg and seg.IsValid() else 0):
                sub = seg.GetSubSectionAtIndex(i)
                if sub.GetName() == "__text":
                    lo = sub.GetLoadAddress(self.target)
                    return lo, lo + sub.GetByteSize()
        return None

    def calibrate(self, thread, rounds: int = calibration.ROUNDS, wait_stop=None, abort=None) -> Calibration:
        """lldb's stop/resume cost in this process, before dyld binds anything (calibrate.py): natively
        and under Rosetta 2 (whose debugserver and translation make it a cost of its own). Not run on macOS."""
        text = self.dyld_text()
        if text is None:
            self.calibration.error = "dyld's __TEXT,__text not found: latencies are raw stop-to-stop times"
            return self.calibration
        rets = calibration.find_rets(self.lldb, self.target, [text], calibration.RETS_NEEDED[self.arch], self.arch)
        return calibration.calibrate(self.lldb, self.target, self.process, thread, self.arch, rets, self.calibration,
                                     rounds, wait_stop, abort, read_like_entry=self._read_like_entry)

    def _read_like_entry(self, thread) -> None:
        """The reads a resolveSymbol entry stop makes (registers, the name, the loader's magic)."""
        frame = thread.GetFrameAtIndex(0)
        a = self.args
        for name in (a["sp"], a["symbol"], a["result"], a["this"]):
            self._reg(frame, name)
        self._cstr(self._reg(frame, a["sp"]))
        self._u(self._reg(frame, a["sp"]), 4)

    # ---- reading the process --------------------------------------------------------------
    def _reg(self, frame, name: str) -> int:
        if name == "[sp]":
            err = self.lldb.SBError()
            return self.process.ReadPointerFromMemory(self._reg(frame, self.args["sp"]), err)
        return frame.FindRegister(name).GetValueAsUnsigned()

    def _u(self, addr: int, size: int) -> int | None:
        err = self.lldb.SBError()
        value = self.process.ReadUnsignedFromMemory(addr, size, err)
        return value if err.Success() else None

    def _cstr(self, addr: int) -> str:
        return read_cstr(self.lldb, self.process, addr)

    def module_at(self, addr: int) -> str | None:
        """The path of the module lldb has at a load address."""
        if not addr:
            return None
        module = self.target.ResolveLoadAddress(addr).GetModule()
        if not module or not module.IsValid():
            return None
        spec = module.GetFileSpec()
        return spec.fullpath or spec.GetFilename()

    def loader_image(self, loader: int) -> str | None:
        """The image a dyld4 loader maps (None: no loader, or not a JustInTimeLoader we can read)."""
        if not loader or self._u(loader, 4) != LOADER_MAGIC:
            return None
        header = self._u(loader + HEADER_OFFSET, 8)
        return self.module_at(header) if header else None

    # ---- stops -----------------------------------------------------------------------------
    def on_stop(self, thread, bp_id: int, now_ns: int) -> bool:
        role = self.entry_bps.get(bp_id)
        if role is not None:
            self.stops += 1
            self._entry(thread, role, now_ns)
            return True
        if bp_id in self.return_ids:
            self.stops += 1
            self._return(thread, now_ns)
            return True
        return False

    def _entry(self, thread, role: str, now: int) -> None:
        frame = thread.GetFrameAtIndex(0)
        a = self.args
        p = _Pending(role, now, self._reg(frame, a["sp"]))
        if role == "lookup":
            p.symbol = self._cstr(self._reg(frame, a["symbol"])) or "?"
            p.result_ptr = self._reg(frame, a["result"])
            p.requester = self.loader_image(self._reg(frame, a["this"]))
        elif role == "fixup":
            p.image = self.loader_image(self._reg(frame, FIXUP_THIS[self.arch]))
        else:  # dlsym
            p.symbol = "_" + (self._cstr(self._reg(frame, a["name"])) or "?")  # Mach-O's name, as dyld looks it up
        self.pending.setdefault(thread.GetThreadID(), []).append(p)
        ret = self._reg(frame, a["ra"])
        if ret not in self.return_bps:
            bp = self.target.BreakpointCreateByAddress(ret)
            self.return_bps[ret] = bp.GetID()
            self.return_ids.add(bp.GetID())
            self.on_breakpoint(bp)

    def process_exited(self) -> None:
        """The process ended with lookups in flight: dyld halted in them ("Symbol not found",
        abort_with_payload), so each is a failed lookup, not timed. Not run on macOS."""
        for tid, stack in self.pending.items():
            for p in stack:
                self.unpaired += 1
                if p.role != "fixup":
                    self._add((p.t0, self.pid, tid, self.exe, p.requester if p.role == "lookup" else None,
                               p.symbol, None, None, "eager" if p.role == "lookup" else "dlsym", False,
                               None, None, self.backend))
        self.pending.clear()

    def _return(self, thread, now: int) -> None:
        frame = thread.GetFrameAtIndex(0)
        sp = self._reg(frame, self.args["sp"]) - self.args["ret_sp_delta"]
        stack = self.pending.get(thread.GetThreadID())
        if not stack:
            return
        while stack and stack[-1].sp < sp:  # calls that never came back here
            stack.pop()
            self.unpaired += 1
        if not stack or stack[-1].sp != sp:
            return
        p = stack.pop()
        raw = now - p.t0
        tid = thread.GetThreadID()
        if p.role == "fixup":
            self.relocations.append({"ts_ns": p.t0, "pid": self.pid, "path": p.image, "duration_ns": raw})
            return
        if p.role == "lookup":
            target = self._u(p.result_ptr + RESOLVED_TARGET, 8) or 0
            kind = self._u(p.result_ptr + RESOLVED_KIND, 4)
            provider = self.loader_image(target)
            found = bool(target) or kind == KIND_ABSOLUTE
            self._add((p.t0, self.pid, tid, self.exe, p.requester, p.symbol, None, provider, "eager", found,
                       self.calibration.corrected(raw), raw, self.backend))
            return
        value = self._reg(frame, self.args["return"])
        self._add((p.t0, self.pid, tid, self.exe, None, p.symbol, None, self.module_at(value) if value else None,
                   "dlsym", bool(value), self.calibration.corrected(raw), raw, self.backend))

    def image_rows(self) -> list[dict]:
        """Every module's load base, link-time base and slide, as `image list -o` computes them."""
        from .slides import lldb_slides

        return [{"pid": self.pid, **row} for row in lldb_slides(self.target)]
