"""gotrace import dyld-print against the floor of reading the same log, in the same run.

I1  a dyld4 log of 40 processes: each 31 libraries (DYLD_PRINT_LIBRARIES) and 5,000 bindings
    (DYLD_PRINT_BINDINGS), 201,240 lines, written from dyld-940's format strings
I2  the same with a load error and DYLD_PRINT_SEARCHING for every process (the lines the error
    reader and the searches table read)

Each: median wall time and peak RSS of `gotrace import dyld-print LOG -o DIR` (the whole CLI, as
a user runs it), and of the floor: `python3 -c` reading the file and splitting it into lines,
interleaved; the ratio is the figure. The log is written to a temporary directory, never kept.

Usage: .venv/bin/python bench/bench_import.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UUID = "6A8A0A8C-1111-2222-3333-444455556666"
FLOOR = "import sys; sum(1 for _ in open(sys.argv[1], 'rb').read().decode('utf-8', 'replace').splitlines())"


def write_log(path: Path, errors: bool) -> int:
    lines = []
    for pid in range(100, 140):
        lines.append(f"dyld[{pid}]: <{UUID}> /usr/local/bin/prog{pid}")
        libs = [f"/usr/lib/lib{k}.dylib" for k in range(30)]
        for lib in libs:
            if errors:
                lines += [f'dyld[{pid}]: find path "{lib}"', f'dyld[{pid}]:   possible path(original path): "{lib}"',
                          f'dyld[{pid}]:   found: dylib-from-disk: "{lib}"']
            lines.append(f"dyld[{pid}]: <{UUID}> {lib}")
        for lib in libs[:20]:
            leaf = lib.rsplit("/", 1)[1]
            lines += [f"dyld[{pid}]: <{leaf}/bind#{n}> -> 0x18e2b{n:04x} (libSystem.B.dylib/_sym{n})"
                      for n in range(250)]
        if errors:
            lines += [f"dyld[{pid}]: Library not loaded: @rpath/libmissing.dylib",
                      f"  Referenced from: <{UUID}> /usr/local/bin/prog{pid}",
                      "  Reason: tried: '/usr/local/lib/libmissing.dylib' (no such file)"]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def run(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    took = time.perf_counter() - t0
    return took, max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gotrace-bench-import-") as tmp:
        for name, errors in (("I1", False), ("I2", True)):
            log = Path(tmp) / f"{name}.log"
            n = write_log(log, errors)
            gt, fl, rss = [], [], 0
            for _ in range(args.rounds):  # interleaved: the floor and gotrace see the same machine
                fl.append(run([sys.executable, "-c", FLOOR, str(log)])[0])
                out = Path(tmp) / "session"
                shutil.rmtree(out, ignore_errors=True)
                took, peak = run([sys.executable, "-m", "tracer", "import", "dyld-print", str(log), "-o", str(out)])
                gt.append(took)
                rss = max(rss, peak)
            g, f = statistics.median(gt), statistics.median(fl)
            print(f"{name}: {n:,} lines; gotrace import {g:.2f} s, floor (read and split) {f:.2f} s: {g / f:.1f}x; "
                  f"peak RSS of the children {rss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
