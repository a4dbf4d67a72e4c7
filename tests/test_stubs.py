"""gotrace stubs: slots named right, clean binaries pass, each anomaly is caught.

The anomalies are made by patching copies of real binaries at offsets found
with pyelftools / LIEF directly (not through tracer), then checked through the
CLI for the exit code and the reason.
"""
from __future__ import annotations

import json
import re
import shutil
import struct

import pytest
from elftools.elf.elffile import ELFFile

import oracles
from conftest import gotrace_cli
from tracer.binary import open_image


def stubs_json(path, *extra):
    out = gotrace_cli("stubs", "--json", *extra, str(path))
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def kinds(doc) -> set[str]:
    return {a["kind"] for a in doc["anomalies"]}


@pytest.mark.parametrize("name", ["c-lazy", "c-now", "go-linux-amd64-internal", "go-linux-amd64-pie",
                                  "macho-x86_64-lazy", "go-darwin-amd64"])
def test_clean_binaries_have_no_anomalies(name, binaries):
    rc, doc = stubs_json(binaries(name))
    assert rc == 0 and doc["anomalies"] == []
    assert doc["sections"], "no stub sections found"


def test_elf_slots_match_relocations(binaries):
    path = binaries("c-lazy")
    rc, doc = stubs_json(path)
    got = {s["address"]: s["symbol"] for sec in doc["sections"] if sec["name"] in (".got", ".got.plt")
           for s in sec["slots"] if s["symbol"]}
    relocs = oracles.readelf_symbol_relocs(path)
    spans = [_elf_section(path, n) for n in (".got", ".got.plt")]
    in_got = lambda off: any(a <= off < a + size for _o, size, a in spans)  # noqa: E731 (COPY relocs live in .bss)
    assert got == {off: name for off, _t, name in relocs if in_got(off)}
    plt = next(sec for sec in doc["sections"] if sec["name"] in (".plt.sec", ".plt") and len(sec["slots"]) > 1)
    lazy = {name.split("@")[0] for _o, t, name in relocs if t == "R_X86_64_JUMP_SLOT"}
    assert {s["symbol"] for s in plt["slots"] if s["symbol"]} == lazy


def test_macho_stub_symbols_match_indirect_table(binaries):
    path = binaries("macho-x86_64-lazy")
    rc, doc = stubs_json(path)
    stubs = next(sec for sec in doc["sections"] if sec["name"] == "__TEXT,__stubs")
    assert [s["symbol"] for s in stubs["slots"]] == ["_cos", "_puts", "_printf"]
    la = next(sec for sec in doc["sections"] if sec["name"] == "__DATA,__la_symbol_ptr")
    helper = next(sec for sec in doc["sections"] if sec["name"] == "__TEXT,__stub_helper")
    for s in la["slots"]:  # each lazy pointer leads into __stub_helper until bound
        assert helper["address"] <= int(s["value"], 16) < helper["address"] + helper["size"]


def _elf_section(path, name):
    with open(path, "rb") as fh:
        sec = ELFFile(fh).get_section_by_name(name)
        return sec["sh_offset"], sec["sh_size"], sec["sh_addr"]


def _patch(src, dst, offset, data):
    shutil.copy(src, dst)
    with open(dst, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)
    return dst


@pytest.mark.parametrize("fill,words", [(b"\0", "zeros"), (b"\xcc", "0xCC")])
def test_stub_section_filled(fill, words, binaries, tmp_path):
    src = binaries("c-lazy")
    off, size, _ = _elf_section(src, ".plt")
    bad = _patch(src, tmp_path / "bad", off, fill * size)
    rc, doc = stubs_json(bad)
    assert rc == 1 and "empty-stubs" in kinds(doc)
    assert any(words in a["reason"] and a["where"] == ".plt" for a in doc["anomalies"])


def _first_lazy_slot(path):
    img = open_image(path)
    slot = next(i for i in img.imports if i.mode == "lazy")
    off, _size, addr = _elf_section(path, ".got.plt")
    return off + (slot.address - addr)


def test_lazy_pointer_outside_and_astray(binaries, tmp_path):
    src = binaries("c-lazy")
    at = _first_lazy_slot(src)
    rc, doc = stubs_json(_patch(src, tmp_path / "out", at, struct.pack("<Q", 0xDEADBEEF0000)))
    assert rc == 1 and "lazy-pointer-outside" in kinds(doc)
    text_off, _s, text_addr = _elf_section(src, ".text")
    rc, doc = stubs_json(_patch(src, tmp_path / "astray", at, struct.pack("<Q", text_addr)))
    assert rc == 1 and kinds(doc) == {"lazy-pointer-not-to-stub"}


