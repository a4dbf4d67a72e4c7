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


def _other_byte_order(data: bytes) -> bytes:
    """The cache as a machine of the other byte order writes it (dl-cache.h's cache_file_new): each
    number of the header and of the entries swapped, the flags' endian bits saying which order;
    the strings as they are."""
    import struct

    at = data.find(b"glibc-ld.so.cache1.1")
    assert at >= 0 and data[at + 28] & 3 == 2  # this machine's ldconfig wrote it little-endian
    out = bytearray(data)
    nlibs, len_strings = struct.unpack_from("<II", data, at + 20)
    struct.pack_into(">II", out, at + 20, nlibs, len_strings)
    out[at + 28] = (data[at + 28] & ~3) | 3
    struct.pack_into(">I", out, at + 32, *struct.unpack_from("<I", data, at + 32))
    for i in range(nlibs):
        struct.pack_into(">iIIIQ", out, at + 48 + 24 * i, *struct.unpack_from("<iIIIQ", data, at + 48 + 24 * i))
    return bytes(out)


def test_a_big_endian_machines_cache_reads_as_its_ld_so_reads_it(system_cache):
    """On a big-endian machine (s390x, ppc64) ldconfig writes the cache in that order: read there,
    it holds the entries ldconfig -p lists of this machine's cache, the same file in the other
    order."""
    from tracer.binary import ldcache

    data = open(ldcache.CACHE, "rb").read()
    assert ldcache.parse(_other_byte_order(data), "big") == ldcache.parse(data) == ldcache.entries(ldcache.CACHE)
    assert len(ldcache.parse(data)) == len({(n, a) for n, a, _p in system_cache if "hwcap" not in a})


def _cut(data: bytes, where: str) -> bytes:
    at = data.find(b"glibc-ld.so.cache1.1")
    return data[:at + 40] if where == "header" else data[:at + 48 + 24 * 10 + 7]


@pytest.mark.parametrize("kind", ["other byte order", "cut in its header", "cut in its entries"])
def test_a_cache_ld_so_cannot_use_is_ignored_as_ld_so_ignores_it(system_cache, tmp_path, kind):
    """This machine's ld.so ignores a cache written in the other byte order, or shorter than its
    header and the entries it counts (dl-cache.c): with such a file bound over /etc/ld.so.cache (a
    private mount namespace), LD_DEBUG=libs shows libc.so.6 found in the system search path after
    the cache. gotrace's search replays the same places, in the same order, to the same file."""
    import os

    from oracles import ld_debug_searches

    from tracer.analysis.libsearch import search
    from tracer.binary import facts, ldcache

    require(os.geteuid() == 0 and shutil.which("unshare") is not None, "needs root and unshare (a mount namespace)")
    data = open(ldcache.CACHE, "rb").read()
    bad = tmp_path / "ld.so.cache"
    bad.write_bytes(_other_byte_order(data) if kind == "other byte order" else _cut(data, kind.split()[-1]))
    assert ldcache.parse(bad.read_bytes()) == {}
    out = subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind "{bad}" /etc/ld.so.cache && exec /bin/true'],
                         env=dict(os.environ, LD_DEBUG="libs"), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    (theirs,) = [s for s in ld_debug_searches(out.stderr) if s["name"] == "libc.so.6"][-1:]
    assert [src for src, _dirs in theirs["places"]] == ["ld.so.cache", "system search path"], theirs
    exe = os.path.realpath("/bin/true")
    steps = search("libc.so.6", [(exe, facts.dyn_object(exe), os.path.dirname(exe))], {}, 62, 64, cache=str(bad))
    assert [s.source for s in steps] == ["ld.so.cache", "system search path"]
    assert steps[-1].hit == theirs["last_tried"]
