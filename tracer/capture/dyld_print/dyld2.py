"""The account older dyld wrote: ``dyld: `` lines without a pid (macOS 10.15 and before, and
dyld3's launch-closure era up to macOS 11).

Forms (dyld-635 … dyld-852, tests/fixtures/dyld-formats/): DYLD_PRINT_LIBRARIES
``dyld: loaded: %s`` (dyld3 closures: ``dyld: loaded: <%s> %s`` with the UUID); DYLD_PRINT_BINDINGS
``dyld: bind: %s:0x%08lX = %s:%s, *0x%08lX = 0x%08lX%s`` and its ``lazy bind`` and ``weak bind``
forms (requester and target by short name; ``<weak_import-missing>`` for a missing weak import).
dyld2 binds lazily: a ``lazy bind`` line is a call through a stub, at its first call.

With no pid, a log is one process unless its lines say otherwise: dyld never loads one path
twice in a process, so a path logged again starts another process — at the last logged
image before it that is a program (not a .dylib, .so, .bundle or framework), else at the
repeat itself. Such processes are numbered 0, 1, 2 … in the order they started
(``pid`` is that number: the log has none). Not run on macOS (see lines.py).
"""
from __future__ import annotations

import re

from . import lines as L

LOADED = re.compile(rf"^(?:loaded: )?(?:<({L.UUID}|no uuid)> )(.+?)\s*$|^loaded: (.+?)\s*$")
BARE_PATH = re.compile(r"^(/\S.*?)\s*$")
BIND = re.compile(r"^(lazy |weak |forced lazy )?bind: (.+?):0x[0-9A-Fa-f]+ = (.+?):(\S+), \*0x[0-9A-Fa-f]+ = "
                  r"0x[0-9A-Fa-f]+(.*)$")
# DYLD_PRINT_SEGMENTS (dyld-433 … 852): the image, then its segments on lines of their own, without the prefix
MAPPED = re.compile(r"^(Main executable mapped|Using shared cached? for|Mapping) (/.+?)\s*$")
SEGMENT = re.compile(r"^\s*(\S+) at 0x([0-9A-Fa-f]+)->0x([0-9A-Fa-f]+)(?: with permissions [r-][w-][x-]| \(zerofill\))?\s*$")
# what dyld2 prints that says nothing gotrace records (read, not lost): rebases, the shared cache's
# regions, crash reports' phase lines, DYLD_PRINT_APIS calls (printed without the prefix)
NOT_PROGRAM = (".dylib", ".so", ".bundle")
IGNORED = re.compile(r"^(?:rebase: |re-using |launch, |calling |called |bind indirect sym: |resolver at |interposing |"
                     r"dynamic interposing|weak bind|weak binding |adjusting |RPATH |warning|unloaded|alter bind: |"
                     r"cache fixup: |cache patch: |registering DOF section |shared cached |Mapping(?! /)|"
                     r"code signature registration |dlopen|dlsym|dlclose|dlerror|dladdr|Failed registering code "
                     r"signature |Registered code signature |image not prebound|image slid|dependent libraries changed|"
                     r"image uses flat-namespace|environment variable disabled use of prebinding|closure )")
# dyld2's lines printed without the prefix: segments' altered permissions, the shared cache's regions and
# mapping, DYLD_PRINT_APIS calls and results, RPATH expansions, DYLD_PRINT_OPTS, DYLD_PRINT_STATISTICS,
# DYLD_PRINT_CODE_SIGNATURES, terminators. (DYLD_PRINT_ENV's NAME=VALUE lines are not told from program output.)
CACHE_REGION = re.compile(r"^\s+0x[0-9A-Fa-f]+->0x[0-9A-Fa-f]+\b|^re-using existing shared cache \(|"
                          r"^mapped dyld cache file ")
API_CALL = re.compile(r"^\s*(?:_dyld_\w+|_NSGet\w+|NS\w+|dl(?:open|sym|close|error|addr|open_preflight))\(.*\)"
                      r"(?:\s*==?> .*| failed, error: .*|, running static terminators for .*)?\s*$")
OTHER_BARE = re.compile(r"^(?:RPATH (?:successful expansion of|failed to expanding) |opt\[\d+\] = \"|dyld interposing: |"
                        r"code signature invalid for '|code signature registration for shared cache failed|"
                        r"termination function 0x[0-9a-f]+ not in mapped image|\s*total |(?:un)?registering DOF section |"
                        r"LC_RPATH .+ being ignored in restricted program|"
                        r"\s*\S+ \([r.][w.][x.]\) 0x[0-9A-Fa-f]+->0x[0-9A-Fa-f]+\s*$|"
                        r"[^:]+:\s+\d+\.\d+ (?:milliseconds|seconds) \(\d+\.\d+%\))|"
                        r"^\s*\S+ at 0x[0-9A-Fa-f]+->0x[0-9A-Fa-f]+ altered permissions to [r-][w-][x-]\s*$")


