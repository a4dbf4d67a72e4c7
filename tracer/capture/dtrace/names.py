"""Addresses a dtrace record carries, as the paths of the images that hold them.

Linux: from /proc/PID/maps, read when a process's probes come on (it may be gone when
its records are read) and again when an address is not found (a dlopen since); a
forked child that has not exec'd shares its parent's. macOS (not run on macOS): the
images dyld's DYLD_PRINT_SEGMENTS placed, read from the same run's log at the end.
"""
from __future__ import annotations

import os

from ... import procfs


class Names:
    """Addresses to paths: Linux from /proc/PID/maps (read while the process lives),
    macOS from the images dyld's DYLD_PRINT_SEGMENTS placed (read at the end)."""

    def __init__(self, darwin: bool):
        self.darwin = darwin
        self.ranges: dict[int, list] = {}
        self.headers: dict[tuple[int, int], str] = {}
        self.parent: dict[int, int] = {}  # a forked child shares its parent's mappings until it execs

    def snapshot(self, pid: int) -> None:
        """Read a process's mappings now (its probes just came on): it may be gone when its records are read."""
        if not self.darwin:
            self.ranges[pid] = procfs.file_ranges(pid) or self.ranges.get(pid, [])

    def name_of(self, pid: int, addr: int) -> str | None:
        if self.darwin:
            return None  # not named while running; B records carry headers (image_at)
        for _ in range(2):
            for lo, hi, path in self.ranges.get(pid) or self.ranges.get(self.parent.get(pid), ()):
                if lo <= addr < hi:
                    return path
            fresh = procfs.file_ranges(pid)  # a dlopen since the last read, or the first look
            if not fresh or fresh == self.ranges.get(pid):
                return None
            self.ranges[pid] = fresh
        return None

    def image_at(self, pid: int, header: int) -> str | None:
        return self.headers.get((pid, header))

    def read_dyld_log(self, logfile: str) -> None:  # not run on macOS
        from ..dyld_print.log import DyldLog

        log = DyldLog()
        try:
            with open(logfile, "rb") as fh:
                log.feed(fh.read(), None)
            log.close(None)
        finally:
            os.unlink(logfile)
        for row in log.images():
            self.headers[(row["pid"], row["load_base"])] = row["path"]
