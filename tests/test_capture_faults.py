"""Faults around capture: missing tools, lost events, a full disk, streaming."""
from __future__ import annotations

import json
import os
import sys
import shutil
import subprocess
import time

import pandas as pd
import pytest


from conftest import gotrace_cli, ld_debug_counts, require, require_backend, require_bpftrace, tmpfs
from tracer import bind, load_session
from tracer.capture.bpftrace import backend as bpf_mod
from tracer.capture.bpftrace import launch as bpftrace_launch
from tracer.capture.choose import choose


def test_bpftrace_missing_is_one_line_and_auto_falls_back(tmp_path):
    # no tools at all, and no BPF program built before (an empty cache): neither bpf nor bpftrace
    env = dict(os.environ, PATH="/usr/local/nowhere", XDG_CACHE_HOME=str(tmp_path / "cache"))
    bash = shutil.which("bash")
    out = gotrace_cli("bind", "-o", str(tmp_path / "a"), "--backend", "bpftrace", "--", bash, "-c", "exit 0",
                      env=env)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "gotrace: bpftrace backend unavailable: bpftrace is not installed; install it: apt-get install bpftrace"]
    out = gotrace_cli("bind", "-o", str(tmp_path / "b"), "--", bash, "-c", "/bin/ls / >/dev/null", env=env)
    assert out.returncode == 0, out.stderr
    assert "backend ld-debug (auto: not bpf: " in out.stderr and "; not bpftrace: bpftrace is not installed" \
        in out.stderr
    assert load_session(tmp_path / "b").meta["backend"] == "ld-debug"


def test_unresolvable_ldso_symbols_name_the_fix(tmp_path, monkeypatch):
    require(shutil.which("objcopy") is not None, "objcopy (binutils) is not installed")
    require(os.geteuid() == 0 and shutil.which("bpftrace") is not None, "needs root and bpftrace")
    stripped = tmp_path / "ld.so"
    # no symbols and no build-id: nothing leads to debug info
    subprocess.run(["objcopy", "--strip-all", "--remove-section=.note.gnu.build-id",
                    bpf_mod.ldso_path(), str(stripped)], check=True)
    monkeypatch.setattr(bpf_mod, "ldso_path", lambda: str(stripped))
    from tracer.capture.bpf import backend as own_bpf

    monkeypatch.setattr(own_bpf, "ldso_path", lambda: str(stripped))
    assert "_dl_fixup" in own_bpf.BpfBackend().probe().reason
    avail = bpf_mod.BpftraceBackend().probe()
    assert not avail.ok
    assert "_dl_fixup" in avail.reason and avail.fix == "install glibc's debug symbols: apt-get install libc6-dbg"
    backend, why = choose("auto")
    assert backend.name == "ld-debug" and "libc6-dbg" in why


def test_lost_events_are_counted_and_reported(tmp_path, monkeypatch):
    require_bpftrace()
    monkeypatch.setenv(bpftrace_launch.RB_PAGES_ENV, "1")  # a 4 KiB perf buffer per CPU overflows at once
    script = "for i in 1 2 3 4 5 6; do python3 -c 'import json, decimal' & done; wait"
    res = bind(["bash", "-c", script], out=tmp_path / "s", backend="bpftrace")
    s = load_session(res.session)
    assert res.lost_events > 0 and s.meta["lost_events"] == res.lost_events
    assert s.meta["perf_rb_pages"] == 1
    rep = gotrace_cli("report", str(tmp_path / "s"))
    assert f"{res.lost_events:,} events were lost" in rep.stdout


def test_bindings_beyond_a_full_batch_map_are_counted_lost(tmp_path, monkeypatch):
    """bindsnoop.bt keeps records in a map of BPFTRACE_MAP_KEYS_MAX entries that gotrace
    empties every 100 ms; a burst larger than the map between two drains cannot be stored,
    and the script's own count says how many were made."""
    require_bpftrace()
    monkeypatch.setenv(bpftrace_launch.MAP_KEYS_ENV, "512")
    burst = "import ctypes; m = ctypes.CDLL('libm.so.6'); [m['cos'] for _ in range(20000)]"  # a dlsym each
    res = bind([sys.executable, "-c", burst], out=tmp_path / "s", backend="bpftrace")
    s = load_session(res.session)
    made = s.meta["binding_records_made"]
    assert res.exit_code == 0 and s.meta["map_keys"] == 512
    assert made > 20000 and res.lost_events > 0
    assert len(s.events) + res.lost_events == made
    assert (s.events["symbol"] == "cos").sum() < 20000


def test_full_disk_keeps_what_was_written(tmp_path):
    with tmpfs(tmp_path / "tiny", "256k") as mnt:
        script = "for i in $(seq 40); do python3 -c 'import json, decimal, email.parser'; done; exit 5"
        out = gotrace_cli("bind", "-q", "-o", str(mnt / "s"), "--backend", "ld-debug", "--",
                          "bash", "-c", script)
        assert out.returncode == 5, out.stderr  # the command's exit code, not ours
        assert "session incomplete" in out.stderr and "No space left" in out.stderr
        assert "Traceback" not in out.stderr
        s = load_session(mnt / "s")
        assert not s.complete
        assert len(s.events) > 0  # the parts written before the disk filled are intact
        assert not list((mnt / "s" / "events").glob("*.tmp"))


