"""Translation costs, each as a ratio to a baseline measured in the same run.

W3  cold `go build` of examples/cgo-hello by the arm64 Go toolchain running
    translated (qemu-user via binfmt_misc; gcc native), untraced vs
    `gotrace bind --arch arm64` (ld-debug, guest lookups timed by the qemu
    plugin), interleaved; plus the native
    untraced build as the reference for what translation itself costs.
BB  `gotrace bench-bind --arch arm64`'s probe: median lazy-binding cost per
    symbol natively and translated, and their ratio.

Usage (root, to register qemu if needed):  .venv/bin/python bench/bench_translate.py [--rounds 2]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    from tracer import load_session
    from tracer.capture.translated import translation as translate
    from tracer.goenv import bindbench

    if translate.handler_for("arm64") is None:
        translate.register_qemu("arm64")
    env_t = dict(os.environ)
    t = translate.prepare("arm64", ["go"], env_t)  # no timing plugin: the untraced baseline
    times = {"native untraced": [], "translated untraced": [], "translated ld-debug": []}
    events = []
    for r in range(args.rounds):
        for mode in times:
            with tempfile.TemporaryDirectory(prefix="gotrace-w3-") as tmp:
                base = dict(os.environ) if mode.startswith("native") else dict(env_t)
                base.update(GOCACHE=f"{tmp}/gocache", GOPATH=f"{tmp}/gopath", GOFLAGS="-modcacherw", GOPROXY="off",
                            CGO_ENABLED="1", GOTOOLCHAIN="local",
                            PATH=base["PATH"] if mode.startswith("translated") else f"{VENV_BIN}:{base['PATH']}")
                cmd = ["go", "build", "-o", f"{tmp}/hello", "."]
                if mode == "translated ld-debug":
                    cmd = [str(VENV_BIN / "gotrace"), "bind", "-q", "--arch", "arm64", "-o", f"{tmp}/s", "--", *cmd]
                    base["PATH"] = os.environ["PATH"]  # gotrace puts the arm64 toolchain first itself
                    base.pop("GOROOT", None)
                t0 = time.perf_counter()
                p = subprocess.run(cmd, cwd=EXAMPLE, env=base, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
                times[mode].append(time.perf_counter() - t0)
                if p.returncode != 0:
                    raise SystemExit(f"{mode} failed: {p.stderr[-400:]}")
                if mode == "translated ld-debug":
                    s = load_session(f"{tmp}/s")
                    timed = s.events["latency_ns"].dropna()
                    events.append((len(s.events), int(s.processes["translator"].notna().sum()), len(timed),
                                   float(timed.median()) if len(timed) else float("nan")))
            print(f"  round {r + 1}/{args.rounds} {mode}: {times[mode][-1]:.1f} s", file=sys.stderr, flush=True)
    t.close()
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"\nW3: cold go build of examples/cgo-hello, median of {args.rounds} interleaved rounds")
    print(f"  native untraced         {med['native untraced']:7.1f} s")
    print(f"  translated untraced     {med['translated untraced']:7.1f} s  "
          f"({med['translated untraced'] / med['native untraced']:.1f}x native)")
    print(f"  translated ld-debug     {med['translated ld-debug']:7.1f} s  "
          f"({med['translated ld-debug'] / med['translated untraced']:.3f}x translated untraced), "
          f"{statistics.median(e[0] for e in events):,.0f} bindings, "
          f"{statistics.median(e[1] for e in events):.0f} translated images")
    timed = statistics.median(e[2] for e in events)
    print(f"  guest lookups timed by the qemu plugin: {timed:,.0f}"
          + (f", median {statistics.median(e[3] for e in events) / 1e3:.1f} µs" if timed else
             " (the arm64 Go toolchain is static: no dynamic guest program runs in a build; the plugin's "
             "cost is still in the ratio)"))
    native, arm = bindbench.run(None, 20), bindbench.run("arm64", 20)
    a, b = native.summary()["median_bind_ns"], arm.summary()["median_bind_ns"]
    print(f"\nBB: median lazy-binding cost over {native.summary()['symbols']} symbols, 20 processes each: "
          f"native {a / 1e3:.2f} µs, translated {b / 1e3:.1f} µs ({b / max(a, 1):.0f}x)")


if __name__ == "__main__":
    main()