def test_bind_to_library_not_loaded(binaries, tmp_path):
    """libm's DT_NEEDED entry retagged (DT_CHECKSUM): cos@GLIBC_2.2.5 still names libm.so.6."""
    src = binaries("c-lazy")
    off, size, _ = _elf_section(src, ".dynamic")
    with open(src, "rb") as fh:
        fh.seek(off)
        dyn = fh.read(size)
    needed = [i for i in range(0, size, 16) if struct.unpack_from("<q", dyn, i)[0] == 1]
    libs = oracles.readelf_needed(src)
    idx = needed[libs.index("libm.so.6")]
    bad = _patch(src, tmp_path / "nolibm", off + idx, struct.pack("<q", 0x6FFFFDF8))
    assert "libm.so.6" not in oracles.readelf_needed(bad)
    rc, doc = stubs_json(bad)
    assert rc == 1 and kinds(doc) == {"library-not-loaded"}
    assert "libm.so.6" in doc["anomalies"][0]["reason"]


def test_macho_lazy_pointer_astray(binaries, tmp_path):
    import lief

    src = binaries("macho-x86_64-lazy")
    b = lief.MachO.parse(str(src)).at(0)
    la = next(s for s in b.sections if s.name == "__la_symbol_ptr")
    text = next(s for s in b.sections if s.name == "__text")
    rc, doc = stubs_json(_patch(src, tmp_path / "astray", la.offset, struct.pack("<Q", text.virtual_address)))
    assert rc == 1 and kinds(doc) == {"lazy-pointer-not-to-stub"}
    rc, doc = stubs_json(_patch(src, tmp_path / "outside", la.offset, struct.pack("<Q", 0x7777_0000_0000)))
    assert rc == 1 and kinds(doc) == {"lazy-pointer-outside"}


def test_missing_uuid(binaries, tmp_path):
    import lief

    b = lief.MachO.parse(str(binaries("macho-x86_64-lazy"))).at(0)
    b.remove(lief.MachO.LoadCommand.TYPE.UUID)
    bad = tmp_path / "nouuid"
    b.write(str(bad))
    assert oracles.objdump_load_commands(bad)["uuid"] is None
    rc, doc = stubs_json(bad)
    assert rc == 1 and kinds(doc) == {"missing-uuid"}
    out = gotrace_cli("stubs", str(bad))
    assert out.returncode == 1 and "LC_UUID" in out.stdout and "macOS 26" in out.stdout


def test_wrong_architecture(binaries):
    """An ELF for another CPU is the wrong architecture on this x86_64 Linux host; a
    cross-built Mach-O is not (it cannot run on Linux whatever its CPU) unless
    --arch asks for another slice's CPU."""
    rc, doc = stubs_json(binaries("go-linux-arm64"))
    assert rc == 1 and kinds(doc) == {"wrong-arch"} and "host's" in doc["anomalies"][0]["reason"]
    # (Go's darwin/arm64 stubs are flagged for their reserved2: test_macho_real.py)
    rc, doc = stubs_json(binaries("go-darwin-arm64"))
    assert "wrong-arch" not in kinds(doc)
    rc, doc = stubs_json(binaries("go-darwin-arm64"), "--arch", "arm64")
    assert "wrong-arch" not in kinds(doc)
    rc, doc = stubs_json(binaries("c-lazy"), "--arch", "arm64")
    assert rc == 1 and kinds(doc) == {"wrong-arch"}
    assert "requested" in doc["anomalies"][0]["reason"]


# ------------------------------------------------------------ survivors of the mutation run (bench/mutation-survivors.md)

def _indirect(path) -> dict[str, list[tuple[int, str]]]:
    """``seg,sect`` -> [(address, symbol)] of each section llvm-objdump-16 --macho --indirect-symbols lists."""
    import re

    from test_macho_real import _objdump

    out = {}
    for block in _objdump("--macho", "--indirect-symbols", path).split("Indirect symbols for (")[1:]:
        name = block.split(")")[0]
        out[name] = [(int(a, 16), n) for a, _i, n in re.findall(r"^(0x[0-9a-f]+)\s+(\d+)\s+(\S+)$", block, re.M)]
    return out


