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


def glibc_steps(exe) -> list[str]:
    """The step (the marker before it) of each binding of cos by the program, in glibc's order."""
    text = subprocess.run([str(exe), "0.3"], env={**os.environ, "LD_DEBUG": "bindings"}, capture_output=True,
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_plt_binding_then_a_dlsym_of_the_same_symbol(backend, prog, tmp_path):
    require_backend(backend)
    assert any(t == "R_X86_64_JUMP_SLOT" and n.split("@")[0] == "cos" for _o, t, n in readelf_symbol_relocs(prog))
    steps = glibc_steps(prog)
    assert steps == ["call cos", "dlsym cos"], steps  # the PLT call's binding, then dlsym's
    expected = ["lazy" if s == "call cos" else "dlsym" for s in steps]
    res = bind([str(prog), "0.3"], out=tmp_path / "s", backend=backend, env=dict(os.environ))
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
    dst = tmp_path_factory.mktemp("selfbind") / "selfbind"
    subprocess.run(["gcc", "-fPIC", "-nostdlib", "-shared", "-Wl,-e,_start", "-Wl,-z,lazy", "-o", str(dst),
                    str(ROOT / "tests/csrc/selfbind.c")], check=True)
    return dst


@pytest.mark.parametrize("how", ["by path", "through PATH"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_program_without_libc_binding_its_own_symbol(backend, how, selfbind, tmp_path):
    """A program with no DT_NEEDED (readelf -d) and no libc: LD_DEBUG prints no "initialize program" or
    "transferring control" for it, and names it only in its relocation block. Oracles: readelf -r
    (answer is only a JUMP_SLOT: ld.so binds it on the call, so the binding is lazy), glibc's own
    LD_DEBUG (the program binds answer once, to itself), and the program's exit status (answer()'s 7)."""
    require_backend(backend)
    assert readelf_needed(selfbind) == []
    relocs = {(t, n.split("@")[0]) for _o, t, n in readelf_symbol_relocs(selfbind)}
    assert ("R_X86_64_JUMP_SLOT", "answer") in relocs
    assert {t for t, n in relocs if n == "answer"} == {"R_X86_64_JUMP_SLOT"}
    env = dict(os.environ)
    if how == "by path":
        argv = [str(selfbind)]
    else:
        argv = [selfbind.name]
        env["PATH"] = f"{selfbind.parent}{os.pathsep}{env.get('PATH', '')}"
    glibc = subprocess.run(argv, env={**env, "LD_DEBUG": "bindings"}, capture_output=True, text=True)
    assert glibc.returncode == 7
    own = [b for b in ld_debug_bindings(glibc.stderr) if b["symbol"] == "answer"]
    assert len(own) == 1 and own[0]["requester"] == own[0]["provider"] == argv[0], own
    res = bind(argv, out=tmp_path / "s", backend=backend, env=env)
    assert res.exit_code == 7
    ev = load_session(res.session).events
    answer = ev[ev["symbol"].astype(str) == "answer"]
    assert len(answer) == 1, answer
    row = answer.iloc[0]
    assert str(row["kind"]) == "lazy"
    assert os.path.samefile(str(row["exe"]), selfbind)
    assert os.path.samefile(str(row["requester"]), selfbind)
    assert os.path.samefile(str(row["provider"]), selfbind)
