"""Costs of `gotrace bind`, each as a ratio to a baseline measured in the same run.

W1  cold `go build` of examples/cgo-hello (fresh GOCACHE each run):
    untraced vs --backend ld-debug vs --backend bpftrace, interleaved.
W2  200 runs of the built cgo-hello binary from one shell, same three ways.
    Each backend also has a floor row: the mechanism alone, no gotrace —
    ld-debug-floor sets LD_DEBUG/LD_DEBUG_OUTPUT itself and nobody reads the
    files; bpftrace-floor runs bindsnoop.bt with its output read and its
    binding map emptied, both thrown away; bpf-floor runs gotrace's BPF loader
    (csrc/bindload.c) with its output read and thrown away. gotrace's own share
    is the gap between a backend and its floor. Each traced mode also reports the
    peak RSS of gotrace plus its tracer process (bpftrace, the BPF loader),
    sampled every 20 ms from /proc (VmHWM, the high-water mark of each).
W3  40 runs of Debian's `python3 -c 'import ssl'` from one shell (~4,600 lookups each: the
    per-lookup cost, where W2 is the per-process one).
WG  a warm `go build` of examples/cgo-hello (its build cache filled once, untimed): the
    edit-build-run loop, where each `gotrace bind`'s fixed cost is most of what is paid.
    Each workload also has: bpf-empty, the loader with the same probes whose programs are empty
    (the trap's cost alone: the floor a per-lookup program is measured against); bpf-agent,
    `gotrace bind` through gotrace's agent (started before the run, stopped after it, neither
    timed); untraced+agent, the untraced command while an agent is attached (what an always-on
    agent costs every other process on the machine: its uprobes are on ld.so).
WT  `true`: a bind's fixed cost (read the seconds: the ratio to a 1 ms command means little).
A   the agent at ~1 M events: 220 runs of `python3 -c 'import ssl'` from one shell, one bind
    through the agent: the events, lost records, and the peak RSS of the agent and of gotrace
    bind with its bind-server worker.
I   ingest: bindsnoop records (as read from its BPF map) decoded into pandas,
    events/s (baseline: the same records unpacked by struct.iter_unpack, the
    cheapest pass Python itself can make).
M   peak RSS of gotrace capturing a 1,000,000-event session, printing its summary
    and reporting it again from disk (`gotrace report`), against the RSS of the
    same interpreter after importing the same libraries.

Usage (as root for bpftrace):  .venv/bin/python bench/bench_bind.py [--rounds 5] [--only W1,W2,W3,WG,WT,A,I,M]
        [--modes ld-debug-floor,ld-debug,bpftrace-floor,bpftrace,bpf-empty,bpf-floor,bpf,bpf-agent,untraced+agent]
Machines here are shared and noisy: read the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cgo-hello"
VENV_BIN = Path(sys.executable).parent


def go_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(GOCACHE=str(cache / "gocache"), GOPATH=str(cache / "gopath"), GOTOOLCHAIN="local",
               GOFLAGS="-modcacherw", GOPROXY="off")
    return env


def run(mode: str, argv: list[str], env: dict, cwd: Path, out: Path) -> tuple[float, int, int, int]:
    """Wall seconds, events captured, events lost, peak RSS (KiB, gotrace + its tracer) for one run."""
    if mode == "bpftrace-floor":
        return (*bpftrace_floor(argv, env, cwd), 0)
    if mode in ("bpf-floor", "bpf-empty"):
        return (*bpf_floor(argv, env, cwd, empty=mode == "bpf-empty"), 0)
    env = dict(env, GOTRACE_AGENT="off")
    agent_socket = None
    if mode in ("bpf-agent", "untraced+agent"):  # started before, stopped after: neither is timed
        from tracer.capture.bpf import agent

        agent_socket = str(Path(tempfile.mkdtemp(prefix="gotrace-bench-agent-")) / "agent.sock")
        agent_pid = agent.start(agent_socket).pid
        env["GOTRACE_AGENT"] = agent_socket
    try:
        return _run(mode, argv, env, cwd, out, _bind_server(agent_socket) if agent_socket else None)
    finally:
        if agent_socket is not None:
            AGENT_HWM[mode] = max(AGENT_HWM.get(mode, 0), PeakRss._hwm(agent_pid))
            agent.stop(agent_socket)
            shutil.rmtree(Path(agent_socket).parent, ignore_errors=True)


def _bind_server(agent_socket: str) -> int | None:
    """The pid of the bind server started beside the agent on ``agent_socket``."""
    from tracer import procfs

    return next((p for p in procfs.pids() if procfs.cmdline(p)[1:5] == ["-m", "tracer", "agent", "serve"]
                 and agent_socket in procfs.cmdline(p)), None)


def _run(mode: str, argv: list[str], env: dict, cwd: Path, out: Path,
         server: int | None = None) -> tuple[float, int, int, int]:
    from tracer import load_session

    if mode in ("untraced", "untraced+agent"):
        cmd = argv
    elif mode == "ld-debug-floor":  # the logs where gotrace puts them: tmpfs if there is room
        from tracer.capture.ld_debug.backend import LD_DEBUG_VALUE, tmpfs_dir

        out = Path(tempfile.mkdtemp(prefix="gotrace-bench-ld-", dir=tmpfs_dir()))
        cmd, env = argv, dict(env, LD_DEBUG=LD_DEBUG_VALUE, LD_DEBUG_OUTPUT=str(out / "ld"))
    else:
        backend = "bpf" if mode == "bpf-agent" else mode
        cmd = [str(VENV_BIN / "gotrace"), "bind", "-q", "--force", "-o", str(out), "--backend", backend, "--", *argv]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = PeakRss(proc.pid, server) if mode in ("ld-debug", "bpftrace", "bpf", "bpf-agent") else None
    _, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    peak = sampler.stop() if sampler else 0
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed ({proc.returncode}): {stderr.strip()[-300:]}")
    if mode == "bpftrace":
        wait_detached()
    if mode == "bpf":
        wait_loader_detached()
    if mode == "ld-debug-floor":
        bound = sum(p.read_bytes().count(b"binding file ") for p in out.iterdir())
        shutil.rmtree(out)
        return wall, bound, 0, 0
    if mode in ("untraced", "untraced+agent"):
        return wall, 0, 0, 0
    s = load_session(out)
    if mode == "bpf-agent" and "agent" not in str(s.meta.get("bpf_started")):
        raise SystemExit(f"bpf-agent run did not go through the agent: {s.meta.get('bpf_started')}")
    return wall, len(s.events), int(s.meta.get("lost_events") or 0), peak


TRACERS = ("bpftrace", "bindload-")
AGENT_HWM: dict[str, int] = {}  # the agent's own peak RSS (KiB) by mode, over a workload's runs


class PeakRss:
    """The high-water RSS of gotrace (``pid``) and of its tracer child, sampled every 20 ms
    from /proc/PID/status (VmHWM: each process's own peak, so a short peak between two
    samples still counts as long as the process is alive at one of them)."""

    def __init__(self, pid: int, server: int | None = None):
        import threading

        self.pid = pid
        self.server = server  # the agent's bind server, whose workers do a bind's work
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _hwm(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _tracers(self) -> list[int]:
        """Its tracer children, and the agent's bind-server workers (which do a bind's work for a
        client: their peak counts the pages they share with the server, as RSS does)."""
        from tracer import procfs

        try:
            kids = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        except OSError:
            kids = []
        found = [int(k) for k in kids if any(os.path.basename((procfs.cmdline(int(k)) or [""])[0]).startswith(t)
                                             for t in TRACERS)]
        if self.server is not None:
            try:
                found += [int(w) for w in Path(f"/proc/{self.server}/task/{self.server}/children").read_text().split()]
            except OSError:
                pass
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for pid in [self.pid, *self._tracers()]:
                self.peaks[pid] = max(self.peaks.get(pid, 0), self._hwm(pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return sum(self.peaks.values())


def wait_detached(timeout: float = 30) -> None:
    """Until no bindsnoop.bt bpftrace is left. gotrace returns while its
    bpftrace still detaches (~1 s: the kernel unregisters each probe in turn),
    and until then every process on the machine still hits the probes: the
    next run (often untraced) must not start under them, nor a next bpftrace
    wait for the kernel's probe locks. Not timed."""
    from tracer.capture.bpftrace.launch import bindsnoop_running

    deadline = time.monotonic() + timeout
    while bindsnoop_running():
        if time.monotonic() > deadline:
            raise SystemExit("a bindsnoop.bt bpftrace did not exit within 30 s")
        time.sleep(0.05)


