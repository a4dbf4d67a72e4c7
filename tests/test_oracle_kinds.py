"""A symbol bound twice by one requester: through the PLT, then by dlsym — each binding's kind.

tests/csrc/plt_then_dlsym.c calls cos() (a PLT call: readelf -r shows its R_X86_64_JUMP_SLOT)
and then dlsym(RTLD_DEFAULT, "cos"). The oracle is the program's own account interleaved with
glibc's: it writes a marker on stderr before each step, and LD_DEBUG=bindings, also on stderr,
prints each binding between the markers of the step that made it. So glibc bound cos once in
the PLT call (lazy) and once in dlsym, in that order; every backend must record those kinds.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import ROOT, require, require_backend
from oracles import ld_debug_bindings, readelf_needed, readelf_symbol_relocs
from tracer import bind, load_session

BACKENDS = ["ld-debug", "bpf", "bpftrace", "lldb"]


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    dst = tmp_path_factory.mktemp("kinds") / "plt_then_dlsym"
    subprocess.run(["gcc", "-O0", "-o", str(dst), str(ROOT / "tests/csrc/plt_then_dlsym.c"), "-lm", "-ldl",
                    "-Wl,-z,lazy"], check=True)
    return dst


def glibc_steps(exe, *order: str) -> list[str]:
    """The step (the marker before it) of each binding of cos by the program, in glibc's order."""
    text = subprocess.run([str(exe), "0.3", *order], env={**os.environ, "LD_DEBUG": "bindings"}, capture_output=True,
                          text=True).stderr
    step, out = None, []
    for line in text.splitlines():
        if line.startswith("MARK "):
            step = line[5:]
            continue
        for b in ld_debug_bindings(line):
            if b["symbol"] == "cos" and b["requester"] == str(exe):
                out.append(step)
    return out


