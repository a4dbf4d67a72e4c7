"""Which D scripts a capture runs, and how, on this OS (dscripts/*.d)."""
from __future__ import annotations

from dataclasses import dataclass

from ..dscripts import path as script


@dataclass
class Plan:
    """Which scripts run how, on this OS."""

    dtrace: str
    darwin: bool
    arm64: bool = True

    def tree(self, pid: int) -> list[str]:
        extra = ["-w", "-s", script("execstop.d")] if self.darwin else []
        return [self.dtrace, "-q", "-Z", "-s", script("proctree.d"), *extra, "-p", str(pid)]

    def process(self, pid: int) -> list[str]:
        if self.darwin:
            return [self.dtrace, "-q", "-Z", "-w", "-s", script("dyldbindsnoop.d"), "-s", script("dlsymsnoop.d"),
                    "-s", script("pidresume.d"), "-p", str(pid), "1" if self.arm64 else "0"]
        return [self.dtrace, "-q", "-Z", "-s", script("dlsymsnoop.d"), "-p", str(pid)]

    @property
    def attach_on(self) -> str:
        """The record after which a process gets its own dtrace."""
        return "STOP" if self.darwin else "F"