@pytest.mark.parametrize("name", ["macho-x86_64-lazy", "macho-arm64-chained", "go-darwin-amd64"])
def test_macho_stub_and_pointer_sections_are_the_indirect_tables(name, binaries):
    """The Mach-O sections gotrace lists as stubs or pointers are those llvm-objdump-16
    --indirect-symbols gives entries (plus __stub_helper, which has none): __text or __data
    listed as pointers would be a misreading of the section types."""
    path = binaries(name)
    _rc, doc = stubs_json(path)
    listed = sorted(s["name"] for s in doc["sections"] if s["kind"] != "helper")  # each once
    assert listed == sorted(n for n, rows in _indirect(path).items() if rows)


def _macho_section(path, full):
    from test_macho_real import objdump_sections

    return objdump_sections(path)[full]


def test_macho_stub_jumping_into_the_stubs_keeps_its_table_name(binaries, tmp_path):
    """The first stub's jmp retargeted into __stubs itself (stub + 8, no pointer): llvm-objdump
    --indirect-symbols still names it by its entry (_cos), and nothing makes the bytes at
    __stubs + 8 a pointer named by the second stub's entry."""
    src = binaries("macho-x86_64-lazy")
    stubs = _macho_section(src, "__TEXT,__stubs")
    disp = (stubs["addr"] + 8) - (stubs["addr"] + 6)
    bad = _patch(src, tmp_path / "bad", stubs["offset"], b"\xff\x25" + struct.pack("<i", disp))
    want = _indirect(bad)["__TEXT,__stubs"]
    _rc, doc = stubs_json(bad)
    sec = next(s for s in doc["sections"] if s["name"] == "__TEXT,__stubs")
    assert sec["slots"][0]["address"] == want[0][0] and sec["slots"][0]["symbol"] == want[0][1]
    assert "stub-name-mismatch" not in kinds(doc)


def test_macho_undecoded_stub_between_two_is_named_by_its_entry(binaries, tmp_path):
    """The second of three stubs overwritten with nops: every stub stays listed at llvm-objdump
    --indirect-symbols' addresses with its names, the middle one as not a stub."""
    src = binaries("macho-x86_64-lazy")
    stubs = _macho_section(src, "__TEXT,__stubs")
    bad = _patch(src, tmp_path / "bad", stubs["offset"] + 6, b"\x90" * 6)
    want = _indirect(bad)["__TEXT,__stubs"]
    rc, doc = stubs_json(bad)
    sec = next(s for s in doc["sections"] if s["name"] == "__TEXT,__stubs")
    assert [(s["address"], s["symbol"]) for s in sec["slots"]] == want
    assert "jumps through" not in sec["slots"][1]["action"]


def test_macho_stub_through_an_unbound_pointer_is_named_by_the_pointers_entry(binaries, tmp_path):
    """Lazy binds dropped (LC_DYLD_INFO_ONLY's lazy_bind_size 0: llvm-objdump --lazy-bind lists
    none) and the first stub retargeted to the second lazy pointer: with no bind, the pointer's
    own indirect entry (llvm-objdump --indirect-symbols for __la_symbol_ptr) names the stub,
    and the stub's entry naming another symbol is flagged."""
    from test_macho_real import _objdump

    src = binaries("macho-x86_64-lazy")
    data = bytearray(src.read_bytes())
    ncmds, pos = struct.unpack_from("<I", data, 16)[0], 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd == 0x80000022:  # LC_DYLD_INFO_ONLY: lazy_bind_size at +36
            struct.pack_into("<I", data, pos + 36, 0)
        pos += size
    stubs = _macho_section(src, "__TEXT,__stubs")
    la = _indirect(src)["__DATA,__la_symbol_ptr"]
    struct.pack_into("<Bbi", data, stubs["offset"], 0xFF, 0x25, la[1][0] - (stubs["addr"] + 6))
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    assert "_cos" not in _objdump("--macho", "--lazy-bind", bad)
    own = _indirect(bad)["__TEXT,__stubs"][0][1]
    assert own != la[1][1]
    rc, doc = stubs_json(bad)
    sec = next(s for s in doc["sections"] if s["name"] == "__TEXT,__stubs")
    assert sec["slots"][0]["symbol"] == la[1][1]
    (a,) = [a for a in doc["anomalies"] if a["kind"] == "stub-name-mismatch"]
    assert f"{own} by the table, {la[1][1]} by its pointer" in a["reason"]


