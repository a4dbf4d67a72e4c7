"""Translated runs: arm64 programs under qemu-user through binfmt_misc.

Oracles: readelf's Machine for each file's architecture; binfmt_misc's own
entry list for registration; and the native run of the same program, whose
main-program bindings (symbol, providing library) must be the translated
run's — the two architectures' libc export the same names to it. Guest
lookup latencies (the QEMU plugin) are bounded by the program's own clock:
a lazy binding happens inside the first call the program timed itself.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import oracles
from conftest import ROOT, VENV_BIN, require, require_bpf, require_bpftrace, run_notebook
from tracer import bind, load_session
from tracer.binary.facts import file_arch
from tracer.capture.translated import guest_latency, translation as translate
from tracer.goenv import bindbench

GOTRACE = str(VENV_BIN / "gotrace")
CROSS = "aarch64-linux-gnu-gcc"


def _require_cross() -> None:
    require(shutil.which(CROSS) is not None, f"{CROSS} is not installed (gcc-aarch64-linux-gnu)")
    require(Path("/usr/lib/binfmt.d/qemu-aarch64.conf").exists(), "qemu-user-binfmt is not installed")


def _require_handler() -> None:
    """A registered arm64 handler, registering qemu's if we may (root)."""
    _require_cross()
    if translate.handler_for("arm64") is None:
        require(os.geteuid() == 0, "no arm64 binfmt_misc handler and not root to register one")
        translate.register_qemu("arm64")
    require(translate.handler_for("arm64") is not None, "arm64 binfmt_misc handler missing")


@pytest.fixture(scope="module")
def modes_pair(tmp_path_factory) -> dict[str, Path]:
    _require_cross()
    out = tmp_path_factory.mktemp("xmodes")
    bins = {}
    for arch, cc in (("x86_64", "gcc"), ("arm64", CROSS)):
        dst = out / f"modes-{arch}"
        subprocess.run([cc, "-O0", "-o", str(dst), str(ROOT / "tests/csrc/modes.c"), "-lm", "-ldl",
                        "-Wl,-z,lazy"], check=True)
        bins[arch] = dst
    return bins


def test_elf_arch_agrees_with_readelf(modes_pair):
    for arch, path in modes_pair.items():
        machine = oracles.readelf_header(path)["Machine"]
        assert file_arch(str(path)) == {"Advanced Micro Devices X86-64": "x86_64", "AArch64": "arm64"}[machine]
    assert file_arch("/etc/passwd") is None
    assert translate.normalize("aarch64") == "arm64" and translate.normalize("amd64") == "x86_64"


def _main_bindings(session, exe_suffix: str) -> set[tuple[str, str]]:
    """(symbol, provider) the main program bound. Kinds are left out: they follow
    each architecture's code generation (aarch64 crt calls __libc_start_main
    through the PLT, x86_64 through the GOT)."""
    ev = session.events
    mine = ev[ev["exe"].astype(str).str.endswith(exe_suffix)]
    main = mine[mine["requester"].astype(str).str.endswith(exe_suffix)]
    return set(zip(main["symbol"].astype(str), main["provider"].map(lambda p: os.path.basename(str(p)))))


def test_translated_c_program_matches_native(modes_pair, tmp_path):
    _require_handler()
    native = load_session(bind([str(modes_pair["x86_64"]), "0.25"], out=tmp_path / "n", backend="ld-debug",
                               env=dict(os.environ)).session)
    res = bind([str(modes_pair["arm64"]), "0.25"], out=tmp_path / "t", arch="arm64", env=dict(os.environ))
    assert res.exit_code == 0 and res.backend == "ld-debug"
    t = load_session(res.session)
    assert t.meta["translation"]["arch"] == "arm64" and "qemu" in t.meta["translation"]["translator"]
    guest = t.processes[t.processes["exe"].astype(str) == str(modes_pair["arm64"])]
    assert list(guest["arch"]) == ["arm64"] and list(guest["translator"]) == ["qemu-aarch64"]
    host = t.processes[t.processes["exe"].astype(str) != str(modes_pair["arm64"])]
    assert set(host["translator"].dropna()) <= {"qemu-aarch64"}  # the translator's own image
    assert native.processes["translator"].isna().all() and set(native.processes["arch"]) == {"x86_64"}
    nb, tb = _main_bindings(native, "modes-x86_64"), _main_bindings(t, "modes-arm64")
    assert nb == tb and ("cos", "libm.so.6") in tb
    cos = t.events[(t.events["symbol"] == "cos") & t.events["exe"].astype(str).str.endswith("modes-arm64")]
    assert set(cos["kind"].astype(str)) == {"lazy"}
    sin = t.events[t.events["symbol"] == "sin"]
    assert set(sin["kind"].astype(str)) == {"dlsym"}
    _require_guest_timing()  # every guest binding timed, none guessed
    guest_ev = t.events[t.events["exe"].astype(str) == str(modes_pair["arm64"])]
    assert guest_ev["latency_ns"].notna().all() and (guest_ev["latency_ns"] > 0).all()
    assert t.meta["guest_latency"]["bindings_timed"] == len(guest_ev)
    host_ev = t.events[t.events["exe"].astype(str) != str(modes_pair["arm64"])]
    assert host_ev["latency_ns"].isna().all()  # qemu's own start-up: LD_DEBUG has no times


