"""gotrace inspect against readelf (ELF) and llvm-objdump (Mach-O) on real binaries."""
from __future__ import annotations

import json
import re
import os
import shutil
import subprocess

import pytest

import oracles
from conftest import gotrace_cli, require
from tracer.binary import open_image

ELF_BUILT = ["go-linux-amd64-static", "go-linux-amd64-internal", "go-linux-amd64-external",
             "go-linux-amd64-pie", "go-linux-amd64-bindnow", "go-linux-arm64", "c-lazy", "c-now"]
SYSTEM = ["/bin/ls", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
          "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
          # arm64 (libc6:arm64 and the cross toolchain's libstdc++): TLS relocations,
          # R_AARCH64_TLSDESC among them, which pyelftools misnames
          "/usr/lib/aarch64-linux-gnu/libc.so.6", "/usr/aarch64-linux-gnu/lib/libstdc++.so.6"]
MACHO_BUILT = ["go-darwin-amd64", "go-darwin-arm64", "macho-x86_64-lazy", "macho-arm64-chained",
               "macho-arm64-flat"]  # -flat_namespace: every bind has the flat-lookup ordinal


def _elf_path(name, binaries):
    if name.startswith("/"):
        return name
    return str(binaries(name))


def _letters(flags: str) -> set[str]:
    return {c for c in flags.upper() if c in "RWE"}


def _readelf_type(sh_type: str) -> str:
    """Our sh_type names are elf.h's (SHT_GNU_versym); readelf shortens a few."""
    name = sh_type.removeprefix("SHT_").upper()
    return {"GNU_VERSYM": "VERSYM", "GNU_VERNEED": "VERNEED", "GNU_VERDEF": "VERDEF",
            "AMD64_UNWIND": "X86_64_UNWIND", "AARCH64_ATTRIBUTES": "AARCH64_ATTRIBUTES"}.get(name, name)


def _prot_letters(prot: str) -> set[str]:
    return {{"r": "R", "w": "W", "x": "E"}[c] for c in prot if c != "-"}


@pytest.mark.parametrize("name", ELF_BUILT + SYSTEM)
def test_elf_agrees_with_readelf(name, binaries):
    require(shutil.which("readelf") is not None, "readelf (binutils) is not installed")
    path = _elf_path(name, binaries)
    require(os.path.exists(path), f"{path} is missing: run scripts/setup.sh")
    img = open_image(path)
    loads = [(s.vmaddr, s.vmsize, _prot_letters(s.prot)) for s in img.segments if s.name == "LOAD"]
    assert loads == [(v, m, _letters(f)) for v, m, f in oracles.readelf_loads(path)]
    assert [l.name for l in img.libraries] == oracles.readelf_needed(path)
    assert img.uuid == oracles.readelf_build_id(path)
    hdr = oracles.readelf_header(path)
    machine = {"Advanced Micro Devices X86-64": "x86_64", "AArch64": "arm64"}[hdr["Machine"]]
    assert img.arch == machine
    assert img.entry == int(hdr["Entry point address"], 16)
    counts = oracles.readelf_symbol_counts(path)
    assert (img.symbols, img.dynamic_symbols) == (counts.get(".symtab", 0), counts.get(".dynsym", 0))
    expected = oracles.readelf_symbol_relocs(path)
    ours = {(i.address, i.reloc, i.symbol) for i in img.imports}
    assert ours == {(o, t, n.split("@")[0]) for o, t, n in expected}
    for i in img.imports:  # a version we report is the one readelf prints
        if i.version:
            assert (i.address, i.reloc, f"{i.symbol}@{i.version}") in expected
    assert img.link_base == (min(v for v, _, _ in oracles.readelf_loads(path)) & ~0xFFF
                             if oracles.readelf_loads(path) else None)
    sections = oracles.readelf_sections(path)
    assert [(s.name, s.addr, s.offset, s.size, _readelf_type(s.kind)) for s in img.sections] == \
        [(s["name"], s["addr"], s["offset"], s["size"], s["type"].upper()) for s in sections]
    for i in img.imports:  # the section a slot lies in, as readelf's section table places it
        assert i.section == oracles.section_holding(sections, i.address), i