def wait_loader_detached(timeout: float = 30) -> None:
    """Until gotrace's BPF loader (csrc/bindload.c) has detached: it closes its output at once and
    unregisters its uprobes (~0.5 s) after gotrace returned. Not timed, as for bpftrace."""
    from tracer.capture.bpf.launch import loader_pids

    deadline = time.monotonic() + timeout
    while loader_pids():
        if time.monotonic() > deadline:
            raise SystemExit("gotrace's BPF loader did not exit within 30 s")
        time.sleep(0.05)


def bpftrace_floor(argv: list[str], env: dict, cwd: Path) -> tuple[float, int, int]:
    """bindsnoop.bt alone: started, attached, its output read and its binding
    map emptied (as gotrace does, every DRAIN_S) and both dropped."""
    import select
    import threading
    from tracer.capture.bpftrace.bpf_map import BpfMap
    from tracer.capture.bpftrace.backend import BINDING_MAP, DRAIN_S
    from tracer.capture.bpftrace.launch import start_gated

    t0 = time.perf_counter()
    here = os.getcwd()
    os.chdir(cwd)  # the child's
    try:
        child, bpf = start_gated(argv, env)
    finally:
        os.chdir(here)
    while not bpf.stdout.readline().startswith(b"READY"):
        pass
    bindings = BpfMap.of_process(bpf.pid, BINDING_MAP)
    made = [0]  # the script's own count of the binding records it made
    marked = threading.Event()

    def drain() -> None:  # until EOF: bpftrace blocks on a full pipe, and would never exit
        tail = b""
        fd = bpf.stdout.fileno()
        while True:
            bindings.drain()
            if not select.select([fd], [], [], DRAIN_S)[0]:
                continue
            block = os.read(fd, 1 << 20)
            if not block:
                break
            text = tail + block
            cut = text.rfind(b"\n") + 1
            whole = text[:cut]
            if b"@emitted: " in whole:  # C-speed scans: the bench must not compete with the build
                made[0] = max([made[0], *map(int, re.findall(rb"(?m)^@emitted: (\d+)$", whole))])
            if b"\nMARK\t" in b"\n" + whole:
                marked.set()
            tail = text[cut:]
        bindings.drain()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    child.release()
    code = child.wait()
    wall = time.perf_counter() - t0
    os.getppid()  # bindsnoop.bt prints its count, then a MARK: counted, not timed
    marked.wait(10)
    bpf.terminate()  # detaching is not timed: gotrace does not wait for it either
    bpf.wait()
    reader.join()
    bindings.close()
    if code != 0:
        raise SystemExit(f"bpftrace-floor run failed ({code})")
    return wall, made[0], 0


