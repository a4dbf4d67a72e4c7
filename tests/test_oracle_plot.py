"""`gotrace plot` draws what the sessions hold: every point, range, step and count against the Parquet.

The oracle is each session read without gotrace: its events' Parquet parts by pyarrow, meta.json
by json, and the statistics recomputed here with numpy (quantiles, sorted latencies, counts per
library and per symbol). The sessions come from real recordings, so no test here traces (it runs
in seconds and takes no turn on ld.so's uprobes): tests/golden/bpftrace/modes-fork-exec.tsv
(bindsnoop.bt's output of `bash -c "/tmp/modes-lazy 0.25; exec /tmp/modes-lazy 1"` on Debian 12,
every lookup timed from uprobe entry to uretprobe of _dl_lookup_symbol_x), saved as one session
per program image (bash, the forked modes-lazy, the exec'd modes-lazy) and whole; and
tests/golden/ld_debug (glibc's LD_DEBUG of the same run, no latency) through `gotrace import`.
Libraries are named by file name, every dynamic linker as `ld.so` (analysis/naming.py's rule,
written out here).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import gotrace_cli
from tracer import load_session
from tracer.capture.bpftrace.backend import LATENCY_METHOD
from tracer.capture.bpftrace.decode import BpftraceDecoder
from tracer.errors import GotraceError
from tracer.session.writer import SessionWriter, prepare_directory

GOLDEN = Path(__file__).parent / "golden"


def _lib(path) -> str | None:
    if path is None:
        return None
    name = os.path.basename(str(path))
    return "ld.so" if name.startswith(("ld-linux", "ld64.so")) else name


def _write(path: Path, table: pa.Table, processes: list[dict], start_ns: int) -> Path:
    w = SessionWriter(prepare_directory(path, force=False), {"backend": "bpftrace", "arch": "x86_64", "os": "Linux", "translation": None,
                             "latency_method": LATENCY_METHOD, "start_ns": start_ns})
    w.append_events(table)
    w.write_table("processes", processes)
    w.finish(True)
    return path


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """The golden recording as sessions: "all", one per program image ("bash", "child", "exec"), and
    "ld" (the LD_DEBUG files of the same run, imported)."""
    d = tmp_path_factory.mktemp("plot")
    data = (GOLDEN / "bpftrace" / "modes-fork-exec.tsv").read_bytes()
    dec = BpftraceDecoder()
    root = int(data.split(b"READY\t", 1)[1].split(b"\n", 1)[0])
    dec.tree.root(root, 1, ["bash", "-c", "/tmp/modes-lazy 0.25 >/dev/null; exec /tmp/modes-lazy 1 >/dev/null"], 0)
    table = pa.concat_tables([t for t in (dec.feed(data), dec.finish()) if t is not None])
    procs = dec.tree.processes_rows()
    # the session starts when the traced command (bash) is exec'd: its "E" record, before any lookup
    start = int(re.search(rb"^E\t(\d+)\t%d\t/usr/bin/bash$" % root, data, re.M).group(1))
    out = {"all": _write(d / "all", table, procs, start)}
    pid, exe = table["pid"].to_numpy(), np.array(table["exe"].to_pylist(), dtype=object)
    for name, (p, e) in {"bash": (root, "/usr/bin/bash"), "child": (None, "/tmp/modes-lazy"),
                         "exec": (root, "/tmp/modes-lazy")}.items():
        mask = (exe == e) & ((pid == root) if p is not None else (pid != root))
        assert mask.any(), name
        out[name] = _write(d / name, table.filter(pa.array(mask)), procs, start)
    imported = gotrace_cli("import", "ld-debug", str(GOLDEN / "ld_debug"), "-o", str(d / "ld"))
    assert imported.returncode == 0, imported.stderr
    out["ld"] = d / "ld"
    return out


def _events(session: Path):
    """The session's events from its Parquet parts (pyarrow, then plain pandas: no categoricals)."""
    ev = pa.concat_tables([pq.read_table(p) for p in sorted((session / "events").glob("part-*.parquet"))])
    ev = ev.to_pandas()
    for c in ("symbol", "provider", "exe"):
        ev[c] = ev[c].astype(object)
    return ev


def _meta(session: Path) -> dict:
    return json.loads((session / "meta.json").read_text())


def _timed(session: Path):
    ev = _events(session)
    return ev[ev["latency_ns"].notna()]


