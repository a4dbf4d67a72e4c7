"""The lldb backend's dyld profile: breakpoints on dyld4's functions and where their arguments are.

Not run on macOS: lldb on a Mac cannot be had here, so the recorder runs against a
stand-in for lldb's process API (registers, memory, modules) set up the way each ABI
leaves a stopped thread at a function's first instruction and at its return site.
The expected values are the ABIs' and dyld-1378's layouts, written out here (the loader's
through tests/dyld_layout.py: dyld's declarations laid out by ctypes, never the recorder's constants). lldb's own
slide formula (capture/lldb/slides.py) runs for real against `image list -o`.
"""
from __future__ import annotations

import json
import re
import struct

import pytest

import dyld_layout
from conftest import require_lldb, run_notebook
from tracer.capture.lldb import dyld_recorder as D


class _Err:
    def __init__(self):
        self.ok = True

    def Success(self):
        return self.ok


class _Lldb:
    SBError = _Err


class _Reg:
    def __init__(self, v):
        self.v = v

    def GetValueAsUnsigned(self):
        return self.v


class _Frame:
    def __init__(self, regs):
        self.regs = regs

    def FindRegister(self, name):
        return _Reg(self.regs[name])


class _Thread:
    def __init__(self, tid):
        self.tid, self.regs = tid, {}

    def GetThreadID(self):
        return self.tid

    def GetFrameAtIndex(self, i):
        return _Frame(self.regs)


class _Mem:
    def __init__(self):
        self.bytes = {}

    def put(self, addr, data: bytes):
        for i, b in enumerate(data):
            self.bytes[addr + i] = b

    def get(self, addr, n):
        return bytes(self.bytes.get(addr + i, 0) for i in range(n))


class _Process:
    def __init__(self, mem):
        self.mem = mem

    def GetProcessID(self):
        return 4242

    def ReadUnsignedFromMemory(self, addr, size, err):
        return int.from_bytes(self.mem.get(addr, size), "little")

    def ReadPointerFromMemory(self, addr, err):
        return self.ReadUnsignedFromMemory(addr, 8, err)

    def ReadCStringFromMemory(self, addr, n, err):
        out = bytearray()
        while self.mem.bytes.get(addr + len(out), 0):
            out.append(self.mem.bytes[addr + len(out)])
        return out.decode()


class _Spec:
    def __init__(self, path):
        self.fullpath = path

    def GetFilename(self):
        return self.fullpath.rsplit("/", 1)[-1]


class _Module:
    def __init__(self, path):
        self.path = path

    def IsValid(self):
        return self.path is not None

    def GetFileSpec(self):
        return _Spec(self.path)


class _Addr:
    def __init__(self, path):
        self.path = path

    def GetModule(self):
        return _Module(self.path)


class _Bp:
    def __init__(self, bid, name=None):
        self.bid, self.name = bid, name

    def IsValid(self):
        return True

    def GetNumLocations(self):
        return 1

    def GetID(self):
        return self.bid


class _Target:
    def __init__(self, modules):
        self.modules, self.bps, self.by_name = modules, [], {}

    def BreakpointCreateByName(self, name, module):
        bp = _Bp(len(self.bps) + 1, name)
        self.bps.append(bp)
        self.by_name[name] = bp.bid
        assert module == "dyld"
        return bp

    def BreakpointCreateByAddress(self, addr):
        bp = _Bp(len(self.bps) + 1)
        self.bps.append(bp)
        return bp

    def BreakpointDelete(self, bid):
        pass

    def ResolveLoadAddress(self, addr):
        for (lo, hi), path in self.modules.items():
            if lo <= addr < hi:
                return _Addr(path)
        return _Addr(None)


HELLO, LIBSYS, LIBZ = 0x100F58000, 0x18B2E8000, 0x1023A0000
MODULES = {(HELLO, HELLO + 0x8000): "/Users/me/hello", (LIBSYS, LIBSYS + 0x80000): "/usr/lib/system/libsystem_malloc.dylib",
           (LIBZ, LIBZ + 0x10000): "/opt/homebrew/lib/libz.1.dylib"}


