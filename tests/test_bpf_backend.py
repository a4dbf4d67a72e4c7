"""The bpf backend: gotrace's own BPF program (csrc/bindsnoop.bpf.c) and its loader (csrc/bindload.c).

Its fidelity is checked against glibc elsewhere (the cold go build, why's scenarios, the
binding kinds, fatal lookups, load bases against /proc/PID/maps: each test is parametrized
over it). Here: it records what the bpftrace backend records on the same workload, lookup
for lookup; a full ring buffer is counted, never silent; auto prefers it and says why, and
every way it cannot run is one line and the next backend — including a program the kernel
refuses after it was chosen (the command then runs once, under the fallback).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import gotrace_cli, require, require_backend, require_bpf, require_bpftrace
from linkbins import build
from tracer import bind, load_session, procfs
from tracer.capture.bpf import launch
from tracer.capture.bpftrace.launch import bindsnoop_pids
from tracer.errors import TracerDidNotStart


@pytest.fixture(scope="module")
def bins(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    return build(tmp_path_factory.mktemp("bpfbins"))


def _lookups(session) -> Counter:
    """Every lookup as (program, requester, symbol, version, provider, kind, resolved): pids and
    times differ from run to run, what the dynamic linker did does not."""
    ev = session.events
    cols = [ev[c].astype(str) for c in ("exe", "requester", "symbol", "version", "provider", "kind")]
    return Counter(zip(*cols, ev["resolved"].astype(bool)))


def test_bpf_records_what_bpftrace_records(bins, tmp_path):
    """The issue's fidelity rule: per-process lookup counts equal to the bpftrace backend's on
    the same workload — here every lookup itself, with its provider, kind and outcome."""
    require_bpf()
    require_bpftrace()
    work = ["sh", "-c", f"{bins['picker']}; {bins['opener']} {bins['libplug']} plug; "
            f"{bins['fatal']}; python3 -c 'import ctypes'; exit 0"]
    sessions = {}
    for backend in ("bpf", "bpftrace"):
        res = bind(work, out=tmp_path / backend, backend=backend)
        assert res.exit_code == 0
        sessions[backend] = load_session(res.session)
    bpf, bt = sessions["bpf"], sessions["bpftrace"]
    assert bpf.meta["lost_events"] == 0 and bpf.complete
    per_exe = {b: s.events.groupby(s.events["exe"].astype(str)).size().to_dict() for b, s in sessions.items()}
    assert per_exe["bpf"] == per_exe["bpftrace"]
    assert len(per_exe["bpf"]) >= 5  # sh, picker, opener, fatal, python3
    assert _lookups(bpf) == _lookups(bt)
    # a latency on every lookup that returned; the fatal one never does (ld.so longjmps out and the
    # process dies), in both
    timed = bpf.events["latency_ns"].notna()
    assert list(bpf.events.loc[~timed, "symbol"].astype(str)) == ["gone"]
    assert list(bt.events.loc[bt.events["latency_ns"].isna(), "symbol"].astype(str)) == ["gone"]
    assert (bpf.events.loc[timed, "latency_ns"] > 0).all()
    # the same processes, exit codes and relocated images
    def procs(s):
        return Counter(zip(s.processes["exe"].astype(str), s.processes["exit_code"].astype(str)))
    assert procs(bpf) == procs(bt)
    assert Counter(bpf.relocations["path"].astype(str)) == Counter(bt.relocations["path"].astype(str))
    assert (bpf.events["backend"].astype(str) == "bpf").all()


def test_a_full_ring_buffer_is_counted_and_reported(tmp_path, monkeypatch):
    """A 4 KiB ring buffer holds about a dozen records: a burst of 20,000 dlsym lookups
    overflows it. What did not fit is counted in the program's own `lost` map and saved."""
    require_bpf()
    monkeypatch.setenv(launch.RINGBUF_ENV, "4096")
    burst = "import ctypes; m = ctypes.CDLL('libm.so.6'); [m['cos'] for _ in range(20000)]"  # a dlsym each
    res = bind([sys.executable, "-c", burst], out=tmp_path / "s", backend="bpf")
    s = load_session(res.session)
    assert res.exit_code == 0
    cos = int((s.events["symbol"] == "cos").sum())
    assert res.lost_events > 0 and s.meta["lost_events"] == res.lost_events == s.meta["ring_buffer_lost"]
    assert cos < 20000 and cos + res.lost_events >= 20000
    rep = gotrace_cli("report", str(tmp_path / "s"))
    assert f"{res.lost_events:,} events were lost" in rep.stdout
    # the default buffer keeps every one of them
    monkeypatch.delenv(launch.RINGBUF_ENV)
    res = bind([sys.executable, "-c", burst], out=tmp_path / "t", backend="bpf")
    s = load_session(res.session)
    assert res.lost_events == 0 and int((s.events["symbol"] == "cos").sum()) == 20000


