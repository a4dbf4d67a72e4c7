"""gotrace inspect against readelf on the same files, in the same run.

B1  the Go toolchain's `compile` (about 30 000 symbols, static)
B2  a large system library (libc.so.6 and the biggest of a few candidates)

Each: median wall time of `gotrace inspect --json FILE` (the whole CLI, as a
user runs it) and of `readelf -W -s -r -l -d FILE`, interleaved; the ratio is
the figure (target: <= 3x). Also the library call alone (open_image), which is
what scripts and notebooks pay.

Usage: .venv/bin/python bench/bench_inspect.py [--rounds 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def compile_binary() -> str:
    tooldir = subprocess.run([str(VENV_BIN / "go"), "env", "GOTOOLDIR"], capture_output=True, text=True,
                             check=True).stdout.strip()
    return os.path.join(tooldir, "compile")


def big_library() -> str:
    cands = [p for p in ("/usr/lib/x86_64-linux-gnu/libLLVM-16.so.1", "/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1",
                         "/usr/lib/x86_64-linux-gnu/libstdc++.so.6") if os.path.exists(p)]
    return max(cands, key=os.path.getsize) if cands else "/lib/x86_64-linux-gnu/libc.so.6"


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    from tracer.binary import open_image

    for label, path in (("B1 compile", compile_binary()), ("B2 libc", "/lib/x86_64-linux-gnu/libc.so.6"),
                        ("B2 big library", big_library())):
        ours, theirs, lib = [], [], []
        for _ in range(args.rounds):
            ours.append(timed([str(VENV_BIN / "gotrace"), "inspect", "--json", path]))
            theirs.append(timed(["readelf", "-W", "-s", "-r", "-l", "-d", path]))
            t0 = time.perf_counter()
            img = open_image(path)
            lib.append(time.perf_counter() - t0)
        o, t, l = statistics.median(ours), statistics.median(theirs), statistics.median(lib)
        print(f"{label}: {path} ({os.path.getsize(path) / 1e6:.1f} MB, {img.symbols:,} symbols, "
              f"{img.dynamic_symbols:,} dynamic symbols, "
              f"{len(img.imports):,} imports)")
        print(f"  gotrace inspect --json {o:.3f} s | readelf -W -s -r -l -d {t:.3f} s | ratio {o / t:.2f}x | "
              f"open_image() alone {l:.3f} s ({l / t:.2f}x)")


if __name__ == "__main__":
    main()
