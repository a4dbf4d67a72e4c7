"""What each program image of a traced tree ran with: its argv, the dynamic linker's variables of
its environment (`loader_env`), and its executable as an absolute path — checked against the
kernel's own account, /proc/PID/{cmdline,environ,exe} read while each process is stopped
(tests/csrc/selfstop.c stops itself; a script stops itself with `kill -STOP $$`), and for the
programs nobody here wrote (ls, git) against the argv the shell command itself spells out.

The tree covers what went wrong (issue 26, items 1, 9 and 18): children that exec (the bpf backend
gave each its parent's argv), a fork without exec (its parent's argv and environment), an exec
of a `#!` script (the kernel's argv: interpreter, script path, arguments), relative paths (exe
stored as typed), and loader variables set inside the tree (meta.json held gotrace's own only).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid

import pytest

from conftest import ROOT, require, require_backend
from oracles import stopped_images
from tracer import load_session


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    require(shutil.which("git") is not None, "git is not installed")
    d = tmp_path_factory.mktemp("tree")
    sub = d / "sub"
    sub.mkdir()
    subprocess.run(["gcc", "-O0", "-o", str(sub / "selfstop"), str(ROOT / "tests/csrc/selfstop.c")], check=True)
    script = sub / "stopper.sh"
    script.write_text("#!/bin/sh\nkill -STOP $$\n")
    script.chmod(0o755)
    command = ("ls -d / >/dev/null; git --version >/dev/null; LD_BIND_NOW=1 ./sub/selfstop a b; cd sub; "
               "LD_BIND_NOT=1 ./selfstop fork x; "  # lazy: the forked child binds raise() itself (ld-debug sees it)
               "env LD_LIBRARY_PATH=/nowhere GLIBC_TUNABLES=glibc.malloc.check=0 ./selfstop exec ./selfstop again; "
               "LD_PRELOAD= ./stopper.sh c d; ./selfstop retry /nowhere/x ./selfstop retried")
    return d, command


def _run(backend: str, d, command: str, out):
    """gotrace bind of the tree, each self-stopped image read from /proc and continued."""
    marker = f"GOTRACE_TEST_MARK={uuid.uuid4().hex}"
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("LD_LIBRARY_PATH", None)
    env[marker.split("=")[0]] = marker.split("=", 1)[1]
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-q", "-b", backend, "-o", str(out), "--",
                             "sh", "-c", command], cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stopped = stopped_images(proc, marker)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return load_session(out), stopped


def _runs(path: str, exe: str) -> bool:
    """Whether running ``path`` runs the program ``exe`` (itself, or as a #! script's interpreter)."""
    if os.path.realpath(path) == exe:
        return True
    try:
        with open(path, "rb") as fh:
            line = fh.readline()
    except OSError:
        return False
    return line.startswith(b"#!") and os.path.realpath(line[2:].split()[0].decode()) == exe


ARGV = {"bpf", "bpftrace"}  # the backends that see every process's argv (ld-debug: the root's only)
# DTrace for Linux has no stop() and D no loops: the environment is read from /proc when the exec's
# record reaches gotrace (~10 ms on), by when a self-stopped child may have been continued and gone.
# What it records must still be right; what it could not read is null.
RACY = {"dtrace"}


@pytest.mark.parametrize("backend", ["bpf", "bpftrace", "ld-debug", "dtrace"])
def test_each_image_has_its_own_argv_environment_and_absolute_exe(tree, backend, tmp_path):
    require_backend(backend)
    d, command = tree
    s, stopped = _run(backend, d, command, tmp_path / "s")
    procs = s.processes
    # eight stops (the harness saw them all): selfstop a b; the forked child and its parent; both images
    # of selfstop exec; the script, whose argv the kernel begins with its interpreter; selfstop retry
    # and the image its second exec ran (the first failed: its argv and environment are nobody's)
    assert sorted(x["argv"] for x in stopped) == sorted([
        ["./sub/selfstop", "a", "b"], ["./selfstop", "fork", "x"], ["./selfstop", "fork", "x"],
        ["./selfstop", "exec", "./selfstop", "again"], ["./selfstop", "again"], ["/bin/sh", "./stopper.sh", "c", "d"],
        ["./selfstop", "retry", "/nowhere/x", "./selfstop", "retried"], ["./selfstop", "retried"]])
    nth: dict = {}
    for snap in stopped:
        rows = procs[(procs["pid"] == snap["pid"])
                     & procs["exe"].map(lambda e: e is not None and os.path.realpath(str(e)) == snap["exe"])]
        rows = [r for _i, r in rows.sort_values("start_ns", kind="stable").iterrows()]
        if backend in ARGV:
            rows = [r for r in rows if list(r["argv"] if r["argv"] is not None else []) == snap["argv"]]
            assert len(rows) == 1, (snap, [(r["exe"], r["argv"]) for r in rows])
            row = rows[0]
        else:  # the same program twice in a pid (selfstop exec ./selfstop): its images in order
            if backend in RACY:  # what it read of the pid's images of this program (a script's image is
                # named by the script, its interpreter is what runs) is one of their accounts; the rest null
                read = [r for _i, r in procs[procs["pid"] == snap["pid"]].iterrows()
                        if r["loader_env"] is not None and _runs(str(r["exe"]), snap["exe"])]
                accounts = [x["loader_env"] for x in stopped if (x["pid"], x["exe"]) == (snap["pid"], snap["exe"])]
                assert all(list(r["loader_env"]) in accounts and os.path.isabs(str(r["exe"])) for r in read), read
                continue
            k = nth[(snap["pid"], snap["exe"])] = nth.get((snap["pid"], snap["exe"]), -1) + 1
            assert len(rows) > k, (snap, [r["exe"] for r in rows])
            row = rows[k]
        assert os.path.isabs(str(row["exe"])), row["exe"]
        assert row["loader_env"] is not None and list(row["loader_env"]) == snap["loader_env"], (snap, row["loader_env"])
    if backend in ARGV:
        # the programs nobody here wrote: the argv the command spells out, their environment the tree's
        for exe, argv in (("ls", ["ls", "-d", "/"]), ("git", ["git", "--version"])):
            rows = procs[procs["exe"].astype(str).map(os.path.basename) == exe]
            assert [list(a) for a in rows["argv"]] == [argv]
            assert [list(e) for e in rows["loader_env"]] == [[]]
    assert list(procs.iloc[0]["argv"]) == ["sh", "-c", command]  # the root's, whole (bpftrace cuts strings)


def test_an_argument_or_loader_variable_with_a_newline_is_kept_whole(tree, tmp_path):
    """The bpf backend's loader writes each argument and loader variable as a line: it used to turn a newline
    in one into a space (`perl -e 'print …, qq{\\n}'` came out with "qq{ }"). Now it escapes it, and a
    backslash, and the decoder undoes that. Oracle: /proc/PID/cmdline and /proc/PID/environ of the program,
    stopped; the root's argv is the command gotrace was given."""
    require_backend("bpf")
    d, _command = tree
    odd = "b\nc\\d\\n"
    command = f"LD_LIBRARY_PATH='/x\ny' ./sub/selfstop a '{odd}'"
    s, stopped = _run("bpf", d, command, tmp_path / "s")
    assert [x["argv"] for x in stopped] == [["./sub/selfstop", "a", odd]]  # the premise, as the kernel has it
    assert stopped[0]["loader_env"] == ["LD_LIBRARY_PATH=/x\ny"]
    procs = s.processes
    (row,) = [r for _i, r in procs[procs["pid"] == stopped[0]["pid"]].iterrows() if r["argv"] is not None
              and list(r["argv"])[:1] == ["./sub/selfstop"]]
    assert list(row["argv"]) == stopped[0]["argv"] and list(row["loader_env"]) == stopped[0]["loader_env"]
    assert list(procs.iloc[0]["argv"]) == ["sh", "-c", command]
