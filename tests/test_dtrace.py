"""The D scripts and the `dtrace` backend, with a real D compiler and runtime: DTrace for Linux.

CI builds DTrace for Linux (.ci/run) and hands it over in GOTRACE_DTRACE; elsewhere a
`dtrace` on PATH is used, or these tests skip saying so. The macOS side (dyld's probes,
stop()/pidresume(), csrutil) cannot run here: its records are decoded from lines in the
scripts' printed formats, its commands checked as built. Not run on macOS.
"""
from __future__ import annotations

import collections
import glob
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, require
from tracer.capture.dtrace import backend as dt
from tracer.capture.dtrace.decode import DtraceDecoder

SCRIPTS = sorted((ROOT / "dscripts").glob("*.d"))
# What DTrace for Linux cannot compile, and the only reason it may give (Darwin-only actions)
DARWIN_ONLY = {"execstop.d": "stop() is not implemented (yet)", "pidresume.d": "undefined function name: pidresume"}


def require_dtrace() -> str:
    path = dt.dtrace_path()
    require(path is not None, "no dtrace: set GOTRACE_DTRACE (CI builds DTrace for Linux) or put one on PATH")
    require(os.geteuid() == 0, "DTrace needs root")
    return path


def test_every_d_script_compiles_with_a_real_d_compiler():
    dtrace = require_dtrace()
    assert len(SCRIPTS) >= 6
    for script in SCRIPTS:
        out = subprocess.run([dtrace, "-e", "-Z", "-w", "-x", "defaultargs", "-s", str(script), "-c", "/bin/true"],
                             capture_output=True, text=True, timeout=120)
        if script.name in DARWIN_ONLY:
            assert out.returncode != 0 and DARWIN_ONLY[script.name] in out.stderr, (script.name, out.stderr)
        else:
            assert out.returncode == 0, (script.name, out.stderr)


def test_every_d_script_has_a_header_and_an_example():
    for script in SCRIPTS:
        head = script.read_text().split("*/", 1)[0]
        for word in ("USAGE", "CAVEATS", "EXAMPLE", script.name, "Output"):
            assert word in head, f"{script.name} header lacks {word}"
        example = script.with_name(script.stem + "_example.txt")
        assert example.exists() and example.stat().st_size > 100, example
        assert "$1" not in script.read_text().split("*/", 1)[1] or "defaultargs" in script.read_text()


@pytest.fixture(scope="module")
def dlsym_tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("dlsym") / "dlsym_tree"
    subprocess.run(["gcc", "-O0", "-o", str(out), str(ROOT / "tests/csrc/dlsym_tree.c"), "-ldl"], check=True)
    return out


def test_dlsym_of_a_process_tree_against_ld_debug(dlsym_tree, tmp_path):
    """A program dlsyms found and missing names in itself and in a forked child: every
    dlsym glibc's LD_DEBUG reports for those names is in the session, in the right pid,
    with a latency; the missing ones are there, not found."""
    require_dtrace()
    from tracer import bind, load_session

    logs = tmp_path / "ld"
    logs.mkdir()
    env = dict(os.environ, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=str(logs / "ld"))
    res = bind([str(dlsym_tree)], out=tmp_path / "s", backend="dtrace", env=env)
    assert res.exit_code == 0
    s = load_session(res.session)
    pids = set(s.processes["pid"].astype(int))
    oracle = collections.Counter()
    for path in glob.glob(str(logs / "ld.*")):
        for line in open(path, errors="replace"):
            m = re.match(r"\s*(\d+):\tbinding file .+ \[\d+\] to (.+?) \[\d+\]: normal symbol `(cos|tan|sin)'", line)
            if m and int(m.group(1)) in pids:
                oracle[(int(m.group(1)), m.group(3), os.path.basename(m.group(2)))] += 1
    ev = s.events
    found = ev[ev["resolved"]]
    ours = collections.Counter(zip(found["pid"].astype(int), found["symbol"].astype(str),
                                   found["provider"].astype(str).map(os.path.basename)))
    assert len(oracle) == 3 and len({p for p, _s, _l in oracle}) == 2, oracle  # parent and child
    assert ours == oracle
    missing = ev[~ev["resolved"]]
    root = int(s.processes.loc[s.processes["argv"].notna(), "pid"].iloc[0])
    assert {(int(p), str(n)) for p, n in zip(missing["pid"], missing["symbol"])} == {
        (root, "gotrace_nope_parent"), (next(p for p in pids if p != root), "gotrace_nope_child")}
    assert missing["provider"].isna().all()
    assert (ev["latency_ns"] > 0).all() and (ev["kind"].astype(str) == "dlsym").all()
    procs = {int(r.pid): r for r in s.processes.itertuples()}
    child = next(p for p in pids if p != root)
    assert procs[root].exit_code == 0 and procs[child].exit_code == 3 and procs[child].ppid == root
    late = s.meta["dtrace"]["attached_late"]
    assert [r["pid"] for r in late] == [child] and late[0]["late_ms"] > 0
    assert s.meta["latency_method"]["method"].startswith("DTrace pid provider")