def _figure(*names, sessions):
    from tracer.analysis.plot import figure

    return figure([load_session(sessions[n]) for n in names])


def _panels(fig):
    ecdf, by_lib, by_sym, timeline = fig.axes
    return ecdf, by_lib, by_sym, timeline


def _session_color(fig, i: int):
    return fig.legends[0].legend_handles[i].get_color()


def _rows(ax, color):
    """{y: (x of the median point, (x0, x1) of the range line)} of one session's colour."""
    points, ranges = {}, {}
    for line in ax.lines:
        if line.get_color() != color:
            continue
        xs, ys = list(line.get_xdata()), list(line.get_ydata())
        if len(xs) == 1 and line.get_marker() == "o":
            points[float(ys[0])] = float(xs[0])
        elif len(xs) == 2:
            assert ys[0] == ys[1], "a range is drawn level, on its row"
            ranges[float(ys[0])] = (float(xs[0]), float(xs[1]))
    assert points.keys() == ranges.keys(), "each point has its range on the same row"
    return {y: (points[y], ranges[y]) for y in points}


def _value_us(text: str) -> float:
    """A label like "713 µs" or "1.2 ms", in µs."""
    m = re.fullmatch(r"([\d.,e+]+) (µs|ms)", text)
    assert m, text
    return float(m.group(1).replace(",", "")) * (1000 if m.group(2) == "ms" else 1)


def _check_ranges(fig, ax, names_of, frames: list, shown: list[str]):
    """Each session's point at the median, a line from p10 to p90, and the median written beside it,
    on the row of the name's tick; the rows of a name straddle its tick."""
    ticks = dict(zip((t.get_text() for t in ax.get_yticklabels()), ax.get_yticks()))
    assert list(ticks) == shown
    ys_by_name: dict[str, list[float]] = {n: [] for n in shown}
    for i, ev in enumerate(frames):
        color = _session_color(fig, i)
        rows = _rows(ax, color)
        drawn = set()
        for name in shown:
            lat = ev.loc[names_of(ev) == name, "latency_ns"].astype("int64").to_numpy()
            near = [y for y in rows if abs(y - ticks[name]) < 0.5]  # its row: closer to its tick than any other
            if not len(lat):
                assert not near, (name, i)
                continue
            assert len(near) == 1, (name, i, near)
            y = near[0]
            drawn.add(y)
            p10, p50, p90 = np.quantile(lat, [0.1, 0.5, 0.9]) / 1e3
            median_x, (lo, hi) = rows[y]
            assert median_x == pytest.approx(p50, rel=1e-9)
            assert (lo, hi) == (pytest.approx(p10, rel=1e-9), pytest.approx(p90, rel=1e-9))
            said = [t for t in ax.texts if t.get_color() == color and t.xy[1] == y]
            assert len(said) == 1 and _value_us(said[0].get_text()) == pytest.approx(p50, rel=5e-3), (name, said)
            assert said[0].xy[0] >= hi  # beside the range, not over it
            ys_by_name[name].append(y)
        assert drawn == set(rows), "no point on a row of a name not shown"
    for name, ys in ys_by_name.items():
        assert ys, f"{name} is shown without a point"
        if len(ys) == len(frames):  # every session has a point: the label names the middle of its row
            assert np.mean(ys) == pytest.approx(ticks[name]), (name, ys)
        assert len(set(ys)) == len(ys)  # two sessions side by side, never over each other
    lo, hi = ax.get_ylim()
    assert lo - hi == pytest.approx(len(shown)) and hi < ticks[shown[0]]  # one unit a row, the first at the top


def _ranked(frames: list, names_of, in_all: bool):
    counts: dict[str, int] = {}
    sets = []
    for ev in frames:
        names = names_of(ev).dropna()
        sets.append(set(names))
        for n, k in names.value_counts().items():
            counts[n] = counts.get(n, 0) + int(k)
    keep = set.intersection(*sets) if in_all else set(counts)
    return {n: k for n, k in counts.items() if n in keep}


def _check_top(shown: list[str], counts: dict[str, int], cut: int):
    """The names with most timed bindings, most first; the cut only when there are more."""
    assert shown and set(shown) <= set(counts)
    assert [counts[n] for n in shown] == sorted((counts[n] for n in shown), reverse=True)
    assert all(k <= counts[shown[-1]] for n, k in counts.items() if n not in shown)
    assert len(shown) == min(len(counts), cut), (len(shown), len(counts), cut)