def _world():
    mem = _Mem()
    loaders = {0x6000_0000: HELLO, 0x6000_1000: LIBSYS, 0x6000_2000: LIBZ}
    for loader, header in loaders.items():  # dyld-1378's JustInTimeLoader, laid out by tests/dyld_layout.py
        mem.put(loader, struct.pack("<I", dyld_layout.LOADER_MAGIC))
        mem.put(loader + dyld_layout.MAPPED_ADDRESS, struct.pack("<Q", header))
    mem.put(0x7000_0000, b"_malloc\0")
    mem.put(0x7000_0100, b"deflate\0")
    mem.put(0x7000_0200, b"nope\0")
    return mem, _Target(MODULES)


def _resolved(loader: int, offset: int, kind: str = "bindToImage") -> bytes:
    """A Loader::ResolvedSymbol as dyld leaves it at the hidden struct-return pointer."""
    return bytes(dyld_layout.ResolvedSymbol(targetLoader=loader, targetRuntimeOffset=offset,
                                            kind=dyld_layout.KIND[kind]))


def _entry(rec, target, thread, name, arch, regs, ret=0x100F5A010, sp=0x16FDFF000, mem=None):
    thread.regs = dict(regs)
    if arch == "arm64":
        thread.regs.update(lr=ret, sp=sp)
    else:
        thread.regs["rsp"] = sp
        mem.put(sp, struct.pack("<Q", ret))  # the call pushed the return address
    assert rec.on_stop(thread, target.by_name[name], 1000)
    return rec.return_bps[ret]


def _return(rec, thread, bp, arch, regs, sp=0x16FDFF000, now=3500):
    thread.regs = dict(regs)
    thread.regs["sp" if arch == "arm64" else "rsp"] = sp if arch == "arm64" else sp + 8
    assert rec.on_stop(thread, bp, now)


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_resolve_symbol_fixups_and_dlsym_per_abi(arch):
    mem, target = _world()
    rec = D.DyldRecorder(_Lldb, target, _Process(mem), "/Users/me/hello", arch)
    rec.arm()
    assert set(target.by_name) == {"dyld4::Loader::resolveSymbol", "dyld4::JustInTimeLoader::applyFixups",
                                   "dyld4::APIs::dlsym"}  # dyld-1378's names (macos-dyld.md), written out
    t = _Thread(1)
    result = 0x16FDFE000  # the caller's ResolvedSymbol: providing loader, offset, kind
    mem.put(result, _resolved(0x6000_1000, 0x2C1A4))
    if arch == "arm64":  # the hidden struct-return pointer in x8; this = x0, the name the fifth argument
        entry = {"x0": 0x6000_0000, "x4": 0x7000_0000, "x8": result}
    else:  # in rdi; this = rsi, the name the sixth argument
        entry = {"rdi": result, "rsi": 0x6000_0000, "r9": 0x7000_0000}
    bp = _entry(rec, target, t, "dyld4::Loader::resolveSymbol", arch, entry, mem=mem)
    _return(rec, t, bp, arch, {})
    # a missing weak import: no providing loader
    mem.put(result, _resolved(0, 0))
    bp = _entry(rec, target, t, "dyld4::Loader::resolveSymbol", arch, entry, mem=mem)
    _return(rec, t, bp, arch, {})
    # the fixups of libz: this in the first argument register (no hidden pointer)
    bp = _entry(rec, target, t, "dyld4::JustInTimeLoader::applyFixups", arch,
                {"x0" if arch == "arm64" else "rdi": 0x6000_2000}, ret=0x18000_1234, mem=mem)
    _return(rec, t, bp, arch, {}, now=91000)
    # dlsym(handle, "deflate") found in libz, dlsym(handle, "nope") not
    args = {"x1": 0xAB, "x2": 0x7000_0100} if arch == "arm64" else {"rsi": 0xAB, "rdx": 0x7000_0100}
    bp = _entry(rec, target, t, "dyld4::APIs::dlsym", arch, args, ret=0x18000_5678, mem=mem)
    _return(rec, t, bp, arch, {"x0" if arch == "arm64" else "rax": LIBZ + 0x1F00})
    args[("x2" if arch == "arm64" else "rdx")] = 0x7000_0200
    bp = _entry(rec, target, t, "dyld4::APIs::dlsym", arch, args, ret=0x18000_5678, mem=mem)
    _return(rec, t, bp, arch, {"x0" if arch == "arm64" else "rax": 0})
    rows = [(r[4], r[5], r[7], r[8], r[9], r[11]) for r in rec.rows]
    assert rows == [
        ("/Users/me/hello", "_malloc", "/usr/lib/system/libsystem_malloc.dylib", "eager", True, 2500),
        ("/Users/me/hello", "_malloc", None, "eager", False, 2500),
        (None, "_deflate", "/opt/homebrew/lib/libz.1.dylib", "dlsym", True, 2500),
        (None, "_nope", None, "dlsym", False, 2500),
    ]
    assert rec.relocations == [{"ts_ns": 1000, "pid": 4242, "path": "/opt/homebrew/lib/libz.1.dylib",
                                "duration_ns": 90000}]
    assert rec.unpaired == 0


