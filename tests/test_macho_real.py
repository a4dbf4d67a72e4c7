"""Mach-O files nobody here made (Apple's ld and Go's linker, from PyPI's macOS wheels) against llvm-objdump.

The wheels are pinned in tests/fixtures/macho-wheels.json (tests/macho_wheels.py).
Oracles: ``llvm-objdump-16 -d`` (each stub's instructions and the pointer they
load), ``--macho --private-headers`` (reserved1/reserved2), ``--bind``,
``--lazy-bind``, ``--weak-bind``, ``--dyld-info`` (chained fixups) and
``--indirect-symbols``. Not run on macOS: these are the files, not dyld.
"""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess

import pytest

import oracles
from conftest import gotrace_cli, require
from macho_wheels import wheel_file
from tracer.binary import open_image

OBJDUMP = oracles.OBJDUMP
WHEEL_FILES = ["shfmt-arm64", "shfmt-x86_64", "numpy-arm64", "xgboost-arm64", "xgboost-x86_64"]


def _objdump(*args) -> str:
    require(shutil.which(OBJDUMP) is not None, f"{OBJDUMP} (llvm-16) is not installed")
    return subprocess.run([OBJDUMP, *map(str, args)], capture_output=True, text=True, check=True).stdout


def objdump_stub_pointers(path, section: str) -> list[tuple[int, int]]:
    """(stub address, the pointer it loads) for each stub, from llvm-objdump's disassembly:
    ``adrp xN, PAGE`` + ``ldr xM, [xN, #OFF]`` (arm64) or ``jmpq *d(%rip) ## PTR`` (x86_64)."""
    out, pages = [], {}
    for line in _objdump("-d", "--no-show-raw-insn", "-j", section, path).splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s+(.*)", line)
        if not m:
            continue
        addr, op, args = int(m[1], 16), m[2], m[3]
        if op == "adrp":
            reg, page = re.match(r"(x\d+), (0x[0-9a-f]+)", args).groups()
            pages[reg] = (addr, int(page, 16))
        elif op == "ldr" and (ld := re.match(r"x\d+, \[(x\d+)(?:, #(0x[0-9a-f]+|\d+))?\]", args)):
            start, page = pages.pop(ld[1])
            out.append((start, page + (int(ld[2], 0) if ld[2] else 0)))
        elif op.startswith("jmp") and (t := re.search(r"##? (0x[0-9a-f]+)", args)):
            out.append((addr, int(t[1], 16)))
    return out


def objdump_sections(path) -> dict[str, dict]:
    """``seg,sect`` -> addr, size, offset, reserved1, reserved2 from --private-headers."""
    out = {}
    text = _objdump("--macho", "--private-headers", path)
    for block in text.split("Section\n")[1:]:
        f = dict(re.findall(r"^\s*(\w+) (\S+)", block.split("Load command")[0], re.M))
        out[f"{f['segname']},{f['sectname']}"] = {k: int(f[k], 0) for k in ("addr", "size", "offset", "reserved1",
                                                                              "reserved2")}
    return out


def objdump_bind_rows(path, table: str, arch: str | None = None) -> list[tuple[int, str, str]]:
    """(address, dylib, symbol) of --bind / --lazy-bind rows, or (address, "", symbol) of --weak-bind's."""
    rows = []
    for line in _objdump("--macho", f"--{table}", *([f"--arch={arch}"] if arch else []), path).splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].startswith("__") and re.fullmatch(r"0x[0-9A-Fa-f]+", parts[2]):
            rows.append((int(parts[2], 16), "" if table == "weak-bind" else parts[-2], parts[-1]))
    return rows


def objdump_chained_binds(path) -> list[tuple[int, str, str]]:
    rows = []
    for line in _objdump("--macho", "--dyld-info", path).splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[4] == "bind":
            rows.append((int(parts[2], 16), parts[6], parts[7]))
    return rows


def stub_section(doc: dict) -> dict:
    return next(s for s in doc["sections"] if s["kind"] == "stubs")