def bpf_floor(argv: list[str], env: dict, cwd: Path, empty: bool = False) -> tuple[float, int, int]:
    """gotrace's BPF loader alone: started, attached, its output read and dropped (``empty``: the
    same probes, each program empty)."""
    import threading
    from tracer.capture.bpf.launch import artifacts, empty_probes_object, start_gated

    built = artifacts(build=True)
    if empty:
        built = (empty_probes_object(), built[1])
    t0 = time.perf_counter()
    here = os.getcwd()
    os.chdir(cwd)  # the child's
    try:
        child, loader = start_gated(argv, env, built)
    finally:
        os.chdir(here)
    while not loader.stdout.readline().startswith(b"READY"):
        pass
    lines = [0]

    def drain() -> None:
        fd = loader.stdout.fileno()
        while block := os.read(fd, 1 << 20):
            lines[0] += block.count(b"\n@b[")
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    child.release()
    code = child.wait()
    loader.stdin.close()  # the loader drains, closes its output, then detaches (not timed)
    reader.join()
    wall = time.perf_counter() - t0
    lost = 0
    for raw in loader.stderr:
        if raw.startswith(b"LOST\t"):
            lost = int(raw.split(b"\t")[1])
        if raw.strip() == b"END":
            break
    threading.Thread(target=loader.wait, daemon=True).start()
    wait_loader_detached()
    if code != 0:
        raise SystemExit(f"bpf-floor run failed ({code})")
    return wall, lines[0], lost


