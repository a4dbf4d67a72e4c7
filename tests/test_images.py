"""Load bases in the images table against the kernel's own account, /proc/PID/maps."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import oracles
from conftest import gotrace_cli, require, require_backend, require_bpftrace
from tracer import bind, load_session


@pytest.mark.parametrize("backend", ["bpf", "bpftrace", "ld-debug"])
def test_load_bases_match_proc_maps(backend, tmp_path):
    require_backend(backend)
    maps = tmp_path / "maps"
    res = bind(["bash", "-c", f"cat /proc/$$/maps > {maps}; echo $$ > {tmp_path / 'pid'}"],
               out=tmp_path / "s", backend=backend)
    assert res.exit_code == 0
    pid = int((tmp_path / "pid").read_text())
    bases = oracles.maps_bases(maps.read_text())
    img = load_session(res.session).images
    mine = img[(img["pid"] == pid) & img["load_base"].notna()]
    checked = 0
    for path, load_base, link_base, slide in mine[["path", "load_base", "link_base", "slide"]].itertuples(index=False):
        real = os.path.realpath(str(path))
        if real in bases:
            assert int(load_base) == bases[real], path
            assert int(load_base) == int(link_base) + int(slide)
            checked += 1
    assert checked >= (2 if backend == "ld-debug" else 3)  # bash, libc, ld.so, libtinfo …


def _selfmaps(kind: str, out: Path) -> Path:
    """tests/csrc/selfmaps.c as a PIE, a non-PIE, or a non-PIE whose first PT_LOAD
    claims a p_align (2 MiB) its address is not a multiple of: the kernel maps
    it at its page (as for any ET_EXEC), and a link-time base aligned to p_align
    would land 0x1000 below the mapping."""
    src = Path(__file__).resolve().parent / "csrc" / "selfmaps.c"
    flags = {"pie": ["-pie", "-fPIE"], "no-pie": ["-no-pie", "-fno-PIE"],
             "no-pie-wide-align": ["-no-pie", "-fno-PIE", "-Wl,-z,max-page-size=0x1000",
                                   "-Wl,-Ttext-segment=0x401000"]}[kind]
    subprocess.run(["gcc", "-O0", *flags, "-o", str(out), str(src), "-lm"], check=True)
    if kind == "no-pie-wide-align":
        data = bytearray(out.read_bytes())
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        for i in range(phnum):
            at = phoff + i * phentsize
            if struct.unpack_from("<I", data, at)[0] == 1:  # the first PT_LOAD
                struct.pack_into("<Q", data, at + 48, 0x200000)  # its p_align
                break
        out.write_bytes(data)
    return out


@pytest.mark.parametrize("kind", ["pie", "no-pie", "no-pie-wide-align"])
def test_bind_and_aslr_session_agree_on_link_bases(kind, tmp_path):
    """One link-base rule: the images table `gotrace bind` writes and the one
    `gotrace aslr --session` recomputes from the files agree, for the program
    and every library, and both match the kernel (/proc/PID/maps) and readelf."""
    require_bpftrace()  # names the main program's link_map (ld-debug prints no base for it)
    require(shutil.which("gcc") is not None, "gcc is not installed")
    prog = _selfmaps(kind, tmp_path / f"selfmaps-{kind}")
    maps = tmp_path / "maps"
    res = bind([str(prog), str(maps)], out=tmp_path / "s", backend="bpftrace")
    assert res.exit_code == 0
    written = load_session(res.session).images
    out = gotrace_cli("aslr", "--json", "--session", str(res.session))
    assert out.returncode == 0, out.stderr
    refilled = {(r["pid"], r["path"]): r for r in json.loads(out.stdout)["images"]}
    kernel = oracles.maps_bases(maps.read_text())
    checked = set()
    for pid, path, load_base, link_base, slide in written[["pid", "path", "load_base", "link_base",
                                                           "slide"]].itertuples(index=False):
        r = refilled[(int(pid), path)]
        if r["link_base"] is None:
            continue
        assert (int(link_base), int(slide)) == (r["link_base"], r["slide"]), path
        real = os.path.realpath(str(path))
        if real in kernel:
            assert int(load_base) == kernel[real] == r["load_base"], path
            assert int(link_base) == min(v for v, _, _ in oracles.readelf_loads(real)) & ~0xFFF, path
            checked.add(os.path.basename(real))
    assert prog.name in checked and "libc.so.6" in checked and "libm.so.6" in checked, checked