LIB = lambda ev: ev["provider"].map(_lib)  # noqa: E731
SYM = lambda ev: ev["symbol"].astype(str)  # noqa: E731


def test_ecdf_and_timeline_are_the_sessions_own(sessions):
    fig = _figure("all", sessions=sessions)
    ecdf, _lib_ax, _sym_ax, timeline = _panels(fig)
    lat = _timed(sessions["all"])["latency_ns"].to_numpy()
    assert lat.min() > 1  # every lookup took time: no value a log axis cannot show
    (step,) = ecdf.lines
    assert step.get_drawstyle() == "steps-post" and ecdf.get_xscale() == "log"
    assert np.array_equal(step.get_xdata(), np.sort(lat) / 1e3)
    assert np.allclose(step.get_ydata(), np.arange(1, len(lat) + 1) / len(lat))
    # uprobes time the resolver itself (bindsnoop.bt: _dl_lookup_symbol_x entry to return), no estimate
    assert "resolver latency" in ecdf.get_xlabel()
    ev, start = _events(sessions["all"]), _meta(sessions["all"])["start_ns"]
    (line,) = timeline.lines
    assert start < ev["ts_ns"].min()
    assert np.allclose(line.get_xdata(), np.sort(ev["ts_ns"].to_numpy() - start) / 1e9, rtol=0, atol=1e-9)
    assert np.array_equal(line.get_ydata(), np.arange(1, len(ev) + 1))


def test_one_session_by_library_and_by_symbol(sessions):
    fig = _figure("all", sessions=sessions)
    _ecdf, by_lib, by_sym, _t = _panels(fig)
    timed = _timed(sessions["all"])
    for ax, names_of in ((by_lib, LIB), (by_sym, SYM)):
        shown = [t.get_text() for t in ax.get_yticklabels()]
        counts = _ranked([timed], names_of, in_all=False)
        assert f"the {len(shown)} with most timed bindings" in ax.get_title() and "in both" not in ax.get_title()
        assert len(shown) < len(counts) or ax is by_lib
        _check_top(shown, counts, len(shown) if len(shown) < len(counts) else len(counts))
        _check_ranges(fig, ax, names_of, [timed], shown)
        assert ax.get_xscale() == "log"


def test_two_sessions_libraries_of_either_symbols_of_both(sessions):
    """bash and its forked modes-lazy: libtinfo is bash's only, libm the child's; by library both
    show (each session's point where it has one), by symbol only those both timed."""
    cut = {}
    one = _figure("all", sessions=sessions)
    for ax in _panels(one)[1:3]:  # the length the figure cuts at: a session with more names than shown
        cut[ax.get_title().split(":")[0]] = len(ax.get_yticklabels())
    fig = _figure("bash", "child", sessions=sessions)
    _ecdf, by_lib, by_sym, _t = _panels(fig)
    frames = [_timed(sessions["bash"]), _timed(sessions["child"])]
    libs = [t.get_text() for t in by_lib.get_yticklabels()]
    lib_counts = _ranked(frames, LIB, in_all=False)
    assert {"libtinfo.so.6", "libm.so.6"} <= set(lib_counts)
    _check_top(libs, lib_counts, max(cut["Latency by library"], len(libs)))
    _check_ranges(fig, by_lib, LIB, frames, libs)
    syms = [t.get_text() for t in by_sym.get_yticklabels()]
    both = _ranked(frames, SYM, in_all=True)
    assert len(both) > cut["Latency by symbol"] and "in both" in by_sym.get_title()
    _check_top(syms, both, cut["Latency by symbol"])
    _check_ranges(fig, by_sym, SYM, frames, syms)


def test_legend_names_each_session_and_what_timed_it(sessions):
    fig = _figure("bash", "ld", sessions=sessions)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(legend) == 2 and legend[0].startswith("bash (bpftrace, x86_64 native, timed by uprobes")
    assert "calibrated" not in legend[0] and "no latency" not in legend[0]
    assert legend[1].startswith("ld (ld-debug, ") and "no latency measured" in legend[1] and "timed by" not in legend[1]
    ecdf, by_lib, by_sym, timeline = _panels(fig)
    assert len(ecdf.lines) == 1  # the session without latency has no curve
    assert [ln.get_color() for ln in timeline.lines] == [_session_color(fig, 0), _session_color(fig, 1)]
    assert not any("measured differently" in t.get_text() for t in fig.texts)  # one instrument only


