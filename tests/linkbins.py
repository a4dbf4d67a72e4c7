"""Builds tests/csrc/why/: small programs whose dynamic linking has a story to tell.

- picker: linked against libb.so before liba.so (both define pick; liba calls pick
  itself), with DT_RUNPATH $ORIGIN/run; libs/ holds a second liba.so for
  LD_LIBRARY_PATH; picker-rpath is the same with DT_RPATH (--disable-new-dtags);
  libpre.so interposes pick through LD_PRELOAD.
- fatal: -z now against liblost.so with gone(), which is then rebuilt without it.
- opener + libuser.so: a dlopen that fails on the same missing symbol; opener + libplug.so
  (needs libb.so): a dlopen that works, and dlsym(handle, "plug").
- needy: needs libnothere.so, deleted after the link: found nowhere, exit 127.
- hi + libnext.so: hi calls puts; libnext.so (for LD_PRELOAD) defines puts and calls the next one
  through dlsym(RTLD_NEXT, "puts").
- build_versions: verprog + libver.so, functions at several symbol versions (ver.c).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

SRC = Path(__file__).resolve().parent / "csrc" / "why"


def _cc(*args: str) -> None:
    subprocess.run(["gcc", "-O0", *map(str, args)], check=True, capture_output=True)


def _lib(dst: Path, src: str, *flags: str) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    _cc("-shared", "-fPIC", "-o", dst, SRC / src, *flags, f"-Wl,-soname,{dst.name}")
    return dst


def build(out: Path) -> dict[str, Path]:
    run, libs = out / "run", out / "libs"
    b = {
        "liba": _lib(run / "liba.so", "pick.c", "-DWHO='a'", "-DCALLS_ITSELF"),
        "libb": _lib(run / "libb.so", "pick.c", "-DWHO='b'"),
        "liba-ldpath": _lib(libs / "liba.so", "pick.c", "-DWHO='A'", "-DCALLS_ITSELF"),
        "libpre": _lib(out / "libpre.so", "pick.c", "-DWHO='p'"),
    }
    for name, tags in (("picker", "--enable-new-dtags"), ("picker-rpath", "--disable-new-dtags")):
        _cc("-o", out / name, SRC / "picker.c", f"-L{run}", "-lb", "-la", f"-Wl,{tags},-rpath,$ORIGIN/run")
        b[name] = out / name
    lost = _lib(out / "liblost.so", "lost.c")
    _cc("-o", out / "fatal", SRC / "fatal.c", f"-L{out}", "-llost", "-Wl,-z,now,-rpath,$ORIGIN")
    _lib(out / "libuser.so", "user.c", f"-L{out}", "-llost", "-Wl,-rpath,$ORIGIN")
    _lib(lost, "lost.c", "-DLOST")  # gone() is gone: fatal dies at load, dlopen of libuser fails
    _cc("-o", out / "opener", SRC / "opener.c", "-ldl")
    b.update(fatal=out / "fatal", opener=out / "opener", libuser=out / "libuser.so", liblost=lost)
    b["libplug"] = _lib(out / "libplug.so", "plug.c", f"-L{run}", "-lb", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/run")
    gone = _lib(run / "libnothere.so", "pick.c", "-DWHO='n'", "-Dpick=nothere")
    _cc("-o", out / "needy", SRC / "needy.c", f"-L{run}", "-lnothere", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/run")
    gone.unlink()  # needy now fails to start: libnothere.so is found nowhere
    b["needy"] = out / "needy"
    b["libnext"] = _lib(out / "libnext.so", "nextputs.c", "-ldl")
    _cc("-o", out / "hi", SRC / "hi.c")
    b["hi"] = out / "hi"
    return b


def build_versions(out: Path) -> dict[str, Path]:
    """ver.c's libver.so (versioned: ver.map) in run/, verprog linked against its unversioned stub
    (references without versions) and verprog-new against it (references to old@V2, mid@V3, one@V2),
    libother.so (old@@OTHER) for LD_PRELOAD."""
    run, stub = out / "run", out / "stub"
    _lib(stub / "libver.so", "ver.c", "-DSTUB")
    _cc("-o", out / "verprog", SRC / "verprog.c", f"-L{stub}", "-lver", "-ldl", "-Wl,-rpath,$ORIGIN/run")
    lib = _lib(run / "libver.so", "ver.c", f"-Wl,--version-script={SRC / 'ver.map'}")
    _cc("-o", out / "verprog-new", SRC / "verprog.c", f"-L{run}", "-lver", "-ldl", "-Wl,-rpath,$ORIGIN/run")
    other = _lib(out / "libother.so", "ver.c", "-DOTHER", f"-Wl,--version-script={SRC / 'other.map'}")
    return {"libver": lib, "verprog": out / "verprog", "verprog-new": out / "verprog-new", "libother": other}


def build_searches(out: Path) -> dict[str, Path]:
    """Searches the other tests' objects never make glibc do.

    - nodefl: hi linked -z nodefaultlib with DT_RUNPATH $ORIGIN/empty, needing libm.so.6 first:
      the cache entry refused, no system directory searched, exit 127.
    - mixed: hi with DT_RPATH $ORIGIN/r needing libr.so, which has DT_RUNPATH $ORIGIN/q and needs
      libq.so (in r/q/, and a decoy in r/): libr.so's RUNPATH turns its loader's RPATH off.
    """
    b: dict[str, Path] = {}
    (out / "empty").mkdir(parents=True, exist_ok=True)
    _cc("-o", out / "nodefl", SRC / "hi.c", "-Wl,--no-as-needed", "-lm",
        "-Wl,-z,nodefaultlib,--enable-new-dtags,-rpath,$ORIGIN/empty")
    b["nodefl"] = out / "nodefl"
    r = out / "r"
    b["libq"] = _lib(r / "q" / "libq.so", "pick.c", "-DWHO='q'")
    b["libq-decoy"] = _lib(r / "libq.so", "pick.c", "-DWHO='d'")
    b["libr"] = _lib(r / "libr.so", "pick.c", "-DWHO='r'", "-Dpick=rpick", "-Wl,--no-as-needed", f"-L{r / 'q'}",
                     "-lq", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/q")
    _cc("-o", out / "mixed", SRC / "hi.c", "-Wl,--no-as-needed", f"-L{r}", "-lr",
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/r")
    b["mixed"] = out / "mixed"
    return b


def build_dlopens(out: Path) -> dict[str, Path]:
    """openall (dlopens each argument: independent roots) and what it opens: libcycone.so and
    libcyctwo.so, each needing the other (a DT_NEEDED cycle), and libbroken.so, whose DT_NEEDED
    libgone.so is deleted after the link (its dlopen fails). libplug.so comes from build()."""
    cyc = out / "cyc"
    _lib(cyc / "libcycone.so", "cycle.c", "-DONE")  # a first libcycone.so, for libcyctwo.so to link against
    two = _lib(cyc / "libcyctwo.so", "cycle.c", f"-L{cyc}", "-lcycone", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
    one = _lib(cyc / "libcycone.so", "cycle.c", "-DONE", f"-L{cyc}", "-lcyctwo", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
    gone = _lib(out / "libgone.so", "pick.c", "-DWHO='g'")
    broken = _lib(out / "libbroken.so", "broken.c", f"-L{out}", "-lgone", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
    gone.unlink()
    _cc("-o", out / "openall", SRC / "openall.c", "-ldl")
    return {"openall": out / "openall", "libcycone": one, "libcyctwo": two, "libbroken": broken}
