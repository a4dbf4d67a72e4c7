"""The main job: a cold `go build` of examples/cgo-hello under each backend.

Oracle: glibc's own account. For the bpf and bpftrace backends, LD_DEBUG=bindings runs in
the very same processes (it only prints), so every pid LD_DEBUG reports must be
in the session with exactly as many resolved bindings. The one systematic
difference is explained and checked: bpftrace also sees failed lookups (weak
undefined symbols such as __gmon_start__), which LD_DEBUG never prints.
For the ld-debug backend, glibc's raw logs are kept and counted independently.
"""
from __future__ import annotations

import glob
import os
import re
from collections import Counter

import pytest

from conftest import EXAMPLE, ld_debug_counts, require_backend
from tracer import bind, load_session

pytestmark = pytest.mark.slow
BINDING = re.compile(r"\s*(\d+):\tbinding file (.+?) \[\d+\] to (.+?) \[\d+\]: normal symbol `(.+?)'")


def _resolved_per_pid(session) -> dict[int, int]:
    ev = session.events
    return ev[ev["resolved"]].groupby("pid").size().to_dict()


def _providers(logdir) -> Counter:
    """glibc's own account of (pid, symbol, providing object), from LD_DEBUG=bindings
    lines, with a regex of its own; shared objects only: glibc names a main program by
    its argv[0], gotrace by the path it was exec'd from."""
    out: Counter = Counter()
    for path in glob.glob(str(logdir / "ld.*")):
        with open(path, errors="replace") as fh:
            for line in fh:
                m = BINDING.match(line)
                if m and ".so" in os.path.basename(m.group(3)):
                    out[(int(m.group(1)), m.group(4), os.path.realpath(m.group(3)))] += 1
    return out


def _providers_of(s, pids: set) -> Counter:
    ev = s.events[s.events["resolved"] & s.events["pid"].isin(pids)]
    out: Counter = Counter()
    for pid, sym, prov in zip(ev["pid"], ev["symbol"].astype(str), ev["provider"].astype(str)):
        if ".so" in os.path.basename(prov):
            out[(int(pid), sym, os.path.realpath(prov))] += 1
    return out


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_cold_go_build_matches_ld_debug(backend, go_env, tmp_path, monkeypatch):
    require_backend(backend)
    logs = tmp_path / "ld"
    logs.mkdir()
    env = dict(go_env, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=str(logs / "ld"))
    monkeypatch.chdir(EXAMPLE)
    res = bind(["go", "build", "-o", str(tmp_path / "hello"), "."], out=tmp_path / "s",
               backend=backend, env=env)
    assert res.exit_code == 0
    s = load_session(res.session)
    assert s.complete and s.meta["lost_events"] == 0
    oracle = ld_debug_counts(logs)
    ours = _resolved_per_pid(s)
    assert len(oracle) > 50, "a cold cgo build runs the C toolchain many times"
    assert {p: ours.get(p) for p in oracle} == dict(oracle)
    # processes: every pid glibc saw is in the process table, with its program
    procs = s.processes
    assert set(oracle) <= set(procs["pid"])
    names = set(procs["exe"].dropna().map(os.path.basename))
    assert "cc1" in names and any(n.endswith("as") for n in names) and any("ld" in n for n in names), names
    # every object is named, and each binding's provider is the one glibc names (the
    # script names providers where they are relocated, forked children through their parent)
    for col in ("requester", "provider"):
        assert not s.events[col].astype(str).str.startswith("<link_map").any(), col
    assert _providers(logs) == _providers_of(s, set(oracle))
    # failed lookups are the whole difference, and they have no provider
    failed = s.events[~s.events["resolved"]]
    assert len(s.events) - len(failed) == sum(oracle.values())
    assert failed["provider"].isna().all()
    assert s.events["latency_ns"].notna().all() and (s.events["latency_ns"] > 0).all()
    assert set(s.events["kind"].astype(str)) >= {"eager", "lazy"}
    # per-image relocation time was measured for the programs that ran
    assert len(s.relocations) >= len(oracle)
    # the tree: every process but the root has a traced parent
    root = int(procs["pid"].iloc[0])
    assert set(procs.loc[procs["pid"] != root, "ppid"].dropna()) <= set(procs["pid"])


def test_ld_debug_cold_go_build_matches_raw_logs(go_env, tmp_path, monkeypatch):
    logs = tmp_path / "raw"
    monkeypatch.setenv("GOTRACE_LD_DEBUG_DIR", str(logs))
    monkeypatch.chdir(EXAMPLE)
    res = bind(["go", "build", "-o", str(tmp_path / "hello"), "."], out=tmp_path / "s",
               backend="ld-debug", env=go_env)
    assert res.exit_code == 0
    s = load_session(res.session)
    oracle = ld_debug_counts(logs)
    assert len(oracle) > 50
    assert _resolved_per_pid(s) == dict(oracle)
    # logs were retired as their processes went (kept here as ld.<pid>.done), and read first
    retired = [p for p in logs.iterdir() if p.name.endswith(".done")]
    assert len(retired) > 50, sorted(p.name for p in logs.iterdir())[:5]
    assert set(oracle) <= set(s.processes["pid"])
    assert s.events["latency_ns"].isna().all()
    assert s.meta["latency_method"] is None
    kinds = s.events["kind"].value_counts()
    assert kinds["eager"] > kinds["lazy"] > 0
    # the same logs imported afterwards give the same session, binding for binding (main
    # programs are named by argv[0] in glibc's log: looked up on the PATH the build had)
    from tracer.capture.imported import import_logs

    monkeypatch.setenv("PATH", go_env["PATH"])
    imp = load_session(import_logs("ld-debug", [logs], tmp_path / "imported").session)
    assert imp.meta["imported"]["format"] == "ld-debug" and imp.complete
    assert _bindings(imp.events) == _bindings(s.events)
    assert set(imp.processes["pid"]) >= set(oracle)


def _bindings(ev) -> Counter:
    cols = [ev[c].astype(str) for c in ("exe", "requester", "symbol", "version", "provider", "kind")]
    return Counter(zip(ev["pid"].astype(int), *cols))