def test_auto_prefers_bpf_and_says_why(tmp_path):
    require_bpf()
    out = gotrace_cli("bind", "-o", str(tmp_path / "s"), "--", "true")
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[0] == ("gotrace: backend bpf (auto: root, BTF and ld.so symbols: gotrace's own "
                                          "BPF program, every lookup with its latency)")
    meta = load_session(tmp_path / "s").meta
    assert meta["backend"] == "bpf" and meta["bpf_started"] == "by the console script, while the CLI loaded"


def _env_without(tmp_path: Path, *tools: str) -> dict[str, str]:
    """PATH with a directory of links to everything on it but ``tools``; an empty cache."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if os.path.isdir(d):
            for name in os.listdir(d):
                target = os.path.join(d, name)
                if name not in tools and not (bindir / name).exists() and os.access(target, os.X_OK):
                    (bindir / name).symlink_to(target)
    return dict(os.environ, PATH=str(bindir), XDG_CACHE_HOME=str(tmp_path / "cache"))


def test_without_a_compiler_it_is_one_line_and_auto_falls_back(tmp_path):
    require_bpf()
    require_bpftrace()
    env = _env_without(tmp_path, "clang", "clang-14")
    out = gotrace_cli("bind", "-o", str(tmp_path / "a"), "-b", "bpf", "--", "true", env=env)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "gotrace: bpf backend unavailable: building gotrace's BPF program needs clang, a C compiler and libbpf's "
        "headers; apt-get install clang-14 gcc libbpf-dev"]
    out = gotrace_cli("bind", "-o", str(tmp_path / "b"), "--", "true", env=env)
    assert out.returncode == 0, out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("gotrace: backend bpftrace (auto: root, bpftrace and ld.so symbols") and \
        "not bpf: building gotrace's BPF program needs clang" in first, first
    assert load_session(tmp_path / "b").meta["backend"] == "bpftrace"
    assert not (tmp_path / "cache" / "gotrace").exists() or not list((tmp_path / "cache" / "gotrace").glob("bind*"))


def test_first_use_builds_once_into_the_cache(tmp_path):
    """Built on first use (no clang at run time after that), then reused as it is."""
    require_bpf()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    out = gotrace_cli("bind", "-q", "-b", "bpf", "-o", str(tmp_path / "a"), "--", "true", env=env)
    assert out.returncode == 0, out.stderr
    built = sorted(p for p in (tmp_path / "cache" / "gotrace").iterdir()
                   if p.is_file() and p.name.startswith(("bindload-", "bindsnoop-bpf-")))
    assert [p.name.split("-")[0] for p in built] == ["bindload", "bindsnoop"]
    stamps = {p: p.stat().st_mtime_ns for p in built}
    env = _env_without(tmp_path, "clang", "clang-14", "cc", "gcc")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    out = gotrace_cli("bind", "-q", "-b", "bpf", "-o", str(tmp_path / "b"), "--", "true", env=env)
    assert out.returncode == 0, out.stderr
    assert {p: p.stat().st_mtime_ns for p in built} == stamps
    # the object is BPF, as the ELF header says
    obj = next(p for p in built if p.suffix == ".o")
    header = subprocess.run(["readelf", "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    assert "Linux BPF" in header


@pytest.mark.parametrize("case", ["no-btf", "old-kernel", "lockdown", "not-root"])
def test_hosts_it_cannot_run_on_are_one_line(case, tmp_path, monkeypatch):
    """What the kernel cannot do is told before anything starts (not run: each such host)."""
    lockdown = tmp_path / "lockdown"
    lockdown.write_text("none integrity [confidentiality]\n" if case == "lockdown" else "[none] integrity\n")
    monkeypatch.setattr(launch, "LOCKDOWN", lockdown)
    monkeypatch.setattr(launch.os, "geteuid", lambda: 1000 if case == "not-root" else 0)
    monkeypatch.setattr(launch.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(launch.platform, "release", lambda: "5.4.0-42-generic" if case == "old-kernel" else "6.1.0")
    monkeypatch.setattr(launch, "BTF", tmp_path / "missing" if case == "no-btf" else Path(__file__))
    problem = launch.host_problem()
    assert problem is not None and not problem.ok
    expected = {"no-btf": "the kernel has no BTF", "old-kernel": "kernel 5.4.0-42-generic is older than 5.11",
                "lockdown": "the kernel is locked down (confidentiality)", "not-root": "needs root"}[case]
    assert expected in problem.explain() and "\n" not in problem.explain()
    monkeypatch.setattr(launch, "BTF", Path(__file__))
    monkeypatch.setattr(launch.os, "geteuid", lambda: 0)
    monkeypatch.setattr(launch.platform, "release", lambda: "6.1.0")
    lockdown.write_text("[none] integrity confidentiality\n")
    assert launch.host_problem() is None


def test_a_program_the_kernel_refuses_falls_back_and_runs_the_command_once(tmp_path, monkeypatch):
    """Chosen by auto, then refused when loaded (here: an object libbpf cannot open): the command
    has not run; auto goes on to bpftrace, says why, and the command runs once under it."""
    require_bpf()
    require_bpftrace()
    from tracer.capture.bpf import backend as bpf_backend

    bogus = tmp_path / "bogus.o"
    bogus.write_bytes(b"not an ELF object")
    real = launch.artifacts(build=False)
    monkeypatch.setattr(bpf_backend, "artifacts", lambda build: (bogus, real[1]))
    marker = tmp_path / "marker"
    choices = []
    res = bind(["sh", "-c", f"echo ran >> {marker}; exit 4"], out=tmp_path / "s", backend="auto",
               on_choice=choices.append)
    assert res.exit_code == 4 and res.backend == "bpftrace"
    assert marker.read_text() == "ran\n"
    assert choices[0].startswith("backend bpf (auto:")
    assert choices[1].startswith("backend bpftrace (auto: gotrace's BPF program failed to start: libbpf: ") and \
        "is not a proper ELF object; falling back)" in choices[1], choices  # libbpf's own words
    s = load_session(res.session)
    assert s.meta["backend"] == "bpftrace" and s.complete and len(s.events) > 0
    # asked for by name, the same refusal is one line and nothing runs
    with pytest.raises(TracerDidNotStart) as err:
        bind(["sh", "-c", f"echo ran >> {marker}"], out=tmp_path / "t", backend="bpf")
    assert err.value.message.startswith("gotrace's BPF program failed to start: libbpf: ")
    assert "\n" not in err.value.message
    time.sleep(0.2)
    assert marker.read_text() == "ran\n"


def test_the_loader_goes_when_gotrace_is_killed(tmp_path):
    """SIGKILL to gotrace: the loader sees its stdin close, drains and detaches; no probe stays."""
    require_bpf()
    marker = f"{40 + os.getpid() % 1000 / 1000:.3f}"
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-q", "-o", str(tmp_path / "s"),
                             "-b", "bpf", "--", "sleep", marker], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "traced command never started"
            time.sleep(0.1)
        loaders = [p for p in launch.loader_pids() if procfs.ppid(p) == proc.pid]
        assert len(loaders) == 1
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 30
        while any(os.path.exists(f"/proc/{p}") and _state(p) != "Z" for p in loaders):
            assert time.monotonic() < deadline, "the loader outlived gotrace: its probes stayed attached"
            time.sleep(0.1)
    finally:
        subprocess.run(["pkill", "-f", f"^sleep {marker}$"])


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_tracer_that_dies_during_the_run_leaves_an_incomplete_session(backend, tmp_path):
    """The tracer (the BPF loader, bpftrace) killed while the command runs: the command goes on as it would without gotrace
    (its exit code is gotrace's), what was recorded before is saved, and the session says it is
    incomplete and why — never a complete-looking session with the end missing."""
    import threading

    require_backend(backend)
    marker = tmp_path / "started"
    script = f"ls / >/dev/null; touch {marker}; sleep 1; ls /tmp >/dev/null; exit 5"
    killed = []

    def kill_loader() -> None:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the first ls's records are read (every 100 ms)
        tracers = launch.loader_pids() if backend == "bpf" else bindsnoop_pids()
        for pid in tracers:
            if procfs.ppid(pid) == os.getpid():
                os.kill(pid, 9)
                killed.append(pid)

    killer = threading.Thread(target=kill_loader)
    killer.start()
    res = bind(["sh", "-c", script], out=tmp_path / "s", backend=backend)
    killer.join()
    assert killed and res.exit_code == 5
    s = load_session(res.session)
    who = "gotrace's BPF loader" if backend == "bpf" else "bpftrace"
    assert not s.complete and s.meta["incomplete_reason"] == (f"{who} ended during the run (killed by signal 9): "
                                                              "what ran after that is not recorded")
    ls = s.events[s.events["exe"].astype(str).str.endswith("/ls")]
    assert ls["pid"].nunique() == 1  # the first ls, recorded before the loader died; not the second
    rep = gotrace_cli("report", str(tmp_path / "s"))
    assert f"incomplete: {who} ended during the run" in rep.stdout