@pytest.mark.parametrize("order", [(), ("dlsym-first",)], ids=["plt-first", "dlsym-first"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_plt_binding_then_a_dlsym_of_the_same_symbol(backend, order, prog, tmp_path):
    """Either order: the PLT call's binding (lazy) and dlsym's. With dlsym first, a parser that takes the
    first binding of a JUMP_SLOT symbol for the PLT call is wrong twice; glibc's line for the call carries
    the reference's version (cos@GLIBC_2.2.5, readelf --dyn-syms), dlsym's none."""
    require_backend(backend)
    assert any(t == "R_X86_64_JUMP_SLOT" and n.split("@")[0] == "cos" for _o, t, n in readelf_symbol_relocs(prog))
    steps = glibc_steps(prog, *order)
    want = ["call cos", "dlsym cos"]
    assert steps == (want[::-1] if order else want), steps  # each step's binding, in the program's order
    expected = ["lazy" if s == "call cos" else "dlsym" for s in steps]
    res = bind([str(prog), "0.3", *order], out=tmp_path / "s", backend=backend, env=dict(os.environ))
    assert res.exit_code == 0
    ev = load_session(res.session).events
    cos = ev[(ev["symbol"].astype(str) == "cos") & (ev["requester"].astype(str) == str(prog))]
    cos = cos.sort_values("ts_ns", kind="stable")
    assert list(cos["kind"].astype(str)) == expected
    assert set(cos["provider"].astype(str).map(os.path.basename)) == {"libm.so.6"}


@pytest.fixture(scope="module")
def selfbind(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    require(os.uname().machine == "x86_64", "tests/csrc/selfbind.c's _start is x86_64 code")
    d = tmp_path_factory.mktemp("selfbind")
    subprocess.run(["gcc", "-fPIC", "-nostdlib", "-shared", "-Wl,-e,_start", "-Wl,-z,lazy", "-o", str(d / "selfbind"),
                    str(ROOT / "tests/csrc/selfbind.c")], check=True)
    subprocess.run(["gcc", "-nostartfiles", "-Wl,-z,lazy", "-o", str(d / "nostart"), str(ROOT / "tests/csrc/nostart.c")],
                   check=True)
    return d


def glibc_marked(argv, env) -> tuple[int, dict[str, str], str]:
    """(exit status, symbol -> "eager" or "lazy", stderr) from glibc's own account: LD_DEBUG=bindings and
    the program's "MARK call" share its stderr, so a binding printed before the mark was made while
    ld.so relocated the program, one after it by the call."""
    p = subprocess.run(argv, env={**env, "LD_DEBUG": "bindings,files"}, capture_output=True, text=True)
    kinds, called = {}, False
    for line in p.stderr.splitlines():
        if line == "MARK call":
            called = True
        for b in ld_debug_bindings(line):
            if os.path.basename(b["requester"]) == os.path.basename(argv[0]):
                kinds[b["symbol"]] = "lazy" if called else "eager"
    return p.returncode, kinds, p.stderr


def _how(prog, how, bind_now):
    env = dict(os.environ)
    if bind_now:
        env["LD_BIND_NOW"] = "1"
    if how == "by path":
        return [str(prog)], env
    env["PATH"] = f"{prog.parent}{os.pathsep}{env.get('PATH', '')}"
    return [prog.name], env


def _mine(res, prog, symbols):
    ev = load_session(res.session).events
    out = {}
    for sym in symbols:
        rows = ev[ev["symbol"].astype(str) == sym]
        assert len(rows) == 1, rows
        row = rows.iloc[0]
        for col in ("exe", "requester"):
            assert os.path.samefile(str(row[col]), prog), (col, row[col])
        out[sym] = str(row["kind"])
    return out


@pytest.mark.parametrize("bind_now", [False, True], ids=["lazy", "LD_BIND_NOW"])
@pytest.mark.parametrize("how", ["by path", "through PATH"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_program_without_libc_binding_its_own_symbols(backend, how, bind_now, selfbind, tmp_path):
    """A program with no DT_NEEDED (readelf -d) and no libc: LD_DEBUG prints no "initialize program" or
    "transferring control" for it, and names it only in its relocation block. Oracles: readelf -r
    (answer a JUMP_SLOT, counter a GLOB_DAT), glibc's own LD_DEBUG interleaved with the program's mark
    before its call (which binding ld.so made while relocating, which the call made), and the exit
    status (answer() + counter = 10)."""
    require_backend(backend)
    prog = selfbind / "selfbind"
    assert readelf_needed(prog) == []
    relocs = {(t, n.split("@")[0]) for _o, t, n in readelf_symbol_relocs(prog)}
    assert {t for t, n in relocs if n == "answer"} == {"R_X86_64_JUMP_SLOT"}
    assert {t for t, n in relocs if n == "counter"} == {"R_X86_64_GLOB_DAT"}
    argv, env = _how(prog, how, bind_now)
    code, expected, text = glibc_marked(argv, env)
    assert code == 10 and "initialize program" not in text and "transferring control" not in text
    assert expected == {"counter": "eager", "answer": "eager" if bind_now else "lazy"}
    res = bind(argv, out=tmp_path / "s", backend=backend, env=env)
    assert res.exit_code == 10
    assert _mine(res, prog, expected) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_program_that_does_not_start_through_libc(backend, selfbind, tmp_path):
    """-nostartfiles: libc is a DT_NEEDED library, but nothing prints "initialize program" or "transferring
    control": the program is named only by "needed by" lines. Oracles: glibc's LD_DEBUG interleaved
    with the program's mark (puts bound by the call), its output and exit status."""
    require_backend(backend)
    prog = selfbind / "nostart"
    assert readelf_needed(prog) == ["libc.so.6"]
    argv, env = _how(prog, "by path", False)
    code, expected, text = glibc_marked(argv, env)
    assert code == 0 and "initialize program" not in text and "transferring control" not in text
    assert expected["puts"] == "lazy"
    res = bind(argv, out=tmp_path / "s", backend=backend, env=env)
    assert res.exit_code == 0
    assert _mine(res, prog, ["puts"]) == {"puts": "lazy"}


def test_ld_debugs_kinds_are_the_probes_on_a_program_nobody_here_wrote(tmp_path):
    """`ls -d /`, its ld-debug session (kinds read from where each LD_DEBUG line stands) against its bpf session
    (kinds read from each lookup's caller: _dl_fixup is lazy): the same kind for every binding. libc calls ld.so's
    __tunable_get_val at start-up through a PLT slot (readelf -r: a JUMP_SLOT, no other relocation of it), after
    its lazy relocation block — ld-debug took that binding for eager, being before control passes."""
    import collections

    require_backend("ld-debug")
    require_backend("bpf")
    argv = [shutil.which("ls") or "/bin/ls", "-d", "/"]
    relocs = subprocess.run(["readelf", "-rW", "/lib/x86_64-linux-gnu/libc.so.6"], capture_output=True, text=True).stdout
    assert [line.split()[2] for line in relocs.splitlines() if "__tunable_get_val" in line] == ["R_X86_64_JUMP_SLOT"]
    kinds = {}
    for backend in ("ld-debug", "bpf"):
        ev = load_session(bind(argv, out=tmp_path / backend, backend=backend).session).events
        ev = ev[ev["resolved"].fillna(False)]
        kinds[backend] = collections.Counter(zip(ev["requester"].astype(str).map(os.path.basename),
                                                 ev["symbol"].astype(str), ev["kind"].astype(str)))
    assert kinds["ld-debug"] == kinds["bpf"]
    assert kinds["bpf"][("libc.so.6", "__tunable_get_val", "lazy")] == 1
