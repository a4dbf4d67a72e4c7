"""The probe scripts compile (bpftrace -d is a dry run) and keep their headers."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import require
from tracer.capture.bpftrace import backend as bpf_mod
from tracer.capture.bpftrace import launch as bpftrace_launch

SCRIPTS = sorted(Path(bpftrace_launch.script_path()).parent.glob("*.bt"))


def test_every_script_has_a_header_and_an_example():
    assert SCRIPTS
    for script in SCRIPTS:
        head = script.read_text().split("*/", 1)[0]
        for word in ("USAGE", "CAVEATS", "EXAMPLE", script.name):
            assert word in head, f"{script.name} header lacks {word}"
        assert script.with_name(script.stem + "_example.txt").exists()


def test_scripts_compile_dry_run():
    require(shutil.which("bpftrace") is not None and os.geteuid() == 0, "bpftrace dry runs need root and bpftrace")
    for script in SCRIPTS:
        out = subprocess.run(["bpftrace", "-d", str(script), *bpftrace_launch.script_args(1, 1)],
                             capture_output=True, text=True, timeout=120,
                             env=bpftrace_launch.bpftrace_env())
        assert out.returncode == 0, out.stderr[-2000:]
        errors = [l for l in out.stderr.splitlines()
                  if "ERROR" in l and not any(n in l for n in bpf_mod.STDERR_NOISE)]
        assert not errors


def test_not_root_says_so(monkeypatch):
    monkeypatch.setattr(bpf_mod.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(bpf_mod.shutil, "which", lambda name: "/usr/bin/bpftrace")
    avail = bpf_mod.BpftraceBackend().probe()
    assert not avail.ok and "root" in avail.reason and "sudo" in avail.fix


def test_ldso_function_ranges_match_readelf():
    """The addresses bindsnoop.bt is given (LOOKUP, FIXUP_*) are readelf's view of ld.so's debug file."""
    from tracer.binary import facts as elfinfo
    from tracer.capture.ldso import LDSO_SYMBOLS, ldso_path

    ldso = ldso_path()
    debug = [c for c in elfinfo.debug_candidates(ldso)[1:] if os.path.exists(c)]
    require(bool(debug), "ld.so's debug file is missing (apt-get install libc6-dbg)")
    ours = elfinfo.function_ranges(ldso, LDSO_SYMBOLS)
    theirs = {}
    out = subprocess.run(["readelf", "-sW", debug[0]], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 8 and f[3] == "FUNC" and f[7] in LDSO_SYMBOLS and f[7] not in theirs:
            start = int(f[1], 16)
            theirs[f[7]] = (start, start + int(f[2], 0))
    assert ours == theirs and set(ours) == LDSO_SYMBOLS


def test_exit_code_offset_is_what_bpftrace_reads_through_btf(tmp_path):
    """tracer/capture/bpftrace/btf.py's offsetof(task_struct, exit_code) reads the same int as
    bpftrace's own BTF-typed curtask->exit_code (the oracle), for an exit(7)."""
    from conftest import require_bpftrace
    from tracer.capture.bpftrace.btf import task_exit_code_offset

    require_bpftrace()
    off = task_exit_code_offset()
    assert off and off > 0
    prog = tmp_path / "gotrace-exit7"  # comm: the first 15 bytes of the name
    shutil.copy("/bin/sh", prog)
    script = ('tracepoint:sched:sched_process_exit /comm == "gotrace-exit7"/ '
              f'{{ printf("%d %d\\n", curtask->exit_code, *(int32 *)((uint64)curtask + {off})); exit(); }} '
              'BEGIN { printf("READY\\n"); }')
    bt = subprocess.Popen(["bpftrace", "-e", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        while not bt.stdout.readline().startswith("READY"):
            pass
        subprocess.run([str(prog), "-c", "exit 7"])
        assert bt.stdout.readline().split() == [str(7 << 8)] * 2
    finally:
        bt.kill()
        bt.wait()


def test_descendants_exit_codes_in_a_bpftrace_session(tmp_path):
    """X records carry each process's wait status: a child's exit(7) and a
    child killed by SIGKILL come out as the shell would report them."""
    from conftest import require_bpftrace
    from tracer import bind, load_session

    require_bpftrace()
    res = bind(["sh", "-c", 'sh -c "exit 7"; sh -c "kill -9 \\$\\$"; exit 3'], out=tmp_path / "s",
               backend="bpftrace")
    assert res.exit_code == 3
    procs = load_session(tmp_path / "s").processes
    codes = sorted(int(c) for c in procs["exit_code"].dropna())
    assert codes == [3, 7, 128 + 9], procs[["pid", "exe", "exit_code"]]


def test_descendants_argv_in_a_bpftrace_session(tmp_path):
    """A records: a descendant's argv as it was exec'd, element by element (spaces,
    tabs and an empty string kept), the first 64 of a longer one."""
    from conftest import require_bpftrace
    from tracer import bind, load_session

    require_bpftrace()
    short = ["/bin/echo", "a b", "tab\there", "", "x" * 100]
    long = ["/bin/echo"] + [f"arg{i}" for i in range(1, 80)]
    script = 'exec "$@"'
    res = bind(["sh", "-c", f'sh -c \'{script}\' sh "$@" >/dev/null; exec "$@" >/dev/null', "sh", *short],
               out=tmp_path / "short", backend="bpftrace")
    assert res.exit_code == 0
    procs = load_session(tmp_path / "short").processes
    echoes = [list(a) for a in procs.loc[procs["exe"] == "/bin/echo", "argv"]]
    assert echoes == [short, short], procs[["pid", "exe", "argv"]]
    res = bind(["sh", "-c", '"$@" >/dev/null', "sh", *long], out=tmp_path / "long", backend="bpftrace")
    assert res.exit_code == 0
    procs = load_session(tmp_path / "long").processes
    assert [list(a) for a in procs.loc[procs["exe"] == "/bin/echo", "argv"]] == [long[:64]]
    # the command gotrace runs itself keeps its whole argv
    res = bind(long, out=tmp_path / "root", backend="bpftrace")
    assert [list(a) for a in load_session(tmp_path / "root").processes["argv"]] == [long]


def test_binding_map_read_by_gotrace_is_what_bpftrace_prints(modes_bins):
    """gotrace empties bindsnoop.bt's @b itself (tracer/capture/bpftrace/bpf_map.py) and
    decodes the kernel's bytes; the oracle is bpftrace's own print of the same
    map. The map is read without deleting after the command exits, then
    bpftrace prints it at exit: the two must hold the same records. More than
    one batch syscall's worth (BATCH_ENTRIES) of them, from several processes."""
    import sys

    from bindsnoop_run import run_by_hand
    from conftest import require_bpftrace
    from tracer.capture.bpftrace.bpf_map import BATCH_ENTRIES, BpfMap
    from tracer.capture.bpftrace.decode import BpftraceDecoder, _b_rows, records_table

    require_bpftrace()
    n_dlsym = BATCH_ENTRIES + 500
    burst = f"import ctypes; m = ctypes.CDLL('libm.so.6'); [m['cos'] for _ in range({n_dlsym})]"

    def read(bpftrace_pid: int):
        m = BpfMap.of_process(bpftrace_pid, bpf_mod.BINDING_MAP)
        try:
            keys, values, n = m.drain(delete=False)
            m.batched = False  # the path for kernels without batch operations, same map
            one_by_one = records_table(*m.drain(delete=False), m.value_size)
            return records_table(keys, values, n, m.value_size), one_by_one, m.key_size, m.value_size
        finally:
            m.close()

    out, code, (ours, one_by_one, key_size, value_size) = run_by_hand(
        ["bash", "-c", f"{modes_bins['lazy']} 1 >/dev/null && {sys.executable} -c \"{burst}\""], after_exit=read)
    assert code == 0
    assert (key_size, value_size) == (bpf_mod.BINDING_KEY_SIZE, bpf_mod.BINDING_VALUE_SIZE) == (16, 7 * 8 + 2 * 128)
    lines = [l for l in out.split(b"\n") if l.startswith(b"@b[")]
    printed = BpftraceDecoder()
    printed.feed(next(l for l in out.split(b"\n") if l.startswith(b"READY")))  # the record's size
    theirs = printed._parse_bindings(_b_rows(lines, printed.record_ints + 3)).drop(["map"])
    emitted = int(out.split(b"@emitted: ", 1)[1].split(b"\n", 1)[0])
    assert ours.num_rows == theirs.num_rows == emitted > n_dlsym
    key = [("tid", "ascending"), ("ts_ns", "ascending")]
    assert ours.sort_by(key).to_pylist() == theirs.sort_by(key).to_pylist() == one_by_one.sort_by(key).to_pylist()
    assert ours.schema == theirs.schema
    assert {"cos", "dlsym", "printf"} <= set(ours["symbol"].to_pylist())


def test_a_binding_map_laid_out_otherwise_is_refused(monkeypatch):
    """Another bpftrace could lay @b's tuple out differently (0.20 made pid 32-bit):
    then gotrace says so in one line instead of decoding garbage."""
    import pytest

    from tracer.errors import BackendUnavailable

    closed = []

    class Other:
        key_size, value_size = 16, 7 * 8 + 2 * 128 - 4

        def close(self):
            closed.append(True)

    monkeypatch.setattr(bpf_mod.BpfMap, "of_process", classmethod(lambda cls, pid, name: Other()))
    with open(os.devnull, "rb") as pipe:
        stream = bpf_mod._Stream(pipe, None, None)
        with pytest.raises(BackendUnavailable, match="--backend ld-debug"):
            stream.open_bindings(1)
    assert closed and stream.bindings is None
