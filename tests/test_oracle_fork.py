"""A child forked without exec binds symbols of its own: each binding belongs to the process that made it.

tests/csrc/forkbind.c forks; only the child calls puts (and fflush, _exit), only the parent
waitpid and printf. The oracle is glibc's LD_DEBUG=bindings account of the same program: the
child inherits the parent's LD_DEBUG_OUTPUT file, and glibc prefixes every line with the pid of
the process that wrote it, so the file itself says which process bound what (read here by the
line prefix alone, as conftest.ld_debug_counts does).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter

import pytest

from conftest import ROOT, require, require_backend
from tracer import bind, load_session


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    dst = tmp_path_factory.mktemp("fork") / "forkbind"
    subprocess.run(["gcc", "-O0", "-Wl,-z,lazy", "-o", str(dst), str(ROOT / "tests/csrc/forkbind.c")], check=True)
    return dst


def glibc_roles(exe, logdir) -> dict[str, Counter]:
    """parent / child -> Counter of (requester, symbol, provider) by file name, from the prefixes."""
    subprocess.run([str(exe), str(logdir / "child")], env={**os.environ, "LD_DEBUG": "bindings",
                                                             "LD_DEBUG_OUTPUT": str(logdir / "ld")},
                   check=True, capture_output=True)
    (log,) = logdir.glob("ld.*")  # one file: the child writes into its parent's
    parent = int(log.name.split(".")[1])
    out = {"parent": Counter(), "child": Counter()}
    # every record, wherever it starts: a line may hold another process's after its quote (glibc
    # writes a binding line in two writes; the child's may land between its parent's two)
    for m in re.finditer(r"(\d+):\tbinding file (.+?) \[\d+\] to (.+?) \[\d+\]: \S+ symbol `([^']+)'",
                         log.read_text()):
        role = "parent" if int(m.group(1)) == parent else "child"
        out[role][(os.path.basename(m.group(2)), m.group(4), os.path.basename(m.group(3)))] += 1
    return out


@pytest.mark.parametrize("backend", ["ld-debug", "bpf", "bpftrace"])
def test_a_forked_childs_bindings_are_its_own(backend, prog, tmp_path):
    require_backend(backend)
    (tmp_path / "oracle").mkdir()
    theirs = glibc_roles(prog, tmp_path / "oracle")
    assert {s for _r, s, _p in theirs["child"]} >= {"puts", "_exit"} and "printf" in {s for _r, s, _p in theirs["parent"]}
    res = bind([str(prog), str(tmp_path / "child")], out=tmp_path / "s", backend=backend, env=dict(os.environ))
    assert res.exit_code == 0
    child = int((tmp_path / "child").read_text())  # the parent's own word for its child's pid
    s = load_session(res.session)
    ev = s.events[s.events["resolved"] & (s.events["exe"].astype(str) == str(prog))]
    pids = set(ev["pid"].astype(int))
    assert len(pids) == 2 and child in pids, (pids, child)
    mine = {"parent": Counter(), "child": Counter()}
    for pid, req, sym, prov in zip(ev["pid"].astype(int), ev["requester"].astype(str), ev["symbol"].astype(str),
                                   ev["provider"].astype(str), strict=True):
        mine["child" if pid == child else "parent"][(os.path.basename(req), sym, os.path.basename(prov))] += 1
    assert mine["child"] == theirs["child"]
    assert mine["parent"] == theirs["parent"]
