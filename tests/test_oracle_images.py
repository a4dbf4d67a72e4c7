"""`gotrace aslr --session` for an image whose file is gone since the run.

Oracles: readelf -l of the library, read before it is deleted (its link-time base: the first
PT_LOAD's address, page-aligned), and the kernel's /proc/PID/maps as the program copied it
(where the library was loaded)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import oracles
from conftest import ROOT, gotrace_cli, require


def test_a_gone_librarys_link_base_is_the_one_bind_recorded(tmp_path):
    """libf.so is linked at 0x10000000 (-Ttext-segment), preloaded into selfmaps (which copies
    /proc/self/maps), then deleted: aslr --session cannot read it again, so it keeps the link
    base bind read at capture, and the slide is the kernel's load address minus it."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    lib, prog, maps = tmp_path / "libf.so", tmp_path / "selfmaps", tmp_path / "maps"
    subprocess.run(["gcc", "-O0", "-shared", "-fPIC", "-DLIBF", "-o", str(lib), str(ROOT / "tests/csrc/canonplt.c"),
                    "-Wl,-soname,libf.so", "-Wl,-Ttext-segment=0x10000000"], check=True)
    subprocess.run(["gcc", "-O0", "-o", str(prog), str(ROOT / "tests/csrc/selfmaps.c"), "-lm"], check=True)
    link = min(v for v, _, _ in oracles.readelf_loads(lib)) & ~0xFFF
    assert link == 0x10000000
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", str(prog), str(maps),
                      env={**os.environ, "LD_PRELOAD": str(lib)})
    assert out.returncode == 0, out.stderr
    load = oracles.maps_bases(maps.read_text())[os.path.realpath(lib)]
    lib.unlink()
    out = gotrace_cli("aslr", "--json", "--session", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    (row,) = [r for r in json.loads(out.stdout)["images"] if r["path"] == str(lib)]
    assert (row["link_base"], row["load_base"], row["slide"]) == (link, load, load - link)


def test_an_image_without_a_load_address_has_no_slide(tmp_path):
    """lldb writes an image row without a load address for a module it never saw loaded
    (capture/lldb/slides.py; session/schema.py lets load_base be null): aslr --session still
    reads its link base from the file (readelf -l) and gives it no slide, and every other row
    keeps the kernel's load address (/proc/PID/maps as selfmaps copied it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    require(shutil.which("gcc") is not None, "gcc is not installed")
    prog, maps = tmp_path / "selfmaps", tmp_path / "maps"
    subprocess.run(["gcc", "-O0", "-o", str(prog), str(ROOT / "tests/csrc/selfmaps.c"), "-lm"], check=True)
    out = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", str(prog), str(maps))
    assert out.returncode == 0, out.stderr
    table = pq.read_table(tmp_path / "s" / "images.parquet")
    paths = table["path"].to_pylist()
    libm = next(p for p in paths if os.path.basename(p).startswith("libm.so"))
    loads = [None if p == libm else v for p, v in zip(paths, table["load_base"].to_pylist(), strict=True)]
    i = table.schema.get_field_index("load_base")
    pq.write_table(table.set_column(i, table.schema.field(i), pa.array(loads, table.schema.field(i).type)),
                   tmp_path / "s" / "images.parquet")
    out = gotrace_cli("aslr", "--json", "--session", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    rows = {r["path"]: r for r in json.loads(out.stdout)["images"]}
    kernel = oracles.maps_bases(maps.read_text())
    for path, r in rows.items():
        link = min(v for v, _, _ in oracles.readelf_loads(path)) & ~0xFFF
        if path == libm:
            assert (r["link_base"], r["load_base"], r["slide"]) == (link, None, None)
        else:
            load = kernel[os.path.realpath(path)]
            assert (r["link_base"], r["load_base"], r["slide"]) == (link, load, load - link), path
