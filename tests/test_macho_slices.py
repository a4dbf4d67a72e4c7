"""Capture's raw per-slice read (tracer/binary/macho_slices.py: architecture, LC_UUID, __TEXT's
link-time address, platform and oldest OS) against llvm-objdump-16 --macho --private-headers, on
Mach-O and fat files built here (tests/binaries.py), a FAT_MAGIC_64 copy, a 32-bit object, an
LC_VERSION_MIN_MACOSX program, and PyPI wheels' files (Apple's ld). Not run on macOS: files only."""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import oracles
from conftest import require
from macho_wheels import wheel_file
from test_inspect import _fat64
from tracer.binary.macho_slices import pick, slices

ROOT = Path(__file__).resolve().parent.parent
HELLO = ROOT / "tests/fixtures/macho/hello.c"
# mach/machine.h's CPU_TYPE_* as llvm-objdump prints them -> the names gotrace gives
ARCH = {"X86_64": "x86_64", "ARM64": "arm64", "I386": "i386", "ARM": "arm", "PPC64": "ppc64"}


def objdump_slices(path) -> list[dict]:
    """Each slice (in the fat header's order) as llvm-objdump prints its headers."""
    def run(*args):
        return subprocess.run([oracles.OBJDUMP, "--macho", *args, str(path)], capture_output=True, text=True,
                              check=True).stdout
    heads = run("--universal-headers") if open(path, "rb").read(4) in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf") \
        else ""
    archs = re.findall(r"^architecture (\S+)", heads, re.M) or [None]
    out = []
    for arch in archs:
        text = run("--private-headers", *([f"--arch={arch}"] if arch else []))
        cpu = re.search(r"^\s*MH_MAGIC(?:_64)?\s+(\S+)", text, re.M)[1]
        uuid = re.search(r"uuid ([0-9A-F-]+)", text)
        seg = re.search(r"segname __TEXT\n\s*vmaddr (0x[0-9a-f]+)", text)
        build = re.search(r"cmd LC_BUILD_VERSION\n.*\n\s*platform (\S+)\n.*\n\s*minos (\S+)", text)
        vmin = re.search(r"cmd LC_VERSION_MIN_MACOSX\n.*\n\s*version (\S+)", text)
        plat, minos = (build[1].lower(), build[2]) if build else ("macos", vmin[1]) if vmin else (None, None)
        out.append({"arch": ARCH.get(cpu, cpu), "uuid": uuid[1] if uuid else None,
                    "text": int(seg[1], 16) if seg else None, "platform": plat,
                    "minos": tuple((list(map(int, minos.split("."))) + [0, 0])[:3]) if minos else None})
    return out


def _as_dicts(found) -> list[dict]:
    return [{"arch": s.arch, "uuid": s.uuid, "text": s.text_vmaddr, "platform": s.platform, "minos": s.minos}
            for s in found]


@pytest.fixture(scope="module")
def made(binaries, tmp_path_factory):
    require(shutil.which(oracles.OBJDUMP) is not None, f"{oracles.OBJDUMP} (llvm-16) is not installed")
    require(shutil.which("clang-14") and shutil.which("ld64.lld-16"), "clang-14 / ld64.lld-16 not installed")
    out = tmp_path_factory.mktemp("slices")
    files = {n: binaries(n) for n in ("go-darwin-amd64", "go-darwin-arm64", "macho-x86_64-lazy",
                                       "macho-arm64-chained", "fat")}
    files["fat64"] = out / "fat64"
    files["fat64"].write_bytes(_fat64(files["fat"].read_bytes()))
    files["i386.o"] = out / "i386.o"
    subprocess.run(["clang-14", "-target", "i386-apple-macos10.7", "-c", str(HELLO), "-o", str(files["i386.o"])],
                   check=True)
    old = out / "min-macosx"  # ld64.lld writes LC_VERSION_MIN_MACOSX, not LC_BUILD_VERSION, below 10.14
    subprocess.run(["clang-14", "-target", "x86_64-apple-macos10.13", "-c", str(HELLO), "-o", str(old) + ".o"],
                   check=True)
    subprocess.run(["ld64.lld-16", "-arch", "x86_64", "-platform_version", "macos", "10.13", "10.13", "-o", str(old),
                    str(old) + ".o", str(ROOT / "tests/fixtures/macho/libSystem.tbd")], check=True,
                   capture_output=True)
    files["min-macosx"] = old
    # big-endian 64-bit (ppc64, what Xcode 3 built): a header, __TEXT's LC_SEGMENT_64 and LC_UUID, by hand
    seg = struct.pack(">II16sQQQQiiII", 0x19, 72, b"__TEXT", 0x100000000, 0x1000, 0, 0, 5, 5, 0, 0)
    uuid = struct.pack(">II16s", 0x1B, 24, bytes(range(16, 32)))
    files["ppc64-be"] = out / "ppc64-be"
    files["ppc64-be"].write_bytes(struct.pack(">IiiIIIII", 0xFEEDFACF, 0x01000012, 0, 2, 2, len(seg) + len(uuid), 0, 0)
                                  + seg + uuid)
    return files


