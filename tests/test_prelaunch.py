"""The console script's early tracer (tracer/capture/prelaunch.py): gotrace's BPF loader or bpftrace.

It is started before the CLI has parsed anything, so what matters is that it
is only ever used for the very run it was started for, and that otherwise its
command never runs: the oracle is a marker file the command appends to.
"""
from __future__ import annotations

import os
import time

import pytest

from conftest import gotrace_cli, require_backend
from tracer import load_session
from tracer.capture import prelaunch
from tracer.capture.bpf.launch import loader_pids
from tracer.capture.bpftrace.launch import bindsnoop_running
from tracer.commands.plain_bind import bind_command

APPEND = ["sh", "-c", "echo ran >> marker; exit 3"]


def test_the_scan_takes_only_plain_binds_bpftrace_may_trace():
    assert bind_command(["bind", "--", "go", "build"]) == ["go", "build"]
    assert bind_command(["bind", "-b", "bpf", "--", "go", "build"]) == ["go", "build"]
    assert bind_command(["bind", "-q", "-o", "d", "--force", "-b", "bpftrace", "--", "x", "--", "y"]) == ["x", "--", "y"]
    assert bind_command(["bind", "--backend=auto", "--json", "--output=d", "--", "x"]) == ["x"]
    for argv in (["bind", "go"], ["bind", "-b", "ld-debug", "--", "x"], ["bind", "--backend=lldb", "--", "x"],
                 ["bind", "--arch", "arm64", "--", "x"], ["bind", "--attach", "1"], ["bind", "--help", "--", "x"],
                 ["bind", "-o", "--", "x"], ["bind", "--"], ["bind", "--bogus", "--", "x"], ["report", "--", "x"], []):
        assert bind_command(argv) is None, argv


def _no_bindsnoop_left(timeout: float = 30) -> bool:
    """No bindsnoop.bt bpftrace or BPF loader left running (a stopped one takes ~1 s to detach)."""
    deadline = time.monotonic() + timeout
    while bindsnoop_running() or loader_pids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_cli_bind_runs_its_command_once_under_the_early_tracer(backend, tmp_path):
    require_backend(backend)
    out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--", *APPEND, cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert (tmp_path / "marker").read_text() == "ran\n"
    s = load_session(tmp_path / "s")
    assert s.meta["backend"] == backend
    assert s.meta[f"{backend}_started"] == "by the console script, while the CLI loaded"
    assert s.meta["complete"] and len(s.events) > 0
    assert int(s.processes.loc[s.processes["exe"].str.endswith("sh"), "exit_code"].iloc[0]) == 3


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_refused_run_never_runs_the_early_command(backend, tmp_path):
    require_backend(backend)
    (tmp_path / "s").mkdir()  # exists: refused, after the early launch was made
    (tmp_path / "s" / "x").write_text("")
    out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--", *APPEND, cwd=tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "--force" in out.stderr
    time.sleep(0.3)
    assert not (tmp_path / "marker").exists()
    assert _no_bindsnoop_left()


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_launch_for_another_command_is_discarded(backend, tmp_path, monkeypatch):
    require_backend(backend)
    monkeypatch.chdir(tmp_path)
    prelaunch.start(bind_command(["bind", "--", *APPEND]), backend)
    launch = prelaunch._pending
    assert launch is not None and launch.proc.poll() is None and launch.backend == backend
    assert prelaunch.take(backend, ["sh", "-c", "true"], dict(os.environ)) is None
    assert prelaunch._pending is None
    assert launch.child.end_ns > 0  # reaped: killed at its gate
    time.sleep(0.3)
    assert not (tmp_path / "marker").exists()
    assert _no_bindsnoop_left()


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_ctrl_c_while_the_tracer_starts_saves_an_incomplete_session(backend, tmp_path):
    """SIGINT while the early tracer is still attaching (bpftrace shows up ~0.05 s
    after gotrace starts, attaches ~0.25 s later; the BPF loader ~0.05 s): the command never runs, the
    session is saved marked incomplete, exit 130, and one clean summary, no
    traceback. (Until this test, that window ended in exit 1 and a Python error.)"""
    import json
    import signal
    import subprocess
    import sys

    require_backend(backend)
    assert _no_bindsnoop_left()
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--",
                             "sh", "-c", "sleep 3; echo ran >> marker"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not (bindsnoop_running() or loader_pids()) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["complete"] is False and meta["interrupted_by"] == 2
    time.sleep(0.2)
    assert not (tmp_path / "marker").exists()
