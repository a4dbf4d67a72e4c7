"""LIEF's parse of a Mach-O runs in a forked child on a CPU-time budget, so a busy machine is no verdict.

Each test keeps every core busy with spinning processes of its own while it
parses. Oracles: llvm-objdump (the healthy file's LC_UUID and binds) and the
kernel's accounting of the killed child's CPU time (getrusage RUSAGE_CHILDREN).
No test here measures wall time.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import subprocess
import sys

import pytest

import oracles
from macho_wheels import wheel_file
from tracer.binary import BadBinary, macho


@contextlib.contextmanager
def busy_cores():
    """One spinning process per core, ours to end."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
        for p in spinners:
            p.wait()


# Imports first, then the lowest share of the CPU: only the parse runs niced.
PARSE_NICED = """
import json, os, sys
from tracer.binary import macho, open_image
macho._lief()
os.nice(int(sys.argv[2]))
img = open_image(sys.argv[1])
print(json.dumps({"uuid": img.uuid, "binds": sorted({(i.address, i.symbol) for i in img.imports})}))
"""


def test_healthy_dylib_is_read_while_the_machine_is_busy():
    """xgboost's 8 MB dylib, parsed at nice 10 beside a spinner on every core (a tenth
    of one core at most): read whole, as llvm-objdump reads it (LC_UUID, every bind). A
    wall-clock deadline (0.4 s for this size) refused it as corrupt."""
    path = wheel_file("xgboost-arm64")
    with busy_cores():
        out = subprocess.run([sys.executable, "-c", PARSE_NICED, str(path), "10"], capture_output=True, text=True,
                             timeout=900)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    doc = json.loads(out.stdout)
    assert doc["uuid"] == oracles.objdump_load_commands(path)["uuid"]
    assert {tuple(b) for b in doc["binds"]} == {(a, s) for a, _lib, s in oracles.objdump_binds(path)}


def test_a_parse_that_never_ends_is_cut_off_by_its_cpu_time(monkeypatch):
    """A child that keeps LIEF parsing (the real file, over and over, beside a spinner on
    every core: two thirds of a core at most) is killed once it has used its CPU budget:
    one line naming the budget, and the kernel's account of the child's CPU time close to
    that budget (a wall-clock deadline would have cut it at two thirds at most; getrusage runs a
    few percent below the timer's clock on this VM: 0.93-0.96 of it)."""
    path = wheel_file("shfmt-arm64")

    def forever(p: str) -> None:
        lief = macho._lief()
        while True:
            lief.MachO.parse(p)

    monkeypatch.setattr(macho, "_walk", forever)
    with busy_cores():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with pytest.raises(BadBinary) as err:
            macho._parse_in_child_first(str(path), path.stat().st_size)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # before the spinners are reaped
    message = err.value.message
    assert "\n" not in message and message.startswith(f"{path}: corrupt Mach-O file")
    budget = float(re.search(r"did not finish within ([\d.]+) s of CPU time", message)[1])
    used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert used >= 0.8 * budget, (used, budget)
