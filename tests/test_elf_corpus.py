"""ELF beyond x86-64 glibc: gotrace's reading of files nobody here made, against GNU readelf and objdump.

The corpus (tests/fixtures/elf-corpus.txt, fetched by scripts/setup.sh): Debian packages of
armel, armhf, arm64, i386, mips64el, mipsel, ppc64el, s390x (bookworm), riscv64 (trixie) and
loong64 (sid), and pyelftools' readelf test files (its PyPI sdist) for SPARC V8+/V9 and x86
Solaris, a MIPS64 little-endian shared object, big-endian AArch64, lld's ARM PLT (an Android
library) and a file without section headers. Oracles: GNU readelf 2.40 (``-W -h -S -l -d -r
--dyn-syms -V -A``, ``-D -r`` without section headers), GNU objdump's ``sym@plt`` labels
(binutils-multiarch) and llvm-objdump-16's disassembly where objdump gives none. Two inputs
are built here from source: an x86-64 library with ``-fcf-protection`` (16-byte .plt.got
and .plt.sec entries; Debian builds none) and a file with its section headers stripped.
"""
from __future__ import annotations

import collections
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import elf_oracle as oracle
from conftest import ROOT, require

GOTRACE = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "gotrace")
FILES = oracle.corpus_files()
CORPUS_HINT = "the ELF corpus is not fetched: bash scripts/fetch-elf-corpus.sh"
UNITTESTS = oracle.CORPUS / "pyelftools" / "test" / "testfiles_for_unittests"
READELF_TESTS = oracle.CORPUS / "pyelftools" / "test" / "testfiles_for_readelf"


def _id(path: Path | None) -> str:
    return str(path.relative_to(oracle.CORPUS)) if path else "corpus-missing"


def _files(pred=lambda p: True) -> list:
    chosen = [p for p in FILES if pred(p)]
    return chosen or [None]


def _need(path: Path | None) -> Path:
    require(path is not None and not oracle.missing(), CORPUS_HINT)
    require(shutil.which("objdump") is not None and "elf32-sparc" in oracle.run("objdump", "-i").stdout,
            "objdump cannot read other architectures: apt-get install binutils-multiarch")
    return path


def _image(path: Path):
    from tracer.binary.open import open_image

    return open_image(str(path))


def test_corpus_is_fetched():
    """Every pinned package and sdist is unpacked from the sha256 the manifest names."""
    require(not oracle.missing(), f"{CORPUS_HINT} (missing: {', '.join(oracle.missing()[:3])})")
    machines = collections.Counter(oracle.readelf(p).machine for p in FILES)
    for name in ("ARM", "AArch64", "Intel 80386", "MIPS R3000", "PowerPC64", "IBM S/390", "RISC-V", "LoongArch",
                 "Sparc v8+", "Sparc v9", "Advanced Micro Devices X86-64"):
        assert machines[name], f"no {name} file in the corpus"


# readelf's Machine (and class, byte order) -> gotrace's name: the vocabulary of tracer/arch.py
MACHINES = {"Advanced Micro Devices X86-64": "x86_64", "AArch64": "arm64", "ARM": "arm", "Intel 80386": "i386",
            "PowerPC64": {"little": "ppc64le", "big": "ppc64"}, "IBM S/390": {64: "s390x", 32: "s390"},
            "RISC-V": {64: "riscv64", 32: "riscv32"}, "LoongArch": "loong64", "Sparc v9": "sparcv9",
            "Sparc v8+": "sparcv8plus", "Sparc": "sparc",
            "MIPS R3000": {(32, "big"): "mips", (32, "little"): "mipsle", (64, "big"): "mips64",
                           (64, "little"): "mips64le"}}


@pytest.mark.parametrize("path", _files(), ids=_id)
def test_reads_every_file_or_says_why_in_one_line(path):
    """A file readelf reads without an error is read, its architecture named as readelf names
    it (SPARC V8+ was "machine-18"); one readelf calls broken is refused in one line that says
    what is wrong (a valid MIPS64 object was "truncated at offset N", N its size)."""
    from tracer.binary.sniff import BadBinary

    path = _need(path)
    want = oracle.readelf(path)
    try:
        img = _image(path)
    except BadBinary as exc:
        assert want.errors, f"readelf reads it, gotrace refuses it: {exc}"
        assert "\n" not in str(exc)
        return
    bits = 64 if want.header["Class"] == "ELF64" else 32
    order = "little" if "little" in want.header["Data"] else "big"
    name = MACHINES.get(want.machine)
    if isinstance(name, dict):
        name = name.get((bits, order)) or name.get(bits) or name.get(order)
    if name is None:  # a machine gotrace has no name for: its number, never a wrong name
        raw = path.read_bytes()[18:20]
        name = f"machine-{int.from_bytes(raw, order)}"
    assert (img.arch, img.bits, img.endian) == (name, bits, order)


