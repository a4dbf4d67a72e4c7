"""Where glibc's ld.so looks for a library, in its order, and where it finds it.

The order is _dl_map_object's (elf/dl-load.c), the one LD_DEBUG=libs prints:

1. a name with a slash is opened as it is: no search;
2. DT_RPATH of the object that asked, then of the object that loaded that one,
   and up to the executable — skipped entirely when the asker has DT_RUNPATH
   (and an object with DT_RUNPATH contributes no DT_RPATH of its own);
3. LD_LIBRARY_PATH;
4. DT_RUNPATH of the asker only (never inherited);
5. /etc/ld.so.cache, then the default directories — the ones the program's own
   ld.so was built with (binary/ldso_dirs.py: Debian's i386 ld.so searches /lib32
   first, its x86_64 one /lib/x86_64-linux-gnu). When the asker was linked
   -z nodefaultlib (DF_1_NODEFLIB) the cache is still read but an entry under a
   default directory is refused, and the default directories are skipped.

$ORIGIN is the asker's directory (the executable's: the real path of the
running file). In each directory ld.so also tries glibc-hwcaps/<level>/ (and,
before glibc 2.37, tls/ and platform subdirectories) first, subdirectories
that depend on the CPU; they are left out here: directories and the files in
them are what a fix changes. Replayed from today's files and the recorded
environment: where the files moved since, the answer says so.
"""
from __future__ import annotations

import functools
import glob
import os
import platform
import re
from dataclasses import dataclass, field

from ..binary import facts, ldcache, ldso_dirs

# AT_PLATFORM, what $PLATFORM expands to: the kernel's name for the process's machine (x86_64's
# kernel gives an IA-32 program "i686"; ld.so --help lists it as "(AT_PLATFORM; supported, searched)")
PLATFORMS = {62: "x86_64", 3: "i686", 183: "aarch64"}
LDSO_GLOBS = ("/lib/ld-*.so*", "/lib64/ld-*.so*", "/lib32/ld-*.so*")


@dataclass
class Step:
    """One place searched: its source as LD_DEBUG=libs names it, its directories, the file found there."""

    source: str  # "RPATH from file X" | "LD_LIBRARY_PATH" | "RUNPATH from file X" | "ld.so.cache" | "system search path"
    dirs: list[str] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)  # DIR/NAME per directory, in order, up to the hit
    hit: str | None = None

    def as_dict(self) -> dict:
        return {"source": self.source, "dirs": self.dirs, "tried": self.tried, "hit": self.hit}


def _built_in(machine: int, bits: int, interp: str | None) -> list[str] | None:
    """The system search path of the program's ld.so (``interp``, its PT_INTERP); when that file
    cannot be read (a session from another machine), of this machine's ld.so for the same machine
    and class."""
    return ldso_dirs.system_dirs(interp) or _host_built_in(machine, bits)


@functools.lru_cache(maxsize=16)
def _host_built_in(machine: int, bits: int) -> list[str] | None:
    for path in sorted({os.path.realpath(p) for pattern in LDSO_GLOBS for p in glob.glob(pattern)}):
        obj = facts.dyn_object(path)
        if obj is not None and (obj.machine, obj.bits) == (machine, bits):
            dirs = ldso_dirs.system_dirs(path)
            if dirs:
                return dirs
    return None


def default_dirs(machine: int, bits: int, interp: str | None = None) -> list[str]:
    """glibc's built-in search path (_built_in); with no ld.so of that machine here at all, what
    upstream glibc builds for its ABI (_upstream_dirs: no multiarch layout)."""
    return _built_in(machine, bits, interp) or _upstream_dirs(machine, bits, interp)


# e_machine values whose 64-bit glibc puts its libraries in /lib64 (glibc 2.36's configure fragments,
# sysdeps/unix/sysv/linux/{x86_64/64,s390/s390-64,sparc/sparc64,powerpc/powerpc64,aarch64,loongarch,
# mips (n64)}/configure: libc_cv_slibdir='/lib64'); every other ABI without a fragment takes
# sysdeps/gnu/configure's /lib.
_LIB64 = {62: "x86_64", 22: "s390x", 43: "sparc64", 21: "ppc64", 183: "aarch64", 258: "loongarch64", 8: "mips64"}


