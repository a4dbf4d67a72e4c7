"""gotrace check: version floors, link mode, DT_NEEDED, bind-now, Go build settings, Mach-O floors.

Oracles: readelf (-V --dyn-syms, -d, -l), llvm-objdump --macho --private-headers and
`go version -m`, never gotrace's own readers. The binaries are built here from tests/csrc
and tests/fixtures.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, VENV_BIN, gotrace_cli, go_binary, require


def _gcc(tmp: Path, name: str, *flags: str, src: str = "versions.c") -> Path:
    out = tmp / name
    subprocess.run(["gcc", "-O0", "-fno-builtin", "-o", str(out), str(ROOT / "tests/csrc" / src), *flags, "-lm"],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("check")
    return {"dynamic": _gcc(tmp, "dyn"), "now": _gcc(tmp, "now", "-Wl,-z,now"),
            "static": _gcc(tmp, "static", "-static"), "static-pie": _gcc(tmp, "spie", "-static-pie"),
            "shared": _gcc(tmp, "lib.so", "-shared", "-fPIC")}


def readelf_versions(path) -> dict[str, str]:
    """symbol -> version of every undefined versioned dynamic symbol, as readelf shows it."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(path)], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[6] == "UND" and "@" in f[7]:
            name, ver = f[7].split("@", 1)
            found[name] = ver
    return found


def check(*args) -> tuple[int, dict]:
    out = gotrace_cli("check", "--json", *map(str, args))
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def _num(v: str) -> tuple:
    return tuple(int(x) for x in v.split("_", 1)[1].split("."))


def test_floors_and_the_symbols_that_set_them(built):
    path = built["dynamic"]
    oracle = readelf_versions(path)
    rc, doc = check(path)
    assert rc == 0 and doc["ok"]
    (f,) = doc["files"]
    ours = {s: v["version"] for v in f["versions"] for s in v["symbols"]}
    assert ours == oracle
    for floor in f["floors"]:  # the highest version asked of each library, and exactly its symbols
        mine = {s: v for s, v in oracle.items() if v.split("_")[0] == floor["family"]
                and any(s in x["symbols"] for x in f["versions"] if x["library"] == floor["library"])}
        top = max(mine.values(), key=_num)
        assert floor["version"] == top and sorted(floor["symbols"]) == sorted(s for s, v in mine.items() if v == top)
    assert {x["version"] for x in f["floors"]} >= {"GLIBC_2.34"}


def test_glibc_target_names_every_symbol_above_it_and_only_those(built):
    path = built["dynamic"]
    oracle = readelf_versions(path)
    rc, doc = check(path, "--glibc", "2.28")
    (f,) = doc["files"]
    assert rc == 1 and not doc["ok"]
    (fail,) = f["failures"]
    above = {f"{s}@{v}" for s, v in oracle.items() if v.startswith("GLIBC_") and _num(v) > (2, 28)}
    assert fail["rule"] == "glibc" and set(fail["culprits"]) == above and len(fail["culprits"]) == len(above)
    assert check(path, "--glibc", "2.36")[0] == 0
    text = gotrace_cli("check", str(path), "--glibc", "2.17")
    assert text.returncode == 1 and text.stdout.startswith("fail  glibc") and "pthread_create@GLIBC_2.34" in text.stdout


def test_link_modes_against_readelf(built):
    for mode, path in (("dynamic", built["dynamic"]), ("static", built["static"]),
                       ("static-pie", built["static-pie"]), ("shared-object", built["shared"])):
        headers = subprocess.run(["readelf", "-W", "-l", "-d", str(path)], capture_output=True, text=True).stdout
        interp = "INTERP" in headers
        pie = "PIE" in headers  # FLAGS_1 as readelf decodes it
        rc, doc = check(path)
        assert doc["files"][0]["link_mode"] == mode, (mode, headers[:400])
        assert interp == (mode == "dynamic") and (pie == (mode == "static-pie") or mode == "dynamic")
    rc, doc = check(built["dynamic"], "--link", "static")
    assert rc == 1 and doc["files"][0]["failures"][0]["rule"] == "link"
    assert check(built["static"], "--link", "static")[0] == 0