def test_a_loader_without_dyld_1378s_magic_is_not_guessed():
    mem, target = _world()
    mem.put(0x6000_0000, b"\0\0\0\0")
    rec = D.DyldRecorder(_Lldb, target, _Process(mem), "/x", "arm64")
    assert rec.loader_image(0x6000_0000) is None and rec.loader_image(0x6000_1000).endswith("libsystem_malloc.dylib")
    with pytest.raises(ValueError):
        D.DyldRecorder(_Lldb, target, _Process(mem), "/x", "riscv64")


def test_lldb_slides_are_image_list_o(modes_bins):
    """capture/lldb/slides.py in a real lldb, stopped in main, against its own `image list -o -f`."""
    require_lldb()
    from test_lldb_module import _after, _lldb

    cmd = ("script import json; from tracer.capture.lldb.slides import lldb_slides; "
           "print('SLIDES ' + json.dumps(lldb_slides(lldb.target)))")
    out = _lldb(["b main", "run", cmd, "image list -o -f"], modes_bins["lazy"])
    rows = json.loads(out.split("SLIDES ", 2)[-1].splitlines()[0])
    offsets = {}
    for line in _after(out, "image list -o -f").splitlines():
        m = re.match(r"\[\s*\d+\]\s+(0x[0-9a-f]+)\s+(\S+)", line.strip())
        if m:
            offsets[m.group(2)] = int(m.group(1), 16)
    checked = [r for r in rows if r["path"] in offsets]
    assert len(checked) >= 3, (rows, offsets)
    assert all(r["slide"] == offsets[r["path"]] for r in checked), (checked, offsets)
    assert any(r["slide"] for r in checked)  # stopped in main: the libraries are mapped, somewhere


def _recorded(arch: str, calibration_ns: int):
    """The dyld profile's rows and fixup times for one hello run, as lldb would record them
    (arm64 natively, x86_64 under Rosetta), with a calibration of ``calibration_ns``."""
    mem, target = _world()
    rec = D.DyldRecorder(_Lldb, target, _Process(mem), "/Users/me/hello", arch)
    rec.calibration.samples_ns = [calibration_ns] * 40
    rec.arm()
    t = _Thread(1)
    result = 0x16FDFE000
    mem.put(result, _resolved(0x6000_1000, 0x2C1A4))
    entry = ({"x0": 0x6000_0000, "x4": 0x7000_0000, "x8": result} if arch == "arm64"
             else {"rdi": result, "rsi": 0x6000_0000, "r9": 0x7000_0000})
    bp = _entry(rec, target, t, "dyld4::Loader::resolveSymbol", arch, entry, mem=mem)
    _return(rec, t, bp, arch, {}, now=1000 + calibration_ns + (300 if arch == "arm64" else 2100))
    bp = _entry(rec, target, t, "dyld4::JustInTimeLoader::applyFixups", arch,
                {"x0" if arch == "arm64" else "rdi": 0x6000_2000}, ret=0x18000_1234, mem=mem)
    _return(rec, t, bp, arch, {}, now=1000 + (90_000 if arch == "arm64" else 400_000))
    return rec