def _upstream_dirs(machine: int, bits: int, interp: str | None) -> list[str]:
    """The system search path upstream glibc compiles in (slibdir, then libdir: /usr and the same),
    for a program of a machine whose ld.so is not here to ask. The ABIs that need more than the
    machine and class are told by their ld.so's name, which encodes it: RISC-V's float ABI
    (ld-linux-riscv64-lp64d.so.1 → /lib64/lp64d, riscv/configure), MIPS n32 (/lib32/ld.so.1 →
    /lib32, mips/configure), x32 (/libx32, x86_64/x32/configure)."""
    name = os.path.basename(interp or "")
    if machine == 243:  # RISC-V
        m = re.search(r"-(lp64d?|ilp32d?)\.so", name)
        lib = f"/lib{bits}/{m.group(1) if m else ('lp64d' if bits == 64 else 'ilp32d')}"
    elif machine == 62 and bits == 32:
        lib = "/libx32"
    elif machine == 8 and bits == 32 and (interp or "").startswith("/lib32/"):
        lib = "/lib32"
    elif bits == 64 and machine in _LIB64:
        lib = "/lib64"
    else:
        lib = "/lib"
    return [lib, "/usr" + lib]


def expand(entry: str, origin: str | None, machine: int, bits: int = 64, interp: str | None = None) -> str | None:
    """$ORIGIN, $LIB and $PLATFORM in one search-path entry (None: $ORIGIN with no origin known).
    $LIB is the ld.so's own library directory, the first of its system search path without the
    leading "/" (lib/x86_64-linux-gnu on Debian's x86_64, lib32 for its i386 multilib ld.so)."""
    out = entry
    for token in ("${ORIGIN}", "$ORIGIN"):
        if token in out:
            if origin is None:
                return None
            out = out.replace(token, origin)
    if "$LIB" in out or "${LIB}" in out:
        lib = default_dirs(machine, bits, interp)[0].lstrip("/")
        out = out.replace("${LIB}", lib).replace("$LIB", lib)
    where = PLATFORMS.get(machine, platform.machine())
    return out.replace("${PLATFORM}", where).replace("$PLATFORM", where)


def usable(path: str, machine: int, bits: int) -> bool:
    """ld.so's open_verify: a file of the asker's machine and class (others are skipped)."""
    obj = facts.dyn_object(path) if os.path.isfile(path) else None
    return obj is not None and obj.machine == machine and obj.bits == bits


def _in_dirs(step: Step, name: str, machine: int, bits: int) -> Step:
    for d in step.dirs:
        candidate = os.path.join(d or ".", name)
        step.tried.append(candidate)
        if usable(candidate, machine, bits):
            step.hit = candidate
            break
    return step


def search(name: str, chain: list[tuple[str, object, str | None]], env: dict[str, str], machine: int,
           bits: int, cache: str = ldcache.CACHE) -> list[Step]:
    """The steps of glibc's search for ``name``, up to the one that finds it.

    ``chain``: the asker first, then the object that loaded it, up to the
    executable: (name as the session shows it, its DynObject or None, its
    $ORIGIN directory)."""
    steps: list[Step] = []

    def done() -> bool:
        return bool(steps) and steps[-1].hit is not None

    asker_name, asker, asker_origin = chain[0] if chain else (None, None, None)
    interp = next((obj.interpreter for _who, obj, _origin in reversed(chain) if obj is not None and obj.interpreter),
                  None)  # the executable's PT_INTERP: the ld.so whose rules these are
    if asker is None or not asker.runpath:
        for who, obj, origin in chain:
            if obj is None or obj.runpath or not obj.rpath:
                continue
            dirs = [d for d in (expand(e, origin, machine, bits, interp) for e in obj.rpath) if d is not None]
            steps.append(_in_dirs(Step(f"RPATH from file {who}", dirs), name, machine, bits))
            if done():
                return steps
    ld_path = env.get("LD_LIBRARY_PATH")
    if ld_path:
        dirs = [d or "." for d in ld_path.replace(";", ":").split(":")]
        steps.append(_in_dirs(Step("LD_LIBRARY_PATH", dirs), name, machine, bits))
        if done():
            return steps
    if asker is not None and asker.runpath:
        dirs = [d for d in (expand(e, asker_origin, machine, bits, interp) for e in asker.runpath) if d is not None]
        steps.append(_in_dirs(Step(f"RUNPATH from file {asker_name}", dirs), name, machine, bits))
        if done():
            return steps
    nodeflib = asker is not None and asker.nodeflib
    found = ldcache.lookup(name, machine, bits, cache, ldso_dirs.hwcaps_searched(interp), interp)
    step = Step("ld.so.cache", [cache])
    if found:
        step.tried.append(found)
        # -z nodefaultlib still reads the cache, but refuses an entry under a default directory
        # (_dl_map_object's prefix test against system_dirs)
        refused = nodeflib and any(found.startswith(d.rstrip("/") + "/") for d in default_dirs(machine, bits, interp))
        if not refused and usable(found, machine, bits):
            step.hit = found
    steps.append(step)
    if done() or nodeflib:
        return steps
    steps.append(_in_dirs(Step("system search path", default_dirs(machine, bits, interp)), name, machine, bits))
    return steps
