"""Load bases in the images table against the kernel's own account, /proc/PID/maps."""
from __future__ import annotations

import os

import pytest

import oracles
from conftest import require_bpftrace
from tracer import bind, load_session


@pytest.mark.parametrize("backend", ["bpftrace", "ld-debug"])
def test_load_bases_match_proc_maps(backend, tmp_path):
    if backend == "bpftrace":
        require_bpftrace()
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
    assert checked >= (3 if backend == "bpftrace" else 2)  # bash, libc, ld.so, libtinfo …
