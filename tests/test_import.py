"""gotrace import: logs captured elsewhere become sessions every other command reads.

The dyld-print logs are written by tests/dyldlog.py from dyld's format strings (not run
on macOS); the LD_DEBUG log is glibc's own, captured here. Oracles: what the log
generator wrote per pid; a plain count of glibc's `binding file` lines per pid.
"""
from __future__ import annotations

import collections
import json
import os
import re
import subprocess

from conftest import gotrace_cli, run_notebook
from dyldlog import program, sequential, timed


def _write_logs(tmp_path):
    native = [program(300 + i, f"/Users/me/bin/tool{i % 2}", dylibs=(f"/opt/homebrew/lib/libz{i}.dylib",),
                      binds=40, dlsyms=(("deflate", True), ("nope", False)), seed=i) for i in range(3)]
    rosetta = [program(400 + i, f"/Users/me/bin/tool{i % 2}", dylibs=(f"/usr/local/lib/libz{i}.dylib",),
                       binds=40, dlsyms=(("deflate", True), ("nope", False)), seed=i, rosetta=True) for i in range(3)]
    (tmp_path / "native.log").write_bytes(sequential(native))
    (tmp_path / "rosetta.log").write_bytes(timed(rosetta, seed=3, gap_us=50.0))
    return native, rosetta


def test_dyld_print_log_to_report_compare_and_chrome(tmp_path):
    native, rosetta = _write_logs(tmp_path)
    out = gotrace_cli("import", "dyld-print", str(tmp_path / "native.log"), "-o", str(tmp_path / "n"),
                      "--json-out", str(tmp_path / "n.json"))
    assert out.returncode == 0, out.stderr
    assert "imported dyld-print log" in out.stderr and "session saved" in out.stderr
    rep = json.loads((tmp_path / "n.json").read_text())
    total = sum(len(p.bindings) for p in native)
    assert rep["bindings"]["total"] == total
    assert rep["bindings"]["by_kind"]["dlsym"] == 2 * len(native)
    assert rep["bindings"]["failed"] == len(native)  # the dlsym that found nothing
    assert rep["processes"]["count"] == 3 and rep["session"]["imported"]["format"] == "dyld-print"
    assert rep["session"]["backend"] == "dyld-print" and rep["latency_ns"] is None
    assert any("imported from a dyld-print log" in n for n in rep["notes"])

    out = gotrace_cli("import", "dyld-print", str(tmp_path / "rosetta.log"), "-o", str(tmp_path / "r"), "--json")
    assert out.returncode == 0, out.stderr
    rr = json.loads(out.stdout)
    assert rr["processes"]["translated"] == {"rosetta": 3}
    attributed = rr["bindings"]["total"]
    dp = rr["session"]["dyld_print"]
    assert 0 < attributed <= sum(len(p.bindings) for p in rosetta)
    assert dp["lines"] == sum(len(p.lines) for p in rosetta)  # every line read is accounted for

    cmp = gotrace_cli("compare", "--json", str(tmp_path / "n"), str(tmp_path / "r"))
    assert cmp.returncode == 0, cmp.stderr
    c = json.loads(cmp.stdout)
    text = json.dumps(c)
    assert "rosetta" in text
    exp = gotrace_cli("export", str(tmp_path / "n"), "-f", "chrome", "-o", str(tmp_path / "n.trace.json"))
    assert exp.returncode == 0, exp.stderr
    trace = json.loads((tmp_path / "n.trace.json").read_text())
    events = [e for e in trace["traceEvents"] if e["ph"] in ("X", "i")]
    assert len(events) == total and {e["pid"] for e in events} == {300, 301, 302}
    plot = gotrace_cli("plot", str(tmp_path / "n"), str(tmp_path / "r"), "-o", str(tmp_path / "nr.png"))
    assert plot.returncode == 0 and (tmp_path / "nr.png").stat().st_size > 10_000, plot.stderr


def test_ld_debug_stderr_capture(tmp_path, modes_bins):
    """LD_DEBUG without LD_DEBUG_OUTPUT: every process's lines on stderr, each with its pid."""
    log = tmp_path / "stderr.log"
    with open(log, "wb") as fh:
        subprocess.run(["sh", "-c", f"{modes_bins['lazy']} && {modes_bins['now']}"], stderr=fh,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, LD_DEBUG="files,bindings,reloc"), check=True)
    oracle = collections.Counter(int(m.group(1)) for m in re.finditer(rb"(?m)^\s*(\d+):\tbinding file ",
                                                                       log.read_bytes()))
    out = gotrace_cli("import", "ld-debug", str(log), "-o", str(tmp_path / "s"), "--json")
    assert out.returncode == 0, out.stderr
    from tracer import load_session

    s = load_session(tmp_path / "s")
    assert s.events.groupby("pid").size().to_dict() == dict(oracle)
    exes = set(s.processes["exe"].dropna().map(os.path.basename))
    assert {"modes-lazy", "modes-now"} <= exes, exes


