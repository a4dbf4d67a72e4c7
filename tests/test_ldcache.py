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
        if words in TAKES.get(arch, {arch}):
            want.setdefault(name, path)
    require(bool(want), f"the cache lists no {arch} library")
    machine, bits = ARCHES[arch]
    sample = sorted(want)[:40]
    assert all(_machine(want[n]) == (machine, bits) for n in sample[:5] if "ld-linux" not in n)  # ARCHES is right
    assert {n: ldcache.lookup(n, machine, bits) for n in sample} == {n: want[n] for n in sample}
    # a name the cache lists only for other architectures is not there for this program: ld.so's
    # cache lookup takes only entries of its own architecture, then searches the default directories
    others = sorted({name for name, _words, _path in system_cache} - set(want))[:40]
    require(bool(others), f"every name of the cache has a {arch} entry")
    assert {n: ldcache.lookup(n, machine, bits) for n in others} == {n: None for n in others}


# Which entries an ABI's ld.so takes (glibc 2.36's dl-cache.h _dl_cache_check_flags), by ldconfig -p's
# words (elf/cache.c print_entry: FLAG_ELF prints "ELF", FLAG_ELF_LIBC6 "libc6"): the generic check
# (i386) takes FLAG_ELF or libc6 entries — ldconfig marks an i386 ld.so itself FLAG_ELF — and ARM's
# takes its float ABI's or an unmarked libc6 entry; every other ABI its own word only.
TAKES = {"libc6": {"libc6", "ELF"}, "libc6,hard-float": {"libc6,hard-float", "libc6"}}

# ldconfig -p's words for other architectures (glibc's elf/cache.c print_entry) and their ELF machine and class
# (",64bit" is s390x's, ppc64's, sparc64's and MIPS n64's word alike)
FOREIGN = [("libc6,AArch64", 183, 64), ("libc6,64bit", 22, 64), ("libc6,64bit", 21, 64), ("libc6,hard-float", 40, 32),
           ("libc6,double-float", 243, 64)]


@pytest.mark.parametrize("arch,machine,bits", FOREIGN)
def test_an_architecture_the_cache_does_not_list_finds_only_what_its_ld_so_takes(system_cache, arch, machine,
                                                                                 bits):
    """A program of an architecture ldconfig -p lists no entry for (this x86-64 machine's cache): its
    ld.so takes no x86-64 entry — none at all, unless its check also takes unmarked libc6 entries
    (32-bit ARM's: then the first of those, which its ld.so then refuses by their ELF header)."""
    from tracer.binary import ldcache

    require(not any(words.startswith(arch) for _n, words, _p in system_cache), f"the cache lists {arch} entries")
    names = sorted({name for name, _words, _path in system_cache})[:60] + ["libc.so.6", "libm.so.6"]
    want: dict[str, str | None] = {n: None for n in names}
    for name, words, path in system_cache:
        if name in want and want[name] is None and words in TAKES.get(arch, {arch}):
            want[name] = path
    assert {n: ldcache.lookup(n, machine, bits) for n in names} == want


# Each machine's own ldconfig (a pinned tool of tests/fixtures/elf-corpus.txt, run by qemu-user) over
# the corpus' libraries of that machine: (Debian arch, qemu, multiarch triplet, e_machine, class)
OWN_LDCONFIG = [("s390x", "qemu-s390x", "s390x-linux-gnu", 22, 64),
                ("arm64", "qemu-aarch64", "aarch64-linux-gnu", 183, 64),
                ("armhf", "qemu-arm", "arm-linux-gnueabihf", 40, 32),
                ("armel", "qemu-arm", "arm-linux-gnueabi", 40, 32),
                ("ppc64el", "qemu-ppc64le", "powerpc64le-linux-gnu", 21, 64),
                ("mips64el", "qemu-mips64el", "mips64el-linux-gnuabi64", 8, 64),
                ("riscv64", "qemu-riscv64", "riscv64-linux-gnu", 243, 64)]
OTHERS = [(62, 64), (62, 32), (3, 32), (183, 64), (22, 64), (40, 32), (21, 64), (8, 64), (243, 64), (43, 64), (50, 64),
          (40, 32, "/lib/ld-linux.so.3")]
# 32-bit ARM's ABIs by the ld.so a program names (PT_INTERP): the machine and class are the same
ARM_LDSO = {"armel": "/lib/ld-linux.so.3", "armhf": "/lib/ld-linux-armhf.so.3"}


