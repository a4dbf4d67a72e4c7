"""Reading bindsnoop.bt's text records from a pipe into the decoder: shared by the two backends
that print them (bpftrace running the script, and gotrace's BPF loader printing the same format)."""
from __future__ import annotations

import os
import select
import threading
import time

from ..backend import CaptureRequest, CaptureResult
from ...binary.facts import script_interpreter
from .decode import BpftraceDecoder


class LineReader(threading.Thread):
    """A tracer's stdout: the records up to READY, then complete lines decoded in batches, each
    table to the request's sink and the process count to its progress."""

    def __init__(self, pipe, decoder: BpftraceDecoder, request: CaptureRequest, name: str):
        super().__init__(name=name, daemon=True)
        self.fd = pipe.fileno()
        self.pipe = pipe
        self.decoder = decoder
        self.request = request
        self.buf = b""
        self.error: BaseException | None = None
        self._procs = 0

    def wait_ready(self, timeout: float) -> bool:
        """Until the tracer printed READY (its probes are attached); False at EOF or timeout."""
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

    def announce_execs(self, data: bytes) -> None:
        """Tell the request of each exec in ``data`` as soon as it is read, before its batch is decoded
        (~0.1 s later): the run keeps the program's file while it is there. Complete lines only; the
        decoder's own exec reaches the request too, so a line cut between two reads is not lost."""
        at = 0 if data.startswith(b"E\t") else data.find(b"\nE\t")
        while at >= 0:
            start = at + (0 if data[at:at + 2] == b"E\t" else 1)
            end = data.find(b"\n", start)
            if end < 0:
                return
            fields = data[start:end].decode("utf-8", "replace").split("\t", 3)
            if len(fields) == 4 and fields[2].isdigit():
                exe = fields[3]
                self.request.on_exec(int(fields[2]), (script_interpreter(exe) if exe.startswith("/") else None) or exe)
            at = data.find(b"\nE\t", end)

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


def capture_result(decoder: BpftraceDecoder, request: CaptureRequest, exit_code: int | None, interrupted: int,
                   incomplete_reason: str | None, meta: dict) -> CaptureResult:
    """What the decoder holds once the tracer's output has ended: its last events to the sink,
    the small tables, the counts; ``meta``: the backend's own facts."""
    tail = decoder.finish()
    if tail is not None:
        request.sink(tail)
    seen_pids = {int(k.split(":", 1)[0]) for k in decoder.names}  # pids with bindings
    return CaptureResult(
        incomplete_reason=incomplete_reason,
        exit_code=exit_code,
        interrupted=interrupted,
        processes=decoder.tree.processes_rows(seen_pids),
        images=decoder.image_biases(),
        relocations=decoder.relocations_rows(),
        lost_events=decoder.lost,
        malformed_records=decoder.malformed,
        meta=meta,
    )
