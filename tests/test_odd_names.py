"""Names bindsnoop.bt's text cannot lay out plainly, decoded as glibc names them.

bpftrace prints @b as ``@b[tid, ts]: (pid, …, version, symbol)``; gotrace turns a block of
those lines into tab-separated rows with one translate, checked by two counts (characters
deleted, tabs made), and redoes the rows one by one when either count is off. ELF allows any
bytes but NUL in a symbol's name: gcc writes "odd(paren)", "odd,comma" and "odd, both" with
__asm__ (tests/csrc/oddnames/). "(" puts off only the first count, "," only the second, ", "
both. The name records (N: a link_map's path), the exec records (E) and the steps of the walk to
a working directory (W: bindsnoop.bt's for an exec of a relative path) end in free text: a
directory named with a tab puts one into the library's path, the program's and the walk's.

Oracle: glibc's LD_DEBUG=bindings of the same program (who bound which symbol to whom, the
paths as ld.so holds them), and the program's own output (the three calls ran).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import ROOT, require

SRC = ROOT / "tests" / "csrc" / "oddnames"
BINDING = re.compile(r"^\s*\d+:\s+binding file (.+?) \[\d+\] to (.+?) \[\d+\]: normal symbol `(.+?)'", re.M)


@pytest.fixture(scope="module")
def odd_prog(tmp_path_factory) -> Path:
    """prog and libodd.so in a directory whose name holds a tab; prog finds the library by $ORIGIN."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    d = tmp_path_factory.mktemp("odd") / "tab\tdir"
    d.mkdir()
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-o", str(d / "libodd.so"), str(SRC / "lib.c")], check=True)
    # -no-pie: gas cannot read a quoted name followed by @PLT; the linker makes the PLT entries
    subprocess.run(["gcc", "-O0", "-fno-pie", "-no-pie", "-o", str(d / "prog"), str(SRC / "prog.c"), f"-L{d}",
                    "-lodd", "-Wl,-rpath,$ORIGIN"], check=True)
    return d / "prog"


def glibc_bindings(argv0: str, cwd: Path) -> set[tuple[str, str, str]]:
    """(requester, provider, symbol) of the odd names, as LD_DEBUG=bindings prints them (the
    program by the name it was run by, made absolute against the directory it ran in)."""
    out = subprocess.run([argv0], capture_output=True, text=True, cwd=cwd, env={**os.environ, "LD_DEBUG": "bindings"})
    assert out.returncode == 0 and out.stdout == "9\n", (out.stdout, out.stderr)  # the program's own account
    return {(os.path.normpath(os.path.join(cwd, r)), p, s) for r, p, s in
            (m.groups() for m in BINDING.finditer(out.stderr)) if s.startswith("odd")}


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_odd_symbols_and_a_tab_in_a_path_decode_from_bpftrace_print(odd_prog, relative, monkeypatch):
    """Decoded from bpftrace's own print, whole and one line per block (then each odd
    symbol's line is a block where one count alone is off), the odd names' bindings are
    glibc's: same requester, provider and symbol, the tab kept in both paths. Run by its
    absolute path (the tab in E's path) and as ./prog (the tab in the walk to the cwd)."""
    from bindsnoop_run import run_by_hand
    from conftest import require_bpftrace
    from tracer.capture.bpftrace.decode import BpftraceDecoder

    require_bpftrace()
    argv0 = "./prog" if relative else str(odd_prog)
    oracle = glibc_bindings(argv0, odd_prog.parent)
    assert len(oracle) == 3 and all("\t" in r and "\t" in p for r, p, _s in oracle), oracle
    monkeypatch.chdir(odd_prog.parent)
    out, code, _ = run_by_hand([argv0])
    assert (b"\nW\t" in out) == relative
    assert code == 0
    lines = [l for l in out.split(b"\n") if l]
    for blocks in ([out], lines):
        dec = BpftraceDecoder()
        tables = [t for t in [*(dec.feed(b) for b in blocks), dec.finish()] if t is not None]
        rows = pa.concat_tables(tables).to_pylist()
        got = {(r["requester"], r["provider"], r["symbol"]) for r in rows if r["symbol"].startswith("odd")}
        assert got == oracle, (len(blocks), got)
        assert dec.malformed == 0


def test_a_tab_in_a_loader_variable_is_kept(odd_prog, tmp_path):
    """bindsnoop.bt sends each LD_* entry of a new image's environment in pieces (V records,
    the piece the free-text last field): LD_LIBRARY_PATH naming the directory with a tab keeps
    it. Oracle: the environment /usr/bin/env prints (its own account of what it was given)."""
    from conftest import gotrace_cli, require_bpftrace
    from tracer import load_session

    require_bpftrace()
    entry = f"LD_LIBRARY_PATH={odd_prog.parent}"
    out = gotrace_cli("bind", "-q", "--backend", "bpftrace", "-o", str(tmp_path / "s"), "--", "/usr/bin/env",
                      env={**os.environ, "LD_LIBRARY_PATH": str(odd_prog.parent)})
    assert out.returncode == 0, out.stderr
    printed = [l for l in out.stdout.split("\n") if l.startswith("LD_")]
    assert entry in printed and "\t" in entry
    (env,) = load_session(tmp_path / "s").processes["loader_env"]
    assert sorted(env) == sorted(printed)


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_relative_exec_under_a_directory_with_a_tab(odd_prog, backend, tmp_path, monkeypatch):
    """./prog run from the directory with a tab: the session names the image by its absolute
    path (bpf's C record carries the working directory whole; bindsnoop.bt's W records walk it,
    innermost name first). Oracle: the working directory it ran in (os.getcwd(), the kernel's)
    and the program's own output."""
    from conftest import gotrace_cli, require_backend
    from tracer import load_session

    require_backend(backend)
    monkeypatch.chdir(odd_prog.parent)
    out = gotrace_cli("bind", "-q", "--backend", backend, "-o", str(tmp_path / "s"), "--", "./prog")
    assert out.returncode == 0 and out.stdout == "9\n", out.stderr
    procs = load_session(tmp_path / "s").processes
    assert list(procs["exe"]) == [os.path.join(os.getcwd(), "prog")]