NAMES = ["go-darwin-amd64", "go-darwin-arm64", "macho-x86_64-lazy", "macho-arm64-chained", "fat", "fat64", "i386.o",
         "min-macosx", "ppc64-be", "shfmt-arm64", "numpy-arm64", "xgboost-x86_64"]


@pytest.mark.parametrize("name", NAMES)
def test_slices_are_llvm_objdumps(name, made):
    path = made[name] if name in made else wheel_file(name)
    want = objdump_slices(path)
    assert _as_dicts(slices(str(path))) == want
    # pick: by UUID, by architecture, or the only slice; none when a fat file is asked for neither
    for s in slices(str(path)):
        if s.uuid:
            assert pick(slices(str(path)), uuid=s.uuid) == s
        assert pick(slices(str(path)), arch=s.arch) == s
    assert (pick(slices(str(path))) is None) == (len(want) > 1)


def test_the_corpus_holds_what_the_checks_need(made):
    seen = [s for n in NAMES for s in objdump_slices(made[n] if n in made else wheel_file(n))]
    assert {"x86_64", "arm64", "i386"} <= {s["arch"] for s in seen}
    assert any(s["minos"] and s["minos"][1] >= 8 for s in seen)  # a minor version past 8 bits' shift
    assert any(s["platform"] == "macos" and s["minos"] == (10, 13, 0) for s in seen)


def test_not_mach_o_has_no_slices(tmp_path):
    (tmp_path / "elf").write_bytes(Path("/bin/true").read_bytes())
    assert slices(str(tmp_path / "elf")) == []


@pytest.mark.parametrize("platform", [1, 2, 3, 4, 6, 7])
def test_build_version_platform_is_llvm_objdumps(platform, made, tmp_path):
    """LC_BUILD_VERSION's platform rewritten (mach-o/loader.h's PLATFORM_*): llvm-objdump names it."""
    data = bytearray(made["macho-arm64-chained"].read_bytes())
    ncmds = struct.unpack_from("<I", data, 16)[0]
    pos = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd == 0x32:
            struct.pack_into("<I", data, pos + 8, platform)
            break
        pos += size
    else:
        raise AssertionError("no LC_BUILD_VERSION")
    path = tmp_path / f"platform{platform}"
    path.write_bytes(bytes(data))
    (want,) = objdump_slices(path)
    assert not want["platform"].isdigit()
    assert _as_dicts(slices(str(path))) == [want]


@pytest.mark.parametrize("wide,count", [(False, 210), (True, 131)])
def test_a_fat_table_past_4_kib_is_read_whole(wide, count, tmp_path):
    """A fat table with more entries than its first 4 KiB hold (204 fat_arch, 127 fat_arch_64):
    hand-written x86_64 slices of distinct cpusubtypes, each with __TEXT's LC_SEGMENT_64 and its own
    LC_UUID. llvm-objdump-16 --universal-headers counts every entry and --private-headers
    --arch=all reads every slice; so must slices (it once stopped at the 4 KiB it reads first).
    dyld refuses such a file ("fat header too large"), so no image it logs has one."""
    entry = 32 if wide else 20
    start = (8 + count * entry + 15) & ~15
    table, bodies = b"", b""
    for k in range(count):
        seg = struct.pack("<II16sQQQQiiII", 0x19, 72, b"__TEXT", 0x100000000 + k * 0x1000, 0x1000, 0, 0, 5, 5, 0, 0)
        uuid = struct.pack("<II", 0x1B, 24) + (k + 1).to_bytes(16, "big")
        body = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x01000007, 3 + k, 2, 2, len(seg) + len(uuid), 0, 0) + seg + uuid
        at = start + len(bodies)
        fields = (0x01000007, 3 + k, at, len(body), 4)
        table += struct.pack(">iiQQII", *fields, 0) if wide else struct.pack(">iiIII", *fields)
        bodies += body.ljust((len(body) + 15) & ~15, b"\0")
    path = tmp_path / "many"
    path.write_bytes(struct.pack(">II", 0xCAFEBABF if wide else 0xCAFEBABE, count) + table.ljust(start - 8, b"\0")
                     + bodies)
    heads = subprocess.run([oracles.OBJDUMP, "--macho", "--universal-headers", str(path)], capture_output=True,
                           text=True, check=True).stdout
    assert f"nfat_arch {count}" in heads and heads.count("\narchitecture") == count
    text = subprocess.run([oracles.OBJDUMP, "--macho", "--private-headers", "--arch=all", str(path)],
                          capture_output=True, text=True, check=True).stdout
    want = [(u, int(v, 16)) for v, u in zip(re.findall(r"segname __TEXT\n\s*vmaddr (0x[0-9a-f]+)", text),
                                            re.findall(r"uuid ([0-9A-F-]+)", text), strict=True)]
    assert len(want) == count
    assert [(s.uuid, s.text_vmaddr) for s in slices(str(path))] == want