def stubs_json(path, *extra):
    out = gotrace_cli("stubs", "--json", *extra, str(path))
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def _name_of(path) -> dict[int, str]:
    """Pointer address -> symbol, from every bind table llvm-objdump prints (the weak-bind
    table's too: numpy's stubs call C++ templates bound only there)."""
    names = {addr: sym for addr, _lib, sym in objdump_bind_rows(path, "weak-bind")}
    names.update({addr: sym for addr, _lib, sym in oracles.objdump_binds(path)})
    return names


# ------------------------------------------------------------ item 4: stubs as their code has them

@pytest.mark.parametrize("name", WHEEL_FILES + ["go-darwin-arm64", "go-darwin-amd64"])
def test_stubs_are_cut_by_their_code_and_named_by_their_pointer(name, binaries):
    """Each stub gotrace lists is one llvm-objdump disassembles (adrp/ldr/br or jmp *),
    named by the bind (--bind/--lazy-bind/--dyld-info) of the pointer it loads; a section
    is flagged exactly when reserved2 (--private-headers) differs from the stride of the
    disassembled stubs."""
    path = binaries(name) if name.startswith("go-") else wheel_file(name)
    rc, doc = stubs_json(path)
    sec = stub_section(doc)
    want = objdump_stub_pointers(path, sec["name"].split(",")[1])
    names = _name_of(path)
    assert want and all(ptr in names for _a, ptr in want), "the oracle's stubs load unbound pointers"
    assert [(s["address"], s["symbol"]) for s in sec["slots"]] == [(a, names[ptr]) for a, ptr in want]
    assert all(f"jumps through {ptr:#x}" in s["action"] for s, (_a, ptr) in zip(sec["slots"], want, strict=True))
    stride = {b - a for (a, _p), (b, _q) in zip(want, want[1:])}
    assert len(stride) == 1
    declared = objdump_sections(path)[sec["name"]]["reserved2"]
    flagged = [a for a in doc["anomalies"] if a["kind"] == "stub-size-mismatch"]
    assert bool(flagged) == (declared != stride.pop()), (declared, flagged)
    assert rc == (1 if doc["anomalies"] else 0)


def test_go_arm64_stub_size_is_flagged_with_the_indirect_table_share():
    """Go's linker writes reserved2 = 6 over 12-byte arm64 stubs: flagged, with the entries
    the indirect table really gives the section (the next section's reserved1, --private-headers)."""
    path = wheel_file("shfmt-arm64")
    secs = objdump_sections(path)
    stubs, got = secs["__TEXT,__symbol_stub1"], secs["__DATA_CONST,__got"]
    assert stubs["reserved2"] == 6 and len(objdump_stub_pointers(path, "__symbol_stub1")) * 12 == stubs["size"]
    rc, doc = stubs_json(path)
    (a,) = [a for a in doc["anomalies"] if a["kind"] == "stub-size-mismatch"]
    assert rc == 1 and a["where"] == "__TEXT,__symbol_stub1"
    assert f"makes it {stubs['size'] // 6} stubs" in a["reason"]
    assert f"gives it {got['reserved1'] - stubs['reserved1']} entries" in a["reason"]


def _patch_u32(src, dst, offset, value):
    shutil.copy(src, dst)
    with open(dst, "r+b") as fh:
        fh.seek(offset)
        fh.write(struct.pack("<I", value))
    return dst


def _section_header_offset(path, full: str) -> int:
    """File offset of a section_64 record (its sectname), found by scanning the load commands."""
    data = open(path, "rb").read()
    sect, seg = full.split(",")[1].encode(), full.split(",")[0].encode()
    ncmds = struct.unpack_from("<I", data, 16)[0]
    pos = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        if cmd == 0x19:
            for i in range(struct.unpack_from("<I", data, pos + 64)[0]):
                at = pos + 72 + 80 * i
                if data[at:at + 16].rstrip(b"\0") == sect and data[at + 16:at + 32].rstrip(b"\0") == seg:
                    return at
        pos += size
    raise AssertionError(f"no {full}")