@pytest.mark.parametrize("linker", ["ld", "ld.lld-16"])
def test_a_pie_without_dynamic_nor_interp_headers_is_static(linker, tmp_path):
    """tests/csrc/nodyn linked -pie by GNU ld and by lld with a script giving it one PT_LOAD and
    neither PT_DYNAMIC nor PT_INTERP (readelf -l): ET_DYN, yet ld.so takes no part — the kernel runs
    it alone (exit 7) and file(1) calls it "statically linked". check said "shared-object"."""
    import shutil

    require(shutil.which(linker) is not None and shutil.which("file") is not None, f"{linker} or file is missing")
    subprocess.run(["as", "-o", str(tmp_path / "start.o"), str(ROOT / "tests/csrc/nodyn/start.s")], check=True)
    path = tmp_path / "nodyn"
    subprocess.run([linker, "-pie", "--no-dynamic-linker", "-T", str(ROOT / "tests/csrc/nodyn/nodyn.ld"), "-o",
                    str(path), str(tmp_path / "start.o")], check=True, capture_output=True)
    headers = subprocess.run(["readelf", "-W", "-h", "-l", str(path)], capture_output=True, text=True,
                             check=True).stdout
    kinds = {line.split()[0] for line in headers.split("Program Headers:", 1)[1].splitlines()[2:] if line.strip()}
    assert "DYN" in headers.split("Type:", 1)[1].split("\n", 1)[0] and "INTERP" not in kinds \
        and "DYNAMIC" not in kinds  # the premise
    assert subprocess.run([str(path)]).returncode == 7
    assert "statically linked" in subprocess.run(["file", "-b", str(path)], capture_output=True, text=True,
                                                 check=True).stdout
    rc, doc = check(path, "--link", "static")
    assert rc == 0 and doc["files"][0]["link_mode"] == "static"


def test_needed_and_bind_now_against_readelf(built):
    """DT_NEEDED and bind-now of each built file against readelf -d (the static program has no
    dynamic section at all, the -shared library no DT_FLAGS_1: neither binds now)."""
    for name in ("dynamic", "now", "static", "static-pie", "shared"):
        dyn = subprocess.run(["readelf", "-W", "-d", str(built[name])], capture_output=True, text=True).stdout
        needed = re.findall(r"\(NEEDED\).*\[(.+?)\]", dyn)
        _rc, doc = check(built[name])
        f = doc["files"][0]
        assert f["needed"] == needed
        now = bool(re.search(r"\(FLAGS\)\s+BIND_NOW|\(FLAGS_1\).*NOW|\(BIND_NOW\)", dyn))
        assert f["bind_now"] == now
        assert now == {"now": True, "dynamic": False, "static": False, "shared": False}.get(name, now)  # premises
        if f["bind_now"]:
            assert f["bind_now_from"] and all(s in ("DT_FLAGS: DF_BIND_NOW", "DT_FLAGS_1: DF_1_NOW", "DT_BIND_NOW")
                                              for s in f["bind_now_from"])
    rc, doc = check(built["dynamic"], "--needed-allow", "libc.so.6")
    assert rc == 1 and doc["files"][0]["failures"][0]["culprits"] == ["libm.so.6"]
    assert check(built["dynamic"], "--needed-allow", "libc.so.6,libm.so.6")[0] == 0
    assert check(built["now"], "--bind-now", "forbid")[0] == 1 and check(built["now"], "--bind-now", "require")[0] == 0
    assert check(built["dynamic"], "--bind-now", "require")[0] == 1