def _save(path, rec, meta):
    from tracer.capture.lldb.tables import processes_rows
    from tracer.capture.lldb.driver import ImageRun
    from tracer.session.schema import events_from_rows
    from tracer.session.writer import SessionWriter, prepare_directory

    w = SessionWriter(prepare_directory(path, False), {"command": "/Users/me/hello", "argv": ["/Users/me/hello"], "os": "Darwin",
                             "start_ns": 0, **meta})
    w.append_events(events_from_rows(rec.rows))
    w.write_table("processes", processes_rows(4242, 1, [ImageRun("/Users/me/hello", ["hello"], 0, 10**6)], 0))
    w.write_table("images", [])
    w.write_table("relocations", rec.relocations)
    w.finish(True, processes=1, lost_events=0, malformed_records=0)
    return path


def test_a_native_and_a_rosetta_session_side_by_side(tmp_path):
    """What the dyld profile records natively (timed by DTrace there, or lldb) and under Rosetta
    (lldb only) goes through compare, plot and their warnings. Not run on macOS: the rows come
    from the profile driven by the stand-in above."""
    from tracer import load_session
    from tracer.analysis.compare import compare
    from tracer.analysis.plot import figure
    from tracer.capture.lldb.tables import latency_method
    from tracer.capture.translated.rosetta import RosettaRun

    native, rosetta = _recorded("arm64", 1_500_000), _recorded("x86_64", 4_000_000)
    assert [r[10] for r in rosetta.rows] == [2100] and [r[11] for r in rosetta.rows] == [4_002_100]  # raw - calibration
    translated = {"backend": "lldb", "arch": "arm64", "translation": RosettaRun("x86_64").meta(),
                  "latency_method": latency_method(rosetta.calibration.describe())}
    b = load_session(_save(tmp_path / "rosetta", rosetta, translated))
    for backend, meta in (("lldb", {"latency_method": latency_method(native.calibration.describe())}),
                          ("dtrace", {"latency_method": {"method": "DTrace pid provider, entry to return"}})):
        a = load_session(_save(tmp_path / backend, native, {"backend": backend, "arch": "arm64", **meta}))
        res = compare(a, b)
        assert res["b"]["translator"] == "rosetta" and res["b"]["arch"] == "x86_64"
        assert res["a"]["latency_method"]["instrument"] == backend and res["b"]["latency_method"]["instrument"] == "lldb"
        assert "dyld" in b.meta["latency_method"]["calibration"]["method"]
        (sym,) = res["latency_by_symbol"]
        assert (sym["name"], sym["a"]["median_ns"], sym["b"]["median_ns"]) == ("_malloc", 300, 2100)
        (img,) = res["relocation_by_image"]
        assert (img["name"], img["a"]["median_ns"], img["b"]["median_ns"]) == ("libz.1.dylib", 90_000, 400_000)
        mismatch = [w for w in res["warnings"] if "measured differently" in w]
        assert [("A by dtrace, B by lldb" in w) for w in mismatch] == ([True] if backend == "dtrace" else [])
        fig = figure([a, b])
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert f"timed by {backend}" in legend[0] and "x86_64 via rosetta, timed by lldb" in legend[1]
        assert any("measured differently" in t.get_text() for t in fig.texts) == (backend == "dtrace")
    # the notebook takes the pair (the last A: DTrace natively), and says how each side was timed
    outputs = run_notebook(a.path, b.path, tmp_path)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "latencies measured differently: A by dtrace, B by lldb" in printed
