"""A process's objects (analysis/scope.py) against what the files and glibc say.

Oracles: readelf -l's PT_INTERP and readelf -d's DT_NEEDED of a program built here, the
program's own exit status, and glibc's LD_DEBUG of the same command.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import oracles
from conftest import gotrace_cli, require, require_backend
from linkbins import build, build_dlopens
from oracles import ld_debug_bindings

CSRC = Path(__file__).resolve().parent / "csrc"


def test_a_program_that_needs_nothing_still_has_its_interpreter(tmp_path):
    """tests/csrc/nothing_needed.c: PT_INTERP and no DT_NEEDED (readelf), exit status 0. The kernel
    maps PT_INTERP's file before the program runs, and nothing asks for it by name: why --library
    of the interpreter's file name finds it in the process, as the program's interpreter, loaded
    without a search."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    prog = tmp_path / "nothing_needed"
    subprocess.run(["gcc", "-nostdlib", "-fPIE", "-pie", "-o", str(prog), str(CSRC / "nothing_needed.c")],
                   check=True)
    interp = oracles.readelf_interpreter(prog)
    assert interp and oracles.readelf_needed(prog) == []
    assert subprocess.run([str(prog)]).returncode == 0
    res = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", str(prog))
    assert res.returncode == 0, res.stderr
    out = gotrace_cli("why", str(tmp_path / "s"), "--library", os.path.basename(interp), "--json")
    assert out.returncode == 0, out.stderr
    (load,) = json.loads(out.stdout)["loads"]
    assert os.path.realpath(load["path"]) == os.path.realpath(interp)
    assert (load["exe"], load["how"], load["found"], load["search"], load["needed_by"]) == (
        str(prog), "interpreter", True, None, [])


