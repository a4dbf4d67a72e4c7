"""dyld's side (not run on macOS): expectations from dyld's sources and from Mach-O files read by llvm-objdump.

- DYLD_PRINT_SEGMENTS' "Mapping %s (slice offset=0x%llX)" (dyld-1378, dyld/Loader.cpp): %llX is
  upper-case hex, and a slice offset is where the slice sits in a fat file, read here from real
  fat files with llvm-objdump --universal-headers; C's %llX is Python's %X.
- The dyld profile's loader reads: dyld-1378's structures laid out by ctypes (tests/dyld_layout.py).
- `why` on a re-exported symbol: Mach-O files ld64.lld builds here, one dylib re-exporting
  another (llvm-objdump: LC_REEXPORT_DYLIB), the program's bind naming the re-exporter
  (llvm-objdump --lazy-bind); dyld finds the symbol in the re-exported library, which is
  dyld's two-level namespace at work, not an interposition.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

import dyld_layout
from binaries import CLANG, FIX, LLD
from conftest import gotrace_cli, require
from oracles import OBJDUMP, objdump_binds
from tracer.capture.dyld_print import lines as L
from tracer.capture.lldb import dyld_recorder as D

MAPPING_FORMAT = "Mapping %s (slice offset=0x%X)"  # dyld/Loader.cpp: "Mapping %s (slice offset=0x%llX)\n"


def universal_offsets(path) -> list[int]:
    """llvm-objdump's account of a fat file: each slice's file offset."""
    text = subprocess.run([OBJDUMP, "--macho", "--universal-headers", str(path)], capture_output=True, text=True,
                          check=True).stdout
    return [int(m, 0) for m in re.findall(r"^\s*offset (\S+)$", text, re.M)]


def test_a_slice_offset_with_hex_letters_is_read(binaries):
    """Every slice offset of a fat file built here, and one with letters in every hex digit
    position dyld may print (an offset of 0xABCDE000 is a slice 2.7 GiB in), through dyld's
    format: the path is the text before the suffix, the suffix is no part of it."""
    offsets = universal_offsets(binaries("fat"))
    assert len(offsets) == 2 and all(o % 0x1000 == 0 for o in offsets), offsets
    offsets.append(0xABCDE000)
    path = "/Users/me/proj/prog"
    lines = [MAPPING_FORMAT % (path, o) for o in offsets]
    assert any(re.search(r"0x[0-9]*[A-F]", x) for x in lines)  # the case the lower-case reading misses
    for line in lines:
        assert L.parse(line) == (L.MAP, "Mapping", path), line
        assert L.viable(line, complete=True)


def test_the_dyld_profile_reads_loaders_where_dyld_1378_puts_them():
    """JustInTimeLoader's image header follows Loader's members (tests/dyld_layout.py): magic,
    16 one-bit flags, a 15+1-bit LoaderRef, a 16-byte uuid, cpusubtype, unused."""
    assert (dyld_layout.MAPPED_ADDRESS, dyld_layout.LOADER_MAGIC) == (D.HEADER_OFFSET, D.LOADER_MAGIC)
    rs = dyld_layout.ResolvedSymbol
    assert (rs.targetLoader.offset, rs.targetRuntimeOffset.offset, rs.kind.offset) == (
        D.RESOLVED_TARGET, D.RESOLVED_OFFSET, D.RESOLVED_KIND)
    assert dyld_layout.KIND["bindAbsolute"] == D.KIND_ABSOLUTE


@pytest.fixture(scope="module")
def reexport(tmp_path_factory):
    """prog calls _inner_fn, linked against libouter.dylib, which re-exports libinner.dylib (which defines it)."""
    require(shutil.which(CLANG) is not None and shutil.which(LLD) is not None, f"{CLANG} and {LLD} are needed")
    d = tmp_path_factory.mktemp("reexport")
    src = {"inner": "int inner_fn(void) { return 7; }\n", "outer": "int outer_fn(void) { return 1; }\n",
           "prog": "extern int inner_fn(void);\nint main(void) { return inner_fn(); }\n"}
    for name, text in src.items():
        (d / f"{name}.c").write_text(text)
        subprocess.run([CLANG, "-target", "arm64-apple-macos12", "-c", str(d / f"{name}.c"), "-o",
                        str(d / f"{name}.o")], check=True)
    ld = [LLD, "-arch", "arm64", "-platform_version", "macos", "12.0", "12.0"]
    tbd = str(FIX / "macho/libSystem.tbd")
    inner, outer, prog = d / "libinner.dylib", d / "libouter.dylib", d / "prog"
    subprocess.run([*ld, "-dylib", "-install_name", str(inner), "-o", str(inner), str(d / "inner.o"), tbd], check=True)
    subprocess.run([*ld, "-dylib", "-install_name", str(outer), "-o", str(outer), str(d / "outer.o"), tbd,
                    "-reexport_library", str(inner)], check=True)
    subprocess.run([*ld, "-o", str(prog), str(d / "prog.o"), tbd, str(outer)], check=True)
    return {"prog": prog, "outer": outer, "inner": inner}


def test_a_reexported_symbol_is_not_interposed(reexport, tmp_path):
    from dyldlog import bind_line, library_line, segment_line, uuid_for, writes

    prog, outer, inner = (str(reexport[k]) for k in ("prog", "outer", "inner"))
    headers = subprocess.run([OBJDUMP, "--macho", "--private-headers", outer], capture_output=True, text=True,
                             check=True).stdout
    assert re.search(rf"cmd LC_REEXPORT_DYLIB\n\s+cmdsize \d+\n\s+name {re.escape(inner)} ", headers)
    named = {sym: lib for _a, lib, sym in objdump_binds(prog)}
    assert named["_inner_fn"] == "libouter"  # the bind names the re-exporter, not the definer
    lines = [library_line(uuid_for(prog), prog), f"Kernel mapped {prog}",
             segment_line("__TEXT", "r.x", 0x100004000, 0x100008000, True)]
    for k, path in enumerate((outer, inner)):
        start = 0x100100000 + k * 0x20000
        lines += [f"Mapping {path}", segment_line("__TEXT", "r.x", start, start + 0x4000),
                  library_line(uuid_for(path), path)]
    lines.append(bind_line("dyld-1323", "prog", 0, 0x100120F00, "libinner.dylib", "_inner_fn"))
    log = tmp_path / "dyld.log"
    log.write_bytes(b"".join(w for line in writes(91, lines) for w in line))
    assert gotrace_cli("import", "dyld-print", str(log), "-o", str(tmp_path / "s")).returncode == 0
    out = gotrace_cli("why", "--json", str(tmp_path / "s"), "_inner_fn")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    (lk,) = res["lookups"]
    assert lk["chosen"] == inner and lk["bind_library"] == outer and lk["scope"] == [outer]
    assert lk["interposed"] is False and res["interposed"] == 0


# xnu-11417.101.15 osfmk/mach/shared_region.h, written out (the kernel maps the shared cache there)
XNU_SHARED_REGION = {"x86_64": (0x00007FF800000000, 0x00000007FE000000), "arm64": (0x180000000, 0x180000000)}


@pytest.mark.parametrize("arch", sorted(XNU_SHARED_REGION))
def test_the_shared_regions_are_xnus(arch):
    """A cache dylib's address tells the architecture whose shared region holds it: [BASE, BASE+SIZE)
    of xnu's shared_region.h, nothing past either end."""
    base, size = XNU_SHARED_REGION[arch]
    for addr in (base, base + 0x1000, base + size - 1):
        assert L.region_arch(addr) == arch, hex(addr)
    for addr in (base - 1, base + size, base + size + 0x1C00000):
        assert L.region_arch(addr) is None, hex(addr)


@pytest.mark.parametrize("body", [
    "<libfoo.dylib> has no bind",          # a "<…>" body that is neither a bind nor a library line
    "<prog/bind#1> -> something else",     # a bind line's start with a tail of no form dyld prints
    "fancy new dyld message",              # starts with "f" (as "fixup: " does) and is none of the forms
    "Mapped something",                    # starts as "Mapping" does
    "",
])
def test_a_body_of_no_known_form_is_unknown(body):
    """parse() gives (UNKNOWN,) for what no format string of dyld-1378 prints (the log counts
    those lines rather than guess), and viable() says no line of dyld's can be it."""
    assert L.parse(body) == (L.UNKNOWN,)
    assert not L.viable(body, complete=True)
