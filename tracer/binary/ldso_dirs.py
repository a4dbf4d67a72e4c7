"""The system search path a glibc ld.so was built with (elf/dl-load.c's ``system_dirs``).

The default directories are not the same for every program on one machine: Debian's x86_64
ld.so searches /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib, /usr/lib, while the
i386 ld.so of libc6-i386 (gcc-12-multilib) (/lib/ld-linux.so.2, the one `gcc -m32` programs
and Go's GOARCH=386 cgo programs load) searches /lib32, /usr/lib32, /lib, /usr/lib, and
Fedora's /lib64, /usr/lib64. glibc compiles the list into ld.so as one string, each
directory ending in "/" and a NUL (SYSTEM_DIRS, made by gen-trusted-dirs); `ld.so --help`
prints the same list as "(system search path)". Read from the file rather than by running
it: a session's program names the ld.so, and reading works for any machine's ld.so, with
qemu or without.
"""
from __future__ import annotations

import functools
import os
import re

# two or more NUL-terminated absolute directories, each ending in "/", with a lib* component
_DIR = rb"/(?:[A-Za-z0-9_.+-]+/)*lib[A-Za-z0-9_.+-]*/(?:[A-Za-z0-9_.+-]+/)*\x00"
_RUN = re.compile(rb"(?<=\x00)(?:" + _DIR + rb"){2,}")
_LIMIT = 8 << 20  # an ld.so is ~250 KiB; a file this big is not one


def system_dirs(interp: str | None) -> list[str] | None:
    """The directories of ``interp``'s system search path, in its order, without their
    trailing "/"; None when the file is missing, unreadable or holds no such list."""
    if not interp:
        return None
    try:
        st = os.stat(interp)
    except OSError:
        return None
    return _read(os.path.realpath(interp), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _read(path: str, _mtime_ns: int, size: int) -> list[str] | None:
    if size > _LIMIT:
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    runs = [m.group() for m in _RUN.finditer(data)]
    if not runs:
        return None
    # the list is the run ld.so holds (it may be held twice: dl-load.c's and dl-usage.c's copies);
    # of several different runs, the one held most often, then the first
    best = max(runs, key=lambda r: (runs.count(r), -runs.index(r)))
    return [d.decode("utf-8", "replace").rstrip("/") or "/" for d in best.split(b"\x00") if d]


def hwcaps_searched(interp: str | None) -> tuple[str, ...]:
    """The glibc-hwcaps subdirectories ``interp`` searches on this CPU, best first (x86-64-v4 …
    x86-64-v2 where the CPU has them): what it prints under "Subdirectories of glibc-hwcaps
    directories, in priority order" as "(supported, searched)". Unlike the search path this is
    the CPU's answer, so the ld.so is run (`--help`, a clean environment: GLIBC_TUNABLES could
    mask some); () when it cannot be (gone, another machine's without a handler) or lists none.
    Only a glibc ld.so the system installed is run: root's, under /lib* or /usr/lib*, writable by
    root alone — never a PT_INTERP a program under study chose."""
    if not interp:
        return ()
    path = os.path.realpath(interp)
    try:
        st = os.stat(path)
    except OSError:
        return ()
    if (not re.match(r"/(usr/)?lib[^/]*/", path) or st.st_uid != 0 or st.st_mode & 0o022
            or system_dirs(path) is None):
        return ()
    return _hwcaps(path, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _hwcaps(path: str, _mtime_ns: int) -> tuple[str, ...]:
    import subprocess

    try:
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20, env={}).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    section = out.split("Subdirectories of glibc-hwcaps directories, in priority order:", 1)
    if len(section) < 2:
        return ()
    names = []
    for line in section[1].split("\n\n", 1)[0].splitlines():
        m = re.match(r"\s+(\S+) \(([^)]*)\)$", line)
        if m and "searched" in m.group(2):
            names.append(m.group(1))
    return tuple(names)