def workload(name: str, modes: list[str], rounds: int, make) -> None:
    """Every mode once per round, the order rotated each round (so no mode is
    always first after a pause, or always right after the heaviest one).

    Three ratios to untraced: of the medians; the median of each round's own
    ratio (the run against the untraced run minutes from it); and of the
    fastest runs (noise on a shared machine only ever adds time)."""
    results: dict[str, list[tuple[float, int, int, int]]] = {m: [] for m in modes}
    AGENT_HWM.clear()
    for r in range(rounds):
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        for m in order:  # interleaved, so drift hits every mode alike
            with tempfile.TemporaryDirectory(prefix="gotrace-bench-") as tmp:
                argv, env, cwd = make(Path(tmp))
                results[m].append(run(m, argv, env, cwd, Path(tmp) / "session"))
            print(f"  {name} round {r + 1}/{rounds} {m}: {results[m][-1][0]:.2f} s", file=sys.stderr, flush=True)
    untraced = [r[0] for r in results["untraced"]]
    base = statistics.median(untraced)
    print(f"\n{name}: {rounds} interleaved rounds")
    print(f"  {'mode':14} {'median s':>9} {'ratio':>7} {'paired':>7} {'best':>7} {'worst':>7} {'events':>9} "
          f"{'lost':>6} {'peak RSS':>9}")
    for m in modes:
        walls = [r[0] for r in results[m]]
        med = statistics.median(walls)
        paired = statistics.median(w / u for w, u in zip(walls, untraced))
        ev = statistics.median(r[1] for r in results[m])
        lost = max(r[2] for r in results[m])
        rss = max(r[3] for r in results[m])
        print(f"  {m:14} {med:9.2f} {med / base:6.3f}x {paired:6.3f}x {min(walls) / min(untraced):6.3f}x "
              f"{max(walls) / max(untraced):6.3f}x {ev:9.0f} {lost:6d} {f'{rss / 1024:.0f} MB' if rss else '-':>9}")
    if AGENT_HWM.get("bpf-agent"):
        print(f"  the agent's own peak RSS over its bpf-agent runs: {AGENT_HWM['bpf-agent'] / 1024:.0f} MB "
              "(bpf-agent's peak RSS above: gotrace bind's and its bind-server worker's)")


def w1(tmp: Path):
    return ["go", "build", "-o", str(tmp / "hello"), "."], go_env(tmp), EXAMPLE


def w3(tmp: Path):
    script = "for i in $(seq 40); do /usr/bin/python3 -c 'import ssl'; done"
    return ["bash", "-c", script], dict(os.environ), tmp


def wg_factory(cache: Path):
    """A warm go build: the cache filled by the first (untimed) build, shared by every run."""
    def make(tmp: Path):
        return ["go", "build", "-o", str(tmp / "hello"), "."], go_env(cache), EXAMPLE
    return make


def agent_at_scale(runs: int = 220) -> None:
    script = f"for i in $(seq {runs}); do /usr/bin/python3 -c 'import ssl'; done"
    AGENT_HWM.clear()
    with tempfile.TemporaryDirectory(prefix="gotrace-bench-") as tmp:
        wall, events, lost, peak = run("bpf-agent", ["bash", "-c", script], dict(os.environ), Path(tmp),
                                       Path(tmp) / "session")
    print(f"\nA the agent at scale: {runs} runs of python3 -c 'import ssl', {wall:.1f} s: {events:,} events, "
          f"{lost} lost; peak RSS: the agent {AGENT_HWM.get('bpf-agent', 0) / 1024:.0f} MB, gotrace bind with its "
          f"bind-server worker {peak / 1024:.0f} MB")


