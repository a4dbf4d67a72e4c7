"""Pictures of one or two sessions: latency ECDF, latency per library and per symbol, binding timeline.

Four panels, one figure (PNG or SVG by the file's extension or ``fmt``; ``-`` writes
it to stdout):
1. ECDF of resolver latency on a log axis, one curve per session — native
   against translated reads at a glance (a shift right is a slowdown);
2. latency per providing library, for the libraries with the most timed
   bindings: a point at the median and a line from p10 to p90, on a log axis,
   the median written beside it. Points and ranges, not bars: a bar's length
   means nothing on a log axis, whose baseline is arbitrary;
3. latency per symbol, the same way, for the symbols with the most timed
   bindings (with two sessions: those both timed), so native against Rosetta
   or qemu reads symbol by symbol;
4. bindings over the run: cumulative count against seconds since start,
   one line per session, so start-up bursts and late dlsym show.
Each session's legend entry names its backend, architecture, translator and
latency instrument (analysis/methods.py); two sessions timed by different
instruments get the warning under the title. A session without latency
(ld-debug) is named as such; when no session has any, the latency panels say so
instead of drawing empty axes.
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from .methods import latency_method, mismatch
from .naming import object_name
from .translator import guest_events
from ..errors import GotraceError
from ..session.reader import Session
from ..session.schema import latency_calibration

TOP_LIBRARIES = 8
TOP_SYMBOLS = 12
FORMATS = ("png", "svg")
COLORS = ("tab:blue", "tab:orange")


def _label(s: Session) -> str:
    t = s.meta.get("translation") or {}
    arch = t.get("arch") or s.meta.get("arch") or "?"
    how = f"{arch} via {t['translator']}" if t.get("translator") else f"{arch} native"
    estimated = latency_calibration(s.meta.get("latency_method")) is not None
    instrument = latency_method(s.meta)["instrument"]
    timed = f", timed by {instrument}" if instrument else ""
    return (f"{Path(str(s.path)).name} ({s.meta.get('backend')}, {how}{timed}"
            f"{', calibrated estimates' if estimated else ''})")


def _format(dest: str, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise GotraceError(f"unknown plot format {fmt!r}; choose png or svg")
        return fmt
    if dest == "-":
        return "png"
    suffix = Path(dest).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise GotraceError(f"{dest}: the plot file must end in .png or .svg (or give --format)")
    return suffix


def _us(v: float) -> str:
    return f"{v:,.3g} µs" if v < 1000 else f"{v / 1000:,.3g} ms"


def plot(sessions: list[Session], dest: str | os.PathLike, fmt: str | None = None,
         include_translator: bool = False) -> Path | str:
    """Draw ``sessions`` (one or two) into ``dest`` (``-``: stdout); returns where it went."""
    dest = str(dest)
    fmt = _format(dest, fmt)
    if dest != "-" and not Path(dest).parent.exists():
        raise GotraceError(f"cannot write {dest}: directory {Path(dest).parent} does not exist")
    import matplotlib.pyplot as plt

    fig = figure(sessions, include_translator)
    try:
        if dest == "-":
            fig.savefig(sys.stdout.buffer, format=fmt, dpi=110)
            sys.stdout.buffer.flush()
        else:
            fig.savefig(dest, format=fmt, dpi=110)
    except BrokenPipeError:
        raise  # the reader of stdout went away: the console ends quietly
    except OSError as exc:
        raise GotraceError(f"cannot write {'stdout' if dest == '-' else dest}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return dest if dest == "-" else Path(dest)


def _top(frames: list, column, n: int, in_all: bool) -> list[str]:
    """The ``n`` names with most timed bindings over ``frames`` (only those every frame has, if ``in_all``)."""
    counts: dict[str, int] = {}
    present: list[set] = []
    for ev in frames:
        vc = column(ev).value_counts()
        vc = vc[vc > 0]  # a categorical column counts every category, the unused ones as 0
        present.append(set(map(str, vc.index)))
        for name, k in vc.items():
            counts[str(name)] = counts.get(str(name), 0) + int(k)
    keep = set.intersection(*present) if in_all and len(present) > 1 else set(counts)
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if k in keep][:n]


def _ranges(ax, ev, column, names: list[str], i: int, n_sessions: int, color: str) -> None:
    """A point at each name's median latency and a line from p10 to p90, offset per session."""
    q = ev.assign(_k=column(ev).astype(str)).groupby("_k", observed=True)["latency_ns"].quantile(
        [0.1, 0.5, 0.9]).unstack()
    offset = (i - (n_sessions - 1) / 2) * 0.28
    for row, name in enumerate(names):
        if name not in q.index:
            continue
        p10, p50, p90 = (float(q.loc[name, k]) / 1e3 for k in (0.1, 0.5, 0.9))
        y = row + offset
        ax.plot([max(p10, 1e-3), max(p90, 1e-3)], [y, y], color=color, lw=2, alpha=0.6)
        ax.plot([max(p50, 1e-3)], [y], "o", color=color)
        ax.annotate(_us(p50), (max(p90, p50, 1e-3), y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=7, color=color)


def figure(sessions: list[Session], include_translator: bool = False):
    """The four panels as a matplotlib Figure (notebooks show it; plot() saves it).
    A translator's own bindings are left out unless ``include_translator``."""
    sessions = [replace(s, events=guest_events(s, include_translator)) for s in sessions]
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # no display here; a notebook has chosen its backend already
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, ((ax1, ax2), (ax4, ax3)) = plt.subplots(2, 2, figsize=(16, 10.5))
    timed = [s.events[s.events["latency_ns"].notna()] for s in sessions]  # a translated run times its guest only
    lib_of = lambda ev: ev["provider"].map(object_name)  # noqa: E731
    sym_of = lambda ev: ev["symbol"].astype(str)  # noqa: E731
    libs = _top(timed, lib_of, TOP_LIBRARIES, in_all=False)
    with_latency = [ev for ev in timed if len(ev)]
    syms = _top(with_latency, sym_of, TOP_SYMBOLS, in_all=True)
    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    for i, (s, ev) in enumerate(zip(sessions, timed)):
        color, label = COLORS[i % 2], _label(s) + ("" if len(ev) else " — no latency measured")
        if len(ev):
            xs = np.sort(np.maximum(ev["latency_ns"].astype("int64").to_numpy(), 1)) / 1e3
            ax1.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", color=color, label=label)
            _ranges(ax2, ev, lib_of, libs, i, len(sessions), color)
            _ranges(ax4, ev, sym_of, syms, i, len(sessions), color)
        if len(s.events):
            t0 = s.meta.get("start_ns") or int(s.events["ts_ns"].min())
            ts = np.sort((s.events["ts_ns"].to_numpy() - t0) / 1e9)
            ax3.plot(ts, np.arange(1, len(ts) + 1), color=color, label=label)
        else:
            ax3.plot([], [], color=color, label=label + " — no bindings")
    # lldb's figure is its own time per lookup (stop to stop minus a calibration), not the resolver's
    what = ("resolver latency" if not any(latency_calibration(s.meta.get("latency_method"))
                                          for s, ev in zip(sessions, timed) if len(ev))
            else "time per lookup (lldb's: calibrated estimates, not the resolver's own time)")
    if libs:
        ax1.set(xscale="log", xlabel=f"{what} (µs, log scale)", ylabel="fraction of bindings ≤ x",
                title="Latency distribution (ECDF)")
        for ax, names, what in ((ax2, libs, f"library: the {len(libs)} with most timed bindings"),
                                (ax4, syms, f"symbol: the {len(syms)} with most timed bindings"
                                 + (" in both" if len(with_latency) > 1 else ""))):
            ax.set(xscale="log", xlabel=f"{what} (µs, log scale): median ●, p10–p90 line",
                   title=f"Latency by {what}")
            ax.set_yticks(range(len(names)), names, fontsize=8)
            ax.set_ylim(len(names) - 0.5, -0.5)
        for ax in (ax1, ax2, ax4):
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        for ax, title in ((ax1, "Latency distribution"), (ax2, "Latency by library"), (ax4, "Latency by symbol")):
            ax.set(title=title, xticks=[], yticks=[])
            ax.text(0.5, 0.5, "no resolver latency in these sessions\n(the ld-debug backend measures none;\n"
                    "bpf, bpftrace and lldb do)", ha="center", va="center", transform=ax.transAxes)
    ax3.set(xlabel="seconds since the session started", ylabel="bindings so far", title="Bindings over the run")
    ax3.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    for ax in (ax1, ax2, ax3, ax4):
        ax.grid(alpha=0.3)
    handles, labels = ax3.get_legend_handles_labels()  # one entry per session, its colour in every panel
    if handles:  # above the panels: never over the data
        fig.legend(handles, labels, loc="upper center", ncol=1, fontsize=9, frameon=False)
    warning = mismatch(sessions[0].meta, sessions[1].meta) if len(sessions) == 2 else None
    if warning:
        fig.text(0.5, 0.925, "⚠ " + warning, ha="center", fontsize=8.5, color="tab:red", wrap=True)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig
