"""Thread priorities for the tracer's own work."""
from __future__ import annotations

import os
import threading


def background_priority() -> None:
    """Run the calling thread at nice 19 (Linux niceness is per thread).

    Decoding and writing can wait for idle CPU: the traced build should not
    compete with its own tracer. Output pipes and buffers absorb the delay.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (OSError, AttributeError):
        pass
