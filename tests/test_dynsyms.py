"""What `why` reads of an ELF object to replay glibc's lookups (tracer/binary/elf_dynsyms.py) against
readelf -W --dyn-syms / -r, on the system's own libraries and programs and on small files built here.

Which dynamic symbols a lookup may take is glibc's check_match (elf/dl-lookup.c): not the null
symbol, not undefined, a value unless absolute or TLS, a type among NOTYPE, OBJECT, FUNC, COMMON,
TLS and GNU_IFUNC. The expectations below apply that rule to readelf's rows, never gotrace's.
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import oracles
from conftest import require
from tracer.binary.elf_dynsyms import read_dyn_object

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
          "/lib/x86_64-linux-gnu/libm.so.6", "/usr/bin/python3"]
TAKEN = {"NOTYPE", "OBJECT", "FUNC", "COMMON", "TLS", "IFUNC"}


def readelf_versym(path) -> list[tuple[int, bool, str]]:
    """Each .gnu.version entry of readelf -V: (index, hidden, version name), row by row."""
    text = subprocess.run(["readelf", "-W", "-V", str(path)], capture_output=True, text=True, check=True).stdout
    block = text.split("Version symbols section", 1)[1].split("\n\n", 1)[0] if "Version symbols section" in text else ""
    out = []
    for line in block.splitlines()[2:]:
        _addr, _, rest = line.partition(":")
        out += [(int(i, 16), h == "h", v) for i, h, v in re.findall(r"([0-9a-f]+)(h?)\s*\(([^)]*)\)", rest)]
    return out


def readelf_dynsyms(path) -> list[dict]:
    """Each row of readelf -W --dyn-syms after the null one, its name without @VERSION (names outside
    ASCII as --unicode=hex writes them, decoded), with its version and hidden bit from readelf -V."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", "--unicode=hex", str(path)], capture_output=True,
                         text=True, check=True).stdout
    versym = readelf_versym(path)
    rows = []
    for line in out.splitlines():
        f = line.split(None, 7)
        if len(f) < 8 or not f[0].endswith(":") or not f[0][:-1].isdigit() or f[0] == "0:":
            continue
        num = int(f[0][:-1])
        name = re.sub(r"<0x([0-9a-f]+)>", lambda m: bytes.fromhex(m[1]).decode("latin-1"), f[7].split("@")[0])
        index, hidden, version = versym[num] if versym else (1, False, "")
        rows.append({"value": int(f[1], 16), "type": f[3], "bind": f[4], "vis": f[5], "ndx": f[6],
                     "name": name.encode("latin-1").decode("utf-8"), "version": version if index >= 2 else None,
                     "hidden": hidden})
    return rows


def _taken(r: dict) -> bool:
    return r["ndx"] != "UND" and (r["value"] != 0 or r["ndx"] == "ABS" or r["type"] == "TLS") and r["type"] in TAKEN


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    out = tmp_path_factory.mktemp("dynsyms")
    names = out / "libnames.so"
    subprocess.run(["gcc", "-shared", "-nostdlib", "-fPIC", "-o", str(names), str(ROOT / "tests/csrc/dynsyms/names.c")],
                   check=True)
    copyrel = out / "copyrel"
    subprocess.run(["gcc", "-O0", "-no-pie", "-fno-pie", "-o", str(copyrel), str(ROOT / "tests/csrc/copyrel.c")],
                   check=True)
    canon = out / "canon"
    canon.mkdir()
    src = ROOT / "tests/csrc/canonplt.c"
    for flags in (["-shared", "-fPIC", "-DLIBF", "-o", canon / "libf.so", "-Wl,-soname,libf.so"],
                  ["-shared", "-fPIC", "-DLIBG", "-o", canon / "libg.so", f"-L{canon}", "-lf", "-Wl,-soname,libg.so"],
                  ["-no-pie", "-fno-pie", "-o", canon / "canonplt", f"-L{canon}", "-lg", "-lf", "-Wl,-rpath,$ORIGIN"]):
        subprocess.run(["gcc", "-O0", str(src), *map(str, flags)], check=True)
    # counter's type rewritten to STT_COMMON (5): ld allocates common symbols (STT_OBJECT in every file
    # it links), yet glibc's check_match takes a COMMON definition; readelf then prints COMMON
    common = out / "libcommon.so"
    data = bytearray(names.read_bytes())
    dynsym = next(sec for sec in oracles.readelf_sections(names) if sec["name"] == ".dynsym")
    row = next(i for i, r in enumerate(readelf_dynsyms(names), start=1) if r["name"] == "counter")
    at = dynsym["offset"] + row * 24 + 4  # Elf64_Sym: st_name, then st_info
    data[at] = (data[at] & 0xF0) | 5
    common.write_bytes(bytes(data))
    files = {"libnames.so": names, "libcommon.so": common, "copyrel": copyrel, "canonplt": canon / "canonplt"}
    # R_AARCH64_COPY: the cross compiler is part of the setup (CI fails where it is missing)
    require(shutil.which("aarch64-linux-gnu-gcc") is not None, "aarch64-linux-gnu-gcc is not installed")
    files["copyrel-arm64"] = out / "copyrel-arm64"
    subprocess.run(["aarch64-linux-gnu-gcc", "-O0", "-no-pie", "-fno-pie", "-o", str(files["copyrel-arm64"]),
                    str(ROOT / "tests/csrc/copyrel.c")], check=True)
    # R_ARM_COPY: no armhf C library here, so a -nostdlib program copying a -nostdlib library's data
    # (clang-14 and ld.lld-16, part of the setup)
    require(shutil.which("clang-14") is not None and shutil.which("ld.lld-16") is not None,
            "clang-14 and lld-16 are not installed")
    arm = out / "arm"
    arm.mkdir()
    target = "--target=armv7-linux-gnueabihf"
    for src, flags in (("copylib", ["-fPIC"]), ("copymain", ["-fno-pic"])):
        subprocess.run(["clang-14", target, *flags, "-O1", "-c", "-o", str(arm / f"{src}.o"),
                        str(ROOT / f"tests/csrc/dynsyms/{src}.c")], check=True)
    subprocess.run(["ld.lld-16", "-shared", "-soname", "libcopy.so", "-o", str(arm / "libcopy.so"),
                    str(arm / "copylib.o")], check=True)
    files["copyrel-armhf"] = arm / "copyrel-armhf"
    subprocess.run(["ld.lld-16", "--dynamic-linker", "/lib/ld-linux-armhf.so.3", "-o", str(files["copyrel-armhf"]),
                    str(arm / "copymain.o"), str(arm / "libcopy.so")], check=True)
    return files


