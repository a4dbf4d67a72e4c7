"""gotrace's own BPF program: bindsnoop.bt's records at the probes' own cost.

bpftrace compiles its script with LLVM at every start (~0.3 s), detaches at
~1 s, and wakes its reader per record. Here the BPF side is compiled once and
cached (CO-RE: one object for every kernel with BTF), the loader attaches in
~50 ms, the ring buffer wakes its reader only when a good share of it is
full, and the loader closes its output as soon as the last record is out,
leaving the kernel's detach (~0.5 s) to the background. A full ring buffer is
counted (`lost_events`), never silent.
"""
from __future__ import annotations

import os
import platform
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from ...binary import facts
from ...binary.elf import PT_LOAD, program_headers
from ...errors import BackendUnavailable, GotraceError
from ..backend import Availability, CaptureRequest, CaptureResult
from ..background import preload
from ..bpftrace.decode import BpftraceDecoder
from ..child import GatedChild
from ..ldso import ldso_path, require_layout, symbols_available

SUPPORTED_MACHINES = {"x86_64"}  # the program reads the return address at [sp] on entry
BTF = Path("/sys/kernel/btf/vmlinux")
BPF_CC = ("clang-14", "clang")
BPF_FLAGS = ["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", "-I/usr/include/x86_64-linux-gnu", "-c"]
LIBBPF_HEADER = Path("/usr/include/bpf/libbpf.h")
READY_TIMEOUT_S = 30
DECODE_SECONDS = 0.1
STRLEN = 128
LATENCY_METHOD = ("bpf_ktime_get_ns from uprobe entry to uretprobe of _dl_lookup_symbol_x (gotrace's BPF "
                  "program); includes the probes' own trap cost")


def _bpf_cc() -> str | None:
    return next((cc for cc in BPF_CC if shutil.which(cc)), None)


def build() -> tuple[Path, Path]:
    """The BPF object and its loader, built once per source version (csrc/build.py's cache)."""
    from ...csrc.build import compile_cached

    cc = _bpf_cc()
    if cc is None:
        raise GotraceError("building gotrace's BPF program needs clang, which is not installed")
    obj = compile_cached("bindsnoop-bpf", ["bindsnoop.bpf.c"], cc, BPF_FLAGS, suffix=".o",
                         what="gotrace's BPF program")
    loader = compile_cached("bindload", ["bindload.c"], "cc", ["-O2"], ("-lbpf",), what="the BPF loader")
    return obj, loader


def file_offset(path: str, vaddr: int) -> int | None:
    """Where a link-time address lies in the file (uprobes are placed by file offset)."""
    for ptype, seg, _align in program_headers(path):
        if ptype == PT_LOAD and seg.vmaddr <= vaddr < seg.vmaddr + seg.filesize:
            return seg.fileoff + (vaddr - seg.vmaddr)
    return None


def loader_args(root_pid: int) -> tuple[str, list[str]]:
    """bindload's arguments after OBJ (its USAGE): ld.so, the root, bindsnoop.bt's layout, file offsets."""
    ldso, lay = require_layout()
    funcs = facts.function_ranges(ldso, frozenset({"_dl_lookup_symbol_x", "_dl_relocate_object",
                                                   "_dl_signal_cexception"}))
    offsets = [file_offset(ldso, funcs[f][0]) for f in ("_dl_lookup_symbol_x", "_dl_relocate_object",
                                                         "_dl_signal_cexception")]
    if None in offsets:
        raise BackendUnavailable(f"bpf backend unavailable: ld.so's functions lie outside its loaded segments")
    layout = [lay.lookup, *lay.fixup, *lay.profile_fixup, *lay.text]
    return ldso, [ldso, str(root_pid), *(str(v) for v in layout), *(str(o) for o in offsets)]


