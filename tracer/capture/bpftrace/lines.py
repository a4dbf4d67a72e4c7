"""Reading bindsnoop.bt's text records from a pipe into the decoder: shared by the two backends
that print them (bpftrace running the script, and gotrace's BPF loader printing the same format)."""
from __future__ import annotations

import os
import select
import threading
import time

from ..backend import CaptureRequest
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
