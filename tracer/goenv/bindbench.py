"""The binding cost per symbol, measured by a probe program instead of a tracer.

csrc/bindbench.c, built for the target architecture with lazy binding and
no builtins, times each imported function's first call (ld.so binds its PLT
slot, then the call runs) against its second (the call alone). Every run is a
fresh process, since a slot binds once per process; the medians over runs of
first, warm and first - warm are the figures. Run natively and, with an
architecture, through its binfmt_misc translator — the same program, the same
clock read by the program itself. Natively first - warm is the lazy binding;
translated it also holds the translation of the called function's code, which
dominates (qemu: ~180 µs against a ~12 µs guest lookup here), so the figure is
called the first call's extra time, never the binding cost.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..capture.translated import translation as translate
from ..csrc.build import compile_cached
from ..errors import GotraceError
from ..heavy import pd

COMPILERS = {"x86_64": "gcc", "arm64": "aarch64-linux-gnu-gcc"}
FLAGS = ["-O1", "-fno-builtin", "-Wl,-z,lazy"]


def build(arch: str) -> Path:
    """The probe for ``arch``, compiled once per source version into the cache."""
    cc = COMPILERS.get(arch)
    if cc is None or shutil.which(cc) is None:
        pkg = "gcc" if arch == "x86_64" else "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
        raise GotraceError(f"no C compiler for {arch} ({cc or 'none known'}): apt-get install {pkg}")
    return compile_cached(f"bindbench-{arch}", ["bindbench.c"], cc, FLAGS, ("-lm",))


@dataclass
class BenchResult:
    arch: str
    translator: str | None
    runs: int
    per_symbol: pd.DataFrame  # symbol, first_ns, warm_ns, bind_ns (medians over runs)

    def summary(self) -> dict:
        d = self.per_symbol
        return {"arch": self.arch, "translator": self.translator, "runs": self.runs, "symbols": int(len(d)),
                "median_bind_ns": int(d["bind_ns"].median()), "median_first_ns": int(d["first_ns"].median()),
                "median_warm_ns": int(d["warm_ns"].median())}


def run(arch: str | None = None, runs: int = 20, register_binfmt: bool = False, progress=None) -> BenchResult:
    """Build and run the probe ``runs`` times natively (``arch`` None or the host's) or translated."""
    arch = translate.normalize(arch) if arch else translate.host_arch()
    env = dict(os.environ)
    t = translate.prepare(arch, [], env, register_binfmt) if arch != translate.host_arch() else None
    try:
        probe = build(arch)
        rows = []
        for i in range(runs):
            res = subprocess.run([str(probe), "0.5", "1.5"], capture_output=True, text=True, env=env, timeout=120)
            if res.returncode != 0:
                raise GotraceError(f"the {arch} probe failed (exit {res.returncode})"
                                   + (f" under {t.handler.translator}" if t else "") + f": {res.stderr.strip()[:200]}")
            for line in res.stdout.splitlines():
                name, first, warm = line.split("\t")
                if name != "#":
                    rows.append((i, name, int(first), int(warm)))
            if progress is not None:
                progress(i + 1, runs)
    finally:
        if t is not None:
            t.close()
    df = pd.DataFrame(rows, columns=["run", "symbol", "first_ns", "warm_ns"])
    df["bind_ns"] = df["first_ns"] - df["warm_ns"]
    per = df.groupby("symbol", sort=False)[["first_ns", "warm_ns", "bind_ns"]].median().astype("int64").reset_index()
    return BenchResult(arch, t.handler.translator if t else None, runs, per)
