"""compare, plot, export and the analysis notebook, on sessions captured here.

Oracles are computed in the tests from the session's own events with plain
pandas/numpy (medians, binding sets, counts), the Chrome file is checked
against the Trace Event Format's rules, CSV and Parquet are read back, the
pictures are checked as PNG/SVG files, and the notebook is executed headless.
"""
from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from conftest import VENV_BIN, require_bpftrace, require_lldb, run_notebook
from tracer import bind, load_session
from tracer.analysis.compare import compare, object_name

GOTRACE = str(VENV_BIN / "gotrace")


@pytest.fixture(scope="module")
def pair(modes_bins, tmp_path_factory):
    """The lazy modes program under bpftrace (A) and under lldb (B): both measure latency."""
    require_bpftrace()
    require_lldb()
    out = tmp_path_factory.mktemp("analysis")
    prog = str(modes_bins["lazy"])
    a = bind([prog, "0.25"], out=out / "a", backend="bpftrace", env=dict(os.environ)).session
    b = bind([prog, "0.25"], out=out / "b", backend="lldb", env=dict(os.environ)).session
    c = bind(["/bin/true"], out=out / "c", backend="ld-debug", env=dict(os.environ)).session
    return a, b, c


def _set(ev):
    ok = ev[ev["resolved"]]
    return {(object_name(r), str(s), object_name(p)) for r, s, p in zip(ok["requester"], ok["symbol"], ok["provider"])}


def test_compare_against_pandas(pair):
    a, b, _ = pair
    sa, sb = load_session(a), load_session(b)
    res = compare(sa, sb, top=1000)
    assert res["in_both"] == len(_set(sa.events) & _set(sb.events))
    assert {tuple(x) for x in res["only_in_a"]} == _set(sa.events) - _set(sb.events)
    assert res["a"]["by_kind"] == {k: int((sa.events["kind"] == k).sum()) for k in ("eager", "lazy", "dlsym")}
    assert res["latency_by_library"], "both sessions measure latency"
    for row in res["latency_by_library"]:
        for side, s in (("a", sa), ("b", sb)):
            ev = s.events
            lat = ev.loc[ev["provider"].map(object_name) == row["name"], "latency_ns"].dropna().astype("int64")
            assert row[side]["median_ns"] == int(np.median(lat)) and row[side]["count"] == len(lat)
        assert row["median_ratio"] == round(row["b"]["median_ns"] / row["a"]["median_ns"], 3)
    # B is the lldb session: its latencies are named for what they are, and the two instruments differ
    assert res["warnings"] == [
        "B (lldb): latencies are calibrated estimates (stop-to-stop minus lldb's own stop/resume cost), not "
        "measurements: rank with them",
        "latencies measured differently: A by uprobes, B by lldb; a ratio mixes the instruments' own costs with the "
        "workload's (compare like with like where both can run, e.g. --backend lldb on both sides)"]
    cal = sb.meta["latency_method"]["calibration"]
    assert res["a"]["latency_method"]["instrument"] == "uprobes"
    assert res["b"]["latency_method"] == {"instrument": "lldb", "calibration_ns": cal["median_ns"],
                                          "text": res["b"]["latency_method"]["text"]}
    assert f"{cal['median_ns'] / 1e3:,.1f} µs over {cal['rounds']} rounds" in res["b"]["latency_method"]["text"]
    # per symbol, as per library: pandas' medians over the symbols both sides timed
    both = set(sa.events.loc[sa.events["latency_ns"].notna(), "symbol"].astype(str)) & \
        set(sb.events.loc[sb.events["latency_ns"].notna(), "symbol"].astype(str))
    assert {r["name"] for r in res["latency_by_symbol"]} == both
    for row in res["latency_by_symbol"]:
        lat = sb.events.loc[sb.events["symbol"].astype(str) == row["name"], "latency_ns"].dropna().astype("int64")
        assert row["b"]["median_ns"] == int(np.median(lat))
    # one instrument on both sides: no such warning
    assert not [w for w in compare(sa, sa)["warnings"] if "measured differently" in w]


