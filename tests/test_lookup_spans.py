"""Lookups drawn where they ran (issue 26, item 3): the bpf and bpftrace backends stamp ts_ns when a
lookup returns, lldb when it was entered (schema.TS_MARKS); the Chrome/Perfetto export drew every
slice from ts_ns, so end-stamped slices began when their lookup had ended and overlapped the next.

Oracle: a thread runs one lookup at a time, except one made inside another — a lookup ld.so makes
while another is in flight (tests/csrc/nest: an interposed allocator whose first call of a lazily
bound function happens inside ld.so's lookup): so within a thread, slices are disjoint or nested,
never partly overlapping, which Perfetto needs. The nested lookups are there: the traced program's
successful lookups are as many as glibc's own LD_DEBUG=bindings account lists (bpf and bpftrace kept
one lookup per thread in flight and lost the outer one of a nested pair).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, gotrace_cli, require, require_backend
from tracer import bind, load_session

SRC = ROOT / "tests" / "csrc" / "nest"


@pytest.fixture(scope="module")
def nest(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    d = tmp_path_factory.mktemp("nest")
    cc = ["gcc", "-O0", "-Wl,-z,lazy"]
    subprocess.run([*cc, "-shared", "-fPIC", "-o", str(d / "libhelper.so"), str(SRC / "helper.c")], check=True)
    subprocess.run([*cc, "-shared", "-fPIC", "-o", str(d / "libnest.so"), str(SRC / "nest.c"), f"-L{d}", "-lhelper",
                    f"-Wl,-rpath,{d}"], check=True)
    subprocess.run([*cc, "-o", str(d / "nestmain"), str(SRC / "main.c"), f"-L{d}", "-lnest", "-ldl",
                    f"-Wl,-rpath,{d}"], check=True)
    ld = subprocess.run([str(d / "nestmain")], env=dict(os.environ, LD_DEBUG="bindings"), capture_output=True,
                        text=True, check=True)
    return d / "nestmain", len(re.findall(r"^\s*\d+:\s+binding file ", ld.stderr, re.M))


def _partial_overlaps(trace: dict) -> tuple[list, int]:
    """Slices of one thread that partly overlap (neither disjoint nor one inside the other), and the
    deepest nesting seen. Times in ns: ts back from microseconds, the duration from args."""
    by_thread: dict = {}
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            start = round(e["ts"] * 1000)
            by_thread.setdefault((e["pid"], e["tid"]), []).append((start, start + e["args"]["latency_raw_ns"], e["name"]))
    bad, deepest = [], 0
    for spans in by_thread.values():
        stack: list = []
        for start, end, name in sorted(spans, key=lambda x: (x[0], -x[1])):
            while stack and stack[-1][1] <= start:
                stack.pop()
            if stack and end > stack[-1][1]:
                bad.append((stack[-1], (start, end, name)))
            stack.append((start, end, name))
            deepest = max(deepest, len(stack))
    return bad, deepest


@pytest.mark.parametrize("backend", ["bpf", "bpftrace", "lldb"])
def test_slices_of_a_thread_are_disjoint_or_nested(backend, nest, tmp_path):
    require_backend(backend)
    prog, ld_debug_bindings = nest
    # lldb follows one process (and costs ~3 ms a lookup): the nested program alone
    argv = [str(prog)] if backend == "lldb" else \
        ["sh", "-c", f"/usr/bin/python3 -c 'import ssl, json, decimal, sqlite3' && {prog}"]
    res = bind(argv, out=tmp_path / "s", backend=backend)
    assert res.exit_code == 0
    s = load_session(res.session)
    mine = s.events[s.events["exe"].astype(str) == str(prog)]
    assert int(mine["resolved"].sum()) == ld_debug_bindings
    out = gotrace_cli("export", str(tmp_path / "s"), "-f", "chrome", "-o", str(tmp_path / "t.json"))
    assert out.returncode == 0, out.stderr
    bad, deepest = _partial_overlaps(json.loads((tmp_path / "t.json").read_text()))
    assert bad == [], bad[:5]
    assert deepest >= 2  # the nested lookups are drawn inside their outer one