def test_repaired_reserved2_reads_as_gotrace_read_the_original(tmp_path):
    """With reserved2 patched to 12, llvm-objdump --indirect-symbols names each stub of Go's
    file at its real address; gotrace gave the original those same names, and the repaired
    file is no longer flagged."""
    src = wheel_file("shfmt-arm64")
    at = _section_header_offset(src, "__TEXT,__symbol_stub1") + 72  # reserved2
    fixed = _patch_u32(src, tmp_path / "fixed", at, 12)
    text = _objdump("--macho", "--indirect-symbols", fixed)
    block = text.split("Indirect symbols for (__TEXT,__symbol_stub1)")[1].split("Indirect symbols for")[0]
    want = [(int(a, 16), n) for a, _i, n in re.findall(r"^(0x[0-9a-f]+)\s+(\d+)\s+(\S+)$", block, re.M)]
    _rc, doc = stubs_json(src)
    assert [(s["address"], s["symbol"]) for s in stub_section(doc)["slots"]] == want
    rc, doc = stubs_json(fixed)
    assert rc == 0 and doc["anomalies"] == []


@pytest.mark.parametrize("name,wrong", [("numpy-arm64", 6), ("xgboost-x86_64", 12)])
def test_apple_stubs_with_a_wrong_reserved2_are_flagged(name, wrong, tmp_path):
    """Apple's ld writes 12 (arm64) and 6 (x86_64), as --private-headers shows; the same
    file with the other size declared is flagged, its stubs still cut by their code."""
    src = wheel_file(name)
    right = objdump_sections(src)["__TEXT,__stubs"]["reserved2"]
    assert right == {6: 12, 12: 6}[wrong]
    bad = _patch_u32(src, tmp_path / "bad", _section_header_offset(src, "__TEXT,__stubs") + 72, wrong)
    rc, doc = stubs_json(bad)
    (a,) = doc["anomalies"]
    stubs = objdump_stub_pointers(src, "__stubs")
    assert rc == 1 and a["kind"] == "stub-size-mismatch"
    assert f"reserved2 declares {wrong}-byte stubs, but the code is {len(stubs)} stubs of {right} bytes" in a["reason"]
    assert [s["address"] for s in stub_section(doc)["slots"]] == [addr for addr, _ptr in stubs]


def test_stub_whose_indirect_entry_names_another_symbol_is_flagged(tmp_path):
    """The first stub's indirect entry pointed at another symbol (the second's): llvm-objdump
    --indirect-symbols now names it so, while its pointer's bind still names the first."""
    src = wheel_file("numpy-arm64")
    text = _objdump("--macho", "--private-headers", src)
    indirectsymoff = int(re.search(r"indirectsymoff (\d+)", text)[1])
    stubs = objdump_sections(src)["__TEXT,__stubs"]
    data = open(src, "rb").read()
    second = struct.unpack_from("<I", data, indirectsymoff + 4 * (stubs["reserved1"] + 1))[0]
    bad = _patch_u32(src, tmp_path / "bad", indirectsymoff + 4 * stubs["reserved1"], second)
    listed = re.findall(r"^(0x[0-9a-f]+)\s+\d+\s+(\S+)$", _objdump("--macho", "--indirect-symbols", bad), re.M)
    assert listed[0][1] == listed[1][1]
    rc, doc = stubs_json(bad)
    (a,) = [a for a in doc["anomalies"] if a["kind"] == "stub-name-mismatch"]
    ptr = objdump_stub_pointers(src, "__stubs")[0][1]
    assert rc == 1 and f"{listed[0][1]} by the table, {_name_of(src)[ptr]} by its pointer" in a["reason"]


# ------------------------------------------------------------ item 5: weak binds, one label

SPECIAL = {"flat-namespace": "<flat lookup>", "weak": "<weak lookup>", "this-image": "<self>",
           "main-executable": "<main executable>"}  # llvm-objdump's words for the special ordinals