def test_go_build_settings_against_go_version_m(binaries, tmp_path):
    go = go_binary()
    require(go is not None, "the Go toolchain is not installed")
    static, cgo = binaries("go-linux-amd64-static"), binaries("go-linux-amd64-external")
    for path in (static, cgo):
        oracle = subprocess.run([go, "version", "-m", str(path)], capture_output=True, text=True, check=True).stdout
        settings = dict(re.findall(r"^\s*build\s+([^=\s]+)=(.*)$", oracle, re.M))
        _rc, doc = check(path)
        assert doc["files"][0]["go"]["settings"] == settings
    assert check(static, "--go-setting", "CGO_ENABLED=0", "--link", "static")[0] == 0
    rc, doc = check(cgo, "--go-setting", "CGO_ENABLED=0")
    assert rc == 1 and doc["files"][0]["failures"][0]["culprits"] == ["CGO_ENABLED=1"]
    netgo = tmp_path / "netgo"
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "GOCACHE": str(ROOT / ".cache/go-build"),
           "GOFLAGS": "-modcacherw", "GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    subprocess.run([go, "build", "-tags", "netgo,osusergo", "-o", str(netgo), "."], cwd=ROOT / "tests/fixtures/gohello",
                   env=env, check=True, capture_output=True)
    assert check(netgo, "--go-setting", "-tags=netgo")[0] == 0
    rc, doc = check(static, "--go-setting", "-tags=netgo")
    assert rc == 1 and "without -tags netgo" in doc["files"][0]["failures"][0]["message"]


def test_go_build_info_in_a_section_that_ends_the_file(binaries, tmp_path):
    """.go.buildinfo's bytes copied to the very end of the file and its sh_offset pointed there
    (a valid ELF: readelf -SW shows the section ending at the file's size; nothing the loader
    maps moves): the settings are still read from the section, as `go version -m` (the oracle,
    which reads the loaded address, not sh_offset) reads them from the same file."""
    import struct

    go = go_binary()
    require(go is not None, "the Go toolchain is not installed")
    data = bytearray(binaries("go-linux-amd64-static").read_bytes())
    shoff, shentsize, shnum, shstrndx = (struct.unpack_from("<Q", data, 40)[0], *struct.unpack_from("<HHH", data, 58))
    names_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 24)[0]
    for i in range(shnum):
        at = shoff + i * shentsize
        name = struct.unpack_from("<I", data, at)[0]
        if bytes(data[names_off + name:names_off + name + 14]) == b".go.buildinfo\0":
            off, size = struct.unpack_from("<QQ", data, at + 24)
            struct.pack_into("<Q", data, at + 24, len(data))
            data += data[off:off + size]
            break
    moved = tmp_path / "go-buildinfo-at-eof"
    moved.write_bytes(bytes(data))
    sections = subprocess.run(["readelf", "-SW", str(moved)], capture_output=True, text=True, check=True).stdout
    row = re.search(r"\.go\.buildinfo\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", sections)
    assert row and int(row.group(1), 16) + int(row.group(2), 16) == moved.stat().st_size  # the premise
    oracle = subprocess.run([go, "version", "-m", str(moved)], capture_output=True, text=True, check=True).stdout
    settings = dict(re.findall(r"^\s*build\s+([^=\s]+)=(.*)$", oracle, re.M))
    assert settings and check(moved)[1]["files"][0]["go"]["settings"] == settings


def _go_buildinfo_header(data: bytes) -> int:
    """Where .go.buildinfo's section header lies in a 64-bit little-endian ELF file."""
    import struct

    shoff, shentsize, shnum, shstrndx = (struct.unpack_from("<Q", data, 40)[0], *struct.unpack_from("<HHH", data, 58))
    names_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 24)[0]
    return next(shoff + i * shentsize for i in range(shnum) if bytes(data[names_off + struct.unpack_from(
        "<I", data, shoff + i * shentsize)[0]:][:14]) == b".go.buildinfo\0")


