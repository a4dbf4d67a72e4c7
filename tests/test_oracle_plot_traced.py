"""`gotrace plot`'s "by symbol" panel of two sessions: only symbols both sessions timed.

Two traced runs of Debian's python3 in which one symbol dominates each side: ctypes' ``CDLL[name]``
calls dlsym every time (no cache, unlike attribute access), so run A looks up ``getpid`` 40 times and
run B ``getppid`` 40 times, each side's most-bound symbol and the other side's never; both look up
one long C++ name of libstdc++ (std::string::_M_create, 68 characters, found by readelf) as often, so
the panel must make room for it. The oracle is the two sessions' Parquet parts read by pyarrow
(which symbols each side timed, how often), the programs' own argv (which names they looked up),
readelf (that the C++ name is libstdc++'s), and the figure's own geometry (every panel, its tick
labels included, inside the figure). tests/test_oracle_plot.py checks the rest of
the figure from recordings, without tracing.
"""
from __future__ import annotations

import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import gotrace_cli, require, require_bpftrace
from tracer import load_session

LOOKUPS = 40
LIBSTDCXX = "/lib/x86_64-linux-gnu/libstdc++.so.6"
LONG = "_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE9_M_createERmm"
SCRIPT = ("import ctypes; lib = ctypes.CDLL(None); [lib[{name!r}] for _ in range({n})]; "
          "cxx = ctypes.CDLL({cxx!r}); [cxx[{long!r}] for _ in range({n})]")


def _timed_symbols(session) -> dict[str, int]:
    ev = pa.concat_tables([pq.read_table(p) for p in sorted((session / "events").glob("part-*.parquet"))])
    ev = ev.filter(ev["latency_ns"].is_valid()).to_pandas()
    return ev["symbol"].astype(str).value_counts().to_dict()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    require_bpftrace()
    require(shutil.which("python3") is not None, "python3 is not installed")
    dyn = subprocess.run(["readelf", "-W", "--dyn-syms", LIBSTDCXX], capture_output=True, text=True)
    require(dyn.returncode == 0 and f" {LONG}@" in dyn.stdout, f"{LIBSTDCXX} (libstdc++6) with {LONG} is missing")
    d = tmp_path_factory.mktemp("plot-traced")
    for side, name in (("a", "getpid"), ("b", "getppid")):
        out = gotrace_cli("bind", "-q", "-b", "bpftrace", "-o", str(d / side), "--", "/usr/bin/python3", "-c",
                          SCRIPT.format(name=name, n=LOOKUPS, cxx=LIBSTDCXX, long=LONG))
        assert out.returncode == 0, out.stderr
    return d / "a", d / "b"


def test_by_symbol_shows_only_symbols_both_sessions_timed(pair):
    from tracer.analysis.plot import figure

    a, b = pair
    ta, tb = _timed_symbols(a), _timed_symbols(b)
    # each side's own symbol, looked up by ctypes LOOKUPS times there and never on the other side
    assert ta["getpid"] >= LOOKUPS and "getpid" not in tb and tb["getppid"] >= LOOKUPS and "getppid" not in ta
    both = set(ta) & set(tb)
    fig = figure([load_session(a), load_session(b)])
    by_sym = fig.axes[2]
    shown = [t.get_text() for t in by_sym.get_yticklabels()]
    assert "in both" in by_sym.get_title()
    assert shown and set(shown) <= both, sorted(set(shown) - both)
    counts = {s: ta[s] + tb[s] for s in both}
    assert [counts[s] for s in shown] == sorted((counts[s] for s in shown), reverse=True)
    assert all(k <= counts[shown[-1]] for s, k in counts.items() if s not in shown)
    by_lib = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert "libc.so.6" in by_lib  # where getpid and getppid are (by library: either session's)
    assert LONG in shown and ta[LONG] >= LOOKUPS and tb[LONG] >= LOOKUPS
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]  # each panel with its titles and tick labels
    for i, box in enumerate(boxes):
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1, (i, box.bounds)