@pytest.mark.parametrize("name", WHEEL_FILES)
def test_every_bind_agrees_with_llvm_objdump(name):
    """inspect's rows are llvm-objdump's --bind, --lazy-bind, --weak-bind and (chained
    fixups) --dyld-info rows, one for one: address, library, symbol."""
    path = wheel_file(name)
    want = {(a, SPECIAL.get(lib, lib), s) for a, lib, s in oracles.objdump_binds(path)}
    want |= {(a, "<weak lookup>", s) for a, _l, s in objdump_bind_rows(path, "weak-bind")}
    img = open_image(path)
    short = lambda lib: lib if lib.startswith("<") else lib.rsplit("/", 1)[-1].split(".")[0]  # noqa: E731
    rows = [(i.address, short(i.library), i.symbol) for i in img.imports]
    assert len(rows) == len(set(rows)) and set(rows) == want

@pytest.mark.parametrize("name", ["numpy-arm64", "xgboost-x86_64"])
def test_weak_bind_table_entries_are_weak_lookups(name):
    """Every --weak-bind row (classic opcodes) is a `<weak lookup>` slot, not `<self>` and
    not a weak import; a slot also in --bind keeps that row too (numpy: __Znwm, __ZdlPv)."""
    path = wheel_file(name)
    weak = {(a, s) for a, _l, s in objdump_bind_rows(path, "weak-bind")}
    binds = objdump_bind_rows(path, "bind")
    assert weak, "the oracle saw no weak binds"
    img = open_image(path)
    assert {(i.address, i.symbol) for i in img.imports if i.library == "<weak lookup>"} == weak
    assert not any(i.weak for i in img.imports if i.library == "<weak lookup>")
    assert {(i.address, i.symbol) for i in img.imports if i.library == "<self>"} == \
        {(a, s) for a, lib, s in binds if lib == "this-image"}
    both = {(a, s) for a, _l, s in binds} & weak
    short = lambda lib: lib.rsplit("/", 1)[-1].split(".")[0]  # noqa: E731 (llvm-objdump prints "libc++")
    rows = {(i.address, i.symbol, short(i.library)) for i in img.imports}
    for a, lib, s in binds:
        if (a, s) in both:
            assert {(a, s, lib), (a, s, "<weak lookup>")} <= rows
    if name == "numpy-arm64":
        assert {s for _a, s in both} == {"__Znwm", "__ZdlPv"}


def test_chained_weak_lookup_binds_keep_their_label():
    """Chained fixups say it with the weak-lookup ordinal (--dyld-info's dylib `weak`)."""
    path = wheel_file("xgboost-arm64")
    weak = {(a, s) for a, lib, s in objdump_chained_binds(path) if lib == "weak"}
    assert weak
    img = open_image(path)
    assert {(i.address, i.symbol) for i in img.imports if i.library == "<weak lookup>"} == weak
    assert not any(i.weak for i in img.imports if i.library == "<weak lookup>")


def test_stubs_say_both_binds_of_a_slot_in_both_tables():
    path = wheel_file("numpy-arm64")
    both = {a for a, _l, s in objdump_bind_rows(path, "bind")} & \
        {a for a, _l, s in objdump_bind_rows(path, "weak-bind")}
    _rc, doc = stubs_json(path)
    slots = {s["address"]: s for sec in doc["sections"] if sec["kind"] == "pointers" for s in sec["slots"]}
    for a in both:
        assert "libc++" in slots[a]["action"] and "first definition in load order" in slots[a]["action"]


@pytest.mark.parametrize("name", ["numpy-arm64", "xgboost-x86_64"])
def test_bind_labels_name_their_table_and_type(name):
    """A classic-opcode bind's label is its table and bind type as llvm-objdump prints them:
    --bind rows `BIND_TYPE_<type>`, --weak-bind rows `BIND_TYPE_<type> (weak)`, --lazy-bind rows
    (no type column: dyld's lazy binds are always pointers) `BIND_TYPE_POINTER (lazy)`."""
    path = wheel_file(name)
    want = set()
    for table, suffix in (("bind", ""), ("weak-bind", " (weak)"), ("lazy-bind", " (lazy)")):
        for line in _objdump("--macho", f"--{table}", path).splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0].startswith("__") and re.fullmatch(r"0x[0-9A-Fa-f]+", parts[2]):
                kind = "POINTER" if table == "lazy-bind" else parts[3].upper()
                want.add((int(parts[2], 16), parts[-1], f"BIND_TYPE_{kind}{suffix}"))
    assert any(r.endswith(")") for _a, _s, r in want) and any(not r.endswith(")") for _a, _s, r in want)
    got = {(i.address, i.symbol, i.reloc) for i in open_image(path).imports}
    assert got == want