def w2_factory(binary: Path):
    def make(tmp: Path):
        script = f'for i in $(seq 200); do "{binary}" >/dev/null; done'
        return ["bash", "-c", script], dict(os.environ), tmp
    return make


from tracer.capture.bpftrace.decode import BINDING_VALUE_SIZE as VALUE_SIZE  # noqa: E402  (bindsnoop.bt's @b value)


def synthetic_blocks(n: int, procs: int = 200, block_records: int = 20000):
    """bindsnoop-shaped input in blocks, as the bpftrace backend gets it: control
    lines (forks/execs, names, exits) and binding records packed as the kernel
    holds @b's entries. Yields (lines, keys, values, record count)."""
    import struct

    per = max(n // procs, 1)
    from tracer.capture.bpftrace.launch import STRLEN

    syms = [f"sym_{i}".encode().ljust(STRLEN, b"\0") for i in range(500)]
    version = b"GLIBC_2.2.5".ljust(STRLEN, b"\0")
    ts = 1_000_000
    lines: list[str] = []
    keys: list[bytes] = []
    values: list[bytes] = []

    def block():
        out = (("\n".join(lines) + "\n").encode() if lines else b"", b"".join(keys), b"".join(values), len(keys))
        lines.clear(), keys.clear(), values.clear()
        return out

    for p in range(procs):
        pid = 1000 + p
        lines.append(f"F\t{ts}\t999\t{pid}")
        lines.append(f"E\t{ts}\t{pid}\t/usr/bin/prog{p % 7}")
        gen = ts
        for j, lib in enumerate(("", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6")):
            lines.append(f"N\t{pid}\t{gen}\t{0x7f0000 + j}\t{0x7f000000 + j}\t{lib}")
        for i in range(per):
            ts += 1000
            keys.append(struct.pack("<QQ", pid, ts))
            values.append(struct.pack("<6Q", pid, gen, 0x7f0000, 0x7f0001 + i % 2, 2000 + i % 900, 1 + i % 3)
                          + version + syms[i % 500])
            if len(keys) >= block_records:
                yield block()
        lines.append(f"X\t{ts}\t{pid}\t0")
    if lines or keys:
        yield block()


def feed_block(dec, block):
    """One synthetic block into a decoder, as the backend's stream does; the event tables."""
    text, keys, values, n = block
    out = [dec.feed(text)] if text else []
    out.append(dec.feed_records(keys, values, n, VALUE_SIZE))
    return [t for t in out if t is not None]


def ingest(n: int = 1_000_000) -> None:
    import struct

    from tracer.capture.bpftrace.decode import BpftraceDecoder
    from tracer.capture.background import HEAVY
    import importlib

    for mod in HEAVY:  # gotrace loads these while the command runs: not part of ingest
        importlib.import_module(mod)
    blocks = list(synthetic_blocks(n))
    t0 = time.perf_counter()
    count = sum(1 for b in blocks for _ in struct.iter_unpack("<6Q256s", b[2]))
    base = time.perf_counter() - t0
    dec = BpftraceDecoder()
    t0 = time.perf_counter()
    rows = 0
    for b in blocks:
        for t in feed_block(dec, b):
            rows += len(t.to_pandas(strings_to_categorical=True))
    el = time.perf_counter() - t0
    print(f"\nI: ingest of {rows:,} binding records into pandas: {rows / el:,.0f} events/s "
          f"({el:.2f} s); baseline struct.iter_unpack of the same {count:,} records: {base:.3f} s "
          f"(ratio {el / base:.2f}x)")


def memory(n: int = 1_000_000) -> None:
    code = f"""
import sys, tempfile, pathlib

def hwm():  # VmHWM belongs to this exec's address space; ru_maxrss survives exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

sys.path.insert(0, {str(ROOT / 'bench')!r})
import pyarrow, pyarrow.parquet, pyarrow.compute
from tracer import heavy as lazy
pyarrow.set_memory_pool(pyarrow.system_memory_pool())  # as gotrace's CLI does
lazy.pyarrow_without_pandas(pyarrow)  # as `gotrace bind` and `gotrace report` do
from tracer.analysis.report import report_session, summarize
if sys.argv[1] == "full":
    from bench_bind import feed_block, synthetic_blocks
    from tracer.capture.bpftrace.decode import BpftraceDecoder
    from tracer.capture.sink import ChunkSink, Progress
    from tracer.session.writer import SessionWriter, prepare_directory
    d = prepare_directory(pathlib.Path(tempfile.mkdtemp()) / "s", False)
    w = SessionWriter(d, {{"argv": ["bench"]}})
    sink = ChunkSink(w, Progress())
    dec = BpftraceDecoder()
    for block in synthetic_blocks({n}):
        for t in feed_block(dec, block): sink(t)
    sink.close()
    procs = dec.tree.processes_rows()
    w.write_table("processes", procs)
    w.finish(True)
    r = summarize(d, w.meta, sink.tally, procs, [])  # the summary `gotrace bind` prints
    assert r["bindings"]["total"] == {n}, r["bindings"]
    assert report_session(d) == r  # what `gotrace report` reads back, part by part
    assert "pandas" not in sys.modules
print(hwm())
"""
    out = {}
    for mode in ("imports", "full"):
        p = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        out[mode] = int(p.stdout.split()[0]) / 1024
    print(f"\nM: peak RSS capturing + reporting {n:,} events: {out['full']:.0f} MB; "
          f"same interpreter with the imports only: {out['imports']:.0f} MB "
          f"(ratio {out['full'] / out['imports']:.2f}x, added {out['full'] - out['imports']:.0f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="W1,W2,W3,WG,WT,A,I,M")
    ap.add_argument("--modes", default="", help="comma-separated subset of the modes (untraced is always run)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    from tracer.capture.bpftrace.backend import BpftraceBackend

    modes = ["untraced", "ld-debug-floor", "ld-debug"]
    modes += ["bpftrace-floor", "bpftrace"] if BpftraceBackend().probe().ok else []
    from tracer.capture.bpf.backend import BpfBackend

    modes += ["bpf-empty", "bpf-floor", "bpf", "bpf-agent", "untraced+agent"] if BpfBackend().probe().ok else []
    if args.modes:
        modes = ["untraced"] + [m for m in modes if m in args.modes.split(",") and m != "untraced"]
    if "bpftrace" not in modes and not args.modes:
        print("note: bpftrace backend unavailable here; measuring ld-debug only", file=sys.stderr)
    if "W1" in only:
        workload("W1 cold go build of examples/cgo-hello", modes, args.rounds, w1)
    if "W2" in only:
        with tempfile.TemporaryDirectory() as tmp:
            argv, env, cwd = w1(Path(tmp))
            subprocess.run(argv, env=env, cwd=cwd, check=True)
            binary = Path(tmp) / "bin-hello"
            shutil.copy(Path(tmp) / "hello", binary)
            workload("W2 200 runs of the cgo-hello binary", modes, args.rounds, w2_factory(binary))
    if "W3" in only:
        workload("W3 40 runs of python3 -c 'import ssl'", modes, args.rounds, w3)
    if "WG" in only:
        with tempfile.TemporaryDirectory() as tmp:
            argv, env, cwd = wg_factory(Path(tmp))(Path(tmp))
            subprocess.run(argv, env=env, cwd=cwd, check=True)  # fills the cache: not timed
            workload("WG warm go build of examples/cgo-hello", modes, args.rounds, wg_factory(Path(tmp)))
    if "WT" in only:
        workload("WT true", modes, args.rounds, lambda tmp: (["true"], dict(os.environ), tmp))
    if "A" in only:
        agent_at_scale()
    if "I" in only:
        ingest()
    if "M" in only:
        memory()


if __name__ == "__main__":
    main()
