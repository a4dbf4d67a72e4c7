"""The system search path read from an ld.so's file, against what that ld.so says itself:
`ld.so --help` lists it, one "DIR (system search path)" line each (glibc ≥ 2.33), run natively or,
for another machine's ld.so, through its binfmt_misc handler (qemu-user)."""
from __future__ import annotations

import glob
import os
import re
import subprocess

import pytest

from conftest import require

from tracer.binary.ldso_dirs import system_dirs


def _installed_ldsos() -> list[str]:
    found = {os.path.realpath(p) for pattern in ("/lib/ld-linux*.so*", "/lib64/ld-linux*.so*", "/lib32/ld-linux*.so*")
             for p in glob.glob(pattern)}
    return sorted(p for p in found if os.path.isfile(p))


def test_every_installed_ld_so_says_the_same_search_path_as_read_from_its_file():
    """Every ld.so here (x86_64's, libc6-i386's i386 one, libc6:arm64's): the directories of its
    `--help`, in order. At least the host's and one other machine's, so a list that only fits the
    host's layout cannot pass."""
    ran = {}
    for ldso in _installed_ldsos():
        out = subprocess.run([ldso, "--help"], capture_output=True, text=True)
        if out.returncode != 0:  # another machine's, with no handler to run it
            continue
        ran[ldso] = re.findall(r"^\s+(\S+) \(system search path\)$", out.stdout, re.M)
        assert ran[ldso], out.stdout
    require(len(ran) >= 2, f"one runnable ld.so only ({list(ran)}): install gcc-12-multilib or libc6:arm64 with qemu-user")
    assert len({tuple(v) for v in ran.values()}) >= 2, ran  # two different layouts really compared
    for ldso, dirs in ran.items():
        assert system_dirs(ldso) == dirs, ldso


def test_a_file_that_is_not_an_ld_so_has_no_search_path(tmp_path):
    """libc.so.6 (it has a PT_INTERP, yet is no ld.so), a program and a text file hold no such list;
    a missing file is no error."""
    libc = subprocess.run(["gcc", "-print-file-name=libc.so.6"], capture_output=True, text=True).stdout.strip()
    (tmp_path / "t").write_text("/lib/\0/usr/lib/\0")  # not even preceded by a NUL: no string table
    for path in (libc, "/bin/ls", "/etc/passwd", str(tmp_path / "t"), str(tmp_path / "gone"), None):
        assert system_dirs(path) is None, path


# What upstream glibc 2.36 compiles in as slibdir (then libdir, /usr and the same) per ABI, from its
# configure fragments (Debian's glibc-source 2.36 tarball): sysdeps/unix/sysv/linux/s390/s390-64,
# powerpc/powerpc64, mips (n64 → /lib64; o32 has no fragment), loongarch: '/lib64'; riscv: the lp64d
# ABI's '/lib64/lp64d'; arm: none, so sysdeps/gnu/configure's '/lib'.
UPSTREAM = {"s390x": "/lib64", "ppc64el": "/lib64", "mips64el": "/lib64", "loong64": "/lib64",
            "riscv64": "/lib64/lp64d", "armhf": "/lib", "armel": "/lib", "mipsel": "/lib"}


def test_a_program_of_a_machine_with_no_ld_so_here_takes_upstream_glibcs_path():
    """Debian's dash of each machine whose ld.so is not installed here (the ELF corpus): with no ld.so
    to ask, the search path replayed is the one upstream glibc builds for the program's ABI. Its
    machine, class and PT_INTERP are readelf's; the directories glibc's configure (UPSTREAM)."""
    from elf_oracle import CORPUS

    from tracer.analysis.libsearch import default_dirs

    seen = 0
    for arch, lib in UPSTREAM.items():
        (dash,) = [p for p in glob.glob(str(CORPUS / "debian" / arch / "dash" / "**" / "bin" / "dash"), recursive=True)]
        head = subprocess.run(["readelf", "-hl", dash], capture_output=True, text=True, check=True).stdout
        bits = 64 if re.search(r"Class:\s+ELF64", head) else 32
        machine = _e_machine(dash)
        interp = re.search(r"Requesting program interpreter: (\S+)\]", head).group(1)
        require(not os.path.exists(interp) or system_dirs(interp) is None, f"{interp} is installed here")
        assert default_dirs(machine, bits, interp) == [lib, "/usr" + lib], arch
        seen += 1
    assert seen == len(UPSTREAM)


def _e_machine(path: str) -> int:
    """e_machine, the header's bytes 18-19 in the file's byte order (readelf -h prints only its name)."""
    data = open(path, "rb").read(20)
    return int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")


# ABIs no corpus file has, and the two whose ld.so is here: (e_machine, class, PT_INTERP as glibc 2.36's shlib-versions names the
# ld.so and its configure fragment places it) -> slibdir from that fragment.
@pytest.mark.parametrize("machine,bits,interp,lib", [
    (62, 32, "/libx32/ld-linux-x32.so.2", "/libx32"),           # x86_64/x32/configure
    (62, 64, "/lib64/ld-linux-x86-64.so.2", "/lib64"),           # x86_64/64/configure
    (183, 64, "/lib/ld-linux-aarch64.so.1", "/lib64"),           # aarch64/configure
    (43, 64, "/lib64/ld-linux.so.2", "/lib64"),                  # sparc/sparc64/configure
    (8, 32, "/lib32/ld.so.1", "/lib32"),                         # mips/configure, n32
    (243, 64, "/lib/ld-linux-riscv64-lp64.so.1", "/lib64/lp64"),  # riscv/configure, soft-float lp64
    (22, 32, "/lib/ld.so.1", "/lib"),                        # 31-bit s390: no fragment, sysdeps/gnu's
])
def test_abis_the_corpus_lacks_take_upstream_glibcs_path(machine, bits, interp, lib):
    """As above, for ABIs no Debian package here ships (the rule itself: an x32 ld.so may be installed
    here, as gcc-12-multilib's libc6-x32 puts one): the ld.so's name tells the ABI glibc chose."""
    from tracer.analysis.libsearch import _upstream_dirs

    assert _upstream_dirs(machine, bits, interp) == [lib, "/usr" + lib]


def test_only_a_system_ld_so_is_asked_for_its_hwcaps(tmp_path):
    """The glibc-hwcaps subdirectories are the ld.so's answer for this CPU, so it is run (--help):
    only this system's ld.so — a copy of it in a user's directory (a PT_INTERP a program may name)
    is not run, nor is a file that is no ld.so. Oracle: what the system ld.so prints itself."""
    import shutil

    from tracer.binary.ldso_dirs import hwcaps_searched

    ldso = os.path.realpath("/lib64/ld-linux-x86-64.so.2")
    out = subprocess.run([ldso, "--help"], capture_output=True, text=True, check=True).stdout
    part = out.split("Subdirectories of glibc-hwcaps directories, in priority order:", 1)[1].split("\n\n", 1)[0]
    assert list(hwcaps_searched(ldso)) == re.findall(r"^\s+(\S+) \([^)]*searched\)$", part, re.M)
    copy = tmp_path / "ld-linux-x86-64.so.2"
    shutil.copy(ldso, copy)
    assert hwcaps_searched(str(copy)) == () and hwcaps_searched("/usr/lib/x86_64-linux-gnu/libc.so.6") == ()
