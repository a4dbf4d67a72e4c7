"""gotrace bench-bind: the probe binds each function on its first call, natively and translated.

Oracle: glibc's own LD_DEBUG=bindings account of one probe run (in the guest's
ld.so for the translated side) binds each timed function exactly once, for the
probe itself — so "first call" really is the binding call. Timing checks are
medians over fresh processes, asserting only what holds by construction: the
first call (binding + call) costs more than the warm call.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter

from conftest import VENV_BIN, require
from tracer.capture.translated import translation as translate
from tracer.goenv import bindbench

GOTRACE = str(VENV_BIN / "gotrace")
SYMBOLS = 26
HOST = {"x86_64": "x86_64", "aarch64": "arm64"}[os.uname().machine]  # the kernel's name, in gotrace's words


def _ld_debug_bindings(probe, env, tmp_path) -> Counter:
    env = dict(env, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=str(tmp_path / "ld"))
    subprocess.run([str(probe), "0.5", "1.5"], env=env, check=True, capture_output=True)
    counts: Counter = Counter()
    for f in tmp_path.glob("ld.*"):
        for line in f.read_text(errors="replace").splitlines():
            m = re.search(r"binding file (\S+) \[0\] to \S+ \[0\]: normal symbol `([^']+)'", line)
            if m and m.group(1).endswith(probe.name):
                counts[m.group(2)] += 1
    return counts


def _check(res, probe, env, tmp_path):
    d = res.per_symbol
    assert len(d) == SYMBOLS and (d["first_ns"] > 0).all()
    assert (d["bind_ns"] > 0).sum() >= SYMBOLS - 2  # noise may flip a rare one
    bound = _ld_debug_bindings(probe, env, tmp_path)
    assert all(bound[s] == 1 for s in d["symbol"]), {s: bound[s] for s in d["symbol"]}


def test_native_probe(tmp_path):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    res = bindbench.run(None, runs=5)
    assert res.arch == HOST and res.translator is None
    _check(res, bindbench.build(res.arch), dict(os.environ), tmp_path)


def test_translated_probe(tmp_path):
    require(shutil.which("aarch64-linux-gnu-gcc") is not None, "aarch64 cross gcc is not installed")
    if translate.handler_for("arm64") is None:
        require(os.geteuid() == 0, "no arm64 binfmt_misc handler and not root to register one")
        translate.register_qemu("arm64")
    res = bindbench.run("arm64", runs=5)
    assert res.arch == "arm64" and res.translator == "qemu-aarch64"
    env = dict(os.environ, QEMU_LD_PREFIX="/usr/aarch64-linux-gnu")
    _check(res, bindbench.build("arm64"), env, tmp_path)


def test_cli_json_and_bad_input():
    require(translate.handler_for("arm64") is not None or os.geteuid() == 0, "no arm64 handler and not root")
    out = subprocess.run([GOTRACE, "bench-bind", "--arch", "arm64", "--register-binfmt", "--runs", "3", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [s["translator"] for s in data["sides"]] == [None, "qemu-aarch64"]
    assert data["ratio_median_bind"] == round(data["sides"][1]["median_bind_ns"] /
                                              max(data["sides"][0]["median_bind_ns"], 1), 2)
    # the figure is the first call's extra time: under qemu mostly translating the function's code
    # (README: ~180 µs against a ~12 µs guest lookup), so it is never printed as the binding cost
    import io

    import pandas as pd
    from rich.console import Console

    from tracer.render.bench_bind import render_bench

    sides = [bindbench.BenchResult(s["arch"], s["translator"], s["runs"], pd.DataFrame(s["per_symbol"]))
             for s in data["sides"]]
    buf = io.StringIO()
    render_bench(sides, 3, Console(file=buf, width=300, highlight=False))
    text = buf.getvalue()
    assert "binding cost" not in text and "multiplies" not in text, text
    assert "first call's extra time" in text and "translating each function's code" in text
    assert "first call minus second call" in data["measures"]
    out = subprocess.run([GOTRACE, "bench-bind", "--arch", "sparc"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown architecture" in out.stderr and "Traceback" not in out.stderr


# ---- --stage load: exec to main with N imports and none (macOS's only stage) ----------------

def _require_arm64_handler() -> None:
    require(shutil.which("aarch64-linux-gnu-gcc") is not None, "aarch64 cross gcc is not installed")
    if translate.handler_for("arm64") is None:
        require(os.geteuid() == 0, "no arm64 binfmt_misc handler and not root to register one")


def _undefined(probe) -> set[str]:
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(probe)], capture_output=True, text=True,
                         check=True).stdout
    return {f[7] for f in (line.split() for line in out.splitlines()) if len(f) >= 8 and f[6] == "UND"
            and f[7].startswith("gtb_f")}


def _needed(probe) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(probe)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", out)


def _bound_before_main(probe, env, tmp_path, runner: tuple[str, ...] = ()) -> Counter:
    """glibc's account: gtb_ bindings of one run, and how many of them came from the probe
    (``runner``: the translator to run it under, named, so no binfmt_misc handler is needed)."""
    env = dict(env, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=str(tmp_path / f"ld-{probe.parent.name}-{probe.name}"))
    out = subprocess.run([*runner, str(probe)], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().isdigit(), out
    counts: Counter = Counter()
    for f in tmp_path.glob(f"ld-{probe.parent.name}-{probe.name}.*"):
        for line in f.read_text(errors="replace").splitlines():
            m = re.search(r"binding file (\S+) \[0\] to (\S+) \[0\]: normal symbol `(gtb_f\d+)'", line)
            if m and m.group(1).endswith(probe.name) and m.group(2).endswith("libgtbind.so"):
                counts[m.group(3)] += 1
    return counts


def test_load_probes_import_what_they_say(tmp_path):
    """readelf: the probe with N imports has N undefined gtb_ symbols, the other none, both need
    the library; glibc's LD_DEBUG: each of the N bound once, from the library, before main printed."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    from tracer.goenv import loadbench

    n = 300
    probes = loadbench.build(loadbench.toolchain(HOST), n)
    assert _undefined(probes["imports"]) == {f"gtb_f{i}" for i in range(n)}
    assert _undefined(probes["none"]) == set()
    assert all("libgtbind.so" in _needed(p) for p in probes.values())
    bound = _bound_before_main(probes["imports"], dict(os.environ), tmp_path)
    assert len(bound) == n and set(bound.values()) == {1}
    assert _bound_before_main(probes["none"], dict(os.environ), tmp_path) == Counter()


