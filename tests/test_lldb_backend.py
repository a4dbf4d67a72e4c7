"""gotrace bind --backend lldb: real lldb, real programs, independent oracles.

- the bindings of a cgo program agree with the bpftrace session of the same
  binary (same requester, symbol, kind, provider, resolved; same counts except
  lazy slots that two threads raced to bind);
- load bases agree with the kernel's /proc/PID/maps written by the program
  itself, and ASLR stays on (two runs, two different bases);
- the program's real exit code (and 128+signal for a crash) comes through;
- a Go program that can only finish by async preemption (SIGURG) finishes,
  with no stop for a signal;
- --attach traces a running process and Ctrl-C detaches, leaving it alive;
- bad input: one line, non-zero exit.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

import oracles
from conftest import ROOT, VENV_BIN, require, require_bpftrace, require_lldb
from tracer import bind, load_session

GOTRACE = str(VENV_BIN / "gotrace")


@pytest.fixture(scope="module")
def cbins(tmp_path_factory) -> dict[str, Path]:
    require(subprocess.run(["which", "gcc"], capture_output=True).returncode == 0, "gcc is not installed")
    out = tmp_path_factory.mktemp("lldb-c")
    bins = {}
    for name, libs in (("selfmaps", ["-lm"]), ("attach_loop", ["-ldl"])):
        dst = out / name
        subprocess.run(["gcc", "-O1", "-o", str(dst), str(ROOT / "tests/csrc" / f"{name}.c"), *libs], check=True)
        bins[name] = dst
    return bins


def _multiset(events) -> Counter:
    return Counter(zip(events["requester"].astype(str), events["symbol"].astype(str), events["kind"].astype(str),
                       events["provider"].astype(str), events["resolved"]))


def test_lldb_agrees_with_bpftrace_on_a_cgo_program(binaries, tmp_path):
    require_lldb()
    require_bpftrace()
    prog = str(binaries("go-linux-amd64-internal"))
    a = bind([prog], out=tmp_path / "lldb", backend="lldb", env=dict(os.environ))
    b = bind([prog], out=tmp_path / "bpf", backend="bpftrace", env=dict(os.environ))
    la, lb = load_session(a.session), load_session(b.session)
    # lldb-server sometimes loses a Go program at exit_group (a thread vanishes while
    # stopped); gotrace then reaps the orphan for its status, or says it is unknown
    assert b.exit_code == 0 and (a.exit_code == 0 or la.meta["exit_code_unknown"]), la.meta["lldb_exit"]
    assert len(la.events) > 50
    ma, mb = _multiset(la.events), _multiset(lb.events)
    assert set(ma) == set(mb)
    # counts agree except where threads raced to a PLT slot's first call: each then
    # runs _dl_fixup, and lldb's stops widen that window (seen for `free`)
    assert {k for k in ma if ma[k] != mb[k]} <= {k for k in ma if k[2] == "lazy"}
    # the raw figure is kept beside the corrected one, and the correction is recorded
    ev = la.events
    assert (ev["latency_raw_ns"] >= ev["latency_ns"]).all() and (ev["latency_ns"] >= 0).all()
    cal = la.meta["latency_method"]["calibration"]
    assert cal["error"] is None and cal["rounds"] >= 20 and cal["median_ns"] > 0
    assert ((ev["latency_raw_ns"] - ev["latency_ns"]).clip(upper=cal["median_ns"])
            == (ev["latency_raw_ns"]).clip(upper=cal["median_ns"])).all()
    assert la.meta["descendants_traced"] is False and la.meta["signal_stops"] == 0


def test_lldb_load_bases_match_proc_maps_and_aslr_stays_on(cbins, tmp_path):
    require_lldb()
    require(Path("/proc/sys/kernel/randomize_va_space").read_text().strip() != "0", "ASLR is off on this machine")
    mains = []
    for run in range(2):
        maps = tmp_path / f"maps{run}"
        res = bind([str(cbins["selfmaps"]), str(maps)], out=tmp_path / f"s{run}", backend="lldb",
                   env=dict(os.environ))
        assert res.exit_code == 0
        s = load_session(res.session)
        kernel = oracles.maps_bases(maps.read_text())
        images = s.images.dropna(subset=["load_base"])
        checked = 0
        for path, base in zip(images["path"], images["load_base"]):
            real = os.path.realpath(str(path))
            if real in kernel:
                assert int(base) == kernel[real], path
                checked += 1
        assert checked >= 3, (images, kernel)  # the program, libc, libm, ld.so
        mains.append(kernel[os.path.realpath(cbins["selfmaps"])])
        assert set(s.events["kind"].astype(str)) >= {"eager", "lazy"}
    assert mains[0] != mains[1], "lldb launched with ASLR disabled"


def test_lldb_exit_code_and_crash(cbins, tmp_path):
    require_lldb()
    out = subprocess.run([GOTRACE, "bind", "-q", "-b", "lldb", "-o", str(tmp_path / "a"), "--",
                          str(cbins["selfmaps"]), str(tmp_path / "m"), "7"], capture_output=True, text=True)
    assert out.returncode == 7, out.stderr
    assert "cos " in out.stdout  # the program's own stdout reached ours
    s = load_session(tmp_path / "a")
    assert s.meta["complete"] and int(s.processes["exit_code"].iloc[0]) == 7
    out = subprocess.run([GOTRACE, "bind", "-q", "-b", "lldb", "-o", str(tmp_path / "b"), "--",
                          str(cbins["selfmaps"]), str(tmp_path / "m"), "crash"], capture_output=True, text=True)
    assert out.returncode == 128 + signal.SIGSEGV, out.stderr
    assert "Traceback" not in out.stderr
    assert int(load_session(tmp_path / "b").processes["exit_code"].iloc[0]) == 139


def test_a_lookup_cut_short_by_the_process_end_is_counted_not_failed(cbins, tmp_path):
    """A process that dies inside _dl_lookup_symbol_x (as a Go thread does when another calls
    exit_group) did not fail that lookup: lldb counts it, as bindsnoop.bt leaves it unrecorded."""
    require_lldb()
    require_bpftrace()
    runs = {}
    for backend in ("lldb", "bpftrace"):
        out = subprocess.run([GOTRACE, "bind", "-q", "-b", backend, "-o", str(tmp_path / backend), "--",
                              str(cbins["selfmaps"]), str(tmp_path / "m"), "crash-in-lookup"],
                             capture_output=True, text=True)
        assert out.returncode == 128 + signal.SIGSEGV, out.stderr  # the real crash, passed on
        runs[backend] = load_session(tmp_path / backend)
    la, lb = runs["lldb"], runs["bpftrace"]
    assert set(_multiset(la.events)) == set(_multiset(lb.events))
    assert "dlsym" in set(la.events["symbol"].astype(str))  # the call that crashed was bound first
    assert la.meta["lookups_cut_short"] == 1 and la.meta["unpaired_lookups"] == 0


def test_go_program_gets_its_sigurg(tmp_path, go_env):
    require_lldb()
    prog = tmp_path / "gospin"
    subprocess.run([str(VENV_BIN / "go"), "build", "-o", str(prog), "."], cwd=ROOT / "tests/fixtures/gospin",
                   env=go_env, check=True)
    out = subprocess.run([GOTRACE, "bind", "-q", "-b", "lldb", "-o", str(tmp_path / "s"), "--", str(prog)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stderr  # the program's own exit code
    assert "preempted" in out.stdout
    s = load_session(tmp_path / "s")
    assert s.meta["signal_stops"] == 0  # SIGURG passed straight through, never a stop
    assert len(s.events) > 50


def test_attach_then_ctrl_c_detaches(cbins, tmp_path):
    require_lldb()
    target = subprocess.Popen([str(cbins["attach_loop"])], stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline().strip() == "ready"
        tracer = subprocess.Popen([GOTRACE, "bind", "-q", "--attach", str(target.pid), "-o", str(tmp_path / "s")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        session = tmp_path / "s"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (session / "meta.json").exists():
            time.sleep(0.2)
        time.sleep(2.0)  # ~100 dlsym calls at 20 ms
        tracer.send_signal(signal.SIGINT)
        _, err = tracer.communicate(timeout=60)
        assert tracer.returncode == 130, err
        assert "Traceback" not in err
        assert target.poll() is None, "the attached process did not survive the detach"
        time.sleep(0.2)
        assert target.poll() is None
        s = load_session(session)
        assert s.meta["complete"] is False and s.meta["attached"] is True
        cos = s.events[s.events["symbol"] == "cos"]
        assert len(cos) >= 10 and set(cos["kind"].astype(str)) == {"dlsym"}
        assert set(cos["provider"].astype(str)) == {"/lib/x86_64-linux-gnu/libm.so.6"}
    finally:
        target.kill()
        target.wait()


def _one_line_error(argv: list[str], env: dict | None = None) -> tuple[int, str]:
    out = subprocess.run([GOTRACE, *argv], capture_output=True, text=True, env=env, timeout=120)
    err = out.stderr.strip()
    assert "Traceback" not in out.stderr
    assert len(err.splitlines()) == 1, err
    return out.returncode, err


def test_lldb_bad_input(binaries, tmp_path):
    require_lldb()
    code, err = _one_line_error(["bind", "-q", "--attach", "999999", "-o", str(tmp_path / "a")])
    assert code == 2 and "no process 999999" in err
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + b"\xff" * 60)
    junk.chmod(0o755)
    code, err = _one_line_error(["bind", "-q", "-b", "lldb", "-o", str(tmp_path / "b"), "--", str(junk)])
    assert code != 0 and "lldb cannot" in err
    static = binaries("go-linux-amd64-static")
    code, err = _one_line_error(["bind", "-q", "-b", "lldb", "-o", str(tmp_path / "c"), "--", str(static)])
    assert code == 2 and "not dynamically linked" in err
    env = dict(os.environ, GOTRACE_LLDB="/bin/false")
    code, err = _one_line_error(["bind", "-q", "-b", "lldb", "-o", str(tmp_path / "d"), "--", "/bin/true"], env)
    assert code == 2 and "no Python bindings" in err and "apt-get install" in err
    code, err = _one_line_error(["bind", "-q", "-b", "ld-debug", "--attach", str(os.getpid())])
    assert code == 2 and "--attach needs the lldb backend" in err
    kthread = _kernel_thread()  # exists but cannot be attached: a kernel thread has no user space
    require(kthread is not None, "no kernel thread in this /proc (a PID namespace hides them)")
    code, err = _one_line_error(["bind", "-q", "--attach", str(kthread), "-o", str(tmp_path / "e")])
    assert code == 2 and f"{kthread}" in err


def _kernel_thread() -> int | None:
    for entry in sorted(os.listdir("/proc"), key=lambda e: (not e.isdigit(), len(e), e)):
        if entry.isdigit():
            try:
                status = open(f"/proc/{entry}/status").read()
            except OSError:
                continue
            if "\nPPid:\t2\n" in status or "\nKthread:\t1" in status:
                return int(entry)
    return None
