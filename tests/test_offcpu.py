"""Off-CPU time within a lookup (events' offcpu_ns), and budgets that identical runs keep.

The oracle is tests/csrc/offcpu_lookup.c itself: one dlsym whose symbol name lies on a
userfaultfd page, so ld.so's _dl_lookup_symbol_x blocks on its first read of the name until the
program's handler thread, after a sleep it times with clock_gettime, fills the page. The
program prints that sleep (slept_ns), its own clock around the dlsym (dlsym_ns) and the id of the
thread that made it (not the process's, so a tracer keyed by process would be caught): the block
lies inside the lookup, so slept_ns <= offcpu_ns <= latency_ns <= dlsym_ns, and the lookup's
time on a CPU (latency - offcpu) is a small part of the sleep. The N other dlsym lookups are
timed by the program too (oncpu_dlsym_ns, their sum): no lookup's latency can exceed it.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import gotrace_cli, require, require_backend

SRC = Path(__file__).resolve().parent / "csrc" / "offcpu_lookup.c"
SLOW, OTHER = "gotrace_offcpu_target", "gotrace_oncpu_target"
OUT = re.compile(r"slept_ns=(\d+) dlsym_ns=(\d+) oncpu_dlsym_ns=(\d+) looker_tid=(\d+)")


@pytest.fixture(scope="module")
def prog(tmp_path_factory) -> Path:
    require(shutil.which("gcc") is not None, "gcc is not installed")
    dst = tmp_path_factory.mktemp("offcpu") / "offcpu_lookup"
    subprocess.run(["gcc", "-O1", "-rdynamic", "-pthread", "-o", str(dst), str(SRC), "-ldl"], check=True)
    return dst


def capture(prog: Path, out: Path, backend: str, sleep_ms: int, n: int) -> dict[str, int]:
    """A session of the program, and what the program measured itself."""
    res = gotrace_cli("bind", "-q", "-b", backend, "-o", str(out), "--", str(prog), str(sleep_ms), str(n))
    assert res.returncode == 0, res.stderr
    m = OUT.search(res.stdout)
    assert m, res.stdout
    return {"slept_ns": int(m[1]), "dlsym_ns": int(m[2]), "others_ns": int(m[3]), "tid": int(m[4])}


def events(session: Path):
    from tracer import load_session

    return load_session(session).events


@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_a_lookup_blocked_off_cpu_is_measured_so(prog, tmp_path, backend):
    """offcpu_ns of the blocked lookup covers the sleep the program measured, and the rest of its
    latency (on a CPU) is a small part of it; lookups that nothing blocked have offcpu_ns within their
    latency, 0 for most; report shows the blocked one first among the slowest, split the same way."""
    require_backend(backend)
    n = 300
    told = capture(prog, tmp_path / "s", backend, 50, n)
    ev = events(tmp_path / "s")
    sym = ev["symbol"].astype(str)
    (slow,) = ev[sym == SLOW].itertuples()
    assert slow.tid == told["tid"] != slow.pid  # a thread of its own
    assert told["slept_ns"] <= slow.offcpu_ns <= slow.latency_ns <= told["dlsym_ns"]
    assert slow.latency_ns - slow.offcpu_ns < told["slept_ns"] / 10
    others = ev[sym == OTHER]
    assert len(others) == n
    assert (others["offcpu_ns"] >= 0).all() and (others["offcpu_ns"] <= others["latency_ns"]).all()
    assert int(others["latency_ns"].sum()) <= told["others_ns"]
    assert (others["offcpu_ns"] == 0).sum() > n / 2
    # every lookup that returned has both; the contract's type
    timed = ev["latency_ns"].notna()
    assert ev.loc[timed, "offcpu_ns"].notna().all() and str(ev["offcpu_ns"].dtype) == "Int64"

    rep = json.loads(gotrace_cli("report", str(tmp_path / "s"), "--json", "--top", "3").stdout)
    top = rep["slowest_lookups"][0]
    assert (top["symbol"], top["kind"]) == (SLOW, "dlsym")
    assert top["exe"] == str(prog) and top["offcpu_ns"] >= told["slept_ns"]
    assert top["oncpu_ns"] == top["latency_ns"] - top["offcpu_ns"]
    every = rep["latency_ns"]["all"]
    assert every["oncpu"]["offcpu_total"] >= told["slept_ns"]
    assert every["total"] - every["oncpu"]["offcpu_total"] == every["oncpu"]["total"]
    text = gotrace_cli("report", str(tmp_path / "s"), "--top", "3").stdout
    assert "slowest lookups" in text and re.search(rf"{SLOW}\s+offcpu_lookup \(\d+\)\s+dlsym", text)


def test_a_blocked_lookup_breaks_the_wall_budget_but_not_the_on_cpu_one(prog, tmp_path):
    """The same workload twice; in the new run one lookup is held 1 s (the program's own measure).
    resolver+P% gates on-CPU time and keeps, as do the median and trimmed forms; the wall sum
    breaks. Checked against the program: the wall sum of the new run holds the sleep, its on-CPU
    sum leaves it out.

    P is 100, not the README's 20: two identical runs of this 2 ms (on-CPU) workload differed by up
    to 23 % here with other work on the machine's two cores (the median lookup by 15 %: every
    lookup a little slower), which a test must not depend on; the sleep makes the wall sum ~400
    times the baseline's, so 100 % still tells the statistics apart by orders of magnitude."""
    require_backend("bpf")
    n = 5000
    capture(prog, tmp_path / "a", "bpf", 0, n)
    new = capture(prog, tmp_path / "b", "bpf", 1000, n)
    assert new["slept_ns"] >= 1_000_000_000
    budgets = "resolver+100%,resolver-median+100%,resolver-trimmed+100%,resolver-wall+100%"
    res = gotrace_cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", "--fail-on", budgets)
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    got = {b["budget"].removesuffix("+100%"): b for b in out["budgets"]}
    wall, oncpu = got["resolver-wall"], got["resolver"]
    assert wall["broken"] and wall["new"] >= new["slept_ns"]  # the sleep is in the wall sum ...
    assert oncpu["statistic"] == "resolver-oncpu"
    assert oncpu["new"] <= wall["new"] - new["slept_ns"]  # ... and not in the on-CPU one
    assert not oncpu["broken"], oncpu["line"]
    assert not got["resolver-median"]["broken"] and not got["resolver-trimmed"]["broken"]
    (line,) = [l for l in res.stderr.splitlines() if l.startswith("budget broken:")]
    assert line.startswith("budget broken: resolver-wall+100%: resolver wall time ")
    # compare shows each side's split
    b = out["b"]
    assert b["resolver_offcpu_ns"] >= new["slept_ns"]
    assert b["resolver_ns"] == b["resolver_oncpu_ns"] + b["resolver_offcpu_ns"] == wall["new"]
    assert out["a"]["resolver_oncpu_ns"] == oncpu["baseline"]
    # the median and the trimmed sum, from the events as the program's lookups make them
    ev = events(tmp_path / "b")
    lat = sorted(int(x) for x in ev["latency_ns"].dropna())
    assert got["resolver-median"]["new"] == lat[(len(lat) - 1) // 2]
    assert got["resolver-trimmed"]["new"] == sum(lat[:len(lat) - math.ceil(len(lat) / 100)])
    assert max(lat) >= new["slept_ns"] > got["resolver-trimmed"]["new"]  # the blocked lookup is trimmed


def _without_offcpu(src: Path, dst: Path) -> None:
    """A copy of a session as gotrace wrote it before events had offcpu_ns."""
    shutil.copytree(src, dst)
    for part in (dst / "events").glob("part-*.parquet"):
        t = pq.read_table(part)
        pq.write_table(t.drop(["offcpu_ns"]), part)
        assert "offcpu_ns" not in pq.read_schema(part).names


def test_sessions_without_off_cpu_time_read_as_not_measured(prog, tmp_path):
    """An older session (no offcpu_ns in its files) reads with offcpu_ns null; report leaves the on-CPU
    split out; resolver+P% falls back to wall time and says so; resolver-oncpu is an error in one line.
    An ld-debug session never has it."""
    require_backend("bpf")
    capture(prog, tmp_path / "new", "bpf", 0, 10)
    _without_offcpu(tmp_path / "new", tmp_path / "old")
    ev = events(tmp_path / "old")
    assert ev["offcpu_ns"].isna().all() and len(ev) and ev["latency_ns"].notna().any()
    rep = json.loads(gotrace_cli("report", str(tmp_path / "old"), "--json").stdout)
    assert rep["latency_ns"]["all"]["oncpu"] is None
    assert rep["slowest_lookups"] and rep["slowest_lookups"][0]["offcpu_ns"] is None
    assert "on-CPU" not in gotrace_cli("report", str(tmp_path / "old")).stdout
    res = gotrace_cli("compare", str(tmp_path / "old"), str(tmp_path / "new"), "--json", "--fail-on", "resolver+1000%")
    (b,) = json.loads(res.stdout)["budgets"]
    assert b["statistic"] == "resolver-wall" and "as the baseline measured no time switched out" in b["line"]
    res = gotrace_cli("compare", str(tmp_path / "old"), str(tmp_path / "new"), "--fail-on", "resolver-oncpu+20%")
    assert res.returncode == 2 and "the baseline (bpf) did not measure the time lookups spent switched out" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    ld = tmp_path / "ld"
    assert gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(ld), "--", str(prog), "0", "3").returncode == 0
    ev = events(ld)
    assert len(ev) and ev["offcpu_ns"].isna().all()