def test_macos_records_decode():
    """B and R records as dyldbindsnoop.d prints them (not run on macOS)."""
    images = {(7, 0x100F58000): "/Users/me/hello", (7, 0x18B2E8000): "/usr/lib/system/libsystem_malloc.dylib"}
    d = DtraceDecoder(lambda pid, a: None, lambda pid, mh: images.get((pid, mh)))
    d.feed("E\t100\t7\t1\t/Users/me/hello\n")
    row = d.feed("B\t200\t7\t7\t2875\t100f58000\t18b2e8000\t2c1a4\t1\t_malloc\n")
    assert row == (200, 7, 7, "/Users/me/hello", "/Users/me/hello", "_malloc",
                   "/usr/lib/system/libsystem_malloc.dylib", "eager", True, 2875)
    miss = d.feed("B\t210\t7\t7\t1733\t100f58000\t0\t0\t1\t_weak_optional\n")
    assert miss[6] is None and miss[8] is False
    absolute = d.feed("B\t211\t7\t7\t900\t100f58000\t0\t1234\t2\t_abs\n")
    assert absolute[8] is True
    d.feed("R\t300\t7\t7\t98112\t100f58000\n")
    assert d.relocations == [{"ts_ns": 300, "pid": 7, "duration_ns": 98112, "path": "/Users/me/hello"}]
    d.feed("garbage\n")
    assert d.malformed == 1


def test_macos_environment_reads_go_to_their_images():
    """On macOS execstop.d holds each process at its exec (STOP) and gotrace reads KERN_PROCARGS2 then:
    each read belongs to the image exec'd just before its STOP, and a child that never exec'd keeps
    its parent's image's (not run on macOS: records in proctree.d's and execstop.d's formats, and a
    KERN_PROCARGS2 buffer laid out as xnu's sysctl_procargsx writes it: argc, the exec path, NUL
    padding, the arguments, the environment)."""
    from tracer.procfs import procargs_environ

    raw = (struct.pack("<i", 2) + b"/usr/bin/env\0\0\0\0" + b"env\0./hello\0"
           + b"PATH=/usr/bin\0DYLD_INSERT_LIBRARIES=/tmp/libpre.dylib\0HOME=/Users/me\0\0executable_path=x\0")
    environment = procargs_environ(raw)
    assert environment == ["PATH=/usr/bin", "DYLD_INSERT_LIBRARIES=/tmp/libpre.dylib", "HOME=/Users/me"]
    assert procargs_environ(struct.pack("<i", 5) + b"/bin/x\0a\0") is None  # shorter than argc says
    d = DtraceDecoder(lambda pid, a: None)
    for line in ("E\t100\t7\t1\t/usr/bin/env\n", "E\t200\t7\t1\t./hello\n", "F\t300\t7\t8\n", "X\t400\t8\t7\t1\n"):
        d.feed(line)
    d.environments[(7, 105)] = ([], None)  # STOP of the first image
    d.environments[(7, 203)] = (["DYLD_INSERT_LIBRARIES=/tmp/libpre.dylib"], None)
    rows = {(r["pid"], r["exe"]): r["loader_env"] for r in d.processes_rows(7, ["env", "./hello"], 0, 1, 2, 1)}
    assert rows == {(7, "/usr/bin/env"): [], (7, "./hello"): ["DYLD_INSERT_LIBRARIES=/tmp/libpre.dylib"],
                    (8, "./hello"): ["DYLD_INSERT_LIBRARIES=/tmp/libpre.dylib"]}


