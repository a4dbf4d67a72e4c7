"""`gotrace doctor` on a Mac: the architecture mistakes behind cgo failures under Rosetta.

An Apple Silicon Mac runs four architectures' worth of decisions that must agree:
the terminal (native, or translated when "Open using Rosetta" is set), the `go`
binary first on PATH (darwin/arm64 or darwin/amd64, from the go.dev package or
one of two Homebrews), GOARCH, and the clang that cgo runs (its target with the
``-arch`` cgo passes). Homebrew's prefix says which one it is: /opt/homebrew is
arm64, /usr/local is the Intel one. And macOS 26's dyld refuses a program
without LC_UUID, which Go writes only since 1.24.

The facts are gathered by commands (``gather``, macOS only) and judged by a pure
function (``checks``), tested on recorded outputs in their documented formats.
Not run on macOS.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from ..arch import canonical, goarch as goarch_of
from .check import Check

HOMEBREW = {"/opt/homebrew": "arm64", "/usr/local": "x86_64"}
CGO_ARCH_FLAG = {"arm64": "arm64", "amd64": "x86_64"}  # what cmd/go passes to clang as -arch, per GOARCH


@dataclass
class MacFacts:
    machine: str  # `uname -m` as this process sees it (x86_64 when it runs translated)
    translated: bool  # sysctl.proc_translated
    gos: list = field(default_factory=list)  # every `go` on PATH, in order: (path, `go version` output)
    go_version_m: str = ""  # `go version -m` of the first one
    go_env: dict = field(default_factory=dict)
    brew_prefix: str | None = None
    cc: str = "clang"
    cc_triple: str | None = None  # `$CC -arch X -print-target-triple` with the -arch cgo passes
    go_uuid: str | None = None  # LC_UUID of the go binary's slice that runs


def build_setting(version_m: str, key: str) -> str | None:
    """A ``build KEY=VALUE`` line of `go version -m` output."""
    m = re.search(rf"^\s*build\s+{re.escape(key)}=(\S+)", version_m, re.M)
    return m.group(1) if m else None


def go_release(text: str) -> tuple[int, int] | None:
    m = re.search(r"\bgo(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def checks(f: MacFacts) -> list[Check]:
    out = []
    hw = "arm64" if f.translated or canonical(f.machine) == "arm64" else "x86_64"
    if f.translated:
        out.append(Check("terminal", "warn", "this shell runs under Rosetta 2 (sysctl.proc_translated=1): what it "
                         "starts prefers x86_64, a universal go or clang included",
                         "open a terminal without \"Open using Rosetta\", or run `arch -arm64 zsh`"))
    else:
        out.append(Check("terminal", "pass", f"this shell runs natively ({hw})"))
    go_arch = build_setting(f.go_version_m, "GOARCH")
    first = f.gos[0][0] if f.gos else None
    if go_arch:
        if hw == "arm64" and go_arch == "amd64":
            out.append(Check("go binary", "warn", f"{first} is a darwin/amd64 build: it runs under Rosetta 2 and "
                             "builds amd64 programs unless GOARCH says otherwise",
                             "install the darwin/arm64 Go (the go.dev …darwin-arm64.pkg, or `arch -arm64 brew "
                             "install go`)"))
        else:
            out.append(Check("go binary", "pass", f"{first} is darwin/{go_arch}, like this Mac"))
    if len(f.gos) > 1:
        seen = "; then ".join(f"{p} ({v.strip() or '?'})" for p, v in f.gos)
        differ = len({v.split()[2] if len(v.split()) > 3 else v for _p, v in f.gos}) > 1
        out.append(Check("PATH", "warn" if differ else "pass", f"{len(f.gos)} go on PATH, the first wins: {seen}",
                         "put the one you mean first (e.g. export PATH=\"/usr/local/go/bin:$PATH\")" if differ
                         else None))
    if f.brew_prefix:
        brew_arch = HOMEBREW.get(f.brew_prefix.rstrip("/"))
        if brew_arch and hw == "arm64" and brew_arch == "x86_64" and not f.translated:
            out.append(Check("Homebrew", "warn", f"brew is the Intel Homebrew ({f.brew_prefix}): its libraries are "
                             "x86_64, and a cgo build for arm64 cannot link them",
                             "install the arm64 Homebrew in /opt/homebrew and put /opt/homebrew/bin first on PATH"))
        elif brew_arch:
            out.append(Check("Homebrew", "pass", f"brew at {f.brew_prefix} is the {brew_arch} Homebrew"))
    goarch = f.go_env.get("GOARCH", "")
    if goarch and goarch != goarch_of(hw):
        out.append(Check("GOARCH", "warn", f"GOARCH={goarch} on an {hw} Mac: the programs you build run "
                         + ("under Rosetta 2" if hw == "arm64" and goarch == "amd64" else "nowhere here"),
                         f"unset GOARCH (or GOARCH={goarch_of(hw)}) for native programs"))
    elif goarch:
        out.append(Check("GOARCH", "pass", f"GOARCH={goarch} matches this Mac"))
    if f.go_env.get("CGO_ENABLED") == "1" and goarch:
        target = canonical((f.cc_triple or "").split("-", 1)[0]) if f.cc_triple else None
        flag = CGO_ARCH_FLAG.get(goarch, goarch)
        if target is None:
            out.append(Check("cgo CC", "fail", f"{f.cc} -arch {flag} gives no target: cgo cannot compile for {goarch}",
                             "install the Xcode command line tools (xcode-select --install), or set CC"))
        elif goarch_of(target) != goarch:
            out.append(Check("cgo CC", "fail", f"{f.cc} -arch {flag} targets {f.cc_triple}, not GOARCH={goarch}: "
                             "cgo objects will not link", f"set CC to a clang that targets {flag}"))
        else:
            out.append(Check("cgo CC", "pass", f"{f.cc} -arch {flag} targets {f.cc_triple}, matching GOARCH={goarch}"))
    release = go_release(f.go_env.get("GOVERSION", ""))
    if first and f.go_uuid is None and build_setting(f.go_version_m, "GOOS") == "darwin":
        out.append(Check("LC_UUID", "fail", f"{first} has no LC_UUID: macOS 26's dyld refuses to run it",
                         "install Go 1.24 or later"))
    elif release and release < (1, 24):
        out.append(Check("LC_UUID", "warn", f"go{release[0]}.{release[1]} writes no LC_UUID into the programs it "
                         "builds: macOS 26's dyld refuses them", "upgrade to Go 1.24 or later"))
    elif release:
        out.append(Check("LC_UUID", "pass", "programs built by this Go carry LC_UUID (macOS 26 requires it)"))
    return out


def gather(env: dict[str, str], go_env: dict, run=subprocess.run) -> MacFacts:  # not run on macOS
    """The facts, from the commands a user would type."""
    from ..binary.macho_slices import slices

    def out(argv: list[str]) -> str:
        try:
            p = run(argv, capture_output=True, text=True, env=env, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return ""
        return p.stdout if p.returncode == 0 else ""

    machine = out(["uname", "-m"]).strip() or os.uname().machine
    translated = out(["sysctl", "-n", "sysctl.proc_translated"]).strip() == "1"
    gos = []
    for d in env.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "go")
        if d and os.access(p, os.X_OK) and not os.path.isdir(p) and p not in [g[0] for g in gos]:
            gos.append((p, out([p, "version"])))
    first = gos[0][0] if gos else None
    brew = shutil.which("brew", path=env.get("PATH"))
    cc = (go_env.get("CC") or "clang").split()
    flag = CGO_ARCH_FLAG.get(go_env.get("GOARCH", ""), go_env.get("GOARCH", ""))
    hw_arch = "x86_64" if machine == "x86_64" and not translated else "arm64"
    uuid = None
    if first:
        real = os.path.join(go_env.get("GOROOT", ""), "bin", "go")
        for s in slices(real if os.path.exists(real) else first):
            if s.arch == hw_arch or uuid is None:
                uuid = s.uuid
    return MacFacts(machine=machine, translated=translated, gos=gos,
                    go_version_m=out([first, "version", "-m", first]) if first else "", go_env=go_env,
                    brew_prefix=(out([brew, "--prefix"]).strip() or None) if brew else None, cc=" ".join(cc),
                    cc_triple=out([*cc, "-arch", flag, "-print-target-triple"]).strip() or None, go_uuid=uuid)