def test_the_writer_fills_off_cpu_time_a_chunk_lacks(tmp_path):
    """A chunk built without offcpu_ns (a notebook, older code) is saved with it null, not refused."""
    from tracer.session.schema import EVENTS
    from tracer.session.writer import SessionWriter, prepare_directory

    path = prepare_directory(tmp_path / "s", False)
    w = SessionWriter(path, {"argv": ["x"]})
    cols = {f.name: pa.array([None], f.type) for f in EVENTS if f.name != "offcpu_ns"}
    cols.update(kind=pa.array(["lazy"]), resolved=pa.array([True]), latency_ns=pa.array([5], pa.int64()))
    w.append_events(pa.table(cols))
    w.write_table("processes", [])
    w.finish(True)
    assert pq.read_table(next((path / "events").glob("part-*.parquet")))["offcpu_ns"].to_pylist() == [None]


def test_the_reports_on_cpu_figures_are_the_events_own_whatever_the_chunking():
    """Percentiles (nearest rank), totals, the tail share and the slowest lookups, computed here in plain
    Python from the rows, equal the tally's, fed in any chunks in any order; rows without off-CPU time
    (a lookup that never returned) stay out of the on-CPU figures."""
    import random

    from tracer.analysis.tally import EventTally

    rnd = random.Random(7)
    n = 4000
    lat = [rnd.randrange(1, 5000) if rnd.random() > 0.2 else None for _ in range(n)]
    off = [None if x is None or rnd.random() < 0.05 else (x if rnd.random() < 0.01 else rnd.randrange(0, x // 3 + 1))
           for x in lat]
    table = pa.table({
        "kind": [rnd.choice(["eager", "lazy", "dlsym"]) for _ in range(n)], "resolved": [True] * n,
        "symbol": [f"s{rnd.randrange(40)}" for _ in range(n)], "provider": [f"/lib/p{rnd.randrange(3)}.so" for _ in range(n)],
        "exe": [rnd.choice(["/bin/a", "/bin/b"]) for _ in range(n)], "pid": [rnd.randrange(3) for _ in range(n)],
        "requester": ["/bin/a"] * n, "version": [None] * n,
        "latency_ns": pa.array(lat, pa.int64()), "offcpu_ns": pa.array(off, pa.int64()),
    })

    def tally(t, cuts):
        e = EventTally()
        for a, b in zip([0, *cuts], [*cuts, t.num_rows]):
            e.add(t.slice(a, b - a))
        return e.sections(10)

    whole = tally(table, [])
    assert tally(table.take(list(range(n - 1, -1, -1))), [3, 1000, 2999]) == whole
    assert tally(table, sorted(random.Random(1).sample(range(1, n), 9))) == whole
    every = whole["latency_ns"]["all"]
    timed = sorted(x for x in lat if x is not None)
    on = sorted(x - o for x, o in zip(lat, off) if x is not None and o is not None)
    assert every["total"] == sum(timed) and every["oncpu"]["total"] == sum(on)
    assert every["oncpu"]["count"] == len(on) < len(timed)
    assert every["oncpu"]["offcpu_total"] == sum(o for o in off if o is not None)
    for q, key in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
        assert every["oncpu"][key] == on[round(q * (len(on) - 1))]
    k = math.ceil(len(timed) / 1000)
    assert every["tail"]["lookups"] == k and every["tail"]["total"] == sum(timed[-k:])
    slowest = whole["slowest_lookups"]
    assert [r["latency_ns"] for r in slowest] == sorted(timed, reverse=True)[:10]
    for r in slowest:
        assert r["oncpu_ns"] == (None if r["offcpu_ns"] is None else r["latency_ns"] - r["offcpu_ns"])


def test_resolver_statistics_are_read_or_refused_in_one_line(tmp_path):
    """The named statistics parse, take a time, and a misspelt one is refused before any session is read."""
    from tracer.analysis.budgets import parse_budgets

    got = parse_budgets(["resolver-oncpu+20%,resolver-median+500ns", "resolver-trimmed+1ms,resolver-wall+5%"])
    assert [(b.metric, b.amount, b.percent) for b in got] == [
        ("resolver-oncpu", 20, True), ("resolver-median", 500, False), ("resolver-trimmed", 1_000_000, False),
        ("resolver-wall", 5, True)]
    for bad, says in (("resolver-mean+20%", "not understood"), ("resolver-median+20", "say the unit of time"),
                      ("resolver-+20%", "not understood")):
        res = gotrace_cli("compare", str(tmp_path / "x"), str(tmp_path / "x"), "--fail-on", bad)
        assert res.returncode == 2 and says in res.stderr, (bad, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1


def test_resolver_statistics_by_hand():
    """Four lookups, 1, 2, 3 and 100 µs, the slow one 99 µs switched out: the median is a lookup's own
    (the lower one of an even count), the trimmed sum leaves out the slowest 1 % (at least one lookup),
    on-CPU time subtracts the time switched out; a session missing one lookup's off-CPU time has none."""
    import pandas as pd

    from tracer.analysis.budgets import measures
    from tracer.session import schema
    from tracer.session.reader import Session

    def session(offcpu):
        ev = pd.DataFrame({"symbol": ["a", "b", "c", "d"], "kind": ["lazy"] * 4, "resolved": [True] * 4,
                           "provider": ["/lib/x.so"] * 4, "requester": ["/bin/p"] * 4, "exe": ["/bin/p"] * 4,
                           "version": [None] * 4, "pid": [1] * 4,
                           "latency_ns": pd.array([1000, 2000, 3000, 100_000], "Int64"),
                           "offcpu_ns": pd.array(offcpu, "Int64")})
        return Session(path=Path("x"), meta={"backend": "bpf"}, events=ev, processes=schema.empty("processes"),
                       images=schema.empty("images"))

    m = measures(session([0, 0, 0, 99_000]))
    assert (m["resolver-wall"], m["resolver-oncpu"], m["resolver-median"], m["resolver-trimmed"]) == (
        106_000, 7_000, 2000, 6000)
    assert measures(session([0, None, 0, 99_000]))["resolver-oncpu"] is None