def test_elf_binding_modes_and_pie(binaries):
    lazy, now = open_image(binaries("c-lazy")), open_image(binaries("c-now"))
    assert not lazy.bind_now and any(i.mode == "lazy" and i.reloc == "R_X86_64_JUMP_SLOT" for i in lazy.imports)
    assert now.bind_now and all(i.mode == "eager" for i in now.imports)
    bindnow = open_image(binaries("go-linux-amd64-bindnow"))
    assert bindnow.bind_now and bindnow.imports and all(i.mode == "eager" for i in bindnow.imports)
    internal = open_image(binaries("go-linux-amd64-internal"))
    assert any(i.mode == "lazy" for i in internal.imports)  # Go's linker: a lazy PLT unless -bindnow
    assert not internal.pie and internal.file_type == "executable" and internal.link_base == 0x400000
    assert open_image(binaries("go-linux-amd64-pie")).pie
    static = open_image(binaries("go-linux-amd64-static"))
    assert static.interpreter is None and static.imports == [] and not static.pie


@pytest.mark.parametrize("name", ["go-linux-amd64-internal", "go-linux-amd64-pie", "go-linux-arm64",
                                  "go-darwin-arm64"])
def test_go_build_info_agrees_with_go_version_m(name, binaries):
    from conftest import go_binary

    path = binaries(name)
    out = subprocess.run([go_binary(), "version", "-m", str(path)], capture_output=True, text=True,
                         check=True).stdout
    info = open_image(path).go
    assert out.split(":", 1)[1].split()[0] == info["version"]
    settings = dict(l.split("\t")[2].split("=", 1) for l in out.splitlines()
                    if l.startswith("\tbuild\t") and "=" in l.split("\t")[2])
    assert settings == info["settings"]
    assert info["settings"]["GOARCH"] == {"arm64": "arm64"}.get(name.rsplit("-", 1)[-1], "amd64")


@pytest.mark.parametrize("name", MACHO_BUILT)
def test_macho_agrees_with_llvm_objdump(name, binaries):
    require(shutil.which(oracles.OBJDUMP) is not None, f"{oracles.OBJDUMP} (llvm-16) is not installed")
    path = binaries(name)
    img = open_image(path)
    lc = oracles.objdump_load_commands(path)
    assert img.slice_offset == 0  # a thin file: its mach_header is the file's first bytes (no fat header before it)
    assert [(s.name, s.vmaddr, s.vmsize) for s in img.segments] == lc["segments"]
    assert img.uuid == lc["uuid"]
    assert img.link_base == next(v for n, v, _size in lc["segments"] if n == "__TEXT")  # __TEXT's vmaddr
    assert [l.name for l in img.libraries] == lc["dylibs"]
    binds = oracles.objdump_binds(path)
    assert binds, "the oracle saw no binds"
    short = lambda lib: lib.rsplit("/", 1)[-1].split(".")[0]  # noqa: E731 (llvm-objdump prints "libSystem")
    special = {"flat-namespace": "<flat lookup>"}  # llvm-objdump's word for the ordinal -2 (BIND_SPECIAL_DYLIB_FLAT_LOOKUP)
    assert {(i.address, i.library if i.library.startswith("<") else short(i.library), i.symbol)
            for i in img.imports} == {(a, special.get(lib, lib), s) for a, lib, s in binds}


