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


LIBSYSTEM = "/usr/lib/libSystem.B.dylib"
LIBC = "/usr/lib/system/libsystem_c.dylib"


def _link(d, name: str, source: str, *flags: str):
    """A Mach-O built here by clang + ld64.lld against the tests' libSystem.tbd."""
    (d / f"{name}.c").write_text(source)
    subprocess.run([CLANG, "-target", "arm64-apple-macos12", "-c", str(d / f"{name}.c"), "-o", str(d / f"{name}.o")],
                   check=True)
    out = d / name
    subprocess.run([LLD, "-arch", "arm64", "-platform_version", "macos", "12.0", "12.0", "-o", str(out),
                    str(d / f"{name}.o"), str(FIX / "macho/libSystem.tbd"), *flags], check=True)
    return out


def _session(tmp_path, exe: str, dylibs: list[str], binds: list[tuple], env: dict | None = None,
             missing_weak: tuple[str, ...] = ()):
    """`gotrace import dyld-print` of a log in dyld's formats: the program, the cache's libSystem and
    libsystem_c, ``dylibs`` mapped from disk, each (symbol, target path[, binding image's path])
    bound (the program's by default), ``missing_weak`` the program's weak imports dyld found nowhere;
    ``env``: the capture's loader variables (meta.json's loader_env, as bind records them)."""
    from dyldlog import bind_line, library_line, segment_line, uuid_for, writes

    lines = [library_line(uuid_for(exe), exe), f"Kernel mapped {exe}",
             segment_line("__TEXT", "r.x", 0x100004000, 0x100008000, True)]
    for k, path in enumerate((LIBSYSTEM, LIBC)):
        lines += [f"Using mapping in dyld cache for {path}",
                  segment_line("__TEXT", "r.x", 0x180000000 + k * 0x100000, 0x180080000 + k * 0x100000, True),
                  library_line(uuid_for(path), path)]
    for k, path in enumerate(dylibs):
        start = 0x100100000 + k * 0x20000
        lines += [f"Mapping {path}", segment_line("__TEXT", "r.x", start, start + 0x4000), library_line(uuid_for(path), path)]
    for n, (sym, target, *by) in enumerate(binds):
        leaf = (by[0] if by else exe).rsplit("/", 1)[-1]
        lines.append(bind_line("dyld-1323", leaf, n, 0x100100F00 + 16 * n, target.rsplit("/", 1)[-1], sym))
    for n, sym in enumerate(missing_weak, start=len(binds)):  # dyld: "<%s/bind#%llu> -> missing-weak-bind (%s)"
        lines.append(f"<{exe.rsplit('/', 1)[-1]}/bind#{n}> -> missing-weak-bind ({sym})")
    log = tmp_path / "dyld.log"
    log.write_bytes(b"".join(w for line in writes(93, lines) for w in line))
    out = gotrace_cli("import", "dyld-print", str(log), "-o", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    if env:
        meta = json.loads((tmp_path / "s" / "meta.json").read_text())
        meta["loader_env"] = {**(meta.get("loader_env") or {}), **env}
        (tmp_path / "s" / "meta.json").write_text(json.dumps(meta))
    return tmp_path / "s"


def _why(session, symbol: str) -> dict:
    out = gotrace_cli("why", "--json", str(session), symbol)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_an_inserted_librarys_interpose_tuple_is_interposition(tmp_path):
    """DYLD_INSERT_LIBRARIES=libinsert.dylib, whose __DATA,__interpose section (llvm-objdump) names a
    replacement for _puts: dyld binds the program's _puts (its bind names libSystem) to
    libinsert.dylib — interposition, searched in the inserted library first."""
    require(shutil.which(CLANG) is not None and shutil.which(LLD) is not None, f"{CLANG} and {LLD} are needed")
    ins = _link(tmp_path, "libinsert.dylib", "int puts(const char *);\nint my_puts(const char *s) { return puts(s); }\n"
                "__attribute__((used, section(\"__DATA,__interpose\"))) static struct { const void *r, *o; } "
                "t[] = {{(const void *)my_puts, (const void *)puts}};\n", "-dylib")
    sections = subprocess.run([OBJDUMP, "--macho", "--section-headers", str(ins)], capture_output=True, text=True,
                              check=True).stdout
    assert re.search(r"\b__interpose\b", sections)
    prog = _link(tmp_path, "prog", "int puts(const char *);\nint main(void) { return puts(\"hi\"); }\n")
    assert {sym: lib for _a, lib, sym in objdump_binds(prog)}["_puts"] == "libSystem"
    s = _session(tmp_path, str(prog), [str(ins)], [("_puts", str(ins))], {"DYLD_INSERT_LIBRARIES": str(ins)})
    res = _why(s, "_puts")
    (lk,) = res["lookups"]
    assert lk["chosen"] == str(ins) and lk["bind_library"] == LIBSYSTEM
    assert lk["interposed"] is True and lk["agrees"] is True and res["interposed"] == 1
    assert lk["scope"] == [str(ins), LIBSYSTEM] and lk["searched"] == [str(ins)]


def test_a_flat_lookup_ordinal_in_a_two_level_image(tmp_path):
    """-undefined dynamic_lookup (how Python extension modules link on macOS): the image is two-level
    (llvm-objdump: TWOLEVEL) but the bind of the undefined symbol carries the flat-lookup ordinal
    (llvm-objdump: flat-namespace): dyld searches every image in load order, the first that exports
    it wins — searched up to the provider, and no "-flat_namespace" note."""
    require(shutil.which(CLANG) is not None and shutil.which(LLD) is not None, f"{CLANG} and {LLD} are needed")
    prog = _link(tmp_path, "dl", "extern int dyn_sym(void);\nint main(void) { return dyn_sym(); }\n",
                 "-undefined", "dynamic_lookup")
    headers = subprocess.run([OBJDUMP, "--macho", "--private-header", str(prog)], capture_output=True, text=True,
                             check=True).stdout
    assert re.search(r"\bTWOLEVEL\b", headers)
    assert {sym: lib for _a, lib, sym in objdump_binds(prog)}["_dyn_sym"] == "flat-namespace"
    s = _session(tmp_path, str(prog), [], [("_dyn_sym", LIBC)])
    (lk,) = _why(s, "_dyn_sym")["lookups"]
    assert lk["bind_library"] == "<flat lookup>" and "flat-lookup ordinal" in lk["reason"]
    assert lk["scope"] == [str(prog), LIBSYSTEM, LIBC] and lk["searched"] == lk["scope"][:lk["scope"].index(LIBC) + 1]
    assert not any("-flat_namespace" in n for n in lk["notes"]) and lk["interposed"] is None


def test_an_image_linked_flat_namespace_says_so(binaries, tmp_path):
    """-flat_namespace (llvm-objdump: no TWOLEVEL): the answer notes how the image was linked."""
    exe = str(binaries("macho-arm64-flat"))
    headers = subprocess.run([OBJDUMP, "--macho", "--private-header", exe], capture_output=True, text=True,
                             check=True).stdout
    assert not re.search(r"\bTWOLEVEL\b", headers)
    s = _session(tmp_path, exe, [], [("_printf", LIBC)])
    (lk,) = _why(s, "_printf")["lookups"]
    assert any("linked -flat_namespace" in n for n in lk["notes"])
    assert lk["searched"] == lk["scope"][:lk["scope"].index(LIBC) + 1] and lk["searched"][-1] == LIBC


def test_a_bundle_bound_to_its_loader_is_not_interposed(tmp_path):
    """A bundle linked -bundle_loader host binds host_fn with the main-executable ordinal
    (llvm-objdump: main-executable): dyld looks in the program alone."""
    require(shutil.which(CLANG) is not None and shutil.which(LLD) is not None, f"{CLANG} and {LLD} are needed")
    host = _link(tmp_path, "host", "int host_fn(void) { return 3; }\nint main(void) { return host_fn(); }\n",
                 "-export_dynamic")
    bundle = _link(tmp_path, "plug.bundle", "extern int host_fn(void);\nint plug(void) { return host_fn(); }\n",
                   "-bundle", "-bundle_loader", str(host))
    assert {sym: lib for _a, lib, sym in objdump_binds(bundle)}["_host_fn"] == "main-executable"
    s = _session(tmp_path, str(host), [str(bundle)], [("_host_fn", str(host), str(bundle))])
    (lk,) = _why(s, "_host_fn")["lookups"]
    assert lk["requester"] == str(bundle) and lk["chosen"] == str(host) and lk["bind_library"] == "<main executable>"
    assert lk["scope"] == [str(host)] and lk["agrees"] is True and lk["interposed"] is False


def test_a_weak_import_found_nowhere_is_not_interposed(tmp_path):
    """A weak import (llvm-objdump: weak_import, bound to libw) of a library that is not loaded:
    dyld prints missing-weak-bind and leaves it NULL — looked up in libw alone, nothing bound."""
    require(shutil.which(CLANG) is not None and shutil.which(LLD) is not None, f"{CLANG} and {LLD} are needed")
    libw = _link(tmp_path, "libw.dylib", "int maybe(void) { return 1; }\n", "-dylib", "-install_name",
                 str(tmp_path / "libw.dylib"))
    prog = _link(tmp_path, "wk", "__attribute__((weak_import)) extern int maybe(void);\n"
                 "int main(void) { return maybe ? maybe() : 0; }\n", str(libw))
    text = subprocess.run([OBJDUMP, "--macho", "--bind", str(prog)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"libw\s+_maybe \(weak_import\)", text)
    s = _session(tmp_path, str(prog), [], [], missing_weak=("_maybe",))
    (lk,) = _why(s, "_maybe")["lookups"]
    assert lk["chosen"] is None and lk["bind_library"] == str(libw) and lk["scope"] == [str(libw)]
    assert lk["agrees"] is True and lk["interposed"] is False