def test_macos_commands_and_sip():
    plan = dt.Plan("/usr/sbin/dtrace", darwin=True, arm64=True)
    tree = plan.tree(42)
    assert tree[-2:] == ["-p", "42"] and "-w" in tree and any(a.endswith("execstop.d") for a in tree)
    proc = plan.process(43)
    assert [Path(a).name for a in proc if a.endswith(".d")] == ["dyldbindsnoop.d", "dlsymsnoop.d", "pidresume.d"]
    assert proc[-3:] == ["-p", "43", "1"] and plan.attach_on == "STOP"
    assert dt.Plan("/usr/sbin/dtrace", darwin=True, arm64=False).process(43)[-1] == "0"
    linux = dt.Plan("/x/dtrace", darwin=False)
    assert linux.attach_on == "F" and not any("execstop" in a or "pidresume" in a for a in linux.tree(1) + linux.process(1))
    # `csrutil status` as macOS prints it
    assert dt.sip_restricts_dtrace("System Integrity Protection status: enabled.\n")
    assert not dt.sip_restricts_dtrace("System Integrity Protection status: disabled.\n")
    custom = ("System Integrity Protection status: enabled (Custom Configuration).\n\nConfiguration:\n"
              "\tApple Internal: disabled\n\tKext Signing: enabled\n\tFilesystem Protections: enabled\n"
              "\tDebugging Restrictions: enabled\n\tDTrace Restrictions: disabled\n\tNVRAM Protections: enabled\n")
    assert not dt.sip_restricts_dtrace(custom)


def test_probe_says_what_is_missing(monkeypatch):
    monkeypatch.setenv(dt.DTRACE_ENV, "/nonexistent/dtrace")
    avail = dt.DtraceBackend().probe()
    assert not avail.ok and "GOTRACE_DTRACE" in avail.reason
    monkeypatch.delenv(dt.DTRACE_ENV)
    monkeypatch.setattr(dt.shutil, "which", lambda name: "/usr/sbin/dtrace")
    monkeypatch.setattr(dt.os, "geteuid", lambda: 501)
    avail = dt.DtraceBackend().probe()
    assert not avail.ok and "root" in avail.reason and "sudo" in avail.fix


def test_a_child_re_parented_before_it_execs_keeps_the_parent_that_forked_it(tmp_path):
    """tests/csrc/reparent.c, a child subreaper: its child A forks B and exits; B, re-parented to
    the program, then execs /bin/true. proctree.d's E and X records for B then name the program
    as B's parent; the session keeps the one that forked it. Oracle: fork()'s return value in
    A, written by A with its own getpid(); the program's exit status (B's, through wait())."""
    require_dtrace()
    from tracer import bind, load_session

    prog = tmp_path / "reparent"
    subprocess.run(["gcc", "-O0", "-o", str(prog), str(ROOT / "tests/csrc/reparent.c")], check=True)
    told = tmp_path / "pids"
    res = bind([str(prog), str(told), "/bin/true"], out=tmp_path / "s", backend="dtrace")
    assert res.exit_code == 0
    a, b = (int(x) for x in told.read_text().split())
    procs = load_session(res.session).processes
    root = int(procs.loc[procs["argv"].notna(), "pid"].iloc[0])
    ppids = {(int(r.pid), r.exe): int(r.ppid) for r in procs.itertuples()}
    assert ppids[(a, str(prog))] == root
    assert ppids[(b, "/bin/true")] == a, procs[["pid", "ppid", "exe"]]