def _lld_got_first(tmp_path):
    """tests/csrc/gotfirst built by clang-14 and ld.lld-16 (lazy, -pie, no C library)."""
    import shutil
    import subprocess

    from conftest import ROOT, require

    require(shutil.which("clang-14") is not None and shutil.which("ld.lld-16") is not None,
            "clang-14 and lld-16 are not installed")
    for src in ("lib", "main"):
        subprocess.run(["clang-14", "-fPIC", "-O1", "-c", "-o", str(tmp_path / f"{src}.o"),
                        str(ROOT / f"tests/csrc/gotfirst/{src}.c")], check=True)
    subprocess.run(["ld.lld-16", "-shared", "-soname", "libg.so", "-o", str(tmp_path / "libg.so"),
                    str(tmp_path / "lib.o")], check=True)
    path = tmp_path / "gotfirst"
    subprocess.run(["ld.lld-16", "-pie", "--dynamic-linker", "/lib64/ld-linux-x86-64.so.2", "-o", str(path),
                    str(tmp_path / "main.o"), str(tmp_path / "libg.so")], check=True)
    return path


@pytest.mark.parametrize("name", ["c-lazy", "lld-got-first"])
def test_elf_got_words_ld_so_reserves(name, binaries, tmp_path):
    """The three GOT words at DT_PLTGOT (readelf -d) are ld.so's on x86-64 (glibc's
    elf_machine_runtime_setup stores the link_map at got[1] and its resolver at got[2]);
    got[0] is the address of _DYNAMIC exactly when the word there (read by pyelftools) is .dynamic's
    address (readelf -S). lld-got-first: DT_PLTGOT is the first address of a PT_LOAD (readelf -lW)."""
    import re
    import subprocess

    path = binaries(name) if name == "c-lazy" else _lld_got_first(tmp_path)
    dyn = subprocess.run(["readelf", "-W", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    pltgot = int(re.search(r"\(PLTGOT\)\s+(0x[0-9a-f]+)", dyn)[1], 16)
    dynamic = next(s for s in oracles.readelf_sections(path) if s["name"] == ".dynamic")
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        sec = next(s for s in elf.iter_sections() if s["sh_addr"] <= pltgot < s["sh_addr"] + s["sh_size"])
        word0 = struct.unpack_from("<Q", sec.data(), pltgot - sec["sh_addr"])[0]
    if name == "lld-got-first":  # the premise
        loads = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True).stdout
        assert pltgot in {int(f[2], 16) for f in map(str.split, loads.splitlines()) if f and f[0] == "LOAD"}
        assert word0 == dynamic["addr"]
    _rc, doc = stubs_json(path)
    slots = {s["address"]: s for sec in doc["sections"] for s in sec["slots"]}
    assert "link_map" in slots[pltgot + 8]["action"] and "resolver" in slots[pltgot + 16]["action"]
    assert ("_DYNAMIC" in slots[pltgot]["action"]) == (word0 == dynamic["addr"])
    assert all(slots[pltgot + k]["symbol"] is None for k in (0, 8, 16))


def test_macho_stub_section_last_in_the_indirect_table(binaries, tmp_path):
    """__stubs and __la_symbol_ptr swap their shares of the indirect table (reserved1; both list
    _cos, _puts, _printf): the stubs' share is now the table's tail, up to nindirectsyms. llvm-objdump
    --indirect-symbols names the stubs as before, and the file is as sound as the original."""
    from test_macho_real import _section_header_offset

    src = binaries("macho-x86_64-lazy")
    data = bytearray(src.read_bytes())
    at_stubs = _section_header_offset(src, "__TEXT,__stubs") + 68  # reserved1
    at_la = _section_header_offset(src, "__DATA,__la_symbol_ptr") + 68
    first_stubs, first_la = struct.unpack_from("<I", data, at_stubs)[0], struct.unpack_from("<I", data, at_la)[0]
    struct.pack_into("<I", data, at_stubs, first_la)
    struct.pack_into("<I", data, at_la, first_stubs)
    bad = tmp_path / "swapped"
    bad.write_bytes(bytes(data))
    assert _indirect(bad)["__TEXT,__stubs"] == _indirect(src)["__TEXT,__stubs"]
    rc, doc = stubs_json(bad)
    sec = next(s for s in doc["sections"] if s["name"] == "__TEXT,__stubs")
    assert [(s["address"], s["symbol"]) for s in sec["slots"]] == _indirect(bad)["__TEXT,__stubs"]
    assert rc == 0 and doc["anomalies"] == []


@pytest.mark.parametrize("name", [".got.plt", ".plt"])
def test_elf_section_that_ends_the_file_is_read(name, binaries, tmp_path):
    """GNU ld and lld write the section header table last, so no section of theirs ends the file.
    Here the section's bytes are copied to the file's end and its sh_offset (pyelftools) pointed
    there — readelf -SW then shows it ending exactly at the file's size: its slots are still read,
    the .got.plt's named by readelf -rW's relocations there, the .plt's entries by its JUMP_SLOTs."""
    src = binaries("c-lazy")
    data = bytearray(src.read_bytes())
    with open(src, "rb") as fh:
        elf = ELFFile(fh)
        index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == name)
        at = elf["e_shoff"] + index * elf["e_shentsize"] + 24  # Elf64_Shdr's sh_offset
    off, size, addr = _elf_section(src, name)
    struct.pack_into("<Q", data, at, len(data))
    data += data[off:off + size]
    moved = tmp_path / "moved"
    moved.write_bytes(bytes(data))
    sec = next(s for s in oracles.readelf_sections(moved) if s["name"] == name)
    assert sec["offset"] + sec["size"] == len(data) and sec["addr"] == addr  # the premise
    rc, doc = stubs_json(moved)
    assert rc == 0 and doc["anomalies"] == []
    (ours,) = [s for s in doc["sections"] if s["name"] == name]
    relocs = oracles.readelf_symbol_relocs(moved)
    if name == ".got.plt":
        assert {s["address"]: s["symbol"] for s in ours["slots"] if s["symbol"]} == {
            o: n for o, _t, n in relocs if addr <= o < addr + size}
    else:  # the lazy entries (IBT: each pushes its relocation's index) name every JUMP_SLOT
        assert {s["symbol"] for s in ours["slots"] if s["symbol"]} == {
            n.split("@")[0] for _o, t, n in relocs if t == "R_X86_64_JUMP_SLOT"}


