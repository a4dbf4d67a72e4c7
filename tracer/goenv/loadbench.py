"""What binding costs at load, native and translated: exec to main with N imports and with none.

macOS's dyld binds every import while it loads an image (dyld4: no lazy binding), so on a
Mac there is no first call to time (bindbench.py's way); what a translator adds shows in
the time from exec to main. Two probes are built per architecture from the same source
(csrc/loadprobe.c) against one generated library of N functions: one imports all N (each
a data relocation the dynamic linker resolves before main), the other none (the library
is still loaded: only the binding differs). csrc/loadstart.c, built for the host, execs
each in fresh processes and reads the clock just before the exec; the probe reads it first
thing in main. Per side: the median exec-to-main of each probe, and (imports - none) / N,
the binding cost per import. A foreign probe runs translated by itself: binfmt_misc's
qemu-user on Linux, Rosetta 2 for an x86_64-only program on Apple Silicon — so no `arch`
or qemu process is in the timing, only what translation costs. Rounds interleave the four
programs, after one unmeasured run each (Rosetta translates a program ahead of its first
run and caches it).

Linux runs here for real (gcc, aarch64-linux-gnu-gcc, qemu-user). The macOS build commands
(clang -arch arm64 / -arch x86_64, a dylib with an @rpath install name) and clock
(CLOCK_UPTIME_RAW in ns) are tested on what they build: not run on macOS.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..csrc.build import cache_dir, compile_cached
from ..errors import GotraceError

MAX_IMPORTS = 20000
LINUX_CC = {"x86_64": "gcc", "arm64": "aarch64-linux-gnu-gcc"}
LINUX_PACKAGES = {"x86_64": "gcc", "arm64": "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"}
VARIANTS = ("none", "imports")


def library_source(imports: int) -> str:
    return "".join(f"int gtb_f{i}(void) {{ return {i}; }}\n" for i in range(max(imports, 1)))


def header_source(imports: int) -> str:
    """gtb_imports.h for loadprobe.c: the declarations and GTB_TABLE (empty for none)."""
    decls = "".join(f"int gtb_f{i}(void);\n" for i in range(imports))
    return decls + "#define GTB_TABLE " + "".join(f"gtb_f{i}, " for i in range(imports)) + "\n"


@dataclass
class Toolchain:
    """How one architecture's library and probes are built on this system."""

    arch: str
    system: str
    cc: list[str]

    @property
    def library(self) -> str:
        return "libgtbind.dylib" if self.system == "Darwin" else "libgtbind.so"

    def commands(self, work: Path) -> dict[str, list[str]]:
        """The three build commands (library, probe without imports, probe with them), run in ``work``."""
        csrc = resources.files("tracer.csrc")
        probe = str(csrc.joinpath("loadprobe.c"))
        if self.system == "Darwin":
            lib = [*self.cc, "-dynamiclib", "-O1", "-install_name", f"@rpath/{self.library}"]
            link = ["-O1", "-Wl,-rpath,@executable_path", "-L", str(work), "-lgtbind"]
        else:
            lib = [*self.cc, "-shared", "-fPIC", "-O1"]
            # -z now: every import bound before main, as dyld does; --no-as-needed keeps the
            # library loaded by the probe that imports nothing from it
            link = ["-O1", "-Wl,-z,now", "-Wl,--no-as-needed", "-Wl,-rpath,$ORIGIN", "-L", str(work), "-lgtbind"]
        out = {"library": [*lib, "-o", str(work / self.library), str(work / "gtbind.c")]}
        for variant in VARIANTS:
            out[variant] = [*self.cc, "-I", str(work / f"inc-{variant}"), "-I", str(csrc), "-o",
                            str(work / f"probe-{variant}"), probe, *link]
        return out


def toolchain(arch: str, system: str | None = None) -> Toolchain:
    system = system or platform.system()
    if system == "Darwin":
        if arch not in ("arm64", "x86_64"):
            raise GotraceError(f"unknown architecture {arch!r} for macOS; use x86_64 (Rosetta 2) or arm64")
        return Toolchain(arch, system, ["clang", "-arch", arch])
    cc = LINUX_CC.get(arch)
    if cc is None or shutil.which(cc) is None:
        raise GotraceError(f"no C compiler for {arch} ({cc or 'none known'}): apt-get install "
                           f"{LINUX_PACKAGES.get(arch, 'a cross compiler')}")
    return Toolchain(arch, system, [cc])


