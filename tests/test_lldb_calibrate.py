"""lldb's stop/resume calibration (capture/lldb/calibrate.py) on both of its ABIs, for real.

x86_64 runs in every lldb-backend session here (glibc's ld.so; test_lldb_backend checks
the figures it leaves). arm64 is the Mac's own path (dyld natively) and cannot run on a
Mac here, but an arm64 Linux process can: qemu-user's gdb stub serves lldb an arm64
thread, and calibrate() points it at a plain `ret` of the arm64 ld.so, with lr, as it
would in dyld. The oracle is the process itself: every round reaches both breakpoints,
the registers are back where they were, and the program then runs to its own output and
exit code. What differs on a Mac (dyld's __text, Rosetta's debugserver) is not run on macOS.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from conftest import require, require_lldb

CROSS = "aarch64-linux-gnu-gcc"
SYSROOT = Path("/usr/aarch64-linux-gnu")
LDSO = SYSROOT / "lib" / "ld-linux-aarch64.so.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(path: Path) -> int:
    out = subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if "Entry point" in line), 16)


def _text(path: Path) -> tuple[int, int]:
    out = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True, check=True).stdout
    fields = next(line.split("]", 1)[1].split() for line in out.splitlines() if " .text " in line)
    return int(fields[2], 16), int(fields[4], 16)  # address, size


def test_arm64_calibration_in_a_real_arm64_process(tmp_path):
    require_lldb()
    require(shutil.which(CROSS) is not None and shutil.which("qemu-aarch64") is not None and LDSO.exists(),
            "the arm64 cross compiler and qemu-user are not installed (gcc-aarch64-linux-gnu qemu-user)")
    from tracer.capture.lldb import calibrate as C
    from tracer.capture.lldb.loader import import_lldb
    from tracer.capture.lldb.recorder import Calibration

    prog = tmp_path / "hello"
    subprocess.run([CROSS, "-O1", "-o", str(prog), "-x", "c", "-"], check=True,
                   input='#include <stdio.h>\nint main(void){puts("hello arm64");return 7;}\n', text=True)
    port = _free_port()
    qemu = subprocess.Popen(["qemu-aarch64", "-L", str(SYSROOT), "-g", str(port), str(prog)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lldb = import_lldb()
    dbg = lldb.SBDebugger.Create(False)
    try:
        dbg.SetAsync(False)
        err = lldb.SBError()
        target = dbg.CreateTarget(str(prog), "aarch64-unknown-linux-gnu", None, True, err)
        assert target.IsValid(), err.GetCString()
        for _ in range(50):  # the stub listens once qemu has loaded the program
            process = target.ConnectRemote(dbg.GetListener(), f"connect://127.0.0.1:{port}", "gdb-remote", err)
            if err.Success():
                break
            time.sleep(0.1)
        assert err.Success(), err.GetCString()
        thread = process.GetSelectedThread()
        frame = thread.GetFrameAtIndex(0)
        before = {n: frame.FindRegister(n).GetValueAsUnsigned() for n in ("pc", "sp", "lr")}
        # stopped at ld.so's entry: its load bias is pc - e_entry
        ldso = target.AddModule(str(LDSO), None, None)
        bias = before["pc"] - _entry(LDSO)
        assert target.SetModuleLoadAddress(ldso, bias).Success()
        lo, size = _text(LDSO)
        rets = C.find_rets(lldb, target, [(bias + lo, bias + lo + size)], 2, "arm64")
        assert len(rets) == 2 and all(bias + lo <= r < bias + lo + size for r in rets)
        for r in rets:  # objdump agrees these are plain `ret`s
            dis = subprocess.run(["llvm-objdump-16" if shutil.which("llvm-objdump-16") else "llvm-objdump", "-d",
                                  f"--start-address={r - bias:#x}", f"--stop-address={r - bias + 4:#x}", str(LDSO)],
                                 capture_output=True, text=True).stdout
            assert dis.rstrip().splitlines()[-1].split()[-1] == "ret", dis
        cal = Calibration(where="ld.so")
        C.calibrate(lldb, target, process, thread, "arm64", rets, cal, rounds=12)
        assert cal.error is None and len(cal.samples_ns) == 12 and cal.median_ns > 0
        frame = thread.GetFrameAtIndex(0)
        assert {n: frame.FindRegister(n).GetValueAsUnsigned() for n in ("pc", "sp", "lr")} == before
        process.Continue()
        assert process.GetState() == lldb.eStateExited and process.GetExitStatus() == 7
    finally:
        lldb.SBDebugger.Destroy(dbg)
        try:
            out, _ = qemu.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            qemu.kill()
            out, _ = qemu.communicate()
    assert out == "hello arm64\n" and qemu.returncode == 7


def test_a_thread_inside_a_system_call_is_not_moved(tmp_path):
    """calibrate() on a thread stopped inside an interrupted system call (python3 blocked reading
    stdin, attached): it refuses to touch the thread, and the program goes on to its own output and
    exit status once detached. Moving that thread is what made the kernel's restart of the call
    land inside an instruction (issue 26, item 2)."""
    require_lldb()
    from tracer.capture.ldso import require_layout
    from tracer.capture.lldb.loader import import_lldb
    from tracer.capture.lldb.recorder import BindingRecorder
    from tracer.procfs import AT_BASE, auxv

    proc = subprocess.Popen(["/usr/bin/python3", "-c", "import sys; print('ready', flush=True); "
                             "print(len(sys.stdin.readline()))"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lldb = import_lldb()
    dbg = lldb.SBDebugger.Create(False)
    try:
        assert proc.stdout.readline() == "ready\n"
        deadline = time.monotonic() + 60
        while Path(f"/proc/{proc.pid}/syscall").read_text().split()[0] != "0":  # until blocked in read(2)
            assert time.monotonic() < deadline
            time.sleep(0.01)
        dbg.SetAsync(False)
        target = dbg.CreateTarget("")
        err = lldb.SBError()
        process = target.AttachToProcessWithID(dbg.GetListener(), proc.pid, err)
        assert err.Success(), err.GetCString()
        _, layout = require_layout()
        rec = BindingRecorder(lldb, target, process, layout, auxv(proc.pid)[AT_BASE], "/usr/bin/python3")
        thread = process.GetSelectedThread()
        pc = thread.GetFrameAtIndex(0).FindRegister("rip").GetValueAsUnsigned()
        cal = rec.calibrate(thread)
        assert thread.GetFrameAtIndex(0).FindRegister("rip").GetValueAsUnsigned() == pc
        assert cal.samples_ns == [] and "system call" in (cal.error or "")
        process.Detach()
        out, _ = proc.communicate("12345\n", timeout=60)
    finally:
        proc.kill()
        lldb.SBDebugger.Destroy(dbg)
    assert proc.returncode == 0 and out == "6\n"