def _require_guest_timing() -> None:
    require(guest_latency.guest_layout("arm64") is not None,
            "the arm64 guest ld.so or its debug symbols are missing: libc6:arm64 libc6-dbg:arm64 (scripts/setup.sh)")


def test_guest_lookups_timed_within_the_programs_own_clock(tmp_path):
    """bench-bind's probe times each libm function's first call itself (CLOCK_MONOTONIC in the
    guest); that call contains the symbol's lazy lookup, so the plugin's figure must fit in it."""
    _require_handler()
    _require_guest_timing()
    probe = bindbench.build("arm64")
    out = subprocess.run([GOTRACE, "bind", "-q", "--arch", "arm64", "-o", str(tmp_path / "s"), "--",
                          str(probe), "0.5", "1.5"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    first = {name: int(f) for name, f, _ in (line.split("\t") for line in out.stdout.splitlines()
                                             if not line.startswith("#"))}
    assert len(first) >= 10
    s = load_session(tmp_path / "s")
    ev = s.events[s.events["exe"].astype(str) == str(probe)]
    assert ev["latency_ns"].notna().all() and s.meta["guest_latency"]["processes_unpaired"] == []
    lazy = ev[(ev["kind"] == "lazy") & ev["symbol"].isin(first)]
    assert set(lazy["symbol"]) == set(first)
    for sym, lat in zip(lazy["symbol"], lazy["latency_ns"]):
        assert 0 < lat <= first[sym], (sym, lat, first[sym])
    # translated lookups are slower than the same lookups natively (bpftrace)
    require_bpftrace()
    n = load_session(bind([str(bindbench.build("x86_64")), "0.5", "1.5"], out=tmp_path / "n", backend="bpftrace",
                          env=dict(os.environ)).session)
    nl = n.events[(n.events["kind"] == "lazy") & n.events["symbol"].isin(first)]
    assert lazy["latency_ns"].median() > nl["latency_ns"].median()


def test_only_capture_loads_the_timing_plugin():
    """bench-bind times the bare translator: translate.prepare adds QEMU_PLUGIN only when asked."""
    _require_handler()
    _require_guest_timing()
    for time_guest in (False, True):
        env = dict(os.environ)
        t = translate.prepare("arm64", ["prog"], env, time_guest=time_guest)
        try:
            # qemu-user reads -plugin from QEMU_PLUGIN (linux-user/main.c), written out here
            assert ("QEMU_PLUGIN" in env) is time_guest and bool(t.timing_dir) is time_guest
        finally:
            t.close()
        assert t.timing_dir is None


def test_translated_cgo_program_matches_native(binaries, tmp_path, go_env):
    _require_handler()
    env = dict(go_env, GOARCH="arm64", CC=CROSS, CGO_ENABLED="1")
    prog = tmp_path / "cgo-hello-arm64"
    subprocess.run([str(VENV_BIN / "go"), "build", "-o", str(prog), "."], cwd=ROOT / "examples/cgo-hello", env=env,
                   check=True)
    native = binaries("go-linux-amd64-external")
    n = load_session(bind([str(native)], out=tmp_path / "n", backend="ld-debug", env=dict(os.environ)).session)
    t = load_session(bind([str(prog)], out=tmp_path / "t", arch="arm64", env=dict(os.environ)).session)
    nb, tb = _main_bindings(n, native.name), _main_bindings(t, prog.name)
    assert len(tb) > 20 and nb == tb


def _cgo_package(root: Path) -> Path:
    pkg = root / "pkg"
    pkg.mkdir()
    (pkg / "go.mod").write_text("module example.com/pkg\n\ngo 1.21\n")
    (pkg / "half.go").write_text('package pkg\n\n/*\n#include <math.h>\n#cgo LDFLAGS: -lm\n'
                                 'static double half(double x) { return cbrt(x * x * x) / 2; }\n*/\nimport "C"\n\n'
                                 'func Half(x float64) float64 { return float64(C.half(C.double(x))) }\n')
    (pkg / "half_test.go").write_text('package pkg\n\nimport "testing"\n\n'
                                      'func TestHalf(t *testing.T) { if Half(4) != 2 { t.Fatal(Half(4)) } }\n')
    return pkg


@pytest.fixture(scope="module")
def go_test_pair(tmp_path_factory):
    """`go test` of a small cgo package, natively and with the arm64 toolchain translated (ld-debug both)."""
    _require_handler()
    require(translate.go_toolchain("arm64") is not None, "no arm64 Go toolchain (scripts/setup.sh unpacks one)")
    root = tmp_path_factory.mktemp("gotest")
    pkg = _cgo_package(root)
    sessions = {}
    for side, extra in (("native", []), ("arm64", ["--arch", "arm64", "--register-binfmt"])):
        env = dict(os.environ, GOCACHE=str(root / f"cache-{side}"), GOPATH=str(root / "gopath"), GOTOOLCHAIN="local",
                   GOFLAGS="-modcacherw", GOPROXY="off", CGO_ENABLED="1",
                   PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        env.pop("GOARCH", None)
        out = subprocess.run([GOTRACE, "bind", "-q", "-b", "ld-debug", *extra, "-o", str(root / side), "--",
                              "go", "test", "-count=1", "."], cwd=pkg, env=env, capture_output=True, text=True,
                             timeout=900)
        assert out.returncode == 0, out.stderr[-2000:]
        sessions[side] = root / side
    return sessions


def test_translated_go_test_of_a_cgo_package(go_test_pair):
    """The arm64 go toolchain itself runs translated; gcc runs natively."""
    s = load_session(go_test_pair["arm64"])
    procs = s.processes
    translated = procs[procs["translator"] == "qemu-aarch64"]
    native = procs[procs["translator"].isna() & procs["exe"].notna()]
    assert len(translated) >= 3  # go, compile, link ... under qemu
    assert native["exe"].astype(str).str.contains("aarch64-linux-gnu-gcc|cc1|collect2|/ld").any()
    # the test binary itself (pkg.test: arm64, dynamically linked) ran translated and bound libm's cbrt
    test_bin = procs[procs["exe"].astype(str).str.endswith("pkg.test")]
    assert set(test_bin["translator"]) == {"qemu-aarch64"} and set(test_bin["arch"]) == {"arm64"}
    ev = s.events[s.events["exe"].astype(str).str.endswith("pkg.test")]
    cbrt = ev[ev["symbol"] == "cbrt"]
    assert len(cbrt) >= 1 and cbrt["provider"].astype(str).str.endswith("libm.so.6").all()
    assert load_session(go_test_pair["native"]).processes["translator"].isna().all()
    _require_guest_timing()  # the translated test binary's lookups were timed
    assert ev["latency_ns"].notna().all() and s.meta["guest_latency"]["processes_unpaired"] == []


def test_native_vs_translated_pair_through_compare_plot_export_notebook(go_test_pair, tmp_path):
    a, b = str(go_test_pair["native"]), str(go_test_pair["arm64"])
    out = subprocess.run([GOTRACE, "compare", "--json", "--plot", str(tmp_path / "pair.svg"), a, b],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["a"]["translated_images"] == 0 and res["b"]["translated_images"] >= 3
    assert res["b"]["translator"] == "qemu-aarch64" and res["b"]["arch"] == "arm64"
    # the test binary's own binding of libm's cbrt exists on both sides, so it is in neither only-in list
    for side in (a, b):
        ev = load_session(side).events
        assert ((ev["symbol"] == "cbrt") & ev["requester"].astype(str).str.endswith("pkg.test")).any(), side
    one_side = {tuple(x) for x in res["only_in_a"]} | {tuple(x) for x in res["only_in_b"]}
    assert ("pkg.test", "cbrt", "libm.so.6") not in one_side
    assert (tmp_path / "pair.svg").stat().st_size > 10_000
    out = subprocess.run([GOTRACE, "export", b, "-f", "chrome", "-o", str(tmp_path / "t.json")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    trace = json.loads((tmp_path / "t.json").read_text())
    labelled = {e["pid"] for e in trace["traceEvents"] if e["name"] == "process_labels"}
    translated_pids = set(load_session(b).processes.query("translator == 'qemu-aarch64'")["pid"].astype(int))
    assert labelled == translated_pids
    assert not [o for o in run_notebook(a, b, tmp_path) if o.get("output_type") == "error"]


def test_register_binfmt_for_the_run_only(modes_pair, tmp_path):
    _require_cross()
    require(os.geteuid() == 0, "registering binfmt_misc handlers needs root")
    before = translate.handler_for("arm64")
    if before is not None:
        translate.unregister(before)
    try:
        assert translate.handler_for("arm64") is None
        out = subprocess.run([GOTRACE, "bind", "-q", "--arch", "arm64", "-o", str(tmp_path / "a"), "--",
                              str(modes_pair["arm64"])], capture_output=True, text=True)
        assert out.returncode == 2 and "--register-binfmt" in out.stderr and "Traceback" not in out.stderr
        out = subprocess.run([GOTRACE, "bind", "-q", "--arch", "arm64", "--register-binfmt", "-o", str(tmp_path / "b"),
                              "--", str(modes_pair["arm64"]), "0.5"], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert load_session(tmp_path / "b").meta["translation"]["registered_for_session"] is True
        assert translate.handler_for("arm64") is None  # removed again after the run
    finally:
        if before is not None and translate.handler_for("arm64") is None:
            translate.register_qemu("arm64")


def test_translation_bad_input(modes_pair, tmp_path):
    _require_cross()
    for argv, message in ((["--arch", "sparc"], "unknown architecture"),
                          (["--arch", "arm64", "--backend", "bpftrace"], "cannot see translated guest code")):
        out = subprocess.run([GOTRACE, "bind", "-q", *argv, "-o", str(tmp_path / "x"), "--", str(modes_pair["arm64"])],
                             capture_output=True, text=True)
        assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_guest_latency_pairs_in_write_order_and_never_guesses(tmp_path):
    """apply(): the k-th lookup that wrote gets the k-th guest binding line of its pid; a pid
    whose counts disagree keeps nulls; the translator's own rows in the same pid are skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    logdir = tmp_path / "t"
    logdir.mkdir()
    # pid 7: three lookups, the failed one (write 0) has no line; written out of order
    (logdir / "qt.7").write_text("L\t7\t100\t150\t140\nL\t7\t10\t30\t20\nL\t7\t200\t260\t0\n")
    (logdir / "qt.8").write_text("L\t8\t1\t5\t3\n")  # pid 8: one record but two lines below
    (logdir / "other.9").write_text("L\t9\t1\t5\t3\n")
    records = guest_latency.read_records(str(logdir))
    assert records == {7: [20, 50], 8: [4]}
    events = tmp_path / "events"
    events.mkdir()
    rows = [(7, "/usr/bin/qemu-aarch64"), (7, "/prog"), (8, "/prog8"), (7, "/prog"), (8, "/prog8"), (5, "/native")]
    for i, chunk in enumerate((rows[:3], rows[3:])):
        pq.write_table(pa.table({"pid": [p for p, _ in chunk], "exe": [e for _, e in chunk],
                                 "latency_ns": pa.array([None] * len(chunk), pa.int64()),
                                 "latency_raw_ns": pa.array([None] * len(chunk), pa.int64())}),
                       events / f"part-{i:05d}.parquet")
    info = guest_latency.apply(events, records, lambda exe: os.path.basename(exe or "") == "qemu-aarch64")
    got = [r for i in range(2) for r in pq.read_table(events / f"part-{i:05d}.parquet").to_pylist()]
    assert [r["latency_ns"] for r in got] == [None, 20, None, 50, None, None]
    assert [r["latency_raw_ns"] for r in got] == [None, 20, None, 50, None, None]
    assert info["processes_timed"] == 1 and info["bindings_timed"] == 2 and info["processes_unpaired"] == [8]


def test_reports_show_the_translated_program_and_the_translator_apart(modes_pair, tmp_path):
    """qemu's own start-up binds thousands of host symbols in the translated pid;
    report, bind's summary, compare and plot count the program's, the translator's
    apart (the oracle: the events table split by each row's program)."""
    _require_handler()
    prog = str(modes_pair["arm64"])
    res = bind([prog, "0.25"], out=tmp_path / "t", arch="arm64", env=dict(os.environ))
    s = load_session(res.session)
    mine = s.events["exe"].astype(str) == prog
    guest, qemu = s.events[mine], s.events[~mine]
    assert len(qemu) > len(guest) > 0
    assert set(qemu["exe"].astype(str)) == {s.meta["translation"]["interpreter"]}
    out = subprocess.run([GOTRACE, "report", "--json", str(res.session)], capture_output=True, text=True)
    rep = json.loads(out.stdout)
    assert rep == res.report()  # bind's own summary, counted while capturing
    assert rep["bindings"]["total"] == len(guest) and rep["translator_bindings"]["bindings"] == len(qemu)
    assert rep["processes"]["translated"] == {"qemu-aarch64": 1}  # one program, not its translator's image too
    assert not [p for p in rep["top_providers"] if "x86_64-linux-gnu" in p["provider"]]
    assert any("translator's own bindings" in n for n in rep["notes"])
    full = json.loads(subprocess.run([GOTRACE, "report", "--json", "--include-translator", str(res.session)],
                                     capture_output=True, text=True).stdout)
    assert full["bindings"]["total"] == len(s.events) and full["translator_bindings"] is None
    native = bind([str(modes_pair["x86_64"]), "0.25"], out=tmp_path / "n", backend="ld-debug", env=dict(os.environ))
    cmp = json.loads(subprocess.run([GOTRACE, "compare", "--json", str(native.session), str(res.session)],
                                    capture_output=True, text=True).stdout)
    assert cmp["b"]["bindings"] == len(guest)
    # per program: the two programs' own rows; the translator, left out, has none (not even an empty one)
    native_exes = {os.path.basename(str(e)) for e in load_session(native.session).events["exe"]}
    assert set(cmp["per_executable"]) == native_exes | {os.path.basename(prog)}
    assert cmp["per_executable"][os.path.basename(prog)]["b"]["bindings"] == len(guest)
    assert not [row for row in cmp["only_in_b"] if "gnutls" in row[2] or "nettle" in row[2]]
    assert any("translator's own" in w for w in cmp["warnings"])
    # one program translated (readelf: the arm64 file), none on the native side (readelf: this machine's)
    assert (cmp["a"]["translated_images"], cmp["b"]["translated_images"]) == (0, 1)
    every = json.loads(subprocess.run([GOTRACE, "compare", "--json", "--include-translator", str(native.session),
                                       str(res.session)], capture_output=True, text=True).stdout)
    assert every["b"]["bindings"] == len(s.events) and not any("translator's own" in w for w in every["warnings"])
    from tracer.analysis.plot import figure

    fig = figure([load_session(native.session), s])
    ecdf = next(ax for ax in fig.axes if ax.get_title() == "Bindings over the run")  # the program's only
    assert int(ecdf.lines[1].get_ydata()[-1]) == len(guest)


def test_bpftrace_says_when_it_saw_only_the_translator(modes_pair, tmp_path):
    """uprobes see qemu, not the guest: the report says so instead of showing qemu's bindings as the program's."""
    _require_handler()
    require_bpftrace()
    res = bind([str(modes_pair["arm64"]), "0.25"], out=tmp_path / "b", backend="bpftrace", env=dict(os.environ))
    rep = res.report()
    assert any("sees the translator" in n and "--arch" in n for n in rep["notes"]), rep["notes"]


def test_a_host_backend_replays_a_translated_images_lookups_in_its_translators_scope(modes_pair, tmp_path):
    """bpf without --arch records, in a program image qemu-user runs, qemu's own lookups (its host ld.so;
    the guest's ld.so is code qemu runs). report and why replayed them in the guest's scope: every one
    "disagreed" (9 of 9 here), why said "today's files disagree" of malloc. They are qemu's: replayed in
    its scope. Oracle: glibc's LD_DEBUG=bindings of the same command, whose host ld.so names qemu's
    main program by the binfmt_misc interpreter's path."""
    _require_handler()
    require_bpftrace()
    prog = modes_pair["arm64"]
    text = subprocess.run([str(prog), "0.1"], env={**os.environ, "LD_DEBUG": "bindings"}, capture_output=True,
                          text=True).stderr
    host = {}
    for b in oracles.ld_debug_bindings(text):
        if os.path.exists(b["requester"]) and \
                oracles.readelf_header(b["requester"])["Machine"] == "Advanced Micro Devices X86-64":
            host[(os.path.basename(b["requester"]), b["symbol"])] = os.path.basename(b["provider"])
    assert host[("libunistring.so.2", "frexp")] == "libm.so.6"  # libm defines it before libc in qemu's scope
    res = bind([str(prog), "0.1"], out=tmp_path / "s", backend="bpf", env=dict(os.environ))
    assert res.exit_code == 0
    rep = json.loads(subprocess.run([GOTRACE, "report", "--json", str(tmp_path / "s")], capture_output=True,
                                    text=True).stdout)["interposed"]
    assert rep["replayed"] > 0 and rep["disagreed"] == 0
    for row in rep["top"]:
        assert host[(row["requester"], row["symbol"])] == row["provider"], row
    checked = 0
    for sym in ("malloc", "stderr", "frexp", "environ"):
        out = subprocess.run([GOTRACE, "why", "--json", str(tmp_path / "s"), sym], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        for lk in json.loads(out.stdout)["lookups"]:
            want = host.get((os.path.basename(str(lk["requester"])), sym))
            if want is None:
                continue
            assert lk["agrees"] is True and os.path.basename(str(lk["chosen"])) == want, lk
            checked += 1
    assert checked >= 8


def _host_bindings(argv: list[str], cwd: Path | None = None) -> dict[int, dict[tuple[str, str, str], str]]:
    """glibc's own account of a command's bindings, per pid: (Machine of the requester's file, its
    name, symbol) -> the provider's name. qemu passes its environment on, so LD_DEBUG reaches both
    its host ld.so (x86-64 requesters) and the guest's (AArch64 ones)."""
    text = subprocess.run(argv, env={**os.environ, "LD_DEBUG": "bindings"}, capture_output=True, text=True,
                          cwd=cwd).stderr
    machine: dict[str, str] = {}
    out: dict[int, dict] = {}
    for b in oracles.ld_debug_bindings(text):
        req = b["requester"]
        if req not in machine:
            machine[req] = oracles.readelf_header(req)["Machine"] if os.path.exists(req) else "?"
        out.setdefault(b["pid"], {})[(machine[req], os.path.basename(req), b["symbol"])] = \
            os.path.basename(b["provider"])
    return out


X86_64, AARCH64 = "Advanced Micro Devices X86-64", "AArch64"


def _why_agrees(session: Path, symbol: str, oracle_of) -> int:
    """`gotrace why` of ``symbol``: every lookup's chosen object is glibc's (``oracle_of(lookup)``:
    the account of the process that made it); the number of lookups checked."""
    out = subprocess.run([GOTRACE, "why", "--json", str(session), symbol], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    checked = 0
    for lk in json.loads(out.stdout)["lookups"]:
        req = str(lk["requester"])
        key = (oracles.readelf_header(req)["Machine"] if os.path.exists(req) else "?", os.path.basename(req), symbol)
        want = oracle_of(lk).get(key)
        if want is None:
            continue
        assert lk["agrees"] is True and os.path.basename(str(lk["chosen"])) == want, (key, lk)
        checked += 1
    return checked


def test_an_ld_debug_run_without_arch_counts_the_program_and_the_translator_apart(modes_pair, tmp_path):
    """Without --arch, binfmt_misc still runs the arm64 program under qemu, and LD_DEBUG reaches both
    qemu's host ld.so and the guest's: the session holds qemu's ~3,700 bindings (named by the
    binfmt_misc interpreter's path, aarch64-binfmt-P) and the program's, and its meta names no
    interpreter — only the processes table says qemu ran. report and compare must count the
    program's rows and the translator's apart, and why must replay qemu's lookups in qemu's scope,
    the guest's in the guest's. Oracles: readelf's Machine of each row's program file (AArch64: the
    program's; X86-64: qemu's, whatever binfmt_misc called it); glibc's LD_DEBUG=bindings of the
    same command (the host ld.so's lines and the guest's)."""
    _require_handler()
    prog = str(modes_pair["arm64"])
    res = bind([prog, "0.1"], out=tmp_path / "s", backend="ld-debug", env=dict(os.environ))
    assert res.exit_code == 0
    s = load_session(res.session)
    assert s.meta["translation"] is None
    exes = s.events["exe"].astype(str)
    machine = {e: oracles.readelf_header(e)["Machine"] for e in set(exes)}
    guest, qemu = s.events[exes.map(machine) == AARCH64], s.events[exes.map(machine) == X86_64]
    assert len(guest) + len(qemu) == len(s.events) and len(qemu) > len(guest) > 0
    rep = json.loads(subprocess.run([GOTRACE, "report", "--json", str(res.session)], capture_output=True,
                                    text=True).stdout)
    assert rep["bindings"]["total"] == len(guest) and rep["translator_bindings"]["bindings"] == len(qemu)
    assert rep["processes"]["translated"] == {"qemu-aarch64": 1}
    cmp = json.loads(subprocess.run([GOTRACE, "compare", "--json", str(res.session), str(res.session)],
                                    capture_output=True, text=True).stdout)
    assert cmp["a"]["bindings"] == cmp["b"]["bindings"] == len(guest)
    assert set(cmp["per_executable"]) == {os.path.basename(prog)}
    # replayed: qemu's lookups in its scope, the guest's in the guest's (one pid runs both)
    glibc = _host_bindings([prog, "0.1"])
    assert len(glibc) == 1
    (account,) = glibc.values()
    assert account[(X86_64, "libunistring.so.2", "frexp")] == "libm.so.6"  # qemu's scope: libm before libc
    full = json.loads(subprocess.run([GOTRACE, "report", "--json", "--include-translator", str(res.session)],
                                     capture_output=True, text=True).stdout)["interposed"]
    assert full["replayed"] > 0 and full["disagreed"] == 0 and full["not_replayed"] == 0
    for row in full["top"]:
        assert account[(X86_64, row["requester"], row["symbol"])] == row["provider"], row
    assert sum(_why_agrees(res.session, sym, lambda lk: account) for sym in ("malloc", "frexp", "cos")) >= 10


def test_a_host_backend_replays_a_program_run_by_a_relative_path_in_its_translators_scope(modes_pair, tmp_path):
    """`sh -c 'cd DIR && ./prog'` under bpf: binfmt_misc hands qemu the file name as exec'd
    (./modes-arm64) after its own path, so only the image's argv[0] names the program whose
    lookups bpf saw (qemu's); the shell's own lookups are its own. Oracle: glibc's LD_DEBUG=bindings
    of the same command, per process (the shell's pid, and qemu's, whose host ld.so names its main
    program by the interpreter's path)."""
    _require_handler()
    require_bpf()
    prog = modes_pair["arm64"]
    command = ["sh", "-c", f"cd {prog.parent} && ./{prog.name} 0.1"]
    glibc = _host_bindings(command)
    qemu_pid = next(p for p, acc in glibc.items() if any(k[1] == "aarch64-binfmt-P" for k in acc))
    (sh_pid,) = set(glibc) - {qemu_pid}
    res = bind(command, out=tmp_path / "s", backend="bpf", env=dict(os.environ))
    assert res.exit_code == 0
    rep = json.loads(subprocess.run([GOTRACE, "report", "--json", str(tmp_path / "s")], capture_output=True,
                                    text=True).stdout)["interposed"]
    assert rep["replayed"] > 0 and rep["disagreed"] == 0 and rep["not_replayed"] == 0
    for row in rep["top"]:
        assert glibc[qemu_pid][(X86_64, row["requester"], row["symbol"])] == row["provider"], row

    def account(lk):
        return glibc[sh_pid] if os.path.basename(str(lk["exe"])) == "sh" else glibc[qemu_pid]

    checked = sum(_why_agrees(tmp_path / "s", sym, account) for sym in ("malloc", "frexp", "environ"))
    out = json.loads(subprocess.run([GOTRACE, "why", "--json", str(tmp_path / "s"), "malloc"], capture_output=True,
                                    text=True).stdout)
    exes = {os.path.basename(str(lk["exe"])) for lk in out["lookups"]}
    assert exes == {"sh", prog.name} and checked >= 10


def test_a_session_from_before_processes_named_their_translator_still_reports(modes_pair, tmp_path):
    """Schema 3 gave the processes table its arch and translator columns; a session written before
    (schema 2: no such columns, and images without uuid) is read with them null (session/schema.py),
    so report and compare count it as they did. Oracle: the session's own events counted by pyarrow,
    and its processes table's rows."""
    import pyarrow.parquet as pq

    res = bind([str(modes_pair["x86_64"]), "0.1"], out=tmp_path / "new", backend="ld-debug", env=dict(os.environ))
    assert res.exit_code == 0
    old = tmp_path / "old"
    shutil.copytree(res.session, old)
    for table, gone in (("processes", ["arch", "translator"]), ("images", ["uuid"])):
        pq.write_table(pq.read_table(old / f"{table}.parquet").drop(gone), old / f"{table}.parquet")
        assert not set(gone) & set(pq.read_schema(old / f"{table}.parquet").names)
    meta = json.loads((old / "meta.json").read_text())
    (old / "meta.json").write_text(json.dumps({**meta, "schema_version": 2}))
    events = sum(pq.read_metadata(p).num_rows for p in (old / "events").glob("part-*.parquet"))
    processes = pq.read_metadata(old / "processes.parquet").num_rows
    assert events > 0
    out = subprocess.run([GOTRACE, "report", "--json", str(old)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["bindings"]["total"] == events and rep["processes"]["images"] == processes
    assert rep["processes"]["translated"] == {} and rep["translator_bindings"] is None
    out = subprocess.run([GOTRACE, "compare", "--json", str(old), str(res.session)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cmp = json.loads(out.stdout)
    assert cmp["a"]["bindings"] == cmp["b"]["bindings"] == events


def test_a_session_read_after_its_translators_files_are_gone_still_sets_them_apart(modes_pair, tmp_path):
    """A session is often read elsewhere than where it was made (another machine, qemu removed
    since): binfmt_misc's interpreter for the run (here a link of our own to qemu-aarch64, named
    aarch64-binfmt-P as Debian names it) no longer resolves to qemu-aarch64, and only meta's
    interpreter says that the rows of that program are qemu's. Oracles: binfmt_misc's own entry
    (the interpreter path the kernel ran, read while registered) and readelf's Machine of the guest."""
    _require_handler()
    require(os.geteuid() == 0, "registering binfmt_misc handlers needs root")
    prog = str(modes_pair["arm64"])
    before = translate.handler_for("arm64")
    gone = tmp_path / "gone"
    gone.mkdir()
    interpreter = gone / "aarch64-binfmt-P"
    interpreter.symlink_to(os.path.realpath(before.interpreter))
    line = next(l for l in Path("/usr/lib/binfmt.d/qemu-aarch64.conf").read_text().splitlines() if l.startswith(":"))
    fields = line.split(":")
    fields[1], fields[6] = "gotrace-test-aarch64", str(interpreter)
    translate.unregister(before)
    try:
        (translate.BINFMT / "register").write_text(":".join(fields))
        entry = (translate.BINFMT / "gotrace-test-aarch64").read_text()
        assert f"interpreter {interpreter}\n" in entry  # the kernel's account of what it will run
        res = bind([prog, "0.1"], out=tmp_path / "s", arch="arm64", env=dict(os.environ))
    finally:
        mine = translate.handler_for("arm64")
        if mine is not None and mine.name == "gotrace-test-aarch64":
            translate.unregister(mine)
        if translate.handler_for("arm64") is None:
            translate.register_qemu("arm64")
    assert res.exit_code == 0 and res.backend == "ld-debug"
    shutil.rmtree(gone)
    s = load_session(res.session)
    assert s.meta["translation"]["interpreter"] == str(interpreter)
    exes = s.events["exe"].astype(str)
    guest, qemu = s.events[exes == prog], s.events[exes == str(interpreter)]
    assert oracles.readelf_header(prog)["Machine"] == AARCH64
    assert len(guest) + len(qemu) == len(s.events) and len(qemu) > len(guest) > 0
    rep = json.loads(subprocess.run([GOTRACE, "report", "--json", str(res.session)], capture_output=True,
                                    text=True).stdout)
    assert rep["bindings"]["total"] == len(guest) and rep["translator_bindings"]["bindings"] == len(qemu)
    cmp = json.loads(subprocess.run([GOTRACE, "compare", "--json", str(res.session), str(res.session)],
                                    capture_output=True, text=True).stdout)
    assert cmp["a"]["bindings"] == len(guest)


def test_compare_says_when_a_host_backend_saw_only_the_translator(modes_pair, tmp_path):
    """bpf of the arm64 program without --arch records qemu's own lookups in the program's image
    (the host ld.so's; the guest's is code qemu runs): compare of it against the native run then
    set qemu's 3,700 bindings against the program's 100 without a word (the report has its note).
    Oracle: readelf — the program is AArch64, every other requester of the translated side's rows
    an X86-64 file (never in an arm64 program's scope), and what binds to "the program" are symbols
    the arm64 file does not define (qemu's tcg_ctx …): none is the program's own binding."""
    _require_handler()
    require_bpf()
    sessions = {}
    for arch in ("x86_64", "arm64"):
        res = bind([str(modes_pair[arch]), "0.1"], out=tmp_path / arch, backend="bpf", env=dict(os.environ))
        assert res.exit_code == 0
        sessions[arch] = res.session
    assert oracles.readelf_header(modes_pair["arm64"])["Machine"] == AARCH64
    prog = str(modes_pair["arm64"])
    ev = load_session(sessions["arm64"]).events
    requesters = set(ev["requester"].dropna().astype(str)) - {prog, "linux-vdso.so.1"}  # the vDSO: the host kernel's
    assert len(ev) and {oracles.readelf_header(r)["Machine"] for r in requesters} == {X86_64}
    # what the host ld.so calls the main program (the file exec'd) is qemu: it defines what the arm64 file does not
    own = ev[(ev["requester"].astype(str) == prog) & (ev["provider"].astype(str) == prog)]
    assert len(own) and not set(own["symbol"].astype(str)) & oracles.readelf_dyn_defined(prog)
    cmp = json.loads(subprocess.run([GOTRACE, "compare", "--json", str(sessions["x86_64"]), str(sessions["arm64"])],
                                    capture_output=True, text=True).stdout)
    said = [w for w in cmp["warnings"] if "sees the translator" in w]
    assert len(said) == 1 and said[0].startswith("B (bpf): 1 program image ran translated by qemu-aarch64"), said
    assert "--arch" in said[0]
