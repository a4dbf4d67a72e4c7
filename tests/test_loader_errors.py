"""Load errors read from every loader's text, against oracles that are not gotrace.

* glibc: each error is produced by the real ld.so (programs built here from
  tests/csrc/loaderr, run so that they fail), its exit status 127 is the process's
  own, and what `gotrace explain` says of the files is checked against readelf.
* dyld: messages are built from the verbatim format strings of each dyld tag
  (tests/fixtures/dyld-formats/formats.json, from apple-oss-distributions/dyld), and
  the files explain checks are Apple-built dylibs from PyPI's macOS wheels, read by
  llvm-objdump. Not run on macOS.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import gotrace_cli, require
from tracer.loaderrors.scan import scan

SRC = Path(__file__).resolve().parent / "csrc" / "loaderr"
FORMATS = json.loads((Path(__file__).resolve().parent / "fixtures" / "dyld-formats" / "formats.json").read_text())
UUID = "6A8A0A8C-1111-2222-3333-444455556666"


def _gcc(*args) -> None:
    subprocess.run(["gcc", "-O0", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def glibc_cases(tmp_path_factory) -> dict:
    """Four programs ld.so refuses, each with its real stderr and exit status."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    d = tmp_path_factory.mktemp("loaderr")
    for rel in ("r1", "r2", "u1", "u2"):
        (d / rel).mkdir()
    _gcc("-shared", "-fPIC", "-o", d / "r1/libq.so.1", "-Wl,-soname,libq.so.1", f"-Wl,--version-script={SRC}/q1.map",
         SRC / "q1.c")
    _gcc("-shared", "-fPIC", "-o", d / "r2/libq.so.1", "-Wl,-soname,libq.so.1", f"-Wl,--version-script={SRC}/q2.map",
         SRC / "q2.c")
    _gcc("-shared", "-fPIC", "-o", d / "u1/libq.so.1", "-Wl,-soname,libq.so.1", SRC / "q1.c")
    _gcc("-shared", "-fPIC", "-o", d / "u2/libq.so.1", "-Wl,-soname,libq.so.1", SRC / "q2.c")
    _gcc("-o", d / "prog_v", SRC / "prog.c", d / "r2/libq.so.1")
    _gcc("-o", d / "prog_u", SRC / "prog.c", d / "u2/libq.so.1", "-Wl,-z,lazy")
    (d / "dl").mkdir()
    _gcc("-shared", "-fPIC", "-o", d / "dl/libneedq.so", SRC / "needq.c", d / "r2/libq.so.1")  # needs q_new@Q_2
    _gcc("-shared", "-fPIC", "-o", d / "dl/libundef.so", SRC / "needq.c", d / "u2/libq.so.1")  # nowhere(): nowhere
    subprocess.run(["as", "--32", "-o", d / "tiny32.o", SRC / "tiny32.s"], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-shared", "-o", d / "lib32.so", d / "tiny32.o"], check=True)
    runs = {
        "missing": ([str(d / "prog_v")], {}),
        "version": ([str(d / "prog_v")], {"LD_LIBRARY_PATH": str(d / "r1")}),
        "undefined": ([str(d / "prog_u")], {"LD_LIBRARY_PATH": str(d / "u1")}),
        "class": ([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(d / 'lib32.so')!r})"], {}),
        # dlopen's own words (dlerror through Python's ctypes, RTLD_NOW): a version, then an undefined symbol
        "dl-version": ([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(d / 'dl/libneedq.so')!r})"],
                       {"LD_LIBRARY_PATH": str(d / "r1")}),
        "dl-undefined": ([sys.executable, "-c", f"import ctypes, os; ctypes.CDLL({str(d / 'dl/libundef.so')!r}, "
                          "os.RTLD_NOW)"], {"LD_LIBRARY_PATH": str(d / "u2")}),
    }
    out = {"dir": d}
    for name, (argv, env) in runs.items():
        p = subprocess.run(argv, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, cwd=d)
        out[name] = p
    return out


def _explain(text: str, *args) -> dict:
    p = gotrace_cli("explain", "--json", *args, input=text)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_a_library_found_nowhere(glibc_cases):
    p = glibc_cases["missing"]
    assert p.returncode == 127  # ld.so's own exit status for a fatal load error
    [x] = _explain(p.stderr)["errors"]
    e = x["error"]
    assert (e["source"], e["kind"], e["cause"], e["library"]) == ("glibc", "library-not-loaded", "missing", "libq.so.1")
    assert e["program"] == str(glibc_cases["dir"] / "prog_v")
    assert "`gotrace why SESSION --library libq.so.1`" in " ".join(x["fixes"])