# ------------------------------------------------------------ a 32-bit slice (Apple's ld, i386)

def objdump_indirect(path, arch: str) -> dict[str, list[tuple[int, str]]]:
    """``seg,sect`` -> [(address, name)] of llvm-objdump-16 --indirect-symbols, its LOCAL and
    ABSOLUTE entries as gotrace's ``<local>`` / ``<absolute>``."""
    out = {}
    text = _objdump("--macho", "--indirect-symbols", f"--arch={arch}", path)
    for block in text.split("Indirect symbols for (")[1:]:
        rows = re.findall(r"^(0x[0-9a-f]+)\s+(?:\d+\s+(\S+)|(LOCAL|ABSOLUTE)\b.*)$", block, re.M)
        out[block.split(")")[0]] = [(int(a, 16), name or f"<{special.lower()}>") for a, name, special in rows]
    return out


def objdump_words(path, arch: str, section: str) -> list[int]:
    """A section's little-endian 32-bit words, from llvm-objdump-16 --section's hex dump."""
    text = _objdump("--macho", f"--arch={arch}", f"--section={section}", path)
    raw = bytes.fromhex("".join(re.findall(r"^[0-9a-f]{8}\s+((?:[0-9a-f]{2} )+)", text, re.M)).replace(" ", ""))
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


def test_i386_slots_are_the_indirect_tables_4_byte_entries():
    """The i386 slice of MarkupSafe's fat bundle (Apple's ld, 32-bit LC_SEGMENTs): every stub and
    pointer slot is at the address llvm-objdump-16 --arch=i386 --indirect-symbols gives its entry,
    with that entry's name (pointers are 4 bytes: gotrace once cut them at 8 and listed half);
    each lazy pointer (--section's words) leads into __stub_helper (--private-headers), so
    nothing is flagged; the binds are --bind's and --lazy-bind's."""
    path = wheel_file("markupsafe-intel")
    want = objdump_indirect(path, "i386")
    assert {"__TEXT,__symbol_stub", "__DATA,__nl_symbol_ptr", "__DATA,__la_symbol_ptr"} <= set(want)
    assert "<absolute>" in {n for _a, n in want["__DATA,__nl_symbol_ptr"]}
    rc, doc = stubs_json(path, "--arch", "i386")
    assert doc["arch"] == "i386"
    got = {s["name"]: [(x["address"], x["symbol"]) for x in s["slots"]]
           for s in doc["sections"] if s["kind"] != "helper"}
    assert got == {name: rows for name, rows in want.items() if rows}
    lazy = next(s for s in doc["sections"] if s["name"] == "__DATA,__la_symbol_ptr")
    words = objdump_words(path, "i386", "__DATA,__la_symbol_ptr")
    assert [int(x["value"], 16) for x in lazy["slots"]] == words
    helper = _objdump("--macho", "--private-headers", "--arch=i386", path).split("sectname __stub_helper")[1]
    start, size = (int(re.search(rf"^\s*{k} (0x[0-9a-f]+)", helper, re.M)[1], 16) for k in ("addr", "size"))
    assert all(start <= w < start + size for w in words)
    lazy_rows = {a for a, _l, _s in objdump_bind_rows(path, "lazy-bind", "i386")}
    for sec in doc["sections"]:
        if sec["kind"] == "pointers":
            assert all(("lazy bind" in s["action"]) == (s["address"] in lazy_rows) for s in sec["slots"])
    assert rc == 0 and doc["anomalies"] == []
    img = open_image(path, arch="i386")
    short = lambda lib: lib if lib.startswith("<") else lib.rsplit("/", 1)[-1].split(".")[0]  # noqa: E731
    assert {(i.address, short(i.library), i.symbol) for i in img.imports} == \
        {(a, SPECIAL.get(lib, lib), s) for a, lib, s in oracles.objdump_binds(path, "i386")}
