"""Running a workload as x86_64 on an Apple Silicon Mac: Rosetta 2, through `arch -x86_64`.

`arch -x86_64 PROG` execs PROG in place (same pid) with an x86_64 preference
(system_cmds arch.c: posix_spawnattr_setarchpref_np + POSIX_SPAWN_SETEXEC), and
every process it starts inherits the preference and P_TRANSLATED (xnu
kern_fork.c). `arch` is SIP-protected, so dyld drops every DYLD_* variable from
its environment before PROG sees it; its ``-e NAME=VALUE`` options set them
again for PROG (arch.c builds PROG's environment from its own plus ``-e``), which
is how the dyld-print backend's variables survive. For `go` commands the x86_64
Go toolchain goes first on PATH (darwin/amd64: cmd/go passes ``-arch x86_64`` to
clang), with GOARCH=amd64.

Not run on macOS: what it builds (argv, environment, refusals) is tested here.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ... import arch as archs
from ...errors import GotraceError

ROSETTA_RUNTIME = "/Library/Apple/usr/libexec/oah/libRosettaRuntime"
ARCH = "/usr/bin/arch"
TOOLCHAIN_ENV = "GOTRACE_GOROOT_X86_64"


def self_translated(run=subprocess.run) -> bool:
    """Whether this process runs under Rosetta (sysctl.proc_translated; absent on Intel)."""
    try:
        out = run(["sysctl", "-n", "sysctl.proc_translated"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.stdout.strip() == "1"


def hardware_arch(machine: str | None = None, translated: bool | None = None) -> str:
    """The Mac's own CPU: arm64 also when this process itself runs translated."""
    machine = archs.canonical(machine or platform.machine()) or "x86_64"
    if machine == "x86_64" and (self_translated() if translated is None else translated):
        return "arm64"
    return machine


@dataclass
class RosettaRun:
    """What a run as another architecture on macOS needs."""

    arch: str
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    translator: str | None = "rosetta"

    def wrap(self, argv: list[str], dyld_vars: dict[str, str]) -> list[str]:
        """``arch -ARCH -e K=V … argv``: the variables given again past the protected `arch`."""
        flag = "-x86_64" if self.arch == "x86_64" else "-arm64"
        extra = [a for k, v in dyld_vars.items() for a in ("-e", f"{k}={v}")]
        return [ARCH, flag, *extra, *argv]

    def meta(self) -> dict:
        return {"arch": self.arch, "translator": self.translator,
                "how": f"{ARCH} -{self.arch} (exec in place with an architecture preference; children inherit it)",
                "env": self.env, "notes": self.notes}


def go_toolchain(goroot_env: str | None = None, prefix: str | None = None) -> Path | None:
    """An x86_64 GOROOT: $GOTRACE_GOROOT_X86_64, else the one scripts/setup.sh unpacks (<venv>/go-x86_64/go)."""
    from ...binary.facts import macho_arch

    goroot_env = goroot_env if goroot_env is not None else os.environ.get(TOOLCHAIN_ENV)
    cand = Path(goroot_env) if goroot_env else Path(prefix or sys.prefix) / "go-x86_64" / "go"
    go = cand / "bin" / "go"
    return cand if go.exists() and macho_arch(str(go)) == "x86_64" else None


def prepare(arch: str, argv: list[str], env: dict[str, str], hardware: str | None = None,
            rosetta_installed: bool | None = None, toolchain: Path | None | bool = False) -> RosettaRun | None:
    """Check that ``arch`` can run here and extend ``env`` for it; None when it is
    the Mac's own architecture and nothing needs to change."""
    wanted = archs.canonical(arch)
    if wanted not in ("x86_64", "arm64"):
        raise GotraceError(f"unknown architecture {arch!r} for macOS; use x86_64 (Rosetta 2) or arm64")
    hw = hardware or hardware_arch()
    if wanted == "arm64":
        if hw != "arm64":
            raise GotraceError("this Mac has an Intel CPU: it cannot run arm64 programs (--arch x86_64 is native)")
        if platform.machine() == "arm64" or hardware:
            return None
        return RosettaRun("arm64", translator=None, notes=["gotrace runs translated: `arch -arm64` runs the "
                                                             "command natively"])
    if hw == "x86_64":
        return None  # an Intel Mac: x86_64 is native
    installed = os.path.exists(ROSETTA_RUNTIME) if rosetta_installed is None else rosetta_installed
    if not installed:
        raise GotraceError("Rosetta 2 is not installed: softwareupdate --install-rosetta --agree-to-license")
    run = RosettaRun("x86_64")
    if argv and os.path.basename(argv[0]) == "go":
        root = go_toolchain() if toolchain is False else toolchain
        if root is None:
            raise GotraceError(f"no x86_64 Go toolchain: run scripts/setup.sh (it unpacks one into the venv) or set "
                               f"{TOOLCHAIN_ENV} to a darwin/amd64 GOROOT")
        run.env["PATH"] = f"{Path(root) / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
        run.env["GOROOT"] = str(root)
        run.env["GOTOOLCHAIN"] = "local"
        if "GOARCH" not in env:
            run.env["GOARCH"] = "amd64"
        run.notes.append(f"go is the x86_64 toolchain at {root}, run by Rosetta 2; cgo's clang gets -arch x86_64")
    env.update(run.env)
    return run


ROSETTA_BACKENDS = ("auto", "dyld-print", "lldb")


def check_backend(backend: str, run: RosettaRun | None) -> None:
    """Refuse a backend that cannot see inside a translated process: DTrace refuses them
    (libproc.c); lldb times them (through Rosetta's debugserver), dyld-print counts them."""
    if run is not None and run.translator and backend not in ROSETTA_BACKENDS:
        raise GotraceError(f"--backend {backend} cannot trace Rosetta-translated processes (DTrace refuses them); "
                           "use --backend lldb (latency, one process) or dyld-print (every process, no latency)")


def check_program(arch: str, argv: list[str], env: dict[str, str]) -> None:
    """Refuse a program that has no slice for ``arch`` (it would run as what it is)."""
    from ...binary.macho_slices import slices

    if not argv or os.path.basename(argv[0]) == "go":
        return
    path = shutil.which(argv[0], path=env.get("PATH", os.defpath))
    have = {s.arch for s in slices(path)} if path else set()
    if have and archs.canonical(arch) not in have:
        raise GotraceError(f"{argv[0]} is built for {', '.join(sorted(have))}, not {arch}: build it for {arch} "
                           f"(GOARCH={archs.goarch(archs.canonical(arch) or arch)}) or drop --arch")