def test_go_build_info_cut_inside_the_versions_length(binaries, tmp_path):
    """.go.buildinfo cut 34 bytes in — its sh_size and its PT_LOAD's p_filesz (where `go version -m`
    reads it: debug/buildinfo's DataReader) both end two bytes after the 32-byte header, bytes 0x80 0x80,
    a varint that never ends: `go version -m` finds no Go version (exit 1, nothing printed), and
    neither does check (no version, no settings) — without failing on the file."""
    import struct

    go = go_binary()
    require(go is not None, "the Go toolchain is not installed")
    data = bytearray(binaries("go-linux-amd64-static").read_bytes())
    at = _go_buildinfo_header(data)
    addr, off = struct.unpack_from("<QQ", data, at + 16)
    struct.pack_into("<Q", data, at + 32, 34)  # sh_size
    phoff, (phentsize, phnum) = struct.unpack_from("<Q", data, 32)[0], struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        ph = phoff + i * phentsize
        kind, _flags, _off, vaddr, _paddr, filesz = struct.unpack_from("<IIQQQQ", data, ph)
        if kind == 1 and vaddr <= addr < vaddr + filesz:
            struct.pack_into("<Q", data, ph + 32, addr - vaddr + 34)  # p_filesz
    assert data[off:off + 14] == b"\xff Go buildinf:" and data[off + 15] & 2  # the premise: Go >= 1.18's form
    data[off + 32:off + 34] = b"\x80\x80"
    _no_go_version_either(go, tmp_path / "go-buildinfo-cut", data)


def _no_go_version_either(go: str, path, data: bytes) -> None:
    """The bytes as a file in which `go version -m` finds no Go version (exit 1): check reports none."""
    path.write_bytes(bytes(data))
    oracle = subprocess.run([go, "version", "-m", str(path)], capture_output=True, text=True)
    assert oracle.returncode != 0 and "go1" not in oracle.stdout
    _rc, doc = check(path)
    assert doc["files"][0]["go"]["version"] is None and doc["files"][0]["go"]["settings"] == {}


def test_go_build_info_in_pointer_form_is_not_read_inline(binaries, tmp_path):
    """.go.buildinfo's flags byte set to 1 — big-endian pointers, the form Go < 1.18 writes on s390x
    and ppc64 (debug/buildinfo: no inline strings, the header's version and module pointers instead,
    here zero): `go version -m` finds no Go version (exit 1), and check reports none, rather than
    reading the inline strings a flags byte without bit 1 does not have."""
    import struct

    go = go_binary()
    require(go is not None, "the Go toolchain is not installed")
    data = bytearray(binaries("go-linux-amd64-static").read_bytes())
    off = struct.unpack_from("<Q", data, _go_buildinfo_header(data) + 24)[0]
    assert data[off:off + 14] == b"\xff Go buildinf:" and data[off + 15] == 2  # the premise: inline, little-endian
    data[off + 15] = 1
    _no_go_version_either(go, tmp_path / "go-buildinfo-pointer-form", data)


def test_macho_uuid_minos_and_arches_against_llvm_objdump(binaries):
    for name in ("macho-x86_64-lazy", "macho-arm64-no-uuid", "fat"):
        path = binaries(name)
        text = subprocess.run(["llvm-objdump-16", "--macho", "--private-headers", "--arch=all", str(path)],
                              capture_output=True, text=True, check=True).stdout
        uuids = re.findall(r"uuid ([0-9A-F-]{36})", text)
        minos = re.findall(r"minos (\S+)", text)
        rc, doc = check(path)
        slices = doc["files"][0]["slices"]
        assert [s["uuid"] for s in slices if s["uuid"]] == uuids
        assert [s["minos"] for s in slices] == minos
        if name == "macho-arm64-no-uuid":
            assert rc == 1 and doc["files"][0]["failures"][0]["rule"] == "uuid"
        else:
            assert rc == 0
    lazy = binaries("macho-x86_64-lazy")  # linked for macOS 10.15
    assert check(lazy, "--macos", "10.15")[0] == 0
    rc, doc = check(lazy, "--macos", "10.13")
    assert rc == 1 and doc["files"][0]["failures"][0]["culprits"] == ["x86_64: 10.15"]
    fat = binaries("fat")
    assert check(fat, "--arch", "arm64,x86_64")[0] == 0
    rc, doc = check(fat, "--arch", "arm64,i386")
    assert rc == 1 and doc["files"][0]["failures"][0]["culprits"] == ["i386"]


