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
    assert res.arch == translate.host_arch() and res.translator is None
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
    out = subprocess.run([GOTRACE, "bench-bind", "--arch", "sparc"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown architecture" in out.stderr and "Traceback" not in out.stderr