def _expected_imports(want: oracle.Readelf) -> list[tuple]:
    """readelf's account of every slot the loader fills with a symbol: each dynamic relocation
    that names a symbol (lazy: a JUMP_SLOT/JMP_SLOT of DT_JMPREL's table without BIND_NOW), and
    on MIPS each global GOT entry glibc's elf_machine_got_rel looks up (sysdeps/mips/dl-machine.h:
    an undefined function with a value is bound lazily through its stub; a defined function whose
    entry differs from its value, or a section symbol, is only rebased)."""
    if not want.has_dynamic:  # no PT_DYNAMIC (a static-pie's leftovers): ld.so binds nothing
        return []
    plt = want.jmprel_table()
    needed = {ver for _lib, ver in want.needed_versions.values()}
    out = []
    for r in want.relocs:
        if not r.symbol:
            continue
        slot_type = r.type.endswith(("_JUMP_SLOT", "_JMP_SLOT"))
        lazy = r.table == plt and slot_type and not want.bind_now
        ver = r.version if r.version in needed or not want.sections else None
        out.append((r.offset, r.symbol, r.type, "lazy" if lazy else "eager", ver))
    versions = {d["name"]: d["version"] for d in want.dynsyms if d["ndx"] == "UND"}
    for g in want.mips_global_got:
        if g["ndx"] == "UND":
            lazy = g["type"] == "FUNC" and g["symval"] != 0 and not want.bind_now
        elif g["ndx"] == "COM":
            lazy = False
        elif g["type"] == "FUNC" and g["initial"] != g["symval"]:
            if not want.bind_now:
                continue
            lazy = False
        elif g["type"] == "SECTION":
            continue
        else:
            lazy = False
        out.append((g["address"], g["name"], "MIPS global GOT", "lazy" if lazy else "eager",
                    versions.get(g["name"]) if g["ndx"] == "UND" else None))
    return sorted(out, key=repr)


@pytest.mark.parametrize("path", _files(), ids=_id)
def test_imports_match_readelf(path):
    """Every bound slot: address, symbol, relocation type as readelf spells it (MIPS64's
    composed R_MIPS_REL32/R_MIPS_64, SPARC's R_SPARC_JMP_SLOT), eager or lazy, version and its
    library — each once (Solaris' DT_RELA spans DT_JMPREL: its PLT imports were listed twice),
    MIPS's global GOT entries included (they have no relocations)."""
    _check_imports(_need(path))


def _check_imports(path: Path) -> None:
    from tracer.binary.sniff import BadBinary

    want = oracle.readelf(path)
    try:
        img = _image(path)
    except BadBinary:
        assert want.errors, "refused although readelf reads it"
        return
    if want.errors:  # readelf calls it broken (two .dynstr, a .dynamic outside its segment): no oracle
        return
    got = sorted(((i.address, i.symbol, i.reloc, i.mode, i.version) for i in img.imports), key=repr)
    assert got == _expected_imports(want)
    for imp in img.imports:  # the library a version is needed from (one version name can be two libraries')
        if imp.version and want.needed_versions:
            libs = {want.needed_versions[d["vindex"]][0] for d in want.dynsyms
                    if d["name"] == imp.symbol and d["version"] == imp.version and d["vindex"] in want.needed_versions}
            assert imp.library in libs, (imp.symbol, imp.version, imp.library, libs)


def _stub_sections(sections: list[dict]) -> list[str]:
    return [s["name"] for s in sections
            if s["name"] in (".plt", ".plt.sec", ".plt.got", ".MIPS.stubs") and s["type"] == "PROGBITS"
            and s["size"]]


@pytest.mark.parametrize("path", _files(lambda p: bool(_stub_sections(oracle.readelf_sections(p)))), ids=_id)
def test_plt_entries_match_objdump(path):
    """Each PLT entry where it starts, named by the symbol whose slot it jumps through: GNU
    objdump's ``sym@plt`` labels (its own per-architecture PLT decoders: GNU ld's 12-byte ARM
    entries after a 20-byte header, 16/24-byte arm64, 32-byte s390x, SPARC's reserved
    entries), else llvm-objdump-16's decoding (lld's 32-byte ARM header; LoongArch) mapped
    through readelf's relocations, and for .MIPS.stubs each stub's ``li t8, N`` with readelf's
    dynamic symbol N, the stub readelf -A's GOT entry for that symbol first leads to."""
    _check_plt(_need(path))