def test_a_thread_is_not_a_fork(tmp_path):
    """DTrace for Linux fires proc:::create for a new thread too, its pr_pid the process's own
    pid: proctree.d then prints "F ts P P". A child of the tree that starts a thread keeps the
    parent that forked it. Oracle: the program's own getppid() and getpid(), written by it."""
    require_dtrace()
    from tracer import bind, load_session

    told = tmp_path / "pids"
    code = ("import os, sys, threading; t = threading.Thread(target=len, args=((),)); t.start(); t.join(); "
            "open(sys.argv[1], 'w').write(f'{os.getpid()} {os.getppid()}')")
    res = bind(["/bin/sh", "-c", '/usr/bin/python3 -c "$0" "$1"; exit 0', code, str(told)], out=tmp_path / "s",
               backend="dtrace")
    assert res.exit_code == 0
    pid, ppid = (int(x) for x in told.read_text().split())
    procs = load_session(res.session).processes
    assert [int(p) for p in procs.loc[procs["pid"] == pid, "ppid"]] == [ppid], procs[["pid", "ppid", "exe"]]


def test_drop_lines_are_counted_as_lost_records():
    """dtrace(1) says how many records its full buffers lost in lines of libdtrace's format
    (dt_handle.c dt_handle_cpudrop: "%llu drop%s on CPU %d", printed with the "dtrace: " prefix);
    aggregation and dynamic variable drops lose no record of these scripts."""
    from tracer.capture.dtrace.fleet import Fleet, Tracer

    fleet = Fleet()
    fleet.tracers = [Tracer("tree", None, stderr=["dtrace: 1 drop on CPU 0", "dtrace: 3 aggregation drops on CPU 0"]),
                     Tracer("42", None, stderr=["dtrace: 12 drops on CPU 1", "dtrace: 5 dynamic variable drops",
                                                "dtrace: 7 drops on CPU 1 and more"])]
    assert fleet.records_dropped() == 13


def test_records_dtrace_dropped_make_every_count_a_lower_bound(tmp_path):
    """A program that calls dlsym a million times as fast as it can outruns DTrace's buffers:
    what dtrace dropped is counted as lost and the report calls its counts lower bounds; nothing is
    lost silently. Oracle: the program's own count of its dlsym calls, written by it, and dtrace's
    own drop lines."""
    require_dtrace()
    from tracer import bind, load_session
    from tracer.analysis.report import report_session

    prog = tmp_path / "storm"
    subprocess.run(["gcc", "-O2", "-o", str(prog), str(ROOT / "tests/csrc/dlsym_storm.c"), "-ldl"], check=True)
    told = tmp_path / "calls"
    res = bind([str(prog), "1000000", str(told)], out=tmp_path / "s", backend="dtrace")
    assert res.exit_code == 0
    calls = int(told.read_text())
    s = load_session(res.session)
    recorded = int(((s.events["symbol"].astype(str) == "cos") & s.events["resolved"]).sum())
    lost = int(s.meta["lost_events"])
    assert recorded <= calls and recorded + lost >= calls, (recorded, lost, calls)  # none lost silently
    said = any(re.fullmatch(r"dtrace: N drops? on CPU N", line) for line in s.meta["dtrace"]["stderr"])
    assert said == (lost > 0), (s.meta["dtrace"]["stderr"], lost)
    assert report_session(res.session)["session"]["counts_lower_bound"] is (lost > 0)


