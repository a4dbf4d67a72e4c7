"""Two sessions side by side: native against translated, before against after.

Per executable: bindings, total resolver time (sum of latency) and total
relocation time (the bpftrace backend's _dl_relocate_object spans). Per symbol,
per providing library and per image (its relocation or dyld fixup time): the two
sides' latencies side by side, each side's instrument named (analysis/methods.py),
with a warning when they differ.

Objects are compared by file name (`/usr/aarch64-linux-gnu/lib/libc.so.6` and
`/lib/x86_64-linux-gnu/libc.so.6` are both `libc.so.6`) and every dynamic
linker is `ld.so`, so the same workload on two architectures lines up. The
result is one plain dict (``gotrace compare --json``); keys are only added.
"""
from __future__ import annotations

import collections
import os
from dataclasses import replace
from typing import Any

from ..heavy import pd
from ..session.reader import Session, frame_rows
from ..session.schema import KINDS, latency_calibration
from .methods import latency_method, mismatch
from .naming import object_name
from .translator import from_session, guest_events, guest_images

COMPARE_VERSION = 1
LISTED = 500  # only_in_a/only_in_b list at most this many rows; their counts are always whole


def _quant(series: pd.Series) -> dict[str, Any] | None:
    s = series.dropna()
    if s.empty:
        return None
    s = s.astype("int64")
    return {"count": int(len(s)), "median_ns": int(s.median()), "p99_ns": int(s.quantile(0.99)),
            "total_ns": int(s.sum())}


def _side(s: Session) -> dict[str, Any]:
    ev, procs, meta = s.events, s.processes, s.meta
    rows = frame_rows(procs)
    guests = guest_images(rows, from_session(meta, rows))
    translated = len(guests)
    # what ran translated, when the processes say so themselves (Rosetta, a log imported
    # from a Mac) rather than an --arch run's meta.json
    by_proc = sorted({str(p["translator"]) for p in guests if p.get("translator")})
    archs = collections.Counter(str(p["arch"]) for p in (guests or rows) if p.get("arch"))
    return {
        "path": str(s.path), "argv": meta.get("argv"), "backend": meta.get("backend"),
        "arch": (meta.get("translation") or {}).get("arch") or meta.get("arch")
        or (archs.most_common(1)[0][0] if archs else None),
        "translator": (meta.get("translation") or {}).get("translator") or (", ".join(by_proc) or None),
        "processes": int(procs["pid"].nunique()) if len(procs) else 0,
        "translated_images": int(translated),
        "bindings": int(len(ev)),
        "by_kind": {k: int(v) for k, v in ev["kind"].value_counts().reindex(list(KINDS),
                                                                             fill_value=0).items()},
        "failed": int((~ev["resolved"]).sum()) if len(ev) else 0,
        "latency_measured": bool(ev["latency_ns"].notna().any()) if len(ev) else False,
        "latency_method": latency_method(meta),
        **_resolver_time(ev),
        "relocation_ns": int(s.relocations["duration_ns"].sum()) if len(s.relocations) else None,
        # events parts that could not be read ({file, rows, error}): this side's figures are partial
        "damaged_parts": list(getattr(s, "damaged", None) or []),
    }


def _resolver_time(ev: pd.DataFrame) -> dict[str, int | None]:
    """Resolver time, wall, and split into on a CPU and switched out where every timed lookup's
    off-CPU time was measured (bpf, bpftrace); None where not measured."""
    timed = ev[ev["latency_ns"].notna()] if len(ev) else ev
    if not len(timed):
        return {"resolver_ns": None, "resolver_oncpu_ns": None, "resolver_offcpu_ns": None}
    wall = int(timed["latency_ns"].astype("int64").sum())
    off = timed["offcpu_ns"] if "offcpu_ns" in timed.columns else None
    if off is None or not off.notna().all():
        return {"resolver_ns": wall, "resolver_oncpu_ns": None, "resolver_offcpu_ns": None}
    off_total = int(off.astype("int64").sum())
    return {"resolver_ns": wall, "resolver_oncpu_ns": wall - off_total, "resolver_offcpu_ns": off_total}