def test_events_stream_into_pandas_while_the_command_runs(tmp_path):
    chunks = []

    def on_chunk(frame):
        chunks.append((time.monotonic(), len(frame), set(frame["exe"].astype(str))))

    start = time.monotonic()
    res = bind(["bash", "-c", "/bin/ls / >/dev/null; sleep 6; /bin/ls / >/dev/null"], out=tmp_path / "s",
               backend="ld-debug", on_chunk=on_chunk)
    end = time.monotonic()
    assert res.exit_code == 0
    early = [c for c in chunks if c[0] < end - 2]
    assert early, f"no chunk arrived before the command ended: {[(c[0] - start, c[1]) for c in chunks]}"
    assert "/bin/ls" in set().union(*(c[2] for c in early))
    assert sum(n for _, n, _ in chunks) == len(load_session(res.session).events)


def _bpftrace_of(tracer_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"bindsnoop.bt [0-9]+ [^ ]+ {tracer_pid} "], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(os.path.exists(f"/proc/{p}") and "Z" not in open(f"/proc/{p}/stat").read().split()[2]
                   for p in pids if os.path.exists(f"/proc/{p}/stat")):
            return True
        time.sleep(0.2)
    return False


def test_probes_are_detached_even_when_gotrace_is_killed(tmp_path):
    require_bpftrace()
    marker = f"{30 + os.getpid() % 1000 / 1000:.3f}"
    proc = subprocess.Popen([os.sys.executable, "-m", "tracer", "bind", "-q", "-o", str(tmp_path / "s"),
                             "--backend", "bpftrace", "--", "sleep", marker],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "traced command never started"
            time.sleep(0.2)
        tracers = _bpftrace_of(proc.pid)
        assert len(tracers) == 1
        proc.kill()  # SIGKILL: gotrace gets no chance to clean up
        proc.wait()
        assert _gone(tracers, 30), "bpftrace outlived gotrace: its probes stayed attached"
    finally:
        subprocess.run(["pkill", "-f", f"^sleep {marker}$"])
    # a normal run leaves nothing behind either
    res = bind(["true"], out=tmp_path / "t", backend="bpftrace")
    assert res.exit_code == 0
    assert _gone(_bpftrace_of(os.getpid()), 30)


def test_ld_debug_logs_of_gone_processes_are_read_then_deleted(tmp_path, monkeypatch):
    """glibc's logs live on tmpfs while the command runs; each is deleted once
    its process is gone and read, so 40 short processes leave the log directory
    as small as the live ones need. Oracle for what was read: glibc's own
    count of /bin/true's bindings, logged by hand, for every one of the 40."""
    from conftest import ld_debug_counts

    oracle_dir = tmp_path / "oracle"
    oracle_dir.mkdir()
    subprocess.run(["/bin/true"], check=True, env=dict(os.environ, LD_DEBUG="bindings",
                                                      LD_DEBUG_OUTPUT=str(oracle_dir / "ld")))
    (per_true,) = ld_debug_counts(oracle_dir).values()
    monkeypatch.chdir(tmp_path)
    script = ('for i in $(seq 40); do /bin/true; done; sleep 1; '
              'ls "$(dirname "$LD_DEBUG_OUTPUT")" > listing; echo "$LD_DEBUG_OUTPUT" > where')
    res = bind(["sh", "-c", script], out=tmp_path / "s", backend="ld-debug", env=dict(os.environ))
    assert res.exit_code == 0
    s = load_session(tmp_path / "s")
    trues = s.events[s.events["exe"] == "/bin/true"].groupby("pid").size()
    assert len(trues) == 40 and (trues == per_true).all(), trues.value_counts()
    logs = set((tmp_path / "listing").read_text().split())
    assert not logs & {f"ld.{pid}" for pid in trues.index}, logs  # the 40 were gone a second before
    assert len(logs) <= 4, logs  # sh, ls, and sleep's and dirname's, which have only just exited
    where = (tmp_path / "where").read_text().strip()
    assert where.startswith("/dev/shm/") == (s.meta["ld_debug_log_dir"] == "/dev/shm")
    assert not os.path.exists(os.path.dirname(where))  # removed at the end


def test_ld_debug_logs_of_a_reused_pid_are_retired_apart(tmp_path):
    """A pid's next process writes a new ld.<pid>: its log is retired beside the
    first one's, never over it (kept logs), and both are read in full. The pid
    is one no process can have, so both count as gone."""
    from pathlib import Path

    from tracer.capture.backend import CaptureRequest
    from tracer.capture.ld_debug.backend import _Tailer

    gone = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    text = (Path(__file__).parent / "golden" / "ld_debug" / "ld.9218").read_bytes()
    for keep in (True, False):
        logs = tmp_path / f"keep-{keep}"
        logs.mkdir()
        tables = []
        tailer = _Tailer(str(logs), CaptureRequest(argv=["x"], env={}, sink=tables.append), os.defpath,
                         keep_logs=keep)
        rows = []
        for _ in range(2):  # the process, then the next one with its pid
            (logs / f"ld.{gone}").write_bytes(text)
            tailer._sweep()  # read
            tailer._sweep()  # nothing new and the pid gone: retired, read once more
            rows.append(sum(t.num_rows for t in tables))
        assert rows[0] > 0 and rows[1] == 2 * rows[0]
        left = sorted(p.name for p in logs.iterdir())
        assert left == ([f"ld.{gone}.2.done", f"ld.{gone}.done"] if keep else []), left


@pytest.mark.parametrize("backend", ["bpf", "ld-debug"])
def test_a_full_disk_says_its_counts_are_lower_bounds(backend, tmp_path):
    """`-o` on a 96 KiB tmpfs. Oracles: glibc's LD_DEBUG=bindings count of the same workload (far more
    than the session could save, and no more than gotrace recorded: saved + never saved + lost), and
    the workload's own exit status. The summary, --json, report and meta.json all say the count is a
    lower bound; the exit status stays the command's."""
    require_backend(backend)
    script = "ls / >/dev/null; sleep 2.5; for i in 1 2 3; do python3 -c 'import ssl, json, decimal'; done; exit 3"
    logs = tmp_path / "ld"
    logs.mkdir()
    own = subprocess.run(["bash", "-c", script], env={**os.environ, "LD_DEBUG": "bindings",
                                                      "LD_DEBUG_OUTPUT": str(logs / "ld")})
    oracle = sum(ld_debug_counts(logs).values())
    with tmpfs(tmp_path / "tiny", "96k") as mnt:
        out = gotrace_cli("bind", "-o", str(mnt / "s"), "--backend", backend, "--json-out", str(tmp_path / "r.json"),
                          "--", "bash", "-c", script)
        assert out.returncode == own.returncode == 3, out.stderr
        assert "No space left" in out.stderr and "Traceback" not in out.stderr
        parts = sorted((mnt / "s" / "events").glob("part-*.parquet"))
        saved = sum(len(pd.read_parquet(p)) for p in parts)
        meta = json.loads((mnt / "s" / "meta.json").read_text())
        report = json.loads(gotrace_cli("report", "--json", str(mnt / "s")).stdout)
        text = gotrace_cli("report", str(mnt / "s")).stdout
    assert saved < oracle / 2  # a fraction of the run
    recorded = saved + meta["events_dropped"] + meta["lost_events"]
    assert recorded >= oracle  # what gotrace recorded is the whole run (failed lookups too, for bpf)
    assert meta["events"] == saved and not meta["complete"] and "No space left" in meta["write_error"]
    assert sum(meta["event_parts"].values()) == saved
    summary = json.loads((tmp_path / "r.json").read_text())
    for doc in (summary, report):
        assert doc["bindings"]["total"] == saved
        assert doc["session"]["counts_lower_bound"] is True and doc["session"]["events_dropped"] == \
            meta["events_dropped"]
    assert f"gotrace: at least {saved:,} binding" in out.stderr
    assert f"{meta['events_dropped']:,} recorded bindings were never saved" in out.stderr
    assert "statically linked" not in out.stderr  # silence that is the disk's, not the programs'
    assert f"at least {saved:,} binding" in text and "lower bound" in text


def test_an_internal_error_after_the_command_ran_keeps_the_session(tmp_path, monkeypatch):
    """A backend that fails after the command has run, before any binding was recorded (here: a static
    program, which never starts ld.so, so LD_DEBUG records nothing; the ld-debug backend made to raise once
    the command is done). The command did run — its own file says so — and the session is kept, marked
    failed with the error, not removed as if nothing had run. A refusal before the command runs (a missing
    command) still leaves no session behind."""
    from tracer.capture.ld_debug import backend as ld_backend
    from tracer.errors import GotraceError

    prog = tmp_path / "static"
    (tmp_path / "static.c").write_text('#include <stdio.h>\nint main(int c, char **v) { FILE *f = fopen(v[1], "w");'
                                       ' fputs("ran", f); fclose(f); return 0; }\n')
    require(subprocess.run(["gcc", "-static", "-o", str(prog), str(tmp_path / "static.c")]).returncode == 0,
            "gcc -static cannot link here (libc6-dev's libc.a)")
    real = ld_backend.LdDebugBackend.capture

    def broken(self, request):
        real(self, request)
        raise RuntimeError("a bug after the run")

    monkeypatch.setattr(ld_backend.LdDebugBackend, "capture", broken)
    with pytest.raises(RuntimeError):
        bind([str(prog), str(tmp_path / "mark")], out=tmp_path / "s", backend="ld-debug")
    assert (tmp_path / "mark").read_text() == "ran"
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["complete"] is False and "RuntimeError: a bug after the run" in meta["failure"]
    with pytest.raises(GotraceError):
        bind([str(tmp_path / "no-such-program")], out=tmp_path / "t", backend="ld-debug")
    assert not (tmp_path / "t").exists()
