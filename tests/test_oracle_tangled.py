"""Binding lines another process cut in two: glibc's LD_DEBUG writes a binding line in two writes.

elf/dl-lookup.c (_dl_debug_bindings) prints "PID:\\tbinding file … symbol `NAME'" and then
" [VERSION]\\n" (or "\\n") with a second call; a forked child sharing its parent's
LD_DEBUG_OUTPUT file, or any process on a shared stderr, can write its whole line in between.
gotrace lost the second process's binding (and gave the first a garbage version) on a busy
machine: tests/fixtures/ld-debug/ld.1044 is such a log, written by glibc here.

Oracles: the log itself read record by record wherever a record starts (a regex over the whole
text, tests/oracles.py's ld_debug_lines for versions), and logs cut here exactly where glibc's
source puts the write boundary, from untangled logs glibc wrote for a real program.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter

import pytest

from conftest import ROOT, gotrace_cli, require
from oracles import ld_debug_bindings
from tracer import load_session
from tracer.capture.ld_debug.parse import LdDebugFileParser

REAL = ROOT / "tests/fixtures/ld-debug/ld.1044"
RECORD = re.compile(r"(\d+):\tbinding file (.+?) \[\d+\] to (.+?) \[\d+\]: \S+ symbol `([^']+)'")


def records(text: str) -> Counter:
    """(pid, requester, symbol, provider) of every binding record, wherever in a line it starts."""
    return Counter((int(m.group(1)), m.group(2), m.group(4), m.group(3)) for m in RECORD.finditer(text))


def versions(text: str) -> Counter:
    return Counter((b["pid"], b["symbol"], b["version"]) for b in ld_debug_bindings(text))


def parsed(lines: list[str], pid: int, pieces: int = 1) -> list[tuple]:
    """The parser fed the lines in `pieces` reads, as the tailer reads a growing file."""
    p, out = LdDebugFileParser(pid), []
    step = max(1, -(-len(lines) // pieces))
    for k in range(0, len(lines), step):
        p.feed(lines[k:k + step], k, out)
    p.flush(out)
    return out


def mine(rows: list[tuple]) -> Counter:
    return Counter((r[1], r[3], r[4], r[6]) for r in rows)


def test_the_real_tangled_log_is_glibcs_own():
    """The kept log does hold a cut line: two records on one line, the end alone on the next."""
    text = REAL.read_text()
    assert any(len(RECORD.findall(line)) == 2 for line in text.splitlines())
    assert re.search(r"(?m)^ \[GLIBC_[0-9.]+\]$", text)


@pytest.mark.parametrize("pieces", [1, 7, 200])
def test_every_record_of_a_cut_line_is_read(pieces):
    text = REAL.read_text()
    lines = text.splitlines()
    rows = parsed(lines, int(REAL.name.split(".")[1]), pieces)
    assert mine(rows) == records(text)
    got = Counter((r[1], r[4], r[5]) for r in rows)
    assert got == versions(text)
    assert sum(1 for r in rows if r[5] is not None and "binding file" in r[5]) == 0


def _tangle(lines: list[str], cut_at: int, intruder: list[str]) -> list[str]:
    """Line `cut_at` (a binding line) written as glibc's two writes with `intruder`'s lines between them."""
    line = lines[cut_at]
    q = line.rindex("'") + 1  # the first write ends with the symbol's closing quote
    return [*lines[:cut_at], line[:q] + intruder[0], *intruder[1:], line[q:], *lines[cut_at + 1:]]


@pytest.fixture(scope="module")
def fork_log(tmp_path_factory):
    """An untangled LD_DEBUG_OUTPUT file of tests/csrc/forkbind.c (parent and child in one file)."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    d = tmp_path_factory.mktemp("tangle")
    exe = d / "forkbind"
    subprocess.run(["gcc", "-O0", "-Wl,-z,lazy", "-o", str(exe), str(ROOT / "tests/csrc/forkbind.c")], check=True)
    for _ in range(20):
        for f in d.glob("ld.*"):
            f.unlink()
        subprocess.run([str(exe)], env={**os.environ, "LD_DEBUG": "files,bindings,reloc",
                                        "LD_DEBUG_OUTPUT": str(d / "ld")}, check=True, capture_output=True)
        (log,) = d.glob("ld.*")
        text = log.read_text()
        if all(len(RECORD.findall(line)) <= 1 for line in text.splitlines()):
            return log, text
    pytest.fail("glibc cut a line in each of 20 runs")


def test_each_cut_a_child_could_make(fork_log):
    """Every parent binding line cut by each of the child's lines (the record taken out of its place)."""
    log, text = fork_log
    lines = text.splitlines()
    parent = int(log.name.split(".")[1])
    binding = [i for i, ln in enumerate(lines) if RECORD.search(ln)]
    of_parent = [i for i in binding if int(RECORD.search(lines[i]).group(1)) == parent]
    of_child = [i for i in binding if int(RECORD.search(lines[i]).group(1)) != parent]
    assert of_parent and of_child
    # one of the child's lines, or two (it may write more than one before the parent's second write)
    for run in ([c] for c in of_child) if len(of_child) < 2 else [*([c] for c in of_child), of_child[:2]]:
        rest = [ln for i, ln in enumerate(lines) if i not in run]
        for p in [i - sum(1 for c in run if c < i) for i in of_parent]:
            tangled = _tangle(rest, p, [lines[c] for c in run])
            assert mine(parsed(tangled, parent)) == records(text), (p, run)
            assert Counter((r[1], r[4], r[5]) for r in parsed(tangled, parent)) == versions(text), (p, run)


def test_a_pasted_log_with_blanks_after_its_lines_is_read_whole():
    """A log pasted through an editor or a web page may keep blanks after each line: every binding is
    still read, unversioned ones too (the record regex over the same text is the oracle)."""
    text = REAL.read_text()
    # every other binding line as glibc prints an unversioned symbol (its "\n" branch), then blanks
    lines = [re.sub(r"' \[[^\]]+\]$", "'", ln) if k % 2 else ln for k, ln in enumerate(_tangle_free(text))]
    assert sum(1 for ln in lines if ln.endswith("'")) > 10
    blank = [ln + "  " for ln in lines]
    rows = parsed(blank, int(REAL.name.split(".")[1]))
    assert mine(rows) == records("\n".join(blank))


def _tangle_free(text: str) -> list[str]:
    """The real log's lines with its cut line put back as glibc meant it (the oracle's own reading)."""
    from oracles import ld_debug_lines
    return ld_debug_lines(text)


def test_import_reads_a_cut_line_in_a_file_and_on_stderr(tmp_path):
    """`gotrace import ld-debug` of the real log as an LD_DEBUG_OUTPUT file, and the same lines as a
    stderr capture (no pid in the name: lines grouped by their prefixes)."""
    text = REAL.read_text()
    expected = Counter((pid, sym) for (pid, _r, sym, _p), n in records(text).items() for _ in range(n))
    for name in ("ld.1044", "stderr.txt"):
        d = tmp_path / name.replace(".", "-")
        d.mkdir()
        (d / name).write_text(text)
        r = gotrace_cli("import", "ld-debug", str(d / name), "-o", str(d / "s"))
        assert r.returncode == 0, r.stderr
        ev = load_session(d / "s").events
        assert Counter(zip(ev["pid"].astype(int), ev["symbol"].astype(str), strict=True)) == expected, name
