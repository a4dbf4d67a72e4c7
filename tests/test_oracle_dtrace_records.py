"""The DTrace decoder on the scripts' own published runs (dscripts/*_example.txt).

Those files are real output, recorded here with DTrace for Linux 2.0 on Debian 12, each with a
caption saying what was run. The expectations come from the caption and the record formats in
the scripts' headers (proctree.d: F/E/Q/X, reason 1 = exited with the last Q's code;
dlsymsnoop.d: S ts pid tid latency handle result caller name, result 0 = not found), never from
gotrace. They run everywhere: test_dtrace.py's live runs need a DTrace binary (CI builds one).
"""
from __future__ import annotations

from pathlib import Path

from tracer.capture.dtrace.decode import DtraceDecoder

DSCRIPTS = Path(__file__).resolve().parent.parent / "dscripts"


def records(name: str) -> list[str]:
    """The example's record lines (after the command line, up to the caption's closing prose)."""
    lines = (DSCRIPTS / name).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("READY\t"))
    out = []
    for line in lines[start:]:
        if not line.strip():
            break
        out.append(line + "\n")
    return out


def test_a_process_tree_as_proctree_d_recorded_it():
    """proctree_example.txt: a shell script (pid 5893, started by 5888) runs /bin/true, a subshell
    exiting 5, and /tmp/dl, which forks a child exiting 3 and exits 0; the script exits 3."""
    d = DtraceDecoder(lambda pid, addr: None)
    lines = records("proctree_example.txt")
    for line in lines:
        assert d.feed(line) is None
    assert d.malformed == 0
    first = int(lines[1].split("\t")[1])  # the first record's time: the root had started by then
    rows = d.processes_rows(root=5893, argv=["./tree.sh"], exit_code=3, start_ns=first - 1, end_ns=10**13,
                            own_pid=5888)
    got = {r["pid"]: (r["ppid"], r["exe"], r["exit_code"]) for r in rows}
    assert got == {
        5893: (5888, None, 3),          # the root: what gotrace saw it exit with; its exec precedes the trace
        5894: (5893, "/bin/true", 0),
        5895: (5893, None, 5),          # the subshell never exec'd: the shell's own image, unnamed here
        5896: (5893, "/tmp/dl", 0),
        5897: (5896, "/tmp/dl", 3),     # forked by /tmp/dl after its exec: runs /tmp/dl's image
    }
    assert [r["pid"] for r in rows][0] == 5893 and len(rows) == 5  # the root first, one image each
    by_pid = {r["pid"]: r for r in rows}
    assert by_pid[5893]["argv"] == ["./tree.sh"] and all(r["argv"] is None for r in rows if r["pid"] != 5893)
    # start at the fork (F), end at the exit (X), as the records say
    assert (by_pid[5894]["start_ns"], by_pid[5894]["end_ns"]) == (3722230802402, 3722232253119)
    assert (by_pid[5897]["start_ns"], by_pid[5897]["end_ns"]) == (3722233924825, 3722334279132)


def test_records_by_proctree_ds_format():
    """proctree.d's header: reason 2 = killed by a signal, 3 = killed and dumped core (no Q code is
    an exit code then); a second E is the same pid running a new image from then on; an X names
    the process's parent (its fourth field) even when its fork was never seen."""
    d = DtraceDecoder(lambda pid, addr: None)
    for line in ("F\t10\t1\t2\n", "E\t11\t2\t1\t/bin/sleep\n", "Q\t12\t2\t0\n", "X\t13\t2\t1\t2\n",
                 "F\t20\t1\t3\n", "E\t21\t3\t1\t/bin/crash\n", "X\t22\t3\t1\t3\n",
                 "F\t30\t1\t4\n", "E\t31\t4\t1\t/bin/false\n", "Q\t32\t4\t257\n", "X\t33\t4\t1\t1\n",
                 "F\t40\t1\t5\n", "E\t41\t5\t1\t/bin/sh\n", "E\t42\t5\t1\t/bin/true\n", "Q\t43\t5\t0\n",
                 "X\t44\t5\t1\t1\n",
                 "Q\t50\t6\t4\n", "X\t51\t6\t7\t1\n"):
        d.feed(line)
    assert d.malformed == 0
    rows = d.processes_rows(1, ["sh"], 0, 0, 100, 99)
    by_pid = {r["pid"]: r for r in rows}
    assert by_pid[2]["exit_code"] is None and by_pid[3]["exit_code"] is None
    assert by_pid[4]["exit_code"] == 257 & 0xFF  # exit(257) is status 1, as a shell says it
    five = [(r["exe"], r["start_ns"], r["end_ns"], r["exit_code"]) for r in rows if r["pid"] == 5]
    assert five == [("/bin/sh", 40, None, None), ("/bin/true", 42, 44, 0)]
    assert (by_pid[6]["ppid"], by_pid[6]["exit_code"], by_pid[6]["end_ns"]) == (7, 4, 51)


def test_dlsyms_as_dlsymsnoop_d_recorded_them():
    """dlsymsnoop_example.txt: ./dl (pid 5886) dlopens libm and dlsyms cos (found in libm),
    nope_nope (not found: result 0) and printf (handle 0, RTLD_DEFAULT; found in libc); the
    callers lie in ./dl. Addresses are named as /proc/PID/maps would: by the mapping holding them."""
    maps = {(0x55A0CB300000, 0x55A0CB400000): "/tmp/dl", (0x7EFEF4D00000, 0x7EFEF4DE0000): "/lib/libm.so.6",
            (0x7EFEF4DE0000, 0x7EFEF4F00000): "/lib/libc.so.6"}

    def name_of(pid, addr):
        assert pid == 5886
        return next((path for (lo, hi), path in maps.items() if lo <= addr < hi), None)

    d = DtraceDecoder(name_of)
    rows = [r for r in (d.feed(line) for line in records("dlsymsnoop_example.txt")) if r is not None]
    assert d.malformed == 0
    # (ts, pid, tid, exe, requester, symbol, provider, kind, resolved, latency_ns)
    assert [(r[1], r[2], r[4], r[5], r[6], r[7], r[8], r[9]) for r in rows] == [
        (5886, 5886, "/tmp/dl", "cos", "/lib/libm.so.6", "dlsym", True, 5277),
        (5886, 5886, "/tmp/dl", "nope_nope", None, "dlsym", False, 3175),
        (5886, 5886, "/tmp/dl", "printf", "/lib/libc.so.6", "dlsym", True, 3795),
    ]
    assert [r[0] for r in rows] == [3720227595232, 3720227612088, 3720227628061]