def test_compare_cli_warns_on_different_workloads(pair, tmp_path):
    a, _, c = pair
    out = subprocess.run([GOTRACE, "compare", "--json", "--plot", str(tmp_path / "p.png"), str(a), str(c)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "different commands" in out.stderr and "has no latency" in out.stderr
    assert json.loads(out.stdout)["compare_version"] == 1
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chrome_trace_is_valid_trace_event_json(pair, tmp_path):
    a, _, _ = pair
    dest = tmp_path / "t.json"
    out = subprocess.run([GOTRACE, "export", str(a), "--format", "chrome", "-o", str(dest)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    trace = json.loads(dest.read_text())
    events = trace["traceEvents"]
    s = load_session(a)
    named = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    slices = [e for e in events if e["ph"] in ("X", "i")]
    assert len(slices) == len(s.events)
    for e in slices:
        assert isinstance(e["name"], str) and isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0 and e["pid"] in named
        if e["ph"] == "X":
            assert e["dur"] == e["args"]["latency_raw_ns"] / 1000.0 and e["dur"] >= 0
    assert all(e["ph"] in ("M", "X", "i") for e in events)


def test_csv_and_parquet_round_trip(pair, tmp_path):
    a, _, _ = pair
    s = load_session(a)
    for fmt, reader in (("csv", pd.read_csv), ("parquet", pd.read_parquet)):
        dest = tmp_path / f"e.{fmt}"
        out = subprocess.run([GOTRACE, "export", str(a), "-f", fmt, "-o", str(dest)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        back = reader(dest)
        assert len(back) == len(s.events) and list(back.columns) == list(s.events.columns)
        assert sorted(back["symbol"].astype(str)) == sorted(s.events["symbol"].astype(str))


def test_plot_png_and_svg(pair, tmp_path):
    a, b, _ = pair
    for name in ("one.png", "two.svg"):
        args = [str(a)] if name == "one.png" else [str(a), str(b)]
        out = subprocess.run([GOTRACE, "plot", *args, "-o", str(tmp_path / name)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    png = (tmp_path / "one.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    svg = ET.parse(tmp_path / "two.svg").getroot()
    assert svg.tag.endswith("svg")
    text = (tmp_path / "two.svg").read_text()
    # matplotlib keeps each label's text beside its glyph paths; B is an lldb session, whose figure is
    # its own time per lookup, not the resolver's latency
    assert "time per lookup" in text and "resolver latency" not in text
    only_bpftrace = tmp_path / "a.svg"
    assert subprocess.run([GOTRACE, "plot", str(a), "-o", str(only_bpftrace)], capture_output=True).returncode == 0
    assert "resolver latency" in only_bpftrace.read_text()


def test_plot_of_two_instruments_names_them_and_warns(pair):
    """Per symbol as per library, each side's instrument in the legend, the mismatch said in the figure."""
    from tracer.analysis.plot import figure

    a, b, _ = pair
    sa, sb = load_session(a), load_session(b)
    fig = figure([sa, sb])
    ax1, ax2, ax_sym, ax3 = fig.axes
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "timed by uprobes" in legend[0] and "timed by lldb" in legend[1], legend
    assert any("measured differently: A by uprobes, B by lldb" in t.get_text() for t in fig.texts)
    timed = [s.events[s.events["latency_ns"].notna()] for s in (sa, sb)]
    both = set(timed[0]["symbol"].astype(str)) & set(timed[1]["symbol"].astype(str))
    shown = [t.get_text() for t in ax_sym.get_yticklabels()]
    assert shown and set(shown) <= both and "in both" in ax_sym.get_title()
    counts = pd.concat(timed)["symbol"].astype(str).value_counts()
    assert [counts[x] for x in shown] == sorted((counts[x] for x in shown), reverse=True)  # most-bound first
    assert not any("measured differently" in t.get_text() for t in figure([sa, sa]).texts)


def test_analysis_bad_input(pair, tmp_path):
    a, _, _ = pair
    for argv, message in ((["plot", str(a), "-o", str(tmp_path / "x.jpg")], "must end in .png or .svg"),
                          (["export", str(a), "-f", "xml", "-o", str(tmp_path / "x")], "unknown format"),
                          (["export", str(a), "-f", "csv", "-o", "/nonexistent/dir/x.csv"], "does not exist"),
                          (["compare", str(a), str(tmp_path)], "not a gotrace session")):
        out = subprocess.run([GOTRACE, *argv], capture_output=True, text=True)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_notebook_runs_headless(pair, tmp_path):
    a, b, _ = pair
    outputs = run_notebook(a, b, tmp_path)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") == "display_data" and "image/png" in o.get("data", {}) for o in outputs)


@pytest.fixture(scope="module")
def big_pair(tmp_path_factory):
    """Two ld-debug sessions of real programs that differ by thousands of bindings:
    `python3 -c 'import ssl'` (libpython, libssl, libcrypto, C extensions) and `git --version`."""
    out = tmp_path_factory.mktemp("bigpair")
    for name, argv in (("ssl", ["python3", "-c", "import ssl"]), ("git", ["git", "--version"])):
        res = subprocess.run([GOTRACE, "bind", "-q", "-b", "ld-debug", "-o", str(out / name), "--", *argv],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    return out / "ssl", out / "git"


def _parquet_binding_set(session) -> set:
    """(requester, symbol, provider) by file name, from the session's Parquet parts with plain pandas."""
    ev = pd.concat([pd.read_parquet(p) for p in sorted((session / "events").glob("part-*.parquet"))])
    ok = ev[ev["resolved"]]
    base = lambda s: os.path.basename(str(s))  # noqa: E731
    return set(zip(ok["requester"].map(base), ok["symbol"].astype(str), ok["provider"].map(base)))


def test_compare_counts_are_whole_and_the_lists_say_they_are_cut(big_pair, tmp_path):
    """Oracle: pandas reading the two sessions' Parquet parts. compare's only-in counts are every
    binding of one side (thousands here), never the length of the list it cuts at 500; the text
    says how many it lists."""
    a, b = big_pair
    sa, sb = _parquet_binding_set(a), _parquet_binding_set(b)
    assert len(sa - sb) > 1000, "the workload must differ by more than a cut list holds"
    out = subprocess.run([GOTRACE, "compare", "--json", str(a), str(b)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["only_in_a_count"] == len(sa - sb) and res["only_in_b_count"] == len(sb - sa)
    assert res["in_both"] == len(sa & sb)
    assert len(res["only_in_a"]) < res["only_in_a_count"]  # the list is cut …
    assert res["only_in_listed_max"] == 500 == len(res["only_in_a"])  # … where README says: 500 rows
    assert {tuple(r) for r in res["only_in_a"]} <= {tuple(r) for r in (sa - sb)}  # … and holds real rows
    text = subprocess.run([GOTRACE, "compare", "--top", "3", str(a), str(b)], capture_output=True, text=True).stdout
    assert f"only in A: {len(sa - sb):,}; only in B: {len(sb - sa):,}" in text
    assert f"only in A: 3 of {len(sa - sb):,} listed" in text
    # the notebook counts with pandas and checks compare's counts against its own
    outputs = run_notebook(a, b, tmp_path)
    assert not [o for o in outputs if o.get("output_type") == "error"], outputs
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert f"only in A: {len(sa - sb):,}, only in B: {len(sb - sa):,}" in printed


def _parquet_events(session) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((session / "events").glob("part-*.parquet"))])


def test_compare_figures_are_the_sessions_own(tmp_path):
    """compare's resolver figures, per side and per program, against the sessions' Parquet parts read
    by pandas: wall time the sum of latency_ns, off-CPU the sum of offcpu_ns (bpf measures both), on-CPU
    their difference; the relocation times per image, the relocations table's (bpf times each
    _dl_relocate_object); one program run with different arguments is called a different command.
    Two bpf runs: `ls -d /` and `ls -d /tmp`."""
    require_bpftrace()
    sessions = {}
    for name, argv in (("a", ["ls", "-d", "/"]), ("b", ["ls", "-d", "/tmp"])):
        res = bind(argv, out=tmp_path / name, backend="bpf", env=dict(os.environ))
        assert res.exit_code == 0
        sessions[name] = tmp_path / name
    out = subprocess.run([GOTRACE, "compare", "--json", str(sessions["a"]), str(sessions["b"])],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert any(w.startswith("different commands") for w in res["warnings"]), res["warnings"]
    base = lambda p: os.path.basename(str(p))  # noqa: E731
    for side in ("a", "b"):
        ev = _parquet_events(sessions[side])
        timed = ev[ev["latency_ns"].notna()]
        assert len(timed) and timed["offcpu_ns"].notna().all()
        wall, off = int(timed["latency_ns"].sum()), int(timed["offcpu_ns"].sum())
        assert (res[side]["resolver_ns"], res[side]["resolver_offcpu_ns"], res[side]["resolver_oncpu_ns"]) == \
            (wall, off, wall - off)
        for exe, grp in timed.groupby(timed["exe"].map(base)):
            mine = res["per_executable"][exe][side]
            assert mine["bindings"] == int((ev["exe"].map(base) == exe).sum())
            assert mine["resolver_ns"] == int(grp["latency_ns"].sum())
            assert mine["resolver_oncpu_ns"] == int(grp["latency_ns"].sum() - grp["offcpu_ns"].sum())
    rel = {side: pd.read_parquet(sessions[side] / "relocations.parquet") for side in ("a", "b")}
    assert len(rel["a"]) and len(rel["b"])
    listed = {row["name"]: row for row in res["relocation_by_image"]}
    assert listed
    for name, row in listed.items():
        for side in ("a", "b"):
            # compare names the dynamic linker "ld.so" whatever its file is called (ld-linux-x86-64.so.2 here)
            r = rel[side][rel[side]["path"].map(lambda p: "ld.so" if base(p).startswith("ld-linux") else base(p)) == name]
            assert row[side]["total_ns"] == int(r["duration_ns"].sum()), (name, side)
