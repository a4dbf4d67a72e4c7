"""The command line as a user runs it: exit codes, refusals, interrupts."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from conftest import gotrace_cli, require_backend
from tracer import load_session

BACKENDS = ["bpf", "bpftrace", "ld-debug"]


def _need(backend):
    require_backend(backend)


def test_help_teaches():
    out = gotrace_cli("bind", "--help")
    assert out.returncode == 0
    assert "gotrace bind -- go build" in out.stdout and "ld-debug" in out.stdout


def test_unknown_command_is_127(tmp_path):
    out = gotrace_cli("bind", "-o", str(tmp_path / "s"), "--", "no-such-command-xyz")
    assert out.returncode == 127
    assert out.stderr.strip().splitlines() == ["gotrace: command not found: no-such-command-xyz"]
    assert not (tmp_path / "s").exists()


def test_no_command_and_bad_backend(tmp_path):
    out = gotrace_cli("bind")
    assert out.returncode == 2 and "no command given" in out.stderr
    out = gotrace_cli("bind", "--backend", "systemtap", "--", "true")
    assert out.returncode == 2 and "unknown backend 'systemtap'" in out.stderr
    assert "Traceback" not in out.stderr


def test_existing_and_unwritable_output_refused(tmp_path):
    existing = tmp_path / "exists"
    existing.mkdir()
    (existing / "keep.txt").write_text("x")
    out = gotrace_cli("bind", "-o", str(existing), "--backend", "ld-debug", "--", "true")
    assert out.returncode == 2 and "already exists" in out.stderr
    out = gotrace_cli("bind", "-o", str(existing), "--force", "--backend", "ld-debug", "--", "true")
    assert out.returncode == 2 and "not a gotrace session" in out.stderr
    assert (existing / "keep.txt").exists()
    out = gotrace_cli("bind", "-o", str(tmp_path / "missing-parent" / "s"), "--backend", "ld-debug", "--", "true")
    assert out.returncode == 2 and "does not exist" in out.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_exit_code_and_crash_pass_through(backend, tmp_path):
    _need(backend)
    out = gotrace_cli("bind", "-q", "-o", str(tmp_path / "a"), "--backend", backend, "--",
                      "bash", "-c", "ls / >/dev/null; exit 7")
    assert out.returncode == 7, out.stderr
    s = load_session(tmp_path / "a")
    assert s.complete and s.meta["exit_code"] == 7
    root = s.processes[s.processes["pid"] == s.processes["pid"].iloc[0]]
    assert int(root["exit_code"].iloc[-1]) == 7
    out = gotrace_cli("bind", "-q", "-o", str(tmp_path / "b"), "--backend", backend, "--",
                      "bash", "-c", "kill -SEGV $$")
    assert out.returncode == 128 + signal.SIGSEGV
    assert load_session(tmp_path / "b").meta["exit_code"] == 128 + signal.SIGSEGV


@pytest.mark.parametrize("backend", BACKENDS)
def test_interrupt_saves_incomplete_session(backend, tmp_path):
    _need(backend)
    sess = tmp_path / "s"
    marker = f"{60 + os.getpid() % 1000 / 1000:.3f}"  # a sleep no other test runs
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-q", "-o", str(sess), "--backend",
                             backend, "--", "bash", "-c", f"ls / >/dev/null; sleep {marker}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # wait until the traced shell has run ls (its bindings are captured)
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("traced command never started")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    s = load_session(sess)
    assert not s.complete
    assert s.meta["interrupted_by"] == signal.SIGINT
    assert (s.events["exe"].astype(str) == "/usr/bin/ls").sum() > 0
    # the signal reached the whole job: no grandchild is left running
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", f"^sleep {marker}$"], capture_output=True).returncode == 1


def test_report_json_and_bad_sessions(tmp_path):
    sess = tmp_path / "s"
    out = gotrace_cli("bind", "-q", "-o", str(sess), "--backend", "ld-debug", "--", "ls", "/")
    assert out.returncode == 0, out.stderr
    rep = gotrace_cli("report", str(sess), "--json")
    assert rep.returncode == 0
    data = json.loads(rep.stdout)
    assert data["report_version"] == 1
    assert data["bindings"]["total"] == sum(data["bindings"]["by_kind"].values()) > 0
    assert data["latency_ns"] is None  # ld-debug measures none, and says so
    assert data["session"]["backend_choice"] == "backend ld-debug"
    out = gotrace_cli("bind", "-o", str(tmp_path / "j"), "--json", "--backend", "ld-debug", "--", "true")
    assert out.returncode == 0 and json.loads(out.stdout)["bindings"]["total"] > 0
    # not a terminal: nothing but the command's output and the summary
    out = gotrace_cli("bind", "-o", str(tmp_path / "k"), "--backend", "ld-debug", "--", "echo", "hi")
    assert out.stdout == "hi\n"
    assert all(line.startswith("gotrace:") or line.startswith(" ") or not line.strip()
               for line in out.stderr.splitlines()), out.stderr
    human = gotrace_cli("report", str(sess))
    assert human.returncode == 0 and "bindings in" in human.stdout

    for bad, msg in [(tmp_path / "nope", "no session at"), (tmp_path, "not a gotrace session")]:
        r = gotrace_cli("report", str(bad))
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "meta.json").write_text('{"format": "something-else"}')
    r = gotrace_cli("report", str(foreign))
    assert r.returncode == 2 and "not a gotrace session" in r.stderr
    (sess / "processes.parquet").write_bytes(b"PAR1 truncated")
    r = gotrace_cli("report", str(sess))
    assert r.returncode == 2 and "truncated or corrupt" in r.stderr
    (sess / "meta.json").write_text('{"format": "gotrace-sess')
    r = gotrace_cli("report", str(sess))
    assert r.returncode == 2 and "truncated" in r.stderr


def _pandas_report(sess, top: int = 10) -> dict:
    """The report's figures, computed here with pandas from the whole saved
    session: an oracle independent of tracer.tally and tracer.report, which
    count chunk by chunk in Arrow. Orders as documented: count descending,
    then name; percentiles numpy's nearest-rank."""
    import numpy as np
    import pandas as pd

    s = load_session(sess)
    ev, pr, rel = s.events, s.processes, s.relocations

    def ranked(series, key, unit="bindings"):
        counts = series.dropna().astype(str).value_counts()
        return [{key: k, unit: int(v)} for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]

    def quantiles(v):
        out = {k: int(np.percentile(v, q, method="nearest")) for k, q in (("p50", 50), ("p90", 90), ("p99", 99))}
        return {**out, "max": int(v.max()), "mean": pytest.approx(float(v.mean())), "count": len(v),
                "total": int(v.sum())}

    def latency(rows, tail=False):
        timed = rows[rows["latency_ns"].notna()]
        v = timed["latency_ns"].astype("int64").to_numpy()
        if not len(v):
            return None
        out = quantiles(v)
        both = timed[timed["offcpu_ns"].notna()]
        off = both["offcpu_ns"].astype("int64").to_numpy()
        out["oncpu"] = None if not len(off) else {
            **quantiles(both["latency_ns"].astype("int64").to_numpy() - off), "offcpu_total": int(off.sum())}
        if tail:
            k = -(-len(v) // 1000)  # the slowest 0.1 %, at least one
            part = int(np.sort(v)[-k:].sum())
            out["tail"] = {"fraction": 0.001, "lookups": k, "total": part, "share": round(part / int(v.sum()), 4)}
        return out

    lat = {k: latency(ev.loc[ev["kind"] == k]) for k in ("eager", "lazy", "dlsym")}
    cols = ["latency_ns", "offcpu_ns", "symbol", "version", "exe", "pid", "requester", "provider", "kind"]
    slow = [{c: (None if pd.isna(r[c]) else (int(r[c]) if c in ("latency_ns", "offcpu_ns", "pid") else str(r[c])))
             for c in cols} for r in ev.loc[ev["latency_ns"].notna(), cols].astype(object).to_dict("records")]
    slow.sort(key=lambda r: (-r["latency_ns"], *(str(r[c]) for c in cols[1:])))
    slow = [{**r, "oncpu_ns": None if r["offcpu_ns"] is None else r["latency_ns"] - r["offcpu_ns"]} for r in slow[:top]]
    relocation = None
    if len(rel):
        g = rel.groupby("path", observed=True)["duration_ns"]
        per = sorted(((str(p), d) for p, d in g), key=lambda pd_: (-int(pd_[1].sum()), pd_[0]))[:top]
        relocation = {"total_ns": int(rel["duration_ns"].sum()), "images": len(rel), "top_images": [
            {"path": p, "relocations": len(d), "total_ns": int(d.sum()), "median_ns": int(d.median()),
             "max_ns": int(d.max())} for p, d in per]}
    # processes that bound nothing, by executable; static when readelf finds no PT_INTERP
    quiet = pr.loc[~pr["pid"].isin(set(ev["pid"]))]
    counts = quiet["exe"].astype("string").fillna("?").value_counts()

    def interp(exe):
        out = subprocess.run(["readelf", "-lW", exe], capture_output=True, text=True).stdout
        return "Requesting program interpreter" in out

    static = [exe for exe in counts.index if os.path.exists(exe) and not interp(exe)]
    return {
        "processes": {"count": int(pr["pid"].nunique()), "images": len(pr),
                      "failed": int((pr["exit_code"].fillna(0) != 0).sum()),
                      "by_exe": ranked(pr["exe"].astype("string").fillna("?"), "exe", "processes"),
                      "translated": {},
                      "static": int(sum(counts[e] for e in static)),
                      "without_bindings": sorted(({"exe": e, "processes": int(n)} for e, n in counts.items()),
                                                 key=lambda r: (-r["processes"], r["exe"]))[:top]},
        "bindings": {"total": len(ev), "by_kind": {k: int((ev["kind"] == k).sum()) for k in ("eager", "lazy", "dlsym")},
                     "resolved": int(ev["resolved"].sum()), "failed": int((~ev["resolved"]).sum())},
        "top_symbols": ranked(ev["symbol"], "symbol"),
        "top_providers": ranked(ev["provider"], "provider"),
        "by_exe": ranked(ev["exe"], "exe"),
        "failed_symbols": ranked(ev.loc[~ev["resolved"], "symbol"], "symbol"),
        "latency_ns": None if lat["eager"] is lat["lazy"] is lat["dlsym"] is None else
        {"all": latency(ev, tail=True), **{k: v for k, v in lat.items() if v is not None}},
        "slowest_lookups": slow,
        "relocation": relocation,
    }


_RUN = """
import os, sys
exit_now = os._exit
def report(code):
    sys.stderr.write("LOADED=" + ",".join(m for m in ("pandas", "typer", "click") if m in sys.modules) + "\\n")
    sys.stderr.flush()
    exit_now(code)
os._exit = report
entry, sys.argv = sys.argv[1], ["gotrace", *sys.argv[2:]]
from tracer.commands import console
# "typer": the Typer app itself, as for any command line the console does not take
console.main(fast_paths=entry != "typer")
"""


def _run(entry: str, *args: str, timeout=300) -> tuple[int, str, list[str], set[str]]:
    """(exit code, stdout, stderr lines, heavy modules loaded) of gotrace run
    through the console script or the Typer app."""
    out = subprocess.run([sys.executable, "-c", _RUN, entry, *args], capture_output=True, text=True, timeout=timeout)
    lines = out.stderr.splitlines()
    loaded = [line[len("LOADED="):] for line in lines if line.startswith("LOADED=")]
    assert loaded, out.stderr
    return (out.returncode, out.stdout, [line for line in lines if not line.startswith("LOADED=")],
            set(filter(None, loaded[-1].split(","))))


@pytest.mark.parametrize("backend", ["ld-debug", "bpftrace", "bpf"])
def test_summary_is_the_sessions_report_without_pandas(backend, tmp_path):
    """bind's summary is counted while the events are written, never read
    back; `report` counts the saved parts one by one. Both must be what
    pandas computes over the whole saved session — and `gotrace bind` must
    not import pandas at all (~0.3 s of CPU taken from the traced build)."""
    from tracer.analysis.report import build_report

    _need(backend)
    sess = tmp_path / "s"
    # three programs, one of them run twice: ties and repeated names in the top lists;
    # ldconfig is static-pie: a process that binds nothing
    code, stdout, stderr, loaded = _run("console", "bind", "-q", "--json", "-o", str(sess), "--backend", backend,
                                        "--", "sh", "-c", "ls / >/dev/null; id >/dev/null; ls /tmp >/dev/null; "
                                        "/sbin/ldconfig -p >/dev/null")
    assert code == 0, stderr
    assert "pandas" not in loaded
    summary = json.loads(stdout)
    saved = json.loads(gotrace_cli("report", "--json", str(sess)).stdout)
    assert summary == saved
    expected = _pandas_report(sess)
    # the reasons are the report's words; which executables went quiet, and how many, are the oracle's
    got = json.loads(json.dumps({k: summary[k] for k in expected}))
    for row in got["processes"]["without_bindings"]:
        row.pop("reason")
    assert got == expected
    assert summary["bindings"]["total"] > 500 and summary["processes"]["count"] >= 4
    assert build_report(load_session(sess)) == summary  # the notebook path: a loaded Session
    if backend != "ld-debug":
        assert summary["latency_ns"]["all"]["count"] == summary["bindings"]["total"]
        assert summary["relocation"]["images"] > 0 and summary["bindings"]["failed"] > 0
        assert summary["processes"]["static"] == 1  # ldconfig, seen exec'ing though it never binds
    if backend == "bpftrace":
        # asked while bpftrace compiled, read at the end: the same text bpftrace prints
        version = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip()
        assert load_session(sess).meta["bpftrace_version"] == version
    five = json.loads(gotrace_cli("report", "--json", "--top", "2", str(sess)).stdout)
    assert five["top_symbols"] == summary["top_symbols"][:2] and len(five["by_exe"]) == 2
    assert list(load_session(sess, event_columns=["symbol"]).events.columns) == ["symbol"]


def test_the_plain_bind_scan():
    from tracer.commands.plain_bind import PlainBind, scan

    assert scan(["bind", "--", "go", "build"]) == PlainBind(["go", "build"])
    assert scan(["bind", "-q", "-o", "d", "--force", "-b", "ld-debug", "--json", "--", "x", "--", "y"]) == \
        PlainBind(["x", "--", "y"], output="d", backend="ld-debug", quiet=True, force=True, as_json=True)
    assert scan(["bind", "--backend=lldb", "--output=d", "--quiet", "--", "x"]) == \
        PlainBind(["x"], output="d", backend="lldb", quiet=True)
    for argv in (["bind", "go"], ["bind", "-b=ld-debug", "--", "x"], ["bind", "-od", "--", "x"],
                 ["bind", "-q", "--quiet", "--", "x"], ["bind", "-o", "a", "--output", "b", "--", "x"],
                 ["bind", "--output=", "--", "x"], ["bind", "--backend=systemtap", "--", "x"],
                 ["bind", "--arch", "arm64", "--", "x"], ["bind", "--attach", "1"], ["bind", "--help", "--", "x"],
                 ["bind", "-o", "--", "x"], ["bind", "--"], ["bind", "--bogus", "--", "x"], ["report", "--", "x"], []):
        assert scan(argv) is None, argv


def test_a_plain_bind_runs_without_typer_as_typer_would(tmp_path):
    """The console runs a plain bind itself (Typer and click never load, the
    command starts ~40 ms sooner); whatever happens, it must end exactly as
    through the Typer app: the same exit code, the same lines, the same summary."""
    cases = [
        ["-q", "-o", "{d}/s", "-b", "ld-debug", "--", "sh", "-c", "ls / >/dev/null; exit 3"],  # the command's code
        ["--output={d}/s", "--backend=ld-debug", "--json", "--", "true"],
        ["-o", "{d}/exists", "-b", "ld-debug", "--", "true"],  # refused: exists
        ["-o", "{d}/s", "--", "no-such-command-xyz"],  # 127
        ["-b", "ld-debug", "-o", "{d}/no/such/dir", "--", "true"],  # parent missing
    ]
    for i, case in enumerate(cases):
        runs = {}
        for entry in ("console", "typer"):
            d = tmp_path / f"{entry}{i}"
            (d / "exists").mkdir(parents=True)
            (d / "exists" / "f").write_text("x")
            code, stdout, stderr, loaded = _run(entry, "bind", *[a.replace("{d}", str(d)) for a in case])
            runs[entry] = (code, stdout.replace(str(d), "D"), [line.replace(str(d), "D") for line in stderr])
            assert ("typer" in loaded) == (entry == "typer") and ("click" in loaded) == (entry == "typer"), loaded
            assert "pandas" not in loaded
        (code, stdout, stderr), typer_run = runs["console"], runs["typer"]
        if "--json" in case:
            fast, slow = json.loads(stdout), json.loads(typer_run[1])
            for r in (fast, slow):
                r["session"].pop("duration_s")
            assert fast == slow
            assert code == typer_run[0] == 0
        else:
            assert (code, stdout, stderr) == typer_run, case
    assert runs["console"][0] == 2 and "does not exist" in runs["console"][2][-1]


_AT_START = """
import os, sys
from tracer.capture import child
release = child.GatedChild.release
def noted(self):  # the moment the traced command may exec
    heavy = [m for m in ("typer", "click", "rich", "pandas") if m in sys.modules]
    sys.stderr.write("AT_START=" + ",".join(heavy) + "\\n")
    return release(self)
child.GatedChild.release = noted
sys.argv = ["gotrace", *sys.argv[1:]]
from tracer.commands import console
console.main()
"""


@pytest.mark.parametrize("backend", ["ld-debug", "bpftrace", "bpf"])
def test_a_plain_bind_starts_its_command_before_typer_click_rich_or_pandas(backend, tmp_path):
    """The start-up budget: when a plain `gotrace bind … -- CMD` lets CMD run,
    neither Typer, click nor pandas is loaded, and with ld-debug not rich either
    (with bpftrace, the summary's renderer may load on a background thread while
    bpftrace compiles: that costs the command nothing)."""
    _need(backend)
    out = subprocess.run([sys.executable, "-c", _AT_START, "bind", "-q", "-o", str(tmp_path / "s"), "-b", backend,
                          "--", "true"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded = [line[len("AT_START="):] for line in out.stderr.splitlines() if line.startswith("AT_START=")]
    assert len(loaded) == 1, out.stderr
    heavy = set(filter(None, loaded[0].split(",")))
    assert not heavy & {"typer", "click", "pandas"}, heavy
    if backend == "ld-debug":
        assert "rich" not in heavy, heavy


def _ctrl_c_on_a_script(tmp_path, prefix: list[str]) -> tuple[int, str]:
    """A script that runs a command (behind ``prefix``: gotrace bind …, or nothing) as its background job (SIGINT ignored, as a non-interactive shell
    does for `&`), and a Ctrl-C to the script's whole process group while the job runs: the job's
    exit status as the script's `wait` reports it, and what the job wrote to stderr.

    No timing: the job's command blocks reading a FIFO; the test's open of the FIFO for writing
    returns only once the command has it open, the signal is sent then, and only after it the
    command is let go on by writing one line."""
    fifo, out = tmp_path / "go-on", tmp_path / "built"
    os.mkfifo(fifo)
    job = [*prefix, "sh", "-c", 'read x < "$0"; ls / > /dev/null; echo built > "$1"', str(fifo), str(out)]
    # the script itself outlives the Ctrl-C: it ignores SIGINT before it starts the job (set after, a signal
    # sent once the job has the FIFO open could reach the script before its trap: no "job" line)
    script = ("trap '' INT\n" + " ".join(shlex.quote(a) for a in job) + " 2>" + shlex.quote(str(tmp_path / "job.err"))
              + " &\npid=$!\nwait $pid\necho \"job $?\"\n")
    proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)  # the script leads its group, as a terminal's job would
    with open(fifo, "w") as w:  # the command is running, reading the FIFO
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: to the script's foreground group
        w.write("go\n")
    stdout, _ = proc.communicate(timeout=120)
    assert out.read_text() == "built\n"  # the job ran to its end either way
    return int(stdout.split("job ")[-1]), (tmp_path / "job.err").read_text()


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_on_a_command_that_ignores_it_leaves_a_complete_session(backend, tmp_path):
    """Oracle: the same script, the same signal, without gotrace: the command's own exit status (0).
    The command ignored SIGINT and ran to its end, every event drained: gotrace exits as the command
    did and the session is complete, its events those of the whole run (ls's, after the signal)."""
    _need(backend)
    (tmp_path / "own").mkdir()
    own, _ = _ctrl_c_on_a_script(tmp_path / "own", [])
    (tmp_path / "traced").mkdir()
    sess = tmp_path / "traced" / "s"
    gotrace = [sys.executable, "-m", "tracer", "bind", "-q", "-o", str(sess), "--backend", backend, "--"]
    traced, err = _ctrl_c_on_a_script(tmp_path / "traced", gotrace)
    assert own == 0
    assert traced == own, err
    s = load_session(sess)
    assert s.complete and s.meta["exit_code"] == own and not s.meta.get("interrupted_by"), s.meta
    assert (s.events["exe"].map(os.path.basename).astype(str) == "ls").sum() > 0
    assert "marked incomplete" not in err