def test_macho_binding_kinds(binaries):
    lazy = open_image(binaries("macho-x86_64-lazy"))
    assert {i.symbol for i in lazy.imports if i.mode == "lazy"} == {"_printf", "_puts", "_cos"}
    assert all(i.section == "__DATA,__la_symbol_ptr" for i in lazy.imports if i.mode == "lazy")
    chained = open_image(binaries("macho-arm64-chained"))
    assert chained.imports and all(i.reloc.startswith("DYLD_CHAINED_PTR") for i in chained.imports)
    go = open_image(binaries("go-darwin-arm64"), "arm64")
    # Go's internal Mach-O linker: non-lazy __got binds only, through LC_DYLD_INFO_ONLY
    assert go.imports and all(i.mode == "eager" and i.section == "__DATA_CONST,__got" for i in go.imports)


def test_fat_file_slices(binaries):
    fat = binaries("fat")
    for arch, thin in (("x86_64", "go-darwin-amd64"), ("arm64", "go-darwin-arm64")):
        img = open_image(fat, arch)
        assert img.arch == arch and img.slices == ["x86_64", "arm64"]
        assert img.uuid == open_image(binaries(thin)).uuid
        assert img.uuid == oracles.objdump_load_commands(fat, arch)["uuid"]
        assert {(i.address, i.symbol) for i in img.imports} == \
            {(a, s) for a, _, s in oracles.objdump_binds(fat, arch)}
    assert open_image(fat).arch == "x86_64"  # the host's slice by default
    for argv in (["--arch", "ppc"], ["--json", "--arch", "ppc"]):  # Typer's path and the console's own
        out = gotrace_cli("inspect", *argv, str(fat))
        assert out.returncode == 2 and out.stderr.strip().splitlines() == [
            f"gotrace: {fat}: no ppc slice (it has: x86_64, arm64)"]
    doc = json.loads(gotrace_cli("inspect", "--json", "--arch", "arm64", str(fat)).stdout)
    assert doc["arch"] == "arm64" and doc["uuid"] == open_image(fat, "arm64").uuid


def test_inspect_cli_json_and_text(binaries):
    path = binaries("c-lazy")
    out = gotrace_cli("inspect", "--json", str(path))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["format"] == "ELF" and doc["arch"] == "x86_64" and doc["pie"] is True
    assert {"printf", "cos"} <= {i["symbol"] for i in doc["imports"]}
    text = gotrace_cli("inspect", str(path))
    assert text.returncode == 0 and "imports" in text.stdout and "libm.so.6" in text.stdout


def test_extended_section_numbering_agrees_with_readelf(binaries, tmp_path):
    """ELF's escape for more than 0xff00 sections: e_shnum 0 and e_shstrndx
    SHN_XINDEX, the real values in section 0's sh_size and sh_link. The same
    file rewritten that way must read the same, as readelf reads it."""
    import struct

    src = binaries("c-lazy")
    data = bytearray(src.read_bytes())
    shoff, = struct.unpack_from("<Q", data, 40)
    shnum, shstrndx = struct.unpack_from("<HH", data, 60)
    struct.pack_into("<HH", data, 60, 0, 0xFFFF)
    struct.pack_into("<Q", data, shoff + 32, shnum)  # section 0: sh_size
    struct.pack_into("<I", data, shoff + 40, shstrndx)  # section 0: sh_link
    patched = tmp_path / "xnum"
    patched.write_bytes(bytes(data))
    sections = oracles.readelf_sections(patched)
    assert len(sections) == shnum
    img = open_image(patched)
    assert [(s.name, s.addr, s.size) for s in img.sections] == [(s["name"], s["addr"], s["size"]) for s in sections]
    assert [(s.name, s.addr, s.size) for s in img.sections[1:]] == \
        [(s.name, s.addr, s.size) for s in open_image(src).sections[1:]]


