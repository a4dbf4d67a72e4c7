"""The live status line shown on a terminal while a command is traced."""
from __future__ import annotations

import sys
import threading


class LiveLine(threading.Thread):
    """Redraws one line from ``progress`` (capture.sink.Progress: events, processes, rate()) every ``interval``."""

    def __init__(self, progress, stream=sys.stderr, interval: float = 0.5):
        super().__init__(name="gotrace-live", daemon=True)
        self.progress, self.stream, self.interval = progress, stream, interval
        self._halt = threading.Event()

    def run(self) -> None:
        last = None
        while not self._halt.wait(self.interval):
            p = self.progress
            if (p.events, p.processes) == last:
                continue  # idle: leave the line alone (the command may be prompting)
            last = (p.events, p.processes)
            self.stream.write(f"\r\x1b[K\x1b[2mgotrace: {p.events:,} bindings · {p.processes} processes · "
                              f"{p.rate():,.0f}/s\x1b[0m")
            self.stream.flush()

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join()
        self.stream.write("\r\x1b[K")
        self.stream.flush()