def test_elf_empty_stub_and_pointer_sections_are_not_listed(tmp_path):
    """tests/csrc/emptyplt.s linked by ld.lld-16: its .plt and .got.plt are there at size 0 (readelf
    -SW) and objdump -d disassembles no .plt — nothing to decode and no slot, so stubs lists neither
    (the .plt was listed as "shorter than x86_64's 16-byte PLT header: not decoded")."""
    import shutil
    import subprocess

    from conftest import ROOT, require

    require(shutil.which("clang-14") is not None and shutil.which("ld.lld-16") is not None,
            "clang-14 and lld-16 are not installed")
    subprocess.run(["clang-14", "-c", "-o", str(tmp_path / "e.o"), str(ROOT / "tests/csrc/emptyplt.s")], check=True)
    path = tmp_path / "emptyplt"
    subprocess.run(["ld.lld-16", "-pie", "-o", str(path), str(tmp_path / "e.o")], check=True)
    names = (".plt", ".plt.sec", ".plt.got", ".got", ".got.plt")
    sizes = {s["name"]: s["size"] for s in oracles.readelf_sections(path) if s["name"] in names}
    assert sizes == {".plt": 0, ".got.plt": 0}  # the premise
    dis = subprocess.run(["objdump", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    assert "section .plt" not in dis
    rc, doc = stubs_json(path)
    assert rc == 0 and doc["sections"] == [] and doc["anomalies"] == []


def test_macho_command_between_two_segments_leaves_the_sections_once(binaries, tmp_path):
    """LC_UUID moved from after __LINKEDIT to between __TEXT and __DATA_CONST (load commands may
    come in any order; no offset names a command's place): llvm-objdump-16 --indirect-symbols
    reads the same tables, and gotrace lists each stub and pointer section once, at its
    addresses with its names, and finds nothing wrong."""
    from test_macho_real import _objdump

    src = binaries("macho-x86_64-lazy")
    data = src.read_bytes()
    ncmds, sizeofcmds = struct.unpack_from("<II", data, 16)
    cmds, pos = [], 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        cmds.append((cmd, data[pos:pos + size]))
        pos += size
    uuid = next(c for c in cmds if c[0] == 0x1B)
    cmds.remove(uuid)
    text = next(i for i, (cmd, raw) in enumerate(cmds) if cmd == 0x19 and raw[8:24].rstrip(b"\0") == b"__TEXT")
    cmds.insert(text + 1, uuid)
    moved = tmp_path / "moved"
    moved.write_bytes(data[:32] + b"".join(raw for _c, raw in cmds) + data[32 + sizeofcmds:])
    order = re.findall(r"^\s+cmd (LC_\w+)(?:\n.*\n\s+segname (\S+))?", _objdump("--macho", "--private-headers", moved),
                       re.M)
    assert [seg or cmd for cmd, seg in order][1:4] == ["__TEXT", "LC_UUID", "__DATA_CONST"]
    want = _indirect(moved)
    assert want == _indirect(src)
    rc, doc = stubs_json(moved)
    listed = [s["name"] for s in doc["sections"] if s["kind"] != "helper"]
    assert sorted(listed) == sorted(n for n, rows in want.items() if rows)
    for sec in doc["sections"]:
        if sec["kind"] != "helper":
            assert [(s["address"], s["symbol"]) for s in sec["slots"]] == want[sec["name"]]
    assert rc == 0 and doc["anomalies"] == []


def test_macho_slot_bound_twice_keeps_both_binds_and_the_later_names_it(binaries, tmp_path):
    """The bind stream rewritten (BIND_OPCODE_*: __got's one slot bound to _cos in libSystem, then,
    the segment offset set back, to _puts by flat lookup): llvm-objdump-16 --bind lists both rows,
    in the stream's order, and so must inspect (gotrace once kept the first only); dyld applies
    them in that order, so stubs names the slot by the later bind."""
    from test_macho_real import SPECIAL, _objdump, objdump_bind_rows

    src = binaries("macho-x86_64-lazy")
    data = bytearray(src.read_bytes())
    ncmds, pos = struct.unpack_from("<I", data, 16)[0], 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd == 0x80000022:  # LC_DYLD_INFO_ONLY: bind_off, bind_size at +16
            bind_off, bind_size = struct.unpack_from("<II", data, pos + 16)
        pos += size
    stream = (b"\x40_cos\0" b"\x51" b"\x11" b"\x72\x00" b"\x90"  # symbol, pointer, ordinal 1, __DATA_CONST+0, bind
              b"\x40_puts\0" b"\x3e" b"\x72\x00" b"\x90" b"\x00")  # symbol, flat lookup, the same slot, bind, done
    assert len(stream) <= bind_size
    data[bind_off:bind_off + bind_size] = stream.ljust(bind_size, b"\0")
    bad = tmp_path / "twice"
    bad.write_bytes(bytes(data))
    want = [(a, SPECIAL.get(lib, lib), s) for a, lib, s in objdump_bind_rows(bad, "bind")]
    got_slot = _macho_section(bad, "__DATA_CONST,__got")["addr"]
    assert want == [(got_slot, "libSystem", "_cos"), (got_slot, "<flat lookup>", "_puts")]
    assert "_cos" in _objdump("--macho", "--lazy-bind", bad)
    short = lambda lib: lib if lib.startswith("<") else lib.rsplit("/", 1)[-1].split(".")[0]  # noqa: E731
    rows = [(i.address, short(i.library), i.symbol) for i in open_image(bad).imports if i.mode == "eager"]
    assert rows == want
    _rc, doc = stubs_json(bad)
    (slot,) = next(s for s in doc["sections"] if s["name"] == "__DATA_CONST,__got")["slots"]
    assert slot["symbol"] == "_puts" and "binds it at load to <flat lookup>" in slot["action"]


def test_macho_pointer_section_of_a_ragged_size_lists_its_whole_pointers(binaries, tmp_path):
    """__la_symbol_ptr's size patched from 24 to 23 bytes: llvm-objdump-16 --indirect-symbols gives
    it the two whole pointers, and gotrace lists those two, reading no word past the section."""
    from test_macho_real import _section_header_offset

    src = binaries("macho-x86_64-lazy")
    data = bytearray(src.read_bytes())
    at = _section_header_offset(src, "__DATA,__la_symbol_ptr") + 40  # size
    assert struct.unpack_from("<Q", data, at)[0] == 24
    struct.pack_into("<Q", data, at, 23)
    bad = tmp_path / "ragged"
    bad.write_bytes(bytes(data))
    want = _indirect(bad)["__DATA,__la_symbol_ptr"]
    assert len(want) == 2
    _rc, doc = stubs_json(bad)
    sec = next(s for s in doc["sections"] if s["name"] == "__DATA,__la_symbol_ptr")
    assert [(s["address"], s["symbol"]) for s in sec["slots"]] == want
