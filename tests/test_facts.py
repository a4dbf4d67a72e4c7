"""tracer/binary/facts.py, the few facts capture reads of files, against the kernel and the tools:
a script's interpreter line as the interpreter itself receives it (its own argv), PT_INTERP and
JUMP_SLOT relocations as readelf shows them, undefined dynamic symbols as readelf --dyn-syms
lists them, a Mach-O slice's __TEXT vmaddr and architecture as llvm-objdump-16 prints them."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import oracles
from conftest import ROOT, require
from tracer.binary import facts


# the last: a first line longer than the kernel's 256-byte buffer (binfmt_script.c's BINPRM_BUF_SIZE), its
# argument cut there: an "E" at byte 256 is not part of it
@pytest.mark.parametrize("line", ["#!{py} -S", "#!{py}", "#!  {py}   -S  ", "#!{py}\t-S",
                                  "#!{py} -S" + " " * 256 + "E"])
def test_a_scripts_interpreter_line_is_what_the_interpreter_receives(tmp_path, line):
    """The kernel (binfmt_script) runs a #! script as: interpreter, its one optional argument,
    the script: the interpreter's own sys.orig_argv says what it got (the oracle)."""
    script = tmp_path / "argv.py"
    first = line.format(py=sys.executable)
    if first.endswith("E"):
        first = first[:256] + "E"  # "E" at offset 256
    script.write_text(first + "\nimport sys; print(repr(sys.orig_argv))\n")
    script.chmod(0o755)
    argv = eval(subprocess.run([str(script)], capture_output=True, text=True, check=True).stdout)  # noqa: S307
    assert argv[-1] == str(script)
    want = (argv[0], argv[1] if len(argv) == 3 else None)
    assert facts.script_line(str(script)) == want
    assert facts.script_interpreter(str(script)) == want[0]


def _static(tmp_path) -> str:
    out = tmp_path / "static"
    subprocess.run(["gcc", "-static", "-o", str(out), str(ROOT / "tests/csrc/versions.c"), "-lm"], check=True,
                   capture_output=True)
    return str(out)


def test_dynamically_linked_and_plt_slots_are_readelfs(tmp_path):
    """PT_INTERP (readelf -l's "Requesting program interpreter") and the names of the JUMP_SLOT
    relocations (readelf -rW) of /bin/ls and of a static program."""
    require(shutil.which("gcc") is not None and shutil.which("readelf") is not None, "gcc and readelf are needed")
    for path in ("/bin/ls", _static(tmp_path)):
        assert facts.dynamically_linked(path) == (oracles.readelf_interpreter(path) is not None)
        slots = {n.split("@")[0] for _o, t, n in oracles.readelf_symbol_relocs(path) if t.endswith("JUMP_SLOT")}
        assert facts.jump_slot_symbols(path) == frozenset(slots)
    assert facts.dynamically_linked("/etc/passwd") is None


def test_undefined_references_are_readelfs():
    """An ELF file's undefined dynamic symbols and whether each is weak: readelf -W --dyn-syms'
    UND rows (libstdc++.so.6: strong and weak ones)."""
    path = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    require(shutil.which("readelf") is not None, "readelf is needed")
    out = subprocess.run(["readelf", "-W", "--dyn-syms", path], capture_output=True, text=True, check=True).stdout
    want = {}
    for row in out.splitlines():
        f = row.split()
        if len(f) >= 8 and f[6] == "UND" and f[0].rstrip(":").isdigit() and f[0] != "0:":
            want[f[7].split("@")[0]] = f[4] == "WEAK"
    assert any(want.values()) and not all(want.values())  # the premise: both kinds
    assert facts.undefined_refs(path) == want


@pytest.mark.parametrize("name", ["macho-x86_64-lazy", "macho-arm64-chained"])
def test_macho_text_vmaddr_and_arch_are_llvm_objdumps(name, binaries):
    """A thin Mach-O file's __TEXT vmaddr (its LC_SEGMENT_64) and architecture (the header's
    cputype), as llvm-objdump-16 --macho --private-headers prints them."""
    require(shutil.which(oracles.OBJDUMP) is not None, f"{oracles.OBJDUMP} is not installed")
    path = str(binaries(name))
    lc = oracles.objdump_load_commands(path)
    assert facts.macho_text_vmaddr(path) == next(v for n, v, _s in lc["segments"] if n == "__TEXT")
    text = subprocess.run([oracles.OBJDUMP, "--macho", "--private-header", path], capture_output=True, text=True,
                          check=True).stdout
    cputype = text.split("magic", 1)[1].splitlines()[1].split()[1]  # the row under "magic cputype …"
    assert facts.macho_arch(path) == cputype.lower()


def test_text_range_file_arch_and_debug_file_of_the_dynamic_linker():
    """ld.so's executable PT_LOAD extent (readelf -lW's LOAD rows with E), its machine (readelf -h),
    and its debug file: /usr/lib/debug/.build-id/xx/rest.debug named by readelf -n's Build ID
    (Debian's libc6-dbg layout, which the file's presence confirms)."""
    import os

    from tracer.capture.ldso import ldso_path

    ldso = ldso_path()
    loads = [(v, v + m) for v, m, f in oracles.readelf_loads(ldso) if "E" in f]
    assert loads and facts.text_range(ldso) == (min(a for a, _ in loads), max(b for _, b in loads))
    assert oracles.readelf_header(ldso)["Machine"] == "Advanced Micro Devices X86-64"
    assert facts.file_arch(ldso) == "x86_64" and facts.file_arch("/etc/passwd") is None
    bid = oracles.readelf_build_id(ldso)
    debug = f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug"
    require(os.path.exists(debug), "ld.so's debug file is missing (apt-get install libc6-dbg)")
    assert facts.debug_candidates(ldso) == [ldso, debug]


def test_dyn_object_from_bytes_is_the_files():
    """What ld.so reads of a file read beforehand (a kept descriptor's bytes) is what it reads of the
    file: libstdc++.so.6's undefined references, as readelf --dyn-syms lists them (above)."""
    path = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    with open(path, "rb") as fh:
        obj = facts.dyn_object_from_bytes(path, fh.read())
    assert obj is not None and getattr(obj.definitions, "undefined", {}) == facts.undefined_refs(path)
    assert facts.undefined_refs(path)


@pytest.mark.parametrize("name,twolevel", [("macho-x86_64-lazy", True), ("macho-arm64-flat", False)])
def test_macho_binds_namespace_is_llvm_objdumps(name, twolevel, binaries):
    """MH_TWOLEVEL among the header's flags (llvm-objdump-16 --macho --private-header: TWOLEVEL, absent
    from a -flat_namespace program), and each bind's symbol and library as llvm-objdump --bind shows it."""
    require(shutil.which(oracles.OBJDUMP) is not None, f"{oracles.OBJDUMP} is not installed")
    path = str(binaries(name))
    text = subprocess.run([oracles.OBJDUMP, "--macho", "--private-header", path], capture_output=True, text=True,
                          check=True).stdout
    flags = text.split("magic", 1)[1].splitlines()[1].split()[7:]
    assert ("TWOLEVEL" in flags) is twolevel
    two, binds = facts.macho_binds(path)
    assert two is twolevel and {s for _a, _l, s in oracles.objdump_binds(path)} == set(binds)