def test_inspect_json_answers_without_typer_and_as_typer_would(binaries, tmp_path):
    """`inspect --json` is answered by the console entry point without loading
    Typer, rich, pyelftools, numpy or dataclasses (that is what keeps it within
    3x of readelf, bench/bench_inspect.py); output, errors and exit codes are
    the Typer command's."""
    import sys

    path = str(binaries("c-lazy"))
    probe = ("import sys; from tracer.commands import console; sys.argv = ['gotrace'] + sys.argv[1:]\n"
             "console._exit_now = sys.exit  # report below instead of leaving at once\n"
             "try:\n    console.main()\nexcept SystemExit as e:\n    code = e.code\n"
             "heavy = [m for m in ('typer', 'rich', 'click', 'elftools', 'numpy', 'dataclasses') if m in sys.modules]\n"
             "sys.stderr.write(f'\\nHEAVY {heavy} CODE {code}\\n')")
    fast = subprocess.run([sys.executable, "-c", probe, "inspect", "--json", path], capture_output=True, text=True)
    assert fast.stderr.strip().splitlines()[-1] == "HEAVY [] CODE 0"
    typer_side = subprocess.run([sys.executable, "-c", "import sys; from tracer.commands.console import main; "
                                 "main(sys.argv[1:], fast_paths=False)", "inspect", "--json", path],
                                capture_output=True, text=True)
    assert typer_side.returncode == 0 and json.loads(fast.stdout) == json.loads(typer_side.stdout)
    assert json.loads(fast.stdout) == open_image(path).to_dict()
    # errors: one line, same text and code on both paths
    (tmp_path / "empty").write_bytes(b"")
    for bad in (str(tmp_path / "empty"), str(tmp_path), str(tmp_path / "missing")):
        a = gotrace_cli("inspect", "--json", bad)
        b = gotrace_cli("inspect", bad)
        assert a.returncode == b.returncode == 2
        assert a.stderr.strip().splitlines() == b.stderr.strip().splitlines() and len(a.stderr.strip().splitlines()) == 1
    # anything else goes to Typer: help, unknown options, two files
    assert "Usage" in gotrace_cli("inspect", "--json", "--help").stdout
    odd = gotrace_cli("inspect", "--json", "--bogus", path)
    assert odd.returncode == 2 and "No such option" in odd.stderr
    assert gotrace_cli("inspect", "--json", path, path).returncode == 2
    assert json.loads(gotrace_cli("inspect", "--arch=arm64", "--json", "--", path).stdout)["path"] == path


@pytest.mark.parametrize("name", ["c-lazy", "go-linux-amd64-internal", "go-linux-amd64-external",
                                  "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
                                  "/usr/lib/aarch64-linux-gnu/libc.so.6"])
def test_plt_symbols_agree_with_readelf(name, binaries):
    """What the ld-debug backend calls lazy: every JUMP_SLOT relocation's symbol."""
    from tracer.binary.elf import plt_symbols

    path = _elf_path(name, binaries)
    require(os.path.exists(path), f"{path} is missing: run scripts/setup.sh")
    expected = {n.split("@")[0] for _o, t, n in oracles.readelf_symbol_relocs(path) if t.endswith("_JUMP_SLOT")}
    assert plt_symbols(path) == expected and expected