def test_a_process_a_hung_dtrace_holds_is_let_go(tmp_path):
    """DTrace for Linux's process control now and then hangs at an exec that follows forks (seen
    with a pyenv shim on PATH: #!/usr/bin/env bash, a subshell, then exec of another #! script
    found on PATH), holding its process in a tracing stop for good: the command never ended. Such a
    script, run six times: every run ends with the script's own output and exit status, and a run
    whose dtrace hung says which process it held (and is marked incomplete). Oracle: the script run
    without gotrace; /proc/PID/exe for the process named."""
    require_dtrace()
    import json
    import shutil

    from conftest import gotrace_cli

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "target.sh").write_text("#!/usr/bin/env bash\necho from-target\nexit 3\n")
    shim = tmp_path / "shim.sh"
    shim.write_text(f"#!/usr/bin/env bash\nPATH={bindir}:$PATH\nx=$( (cd /tmp; readlink /bin/sh) )\nexec target.sh\n")
    for f in (shim, bindir / "target.sh"):
        f.chmod(0o755)
    plain = subprocess.run([str(shim)], capture_output=True, text=True)
    assert (plain.returncode, plain.stdout) == (3, "from-target\n")
    # the programs the script's processes run: held at an exec, a process is env (#!/usr/bin/env bash) or bash
    chain = {p for name in ("env", "bash") for p in (shutil.which(name), os.path.realpath(shutil.which(name)))}
    held = 0
    for i in range(6):
        out = gotrace_cli("bind", "--backend", "dtrace", "-o", str(tmp_path / f"s{i}"), "--", str(shim), timeout=180)
        assert (out.returncode, out.stdout) == (3, "from-target\n"), out.stderr
        meta = json.loads((tmp_path / f"s{i}" / "meta.json").read_text())
        for r in meta["dtrace"]["released"]:
            held += 1
            assert r["exe"] in chain and r["held_s"] >= 10, r
            assert meta["complete"] is False and str(r["pid"]) in meta["incomplete_reason"]
    uprobes = open("/sys/kernel/tracing/uprobe_events").read()
    left = [int(p) for p in re.findall(r"dt_(\d+)_dtrace/", uprobes)]
    assert not [p for p in left if not os.path.exists(f"/proc/{p}")]  # no dead dtrace's events left behind


def test_only_dead_dtraces_uprobe_events_are_swept():
    """The sweep removes the uprobe events of dtraces that are gone (group dt_PID_dtrace, no process
    PID) and no other: another tool's event stays. Oracle: the kernel's uprobe_events list."""
    require_dtrace()
    from tracer.capture.dtrace.hung import UPROBE_EVENTS, sweep_uprobes

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid no process has now
    mine = [f"p:dt_{dead.pid}_dtrace/BEGIN /bin/true:0x0", "p:gotrace_test_keep/keep /bin/true:0x0"]
    for line in mine:
        fd = os.open(UPROBE_EVENTS, os.O_WRONLY | os.O_APPEND)
        os.write(fd, (line + "\n").encode())
        os.close(fd)
    try:
        sweep_uprobes()
        listed = open(UPROBE_EVENTS).read()
        assert f"dt_{dead.pid}_dtrace/BEGIN" not in listed and "gotrace_test_keep/keep" in listed
    finally:
        fd = os.open(UPROBE_EVENTS, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"-:gotrace_test_keep/keep\n")
        except OSError:
            pass
        os.close(fd)


def test_the_watchdog_lets_go_only_after_its_limit(monkeypatch):
    """The rule itself, on a dtrace stand-in (a sleeping process: a real hang cannot be made on
    demand): a process held (tracing stop, its dtrace's ptrace thread on a futex) is let go once it has
    been held the whole limit, not before, and its dtrace is killed. Oracle: the stand-in's exit
    status (SIGKILL) and the monotonic times given."""
    import signal
    import types

    from tracer.capture.dtrace import hung

    stand_in = subprocess.Popen(["sleep", "60"])
    fleet = types.SimpleNamespace(tracers=[types.SimpleNamespace(label="4242", proc=stand_in),
                                           types.SimpleNamespace(label="tree", proc=stand_in)])
    monkeypatch.setattr(hung, "held", lambda pid, dtrace_pid: pid == 4242 and dtrace_pid == stand_in.pid)
    dog = hung.Watchdog(fleet, stuck_s=10.0)
    try:
        for now in (100.0, 105.0, 109.9):
            dog.check(now)
            assert dog.released == [] and stand_in.poll() is None
        dog.check(110.0)
        assert [(r["pid"], r["dtrace_pid"], r["held_s"]) for r in dog.released] == [(4242, stand_in.pid, 10.0)]
        assert stand_in.wait(10) == -signal.SIGKILL
    finally:
        if stand_in.poll() is None:
            stand_in.kill()