def test_bad_input_is_one_line(tmp_path, built):
    (tmp_path / "t.txt").write_text("hello\n")
    for args, words in ((["check", str(tmp_path / "nope")], "no such file"),
                        (["check", str(tmp_path / "t.txt")], "not an ELF or Mach-O"),
                        (["check", str(built["dynamic"]), "--glibc", "two"], "--glibc takes a version"),
                        (["check", str(built["dynamic"]), "--link", "lazy"], "--link takes one of"),
                        (["check", str(built["dynamic"]), "--go-setting", "netgo"], "--go-setting takes KEY=VALUE")):
        out = gotrace_cli(*args)
        assert out.returncode == 2 and words in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_dt_relr_needs_glibc_2_36(tmp_path):
    """-z pack-relative-relocs makes ld ask for GLIBC_ABI_DT_RELR (readelf -V), a version without a
    number: glibc added it with DT_RELR support in 2.36 (glibc's NEWS for 2.36, elf/Versions), so the
    file needs 2.36 whatever its numbered versions ask — it runs here (glibc 2.36, exit status 0)."""
    path = _gcc(tmp_path, "relr", "-pie", "-fPIE", "-Wl,-z,pack-relative-relocs")
    needs = subprocess.run(["readelf", "-W", "-V", str(path)], capture_output=True, text=True, check=True).stdout
    require("GLIBC_ABI_DT_RELR" in needs, "this binutils does not emit DT_RELR")
    assert max(_num(v) for v in readelf_versions(path).values() if v.startswith("GLIBC_2")) < (2, 36)
    assert subprocess.run([str(path)], capture_output=True).returncode == 0
    assert check(path, "--glibc", "2.35")[0] == 1
    assert check(path, "--glibc", "2.36")[0] == 0


def test_versions_without_section_headers_reach_the_last_hashed_symbol(tmp_path):
    """With its section headers stripped (llvm-objcopy-16 --strip-sections), a program's dynamic
    symbols are counted from DT_GNU_HASH's chains, whose last entries here are main (exported) and the
    weak __cxa_finalize@GLIBC_2.2.5: check's versions name every undefined versioned symbol readelf
    --dyn-syms shows in the file before stripping."""
    path = _gcc(tmp_path, "one", "-Wl,--export-dynamic-symbol=main")
    stripped = tmp_path / "stripped"
    subprocess.run(["llvm-objcopy-16", "--strip-sections", str(path), str(stripped)], check=True)
    assert "There are no sections" in subprocess.run(["readelf", "-S", str(stripped)], capture_output=True,
                                                     text=True).stdout
    _rc, doc = check(stripped)
    ours = {s: v["version"] for v in doc["files"][0]["versions"] for s in v["symbols"]}
    assert ours == readelf_versions(path)


LONG = [f"generated_function_with_a_long_name_number_{i:05d}" for i in range(1500)]