def build(tc: Toolchain, imports: int) -> dict[str, Path]:
    """The probes for ``tc`` with ``imports`` imports, built once into the cache; name -> path."""
    if not 1 <= imports <= MAX_IMPORTS:
        raise GotraceError(f"--imports must be between 1 and {MAX_IMPORTS:,} (got {imports})")
    csrc = resources.files("tracer.csrc")
    probe_text = csrc.joinpath("loadprobe.c").read_bytes() + csrc.joinpath("bench_clock.h").read_bytes()
    key = hashlib.sha256(probe_text + repr((tc.cc, tc.system, imports)).encode()).hexdigest()[:12]
    work = cache_dir() / f"loadbench-{tc.arch}-{imports}-{key}"
    done = {v: work / f"probe-{v}" for v in VARIANTS}
    if all(p.exists() for p in done.values()):
        return done
    work.mkdir(parents=True, exist_ok=True)
    (work / "gtbind.c").write_text(library_source(imports))
    for variant, n in (("none", 0), ("imports", imports)):
        (work / f"inc-{variant}").mkdir(exist_ok=True)
        (work / f"inc-{variant}" / "gtb_imports.h").write_text(header_source(n))
    for what, cmd in tc.commands(work).items():
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
        if res.returncode != 0:
            raise GotraceError(f"building the {tc.arch} load probe ({what}) with {cmd[0]} failed: "
                               f"{(res.stderr.strip().splitlines() or ['no message'])[-1]}")
    return done


def launcher() -> Path:
    return compile_cached("loadstart", ["loadstart.c", "bench_clock.h"], "cc", ["-O2"], what="the exec-to-main timer")


@dataclass
class LoadSide:
    arch: str
    translator: str | None
    samples: dict[str, list[int]] = field(default_factory=lambda: {v: [] for v in VARIANTS})

    def median(self, variant: str) -> int:
        return int(statistics.median(self.samples[variant]))

    def summary(self, imports: int) -> dict:
        """Medians per probe, and the cost per import from each round's pair (the two probes ran
        next to each other): its median, and its interquartile range; resolved when even the lower
        quartile is above zero, i.e. the binding shows above the run-to-run noise."""
        none, full = self.median("none"), self.median("imports")
        diffs = sorted(b - a for a, b in zip(self.samples["none"], self.samples["imports"]))
        q = statistics.quantiles(diffs, n=4) if len(diffs) >= 2 else [diffs[0]] * 3
        return {"arch": self.arch, "translator": self.translator, "runs": len(self.samples["none"]),
                "exec_to_main_ns": {"none": none, "imports": full},
                "spread_ns": {v: [min(s), max(s)] for v, s in self.samples.items()},
                "per_import_ns": round(statistics.median(diffs) / imports, 1),
                "per_import_iqr_ns": [round(q[0] / imports, 1), round(q[2] / imports, 1)],
                "per_import_resolved": q[0] > 0}


def _one(timer: Path, probe: Path, env: dict[str, str]) -> int:
    res = subprocess.run([str(timer), str(probe)], capture_output=True, text=True, env=env, timeout=120)
    fields = res.stdout.split()
    if res.returncode != 0 or len(fields) != 3 or fields[2] != "0" or fields[1] == "0":
        status = fields[2] if len(fields) == 3 else f"timer exit {res.returncode}"
        raise GotraceError(f"the load probe {probe.name} ({probe.parent.name}) did not run (exit {status}): "
                           f"{res.stderr.strip()[:200] or 'no message'}")
    return int(fields[1]) - int(fields[0])


def run(arch: str | None, runs: int, imports: int, register_binfmt: bool = False, progress=None) -> tuple[LoadSide, ...]:
    """The native side, and the ``arch`` side when it is foreign, measured in interleaved rounds."""
    from .. import arch as archs
    from ..capture.translated import rosetta
    from ..capture.translated import translation as translate

    darwin = platform.system() == "Darwin"
    host = rosetta.hardware_arch() if darwin else translate.host_arch()
    wanted = (archs.canonical(arch) or arch if darwin else translate.normalize(arch)) if arch else host
    archs = [host] + ([wanted] if wanted != host else [])
    env = dict(os.environ)
    t = None
    if darwin and wanted != host:
        rosetta.prepare(wanted, [], env)  # an Intel Mac, Rosetta missing: one line each
    elif wanted != host:
        t = translate.prepare(wanted, [], env, register_binfmt)
    try:
        timer = launcher()
        probes = {a: build(toolchain(a), imports) for a in archs}
        sides = {a: LoadSide(a, None if a == host else ("rosetta" if darwin else t.handler.translator))
                 for a in archs}
        order = [(a, v) for a in archs for v in VARIANTS]
        for a, v in order:  # unmeasured: page cache, Rosetta's ahead-of-time translation
            _one(timer, probes[a][v], env)
        for i in range(runs):
            for a, v in (order if i % 2 == 0 else order[::-1]):
                sides[a].samples[v].append(_one(timer, probes[a][v], env))
            if progress is not None:
                progress(i + 1, runs)
    finally:
        if t is not None:
            t.close()
    return tuple(sides[a] for a in archs)


def report(sides: tuple[LoadSide, ...], imports: int) -> dict:
    """The JSON `gotrace bench-bind --stage load --json` prints."""
    out = {"stage": "load", "imports": imports, "sides": [s.summary(imports) for s in sides]}
    if len(sides) == 2:
        a, b = (s.summary(imports) for s in sides)
        out["ratio_exec_to_main"] = round(b["exec_to_main_ns"]["imports"] / max(a["exec_to_main_ns"]["imports"], 1), 2)
        out["ratio_per_import"] = (round(b["per_import_ns"] / a["per_import_ns"], 2)
                                   if a["per_import_resolved"] and b["per_import_resolved"] else None)
    return out