def test_a_session_without_latency_has_its_timeline_and_says_so(sessions):
    fig = _figure("ld", sessions=sessions)
    ecdf, by_lib, by_sym, timeline = _panels(fig)
    for ax in (ecdf, by_lib, by_sym):
        assert not ax.lines and any("no resolver latency" in t.get_text() for t in ax.texts)
    ev = _events(sessions["ld"])
    assert _meta(sessions["ld"])["start_ns"] == 0  # an imported log has no clock: counted from its first line
    (line,) = timeline.lines
    assert np.allclose(line.get_xdata(), np.sort(ev["ts_ns"].to_numpy() - ev["ts_ns"].min()) / 1e9, rtol=0,
                       atol=1e-12)
    assert np.array_equal(line.get_ydata(), np.arange(1, len(ev) + 1))


def test_the_panels_and_the_legend_fit_the_figure_apart(sessions):
    """Every panel inside the figure, none under the legend above them."""
    fig = _figure("bash", "child", sessions=sessions)
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    for ax in fig.axes:
        box = ax.get_position()
        assert 0 <= box.x0 < box.x1 <= 1 and 0 <= box.y0 < box.y1 <= 1, box
        assert not ax.get_window_extent().overlaps(legend)


def test_plot_writes_the_format_asked_where_asked(sessions, tmp_path, capsysbinary):
    from tracer.analysis.plot import plot

    s = [load_session(sessions["all"])]
    assert plot(s, tmp_path / "a.png") == tmp_path / "a.png"
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot(s, str(tmp_path / "b.SVG")) == tmp_path / "b.SVG"
    assert b"<svg" in (tmp_path / "b.SVG").read_bytes()[:400]
    assert plot(s, tmp_path / "c.png", fmt="svg") == tmp_path / "c.png"  # the format given wins over the name
    assert b"<svg" in (tmp_path / "c.png").read_bytes()[:400]
    assert plot(s, "-") == "-"
    assert capsysbinary.readouterr().out[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot(s, "-", fmt="svg") == "-"
    assert b"<svg" in capsysbinary.readouterr().out[:400]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.SVG", "c.png"]
    for dest, fmt, said in ((tmp_path / "d.jpg", None, "must end in .png or .svg"),
                            (tmp_path / "d.png", "jpg", "unknown plot format"),
                            (tmp_path / "no" / "d.png", None, f"directory {tmp_path / 'no'} does not exist")):
        with pytest.raises(GotraceError, match=re.escape(said)):
            plot(s, dest, fmt=fmt)
    assert not (tmp_path / "d.png").exists() and not (tmp_path / "d.jpg").exists()


def test_stdout_is_png_whatever_matplotlibrc_says(sessions, tmp_path, capsysbinary):
    """`gotrace plot --help`: the format is "from the file name; png for -". A user's matplotlibrc
    (savefig.format: svg) changes neither; the PNG signature (RFC 2083) and SVG's root tag tell."""
    import matplotlib

    from tracer.analysis.plot import plot

    s = [load_session(sessions["all"])]
    with matplotlib.rc_context({"savefig.format": "svg"}):
        assert plot(s, "-") == "-"
        assert capsysbinary.readouterr().out[:8] == b"\x89PNG\r\n\x1a\n"
        plot(s, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with matplotlib.rc_context({"savefig.format": "png"}):
        plot(s, tmp_path / "b.svg")
    assert b"<svg" in (tmp_path / "b.svg").read_bytes()[:400]


def test_figure_keeps_the_backend_its_caller_chose(sessions):
    """figure()'s docstring: notebooks show the Figure it returns, so a caller that has chosen a
    matplotlib backend (a notebook's, a GUI's) keeps it; the oracle is matplotlib.get_backend()
    before and after, in a fresh interpreter (this one's matplotlib state is pytest's)."""
    import subprocess
    import sys

    code = ("import sys, matplotlib; matplotlib.use('svg'); import matplotlib.pyplot; "
            "from tracer import load_session; from tracer.analysis.plot import figure; "
            "fig = figure([load_session(sys.argv[1])]); print(matplotlib.get_backend(), type(fig.canvas).__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(sessions["all"])], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "FigureCanvasSVG"], out.stdout