def test_versions_of_a_32_bit_program_whose_names_pass_64_kib(tmp_path):
    """A 32-bit program (gcc -m32) importing 1,500 long names from a versioned library (GEN_1.0):
    past 64 KiB of .dynstr a symbol's st_name has a high half, the bytes just before the next
    symbol's st_shndx in the 16-byte Elf32_Sym, so a reader off by those bytes takes imports for
    definitions. check's versions name every undefined versioned symbol readelf --dyn-syms shows."""
    (tmp_path / "gen.c").write_text("".join(f"int {n}(void) {{ return {i}; }}\n" for i, n in enumerate(LONG)))
    (tmp_path / "gen.map").write_text("GEN_1.0 { global: *; };\n")
    (tmp_path / "use.c").write_text("#include <stdio.h>\n" + "".join(f"int {n}(void);\n" for n in LONG)
                                    + "int main(void) {\n  int s = 0;\n" + "".join(f"  s += {n}();\n" for n in LONG)
                                    + '  printf("%d\\n", s);\n  return 0;\n}\n')
    subprocess.run(["gcc", "-m32", "-shared", "-fPIC", "-o", str(tmp_path / "libgen.so"), str(tmp_path / "gen.c"),
                    f"-Wl,--version-script={tmp_path / 'gen.map'}", "-Wl,-soname,libgen.so"], check=True)
    path = tmp_path / "use"
    subprocess.run(["gcc", "-m32", "-o", str(path), str(tmp_path / "use.c"), f"-L{tmp_path}", "-lgen"], check=True)
    out = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True, check=True).stdout
    assert int(re.search(r"\.dynstr\s+STRTAB\s+\S+\s+\S+\s+(\S+)", out)[1], 16) > 0x10000  # the premise
    want = readelf_versions(path)
    assert sum(v == "GEN_1.0" for v in want.values()) == len(LONG) and "printf" in want
    _rc, doc = check(path)
    assert {s: v["version"] for v in doc["files"][0]["versions"] for s in v["symbols"]} == want


def _readelf_needs(path) -> set[tuple[str, str]]:
    """(library, version) of each DT_VERNEED entry, from readelf -W -V's "Version needs" section."""
    out = subprocess.run(["readelf", "-W", "-V", str(path)], capture_output=True, text=True, check=True).stdout
    found, lib = set(), None
    for line in out.split("Version needs section", 1)[1].splitlines():
        if m := re.search(r"File: (\S+)", line):
            lib = m[1]
        elif m := re.search(r"Name: (\S+)", line):
            found.add((lib, m[1]))
    return found


def test_unnumbered_and_numbered_versions_of_one_library():
    """The system's libm.so.6 asks libc.so.6 for GLIBC_PRIVATE (no number) beside GLIBC_2.x and
    GLIBC_ABI_DT_RELR: ``check`` lists every version readelf -V says it needs, of its library."""
    path = Path("/lib/x86_64-linux-gnu/libm.so.6")
    require(path.is_file(), "no x86-64 Debian libm.so.6")
    want = _readelf_needs(path)
    assert ("libc.so.6", "GLIBC_PRIVATE") in want and ("libc.so.6", "GLIBC_2.2.5") in want
    _rc, doc = check(path)
    assert {(v["library"], v["version"]) for v in doc["files"][0]["versions"]} == want


def test_versions_of_a_library_come_in_its_own_definition_order():
    """The system's python3 asks libc.so.6 for GLIBC_2.9 and GLIBC_2.10 among a score of others:
    ``check`` lists them oldest first, the order libc.so.6 defines them in (readelf -V's "Version
    definition" section, glibc's release order), not as strings sort (2.10 before 2.9)."""
    exe = Path("/usr/bin/python3").resolve()  # Debian's, not a pyenv shim
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    require(libc.is_file() and exe.is_file(), "no x86-64 Debian libc.so.6 / python3")
    text = subprocess.run(["readelf", "-W", "-V", str(libc)], capture_output=True, text=True, check=True).stdout
    defined = re.findall(r"Name: (GLIBC_2[\d.]+)", text.split("Version definition", 1)[1].split("Version needs")[0])
    wanted = {v for lib, v in _readelf_needs(exe) if lib == "libc.so.6" and v.startswith("GLIBC_2")}
    assert {"GLIBC_2.9", "GLIBC_2.10"} <= wanted
    _rc, doc = check(exe)
    ours = [v["version"] for v in doc["files"][0]["versions"]
            if v["library"] == "libc.so.6" and v["version"].startswith("GLIBC_2")]
    assert ours == [v for v in defined if v in wanted]


