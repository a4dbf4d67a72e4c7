"""compare's per-side and per-program figures against what is known without gotrace.

Oracles: glibc's own LD_DEBUG log of a run (written by ld.so through LD_DEBUG_OUTPUT, imported
as-is), readelf's Machine and PT_INTERP of the programs, uname -m, the sessions' Parquet files read
by pandas, and tests/csrc/offcpu_lookup.c's own measure of the time one lookup was held off a CPU.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import oracles
from conftest import gotrace_cli, ld_debug_counts, require, require_backend
from tracer import bind

MACHINES = {"Advanced Micro Devices X86-64": "x86_64", "AArch64": "arm64"}  # readelf's name -> gotrace's
UNAME = {"x86_64": "x86_64", "aarch64": "arm64"}
SLOW = "gotrace_offcpu_target"
base = os.path.basename


def _compare(*args: str) -> dict:
    out = gotrace_cli("compare", "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _events(session: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((session / "events").glob("part-*.parquet"))])


def test_an_imported_log_names_the_programs_arch_and_an_empty_one_counts_nothing(tmp_path):
    """Two imported LD_DEBUG logs: the one glibc wrote for `ls -d /` (LD_DEBUG_OUTPUT) and an empty
    file. A log does not say the machine (the session's meta.json has no arch), so compare's arch is
    the program's: readelf -h's Machine of the ls that ran; that is this machine's own (uname -m), so
    nothing translated it. Bindings and processes are the log's (its binding lines, its pids). The
    empty log holds no process and no binding: 0 of each and of each kind, none failed, no latency
    measured, and a warning says that side has none."""
    ls = shutil.which("ls")
    machine = oracles.readelf_header(ls)["Machine"]
    require(machine in MACHINES and os.uname().machine in UNAME, f"readelf says {machine}: not mapped here")
    logs = tmp_path / "logs"
    logs.mkdir()
    env = dict(os.environ, LD_DEBUG="files,bindings", LD_DEBUG_OUTPUT=str(logs / "ld"))
    assert subprocess.run([ls, "-d", "/"], env=env, capture_output=True).returncode == 0
    glibc = ld_debug_counts(logs)
    assert sum(glibc.values()) > 0
    (tmp_path / "empty.log").write_text("")
    for name, src in (("ls", logs), ("empty", tmp_path / "empty.log")):
        res = gotrace_cli("import", "ld-debug", "-o", str(tmp_path / name), str(src))
        assert res.returncode == 0, res.stderr
        assert json.loads((tmp_path / name / "meta.json").read_text())["arch"] is None
    out = gotrace_cli("compare", "--json", str(tmp_path / "ls"), str(tmp_path / "empty"))
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    a, b = res["a"], res["b"]
    assert a["arch"] == MACHINES[machine] == UNAME[os.uname().machine]
    assert a["translator"] is None and a["translated_images"] == 0
    assert a["bindings"] == sum(glibc.values()) and a["processes"] == len(glibc)
    assert sum(a["by_kind"].values()) == a["bindings"]
    assert (b["processes"], b["bindings"], b["failed"], b["latency_measured"]) == (0, 0, 0, False)
    assert b["by_kind"] == {"eager": 0, "lazy": 0, "dlsym": 0}
    assert b["arch"] is None and b["translator"] is None
    assert "B (ld-debug) has no latency: latency tables compare only what both measured" in res["warnings"]
    assert res["ratio"]["bindings"] == 0  # B/A: none of A's; A/B of an empty A has no ratio
    assert _compare(str(tmp_path / "empty"), str(tmp_path / "ls"))["ratio"]["bindings"] is None
    # the library, fed the session's tables as plain pandas reads them (kind a column of strings, not the
    # reader's categorical of every kind): a kind the log has none of counts 0
    from tracer.analysis.compare import compare
    from tracer.session.reader import Session

    ev = _events(tmp_path / "ls")
    plain = Session(path=tmp_path / "ls", meta=json.loads((tmp_path / "ls" / "meta.json").read_text()), events=ev,
                    processes=pd.read_parquet(tmp_path / "ls" / "processes.parquet"),
                    images=pd.read_parquet(tmp_path / "ls" / "images.parquet"))
    counted = {k: int((ev["kind"] == k).sum()) for k in ("eager", "lazy", "dlsym")}
    assert 0 in counted.values()
    assert compare(plain, plain)["a"]["by_kind"] == counted


@pytest.fixture(scope="module")
def offcpu_prog(tmp_path_factory) -> Path:
    require(shutil.which("gcc") is not None, "gcc is not installed")
    dst = tmp_path_factory.mktemp("offcpu") / "offcpu_lookup"
    src = Path(__file__).resolve().parent / "csrc" / "offcpu_lookup.c"
    subprocess.run(["gcc", "-O1", "-rdynamic", "-pthread", "-o", str(dst), str(src), "-ldl"], check=True)
    return dst


def test_a_lookup_held_off_cpu_is_split_out_and_ranks_first(offcpu_prog, tmp_path):
    """Two bpf runs of tests/csrc/offcpu_lookup.c, the second with its one slow lookup held 50 ms off a
    CPU (the program measures the sleep itself). Per side and per program: wall time the sum of the
    Parquet's latency_ns, off-CPU the sum of offcpu_ns (at least the program's sleep), on-CPU their
    difference. The lookup-time table ranks by both sides' total: --top 1 lists the symbol with the
    largest sum of A's and B's latency (pandas), the held lookup's. The bindings ratio is the two
    Parquet row counts', B/A and A/B, to three decimals as the medians' ratio."""
    require_backend("bpf")
    slept = {}
    for name, sleep_ms, n in (("a", "0", "4"), ("b", "50", "2")):
        res = gotrace_cli("bind", "-q", "-b", "bpf", "-o", str(tmp_path / name), "--", str(offcpu_prog), sleep_ms, n)
        assert res.returncode == 0, res.stderr
        slept[name] = int(re.search(r"slept_ns=(\d+)", res.stdout)[1])
    assert slept["b"] >= 50_000_000
    a, b = tmp_path / "a", tmp_path / "b"
    res = _compare("--top", "1", str(a), str(b))
    ev = {"a": _events(a), "b": _events(b)}
    for side in ("a", "b"):
        timed = ev[side][ev[side]["latency_ns"].notna()]
        assert len(timed) and timed["offcpu_ns"].notna().all()
        wall, off = int(timed["latency_ns"].sum()), int(timed["offcpu_ns"].sum())
        assert (res[side]["resolver_ns"], res[side]["resolver_offcpu_ns"], res[side]["resolver_oncpu_ns"]) == \
            (wall, off, wall - off)
        mine = res["per_executable"][offcpu_prog.name][side]
        grp = timed[timed["exe"].map(base) == offcpu_prog.name]
        assert mine["bindings"] == int((ev[side]["exe"].map(base) == offcpu_prog.name).sum())
        assert (mine["resolver_ns"], mine["resolver_oncpu_ns"]) == (
            int(grp["latency_ns"].sum()), int(grp["latency_ns"].sum() - grp["offcpu_ns"].sum()))
    assert res["b"]["resolver_offcpu_ns"] >= slept["b"]
    totals = {side: ev[side][ev[side]["latency_ns"].notna()].groupby(ev[side]["symbol"].astype(str))["latency_ns"].sum()
              for side in ("a", "b")}
    both = (totals["a"] + totals["b"]).dropna()  # symbols timed on both sides
    assert [r["name"] for r in res["latency_by_symbol"]] == [both.idxmax()] == [SLOW]
    na, nb = len(ev["a"]), len(ev["b"])
    assert na != nb
    assert res["ratio"]["bindings"] == round(nb / na, 3)
    assert _compare(str(b), str(a))["ratio"]["bindings"] == round(na / nb, 3)


def test_relocation_time_is_the_program_that_ran_when_its_pid_execs(tmp_path):
    """`env GOTRACE_ORACLE=1 ls -d /` under bpf: one pid, two programs (env execs ls). Each ld.so
    start relocates the program's libraries, the program, then ld.so itself last (glibc's
    elf/rtld.c), so the session's relocations (relocations.parquet, read by pandas, in time order)
    fall into one batch per program, each closed by the row of PT_INTERP's file (readelf -l) and
    holding the program's own row. compare's per-program relocation time is its batch's sum: env's
    own, not charged to ls (the pid's last image); bindings per program are the Parquet's."""
    require_backend("bpf")
    env_bin, ls_bin = shutil.which("env"), shutil.which("ls")
    interp = oracles.readelf_interpreter(env_bin)
    assert interp and oracles.readelf_interpreter(ls_bin) == interp
    res = bind([env_bin, "GOTRACE_ORACLE=1", ls_bin, "-d", "/"], out=tmp_path / "s", backend="bpf",
               env=dict(os.environ))
    assert res.exit_code == 0
    rel = pd.read_parquet(tmp_path / "s" / "relocations.parquet").sort_values("ts_ns")
    batches, batch = [], []
    for path, dur in zip(rel["path"], rel["duration_ns"]):
        batch.append((base(path), int(dur)))
        if base(path) == base(interp):
            batches.append(batch)
            batch = []
    assert batch == [] and len(batches) == 2
    expected = {}
    for prog in (env_bin, ls_bin):
        (mine,) = [bt for bt in batches if base(prog) in {p for p, _d in bt}]
        expected[base(prog)] = sum(d for _p, d in mine)
    out = _compare(str(tmp_path / "s"), str(tmp_path / "s"))
    ev = _events(tmp_path / "s")
    for name, total in expected.items():
        row = out["per_executable"][name]["a"]
        assert row["relocation_ns"] == total, (name, row, batches)
        assert row["bindings"] == int((ev["exe"].map(base) == name).sum())