def _path(name, built) -> str:
    if name.startswith("/"):
        require(os.path.exists(name), f"{name} is missing")
        return name
    require(name in built, f"cannot build {name}: aarch64-linux-gnu-gcc is not installed (scripts/setup.sh)")
    return str(built[name])


@pytest.mark.parametrize("name", SYSTEM + ["libnames.so", "libcommon.so", "copyrel", "copyrel-arm64", "copyrel-armhf",
                                           "canonplt"])
def test_definitions_and_references_are_readelfs(name, built):
    require(shutil.which("readelf") is not None, "readelf (binutils) is not installed")
    path = _path(name, built)
    rows = readelf_dynsyms(path)
    obj = read_dyn_object(path, Path(path).read_bytes())
    want = collections.Counter((r["name"], r["version"], r["hidden"], r["bind"].lower(), r["vis"].lower(),
                                r["type"].lower()) for r in rows if _taken(r))
    cols = obj.definitions.columns()
    got = collections.Counter(zip(cols["name"], cols["version"], cols["hidden"], cols["binding"],
                                  cols["visibility"], cols["type"], strict=True))
    assert got == want
    by_name = collections.defaultdict(collections.Counter)
    for key in want.elements():
        by_name[key[0]][key] += 1
    assert set(obj.definitions) == set(by_name)
    for n, keys in by_name.items():
        assert collections.Counter((d.name, d.version, d.hidden, d.binding, d.visibility, d.type)
                                   for d in obj.definitions[n]) == keys
    assert obj.definitions.undefined == {r["name"]: r["bind"] == "WEAK" for r in rows if r["ndx"] == "UND"}
    # a canonical PLT entry: FUNC, undefined, with a value (oracles.readelf_canonical_plt's rule, on these rows)
    assert obj.canonical_plt == {r["name"] for r in rows if r["ndx"] == "UND" and r["type"] == "FUNC" and r["value"]}
    assert obj.copy_relocated - set(obj.copy_aliases) == oracles.readelf_copy_relocs(path)


def test_the_files_hold_what_the_checks_need(built):
    """The corpus above holds each case the rule tells apart (else a check above checks nothing)."""
    seen = {(r["type"], r["bind"]) for p in SYSTEM + list(built.values()) if os.path.exists(p)
            for r in readelf_dynsyms(p)}
    assert {("IFUNC", "GLOBAL"), ("OBJECT", "UNIQUE"), ("FUNC", "WEAK"), ("TLS", "GLOBAL")} <= seen
    first = readelf_dynsyms(built["libnames.so"])[0]
    assert first["ndx"] != "UND" and not first["name"].isascii()
    assert oracles.readelf_canonical_plt(built["canonplt"]) and oracles.readelf_copy_relocs(built["copyrel"])
    assert oracles.readelf_copy_relocs(built["copyrel-armhf"]) == {"shared_var", "shared_arr"}
    assert any(r["type"] == "COMMON" for r in readelf_dynsyms(built["libcommon.so"]))