def test_ld_so_preload_is_read_as_glibc_reads_it(tmp_path):
    """/etc/ld.so.preload's syntax — names separated by white space or ':', '#' starting a comment
    to the end of its line (glibc's elf/rtld.c) — against glibc itself: in a private mount
    namespace whose /etc holds the file, the kernel's list of what `cat /proc/self/maps` mapped
    shows the libraries glibc preloaded, and not the one commented out. preloads() reads the same
    file to the same libraries, in the file's order."""
    from tracer.analysis.scope import preloads

    require(os.geteuid() == 0 and shutil.which("unshare") is not None, "a private mount namespace needs root")

    def mapped(etc: Path | None) -> set[str]:
        cmd = ["cat", "/proc/self/maps"] if etc is None else [
            "unshare", "-m", "--propagation", "private", "sh", "-c", f"mount --bind '{etc}' /etc && exec cat /proc/self/maps"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return {os.path.realpath(line.split()[5]) for line in out.splitlines() if len(line.split()) > 5}

    plain = mapped(None)
    (libc,) = [p for p in plain if os.path.basename(p).startswith("libc.so")]
    libdir = os.path.dirname(libc)
    want = [os.path.join(libdir, n) for n in ("libz.so.1", "libm.so.6", "libdl.so.2")]
    commented = os.path.join(libdir, "libutil.so.1")
    require(all(os.path.exists(p) for p in [*want, commented]), f"libz, libm, libdl, libutil are not all in {libdir}")
    assert not {os.path.realpath(p) for p in [*want, commented]} & plain
    etc = tmp_path / "etc"
    etc.mkdir()
    shutil.copy("/etc/ld.so.cache", etc / "ld.so.cache")
    text = f"# what this machine preloads\n{want[0]}:{want[1]} # {commented}\n\n  {want[2]}\n"
    (etc / "ld.so.preload").write_text(text)
    glibc = mapped(etc)
    assert {os.path.realpath(p) for p in want} <= glibc and os.path.realpath(commented) not in glibc
    assert preloads({}, preload_file=str(etc / "ld.so.preload")) == want
    # LD_PRELOAD's own come first (rtld.c: LD_PRELOAD, then the file)
    assert preloads({"LD_PRELOAD": commented}, preload_file=str(etc / "ld.so.preload")) == [commented, *want]


def test_a_dt_needed_of_the_vdsos_name_is_the_vdso(tmp_path):
    """A program linked against a stand-in library whose soname is linux-vdso.so.1, run with the
    stand-in gone: its DT_NEEDED (readelf -d) names the vDSO, which glibc has in the process before
    it reads any DT_NEEDED (elf/rtld.c: setup_vdso). Oracles: the program's exit status, 0 (a
    DT_NEEDED found nowhere stops it with 127), and LD_DEBUG=libs, which shows glibc searching for
    libc.so.6 and not for that name. why --library finds it: the vDSO, needed by the program, no
    search, not "found nowhere"."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    require("[vdso]" in Path("/proc/self/maps").read_text(), "this kernel maps no vDSO")
    (tmp_path / "stub.c").write_text("int stub_fn(void) { return 0; }\n")
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,linux-vdso.so.1", "-o", str(tmp_path / "libstub.so"),
                    str(tmp_path / "stub.c")], check=True)
    prog = tmp_path / "needs_vdso"
    subprocess.run(["gcc", "-o", str(prog), str(tmp_path / "main.c"), "-Wl,--no-as-needed", f"-L{tmp_path}",
                    "-lstub"], check=True)
    (tmp_path / "libstub.so").unlink()
    assert oracles.readelf_needed(prog)[0] == "linux-vdso.so.1"
    run = subprocess.run([str(prog)], env=dict(os.environ, LD_DEBUG="libs"), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "find library=libc.so.6" in run.stderr and "find library=linux-vdso.so.1" not in run.stderr
    res = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", str(prog))
    assert res.returncode == 0, res.stderr
    out = gotrace_cli("why", str(tmp_path / "s"), "--library", "linux-vdso.so.1", "--json")
    assert out.returncode == 0, out.stderr
    (load,) = json.loads(out.stdout)["loads"]
    assert (load["how"], load["found"], load["search"], load["needed_by"], load["note"]) == (
        "vdso", True, None, [str(prog)], None)


def test_a_library_of_the_vdsos_soname_dlopened_by_path_is_not_the_vdso(tmp_path):
    """tests/csrc/why/openall.c linked against a stand-in whose soname is linux-vdso.so.1 (readelf -d: its
    DT_NEEDED), the stand-in then gone, and a copy of it dlopen'ed by path: glibc takes the DT_NEEDED for
    the vDSO (LD_DEBUG=files: no "needed by" line for that name, the program starts) and maps the copy as
    a new object ("dynamically loaded by" the program; exit status 0). why --library linux-vdso.so.1: the
    vDSO needed by the program, the copy dlopen'ed, needed by nobody."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    require("[vdso]" in Path("/proc/self/maps").read_text(), "this kernel maps no vDSO")
    (tmp_path / "stub.c").write_text("int stub_fn(void) { return 0; }\n")
    stub, copy = tmp_path / "libstub.so", tmp_path / "copy" / "libstub.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,linux-vdso.so.1", "-o", str(stub),
                    str(tmp_path / "stub.c")], check=True)
    copy.parent.mkdir()
    shutil.copy(stub, copy)
    prog = tmp_path / "openall"
    subprocess.run(["gcc", "-o", str(prog), str(CSRC / "why" / "openall.c"), "-ldl", "-Wl,--no-as-needed",
                    f"-L{tmp_path}", "-lstub"], check=True)
    stub.unlink()
    assert "linux-vdso.so.1" in oracles.readelf_needed(prog)
    run = subprocess.run([str(prog), str(copy)], env=dict(os.environ, LD_DEBUG="files"), capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert f"file={copy} [0];  dynamically loaded by {prog}" in run.stderr
    assert "file=linux-vdso.so.1 [0];  needed by" not in run.stderr
    res = gotrace_cli("bind", "-q", "-b", "ld-debug", "-o", str(tmp_path / "s"), "--", str(prog), str(copy))
    assert res.returncode == 0, res.stderr
    out = gotrace_cli("why", str(tmp_path / "s"), "--library", "linux-vdso.so.1", "--json")
    assert out.returncode == 0, out.stderr
    loads = {load["how"]: load for load in json.loads(out.stdout)["loads"]}
    assert sorted(loads) == ["dlopen", "vdso"], loads
    assert loads["vdso"]["needed_by"] == [str(prog)] and loads["dlopen"]["needed_by"] == []
    assert loads["dlopen"]["path"] == str(copy)


@pytest.mark.parametrize("backend", ["ld-debug", "bpf", "bpftrace", "lldb"])
def test_independent_dlopens_each_search_their_own_scope(tmp_path, backend):
    """openall dlopens libcycone.so (DT_NEEDED libcyctwo.so, which needs libcycone.so back: a cycle,
    readelf -d), then libplug.so (needs libb.so, which alone defines pick), then libbroken.so, whose
    DT_NEEDED libgone.so is gone: that dlopen fails and the program exits 3 (its own status). Oracle:
    LD_DEBUG=symbols,bindings of the same command — libplug.so's pick is looked up in the global scope,
    then libplug.so and libb.so, not in libcycone.so's scope; libcycone.so's two() in its own scope, and
    libcyctwo.so's one() in libcycone.so's too (libcycone.so first: dlopen asked for it, and each object of
    that load searches the root's scope — though each of the two needs the other). Every backend: the images
    of bpf, bpftrace and lldb are not in load order, and the cycle's root is told by its relocation, last.
    `why` names the same objects searched and agrees; the cycle and the dependency found nowhere end
    the scope's walk (glibc loads each name once)."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    b = {**build(tmp_path / "b"), **build_dlopens(tmp_path / "b")}
    assert oracles.readelf_needed(b["libcycone"]) == ["libcyctwo.so"]
    assert oracles.readelf_needed(b["libcyctwo"]) == ["libcycone.so"]
    argv = [str(b["openall"]), str(b["libcycone"]), str(b["libplug"]), str(b["libbroken"])]
    glibc = subprocess.run(argv, env=dict(os.environ, LD_DEBUG="symbols,bindings"), capture_output=True, text=True)
    assert glibc.returncode == 3 and glibc.stdout.count("dlopen ok") == 2 and "libgone.so" in glibc.stdout
    truth = {(os.path.basename(t["requester"]), t["symbol"]): t for t in ld_debug_bindings(glibc.stderr)}
    require_backend(backend)
    res = gotrace_cli("bind", "-q", "-b", backend, "-o", str(tmp_path / "s"), "--", *argv)
    assert res.returncode == 3, res.stderr
    for requester, symbol, provider in (("libplug.so", "pick", "libb.so"), ("libcycone.so", "two", "libcyctwo.so"),
                                        ("libcyctwo.so", "one", "libcycone.so")):
        want = truth[(requester, symbol)]
        assert os.path.basename(want["provider"]) == provider and want["searched"]
        out = gotrace_cli("why", str(tmp_path / "s"), symbol, "--json")
        assert out.returncode == 0, out.stderr
        (lk,) = [lk for lk in json.loads(out.stdout)["lookups"] if os.path.basename(lk["requester"]) == requester]
        assert os.path.basename(lk["chosen"]) == provider and lk["agrees"] is True, lk["reason"]
        assert lk["searched"] == want["searched"]



def test_preloads_the_kernel_names_otherwise_are_the_preloads(tmp_path):
    """DTrace on Linux names each object as /proc/PID/maps does, symlinks resolved: the preload libz.so.1 is
    libz.so.1.2.13 there, and DIR/link/libpre.so (link -> real) DIR/real/libpre.so. With
    LD_PRELOAD="libz.so.1 DIR/link/libpre.so", dlsymwait dlsyms zlibVersion and pick from RTLD_DEFAULT:
    glibc searched dlsymwait, libz.so.1, then libpre.so and bound pick there (LD_DEBUG=symbols,bindings of
    the same run). `why pick` of the DTrace session gives that search, the same files, and agrees with it;
    `why --library` of either preload names one object, preloaded — not a second object of the given
    name, which the replay would search as well. The program lives until the test has read its
    records in the session's parts (dtrace names addresses while the process lives)."""
    import sys
    import time

    import pyarrow.parquet as pq
    from test_dtrace import require_dtrace

    require_dtrace()
    bins = build(tmp_path / "bins")
    (tmp_path / "real").mkdir()
    shutil.copy(bins["libpre"], tmp_path / "real" / "libpre.so")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    prog = tmp_path / "dlsymwait"
    subprocess.run(["gcc", "-O0", "-o", str(prog), str(CSRC / "why" / "dlsymwait.c")], check=True)
    go, session, log = tmp_path / "go", tmp_path / "s", tmp_path / "ld"
    preload = f"libz.so.1 {tmp_path}/link/libpre.so"
    env = {**os.environ, "LD_PRELOAD": preload, "LD_DEBUG": "symbols,bindings", "LD_DEBUG_OUTPUT": str(log)}
    run = subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-q", "-b", "dtrace", "-o", str(session), "--",
                            str(prog), str(go), "zlibVersion", "pick"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        seen: set = set()
        deadline = time.monotonic() + 120
        while seen < {"zlibVersion", "pick"} and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            for part in (session / "events").glob("part-*.parquet"):
                try:
                    seen |= set(pq.read_table(part, columns=["symbol"]).column("symbol").to_pylist())
                except Exception:  # a part being written
                    pass
    finally:
        go.touch()
        out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    theirs = [b for path in tmp_path.glob("ld.*") for b in ld_debug_bindings(path.read_text())
              if b["symbol"] == "pick" and os.path.basename(b["requester"]) == "dlsymwait"]
    assert [os.path.basename(x) for x in theirs[0]["searched"]] == ["dlsymwait", "libz.so.1", "libpre.so"], theirs
    (lk,) = [lk for lk in json.loads(gotrace_cli("why", "--json", str(session), "pick").stdout)["lookups"]]
    assert [os.path.realpath(x) for x in lk["searched"]] == [os.path.realpath(x) for x in theirs[0]["searched"]]
    assert os.path.realpath(lk["chosen"]) == os.path.realpath(theirs[0]["provider"]) and lk["agrees"] is True, lk
    for name, given, file in (("libz.so.1", "libz.so.1", theirs[0]["searched"][1]),
                              ("libpre.so", f"{tmp_path}/link/libpre.so", theirs[0]["searched"][2])):
        res = gotrace_cli("why", "--json", "--library", name, str(session))
        assert res.returncode == 0, res.stderr
        (load,) = json.loads(res.stdout)["loads"]
        assert (load["how"], load["asked_as"], os.path.realpath(load["path"])) == ("preload", given, os.path.realpath(file))
    # a DTrace session written before its records waited for the exec's: every event's program null; why
    # takes each pid's program from the processes table, and gives the same answer
    import pyarrow as pa

    old = tmp_path / "old"
    shutil.copytree(session, old)
    for part in (old / "events").glob("part-*.parquet"):
        table = pq.read_table(part)
        i = table.schema.get_field_index("exe")
        pq.write_table(table.set_column(i, table.schema.field(i), pa.nulls(len(table), table.schema.field(i).type)), part)
    (again,) = json.loads(gotrace_cli("why", "--json", str(old), "pick").stdout)["lookups"]
    assert (again["searched"], again["chosen"], again["agrees"]) == (lk["searched"], lk["chosen"], True)
    assert len(json.loads(gotrace_cli("why", "--json", "--library", "libpre.so", str(old)).stdout)["loads"]) == 1
    # a process that ended before dtrace's records were read: its addresses unnamed, requester and provider
    # null (DTrace for Linux reads /proc/PID/maps while a process lives); why says so, and replays nothing
    for part in (old / "events").glob("part-*.parquet"):
        table = pq.read_table(part)
        for column in ("requester", "provider"):
            i = table.schema.get_field_index(column)
            table = table.set_column(i, table.schema.field(i), pa.nulls(len(table), table.schema.field(i).type))
        pq.write_table(table, part)
    text = gotrace_cli("why", str(old), "pick")
    assert text.returncode == 0 and "does not name the object that asked" in text.stdout, text.stdout + text.stderr
    (unnamed,) = json.loads(gotrace_cli("why", "--json", str(old), "pick").stdout)["lookups"]
    assert (unnamed["requester"], unnamed["agrees"], unnamed["searched"]) == (None, None, [])
    assert (unnamed["kind"], unnamed["dlsym_forms"]) == ("dlsym", [])  # a dlsym: no form of it replayed (docs/why-json.md)
    assert "ended before its records were read" in unnamed["reason"]