def test_bad_inputs_are_one_line(tmp_path):
    cases = [
        (["import", "dyld-print", str(tmp_path / "missing.log")], "no such log"),
        (["import", "dyld-print", str(tmp_path)], "is a directory"),
        (["import", "ld-debug", str(tmp_path)], "holds no LD_DEBUG_OUTPUT files"),
        (["import", "perf", str(tmp_path)], "unknown log format"),
    ]
    for args, words in cases:
        out = gotrace_cli(*args)
        assert out.returncode == 2 and words in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_notebook_takes_a_native_and_a_rosetta_session(tmp_path):
    from tracer.capture.imported import import_logs

    _write_logs(tmp_path)
    a = import_logs("dyld-print", [tmp_path / "native.log"], tmp_path / "n").session
    b = import_logs("dyld-print", [tmp_path / "rosetta.log"], tmp_path / "r").session
    outputs = run_notebook(a, b, tmp_path)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("rosetta" in str(o.get("data", {}).get("text/plain", "")) for o in outputs)


def test_aslr_of_an_imported_mac_session(binaries, tmp_path):
    """`gotrace aslr --session` on a Mac's log: the slide of an image whose file is here
    (the slice with the LC_UUID dyld printed; llvm-objdump as the oracle), none for the rest."""
    from dyldlog import segment_line, writes

    exe = str(binaries("fat"))
    text = subprocess.run(["llvm-objdump-16", "--macho", "--private-headers", "--arch=arm64", exe],
                          capture_output=True, text=True, check=True).stdout
    vmaddr = int(re.search(r"segname __TEXT\n\s+vmaddr (0x[0-9a-f]+)", text).group(1), 16)
    uuid = re.search(r"uuid ([0-9A-F-]{36})", text).group(1)
    slide = 0x8C4000
    lines = [f"<{uuid}> {exe}", f"Kernel mapped {exe}", segment_line("__TEXT", "r.x", vmaddr + slide,
                                                                     vmaddr + slide + 0x4000, True),
             "Using mapping in dyld cache for /usr/lib/libSystem.B.dylib",
             segment_line("__TEXT", "r.x", 0x180000000, 0x180080000, True),
             "<7ABC7C32-5AB6-7F9D-2C74-0BF509A9B18F> /usr/lib/libSystem.B.dylib"]
    (tmp_path / "a.log").write_bytes(b"".join(w for line in writes(44, lines) for w in line))
    assert gotrace_cli("import", "dyld-print", str(tmp_path / "a.log"), "-o", str(tmp_path / "s")).returncode == 0
    out = gotrace_cli("aslr", "--session", str(tmp_path / "s"), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    rows = {r["path"]: r for r in doc["images"]}
    assert rows[exe]["slide"] == slide and rows[exe]["link_base"] == vmaddr
    assert rows["/usr/lib/libSystem.B.dylib"]["slide"] is None
    assert doc["randomize_va_space"] is None  # this machine's setting says nothing of the Mac's


def test_lines_of_no_known_form_are_counted_apart(tmp_path):
    """dyld_print.lines counts every line of the log once, a body no form matches (a later dyld's
    line) among them, and unknown_lines those. Oracle: the generator's own lines (dyld's format
    strings, tests/dyldlog.py) and the two it was given that no dyld release prints."""
    procs = [program(400, "/Users/me/bin/tool", dylibs=("/opt/homebrew/lib/libz.dylib",), binds=5)]
    known = len(procs[0].lines)
    procs[0].lines[4:4] = ["a line of a future dyld", "another one"]
    (tmp_path / "d.log").write_bytes(sequential(procs))
    out = gotrace_cli("import", "dyld-print", str(tmp_path / "d.log"), "-o", str(tmp_path / "s"), "--json")
    assert out.returncode == 0, out.stderr
    dp = json.loads(out.stdout)["session"]["dyld_print"]
    assert (dp["lines"], dp["unknown_lines"]) == (known + 2, 2)