def test_a_lookup_printed_before_its_exec_is_named_by_the_program_exec_d():
    """Each dtrace switches its own buffers: a process's dtrace may print a lookup before the tree's dtrace
    prints the exec that started the program. Seen here, in this order, from `gotrace bind -b dtrace --
    dlsymwait GO zlibVersion` (tests/csrc/why/dlsymwait.c, LD_PRELOAD=libz.so.1): its S line (ts ...903192)
    read before the tree's E (ts ...244403), and the event's exe came out null. A record waits until the
    tree has printed one TREE_PAST_NS past it (its heartbeat comes every 50 ms) — the process's own later
    records do not count — then is named by the program its pid ran at its time: the root's (a thread's
    lookup too), and a forked child's own after its exec (E), not its parent's."""
    import types

    from tracer.capture.dtrace import follow
    from tracer.capture.dtrace.fleet import Fleet
    from tracer.capture.dtrace.names import Names
    from tracer.capture.dtrace.plan import Plan

    written = []
    run = follow.Follow(Plan("dtrace", False), Fleet(),
                        DtraceDecoder(lambda pid, addr: "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13"),
                        types.SimpleNamespace(sink=written.append), 8410, Names(False))

    def exes() -> list:
        run._flush(force=True)
        return [e for t in written for e in t.column("exe").to_pylist()]

    first = 375044903192
    for label, line in (("tree", "READY\t8410"), ("8410", "READY\t8410"),
                        ("8410", f"S\t{first}\t8410\t8410\t16415\t0\t7f36d3653520\t55d36099a1ac\tzlibVersion"),
                        ("8410", f"S\t{first + 2 * follow.TREE_PAST_NS}\t8410\t8412\t16415\t0\t7f36d3653520\t"
                                 "55d36099a1ac\tzlibVersion"),
                        ("tree", "E\t375044244403\t8410\t8404\t/tmp/dsw"),
                        ("tree", f"T\t{first + follow.TREE_PAST_NS - 1}")):
        run._take(label, line)
    assert exes() == []  # the tree has not got far enough past either lookup: both held
    run._take("tree", f"T\t{first + follow.TREE_PAST_NS}")
    assert exes() == ["/tmp/dsw"]
    run._take("tree", f"T\t{first + 3 * follow.TREE_PAST_NS}")
    assert exes() == ["/tmp/dsw", "/tmp/dsw"]  # a thread (tid 8412) of the same process
    for label, line in (("tree", "F\t375110000000\t8410\t8411"),
                        ("8411", "S\t375112000000\t8411\t8411\t9000\t0\t7f36d3653520\t55d36099a1ac\tzlibVersion"),
                        ("tree", "E\t375111000000\t8411\t8410\t/usr/bin/child"), ("tree", "T\t375150000000")):
        run._take(label, line)
    assert exes() == ["/tmp/dsw", "/tmp/dsw", "/usr/bin/child"]
    run._take("8411", "S\t375160000000\t8411\t8411\t9000\t0\t7f36d3653520\t55d36099a1ac\tzlibVersion")
    run._settle(force=True)  # the command is done: what is held is written, named as known
    assert exes() == ["/tmp/dsw", "/tmp/dsw", "/usr/bin/child", "/usr/bin/child"]


def test_macos_binds_wait_for_dylds_log_and_dlsyms_do_not():
    """On macOS (not run on macOS) a B or R record names images by the headers dyld's log gives at the end:
    Follow keeps those lines back whole (drain_rest decodes them then); an S record is decoded as it comes."""
    import types

    from tracer.capture.dtrace.fleet import Fleet
    from tracer.capture.dtrace.follow import Follow
    from tracer.capture.dtrace.names import Names
    from tracer.capture.dtrace.plan import Plan

    written = []
    run = Follow(Plan("dtrace", True), Fleet(), DtraceDecoder(lambda pid, addr: "/usr/lib/libSystem.B.dylib"),
                 types.SimpleNamespace(sink=written.append), 500, Names(True))
    bind = "B\t1000\t500\t500\t700\t100000000\t180000000\t10\t0\t_malloc"
    run._take("500", bind)
    run._take("500", "S\t2000\t500\t500\t900\t0\t7f0000001000\t100001000\t_objc_msgSend")
    run._settle(force=True)
    run._flush(force=True)
    assert run.deferred == [bind]
    assert [t for table in written for t in table.column("symbol").to_pylist()] == ["_objc_msgSend"]
