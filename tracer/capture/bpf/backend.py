"""gotrace's own BPF program: bindsnoop.bt's records at the probes' own cost.

bpftrace compiles its script with LLVM at every start (~0.3 s), detaches at
~1 s, and wakes its reader per record. Here the BPF side is compiled once and
cached (CO-RE: one object for every kernel with BTF), the loader attaches in
~50 ms, the ring buffer wakes its reader only when a good share of it is
full, and the loader closes its output as soon as the last record is out,
leaving the kernel's detach (~0.5 s) to the background. A full ring buffer is
counted (`lost_events`), never silent.

Where gotrace's agent runs (capture/bpf/agent.py), none of that is paid per
command: the agent's program is attached already, and the command's records come
from it (via_agent.py) — for any user, who is then shown only their own processes.
Without one, or when it does not answer (one line says so), the loader is started
for the command as always.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

from ...binary.facts import script_interpreter
from ...errors import BackendUnavailable, GotraceError, TracerDidNotStart
from ... import procfs
from ..backend import Availability, CaptureRequest, CaptureResult, tracer_gone
from ..background import preload
from ..bpftrace.decode import BpftraceDecoder
from ..process_tree import ProcessTree
from ..bpftrace.launch import STRLEN  # the records' layout, bindsnoop.bpf.c's as bindsnoop.bt's
from ..bpftrace.lines import LineReader, capture_result
from .. import prelaunch
from ..ldso import ldso_path, ldso_problem
from .launch import INSTALL, LIBBPF_HEADER, bpf_cc, artifacts, host_problem, start_gated
from . import via_agent

READY_TIMEOUT_S = 30
DECODE_SECONDS = 0.1
LATENCY_METHOD = ("bpf_ktime_get_ns from uprobe entry to uretprobe of _dl_lookup_symbol_x (gotrace's BPF "
                  "program); includes the probes' own trap cost")


class BpfBackend:
    name = "bpf"

    def __init__(self) -> None:
        self._probe: Availability | None = None
        self._built: tuple[Path, Path] | None = None
        self._agent = None  # the running agent's Status, when commands go through it
        self._agent_note: str | None = None  # why an agent that is there is not used (said once)

    @property
    def agent(self):
        """The running agent's Status when commands go through it (after probe), else None."""
        return self._agent

    def probe(self) -> Availability:
        if self._probe is None:
            self._probe = self._check()
        return self._probe

    def _check(self) -> Availability:
        self._agent, self._agent_note = via_agent.agent_for_bind()
        if self._agent is not None:
            return Availability(True, f"gotrace's agent (pid {self._agent.pid}) traces for this user")
        problem = host_problem()
        if problem is not None:
            return problem
        problem = ldso_problem(ldso_path(), "bpf")
        if problem is not None:
            return problem
        self._built = artifacts(build=False)
        if self._built is None:  # the first run: build (once per source version)
            if bpf_cc() is None or not LIBBPF_HEADER.exists() or shutil.which("cc") is None:
                return Availability(False, "building gotrace's BPF program needs clang, a C compiler and "
                                    "libbpf's headers", INSTALL)
            try:
                self._built = artifacts(build=True)
            except GotraceError as exc:
                return Availability(False, exc.message, "use --backend bpftrace")
        return Availability(True, "root, BTF, libbpf and glibc debug symbols are present")

    def capture(self, request: CaptureRequest) -> CaptureResult:
        avail = self.probe()
        if not avail.ok or (self._built is None and self._agent is None):
            raise BackendUnavailable(f"bpf backend unavailable: {avail.explain()}")
        if self._agent_note:
            request.on_warning(self._agent_note)
        decoder = BpftraceDecoder(backend=self.name, tree=ProcessTree(on_exec=request.on_exec))
        early = prelaunch.take(self.name, request.argv, request.env)  # started while the CLI loaded
        started = "by the backend"
        if early is not None and isinstance(early.proc, via_agent.AgentRun):  # the agent's bind server's
            child, proc = early.child, early.proc
            started = (f"by gotrace's agent (pid {proc.pid}, {proc.socket}), attached before the command; "
                       "finished by its bind server")
        elif early is not None and early.built == self._built:
            child, proc = early.child, early.proc
            started = "by the console script, while the CLI loaded"
        else:
            if early is not None:
                prelaunch.stop(early)
            child, proc = self._start(request)
            if isinstance(proc, via_agent.AgentRun):
                started = f"by gotrace's agent (pid {proc.pid}, {proc.socket}), attached before the command"
        if isinstance(proc, via_agent.AgentRun):
            program, loader = Path(self._agent.program).name, "bindload --agent"
        else:
            program, loader = self._built[0].name, self._built[1].name
        decoder.tree.root(child.pid, os.getpid(), request.argv, time.monotonic_ns())
        preload("pyarrow.csv")
        errors = _Stderr(proc.stderr)
        errors.start()
        kept = _KeptFiles(getattr(proc, "kept_files", None), request)
        kept.start()
        stream = _Stream(proc.stdout, decoder, request)
        exit_code = ended = None
        try:
            if not stream.wait_ready(READY_TIMEOUT_S):
                child.abort()
                proc.kill()
                errors.join(5)
                raise TracerDidNotStart(f"gotrace's BPF program failed to start: {errors.summary() or 'no READY'}")
            stream.start()
            child.release()
            exit_code = child.wait()
            ended = procfs.ending(proc.pid)  # before it was told to stop: what ran after its end is missing
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
            kept.join(10)  # the loader has closed its end: every program it sent is kept
            threading.Thread(target=proc.wait, name="gotrace-bpf-detach", daemon=True).start()
        if stream.error is not None:
            raise stream.error
        decoder.lost_perf += errors.lost
        return capture_result(
            decoder, request, exit_code, child.interrupted,
            None if ended is None else tracer_gone("gotrace's BPF loader", ended, errors.summary()),
            meta={
                "ts_source": "CLOCK_MONOTONIC (bpf_ktime_get_ns)",
                "latency_method": LATENCY_METHOD,
                "string_limit_bytes": STRLEN - 1,
                "bpf_program": program, "bpf_loader": loader,
                "bpf_started": started,
                "bpf_stderr": errors.summary() or None,
                "ring_buffer_lost": errors.lost,
            },
        )


    def _start(self, request: CaptureRequest):
        """The gated child and its tracer: the agent's session when an agent runs, else a loader of its own
        (an agent that refuses is said in one line, and the command runs under its own loader)."""
        if self._agent is not None:
            try:
                return via_agent.start_gated(request.argv, request.env, self._agent)
            except via_agent.AgentRefused as exc:
                if self._built is None and (host_problem() is not None or artifacts(build=False) is None):
                    raise BackendUnavailable(f"bpf backend unavailable: {exc}") from None
                request.on_warning(f"{exc}: tracing without the agent")
                self._built = self._built or artifacts(build=False)
        if self._built is None:
            raise BackendUnavailable("bpf backend unavailable: gotrace's BPF program is not built")
        return start_gated(request.argv, request.env, self._built)