class BpfBackend:
    name = "bpf"

    def __init__(self) -> None:
        self._probe: Availability | None = None
        self._built: tuple[Path, Path] | None = None

    def probe(self) -> Availability:
        if self._probe is None:
            self._probe = self._check()
        return self._probe

    def _check(self) -> Availability:
        if os.geteuid() != 0:
            return Availability(False, "gotrace's BPF program needs root (CAP_BPF and CAP_PERFMON)",
                                "run gotrace as root, e.g. sudo -E gotrace bind ...")
        machine = platform.machine()
        if machine not in SUPPORTED_MACHINES:
            return Availability(False, f"gotrace's BPF program supports x86_64 hosts only, not {machine}",
                                "use --backend ld-debug")
        if not BTF.exists():
            return Availability(False, f"the kernel has no BTF ({BTF} is missing): CO-RE cannot place the "
                                "program's reads", "use --backend bpftrace")
        if _bpf_cc() is None or not LIBBPF_HEADER.exists() or shutil.which("cc") is None:
            return Availability(False, "building gotrace's BPF program needs clang, a C compiler and libbpf's "
                                "headers", "apt-get install clang-14 gcc libbpf-dev")
        ldso = ldso_path()
        if ldso is None:
            return Availability(False, "cannot find glibc's ld.so on this host",
                                "the bpf backend supports glibc systems only")
        symbols = symbols_available(ldso)
        if not symbols.ok:
            return symbols
        try:
            self._built = build()
        except GotraceError as exc:
            return Availability(False, exc.message, "use --backend bpftrace")
        return Availability(True, "root, BTF, libbpf and glibc debug symbols are present")

    def capture(self, request: CaptureRequest) -> CaptureResult:
        avail = self.probe()
        if not avail.ok or self._built is None:
            raise BackendUnavailable(f"bpf backend unavailable: {avail.explain()}")
        obj, loader = self._built
        decoder = BpftraceDecoder(backend=self.name)
        child = GatedChild(request.argv, request.env)
        child.start()
        try:
            _ldso, args = loader_args(child.pid)
            proc = subprocess.Popen([str(loader), str(obj), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except BaseException:
            child.abort()
            raise
        decoder.tree.root(child.pid, os.getpid(), request.argv, time.monotonic_ns())
        preload("pyarrow.csv")
        errors = _Stderr(proc.stderr)
        errors.start()
        stream = _Stream(proc.stdout, decoder, request)
        exit_code = None
        try:
            if not stream.wait_ready(READY_TIMEOUT_S):
                child.abort()
                proc.kill()
                errors.join(5)
                raise BackendUnavailable(f"gotrace's BPF program failed to start: {errors.summary() or 'no READY'}")
            stream.start()
            child.release()
            exit_code = child.wait()
            time.sleep(0.02)  # descendants still running now (daemons) are followed no further
        finally:
            if exit_code is None and child.pid:
                child.restore_signals()
            try:
                proc.stdin.close()  # the loader drains its buffer, closes stdout, then detaches
            except OSError:
                pass
            if stream.ident is not None:
                stream.join()
            errors.join(10)
            threading.Thread(target=proc.wait, name="gotrace-bpf-detach", daemon=True).start()
        if stream.error is not None:
            raise stream.error
        decoder.lost_perf += errors.lost
        tail = decoder.finish()
        if tail is not None:
            request.sink(tail)
        seen_pids = {int(k.split(":", 1)[0]) for k in decoder.names}
        return CaptureResult(
            exit_code=exit_code,
            interrupted=child.interrupted,
            processes=decoder.tree.processes_rows(seen_pids),
            images=decoder.image_biases(),
            relocations=decoder.relocations_rows(),
            lost_events=decoder.lost,
            malformed_records=decoder.malformed,
            meta={
                "ts_source": "CLOCK_MONOTONIC (bpf_ktime_get_ns)",
                "latency_method": LATENCY_METHOD,
                "string_limit_bytes": STRLEN - 1,
                "bpf_program": obj.name, "bpf_loader": loader.name,
                "bpf_stderr": errors.summary() or None,
                "ring_buffer_lost": errors.lost,
            },
        )


class _Stderr(threading.Thread):
    """The loader's stderr: errors, and at the end "LOST n" (records the ring buffer had no room for)."""

    def __init__(self, pipe):
        super().__init__(name="gotrace-bpf-stderr", daemon=True)
        self.pipe = pipe
        self.lines: list[str] = []
        self.lost = 0

    def run(self) -> None:
        for raw in self.pipe:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("LOST\t"):
                self.lost = int(line.split("\t", 1)[1])
            elif line == "END":
                return
            elif line:
                self.lines.append(line)

    def summary(self) -> str:
        return self.lines[0] if self.lines else ""


class _Stream(threading.Thread):
    """The loader's stdout, decoded in batches until it closes (the last record is then out)."""

    def __init__(self, pipe, decoder: BpftraceDecoder, request: CaptureRequest):
        super().__init__(name="gotrace-bpf-reader", daemon=True)
        self.fd = pipe.fileno()
        self.decoder = decoder
        self.request = request
        self.buf = b""
        self.error: BaseException | None = None
        self._procs = 0

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.decoder.ready_pid is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                return False
            data = os.read(self.fd, 1 << 16)
            if not data:
                return False
            self._consume(data)
        return True

    def _consume(self, data: bytes) -> None:
        data = self.buf + data
        cut = data.rfind(b"\n") + 1
        self.buf = data[cut:]
        if cut:
            table = self.decoder.feed(data[:cut])
            if table is not None and table.num_rows:
                self.request.sink(table)
            n = len(self.decoder.tree.execed_pids)
            if n != self._procs:
                self._procs = n
                self.request.on_process(n)

    def run(self) -> None:
        pending: list[bytes] = []
        last = time.monotonic()
        try:
            while True:
                data = os.read(self.fd, 1 << 20)
                if not data:
                    break
                pending.append(data)
                now = time.monotonic()
                if now - last >= DECODE_SECONDS or sum(map(len, pending)) >= 1 << 20:
                    self._consume(b"".join(pending))
                    pending, last = [], now
            if pending:
                self._consume(b"".join(pending))
            if self.buf:
                self._consume(b"\n")
        except BaseException as exc:
            self.error = exc


__all__ = ["BpfBackend", "signal"]
