"""The lldb backend's cost per binding, and its calibrated latency, next to bpftrace's.

L1  cost per binding event: bench/csrc/dlsym_n.c makes exactly N run-time
    bindings; each backend traces it with N and with 0, interleaved, and
    (T(N) - T(0)) / N is its marginal cost per binding (gotrace's start-up,
    bpftrace's attach and lldb's launch cancel out). Untraced likewise.
L2  the built examples/cgo-hello binary (one process, ~120 bindings), traced by
    both; latency for the same symbols: per symbol, the median of lldb's calibrated
    latency_ns and of its raw figure, against bpftrace's uprobe latency;
    the median over symbols of each and their ratio to bpftrace, plus the
    calibration itself (median, p10-p90).

Usage (as root, for bpftrace):  .venv/bin/python bench/bench_lldb.py [--rounds 5]
Machines here are shared and noisy: read the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cgo-hello"
VENV_BIN = Path(sys.executable).parent


def build(tmp: Path) -> Path:
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", GOTOOLCHAIN="local",
               GOFLAGS="-modcacherw", GOPROXY="off", CGO_ENABLED="1", GOCACHE=str(ROOT / ".cache" / "go-build"))
    out = tmp / "cgo-hello"
    subprocess.run([str(VENV_BIN / "go"), "build", "-o", str(out), "."], cwd=EXAMPLE, env=env, check=True)
    return out


def run(mode: str, prog: Path, out: Path, *args: str):
    cmd = [str(prog), *args] if mode == "untraced" else [str(VENV_BIN / "gotrace"), "bind", "-q", "--force", "-o",
                                                          str(out), "--backend", mode, "--", str(prog), *args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        from tracer import load_session
        if mode == "lldb" and load_session(out).meta.get("exit_code_unknown"):
            return wall  # lldb lost the process at exit; its bindings are all there
        raise SystemExit(f"{mode} failed ({p.returncode}): {p.stderr.strip()[-300:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=2000, help="bindings per L1 run under lldb")
    ap.add_argument("--n-fast", type=int, default=100000, help="bindings per L1 run untraced and under bpftrace")
    args = ap.parse_args()
    from tracer import load_session

    with tempfile.TemporaryDirectory(prefix="gotrace-bench-lldb-") as tmpdir:
        tmp = Path(tmpdir)
        dl = tmp / "dlsym_n"
        subprocess.run(["gcc", "-O1", "-o", str(dl), str(ROOT / "bench/csrc/dlsym_n.c"), "-ldl"], check=True)
        big = {"untraced": args.n_fast, "bpftrace": args.n_fast, "lldb": args.n}
        times = {(m, n): [] for m in ("untraced", "bpftrace", "lldb") for n in (0, big[m])}
        for r in range(args.rounds):
            for (m, n) in times:
                times[(m, n)].append(run(m, dl, tmp / f"l1-{m}-{n}", str(n)))
            print(f"  L1 round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        print(f"\nL1: cost per binding event, dlsym_n with N vs N=0, median of {args.rounds} rounds")
        per = {}
        for m in ("untraced", "bpftrace", "lldb"):
            t0, tn = statistics.median(times[(m, 0)]), statistics.median(times[(m, big[m])])
            per[m] = (tn - t0) / big[m]
            print(f"  {m:9} N {big[m]:6d}  T(0) {t0:7.3f} s  T(N) {tn:7.3f} s  per binding {per[m] * 1e6:10.2f} us")
        print(f"  lldb / bpftrace per-binding cost: {per['lldb'] / per['bpftrace']:.0f}x"
              if per["bpftrace"] > 0 else "  bpftrace per-binding cost below the noise")

    modes = ["untraced", "bpftrace", "lldb"]
    walls = {m: [] for m in modes}
    sessions = {m: [] for m in modes[1:]}
    with tempfile.TemporaryDirectory(prefix="gotrace-bench-lldb-") as tmpdir:
        tmp = Path(tmpdir)
        prog = build(tmp)
        for r in range(args.rounds):
            for m in modes:
                out = tmp / f"{m}-{r}"
                walls[m].append(run(m, prog, out))
                if m != "untraced":
                    sessions[m].append(load_session(out))
                print(f"  round {r + 1}/{args.rounds} {m}: {walls[m][-1]:.3f} s", file=sys.stderr, flush=True)
        lost = sum(1 for s in sessions["lldb"] if s.meta.get("exit_code_unknown"))
        print(f"\nL2: {prog.name} traced, median of {args.rounds} interleaved rounds")
        print(f"  {'mode':9} {'median s':>9} {'events':>7}")
        for m in modes:
            med = statistics.median(walls[m])
            ev = statistics.median(len(s.events) for s in sessions[m]) if m in sessions else 0
            print(f"  {m:9} {med:9.3f} {ev:7.0f}")
        print(f"  lldb runs whose exit status lldb lost at exit_group: {lost}/{args.rounds}")

        import pandas as pd
        bpf = pd.concat([s.events for s in sessions["bpftrace"]])
        ll = pd.concat([s.events for s in sessions["lldb"]])
        per_sym = pd.DataFrame({
            "bpftrace": bpf.groupby("symbol", observed=True)["latency_ns"].median(),
            "lldb": ll.groupby("symbol", observed=True)["latency_ns"].median(),
            "lldb_raw": ll.groupby("symbol", observed=True)["latency_raw_ns"].median(),
        }).dropna()
        cals = [s.meta["latency_method"]["calibration"] for s in sessions["lldb"]]
        med = per_sym.median()
        print(f"\n    latency of the same {len(per_sym)} symbols (median over symbols of each symbol's median)")
        print(f"  bpftrace (uprobe pair)        {med['bpftrace'] / 1e3:10.1f} us")
        print(f"  lldb raw (stop to stop)       {med['lldb_raw'] / 1e3:10.1f} us   {med['lldb_raw'] / med['bpftrace']:8.0f}x")
        print(f"  lldb calibrated               {med['lldb'] / 1e3:10.1f} us   {med['lldb'] / med['bpftrace']:8.0f}x")
        print(f"  calibration (stop/resume pair) median {statistics.median(c['median_ns'] for c in cals) / 1e3:.0f} us, "
              f"p10 {statistics.median(c['p10_ns'] for c in cals) / 1e3:.0f} us, "
              f"p90 {statistics.median(c['p90_ns'] for c in cals) / 1e3:.0f} us over {cals[0]['rounds']} rounds/run")


if __name__ == "__main__":
    main()