class Dyld2Log:
    """Feed it the bodies of ``dyld: `` lines (after the prefix), in order."""

    def __init__(self) -> None:
        self.procs: list[dict] = []  # {"libs": [path...], "uuids": {path: uuid}, "events": [...], "start": line}
        self.read = 0
        self.unknown: list[str] = []  # bodies of no form this reader knows
        self._mapping: tuple | None = None  # (process, image) whose segment lines follow
        self.loads: dict = {}  # (id(process), path) -> __TEXT's start

    def take_bare(self, text: str) -> bool:
        """A line without the prefix that dyld2 prints all the same: a segment of the image being
        mapped, a shared-cache region, a DYLD_PRINT_APIS call. Whether it was one."""
        m = SEGMENT.match(text)
        if m:
            if self._mapping is not None and m.group(1) == "__TEXT":
                proc, path = self._mapping
                self.loads.setdefault((id(proc), path), int(m.group(2), 16))
            self.read += 1
            return True
        if CACHE_REGION.match(text) or API_CALL.match(text) or OTHER_BARE.match(text):
            self.read += 1
            return True
        return False

    def _proc(self, line: int) -> dict:
        if not self.procs:
            self.procs.append({"libs": [], "uuids": {}, "events": [], "start": line})
        return self.procs[-1]

    def take(self, body: str, line: int) -> bool:
        """Whether the body was read (else it is kept among ``unknown``)."""
        m = LOADED.match(body) or (BARE_PATH.match(body) if body.startswith("/") else None)
        if m:
            uuid, path = ((m.group(1), m.group(2) or m.group(3)) if m.re is LOADED else (None, m.group(1)))
            self._loaded(None if uuid == "no uuid" else uuid, path, line)
            self.read += 1
            return True
        m = MAPPED.match(body)
        if m:
            p = self._proc(line)
            if m.group(2) not in p["uuids"] or m.group(1).startswith("Main"):
                self._loaded(None, m.group(2), line)
            self._mapping = (self.procs[-1], m.group(2))
            self.read += 1
            return True
        if IGNORED.match(body):
            self.read += 1
            return True
        m = BIND.match(body)
        if m:
            how, req, target, sym = m.group(1), m.group(2), m.group(3), m.group(4)
            kind = "lazy" if how == "lazy " else "eager"  # "forced lazy": a lazy pointer bound at launch
            missing = target == "<weak_import-missing>"
            self._proc(line)["events"].append((line, req, sym, None if missing else target, kind, not missing))
            self.read += 1
            return True
        self.unknown.append(body)
        return False

    def _loaded(self, uuid: str | None, path: str, line: int) -> None:
        p = self._proc(line)
        if path in p["uuids"]:  # a second process: it began at its program's line
            libs = p["libs"]
            first = next(i for i, (x, _) in enumerate(libs) if x == path)
            at = next((i for i in range(len(libs) - 1, first, -1) if _program_like(libs[i][0])), None)
            moved = libs[at:] if at is not None else []
            del libs[len(libs) - len(moved):]
            uuids = {x: p["uuids"].pop(x, None) for x, _ in moved}
            start = moved[0][1] if moved else line
            events = [e for e in p["events"] if e[0] >= start]
            p["events"] = [e for e in p["events"] if e[0] < start]
            p = {"libs": moved, "uuids": uuids, "events": events, "start": start}
            self.procs.append(p)
        p["libs"].append((path, line))
        p["uuids"][path] = uuid

    def rows(self) -> tuple[list[tuple], list[dict], list[dict]]:
        """(event tuples, processes rows, images rows); events as log.event_columns wants them."""
        events, procs, images = [], [], []
        for n, p in enumerate(self.procs):
            exe = p["libs"][0][0] if p["libs"] else None
            by_leaf = {}
            for path, _ in p["libs"]:
                by_leaf.setdefault(L.leaf(path), path)
            for line, req, sym, target, kind, ok in p["events"]:
                events.append((line, n, exe, by_leaf.get(req, req), sym,
                               None if target is None else by_leaf.get(target, target), kind, ok))
            procs.append({"pid": n, "exe": exe, "start_ns": p["start"]})
            images += [{"pid": n, "path": path, "uuid": p["uuids"].get(path), "load_base": self.loads.get((id(p), path))}
                       for path, _ in p["libs"]]
        events.sort(key=lambda e: e[0])
        return events, procs, images


def _program_like(path: str) -> bool:
    return not path.endswith(NOT_PROGRAM) and ".framework/" not in path and "/" in path
