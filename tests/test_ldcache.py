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


def test_a_cache_written_by_s390x_ldconfig(tmp_path):
    """s390x's own ldconfig (Debian's libc-bin:s390x, static-pie, run by qemu-s390x; a pinned tool of
    tests/fixtures/elf-corpus.txt) builds a cache over the corpus' s390x libraries: the host's ldconfig
    refuses it ("wrong endianness": ldconfig writes its machine's byte order), s390x's ldconfig -p lists
    each as "libc6,64bit". Read as an s390x ld.so reads it, gotrace gets the same entries, and gives them
    to an s390x program (EM_S390, ELFCLASS64: FLAG_S390_LIB64) and to no x86-64 one. Before, it read every cache as little-endian
    and keyed s390x by MIPS n32's flag."""
    import elf_oracle

    from tracer.binary import ldcache

    require(shutil.which("qemu-s390x") is not None, "qemu-user is not installed (scripts/setup.sh)")
    pins = [(k, w, p) for k, _s, w, p in elf_oracle.manifest() if k == "tool" and "libc-bin" in p]
    tool = elf_oracle.unpacked_dir(*pins[0]) / "sbin" / "ldconfig"
    libs = [elf_oracle.CORPUS / "debian" / "s390x" / pkg for pkg in ("libacl1", "zlib1g", "libzstd1")]
    require(tool.is_file() and all(p.is_dir() for p in libs),
            "the ELF corpus is not fetched: bash scripts/fetch-elf-corpus.sh")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/ld.so.conf").write_text("/usr/lib/s390x-linux-gnu\n")
    shutil.copytree(libs[0] / "usr/lib/s390x-linux-gnu", root / "usr/lib/s390x-linux-gnu", symlinks=True)
    for pkg in libs[1:]:
        for sub in ("usr/lib/s390x-linux-gnu", "lib/s390x-linux-gnu"):
            if (pkg / sub).is_dir():
                shutil.copytree(pkg / sub, root / "usr/lib/s390x-linux-gnu", symlinks=True, dirs_exist_ok=True)
    subprocess.run(["qemu-s390x", str(tool), "-r", str(root), "-X"], check=True)
    cache = root / "etc/ld.so.cache"
    host = subprocess.run(["ldconfig", "-p", "-C", str(cache)], capture_output=True, text=True)
    assert "wrong endianness" in host.stdout + host.stderr  # the premise: a big-endian cache
    out = subprocess.run(["qemu-s390x", str(tool), "-p", "-C", str(cache)], capture_output=True, text=True,
                         check=True).stdout
    want = [(m[1], m[2], m[3]) for m in re.finditer(r"^\s+(\S+) \(([^)]*)\) => (\S+)$", out, re.M)]
    assert {w for _n, w, _p in want} == {"libc6,64bit"} and {n for n, _w, _p in want} >= {"libacl.so.1", "libz.so.1"}
    assert ldcache.parse(cache.read_bytes()) == {}  # this machine's ld.so would ignore it (see below)
    assert sorted((n, p) for (n, _flags), p in ldcache.parse(cache.read_bytes(), "big").items()) == \
        sorted((n, p) for n, _w, p in want)
    for name, _w, path in want:
        assert ldcache.lookup(name, 22, 64, str(cache)) == path
        assert ldcache.lookup(name, 62, 64, str(cache)) is None


def test_a_cache_that_names_no_byte_order_is_read_in_this_machines(system_cache, tmp_path):
    """The system cache with its header's byte-order flags zeroed (ldconfigs before glibc 2.33 left them
    unset): glibc reads such a cache in its own byte order (dl-cache.h's cache_file_new_matches_endian),
    and ldconfig -p -C lists the same entries from it; so does gotrace."""
    from tracer.binary import ldcache

    data = bytearray(open(ldcache.CACHE, "rb").read())
    at = data.find(ldcache.NEW_MAGIC)
    assert at >= 0 and data[at + 28] == 2  # the premise: little-endian, said so
    data[at + 28] = 0
    unset = tmp_path / "ld.so.cache"
    unset.write_bytes(bytes(data))
    listed = ldconfig_entries("-C", str(unset))
    assert listed == system_cache
    first: dict[tuple[str, str], str] = {}
    for name, arch, path in listed:
        if "hwcap" not in arch:
            first.setdefault((name, arch), path)
    assert sorted(ldcache.parse(bytes(data)).values()) == sorted(first.values())


def test_a_cut_cache_and_another_file_have_no_entries(tmp_path):
    """The system cache cut after its magic (20 bytes), and a file of text: ldconfig -p -C lists no entry
    of either ("0 libs found"; "File is not a cache file", exit 1), and gotrace finds none, rather than
    failing or reading a header that is not there."""
    from tracer.binary import ldcache

    data = open(ldcache.CACHE, "rb").read()
    at = data.find(ldcache.NEW_MAGIC)
    for name, body in (("cut", data[:at + 20]), ("text", b"not a cache file, only text long enough for a header\n" * 3)):
        path = tmp_path / name
        path.write_bytes(body)
        out = subprocess.run(["ldconfig", "-p", "-C", str(path)], capture_output=True, text=True)
        assert not re.search(r"^\s+\S+ \([^)]*\) => ", out.stdout, re.M) and out.returncode == (name == "text")
        assert ldcache.parse(body) == {}


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
