"""Summaries of a saved session, as one plain dict (rendered as tables or JSON).

The dict is the stable ``gotrace report --json`` format (see
docs/report-json.md): keys are only ever added, never renamed.
"""
from __future__ import annotations

from typing import Any

from .lazy import pd

from .session import Session

REPORT_VERSION = 1
# the event columns build_report reads: load_session(path, event_columns=EVENT_COLUMNS) skips the rest
EVENT_COLUMNS = ["kind", "resolved", "symbol", "provider", "exe", "latency_ns"]
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def _latency(series: pd.Series) -> dict[str, Any] | None:
    s = series.dropna()
    if s.empty:
        return None
    s = s.astype("int64")
    out = {k: int(s.quantile(q, interpolation="nearest")) for k, q in QUANTILES.items()}
    out.update(max=int(s.max()), mean=float(s.mean()), count=int(len(s)))
    return out


def _top(series: pd.Series, n: int, key: str) -> list[dict[str, Any]]:
    counts = series.value_counts(dropna=True).head(n)
    return [{key: str(k), "bindings": int(v)} for k, v in counts.items() if v > 0]


def _translated(procs: pd.DataFrame) -> dict[str, int]:
    if "translator" not in procs.columns or not len(procs):
        return {}
    return {str(k): int(v) for k, v in procs["translator"].dropna().value_counts().items()}


def build_report(session: Session, top: int = 10) -> dict[str, Any]:
    ev, procs, meta = session.events, session.processes, session.meta
    kinds = ev["kind"].value_counts().reindex(["eager", "lazy", "dlsym"], fill_value=0)
    resolved = int(ev["resolved"].sum()) if len(ev) else 0
    start, end = meta.get("start_ns"), meta.get("end_ns")
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "session": {
            "path": str(session.path),
            "argv": meta.get("argv"),
            "backend": meta.get("backend"),
            "backend_choice": meta.get("backend_choice"),
            "complete": bool(meta.get("complete")),
            "exit_code": meta.get("exit_code"),
            "duration_s": round((end - start) / 1e9, 3) if start and end else None,
            "lost_events": int(meta.get("lost_events") or 0),
            "malformed_records": int(meta.get("malformed_records") or 0),
            "latency_method": meta.get("latency_method"),
            # False only for the lldb backend: it follows one process
            "descendants_traced": bool(meta.get("descendants_traced", True)),
            "exit_code_unknown": bool(meta.get("exit_code_unknown", False)),  # lldb lost the status
            "host": meta.get("host"),
            "arch": meta.get("arch"),
            "translation": meta.get("translation"),  # --arch: the handler, translator and env used
            "guest_latency": meta.get("guest_latency"),  # --arch with qemu: what the timing plugin paired
        },
        "processes": {
            "count": int(procs["pid"].nunique()) if len(procs) else 0,
            "images": int(len(procs)),
            "failed": int((procs["exit_code"].fillna(0) != 0).sum()) if len(procs) else 0,
            "by_exe": _count_exes(procs, top),
            # program images run by a binfmt_misc translator (qemu-aarch64 ...), by translator
            "translated": _translated(procs),
        },
        "bindings": {
            "total": int(len(ev)),
            "by_kind": {k: int(v) for k, v in kinds.items()},
            "resolved": resolved,
            "failed": int(len(ev) - resolved),
        },
        "top_symbols": _top(ev["symbol"], top, "symbol"),
        "top_providers": _top(ev["provider"], top, "provider"),
        "by_exe": _top(ev["exe"], top, "exe"),
        "failed_symbols": _top(ev.loc[~ev["resolved"], "symbol"], top, "symbol") if len(ev) else [],
        "latency_ns": None,
        "relocation": _relocation(session, top),
    }
    lat = _latency(ev["latency_ns"]) if len(ev) else None
    if lat is not None:
        report["latency_ns"] = {"all": lat}
        for kind in ("eager", "lazy", "dlsym"):
            k = _latency(ev.loc[ev["kind"] == kind, "latency_ns"])
            if k is not None:
                report["latency_ns"][kind] = k
    return report


def _count_exes(procs: pd.DataFrame, top: int) -> list[dict[str, Any]]:
    if procs.empty:
        return []
    counts = procs["exe"].astype("string").fillna("?").value_counts().head(top)
    return [{"exe": str(k), "processes": int(v)} for k, v in counts.items()]


def _relocation(session: Session, top: int) -> dict[str, Any] | None:
    rel = session.relocations
    if rel is None or rel.empty:
        return None
    per_image = (rel.groupby("path", observed=True)["duration_ns"]
                 .agg(["count", "sum", "median", "max"]).sort_values("sum", ascending=False).head(top))
    return {
        "total_ns": int(rel["duration_ns"].sum()),
        "images": int(len(rel)),
        "top_images": [
            {"path": str(p), "relocations": int(r["count"]), "total_ns": int(r["sum"]),
             "median_ns": int(r["median"]), "max_ns": int(r["max"])}
            for p, r in per_image.iterrows()
        ],
    }