@pytest.mark.parametrize("argv", [["inspect", "--json"], ["inspect"]])
def test_a_bug_is_one_line_and_70_on_both_paths(argv, binaries):
    """An unexpected exception: one line and exit 70 from the console's own path
    and from Typer's; with GOTRACE_DEBUG the traceback instead."""
    import sys

    probe = ("import sys; import tracer.binary.open as o\n"
             "def broken(*a, **k):\n    raise ValueError('boom')\n"
             "o.open_image = o.read_image = broken\n"
             "from tracer.commands import console; sys.argv = ['gotrace'] + sys.argv[1:]; console.main()")
    path = str(binaries("c-lazy"))
    out = subprocess.run([sys.executable, "-c", probe, *argv, path], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "GOTRACE_DEBUG"})
    assert out.returncode == 70 and out.stderr.strip().splitlines() == [
        "gotrace: internal error: ValueError: boom (GOTRACE_DEBUG=1 shows the traceback)"]
    debug = subprocess.run([sys.executable, "-c", probe, *argv, path], capture_output=True, text=True,
                           env=dict(os.environ, GOTRACE_DEBUG="1"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ValueError: boom" in debug.stderr


@pytest.mark.parametrize("subtype", [0, 2])
def test_macho_arm64e_is_told_by_its_cpu_subtype(subtype, binaries, tmp_path):
    """An arm64 file's cpusubtype set to CPU_SUBTYPE_ARM64E (2) and left ALL (0): llvm-objdump-16
    --macho --private-headers prints "ARM64  E" for the first only, and inspect's arch follows it."""
    import re
    import struct

    data = bytearray(binaries("macho-arm64-chained").read_bytes())
    struct.pack_into("<I", data, 8, subtype)
    path = tmp_path / "file"
    path.write_bytes(bytes(data))
    text = subprocess.run([oracles.OBJDUMP, "--macho", "--private-headers", str(path)], capture_output=True,
                          text=True, check=True).stdout
    row = re.search(r"^MH_MAGIC_64\s+(\S+)\s+(\S+)\s", text, re.M)
    out = gotrace_cli("inspect", "--json", str(path))
    assert out.returncode == 0, out.stderr
    assert row[1] == "ARM64"
    assert json.loads(out.stdout)["arch"] == ("arm64e" if row[2] == "E" else "arm64")
    assert (row[2] == "E") == (subtype == 2)


@pytest.mark.parametrize("name", ["macho-x86_64-lazy", "go-darwin-amd64"])
def test_macho_segment_protections_are_llvm_objdumps(name, binaries):
    """Each segment's protection is its initprot as llvm-objdump-16 --macho --private-headers prints it
    (r-x, rw-, r--, ---)."""
    import re

    path = binaries(name)
    text = subprocess.run([oracles.OBJDUMP, "--macho", "--private-headers", str(path)], capture_output=True,
                          text=True, check=True).stdout
    want = dict(re.findall(r"cmd LC_SEGMENT_64\n(?:.*\n)*?\s+segname (\S+)\n(?:.*\n)*?\s+initprot (\S+)", text))
    out = gotrace_cli("inspect", "--json", str(path))
    got = {s["name"]: s["prot"] for s in json.loads(out.stdout)["segments"]}
    assert {"r-x", "rw-"} <= set(want.values()) and got == want


def _fat64(fat: bytes) -> bytes:
    """The same universal file with a FAT_MAGIC_64 header (fat_arch_64: 64-bit offset and size, then
    align and a reserved word), what `lipo -fat64` writes; llvm-lipo-16 has no -fat64, so by hand."""
    import struct

    assert fat[:4] == b"\xca\xfe\xba\xbe"
    count = struct.unpack_from(">I", fat, 4)[0]
    out = bytearray(fat)
    struct.pack_into(">II", out, 0, 0xCAFEBABF, count)
    for i in reversed(range(count)):  # 32-byte entries overwrite the 20-byte ones: last first
        cpu, sub, off, size, align = struct.unpack_from(">iiIII", fat, 8 + i * 20)
        assert 8 + count * 32 <= off  # the first slice starts a page in: room for the wider table
        struct.pack_into(">iiQQII", out, 8 + i * 32, cpu, sub, off, size, align, 0)
    return bytes(out)


def test_fat64_file_slices_are_llvm_objdumps(binaries, tmp_path):
    """A FAT_MAGIC_64 universal file reads slice by slice as llvm-objdump-16 --macho reads it
    (--universal-headers: the magic and each slice's offset; --private-headers: its UUID; --bind: its binds)."""
    import re

    fat64 = tmp_path / "fat64"
    fat64.write_bytes(_fat64(binaries("fat").read_bytes()))
    heads = subprocess.run(["llvm-objdump-16", "--macho", "--universal-headers", str(fat64)],
                           capture_output=True, text=True, check=True).stdout
    assert "fat_magic FAT_MAGIC_64" in heads
    archs = re.findall(r"^\s*cputype CPU_TYPE_(\S+)", heads, re.M)
    assert len(archs) == 2
    offsets = dict(re.findall(r"^architecture (\S+)\n(?:.*\n)*?\s*offset (\d+)", heads, re.M))
    for arch in ("x86_64", "arm64"):
        img = open_image(fat64, arch)
        assert img.arch == arch and img.slices == ["x86_64", "arm64"]
        assert img.slice_offset == int(offsets[arch]) == open_image(binaries("fat"), arch).slice_offset
        assert img.uuid == oracles.objdump_load_commands(fat64, arch)["uuid"] is not None
        assert {(i.address, i.symbol) for i in img.imports} == \
            {(a, s) for a, _, s in oracles.objdump_binds(fat64, arch)}


def test_macho_ending_where_its_load_commands_end_reads(tmp_path):
    """A Mach-O file may end at its last load command (an object with only LC_UUID: nothing
    past the commands to point at); llvm-objdump-16 --private-headers reads its UUID."""
    import struct

    path = tmp_path / "commands-only"
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x0100000C, 0, 1, 1, 24, 0, 0)  # arm64 MH_OBJECT, 1 command
    path.write_bytes(header + struct.pack("<II16s", 0x1B, 24, bytes(range(16))))  # LC_UUID
    want = oracles.objdump_load_commands(path)["uuid"]
    assert want is not None
    assert open_image(path).uuid == want


def test_macho_32_bit_object_reads_as_llvm_objdump_reads_it(tmp_path):
    """A 32-bit Mach-O (i386: LC_SEGMENT, mach_header without the reserved word) built by clang
    from tests/fixtures/macho/hello.c: its segment's file range and its sections are
    llvm-objdump-16 --macho --private-headers'."""
    import re

    require(shutil.which("clang-14") is not None, "clang-14 is not installed (bash scripts/setup.sh)")
    obj = tmp_path / "hello-i386.o"
    src = os.path.join(os.path.dirname(__file__), "fixtures", "macho", "hello.c")
    subprocess.run(["clang-14", "-target", "i386-apple-macos10.7", "-c", src, "-o", str(obj)], check=True)
    text = subprocess.run([oracles.OBJDUMP, "--macho", "--private-headers", str(obj)], capture_output=True,
                          text=True, check=True).stdout
    assert re.search(r"^\s*MH_MAGIC\s+I386\s", text, re.M)
    segs = [(int(o), int(s)) for o, s in re.findall(r"cmd LC_SEGMENT\n(?:.*\n){4}\s*fileoff (\d+)\n\s*filesize (\d+)",
                                                     text)]
    sects = [(f"{g},{n}", int(a, 16), int(z, 16), int(o)) for n, g, a, z, o in re.findall(
        r"sectname (\S+)\n\s*segname (\S+)\n\s*addr (0x[0-9a-f]+)\n\s*size (0x[0-9a-f]+)\n\s*offset (\d+)", text)]
    assert segs and sects
    img = open_image(obj)
    assert img.bits == 32 and img.arch == "i386"
    assert [(s.fileoff, s.filesize) for s in img.segments] == segs
    assert [(s.name, s.addr, s.size, s.offset) for s in img.sections] == sects


@pytest.mark.parametrize("name", ["/bin/ls", ELF_BUILT[0], *MACHO_BUILT])
def test_code_signature_is_llvm_objdumps(name, binaries):
    """A code signature is LC_CODE_SIGNATURE among llvm-objdump-16 --macho --private-headers' load
    commands (an ELF file has none: llvm-objdump finds no Mach-O header in it)."""
    require(shutil.which(oracles.OBJDUMP) is not None, f"{oracles.OBJDUMP} (llvm-16) is not installed")
    path = name if name.startswith("/") else str(_elf_path(name, binaries) if name in ELF_BUILT else binaries(name))
    text = subprocess.run([oracles.OBJDUMP, "--macho", "--private-headers", path], capture_output=True,
                          text=True).stdout
    assert open_image(path).code_signature == bool(re.search(r"cmd LC_CODE_SIGNATURE\b", text))


def test_import_slots_in_overlapping_sections_lie_in_the_smallest(binaries, tmp_path):
    """c-lazy's .comment header made an allocated 8-byte section ending exactly at an import slot
    inside .got (sh_flags | SHF_ALLOC, its sh_addr and sh_offset there): sections now overlap, as
    in some firmware images, and the slot lies in .got only. Each slot's section is the smallest
    readelf -SW row holding it (the .comment one must be walked past, not taken at its end)."""
    import struct

    from elftools.elf.elffile import ELFFile

    src = binaries("c-lazy")
    sections = oracles.readelf_sections(src)
    got = next(s for s in sections if s["name"] == ".got")
    slot = max(o for o, _t, _n in oracles.readelf_symbol_relocs(src) if got["addr"] <= o < got["addr"] + got["size"])
    assert slot >= got["addr"] + 16  # the premise: the new section starts inside .got
    data = bytearray(src.read_bytes())
    with open(src, "rb") as fh:
        elf = ELFFile(fh)
        index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".comment")
        at = elf["e_shoff"] + index * elf["e_shentsize"]
    flags, = struct.unpack_from("<Q", data, at + 8)
    struct.pack_into("<QQQQ", data, at + 8, flags | 2, slot - 8, got["offset"] + slot - 8 - got["addr"], 8)
    bad = tmp_path / "overlap"
    bad.write_bytes(bytes(data))
    sections = oracles.readelf_sections(bad)
    assert next(s for s in sections if s["name"] == ".comment")["addr"] + 8 == slot  # readelf reads it
    img = open_image(str(bad))
    assert {i.address for i in img.imports} == {o for o, _t, _n in oracles.readelf_symbol_relocs(bad)}
    for i in img.imports:
        assert i.section == oracles.section_holding(sections, i.address), i
    assert next(i for i in img.imports if i.address == slot).section == ".got"