def test_a_go_setting_asked_of_a_program_without_go_build_info(tmp_path):
    """/bin/true is no Go program: `go version -m` (the oracle) refuses it with a non-zero exit;
    --go-setting then fails the file in one rule ("no Go build info") and check exits 1, once
    per setting asked, never with a traceback."""
    go = go_binary()
    require(go is not None, "the Go toolchain is not installed")
    assert subprocess.run([go, "version", "-m", "/bin/true"], capture_output=True).returncode != 0
    rc, doc = check("/bin/true", "--go-setting", "CGO_ENABLED=0", "--go-setting", "-tags=netgo")
    failures = doc["files"][0]["failures"]
    assert rc == 1 and doc["files"][0]["go"] is None
    assert [f["rule"] for f in failures] == ["go", "go"] and all("no Go build info" in f["message"] for f in failures)


def test_a_floor_with_a_zero_part_is_a_version(binaries):
    """--macos 11.0 and --glibc 2.0 are versions (macOS 11.0, i386's GLIBC_2.0): the Mach-O's minos
    from llvm-objdump-16 --private-headers (10.15) is below 11.0, so check passes it (exit 0); the
    x86-64 program's floor from readelf -V (GLIBC_2.2.5 at least) is above 2.0 (exit 1); neither
    is refused as a malformed version (exit 2)."""
    lazy = binaries("macho-x86_64-lazy")
    text = subprocess.run(["llvm-objdump-16", "--macho", "--private-headers", str(lazy)],
                          capture_output=True, text=True, check=True).stdout
    (minos,) = re.findall(r"minos (\S+)", text)
    assert tuple(int(x) for x in minos.split(".")) < (11, 0)
    assert check(lazy, "--macos", "11.0")[0] == 0
    floors = [_num(v) for v in readelf_versions("/bin/true").values() if v.startswith("GLIBC_")]
    assert floors and all(f > (2, 0) for f in floors)
    assert check("/bin/true", "--glibc", "2.0")[0] == 1


@pytest.mark.parametrize("path", ["/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6"])
def test_floors_and_private_versions_against_readelf(path):
    """System libraries that need unnumbered versions (GLIBC_PRIVATE, of ld.so and of libc.so.6)
    besides numbered ones: each (file, family)'s floor is the highest numbered version readelf -V
    lists needed from that file (GLIBC_ABI_DT_RELR counted as 2.36: glibc's NEWS for 2.36), and the
    unnumbered ones are listed apart, never taken for a floor."""
    require(Path(path).is_file(), f"no {path}")
    floors: dict[tuple[str, str], tuple] = {}
    private = set()
    for lib, name in sorted(_readelf_needs(path)):
        m = re.fullmatch(r"([A-Z]+)_(\d+(?:\.\d+)*)", name)
        if m is None and name != "GLIBC_ABI_DT_RELR":
            private.add((lib, name))
            continue
        family, number = ("GLIBC", (2, 36)) if m is None else (m.group(1), tuple(int(x) for x in m.group(2).split(".")))
        key = (lib, family)
        if key not in floors or number > floors[key][0]:
            floors[key] = (number, name)
    assert private and floors  # the premise: both kinds
    doc = check(path)[1]["files"][0]
    assert {(f["library"], f["family"], f["version"]) for f in doc["floors"]} == \
        {(lib, fam, name) for (lib, fam), (_n, name) in floors.items()}
    assert {(p["library"], p["version"]) for p in doc["private_versions"]} == private


GO_INFO_START = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6"  # cmd/go/internal/modload: infoStart
GO_INFO_END = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"  # and infoEnd, around the module info