@pytest.mark.parametrize("arch,qemu,triplet,machine,bits", OWN_LDCONFIG, ids=[a[0] for a in OWN_LDCONFIG])
def test_a_cache_written_by_the_machines_own_ldconfig(tmp_path, arch, qemu, triplet, machine, bits):
    """The machine's own ldconfig (Debian's libc-bin of that architecture, static, run by qemu-user)
    builds a cache over the corpus' libraries of that machine and lists it with -p: gotrace gets the
    same entries, reading the file as that machine's ld.so does (s390x's is big-endian: the host's
    ldconfig refuses it, "wrong endianness"), and gives them to a program of that machine and class
    and to no program of another ABI (each ld.so takes its own flag: dl-cache.h). Before, gotrace
    read every cache as little-endian, keyed s390x by MIPS n32's flag and let a machine without a
    key of its own take any libc6 entry."""
    import elf_oracle

    from tracer.binary import ldcache

    require(shutil.which(qemu) is not None, f"no {qemu}: qemu-user is not installed (scripts/setup.sh)")
    pins = [(k, w, p) for k, _s, w, p in elf_oracle.manifest() if k == "tool" and w.endswith("/" + arch)
            and p.rsplit("/", 1)[-1].startswith("libc-bin_")]
    tool = next((t for t in (elf_oracle.unpacked_dir(*pins[0]) / d / "ldconfig" for d in ("sbin", "usr/sbin"))
                 if t.is_file()), elf_oracle.unpacked_dir(*pins[0]) / "sbin" / "ldconfig")  # trixie: /usr merged
    libs = [elf_oracle.CORPUS / "debian" / arch / pkg for pkg in ("libacl1", "zlib1g", "libzstd1")]
    require(tool.is_file() and all(p.is_dir() for p in libs),
            "the ELF corpus is not fetched: bash scripts/fetch-elf-corpus.sh")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/ld.so.conf").write_text(f"/usr/lib/{triplet}\n")
    for pkg in libs:
        for sub in (f"usr/lib/{triplet}", f"lib/{triplet}"):
            if (pkg / sub).is_dir():
                shutil.copytree(pkg / sub, root / "usr/lib" / triplet, symlinks=True, dirs_exist_ok=True)
    subprocess.run([qemu, str(tool), "-r", str(root), "-X"], check=True)
    cache = root / "etc/ld.so.cache"
    out = subprocess.run([qemu, str(tool), "-p", "-C", str(cache)], capture_output=True, text=True, check=True).stdout
    want = [(m[1], m[2], m[3]) for m in re.finditer(r"^\s+(\S+) \(([^)]*)\) => (\S+)$", out, re.M)]
    assert {n for n, _w, _p in want} >= {"libacl.so.1", "libz.so.1", "libzstd.so.1"}, out
    order = "big" if arch == "s390x" else "little"
    if order == "big":
        host = subprocess.run(["ldconfig", "-p", "-C", str(cache)], capture_output=True, text=True)
        assert "wrong endianness" in host.stdout + host.stderr  # the premise: a big-endian cache
        assert ldcache.parse(cache.read_bytes()) == {}  # this machine's ld.so would ignore it
    assert sorted((n, p) for (n, _flags), p in ldcache.parse(cache.read_bytes(), order).items()) == \
        sorted((n, p) for n, _w, p in want)
    own = (machine, bits, ARM_LDSO["armel"]) if arch == "armel" else (machine, bits)
    for name, _w, path in want:
        assert {abi: ldcache.lookup(name, *abi[:2], str(cache), interp=abi[2] if len(abi) > 2 else None)
                for abi in OTHERS} == {abi: path if abi == own else None for abi in OTHERS}
    if arch in ARM_LDSO:  # the program's own search (libsearch), its ld.so named by its PT_INTERP: the cache's file
        from tracer.analysis.libsearch import search
        from tracer.binary import facts

        getfacl = elf_oracle.CORPUS / "debian" / arch / "acl" / "bin/getfacl"
        require(getfacl.is_file(), "the ELF corpus is not fetched: bash scripts/fetch-elf-corpus.sh")
        prog = facts.dyn_object(str(getfacl))
        assert prog.interpreter == ARM_LDSO[arch] and "libacl.so.1" in prog.needed  # readelf -l and -d say so too
        steps = search("libacl.so.1", [(str(getfacl), prog, str(getfacl.parent))], {}, machine, bits, cache=str(cache))
        # the cache's entry is tried (the file itself is in the test's root, not at that path here)
        (cached,) = [s for s in steps if s.source == "ld.so.cache"]
        assert cached.tried == [dict((n, p) for n, _w, p in want)["libacl.so.1"]]


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