def _without_bind_opcodes(src, dst) -> None:
    """A copy of a thin 64-bit Mach-O with LC_DYLD_INFO(_ONLY) taken out: what ld64 wrote for macOS 10.5
    and older, whose binds dyld reads from the indirect symbol table and each symbol's n_desc ordinal."""
    import struct

    data = bytearray(open(src, "rb").read())
    ncmds, sizeofcmds = struct.unpack_from("<II", data, 16)
    kept, pos = [], 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd not in (0x22, 0x80000022):
            kept.append(bytes(data[pos:pos + size]))
        pos += size
    assert len(kept) == ncmds - 1
    data[32:32 + sizeofcmds] = b"".join(kept).ljust(sizeofcmds, b"\0")
    struct.pack_into("<II", data, 16, len(kept), len(b"".join(kept)))
    open(dst, "wb").write(bytes(data))


def _lld_x86_64(d, name: str, source: str, *flags: str):
    require(shutil.which("clang-14") and shutil.which("ld64.lld-16"), "clang-14 / ld64.lld-16 not installed")
    (d / f"{name}.c").write_text(source)
    subprocess.run(["clang-14", "-target", "x86_64-apple-macos10.15", "-c", str(d / f"{name}.c"), "-o",
                    str(d / f"{name}.o")], check=True)
    tbd = os.path.join(os.path.dirname(__file__), "fixtures", "macho", "libSystem.tbd")
    subprocess.run(["ld64.lld-16", "-arch", "x86_64", "-platform_version", "macos", "10.15", "10.15", "-o",
                    str(d / name), str(d / f"{name}.o"), tbd, *flags], check=True, capture_output=True)
    return d / name