def _readelf_version_defs(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-V", "--wide", str(path)], capture_output=True, text=True, check=True).stdout
    section = out.split(".gnu.version_d", 1)[1].split(".gnu.version_r", 1)[0]
    return re.findall(r"Name: (\S+)", section)[1:]  # the first is the file's own (the base)


def test_a_version_the_library_lacks(glibc_cases):
    p, d = glibc_cases["version"], glibc_cases["dir"]
    assert p.returncode != 0  # ld.so's version check exits 1 (its other fatal errors 127)
    [x] = _explain(p.stderr)["errors"]
    e = x["error"]
    assert (e["kind"], e["version"], e["library"]) == ("version-not-found", "Q_2", str(d / "r1/libq.so.1"))
    assert e["requester"] == str(d / "prog_v")
    newest = _readelf_version_defs(d / "r1/libq.so.1")[-1]
    assert newest == "Q_1"
    assert f"  the newest Q version it defines: {newest}" in x["checks"]
    # which of the program's symbols need Q_2: readelf's version-needs of its dynamic symbols
    syms = subprocess.run(["readelf", "--dyn-syms", "--wide", str(d / "prog_v")], capture_output=True, text=True).stdout
    needing = sorted(re.findall(r"UND (\w+)@Q_2", syms))
    assert needing == ["q_new"]
    assert f"  symbols that need Q_2: {', '.join(needing)}" in x["checks"]
    assert not x["from_text_only"]


def test_an_undefined_symbol_at_its_first_call(glibc_cases):
    p, d = glibc_cases["undefined"], glibc_cases["dir"]
    assert p.returncode == 127
    [x] = _explain(p.stderr)["errors"]
    e = x["error"]
    assert (e["kind"], e["symbol"], e["via"], e["requester"]) == ("symbol-not-found", "q_new", "call",
                                                                     str(d / "prog_u"))
    # the call was lazy: `prog_u 1` calls only q_old and runs against the same library
    ok = subprocess.run([str(d / "prog_u"), "1"], env={"LD_LIBRARY_PATH": str(d / "u1")}, capture_output=True)
    assert ok.returncode == 0


def test_a_library_of_the_other_elf_class(glibc_cases):
    p, d = glibc_cases["class"], glibc_cases["dir"]
    assert p.returncode != 0 and "OSError" in p.stderr  # dlopen's error, through Python's ctypes
    [x] = _explain(p.stderr)["errors"]
    e = x["error"]
    head = (d / "lib32.so").read_bytes()[:5]
    assert head[4] == 1  # EI_CLASS: ELFCLASS32, as the file is
    assert (e["kind"], e["cause"], e["have"], e["via"]) == ("library-not-loaded", "wrong-arch", ["ELFCLASS32"], "dlopen")
    assert e["need"] == ["ELFCLASS64"] == [{1: "ELFCLASS32", 2: "ELFCLASS64"}[open(sys.executable, "rb").read(5)[4]]]
    assert f"tried: {d / 'lib32.so'}" not in x["checks"]
    assert any(c.startswith(f"library: {d / 'lib32.so'}: ELF; i386 ELFCLASS32") for c in x["checks"])


def test_nothing_to_explain_is_exit_1():
    p = gotrace_cli("explain", input="all good\n")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "no loader error" in p.stderr


# -- dyld, built from its own format strings -------------------------------------------------------------------

def _printf(fmt: str, *values) -> str:
    """C's printf for the conversions dyld's messages use (%s %d %llu %p %X …), one value each."""
    vals = iter(values)
    return re.sub(r"%[-0-9.*]*(?:ll|l|h)?[sdupxX%c]", lambda m: "%" if m.group(0) == "%%" else str(next(vals)), fmt)


def _formats(fid: str) -> list[tuple[str, str]]:
    out = []
    for tag, entries in FORMATS["dyld"].items():
        for e in entries:
            if e["id"] == fid and (tag, e["format"]) not in out:
                out.append((tag, e["format"]))
    assert out, fid
    return out


@pytest.mark.parametrize("tag,fmt", _formats("err.library_not_loaded"))
def test_library_not_loaded_of_every_dyld(tag, fmt):
    """dyld's own "Library not loaded" of each tag, as halt() prints it (dyld2: "dyld: ", dyld4: "dyld[PID]: ")."""
    n = fmt.count("%")
    values = {3: ("@rpath/libfoo.dylib", "/Users/me/prog", "image not found"),
              2: ("@rpath/libfoo.dylib", "/Users/me/prog"),
              5: ("@rpath/libfoo.dylib", UUID, "/Users/me/prog", "", "tried: '/opt/lib/libfoo.dylib' (no such file)"),
              4: ("@rpath/libfoo.dylib", UUID, "/Users/me/prog", "tried: '/opt/lib/libfoo.dylib' (no such file)")}[n]
    prefix = "dyld: " if tag < "dyld-9" and not tag.startswith("dyld-1") else "dyld[4242]: "
    text = prefix + _printf(fmt, *values) + "\nsome program output\n"
    [e] = scan(text).errors
    assert (e.kind, e.library, e.requester) == ("library-not-loaded", "@rpath/libfoo.dylib", "/Users/me/prog")
    assert e.pid == (4242 if prefix != "dyld: " else None)
    assert e.cause == "missing"
    if "tried" in text:
        assert e.tried == [("/opt/lib/libfoo.dylib", "no such file")]


# dyld-1323's variant whose first line is its caller's text has no marker to find; its other forms are here
@pytest.mark.parametrize("tag,fmt", [f for f in _formats("err.symbol_not_found") if f[1].startswith("Symbol not found")])
def test_symbol_not_found_of_every_dyld(tag, fmt):
    n = fmt.count("%s")
    values = {4: ("_foo", "/Users/me/prog", " (which was built for Mac OS X 10.15)", "/usr/lib/libbar.dylib"),
              3: ("_foo", "/Users/me/prog", "/usr/lib/libbar.dylib"),
              6: ("_foo", UUID, "/Users/me/prog", "", UUID, "/usr/lib/libbar.dylib")}.get(n)
    if "weak-def" in fmt:
        values = ("_foo", UUID, "/Users/me/prog")
    [e] = scan("dyld[7]: " + _printf(fmt, *values)).errors
    assert (e.kind, e.symbol, e.requester) == ("symbol-not-found", "_foo", "/Users/me/prog")
    if "weak-def" not in fmt:
        assert e.library == "/usr/lib/libbar.dylib"


def test_flat_namespace_and_arch_reasons_of_every_dyld():
    for tag, fmt in _formats("err.symbol_not_found_flat"):
        if "%s" not in fmt:
            continue
        values = ("_PyFoo", "/x/ext.so") if fmt.count("%s") == 2 else ("_PyFoo",)
        text = "ImportError: dlopen(/x/ext.so, 0x0002): " + _printf(fmt, *values)
        [e] = scan(text).errors
        assert (e.kind, e.symbol) == ("flat-namespace", "_PyFoo"), (tag, text)
        assert e.requester == "/x/ext.so"
    for tag, fmt in _formats("reason.incompatible_arch"):
        reason = _printf(fmt, "arm64", "x86_64")
        text = (f"dyld[9]: Library not loaded: /opt/homebrew/lib/libz.dylib\n  Referenced from: <{UUID}> /usr/local/prog\n"
                f"  Reason: tried: '/opt/homebrew/lib/libz.dylib' ({reason}), '/usr/lib/libz.dylib' (no such file)")
        [e] = scan(text).errors
        assert e.cause == "wrong-arch", (tag, reason)
        if "have" in reason:
            assert (e.have, e.need) == (["arm64"], ["x86_64"])


def test_dyld3_closure_errors():
    for tag, fmt in _formats("err.dyld3_dependent_not_found"):
        [e] = scan("dyld: " + _printf(fmt, "@rpath/libfoo.dylib", "/Users/me/prog", "")).errors
        assert (e.kind, e.library, e.requester) == ("library-not-loaded", "@rpath/libfoo.dylib", "/Users/me/prog"), tag
    start = [v for _t, v in _formats("err.dyld3_tried_list_start")]
    fmt = dict(_formats("err.dyld3_dependent_not_found"))["dyld-750.6"]
    for words, cause in (("didn't find", "missing"), ("invalid", "bad-file")):
        rest = next(v for v in start if words in v) + "'/a/libfoo.dylib' '/b/libfoo.dylib'"
        [e] = scan("dyld: " + _printf(fmt, "@rpath/libfoo.dylib", "/Users/me/prog", rest)).errors
        assert (e.cause, e.tried) == (cause, [("/a/libfoo.dylib", words), ("/b/libfoo.dylib", words)])
    for tag, fmt in _formats("err.symbol_not_found_dyld3"):
        [e] = scan("dyld: " + _printf(fmt, "_foo", "/usr/lib/libbar.dylib", "/Users/me/prog")).errors
        assert (e.kind, e.symbol, e.library, e.requester) == ("symbol-not-found", "_foo", "/usr/lib/libbar.dylib",
                                                                "/Users/me/prog"), tag


# -- what explain checks of Apple-built files ---------------------------------------------------------------------

def _objdump_rpaths(path: Path) -> list[str]:
    out = subprocess.run(["llvm-objdump", "--macho", "--all-headers", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return re.findall(r"cmd LC_RPATH\n\s+cmdsize \d+\n\s+path (\S+) \(offset", out)


def _objdump_cpu(path: Path) -> str:
    out = subprocess.run(["llvm-objdump", "--macho", "--private-header", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {"X86_64": "x86_64", "ARM64": "arm64"}[out.split("MH_MAGIC_64", 1)[1].split()[0]]


def test_explain_checks_an_apple_built_dylib():
    from macho_wheels import wheel_file

    arm, intel = wheel_file("xgboost-arm64"), wheel_file("xgboost-x86_64")
    assert (_objdump_cpu(arm), _objdump_cpu(intel)) == ("arm64", "x86_64")
    rpaths = _objdump_rpaths(arm)
    assert rpaths  # /opt/homebrew/opt/libomp/lib
    # the failure Mac users of xgboost paste: its @rpath/libomp.dylib found nowhere, in dyld-1042's words
    fmt = dict(_formats("err.library_not_loaded"))["dyld-1042.1"]
    tried = ", ".join(f"'{r}/libomp.dylib' (no such file)" for r in rpaths)
    text = "dyld[501]: " + _printf(fmt, "@rpath/libomp.dylib", UUID, arm, "", "tried: " + tried)
    [x] = _explain(text)["errors"]
    assert f"  its LC_RPATHs: {', '.join(rpaths)}" in x["checks"]
    assert any(c.startswith(f"requester: {arm}: Mach-O; arm64;") for c in x["checks"])
    assert not x["from_text_only"]
    # an arm64 process that found the Intel build: explain says the file has no arm64 slice
    reason = _printf(dict(_formats("reason.incompatible_arch"))["dyld-940"], "x86_64", "arm64e' or 'arm64")
    text = (f"dyld[502]: Library not loaded: @rpath/libxgboost.dylib\n  Referenced from: <{UUID}> /Users/me/app\n"
            f"  Reason: tried: '{intel}' ({reason})")
    [x] = _explain(text)["errors"]
    assert x["error"]["cause"] == "wrong-arch" and x["error"]["need"] == ["arm64e", "arm64"]
    assert f"  it has no slice for arm64e or arm64 (it has {_objdump_cpu(intel)})" in x["checks"]
    assert "Homebrew under /opt/homebrew" in " ".join(x["fixes"])


def test_explain_checks_exports_against_llvm_nm():
    from macho_wheels import wheel_file

    arm = wheel_file("xgboost-arm64")
    nm = subprocess.run(["llvm-nm", "--extern-only", "--defined-only", "--just-symbol-name", str(arm)],
                        capture_output=True, text=True, check=True).stdout.split()
    have = next(s for s in nm if s.startswith("_XGB"))
    assert "_XGBNoSuchThing" not in nm
    for sym, says in ((have, f"  it exports {have}"), ("_XGBNoSuchThing", "  it does not export _XGBNoSuchThing")):
        text = f"dyld[3]: Symbol not found: {sym}\n  Referenced from: <{UUID}> /Users/me/app\n  Expected in:     <{UUID}> {arm}"
        [x] = _explain(text)["errors"]
        assert says in x["checks"], x["checks"]


# -- gotrace import dyld-print: every line read or counted -------------------------------------------------------

def _import(tmp_path, text: bytes, *extra) -> tuple[subprocess.CompletedProcess, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "dyld.log"
    log.write_bytes(text)
    out = tmp_path / "s"
    return gotrace_cli("import", "dyld-print", str(log), "-o", str(out), *extra), out


def _dyld2_log() -> str:
    loaded = dict(_formats("lib.loaded"))["dyld-433.5"]
    bind = [f for t, f in _formats("bind.eager") if f.startswith("dyld: %sbind") and f.endswith("0x%08lX\n")][0]
    lines = [_printf(loaded, p) for p in ("/Users/me/prog", "/usr/lib/libSystem.B.dylib", "/usr/lib/libz.1.dylib")]
    lines.append(_printf(bind, "", "prog", "100001000", "libSystem.B.dylib", "_printf", "100001000", "7FFF2034E000"))
    lines.append(_printf(bind, "lazy ", "prog", "100001008", "libz.1.dylib", "_inflate", "100001008", "7FFF2034F000"))
    lines.append("program output\n")
    lines += [_printf(loaded, p) for p in ("/bin/ls", "/usr/lib/libutil.dylib", "/usr/lib/libSystem.B.dylib")]
    lines.append(_printf(bind, "", "ls", "100002000", "libutil.dylib", "_fparseln", "100002000", "7FFF20350000"))
    lines.append("dyld: a line no form knows\n")
    return "".join(lines)


def test_a_dyld2_log_is_read_whole(tmp_path):
    from tracer.session.reader import load_session

    p, out = _import(tmp_path, _dyld2_log().encode())
    assert p.returncode == 0, p.stderr
    s = load_session(out)
    assert sorted(s.processes["exe"]) == ["/Users/me/prog", "/bin/ls"]  # "/usr/lib/libSystem.B.dylib" again: an exec
    ev = s.events.sort_values("ts_ns")
    assert list(zip(ev["exe"], ev["requester"], ev["symbol"], ev["provider"], ev["kind"].astype(str))) == [
        ("/Users/me/prog", "/Users/me/prog", "_printf", "/usr/lib/libSystem.B.dylib", "eager"),
        ("/Users/me/prog", "/Users/me/prog", "_inflate", "/usr/lib/libz.1.dylib", "lazy"),
        ("/bin/ls", "/bin/ls", "_fparseln", "/usr/lib/libutil.dylib", "eager")]
    assert len(s.images) == 6
    d = s.meta["dyld_print"]
    assert (d["dyld_lines_read"], d["dyld_lines_unread"], d["other_lines"]) == (9, 1, 1)
    assert "not read: dyld: a line no form knows" in p.stderr and "1 other line" in p.stderr


def test_crlf_and_a_result_written_apart(tmp_path):
    """A log saved with CRLF reads as with LF; dyld-1122's "dlerror()" without a newline, then " => NULL"."""
    from tracer.session.reader import load_session

    lines = [f"dyld[31223]: <{UUID}> /Users/me/prog", f"dyld[31223]: <{UUID}> /usr/lib/libSystem.B.dylib",
             "dyld[31223]: <prog/bind#0> -> 0x18e2b1000 (libSystem.B.dylib/_printf)",
             "dyld[31223]: dlerror()dyld[31223]:  => NULL",
             "dyld[31223]: <prog/bind#1> -> 0x18e2b2000 (libSystem.B.dylib/_puts)"]
    for eol in (b"\n", b"\r\n"):
        p, out = _import(tmp_path / eol.hex(), eol.join(x.encode() for x in lines) + eol)
        assert p.returncode == 0, p.stderr
        s = load_session(out)
        assert sorted(s.events["symbol"]) == ["_printf", "_puts"]
        assert set(s.events["provider"]) == {"/usr/lib/libSystem.B.dylib"}
        d = s.meta["dyld_print"]
        assert (d["dyld_lines_read"], d["dyld_lines_unread"]) == (6, 0)


def test_libraries_alone_keep_every_library(tmp_path):
    from tracer.session.reader import load_session

    libs = ["/Users/me/prog", *(f"/usr/lib/lib{c}.dylib" for c in "abcdefghij")]
    p, out = _import(tmp_path, "".join(f"dyld[77]: <{UUID}> {x}\n" for x in libs).encode())
    assert p.returncode == 0, p.stderr
    s = load_session(out)
    assert list(s.images["path"]) == libs and s.images["load_base"].isna().all()
    assert "without DYLD_PRINT_BINDINGS" in p.stderr


def test_a_file_with_no_dyld_line_is_refused(tmp_path):
    p, out = _import(tmp_path, b"hello\nworld\n")
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "nothing to import" in p.stderr
    assert not out.exists()


def test_an_aborted_process_leads_the_report(tmp_path):
    text = (f"dyld[1652]: <{UUID}> /Users/me/prog\n"
            f"dyld[1652]: Library not loaded: @rpath/libfoo.dylib\n  Referenced from: <{UUID}> /Users/me/prog\n"
            "  Reason: tried: '/usr/local/lib/libfoo.dylib' (no such file), '/usr/lib/libfoo.dylib' (no such file, "
            "not in dyld cache)\n")
    p, out = _import(tmp_path, text.encode())
    assert p.returncode == 0, p.stderr
    assert "load error (library-not-loaded, missing) in 1 process" in p.stderr
    assert "SIP-protected program drops" not in p.stderr
    r = gotrace_cli("report", str(out), "--json")
    rep = json.loads(r.stdout)
    [g] = rep["load_errors"]
    assert g["pids"] == [1652] and g["error"]["tried"][1]["reason"] == "no such file, not in dyld cache"
    assert not any("SIP-protected program drops" in n for n in rep["notes"])
    w = gotrace_cli("why", str(out), "--library", "libfoo.dylib")
    assert w.returncode == 0 and "there is no file at any of the 2 paths dyld tried" in w.stdout
    x = gotrace_cli("explain", str(out), "--json")
    assert json.loads(x.stdout)["errors"][0]["error"]["pid"] == 1652


# -- real messages people published from real Macs and Linux machines (tests/fixtures/dyld-logs/README.md) ---------

LOGS = Path(__file__).resolve().parent / "fixtures" / "dyld-logs"
INDEX = json.loads((LOGS / "index.json").read_text())
KIND = {"image-not-found": {"library-not-loaded"}, "cannot-open": {"library-not-loaded"},
        "wrong-arch": {"library-not-loaded"}, "code-signature": {"library-not-loaded"},
        "wrong-elf-class": {"library-not-loaded"}, "library-not-loaded": {"library-not-loaded"},
        "lazy-binding-failed": {"symbol-not-found"}, "undefined-symbol": {"symbol-not-found"},
        "symbol-not-found": {"symbol-not-found", "flat-namespace"}, "flat-namespace": {"flat-namespace"},
        "version-not-found": {"version-not-found"}, "other": {"dyld-cache", "symbol-not-found"},
        "relocation-error": {"symbol-not-found"}, "missing-uuid": {"missing-uuid"}}
# the cause each kind the reader wrote down comes to (the rest depend on the message)
CAUSE = {"missing-uuid": "bad-file", "image-not-found": "missing", "cannot-open": "missing", "wrong-arch": "wrong-arch",
         "code-signature": "code-signature", "wrong-elf-class": "wrong-arch", "lazy-binding-failed": "lazy",
         "flat-namespace": "undefined", "undefined-symbol": "undefined", "version-not-found": "old-version"}
# what gotrace does not read yet, said here rather than passed over: Rosetta's own .ips JSON report
NOT_READ = {"33-rosetta-termination-json-ips.log"}


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_published_errors_read_as_their_reader_counted(entry):
    """Each published log's errors, field by field, against the counts a reader wrote down (index.json)."""
    got = scan((LOGS / entry["file"]).read_bytes().decode("utf-8", "replace")).errors
    want = entry.get("errors") or []
    if entry["file"] in NOT_READ:
        assert got == [] and want
        return
    assert len(got) == len(want), [(g.kind, g.library, g.symbol) for g in got]
    for g, w in zip(got, want):
        assert g.kind in KIND[w["kind"]], (g.kind, w["kind"])
        if w["kind"] in CAUSE:
            assert g.cause == CAUSE[w["kind"]], (g.cause, w["kind"])
        if w["kind"] == "relocation-error":  # recorded field by field as gotrace names them
            assert (g.symbol, g.version, g.library, g.requester, g.program) == (
                w["symbol"], w["version"], w["library"], w["requester"], w["program"])
            continue
        glibc = g.source == "glibc"
        lib = w.get("library")
        if lib and lib != "flat namespace" and not (glibc and g.kind == "symbol-not-found"):
            assert g.library == lib
        if w.get("symbol"):
            assert g.symbol == w["symbol"]
        req = w.get("requester")
        if req:
            mine = g.program if glibc and (g.kind == "library-not-loaded" or g.requester != req) else g.requester
            assert mine == req
        if glibc and g.kind == "symbol-not-found" and lib:
            assert g.requester == lib  # "symbol lookup error: OBJECT: undefined symbol": the object that asked
        if w.get("tried"):
            assert [list(t) for t in g.tried] == [list(t) for t in w["tried"]]
        if w.get("have"):
            assert g.have == (w["have"] if isinstance(w["have"], list) else [w["have"]])


@pytest.mark.parametrize("entry", [e for e in INDEX if not e["file"].startswith("glibc")],
                         ids=[e["file"] for e in INDEX if not e["file"].startswith("glibc")])
def test_published_logs_import_as_their_reader_counted(entry, tmp_path):
    """`gotrace import dyld-print` of each published log: its libraries, bindings, processes and load
    errors as a reader counted them (index.json), and every line read or counted."""
    from tracer.session.reader import load_session

    out = tmp_path / "s"
    p = gotrace_cli("import", "dyld-print", str(LOGS / entry["file"]), "-o", str(out))
    if entry["file"] in NOT_READ:
        assert p.returncode == 1 and "nothing to import" in p.stderr and not out.exists()
        return
    assert p.returncode == 0, p.stderr
    s = load_session(out)
    binds = sum(entry["bindings"].values()) if isinstance(entry["bindings"], dict) else entry["bindings"]
    assert len(s.events) == binds
    assert len(s.errors) == len(entry["errors"] or [])
    assert s.processes["pid"].nunique() == entry["pids"]
    if entry["libraries"]:
        assert len(s.images) == entry["libraries"]
    d = s.meta["dyld_print"]
    assert d["dyld_lines_unread"] == 0 and d["ambiguous_lines"] == 0 and d["lost_lines"] == 0
    if not entry["pid_values"]:  # dyld2's lines, each read once
        assert d["dyld_lines_read"] == d["line_kinds"]["dyld"]
    if entry["file"].startswith("32-"):  # the crash reporter's '' paths: empty names, not quotes
        assert [e for e in s.errors["library"]] == ["", "", ""]
    text = (LOGS / entry["file"]).read_bytes().decode("utf-8", "replace").splitlines()
    blank = sum(1 for x in text if not x.strip())
    assert d["lines"] == len(text) == entry["lines_total"]
    # every line once: dyld's, a load error's, other text or blank — none dropped
    k = d["line_kinds"]
    assert k["dyld"] + k["error"] + k["other"] + k["blank"] == len(text) and k["blank"] == blank
    if not entry.get("embedded_dyld_lines") and entry["dyld_lines"]:
        assert k["dyld"] + k["error"] == entry["dyld_lines"]
    if not entry.get("embedded_dyld_lines") and not entry["file"].split("-")[1] == "crash":
        assert d["other_lines"] <= entry["other_lines"] + 1  # a shell prompt line the reader may have put apart


@pytest.mark.parametrize("backend", ["ld-debug", "bpf"])
def test_explain_a_traced_run_the_loader_stopped(glibc_cases, backend, tmp_path):
    """A live session of a program ld.so refused: explain SESSION names the library, from what the
    capture saw (exit 127, the DT_NEEDED found nowhere), as ld.so's own stderr said it."""
    if backend == "bpf":
        from conftest import require_bpf

        require_bpf()
    d, p = glibc_cases["dir"], glibc_cases["missing"]
    out = tmp_path / "s"
    b = gotrace_cli("bind", "--backend", backend, "-o", str(out), "--", str(d / "prog_v"), env={
        **__import__("os").environ, "LD_LIBRARY_PATH": ""})
    assert b.returncode == p.returncode == 127, b.stderr
    [said] = scan(p.stderr).errors  # ld.so's own words, from the untraced run
    x = gotrace_cli("explain", str(out), "--json")
    assert x.returncode == 0, x.stderr
    [e] = [r["error"] for r in json.loads(x.stdout)["errors"]]
    assert (e["kind"], e["library"]) == (said.kind, said.library) == ("library-not-loaded", "libq.so.1")
    assert e["requester"] == str(d / "prog_v")


# -- Mach-O cases built here with clang and ld64.lld (tests/binaries.py's tools) -------------------------------------

@pytest.fixture(scope="module")
def macho_cases(tmp_path_factory) -> Path:
    from binaries import CLANG, LLD

    require(shutil.which(CLANG) is not None and shutil.which(LLD) is not None,
            f"{CLANG} and {LLD} are not installed (bash scripts/setup.sh installs them)")
    d = tmp_path_factory.mktemp("macho-loaderr")
    tbd = Path(__file__).resolve().parent / "fixtures" / "macho" / "libSystem.tbd"

    def cc(src: str, arch: str) -> Path:
        obj = d / f"{src}-{arch}.o"
        subprocess.run([CLANG, "-target", f"{arch}-apple-macos11", "-c", str(SRC / f"{src}.c"), "-o", str(obj)],
                       check=True)
        return obj

    def ld(out: str, arch: str, *args) -> None:
        subprocess.run([LLD, "-arch", arch, "-platform_version", "macos", "11.0", "11.0", "-o", str(d / out),
                        *map(str, args)], check=True, capture_output=True)

    for src in ("foo1", "foo2"):
        for arch in ("x86_64", "arm64"):
            ld(f"lib{src}-{arch}.dylib", arch, "-dylib", "-install_name", "@rpath/libfoo.dylib", cc(src, arch))
    ld("usefoo", "x86_64", cc("usefoo", "x86_64"), d / "libfoo1-x86_64.dylib", tbd)
    ld("usefoo-rpath", "x86_64", "-rpath", "@loader_path/lib", cc("usefoo", "x86_64"), d / "libfoo1-x86_64.dylib", tbd)
    (d / "lib").mkdir()
    return d


def _objdump(path: Path) -> str:
    return subprocess.run(["llvm-objdump", "--macho", "--all-headers", str(path)], capture_output=True, text=True,
                          check=True).stdout


def test_an_rpath_name_and_no_lc_rpath(macho_cases):
    d = macho_cases
    head = _objdump(d / "usefoo")
    assert "name @rpath/libfoo.dylib" in head and "LC_RPATH" not in head  # llvm-objdump: the facts explain checks
    fmt = dict(_formats("err.library_not_loaded"))["dyld-1042.1"]
    reason = dict(_formats("reason.no_lc_rpath"))["dyld-1122.1"]
    text = "dyld[800]: " + _printf(fmt, "@rpath/libfoo.dylib", UUID, d / "usefoo", "", reason)
    [x] = _explain(text)["errors"]
    assert x["error"]["cause"] == "no-rpath"
    assert "  it has no LC_RPATH: an @rpath name cannot be found" in x["checks"]
    assert any(f.startswith("give the requester an LC_RPATH") for f in x["fixes"])
    [bare] = _explain(text, "--no-look")["errors"]  # the same message without looking: the text alone
    assert bare["checks"] == [] and bare["from_text_only"] and bare["why"] == x["why"]


def test_an_arm64_library_for_an_x86_64_program(macho_cases):
    d = macho_cases
    rpaths = _objdump_rpaths(d / "usefoo-rpath")
    assert rpaths == ["@loader_path/lib"]
    target = d / "lib" / "libfoo.dylib"
    tried = f"tried: '{target}' (no such file)"
    text = f"dyld[801]: Library not loaded: @rpath/libfoo.dylib\n  Referenced from: <{UUID}> {d / 'usefoo-rpath'}\n  Reason: {tried}"
    [x] = _explain(text)["errors"]
    assert f"  its LC_RPATHs: {', '.join(rpaths)}" in x["checks"]
    assert f"  @rpath → {target}: missing" in x["checks"]
    shutil.copy(d / "libfoo1-arm64.dylib", target)
    try:
        assert _objdump_cpu(target) == "arm64"
        reason = _printf(dict(_formats("reason.incompatible_arch"))["dyld-940"], "arm64", "x86_64")
        [x] = _explain(text.replace("(no such file)", f"({reason})"))["errors"]
        assert x["error"]["cause"] == "wrong-arch"
        assert f"  @rpath → {target}: Mach-O; arm64; install name @rpath/libfoo.dylib" in x["checks"]
        assert "  it has no slice for x86_64 (it has arm64)" in x["checks"]
        assert "Rosetta" in x["likely"]
    finally:
        target.unlink()


def test_a_symbol_the_library_no_longer_exports(macho_cases):
    d = macho_cases
    for lib, exported in (("libfoo1-x86_64.dylib", True), ("libfoo2-x86_64.dylib", False)):
        nm = subprocess.run(["llvm-nm", "--extern-only", "--defined-only", "--just-symbol-name", str(d / lib)],
                            capture_output=True, text=True, check=True).stdout.split()
        assert ("_foo_new" in nm) == exported
        fmt = dict(_formats("err.symbol_not_found"))["dyld-1042.1"]
        text = "dyld[802]: " + _printf(fmt, "_foo_new", UUID, d / "usefoo", "", UUID, d / lib)
        [x] = _explain(text)["errors"]
        says = "  it exports _foo_new" if exported else "  it does not export _foo_new"
        assert says in x["checks"], x["checks"]


def test_a_reason_wrapped_by_a_terminal_or_a_page():
    """A tried list broken inside a path (a fixed-width log) or after its separator (a page's wrap)."""
    paths = ["/usr/local/opt/libomp/lib/libomp.dylib", "/System/Volumes/Preboot/Cryptexes/OS/usr/local/opt/libomp/lib/libomp.dylib",
             "/usr/lib/libomp.dylib"]
    whole = "tried: " + ", ".join(f"'{p}' (no such file)" for p in paths)
    head = f"dyld[5]: Library not loaded: @rpath/libomp.dylib\n  Referenced from: <{UUID}> /Users/me/prog\n  Reason: "
    for cut in (whole.index("Cryptexes") + 3, whole.index(", '/usr/lib") + 2, whole.index("(no such") + 4):
        text = head + whole[:cut] + "\n" + whole[cut:].lstrip() + "\nprogram output\n"
        s = scan(text)
        [e] = s.errors
        assert [p for p, _r in e.tried] == paths, (cut, e.tried)
        assert all(r == "no such file" for _p, r in e.tried)
        assert sorted(s.lines) == [0, 1, 2, 3]  # the last line is the program's


# -- every DYLD_PRINT_* line of every dyld release is read (never counted as unknown) --------------------------------

def _fill(fmt: str) -> str:
    """A line dyld would print with this format: each conversion given a value of its kind, a %s one by
    what stands around it (<UUID>, leaf/, /symbol, a path)."""
    out, i, prot = [], 0, iter("rwxrwxrwx")
    for m in re.finditer(r"%[-0-9.*]*(?:ll|l|h)?([sdiupxXc%])", fmt):
        out.append(fmt[i:m.start()])
        conv, before, after = m.group(1), fmt[:m.start()][-1:], fmt[m.end():m.end() + 1]
        if conv == "%":
            out.append("%")
        elif conv == "s":
            if after == "(" and not fmt[:m.start()].strip():  # dyld2's APIs print their own name: __func__
                out.append("dlopen")
            elif "*" in m.group(0) or re.match(r"%\d+s", m.group(0)):
                out.append("__TEXT")
            elif before == "<" and after == ">":
                out.append(UUID)
            elif after in "/+":
                out.append("libfoo.dylib")
            elif before == "/":
                out.append("_foo")
            else:
                out.append("/usr/lib/libfoo.dylib")
        elif conv == "c":
            out.append(next(prot))
        elif conv == "p":
            out.append("0x10a2b")
        elif conv in "xX":
            out.append("1A2B" if conv == "X" else "1a2b")
        else:
            out.append("3")
        i = m.end()
    out.append(fmt[i:])
    return "".join(out).rstrip("\n")


def _print_forms(prefix):
    skip = ("err.", "final.", "prefix.", "payload.", "decor.", "reason.", "env.")
    for tag, entries in FORMATS["dyld"].items():
        for e in entries:
            if e["id"].startswith(skip) or "\n" in e["format"].rstrip("\n"):
                continue
            dyld4 = tag >= "dyld-9" or tag.startswith("dyld-1")
            if prefix == "dyld4" and dyld4 and e.get("prefix") == "dyld[%d]: ":
                yield tag, e
            elif prefix == "dyld2" and not dyld4 and (e.get("prefix") == "dyld: " or e.get("enabled_by")):
                yield tag, e


def test_every_dyld4_print_line_is_read():
    from tracer.capture.dyld_print import lines as L

    unread = []
    for tag, e in _print_forms("dyld4"):
        body = _fill(e["format"])
        if L.parse(body)[0] == L.UNKNOWN or not L.viable(body, complete=True):
            unread.append((tag, e["id"], body))
    assert unread == []


def test_every_dyld2_print_line_is_read():
    from tracer.capture.dyld_print.dyld2 import Dyld2Log

    unread = []
    for tag, e in _print_forms("dyld2"):
        line = _fill(e["format"])
        log = Dyld2Log()
        ok = log.take(line[6:], 1) if line.startswith("dyld: ") else log.take_bare(line)
        if not ok:
            unread.append((tag, e["id"], line))
    assert unread == []


def test_an_ld_debug_capture_keeps_ld_sos_fatal_message(glibc_cases, tmp_path):
    """glibc's LD_DEBUG on stderr with the failure at its end: import ld-debug keeps the error, and the
    report leads with it."""
    d = glibc_cases["dir"]
    p = subprocess.run([str(d / "prog_v")], env={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(d / "r1"),
                                                   "LD_DEBUG": "bindings"}, capture_output=True, text=True)
    assert p.returncode != 0 and "binding file" in p.stderr
    log = tmp_path / "stderr.log"
    log.write_text(p.stderr)
    out = tmp_path / "s"
    r = gotrace_cli("import", "ld-debug", str(log), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "load error (version-not-found, old-version)" in r.stderr
    rep = json.loads(gotrace_cli("report", str(out), "--json").stdout)
    [g] = rep["load_errors"]
    assert (g["error"]["version"], g["error"]["library"]) == ("Q_2", str(d / "r1/libq.so.1"))
    assert rep["bindings"]["total"] > 0  # the bindings LD_DEBUG printed before ld.so gave up


def test_a_failed_dlopen_in_dyld_print_apis(tmp_path):
    """DYLD_PRINT_APIS: dlopen's NULL result carries dlerror()'s text (dyld-940's err.dlopen inside
    api.dlopen_result): a load error of that process, with its program."""
    from tracer.session.reader import load_session

    call = _printf(dict(_formats("api.dlopen"))["dyld-940"], "/x/_ext.so", "00000002")
    result_fmt = [f for t, f in _formats("api.dlopen_result") if "NULL" in f and t == "dyld-940"][0]
    reason = _printf(dict(_formats("reason.incompatible_arch"))["dyld-940"], "x86_64", "arm64e' or 'arm64")
    dlerror = _printf(dict(_formats("err.dlopen"))["dyld-940"], "/x/_ext.so", "0002", f"tried: '/x/_ext.so' ({reason})")
    lines = [f"dyld[10]: <{UUID}> /usr/bin/python3", "dyld[10]: " + call,
             "dyld[10]: " + _printf(result_fmt, "_ext.so", dlerror)]
    p, out = _import(tmp_path, ("\n".join(lines) + "\n").encode())
    assert p.returncode == 0, p.stderr
    s = load_session(out)
    [e] = frame_rows_of(s.errors)
    assert (e["pid"], e["exe"], e["via"], e["library"], e["cause"]) == (10, "/usr/bin/python3", "dlopen", "/x/_ext.so",
                                                                         "wrong-arch")
    assert s.meta["dyld_print"]["dyld_lines_unread"] == 0


def frame_rows_of(frame) -> list[dict]:
    from tracer.session.reader import frame_rows

    return frame_rows(frame)


def test_rosetta_from_dyld_and_the_crash_report(tmp_path):
    """A process is translated when its crash report says "(Translated)", or when dyld refused an arm64 file
    for a process that loads x86_64 alone (dyld's own "need 'x86_64'")."""
    from tracer.session.reader import load_session

    for name in ("24-dyld4-dlopen-wrong-arch-rosetta-python.log", "32-crash-translated-empty-paths-rosetta.log"):
        out = tmp_path / name
        p = gotrace_cli("import", "dyld-print", str(LOGS / name), "-o", str(out))
        assert p.returncode == 0, p.stderr
        assert list(load_session(out).processes["translator"]) == ["rosetta"], name
    # an arm64 process refusing an x86_64 file is not translated
    out = tmp_path / "native"
    p = gotrace_cli("import", "dyld-print", str(LOGS / "42-dyld4-dlopen-wrong-arch-need-or.log"), "-o", str(out))
    assert p.returncode == 0 and load_session(out).processes["translator"].isna().all()


def test_a_library_dlopen_loads_is_not_the_program(tmp_path):
    from tracer.session.reader import load_session

    lines = ['dyld[5]: dlopen("/x/libplug.dylib", 0x00000001)', f"dyld[5]: <{UUID}> /x/libplug.dylib",
             "dyld[5]:       dlopen(libplug.dylib) => 0x10a2b"]
    p, out = _import(tmp_path, ("\n".join(lines) + "\n").encode())
    assert p.returncode == 0, p.stderr
    s = load_session(out)
    assert len(s.processes) == 1 and s.processes["exe"].isna().all()
    assert list(s.images["path"]) == ["/x/libplug.dylib"]


@pytest.mark.parametrize("tag", ["dyld-940", "dyld-1122.1", "dyld-1231.3", "dyld-1378"])
def test_dyld_searches_from_its_own_account(tag, tmp_path):
    """DYLD_PRINT_SEARCHING in each dyld4 release's own words: the searches table keeps every path in dyld's
    order with how dyld came to it, and `why --library` answers from it (a search that found nothing
    with its load error)."""
    from tracer.session.reader import load_session

    f = {e["id"] + "|" + e["format"]: e["format"] for e in FORMATS["dyld"][tag] if e["id"].startswith("search.")}
    find = next(v for k, v in f.items() if k.startswith("search.find_path|"))
    possible = next(v for k, v in f.items() if k.startswith("search.possible_path|"))
    rpath = next(v for k, v in f.items() if k.startswith("search.lc_rpath|"))
    disk = next(v for k, v in f.items() if k.startswith("search.found|") and "dylib-from-disk: " in v)
    cache = next(v for k, v in f.items() if k.startswith("search.found|") and "dylib-from-cache: " in v)
    none = next(v for k, v in f.items() if k.startswith("search.not_found|") and "%s" in v)
    body = [f"<{UUID}> /Users/me/prog",
            _printf(find, "@rpath/libfoo.dylib"), _printf(rpath, "@loader_path/../lib", "/Users/me/prog"),
            _printf(possible, "@path expansion", "/Users/lib/libfoo.dylib"),
            _printf(possible, "@path expansion", "/opt/lib/libfoo.dylib"), _printf(disk, "/opt/lib/libfoo.dylib"),
            f"<{UUID}> /opt/lib/libfoo.dylib",
            _printf(find, "/usr/lib/libSystem.B.dylib"), _printf(possible, "original path", "/usr/lib/libSystem.B.dylib"),
            _printf(cache, "00A2", "/usr/lib/libSystem.B.dylib"),
            _printf(find, "@rpath/libbar.dylib"), _printf(possible, "@path expansion", "/Users/lib/libbar.dylib"),
            _printf(none, "@rpath/libbar.dylib"),
            "Library not loaded: @rpath/libbar.dylib"]
    text = "".join(f"dyld[20]: {b.rstrip(chr(10))}\n" for b in body)
    text += f"  Referenced from: <{UUID}> /Users/me/prog\n  Reason: tried: '/Users/lib/libbar.dylib' (no such file)\n"
    p, out = _import(tmp_path, text.encode())
    assert p.returncode == 0, p.stderr
    s = load_session(out)
    assert s.meta["dyld_print"]["dyld_lines_unread"] == 0
    rows = [(r["library"], r["path"], r["outcome"]) for r in frame_rows_of(s.searches.sort_values(["search", "step"]))]
    assert rows == [("@rpath/libfoo.dylib", "/Users/lib/libfoo.dylib", "passed over"),
                    ("@rpath/libfoo.dylib", "/opt/lib/libfoo.dylib", "found"),
                    ("/usr/lib/libSystem.B.dylib", "/usr/lib/libSystem.B.dylib", "found"),
                    ("@rpath/libbar.dylib", "/Users/lib/libbar.dylib", "not found")]
    assert "LC_RPATH '@loader_path/../lib' from /Users/me/prog" in s.searches["via"].iloc[0]
    w = gotrace_cli("why", str(out), "--library", "libfoo.dylib", "--json")
    [sr] = json.loads(w.stdout)["searches"]
    assert sr["found"] == "/opt/lib/libfoo.dylib" and [st["path"] for st in sr["steps"]] == [
        "/Users/lib/libfoo.dylib", "/opt/lib/libfoo.dylib"]
    w = gotrace_cli("why", str(out), "--library", "libbar.dylib")
    assert w.returncode == 0 and "dyld searched @rpath/libbar.dylib: found nowhere" in w.stdout
    assert "library-not-loaded" in w.stdout  # and its load error, explained


def test_dlopens_own_words(glibc_cases):
    """dlerror()'s text without a program in front (Python's OSError): a version a dlopen'ed library needs,
    and a symbol defined nowhere (RTLD_NOW), each as glibc printed it."""
    d = glibc_cases["dir"]
    p = glibc_cases["dl-version"]
    assert p.returncode != 0 and "OSError" in p.stderr
    [e] = scan(p.stderr).errors
    assert (e.kind, e.version, e.library, e.requester, e.program, e.via) == (
        "version-not-found", "Q_2", str(d / "r1/libq.so.1"), str(d / "dl/libneedq.so"), None, "dlopen")
    [bare] = scan(p.stderr.rsplit("OSError: ", 1)[1]).errors  # dlerror()'s words alone, as a C program prints them
    assert (bare.kind, bare.version, bare.program, bare.via) == ("version-not-found", "Q_2", None, "launch")
    p = glibc_cases["dl-undefined"]
    assert p.returncode != 0 and "OSError" in p.stderr
    [e] = scan(p.stderr).errors
    assert (e.kind, e.symbol, e.requester, e.via) == ("symbol-not-found", "nowhere", str(d / "dl/libundef.so"), "dlopen")
    undefined = subprocess.run(["readelf", "--dyn-syms", "--wide", str(d / "dl/libundef.so")], capture_output=True,
                               text=True).stdout
    assert re.search(r"UND nowhere$", undefined, re.M)  # readelf: the library does reference it, undefined


def test_reasons_dyld_words_alone_decide():
    """A Reason in words gotrace has no rule for is "other", never nothing; one a terminal wrapped inside its
    brackets still gives the architectures."""
    [e] = scan("dyld[2]: Library not loaded: /x/a.dylib\n  Referenced from: /x/prog\n"
               "  Reason: some words a later dyld may use\n").errors
    assert (e.library, e.cause) == ("/x/a.dylib", "other")
    assert scan("OSError: dlopen(/x/a.so, 0x0001): some words a later dyld may use\n").errors == []  # no claim
    text = (f"dyld[3]: Library not loaded: /opt/lib/libz.dylib\n  Referenced from: <{UUID}> /usr/local/prog\n"
            "  Reason: mach-o file, but is an incompatible architecture (have\n'arm64', need 'x86_64')\nprompt$\n")
    s = scan(text)
    [e] = s.errors
    assert (e.cause, e.have, e.need) == ("wrong-arch", ["arm64"], ["x86_64"]) and sorted(s.lines) == [0, 1, 2, 3]


REASON_CAUSE = {"reason.at_path_security": "sandbox", "reason.built_for_simulator": "wrong-platform",
                "reason.code_signature_invalid": "code-signature", "reason.code_signature_missing": "code-signature",
                "reason.code_signature_not_valid_for_process": "code-signature", "reason.cpu_subtype": "wrong-arch",
                "reason.fat_missing_arch": "wrong-arch", "reason.file_too_short": "bad-file",
                "reason.image_not_found": "missing", "reason.incompatible_arch": "wrong-arch",
                "reason.incompatible_platform": "wrong-platform", "reason.no_lc_rpath": "no-rpath",
                "reason.no_such_file": "missing", "reason.not_a_file": "bad-file", "reason.not_in_dyld_cache": "missing",
                "reason.not_macho": "bad-file", "reason.protected_system_dylib": "sandbox",
                "reason.relative_path_hardened": "sandbox", "reason.relative_rpath_restricted": "sandbox",
                "reason.sandbox_blocked": "sandbox"}


def test_every_reason_of_every_dyld_has_its_cause():
    """Each reason dyld gives (every form of every release, from its format strings) as the cause explain
    works from: a file refused for its signature, architecture, platform or form, a sandbox, no rpath, nothing."""
    wrong = []
    for tag, entries in FORMATS["dyld"].items():
        for e in entries:
            fmt = e["format"]
            if e["id"] not in REASON_CAUSE or fmt.startswith("dyld: warning"):
                continue
            reason = _fill(fmt).strip().lstrip(", ")
            if e["id"] == "reason.not_in_dyld_cache":
                reason = "no such file" + _fill(fmt)
            if reason.startswith('"'):
                continue  # DYLD_PRINT_SEARCHING's note ("/x" cannot override …), no Reason of a message
            if reason.startswith("tried: "):
                pass
            elif reason.startswith("'"):
                reason = "tried: " + reason
            elif e["id"] not in ("reason.no_lc_rpath", "reason.image_not_found"):
                reason = f"tried: '/x/libfoo.dylib' ({reason})"
            text = f"dyld[1]: Library not loaded: @rpath/libfoo.dylib\n  Referenced from: /x/prog\n  Reason: {reason}\n"
            [err] = scan(text).errors
            if err.cause != REASON_CAUSE[e["id"]]:
                wrong.append((tag, e["id"], reason, err.cause))
    assert wrong == []


def test_the_summary_names_five_load_errors_and_counts_the_rest(tmp_path):
    text = "".join(f"dyld[{100 + k}]: Library not loaded: /opt/lib/lib{k}.dylib\n  Referenced from: /x/prog{k}\n"
                   f"  Reason: tried: '/opt/lib/lib{k}.dylib' (no such file)\n" for k in range(7))
    p, out = _import(tmp_path, text.encode())
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("gotrace: load error (library-not-loaded, missing)") == 5
    assert "and 2 other load errors" in p.stderr
    rep = json.loads(gotrace_cli("report", str(out), "--json").stdout)
    assert len(rep["load_errors"]) == 7 and sorted(g["pids"][0] for g in rep["load_errors"]) == list(range(100, 107))


def test_a_message_cut_after_have_still_says_what_the_file_had():
    """A crash report or a page that cut dyld's words mid-reason (file 32 is one): what was printed is kept."""
    text = ("Library not loaded: /opt/homebrew/lib/libz.dylib\nReferenced from: /usr/local/bin/prog\n"
            "Reason: tried: '/opt/homebrew/lib/libz.dylib' (mach-o file, but is an incompatible architecture (have 'arm64'")
    [e] = scan(text).errors
    assert (e.cause, e.have, e.need) == ("wrong-arch", ["arm64"], [])
    assert e.tried == [("/opt/homebrew/lib/libz.dylib", "mach-o file, but is an incompatible architecture (have 'arm64'")]


def test_compare_gates_on_load_errors(tmp_path):
    """A CI gate: the new run's load error breaks new-load-error and load-errors+0; the baseline's own
    errors, met again, break neither."""
    ok = f"dyld[7]: <{UUID}> /Users/me/prog\ndyld[7]: <{UUID}> /usr/lib/libSystem.B.dylib\n"
    broken = ok + ("dyld[8]: Library not loaded: @rpath/libfoo.dylib\n  Referenced from: /Users/me/prog\n"
                   "  Reason: tried: '/usr/local/lib/libfoo.dylib' (no such file)\n")
    _p, base = _import(tmp_path / "a", ok.encode())
    _p, new = _import(tmp_path / "b", broken.encode())
    _p, again = _import(tmp_path / "c", broken.encode())
    r = gotrace_cli("compare", str(base), str(new), "--fail-on", "new-load-error,load-errors+0")
    assert r.returncode == 1, r.stdout + r.stderr
    said = r.stdout + r.stderr
    assert "new-load-error: 1 new load error: library-not-loaded @rpath/libfoo.dylib (missing), needed by prog" in said
    assert "load-errors+0: load-errors 0 → 1" in said
    r = gotrace_cli("compare", str(new), str(again), "--fail-on", "new-load-error,load-errors+0")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_run_on_message_whose_first_line_was_cut():
    """dyld4 of macOS 12 runs messages together; a terminal then broke the second one's first line before its
    ': ' (files 15 and 39 show each alone): both messages come out, the second with the first's process."""
    text = ("dyld[5]: Library not loaded: /x/liba.dylib\n  Referenced from: /x/prog\n"
            "  Reason: tried: '/x/liba.dylib' (no such file)Library not loaded\n: /x/libb.dylib\n"
            "  Referenced from: /x/prog\n  Reason: tried: '/x/libb.dylib' (no such file)\nzsh: abort\n")
    s = scan(text)
    assert [(e.library, e.pid, e.tried) for e in s.errors] == [
        ("/x/liba.dylib", 5, [("/x/liba.dylib", "no such file")]), ("/x/libb.dylib", 5, [("/x/libb.dylib", "no such file")])]
    assert sorted(s.lines) == [0, 1, 2, 3, 4, 5]


def test_a_whole_message_is_joined_to_nothing_after_it():
    """Only a broken message takes the next line: a whole relocation error, a whole first line, keep theirs."""
    text = ("./prog: relocation error: ./prog: symbol free, version GLIBC_2.2.5 not defined in file libc.so.6 with "
            "link time reference\nnext output\n")
    s = scan(text)
    [e] = s.errors
    assert (e.symbol, e.version, sorted(s.lines)) == ("free", "GLIBC_2.2.5", [0])
    text = "dyld[3]: Library not loaded\n  Referenced from: /x/prog\n"  # cut, but no ": path" after it
    assert scan(text).errors == []


def test_an_empty_need_keeps_what_the_file_had():
    """File 06 (published): dyld printed need '' for an inserted library; the file's arm64 is kept, the need
    is empty, and the cause is still the architecture."""
    [e] = scan((LOGS / "06-dyld4-inserted-dylib-wrong-arch-empty-need.log").read_text()).errors
    assert (e.cause, e.have, e.need, e.via) == ("wrong-arch", ["arm64"], [], "insert")


def test_a_cut_relocation_error_takes_three_more_lines_at_most():
    text = ("./p: relocation error: ./p: symbol\nnoise one\nnoise two\nnoise three\n"
            "./p: error while loading shared libraries: libz.so.1: cannot open shared object file: No such file or directory\n")
    errs = scan(text).errors
    assert [(e.kind, e.library) for e in errs] == [("library-not-loaded", "libz.so.1")]  # the cut one reads as none


def test_dyld2_segments_give_images_and_their_load_addresses(tmp_path):
    """File 19 (published, macOS 11): the main executable and two cache dylibs, each with the __TEXT address
    dyld printed for it."""
    from tracer.session.reader import load_session

    out = tmp_path / "s"
    p = gotrace_cli("import", "dyld-print", str(LOGS / "19-dyld2-segments-shared-cache-macos11-nix.log"), "-o", str(out))
    assert p.returncode == 0, p.stderr
    im = load_session(out).images
    assert list(zip(im["path"], im["load_base"])) == [
        ("/nix/store/0ly5lpwanagc5qpmnqrw8aqxb4ivw7kf-bash-5.2-p15/bin/bash", 0x10283E000),
        ("/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation", 0x7FFF2FF64000),
        ("/usr/lib/libSystem.B.dylib", 0x7FFF66C4F000)]


def test_a_missing_weak_import_in_dyld2_and_pids_not_lent(tmp_path):
    from tracer.capture.dyld_print.dyld2 import Dyld2Log

    log = Dyld2Log()
    assert log.take("loaded: /x/prog", 1)
    assert log.take("bind: prog:0x1000 = <weak_import-missing>:_maybe, *0x1000 = 0x0", 2)
    [ev], _procs, _images = log.rows()
    assert ev[3:] == ("/x/prog", "_maybe", None, "eager", False)  # requester, symbol, no provider, not resolved
    # a message without a pid after one with a pid is no run-on piece: it keeps no pid
    text = ("dyld[9]: Library not loaded: /a/x.dylib\n  Referenced from: /p\n  Reason: image not found\n"
            "dyld: Library not loaded\n: libuuid.dylib\n  Referenced from: /q\n  Reason: image not found\n"
            "dyld: Library not loaded: /b/y.dylib\n  Referenced from: /r\n  Reason: image not found\n")
    assert [(e.library, e.pid) for e in scan(text).errors] == [("/a/x.dylib", 9), ("libuuid.dylib", None),
                                                                ("/b/y.dylib", None)]
