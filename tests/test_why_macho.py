"""`gotrace why` on a Mac's session: dyld's two-level namespace and flat lookups, from the bind info.

Not run on macOS: the log is written in dyld's formats (tests/dyldlog.py) for Mach-O files
ld64.lld builds here; llvm-objdump is the oracle for which library each bind names and for
MH_TWOLEVEL.
"""
from __future__ import annotations

import json
import re
import subprocess

from conftest import gotrace_cli
from oracles import OBJDUMP, objdump_binds

LIBSYSTEM = "/usr/lib/libSystem.B.dylib"
LIBC = "/usr/lib/system/libsystem_c.dylib"


def session_of(exe: str, binds: list[tuple[str, str]], tmp_path, env: dict | None = None):
    """A dyld-print session of ``exe`` binding each (symbol, providing library)."""
    from dyldlog import bind_line, library_line, segment_line, uuid_for, writes

    lines = [library_line(uuid_for(exe), exe), f"Kernel mapped {exe}",
             segment_line("__TEXT", "r.x", 0x100004000, 0x100008000, True)]
    for k, path in enumerate((LIBSYSTEM, LIBC)):
        lines += [f"Using mapping in dyld cache for {path}",
                  segment_line("__TEXT", "r.x", 0x180000000 + k * 0x100000, 0x180080000 + k * 0x100000, True),
                  library_line(uuid_for(path), path)]
    leaf = exe.rsplit("/", 1)[-1]
    for n, (sym, lib) in enumerate(binds):
        lines.append(bind_line("dyld-1323", leaf, n, 0x180001000 + 16 * n, lib.rsplit("/", 1)[-1], sym))
    log = tmp_path / "dyld.log"
    log.write_bytes(b"".join(w for line in writes(77, lines) for w in line))
    out = gotrace_cli("import", "dyld-print", str(log), "-o", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    return tmp_path / "s"


def why(session, symbol: str) -> dict:
    out = gotrace_cli("why", "--json", str(session), symbol)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def twolevel(path) -> bool:
    text = subprocess.run([OBJDUMP, "--macho", "--private-header", str(path)], capture_output=True, text=True,
                          check=True).stdout
    return bool(re.search(r"\bTWOLEVEL\b", text))


def test_two_level_binds_name_their_library(binaries, tmp_path):
    exe = str(binaries("macho-arm64-chained"))
    assert twolevel(exe)
    named = {sym: lib for _a, lib, sym in objdump_binds(exe)}  # llvm-objdump: the bind's dylib, by short name
    assert named["_printf"] == named["_puts"] == "libSystem"
    s = session_of(exe, [("_printf", LIBSYSTEM), ("_puts", LIBC)], tmp_path)
    (lk,) = why(s, "_printf")["lookups"]
    assert lk["bind_library"].rsplit("/", 1)[-1].startswith(named["_printf"]) and lk["scope"] == [LIBSYSTEM]
    assert lk["agrees"] and lk["interposed"] is False and "two-level namespace" in lk["reason"]
    (lk,) = why(s, "_puts")["lookups"]  # bound in libsystem_c: libSystem re-exports it
    assert lk["scope"] == [LIBSYSTEM] and "re-exports" in lk["reason"] and lk["agrees"] is None
    assert any("not run on macOS" in n for n in lk["notes"])
    text = gotrace_cli("why", str(s), "_printf").stdout
    assert "two-level namespace" in text


def test_flat_namespace_searches_every_image(binaries, tmp_path):
    exe = str(binaries("macho-arm64-flat"))
    assert not twolevel(exe)
    assert {lib for _a, lib, _s in objdump_binds(exe)} == {"flat-namespace"}
    s = session_of(exe, [("_printf", LIBC)], tmp_path)
    (lk,) = why(s, "_printf")["lookups"]
    assert lk["bind_library"] == "<flat lookup>" and "flat namespace" in lk["reason"]
    assert lk["scope"][0] == exe and set(lk["scope"]) == {exe, LIBSYSTEM, LIBC}
    out = gotrace_cli("why", str(s), "--library", "libSystem.B.dylib")
    assert out.returncode == 2 and "dyld" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_the_bind_ordinal_decides_not_the_header_flag(binaries, tmp_path):
    """dyld resolves an opcode bind by its ordinal alone (dyld's Loader::resolveSymbol), and reads an
    nlist ordinal (no bind opcodes) of an image without MH_TWOLEVEL as a flat lookup
    (MachOAnalyzer::libOrdinalFromDesc). The lld build with MH_TWOLEVEL cleared keeps --bind's
    libSystem ordinals: two-level (gotrace once called it flat); ld64.lld builds with LC_DYLD_INFO
    taken out: -flat_namespace (llvm-nm -m names no library) is flat, `(dynamically looked up)` the
    flat-lookup ordinal."""
    import struct

    from test_inspect import _lld_x86_64, _without_bind_opcodes

    src = binaries("macho-x86_64-lazy")
    data = bytearray(src.read_bytes())
    struct.pack_into("<I", data, 24, struct.unpack_from("<I", data, 24)[0] & ~0x80)  # MH_TWOLEVEL
    cleared = tmp_path / "cleared"
    cleared.write_bytes(bytes(data))
    assert not twolevel(cleared)
    assert {sym: lib for _a, lib, sym in objdump_binds(cleared)}["_printf"] == "libSystem"
    (tmp_path / "a").mkdir()
    (lk,) = why(session_of(str(cleared), [("_printf", LIBSYSTEM)], tmp_path / "a"), "_printf")["lookups"]
    assert lk["bind_library"] == LIBSYSTEM and "two-level namespace" in lk["reason"] and lk["scope"] == [LIBSYSTEM]

    prog = "extern int far_fn(void);\nint main(void) { return far_fn(); }\n"
    for flags, how in (([], "the flat-lookup ordinal"), (["-flat_namespace"], "-flat_namespace (no MH_TWOLEVEL)")):
        d = tmp_path / how.split()[0].strip("-")
        d.mkdir()
        exe = d / "nlist"
        _without_bind_opcodes(_lld_x86_64(d, "prog", prog, "-undefined", "dynamic_lookup", *flags), exe)
        nm = subprocess.run([OBJDUMP.replace("objdump", "nm"), "-m", str(exe)], capture_output=True, text=True,
                            check=True).stdout
        assert twolevel(exe) == (not flags) and ("(dynamically looked up)" in nm) == (not flags)
        (lk,) = why(session_of(str(exe), [("_far_fn", LIBC)], d), "_far_fn")["lookups"]
        assert lk["bind_library"] == "<flat lookup>" and f"flat namespace ({how})" in lk["reason"]
        assert lk["scope"][0] == str(exe) and LIBC in lk["scope"]
