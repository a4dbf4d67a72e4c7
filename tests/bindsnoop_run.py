"""bindsnoop.bt run the way gotrace runs it, but without gotrace reading the binding map.

The command is held before exec, the script attaches with it as ROOT_PID (MARK_PID
0: by hand), the command runs, and SIGINT makes bpftrace print what is in @b (all
of it: nobody took anything out) and @emitted, and exit.
Used by the golden recorder and by the test that checks gotrace's own reading
of the map against bpftrace's print of it.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Callable

from tracer.capture.bpftrace.launch import start_gated


def run_by_hand(argv: list[str], after_exit: Callable[[int], object] | None = None) -> tuple[bytes, int, object]:
    """(bpftrace's whole stdout, the command's exit code, after_exit(bpftrace pid))."""
    child, bpf = start_gated(argv, dict(os.environ), mark_pid=0)
    lines: list[bytes] = []
    ready = threading.Event()

    def read() -> None:
        for line in bpf.stdout:
            lines.append(line)
            if line.startswith(b"READY"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(90):
            child.abort()
            raise RuntimeError("bpftrace did not attach")
        child.release()
        code = child.wait()
        time.sleep(0.2)  # the rare records travel through perf buffers: let them arrive
        extra = after_exit(bpf.pid) if after_exit else None
    finally:
        bpf.send_signal(2)
        bpf.wait(60)
        reader.join(10)
    return b"".join(lines), code, extra
