"""Reading a tracer's text records (capture/bpftrace/lines.py): the READY wait, the execs told to the
run as soon as they are read, and the live process count — the parts the recorded session does not show.

The scripted streams are bindsnoop.bt's E record as dscripts/bindsnoop.bt prints it
(``E\\tts\\tpid\\tpath``), written by the test; what a read holds is fixed by the test (the reader's
method is given the read's bytes, or the pipe holds exactly what was written before the wait), so
nothing here depends on timing.
"""
from __future__ import annotations

import os
import shutil
import threading

import pytest

from conftest import require_backend
from tracer import bind
from tracer.capture.backend import CaptureRequest
from tracer.capture.bpftrace.decode import BpftraceDecoder
from tracer.capture.bpftrace.lines import LineReader
from tracer.capture.process_tree import ProcessTree
from tracer.capture.sink import Progress


def _reader(execs: list | None = None):
    """A reader on a fresh pipe, as the backends build it; (reader, write end)."""
    r, w = os.pipe()
    request = CaptureRequest(argv=["x"], env={}, sink=lambda table: None,
                             on_exec=lambda pid, exe: execs.append((pid, exe)) if execs is not None else None)
    decoder = BpftraceDecoder(tree=ProcessTree(on_exec=request.on_exec))
    return LineReader(os.fdopen(r, "rb"), decoder, request, "test-reader"), w


def _exec_line(pid: int, path: str) -> bytes:
    return f"E\t123456789\t{pid}\t{path}\n".encode()


@pytest.mark.parametrize("shape", ["first", "after-a-line", "after-a-cut-lines-end", "two"])
def test_every_complete_exec_line_of_a_read_is_announced(shape, tmp_path):
    """Each whole E line of a read is told to the run (pid, program) before its batch is decoded,
    wherever it sits in the read: first (a read begins where the previous one ended, at a line's
    start), after another record, after the newline that ends the previous read's last line.
    Oracle: the E lines the test wrote — their pid and path (/bin/true is no script: file(1)'s
    "ELF"; the kernel runs it as named)."""
    execs: list = []
    reader, w = _reader(execs)
    os.close(w)
    e = _exec_line(4242, "/bin/true")
    data = {"first": e + b"X\t1\t4242\t0\n",
            "after-a-line": b"F\t1\t4241\t4242\t0\n" + e,
            "after-a-cut-lines-end": b"\n" + e,
            "two": e + _exec_line(4243, "/bin/sh")}[shape]
    reader.announce_execs(data)
    assert execs == [(4242, "/bin/true")] + ([(4243, "/bin/sh")] if shape == "two" else [])


def test_an_exec_line_cut_at_the_reads_end_is_not_announced_half(tmp_path):
    """A read that ends inside an E line must not announce the path cut short (the run would keep
    another file, or none): only the decoder, once the line is whole, names it. Oracle: the E line
    the test wrote, cut by the test."""
    execs: list = []
    reader, w = _reader(execs)
    os.close(w)
    reader.announce_execs(_exec_line(4242, "/usr/bin/true")[:-6])
    assert execs == []


def test_a_path_with_a_tab_is_announced_whole(tmp_path):
    """The path is the E line's last field, tabs and all (bindsnoop.bt prints it raw). Oracle: the
    file the test made, its name holding a tab."""
    prog = tmp_path / "a\tprogram"
    shutil.copy("/bin/true", prog)
    execs: list = []
    reader, w = _reader(execs)
    os.close(w)
    reader.announce_execs(_exec_line(4242, str(prog)))
    assert execs == [(4242, str(prog))]


def test_a_script_is_announced_by_its_interpreter(tmp_path):
    """An exec of a #! script runs its interpreter: that is the program announced. Oracle: the
    script's first line as the test wrote it (binfmt_script reads the interpreter from it)."""
    script = tmp_path / "hello"
    script.write_text("#!/bin/sh -e\necho hi\n")
    script.chmod(0o755)
    execs: list = []
    reader, w = _reader(execs)
    os.close(w)
    reader.announce_execs(_exec_line(4242, str(script)) + _exec_line(4243, "relative/name"))
    assert execs == [(4242, "/bin/sh"), (4243, "relative/name")]


def _wait(reader, limit: float) -> list:
    """wait_ready's answer, from a thread: a wait that never ends must fail the test, not hang it."""
    got: list = []
    t = threading.Thread(target=lambda: got.append(reader.wait_ready(limit)), daemon=True)
    t.start()
    t.join(120)  # a guard against a hang only: the waits below end at once or after `limit`
    return got


def test_a_tracer_that_says_nothing_and_stays_is_not_ready(tmp_path):
    """A tracer that neither prints READY nor exits: wait_ready gives up after its limit, False.
    Oracle: the pipe, written by no one (its write end held open by the test)."""
    reader, w = _reader()
    try:
        assert _wait(reader, 0.05) == [False]
    finally:
        os.close(w)


def test_a_tracer_gone_before_ready_is_not_ready(tmp_path):
    """A tracer whose output ends (it exited) before READY: False, at once. Oracle: the pipe the
    test wrote records into and closed, without READY."""
    reader, w = _reader()
    os.write(w, b"Attaching 12 probes...\n")
    os.close(w)
    assert _wait(reader, 60) == [False]


@pytest.mark.parametrize("limit", [60, 0.9])
def test_ready_already_written_is_ready(tmp_path, limit):
    """READY in the pipe before the wait: True, whatever follows, and with any limit — one under a
    second too (the whole limit is the wait's, to its last instant). Oracle: the pipe the test wrote."""
    reader, w = _reader()
    os.write(w, b"Attaching 12 probes...\nREADY\t4242\t7\n" + _exec_line(4242, "/bin/true"))
    try:
        assert _wait(reader, limit) == [True]
        assert reader.decoder.ready_pid == 4242
    finally:
        os.close(w)


@pytest.mark.parametrize("children", [0, 1, 2])
@pytest.mark.parametrize("backend", ["bpf", "bpftrace"])
def test_the_live_process_count_is_the_processes_that_ran(backend, children, tmp_path):
    """The progress line's process count, once the run is over, is the number of processes that ran
    a program: the shell and each child it started. Oracle: the shell's own account — its pid ($$)
    and each background child's ($!), which it writes to a file; every one of them execs (the
    shell by gotrace's start, each child /bin/true)."""
    require_backend(backend)
    pids = tmp_path / "pids"
    script = f"echo $$ > {pids}; " + "".join(f"/bin/true & echo $! >> {pids}; " for _ in range(children)) + "wait"
    progress = Progress()
    res = bind(["sh", "-c", script], out=tmp_path / "s", backend=backend, progress=progress)
    assert res.exit_code == 0
    ran = set(pids.read_text().split())
    assert len(ran) == children + 1
    assert progress.processes == len(ran)