# llvm-nm -m's words for an undefined symbol's n_desc ordinal -> gotrace's library (short names as llvm-nm's)
NM_ORDINAL = {"dynamically looked up": "<flat lookup>", "from executable": "<main executable>"}


@pytest.mark.parametrize("how", ["twolevel", "dynamic_lookup", "bundle_loader", "flat_namespace"])
def test_macho_binds_without_opcodes_are_named_as_llvm_nm_names_them(how, tmp_path):
    """Binds read from the nlist (no LC_DYLD_INFO; ld64.lld builds with the command taken out, each build
    first read with its opcodes against llvm-objdump-16 --bind / --lazy-bind): each
    import's library is its symbol's ordinal as llvm-nm-16 -m prints it — `(from libSystem)`,
    `(dynamically looked up)`, `(from executable)` — and, in an image without MH_TWOLEVEL (llvm-objdump
    --private-headers), where llvm-nm prints none, a flat lookup: dyld's MachOAnalyzer::libOrdinalFromDesc
    reads every ordinal of such an image so. gotrace once left the special ordinals unnamed."""
    require(shutil.which(oracles.OBJDUMP) is not None, f"{oracles.OBJDUMP} (llvm-16) is not installed")
    nm = oracles.OBJDUMP.replace("objdump", "nm")
    prog = "extern int far_fn(void);\nint main(void) { return far_fn(); }\n"
    if how == "twolevel":
        src = _lld_x86_64(tmp_path, how, "#include <stdio.h>\nint main(void) { return puts(\"hi\"); }\n")
    elif how in ("dynamic_lookup", "flat_namespace"):
        src = _lld_x86_64(tmp_path, how, prog, "-undefined", "dynamic_lookup", *(["-flat_namespace"]
                                                                                 if how == "flat_namespace" else []))
    else:
        host = _lld_x86_64(tmp_path, "host", "int far_fn(void) { return 3; }\nint main(void) { return far_fn(); }\n",
                           "-export_dynamic")
        src = _lld_x86_64(tmp_path, how, "extern int far_fn(void);\nint plug(void) { return far_fn(); }\n",
                          "-bundle", "-bundle_loader", str(host))
    # the build itself, with its bind opcodes: llvm-objdump --bind / --lazy-bind's dylib column
    special = {"flat-namespace": "<flat lookup>", "main-executable": "<main executable>"}
    assert {(i.address, i.library if i.library.startswith("<") else i.library.rsplit("/", 1)[-1].split(".")[0],
             i.symbol) for i in open_image(src).imports} == \
        {(a, special.get(lib, lib), s) for a, lib, s in oracles.objdump_binds(src)}
    path = tmp_path / f"{how}-nlist"
    _without_bind_opcodes(src, path)
    assert "Bind table:\nsegment" in subprocess.run([oracles.OBJDUMP, "--macho", "--bind", str(path)],
                                                    capture_output=True, text=True, check=True).stdout
    headers = subprocess.run([oracles.OBJDUMP, "--macho", "--private-headers", str(path)], capture_output=True,
                             text=True, check=True).stdout
    twolevel = bool(re.search(r"\bTWOLEVEL\b", headers))
    assert twolevel == (how != "flat_namespace")
    undefined = re.findall(r"\(undefined\) external (\S+)(?: \((.*)\))?$",
                           subprocess.run([nm, "-m", str(path)], capture_output=True, text=True, check=True).stdout,
                           re.M)
    want = {sym: NM_ORDINAL.get(said, said.removeprefix("from ")) if twolevel else "<flat lookup>"
            for sym, said in undefined}
    assert (not twolevel) or all(want.values())
    rows = open_image(path).imports
    assert rows and {i.symbol for i in rows} <= set(want)
    got = {i.symbol: i.library if i.library.startswith("<") else i.library.rsplit("/", 1)[-1].split(".")[0]
           for i in rows}
    assert got == {s: w for s, w in want.items() if s in got}
    assert got["_puts"] == "libSystem" if how == "twolevel" else got["_far_fn"].startswith("<")