def _unusable(data: bytes, kind: str) -> bytes:
    """The system cache made into one ld.so refuses (dl-cache.c's _dl_load_cache_lookup): in the other
    byte order, with the header's byte-order bits 1 (cache_file_new_flags_endian_invalid), or cut —
    inside its header, after ten entries, one byte short of its last entry."""
    import struct

    at = data.find(b"glibc-ld.so.cache1.1")
    nlibs = struct.unpack_from("<I", data, at + 20)[0]
    if kind == "other byte order":
        return _other_byte_order(data)
    if kind == "invalid byte order":
        return data[:at + 28] + bytes([(data[at + 28] & ~3) | 1]) + data[at + 29:]
    end = {"cut in its header": 40, "cut in its entries": 48 + 24 * 10 + 7, "cut in its last entry": 48 + 24 * nlibs - 1}
    return data[:at + end[kind]]


@pytest.mark.parametrize("kind", ["other byte order", "invalid byte order", "cut in its header", "cut in its entries",
                                  "cut in its last entry"])
def test_a_cache_ld_so_cannot_use_is_ignored_as_ld_so_ignores_it(system_cache, tmp_path, kind):
    """This machine's ld.so ignores a cache written in the other byte order or saying an invalid one,
    or shorter than its header and the entries it counts (dl-cache.c): with such a file bound over /etc/ld.so.cache (a
    private mount namespace), LD_DEBUG=libs shows libc.so.6 found in the system search path after
    the cache. gotrace's search replays the same places, in the same order, to the same file."""
    import os

    from oracles import ld_debug_searches

    from tracer.analysis.libsearch import search
    from tracer.binary import facts, ldcache

    require(os.geteuid() == 0 and shutil.which("unshare") is not None, "needs root and unshare (a mount namespace)")
    data = open(ldcache.CACHE, "rb").read()
    bad = tmp_path / "ld.so.cache"
    bad.write_bytes(_unusable(data, kind))
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


