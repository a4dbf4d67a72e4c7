"""Failed lookups told apart by the requester's own symbol table (readelf), not by gotrace.

The oracle: readelf --dyn-syms of the requester (an undefined WEAK reference is skipped by
ld.so, an undefined GLOBAL one is fatal: exit 127), the processes' own exit codes, and a dlsym
that returned NULL to its caller. The files are tests/csrc/why/'s programs (tests/linkbins.py).
"""
from __future__ import annotations

import shutil
import subprocess
from collections import Counter

import pytest

from conftest import require
from linkbins import build
from tracer.analysis.failures import failed_lookups


def undefined(path) -> dict[str, str]:
    """readelf's account: symbol -> GLOBAL or WEAK, for each undefined dynamic symbol."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {f[7].split("@")[0]: f[4] for f in (line.split() for line in out.splitlines())
            if len(f) >= 8 and f[0].endswith(":") and f[6] == "UND"}


@pytest.fixture(scope="module")
def bins(tmp_path_factory):
    require(shutil.which("gcc") is not None, "gcc is not installed")
    return build(tmp_path_factory.mktemp("failures"))


def test_weak_fatal_dlsym_and_unreadable_by_readelf(bins):
    fatal, picker = str(bins["fatal"]), str(bins["picker"])
    und_fatal, und_picker = undefined(fatal), undefined(picker)
    assert und_fatal["gone"] == und_fatal["__libc_start_main"] == "GLOBAL" and und_fatal["__gmon_start__"] == "WEAK"
    assert und_picker["a_pick"] == "GLOBAL"
    failures = Counter({
        (1, fatal, fatal, "gone", None, "eager"): 1,             # GLOBAL: fatal
        (1, fatal, fatal, "__libc_start_main", None, "eager"): 1,  # GLOBAL too (listed after gone here)
        (3, fatal, fatal, "gone", None, "eager"): 1,             # pid 3: its later image exited 1
        (4, fatal, fatal, "gone", None, "eager"): 1,             # pid 4: its exit code is not known
        (1, fatal, fatal, "__gmon_start__", None, "eager"): 2,   # WEAK: skipped
        (1, fatal, picker, "a_pick", None, "lazy"): 1,           # GLOBAL, another requester of pid 1
        (1, fatal, None, "nope", None, "dlsym"): 3,              # dlsym returned NULL
        (2, "/x", "/gone/libx.so", "x", None, "eager"): 4,       # the requester is gone: cannot be told
    })
    # pid 1 ran two images; the later one (by start time) exited 127, listed first here
    processes = [{"pid": 1, "start_ns": 10, "exit_code": 127}, {"pid": 1, "start_ns": 5, "exit_code": None},
                 {"pid": 2, "start_ns": 3, "exit_code": 0},
                 {"pid": 3, "start_ns": 5, "exit_code": 20}, {"pid": 3, "start_ns": 10, "exit_code": 1},
                 {"pid": 4, "start_ns": 1, "exit_code": None}]
    summary, fatal_rows = failed_lookups(failures, processes, top_n=10)
    assert (summary["weak"], summary["dlsym"], summary["fatal"], summary["unknown"]) == (2, 3, 5, 4)
    assert summary["weak_symbols"] == [{"symbol": "__gmon_start__", "lookups": 2}]
    assert summary["dlsym_symbols"] == [{"symbol": "nope", "lookups": 3}]
    assert summary["unknown_symbols"] == [{"symbol": "x", "lookups": 4}]
    assert summary["requesters_unreadable"] == ["/gone/libx.so"]
    # by pid, then requester (/…/fatal < /…/picker), then symbol; each with its process's last exit code
    assert [(f["pid"], f["requester"], f["symbol"], f["exit_code"], f["outcome"]) for f in fatal_rows] == [
        (1, fatal, "__libc_start_main", 127, "died"), (1, fatal, "gone", 127, "died"),
        (1, picker, "a_pick", 127, "died"), (3, fatal, "gone", 1, "caught"), (4, fatal, "gone", None, "unknown")]


def interpreter(path) -> bool:
    """readelf -l: does the file ask for a dynamic linker (PT_INTERP)?"""
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True).stdout
    return "Requesting program interpreter" in out


def test_silent_processes_are_told_by_their_files(bins, tmp_path):
    """A process with no binding: static (readelf: no PT_INTERP), dynamic yet silent (PT_INTERP),
    its file gone, or translated (its bindings are the guest's) — grouped by executable, largest first."""
    from tracer.analysis.failures import without_bindings

    static = tmp_path / "static"
    src = tmp_path / "s.c"
    src.write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-static", "-O0", "-o", str(static), str(src)], check=True)
    dynamic = str(bins["picker"])
    assert not interpreter(static) and interpreter(dynamic)
    processes = [{"pid": 1, "exe": str(static)}, {"pid": 2, "exe": str(static)}, {"pid": 3, "exe": dynamic},
                 {"pid": 4, "exe": str(tmp_path / "gone")}, {"pid": 5, "exe": None},
                 {"pid": 6, "exe": "/guest/prog", "translator": "qemu-aarch64"}, {"pid": 7, "exe": dynamic}]
    rows = without_bindings(processes, bound_pids={7}, silent=[])
    got = {(r["exe"], r["processes"]): r["reason"].split(":")[0].split(",")[0] for r in rows}
    assert got == {(str(static), 2): "static", (dynamic, 1): "dynamic", (str(tmp_path / "gone"), 1): "file gone or unreadable",
                   ("?", 1): "file gone or unreadable", ("/guest/prog", 1): "translated by qemu-aarch64"}
    assert rows[0]["exe"] == str(static)  # the most processes first


def test_exit_127_and_the_library_found_nowhere(bins, tmp_path):
    """needy exits 127 because libnothere.so is found nowhere (ld.so's own words, run here); a
    process that exited 127 with a fatal lookup is explained by it, one without is not."""
    from tracer.analysis.failures import exit_127_pids, libraries_not_found

    run = subprocess.run([str(bins["needy"])], capture_output=True, text=True)
    assert run.returncode == 127 and "libnothere.so: cannot open shared object file" in run.stderr
    needy, fatal = str(bins["needy"]), str(bins["fatal"])
    processes = [{"pid": 10, "exe": needy, "exit_code": 127, "start_ns": 1},
                 {"pid": 11, "exe": fatal, "exit_code": 127, "start_ns": 2},
                 {"pid": 12, "exe": needy, "exit_code": 127, "start_ns": 3},
                 {"pid": 13, "exe": None, "exit_code": 127, "start_ns": 4},
                 {"pid": 14, "exe": needy, "exit_code": 0, "start_ns": 5}]
    pids = exit_127_pids(processes, fatal=[{"pid": 11}])
    assert pids == {10: needy, 12: needy, 13: "?"}
    missing = libraries_not_found(pids, images=[], meta={"loader_env": {}, "cwd": str(tmp_path)})
    assert missing == [(needy, needy, "libnothere.so")]  # once per program, never for an unknown one
    # with LD_LIBRARY_PATH naming a directory that has it, ld.so finds it (run here: needy returns nothere()'s 'n'),
    # and so does the replay
    found = tmp_path / "found"
    found.mkdir()
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(found / "libnothere.so"), "-x", "c", "-",
                    "-Wl,-soname,libnothere.so"], input="int nothere(void) { return 'n'; }\n", text=True, check=True)
    env = {"LD_LIBRARY_PATH": str(found)}
    assert subprocess.run([needy], env=env, capture_output=True).returncode == ord("n")  # nothere() ran
    assert libraries_not_found(pids, images=[], meta={"loader_env": env, "cwd": str(tmp_path)}) == []