class _KeptFiles(threading.Thread):
    """The files the loader opened the moment a record named them (GOTRACE_KEEP_FD in bindload.c):
    "E|N<TAB>pid<TAB>name<TAB>dev:ino", the file attached the first time it is seen; each handed to
    the request's keep_object (capture/object_keeper.py), which then owns the descriptor."""

    def __init__(self, sock, request: CaptureRequest):
        super().__init__(name="gotrace-bpf-kept", daemon=True)
        self.sock = sock
        self.request = request

    def run(self) -> None:
        if self.sock is None:
            return
        try:
            while True:
                msg, fds, _flags, _addr = socket.recv_fds(self.sock, 4096, 1)
                if not msg and not fds:
                    return  # the loader is gone
                fd = fds[0] if fds else None
                parts = msg.decode("utf-8", "replace").split("\t")
                if len(parts) != 4 or not parts[1].isdigit() or ":" not in parts[3]:
                    if fd is not None:
                        os.close(fd)
                    continue
                kind, pid, name, inode = parts
                if kind == "E":  # a script's exec runs its interpreter: the decoder names it so
                    name = (script_interpreter(name) if name.startswith("/") else None) or name
                dev, _, ino = inode.partition(":")
                self.request.keep_object(int(pid), name, fd, (int(dev), int(ino)))
        except (OSError, ValueError):
            return
        finally:
            self.sock.close()


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


class _Stream(LineReader):
    """The loader's stdout, decoded in batches until it closes (the last record is then out)."""

    def __init__(self, pipe, decoder: BpftraceDecoder, request: CaptureRequest):
        super().__init__(pipe, decoder, request, "gotrace-bpf-reader")

    def run(self) -> None:
        pending: list[bytes] = []
        last = time.monotonic()
        try:
            while True:
                data = os.read(self.fd, 1 << 20)
                if not data:
                    break
                self.announce_execs(data)
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


