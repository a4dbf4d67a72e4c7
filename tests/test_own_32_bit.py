"""A 32-bit program of the host's own CPU: `gcc -m32` (gcc-12-multilib) on x86_64, as GOARCH=386 cgo
programs are. The kernel runs it natively (no translator), with its own ld.so, /lib/ld-linux.so.2,
and its own auxiliary vector of 32-bit words. Oracles: readelf -h / -l (class, machine, PT_INTERP),
/proc/PID/maps (where that ld.so is mapped), glibc's LD_DEBUG=bindings (the bindings), the program's
exit status."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest

from conftest import gotrace_cli, ld_debug_counts, require, require_backend, require_lldb

SRC = """#include <math.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char c;
    if (argc > 1) while (read(0, &c, 1) > 0) {}  /* "wait": until its stdin closes */
    printf("%.3f\\n", cos((double)argc));
    return 3;
}
"""


@pytest.fixture(scope="module")
def prog32(tmp_path_factory) -> str:
    require(shutil.which("gcc") is not None, "gcc is not installed")
    d = tmp_path_factory.mktemp("m32")
    (d / "hi.c").write_text("#include <stdlib.h>\n" + SRC)
    out = subprocess.run(["gcc", "-m32", "-O0", "-o", str(d / "hi32"), str(d / "hi.c"), "-lm"], capture_output=True, text=True)
    require(out.returncode == 0, f"gcc -m32 cannot link (gcc-12-multilib is not installed): {out.stderr[-200:]}")
    head = subprocess.run(["readelf", "-h", "-l", str(d / "hi32")], capture_output=True, text=True).stdout
    assert "ELF32" in head and "Intel 80386" in head and "/lib/ld-linux.so.2" in head, head
    return str(d / "hi32")


def _interp(path: str) -> str:
    out = subprocess.run(["readelf", "-l", path], capture_output=True, text=True).stdout
    (interp,) = re.findall(r"Requesting program interpreter: (\S+)\]", out)
    return interp


def test_the_auxiliary_vector_of_a_32_bit_process_is_read_in_its_words(prog32):
    """AT_BASE (7) is where the kernel mapped the program's interpreter: the first mapping of
    /lib/ld-linux.so.2's file in /proc/PID/maps. Read as 64-bit words the vector is garbage
    (an i386 process has no AT_BASE then, and lldb's attach called it "not dynamically linked")."""
    from tracer import procfs

    proc = subprocess.Popen([prog32, "wait"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        ldso = os.path.realpath(_interp(prog32))
        deadline = time.monotonic() + 60
        while True:
            with open(f"/proc/{proc.pid}/maps") as fh:
                maps = [line.split() for line in fh]
            starts = [int(m[0].split("-")[0], 16) for m in maps if len(m) >= 6 and os.path.realpath(m[5]) == ldso]
            if starts or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert starts, maps
        assert procfs.auxv(proc.pid).get(7) == min(starts)
    finally:
        proc.kill()
        proc.wait()


def _events(session) -> list[dict]:
    rows = []
    for part in sorted((session / "events").glob("*.parquet")):
        rows += pq.read_table(part, columns=["pid", "symbol", "provider"]).to_pylist()
    return rows


def test_an_ld_debug_run_of_a_32_bit_program_is_glibcs_and_native(prog32, tmp_path):
    """Every binding LD_DEBUG=bindings prints for the run (its own log, counted line by line) is in
    the session, the program's exit status (3) is the run's, and the process is i386 run natively:
    no translator (the old answer was "translated by unknown")."""
    logs = tmp_path / "logs"
    logs.mkdir()
    own = subprocess.run([prog32], env={**os.environ, "LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(logs / "ld")},
                         capture_output=True, text=True)
    assert own.returncode == 3
    (expected,) = ld_debug_counts(logs).values()
    session = tmp_path / "s"
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(session), "--", prog32)
    assert out.returncode == 3, out.stderr
    assert len(_events(session)) == expected
    (row,) = pq.read_table(session / "processes.parquet").to_pylist()
    assert row["arch"] == "i386" and row["translator"] is None
    rep = json.loads(gotrace_cli("report", "--json", str(session)).stdout)
    assert rep["processes"]["translated"] == {}
    assert not any("translated" in n or "32-bit" in n for n in rep["notes"]), rep["notes"]  # ld-debug saw them all


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_probe_backend_says_it_does_not_see_a_32_bit_programs_ld_so(prog32, backend, tmp_path):
    """bpf's and bpftrace's probes are on the 64-bit ld.so; the i386 program's bindings (LD_DEBUG
    prints them: there are some) are not recorded, and the report says why, naming the program, not
    "translated by unknown". The program runs as it would (exit status 3)."""
    require_backend(backend)
    logs = tmp_path / "logs"
    logs.mkdir()
    subprocess.run([prog32], env={**os.environ, "LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(logs / "ld")},
                   capture_output=True)
    assert sum(ld_debug_counts(logs).values()) > 0
    session = tmp_path / "s"
    # beside 64-bit programs (sh, true: readelf -h says ELF64), which the note must leave out
    assert all("ELF64" in subprocess.run(["readelf", "-h", p], capture_output=True, text=True).stdout
               for p in ("/bin/sh", "/bin/true"))
    out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(session), "--", "/bin/sh", "-c", f"/bin/true; {prog32}")
    assert out.returncode == 3, out.stderr
    rep = json.loads(gotrace_cli("report", "--json", str(session)).stdout)
    assert rep["processes"]["translated"] == {}
    (note,) = [n for n in rep["notes"] if "32-bit" in n]
    assert note.startswith("1 program image (hi32)") and "i386" in note and "ld-debug" in note, note
    assert not any("translated by" in n for n in rep["notes"]), rep["notes"]


def test_lldb_refuses_a_32_bit_program_in_one_line_and_leaves_an_attached_one_alone(prog32, tmp_path):
    """lldb's recorder follows the 64-bit ld.so: launching the i386 program and attaching to it
    are refused in one line (exit 2, no traceback), and the process attached to runs on to its own
    exit status (3)."""
    require_lldb()
    out = gotrace_cli("bind", "-q", "-b", "lldb", "-o", str(tmp_path / "a"), "--", prog32)
    assert out.returncode == 2 and "32-bit i386 program" in out.stderr and "ld-debug" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    proc = subprocess.Popen([prog32, "wait"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        out = gotrace_cli("bind", "-q", "-b", "lldb", "--pid", str(proc.pid), "-o", str(tmp_path / "b"))
        assert out.returncode == 2 and "32-bit i386 program" in out.stderr, out.stderr
        proc.stdin.close()
        assert proc.wait(timeout=60) == 3
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