def _check_plt(path: Path) -> None:
    from tracer.binary import stubs

    want = oracle.readelf(path)
    img = _image(path)
    report = stubs.check(img, path.read_bytes())
    slots = {s.name: {(x.address, x.symbol) for x in s.slots if x.action.startswith(("jumps", "ld.so rewrites",
                                                                                     "lazy stub", "lazy entry"))}
             for s in report.sections}
    names = _stub_sections(want.sections)
    labels = oracle.objdump_plt_labels(path, [n for n in names if n != ".MIPS.stubs"])
    slot_names = {r.offset: r.symbol for r in want.relocs if r.symbol}
    for name in names:
        if name == ".MIPS.stubs":
            by_index = {d["num"]: d["name"] for d in want.dynsyms}
            expect = {(at, by_index[n]) for at, n in oracle.objdump_mips_stubs(path)}
            first_use = {g["initial"]: g["name"] for g in want.mips_global_got}
            assert {first_use.get(at) for at, _ in expect} == {sym for _, sym in expect}
        elif labels[name]:
            expect = set(labels[name])
        elif name == ".plt" and oracle.objdump_ibt_lazy(path):  # IBT: each lazy entry pushes its index
            plt_relocs = [r for r in want.relocs if r.table == want.jmprel_table()]
            step = 8 if want.header["Class"] == "ELF32" else 1  # i386 pushes a byte offset into .rel.plt
            expect = {(at, plt_relocs[n // step].symbol) for at, n in oracle.objdump_ibt_lazy(path)}
        elif want.machine == "ARM":
            expect = {(at, slot_names.get(slot)) for at, slot in oracle.llvm_arm_plt(path)}
        elif want.machine == "LoongArch":
            expect = {(at, slot_names.get(slot)) for at, slot in oracle.llvm_loongarch_plt(path)}
        else:
            expect = set()
        if any(r.table == want.jmprel_table() for r in want.relocs) and name in (".plt", ".MIPS.stubs"):
            assert expect, f"no oracle names {name}'s entries"  # so a silent pass cannot hide a layout
        have = slots.get(name, set())
        if want.errors or not want.has_dynamic:  # readelf calls it broken, or ld.so binds nothing: where only
            have, expect = {a for a, _ in have}, {a for a, _ in expect}
        assert have == expect, name
    assert all(s.note is None for s in report.sections if s.name in names), [s.note for s in report.sections]
    if want.errors or not want.has_dynamic:
        return
    # what each entry says it does, against readelf: the slot it jumps through is a relocation of
    # its symbol, an IBT lazy entry's pushed index is its symbol's place in DT_JMPREL's table, a MIPS
    # stub's index is its symbol's in .dynsym
    relocated = {(r.offset, r.symbol) for r in want.relocs} | {(g["address"], g["name"]) for g in want.mips_global_got}
    plt_relocs = [r for r in want.relocs if r.table == want.jmprel_table()]
    dynsym = {d["num"]: d["name"] for d in want.dynsyms}
    for sec in report.sections:
        for x in sec.slots if sec.name in names else ():
            jump = re.match(r"jumps through (0x[0-9a-f]+)", x.action)
            if jump:
                assert (int(jump.group(1), 16), x.symbol) in relocated, (hex(x.address), x.action)
            push = re.match(r"lazy entry: pushes relocation (\d+)", x.action)
            if push:
                assert plt_relocs[int(push.group(1))].symbol == x.symbol, (hex(x.address), x.action)
            stub = re.search(r"for dynamic symbol (\d+)", x.action)
            if stub:
                assert dynsym[int(stub.group(1))] == x.symbol, (hex(x.address), x.action)


def test_ppc64_plt_is_a_pointer_table_said_in_one_line():
    """ppc64's .plt is SHT_NOBITS: pointers ld.so fills, no code to cut into 16-byte stubs;
    its slots are readelf's JMP_SLOT relocations, and a note says the call stubs are not read."""
    from tracer.binary import stubs

    path = _need(next((p for p in FILES if "ppc64el/zlib1g" in str(p)), None))
    want = oracle.readelf(path)
    report = stubs.check(_image(path), path.read_bytes())
    plt = next(s for s in report.sections if s.name == ".plt")
    assert plt.kind == "pointers" and plt.note and "\n" not in plt.note
    jmp = {(r.offset, r.symbol) for r in want.relocs if r.type == "R_PPC64_JMP_SLOT"}
    assert jmp and {(x.address, x.symbol.split("@")[0]) for x in plt.slots if x.symbol} == jmp


def test_mips64el_shared_object_inspects(tmp_path):
    """``gotrace inspect --json`` of pyelftools' MIPS64 little-endian shared object (once
    "truncated at offset 69216", its size) exits 0 with readelf's relocations and GOT imports."""
    path = _need(READELF_TESTS / "angr-eh_frame.so.elf")
    res = subprocess.run([GOTRACE, "inspect", "--json", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = sorted(((i["address"], i["symbol"], i["reloc"], i["mode"], i["version"])
                  for i in json.loads(res.stdout)["imports"]), key=repr)
    assert got and got == _expected_imports(oracle.readelf(path))


def test_solaris_plt_imports_once():
    """Solaris' ld points DT_RELA at DT_JMPREL's table (readelf -d: RELA == JMPREL, RELASZ ==
    PLTRELSZ): ld.so takes the PLT part out of the eager range, so each import is one lazy slot."""
    for name in ("exe_solaris32_cc.elf", "exe_solaris64_cc.elf", "exe_solaris32_cc.sparc.elf",
                 "exe_solaris64_cc.sparc.elf"):
        path = _need(UNITTESTS / name)
        want = oracle.readelf(path)
        assert want.dynamic.get("JMPREL") == want.dynamic.get("RELA", want.dynamic.get("REL"))
        img = _image(path)
        slots = [r for r in want.relocs if r.symbol]
        assert len(img.imports) == len(slots) > 0
        assert {(i.symbol, i.mode) for i in img.imports} == {(r.symbol, "lazy") for r in slots}


def _check_json(path: Path, *args: str) -> dict:
    res = subprocess.run([GOTRACE, "check", "--json", *args, str(path)], capture_output=True, text=True)
    assert res.returncode in (0, 1), res.stderr
    return json.loads(res.stdout)


def test_check_without_section_headers_names_the_symbols(tmp_path):
    """Without section headers the dynamic symbol table's size comes from its hash table, as
    readelf -D finds it: ``check`` names the symbols behind each version (it said
    ``(none)@GLIBC_2.17``). Oracle: readelf -D -r's versioned names (aarch64_super_stripped.elf,
    pyelftools'), and readelf --dyn-syms of a Debian library before llvm-objcopy-16 strips its
    section headers."""
    path = _need(UNITTESTS / "aarch64_super_stripped.elf")
    want = oracle.readelf(path)
    assert not want.sections
    expect = {f"{r.symbol}@{r.version}" for r in want.relocs if r.version}
    out = _check_json(path, "--glibc", "2.16")
    assert expect and set(out["files"][0]["failures"][0]["culprits"]) == expect

    lib = _need(next((p for p in FILES if "arm64/libacl1" in str(p) and p.name.startswith("libacl.so")), None))
    stripped = tmp_path / lib.name
    subprocess.run(["llvm-objcopy-16", "--strip-sections", str(lib), str(stripped)], check=True)
    assert not oracle.readelf(stripped).sections
    whole = oracle.readelf(lib)
    undefined = collections.defaultdict(set)  # (library, version) -> symbols: one version name can be two libraries'
    for d in whole.dynsyms:
        if d["ndx"] == "UND" and d["vindex"] in whole.needed_versions:
            undefined[whole.needed_versions[d["vindex"]]].add(d["name"])
    got = {(v["library"], v["version"]): set(v["symbols"]) for v in _check_json(stripped)["files"][0]["versions"]}
    assert len(undefined) > 1 and got == dict(undefined)


@pytest.mark.parametrize("name", ["exe_simple32.elf", "exe_simple64.elf", "dwarf_gnuops4.so.elf"])
def test_build_id_after_other_notes_without_section_headers(tmp_path, name):
    """Older toolchains put the ABI-tag (and SuSE's, Android's) note before the build-id in one
    PT_NOTE; with the section headers stripped (llvm-objcopy-16 --strip-sections) only that
    segment is left, so each note's 4-byte padding must be stepped over to reach the build-id.
    Oracle: readelf -n's "Build ID" of the stripped copy (pyelftools' files)."""
    path = _need(READELF_TESTS / name)
    stripped = tmp_path / name
    subprocess.run(["llvm-objcopy-16", "--strip-sections", str(path), str(stripped)], check=True)
    assert not oracle.readelf(stripped).sections
    notes = oracle.run("readelf", "-n", stripped).stdout
    ids = re.findall(r"Build ID: ([0-9a-f]+)", notes)
    segment = next(b for b in notes.split("Displaying notes") if "NT_GNU_BUILD_ID" in b)
    kinds = re.findall(r"^\s+\S+\s+0x[0-9a-f]+\s+(\S+)", segment, re.M)
    assert len(ids) == 1 and kinds.index("NT_GNU_BUILD_ID") > 0, kinds  # the premise: a note before it
    assert _image(stripped).uuid == ids[0]


# section types readelf -S names that gotrace names too (elf.h's generic ones and the processor
# ones inspect lists: ARM's unwind index and attributes, AArch64's and x86-64's)
NAMED_SECTION_TYPES = {"NULL", "PROGBITS", "SYMTAB", "STRTAB", "RELA", "HASH", "DYNAMIC", "NOTE", "NOBITS", "REL",
                       "SHLIB", "DYNSYM", "INIT_ARRAY", "FINI_ARRAY", "PREINIT_ARRAY", "GROUP", "SYMTAB_SHNDX",
                       "RELR", "GNU_ATTRIBUTES", "GNU_HASH", "GNU_LIBLIST", "VERDEF", "VERNEED", "VERSYM",
                       "LLVM_ADDRSIG", "ARM_EXIDX", "ARM_ATTRIBUTES", "AARCH64_ATTRIBUTES", "X86_64_UNWIND"}


@pytest.mark.parametrize("path", _files(lambda p: bool(oracle.readelf_sections(p))), ids=_id)
def test_section_types_match_readelf(path):
    """Each section's name and type against readelf -S (GNU readelf's names; elf.h's SHT_GNU_versym
    is readelf's VERSYM): ARM's .ARM.exidx and .ARM.attributes on armel/armhf among them."""
    from test_inspect import _readelf_type

    _need(path)
    want = oracle.readelf(path)
    if want.errors:  # readelf calls it broken: no oracle
        return
    got = [(s.name, _readelf_type(s.kind)) for s in _image(path).sections]
    # the rows oracle.readelf parses; Solaris' .SUNW_syminfo (0x6ffffffc) left out: GNU readelf calls it
    # VERDEF, GNU's SHT_GNU_verdef being 0x6ffffffd
    expect = {s["index"]: (s["name"], s["type"]) for s in want.sections if s["name"] != ".SUNW_syminfo"}
    assert expect and max(expect) < len(got)
    assert {i: got[i][0] for i in expect} == {i: n for i, (n, _t) in expect.items()}
    assert {i: got[i] for i, (_n, t) in expect.items() if t in NAMED_SECTION_TYPES} == \
        {i: e for i, e in expect.items() if e[1] in NAMED_SECTION_TYPES}


IBT_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
void *keep[4];
int entry(const char *s) {
    keep[0] = (void *)puts; keep[1] = (void *)strlen; keep[2] = (void *)free;   /* their addresses: GOT */
    char *p = malloc(strlen(s) + 1);                                             /* calls: .plt.got/.plt.sec */
    strcpy(p, s); puts(p); free(p);
    return printf("%zu\n", strlen(s)) + abs(atoi(s));
}
"""


def test_x86_64_ibt_plt_entries_are_16_bytes(tmp_path):
    """gcc -fcf-protection with ld -z ibtplt: .plt.got entries are 16 bytes (endbr64; bnd jmp
    *slot; nop: sh_entsize 16), .plt.sec 16, and .plt's lazy entries hold no jump through a
    slot (endbr64; push $n; jmp PLT0). Oracle: objdump's sym@plt labels."""
    from tracer.binary import stubs

    require(shutil.which("gcc") is not None, "gcc is not installed")
    src = tmp_path / "ibt.c"
    src.write_text(IBT_SOURCE)
    lib = tmp_path / "libibt.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-fcf-protection", "-Wl,-z,ibtplt", "-o", str(lib), str(src)],
                   check=True)
    sections = {s["name"]: s for s in oracle.readelf_sections(lib)}
    assert sections[".plt.got"]["es"] == 16 and sections[".plt.got"]["size"] >= 32
    report = stubs.check(_image(lib), lib.read_bytes())
    labels = oracle.objdump_plt_labels(lib, [".plt.got", ".plt.sec"])
    for name in (".plt.got", ".plt.sec"):
        sec = next(s for s in report.sections if s.name == name)
        assert {(x.address, x.symbol) for x in sec.slots} == set(labels[name]) != set(), name
        assert all(len(bytes.fromhex(x.value)) == 16 for x in sec.slots)
    rela_plt = [r for r in oracle.readelf(lib).relocs if r.table == ".rela.plt"]
    plt = next(s for s in report.sections if s.name == ".plt")
    lazy = [x for x in plt.slots if x.action.startswith("lazy entry")]
    assert sorted(x.symbol for x in lazy) == sorted(r.symbol for r in rela_plt)


def test_stubs_cli_says_what_it_does_not_decode():
    """A section gotrace cannot cut is said so in one line (the --json note and the table's
    line), not cut into guessed slots."""
    path = _need(next((p for p in FILES if "ppc64el/zlib1g" in str(p)), None))
    res = subprocess.run([GOTRACE, "stubs", "--json", str(path)], capture_output=True, text=True)
    assert res.returncode in (0, 1), res.stderr  # 1: an anomaly (a ppc64le file is the wrong architecture here)
    notes = [s["note"] for s in json.loads(res.stdout)["sections"] if s["note"]]
    assert len(notes) == 1 and "not read" in notes[0]
    text = subprocess.run([GOTRACE, "stubs", str(path)], capture_output=True, text=True, env={
        "COLUMNS": "300", "PATH": "/usr/bin:/bin"}).stdout
    assert notes[0] in " ".join(text.split())


def test_sparc_relocations_named_and_lazy():
    """SPARC's R_SPARC_JMP_SLOT is named as readelf names it (it printed as "type 21") and is
    lazy (the PLT entry ld.so rewrites on the first call): every import was eager."""
    for name, arch in (("exe_solaris32_cc.sparc.elf", "sparcv8plus"), ("exe_solaris64_cc.sparc.elf", "sparcv9")):
        path = _need(UNITTESTS / name)
        img = _image(path)
        assert img.arch == arch
        assert {(i.reloc, i.mode) for i in img.imports} == {("R_SPARC_JMP_SLOT", "lazy")}
        raw = path.read_bytes()
        assert struct.unpack(">H", raw[18:20])[0] == (18 if arch == "sparcv8plus" else 43)


def test_objects_and_core_dumps_are_not_called_static():
    """A relocatable object or a core dump has no PLT because no loader loads it, not because it
    is statically linked (inspect said "static: no dynamic linker", stubs "a static binary?").
    Oracle: readelf -h's Type."""
    for name, kind in ((READELF_TESTS / "aarch64-relocs-le.o.elf", "REL"), (READELF_TESTS / "core_simple64.elf", "CORE"),
                       (UNITTESTS / "simple_gcc.elf.riscv", "EXEC")):
        path = _need(name)
        assert oracle.readelf(path).header["Type"].startswith(kind)
        env = {"COLUMNS": "300", "PATH": "/usr/bin:/bin"}
        inspect = " ".join(subprocess.run([GOTRACE, "inspect", str(path)], capture_output=True, text=True,
                                          env=env).stdout.split())
        stubs_text = " ".join(subprocess.run([GOTRACE, "stubs", str(path)], capture_output=True, text=True,
                                             env=env).stdout.split())
        if kind == "EXEC":  # statically linked indeed: readelf -l shows no INTERP, no DYNAMIC
            assert "INTERP" not in oracle.run("readelf", "-lW", path).stdout
            assert "binding static" in inspect and "a static binary?" in stubs_text
        else:
            assert "static" not in inspect and "static" not in stubs_text
            assert ("relocatable object" if kind == "REL" else "core dump") in stubs_text


BTI_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    char *p = malloc(strlen(argv[0]) + 1);
    strcpy(p, argv[0]); puts(p); free(p);
    return printf("%zu\n", strlen(argv[0]));
}
"""


@pytest.mark.parametrize("flags", [["-Wl,-z,force-bti"], ["-no-pie", "-Wl,-z,force-bti"],
                                   ["-Wl,-z,pac-plt"], ["-shared", "-fPIC", "-Wl,-z,force-bti,-z,pac-plt"]],
                         ids=["bti-pie", "bti-exec", "pac", "bti-pac-shared"])
def test_arm64_bti_and_pac_plt_entries(tmp_path, flags):
    """GNU ld's arm64 PLT entries are 24 bytes with PAC (autia1716 before br x17) or, in a
    non-PIE executable, with BTI (bti c first), else 16; sh_entsize is 0. Oracle: objdump's
    sym@plt labels; built with Debian's aarch64 cross gcc and -mbranch-protection=standard."""
    from tracer.binary import stubs

    cc = shutil.which("aarch64-linux-gnu-gcc")
    require(cc is not None, "gcc-aarch64-linux-gnu is not installed")
    src = tmp_path / "bti.c"
    src.write_text(BTI_SOURCE)
    out = tmp_path / "bti"
    subprocess.run([cc, "-O1", "-mbranch-protection=standard", *flags, "-o", str(out), str(src)], check=True,
                   capture_output=True)
    labels = oracle.objdump_plt_labels(out, [".plt"])[".plt"]
    report = stubs.check(_image(out), out.read_bytes())
    plt = next(s for s in report.sections if s.name == ".plt")
    assert labels and {(x.address, x.symbol) for x in plt.slots if x.action.startswith("jumps")} == set(labels)
    starts = sorted(a for a, _ in labels)
    sizes = {starts[i + 1] - starts[i] for i in range(len(starts) - 1)}  # objdump's entry size
    assert sizes == {len(bytes.fromhex(x.value)) for x in plt.slots if x.action.startswith("jumps")}


MIPS_LIB = "int shared_var = 7; int other_var[4] = {1, 2, 3, 4}; int get(void) { return shared_var; }\n"
MIPS_EXE = ("extern int shared_var; extern int other_var[4]; int get(void);\n"
            "void __start(void) { shared_var = other_var[2] + get(); for (;;); }\n")


@pytest.mark.parametrize("triple", ["mips64el-linux-gnuabi64", "mips64-linux-gnuabi64", "mipsel-linux-gnu",
                                    "mips-linux-gnu"])
def test_mips_non_pic_executable(tmp_path, triple):
    """A non-PIC MIPS executable (clang-14, ld.lld-16; both byte orders, 32 and 64 bits): its
    .plt entries against objdump's labels, its R_MIPS_COPY and R_MIPS_JUMP_SLOT imports
    against readelf, and the copies ld.so's lookups skip (elf_dynsyms: MIPS64's r_info is
    not one word) against readelf's R_MIPS_COPY relocations."""
    from tracer.binary.facts import dyn_object

    require(shutil.which("clang-14") is not None and shutil.which("ld.lld-16") is not None,
            "clang-14 and lld-16 are not installed")
    _need(FILES[0] if FILES else None)
    (tmp_path / "lib.c").write_text(MIPS_LIB)
    (tmp_path / "exe.c").write_text(MIPS_EXE)
    cc = ["clang-14", f"--target={triple}", "-c"]
    subprocess.run([*cc, "-fPIC", "-o", str(tmp_path / "lib.o"), str(tmp_path / "lib.c")], check=True)
    subprocess.run(["ld.lld-16", "-shared", "-o", str(tmp_path / "libv.so"), str(tmp_path / "lib.o")], check=True)
    subprocess.run([*cc, "-fno-pic", "-mno-abicalls", "-G0", "-o", str(tmp_path / "exe.o"), str(tmp_path / "exe.c")],
                   check=True)
    exe = tmp_path / "exe"
    subprocess.run(["ld.lld-16", "-no-pie", "-o", str(exe), str(tmp_path / "exe.o"), str(tmp_path / "libv.so")],
                   check=True)
    want = oracle.readelf(exe)
    assert oracle.objdump_plt_labels(exe, [".plt"])[".plt"], "no MIPS .plt to check"
    _check_plt(exe)
    _check_imports(exe)
    far = tmp_path / "exe-far"  # .got.plt where %lo(slot) is negative: lui's half is one more
    subprocess.run(["ld.lld-16", "-no-pie", "--section-start=.got.plt=0x3c000", "-o", str(far), str(tmp_path / "exe.o"),
                    str(tmp_path / "libv.so")], check=True)
    assert oracle.objdump_plt_labels(far, [".plt"])[".plt"]
    _check_plt(far)
    _check_imports(tmp_path / "libv.so")
    copies = {r.symbol for r in want.relocs if r.type == "R_MIPS_COPY"}
    assert copies == {"shared_var", "other_var"} == dyn_object(str(exe)).copy_relocated


@pytest.mark.parametrize("where", ["arm64/zlib1g", "armhf/zlib1g", "i386/zlib1g", "s390x/zlib1g", "riscv64/zlib1g",
                                   "loong64/zlib1g", "mipsel/zlib1g", "mips64el/zlib1g"])
def test_reserved_got_words(where):
    """The GOT words ld.so reserves at DT_PLTGOT, by glibc's elf_machine_runtime_setup: got[1]
    the link_map and got[2] the resolver (x86, ARM, arm64, s390x), got[0] the resolver and
    got[1] the link_map (RISC-V, LoongArch: .got.plt[0] was called "address of _DYNAMIC"),
    got[0] "address of _DYNAMIC" only where it holds .dynamic's address (readelf -S); MIPS:
    readelf -A's Purpose of each reserved entry."""
    from tracer.binary import stubs

    path = _need(next((p for p in FILES if where in str(p) and ".so" in p.name), None))
    want = oracle.readelf(path)
    report = stubs.check(_image(path), path.read_bytes())
    labels = {x.address: (x.action, x.value) for s in report.sections if s.kind == "pointers" for x in s.slots}
    got = int(want.dynamic["PLTGOT"][0], 16)
    width = 8 if want.header["Class"] == "ELF64" else 4
    if want.machine == "MIPS R3000":
        purposes = oracle.mips_reserved_got(path)
        assert purposes == {got: "Lazy resolver", got + width: "Module pointer (GNU extension)"}
        assert "lazy resolver" in labels[got][0] and "module pointer" in labels[got + width][0]
        return
    if want.machine in ("RISC-V", "LoongArch"):
        assert "resolver" in labels[got][0] and "link_map" in labels[got + width][0]
        return
    assert "link_map" in labels[got + width][0] and "resolver" in labels[got + 2 * width][0]
    dynamic = want.section(".dynamic")["addr"]
    holds = int(labels[got][1], 16)
    sec = next(s for s in want.sections if s["addr"] <= got < s["addr"] + s["size"] and s["type"] == "PROGBITS")
    raw = path.read_bytes()[sec["off"] + got - sec["addr"]:][:width]
    assert holds == int.from_bytes(raw, "little" if "little" in want.header["Data"] else "big")
    assert ("_DYNAMIC" in labels[got][0]) == (holds == dynamic)


I386_SOURCE = """
int puts(const char *); void free(void *); void *malloc(unsigned int);
void *keep[2];
int entry(const char *s) { keep[0] = (void *)puts; char *p = malloc(8); puts(p); free(p); return puts(s); }
"""


def test_i386_ibt_plt(tmp_path):
    """i386 with IBT (clang-14 -fcf-protection, GNU ld -m elf_i386 -z ibtplt): .plt.got and .plt.sec
    entries jump through *disp(%ebx), from _GLOBAL_OFFSET_TABLE_; each lazy .plt entry pushes a
    byte offset into .rel.plt (8 bytes an entry), not an index. Oracle: objdump's labels and
    pushes, readelf's relocations."""
    require(shutil.which("clang-14") is not None and shutil.which("ld") is not None, "clang-14 or ld is missing")
    _need(FILES[0] if FILES else None)
    (tmp_path / "x.c").write_text(I386_SOURCE)
    subprocess.run(["clang-14", "--target=i386-linux-gnu", "-O1", "-fPIC", "-fcf-protection", "-w", "-c", "-o",
                    str(tmp_path / "x.o"), str(tmp_path / "x.c")], check=True)
    lib = tmp_path / "libx.so"
    subprocess.run(["ld", "-m", "elf_i386", "-shared", "-z", "ibtplt", "-o", str(lib), str(tmp_path / "x.o")],
                   check=True)
    pushes = oracle.objdump_ibt_lazy(lib)
    assert len(pushes) == 2 and sorted(n for _, n in pushes) == [0, 8]  # byte offsets: the test's premise
    _check_plt(lib)
    _check_imports(lib)


def test_android_packed_relocations():
    """An Android library (pyelftools' android_dyntags.so.elf) keeps 727 of its relocations that
    name a symbol in DT_ANDROID_REL's packed "APS2" stream, which GNU readelf does not unpack:
    gotrace listed only its 157 PLT slots. Oracle: llvm-readelf-16 -r (oracle.llvm_android_relocs)."""
    path = _need(UNITTESTS / "android_dyntags.so.elf")
    want = [r for r in oracle.readelf(path).relocs if r.symbol and r.table == ".rel.dyn"]
    assert len(want) > 100
    got = sorted((i.address, i.symbol, i.reloc) for i in _image(path).imports if i.reloc != "R_386_JUMP_SLOT")
    assert got == sorted((r.offset, r.symbol, r.type) for r in want)


PACKED_LIB = ("extern int a, b, c, d; extern void f(void), g(void);\n"
              "int *pa1 = &a, *pa2 = &a, *pa3 = &a, *pa4 = &a;\n"  # one r_info four times: a group by info
              "int *pb = &b, *pc = &c + 1, *pd = &d; void (*fp[2])(void) = {f, g};\n"  # each its own r_info
              "static int local[4]; int *pl1 = &local[0], *pl2 = &local[1], *pl3 = &local[3];\n"  # RELATIVE
              "int get(void) { return a + b; }\n")


@pytest.mark.parametrize("triple", ["x86_64-linux-gnu", "aarch64-linux-gnu"])
def test_android_packed_rela_relocations(tmp_path, triple):
    """DT_ANDROID_RELA (clang-14, lld's --pack-dyn-relocs=android; RELA machines: x86-64, arm64):
    every relocation naming a symbol, grouped by r_info or each with its own, against
    llvm-readelf-16 -r's unpacking of the packed section (oracle.llvm_android_relocs)."""
    require(all(shutil.which(t) is not None for t in ("clang-14", "ld.lld-16", "llvm-readelf-16")),
            "clang-14, ld.lld-16 and llvm-readelf-16 are not installed")
    (tmp_path / "lib.c").write_text(PACKED_LIB)
    subprocess.run(["clang-14", f"--target={triple}", "-fPIC", "-O1", "-c", "-o", str(tmp_path / "lib.o"),
                    str(tmp_path / "lib.c")], check=True)
    lib = tmp_path / "libpacked.so"
    subprocess.run(["ld.lld-16", "-shared", "--pack-dyn-relocs=android", "-o", str(lib), str(tmp_path / "lib.o")],
                   check=True)
    want = oracle.readelf(lib)
    assert [s["type"] for s in want.sections if s["name"] == ".rela.dyn"] == ["LOOS+0x2"]  # SHT_ANDROID_RELA
    named = collections.Counter(r.symbol for r in want.relocs if r.symbol)
    assert named["a"] >= 4 and {"b", "c", "d", "f", "g"} <= set(named)  # the premise: both kinds of group
    _check_imports(lib)


TLS_LIB = ("extern __thread int tv; extern int ext; extern void fn(void);\n"
           "int *p = &ext;\n"  # a data relocation naming ext
           "int get(void) { fn(); return tv + ext; }\n")  # a PLT call; a general-dynamic TLS variable


@pytest.mark.parametrize("triple", ["riscv64-linux-gnu", "powerpc64le-linux-gnu", "i686-linux-gnu",
                                    "armv7-linux-gnueabihf", "aarch64-linux-gnu", "mips64el-linux-gnuabi64"])
def test_tls_and_data_imports_of_a_library_built_here(tmp_path, triple):
    """A library with a data pointer to, a call of and a thread-local variable of other objects
    (clang-14, ld.lld-16): its TLS module/offset relocations (R_RISCV_TLS_DTPREL64, R_386_TLS_DTPOFF32,
    R_ARM_TLS_DTPOFF32 …; Debian's corpus libraries have few) are imports with readelf's names."""
    require(shutil.which("clang-14") is not None and shutil.which("ld.lld-16") is not None,
            "clang-14 and lld-16 are not installed")
    (tmp_path / "tls.c").write_text(TLS_LIB)
    subprocess.run(["clang-14", f"--target={triple}", "-fPIC", "-O1", "-c", "-o", str(tmp_path / "tls.o"),
                    str(tmp_path / "tls.c")], check=True)
    lib = tmp_path / "libtls.so"
    subprocess.run(["ld.lld-16", "-shared", "-o", str(lib), str(tmp_path / "tls.o")], check=True)
    want = oracle.readelf(lib)
    assert {r.symbol for r in want.relocs if re.search("TLS|DTP", r.type)} == {"tv"}  # the premise
    _check_imports(lib)


@pytest.mark.parametrize("bits", [32, 64])
def test_sparc_imports_of_a_library_built_here(tmp_path, bits):
    """tests/csrc/sparc_imports.s assembled and linked -shared by GNU binutils for sparc64
    (binutils-sparc64-linux-gnu; -32 gives EM_SPARC, -64 EM_SPARCV9): its R_SPARC_GLOB_DAT, TLS
    module/offset and JMP_SLOT relocations (pyelftools' Solaris files have none naming a symbol) are
    imports with readelf -rW's names; the ifunc's R_SPARC_IRELATIVE names none, so it is not one."""
    require(shutil.which("sparc64-linux-gnu-as") is not None and shutil.which("sparc64-linux-gnu-ld") is not None,
            "binutils-sparc64-linux-gnu is not installed (scripts/setup.sh)")
    obj = tmp_path / "lib.o"
    subprocess.run(["sparc64-linux-gnu-as", f"-{bits}", "-KPIC", "-o", str(obj),
                    str(ROOT / "tests/csrc/sparc_imports.s")], check=True)
    lib = tmp_path / "libsparc.so"
    subprocess.run(["sparc64-linux-gnu-ld", *(["-m", "elf32_sparc"] if bits == 32 else []), "-shared", "-o", str(lib),
                    str(obj)], check=True)
    want = oracle.readelf(lib)
    named = {(r.symbol, r.type) for r in want.relocs if r.symbol}
    dtp = "R_SPARC_TLS_DTPOFF32" if bits == 32 else "R_SPARC_TLS_DTPOFF64"
    assert {("ext", "R_SPARC_GLOB_DAT"), ("tv", dtp), ("__tls_get_addr", "R_SPARC_JMP_SLOT")} <= named  # the premise
    text = subprocess.run(["readelf", "-rW", str(lib)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"R_SPARC_IRELATIVE\s+[0-9a-f]+$", text, re.M)  # an addend, no symbol
    _check_imports(lib)


SIZE_ASM = ".data\n.globl sz\nsz: .quad ext@SIZE\n.globl sz32\nsz32: .long ext2@SIZE\n"


def test_size_relocations_are_named_as_readelf_names_them(tmp_path):
    """R_X86_64_SIZE64 and R_X86_64_SIZE32 (a symbol's st_size, which ld.so looks the symbol up
    for: glibc's x86_64 dl-machine.h) in a library built here from assembly (gcc -c, ld -shared):
    each an import, named as readelf -rW names it (gotrace said "type 33")."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    (tmp_path / "size.s").write_text(SIZE_ASM)
    subprocess.run(["gcc", "-c", "-o", str(tmp_path / "size.o"), str(tmp_path / "size.s")], check=True)
    lib = tmp_path / "libsize.so"
    subprocess.run(["ld", "-shared", "-o", str(lib), str(tmp_path / "size.o")], check=True)
    want = oracle.readelf(lib)
    assert {(r.symbol, r.type) for r in want.relocs} == {("ext", "R_X86_64_SIZE64"), ("ext2", "R_X86_64_SIZE32")}
    _check_imports(lib)


def test_a_wrong_count_is_not_called_truncation(tmp_path):
    """A relocation naming symbol 0x7fffffff asks for a symbol table far past the file's end: the
    file is whole (same size, readelf -h reads it), so the reason is a corrupt count, not
    "truncated at offset N" (N the file's size, what the valid MIPS64 object got)."""
    from tracer.binary.sniff import BadBinary

    lib = _need(next((p for p in FILES if "arm64/zlib1g" in str(p) and ".so" in p.name), None))
    want = oracle.readelf(lib)
    rela_plt = want.section(".rela.plt")
    data = bytearray(lib.read_bytes())
    struct.pack_into("<I", data, rela_plt["off"] + 8 + 4, 0x7FFFFFFF)  # r_info's symbol half, first entry
    bad = tmp_path / lib.name
    bad.write_bytes(bytes(data))
    assert oracle.readelf(bad).relocs  # readelf still reads its relocations
    with pytest.raises(BadBinary) as exc:
        _image(bad)
    assert "truncated" not in str(exc.value) and "corrupt" in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("arch", ["i386", "armhf"])
def test_check_versions_of_a_32_bit_library(arch):
    """A 32-bit library's 16-byte dynamic symbols: ``check``'s versions name exactly the undefined
    versioned symbols readelf -W --dyn-syms shows (Debian's libacl.so for i386 and armhf)."""
    from test_check import readelf_versions

    path = _need(next((p for p in FILES if f"{arch}/libacl1" in str(p) and p.name.startswith("libacl.so")), None))
    assert oracle.readelf(path).header["Class"] == "ELF32"
    want = readelf_versions(path)
    got = {s: v["version"] for v in _check_json(path)["files"][0]["versions"] for s in v["symbols"]}
    assert want and got == want
