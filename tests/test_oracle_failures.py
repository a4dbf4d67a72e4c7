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
        (1, fatal, fatal, "__gmon_start__", None, "eager"): 2,   # WEAK: skipped
        (1, fatal, picker, "a_pick", None, "lazy"): 1,           # GLOBAL, another requester of pid 1
        (1, fatal, None, "nope", None, "dlsym"): 3,              # dlsym returned NULL
        (2, "/x", "/gone/libx.so", "x", None, "eager"): 4,       # the requester is gone: cannot be told
    })
    # pid 1 ran two images; the later one (by start time) exited 127, listed first here
    processes = [{"pid": 1, "start_ns": 10, "exit_code": 127}, {"pid": 1, "start_ns": 5, "exit_code": None},
                 {"pid": 2, "start_ns": 3, "exit_code": 0},
                 {"pid": 3, "start_ns": 5, "exit_code": 20}, {"pid": 3, "start_ns": 10, "exit_code": 1}]
    summary, fatal_rows = failed_lookups(failures, processes, top_n=10)
    assert (summary["weak"], summary["dlsym"], summary["fatal"], summary["unknown"]) == (2, 3, 4, 4)
    assert summary["weak_symbols"] == [{"symbol": "__gmon_start__", "lookups": 2}]
    assert summary["dlsym_symbols"] == [{"symbol": "nope", "lookups": 3}]
    assert summary["unknown_symbols"] == [{"symbol": "x", "lookups": 4}]
    assert summary["requesters_unreadable"] == ["/gone/libx.so"]
    # by pid, then requester (/…/fatal < /…/picker), then symbol; each with its process's last exit code
    assert [(f["pid"], f["requester"], f["symbol"], f["exit_code"], f["outcome"]) for f in fatal_rows] == [
        (1, fatal, "__libc_start_main", 127, "died"), (1, fatal, "gone", 127, "died"),
        (1, picker, "a_pick", 127, "died"), (3, fatal, "gone", 1, "caught")]
