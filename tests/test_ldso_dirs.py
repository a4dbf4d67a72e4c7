"""The system search path read from an ld.so's file, against what that ld.so says itself:
`ld.so --help` lists it, one "DIR (system search path)" line each (glibc ≥ 2.33), run natively or,
for another machine's ld.so, through its binfmt_misc handler (qemu-user)."""
from __future__ import annotations

import glob
import os
import re
import subprocess

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
