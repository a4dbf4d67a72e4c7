"""/etc/ld.so.cache as gotrace reads it (tracer/binary/ldcache.py), against ``ldconfig -p``:
glibc's own reading of the cache, which prints each entry's name, its architecture (libc6 for
i386, libc6,x86-64, libc6,x32) and its path, in the cache's order."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import require

# ldconfig -p's architecture words (glibc's elf/cache.c print_entry) and the ELF class and
# machine a program of that architecture has (readelf -h of the libraries listed under them)
ARCHES = {"libc6,x86-64": (62, 64), "libc6,x32": (62, 32), "libc6": (3, 32)}


def ldconfig_entries(*args: str) -> list[tuple[str, str, str]]:
    """(name, architecture words, path) per line of ``ldconfig -p``, in its order."""
    out = subprocess.run(["ldconfig", "-p", *args], capture_output=True, text=True, check=True).stdout
    return [(m[1], m[2], m[3]) for m in re.finditer(r"^\s+(\S+) \(([^)]*)\) => (\S+)$", out, re.M)]


def _machine(path: str) -> tuple[int, int]:
    text = subprocess.run(["readelf", "-h", path], capture_output=True, text=True, check=True).stdout
    bits = 64 if re.search(r"Class:\s+ELF64", text) else 32
    machine = re.search(r"Machine:\s+(.*)", text)[1].strip()
    return {"Advanced Micro Devices X86-64": 62, "Intel 80386": 3}[machine], bits


@pytest.fixture(scope="module")
def system_cache():
    require(shutil.which("ldconfig") is not None, "no ldconfig")
    rows = ldconfig_entries()
    require(bool(rows), "/etc/ld.so.cache is empty or missing")
    return rows


def test_every_entry_is_ldconfigs(system_cache):
    """Each (name, architecture) gotrace reads maps to the path ldconfig -p lists first for it."""
    from tracer.binary import ldcache

    table = ldcache.entries(ldcache.CACHE)
    first: dict[tuple[str, str], str] = {}
    for name, arch, path in system_cache:
        if "hwcap" not in arch:
            first.setdefault((name, arch), path)
    assert len(table) == len(first)
    assert sorted(table.values()) == sorted(first.values())


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_lookup_gives_the_library_of_the_programs_architecture(system_cache, arch):
    """lookup(name, machine, class) for a program of each architecture the cache holds: the path
    ldconfig -p lists first under that name and architecture (a 32-bit x86 program is never given
    the x86-64 or x32 copy of a library of the same name); readelf -h of that path agrees."""
    from tracer.binary import ldcache

    want: dict[str, str] = {}
    for name, words, path in system_cache:
        if words == arch:
            want.setdefault(name, path)
    require(bool(want), f"the cache lists no {arch} library")
    machine, bits = ARCHES[arch]
    sample = sorted(want)[:40]
    assert all(_machine(want[n]) == (machine, bits) for n in sample[:5])  # the premise: ARCHES is right
    assert {n: ldcache.lookup(n, machine, bits) for n in sample} == {n: want[n] for n in sample}
    # a name the cache lists only for other architectures is not there for this program: ld.so's
    # cache lookup takes only entries of its own architecture, then searches the default directories
    others = sorted({name for name, _words, _path in system_cache} - set(want))[:40]
    require(bool(others), f"every name of the cache has a {arch} entry")
    assert {n: ldcache.lookup(n, machine, bits) for n in others} == {n: None for n in others}


# ldconfig -p's words for other architectures (glibc's elf/cache.c print_entry) and their ELF machine and class
# (",64bit" is s390x's, ppc64's, sparc64's and MIPS n64's word alike)
FOREIGN = [("libc6,AArch64", 183, 64), ("libc6,64bit", 22, 64), ("libc6,64bit", 21, 64), ("libc6,hard-float", 40, 32),
           ("libc6,double-float", 243, 64)]


@pytest.mark.parametrize("arch,machine,bits", FOREIGN)
def test_an_architecture_the_cache_does_not_list_finds_nothing_there(system_cache, arch, machine, bits):
    """A program of an architecture ldconfig -p lists no entry for (this x86-64 machine's cache):
    its ld.so finds none of its libraries in the cache, so lookup gives None for every name."""
    from tracer.binary import ldcache

    require(not any(words.startswith(arch) for _n, words, _p in system_cache), f"the cache lists {arch} entries")
    names = sorted({name for name, _words, _path in system_cache})[:60]
    assert {n: ldcache.lookup(n, machine, bits) for n in names} == {n: None for n in names}