def test_go_module_info_whose_length_takes_two_bytes(tmp_path):
    """gohello built with an -ldflags padded so that its module info (the text between cmd/go's
    infoStart and infoEnd sentinels, found in the file here) plus the sentinels is a multiple of 128
    bytes long: its varint length prefix is 0x80 then a second byte. The version, path, main module
    and every build setting check and inspect report are `go version -m`'s (the oracle)."""
    go = go_binary()
    require(go is not None, "the Go toolchain is not installed")
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "GOCACHE": str(ROOT / ".cache/go-build"),
           "GOFLAGS": "-modcacherw", "GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}

    def build(pad: str) -> tuple[Path, int]:
        out = tmp_path / f"gohello-{len(pad)}"
        subprocess.run([go, "build", "-ldflags", f"-X main.pad={pad}", "-o", str(out), "."],
                       cwd=ROOT / "tests/fixtures/gohello", env=env, check=True, capture_output=True)
        data = out.read_bytes()
        start = data.index(GO_INFO_START)
        return out, data.index(GO_INFO_END, start) + len(GO_INFO_END) - start

    _first, size = build("x")
    path, size = build("x" * (1 + (-size) % 128))
    assert size % 128 == 0 and size >= 128  # the premise: a two-byte varint whose first byte is 0x80
    text = subprocess.run([go, "version", "-m", str(path)], capture_output=True, text=True, check=True).stdout
    version = text.split(": ", 1)[1].splitlines()[0]
    fields = [line.split("\t")[1:] for line in text.splitlines()[1:]]
    want_path = next(f[1] for f in fields if f[0] == "path")
    want_main = next({"path": f[1], "version": f[2]} for f in fields if f[0] == "mod")
    settings = dict(f[1].split("=", 1) for f in fields if f[0] == "build")
    deps = [{"path": f[1], "version": f[2]} for f in fields if f[0] == "dep"]
    go_info = json.loads(gotrace_cli("inspect", "--json", str(path)).stdout)["go"]
    assert (go_info["version"], go_info["path"], go_info["main"], go_info["settings"], go_info["deps"]) == \
        (version, want_path, want_main, settings, deps)
    assert "-ldflags" in settings and check(path)[1]["files"][0]["go"]["settings"] == settings


def test_go_dependency_replaced_by_a_directory(tmp_path):
    """A dependency replaced by a local directory (go.mod's replace): Go writes its "dep" line
    without a checksum, then a "=>" line. inspect's deps are `go version -m`'s "dep" lines
    (path and version; the oracle), the replacement not taken for a dependency."""
    go = go_binary()
    require(go is not None, "the Go toolchain is not installed")
    (tmp_path / "dep").mkdir()
    (tmp_path / "go.mod").write_text("module example.com/withdep\n\ngo 1.21\n\nrequire example.com/dep v1.2.3\n\n"
                                     "replace example.com/dep => ./dep\n")
    (tmp_path / "main.go").write_text('package main\n\nimport "example.com/dep"\n\nfunc main() { println(dep.Name()) }\n')
    (tmp_path / "dep" / "go.mod").write_text("module example.com/dep\n\ngo 1.21\n")
    (tmp_path / "dep" / "dep.go").write_text('package dep\n\nfunc Name() string { return "dep" }\n')
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "GOCACHE": str(ROOT / ".cache/go-build"),
           "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    prog = tmp_path / "withdep"
    subprocess.run([go, "build", "-o", str(prog), "."], cwd=tmp_path, env=env, check=True, capture_output=True)
    text = subprocess.run([go, "version", "-m", str(prog)], capture_output=True, text=True, check=True).stdout
    fields = [line.split("\t")[1:] for line in text.splitlines()[1:]]
    deps = [{"path": f[1], "version": f[2]} for f in fields if f[0] == "dep"]
    assert deps and any(f[0] == "=>" for f in fields)  # the premise: a replaced dependency
    assert json.loads(gotrace_cli("inspect", "--json", str(prog)).stdout)["go"]["deps"] == deps