def test_hwcaps_copies_are_taken_as_ld_so_takes_them(tmp_path):
    """Libraries with copies in hwcaps subdirectories, in a root of their own whose cache ldconfig -r
    wrote (it lists those copies first): libz.so.1 under glibc-hwcaps/x86-64-v2 and x86-64-v3;
    libisa.so.1 built for x86-64-v3 (its ISA level in the entry's hwcap) under glibc-hwcaps/x86-64-v3
    and under the legacy tls/; libtls.so.1 under tls/ alone. The ld.so there loads, of each, the
    copy of the best glibc-hwcaps subdirectory this CPU supports, else the tls/ one (glibc 2.36 takes
    it on every CPU), else the plain one. Oracle: that ld.so, run in the root (chroot): LD_DEBUG=libs's
    "calling init:" lines; gotrace's lookup, given what this machine's ld.so --help says it searches,
    names the same files."""
    import os

    from tracer.binary import ldcache, ldso_dirs

    require(os.geteuid() == 0 and shutil.which("chroot") is not None, "needs root and chroot")
    root = tmp_path / "root"
    libdir = root / "usr/lib/x86_64-linux-gnu"
    (tmp_path / "lib.c").write_text("int lib_answer(void) { return 42; }\n")
    for name, subdirs in (("libz.so.1", ("", "glibc-hwcaps/x86-64-v2", "glibc-hwcaps/x86-64-v3")),
                          ("libisa.so.1", ("", "glibc-hwcaps/x86-64-v3", "tls")), ("libtls.so.1", ("", "tls")),
                          ("libvtwo.so.1", ("", "glibc-hwcaps/x86-64-v2"))):
        for sub in subdirs:
            (libdir / sub).mkdir(parents=True, exist_ok=True)
            if name == "libz.so.1":
                shutil.copy(os.path.realpath("/usr/lib/x86_64-linux-gnu/libz.so.1"), libdir / sub / name)
                continue
            isa = [f"-Wl,-z,{sub.rsplit('/', 1)[-1]}"] if "glibc-hwcaps" in sub else []
            subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(libdir / sub / name), f"-Wl,-soname,{name}", *isa,
                            str(tmp_path / "lib.c")], check=True)
    (root / "lib/x86_64-linux-gnu").mkdir(parents=True)
    shutil.copy(os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6"), root / "lib/x86_64-linux-gnu/libc.so.6")
    (root / "lib64").mkdir()
    shutil.copy(os.path.realpath("/lib64/ld-linux-x86-64.so.2"), root / "lib64/ld-linux-x86-64.so.2")
    (root / "etc").mkdir()
    (root / "etc/ld.so.conf").write_text("/usr/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n")
    (tmp_path / "z.c").write_text("#include <zlib.h>\nint lib_answer(void);\n"
                                  "int main(void) { return zlibVersion()[0] == 0 || lib_answer() != 42; }\n")
    subprocess.run(["gcc", "-o", str(root / "z"), str(tmp_path / "z.c"), "-Wl,--no-as-needed", "-lz", f"-L{libdir}",
                    "-l:libisa.so.1", "-l:libtls.so.1", "-l:libvtwo.so.1"], check=True)
    subprocess.run(["ldconfig", "-r", str(root)], check=True)
    cache = str(root / "etc/ld.so.cache")
    listed = subprocess.run(["ldconfig", "-p", "-C", cache], capture_output=True, text=True, check=True).stdout
    assert listed.count('hwcap: "x86-64-v') == 4 and listed.count("hwcap: 0x8000000000000000") == 2, listed

    def loaded(*ldso_options: str) -> dict[str, str]:
        argv = [shutil.which("chroot"), str(root), *(["/lib64/ld-linux-x86-64.so.2", *ldso_options] if ldso_options
                                                      else []), "/z"]
        run = subprocess.run(argv, env={"LD_DEBUG": "libs"}, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        found = re.findall(r"calling init: (\S*/lib\w+\.so\.1)$", run.stderr, re.M)
        assert {os.path.basename(p) for p in found} == {"libz.so.1", "libisa.so.1", "libtls.so.1", "libvtwo.so.1"}
        return {os.path.basename(p): p for p in found}

    searched = ldso_dirs.hwcaps_searched("/lib64/ld-linux-x86-64.so.2")
    assert {n: ldcache.lookup(n, 62, 64, cache, searched) for n in loaded()} == loaded()
    assert loaded()["libtls.so.1"] == "/usr/lib/x86_64-linux-gnu/tls/libtls.so.1"  # the premise: tls/ taken
    # an ld.so told to search no glibc-hwcaps subdirectory (--glibc-hwcaps-mask): the tls/ or plain copies
    masked = loaded("--glibc-hwcaps-mask", "none")
    assert {n: ldcache.lookup(n, 62, 64, cache) for n in masked} == masked


def _cache_file(rows: list[tuple[int, str, str]], order: str, endian_bits: int) -> bytes:
    """A cache as ldconfig writes it (glibc 2.36's dl-cache.h cache_file_new, no libc5 table, no
    extension): header, one 24-byte entry per (flags, name, path) — same-named entries next to each
    other, as ld.so's binary search expects — then the strings, whose offsets count from the header."""
    import struct

    pack = "<" if order == "little" else ">"
    strings, offsets = bytearray(), {}
    base = 48 + 24 * len(rows)
    for text in sorted({t for _f, name, path in rows for t in (name, path)}):
        offsets[text] = base + len(strings)
        strings += text.encode() + b"\0"
    head = bytearray(b"glibc-ld.so.cache1.1" + struct.pack(pack + "II", len(rows), len(strings)) + bytes(20))
    head[28] = endian_bits
    body = b"".join(struct.pack(pack + "iIIIQ", flags, offsets[name], offsets[path], 0, 0) for flags, name, path in rows)
    return bytes(head) + body + bytes(strings)


# SPARC64's own glibc 2.36 (Debian's libc6-sparc64-cross, run by qemu-user): its ld.so is the oracle for which
# cache entries a SPARC64 program takes, and in which byte order it reads the file
SPARC64_LDSO = "/usr/sparc64-linux-gnu/lib64/ld-linux.so.2"
FLAGS = [0x0103, 0x0003, 0x0001, 0x0303, 0x0203, 0x0703, 0x0403, 0x0100, 0x0503]


@pytest.mark.parametrize("header", ["big", "unset", "little"])
def test_sparc64s_own_ld_so_takes_the_entries_gotrace_gives_it(tmp_path, header):
    """A cache naming libq.so.1 under one flag, for each of FLAGS, written big-endian (as SPARC64's ldconfig
    writes it), big-endian with no byte order said (ldconfig before glibc 2.33), or little-endian: SPARC64's
    ld.so, asked to load a library needing libq.so.1 (qemu-sparc64 with the cache as its /etc/ld.so.cache),
    tries the cache's file ("search cache=", then "trying file=", LD_DEBUG=libs) exactly when gotrace's
    lookup for an ELF64 SPARC V9 program gives that file: it takes only FLAG_SPARC_LIB64 entries, and reads
    a cache in its own byte order."""
    import os

    from tracer.binary import ldcache

    for tool in ("qemu-sparc64", "sparc64-linux-gnu-as", "sparc64-linux-gnu-ld"):
        require(shutil.which(tool) is not None, f"no {tool}: qemu-user and binutils-sparc64-linux-gnu (scripts/setup.sh)")
    require(os.path.isfile(SPARC64_LDSO), "no SPARC64 glibc: libc6-sparc64-cross (scripts/setup.sh)")
    (tmp_path / "q.s").write_text(".text\n.globl q\nq: retl\n nop\n")
    subprocess.run(["sparc64-linux-gnu-as", "-o", str(tmp_path / "q.o"), str(tmp_path / "q.s")], check=True)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    given = {}
    for flags in FLAGS:
        given[flags] = f"/usr/lib64/flags-{flags:04x}/libq.so.1"
        (root / given[flags][1:]).parent.mkdir(parents=True)
        subprocess.run(["sparc64-linux-gnu-ld", "-shared", "-soname", "libq.so.1", "-o", str(root / given[flags][1:]),
                        str(tmp_path / "q.o")], check=True)
    use = tmp_path / "libuse.so"
    subprocess.run(["sparc64-linux-gnu-ld", "-shared", "-o", str(use), str(tmp_path / "q.o"),
                    str(root / given[FLAGS[0]][1:])], check=True)
    cache = root / "etc/ld.so.cache"
    order = "little" if header == "little" else "big"
    bits = {"big": ldcache.ENDIAN_BIG, "unset": ldcache.ENDIAN_UNSET, "little": ldcache.ENDIAN_LITTLE}[header]
    theirs, ours = {}, {}
    for flags in FLAGS:
        cache.write_bytes(_cache_file([(flags, "libq.so.1", given[flags])], order, bits))
        run = subprocess.run(["qemu-sparc64", "-E", "LD_DEBUG=libs", "-L", str(root), SPARC64_LDSO, "--list", str(use)],
                             capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "LD_DEBUG"})
        search = run.stderr.split("find library=libq.so.1", 1)[1]
        assert " search cache=/etc/ld.so.cache" in search, run.stderr
        tried = re.search(r"search cache=\S+\n\s*\d*:?\s*trying file=(\S+)", search)
        theirs[flags] = tried[1] if tried else None
        ours[flags] = ldcache.lookup("libq.so.1", 43, 64, str(cache))
        ldcache.entries.cache_clear()
    assert ours == theirs
    assert sum(v is not None for v in theirs.values()) == (header != "little")  # the premise: one flag, in its order


# Debian's glibc-source (scripts/setup.sh): glibc 2.36's own source, the oracle for an ABI no ld.so of
# which exists anywhere reachable
GLIBC_SOURCE = "/usr/src/glibc/glibc-2.36.tar.xz"


def test_ia64s_entries_are_those_glibcs_source_names(tmp_path):
    """IA-64 has no ld.so, ldconfig or emulator to run (Linux dropped it in 6.7, glibc in 2.40; Debian's port
    is gone), so glibc 2.36's source is the oracle: sysdeps/unix/sysv/linux/ia64/dl-cache.h's
    _dl_cache_check_flags takes an entry whose flags equal its _DL_CACHE_DEFAULT_ID, and no other. Of a
    cache naming libq.so.1 under each of FLAGS and that value (little-endian, as IA-64 Linux is), an
    ELF64 IA-64 program is given that entry's file only."""
    import os
    import tarfile

    from tracer.binary import ldcache

    require(os.path.isfile(GLIBC_SOURCE), "no glibc source: glibc-source (scripts/setup.sh)")
    with tarfile.open(GLIBC_SOURCE) as tar:
        header = tar.extractfile("glibc-2.36/sysdeps/unix/sysv/linux/ia64/dl-cache.h").read().decode()
    assert re.search(r"#define _dl_cache_check_flags\(flags\) \\\s*\(\(flags\) == _DL_CACHE_DEFAULT_ID\)", header)
    wanted = int(re.search(r"#define _DL_CACHE_DEFAULT_ID\s+(0x[0-9a-fA-F]+)", header)[1], 16)
    cache = tmp_path / "ld.so.cache"
    got = {}
    for flags in sorted({*FLAGS, wanted}):
        cache.write_bytes(_cache_file([(flags, "libq.so.1", f"/usr/lib/flags-{flags:04x}/libq.so.1")], "little",
                                      ldcache.ENDIAN_LITTLE))
        ldcache.entries.cache_clear()
        got[flags] = ldcache.lookup("libq.so.1", 50, 64, str(cache))
    assert got == {f: f"/usr/lib/flags-{f:04x}/libq.so.1" if f == wanted else None for f in got}


@pytest.mark.parametrize("arch", ["armel", "armhf"])
def test_arms_own_ld_so_takes_the_entries_gotrace_gives_it(tmp_path, arch):
    """32-bit ARM's two ABIs share machine and class; their ld.so tell them apart. Each one's own glibc 2.36
    ld.so (Debian's libc6 of that architecture, a `tool` pin, run by qemu-arm), loading the corpus' libacl.so.1
    of that architecture, with a cache naming libc.so.6 under one flag at a time as its /etc/ld.so.cache:
    it tries the cache's file (LD_DEBUG=libs) exactly when gotrace's lookup, given that ld.so as the
    program's PT_INTERP, gives the file — soft-float's takes FLAG_ARM_LIBSF entries, hard-float's
    FLAG_ARM_LIBHF ones, both unmarked libc6 ones. Before, an armel program was given armhf's."""
    import os

    import elf_oracle

    from tracer.binary import ldcache

    require(shutil.which("qemu-arm") is not None, "no qemu-arm: qemu-user is not installed (scripts/setup.sh)")
    pin = [(k, w, p) for k, _s, w, p in elf_oracle.manifest() if k == "tool" and w.endswith("/" + arch)
           and os.path.basename(p).startswith("libc6_")]
    libc6 = elf_oracle.unpacked_dir(*pin[0])
    ldso = libc6 / ARM_LDSO[arch].lstrip("/")
    acl = sorted((elf_oracle.CORPUS / "debian" / arch / "libacl1").rglob("libacl.so.1.*"))
    require(ldso.is_file() and bool(acl), "the ELF corpus is not fetched: bash scripts/fetch-elf-corpus.sh")
    triplet = "arm-linux-gnueabihf" if arch == "armhf" else "arm-linux-gnueabi"
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    cache = root / "etc/ld.so.cache"
    theirs, ours = {}, {}
    for flags in sorted({*FLAGS, 0x0B03, 0x0903}):
        given = f"/usr/lib/flags-{flags:04x}/libc.so.6"
        (root / given[1:]).parent.mkdir(parents=True)
        shutil.copy(libc6 / "lib" / triplet / "libc.so.6", root / given[1:])
        cache.write_bytes(_cache_file([(flags, "libc.so.6", given)], "little", ldcache.ENDIAN_LITTLE))
        run = subprocess.run(["qemu-arm", "-E", "LD_DEBUG=libs", "-L", str(root), str(ldso), "--list", str(acl[0])],
                             capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "LD_DEBUG"})
        search = run.stderr.split("find library=libc.so.6", 1)[1]
        assert " search cache=/etc/ld.so.cache" in search, run.stderr
        tried = re.search(r"search cache=\S+\n\s*\d*:?\s*trying file=(\S+)", search)
        theirs[flags] = tried[1] if tried else None
        ldcache.entries.cache_clear()
        ours[flags] = ldcache.lookup("libc.so.6", 40, 32, str(cache), interp=ARM_LDSO[arch])
    assert ours == theirs
    assert {f for f, v in theirs.items() if v} == {0x0003, 0x0B03 if arch == "armel" else 0x0903}  # the premise

