"""`gotrace bind --arch x86_64 --backend lldb` on an Apple Silicon Mac: the orchestration.

Not run on macOS (no Mac, no Rosetta here). What the Mac path builds is tested here: the
launch plan (target triple, the x86_64 shim's compiler flags, what goes into meta.json),
its refusals (LLDB_DEBUGSERVER_PATH set anywhere, Rosetta's debugserver missing), that
gotrace's lldb loader never sets LLDB_DEBUGSERVER_PATH on macOS (and does on Linux: the
contrast), the backends a translated run accepts and auto's choice there. A plan other
than the default runs for real through the driver on Linux (its own shim, built with the
plan's flags under the plan's name, and the plan's triple), so the plumbing a Rosetta
plan takes is exercised; the calibration's ABIs are tested in test_lldb_calibrate.py.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, require_lldb
from test_lldb_backend import cbins  # noqa: F401 — the fixture: C programs built for the lldb tests
from tracer.capture.lldb import launch_plan as P
from tracer.capture.translated import rosetta
from tracer.errors import GotraceError

ALWAYS = lambda path: True  # noqa: E731 — Rosetta's debugserver "is there"
# where debugserver hands a translated process over (llvm-project lldb/tools/debugserver/source/DNB.cpp,
# "translated_debugserver"; ../shared/research/macos-dyld.md), written out: never read from launch_plan
ROSETTA_DEBUGSERVER = "/Library/Apple/usr/libexec/oah/debugserver"


def test_the_rosetta_plan_and_what_it_records():
    plan = P.rosetta_plan(environ={"PATH": "/usr/bin"}, command_env={"PATH": "/usr/bin"}, exists=ALWAYS)
    assert (plan.arch, plan.triple, plan.translated) == ("x86_64", "x86_64-apple-macosx", True)
    assert plan.shim_flags[:2] == ["-arch", "x86_64"] and plan.shim_stem == "execdefault-x86_64"
    meta = plan.meta()
    assert ROSETTA_DEBUGSERVER in meta["debugserver"] and "LLDB_DEBUGSERVER_PATH left unset" in meta["debugserver"]
    assert P.NATIVE.triple is None and P.NATIVE.shim_stem == "execdefault" and not P.NATIVE.translated


@pytest.mark.parametrize("where", ["environ", "command_env"])
def test_the_rosetta_plan_refuses_a_named_debugserver(where):
    envs = {"environ": {}, "command_env": {}}
    envs[where] = {"LLDB_DEBUGSERVER_PATH": "/usr/local/bin/debugserver"}
    with pytest.raises(GotraceError) as exc:
        P.rosetta_plan(**envs, exists=ALWAYS)
    msg = exc.value.message
    assert "LLDB_DEBUGSERVER_PATH is set" in msg and "unset LLDB_DEBUGSERVER_PATH" in msg and "\n" not in msg
    assert ("gotrace's environment" if where == "environ" else "the command's environment") in msg


def test_the_rosetta_plan_needs_rosettas_debugserver():
    asked = []
    with pytest.raises(GotraceError, match="softwareupdate --install-rosetta") as exc:
        P.rosetta_plan(environ={}, command_env={}, exists=lambda path: asked.append(path) or False)
    assert asked == [ROSETTA_DEBUGSERVER] and ROSETTA_DEBUGSERVER in exc.value.message
    asked.clear()
    P.rosetta_plan(environ={}, command_env={}, exists=lambda path: asked.append(path) or True)
    assert asked == [ROSETTA_DEBUGSERVER]


def _server_env_after_import(platform_name: str) -> str | None:
    code = ("import os, sys; os.environ.pop('LLDB_DEBUGSERVER_PATH', None); "
            f"sys.platform = {platform_name!r}; "
            "from tracer.capture.lldb.loader import import_lldb; import_lldb(); "
            "print(os.environ.get('LLDB_DEBUGSERVER_PATH') or '-')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={k: v for k, v in os.environ.items() if k != "LLDB_DEBUGSERVER_PATH"})
    assert out.returncode == 0, out.stderr
    value = out.stdout.strip().splitlines()[-1]
    return None if value == "-" else value


def test_the_loader_never_names_a_debugserver_on_macos():
    require_lldb()
    assert _server_env_after_import("darwin") is None
    linux = _server_env_after_import("linux")  # the contrast: Linux needs lldb-server named
    assert linux is not None and os.path.basename(linux).startswith("lldb-server")


def test_backends_a_translated_run_takes():
    run = rosetta.RosettaRun("x86_64")
    for ok in ("auto", "lldb", "dyld-print"):
        rosetta.check_backend(ok, run)
    for refused in ("dtrace", "bpf", "ld-debug"):
        with pytest.raises(GotraceError) as exc:
            rosetta.check_backend(refused, run)
        assert "--backend lldb" in exc.value.message and "DTrace refuses" in exc.value.message
    rosetta.check_backend("dtrace", rosetta.RosettaRun("arm64", translator=None))  # native: anything goes


def test_auto_under_rosetta_is_dyld_print(monkeypatch):
    from tracer.capture import choose

    monkeypatch.setattr(choose.platform, "system", lambda: "Darwin")
    backend, why = choose.choose("auto", rosetta=True)
    assert backend.name == "dyld-print" and "DTrace refuses" in why and "--backend lldb times one" in why


def test_a_plan_other_than_the_default_runs_through_the_driver(cbins, tmp_path):
    """On Linux, a plan naming x86_64 with its own flags: the shim is built under the plan's
    name with them, the target takes its triple, and the program runs as it would."""
    require_lldb()
    from tracer.capture.lldb.driver import LldbDriver
    from tracer.capture.lldb.loader import import_lldb
    from tracer.csrc.build import cache_dir

    plan = P.LaunchPlan(arch="x86_64", triple="x86_64-pc-linux-gnu", shim_flags=["-m64", "-O2"])
    rows = []
    driver = LldbDriver(import_lldb(), sink=rows.extend)
    prog = str(cbins["selfmaps"])
    res = driver.launch([prog, str(tmp_path / "maps"), "5"], prog, dict(os.environ), plan)
    assert res.exit_code == 5 and (tmp_path / "maps").exists()
    assert any(p.name.startswith("execdefault-x86_64-") for p in cache_dir().iterdir())
    assert res.calibration["error"] is None and res.calibration["rounds"] >= 20
    assert {r[5] for r in rows} >= {"cos"}  # the program's lazy binding, recorded
