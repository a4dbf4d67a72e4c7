"""How a session's latencies were measured, so two sessions are compared only for what they share.

A native run on a Mac is timed by DTrace's pid provider (or lldb); a Rosetta one only by
lldb (DTrace refuses translated processes); on Linux by uprobes, lldb, or qemu's plugin
for a guest. These are different instruments: probes include their traps, lldb's figures
are stop-to-stop times minus its own stop/resume cost measured in the same process, the
qemu plugin's include translating the resolver's code. A ratio across two instruments
mixes the instrument with the workload, so compare and plot name each side's and warn.
"""
from __future__ import annotations

from typing import Any

from ..session.schema import latency_calibration

# instrument -> what its latency includes, in a line
INSTRUMENTS = {
    "uprobes": "uprobe entry to uretprobe (bpf, bpftrace): includes the probes' two traps",
    "dtrace": "DTrace pid provider, entry to return: includes the probes' two traps",
    "lldb": "lldb breakpoint stops, entry to return, minus lldb's own stop/resume cost calibrated in the "
            "same process",
    "qemu-plugin": "qemu TCG plugin, host clock around the guest's resolver: includes translating its code",
}


def latency_method(meta: dict) -> dict[str, Any]:
    """``{"instrument", "text", "calibration_ns"}`` for a session's meta.json; instrument None: no latency."""
    guest = meta.get("guest_latency")
    if isinstance(guest, dict) and guest.get("bindings_timed"):
        return {"instrument": "qemu-plugin", "text": INSTRUMENTS["qemu-plugin"], "calibration_ns": None}
    method = meta.get("latency_method")
    backend = meta.get("backend")
    cal = latency_calibration(method)
    if backend == "lldb" or cal is not None:
        text = INSTRUMENTS["lldb"] + (f" (median {cal['median_ns'] / 1e3:,.1f} µs over {cal['rounds']} rounds)"
                                      if cal else " (not calibrated: raw stop-to-stop times)")
        return {"instrument": "lldb", "text": text, "calibration_ns": cal["median_ns"] if cal else None}
    if backend in ("bpf", "bpftrace"):
        return {"instrument": "uprobes", "text": INSTRUMENTS["uprobes"], "calibration_ns": None}
    if backend == "dtrace":
        return {"instrument": "dtrace", "text": INSTRUMENTS["dtrace"], "calibration_ns": None}
    return {"instrument": None, "text": f"none ({backend or 'this backend'} measures no latency)",
            "calibration_ns": None}


def mismatch(a: dict, b: dict) -> str | None:
    """The warning for two sessions' meta.json whose latencies came from different instruments."""
    ma, mb = latency_method(a), latency_method(b)
    if ma["instrument"] is None or mb["instrument"] is None or ma["instrument"] == mb["instrument"]:
        return None
    return (f"latencies measured differently: A by {ma['instrument']}, B by {mb['instrument']}; "
            "a ratio mixes the instruments' own costs with the workload's (compare like with like where "
            "both can run, e.g. --backend lldb on both sides)")