def test_load_stage_native_and_under_qemu(tmp_path):
    _require_arm64_handler()
    from tracer.goenv import loadbench

    n = 2000
    out = subprocess.run([GOTRACE, "bench-bind", "--stage", "load", "--arch", "arm64", "--register-binfmt",
                          "-N", str(n), "--runs", "8", "--json"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["stage"] == "load" and data["imports"] == n
    native, guest = data["sides"]
    assert (native["arch"], native["translator"]) == (HOST, None)
    assert (guest["arch"], guest["translator"]) == ("arm64", "qemu-aarch64")
    for side in (native, guest):
        e = side["exec_to_main_ns"]
        assert side["runs"] == 8 and e["none"] > 0 and e["imports"] > 0
        lo, hi = side["per_import_iqr_ns"]
        assert lo <= side["per_import_ns"] <= hi and side["per_import_resolved"] == (lo > 0)
    assert data["ratio_exec_to_main"] == round(guest["exec_to_main_ns"]["imports"] /
                                               native["exec_to_main_ns"]["imports"], 2)
    # the guest probe is the arm64 build, and under its ld.so glibc binds all N from the library
    probes = loadbench.build(loadbench.toolchain("arm64"), n)
    head = subprocess.run(["readelf", "-h", str(probes["imports"])], capture_output=True, text=True).stdout
    assert "AArch64" in head and _undefined(probes["imports"]) == {f"gtb_f{i}" for i in range(n)}
    qemu = shutil.which("qemu-aarch64")
    require(qemu is not None, "qemu-user is not installed")
    env = dict(os.environ, QEMU_LD_PREFIX="/usr/aarch64-linux-gnu")
    bound = _bound_before_main(probes["imports"], env, tmp_path, runner=(qemu,))
    assert len(bound) == n  # each of the N from the library (once per relocation: readelf -r shows two each)
    text = subprocess.run([GOTRACE, "bench-bind", "--stage", "load", "-N", "500", "--runs", "4"],
                          capture_output=True, text=True, timeout=600)
    assert text.returncode == 0 and "exec to main" in text.stdout and "500 imports" in text.stdout, text.stderr


def test_macos_load_probe_build_commands():
    """What a Mac would run (not run on macOS): clang -arch per side, a dylib named @rpath, the
    probe finding it beside itself; the Linux commands keep every import bound before main."""
    from pathlib import Path

    from tracer.goenv import loadbench

    work = Path("/w")
    for arch in ("arm64", "x86_64"):
        tc = loadbench.toolchain(arch, system="Darwin")
        cmds = tc.commands(work)
        assert cmds["library"][:4] == ["clang", "-arch", arch, "-dynamiclib"]
        assert "@rpath/libgtbind.dylib" in cmds["library"] and cmds["library"][-3:-1] == ["-o", "/w/libgtbind.dylib"]
        for variant in ("none", "imports"):
            c = cmds[variant]
            assert c[:3] == ["clang", "-arch", arch] and f"/w/inc-{variant}" in c and "-lgtbind" in c
            assert "-Wl,-rpath,@executable_path" in c and c[c.index("-o") + 1] == f"/w/probe-{variant}"
    linux = loadbench.toolchain(HOST, system="Linux").commands(work)["imports"]
    assert {"-Wl,-z,now", "-Wl,--no-as-needed", "-Wl,-rpath,$ORIGIN"} <= set(linux)
    import pytest

    from tracer.errors import GotraceError
    with pytest.raises(GotraceError, match="x86_64 \\(Rosetta 2\\) or arm64"):
        loadbench.toolchain("riscv64", system="Darwin")
    assert "#define GTB_TABLE \n" == loadbench.header_source(0)
    assert loadbench.header_source(2).endswith("#define GTB_TABLE gtb_f0, gtb_f1, \n")
