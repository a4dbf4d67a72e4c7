"""Pictures of one or two sessions: latency ECDF, per-library latency, binding timeline.

Three panels, one figure (PNG or SVG by the file's extension):
1. ECDF of resolver latency on a log axis, one curve per session — native
   against translated reads at a glance (a shift right is a slowdown);
2. median latency per providing library (the libraries that bound the most),
   bars side by side per session;
3. bindings over the run: cumulative count against seconds since start,
   one line per session, so start-up bursts and late dlsym show.
Sessions without latency (ld-debug) leave panels 1-2 saying so.
"""
from __future__ import annotations

import os
from pathlib import Path

from .compare import object_name
from ..errors import GotraceError
from ..session.reader import Session

TOP_LIBRARIES = 8


def _label(s: Session) -> str:
    t = s.meta.get("translation") or {}
    arch = t.get("arch") or s.meta.get("arch") or "?"
    how = f"{arch} via {t['translator']}" if t.get("translator") else f"{arch} native"
    return f"{Path(str(s.path)).name} ({s.meta.get('backend')}, {how})"


def plot(sessions: list[Session], dest: str | os.PathLike) -> Path:
    dest = Path(dest)
    if dest.suffix.lower() not in (".png", ".svg"):
        raise GotraceError(f"{dest}: the plot file must end in .png or .svg")
    if not dest.parent.exists():
        raise GotraceError(f"cannot write {dest}: directory {dest.parent} does not exist")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 5.2))
    colors = ["tab:blue", "tab:orange"]
    any_latency = False
    libs: list[str] = []
    for s in sessions:
        timed = s.events[s.events["latency_ns"].notna()]  # a translated run times its guest only
        if len(timed):
            top = timed["provider"].map(object_name).value_counts().head(TOP_LIBRARIES).index
            libs.extend(l for l in top if l not in libs)
    libs = libs[:TOP_LIBRARIES]
    width = 0.8 / max(len(sessions), 1)
    for i, s in enumerate(sessions):
        ev, color, label = s.events, colors[i % 2], _label(s)
        lat = ev["latency_ns"].dropna().astype("int64").to_numpy()
        if len(lat):
            any_latency = True
            xs = np.sort(np.maximum(lat, 1)) / 1e3
            ax1.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", color=color, label=label)
            med = (ev.assign(lib=ev["provider"].map(object_name)).groupby("lib", observed=True)["latency_ns"]
                   .median().astype("float64"))  # a library nobody timed: NaN, no bar
            ax2.bar(np.arange(len(libs)) + i * width, [med.get(l, np.nan) / 1e3 for l in libs], width,
                    color=color, label=label)
        if len(ev):
            t0 = s.meta.get("start_ns") or int(ev["ts_ns"].min())
            ts = np.sort((ev["ts_ns"].to_numpy() - t0) / 1e9)
            ax3.plot(ts, np.arange(1, len(ts) + 1), color=color, label=label)
    ax1.set(xscale="log", xlabel="resolver latency (µs, log scale)", ylabel="fraction of bindings ≤ x",
            title="Latency distribution (ECDF)")
    ax2.set(ylabel="median latency (µs, log scale)", yscale="log", title=f"Median latency by library (top {len(libs)})")
    ax2.set_xticks(np.arange(len(libs)) + width * (len(sessions) - 1) / 2, libs, rotation=30, ha="right",
                   fontsize=8)
    if not any_latency:
        for ax in (ax1, ax2):
            ax.text(0.5, 0.5, "no latency in these sessions\n(ld-debug measures none)", ha="center", va="center",
                    transform=ax.transAxes)
    ax3.set(xlabel="seconds since the session started", ylabel="bindings so far", title="Bindings over the run")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(dest, dpi=110)
    except OSError as exc:
        raise GotraceError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return dest
