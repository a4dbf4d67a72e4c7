"""`gotrace import ld-debug DIR`: LD_DEBUG_OUTPUT files of a process tree, read back.

The oracle is the files themselves, read here by their line prefixes (conftest.ld_debug_counts
reads the same way): which process bound which symbol, and in which order glibc wrote the
lines. The log has no times, so an imported session's event times must keep that order.
For a reused pid, gotrace keeps the logs of its gone processes as ld.PID.done, ld.PID.2.done …
(capture/ld_debug/backend.py); the program in each is the file's own "transferring control" line.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import defaultdict

import pytest

from conftest import gotrace_cli, require
from tracer import load_session

# a record starts a line, or follows the quote where another process's line cut one in two
# (glibc writes a binding line in two writes: tests/oracles.py, ld_debug_lines)
LINE = re.compile(r"(?m)(?:^|(?<='))\s*(\d+):\tbinding file .+? \[\d+\] to .+? \[\d+\]: \S+ symbol `([^']+)'")


def file_account(logdir) -> dict[int, list[str]]:
    """pid -> the symbols glibc bound for it, in the order of the lines (files in name order)."""
    out: dict[int, list[str]] = defaultdict(list)
    for path in sorted(logdir.iterdir()):
        for m in LINE.finditer(path.read_text(errors="replace")):
            out[int(m.group(1))].append(m.group(2))
    return dict(out)


@pytest.fixture
def tree_logs(tmp_path, modes_bins):
    """LD_DEBUG_OUTPUT of a shell running the lazy and the -z now modes programs."""
    require(shutil.which("sh") is not None, "no sh")
    logs = tmp_path / "logs"
    logs.mkdir()
    subprocess.run(["sh", "-c", f"{modes_bins['lazy']} 0.5 && {modes_bins['now']} 0.5"], stdout=subprocess.DEVNULL,
                   env=dict(os.environ, LD_DEBUG="files,bindings,reloc", LD_DEBUG_OUTPUT=str(logs / "ld")), check=True)
    return logs


def test_a_directory_of_ld_debug_output_files(tree_logs, tmp_path):
    theirs = file_account(tree_logs)
    assert len(theirs) >= 3  # the shell and its two programs
    (tree_logs / "notes.txt").write_text("not an LD_DEBUG file\n")  # named otherwise: left alone
    out = gotrace_cli("import", "ld-debug", str(tree_logs), "-o", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    ev = load_session(tmp_path / "s").events
    mine = {int(pid): list(g.sort_values("ts_ns", kind="stable")["symbol"].astype(str))
            for pid, g in ev.groupby("pid", observed=True)}
    assert mine == theirs  # every binding in its process, in glibc's order
    assert ev["ts_ns"].is_unique
    meta = load_session(tmp_path / "s").meta
    assert meta["complete"] is True and meta["lost_events"] == 0  # every line was read and written


def test_an_import_without_o_is_named_by_its_time_and_format(tree_logs, tmp_path):
    """No -o: the session goes to gotrace-sessions/<time>-import-ld-debug under the current directory."""
    work = tmp_path / "work"
    work.mkdir()
    out = gotrace_cli("import", "ld-debug", str(tree_logs), cwd=work)
    assert out.returncode == 0, out.stderr
    (made,) = list((work / "gotrace-sessions").iterdir())
    assert re.fullmatch(r"\d{8}-\d{6}-import-ld-debug", made.name), made.name
    assert sum(len(v) for v in file_account(tree_logs).values()) == len(load_session(made).events)


def test_a_reused_pids_kept_logs_in_the_order_they_were_written(tree_logs, tmp_path):
    """Three processes' logs under one pid, as gotrace keeps them (ld.7.2.done, ld.7.10.done, then
    the live ld.7): the programs follow one another in that order (10 after 2: by number)."""
    logs = sorted(p for p in tree_logs.iterdir())
    progs = []
    for p in logs:
        m = re.search(r"transferring control: (\S+)", p.read_text())
        progs.append(os.path.basename(m.group(1)) if m else None)
    assert len(logs) == 3 and None not in progs, progs
    reused = tmp_path / "reused"
    reused.mkdir()
    names = ["ld.7.2.done", "ld.7.10.done", "ld.7"]
    for src, name in zip(logs, names, strict=True):
        text = re.sub(r"(?m)^(\s*)\d+:", lambda m: f"{m.group(1)}7:", src.read_text())  # written by pid 7
        (reused / name).write_text(text)
    out = gotrace_cli("import", "ld-debug", str(reused), "-o", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    s = load_session(tmp_path / "s")
    ev = s.events.sort_values("ts_ns", kind="stable")
    order = list(dict.fromkeys(ev["exe"].astype(str).map(os.path.basename)))
    assert order == progs  # ld.7.2.done's program first, ld.7.10.done's next, the live ld.7's last


def test_why_reads_an_imported_ld_debug_log_by_glibcs_rules(modes_bins, tmp_path):
    """An imported LD_DEBUG log is a Linux session: `why` replays glibc's lookup on it. Oracle:
    LD_DEBUG=symbols,bindings of the same run — the objects ld.so searched for cos, in order, and
    the one it bound (tests/oracles.py reads the lines)."""
    from oracles import ld_debug_bindings

    log = tmp_path / "ld.log"
    with open(log, "wb") as fh:
        subprocess.run([modes_bins["lazy"], "0.5"], stderr=fh, stdout=subprocess.DEVNULL, check=True,
                       env=dict(os.environ, LD_DEBUG="files,symbols,bindings"))
    theirs = [b for b in ld_debug_bindings(log.read_text()) if b["symbol"] == "cos"]
    assert len(theirs) == 1 and theirs[0]["searched"], theirs
    out = gotrace_cli("import", "ld-debug", str(log), "-o", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    assert load_session(tmp_path / "s").meta["os"] == "Linux"
    why = gotrace_cli("why", str(tmp_path / "s"), "cos", "--json")
    assert why.returncode == 0, why.stderr
    (mine,) = json.loads(why.stdout)["lookups"]
    assert mine["chosen"] == mine["replayed"] == theirs[0]["provider"] and mine["agrees"] is True
    assert mine["searched"] == theirs[0]["searched"]


def test_a_log_glibc_wrote_whole_has_no_malformed_records(tree_logs, tmp_path):
    """Every line of LD_DEBUG_OUTPUT files is glibc's own (the files were written by ld.so alone):
    the report of their import counts no malformed record and makes no lower-bound claim."""
    out = gotrace_cli("import", "ld-debug", str(tree_logs), "-o", str(tmp_path / "s"), "--json")
    assert out.returncode == 0, out.stderr
    session = json.loads(out.stdout)["session"]
    assert session["malformed_records"] == 0 and session["counts_lower_bound"] is False