def _grouped(ev: pd.DataFrame, key: pd.Series) -> dict[str, dict]:
    out = {}
    for k, grp in ev.groupby(key, observed=True)["latency_ns"]:
        q = _quant(grp)
        if q:
            out[str(k)] = q
    return out


def _by_image(rel: pd.DataFrame) -> dict[str, dict]:
    """Relocation (dyld: fixup) times per image name, quantified as latencies are."""
    if not len(rel):
        return {}
    return _grouped(rel.rename(columns={"duration_ns": "latency_ns"}), rel["path"].map(object_name))


def _pair_table(a: dict[str, dict], b: dict[str, dict], top: int) -> list[dict[str, Any]]:
    rows = []
    for k in set(a) & set(b):
        ra = b[k]["median_ns"] / a[k]["median_ns"] if a[k]["median_ns"] else None
        rows.append({"name": k, "a": a[k], "b": b[k], "median_ratio": round(ra, 3) if ra is not None else None})
    rows.sort(key=lambda r: -(r["a"]["total_ns"] + r["b"]["total_ns"]))
    return rows[:top]


def _per_exe(s: Session) -> dict[str, dict[str, int]]:
    ev = s.events
    out: dict[str, dict[str, int]] = {}
    if len(ev):
        names = ev["exe"].map(object_name)
        for exe, grp in ev.groupby(names, observed=True):
            rt = _resolver_time(grp)
            out[str(exe)] = {"bindings": int(len(grp)), "resolver_ns": rt["resolver_ns"], "relocation_ns": None,
                             "resolver_oncpu_ns": rt["resolver_oncpu_ns"]}
    rel, procs = s.relocations, s.processes
    if len(rel) and len(procs):
        for exe, dur in rel.groupby(_relocating_exe(rel, procs), observed=True)["duration_ns"].sum().items():
            row = out.setdefault(str(exe), {"bindings": 0, "resolver_ns": None, "relocation_ns": None,
                                            "resolver_oncpu_ns": None})
            row["relocation_ns"] = (row["relocation_ns"] or 0) + int(dur)
    return out


def _relocating_exe(rel: pd.DataFrame, procs: pd.DataFrame) -> list[str]:
    """Each relocation's program: the image its pid ran at the relocation's time. A pid that exec'd
    (`env X=1 prog`, a shell's `exec`) relocated the first program's libraries before the second
    started; its last image would be charged with both. An image without a start time counts as
    started first; a relocation before all of its pid's images, as the last one's."""
    images: dict[int, list[tuple[float, int, str]]] = collections.defaultdict(list)
    for order, (pid, start, exe) in enumerate(zip(procs["pid"], procs["start_ns"], procs["exe"].map(object_name))):
        images[int(pid)].append((int(start) if pd.notna(start) else float("-inf"), order, str(exe)))
    out = []
    for pid, ts in zip(rel["pid"], rel["ts_ns"]):
        mine = images.get(int(pid), [])
        begun = [image for image in mine if image[0] <= ts]
        out.append(max(begun or mine, default=(None, None, "None"))[2])  # "None": a pid with no process row
    return out


def _binding_set(ev: pd.DataFrame) -> set[tuple[str, str, str]]:
    ok = ev[ev["resolved"]]
    return set(zip(ok["requester"].map(object_name), ok["symbol"].astype(str), ok["provider"].map(object_name)))


