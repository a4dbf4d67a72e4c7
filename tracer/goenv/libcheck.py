"""gotrace libcheck: find each -lNAME the way the linker would, and say whether
its architecture matches the target GOARCH.

A cgo build that links a library of the wrong architecture fails late and
obscurely ("undefined symbol", "skipping incompatible"). Search order follows
GNU ld and ld64: the -L directories in order, then the compiler's own search
directories; per directory the shared form first (.so / .dylib / .tbd), then
the static archive. GNU ld scripts (libc.so, libm.so) are followed to the
file they name.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import asdict, dataclass, field

from ..arch import canonical, elf_header_arch, goarch
from ..binary import BadBinary, open_image

SUFFIXES = (".so", ".dylib", ".tbd", ".a")


@dataclass
class LibResult:
    name: str
    path: str | None
    archs: list[str] = field(default_factory=list)  # GOARCH names
    kind: str = ""  # elf | macho | fat | tbd | archive | missing
    status: str = "fail"  # pass | fail
    message: str = ""
    skipped: list = field(default_factory=list)  # candidates of another architecture the linker passes over


def parse_flags(args: list[str]) -> tuple[list[str], list[str]]:
    """(-L dirs, -l names) from linker-style arguments ("-lm", "-L", "dir", "-L/dir")."""
    dirs, libs = [], []
    it = iter(args)
    for a in it:
        if a == "-L":
            dirs.append(next(it, ""))
        elif a.startswith("-L"):
            dirs.append(a[2:])
        elif a == "-l":
            libs.append(next(it, ""))
        elif a.startswith("-l"):
            libs.append(a[2:])
    return dirs, libs


def package_ldflags(pkg_dir: str) -> list[str]:
    """The #cgo LDFLAGS of a package's .go files (every build constraint included)."""
    flags: list[str] = []
    for name in sorted(os.listdir(pkg_dir)):
        if not name.endswith(".go"):
            continue
        with open(os.path.join(pkg_dir, name), errors="replace") as fh:
            for line in fh:
                m = re.match(r"\s*#cgo\s+(?:[^:]*\s)?LDFLAGS:\s*(.*)", line)
                if m:
                    flags += shlex.split(m.group(1))
    return flags


def compiler_dirs(cc: str = "gcc") -> list[str]:
    try:
        out = subprocess.run([cc, "-print-search-dirs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ["/usr/local/lib", "/lib", "/usr/lib"]
    for line in out.splitlines():
        if line.startswith("libraries:"):
            return [os.path.normpath(p) for p in line.split("=", 1)[-1].split(":") if os.path.isdir(p)]
    return []


def _ld_script_target(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if b"GROUP" not in head and b"INPUT" not in head:
        return None
    m = re.search(rb"(?:GROUP|INPUT)\s*\(\s*([^\s)]+)", head)
    return m.group(1).decode() if m else None


def _archive_arch(path: str) -> list[str]:
    """e_machine of the first ELF member of an ar archive."""
    with open(path, "rb") as fh:
        data = fh.read(1 << 20)
    if not data.startswith(b"!<arch>\n"):
        return []
    pos = 8
    while pos + 60 <= len(data):
        size = int(data[pos + 48:pos + 58].strip() or 0)
        member_arch = elf_header_arch(data[pos + 60:pos + 60 + min(size, 64)])
        if member_arch is not None:
            return [goarch(member_arch)]
        pos += 60 + size + (size & 1)
    return []


def _tbd_archs(path: str) -> list[str]:
    text = open(path, errors="replace").read(1 << 16)
    found: list[str] = []
    for m in re.finditer(r"^(?:archs|targets):\s*\[([^\]]*)\]", text, re.M):
        for item in m.group(1).split(","):
            arch = item.strip().split("-")[0]
            g = goarch(canonical(arch) or arch)
            if g and g not in found:
                found.append(g)
    return found


def describe(path: str) -> tuple[str, list[str]]:
    if path.endswith(".tbd"):
        return "tbd", _tbd_archs(path)
    if path.endswith(".a"):
        return "archive", _archive_arch(path)
    img = open_image(path)
    if img.format == "ELF":
        return "elf", [goarch(img.arch)]
    return ("fat" if len(img.slices) > 1 else "macho"), [goarch(a) for a in img.slices]


def candidates(name: str, dirs: list[str]):
    """Every file ``-l{name}`` could mean, in the linker's order: per directory the
    shared form (.so, .dylib, .tbd) before the static archive; ``-l:FILE`` is that
    exact file name. GNU ld scripts (libc.so, libm.so) are followed to their file."""
    names = [name[1:]] if name.startswith(":") else [f"lib{name}{suffix}" for suffix in SUFFIXES]
    for d in dirs:
        for base in names:
            cand = os.path.join(d, base)
            if os.path.isfile(cand):
                target = _ld_script_target(cand) if base.endswith((".so", ".a")) else None
                yield target if target and os.path.exists(target) else cand


def find_library(name: str, dirs: list[str]) -> str | None:
    return next(candidates(name, dirs), None)


def check_libraries(args: list[str], goarch: str, cc: str = "gcc") -> list[LibResult]:
    """Each -lNAME as the linker resolves it: the first candidate of GOARCH's
    architecture wins; one of another architecture is skipped and the search goes
    on, as GNU ld does ("skipping incompatible … when searching for -lNAME")."""
    dirs, libs = parse_flags(args)
    search = dirs + compiler_dirs(cc)
    results = []
    for name in libs:
        flag = f"-l{name}"
        skipped: list[dict] = []
        found = None
        for path in dict.fromkeys(candidates(name, search)):  # a file listed twice is looked at once
            try:
                kind, archs = describe(path)
            except BadBinary as exc:
                skipped.append({"path": path, "archs": [], "why": exc.message})
                continue
            if kind == "archive" and not archs:  # glibc >= 2.34's libdl.a, libpthread.a: empty stubs
                found = LibResult(name, path, [], kind, "pass",
                                  "archive without object files (a stub): links for any architecture")
                break
            if goarch in archs:
                found = LibResult(name, path, archs, kind, "pass", f"{kind} for {', '.join(archs)}")
                break
            skipped.append({"path": path, "archs": archs, "kind": kind})
        if found is not None:
            found.skipped = skipped
            if skipped:
                found.message += "; skipped as the linker would: " + _skipped(skipped)
            results.append(found)
        elif skipped:
            first = skipped[0]
            results.append(LibResult(name, first["path"], first["archs"], first.get("kind", "unreadable"), "fail",
                                     f"no {goarch} {flag}: only " + _skipped(skipped)
                                     + f"; GOARCH={goarch} cannot link it (the Rosetta/cross 'undefined symbol' case)",
                                     skipped))
        else:
            results.append(LibResult(name, None, kind="missing",
                                     message=f"{flag} not found in {', '.join(dirs) or 'the -L dirs'} or "
                                             f"{cc}'s search path"))
    return results


def _skipped(items: list[dict]) -> str:
    return ", ".join(f"{i['path']} ({', '.join(i['archs']) or i.get('why') or 'unknown'})" for i in items)


def to_dicts(results: list[LibResult]) -> list[dict]:
    return [asdict(r) for r in results]