def compare(a: Session, b: Session, top: int = 20, include_translator: bool = False,
            budgets=None) -> dict[str, Any]:
    """Everything `gotrace compare` prints, as one dict. A translator's own
    bindings (analysis/translator.py) are left out unless ``include_translator``.
    ``budgets`` (analysis/budgets.Budgets, B the new run against baseline A)
    adds ``budgets``: each one broken or kept, with its line."""
    ga, gb = guest_events(a, include_translator), guest_events(b, include_translator)
    left_out = {"A": len(a.events) - len(ga), "B": len(b.events) - len(gb)}
    a, b = replace(a, events=ga), replace(b, events=gb)
    checked = None
    if budgets:
        checked = budgets.check(a, b)
    sa, sb = _side(a), _side(b)
    warnings = []
    argv_a, argv_b = [os.path.basename(x) for x in (sa["argv"] or [])], [os.path.basename(x) for x in (sb["argv"] or [])]
    if argv_a[:1] != argv_b[:1] or argv_a[1:] != argv_b[1:]:
        warnings.append(f"different commands: {' '.join(sa['argv'] or [])!r} vs {' '.join(sb['argv'] or [])!r}; "
                        "compared anyway")
    for s, side, name in ((a, sa, "A"), (b, sb, "B")):
        # as the report's note: what a host-side backend records in a translated image is its translator's
        n, backend = side["translated_images"], side["backend"]
        if n and backend in ("bpf", "bpftrace", "lldb") and not s.meta.get("translation"):
            warnings.append(f"{name} ({backend}): {n} program image{'s' if n != 1 else ''} ran translated by "
                            f"{side['translator']}: {backend} sees the translator, not the guest program's own "
                            "bindings: those images' bindings are the translator's; trace inside the guest with "
                            "--arch ARCH (ld-debug)")
    for name, n in left_out.items():
        if n:
            warnings.append(f"{name}: the translator's own {n:,} bindings are left out (--include-translator "
                            "counts them)")
    for s, name in ((a, "A"), (b, "B")):
        if latency_calibration(s.meta.get("latency_method")):
            warnings.append(f"{name} ({s.meta.get('backend')}): latencies are calibrated estimates (stop-to-stop "
                            "minus lldb's own stop/resume cost), not measurements: rank with them")
    differ = mismatch(a.meta, b.meta)
    if differ:
        warnings.append(differ)
    for side, name in ((sa, "A"), (sb, "B")):
        if not side["latency_measured"]:
            warnings.append(f"{name} ({side['backend']}) has no latency: latency tables compare only what both measured")
    ea, eb = a.events, b.events
    lat_sym = _pair_table(_grouped(ea, ea["symbol"].astype(str)), _grouped(eb, eb["symbol"].astype(str)), top)
    lat_lib = _pair_table(_grouped(ea, ea["provider"].map(object_name)), _grouped(eb, eb["provider"].map(object_name)),
                          top)
    lat_img = _pair_table(_by_image(a.relocations), _by_image(b.relocations), top)
    ka, kb = _binding_set(ea), _binding_set(eb)
    only_a, only_b = sorted(list(x) for x in ka - kb), sorted(list(x) for x in kb - ka)
    per_a, per_b = _per_exe(a), _per_exe(b)
    return {
        "compare_version": COMPARE_VERSION,
        "a": sa, "b": sb,
        "warnings": warnings,
        "ratio": {"bindings": round(sb["bindings"] / sa["bindings"], 3) if sa["bindings"] else None},
        "latency_by_symbol": lat_sym,
        "latency_by_library": lat_lib,
        "relocation_by_image": lat_img,
        "per_executable": {k: {"a": per_a.get(k), "b": per_b.get(k)} for k in sorted(set(per_a) | set(per_b))},
        # the lists are cut at LISTED rows (sorted); the counts are of every binding
        "only_in_a": only_a[:LISTED],
        "only_in_b": only_b[:LISTED],
        "only_in_a_count": len(only_a),
        "only_in_b_count": len(only_b),
        "only_in_listed_max": LISTED,
        "in_both": len(ka & kb),
        **({"budgets": checked} if checked is not None else {}),
    }
